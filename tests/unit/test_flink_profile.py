"""The FlinkRunner profile's job-server jar, without the network: which jar is used, the fetch done
with Beam's own download code (from a file URL here), and the one-line error when a fetch fails
(a port nothing listens on stands for a network that is not there)."""

from __future__ import annotations

import pytest
from apache_beam.utils.subprocess_server import JavaJarServer

from beam_cxone.commands.cmdline import runner_args
from beam_cxone.runners import profiles
from beam_cxone.runners.profiles import RunnerSetupError

JAR_NAME = "beam-runners-flink-1.20-job-server-2.77.0.jar"
COORDINATES = "org.apache.beam:beam-runners-flink-1.20-job-server:2.77.0"
NOWHERE = f"http://127.0.0.1:1/maven2/{JAR_NAME}"  # connection refused at once


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty local and Beam jar caches; returns (local cache jars dir, Beam's jar cache)."""
    monkeypatch.setenv("BEAM_CXONE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(JavaJarServer, "JAR_CACHE", str(tmp_path / "beam-jars"))
    return tmp_path / "cache" / "jars", tmp_path / "beam-jars"


def flink_jar_arg(args: list[str]) -> str:
    return next(a.split("=", 1)[1] for a in args if a.startswith("--flink_job_server_jar="))


def test_the_url_is_the_one_beams_flink_runner_fetches():
    assert profiles.flink_job_server_url() == (
        "https://repo.maven.apache.org/maven2/org/apache/beam/"
        f"beam-runners-flink-1.20-job-server/2.77.0/{JAR_NAME}"
    )


def test_no_jar_anywhere_is_fetched_into_the_local_cache(caches, tmp_path, monkeypatch):
    source = tmp_path / "mirror" / JAR_NAME
    source.parent.mkdir()
    source.write_bytes(b"PK-job-server")
    monkeypatch.setattr(profiles, "flink_job_server_url", lambda: source.as_uri())
    args = runner_args(["--runner=FlinkRunner"], streaming=True)
    jars, _ = caches
    assert flink_jar_arg(args) == str(jars / JAR_NAME)
    assert (jars / JAR_NAME).read_bytes() == b"PK-job-server"
    assert sorted(p.name for p in jars.iterdir()) == [JAR_NAME]  # no partial file left
    # Fetched once: the next run takes the cached jar without looking at the URL.
    monkeypatch.setattr(profiles, "flink_job_server_url", lambda: pytest.fail("fetched twice"))
    assert flink_jar_arg(runner_args(["--runner=FlinkRunner"], streaming=False)) == str(
        jars / JAR_NAME
    )


def test_a_jar_in_beams_own_cache_is_used_without_a_fetch(caches, monkeypatch):
    _, beam_jars = caches
    beam_jars.mkdir()
    (beam_jars / JAR_NAME).write_bytes(b"PK")
    monkeypatch.setattr(profiles, "flink_job_server_url", lambda: pytest.fail("fetched"))
    args = runner_args(["--runner=FlinkRunner"], streaming=True)
    assert flink_jar_arg(args) == str(beam_jars / JAR_NAME)


def test_a_failed_fetch_is_a_one_line_error(caches, monkeypatch):
    monkeypatch.setattr(profiles, "flink_job_server_url", lambda: NOWHERE)
    with pytest.raises(RunnerSetupError) as err:
        runner_args(["--runner=FlinkRunner", "--flink_master=127.0.0.1:8081"], streaming=True)
    message = str(err.value)
    jars, _ = caches
    assert "\n" not in message
    assert message.startswith(
        f"Beam's Flink job server jar ({COORDINATES}) could not be fetched from {NOWHERE}: "
    )
    assert "Connection refused" in message  # why, from the download itself
    assert message.endswith(f". Place it at {jars / JAR_NAME} or pass --flink_job_server_jar")
    assert "machine" not in message
    assert not (jars / JAR_NAME).exists() and not (jars / f"{JAR_NAME}.tmp").exists()


def test_a_given_jar_is_never_fetched(caches, monkeypatch):
    monkeypatch.setattr(profiles, "flink_job_server_url", lambda: pytest.fail("fetched"))
    args = runner_args(["--runner=FlinkRunner", "--flink_job_server_jar=/opt/js.jar"], streaming=True)
    assert flink_jar_arg(args) == "/opt/js.jar"
