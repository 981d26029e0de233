"""Start-up validation: the whole chain, collected 404s, and the pipeline entry points."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.cxone.errors import CxoneConfigError
from beam_cxone.cxone.errors import CxoneNotFoundError
from beam_cxone.cxone.errors import CxonePermissionError
from beam_cxone.cxone.options import CxoneConfig
from beam_cxone.cxone.validation import ValidationReport
from beam_cxone.cxone.validation import validate_config
from beam_cxone.cxone.validation import validate_if_requested
from beam_cxone.cxone.validation import validate_or_raise
from tests.support.cxone_stub import CxoneStub
from tests.support.cxone_stub import Reply


def config(stub: CxoneStub, **overrides) -> CxoneConfig:
    values = dict(issuer=stub.url, skill_ids=("101", "102"), point_of_contact_ids=("5001",))
    return CxoneConfig(**{**values, **overrides})


def test_valid_configuration(cxone_stub, sleeps):
    report = validate_config(config(cxone_stub), environ=cxone_stub.env(), sleep=sleeps)
    assert report == ValidationReport(
        issuer=cxone_stub.url,
        grant="password",
        token_endpoint=f"{cxone_stub.url}/auth/token",
        tenant_id=CxoneStub.TENANT_ID,
        api_endpoint=cxone_stub.url,
        api_version=32,
        skill_ids=("101", "102"),
        point_of_contact_ids=("5001",),
    )
    assert [s.route for s in cxone_stub.seen] == [
        "discovery",
        "token",
        "tenant",
        "skill:101",
        "skill:102",
        "point_of_contact:5001",
    ]
    assert sleeps == []


def test_one_missing_id_is_named(cxone_stub):
    with pytest.raises(CxoneNotFoundError) as info:
        validate_config(config(cxone_stub, skill_ids=("101", "404")), environ=cxone_stub.env())
    assert info.value.reason == (
        f"skill 404 does not exist in CXone tenant {CxoneStub.TENANT_ID} (HTTP 404); "
        "check --cxone_skill_ids"
    )
    assert (info.value.kind, info.value.resource_id) == ("skill", "404")
    assert cxone_stub.hits["point_of_contact:5001"] == 1  # checking went on


def test_every_missing_id_is_reported_in_one_line(cxone_stub):
    cfg = config(cxone_stub, skill_ids=("7",), point_of_contact_ids=("5001", "8"))
    with pytest.raises(CxoneNotFoundError) as info:
        validate_config(cfg, environ=cxone_stub.env())
    tenant = CxoneStub.TENANT_ID
    assert info.value.reason == (
        f"skill 7 does not exist in CXone tenant {tenant} (HTTP 404); check --cxone_skill_ids; "
        f"point of contact 8 does not exist in CXone tenant {tenant} (HTTP 404); "
        "check --cxone_point_of_contact_ids"
    )


def test_403_stops_at_the_first_resource(cxone_stub):
    cxone_stub.always("skill", Reply(403))
    with pytest.raises(CxonePermissionError):
        validate_config(config(cxone_stub), environ=cxone_stub.env())
    assert cxone_stub.hits["skill"] == 1 and cxone_stub.hits["point_of_contact"] == 0


def test_missing_credentials_fail_before_any_request(cxone_stub):
    with pytest.raises(CxoneConfigError, match="CXONE_CLIENT_ID"):
        validate_config(config(cxone_stub), environ={})
    assert cxone_stub.seen == []


def test_validate_or_raise_from_pipeline_options(cxone_stub, sleeps):
    options = PipelineOptions(
        [
            f"--cxone_issuer={cxone_stub.url}",
            "--cxone_skill_ids=101",
            "--cxone_point_of_contact_ids=5001",
            "--streaming",
        ]
    )
    report = validate_or_raise(options, environ=cxone_stub.env(), sleep=sleeps)
    assert report.skill_ids == ("101",) and report.point_of_contact_ids == ("5001",)


def test_validate_if_requested_skips_without_the_flag(cxone_stub):
    assert validate_if_requested(PipelineOptions([f"--cxone_issuer={cxone_stub.url}"])) is None
    assert cxone_stub.seen == []


def test_validate_if_requested_runs_with_the_flag(cxone_stub, monkeypatch):
    for name, value in cxone_stub.env().items():
        monkeypatch.setenv(name, value)
    options = PipelineOptions([f"--cxone_issuer={cxone_stub.url}", "--cxone_validate"])
    report = validate_if_requested(options)
    assert report is not None and report.tenant_id == CxoneStub.TENANT_ID
