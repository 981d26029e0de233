"""The analytics graph shared by streaming and batch: raw records in, the four tables' rows out.

`build_analytics` only builds transforms; sources and sinks are set up by the streaming and backfill
builders, so tests feed it a TestStream or Create and capture its outputs.
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from beam_cxone.config import AnalyticsConfig
from beam_cxone.records import DeadLetter
from beam_cxone.tables import CUSTOMER_PROFILES
from beam_cxone.tables import DEAD_LETTERS
from beam_cxone.tables import INTERACTION_VOLUMES
from beam_cxone.tables import PATTERN_ALERTS
from beam_cxone.tables import iso_date
from beam_cxone.transforms.batch import BatchAnalytics
from beam_cxone.transforms.customers import JoinProfilesAndDetectPatterns
from beam_cxone.transforms.parse_route import ParseAndRoute
from beam_cxone.transforms.volumes import CountVolumes

__all__ = ["Results", "build_analytics", "dead_letter_row"]


class Results(NamedTuple):
    """Rows per table (dicts keyed by column; see beam_cxone.tables)."""

    interaction_volumes: beam.PCollection
    pattern_alerts: beam.PCollection
    customer_profiles: beam.PCollection
    dead_letters: beam.PCollection

    def by_table(self):
        return {
            INTERACTION_VOLUMES: self.interaction_volumes,
            PATTERN_ALERTS: self.pattern_alerts,
            CUSTOMER_PROFILES: self.customer_profiles,
            DEAD_LETTERS: self.dead_letters,
        }


def dead_letter_row(letter: DeadLetter) -> dict:
    return {
        "day": iso_date(letter.recorded_at_ms),
        "recorded_at": letter.recorded_at_ms,
        "dead_letter_id": letter.dead_letter_id,
        "stage": letter.stage,
        "reason": letter.reason,
        "payload": letter.payload,
        "source": letter.source,
    }


def build_analytics(raw: beam.PCollection, cfg: AnalyticsConfig, *, streaming: bool) -> Results:
    """RawRecord -> Results. Labels of stateful steps are savepoint keys: keep them stable.

    Batch (`streaming=False`) runs `BatchAnalytics`: the same rules, wired for throughput (a few
    batched shuffles instead of one per record and step; see `transforms/batch.py`)."""
    if not streaming:
        batch = raw | "BatchAnalytics" >> BatchAnalytics(
            cfg.parse_settings, cfg.window_size_s, cfg.pattern_spec)
        dead_rows = batch.dead_letters | "DeadLetterRows" >> beam.Map(dead_letter_row)
        return Results(batch.interaction_volumes, batch.pattern_alerts, batch.customer_profiles,
                       dead_rows)
    routed = raw | "ParseAndRoute" >> ParseAndRoute(cfg.parse_settings, streaming=streaming)
    volumes = routed.interactions | "CountVolumes" >> CountVolumes(
        cfg.window_size_s, cfg.allowed_lateness_s, streaming=streaming)
    customers = routed.interactions | "JoinProfilesAndDetectPatterns" >> JoinProfilesAndDetectPatterns(
        routed.customer_updates, cfg.pattern_spec, streaming=streaming,
        allowed_lateness_s=cfg.allowed_lateness_s, profile_ttl_s=cfg.profile_ttl_s)
    dead_rows = routed.dead_letters | "DeadLetterRows" >> beam.Map(dead_letter_row)
    return Results(volumes, customers.alerts, customers.profile_rows, dead_rows)
