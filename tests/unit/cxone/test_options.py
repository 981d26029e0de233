"""`--cxone_*` options: defaults, parsing, and the validated CxoneConfig."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.cxone.errors import CxoneConfigError
from beam_cxone.cxone.options import CxoneConfig
from beam_cxone.cxone.options import CxoneOptions


def test_defaults():
    opts = PipelineOptions([]).view_as(CxoneOptions)
    assert opts.cxone_issuer == "https://cxone.niceincontact.com"
    assert opts.cxone_grant == "password"
    assert opts.cxone_api_version == 32
    assert opts.cxone_timeout_s == 10.0
    assert opts.cxone_validate is False
    assert opts.cxone_skill_ids is None and opts.cxone_point_of_contact_ids is None
    assert CxoneConfig.from_options(PipelineOptions([])) == CxoneConfig()


def test_all_flags():
    options = PipelineOptions(
        [
            "--cxone_issuer=https://cxone.nicecxone.com/",
            "--cxone_grant=client_credentials",
            "--cxone_skill_ids= 101, 102,,101",
            "--cxone_point_of_contact_ids=5001",
            "--cxone_api_version=31",
            "--cxone_credentials_file=/run/secrets/cxone",
            "--cxone_timeout_s=2.5",
            "--cxone_validate",
        ]
    )
    assert CxoneConfig.from_options(options) == CxoneConfig(
        issuer="https://cxone.nicecxone.com",
        grant="client_credentials",
        skill_ids=("101", "102"),
        point_of_contact_ids=("5001",),
        api_version=31,
        credentials_file="/run/secrets/cxone",
        timeout_s=2.5,
        validate=True,
    )


def test_grant_choices_are_enforced_by_argparse():
    with pytest.raises(SystemExit):
        PipelineOptions(["--cxone_grant=implicit"]).view_as(CxoneOptions)


def test_invalid_values_are_reported_together():
    options = PipelineOptions(
        ["--cxone_issuer=cxone.niceincontact.com", "--cxone_api_version=0", "--cxone_timeout_s=0"]
    )
    with pytest.raises(CxoneConfigError) as info:
        CxoneConfig.from_options(options)
    assert info.value.reason == (
        "invalid CXone options: --cxone_issuer must be an https URL, got "
        "'cxone.niceincontact.com'; --cxone_api_version must be >= 1, got 0; "
        "--cxone_timeout_s must be > 0, got 0.0"
    )
