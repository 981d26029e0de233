"""The command line, in one place: every command's argv is read here and nowhere else.

- `split_command(argv)`: the command and its arguments (`run` when the first argument is an option).
- `log_level(args)`: the `--log_level` a command line asks for, before anything else is parsed.
- `parse_pipeline_args(args)`: the pipeline options a command line gives (typed, by their dest) and
  every problem in it, all at once: an unknown option, an invalid value. Beam's own parse drops an
  unknown option with a warning (a typo would silently run with the default) and exits at the first
  invalid value. The parser is Beam's, holding every registered `PipelineOptions` class (Beam's and
  the project's: `beam_cxone.options`, `beam_cxone.cxone.options`).
- `runner_args(args, streaming=...)`: the arguments completed for the chosen runner
  (`beam_cxone.runners.profiles` says what each runner needs; this module only reads and writes argv).
- `backfill_args(args)`: the backfill's own options (`--input`, `--template`, ...) and the rest.
- `wants_help(args)` and `help_parser(...)`: `--help` of a pipeline command lists the project's
  options (grouped, with defaults), not Beam's few hundred.

Commands take a plain `list[str]`; `beam_cxone.commands` dispatches them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone import options as opts
from beam_cxone.cxone import options as cxone_options
from beam_cxone.runners import profiles

__all__ = [
    "COMMANDS",
    "LOG_LEVELS",
    "PROG",
    "ParsedArgs",
    "add_cassandra_options",
    "backfill_args",
    "backfill_parser",
    "cassandra_config",
    "command_parser",
    "help_parser",
    "is_bounded",
    "log_level",
    "option_errors",
    "option_names",
    "parse_pipeline_args",
    "pipeline_options",
    "runner_args",
    "split_command",
    "wants_help",
]

PROG = "python -m beam_cxone"
# Command -> one line for the top-level help; `run` is the default.
COMMANDS = {
    "run": "the job: Kafka -> analytics -> Cassandra, streaming on Prism (the default command); "
           "with --bounded or --stop_timestamp a bounded Kafka backfill",
    "backfill": "re-compute the tables in batch from JSON Lines files or a Kafka time range "
                "(templates, progress, resumable)",
    "schema": "create the Cassandra keyspace and the four tables (idempotent)",
    "generate": "publish a synthetic CXone stream to Kafka, or write it to a JSON Lines file",
    "validate": "check CXone credentials and the configured skills and points of contact",
    "report": "volumes, top alerting customers and dead letters from Cassandra, as text or PNG",
}
# The project's pipeline options, in the order `--help` lists them.
PROJECT_OPTIONS = (opts.KafkaOptions, opts.AnalyticsOptions, opts.CassandraOptions, opts.JobOptions,
                   opts.MonitoringOptions, cxone_options.CxoneOptions)
_UNSET = object()


def _parser(*flags: tuple[str, dict[str, Any]]) -> argparse.ArgumentParser:
    """A small parser that knows only `flags` and never exits (unknown arguments are left over)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    for name, kwargs in flags:
        parser.add_argument(name, **kwargs)
    return parser


def split_command(argv: Iterable[str]) -> tuple[str | None, list[str]]:
    """(command, its arguments). No command name first: `run`; a first word that is not a command:
    (None, argv) - the caller reports it."""
    argv = list(argv)
    if argv and argv[0] in COMMANDS:
        return argv[0], argv[1:]
    if argv and not argv[0].startswith("-"):
        return None, argv
    return "run", argv


def log_level(args: list[str]) -> str:
    parser = _parser(("--log_level", {"default": "INFO"}))
    try:
        return parser.parse_known_args(args)[0].log_level
    except argparse.ArgumentError:  # `--log_level` without a value: the command reports it
        return "INFO"


def wants_help(args: list[str]) -> bool:
    parser = _parser(("-h", {"action": "store_true"}), ("--help", {"action": "store_true"}))
    try:
        known = parser.parse_known_args(args)[0]
    except argparse.ArgumentError:
        return False
    return known.h or known.help


# ----- pipeline options ---------------------------------------------------------------------------


def _beam_parser() -> argparse.ArgumentParser:
    """Beam's parser of every registered PipelineOptions class, set not to exit on an error."""
    captured: list[argparse.ArgumentParser] = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=captured.append)
    parser = captured[0]
    parser.exit_on_error = False  # raise ArgumentError instead of exiting
    return parser


