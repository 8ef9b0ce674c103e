"""What every command of the CLI shares: the option declarations, how a style and the settings
are made from them, and the scaffold that runs an action (`execute`, `guarded`): errors become one
line on stderr and a SPEC §7 exit code."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from wa_sessions import output

if TYPE_CHECKING:
    from wa_sessions.config import Settings
    from wa_sessions.results import Result


class Level(StrEnum):
    warning = "warning"
    critical = "critical"
    trigger = "trigger"
    emergency = "emergency"
    danger = "danger"


# The root as typed (a str: typer would turn `--root ''` into Path('.'), the current directory;
# the configuration refuses an empty root instead).
RootOption = Annotated[
    str | None,
    typer.Option(
        "--root",
        metavar="PATH",
        help="Sessions root (config `root`, env WA_SESSIONS_ROOT).",
        show_default=False,
    ),
]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="Auth store instead of the folders under root: redis://[user:pass@]host:port/db?prefix=evolution-cache "
        "or mysql://user:pass@host:port/database?table=auth (config `store`, env WA_SESSIONS_STORE).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", metavar="FILE", help="YAML config file (env WA_SESSIONS_CONFIG).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Errors only (silent cron mail on success).")
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="List every deleted file with its reason (a dry run always does), and each tenant's problems.",
    ),
]
# Accepted by every command (SPEC §4) but not offered where it changes nothing (scan, config).
UnusedVerboseOption = Annotated[bool, typer.Option("--verbose", "-v", hidden=True)]
CompanyOption = Annotated[
    list[str] | None,
    typer.Option(
        "--company",
        metavar="ID",
        help="Company id (962302) or folder name (company_962302); repeatable.",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", "-n", help="Touch nothing; show what a real run would delete.")
]
SummaryOption = Annotated[
    bool,
    typer.Option(
        "--summary", help="Only the totals and the counts per category, not every file (big fleets)."
    ),
]
JobsOption = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        min=0,
        metavar="N",
        help="Work on tenants in N processes; 0 (default): one per CPU when the fleet is large enough.",
    ),
]


def fail(message: str, code: int) -> NoReturn:
    """Print one line on stderr (output.error_line) and exit with `code`."""
    output.error_line(message)
    raise typer.Exit(code)


def style_of(
    json_output: bool, quiet: bool, verbose: bool, *, summary: bool = False, wide: bool = False
) -> output.Style:
    """How to print; `--quiet` with `--verbose` is a usage error (exit 2)."""
    if quiet and verbose:
        fail("--quiet and --verbose cannot be used together", 2)
    return output.Style(json_output, quiet, verbose, summary=summary, wide=wide)


def overrides_of(root: str | None, store: str | None) -> dict[str, Any]:
    """The settings given on the command line (`--root`, `--store`)."""
    overrides: dict[str, Any] = {}
    if root is not None:
        overrides["root"] = root
    if store is not None:
        overrides["store"] = store
    return overrides


def settings_from(root: str | None, store: str | None, config: Path | None) -> Settings:
    """Load the effective configuration; exit 2 naming every bad key."""
    from wa_sessions.config import ConfigError, load_settings

    overrides = overrides_of(root, store)
    try:
        return load_settings(config, overrides)
    except ConfigError as error:
        fail(str(error), 2)


def shown(result: Result, style: output.Style) -> int:
    """Render a whole result; return its exit code."""
    output.render(result, style)
    return result.exit_code


def execute(
    root: str | None,
    store: str | None,
    config: Path | None,
    style: output.Style,
    body: Callable[[Settings, output.Style], int],
) -> None:
    """What every command does: load the configuration (exit 2 naming every bad key), then run
    `body` guarded (the library's errors as one line and a SPEC §7 exit code)."""
    settings = settings_from(root, store, config)
    guarded(lambda: body(settings, style))


def guarded(action: Callable[[], int]) -> None:
    """Run an action; translate the library's errors into one-line messages and SPEC §7 exit codes."""
    from wa_sessions.config import ConfigError
    from wa_sessions.errors import StoreUnavailable, UsageError
    from wa_sessions.locks import LockBusy
    from wa_sessions.state import StateError

    try:
        code = action()
    except UsageError as error:
        fail(str(error), 2)
    except StoreUnavailable as error:
        fail(str(error), 1)
    except ConfigError as error:
        fail(str(error), 2)
    except StateError as error:
        fail(str(error), 1)
    except LockBusy as error:
        fail(str(error), 3)
    raise typer.Exit(code)


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    prometheus = "prometheus"
