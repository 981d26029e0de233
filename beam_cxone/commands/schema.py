"""`python -m beam_cxone schema`: creates the keyspace and the four tables; running it twice changes
nothing."""

from __future__ import annotations

import logging

from beam_cxone import options as opts
from beam_cxone.commands import cmdline
from beam_cxone.console import fail
from beam_cxone.console import held_logs
from beam_cxone.io.cassandra_schema import create_schema

__all__ = ["PROG", "main"]

_LOG = logging.getLogger("beam_cxone")
PROG = "beam_cxone schema"


def _parser():
    parser = cmdline.command_parser(
        "python -m beam_cxone schema",
        "Create the Cassandra keyspace (SimpleStrategy, --cassandra_replication_factor) and the four "
        "tables if they do not exist. Credentials from CASSANDRA_USERNAME/CASSANDRA_PASSWORD.")
    cmdline.add_cassandra_options(parser)
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = cmdline.cassandra_config(args)
    except opts.OptionsError as err:
        return fail(PROG, str(err))
    try:
        with held_logs("cassandra"):  # a failed connect is the one line below, not a traceback
            statements = create_schema(cfg)
    except Exception as err:  # noqa: BLE001 - any driver or schema error ends the command with its name
        return fail(PROG, f"cannot create the schema in {cfg.keyspace} on {','.join(cfg.hosts)}:"
                          f"{cfg.port}: {type(err).__name__}: {' '.join(str(err).split())[:300]}")
    for statement in statements:
        _LOG.info("schema: %s", statement.split("(")[0].strip())
    print(f"schema ready in keyspace {cfg.keyspace}")
    return 0
