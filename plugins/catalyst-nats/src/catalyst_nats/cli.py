"""``catalyst nats`` commands (``catalyst nats accounts``), registered through the kernel's
``catalyst_cli_commands`` hook; ``python -m catalyst_nats accounts`` runs them without the
kernel's command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

from catalyst_kernel.errors import CatalystError, InvalidInput, PluginError
from catalyst_kernel.plugins.manager import PluginManager
from catalyst_kernel.settings import load_settings_with_sources
from catalyst_nats.accounts import AccountsConfig, render_accounts
from catalyst_nats.settings import NatsSettings
from catalyst_nats.spine import NatsSpine

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main", "nats"]

_ORGANIZATIONS = "organizations/"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def nats() -> None:
    """The NATS spine's tools."""


def _parse_nkeys(values: Sequence[str]) -> dict[str, str]:
    nkeys: dict[str, str] = {}
    for value in values:
        organization, separator, key = value.partition("=")
        if not separator or not organization or not key:
            raise InvalidInput(f"--nkey takes ORGANIZATION=UKEY, got {value!r}")
        nkeys[organization] = key
    return nkeys


async def _directory_organizations(config: Path | None) -> list[str]:
    loaded = load_settings_with_sources(config)
    manager = PluginManager(loaded.settings, sources=loaded.sources).load()
    settings = manager.plugin_settings("nats")
    if not isinstance(settings, NatsSettings):
        raise PluginError("the nats plugin is not loaded; name the Organizations with -o")
    if settings.managed:
        raise InvalidInput(
            "managed mode runs one local server without Organization accounts; "
            "name the Organizations with -o to render accounts anyway"
        )
    spine = NatsSpine(settings)
    await spine.start()
    try:
        directory = await spine.directory()
        _, entries = await directory.snapshot(_ORGANIZATIONS)
    finally:
        await spine.close()
    return [entry.key.removeprefix(_ORGANIZATIONS) for entry in entries]


@nats.command()
@click.option(
    "-o",
    "--organization",
    "organizations",
    multiple=True,
    help="An Organization (repeatable). Default: every Organization in the Sovereign's "
    "directory, read through the configured spine.",
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalyst settings file, for reading the directory (default: $CATALYST_CONFIG, else "
    "./catalyst.toml if present).",
)
@click.option("--system-account", default="CATALYST", show_default=True)
@click.option("--system-user", default="catalyst", show_default=True)
@click.option(
    "--system-password-variable",
    default="CATALYST_NATS_PASSWORD",
    show_default=True,
    help="Environment variable the server reads the system user's password from.",
)
@click.option("--system-nkey", default=None, help="The system user's NKey instead of a password.")
@click.option(
    "--nkey",
    "nkeys",
    multiple=True,
    help="ORGANIZATION=UKEY: that Organization's user authenticates with this NKey "
    "(repeatable); the others use NATS_PASSWORD_<ORG>.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def accounts(
    organizations: tuple[str, ...],
    config: Path | None,
    system_account: str,
    system_user: str,
    system_password_variable: str,
    system_nkey: str | None,
    nkeys: tuple[str, ...],
    output: Path | None,
) -> None:
    """Render the nats-server accounts: one per Organization, plus the system account."""
    names = list(organizations) or anyio.run(_directory_organizations, config)
    text = render_accounts(
        names,
        AccountsConfig(
            system_account=system_account,
            system_user=system_user,
            system_password_variable=system_password_variable,
            system_nkey=system_nkey,
            organization_nkeys=_parse_nkeys(nkeys),
        ),
    )
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output} ({len(set(names))} Organization(s))", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the commands; returns the exit status (errors print as one line)."""
    try:
        nats.main(
            args=list(argv) if argv is not None else None,
            prog_name="python -m catalyst_nats",
            standalone_mode=False,
        )
    except CatalystError as exc:
        click.echo(f"catalyst-nats: error: {exc}", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        return 1
    return 0


def run() -> None:
    """Console entry point."""
    sys.exit(main())
