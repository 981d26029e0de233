"""Runner profiles: what each runner needs added to the command line, so `--runner` alone picks a
working set-up on this kind of machine. The runner always comes from flags, never from code; this
module decides from the options a command line gives, `beam_cxone.commands.cmdline` reads and writes
the argv (`runner_args`).

- streaming default: Prism (Beam's streaming-first local runner), built from Beam's Go module at the
  pinned Beam version by `stack/prism.sh` (Python's own Prism download is not reachable here).
- batch default: the FnApiRunner (the DirectRunner family's batch engine), named explicitly because
  `DirectRunner` first tries to download Prism; on every core (`--direct_running_mode=multi_processing
  --direct_num_workers=N`, N = the machine's cores) unless the command line says otherwise.
- FlinkRunner: Beam's Flink job-server jar (`--flink_job_server_jar`) from the local cache, else from
  Beam's own jar cache, else fetched once into the local cache by Beam's own download code (the URL
  Beam's FlinkRunner would fetch at run time); LOOPBACK workers unless told otherwise (unset means
  Docker, which is not here), checkpointing when streaming. Only a failed fetch stops the run, with a
  one-line RunnerSetupError.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "BATCH_DEFAULT_RUNNER",
    "RunnerSetupError",
    "cache_dir",
    "fetch_flink_job_server_jar",
    "flink_job_server_jar",
    "flink_job_server_url",
    "prism_binary",
    "resolve_runner",
    "runner_flags",
]

BEAM_VERSION = "2.77.0"
FLINK_MINOR = "1.20"
FN_API_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
BATCH_DEFAULT_RUNNER = FN_API_RUNNER
STREAMING_DEFAULT_RUNNER = "PrismRunner"
STREAM_DEADLINE_S = 10 * 365 * 24 * 3600  # a streaming job's job-service streams: effectively none
RUNNER_ALIASES = {"FnApiRunner": FN_API_RUNNER, "embedded": STREAMING_DEFAULT_RUNNER}
FLINK_JOB_SERVER = f"org.apache.beam:beam-runners-flink-{FLINK_MINOR}-job-server:{BEAM_VERSION}"
FETCH_TIMEOUT_S = 60.0  # per connect and read of the jar's download: a dead network fails, not hangs

_LOG = logging.getLogger(__name__)


class RunnerSetupError(RuntimeError):
    """A runner cannot be set up here; the message says what is missing and how to get it."""


def cache_dir() -> Path:
    return Path(os.environ.get("BEAM_CXONE_CACHE", Path.home() / ".cache" / "beam_cxone"))


# The project's own patches to Prism (docs/PRISM_PATCHES.md), applied by stack/prism.sh.
PRISM_PATCHES = Path(__file__).resolve().parents[2] / "stack" / "prism-patches"


def prism_binary() -> Path:
    """The patched Prism stack/prism.sh builds (its folder is named by a hash of the patch files, as
    the script names it), or the stock build with PRISM_STOCK=1 or where the patches are not at hand
    (an installed package without the repository)."""
    stock = cache_dir() / f"prism-{BEAM_VERSION}" / "prism"
    patches = sorted(PRISM_PATCHES.glob("*.patch")) if PRISM_PATCHES.is_dir() else []
    if os.environ.get("PRISM_STOCK") == "1" or not patches:
        return stock
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()[:8]
    return cache_dir() / f"prism-{BEAM_VERSION}-{digest}" / "prism"


def flink_job_server_jar() -> Path:
    return cache_dir() / "jars" / f"beam-runners-flink-{FLINK_MINOR}-job-server-{BEAM_VERSION}.jar"


def flink_job_server_url() -> str:
    """Where Beam's FlinkRunner fetches its job server when no jar is given (Maven Central)."""
    from apache_beam.utils.subprocess_server import JavaJarServer

    return JavaJarServer.path_to_beam_jar(
        f":runners:flink:{FLINK_MINOR}:job-server:shadowJar", version=BEAM_VERSION
    )


