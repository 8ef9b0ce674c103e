"""Which keys one part of a rule deletes, and why (pure; rules.py combines them into a plan).

`age_verdicts` (max_age) and `newest_verdicts` (keep_newest) each take the keys of one category
(key_groups: an Entry, or a Key with companions) and return {key name: reason}.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from wa_sessions import layout
from wa_sessions.durations import format_age, format_duration
from wa_sessions.key_groups import KeyLike


def age_verdicts(keys: Sequence[KeyLike], max_age: int, now: float) -> dict[str, str]:
    """The keys older than `max_age` seconds at `now`, each with its reason."""
    # Older than max_age <=> mtime before `now - max_age`: one comparison per key (with a
    # millisecond of slack for float rounding; the age decides), and the age is worked out (and
    # worded) only for the keys that go.
    oldest_kept_ns = (now - max_age) * 1e9 + 1e6
    verdicts = {}
    # From a day up an age is worded by its whole hours (format_age): each reason is made once
    # per rule and hour, for every tenant of the run.
    by_hour = _AGE_REASONS.get(max_age)
    if by_hour is None or len(by_hour) > _AGE_REASONS_KEPT:
        by_hour = _AGE_REASONS[max_age] = {}
    prefix = f"older than {format_duration(max_age)}: last used "
    for key in [key for key in keys if key.mtime_ns < oldest_kept_ns]:
        age = now - key.mtime_ns / 1e9  # age_seconds: in the future (negative) is never > max_age
        if age > max_age:
            seconds = int(age)
            if seconds >= _DAY:
                reason = by_hour.get(hour := seconds // 3600)
                if reason is None:
                    reason = by_hour[hour] = prefix + format_age(age) + " ago"
            else:
                reason = prefix + format_age(age) + " ago"
            verdicts[key.name] = reason
    return verdicts


#: max_age -> whole hours of age -> the reason of a key that old (bounded: started again when full)
_AGE_REASONS: dict[int, dict[int, str]] = {}
_AGE_REASONS_KEPT = 8192
_DAY = 86400
_by_id = operator.attrgetter("pre_key_id")


def newest_verdicts(keys: Sequence[KeyLike], keep_newest: int) -> dict[str, str]:
    """The keys beyond the `keep_newest` newest (by id for pre-keys, by last use otherwise; all
    of one category), each with its reason."""
    if len(keys) <= keep_newest:
        return {}
    if keys[0].category == layout.PRE_KEY:
        try:  # every key has its id (a pre-key's name always gives one): sorted in C
            ordered = sorted(keys, key=_by_id, reverse=True)
        except TypeError:  # an id missing: counted as 0, as always
            ordered = sorted(keys, key=lambda key: key.pre_key_id or 0, reverse=True)
        kept = ordered[:keep_newest]
        kept_ids = f"ids {kept[-1].pre_key_id}–{kept[0].pre_key_id} kept" if kept else "none kept"
        tail = f" beyond the newest {keep_newest} ({kept_ids})"
        return {key.name: f"pre-key id {key.pre_key_id}{tail}" for key in ordered[keep_newest:]}
    ordered = sorted(keys, key=lambda key: (key.mtime_ns, key.name), reverse=True)
    return {
        key.name: f"beyond the newest {keep_newest} {key.category} files by last use"
        for key in ordered[keep_newest:]
    }
