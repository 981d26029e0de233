"""Prism in the test process (PrismRunner with LOOPBACK workers)."""

from __future__ import annotations

__all__ = ["stop_prism_job_server"]


def stop_prism_job_server() -> None:
    """The in-process PrismRunner keeps its job server, a Prism process, for later pipelines until
    the process exits (and then logs into streams pytest has closed): stop it when a module's or a
    session's pipelines are done. Nothing when none runs."""
    from apache_beam.runners.portability.prism_runner import PrismRunner

    server = PrismRunner.shared_handle.acquire(lambda: None)  # the running one, or None
    if server is not None:
        server.stop()
