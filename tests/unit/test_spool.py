"""spool.py: text from forked workers reaches the output whole and in the parent's order."""

from __future__ import annotations

import io
import os
from pathlib import Path

from wa_sessions import parallel
from wa_sessions.spool import Spool

TEXTS = [f'{{"company": "{index}", "note": "é {"x" * (index * 37 % 900)}"}}' for index in range(120)]


def _spooled(spool: Spool) -> list[tuple[int, int]]:
    return list(parallel.ordered_map(spool.put, TEXTS, 3))


def test_pieces_put_by_workers_are_copied_to_a_file_in_order(tmp_path: Path) -> None:
    with Spool("utf-8", "strict") as spool, (tmp_path / "out").open("w", encoding="utf-8") as out:
        for piece in _spooled(spool):
            out.write("|")
            spool.copy_to(piece, out)
    assert (tmp_path / "out").read_text(encoding="utf-8") == "".join("|" + text for text in TEXTS)


def test_pieces_copied_to_a_pipe_stay_intact_after_they_are_freed() -> None:
    """A pipe is read after the copy: what it holds must not be the spool's pages lent to it
    (sendfile into a pipe), which freeing the piece would change."""
    with Spool("utf-8", "strict") as spool:
        pieces = _spooled(spool)
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "w", encoding="utf-8") as out:
            for piece in pieces[:5]:  # well under a pipe's 64 KiB: no reader needed meanwhile
                spool.copy_to(piece, out)
        with os.fdopen(read_end, "rb") as received:
            assert received.read().decode("utf-8") == "".join(TEXTS[:5])


def test_a_stream_without_a_descriptor_gets_the_text() -> None:
    with Spool("utf-8", "strict") as spool:
        out = io.StringIO()
        for piece in _spooled(spool):
            spool.copy_to(piece, out)
    assert out.getvalue() == "".join(TEXTS)
