"""Only the deletion engine removes anything from a tenant folder: every call that unlinks,
removes or renames a path in wa_sessions/ is in a module allowed to make it, and tenant folders
are only touched by stores/folder_delete.py (the folder store's checked delete)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "wa_sessions"
REMOVING = {"unlink", "remove", "rmdir", "rename", "replace", "rmtree", "removedirs"}

# Module -> how many removing calls it may make, and on what.
ALLOWED = {
    "stores/folder_delete.py": 8,  # tenant files: set aside, unlink, put back, our temp entries, the emptied folder
    "state.py": 4,  # the state dir's own files: stale temps, remove_state_file, write_atomically
    "backup.py": 3,  # the backups folder: stale temp archives, a temp archive, remove_archive
    "history_totals.py": 1,  # history.jsonl -> history.jsonl.1 (rotation)
}


def _removing_calls(path: Path) -> int:
    count = 0
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REMOVING:
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in {"os", "shutil"}:
                count += 1
    return count


def test_only_the_allowed_modules_unlink_remove_or_rename() -> None:
    found = Counter(
        {
            str(path.relative_to(PACKAGE)): calls
            for path in PACKAGE.rglob("*.py")
            if (calls := _removing_calls(path))
        }
    )
    assert dict(found) == ALLOWED
