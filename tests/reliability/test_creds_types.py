"""A pre-key bound of the wrong type in creds.json (issue "Safety on every path", bug 12).

The newest pre-key guard (SPEC §2) keeps the pre-keys Baileys still hands out: ids at or above
`firstUnuploadedPreKeyId` and `nextPreKeyId - 1`. A bound of the wrong type ("75", 75.0, true,
null, a list) used to be ignored, so the cap ran on the other bound alone and could delete
pre-keys the server still hands to new contacts. Now it makes creds.json `invalid`: no pre-key is
pruned, a note says why, and the rest of the cleanup (old sessions) goes on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .support import put, run_cli

ME = {"id": "15550000000:1@s.whatsapp.net"}
PRE_KEYS = 120  # over the default cap of 50
OLD_SESSION = "session-15550000001.0.json"


def _tenant(root: Path, creds: dict[str, Any]) -> Path:
    tenant = root / "company_1"
    tenant.mkdir(parents=True)
    put(tenant, "creds.json", 0, json.dumps({"me": ME, **creds}))
    for key_id in range(1, PRE_KEYS + 1):
        put(tenant, f"pre-key-{key_id}.json", 30)
    put(tenant, OLD_SESSION, 30)
    return tenant


WRONG = {
    "a string": "75",
    "a floating-point number": 75.0,
    "a boolean": True,
    "null": None,
    "a list": [75],
    "an object": {"id": 75},
}


@pytest.mark.parametrize("key", ["firstUnuploadedPreKeyId", "nextPreKeyId"])
@pytest.mark.parametrize("kind", list(WRONG))
def test_a_bound_of_the_wrong_type_stops_pre_key_pruning_only(tmp_path: Path, key: str, kind: str) -> None:
    creds = {"nextPreKeyId": 121, "firstUnuploadedPreKeyId": 121, key: WRONG[kind]}
    tenant = _tenant(tmp_path / "root", creds)

    result = run_cli("cleanup", "--root", tmp_path / "root", "--json", env={})

    assert result.returncode == 0, result.stderr
    (outcome,) = json.loads(result.stdout)["tenants"]
    deleted = {item["file"] for item in outcome["deleted"]}
    assert deleted == {OLD_SESSION}, f"pre-keys deleted with {key} = {WRONG[kind]!r}: {sorted(deleted)[:5]}"
    assert all((tenant / f"pre-key-{key_id}.json").exists() for key_id in range(1, PRE_KEYS + 1))
    assert any(
        note.startswith("pre-keys not pruned: creds.json is invalid") and key in note and kind in note
        for note in outcome["notes"]
    ), outcome["notes"]


def test_integer_bounds_prune_to_the_cap(tmp_path: Path) -> None:
    """The control: the same tenant with integer bounds loses its oldest pre-keys."""
    tenant = _tenant(tmp_path / "root", {"nextPreKeyId": 121, "firstUnuploadedPreKeyId": 121})

    result = run_cli("cleanup", "--root", tmp_path / "root", "--json", env={})

    assert result.returncode == 0, result.stderr
    (outcome,) = json.loads(result.stdout)["tenants"]
    deleted = {item["file"] for item in outcome["deleted"]}
    assert OLD_SESSION in deleted
    assert len([name for name in deleted if name.startswith("pre-key-")]) == PRE_KEYS - 50
    assert (tenant / f"pre-key-{PRE_KEYS}.json").exists()