def _option_groups(args: list[str]) -> list[list[str]]:
    """`--name=value`, `--name value` and `--flag` groups of a command line."""
    groups: list[list[str]] = []
    for arg in args:
        if arg.startswith("--") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


# Runners to which Beam passes options it does not know itself (its portable runners hand them to the
# Java job server: `--checkpointing_interval`, say): an unknown option is no error there.
PASS_THROUGH_RUNNERS = ("FlinkRunner",)


class ParsedArgs:
    """What a pipeline command line gives. `given` maps each option it sets to its typed value (by
    dest; an option no registered class knows, by its name, with its text or True); `problems`
    every invalid value and unknown option, in command-line order, as (is_unknown, message)."""

    def __init__(self, given: dict[str, Any], problems: list[tuple[bool, str]]):
        self.given = given
        self.problems = problems

    def get(self, dest: str, default: Any = None) -> Any:
        return self.given.get(dest, default)

    def errors(self, runner: str | None = None) -> list[str]:
        """Every problem, for a run on `runner` (an unknown option is none on a pass-through runner)."""
        passes = runner in PASS_THROUGH_RUNNERS
        return [message for unknown, message in self.problems if not (unknown and passes)]


def parse_pipeline_args(args: list[str]) -> ParsedArgs:
    parser = _beam_parser()
    # Every default becomes a marker, so that an option given with its default value still counts
    # as given (`--direct_num_workers=1` is not the same as no worker count).
    parser.set_defaults(**{dest: _UNSET for dest in vars(parser.parse_known_args([])[0])})
    given: dict[str, Any] = {}
    problems: list[tuple[bool, str]] = []
    for group in _option_groups(args):
        if group[0] in ("-h", "--help"):  # Beam's parser would print its own help and exit
            problems.append((True, f"unknown option {group[0]}"))
            continue
        try:
            known, rest = parser.parse_known_args(group)
        except argparse.ArgumentError as err:
            problems.append((False, str(err)))
            continue
        if rest:
            problems.append((True, f"unknown option {' '.join(group)}"))
            name, eq, value = group[0].lstrip("-").partition("=")
            given.setdefault(name, value if eq else (group[1] if len(group) > 1 else True))
        given.update((k, v) for k, v in vars(known).items() if v is not _UNSET)
    return ParsedArgs(given, problems)


def option_errors(args: list[str]) -> list[str]:
    """Every invalid value and unknown option of a pipeline command line (on the runner it names)."""
    parsed = parse_pipeline_args(args)
    return parsed.errors(profiles.resolve_runner(parsed.get("runner"), streaming=False))


def is_bounded(parsed: ParsedArgs) -> bool:
    """A stop (`--bounded`, `--stop_timestamp`) makes a run bounded."""
    return bool(parsed.get("bounded")) or parsed.get("stop_timestamp") not in (None, "")


def runner_args(args: list[str], *, streaming: bool) -> list[str]:
    """The pipeline arguments completed for the chosen (or default) runner: the command line without
    its `--runner`, then `--runner=RUNNER` (aliases resolved), then what the runner needs and the
    command line does not set (`beam_cxone.runners.profiles`). RunnerSetupError when the runner
    cannot be set up here."""
    parsed = parse_pipeline_args(args)
    runner = profiles.resolve_runner(parsed.get("runner"), streaming=streaming)
    added = profiles.runner_flags(runner, parsed.given, streaming=streaming)
    rest = _parser(("--runner", {})).parse_known_args(args)[1]
    return rest + [f"--runner={runner}"] + added


def pipeline_options(args: list[str], *, streaming: bool) -> PipelineOptions:
    """The PipelineOptions of a command line, completed for its runner. OptionsError lists every
    invalid value and unknown option; RunnerSetupError says what the runner misses here."""
    parsed = parse_pipeline_args(args)
    errors = parsed.errors(profiles.resolve_runner(parsed.get("runner"), streaming=streaming))
    if errors:
        raise opts.OptionsError("\n".join(errors))
    return PipelineOptions(runner_args(args, streaming=streaming))


# ----- backfill -----------------------------------------------------------------------------------


