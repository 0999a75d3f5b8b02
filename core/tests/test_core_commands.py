"""Commands that modules add to the launcher (``workshop MODULE COMMAND``), with throwaway plugins."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from workshop import Command, DeclarationError, Demo, ModuleDeclaration, hookimpl
from workshop._plugins import BrokenPlugin, Registry, set_registry
from workshop.cli import main

COMMANDS = '''
import click

@click.command()
@click.argument("name")
@click.option("--loud", is_flag=True, help="Shout it.")
def hello(name, loud):
    """Say hello to NAME."""
    text = f"hello {name}"
    click.echo(text.upper() if loud else text)

@click.command()
def bad_input():
    raise click.BadParameter("line 3 is not a header", param_hint="'FASTA'")

@click.command()
def problem():
    raise click.ClickException("the weights are not on this machine")

@click.command()
def nodata():
    from workshop.data import DataMissing
    raise DataMissing("remote.bin is not cached and WORKSHOP_OFFLINE=1; run 'workshop fetch fakecmd' when online")

@click.command()
def boom():
    raise ValueError("the command's own bug")

@click.command()
def interrupt():
    raise KeyboardInterrupt

not_a_command = 42
'''


def plugin(name="fakecmd", commands=None):
    class P:
        @hookimpl
        def workshop_module(self):
            return ModuleDeclaration(
                name=name, title="Fake commands", summary="Used by the command tests.", minutes=3, package="fakecmd_pkg",
                distribution="workshop-fakecmd",
                demos=[Demo("hello", "fakecmd_cli:hello", "not really a demo")],
                commands=commands if commands is not None else [
                    Command("hello", "fakecmd_cli:hello", "says hello"),
                    Command("bad-input", "fakecmd_cli:bad_input", "refuses its input"),
                    Command("problem", "fakecmd_cli:problem", "finds a problem"),
                    Command("nodata", "fakecmd_cli:nodata", "misses data"),
                    Command("boom", "fakecmd_cli:boom", "has a bug"),
                    Command("interrupt", "fakecmd_cli:interrupt", "is interrupted"),
                    Command("missing", "fakecmd_cli:no_such_thing", "refers to nothing"),
                    Command("number", "fakecmd_cli:not_a_command", "refers to a number"),
                ],
            )

    return P()


@pytest.fixture
def cli(fake_dist):
    fake_dist({}, extra_modules={"fakecmd_cli": COMMANDS})

    def invoke(*args, plugins=None, broken=()):
        reg = Registry(plugins=plugins or (plugin(),), use_entry_points=False)
        reg.broken.extend(broken)
        set_registry(reg)
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_declaration_takes_commands_as_plain_data():
    d = plugin().workshop_module()
    assert isinstance(d.commands, tuple) and d.commands[0] == Command("hello", "fakecmd_cli:hello", "says hello")
    base = dict(name="x", title="t", summary="s", minutes=1, package="x")
    with pytest.raises(DeclarationError, match="'hello' is declared twice"):
        ModuleDeclaration(**base, commands=[Command("hello", "a.b:c"), Command("hello", "a.b:d")])
    with pytest.raises(DeclarationError, match="expected 'package.module:function'"):
        ModuleDeclaration(**base, commands=[Command("hello", "a.b.c")])
    with pytest.raises(DeclarationError, match="command name 'Hello World' is invalid"):
        ModuleDeclaration(**base, commands=[Command("Hello World", "a.b:c")])
    with pytest.raises(DeclarationError, match="commands must be Command objects"):
        ModuleDeclaration(**base, commands=[Demo("hello", "a.b:c")])


def test_listing_and_help_never_import_the_commands(cli):
    for args in (["--help"], ["list"], ["info", "fakecmd"], ["fakecmd", "--help"], ["fakecmd"]):
        r = cli(*args)
        assert r.exit_code in (0, 2), r.output
        assert "fakecmd_cli" not in sys.modules, args
    r = cli("--help")
    assert "Module commands" in r.output and "fakecmd hello" in r.output and "says hello" in r.output
    assert r.output.index("Commands:") < r.output.index("Module commands")
    r = cli("fakecmd", "--help")
    assert r.exit_code == 0 and "Fake commands" in r.output and "bad-input" in r.output and "Exit codes" in r.output
    r = cli("info", "fakecmd")
    assert "Commands (8):" in r.output and "workshop fakecmd hello" in r.output and "says hello" in r.output


def test_module_command_runs_with_its_options(cli):
    r = cli("fakecmd", "hello", "Ada", "--loud")
    assert r.exit_code == 0 and r.output == "HELLO ADA\n"
    r = cli("fakecmd", "hello", "--help")
    assert r.exit_code == 0 and "Say hello to NAME." in r.output and "--loud" in r.output


@pytest.mark.parametrize(
    "command, code, message",
    [
        ("bad-input", 2, "Invalid value for 'FASTA': line 3 is not a header"),
        ("problem", 1, "Error: the weights are not on this machine"),
        ("nodata", 1, "data problem: remote.bin is not cached"),
        ("interrupt", 130, "Interrupted."),
        ("missing", 1, "the command 'workshop fakecmd missing' could not be loaded"),
        ("number", 1, "which is a int, not a click command (reinstall workshop-fakecmd"),
        ("nothing-like-it", 2, "No such command 'nothing-like-it'"),
    ],
)
def test_expected_errors_exit_with_the_core_codes_and_no_traceback(cli, command, code, message):
    r = cli("fakecmd", command)
    assert r.exit_code == code, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_a_bug_in_a_command_is_reported_as_a_failure(cli):
    r = cli("fakecmd", "boom")
    assert r.exit_code == 1
    assert "workshop fakecmd boom failed: ValueError: the command's own bug" in r.output


def test_a_module_named_like_a_core_command_has_its_commands_refused(cli):
    clash = plugin(name="run", commands=[Command("hello", "fakecmd_cli:hello", "says hello")])
    plugins = (plugin(), clash)
    r = cli("--help", plugins=plugins)
    assert "fakecmd hello" in r.output and "run hello" not in r.output
    assert "module 'run' declares commands (hello) but 'workshop run' is a core command" in r.output
    r = cli("info", "run", plugins=plugins)
    assert "refused:" in r.output and "must be renamed" in r.output
    r = cli("run", "--help", plugins=plugins)
    assert r.exit_code == 0 and "Run a DEMO of MODULE" in r.output  # the core command wins
    assert main.list_commands(None).count("run") == 1


def test_a_broken_module_is_named_as_broken(cli):
    r = cli("wrecked", "anything", broken=[BrokenPlugin("wrecked", "wrecked.plugin", "ImportError: nope")])
    assert r.exit_code == 2 and "module 'wrecked' is installed but broken: ImportError: nope" in r.output


def test_real_help_does_not_import_jax_or_numpy():
    code = ("import sys; from workshop.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('JAX-IMPORTED' if 'jax' in sys.modules else 'no-jax')")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("no-jax")
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "jax" not in imported and "numpy" not in imported
