"""Backfill templates: YAML files that turn `--param key=value` pairs into a backfill's options.

A template (one file per template under `templates/`, the file named after the template) says what a
backfill reads, where it writes and which parameters an operator gives:

    name: files_to_cassandra
    description: Re-computes the four tables from JSON Lines files into Cassandra.
    parameters:
      - {name: input, type: glob, required: true, help: File glob of JSON Lines (.gz too).}
      - {name: keyspace, type: str, default: cxone_analytics, pattern: '[a-z][a-z0-9_]*', help: ...}
    runs:
      source: files            # files | kafka_range
      sink: cassandra          # cassandra | jsonl
      outputs: [interaction_volumes, pattern_alerts, customer_profiles, dead_letters]
      options:                 # backfill option -> value; "{name}" is a parameter's value
        input: "{input}"
        cassandra_keyspace: "{keyspace}"

`Template.resolve(values)` checks every value (unknown, missing, wrongly typed, not matching the
pattern: all problems at once, with the valid parameters listed) and returns the command line of the
plain backfill (`--sink=cassandra --input=... --cassandra_keyspace=...`), which then goes through the
same options validation as a hand-written one. Pure: no Beam, no I/O besides reading the YAML file.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from beam_cxone.parse import Rejected
from beam_cxone.parse import parse_event_time
from beam_cxone.tables import TABLES

__all__ = [
    "PARAMETER_TYPES",
    "SINKS",
    "SOURCES",
    "Parameter",
    "Template",
    "TemplateError",
    "default_templates_dir",
    "find_template",
    "format_listing",
    "load_template",
    "load_templates",
    "parse_param_args",
    "parse_template",
    "template_paths",
]

PARAMETER_TYPES = ("str", "int", "float", "bool", "timestamp", "glob", "path")
# The backfill options each source needs, and those that belong to the other source only.
SOURCES = {
    "files": {"needs": ("input",), "excludes": ("start_timestamp", "stop_timestamp")},
    "kafka_range": {"needs": ("start_timestamp", "stop_timestamp"), "excludes": ("input",)},
}
SINKS = {"cassandra": (), "jsonl": ("output_dir",)}
# Set by the template's own fields or by the command itself, never through `options`.
_RESERVED_OPTIONS = ("sink", "template", "param", "templates_dir", "list_templates")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class TemplateError(ValueError):
    """A template file that is not valid, or parameter values that do not fit a template.

    The message lists every problem, one per line.
    """


def _check_timestamp(text: str) -> None:
    """RFC 3339 with an offset, or epoch-ms digits: the record contract's times (parse.py)."""
    try:
        parse_event_time(int(text) if re.fullmatch(r"-?[0-9]+", text) else text)
    except Rejected:
        reason = "has no UTC offset" if re.search(r"T[0-9:.]+$", text) else "is not a valid time"
        raise ValueError(reason) from None


def _convert(kind: str, text: str) -> Any:
    """The typed value of a parameter's text; ValueError says what is wrong."""
    if kind == "int":
        return int(text)
    if kind == "float":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("is not finite")
        return value
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"is not one of {'/'.join(_TRUE + _FALSE)}")
    if kind == "timestamp":
        _check_timestamp(text)
        return text  # passed on as given: the options parse it themselves
    if kind in ("glob", "path") and not text.strip():
        raise ValueError("is empty")
    return text


