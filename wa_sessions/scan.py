"""Read tenant folders: one scandir per tenant, lstat only, relative to directory descriptors.

Nothing here follows a symlink: tenants are opened with O_NOFOLLOW relative to the root's
descriptor, and entries are examined with fstatat(AT_SYMLINK_NOFOLLOW).

The scan is the hot loop of every command (a fleet has millions of files): one pass over the
listing classifies, counts and notes problems, and builds entries only when asked to. The listing
itself (readdir + fstatat per entry) is done in C by wa_sessions/_listing.c when it was built at
install, and by os.scandir otherwise: the same entries either way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
from collections.abc import Callable, Container, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Protocol

from wa_sessions import layout
from wa_sessions.layout import Creds, Entry

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CREDS_MAX_BYTES = 4 * 1024 * 1024
_PROBLEMS_PER_KIND = 20
_CREDS_NAMES = frozenset({layout.CREDS_FILE, layout.CREDS_FILE + ".bak"})  # what read_creds looks for


class TenantUnavailable(Exception):
    """A tenant folder could not be opened or read; the message says why."""


@dataclass(frozen=True, slots=True)
class Tenant:
    """A tenant folder directly under root."""

    company: str
    name: str
    path: Path
    is_symlink: bool = False


@dataclass(slots=True)
class TenantScan:
    """Everything one scandir of a tenant folder saw: the entries asked for, what creds.json
    says, the problems seen and (from the scan itself) the counts per category and the bytes."""

    entries: list[Entry]
    creds: Creds
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] | None = None
    total_bytes: int = 0

    @property
    def files(self) -> int:
        if self.counts is not None:
            return sum(self.counts.values())
        return len(self.entries)

    @property
    def bytes(self) -> int:
        if self.counts is not None:
            return self.total_bytes
        return sum(entry.size for entry in self.entries)

    def categories(self) -> dict[str, int]:
        if self.counts is not None:
            return dict(self.counts)
        counts = dict.fromkeys(layout.CATEGORIES, 0)
        for entry in self.entries:
            counts[entry.category] += 1
        return counts


def open_root(root: Path) -> int:
    """Open the sessions root as a directory descriptor. Raise TenantUnavailable if it is not one."""
    try:
        return os.open(root, _DIRECTORY_FLAGS)
    except OSError as error:
        raise TenantUnavailable(f"cannot open root {root}: {error.strerror}") from None


def list_tenants(root: Path, root_fd: int, tenant_pattern: str) -> list[Tenant]:
    """Tenants directly under root, ordered by company id. Symlinked tenants are listed (to be
    reported), never followed."""
    tenants = []
    with os.scandir(root_fd) as entries:
        for entry in entries:
            if not layout.is_tenant_name(entry.name, tenant_pattern):
                continue
            is_symlink = entry.is_symlink()
            if not is_symlink and not entry.is_dir(follow_symlinks=False):
                continue
            company = layout.company_id(entry.name, tenant_pattern)
            tenants.append(Tenant(company, entry.name, root / entry.name, is_symlink))
    tenants.sort(key=lambda tenant: (tenant.company, tenant.name))
    return tenants


@contextlib.contextmanager
def open_tenant(root_fd: int, tenant: Tenant) -> Iterator[int]:
    """Open a tenant folder relative to root without following a symlink; yield its descriptor."""
    try:
        fd = os.open(tenant.name, _DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=root_fd)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise TenantUnavailable("tenant folder is a symlink or not a directory; not followed") from None
        raise TenantUnavailable(f"cannot open tenant folder: {error.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def scan_tenant(
    tenant_fd: int, now: float | None = None, *, keep: Container[str] | None = None
) -> TenantScan:
    """Given a tenant's directory descriptor, return the counts per category, the bytes, what
    creds.json says, the problems seen and the entries (dot-entries left out). Raise
    TenantUnavailable if it cannot be listed.

    `keep` names the categories whose regular files are returned as entries (default: every
    entry, whatever its type; an empty set: none, for a scan that only counts). `now` (epoch
    seconds) is only used to report mtimes in the future.
    """
    tally = _Tally(now)
    try:
        with contextlib.closing(listing(tenant_fd)) as listed:  # its descriptor closed, come what may
            _scan_listing(listed, tally, keep)
    except OSError as error:
        raise TenantUnavailable(f"cannot list tenant folder: {error.strerror}") from None
    creds = read_creds(tenant_fd, tally.creds_names)
    problems = tally.problems()
    if creds.state != "ok":
        problems.append(f"creds.json is {creds.state}")
    return TenantScan(tally.entries, creds, problems, tally.counts, tally.total_bytes)


#: One listed entry: (name, st_mode, st_ino, st_size, st_mtime_ns), or (name, -1, errno, 0, 0)
#: when its lstat failed with anything but ENOENT (a vanished entry is left out).
ListedEntry = tuple[str, int, int, int, int]


class Listing(Protocol):
    """What a listing returns: its entries, one at a time, and `close()` to let go early."""

    def __iter__(self) -> Iterator[ListedEntry]: ...

    def close(self) -> None: ...


def python_listing(tenant_fd: int) -> Generator[ListedEntry, None, None]:
    """Given a directory descriptor, yield its entries but dot-entries, lstat'ed relative to it:
    what the C listing (wa_sessions/_listing.c) yields, with os.scandir and DirEntry.stat. Both
    start at the beginning of the directory and leave its offset there."""
    os.lseek(tenant_fd, 0, os.SEEK_SET)  # os.scandir(fd) lists from the descriptor's offset
    with os.scandir(tenant_fd) as entries:
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                yield name, -1, error.errno or 0, 0, 0
                continue
            yield name, info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns


#: The listing the scan uses: the C one (no DirEntry and no stat_result per file) when it was
#: built at install, else python_listing. `wa-sessions --version` says which.
listing: Callable[[int], Listing]
try:
    from wa_sessions._listing import listing as _c_listing

    listing = _c_listing
    LISTING = "C"
except ImportError:  # not built (no compiler at install): the pure-Python listing does the same
    listing = python_listing
    LISTING = "Python"


class _Tally:
    """What one pass over a listing adds up: counts, bytes, problems, the entries kept."""

    __slots__ = ("counts", "creds_names", "entries", "future_after", "noted", "total_bytes", "unreadable")

    def __init__(self, now: float | None):
        self.counts = dict.fromkeys(layout.CATEGORIES, 0)
        self.total_bytes = 0
        self.entries: list[Entry] = []
        self.creds_names: set[str] = set()
        self.unreadable: list[str] = []
        self.noted: dict[str, list[str]] = {}
        self.future_after = math.inf if now is None else now + 60

    def note(self, name: str, category: str, kind: str, size: int, mtime_ns: int) -> None:
        """Problems of one entry, in the order the scan meets them."""
        if kind != "file":
            _add(self.noted, "not-regular", f"not a regular file ({kind}): {layout.display_name(name)}")
        elif size == 0 and category != layout.UNKNOWN and category != layout.CREDS:
            _add(self.noted, "empty", f"empty key file: {layout.display_name(name)}")
        if mtime_ns / 1e9 > self.future_after:
            _add(
                self.noted,
                "future",
                f"modified in the future (clock moved back?), age taken as 0: {layout.display_name(name)}",
            )

    def problems(self) -> list[str]:
        kinds = {"unreadable": self.unreadable, **self.noted} if self.unreadable else self.noted
        return _flatten(kinds)


def _scan_listing(listed: Iterable[ListedEntry], tally: _Tally, keep: Container[str] | None) -> None:
    """One pass: classify each listed entry, count it, note its problems, keep it if asked. The
    loop every command runs over millions of files: locals only, and nothing per entry that is
    not needed (a scan that keeps no entry does not split names)."""
    counts = tally.counts
    entries = tally.entries
    creds_names = tally.creds_names
    # layout.split_name, inlined: one regex match whose group index names the category
    match = layout.KEY_FILE_NAME.fullmatch
    category_of_group = layout.CATEGORY_OF_GROUP
    pre_key_group = layout.PRE_KEY_GROUP
    make = tuple.__new__  # Entry(...) without its Python-level __new__: a third of the cost
    is_regular = S_ISREG
    watched = _CREDS_NAMES
    unknown = layout.UNKNOWN
    # note() decides exactly; this only lets through what may be a problem (with a second of slack).
    future_ns = (tally.future_after - 1) * 1e9
    keep_all = keep is None
    kept: Container[str] = () if keep is None else keep
    keep_none = keep is not None and not keep
    total = 0
    for name, mode, inode, size, mtime_ns in listed:
        if mode < 0:
            error = os.strerror(inode)
            tally.unreadable.append(f"cannot stat {layout.display_name(name)}: {error}")
            continue
        total += size
        if name in watched:
            creds_names.add(name)
        if is_regular(mode):
            matched = match(name)
            category = unknown if matched is None else category_of_group[matched.lastindex or 0]
            counts[category] += 1
            if size == 0 or mtime_ns > future_ns:
                tally.note(name, category, "file", size, mtime_ns)
            if keep_none or not (keep_all or category in kept):
                continue
            if matched is None:
                key_name, pre_key_id = name, None
            else:
                key_name = name if name[-1] == "n" else name[:-4]  # .json, .json.bak or .json.tmp
                group = matched.lastindex
                pre_key_id = int(matched.group(group)) if group == pre_key_group else None
            entries.append(
                make(Entry, (name, category, key_name, True, "file", inode, size, mtime_ns, pre_key_id))
            )
        else:
            kind = _kind(mode)
            counts[unknown] += 1
            tally.note(name, unknown, kind, size, mtime_ns)
            if keep_all:
                entries.append(Entry(name, unknown, name, False, kind, inode, size, mtime_ns, None))
    tally.total_bytes = total


def _add(problems: dict[str, list[str]], kind: str, message: str) -> None:
    problems.setdefault(kind, []).append(message)


def _flatten(problems: dict[str, list[str]]) -> list[str]:
    flat = []
    for messages in problems.values():
        flat.extend(messages[:_PROBLEMS_PER_KIND])
        if len(messages) > _PROBLEMS_PER_KIND:
            flat.append(f"... and {len(messages) - _PROBLEMS_PER_KIND} more like the above")
    return flat


def read_creds(tenant_fd: int, names: Container[str]) -> Creds:
    """Read creds.json (or, when it is missing, creds.json.bak, as Baileys does) without following
    a symlink or blocking on a FIFO. Only reads; never writes."""
    for source in (layout.CREDS_FILE, layout.CREDS_FILE + ".bak"):
        if source in names:
            return _parse_creds(_read_small(tenant_fd, source), source)
    return Creds("missing")


def _read_small(tenant_fd: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=tenant_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, _CREDS_MAX_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


def _parse_creds(data: bytes | None, source: str) -> Creds:
    if data is None:
        return Creds("unreadable", source=source)
    if not data.strip():
        return Creds("empty", source=source)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return Creds("unparseable", source=source)
    if not isinstance(document, dict):
        return Creds("unparseable", source=source)
    me = document.get("me") if isinstance(document.get("me"), dict) else {}
    own_users = set()
    for jid_key in ("id", "lid"):
        jid = me.get(jid_key) if me else None
        if isinstance(jid, str) and (user := layout.signal_user(jid)):
            own_users.add(user)
    # A pre-key bound of the wrong type ("5", 5.0, true, null, a list) is no bound: the guard of
    # SPEC §2 cannot be worked out, so the state is not `ok` and no pre-key is pruned. A missing
    # firstUnuploadedPreKeyId leaves nextPreKeyId as the only bound.
    state = _bound_problem(document, "nextPreKeyId", required=True) or _bound_problem(
        document, "firstUnuploadedPreKeyId", required=False
    )
    return Creds(
        state or "ok",
        next_pre_key_id=_integer(document.get("nextPreKeyId")),
        first_unuploaded_pre_key_id=_integer(document.get("firstUnuploadedPreKeyId")),
        own_users=frozenset(own_users),
        source=source,
    )


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bound_problem(document: dict[str, object], key: str, *, required: bool) -> str | None:
    """Why creds.json's pre-key bound `key` cannot be used (the Creds state), or None if it can."""
    if key not in document:
        return f"without {key}" if required else None
    value = document[key]
    if _integer(value) is not None:
        return None
    return f"invalid: {key} is {_json_kind(value)}, not an integer"


def _json_kind(value: object) -> str:
    """What a parsed JSON value is, for a message: `a string`, `a boolean`, `null`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a floating-point number" if math.isfinite(value) else "an out-of-range number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
