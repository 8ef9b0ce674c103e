"""Tables for people: a Rich table on a terminal (never cutting what must stay whole), aligned
plain text otherwise; sizes in IEC units (KiB, MiB, GiB) and counts with their noun."""

from __future__ import annotations

import os
import sys
from collections.abc import Container, Sequence
from typing import TYPE_CHECKING, Literal, TextIO

from wa_sessions.output.escape import one_line

if TYPE_CHECKING:
    from wa_sessions.results import StoreMemory


def human_bytes(size: float) -> str:
    """A size in IEC units (KiB = 1024 bytes): `1 byte`, `512 bytes`, `1.5 KiB`, `72.7 GiB`."""
    if abs(size) < 1024:
        return "1 byte" if size == 1 else f"{size:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if abs(size) < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def count_of(count: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


_FOLDED_WIDTH = 12  # the narrowest a foldable column gets on a narrow terminal


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    stream: TextIO | None = None,
    *,
    foldable: Container[int] = (),
) -> None:
    """A Rich table on a terminal, fitted to its width; aligned plain text otherwise, never cut.
    On a terminal the columns not in `foldable` (company ids, counts, sizes) are never cut nor
    wrapped; the `foldable` ones wrap when the terminal is too narrow."""
    stream = stream or sys.stdout
    title = one_line(title)
    rows = [[one_line(cell) for cell in row] for row in rows]
    if _rich(stream) and fits(headers, rows, stream, foldable=foldable):
        _rich_table(title, headers, rows, stream, foldable)
        return
    # Off a terminal, or too wide even with the foldable columns folded: plain lines, which a
    # terminal wraps, rather than a company id or a count cut short.
    _plain_table(title, headers, rows, stream)


def _rich(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def fits(
    headers: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO, *, foldable: Container[int] = ()
) -> bool:
    """Whether the table fits the width of the terminal `stream` is (always, off a terminal: plain
    text is never cut), its `foldable` columns folded."""
    if not _rich(stream):
        return True
    from rich.console import Console

    widest = [max((len(header), *(len(row[index]) for row in rows))) for index, header in enumerate(headers)]
    narrowest = [min(width, _FOLDED_WIDTH) if i in foldable else width for i, width in enumerate(widest)]
    # Each column is followed by one space of padding and one of the frame.
    return sum(narrowest) + 2 * len(headers) <= Console(file=stream).width


def _plain_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], stream: TextIO) -> None:
    """Aligned plain text: the title, the headers, one line per row; nothing cut."""
    widths = [
        max(len(header), *(len(row[i]) for row in rows)) if rows else len(header)
        for i, header in enumerate(headers)
    ]
    stream.write(f"{title}\n")
    for row in (headers, *rows):
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        stream.write("  ".join(cells).rstrip() + "\n")


def _rich_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    stream: TextIO,
    foldable: Container[int],
) -> None:
    # Imported here: only a terminal needs Rich, and cron and scripts should not pay for it.
    from rich import box
    from rich.console import Console
    from rich.table import Table

    # No markup, emoji codes or highlighting: a name is shown as the characters it is.
    console = Console(file=stream, markup=False, emoji=False, highlight=False)
    widest = [max((len(header), *(len(row[index]) for row in rows))) for index, header in enumerate(headers)]
    # A light frame (no vertical rules): eight columns of counts fit in 80 columns.
    # The title is a line of its own, not Rich's centred title: Rich would wrap it mid-name (a root
    # path), the terminal only where the line ends.
    stream.write(title + "\n")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for index, header in enumerate(headers):
        if index in foldable:
            table.add_column(
                header, justify="left", overflow="fold", min_width=min(widest[index], _FOLDED_WIDTH)
            )
        else:  # never cut: as wide as its widest cell, on one line
            justify: Literal["left", "right"] = "left" if index == 0 else "right"
            table.add_column(header, justify=justify, no_wrap=True, min_width=widest[index])
    for row in rows:
        table.add_row(*row)
    console.print(table)


def memory_line(memory: StoreMemory) -> str:
    """A store's server memory, or its table's size, on one line (what the disk line is for
    folders)."""
    if memory.kind == "table":
        return f"table size of {memory.server}: {human_bytes(memory.used_bytes)}"
    if not memory.max_bytes:
        return f"memory of {memory.server}: {human_bytes(memory.used_bytes)} used, no maxmemory set"
    share = memory.used_bytes * 100 // memory.max_bytes
    return (
        f"memory of {memory.server}: {human_bytes(memory.used_bytes)} used of "
        f"{human_bytes(memory.max_bytes)} maxmemory ({share}%)"
    )
