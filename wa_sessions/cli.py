"""Typer app: parse options, load config, call an action, render. Nothing else."""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from wa_sessions import __version__, exit_codes, output
from wa_sessions.cli_config import config_app
from wa_sessions.cli_support import (
    CompanyOption,
    ConfigOption,
    DryRunOption,
    JobsOption,
    JsonOption,
    Level,
    QuietOption,
    ReportFormat,
    RootOption,
    StoreOption,
    SummaryOption,
    UnusedVerboseOption,
    VerboseOption,
    execute,
    guarded,
    shown,
    style_of,
)

# Start-up time: each command imports the modules it needs where it runs (`--version` and
# `--help` need none of them, and no command needs every action, e.g. the archiving of
# emergency-cleanup or the HTTP client of the notifications).
if TYPE_CHECKING:
    from wa_sessions.config import Settings

app = typer.Typer(
    name="wa-sessions",
    help="Keep Baileys auth-state folders healthy: scan, classify, and clean without losing a session.",
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(config_app)


def _version(value: bool) -> None:
    if value:
        from wa_sessions.listing import LISTING

        sys.stdout.write(f"wa-sessions {__version__} (directory listing in {LISTING})\n")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Keep Baileys auth-state folders healthy: scan, classify, and clean without losing a session."""


@app.command(epilog=exit_codes.epilog("scan"))
def scan(
    company: CompanyOption = None,
    fail_on: Annotated[
        Level | None,
        typer.Option(
            "--fail-on",
            metavar="LEVEL",
            help="Exit 1 when any tenant is at or above LEVEL: warning, critical, trigger, emergency or danger.",
            show_default=False,
        ),
    ] = None,
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: UnusedVerboseOption = False,
    jobs: JobsOption = 0,
    wide: Annotated[
        bool, typer.Option("--wide", help="A column for every category (default: the ones rules act on).")
    ] = False,
) -> None:
    """Read only: files per category, bytes, status and problems of every tenant."""
    from wa_sessions.actions.scan import run_scan

    def body(settings: Settings, style: output.Style) -> int:
        return shown(run_scan(settings, company or [], fail_on.value if fail_on else None, jobs=jobs), style)

    execute(root, store, config, style_of(json_output, quiet, verbose, wide=wide), body)


@app.command(epilog=exit_codes.epilog("cleanup"))
def cleanup(
    company: CompanyOption = None,
    dry_run: DryRunOption = False,
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    jobs: JobsOption = 0,
    summary: SummaryOption = False,
) -> None:
    """Apply the regular rules now to the named tenants, or to every tenant."""
    from wa_sessions.actions.cleanup import run_cleanup

    def body(settings: Settings, style: output.Style) -> int:
        stream = output.cleanup_stream(style)
        result = run_cleanup(settings, company or [], dry_run=dry_run, jobs=jobs, stream=stream)
        stream.end(result)
        return result.exit_code

    execute(root, store, config, style_of(json_output, quiet, verbose, summary=summary), body)


@app.command(epilog=exit_codes.epilog("demo"))
def demo(
    root: Annotated[
        Path, typer.Option("--root", metavar="PATH", help="Where to create the demo sessions root.")
    ] = Path("demo"),
    tenants: Annotated[
        int, typer.Option("--tenants", metavar="N", min=1, max=1000, help="How many tenants (1-1000).")
    ] = 3,
) -> None:
    """Create a demo sessions root with aged files, to try `cleanup --dry-run` on."""
    from wa_sessions.demo import make_demo

    def action() -> int:
        created = make_demo(root, tenants)
        sys.stdout.write(f"created {created} files under {root}\n")
        sys.stdout.write(f"try: wa-sessions cleanup --dry-run --root {root}\n")
        return 0

    guarded(action)


@app.command("emergency-cleanup", epilog=exit_codes.epilog("emergency-cleanup"))
def emergency_cleanup(
    company: CompanyOption = None,
    dry_run: DryRunOption = False,
    purge_stale_dirs: Annotated[
        bool,
        typer.Option(
            "--purge-stale-dirs",
            help="Remove whole tenant folders whose newest file is older than --older-than (single-tenant layouts).",
        ),
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", metavar="AGE", help="With --purge-stale-dirs: 10m, 6h, 30d...", show_default=False
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Confirm --purge-stale-dirs (not needed with --dry-run).")
    ] = False,
    no_backup: Annotated[
        bool,
        typer.Option(
            "--no-backup", help="With --purge-stale-dirs: do not archive folders before removing them."
        ),
    ] = False,
    include_paired: Annotated[
        bool,
        typer.Option(
            "--include-paired",
            help="With --purge-stale-dirs: purge stale folders that completed pairing too (creds.json has `me`).",
        ),
    ] = False,
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    summary: SummaryOption = False,
) -> None:
    """Apply the emergency profile to the named tenants, or to every tenant at `emergency` or above;
    or, with --purge-stale-dirs, archive and remove stale tenant folders."""
    from wa_sessions.actions.emergency import run_emergency, run_purge
    from wa_sessions.errors import UsageError

    def body(settings: Settings, style: output.Style) -> int:
        if not purge_stale_dirs:
            for flag, given in (
                ("--older-than", older_than is not None),
                ("--yes", yes),
                ("--no-backup", no_backup),
                ("--include-paired", include_paired),
            ):
                if given:
                    raise UsageError(f"{flag} only goes with --purge-stale-dirs")
            result = run_emergency(settings, company or [], dry_run=dry_run)
        elif settings.store is not None:
            raise UsageError(
                "--purge-stale-dirs removes tenant folders and works only on the folders under root, "
                f"not on the store {settings.shown_store}"
            )
        else:
            result = run_purge(
                settings,
                company or [],
                older_than=older_than,
                yes=yes,
                backup=not no_backup,
                dry_run=dry_run,
                include_paired=include_paired,
            )
        return shown(result, style)

    execute(root, store, config, style_of(json_output, quiet, verbose, summary=summary), body)


@app.command("multitenant-cleanup", epilog=exit_codes.epilog("multitenant-cleanup"))
def multitenant_cleanup(
    dry_run: DryRunOption = False,
    force: Annotated[bool, typer.Option("--force", help="Ignore the cooldown (auto.cooldown).")] = False,
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    jobs: JobsOption = 0,
    summary: SummaryOption = False,
) -> None:
    """The automatic trigger (cron, every 30 minutes): clean every tenant at `trigger` or above,
    with the emergency profile at `danger`, under one run lock."""
    from wa_sessions.actions.multitenant import run_multitenant
    from wa_sessions.locks import LockBusy

    def body(settings: Settings, style: output.Style) -> int:
        stream = output.cleanup_stream(style)
        try:
            result = run_multitenant(settings, dry_run=dry_run, force=force, jobs=jobs, stream=stream)
        except LockBusy:
            if not style.quiet:
                raise
            return 3  # another run had it: not an error, so nothing for cron to mail
        stream.end(result)
        return result.exit_code

    execute(root, store, config, style_of(json_output, quiet, verbose, summary=summary), body)


@app.command(epilog=exit_codes.epilog("report"))
def report(
    report_format: Annotated[
        ReportFormat | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="table (default), json, markdown or prometheus.",
            show_default=False,
        ),
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE atomically (temp file + rename) instead of stdout.",
            show_default=False,
        ),
    ] = None,
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="With --output, say which file was written.")
    ] = False,
) -> None:
    """Fleet summary: tenants per status, files per category, the largest tenants, disk and
    inodes, and per tenant the last cleanup and what it freed."""
    from wa_sessions.actions.report import run_report
    from wa_sessions.errors import UsageError

    def body(settings: Settings, style: output.Style) -> int:
        if json_output and report_format not in (None, ReportFormat.json):
            raise UsageError(f"--json conflicts with --format {report_format}")
        chosen = "json" if json_output else (report_format or ReportFormat.table).value
        result = run_report(settings)
        output.render_report(result, chosen, style, output_file)
        return result.exit_code

    execute(root, store, config, style_of(json_output, quiet, verbose), body)


@app.command(epilog=exit_codes.epilog("explain"))
def explain(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", show_default=False, hidden=True),
    ],
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: UnusedVerboseOption = False,
) -> None:
    """Read only: why a file is kept or deleted: its category, the rule and guard that decide it,
    and whether cleanup and emergency-cleanup would delete it now, with the reason a run records.
    Each PATH is a file in a tenant folder under root, or COMPANY/NAME (company id or folder name);
    with --store, INSTANCE/FIELD for Redis, SESSION/ID for MySQL (the key, or the file name it is
    shown as)."""
    from wa_sessions.actions.explain import run_explain

    def body(settings: Settings, style: output.Style) -> int:
        return shown(run_explain(settings, paths), style)

    execute(root, store, config, style_of(json_output, quiet, verbose), body)


@app.command("history", epilog=exit_codes.epilog("history"))
def history_command(
    company: CompanyOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="AGE",
            help="Only deletions in the last AGE: 30m, 6h, 7d, 2w.",
            show_default=False,
        ),
    ] = None,
    file_glob: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="GLOB",
            help="Only files whose name matches GLOB, e.g. 'pre-key-*'.",
            show_default=False,
        ),
    ] = None,
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: UnusedVerboseOption = False,
) -> None:
    """Read only: what was deleted, when, by which command and why, newest first (from the
    history in the state dir; with --store, --company takes instance ids or session names and the
    store is not contacted)."""
    from wa_sessions.actions.history_query import run_history

    def body(settings: Settings, style: output.Style) -> int:
        return shown(run_history(settings, company or [], since=since, file_glob=file_glob), style)

    execute(root, store, config, style_of(json_output, quiet, verbose), body)


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app, with only the command `args` name when they name one (start-up: Typer reads the
    signature and type hints of every command it turns into a click command, about 25 ms for all
    of them); the whole app for anything else (`--help`, `--version`, a misspelt command, shell
    completion), so every message is the one the whole app gives."""
    named = [info for info in app.registered_commands if _command_name(info) == (args[0] if args else None)]
    if not named or any(variable.startswith("_WA_SESSIONS_COMPLETE") for variable in os.environ):
        return app
    narrow = copy.copy(app)
    narrow.registered_commands = named
    narrow.registered_groups = []
    return narrow


def _command_name(info: typer.models.CommandInfo) -> str | None:
    if info.name is not None:
        return info.name
    return None if info.callback is None else typer.main.get_command_name(info.callback.__name__)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code. Usage errors are one line, never a traceback."""
    args = list(argv) if argv is not None else sys.argv[1:]
    command = typer.main.get_command(app_for(args))
    try:
        result = command.main(args=args, prog_name="wa-sessions", standalone_mode=False)
    except KeyboardInterrupt:
        output.error_line("interrupted")
        return 130
    except Exception as error:  # the last line of defence: one line, never a traceback
        return _report_exception(error)
    return result if isinstance(result, int) else 0


def _report_exception(error: Exception) -> int:
    """Click's exceptions (Typer may vendor its own copy of click, so they are told by their
    shape, not their class): usage errors exit 2 with one line; anything else is an internal error."""
    exit_code = getattr(error, "exit_code", None)
    format_message = getattr(error, "format_message", None)
    if type(error).__name__ == "NoArgsIsHelpError" and callable(format_message):
        sys.stdout.write(f"{format_message()}\n")
        return 0
    if isinstance(exit_code, int) and callable(format_message):
        context = getattr(error, "ctx", None)
        name = getattr(context, "info_name", None) if getattr(context, "parent", None) else None
        hint = f" (see 'wa-sessions {name} --help')" if name else ""
        message = " ".join(str(format_message()).replace("Value error, ", "").split())
        output.error_line(f"{message}{hint}")
        return exit_code
    if type(error).__name__ == "Abort":
        output.error_line("aborted")
        return 1
    output.error_line(f"internal error: {type(error).__name__}: {error}")
    return 1


def main() -> NoReturn:
    sys.exit(run())
