"""Fixtures for the integration tier: the real local Cassandra of `stack/`.

Each test session gets its own keyspace (`cxone_test_<random>`), so parallel runs and the
developers' own data never meet; it is dropped at the end, and Cassandra is left running.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from beam_cxone.io.cassandra_schema import create_schema
from beam_cxone.io.cassandra_schema import drop_keyspace
from beam_cxone.io.cassandra_write import CassandraConfig

REPO_DIR = Path(__file__).resolve().parents[2]


def _cassandra_sh(command: str) -> None:
    """Runs `stack/cassandra.sh start|stop` (start returns at once when already running)."""
    subprocess.run(
        ["bash", str(REPO_DIR / "stack" / "cassandra.sh"), command],
        cwd=REPO_DIR,
        check=True,
        timeout=300,
    )


@pytest.fixture(scope="session")
def cassandra_cfg() -> Iterator[CassandraConfig]:
    """A config for a fresh keyspace with the four tables, on the running local Cassandra."""
    _cassandra_sh("start")
    cfg = CassandraConfig(hosts=("127.0.0.1",), keyspace=f"cxone_test_{secrets.token_hex(4)}")
    create_schema(cfg)
    yield cfg
    _cassandra_sh("start")  # a test that stopped Cassandra and failed must not leave it down
    drop_keyspace(cfg)


@pytest.fixture(scope="session")
def cassandra_sh() -> Callable[[str], None]:
    """Runs `stack/cassandra.sh COMMAND`, for tests that stop and restart Cassandra."""
    return _cassandra_sh