def fetch_flink_job_server_jar() -> Path:
    """The Flink job-server jar on this machine: the local cache's, else Beam's own cached copy,
    else downloaded into the local cache once with Beam's own code. A failed download raises a
    one-line RunnerSetupError (what, from where, why, and how to supply the jar) and leaves no
    partial file."""
    from apache_beam.utils.subprocess_server import JavaJarServer

    jar = flink_job_server_jar()
    if jar.exists():
        return jar
    beams = Path(JavaJarServer.JAR_CACHE) / jar.name
    if beams.exists():
        return beams
    url = flink_job_server_url()
    _LOG.info("fetching Beam's Flink job server %s from %s into %s (once)", FLINK_JOB_SERVER, url,
                 jar.parent)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(FETCH_TIMEOUT_S)
    try:
        fetched = Path(JavaJarServer.local_jar(url, cache_dir=str(jar.parent)))
    except Exception as err:  # noqa: BLE001 - any failure of the fetch is reported the same way
        with contextlib.suppress(OSError):
            (jar.parent / (Path(url).name + ".tmp")).unlink()
        raise RunnerSetupError(
            f"Beam's Flink job server jar ({FLINK_JOB_SERVER}) could not be fetched from {url}: "
            f"{_root_cause(err)}. Place it at {jar} or pass --flink_job_server_jar") from None
    finally:
        socket.setdefaulttimeout(previous)
    return fetched  # the cached jar (another path only for a URL that names another file)


def _root_cause(err: BaseException) -> str:
    """Why a download failed, on one line: the first network error of the chain (Beam wraps the
    download's error, and the mirror's after it, in a RuntimeError), else the error itself."""
    from urllib.error import URLError

    chain, seen = [err], {id(err)}
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None:
        if id(inner) in seen:
            break
        seen.add(id(inner))
        chain.append(inner)
    network = [e for e in chain if isinstance(e, URLError)]
    cause = network[-1] if network else err
    text = " ".join(str(cause).split())
    return (text or type(cause).__name__)[:200]


def resolve_runner(runner: str | None, *, streaming: bool) -> str:
    """The runner a command line names (aliases resolved), or the default for the mode."""
    runner = runner or (STREAMING_DEFAULT_RUNNER if streaming else BATCH_DEFAULT_RUNNER)
    return RUNNER_ALIASES.get(runner, runner)


def runner_flags(runner: str, given: Mapping[str, Any], *, streaming: bool) -> list[str]:
    """The flags `runner` needs that the command line does not set. `given` maps the options the
    command line sets (by dest) to their typed values (`beam_cxone.commands.cmdline` reads argv)."""
    out: list[str] = []
    if streaming and "streaming" not in given:
        out.append("--streaming")
    if runner == "PrismRunner" and "prism_location" not in given:
        binary = prism_binary()
        if not binary.exists():
            raise RunnerSetupError(
                f"Prism binary not found at {binary}: run `bash stack/prism.sh fetch` (builds it with Go) "
                "or pass --prism_location")
        out.append(f"--prism_location={binary}")
    if runner == "PrismRunner" and streaming and "job_server_timeout" not in given:
        # Beam uses it as the gRPC deadline of the job's state and message streams: the default 300 s
        # ended every streaming job on Prism after 5 minutes (measured, DEADLINE_EXCEEDED).
        out.append(f"--job_server_timeout={STREAM_DEADLINE_S}")
    if runner == FN_API_RUNNER and not streaming:
        out += _fn_api_batch_flags(given)
    if runner == "FlinkRunner":
        out += _flink_flags(given, streaming)
    return out


def cpu_count() -> int:
    return os.cpu_count() or 1


def _fn_api_batch_flags(given: Mapping[str, Any]) -> list[str]:
    """Every core for a bounded run: one SDK worker process per core (measured on a file backfill:
    see docs/PERFORMANCE.md, "Backfills"). An explicit mode or worker count is kept; a worker count
    alone gets the multi-process mode (in memory, the FnApiRunner ignores it), except 1."""
    mode, workers = given.get("direct_running_mode"), given.get("direct_num_workers")
    if mode is None:
        n = workers or cpu_count()  # 0 workers: Beam's "every core" too
        if n <= 1:
            return []
        return ["--direct_running_mode=multi_processing"] + (
            [f"--direct_num_workers={n}"] if workers is None else [])
    if mode != "in_memory" and workers is None:
        return [f"--direct_num_workers={cpu_count()}"]
    return []


def _flink_flags(given: Mapping[str, Any], streaming: bool) -> list[str]:
    out = []
    if "flink_job_server_jar" not in given:
        out.append(f"--flink_job_server_jar={fetch_flink_job_server_jar()}")
    if "flink_version" not in given:
        out.append(f"--flink_version={FLINK_MINOR}")
    if "environment_type" not in given:
        out.append("--environment_type=LOOPBACK")  # unset would mean Docker
    if streaming and "checkpointing_interval" not in given:
        out.append("--checkpointing_interval=10000")
    return out
