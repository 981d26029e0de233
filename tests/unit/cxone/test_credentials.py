"""Credentials: environment, secrets file (JSON and KEY=VALUE), masking, clear errors."""

from __future__ import annotations

import json
import pickle

import pytest

from beam_cxone.cxone.credentials import CxoneCredentials
from beam_cxone.cxone.credentials import load_credentials
from beam_cxone.cxone.errors import CxoneConfigError

ENV = {
    "CXONE_CLIENT_ID": "app-id",
    "CXONE_CLIENT_SECRET": "app-secret==",
    "CXONE_ACCESS_KEY_ID": "key-id",
    "CXONE_ACCESS_KEY_SECRET": "key-secret==",
}
SECRETS = ("app-secret==", "key-secret==")


def test_from_environment():
    creds = load_credentials("password", None, ENV)
    assert creds == CxoneCredentials("app-id", "app-secret==", "key-id", "key-secret==")


def test_json_file_wins_over_environment(tmp_path):
    path = tmp_path / "cxone.json"
    path.write_text(json.dumps({"CXONE_CLIENT_SECRET": "from-file=", "OTHER": "ignored"}))
    creds = load_credentials("password", str(path), ENV)
    assert creds.client_secret == "from-file="
    assert creds.client_id == "app-id"  # the rest still comes from the environment


def test_key_value_file(tmp_path):
    path = tmp_path / "cxone.env"
    path.write_text(
        "# CXone app\n"
        "\n"
        "export CXONE_CLIENT_ID=app-id\n"
        'CXONE_CLIENT_SECRET="app-secret=="\n'
        "CXONE_ACCESS_KEY_ID = key-id\n"
        "CXONE_ACCESS_KEY_SECRET=key=secret==\n"
    )
    creds = load_credentials("password", str(path), {})
    assert creds == CxoneCredentials("app-id", "app-secret==", "key-id", "key=secret==")


def test_client_credentials_grant_needs_no_access_key():
    env = {k: v for k, v in ENV.items() if "ACCESS_KEY" not in k}
    creds = load_credentials("client_credentials", None, env)
    assert creds.access_key_id is None and creds.access_key_secret is None


def test_missing_values_are_named_not_shown():
    env = {"CXONE_CLIENT_ID": "app-id", "CXONE_ACCESS_KEY_SECRET": "key-secret=="}
    with pytest.raises(CxoneConfigError) as info:
        load_credentials("password", None, env)
    reason = info.value.reason
    assert reason == (
        "missing CXone credentials for the password grant: CXONE_CLIENT_SECRET, "
        "CXONE_ACCESS_KEY_ID (looked in the environment; use --cxone_credentials_file or the "
        "environment)"
    )
    assert "key-secret" not in reason


def test_empty_values_count_as_missing():
    with pytest.raises(CxoneConfigError, match="CXONE_CLIENT_SECRET"):
        load_credentials("client_credentials", None, {**ENV, "CXONE_CLIENT_SECRET": ""})


def test_bad_line_cites_the_line_number_not_its_content(tmp_path):
    path = tmp_path / "cxone.env"
    path.write_text("CXONE_CLIENT_ID=app-id\nk3y+secret/pasted==\n")
    with pytest.raises(CxoneConfigError) as info:
        load_credentials("password", str(path), {})
    assert info.value.reason == f"credentials file {path}, line 2: expected KEY=VALUE"


def test_malformed_json_file_hides_the_document(tmp_path):
    path = tmp_path / "cxone.json"
    path.write_text('{"CXONE_CLIENT_SECRET": "app-secret==",\n oops}')
    with pytest.raises(CxoneConfigError) as info:
        load_credentials("password", str(path), {})
    assert info.value.reason == f"credentials file {path} is not valid JSON (line 2)"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_json_values_must_be_strings(tmp_path):
    path = tmp_path / "cxone.json"
    path.write_text(json.dumps({"CXONE_CLIENT_ID": 42}))
    with pytest.raises(CxoneConfigError, match="CXONE_CLIENT_ID must be strings"):
        load_credentials("password", str(path), {})


def test_unreadable_file(tmp_path):
    with pytest.raises(CxoneConfigError, match="cannot read credentials file .*No such file"):
        load_credentials("password", str(tmp_path / "absent"), ENV)


def test_unknown_grant():
    with pytest.raises(CxoneConfigError, match="unknown CXone grant 'implicit'"):
        load_credentials("implicit", None, ENV)


@pytest.mark.parametrize("render", [repr, str, lambda c: f"{c}", lambda c: repr([c])])
def test_repr_masks_secrets(render):
    text = render(load_credentials("password", None, ENV))
    assert "app-id" in text and "key-id" in text
    for secret in SECRETS:
        assert secret not in text
    assert "client_secret='***'" in text


def test_credentials_pickle_for_workers():
    creds = load_credentials("password", None, ENV)
    assert pickle.loads(pickle.dumps(creds)) == creds
