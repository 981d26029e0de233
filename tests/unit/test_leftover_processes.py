"""The test run's process cleanup (tests/integration/conftest.py) on real, harmless processes: which
processes carry the run's marker, which of them are orphans, and stopping them. No service involved."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration import conftest as cleanup

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _orphan(env: dict[str, str]) -> int:
    """A sleeper whose parent has exited (as a Prism job server is after its job was terminated)."""
    out = subprocess.run(
        [sys.executable, "-c",
         "import subprocess as s, sys; print(s.Popen(sys.argv[1:], stdout=s.DEVNULL, stderr=s.DEVNULL).pid)",
         *SLEEPER],
        env=env, capture_output=True, text=True, check=True, timeout=30,
    )
    return int(out.stdout)


def test_the_marker_is_set_for_the_whole_run():
    assert os.environ[cleanup.RUN_MARKER]


def test_marked_processes_children_and_orphans_are_told_apart():
    child = subprocess.Popen(SLEEPER)
    orphan = _orphan(dict(os.environ))
    unmarked = _orphan({k: v for k, v in os.environ.items() if k != cleanup.RUN_MARKER})
    try:
        marked = cleanup._marked_processes()
        assert child.pid in marked and orphan in marked and unmarked not in marked
        assert os.getpid() not in marked  # never this process, nor the shell that started it
        assert "time.sleep(60)" in marked[orphan][1]
        assert cleanup._descends_from(child.pid, os.getpid())
        assert not cleanup._descends_from(orphan, os.getpid())

        # SIGTERM is enough: with a grace no test run reaches, no SIGKILL follows it (the child's
        # status says SIGTERM ended it), and the call returns once both are gone.
        cleanup._stop({orphan: marked[orphan], child.pid: marked[child.pid]}, grace_s=3600)
        assert not cleanup._running(orphan) and child.wait(timeout=5) == -15
        assert cleanup._running(unmarked)  # not the run's: left alone here
    finally:
        for pid in (orphan, unmarked):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        child.kill()
        child.wait()


def test_stop_kills_what_ignores_sigterm():
    stubborn = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True);"
         " time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    stubborn.stdout.readline()  # the handler is in place
    cleanup._stop({stubborn.pid: (os.getpid(), "stubborn")}, grace_s=0.5)
    assert stubborn.wait(timeout=5) == -9


def test_a_marked_process_under_a_parent_outside_the_run_is_left_alone():
    # An orphaned shell of the run waits on its child: the shell is the run's leftover; the child,
    # whose parent is that marked shell and not the run, is left to it (like a pipe of a shell that
    # exported the marker itself). Once the shell is stopped, the child is an orphan in turn.
    out = subprocess.run(
        [sys.executable, "-c",
         "import subprocess as s, sys; print(s.Popen(['bash', '-c', '$SLEEP & echo $!; wait'],"
         " stdout=s.PIPE, stderr=s.DEVNULL).stdout.readline().decode().strip())"],
        env=dict(os.environ, SLEEP="sleep 60"), capture_output=True, text=True, timeout=30,
    )
    child = int(out.stdout)
    shell = cleanup._parent_of(child)
    try:
        marked = cleanup._marked_processes()
        assert shell in marked and marked[shell][1].startswith("bash -c")
        assert child not in marked and cleanup._carries_marker(child)
        cleanup._stop({shell: marked[shell]})
        assert child in cleanup._marked_processes()
    finally:
        for pid in (shell, child):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
