"""The ``catalyst`` command.

Errors print as one line (``catalyst: error: …``) and exit with status 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

from catalyst_kernel import __version__
from catalyst_kernel.api.app import create_app
from catalyst_kernel.api.runtime import Runtime
from catalyst_kernel.api.server import serve as serve_app
from catalyst_kernel.demo.bootstrap import bootstrap_demo
from catalyst_kernel.demo.catalog import demo_catalog
from catalyst_kernel.demo.reconciler import SimulatedReconciler
from catalyst_kernel.errors import CatalystError, InvalidInput, NotFound
from catalyst_kernel.model.names import check_environment_name
from catalyst_kernel.observability.logs import configure_logging
from catalyst_kernel.plugins.manager import PluginManager, Slot
from catalyst_kernel.plugins.report import plugins_document
from catalyst_kernel.readside.projector import Projector
from catalyst_kernel.settings import Settings, load_settings_with_sources

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

__all__ = ["cli", "main", "run"]


class _State:
    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._plugins: PluginManager | None = None

    def plugins(self) -> PluginManager:
        """The installed plugins (loaded once, not strict): where plugin commands come from."""
        if self._plugins is None:
            self._plugins = self.manager(strict=False)
        return self._plugins

    def manager(self, *, strict: bool, overrides: dict[str, object] | None = None) -> PluginManager:
        loaded = load_settings_with_sources(self.config, overrides=overrides)
        settings: Settings = loaded.settings
        manager = PluginManager(
            settings, strict=strict or settings.strict_plugins, sources=loaded.sources
        ).load()
        manager.check_settings()
        return manager


class _CatalystGroup(click.Group):
    """The kernel's commands, then those plugins register (``catalyst_cli_commands``)."""

    def _state(self, ctx: click.Context) -> _State:
        if not isinstance(ctx.obj, _State):
            ctx.obj = _State(ctx.params.get("config"))
        return ctx.obj

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        return self._state(ctx).plugins().cli_commands_except(frozenset(self.commands))

    def list_commands(self, ctx: click.Context) -> list[str]:
        try:
            plugin_commands = list(self._plugin_commands(ctx))
        except CatalystError:
            plugin_commands = []  # broken settings: ``--help`` still lists the kernel's commands
        return sorted({*super().list_commands(ctx), *plugin_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        return self._plugin_commands(ctx).get(cmd_name)


@click.group(cls=_CatalystGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Settings file (default: $CATALYST_CONFIG, else ./catalyst.toml if present).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Catalyst: a GitOps control plane."""
    ctx.obj = _State(config)


@cli.command()
def version() -> None:
    """Print the kernel's version."""
    click.echo(f"catalyst-kernel {__version__}")


def _render_table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--strict",
    is_flag=True,
    help="Fail (exit 1) if any plugin fails to load (also $CATALYST_STRICT_PLUGINS=1).",
)
@click.pass_obj
def plugins(state: _State, as_json: bool, strict: bool) -> None:
    """List installed plugins, what they provide, the provider of each slot and load errors."""
    manager = state.manager(strict=strict)
    infos = manager.plugins()
    selections = manager.selections()
    if as_json:
        click.echo(json.dumps(plugins_document(manager), indent=2))
        return
    rows = [("NAME", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES")]
    for info in infos:
        rows.append(
            (
                info.name + (" (built-in)" if info.builtin else ""),
                info.distribution or "-",
                info.version or "-",
                info.status.value,
                ", ".join(info.provides) or "-",
            )
        )
    lines = _render_table(rows)
    lines.append("")
    lines.append("Providers:")
    for selection in selections:
        state_text = "active" if selection.available else f"NOT AVAILABLE: {selection.reason}"
        lines.append(f"  {selection.slot.value:<10} {selection.provider:<26} {state_text}")
    problems = [info for info in infos if info.error]
    if problems:
        lines.append("")
        lines.append("Not loaded:")
        for info in problems:
            lines.append(
                f"  {info.name} ({info.distribution or 'unknown distribution'}): {info.error}"
            )
    click.echo("\n".join(lines))


@asynccontextmanager
async def _projector(manager: PluginManager) -> AsyncIterator[Projector]:
    manager.check_providers([Slot.SPINE])
    spine = manager.spine()
    await spine.start()
    try:
        yield Projector(spine, manager.projections())
    finally:
        await spine.close()


@cli.command()
@click.option(
    "--until-idle",
    is_flag=True,
    help="Exit once every Environment's stream is fully applied instead of running forever.",
)
@click.pass_obj
def projector(state: _State, until_idle: bool) -> None:
    """Run the projector: apply every Environment's events to its KV read model."""
    manager = state.manager(strict=False)

    async def run() -> None:
        async with _projector(manager) as projector:
            if not until_idle:
                await projector.run()
            for environment in await projector.spine.environments():
                handled = await projector.catch_up(environment)
                click.echo(f"{environment}: {handled} events applied")

    anyio.run(run)


@cli.command()
@click.argument("environment")
@click.pass_obj
def replay(state: _State, environment: str) -> None:
    """Rebuild ENVIRONMENT's read model from the start of its event stream.

    Stop the service's projector for that Environment first.
    """
    check_environment_name(environment)
    manager = state.manager(strict=False)

    async def run() -> None:
        async with _projector(manager) as projector:
            if environment not in await projector.spine.environments():
                raise NotFound(f"Environment {environment!r} has no event stream")
            result = await projector.replay(environment)
        click.echo(
            f"{environment}: replayed {result.events} events; "
            f"{result.written} keys written, {result.deleted} deleted"
        )

    anyio.run(run)


@cli.group()
def blueprint() -> None:
    """Work with Blueprints: check them before they are published."""


@blueprint.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--organization",
    default=None,
    help="Check the Blueprints as the shared-blueprints of this Organization.",
)
def blueprint_lint(paths: tuple[Path, ...], organization: str | None) -> None:
    """Check Blueprint folders (or folders of them) against the blueprint.yaml schema.

    Prints each problem as FILE:JSON-POINTER: MESSAGE and exits 1 if there is any.
    """
    # Imported here: jsonschema and pygit2 cost start-up time every other command does not need.
    from catalyst_kernel.blueprints.lint import lint

    report = lint(paths, organization=organization)
    for problem in report.problems:
        click.echo(problem.describe())
    if not report.ok:
        raise InvalidInput(
            f"{len(report.problems)} problem(s) in {len(paths)} path(s) "
            f"({report.checked} Blueprint version(s) checked)"
        )
    click.echo(f"OK: {report.checked} Blueprint version(s) checked, no problems")


@cli.command()
@click.option(
    "--org", "organization", default=None, help="The Organization (not for sovereign-admin)."
)
@click.option("--role", required=True, help="One of the roles of SPEC §7, e.g. org-developer.")
@click.option("--group", "groups", multiple=True, help="A team the caller belongs to (repeatable).")
@click.option(
    "--env",
    "environments",
    multiple=True,
    help="An Environment the caller may act in (repeatable; default: all of the Organization's).",
)
@click.option("--ttl", default=None, help="Lifetime: 30s, 15m, 2h (at most 24h; default 15m).")
@click.option("--subject", default="developer", show_default=True, help="The token's subject.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The server's data directory, where the signing key is (default: settings key data_dir).",
)
@click.option(
    "--sovereign",
    default=None,
    help="The server's Sovereign name, part of the issuer (default: settings key sovereign; "
    "'demo' for serve --demo).",
)
@click.pass_obj
def token(
    state: _State,
    organization: str | None,
    role: str,
    groups: tuple[str, ...],
    environments: tuple[str, ...],
    ttl: str | None,
    subject: str,
    data_dir: Path | None,
    sovereign: str | None,
) -> None:
    """Print a bearer token from the development identity provider (``dev``).

    The server accepts it when it shares the data directory (the signing key lives there).
    For development only.
    """
    from catalyst_kernel.identity.dev import DevIdentityProvider, parse_ttl
    from catalyst_kernel.model.principal import Role

    roles = [r.value for r in Role]
    if role not in roles:
        raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(roles)}")
    if organization is None and role != Role.SOVEREIGN_ADMIN:
        raise InvalidInput(f"--org is required for the role {role} (only sovereign-admin has none)")
    lifetime = parse_ttl(ttl) if ttl is not None else None
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    if sovereign is not None:
        overrides["sovereign"] = sovereign
    manager = state.manager(strict=False, overrides=overrides)
    selected = manager.selection(Slot.IDENTITY).provider
    if selected != "dev":
        raise InvalidInput(
            "catalyst token mints tokens of the dev identity provider only; "
            f"providers.identity selects {selected!r}"
        )
    manager.check_providers([Slot.IDENTITY])
    provider = manager.identity()
    if not isinstance(provider, DevIdentityProvider):  # a plugin registered itself as 'dev'
        raise InvalidInput(f"the 'dev' identity provider is a {type(provider).__name__}")

    async def run() -> str:
        await provider.start()
        try:
            return provider.mint(
                subject,
                organization=organization,
                role=role,
                groups=groups,
                environments=environments,
                ttl=lifetime,
            )
        finally:
            await provider.close()

    click.echo(anyio.run(run))


@cli.command()
@click.option("--host", default=None, help="Address to bind (default: settings key host).")
@click.option(
    "--port", type=int, default=None, help="Port (default: settings key port; 0 picks one)."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (default: settings key data_dir).",
)
@click.option(
    "--catalog",
    "catalogs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A Blueprint catalog folder (repeatable; default: settings key catalog_paths).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Sovereign 'demo' with Organization acme, its Environments, the demo catalog, printed "
    "tokens and a SIMULATED reconciler (no Kubernetes needed; demo only).",
)
@click.option("--strict", is_flag=True, help="Refuse to start if any plugin fails to load.")
@click.pass_obj
def serve(
    state: _State,
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    catalogs: tuple[Path, ...],
    demo: bool,
    strict: bool,
) -> None:
    """Run the API service and the projector on the configured providers.

    With no configuration at all this is a single-node Sovereign on the embedded providers:
    SQLite spine, Git repositories and encrypted secrets under the data directory, administered
    with a sovereign-admin token (``catalyst token --role sovereign-admin``).
    """
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = str(data_dir)
    paths = list(catalogs)
    if demo:
        overrides["sovereign"] = "demo"
        paths.append(demo_catalog())
    if paths:
        overrides["catalog_paths"] = [str(path) for path in paths]
    manager = state.manager(strict=strict, overrides=overrides)
    settings = manager.settings
    configure_logging(settings)
    sources = [SimulatedReconciler.from_manager(manager)] if demo else []
    runtime = Runtime(settings, manager, projector=True, sources=sources)
    app = create_app(settings, manager=manager, runtime=runtime)

    async def run() -> None:
        async with anyio.create_task_group() as tasks:
            bound = await tasks.start(serve_app, app, settings.host, settings.port)
            base_url = f"http://{settings.host}:{bound}"
            click.echo(f"Catalyst is serving on {base_url}", err=True)
            click.echo(f"  data directory: {settings.data_dir}", err=True)
            click.echo(f"  API documentation: {base_url}/schema", err=True)
            if demo:
                setup = await bootstrap_demo(runtime)
                click.echo(setup.render(base_url))
            else:
                click.echo(
                    "  administer it with a sovereign-admin token: "
                    "catalyst token --role sovereign-admin",
                    err=True,
                )

    try:
        anyio.run(run)
    except KeyboardInterrupt:
        click.echo("catalyst: stopped", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="catalyst",
            standalone_mode=False,
        )
    except CatalystError as exc:
        click.echo(f"catalyst: error: {exc}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("catalyst: aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
