"""Archive a tenant folder to `<state_dir>/backups/<name>-<UTC timestamp>.tar.gz` before a purge.

Everything is read relative to the tenant's directory descriptor without following a symlink.
The archive is written to a hidden temp name (0600, in a 0700 folder), fsynced, read back in full
and compared with what was written (names, sizes, mtimes, SHA-256 of every file), and only then
linked under its final name, which is never overwritten. Members are `<name>/<file>` in PAX
format with nanosecond mtimes, so `tar -xzpf ARCHIVE -C <root>` restores the folder exactly.

A run killed while archiving leaves its temp file (`.<archive name>.<pid>.partial`); the next
archiving removes those whose process is gone and that nobody has written for LEFTOVER_AGE.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from wa_sessions.state import StateError, open_state_folder
from wa_sessions.stores.folder_delete import RESTORING_PREFIX, link_noreplace, remove_own_entry

BACKUPS_DIR = "backups"
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}
_PARTIAL = re.compile(r"\..+\.(\d{1,9})\.partial", re.DOTALL)
#: A temp file written to this recently may belong to a live run in another PID namespace.
LEFTOVER_AGE = 600


class BackupError(Exception):
    """The archive could not be written or did not verify; the folder must not be removed."""


@dataclass(frozen=True, slots=True)
class Member:
    """A regular file as archived: name in the folder, inode, size, mtime (ns), SHA-256."""

    name: str
    inode: int
    size: int
    mtime_ns: int
    sha256: str


def archive_name(folder: str, when: datetime, attempt: int = 0) -> str:
    """`<folder>-<UTC timestamp>.tar.gz` (`company_1-20261122T024100Z.tar.gz`), `-1`, `-2`... on reuse."""
    suffix = f"-{attempt}" if attempt else ""
    return f"{folder}-{when:%Y%m%dT%H%M%SZ}{suffix}.tar.gz"


def _pax_mtime(mtime_ns: int) -> str:
    seconds, nanoseconds = divmod(mtime_ns, 1_000_000_000)
    return f"{seconds}.{nanoseconds:09d}"


class _Hashing:
    """A reader that hashes what passes through it."""

    def __init__(self, reader: BinaryIO):
        self._reader = reader
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size)
        self.digest.update(data)
        return data


@contextlib.contextmanager
def _archive_dir(state_dir: Path, subdir: str) -> Iterator[int]:
    """`<state_dir>/<subdir>` (0700, ours, never through a symlink) as a directory descriptor.
    Raise BackupError."""
    try:
        fd = open_state_folder(state_dir)
        os.close(fd)
        fd = open_state_folder(state_dir / subdir)
    except StateError as error:
        raise BackupError(str(error)) from None
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o700:
            os.fchmod(fd, 0o700)
        yield fd
    finally:
        os.close(fd)


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, as somebody else
        return False
    return False


def _remove_leftovers(backups_fd: int) -> None:
    """Remove the temp files of killed archivings (best effort: a failure only leaves them)."""
    with contextlib.suppress(OSError), os.scandir(backups_fd) as entries:
        for entry in entries:
            match = _PARTIAL.fullmatch(entry.name)
            pid = 0 if match is None else int(match[1])
            if pid in (0, os.getpid()) or not _process_is_gone(pid):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > LEFTOVER_AGE:
                    os.unlink(entry.name, dir_fd=backups_fd)


def _add_folder(tar: tarfile.TarFile, tenant_fd: int, folder: str, names: Sequence[str]) -> list[Member]:
    info = os.fstat(tenant_fd)
    directory = tarfile.TarInfo(folder)
    directory.type = tarfile.DIRTYPE
    directory.mode = stat.S_IMODE(info.st_mode)
    directory.uid, directory.gid = info.st_uid, info.st_gid
    directory.mtime = info.st_mtime_ns // 1_000_000_000
    directory.pax_headers = {"mtime": _pax_mtime(info.st_mtime_ns)}
    tar.addfile(directory)
    members = []
    for name in names:
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=tenant_fd)
        except OSError as error:
            raise BackupError(f"cannot read {name!r}: {error.strerror}") from None
        with os.fdopen(fd, "rb") as reader:
            file_info = os.fstat(fd)
            if not stat.S_ISREG(file_info.st_mode):
                raise BackupError(f"{name!r} is not a regular file")
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size = file_info.st_size
            member.mode = stat.S_IMODE(file_info.st_mode)
            member.uid, member.gid = file_info.st_uid, file_info.st_gid
            member.mtime = file_info.st_mtime_ns // 1_000_000_000
            member.pax_headers = {"mtime": _pax_mtime(file_info.st_mtime_ns)}
            hashing = _Hashing(reader)
            tar.addfile(member, hashing)
            members.append(
                Member(
                    name,
                    file_info.st_ino,
                    file_info.st_size,
                    file_info.st_mtime_ns,
                    hashing.digest.hexdigest(),
                )
            )
    return members


def _verify(backups_fd: int, temp_name: str, folder: str, members: Sequence[Member]) -> None:
    """Read the archive back in full; raise BackupError unless it holds exactly `members`."""
    expected = {f"{folder}/{member.name}": member for member in members}
    seen: set[str] = set()
    try:
        fd = os.open(temp_name, _READ_FLAGS, dir_fd=backups_fd)
        with os.fdopen(fd, "rb") as raw, tarfile.open(fileobj=raw, mode="r:gz", **_ENCODING) as tar:  # type: ignore[call-overload]
            for info in tar:
                if info.isdir() and info.name == folder:
                    continue
                member = expected.get(info.name)
                if member is None or not info.isfile() or info.size != member.size:
                    raise BackupError(f"archive member {info.name!r} does not match the folder")
                if info.pax_headers.get("mtime") != _pax_mtime(member.mtime_ns):
                    raise BackupError(f"archive member {info.name!r} has a wrong mtime")
                extracted = tar.extractfile(info)
                digest = hashlib.sha256()
                if extracted is not None:
                    while chunk := extracted.read(1 << 20):
                        digest.update(chunk)
                if digest.hexdigest() != member.sha256:
                    raise BackupError(f"archive member {info.name!r} does not read back identically")
                seen.add(info.name)
    except (OSError, tarfile.TarError, EOFError) as error:
        raise BackupError(f"archive does not read back: {error}") from None
    if seen != set(expected):
        raise BackupError(f"archive holds {len(seen)} of {len(expected)} files")


def archive_folder(
    state_dir: Path,
    tenant_fd: int,
    folder: str,
    names: Sequence[str],
    when: datetime,
    subdir: str = BACKUPS_DIR,
) -> tuple[Path, list[Member]]:
    """Archive the regular files `names` of the open tenant folder `folder` into
    `<state_dir>/<subdir>`; return the archive's path and what it holds. Raise BackupError (and
    leave no archive) if it cannot be written or does not verify."""
    with _archive_dir(state_dir, subdir) as backups_fd:
        _remove_leftovers(backups_fd)
        temp_name = f".{archive_name(folder, when)}.{os.getpid()}.partial"
        try:
            fd = os.open(
                temp_name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=backups_fd,
            )
        except OSError as error:
            raise BackupError(f"cannot create archive: {error.strerror}") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.PAX_FORMAT, **_ENCODING) as tar:  # type: ignore[call-overload]
                    members = _add_folder(tar, tenant_fd, folder, names)
                raw.flush()
                os.fsync(raw.fileno())
            _verify(backups_fd, temp_name, folder, members)
            final = _link_final(backups_fd, temp_name, folder, when)
            os.fsync(backups_fd)
        except OSError as error:
            raise BackupError(f"cannot write archive: {error.strerror or error}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temp_name, dir_fd=backups_fd)
    return state_dir / subdir / final, members


def verify_archive(state_dir: Path, subdir: str, name: str, folder: str, members: Sequence[Member]) -> None:
    """Check that `<state_dir>/<subdir>/<name>` exists and holds exactly `members` (names, sizes,
    mtimes, SHA-256): what a purge marker must pass before it is trusted. Raise BackupError."""
    if not name or "/" in name or name.startswith("."):
        raise BackupError(f"not an archive name: {name!r}")
    with _archive_dir(state_dir, subdir) as archives_fd:
        _verify(archives_fd, name, folder, members)


def remove_archive(state_dir: Path, subdir: str, name: str) -> None:
    """Remove an archive of ours (the temporary one of a purge without backup). Best effort."""
    with contextlib.suppress(OSError, BackupError), _archive_dir(state_dir, subdir) as archives_fd:
        os.unlink(name, dir_fd=archives_fd)


def restore_missing(
    state_dir: Path, subdir: str, name: str, folder: str, tenant_fd: int
) -> tuple[list[str], list[tuple[str, str]]]:
    """Put back, from the archive, every file of the folder that is no longer there: written to
    a temp name, fsynced, given its mode, owner and mtime, then linked under its name, never
    replacing a file (one a writer made since stays). Return the names put back and the errors."""
    restored: list[str] = []
    errors: list[tuple[str, str]] = []
    prefix = f"{folder}/"
    try:
        with _archive_dir(state_dir, subdir) as archives_fd:
            fd = os.open(name, _READ_FLAGS, dir_fd=archives_fd)
            with os.fdopen(fd, "rb") as raw, tarfile.open(fileobj=raw, mode="r:gz", **_ENCODING) as tar:  # type: ignore[call-overload]
                for info in tar:
                    file_name = info.name[len(prefix) :]
                    if not info.isfile() or not info.name.startswith(prefix) or "/" in file_name:
                        continue
                    try:
                        if _restore_member(tar, info, file_name, tenant_fd):
                            restored.append(file_name)
                    except OSError as error:
                        errors.append((file_name, f"cannot put back: {error.strerror or error}"))
    except (OSError, tarfile.TarError, EOFError, BackupError) as error:
        errors.append((folder, f"cannot read archive {name}: {error}"))
    return restored, errors


def _restore_member(tar: tarfile.TarFile, info: tarfile.TarInfo, name: str, tenant_fd: int) -> bool:
    """Put one archived file back under `name` unless that name exists; return whether it did."""
    try:
        os.stat(name, dir_fd=tenant_fd, follow_symlinks=False)
        return False
    except FileNotFoundError:
        pass
    temp = RESTORING_PREFIX + name
    remove_own_entry(tenant_fd, temp)  # never write through a planted name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o600, dir_fd=tenant_fd)
    with os.fdopen(fd, "wb") as writer:
        source = tar.extractfile(info)
        if source is not None:
            while chunk := source.read(1 << 20):
                writer.write(chunk)
        writer.flush()
        os.fsync(fd)
        os.fchmod(fd, info.mode & 0o7777)
        if os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.fchown(fd, info.uid, info.gid)
        mtime = info.pax_headers.get("mtime")
        mtime_ns = _ns_of_pax(mtime) if mtime else int(info.mtime) * 1_000_000_000
        os.utime(fd, ns=(mtime_ns, mtime_ns))
    if link_noreplace(temp, name, tenant_fd):
        remove_own_entry(tenant_fd, temp)
    return True


def _ns_of_pax(value: str) -> int:
    seconds, _, fraction = value.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def _link_final(backups_fd: int, temp_name: str, folder: str, when: datetime) -> str:
    """Give the verified archive its final name without ever replacing an existing archive."""
    for attempt in range(100):
        final = archive_name(folder, when, attempt)
        try:
            os.link(temp_name, final, src_dir_fd=backups_fd, dst_dir_fd=backups_fd, follow_symlinks=False)
        except FileExistsError:
            continue
        return final
    raise BackupError(f"too many archives named {archive_name(folder, when)}")
