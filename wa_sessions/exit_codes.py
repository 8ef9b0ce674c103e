"""Each command's exit codes (SPEC §7, as the README's "Exit codes, command by command" table
says them; tests/cli/test_help_cli.py keeps the two equal), shown at the end of its --help. A code
a command never returns is left out. A new command adds its row here and in the README."""

from __future__ import annotations

EXIT_CODES: dict[str, dict[int, str]] = {
    "scan": {
        0: "read",
        1: "a tenant folder could not be read; --fail-on tripped",
        2: "usage or config error; no tenant under root",
    },
    "cleanup": {
        0: "done, or nothing to delete; without --company, busy tenants skipped",
        1: "a file or tenant failed",
        2: "usage or config error; no tenant under root",
        3: "a tenant named with --company stayed busy",
    },
    "emergency-cleanup": {
        0: "done; without --company, busy tenants (or folders) skipped; paired folders skipped by a purge",
        1: "a file or tenant failed; a backup failed (nothing removed)",
        2: "usage or config error; no tenant under root; purge without --yes; bad --older-than",
        3: "a tenant named with --company stayed busy",
    },
    "multitenant-cleanup": {
        0: "done; busy or cooling-down tenants skipped",
        1: "a tenant failed (the others were cleaned); cooldowns not saved",
        2: "usage or config error; no tenant under root",
        3: "another multitenant-cleanup holds the run lock (silent with --quiet)",
    },
    "report": {
        0: "written",
        1: "a tenant folder could not be read; --output could not be written",
        2: "usage or config error; no tenant under root",
    },
    "demo": {0: "created", 1: "a file could not be written", 2: "usage error"},
    "config show": {0: "shown", 2: "invalid (every bad key named)"},
    "config validate": {
        0: "valid",
        2: "invalid (every bad key named); root missing; state dir cannot be created",
    },
    "config generate": {0: "printed or written", 1: "a unit could not be written", 2: "usage error"},
    "explain": {
        0: "explained",
        1: "a tenant folder could not be read",
        2: "usage or config error; a path outside root; no such tenant or file",
    },
    "history": {
        0: "listed (also: nothing recorded)",
        1: "the history could not be read",
        2: "usage or config error; bad --since; no root",
    },
}


def epilog(command: str) -> str:
    """The epilog of `command`'s --help: its exit codes, one per line (`\\b`: not rewrapped)."""
    lines = [f"  {code}  {meaning}" for code, meaning in EXIT_CODES[command].items()]
    return "\b\nExit codes:\n" + "\n".join(lines)
