"""Commands that modules add to the launcher: ``workshop MODULE COMMAND ...``.

A module declares its command lines as :class:`workshop.Command` entries (a name, a
lazy reference to a ``click.Command`` and a one-line summary). The ``workshop`` group
is a :class:`LauncherGroup`: after its own commands it looks up installed modules and
adds one :class:`ModuleGroup` per module that declares commands, built only when asked
for. Listing them (``workshop --help``, ``workshop MODULE --help``) reads the
declarations alone; a command's code is imported when it runs or prints its own help.

Errors follow the core's convention (see :func:`workshop._errors.reported_errors`): a
``click.UsageError`` exits 2, a ``click.ClickException`` or a data problem exits 1 with
one line, Ctrl-C exits 130; an unexpected exception (a bug) is named in one paragraph
and exits 1 (``workshop --debug`` shows its traceback).
"""

from __future__ import annotations

import click

from ._cli_common import EPILOG
from ._declaration import ModuleDeclaration
from ._lazy import ReferenceError_, resolve
from ._plugins import registry


class ModuleGroup(click.Group):
    """``workshop MODULE``: the commands one module declares, resolved on first use."""

    def __init__(self, declaration: ModuleDeclaration, **kwargs):
        d = declaration
        super().__init__(
            name=d.name,
            help=f"{d.title}: the module's own commands.\n\nRun 'workshop {d.name} COMMAND --help' for one command's options.",
            short_help=f"{d.title} (module commands)",
            epilog=EPILOG,
            context_settings={"help_option_names": ["-h", "--help"]},
            **kwargs,
        )
        self.declaration = d
        self._running: str | None = None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [c.name for c in self.declaration.commands]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        d = self.declaration
        declared = next((c for c in d.commands if c.name == name), None)
        if declared is None:
            return None
        reinstall = f"reinstall {d.distribution or d.package}"
        try:
            command = resolve(declared.ref)
        except ReferenceError_ as exc:
            raise click.ClickException(f"the command 'workshop {d.name} {name}' could not be loaded: {exc} ({reinstall})") from None
        if not isinstance(command, click.Command):
            raise click.ClickException(
                f"the command 'workshop {d.name} {name}' refers to {declared.ref}, which is a "
                f"{type(command).__name__}, not a click command ({reinstall}, or fix the module's declaration)"
            )
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        self._running = name
        return name, command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The declared summaries, so that this help never imports a command's code.
        rows = [(c.name, c.summary) for c in self.declaration.commands]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        from ._errors import reported_errors

        with reported_errors(lambda: " ".join(["workshop", self.name or "", self._running or ""]).rstrip()):
            return super().invoke(ctx)


class LauncherGroup(click.Group):
    """The ``workshop`` group: the core's commands, then one group per module with commands.

    A module whose name is also a core command keeps its lessons, checks and demos, but
    its commands are refused (the core command wins): ``workshop --help`` and
    ``workshop info MODULE`` say so.
    """

    _running: str | None = None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        self._running = name
        return name, command, rest

    def invoke(self, ctx: click.Context):
        # The one error path of every command (see workshop._errors): exit codes 0/1/2/130,
        # and no traceback unless --debug asks for it.
        from ._errors import reported_errors

        self._running = None
        with reported_errors(lambda: f"The command 'workshop {self._running or ''}'".replace(" ''", "'")):
            return super().invoke(ctx)

    def clashes(self, declaration: ModuleDeclaration) -> bool:
        """The module declares commands but is named like a core command."""
        return bool(declaration.commands) and declaration.name in self.commands

    def module_groups(self) -> list[ModuleDeclaration]:
        """Installed modules whose commands are reachable, in discovery order."""
        return [d for d in registry().modules.values() if d.commands and not self.clashes(d)]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands) + [d.name for d in self.module_groups()]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        reg = registry()
        d = reg.modules.get(name)
        if d is not None and d.commands:
            return ModuleGroup(d)
        for b in reg.broken:
            if b.name == name:
                raise click.UsageError(f"module {name!r} is installed but broken: {b.error} (see 'workshop doctor')")
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max((len(n) for n in self.commands), default=0)
        core = [(n, c.get_short_help_str(limit)) for n, c in sorted(self.commands.items()) if not c.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(core)
        modules = [d for d in registry().modules.values() if d.commands]
        if not modules:
            return
        with formatter.section("Module commands (workshop MODULE COMMAND --help)"):
            formatter.write_dl([(f"{d.name} {c.name}", c.summary) for d in modules if not self.clashes(d)
                                for c in d.commands])
            for d in modules:
                if self.clashes(d):
                    formatter.write_text(refused_message(d))


def refused_message(declaration: ModuleDeclaration) -> str:
    """Why a module's commands are not reachable (its name is a core command's)."""
    d = declaration
    names = ", ".join(c.name for c in d.commands)
    return (f"module {d.name!r} declares commands ({names}) but 'workshop {d.name}' is a core command, "
            f"so they are refused; the module must be renamed to offer them")