def backfill_parser(prog: str = f"{PROG} backfill") -> argparse.ArgumentParser:
    """The backfill's own options (the rest of its command line are pipeline options)."""
    parser = argparse.ArgumentParser(prog=prog, allow_abbrev=False, add_help=False)
    g = parser.add_argument_group("backfill")
    g.add_argument("--input", default=None, help="File glob of JSON Lines (.gz too); without it, "
                   "a Kafka range (--start_timestamp, --stop_timestamp, --topic).")
    g.add_argument("--template", default=None,
                   help="A backfill template: templates/NAME.yaml or NAME (in --templates_dir).")
    g.add_argument("--param", action="extend", nargs="+", default=[], metavar="NAME=VALUE",
                   help="A template parameter; repeat it or list several.")
    g.add_argument("--list-templates", "--list_templates", dest="list_templates",
                   action="store_true", help="Print every template with its parameters.")
    g.add_argument("--templates_dir", default=None,
                   help="Where templates are looked up. Default: templates/ of the repository.")
    g.add_argument("--no_progress", action="store_true", help="No progress output on stderr.")
    resume = g.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="fresh", action="store_false",
                        help="Files: reuse the parses a stopped run saved, parse only the rest (the "
                        "default); a finished run is not done again.")
    resume.add_argument("--fresh", dest="fresh", action="store_true",
                        help="Files: forget the checkpoint (saved parses, done markers) and start over.")
    parser.set_defaults(fresh=False)
    g.add_argument("--checkpoint_dir", default=None,
                   help="Files: where parses are saved for a resume. Default: OUTPUT_DIR/_checkpoint "
                   "(jsonl), <cache>/backfill-checkpoints/KEYSPACE (cassandra). Every worker must "
                   "see it.")
    return parser


def backfill_args(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(the backfill's own options, the pipeline options). SystemExit(2) with argparse's message
    for an invalid own option (`--resume --fresh`, `--param` without a value)."""
    return backfill_parser().parse_known_args(args)


def option_names(args: list[str]) -> list[str]:
    """The option names a command line gives, known or not (`--name=v`, `--name v`, `--flag`)."""
    return [group[0][2:].split("=", 1)[0] for group in _option_groups(args) if group[0].startswith("--")]


# ----- commands of their own options (not pipelines) ----------------------------------------------

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of a command that is not a pipeline (schema, generate, validate, report): its
    own options are added to it; `--log_level` is every command's."""
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--log_level", default="INFO", choices=LOG_LEVELS,
                        help="Log level. Default INFO.")
    return parser


def add_cassandra_options(parser: argparse.ArgumentParser) -> None:
    """The job's `--cassandra_*` options, same names and defaults."""
    opts.CassandraOptions._add_argparse_args(parser)  # noqa: SLF001 - Beam's convention


def cassandra_config(namespace: argparse.Namespace):
    """The CassandraConfig of a command's `--cassandra_*` options (OptionsError when invalid)."""
    given = {k: v for k, v in vars(namespace).items() if k.startswith("cassandra_")}
    return opts.cassandra_config(PipelineOptions([], **given))


# ----- help ---------------------------------------------------------------------------------------


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written; every option with its default (unless its help says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "Default" in text or "default" in text or action.default in (None, False, [], "==SUPPRESS=="):
            return text
        return super()._get_help_string(action)


def help_parser(prog: str, description: str, *, own: argparse.ArgumentParser | None = None,
                streaming: bool = True) -> argparse.ArgumentParser:
    """A parser for `--help` only: the command's own options, the runner, then the project's
    pipeline options by group. Beam's other options are accepted and named in the epilog."""
    parser = argparse.ArgumentParser(
        prog=prog, usage=f"{prog} [OPTIONS]", description=description, formatter_class=_HelpFormatter,
        parents=[own] if own is not None else [], allow_abbrev=False,
        epilog="Beam's other pipeline options are accepted as well (e.g. --flink_master, "
               "--direct_num_workers, --direct_running_mode, --prism_location); an unknown option "
               "or an invalid value stops the command before anything runs, all of them listed.",
    )
    runner = parser.add_argument_group("runner (Beam's options)")
    default = "PrismRunner" if streaming else "FnApiRunner, one worker process per core"
    runner.add_argument("--runner", default=None,
                        help=f"PrismRunner, FnApiRunner, FlinkRunner (with --flink_master) or any "
                        f"Beam runner. Default: {default}.")
    runner.add_argument("--bootstrap_servers", default="localhost:9092",
                        help="Kafka bootstrap servers, comma-separated. Default localhost:9092.")
    for cls in PROJECT_OPTIONS:
        cls._add_argparse_args(parser)  # noqa: SLF001 - Beam's convention for an options class
    return parser
