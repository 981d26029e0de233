"""The JSON Lines sink's writer (beam_cxone/io/jsonl.py): one file per table, lines in key order,
an empty table an empty file, nothing left under a temporary name."""

import json

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.io.jsonl import WriteJsonLines
from beam_cxone.io.jsonl import sorted_text
from beam_cxone.tables import TABLES

PROFILES = TABLES["customer_profiles"]


def _profile(customer: str, tier: str) -> dict:
    return {"customer_id": customer, "tier": tier, "region": "emea", "updated_at": 1_796_000_000_000}


def test_sorted_text():
    assert sorted_text([]) == b""
    assert sorted_text([(("b",), "2"), (("a",), "1"), (("é",), "3")]) == b"1\n2\n3\n"


def test_a_table_written_in_key_order_and_an_empty_table_as_an_empty_file(tmp_path):
    rows = [_profile(c, t) for c, t in (("C-3", "gold"), ("C-1", "silver"), ("C-2", "UNKNOWN"))]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        p | "Rows" >> beam.Create(rows) | "Write" >> WriteJsonLines(str(tmp_path / "out"), PROFILES)
        (p | "NoRows" >> beam.Create([]).with_output_types(dict)
           | "WriteNone" >> WriteJsonLines(str(tmp_path / "empty"), PROFILES))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "customer_profiles-00000-of-00001.jsonl"]
    lines = (tmp_path / "out" / "customer_profiles-00000-of-00001.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"customer_id": "C-1", "tier": "silver", "region": "emea", "updated_at": "2026-11-30T00:53:20.000Z"},
        {"customer_id": "C-2", "tier": "UNKNOWN", "region": "emea", "updated_at": "2026-11-30T00:53:20.000Z"},
        {"customer_id": "C-3", "tier": "gold", "region": "emea", "updated_at": "2026-11-30T00:53:20.000Z"},
    ]
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["customer_profiles-00000-of-00001.jsonl"]
    assert (tmp_path / "empty" / "customer_profiles-00000-of-00001.jsonl").read_bytes() == b""