_TYPE_HELP = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "timestamp": "RFC 3339 with an offset (2026-11-30T08:00:00Z) or epoch milliseconds",
    "glob": "a file glob",
    "path": "a path",
    "str": "text",
}


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One parameter: its type, whether it is required or its default, an allowed pattern (a regex
    the whole text must match), and help for the listing."""

    name: str
    type: str = "str"
    required: bool = False
    default: str | None = None
    pattern: str | None = None
    help: str = ""

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.fullmatch(self.name):
            problems.append(f"parameter name {self.name!r} must match {_NAME.pattern}")
        if self.type not in PARAMETER_TYPES:
            problems.append(
                f"parameter {self.name}: type {self.type!r} is not one of "
                f"{', '.join(PARAMETER_TYPES)}"
            )
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as err:
                problems.append(
                    f"parameter {self.name}: pattern {self.pattern!r} is not a regex: {err}"
                )
        if self.required and self.default is not None:
            problems.append(f"parameter {self.name}: required parameters have no default")
        if not problems and self.default is not None:
            problem = self.check(self.default)
            if problem:
                problems.append(f"parameter {self.name}: default {problem}")
        if problems:
            raise TemplateError("\n".join(problems))

    def check(self, text: str) -> str | None:
        """What is wrong with a value's text, or None when it fits."""
        try:
            _convert(self.type, text)
        except ValueError as err:
            detail = f" ({err})" if str(err) and "invalid literal" not in str(err) else ""
            return f"{text!r} is not {_TYPE_HELP[self.type]}{detail}"
        if self.pattern is not None and not re.fullmatch(self.pattern, text):
            return f"{text!r} does not match the pattern {self.pattern}"
        return None

    def value(self, text: str | None) -> Any:
        """The typed value of a checked text (None stays None: an optional parameter not given)."""
        return None if text is None else _convert(self.type, text)

    def describe(self) -> str:
        """One line of the listing: name, type, required or default, help."""
        if self.required:
            need = "required"
        elif self.default is not None:
            need = f"default {self.default}"
        else:
            need = "optional"
        pattern = f" Pattern: {self.pattern}" if self.pattern else ""
        return f"{self.name:<20} {self.type:<9} {need:<28} {self.help}{pattern}".rstrip()


