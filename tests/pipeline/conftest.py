"""The streaming runner of each pipeline test (tests/pipeline/harness.py).

The tests of ON_EVERY_STREAMING_RUNNER run once on the BundleBasedDirectRunner and once on Prism,
the same test body: Prism's run is in the integration tier (it needs the binary stack/prism.sh
builds, which `make test` builds). Other files run on BEAM_CXONE_TEST_RUNNER (default: direct).
"""

from __future__ import annotations

import os

import pytest

from tests.pipeline import harness
from tests.support.prism import stop_prism_job_server

ON_EVERY_STREAMING_RUNNER = {"test_streaming_rules.py"}


def pytest_generate_tests(metafunc):
    if os.path.basename(metafunc.module.__file__) in ON_EVERY_STREAMING_RUNNER:
        metafunc.parametrize(
            "pipeline_runner",
            ["direct", pytest.param("prism", marks=pytest.mark.integration)],
            indirect=True,
        )


@pytest.fixture(autouse=True)
def pipeline_runner(request):
    """The runner `run_stream` uses for this test; the previous one again afterwards."""
    before = harness.streaming_runner()
    name = getattr(request, "param", before)
    harness.use_streaming_runner(name)
    yield name
    harness.use_streaming_runner(before)


@pytest.fixture(scope="session", autouse=True)
def _stop_prism_job_server():
    yield
    stop_prism_job_server()
