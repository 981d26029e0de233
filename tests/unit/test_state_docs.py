"""The state and timer tables of docs/ARCHITECTURE.md and docs/OPERATIONS.md match the code: they are the
savepoint schema an operator upgrading on Flink relies on, so a renamed or added state or timer must
show up there."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from apache_beam.transforms.userstate import StateSpec
from apache_beam.transforms.userstate import TimerSpec

from beam_cxone.transforms import customers

DOCS = Path(__file__).resolve().parents[2] / "docs"
STEP = "JoinProfilesAndDetectPatterns/CustomerTimeline"


def _specs(cls) -> tuple[set[str], set[str]]:
    states = {v.name for _, v in inspect.getmembers(cls) if isinstance(v, StateSpec)}
    # Beam names a timer's spec "ts-<name>"; the docs and savepoints know it by <name>.
    timers = {v.name.removeprefix("ts-") for _, v in inspect.getmembers(cls) if isinstance(v, TimerSpec)}
    return states, timers


def _row(doc: str, step: str) -> str:
    rows = [line for line in (DOCS / doc).read_text().splitlines() if line.startswith(f"| `{step}`")]
    assert len(rows) == 1, f"{doc}: one table row for {step}, found {len(rows)}"
    return rows[0]


def test_the_customer_step_has_one_state_cell_and_one_timer():
    assert _specs(customers._CustomerTimelineFn) == ({"timeline"}, {"wake"})


def test_operations_guide_lists_exactly_the_state_and_timers_of_the_code():
    states, timers = _specs(customers._CustomerTimelineFn)
    cells = _row("OPERATIONS.md", STEP).split("|")[2]
    assert set(re.findall(r"`([a-z_]+)`", cells)) == states | timers


def test_architecture_state_table_names_the_state_and_the_timer():
    states, timers = _specs(customers._CustomerTimelineFn)
    columns = _row("ARCHITECTURE.md", STEP).split("|")
    assert set(re.findall(r"^ `([a-z_]+)`", columns[2])) == states
    assert set(re.findall(r"^ `([a-z_]+)`", columns[3])) == timers


def test_no_stateful_step_of_the_package_is_missing_from_the_docs():
    stateful = [name for name, cls in inspect.getmembers(customers, inspect.isclass)
                if any(_specs(cls))]
    assert stateful == ["_CustomerTimelineFn"]
