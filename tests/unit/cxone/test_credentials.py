"""Credentials: environment, secrets file (JSON and KEY=VALUE), masking, clear errors."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

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


def write_private(path: Path, text: str) -> None:
    """A secrets file as it must be: readable by its owner only (0600)."""
    path.write_text(text)
    path.chmod(0o600)


def test_from_environment():
    creds = load_credentials("password", None, ENV)
    assert creds == CxoneCredentials("app-id", "app-secret==", "key-id", "key-secret==")


def test_json_file_wins_over_environment(tmp_path):
    path = tmp_path / "cxone.json"
    write_private(path, json.dumps({"CXONE_CLIENT_SECRET": "from-file=", "OTHER": "ignored"}))
    creds = load_credentials("password", str(path), ENV)
    assert creds.client_secret == "from-file="
    assert creds.client_id == "app-id"  # the rest still comes from the environment


def test_key_value_file(tmp_path):
    path = tmp_path / "cxone.env"
    write_private(
        path,
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
    write_private(path, "CXONE_CLIENT_ID=app-id\nk3y+secret/pasted==\n")
    with pytest.raises(CxoneConfigError) as info:
        load_credentials("password", str(path), {})
    assert info.value.reason == f"credentials file {path}, line 2: expected KEY=VALUE"


def test_malformed_json_file_hides_the_document(tmp_path):
    path = tmp_path / "cxone.json"
    write_private(path, '{"CXONE_CLIENT_SECRET": "app-secret==",\n oops}')
    with pytest.raises(CxoneConfigError) as info:
        load_credentials("password", str(path), {})
    assert info.value.reason == f"credentials file {path} is not valid JSON (line 2)"
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_json_values_must_be_strings(tmp_path):
    path = tmp_path / "cxone.json"
    write_private(path, json.dumps({"CXONE_CLIENT_ID": 42}))
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


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_file_others_can_open_is_refused_in_one_line(tmp_path, mode):
    path = tmp_path / "cxone.env"
    write_private(path, "CXONE_CLIENT_ID=app-id\nCXONE_CLIENT_SECRET=app-secret==\n")
    path.chmod(mode)
    with pytest.raises(CxoneConfigError) as info:
        load_credentials("client_credentials", str(path), {})
    assert info.value.reason == (
        f"credentials file {path} is open to group or others (mode {mode:04o}, must be 0600 or "
        f"narrower): refusing to use it; run chmod 600 {path}"
    )
    assert "\n" not in info.value.reason and "app-secret" not in info.value.reason


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_file_only_its_owner_can_read_is_used(tmp_path, mode):
    path = tmp_path / "cxone.env"
    write_private(path, "CXONE_CLIENT_ID=app-id\nCXONE_CLIENT_SECRET=app-secret==\n")
    path.chmod(mode)
    assert load_credentials("client_credentials", str(path), {}).client_secret == "app-secret=="


def test_the_mode_of_a_symlinks_target_counts(tmp_path):
    target = tmp_path / "real.env"
    write_private(target, "CXONE_CLIENT_ID=app-id\nCXONE_CLIENT_SECRET=app-secret==\n")
    link = tmp_path / "link.env"
    os.symlink(target, link)
    assert load_credentials("client_credentials", str(link), {}).client_id == "app-id"
    target.chmod(0o644)
    with pytest.raises(CxoneConfigError, match="mode 0644"):
        load_credentials("client_credentials", str(link), {})


def test_the_cli_refuses_a_readable_file_with_one_line(tmp_path, capsys):
    from beam_cxone.commands.validate import main as run_validate

    path = tmp_path / "cxone.json"
    path.write_text(json.dumps(ENV))
    path.chmod(0o644)
    assert run_validate([f"--cxone_credentials_file={path}"], environ={}) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mode 0644" in err and "chmod 600" in err
    assert not any(secret in err for secret in SECRETS)


def test_the_job_refuses_a_readable_file_before_it_is_built(tmp_path, capsys, monkeypatch):
    from beam_cxone import commands
    from beam_cxone.commands import run as run_command

    path = tmp_path / "cxone.env"
    path.write_text("CXONE_CLIENT_ID=app-id\nCXONE_CLIENT_SECRET=app-secret==\n")
    path.chmod(0o640)
    built = []
    monkeypatch.setattr(run_command, "build_streaming", lambda *a, **k: built.append(a))
    code = commands.main(["--runner=PrismRunner", "--prism_location=/nonexistent/prism", "--topic=t",
                     "--cxone_validate", "--cxone_issuer=http://127.0.0.1:9",
                     f"--cxone_credentials_file={path}"])
    assert code == 2 and built == []
    err = capsys.readouterr().err
    assert err == (f"beam_cxone: CXone validation failed: credentials file {path} is open to group or "
                   f"others (mode 0640, must be 0600 or narrower): refusing to use it; run chmod 600 "
                   f"{path}\n")
