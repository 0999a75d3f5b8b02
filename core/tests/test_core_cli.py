"""Every core CLI command: happy path and errors, with throwaway plugins."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from workshop import DataEntry, Demo, ModuleDeclaration, hookimpl
from workshop import hardware as hwmod
from workshop._plugins import BrokenPlugin, Registry, set_registry
from workshop.cli import main

PAYLOAD = b"remote data\n" * 100
DEMOS = '''
import json
def hello(ctx):
    (ctx.out / "hello.txt").write_text(f"preset={ctx.preset} budget={ctx.budget}")
    return {"preset": ctx.preset, "value": 0.123456}
def boom(ctx):
    raise ValueError("the demo's own bug")
def interrupted(ctx):
    raise KeyboardInterrupt
def needs_data(ctx):
    return {"path": str(ctx.fetch("remote.bin"))}
'''


def plugin(name="fakecli", url="http://127.0.0.1:9/remote.bin", digest=None):
    class P:
        @hookimpl
        def workshop_module(self):
            return ModuleDeclaration(
                name=name, title="Fake CLI module", summary="Used by the CLI tests.", minutes=7,
                package="fakecli_pkg",
                demos=[Demo("hello", "fakecli_demos:hello", "writes a file"),
                       Demo("boom", "fakecli_demos:boom", "raises"),
                       Demo("interrupted", "fakecli_demos:interrupted", "Ctrl-C"),
                       Demo("needs_data", "fakecli_demos:needs_data", "fetches")],
                datasets=[DataEntry("remote.bin", sha256=digest or hashlib.sha256(PAYLOAD).hexdigest(), url=url,
                                    size=len(PAYLOAD), description="a remote file")],
                presets={"tiny": "seconds", "cpu": "minutes"},
            )

    return P()


@pytest.fixture
def cli(fake_dist, monkeypatch):
    fake_dist({}, extra_modules={"fakecli_demos": DEMOS})
    monkeypatch.setattr(hwmod, "detect", lambda: hwmod.Hardware("cpu", 1, "cpu", None, 2, 8.0, "0.0"))

    def invoke(*args, registry=None):
        set_registry(registry or Registry(plugins=(plugin(),), use_entry_points=False))
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_list_shows_modules_counts_data_and_broken(cli):
    reg = Registry(plugins=(plugin(),), use_entry_points=False)
    reg.broken.append(BrokenPlugin("wrecked", "wrecked.plugin (entry point 'wrecked')", "ImportError: nope"))
    r = cli("list", registry=reg)
    assert r.exit_code == 0
    line = next(l for l in r.output.splitlines() if l.startswith("fakecli"))
    assert "Fake CLI module" in line and " 7 " in line and "0/1 remote cached" in line
    assert "broken: wrecked" in r.output and "ImportError: nope" in r.output


def test_info_shows_everything(cli):
    r = cli("info", "fakecli")
    assert r.exit_code == 0
    for text in ("Fake CLI module", "hello", "(default)", "remote.bin", "a remote file", "Presets", "tiny"):
        assert text in r.output


def test_unknown_module_suggests_and_exits_2(cli):
    r = cli("info", "fakecl")
    assert r.exit_code == 2 and "no module 'fakecl'; did you mean 'fakecli'?" in r.output
    r = cli("run", "nothing_like_it")
    assert r.exit_code == 2 and "no module 'nothing_like_it'" in r.output


def test_run_default_demo_prints_hardware_and_writes_outputs(cli, tmp_path):
    out = tmp_path / "out"
    r = cli("run", "fakecli", "--preset", "tiny", "--out", str(out), "--budget", "2m")
    assert r.exit_code == 0, r.output
    assert r.output.index("hardware:") < r.output.index("preset:   tiny (chosen with --preset)") < r.output.index("Done")
    assert (out / "hello.txt").read_text() == "preset=tiny budget=120.0"
    assert "value: 0.1235" in r.output


def test_run_preset_from_environment(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_PRESET", "tiny")
    r = cli("run", "fakecli", "hello", "--out", str(tmp_path))
    assert "preset:   tiny (from WORKSHOP_PRESET)" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (("run", "fakecli", "helo"), "no demo of module 'fakecli' named 'helo'; did you mean 'hello'?"),
        (("run", "fakecli", "--preset", "gpuu"), "did you mean 'gpu'?"),
        (("run", "fakecli", "--budget", "soon"), "cannot read the duration 'soon'"),
    ],
)
def test_run_usage_errors_exit_2(cli, args, message):
    r = cli(*args)
    assert r.exit_code == 2 and message in r.output


def test_failing_demo_exits_1_with_message(cli, tmp_path):
    r = cli("run", "fakecli", "boom", "--out", str(tmp_path))
    assert r.exit_code == 1 and "failed: ValueError: the demo's own bug" in r.output


def test_interrupted_demo_exits_130(cli, tmp_path):
    r = cli("run", "fakecli", "interrupted", "--out", str(tmp_path))
    assert r.exit_code == 130 and "Interrupted" in r.output


def test_demo_data_problem_is_reported_plainly(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKSHOP_OFFLINE", "1")
    r = cli("run", "fakecli", "needs_data", "--out", str(tmp_path))
    assert r.exit_code == 1 and "data problem:" in r.output and "workshop fetch fakecli" in r.output
    assert "Traceback" not in r.output


def test_fetch_downloads_and_verifies(cli, http_server):
    base, root, _ = http_server
    (root / "remote.bin").write_bytes(PAYLOAD)
    reg = Registry(plugins=(plugin(url=f"{base}/remote.bin"),), use_entry_points=False)
    r = cli("fetch", "fakecli", registry=reg)
    assert r.exit_code == 0 and "ok       fakecli/remote.bin" in r.output and "Downloading" in r.output
    r = cli("list", registry=reg)
    assert "1/1 remote cached" in r.output
    r = cli("fetch", "--all", registry=reg)
    assert r.exit_code == 0


def test_fetch_failure_and_usage(cli, http_server):
    base, root, _ = http_server
    (root / "remote.bin").write_bytes(b"not what the registry says")
    reg = Registry(plugins=(plugin(url=f"{base}/remote.bin"),), use_entry_points=False)
    r = cli("fetch", "fakecli", registry=reg)
    assert r.exit_code == 1 and "FAILED" in r.output and "does not match" in r.output
    r = cli("fetch")
    assert r.exit_code == 2 and "--all" in r.output


def test_doctor_reports_and_advises(cli):
    reg = Registry(plugins=(plugin(),), use_entry_points=False)
    reg.broken.append(BrokenPlugin("wrecked", "wrecked.plugin", "ImportError: nope"))
    r = cli("doctor", "--no-network", registry=reg)
    assert r.exit_code == 1  # the broken plugin is a problem to fix (README: exit code 1)
    for text in ("Python", "workshop-core", "cpu backend", "preset cpu (detected)", "cache is writable",
                 "fakecli/remote.bin: missing", "plugin wrecked is broken", "reinstall"):
        assert text in r.output, text


def test_doctor_tests_hosts(cli, http_server):
    base, _, _ = http_server
    reg = Registry(plugins=(plugin(url=f"{base}/remote.bin"),), use_entry_points=False)
    r = cli("doctor", registry=reg)
    assert "127.0.0.1" in r.output and "reachable" in r.output


@pytest.mark.parametrize("command", ["list", "info", "run", "fetch", "doctor", "lessons", "check", "new", "validate", "course"])
def test_every_command_has_help_with_exit_codes(command):
    r = CliRunner().invoke(main, [command, "--help"])
    assert r.exit_code == 0, r.output
    assert "Exit codes" in r.output or command == "course"


def test_real_entry_point_listing_is_fast_and_does_not_import_jax():
    code = "import sys; from workshop.cli import main\ntry:\n    main(['list'])\nexcept SystemExit:\n    pass\nprint('JAX-IMPORTED' if 'jax' in sys.modules else 'no-jax')"
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("no-jax")
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert "jax" not in imported and "numpy" not in imported