@dataclasses.dataclass(frozen=True)
class Template:
    """A validated template. `options` maps backfill option names to values in which `{name}`
    stands for a parameter's value; `path` is the file it came from (None when built in code)."""

    name: str
    description: str
    parameters: tuple[Parameter, ...]
    source: str
    sink: str
    outputs: tuple[str, ...]
    options: tuple[tuple[str, Any], ...]
    path: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.fullmatch(self.name):
            problems.append(f"name {self.name!r} must match {_NAME.pattern}")
        if not self.description.strip():
            problems.append("description is empty")
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"parameters declared twice: {', '.join(duplicates)}")
        if self.source not in SOURCES:
            problems.append(f"runs.source {self.source!r} is not one of {', '.join(SOURCES)}")
        if self.sink not in SINKS:
            problems.append(f"runs.sink {self.sink!r} is not one of {', '.join(SINKS)}")
        unknown_tables = [t for t in self.outputs if t not in TABLES]
        if unknown_tables or sorted(self.outputs) != sorted(TABLES):
            problems.append(
                f"runs.outputs must list the tables a backfill writes, each once: "
                f"{', '.join(TABLES)}"
            )
        keys = [k for k, _ in self.options]
        for key in keys:
            if not _NAME.fullmatch(key):
                problems.append(f"runs.options: {key!r} is not an option name")
            elif key in _RESERVED_OPTIONS:
                problems.append(
                    f"runs.options: {key} cannot be set there (use runs.sink)"
                    if key == "sink"
                    else f"runs.options: {key} is reserved"
                )
        if self.source in SOURCES:
            for key in SOURCES[self.source]["needs"]:
                if key not in keys:
                    problems.append(f"runs.options: source {self.source} needs option {key}")
            for key in SOURCES[self.source]["excludes"]:
                if key in keys:
                    problems.append(
                        f"runs.options: option {key} does not belong to source {self.source}"
                    )
        for key in SINKS.get(self.sink, ()):
            if key not in keys:
                problems.append(f"runs.options: sink {self.sink} needs option {key}")
        used = set()
        for key, value in self.options:
            for ref in _PLACEHOLDER.findall(str(value)):
                used.add(ref)
                if ref not in names:
                    problems.append(f"runs.options.{key}: {{{ref}}} is not a declared parameter")
        unused = [n for n in names if n not in used]
        if unused:
            problems.append(f"parameters not used by runs.options: {', '.join(unused)}")
        if problems:
            raise TemplateError(f"template {self.name}: " + "\n  ".join(problems))

    def usage(self) -> str:
        """The valid parameters, one per line (error messages and the listing)."""
        lines = [f"parameters of template {self.name} (--param NAME=VALUE):"]
        lines += ["  " + p.describe() for p in self.parameters]
        return "\n".join(lines)

    def check_values(self, values: Mapping[str, str]) -> dict[str, Any]:
        """Typed values of every parameter (defaults filled in); TemplateError lists every problem
        and the valid parameters."""
        problems = []
        names = [p.name for p in self.parameters]
        for name in values:
            if name not in names:
                problems.append(f"unknown parameter {name!r}")
        typed: dict[str, Any] = {}
        for p in self.parameters:
            text = values.get(p.name, p.default)
            if text is None:
                if p.required:
                    problems.append(f"missing required parameter {p.name!r}")
                typed[p.name] = None
                continue
            problem = p.check(text)
            if problem:
                problems.append(f"parameter {p.name}: {problem}")
            else:
                typed[p.name] = p.value(text)
        if problems:
            raise TemplateError(
                f"template {self.name}: invalid parameters:\n  "
                + "\n  ".join(problems)
                + "\n"
                + self.usage()
            )
        return typed

    def resolve(self, values: Mapping[str, str]) -> list[str]:
        """The plain backfill's command line for these parameter values.

        An option whose value is exactly one parameter takes that parameter's typed value: a bool
        becomes a bare `--flag` (true) or nothing (false), an optional parameter not given leaves
        the option out (its own default applies).
        """
        typed = self.check_values(values)
        argv = [f"--sink={self.sink}"]
        for key, raw in self.options:
            if isinstance(raw, bool):
                value: Any = raw
            else:
                text = str(raw)
                whole = _PLACEHOLDER.fullmatch(text)
                refs = _PLACEHOLDER.findall(text)
                if any(typed[ref] is None for ref in refs):
                    continue
                if whole:
                    value = typed[whole.group(1)]
                else:
                    value = _PLACEHOLDER.sub(lambda m: _text(typed[m.group(1)]), text)
            if value is True:
                argv.append(f"--{key}")
            elif value is not False:
                argv.append(f"--{key}={_text(value)}")
        return argv

    def listing(self) -> str:
        """Name, description, what it runs, and its parameters."""
        where = f"  ({self.path})" if self.path else ""
        return "\n".join(
            [
                f"{self.name}{where}",
                f"  {' '.join(self.description.split())}",
                f"  runs: {self.source} -> {self.sink} ({', '.join(self.outputs)})",
                "  " + self.usage().replace("\n", "\n  "),
            ]
        )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _yaml_text(value: Any) -> str | None:
    """A YAML scalar as the text an operator would type (`true`, `10`, `cxone_analytics`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise TemplateError(f"{value!r} is not a scalar")


_TEMPLATE_KEYS = {"name", "description", "parameters", "runs"}
_PARAMETER_KEYS = {"name", "type", "required", "default", "pattern", "help"}
_RUNS_KEYS = {"source", "sink", "outputs", "options"}


def _extra_keys(where: str, found: Mapping, allowed: set[str]) -> list[str]:
    extra = sorted(set(found) - allowed)
    return (
        [
            f"{where}: unknown keys {', '.join(map(str, extra))} "
            f"(allowed: {', '.join(sorted(allowed))})"
        ]
        if extra
        else []
    )


def parse_template(data: Any, path: str | None = None) -> Template:
    """A Template from the YAML document's data; TemplateError lists what is wrong."""
    label = path or "template"
    if not isinstance(data, Mapping):
        raise TemplateError(
            f"{label}: a template is a mapping with {', '.join(sorted(_TEMPLATE_KEYS))}"
        )
    problems = _extra_keys(label, data, _TEMPLATE_KEYS)
    missing = sorted(k for k in _TEMPLATE_KEYS if k not in data)
    if missing:
        problems.append(f"{label}: missing {', '.join(missing)}")
    runs = data.get("runs") or {}
    if not isinstance(runs, Mapping):
        problems.append(f"{label}: runs must be a mapping")
        runs = {}
    problems += _extra_keys(f"{label}: runs", runs, _RUNS_KEYS)
    options = runs.get("options") or {}
    if not isinstance(options, Mapping):
        problems.append(f"{label}: runs.options must be a mapping of option -> value")
        options = {}
    outputs = runs.get("outputs") or []
    if not isinstance(outputs, list):
        problems.append(f"{label}: runs.outputs must be a list of tables")
        outputs = []
    parameters = []
    raw_parameters = data.get("parameters") or []
    if not isinstance(raw_parameters, list):
        problems.append(f"{label}: parameters must be a list")
        raw_parameters = []
    for i, item in enumerate(raw_parameters):
        if not isinstance(item, Mapping) or "name" not in item:
            problems.append(f"{label}: parameters[{i}] must be a mapping with a name")
            continue
        problems += _extra_keys(f"{label}: parameter {item['name']}", item, _PARAMETER_KEYS)
        if not isinstance(item.get("required", False), bool):
            problems.append(f"{label}: parameter {item['name']}: required must be true or false")
            continue
        try:
            parameters.append(
                Parameter(
                    name=str(item["name"]),
                    type=str(item.get("type", "str")),
                    required=item.get("required", False),
                    default=_yaml_text(item.get("default")),
                    pattern=None if item.get("pattern") is None else str(item["pattern"]),
                    help=" ".join(str(item.get("help", "")).split()),
                )
            )
        except TemplateError as err:
            problems.append(f"{label}: {err}")
    for key, value in options.items():
        if value is not None and not isinstance(value, (str, int, float, bool)):
            problems.append(f"{label}: runs.options.{key} must be a scalar")
    if problems:
        raise TemplateError("\n  ".join(problems))
    template = Template(
        name=str(data["name"]),
        description=" ".join(str(data["description"] or "").split()),
        parameters=tuple(parameters),
        source=str(runs.get("source")),
        sink=str(runs.get("sink")),
        outputs=tuple(str(t) for t in outputs),
        options=tuple((str(k), v) for k, v in options.items()),
        path=path,
    )
    if path is not None and Path(path).stem != template.name:
        raise TemplateError(
            f"{label}: the file must be named after the template ({template.name}.yaml)"
        )
    return template


