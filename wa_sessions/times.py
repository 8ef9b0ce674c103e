"""ISO 8601 times from epoch seconds or nanoseconds: the one helper, which cannot raise.

A file's mtime is whatever its owner set (tmpfs, btrfs and ZFS keep years before 1 and after
9999), so every time a tenant's files can carry is clamped to what `datetime` can show:
0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. NaN and infinities clamp too.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta

_MIN_SECOND = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECOND = 253402300799  # 9999-12-31T23:59:59Z
_EPOCH_DAY = 719163  # date(1970, 1, 1).toordinal()


def clamp_second(epoch_second: float) -> int:
    """Whole epoch seconds (floored), clamped to the range `datetime` can show."""
    if math.isnan(epoch_second):
        return 0
    if epoch_second <= _MIN_SECOND:
        return _MIN_SECOND
    if epoch_second >= _MAX_SECOND:
        return _MAX_SECOND
    return math.floor(epoch_second)


@functools.lru_cache(maxsize=1024)
def _iso_day(day: int) -> str:
    return datetime.fromordinal(day + _EPOCH_DAY).date().isoformat()


# The time of day as text, worked out once: "T03:12:" for each minute of the day, "28Z" for each
# second of a minute. A cleanup writes a time per deleted file (its mtime in the history line).
_CLOCK = tuple(f"T{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS = tuple(f"{second:02d}Z" for second in range(60))


def iso_second(epoch_second: float) -> str:
    """Epoch seconds as `2026-11-22T03:12:28Z` (UTC). A cleanup writes one per file: the date is
    worked out once per day, the time of day looked up."""
    day, second = divmod(clamp_second(epoch_second), 86400)
    minute, second = divmod(second, 60)
    return _iso_day(day) + _CLOCK[minute] + _SECONDS[second]


def iso_ns(epoch_ns: int) -> str:
    """Epoch nanoseconds (an st_mtime_ns) as `iso_second` shows them."""
    second = epoch_ns // 1_000_000_000
    if not _MIN_SECOND < second < _MAX_SECOND:  # an int in range needs no clamping
        second = clamp_second(second)
    day, second = divmod(second, 86400)
    minute, second = divmod(second, 60)
    return _iso_day(day) + _CLOCK[minute] + _SECONDS[second]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_datetime(moment: datetime) -> str:
    """An aware datetime as `iso_second` shows it: its whole seconds, worked out exactly (a float
    timestamp rounds 23:59:59.999999 up to the next second in far years)."""
    return iso_second((moment - _EPOCH) // timedelta(seconds=1))


def utc_now() -> datetime:
    """Now, as an aware UTC datetime (what `generated_at` is taken from)."""
    return datetime.now(UTC)
