"""Names as one line of human output: control and bidirectional characters shown escaped."""

from __future__ import annotations

# Control characters (a newline or an escape sequence in a crafted file name) shown escaped, and
# the bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its kin), which make a terminal
# show the rest of a line in another order: `pre-key-1\u202enosj.txt` would read `pre-key-1txt.json`.
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_CONTROL = (
    {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
    | {code: f"\\u{code:04x}" for code in (0x2028, 0x2029, *_BIDI)}
    | {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
)


def one_line(text: str) -> str:
    """Text as one line of human output: control characters and bidirectional controls are shown
    escaped (`\\n`, `\\x1b`, `\\u202e`), so a file or folder name cannot forge, split, hide or
    reorder lines of what operators read."""
    return text.translate(_CONTROL)
