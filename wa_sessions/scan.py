"""Read tenant folders: one scandir per tenant, lstat only, relative to directory descriptors.

Nothing here follows a symlink: tenants are opened with O_NOFOLLOW relative to the root's
descriptor, and entries are examined with fstatat(AT_SYMLINK_NOFOLLOW).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wa_sessions import layout
from wa_sessions.layout import Creds, Entry

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CREDS_MAX_BYTES = 4 * 1024 * 1024
_PROBLEMS_PER_KIND = 20


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
    """Everything one scandir of a tenant folder saw."""

    entries: list[Entry]
    creds: Creds
    problems: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def bytes(self) -> int:
        return sum(entry.size for entry in self.entries)

    def categories(self) -> dict[str, int]:
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


def scan_tenant(tenant_fd: int, now: float | None = None) -> TenantScan:
    """Given a tenant's directory descriptor, return its entries (dot-entries left out), what
    creds.json says, and the problems seen. Raise TenantUnavailable if it cannot be listed.

    `now` (epoch seconds) is only used to report mtimes in the future.
    """
    entries: list[Entry] = []
    problems: dict[str, list[str]] = {}
    try:
        listing = os.scandir(tenant_fd)
    except OSError as error:
        raise TenantUnavailable(f"cannot list tenant folder: {error.strerror}") from None
    with listing:
        for dir_entry in listing:
            name = dir_entry.name
            if layout.is_own_entry(name):
                continue
            try:
                info = dir_entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as error:
                _add(problems, "unreadable", f"cannot stat {layout.display_name(name)}: {error.strerror}")
                continue
            entries.append(_entry(name, info))
    for entry in entries:
        _note_problems(entry, problems, now)
    creds = read_creds(tenant_fd, {entry.name for entry in entries})
    if creds.state != "ok":
        problems.setdefault("creds", []).insert(0, f"creds.json is {creds.state}")
    return TenantScan(entries, creds, _flatten(problems))


def _entry(name: str, info: os.stat_result) -> Entry:
    regular = stat.S_ISREG(info.st_mode)
    if regular:
        classified = layout.classify_name(name)
        category, key_name, pre_key_id = classified.category, classified.key_name, classified.pre_key_id
    else:
        category, key_name, pre_key_id = layout.UNKNOWN, name, None
    return Entry(
        name=name,
        category=category,
        key_name=key_name,
        regular=regular,
        kind=_kind(info.st_mode),
        inode=info.st_ino,
        size=info.st_size,
        mtime_ns=info.st_mtime_ns,
        pre_key_id=pre_key_id,
    )


def _note_problems(entry: Entry, problems: dict[str, list[str]], now: float | None) -> None:
    shown = layout.display_name(entry.name)
    if not entry.regular:
        _add(problems, "not-regular", f"not a regular file ({entry.kind}): {shown}")
    elif entry.size == 0 and entry.category not in (layout.UNKNOWN, layout.CREDS):
        _add(problems, "empty", f"empty key file: {shown}")
    if now is not None and entry.mtime_ns / 1e9 > now + 60:
        _add(problems, "future", f"modified in the future (clock moved back?), age taken as 0: {shown}")


def _add(problems: dict[str, list[str]], kind: str, message: str) -> None:
    problems.setdefault(kind, []).append(message)


def _flatten(problems: dict[str, list[str]]) -> list[str]:
    flat = []
    for messages in problems.values():
        flat.extend(messages[:_PROBLEMS_PER_KIND])
        if len(messages) > _PROBLEMS_PER_KIND:
            flat.append(f"... and {len(messages) - _PROBLEMS_PER_KIND} more like the above")
    return flat


def read_creds(tenant_fd: int, names: set[str]) -> Creds:
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
    next_pre_key_id = _integer(document.get("nextPreKeyId"))
    return Creds(
        "ok" if next_pre_key_id is not None else "without nextPreKeyId",
        next_pre_key_id=next_pre_key_id,
        first_unuploaded_pre_key_id=_integer(document.get("firstUnuploadedPreKeyId")),
        own_users=frozenset(own_users),
        source=source,
    )


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
