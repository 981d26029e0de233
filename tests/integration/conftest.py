"""Fixtures for the integration tier: the real local Kafka and Cassandra of `stack/`.

Each test session gets its own keyspace (`cxone_test_<random>`), so parallel runs and the
developers' own data never meet; it is dropped at the end, and Cassandra is left running.

No process outlives the run: every process a test starts (a job subprocess, the Prism job server it
starts in turn) inherits the environment variable BEAM_CXONE_TEST_RUN; one that lost its parent is
stopped when its test ends, and all that are left when the session ends (`_stop_leftover_processes`).
The stack's services are started without the marker, so they are never among them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.io.cassandra_schema import drop_keyspace
from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.kafka import create_topic

REPO_DIR = Path(__file__).resolve().parents[2]


KAFKA = "127.0.0.1:9092"

# Inherited by every process the run starts; .ci/pytest.sh sets it to look for survivors afterwards.
RUN_MARKER = "BEAM_CXONE_TEST_RUN"
os.environ.setdefault(RUN_MARKER, f"pytest-{os.getpid()}-{secrets.token_hex(4)}")


class LeftoverProcessWarning(UserWarning):
    """A process the test run started was still running where nothing could stop it any more."""


def _carries_marker(pid: int) -> bool:
    entry = f"{RUN_MARKER}={os.environ[RUN_MARKER]}".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:  # gone meanwhile, or not ours
        return False


def _marked_processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of the processes this run started and that are still
    running: they carry the marker, started after this process, and either descend from it or
    were left without a parent of the run (orphans). Never this process or its ancestors, nor a
    marked process whose parent is not the run's (a shell that exported the marker, its pipes)."""
    me = os.getpid()
    mine = set()
    pid = me
    while pid > 1:
        mine.add(pid)
        pid = _parent_of(pid)
    my_start = _start_ticks(me)
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine or not _carries_marker(int(name)):
            continue
        pid, parent = int(name), _parent_of(int(name))
        if _start_ticks(pid) < my_start:
            continue
        if not _descends_from(pid, me) and (parent in mine or _carries_marker(parent)):
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        found[pid] = (parent, command[:160])
    return found


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from the state field on (field 3), or [] when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _parent_of(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def _start_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else 0


def _stop(processes: dict[int, tuple[int, str]], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL to those still there after `grace_s`."""
    for pid in processes:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    alive = set(processes)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {pid for pid in alive if _running(pid)}
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _descends_from(pid: int, ancestor: int) -> bool:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = _parent_of(pid)
        if pid == ancestor:
            return True
    return False


def _running(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def _describe(processes: dict[int, tuple[int, str]]) -> str:
    return "; ".join(f"pid {pid}: {command}" for pid, (_, command) in sorted(processes.items()))


@pytest.fixture(autouse=True)
def _stop_orphaned_processes() -> Iterator[None]:
    """After each test: a process of this run whose parent is gone (a Prism job server whose job
    was terminated: Beam stops it only from the job's exit handlers) is stopped, and reported."""
    yield
    marked = _marked_processes()
    orphans = {pid: info for pid, info in marked.items() if not _descends_from(pid, os.getpid())}
    if orphans:
        _stop(orphans)
        warnings.warn(
            LeftoverProcessWarning(f"stopped orphaned processes: {_describe(orphans)}"), stacklevel=1
        )


@pytest.fixture(scope="session", autouse=True)
def _stop_leftover_processes() -> Iterator[None]:
    """At the end of the session: every process of this run still running is stopped."""
    yield
    leftovers = _marked_processes()
    if leftovers:
        _stop(leftovers)
        warnings.warn(
            LeftoverProcessWarning(f"stopped at session end: {_describe(leftovers)}"), stacklevel=1
        )


def _stack_sh(service: str, command: str) -> None:
    """Runs `stack/<service>.sh COMMAND` (start returns at once when already running)."""
    subprocess.run(
        ["bash", str(REPO_DIR / "stack" / f"{service}.sh"), command],
        cwd=REPO_DIR,
        check=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != RUN_MARKER},  # a service is not a leftover
    )


def _cassandra_sh(command: str) -> None:
    _stack_sh("cassandra", command)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The running local Kafka broker (started if needed)."""
    _stack_sh("kafka", "start")
    return KAFKA


@pytest.fixture
def fresh_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Creates a new, uniquely named topic: `fresh_topic(partitions=1)`."""

    def make(partitions: int = 1, prefix: str = "it") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_bootstrap, name, partitions)
        return name

    return make


@pytest.fixture(scope="session")
def kafka_sh() -> Callable[[str], None]:
    """Runs `stack/kafka.sh COMMAND`, for tests that restart the broker."""
    return lambda command: _stack_sh("kafka", command)


@pytest.fixture(scope="session")
def cassandra_cfg() -> Iterator[CassandraConfig]:
    """A config for a fresh keyspace with the four tables, on the running local Cassandra."""
    _cassandra_sh("start")
    cfg = CassandraConfig(hosts=("127.0.0.1",), keyspace=f"cxone_test_{secrets.token_hex(4)}")
    create_schema(cfg)
    yield cfg
    _cassandra_sh("start")  # a test that stopped Cassandra and failed must not leave it down
    drop_keyspace(cfg)


@pytest.fixture
def fresh_keyspace() -> Iterator[CassandraConfig]:
    """A keyspace of its own for one test (the job under test writes there), dropped afterwards."""
    _cassandra_sh("start")
    cfg = CassandraConfig(hosts=("127.0.0.1",), keyspace=f"cxone_it_{secrets.token_hex(4)}")
    create_schema(cfg)
    yield cfg
    drop_keyspace(cfg)


@pytest.fixture(scope="session")
def cassandra_sh() -> Callable[[str], None]:
    """Runs `stack/cassandra.sh COMMAND`, for tests that stop and restart Cassandra."""
    return _cassandra_sh


# ----- the secured twins (stack/kafka-secure.sh, stack/cassandra-secure.sh) -------------------------

SECURE_SERVICES = ("kafka-secure", "cassandra-secure")
SECURE_DIR = REPO_DIR / ".stack" / "secure"


@dataclasses.dataclass(frozen=True)
class SecuredStack:
    """The running secured Kafka (SASL_SSL, SCRAM-SHA-512) and Cassandra (TLS, password) and what a
    client needs for them: `env` holds the KAFKA_* and CASSANDRA_* variables of the job."""

    env: dict[str, str]
    bootstrap: str
    expired_bootstrap: str  # the same broker, a listener whose certificate expired in 2020
    cassandra_port: int
    ca_file: str
    other_ca_file: str  # a CA that signed nothing here
    tls_dir: Path

    def cassandra_config(self, keyspace: str) -> CassandraConfig:
        return CassandraConfig(hosts=("127.0.0.1",), port=self.cassandra_port, keyspace=keyspace,
                               tls=True, ca_file=self.ca_file)

    def cassandra_flags(self) -> list[str]:
        return [f"--cassandra_port={self.cassandra_port}", "--cassandra_tls",
                f"--cassandra_ca_file={self.ca_file}"]

    def kafka_kwargs(self) -> dict[str, str]:
        """kafka-python settings of the client user, for the test's own producers and consumers."""
        return {name.lower()[len("KAFKA_"):]: value for name, value in self.env.items()
                if name.startswith("KAFKA_")}

    def secrets(self) -> list[str]:
        return [self.env["KAFKA_SASL_PLAIN_PASSWORD"], self.env["CASSANDRA_PASSWORD"]]

    def process_env(self, **extra: str | None) -> dict[str, str]:
        """This process's environment without any KAFKA_*/CASSANDRA_*/CXONE_* of its own, plus the
        secured stack's and `extra` (a value None drops the variable)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KAFKA_", "CASSANDRA_", "CXONE_"))}
        env.update(self.env)
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    @contextlib.contextmanager
    def login(self) -> Iterator[None]:
        """The client credentials in this process's environment (read_rows, create_schema read
        them there), for the duration of the block."""
        names = [n for n in self.env if n.startswith(("KAFKA_", "CASSANDRA_"))]
        saved = {n: os.environ.get(n) for n in names}
        os.environ.update({n: self.env[n] for n in names})
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="session")
def secured_stack() -> Iterator[SecuredStack]:
    """Starts the secured Kafka and Cassandra with their scripts (both at once: Cassandra's start is
    the slow part), and stops at the end of the session those it started."""
    env = {k: v for k, v in os.environ.items() if k != RUN_MARKER}  # a service is not a leftover
    started = []
    starts = {}
    for service in SECURE_SERVICES:
        script = str(REPO_DIR / "stack" / f"{service}.sh")
        if subprocess.run(["bash", script, "status"], cwd=REPO_DIR, env=env,
                          capture_output=True).returncode != 0:
            started.append(service)
        starts[service] = subprocess.Popen(["bash", script, "start"], cwd=REPO_DIR, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        failed = []
        for service, proc in starts.items():
            out, _ = proc.communicate(timeout=300)
            if proc.returncode != 0:
                failed.append(f"stack/{service}.sh start failed:\n{out[-3000:]}")
        if failed:
            pytest.fail("\n".join(failed))
        client = _read_env_file(SECURE_DIR / "client.env")
        yield SecuredStack(
            env={k: v for k, v in client.items() if k.startswith(("KAFKA_", "CASSANDRA_"))},
            bootstrap=client["SECURE_KAFKA_BOOTSTRAP"],
            expired_bootstrap=client["SECURE_KAFKA_EXPIRED_BOOTSTRAP"],
            cassandra_port=int(client["SECURE_CASSANDRA_PORT"]),
            ca_file=client["SECURE_CA_FILE"],
            other_ca_file=client["SECURE_OTHER_CA_FILE"],
            tls_dir=SECURE_DIR / "tls",
        )
    finally:
        for service in started:
            subprocess.run(["bash", str(REPO_DIR / "stack" / f"{service}.sh"), "stop"], cwd=REPO_DIR,
                           env=env, timeout=120, check=False)
