"""The Cassandra keyspace and tables, generated from `beam_cxone.tables`, plus small read helpers.

`create_schema` is idempotent (`CREATE ... IF NOT EXISTS`) and then checks that the tables in the
cluster match `tables.py`, because IF NOT EXISTS silently keeps an older, different table.
`read_rows`, `truncate` and `drop_keyspace` serve tests, benchmarks and reports, not the pipeline.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from cassandra.cluster import Session

from beam_cxone.io.cassandra_write import CassandraConfig
from beam_cxone.io.cassandra_write import open_session
from beam_cxone.io.cassandra_write import row_from_cql
from beam_cxone.io.cassandra_write import to_cql_value
from beam_cxone.tables import TABLES
from beam_cxone.tables import Table

__all__ = [
    "SchemaMismatchError",
    "create_schema",
    "describe_schema",
    "drop_keyspace",
    "keyspace_ddl",
    "read_rows",
    "schema_ddl",
    "table_ddl",
    "truncate",
]

# Schema changes wait for agreement; DDL on a busy node can take longer than a write.
_DDL_TIMEOUT_S = 60.0


class SchemaMismatchError(RuntimeError):
    """A table exists in the cluster with columns or keys other than `tables.py` describes."""


def _replication_literal(replication: dict[str, Any]) -> str:
    items = []
    for key, value in replication.items():
        literal = (
            str(value) if isinstance(value, int) and not isinstance(value, bool) else f"'{value}'"
        )
        items.append(f"'{key}': {literal}")
    return "{" + ", ".join(items) + "}"


def keyspace_ddl(keyspace: str, replication: dict[str, Any]) -> str:
    """CREATE KEYSPACE IF NOT EXISTS; an existing keyspace keeps its replication."""
    return (
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} "
        f"WITH replication = {_replication_literal(replication)}"
    )


def table_ddl(keyspace: str, table: Table) -> str:
    """CREATE TABLE IF NOT EXISTS with PRIMARY KEY ((partition columns), clustering columns)."""
    columns = ", ".join(f"{name} {cql_type}" for name, cql_type in table.columns)
    key = "(" + ", ".join(table.partition_key) + ")"
    if table.clustering_key:
        key += ", " + ", ".join(table.clustering_key)
    return f"CREATE TABLE IF NOT EXISTS {keyspace}.{table.name} ({columns}, PRIMARY KEY ({key}))"


def schema_ddl(cfg: CassandraConfig) -> list[str]:
    """The keyspace, then the four tables, in the order they are created."""
    return [keyspace_ddl(cfg.keyspace, cfg.replication)] + [
        table_ddl(cfg.keyspace, table) for table in TABLES.values()
    ]


@contextlib.contextmanager
def _session(cfg: CassandraConfig) -> Iterator[Session]:
    cluster, session = open_session(cfg)
    try:
        yield session
    finally:
        cluster.shutdown()


def _describe(session: Session, keyspace: str) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        "SELECT table_name, column_name, type, kind, position FROM system_schema.columns "
        "WHERE keyspace_name = %s",
        (keyspace,),
    )
    found: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r.table_name, r.kind, r.position, r.column_name)):
        t = found.setdefault(
            r.table_name, {"columns": {}, "partition_key": [], "clustering_key": []}
        )
        t["columns"][r.column_name] = r.type
        if r.kind == "partition_key":
            t["partition_key"].append(r.column_name)
        elif r.kind == "clustering":
            t["clustering_key"].append(r.column_name)
    return {
        name: {k: (tuple(v) if isinstance(v, list) else v) for k, v in t.items()}
        for name, t in found.items()
    }


def describe_schema(cfg: CassandraConfig) -> dict[str, dict[str, Any]]:
    """What the cluster holds for cfg.keyspace: per table its column types and key columns."""
    with _session(cfg) as session:
        return _describe(session, cfg.keyspace)


def _expected(table: Table) -> dict[str, Any]:
    return {
        "columns": dict(table.columns),
        "partition_key": table.partition_key,
        "clustering_key": table.clustering_key,
    }


def create_schema(cfg: CassandraConfig) -> list[str]:
    """Creates the keyspace and the four tables if absent; returns the DDL it ran.

    Raises SchemaMismatchError when an existing table differs from `tables.py`.
    """
    statements = schema_ddl(cfg)
    with _session(cfg) as session:
        for ddl in statements:
            session.execute(ddl, timeout=_DDL_TIMEOUT_S)
        actual = _describe(session, cfg.keyspace)
    wrong = [name for name, table in TABLES.items() if actual.get(name) != _expected(table)]
    if wrong:
        raise SchemaMismatchError(
            f"tables in {cfg.keyspace} differ from tables.py: {', '.join(wrong)}"
        )
    return statements


def read_rows(
    cfg: CassandraConfig, table: Table, where: dict[str, Any] | None = None
) -> list[dict]:
    """All rows of a table (or those matching `where`, column -> pipeline value) as pipeline dicts,
    sorted by primary key. Uses ALLOW FILTERING with `where`: for tests and small reports only.
    """
    cql = f"SELECT {', '.join(table.column_names)} FROM {cfg.keyspace}.{table.name}"
    values: list[Any] = []
    if where:
        unknown = sorted(set(where) - set(table.column_names))
        if unknown:
            raise ValueError(f"{table.name} has no columns {unknown}")
        cql += " WHERE " + " AND ".join(f"{c} = ?" for c in where) + " ALLOW FILTERING"
        values = [to_cql_value(table.column_type(c), v) for c, v in where.items()]
    with _session(cfg) as session:
        statement = session.prepare(cql)
        rows = [row_from_cql(table, r) for r in session.execute(statement, values)]
    return sorted(rows, key=table.key_of)


def truncate(cfg: CassandraConfig, table: Table) -> None:
    """Empties one table (tests, benchmarks)."""
    with _session(cfg) as session:
        session.execute(f"TRUNCATE {cfg.keyspace}.{table.name}", timeout=_DDL_TIMEOUT_S)


def drop_keyspace(cfg: CassandraConfig) -> None:
    """Drops cfg.keyspace and its tables (test keyspaces)."""
    with _session(cfg) as session:
        session.execute(f"DROP KEYSPACE IF EXISTS {cfg.keyspace}", timeout=_DDL_TIMEOUT_S)
