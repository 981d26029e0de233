"""The defaults of the analytics and of the read (docs/SEMANTICS.md), in one place.

`AnalyticsConfig` and the command-line options take theirs from here; plain numbers, no imports, so
that any module can. The channel list is `beam_cxone.records.Channel`.
"""

from __future__ import annotations

__all__ = [
    "ALLOWED_LATENESS_S",
    "DEDUP_TTL_S",
    "FAILURE_COUNT",
    "IDLE_TIMEOUT_S",
    "OUT_OF_ORDERNESS_S",
    "PATTERN_WITHIN_S",
    "PROFILE_TTL_S",
    "WINDOW_SIZE_S",
]

WINDOW_SIZE_S = 10  # volume windows, event time
ALLOWED_LATENESS_S = 30  # later than this behind the watermark: a `late` dead letter
DEDUP_TTL_S = 600  # how long (event time) an event id is remembered; must exceed the lateness
PROFILE_TTL_S = 30 * 24 * 3600  # an idle customer's state is cleared after this much event time
FAILURE_COUNT = 3  # consecutive failures before a callback that raise an alert
PATTERN_WITHIN_S = 30.0  # the callback comes less than this after the first failure
OUT_OF_ORDERNESS_S = 5.0  # bounded out-of-orderness of the read's event-time watermark
IDLE_TIMEOUT_S = 10.0  # a partition caught up this long (wall time) stops holding the others back
