"""Fixtures for the integration tier: the real local Kafka and Cassandra of `stack/`.

Each test session gets its own keyspace (`cxone_test_<random>`), so parallel runs and the
developers' own data never meet; it is dropped at the end, and Cassandra is left running.
"""

from __future__ import annotations

import secrets
import subprocess
import uuid
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


def _stack_sh(service: str, command: str) -> None:
    """Runs `stack/<service>.sh COMMAND` (start returns at once when already running)."""
    subprocess.run(
        ["bash", str(REPO_DIR / "stack" / f"{service}.sh"), command],
        cwd=REPO_DIR,
        check=True,
        timeout=300,
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
