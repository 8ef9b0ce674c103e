"""What wa-sessions is measured against: the commands a platform would run instead.

- `find -printf` lists what the scan and the dry run read (one fstatat and one line per file);
- the Node planner (bench/node_planner.mjs) is what platforms' own scripts do for a dry run:
  `readdirSync` + `statSync` per file, classify by prefix, plan by age, print JSON lines;
- the *equivalent pipeline* deletes exactly the files `wa-sessions cleanup` deletes with the
  default rules (SPEC §2, §8) with a constant number of processes, whatever the tenant count: one
  `find | sort | awk | xargs rm` for the pre-key cap (keep the newest 50 by id per tenant) and the
  `sender-key-memory` partners of our own sender keys that the age rule deletes, then one
  `find -delete` for the age rules (sessions older than 14 days, sender keys older than 3 days).
  The benchmark checks, on copies of the same tree, that it leaves the same files as wa-sessions;
- the *bare one-liner* is the `find -delete` alone, as usually written (no pre-key cap, and
  `sender-key-*` taking the `sender-key-memory` files with it): less work than wa-sessions does,
  printed for scale, never used for a ratio.

The pipeline knows our own account's number (the synthetic fleet's, the same in every tenant);
a real one would read it from each creds.json, which it is spared here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wa_sessions.demo import OWN_PHONE

NODE_PLANNER = Path(__file__).with_name("node_planner.mjs")
FIND_PRINTF = "%s %T@ %f\\n"
SESSION_MINUTES = 14 * 24 * 60  # rules.session.max_age 14d
SENDER_KEY_MINUTES = 3 * 24 * 60  # rules.sender-key.max_age 3d
PRE_KEYS_KEPT = 50  # rules.pre-key.keep_newest 50

EQUIVALENT_PIPELINE = rf"""
root="$1"; own="$2"; tab=$(printf '\t')
find "$root" -mindepth 2 -maxdepth 2 -type f \( -name 'pre-key-*.json' \
    -o -name "sender-key-*--$own--*" ! -name 'sender-key-memory-*' -mmin +{SENDER_KEY_MINUTES} \) \
    -printf '%h\t%f\n' \
  | sort -t "$tab" -k1,1 -k2,2Vr \
  | awk -F "$tab" -v keep={PRE_KEYS_KEPT} '
      $2 ~ /^pre-key-/ {{ if ($1 != dir) {{ dir = $1; n = 0 }} if (++n > keep) print $1 "/" $2; next }}
      {{ group = $2; sub(/^sender-key-/, "", group); sub(/--.*$/, "", group)
        print $1 "/sender-key-memory-" group ".json" }}' \
  | xargs -r -d '\n' rm -f --
find "$root" -mindepth 2 -maxdepth 2 -type f \( -name 'session-*' -mmin +{SESSION_MINUTES} \
    -o -name 'sender-key-*' ! -name 'sender-key-memory-*' -mmin +{SENDER_KEY_MINUTES} \) -delete
"""

BARE_ONE_LINER = rf"""
find "$1" -mindepth 2 -maxdepth 2 -type f \( -name 'session-*' -mmin +{SESSION_MINUTES} \
    -o -name 'sender-key-*' -mmin +{SENDER_KEY_MINUTES} \) -delete
"""

# peer name -> how the README and the tables call it
NAMES = {
    "find": "`find -printf '%s %T@ %f\\n'`",
    "node": "Node `readdirSync`+`statSync` planner",
    "equivalent": "equivalent pipeline (`find -delete` + one `find \\| sort \\| awk \\| xargs rm`)",
    "bare": "bare `find -delete` one-liner (no pre-key cap)",
}


def ours(*arguments: str, jobs: int | None) -> list[str]:
    command = [sys.executable, "-m", "wa_sessions", *arguments]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    return command


def find_printf(root: Path) -> list[str]:
    return ["find", str(root), "-mindepth", "2", "-maxdepth", "2", "-printf", FIND_PRINTF]


def node_planner(root: Path) -> list[str]:
    return ["node", str(NODE_PLANNER), str(root)]


def equivalent_pipeline(root: Path) -> list[str]:
    return ["sh", "-c", EQUIVALENT_PIPELINE, "equivalent-pipeline", str(root), OWN_PHONE]


def bare_one_liner(root: Path) -> list[str]:
    return ["sh", "-c", BARE_ONE_LINER, "bare-one-liner", str(root)]


def remaining_files(root: Path, listing: Path) -> int:
    """Write the sorted `tenant/file` names under `root` (dot-entries, ours, left out) to
    `listing`; return how many. Streams: the benchmark's own process stays small."""
    find = subprocess.Popen(
        ["find", str(root), "-mindepth", "2", "-maxdepth", "2", "-printf", "%P\\n"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    sort = subprocess.Popen(
        ["sort", "-o", str(listing)],
        stdin=subprocess.PIPE,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    assert find.stdout is not None and sort.stdin is not None
    count = 0
    for line in find.stdout:
        tenant, _, name = line.partition(b"/")
        if not tenant.startswith(b".") and not name.startswith(b"."):
            sort.stdin.write(line)
            count += 1
    sort.stdin.close()
    if find.wait() or sort.wait():
        raise RuntimeError(f"listing {root} failed")
    return count


def check_same_files(ours_listing: Path, pipeline_listing: Path) -> None:
    """Raise RuntimeError, naming a few of the files, when the two listings differ."""
    same = subprocess.run(["cmp", "-s", str(ours_listing), str(pipeline_listing)], check=False)
    if same.returncode == 0:
        return
    diff = subprocess.run(
        ["diff", str(ours_listing), str(pipeline_listing)], capture_output=True, text=True, check=False
    )
    lines = diff.stdout.splitlines()
    raise RuntimeError(
        f"the equivalent pipeline and wa-sessions cleanup left different files ({len(lines)} diff lines; "
        "'<' only wa-sessions left, '>' only the pipeline left):\n" + "\n".join(lines[:20])
    )
