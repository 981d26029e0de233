"""The collector pause of the batch steps (beam_cxone/transforms/gc_pause.py)."""

import gc

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_cxone.transforms.gc_pause import GcPause
from beam_cxone.transforms.gc_pause import GcPausedBundles
from beam_cxone.transforms.gc_pause import paused


@pytest.fixture(autouse=True)
def collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_nested_pauses_resume_the_collector_after_the_last():
    gc.enable()
    pause = GcPause()
    pause.pause()
    pause.pause()
    assert not gc.isenabled()
    pause.resume()
    assert not gc.isenabled()
    pause.resume()
    assert gc.isenabled()
    pause.resume()  # one too many: no effect
    assert gc.isenabled() and pause.depth == 0


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    pause = GcPause()
    pause.pause()
    pause.resume()
    assert not gc.isenabled()


class _Fn(GcPausedBundles):
    pass


def test_bundles_pause_and_resume_even_after_a_failed_bundle():
    gc.enable()
    a, b = _Fn(), _Fn()
    a.start_bundle()
    a.start_bundle()  # counted once per bundle, not per call
    b.start_bundle()
    assert paused.depth == 2 and not gc.isenabled()
    a.finish_bundle()
    assert not gc.isenabled()
    b.teardown()  # b's bundle failed: teardown resumes
    assert gc.isenabled() and paused.depth == 0
    b.teardown()
    assert paused.depth == 0


class _Boom(GcPausedBundles, beam.DoFn):
    def process(self, element):
        raise ValueError(f"boom {element}")


def test_a_failed_pipeline_leaves_the_collector_running():
    gc.enable()
    with pytest.raises(Exception, match="boom"):
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
            p | beam.Create([1, 2]) | beam.ParDo(_Boom())
    assert gc.isenabled() and paused.depth == 0
