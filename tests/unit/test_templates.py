"""Backfill templates without Beam: loading and checking template files, parameter values (each kind
of bad one), and their resolution into the plain backfill's command line. The shipped templates run
end to end in tests/integration/test_backfill.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from beam_cxone.templates import Parameter
from beam_cxone.templates import TemplateError
from beam_cxone.templates import default_templates_dir
from beam_cxone.templates import find_template
from beam_cxone.templates import format_listing
from beam_cxone.templates import load_template
from beam_cxone.templates import load_templates
from beam_cxone.templates import parse_param_args
from beam_cxone.templates import parse_template

REPO_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
SHIPPED = ("files_to_cassandra", "files_to_jsonl", "kafka_range_to_cassandra")
TABLES = ["interaction_volumes", "pattern_alerts", "customer_profiles", "dead_letters"]

VALID = {
    "name": "demo",
    "description": "A template for tests.",
    "parameters": [
        {"name": "input", "type": "glob", "required": True, "help": "Files."},
        {"name": "keyspace", "type": "str", "default": "ks1", "pattern": "[a-z][a-z0-9_]*"},
        {"name": "window", "type": "int", "default": 10, "help": "Seconds."},
        {"name": "ratio", "type": "float"},
        {"name": "tls", "type": "bool", "default": False},
    ],
    "runs": {
        "source": "files",
        "sink": "cassandra",
        "outputs": TABLES,
        "options": {
            "input": "{input}",
            "cassandra_keyspace": "{keyspace}",
            "window_size_s": "{window}",
            "pattern_within_s": "{ratio}",
            "cassandra_tls": "{tls}",
            "failure_count": 3,
        },
    },
}


def demo(**changes) -> dict:
    data = copy.deepcopy(VALID)
    for key, value in changes.items():
        if key.startswith("runs_"):
            data["runs"][key[5:]] = value
        else:
            data[key] = value
    return data


# ----- the shipped templates ------------------------------------------------------------------------


def test_default_dir_is_the_repository_templates():
    assert default_templates_dir() == REPO_TEMPLATES


def test_shipped_templates_load_and_are_listed():
    found, problems = load_templates(REPO_TEMPLATES)
    assert problems == []
    assert {t.name for t in found} >= set(SHIPPED)
    listing = format_listing(found)
    for name in SHIPPED:
        assert name in listing
    assert "start                timestamp required" in listing


@pytest.mark.parametrize(
    ("name", "values", "expected"),
    [
        (
            "files_to_cassandra",
            {"input": "a/*.jsonl.gz"},
            [
                "--sink=cassandra",
                "--input=a/*.jsonl.gz",
                "--cassandra_hosts=127.0.0.1",
                "--cassandra_port=9042",
                "--cassandra_keyspace=cxone_analytics",
            ],
        ),
        (
            "files_to_jsonl",
            {"input": "x.jsonl", "output_dir": "/tmp/out"},
            ["--sink=jsonl", "--input=x.jsonl", "--output_dir=/tmp/out"],
        ),
        (
            "kafka_range_to_cassandra",
            {
                "start": "2026-11-30T08:00:00Z",
                "stop": "1796000000000",
                "topic": "t-1",
                "keyspace": "ks",
            },
            [
                "--sink=cassandra",
                "--start_timestamp=2026-11-30T08:00:00Z",
                "--stop_timestamp=1796000000000",
                "--topic=t-1",
                "--bootstrap_servers=127.0.0.1:9092",
                "--cassandra_hosts=127.0.0.1",
                "--cassandra_port=9042",
                "--cassandra_keyspace=ks",
            ],
        ),
    ],
)
def test_shipped_templates_resolve_to_the_plain_backfill(name, values, expected):
    assert find_template(name, REPO_TEMPLATES).resolve(values) == expected


def test_find_by_path_and_unknown_name():
    path = REPO_TEMPLATES / "files_to_jsonl.yaml"
    assert find_template(str(path), REPO_TEMPLATES).name == "files_to_jsonl"
    with pytest.raises(TemplateError, match="no template 'nope'.*files_to_cassandra"):
        find_template("nope", REPO_TEMPLATES)
    with pytest.raises(TemplateError, match="cannot read template"):
        find_template("missing/nope.yaml", REPO_TEMPLATES)


# ----- resolution -----------------------------------------------------------------------------------


def test_resolution_types_flags_and_optional_parameters():
    t = parse_template(demo())
    assert t.resolve({"input": "f.jsonl"}) == [
        "--sink=cassandra",
        "--input=f.jsonl",
        "--cassandra_keyspace=ks1",
        "--window_size_s=10",
        "--failure_count=3",  # ratio not given: its option is left out; tls false: no flag
    ]
    assert t.resolve({"input": "f", "ratio": "2.5", "tls": "yes", "window": "20"}) == [
        "--sink=cassandra",
        "--input=f",
        "--cassandra_keyspace=ks1",
        "--window_size_s=20",
        "--pattern_within_s=2.5",
        "--cassandra_tls",
        "--failure_count=3",
    ]


def test_placeholders_inside_text():
    data = demo()
    data["parameters"].append({"name": "day", "type": "str", "default": "2026-11-30"})
    data["runs"]["options"]["input"] = "archive/{day}/{input}"
    assert "--input=archive/2026-11-30/*.gz" in parse_template(data).resolve({"input": "*.gz"})


# ----- each kind of bad parameter value -------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"input": "f", "inptu": "g"}, "unknown parameter 'inptu'"),
        ({}, "missing required parameter 'input'"),
        ({"input": "f", "window": "ten"}, "parameter window: 'ten' is not an integer"),
        ({"input": "f", "window": "1.5"}, "parameter window: '1.5' is not an integer"),
        ({"input": "f", "ratio": "fast"}, "parameter ratio: 'fast' is not a number"),
        ({"input": "f", "ratio": "nan"}, "'nan' is not a number (is not finite)"),
        ({"input": "f", "tls": "maybe"}, "parameter tls: 'maybe' is not true or false"),
        (
            {"input": "f", "keyspace": "Bad-KS"},
            "'Bad-KS' does not match the pattern [a-z][a-z0-9_]*",
        ),
        ({"input": "  "}, "parameter input: '  ' is not a file glob (is empty)"),
    ],
)
def test_bad_values_fail_listing_the_valid_parameters(values, message):
    with pytest.raises(TemplateError) as err:
        parse_template(demo()).resolve(values)
    text = str(err.value)
    assert message in text
    assert "parameters of template demo (--param NAME=VALUE):" in text
    for name in ("input", "keyspace", "window", "ratio", "tls"):
        assert f"\n  {name} " in text


def test_every_problem_is_reported_at_once():
    with pytest.raises(TemplateError) as err:
        parse_template(demo()).resolve({"inptu": "f", "window": "x", "keyspace": "A"})
    text = str(err.value)
    for part in (
        "unknown parameter 'inptu'",
        "missing required parameter 'input'",
        "parameter window:",
        "parameter keyspace:",
    ):
        assert part in text


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-11-30T08:00:00Z", True),
        ("2026-11-30T08:00:00.123+05:30", True),
        ("1796000000000", True),
        ("2026-11-30T08:00:00", False),  # no offset: ambiguous
        ("2026-13-30T08:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_timestamp_parameters(text, ok):
    p = Parameter("start", "timestamp", required=True)
    assert (p.check(text) is None) == ok


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["a=1", "b=x=y", "c="], {"a": "1", "b": "x=y", "c": ""}),
        ([], {}),
    ],
)
def test_param_args(items, expected):
    assert parse_param_args(items) == expected


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "'novalue' is not NAME=VALUE"),
        (["=1"], "is not NAME=VALUE"),
        (["a=1", "a=2"], "--param a given twice"),
    ],
)
def test_bad_param_args(items, message):
    with pytest.raises(TemplateError, match=message):
        parse_param_args(items)


# ----- invalid template files -----------------------------------------------------------------------


def _param(name: str, **fields) -> dict:
    return {"name": name, **fields}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["not", "a", "mapping"], "a template is a mapping"),
        ({k: v for k, v in VALID.items() if k != "runs"}, "missing runs"),
        (demo(extra=1), "unknown keys extra"),
        (demo(name="Bad Name"), "name 'Bad Name' must match"),
        (demo(description=" "), "description is empty"),
        (demo(runs_source="bigquery"), "runs.source 'bigquery' is not one of files, kafka_range"),
        (demo(runs_sink="s3"), "runs.sink 's3' is not one of cassandra, jsonl"),
        (demo(runs_outputs=["interaction_volumes"]), "runs.outputs must list the tables"),
        (demo(runs_outputs=TABLES + ["nope"]), "runs.outputs must list the tables"),
        (
            demo(runs_options={**VALID["runs"]["options"], "sink": "jsonl"}),
            "sink cannot be set there",
        ),
        (demo(runs_options={**VALID["runs"]["options"], "Bad-Key": 1}), "is not an option name"),
        (
            demo(runs_options={**VALID["runs"]["options"], "topic": "{topic}"}),
            "{topic} is not a declared parameter",
        ),
        (
            demo(runs_options={**VALID["runs"]["options"], "stop_timestamp": "1"}),
            "option stop_timestamp does not belong to source files",
        ),
        (
            demo(runs_options={k: v for k, v in VALID["runs"]["options"].items() if k != "input"}),
            "source files needs option input",
        ),
        (demo(runs_sink="jsonl"), "sink jsonl needs option output_dir"),
        (
            demo(runs_options={**VALID["runs"]["options"], "x": [1]}),
            "runs.options.x must be a scalar",
        ),
        (
            demo(parameters=VALID["parameters"] + [_param("extra")]),
            "parameters not used by runs.options: extra",
        ),
        (
            demo(parameters=VALID["parameters"] + [_param("input")]),
            "parameters declared twice: input",
        ),
        (
            demo(parameters=[_param("input", type="date")] + VALID["parameters"][1:]),
            "type 'date' is not one of",
        ),
        (
            demo(parameters=[_param("input", pattern="(")] + VALID["parameters"][1:]),
            "is not a regex",
        ),
        (
            demo(
                parameters=[_param("input", required=True, default="x")] + VALID["parameters"][1:]
            ),
            "required parameters have no default",
        ),
        (
            demo(parameters=[_param("input", required="yes")] + VALID["parameters"][1:]),
            "required must be true or false",
        ),
        (
            demo(parameters=[_param("input", type="int", default="ten")] + VALID["parameters"][1:]),
            "default 'ten' is not an integer",
        ),
        (
            demo(parameters=[_param("input", colour="red")] + VALID["parameters"][1:]),
            "parameter input: unknown keys colour",
        ),
        (demo(parameters=[{"type": "str"}] + VALID["parameters"]), "must be a mapping with a name"),
    ],
)
def test_invalid_templates(data, message):
    with pytest.raises(TemplateError) as err:
        parse_template(data)
    assert message in str(err.value)


def test_file_must_be_named_after_the_template(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(VALID))
    with pytest.raises(TemplateError, match=r"named after the template \(demo.yaml\)"):
        load_template(path)
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(VALID))
    assert load_template(tmp_path / "demo.yaml").path == str(tmp_path / "demo.yaml")


def test_invalid_yaml_and_a_directory_with_a_bad_template(tmp_path):
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(VALID))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    found, problems = load_templates(tmp_path)
    assert [t.name for t in found] == ["demo"]
    assert len(problems) == 1 and "broken.yaml: not valid YAML" in problems[0]
