"""Times given on the command line (`--start_timestamp`, `--stop_timestamp`, the report's `--since`
and `--until`): RFC 3339 with an offset, or epoch milliseconds.

Apart from `beam_cxone.options` so that what needs only this parser (the report's pure part) does not
import Beam, Kafka and Cassandra with the options.
"""

from __future__ import annotations

from beam_cxone.parse import Rejected
from beam_cxone.parse import parse_event_time

__all__ = ["parse_time_ms"]


def parse_time_ms(value: str | int | None) -> int | None:
    """RFC 3339 (with offset) or epoch milliseconds to epoch ms."""
    if value is None or value == "":
        return None
    if isinstance(value, int) or str(value).lstrip("-").isdigit():
        return int(value)
    try:
        return parse_event_time(str(value))  # the record contract's exact integer arithmetic
    except Rejected:
        pass
    try:
        parse_event_time(str(value) + "Z")
    except Rejected:
        raise ValueError(f"time {value!r} is neither RFC 3339 nor epoch milliseconds") from None
    raise ValueError(f"time {value!r} has no offset (add Z or +HH:MM)")
