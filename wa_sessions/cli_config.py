"""`wa-sessions config show|validate|generate`: the effective configuration and its sources, its
check, and the documented configuration (and crontab, systemd units) for a new host."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from wa_sessions import exit_codes, output
from wa_sessions.cli_support import (
    ConfigOption,
    JsonOption,
    QuietOption,
    RootOption,
    StoreOption,
    UnusedVerboseOption,
    fail,
    guarded,
    overrides_of,
    style_of,
)

config_app = typer.Typer(
    name="config",
    help="Show, validate or generate the configuration (and the crontab and systemd units).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@config_app.command("show", epilog=exit_codes.epilog("config show"))
def config_show(
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: UnusedVerboseOption = False,
) -> None:
    """The effective configuration, and where each value came from (cli, env, yaml, default)."""
    style = style_of(json_output, quiet, verbose)
    guarded(lambda: _explain_config(root, store, config, "config show", style))


@config_app.command("validate", epilog=exit_codes.epilog("config validate"))
def config_validate(
    root: RootOption = None,
    store: StoreOption = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    verbose: UnusedVerboseOption = False,
) -> None:
    """Exit 0 when the configuration (file, environment, options) is valid, `root` is an existing
    directory and the state dir exists or can be created (it is not created); else 2, naming every
    bad key."""
    style = style_of(json_output, quiet, verbose)
    guarded(lambda: _explain_config(root, store, config, "config validate", style))


@config_app.command("generate", epilog=exit_codes.epilog("config generate"))
def config_generate(
    crontab: Annotated[
        bool,
        typer.Option(
            "--crontab",
            help="Print the crontab instead, with the real path of this wa-sessions in every job.",
        ),
    ] = False,
    systemd: Annotated[
        Path | None,
        typer.Option(
            "--systemd",
            metavar="DIR",
            help="Write the systemd .service and .timer files into DIR instead (never over an existing file), "
            "with the real path of this wa-sessions in ExecStart=.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the documented configuration with every key at its default (config.example.yaml), to
    start /etc/wa-sessions/config.yaml from."""
    from wa_sessions import deploy
    from wa_sessions.errors import UsageError

    def action() -> int:
        if crontab and systemd is not None:
            raise UsageError("--crontab and --systemd cannot be used together")
        if crontab:
            sys.stdout.write(deploy.crontab(deploy.executable_path()))
        elif systemd is not None:
            try:
                written = deploy.write_systemd_units(systemd, deploy.executable_path())
            except OSError as error:
                fail(f"--systemd: cannot write {error.filename}: {error.strerror or error}", 1)
            sys.stdout.write("".join(output.one_line(f"wrote {path}") + "\n" for path in written))
        else:
            sys.stdout.write(deploy.config_example())
        return 0

    guarded(action)


def _explain_config(
    root: str | None, store: str | None, config: Path | None, command: str, style: output.Style
) -> int:
    from wa_sessions.actions.configuration import run_config_show

    result = run_config_show(config, overrides_of(root, store), command)
    output.render(result, style)
    return result.exit_code
