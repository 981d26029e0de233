"""`python -m beam_cxone validate`: checks CXone credentials and resources without a pipeline.

    CXONE_CLIENT_ID=... CXONE_CLIENT_SECRET=... CXONE_ACCESS_KEY_ID=... CXONE_ACCESS_KEY_SECRET=... \\
      python -m beam_cxone validate --cxone_skill_ids 1234,5678 --cxone_point_of_contact_ids 42

Exit 0 with a short summary on stdout when valid; exit 2 with one line on stderr otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping

from beam_cxone import console
from beam_cxone.commands import cmdline
from beam_cxone.cxone.credentials import ENV_NAMES
from beam_cxone.cxone.errors import CxoneError
from beam_cxone.cxone.options import CxoneConfig
from beam_cxone.cxone.options import add_cxone_arguments
from beam_cxone.cxone.token import TokenCache
from beam_cxone.cxone.validation import validate_config

__all__ = ["EXIT_INVALID", "EXIT_OK", "PROG", "main"]

PROG = "beam_cxone validate"
EXIT_OK = 0
# argparse also exits 2 on a usage error, so every "not valid" outcome shares one code.
EXIT_INVALID = console.EXIT_INVALID


def main(
    argv: list[str],
    *,
    environ: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
    cache: TokenCache | None = None,
) -> int:
    """Parses `--cxone_*` flags, validates, prints; returns the exit code (never raises CxoneError).

    `environ`, `sleep` and `cache` exist for tests; callers pass only argv.
    """
    parser = cmdline.command_parser(
        "python -m beam_cxone validate",
        "Check CXone authentication and the configured resources. Credentials come from "
        f"{', '.join(ENV_NAMES)} or --cxone_credentials_file.",
    )
    add_cxone_arguments(parser)
    try:
        args, unknown = parser.parse_known_args(argv)
    except SystemExit as exit_:  # --help (0) or a bad value (2), already printed by argparse
        return int(exit_.code or 0)
    if unknown:
        # Names only: someone may have tried to pass a secret as a flag value.
        names = " ".join(_flag_name(arg) for arg in unknown)
        return console.fail(PROG, f"unrecognized arguments: {names} (credentials are read from the environment)")
    try:
        report = validate_config(
            CxoneConfig.from_namespace(args), environ=environ, sleep=sleep, cache=cache
        )
    except CxoneError as err:
        return console.fail(PROG, err.reason)
    print(report.summary())
    return EXIT_OK


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0] if arg.startswith("-") else "<value>"
