"""Typed settings of the analytics (docs/SEMANTICS.md defaults), separate from argparse so that transforms and
tests build them directly."""

from __future__ import annotations

import dataclasses

from beam_cxone import defaults
from beam_cxone.parse import DEFAULT_FAILURE_REASONS
from beam_cxone.parse import DEFAULT_MAX_RECORD_BYTES
from beam_cxone.parse import ParseSettings
from beam_cxone.transforms.patterns import PatternSpec

__all__ = ["AnalyticsConfig"]


@dataclasses.dataclass(frozen=True)
class AnalyticsConfig:
    """What is computed. Durations in seconds of event time."""

    window_size_s: int = defaults.WINDOW_SIZE_S
    allowed_lateness_s: int = defaults.ALLOWED_LATENESS_S
    dedup_ttl_s: int = defaults.DEDUP_TTL_S
    profile_ttl_s: int = defaults.PROFILE_TTL_S
    failure_count: int = defaults.FAILURE_COUNT
    pattern_within_s: float = defaults.PATTERN_WITHIN_S
    failure_reasons: tuple[str, ...] = DEFAULT_FAILURE_REASONS
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES

    def __post_init__(self):
        errors = []
        if self.window_size_s <= 0:
            errors.append(f"window_size_s must be > 0, got {self.window_size_s}")
        if self.allowed_lateness_s < 0:
            errors.append(f"allowed_lateness_s must be >= 0, got {self.allowed_lateness_s}")
        if self.dedup_ttl_s <= self.allowed_lateness_s:
            errors.append("dedup_ttl_s must exceed allowed_lateness_s, or a late duplicate could count twice")
        if self.profile_ttl_s <= 0:
            errors.append(f"profile_ttl_s must be > 0, got {self.profile_ttl_s}")
        elif self.profile_ttl_s <= self.allowed_lateness_s + self.pattern_within_s:
            errors.append("profile_ttl_s must exceed allowed_lateness_s + pattern_within_s, or a "
                          "profile could be forgotten while an older update or a pattern can still arrive")
        if self.failure_count < 1:
            errors.append(f"failure_count must be >= 1, got {self.failure_count}")
        if self.pattern_within_s <= 0:
            errors.append(f"pattern_within_s must be > 0, got {self.pattern_within_s}")
        elif round(self.pattern_within_s * 1000) < 1:
            errors.append(f"pattern_within_s must be at least 0.001 (1 ms), got {self.pattern_within_s}")
        if self.max_record_bytes <= 0:
            errors.append(f"max_record_bytes must be > 0, got {self.max_record_bytes}")
        if errors:
            raise ValueError("invalid analytics settings: " + "; ".join(errors))

    @property
    def parse_settings(self) -> ParseSettings:
        return ParseSettings.of(self.failure_reasons, max_record_bytes=self.max_record_bytes)

    @property
    def pattern_spec(self) -> PatternSpec:
        return PatternSpec(failure_count=self.failure_count,
                           within_ms=int(round(self.pattern_within_s * 1000)))
