"""The folder store (SPEC §1, §9): tenants are folders under `root`, keys are files.

Nothing here follows a symlink: the root is opened once, tenants relative to its descriptor with
O_NOFOLLOW, entries are examined with fstatat(AT_SYMLINK_NOFOLLOW) (listing.py), and creds.json
is read without following a link or blocking on a FIFO. The checked delete is folder_delete.py's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Container, Iterator, Sequence, Set
from pathlib import Path

from wa_sessions import layout
from wa_sessions.config import Settings
from wa_sessions.creds import CREDS_MAX_BYTES, parse_creds
from wa_sessions.errors import UsageError
from wa_sessions.history import LazyHistory
from wa_sessions.layout import Creds
from wa_sessions.listing import listing
from wa_sessions.locks import tenant_lock, tenant_lock_is_held
from wa_sessions.results import DiskUsage
from wa_sessions.rules import Deletion
from wa_sessions.scan import TenantScan, scan_listing
from wa_sessions.stores import Tenant, TenantUnavailable, folder_delete

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
STATE_SUBFOLDERS = ("backups", "purging")


class FolderKeys:
    """One tenant folder, open as a directory descriptor (`fd`)."""

    def __init__(self, fd: int):
        self.fd = fd

    def scan(self, now: float | None = None, keep: Container[str] | None = None) -> TenantScan:
        return scan_tenant(self.fd, now, keep=keep)

    def lock(self, wait_seconds: float) -> contextlib.AbstractContextManager[None]:
        return tenant_lock(self.fd, wait_seconds)

    def lock_is_held(self) -> bool:
        return tenant_lock_is_held(self.fd)

    def recover(self, company: str, history: LazyHistory) -> list[str]:
        return folder_delete.recover_leftovers(self.fd, company, history)

    def changed(self, deletion: Deletion) -> str | None:
        """None, without a look: a folder's key is checked by `delete_unless_changed` once it is
        set aside, where no writer can overtake the check (folder_delete.py); a look here too
        would be a second fstatat per deleted file."""
        return None

    def delete_unless_changed(self, deletion: Deletion) -> str | None:
        return folder_delete.unlink_unless_changed(deletion, self.fd)


class FolderStore:
    """The tenant folders under `settings.root`, opened once as `root_fd`."""

    def __init__(self, settings: Settings, root_fd: int):
        self.settings = settings
        self.root_fd = root_fd

    def tenants(self, companies: Sequence[str]) -> list[Tenant]:
        return select_tenants(self.settings, self.root_fd, companies)

    @contextlib.contextmanager
    def open(self, tenant: Tenant) -> Iterator[FolderKeys]:
        with open_tenant(self.root_fd, tenant) as fd:
            yield FolderKeys(fd)

    def disk(self) -> DiskUsage | None:
        return disk_usage(self.settings.root)


@contextlib.contextmanager
def open_folder_store(settings: Settings) -> Iterator[FolderStore]:
    """The sessions root as a store. Raise UsageError if it is not a readable folder."""
    try:
        root_fd = open_root(settings.root)
    except TenantUnavailable as error:
        raise UsageError(str(error)) from None
    try:
        yield FolderStore(settings, root_fd)
    finally:
        os.close(root_fd)


def scan_tenant(
    tenant_fd: int, now: float | None = None, *, keep: Container[str] | None = None
) -> TenantScan:
    """Given a tenant's directory descriptor, scan it (scan.scan_listing): counts, bytes, creds,
    problems, and the entries of the `keep` categories (None: every entry). Raise
    TenantUnavailable if it cannot be listed."""

    def creds_of(names: Set[str]) -> Creds:
        return read_creds(tenant_fd, names)

    try:
        with contextlib.closing(listing(tenant_fd)) as listed:  # its descriptor closed, come what may
            return scan_listing(listed, now, keep, creds_of)
    except OSError as error:
        raise TenantUnavailable(f"cannot list tenant folder: {error.strerror}") from None


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


def read_creds(tenant_fd: int, names: Container[str]) -> Creds:
    """Read creds.json (or, when it is missing, creds.json.bak, as Baileys does) without following
    a symlink or blocking on a FIFO. Only reads; never writes."""
    for source in (layout.CREDS_FILE, layout.CREDS_FILE + ".bak"):
        if source in names:
            return parse_creds(_read_small(tenant_fd, source), source)
    return Creds("missing")


def _read_small(tenant_fd: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=tenant_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, CREDS_MAX_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


def select_tenants(settings: Settings, root_fd: int, companies: Sequence[str]) -> list[Tenant]:
    """The tenants named (by id or folder name), or every tenant when none is named.
    Raise UsageError when no folder matches the tenant pattern, or naming a company with no folder."""
    try:
        # Paths shown absolute: the root resolved, each tenant under it by name (a tenant that is a
        # symlink is shown where it is, never where it points).
        tenants = list_tenants(settings.root.resolve(), root_fd, settings.tenant_pattern)
    except OSError as error:
        raise UsageError(f"cannot list root {settings.root}: {error.strerror}") from None
    tenants = _without_state_folders(settings, root_fd, tenants)
    if not tenants:  # a wrong root is an error, never a silent success (SPEC §4)
        raise UsageError(
            f"no tenant folder under {settings.root} matches tenant_pattern {settings.tenant_pattern!r}"
        )
    if not companies:
        return tenants
    chosen: dict[str, Tenant] = {}
    for company in companies:
        matches = [tenant for tenant in tenants if company in (tenant.company, tenant.name)]
        if not matches:
            raise UsageError(f"no tenant folder for company {company!r} under {settings.root}")
        for tenant in matches:
            chosen[tenant.name] = tenant
    return sorted(chosen.values(), key=lambda tenant: (tenant.company, tenant.name))


STATE_SUBFOLDERS = ("backups", "purging")


def _without_state_folders(settings: Settings, root_fd: int, tenants: list[Tenant]) -> list[Tenant]:
    """The tenants, less the state dir and its own folders (backups/, purging/): with
    `state_dir` = root or a folder under root, a pattern like `*` would take them for tenants."""
    state_dir = settings.effective_state_dir
    ours = set()
    for folder in (state_dir, *(state_dir / name for name in STATE_SUBFOLDERS)):
        with contextlib.suppress(OSError):
            info = os.stat(folder, follow_symlinks=False)
            ours.add((info.st_dev, info.st_ino))
    if not ours:
        return tenants
    kept = []
    for tenant in tenants:
        try:
            info = os.stat(tenant.name, dir_fd=root_fd, follow_symlinks=False)
        except OSError:
            kept.append(tenant)
            continue
        if (info.st_dev, info.st_ino) not in ours:
            kept.append(tenant)
    return kept


def disk_usage(root: Path) -> DiskUsage | None:
    try:
        info = os.statvfs(root)
    except OSError:
        return None
    return DiskUsage(
        bytes_total=info.f_blocks * info.f_frsize,
        bytes_free=info.f_bavail * info.f_frsize,
        inodes_total=info.f_files,
        inodes_free=info.f_favail,
    )
