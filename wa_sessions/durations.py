"""Durations: `30s`, `10m`, `6h`, `14d`, `2w` in and out, human ages, and the bounds of each
configured duration. Pure: no pydantic, no disk, no clock.
"""

from __future__ import annotations

import functools
import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")

# Bounds (seconds; both ends allowed), checked when the configuration is loaded: a duration out
# of them is a config error naming its key (exit 2), never a crash after the deletions or a rule
# that deletes files in use.
MAX_AGE_BOUNDS = (3600, 3650 * 86400)  # rules.*.max_age, emergency.rules.*.max_age: 1h..3650d
NOTIFY_TIMEOUT_BOUNDS = (1, 5 * 60)  # notify.timeout: 1s..5m
LOCK_WAIT_BOUNDS = (0, 3600)  # locks.wait: 0s..1h
COOLDOWN_BOUNDS = (0, 30 * 86400)  # auto.cooldown: 0s..30d
OLDER_THAN_BOUNDS = (60, 3650 * 86400)  # emergency-cleanup --older-than: 1m..3650d


def parse_duration(value: object) -> int:
    """Given `30s`, `10m`, `6h`, `14d` or `2w`, return seconds. Raise ValueError otherwise."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 10m, 6h, 14d, 2w)")


def format_duration(seconds: int) -> str:
    """Given seconds, return an exact duration string in the largest unit up to days (`1209600` -> `14d`)."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def bounds_message(low: int, high: int) -> str:
    """`must be between 1m and 3650d`: what a duration outside [low, high] is told."""
    return f"must be between {format_duration(low)} and {format_duration(high)}"


def format_age(seconds: float) -> str:
    """Given seconds, return a short human age (`20d 3h`, `5h 12m`, `42s`)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 86400:
        return _format_minutes(seconds // 60)
    return _format_hours(seconds // 3600)


@functools.lru_cache(maxsize=2048)
def _format_minutes(minutes: int) -> str:
    """format_age under a day (seconds no longer show): each value is worded once."""
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


@functools.lru_cache(maxsize=2048)
def _format_hours(hours: int) -> str:
    """format_age from a day up (minutes no longer show): a fleet's ages take a few hundred values."""
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"
