"""CountVolumes: per channel and fixed event-time window, distinct contacts and distinct events.

Streaming only: batch counts the same windows in `transforms/batch.py` (BatchAnalytics), with
`volume_row` for the rows. Windows are epoch-aligned `[start, start + size)`. The on-time pane fires
when the watermark passes the window's end, and every record within the allowed lateness fires an
updated, accumulating pane: the row is upserted in place. Records later than that never get here (the read made them dead letters).
"""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.transforms import trigger
from apache_beam.transforms import window
from apache_beam.utils.windowed_value import WindowedValue

from beam_cxone import defaults
from beam_cxone.records import Interaction
from beam_cxone.tables import iso_date
from beam_cxone.transforms.timing import to_ms

__all__ = ["CountVolumes", "DistinctCountsFn", "volume_row"]


class DistinctCountsFn(beam.CombineFn):
    """(contactId, eventId) pairs -> (distinct contacts, distinct events); sets merge exactly."""

    def create_accumulator(self):
        return set(), set()

    def add_input(self, acc, pair):
        acc[0].add(pair[0])
        acc[1].add(pair[1])
        return acc

    def merge_accumulators(self, accs):
        contacts, events = set(), set()
        for c, e in accs:
            contacts |= c
            events |= e
        return contacts, events

    def extract_output(self, acc):
        return len(acc[0]), len(acc[1])


def volume_row(channel: str, start_ms: int, end_ms: int, interactions: int, events: int,
               updated_at_ms: int) -> dict:
    """One `interaction_volumes` row; `day` is the UTC date of the window start."""
    return {
        "channel": channel,
        "day": iso_date(start_ms),
        "window_start": start_ms,
        "window_end": end_ms,
        "interactions": interactions,
        "events": events,
        "updated_at": updated_at_ms,
    }


class _ToVolumeRowFn(beam.DoFn):
    """(channel, counts) panes -> rows; per bundle, only the latest pane of each channel and window.

    Panes of one window can reach this step out of order within a bundle: when the watermark jumps
    past both the window's end and its end + lateness (a backlog, a burst, a replay), Prism fires the
    on-time and the closing pane together and hands them on in either order, and the sink keeps the
    last row it is given for a key, so the on-time pane's smaller counts could win for good
    (reproduced: 3 runs of 8 on a shuffled 1,500-record stream). Bundles of one key run one after
    the other, so keeping the highest pane index per bundle is enough; panes accumulate, so the
    counts break a tie."""

    def start_bundle(self):
        self._latest: dict = {}

    def process(self, element, win=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam,
                ts=beam.DoFn.TimestampParam):
        channel, counts = element
        rank = (pane.index, counts)
        seen = self._latest.get((channel, win))
        if seen is None or rank > seen[0]:
            self._latest[(channel, win)] = (rank, ts)

    def finish_bundle(self):
        latest, self._latest = self._latest, {}
        built_at = int(time.time() * 1000)
        for (channel, win), (rank, ts) in latest.items():
            interactions, events = rank[1]
            row = volume_row(channel, to_ms(win.start), to_ms(win.end), interactions, events, built_at)
            yield WindowedValue(row, ts, [win])


class CountVolumes(beam.PTransform):
    """PCollection[Interaction] (event-time stamped) -> PCollection[dict] of `interaction_volumes` rows."""

    def __init__(self, window_size_s: int = defaults.WINDOW_SIZE_S,
                 allowed_lateness_s: int = defaults.ALLOWED_LATENESS_S, *, streaming: bool = True):
        super().__init__()
        if not streaming:
            raise ValueError("batch runs transforms/batch.py (BatchAnalytics), not this step")
        if window_size_s <= 0:
            raise ValueError(f"window_size_s must be > 0, got {window_size_s}")
        if allowed_lateness_s < 0:
            raise ValueError(f"allowed_lateness_s must be >= 0, got {allowed_lateness_s}")
        self._size = window_size_s
        self._lateness = allowed_lateness_s

    def _windowing(self) -> beam.WindowInto:
        """The on-time pane, then an accumulating pane per late record.

        The default trigger is AfterWatermark(late=AfterCount(1)) in effect, but spelled as the
        default it lets a runner lift the combine (Prism will not with an explicit element count):
        each bundle pre-combines per channel and window, instead of shipping every record."""
        return beam.WindowInto(
            window.FixedWindows(self._size),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=self._lateness)

    def expand(self, interactions):
        return (
            interactions
            | "KeyByChannel" >> beam.Map(_channel_pair).with_output_types(
                beam.typehints.KV[str, beam.typehints.Tuple[str, str]])
            | "FixedWindows" >> self._windowing()
            | "DistinctCounts" >> beam.CombinePerKey(DistinctCountsFn())
            | "ToVolumeRow" >> beam.ParDo(_ToVolumeRowFn())
            | "BackToGlobalWindow" >> beam.WindowInto(window.GlobalWindows())
        )


def _channel_pair(interaction: Interaction) -> tuple[str, tuple[str, str]]:
    return interaction.channel, (interaction.contact_id, interaction.event_id)
