"""Text from worker processes to the parent through one shared temporary file, not the pool's pipe.

With `--jobs`, each worker renders its tenants' output (a dry run of a fleet: about 100 bytes a
file it would delete). Pickled back through the pool's pipe, every byte was encoded, pickled,
copied into the pipe, out of it, unpickled and written again by the parent; here the worker
writes the bytes once, at an offset it reserves under a lock, into an unnamed temporary file the
parent opened before forking, and sends back only that offset and length (a `Piece`). The parent
copies each piece to its output in tenant order (to a file with `sendfile`, no copy through
Python; to a pipe with one `pread` and `write`), then frees its blocks (`fallocate(PUNCH_HOLE)`), so the file never holds more than the pieces still in
flight, whatever the size of the fleet.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import stat
import tempfile
from collections.abc import Callable
from typing import NamedTuple, TextIO, cast

_PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


class Piece(NamedTuple):
    """Where one worker's text is in the spool: what goes back through the pool's pipe."""

    offset: int
    length: int


@functools.cache
def _libc_fallocate() -> Callable[[int, int, int, int], int] | None:
    import ctypes  # here: only a run with worker processes needs it

    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


class Spool:
    """An unnamed temporary file that forked workers `put` text into and the parent copies from.
    Made before the workers are forked (they inherit its descriptor and lock)."""

    def __init__(self, encoding: str, errors: str):
        self._file = tempfile.TemporaryFile()  # noqa: SIM115  # closed by close()
        self._fd = self._file.fileno()
        import multiprocessing  # here: only a run with worker processes needs it

        self._lock = multiprocessing.get_context("fork").Lock()
        self._encoding = encoding
        self._errors = errors

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self._file.close()

    def put(self, text: str) -> Piece:
        """In a worker: append `text` (encoded as the output will be) and say where it is."""
        data = text.encode(self._encoding, self._errors)
        length = len(data)
        with self._lock:
            offset = os.lseek(self._fd, 0, os.SEEK_END)
            _write_all(self._fd, data)
        return Piece(offset, length)

    def read(self, piece: Piece) -> str:
        """In the parent: a piece as text (then freed)."""
        text = os.pread(self._fd, piece.length, piece.offset).decode(self._encoding, self._errors)
        self._free(piece)
        return text

    def copy_to(self, piece: Piece, out: TextIO) -> None:
        """In the parent: write a piece to `out` after what `out` holds, straight from the file
        to `out`'s descriptor where it has one (else through Python); then free it."""
        try:
            out_fd = out.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            out.write(self.read(piece))
            return
        out.flush()
        offset, left = piece
        if not stat.S_ISREG(os.fstat(out_fd).st_mode):
            # sendfile into a pipe lends it the page cache's pages (splice): freeing them below
            # would change what the reader gets. Copied instead.
            _write_all(out_fd, os.pread(self._fd, left, offset))
            left = 0
        while left:
            try:
                sent = os.sendfile(out_fd, self._fd, offset, left)
            except OSError:  # not to this kind of descriptor: write what is left ourselves
                _write_all(out_fd, os.pread(self._fd, left, offset))
                break
            if sent == 0:
                break
            offset += sent
            left -= sent
        self._free(piece)

    def _free(self, piece: Piece) -> None:
        fallocate = _libc_fallocate()
        if fallocate is not None and piece.length:
            with contextlib.suppress(OSError):
                fallocate(self._fd, _PUNCH_HOLE_KEEP_SIZE, piece.offset, piece.length)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