def load_template(path: str | Path) -> Template:
    """Reads and validates one template file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise TemplateError(f"cannot read template {path}: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise TemplateError(f"{path}: not valid YAML: {err}") from None
    return parse_template(data, str(path))


def default_templates_dir() -> Path:
    """`templates/` of the repository this package lives in, else of the working directory."""
    beside_package = Path(__file__).resolve().parents[1] / "templates"
    return beside_package if beside_package.is_dir() else Path.cwd() / "templates"


def template_paths(directory: str | Path) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))


def load_templates(directory: str | Path) -> tuple[list[Template], list[str]]:
    """Every template of a directory, and the problems of those that are not valid."""
    templates, problems = [], []
    for path in template_paths(directory):
        try:
            templates.append(load_template(path))
        except TemplateError as err:
            problems.append(str(err))
    return templates, problems


def find_template(spec: str, directory: str | Path) -> Template:
    """A template by path (`templates/NAME.yaml`) or by name (looked up in `directory`)."""
    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        return load_template(spec)
    path = Path(directory) / f"{spec}.yaml"
    if not path.is_file():
        names = [p.stem for p in template_paths(directory)]
        raise TemplateError(
            f"no template {spec!r} in {directory}; templates: {', '.join(names) or '(none)'}"
        )
    return load_template(path)


def parse_param_args(items: Iterable[str]) -> dict[str, str]:
    """`key=value` items of `--param` into a dict; TemplateError for malformed or repeated ones."""
    values: dict[str, str] = {}
    problems = []
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--param {item!r} is not NAME=VALUE")
        elif key in values:
            problems.append(f"--param {key} given twice")
        else:
            values[key] = value
    if problems:
        raise TemplateError("\n  ".join(problems))
    return values


def format_listing(templates: Iterable[Template]) -> str:
    """The text of `backfill --list-templates`."""
    return "\n\n".join(t.listing() for t in templates)
