"""The fault catalogue of the core commands: every fault met with a clear message and the
right exit code, no traceback unless asked for, and nothing lost or overwritten.

Each case runs one ``workshop`` command in a small world (a module with demos, a lesson,
a check and three data files, a cached file, a pins file, a progress file and a file of
the user's), all under a folder whose name has a space. Every case asserts the exit code,
that the message names the problem and the fix, that no traceback was printed, and that
every file of the world is still there, unchanged (new files may appear only where the
case says, e.g. a set-aside copy; the cache never gains a half file).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from workshop import Check, DataEntry, Demo, Lesson, ModuleDeclaration, hookimpl, progress
from workshop import hardware as hwmod
from workshop._plugins import Registry, registry, set_registry
from workshop.cli import main

PAYLOAD = b"remote data\n" * 100
OTHER = b"other remote data\n" * 50
WEIGHTS = b"weights published without a checksum\n" * 30
PIN_OLD = "a" * 64

DEMOS = '''
def hello(ctx):
    (ctx.out / "hello.txt").write_text("preset=" + ctx.preset)
    return {"preset": ctx.preset}
def bug(ctx):
    raise ValueError("the demo's own bug")
def interrupted(ctx):
    raise KeyboardInterrupt
'''
CHECKS = '''
from workshop.checking import CheckFailed
def double(fn):
    if fn(2) != 4:
        raise CheckFailed("double(2) should be 4")
'''
LESSON = '''# %% [markdown]
# # Doubling

# %% tags=["exercise"]
def double(x):
    # BEGIN SOLUTION: return two times x
    return 2 * x
    # END SOLUTION
'''


def _plugin(base: str):
    class P:
        @hookimpl
        def workshop_module(self):
            return ModuleDeclaration(
                name="faultmod", title="Fault module", summary="the fault catalogue's module", minutes=5,
                package="faultmod_pkg",
                lessons=[Lesson("01_double", "Doubling", "lessons/01_double.py")],
                checks=[Check("double", "faultmod_pkg.checks:double", lesson="01_double")],
                demos=[Demo("hello", "faultmod_pkg.demos:hello", "writes a file"),
                       Demo("bug", "faultmod_pkg.demos:bug", "raises"),
                       Demo("interrupted", "faultmod_pkg.demos:interrupted", "Ctrl-C")],
                datasets=[DataEntry("remote.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), url=f"{base}/remote.bin"),
                          DataEntry("other.bin", sha256=hashlib.sha256(OTHER).hexdigest(), url=f"{base}/other.bin"),
                          DataEntry("weights.pt", url=f"{base}/weights.pt", pin=True)],
                presets={"tiny": "seconds"},
            )

    return P()


@dataclass
class World:
    root: Path
    base: str
    served: Path

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def progress(self) -> Path:
        return self.root / "progress.json"

    @property
    def notes(self) -> Path:
        return self.root / "notes.txt"

    def snapshot(self) -> dict[str, bytes]:
        return {str(p.relative_to(self.root)): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}


@pytest.fixture
def world(tmp_path, monkeypatch, fake_dist, http_server):
    base, served, _ = http_server
    fake_dist({}, extra_modules={"faultmod_pkg/__init__.py": "", "faultmod_pkg/demos.py": DEMOS,
                                 "faultmod_pkg/checks.py": CHECKS, "faultmod_pkg/lessons/01_double.py": LESSON})
    (served / "remote.bin").write_bytes(PAYLOAD)
    (served / "other.bin").write_bytes(OTHER)
    (served / "weights.pt").write_bytes(WEIGHTS)
    root = tmp_path / "my world"
    w = World(root, base, served)
    (w.cache / "faultmod").mkdir(parents=True)
    (w.cache / "faultmod" / "remote.bin").write_bytes(PAYLOAD)
    (w.cache / "pins.json").write_text(json.dumps({"format": "workshop-pins/1", "pins": {
        "faultmod/old.pt": {"sha256": PIN_OLD, "size": 3, "url": "", "pinned": "2026-01-01T00:00:00Z"}}}))
    w.notes.write_text("the user's own notes\n")
    monkeypatch.setenv("WORKSHOP_CACHE", str(w.cache))
    monkeypatch.setenv("WORKSHOP_PROGRESS", str(w.progress))
    progress.record("faultmod", "double", "passed", "double(2) is 4")
    monkeypatch.setattr(hwmod, "detect", lambda: hwmod.Hardware("cpu", 1, "cpu", None, 2, 8.0, "0.0"))
    monkeypatch.chdir(root)
    return w


def invoke(w: World, *args: str, env: dict[str, str] | None = None):
    set_registry(Registry(plugins=(_plugin(w.base),), use_entry_points=False))
    with pytest.MonkeyPatch.context() as m:
        for k, v in (env or {}).items():
            m.setenv(k, v.format(w=w.root))
        return CliRunner().invoke(main, [a.format(w=w.root) for a in args], catch_exceptions=False)


def unwritable_folder(w: World) -> str:
    """A folder no file can be written in, for this user: root writes through permissions,
    so root gets a path under /proc, where nothing can be created."""
    if os.geteuid() != 0:
        locked = w.root / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        return str(locked / "sub")
    if not Path("/proc/self").is_dir():
        pytest.skip("needs a folder this user cannot write in")
    return "/proc/workshop-cannot-write-here"


def _non_utf8(path: Path) -> None:
    path.write_bytes(b'{"cells": [], "metadata": {"title": "caf\xe9"}}')


def _corrupt_progress(w: World) -> None:
    w.progress.write_text("{ not json")


# --------------------------------------------------------------------------- the table


@dataclass
class Case:
    """One fault: the command, its environment, what it must exit with and say."""

    id: str
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]  # the problem, and the fix
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[World], None] | None = None
    new_files: tuple[str, ...] = ()  # globs (relative to the world) of files the case may add


CASES = [
    # ------------------------------------------------------------------ environment variables
    Case("preset-env-unknown-run", ("run", "faultmod", "hello"), 2,
         ("WORKSHOP_PRESET='huge'", "choose one of: cpu, full, gpu, tiny", "unset it"), {"WORKSHOP_PRESET": "huge"}),
    Case("preset-env-typo-run", ("run", "faultmod", "hello"), 2,
         ("WORKSHOP_PRESET='tinny'", "did you mean 'tiny'?"), {"WORKSHOP_PRESET": "tinny"}),
    Case("preset-env-check-notebook", ("check", "faultmod", "{w}/nb.ipynb"), 2,
         ("WORKSHOP_PRESET='huge'", "unset it"), {"WORKSHOP_PRESET": "huge"},
         setup=lambda w: (w.root / "nb.ipynb").write_text(json.dumps(
             {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))),
    Case("cache-env-is-a-file-fetch", ("fetch", "faultmod"), 2,
         ("WORKSHOP_CACHE=", "is a file, not a folder", "point WORKSHOP_CACHE at a folder"),
         {"WORKSHOP_CACHE": "{w}/notes.txt"}),
    Case("cache-env-under-a-file-fetch", ("fetch", "faultmod"), 2,
         ("is under the file", "notes.txt", "point WORKSHOP_CACHE at a folder"),
         {"WORKSHOP_CACHE": "{w}/notes.txt/cache"}),
    Case("cache-env-is-a-file-list", ("list",), 2,
         ("WORKSHOP_CACHE=", "is a file", "unset it to use the default cache folder"),
         {"WORKSHOP_CACHE": "{w}/notes.txt"}),
    Case("cache-env-is-a-file-info-fetch-named", ("fetch", "faultmod", "other.bin"), 2,
         ("is a file", "WORKSHOP_CACHE"), {"WORKSHOP_CACHE": "{w}/notes.txt"}),
    Case("mirror-env-not-a-url", ("fetch", "faultmod", "other.bin"), 2,
         ("WORKSHOP_MIRROR='notaurl'", "neither an http(s):// URL nor an existing folder", "or unset it"),
         {"WORKSHOP_MIRROR": "notaurl"}),
    Case("mirror-env-ftp", ("fetch", "faultmod", "other.bin"), 2,
         ("uses ftp://", "use an http:// or https:// URL or a local folder"), {"WORKSHOP_MIRROR": "ftp://host/data"}),
    Case("mirror-env-no-host", ("fetch", "faultmod", "other.bin"), 2,
         ("names no host", "http://host/path"), {"WORKSHOP_MIRROR": "http:///data"}),
    Case("mirror-env-folder-without-the-file", ("fetch", "faultmod", "other.bin"), 1,
         ("FAILED", "the mirror folder has no file", "other.bin"), {"WORKSHOP_MIRROR": "{w}/mirror"},
         setup=lambda w: (w.root / "mirror").mkdir()),
    Case("offline-env-not-a-flag", ("fetch", "faultmod", "other.bin"), 2,
         ("WORKSHOP_OFFLINE='maybe' is neither on nor off", "WORKSHOP_OFFLINE=1"), {"WORKSHOP_OFFLINE": "maybe"}),
    Case("offline-missing-file", ("fetch", "faultmod", "other.bin"), 1,
         ("offline mode is on", "workshop fetch faultmod", "copy the file to"), {"WORKSHOP_OFFLINE": "yes"}),
    Case("debug-env-not-a-flag", ("list",), 2,
         ("WORKSHOP_DEBUG='sometimes' is neither on nor off",), {"WORKSHOP_DEBUG": "sometimes"}),
    Case("progress-env-is-a-folder", ("check", "faultmod"), 2,
         ("WORKSHOP_PROGRESS=", "is a folder", "point it at a file"), {"WORKSHOP_PROGRESS": "{w}/cache"}),
    Case("progress-env-under-a-file", ("check", "faultmod"), 2,
         ("WORKSHOP_PROGRESS=", "which is a file", "point it at a file in a folder"),
         {"WORKSHOP_PROGRESS": "{w}/notes.txt/progress.json"}),
    Case("progress-env-folder-under-a-file-list", ("list",), 2,
         ("WORKSHOP_PROGRESS=", "which is a file"), {"WORKSHOP_PROGRESS": "{w}/notes.txt/progress.json"}),
    Case("pins-env-missing", ("fetch", "faultmod", "weights.pt"), 2,
         ("WORKSHOP_PINS=", "does not exist", "point it at the pins file your instructor shared"),
         {"WORKSHOP_PINS": "{w}/no such pins.json"}),
    Case("pins-env-is-a-folder", ("fetch", "faultmod", "weights.pt"), 2,
         ("WORKSHOP_PINS=", "is a folder", "or unset it"), {"WORKSHOP_PINS": "{w}/cache"}),
    Case("pins-env-malformed", ("fetch", "faultmod", "weights.pt"), 1,
         ("is not valid JSON", "ask for a fresh one, or unset WORKSHOP_PINS"), {"WORKSHOP_PINS": "{w}/bad pins.json"},
         setup=lambda w: (w.root / "bad pins.json").write_text("{ not json")),
    Case("doctor-names-bad-environment", ("doctor", "--no-network"), 1,
         ("FIX", "WORKSHOP_PRESET='huge'", "WORKSHOP_OFFLINE='maybe'", "WORKSHOP_XLA_DEFAULTS='often'",
          "thing(s) to fix"),
         {"WORKSHOP_PRESET": "huge", "WORKSHOP_OFFLINE": "maybe", "WORKSHOP_XLA_DEFAULTS": "often"}),
    Case("doctor-with-an-unusable-cache", ("doctor", "--no-network"), 1,
         ("FIX", "the data cache cannot be used", "point WORKSHOP_CACHE at a folder"),
         {"WORKSHOP_CACHE": "{w}/notes.txt"}),
    # ------------------------------------------------------------------ paths and input files
    Case("out-under-a-file", ("run", "faultmod", "hello", "--out", "{w}/notes.txt/results"), 2,
         ("--out: cannot write into the folder", "notes.txt is a file, so no folder can be made under it",
          "choose a folder you can write to with --out")),
    Case("out-is-a-file", ("run", "faultmod", "hello", "--out", "{w}/notes.txt"), 2,
         ("notes.txt is a file, not a folder", "--out")),
    Case("out-dangling-link", ("run", "faultmod", "hello", "--out", "{w}/gone"), 2,
         ("gone is a link to", "which does not exist", "choose a folder you can write to with --out"),
         setup=lambda w: (w.root / "gone").symlink_to(w.root / "nowhere")),
    Case("out-empty", ("run", "faultmod", "hello", "--out", ""), 2, ("--out was given an empty path", "name a folder")),
    Case("lessons-to-under-a-file", ("lessons", "faultmod", "--to", "{w}/notes.txt/nb"), 2,
         ("--to: cannot write into the folder", "is a file", "choose a folder you can write to with --to")),
    Case("lessons-to-empty", ("lessons", "faultmod", "--to", ""), 2, ("--to was given an empty path",)),
    Case("course-lessons-to-under-a-file", ("course", "lessons", "{w}/course.toml", "--to", "{w}/notes.txt/x"), 2,
         ("--to: cannot write into the folder", "is a file"),
         setup=lambda w: (w.root / "course.toml").write_text('title = "A course"\n[[agenda]]\nmodule = "faultmod"\n')),
    Case("lessons-notebook-path-is-a-folder", ("lessons", "faultmod", "--to", "{w}/nbs"), 1,
         ("01_double.ipynb is a folder where the notebook 01_double.ipynb belongs", "nothing was written",
          "Move it away"),
         setup=lambda w: (w.root / "nbs" / "01_double.ipynb").mkdir(parents=True)
         or (w.root / "nbs" / "01_double.ipynb" / "mine.txt").write_text("kept")),
    Case("notebook-not-utf8", ("check", "faultmod", "{w}/mine.ipynb"), 2,
         ("cannot read the notebook", "not UTF-8 text", "save it again as UTF-8"),
         setup=lambda w: _non_utf8(w.root / "mine.ipynb")),
    Case("notebook-not-json", ("check", "faultmod", "{w}/mine.ipynb"), 2,
         ("cannot read the notebook", "give a Jupyter notebook (.ipynb)", "workshop lessons faultmod"),
         setup=lambda w: (w.root / "mine.ipynb").write_text("print('a script, not a notebook')")),
    Case("notebook-missing", ("check", "faultmod", "{w}/nowhere.ipynb"), 2, ("no notebook at", "nowhere.ipynb")),
    Case("course-file-not-utf8", ("course", "show", "{w}/course.toml"), 2,
         ("cannot read the course file", "not UTF-8 text", "save it as UTF-8"),
         setup=lambda w: (w.root / "course.toml").write_bytes(b'title = "caf\xe9"\n')),
    Case("course-file-missing", ("course", "show", "{w}/no course.toml"), 2, ("cannot read the course file",)),
    # ------------------------------------------------------------------ option values and names
    Case("budget-empty", ("run", "faultmod", "hello", "--budget", ""), 2, ("cannot read the duration ''", "'5m'")),
    Case("budget-negative", ("run", "faultmod", "hello", "--budget", "-5m"), 2, ("cannot read the duration",)),
    Case("preset-option-empty", ("run", "faultmod", "hello", "--preset", ""), 2,
         ("no preset ''", "choose one of: cpu, full, gpu, tiny")),
    Case("model-option-empty", ("run", "faultmod", "hello", "--model", " "), 2,
         ("--model was given an empty name", "leave --model out")),
    Case("seed-not-a-number", ("run", "faultmod", "hello", "--seed", "abc"), 2, ("'abc' is not a valid integer",)),
    Case("unknown-option", ("run", "faultmod", "--bogus"), 2, ("No such option '--bogus'",)),
    Case("unknown-command", ("fecth", "faultmod"), 2, ("No such command 'fecth'",)),
    Case("module-empty-name-info", ("info", ""), 2, ("no module ''", "workshop list")),
    Case("module-empty-name-run", ("run", ""), 2, ("no module ''",)),
    Case("module-typo-run", ("run", "faultmd"), 2, ("did you mean 'faultmod'?",)),
    Case("demo-typo", ("run", "faultmod", "helo"), 2, ("did you mean 'hello'?", "workshop info faultmod")),
    Case("data-file-empty-name", ("fetch", "faultmod", ""), 2, ("no data file of module 'faultmod' named ''",)),
    Case("data-file-typo", ("fetch", "faultmod", "remote.bn"), 2, ("did you mean 'remote.bin'?",)),
    Case("fetch-nothing-named", ("fetch",), 2, ("name a module", "--all")),
    Case("pins-forget-not-a-pin-name", ("pins", "--forget", "faultmod"), 2,
         ("'faultmod' is not a pin name", "write MODULE/FILE")),
    Case("pins-forget-nothing", ("pins", "--forget"), 2, ("name the pins to forget",)),
    Case("pins-unknown", ("pins", "faultmod/nothing.pt"), 2, ("no pin on this machine for faultmod/nothing.pt",
                                                              "pinned: faultmod/old.pt")),
    Case("check-empty-name", ("check", ""), 2, ("no module ''",)),
    Case("check-typo", ("check", "faultmod.doubel"), 2, ("did you mean 'faultmod.double'?",)),
    Case("seed-out-of-range", ("run", "faultmod", "hello", "--seed", "99999999999999999999"), 2,
         ("Invalid value for '--seed'", "0<=x<=4294967295")),
    Case("check-timeout-zero", ("check", "faultmod", "{w}/nb.ipynb", "--timeout", "0"), 2,
         ("Invalid value for '--timeout'", "x>=1")),
    Case("validate-timeout-negative", ("validate", "faultmod", "--timeout", "-5"), 2,
         ("Invalid value for '--timeout'", "x>=1")),
    Case("new-to-under-a-file", ("new", "ocean", "--to", "{w}/notes.txt/ocean"), 2,
         ("--to: cannot write into the folder", "notes.txt is a file", "choose a folder you can write to")),
    Case("new-to-is-a-file", ("new", "ocean", "--to", "{w}/notes.txt"), 2,
         ("notes.txt is a file, not a folder", "choose another --to folder")),
    Case("new-bad-name", ("new", "Ocean Models"), 2, ("is not a valid module name", "lower-case letters")),
    Case("validate-preset-unknown", ("validate", "faultmod", "--preset", "big"), 2, ("no preset 'big'",)),
    # ------------------------------------------------------------------ data and the cache
    Case("cached-file-replaced-by-a-folder", ("fetch", "faultmod", "other.bin"), 1,
         ("is a folder, not the cached file 'other.bin'", "nothing was changed", "Move it away"),
         setup=lambda w: (w.cache / "faultmod" / "other.bin" / "kept.txt").parent.mkdir()
         or (w.cache / "faultmod" / "other.bin" / "kept.txt").write_text("someone's file")),
    Case("module-cache-folder-is-a-file", ("fetch", "faultmod", "other.bin"), 1,
         ("cannot write the module's cache folder", "a file is in its place", "Move that file away"),
         env={"WORKSHOP_CACHE": "{w}/cache2"},
         setup=lambda w: (w.root / "cache2").mkdir() or (w.root / "cache2" / "faultmod").write_text("a file")),
    Case("pins-file-is-a-folder", ("fetch", "faultmod", "weights.pt"), 1,
         ("pins file", "is a folder, not a file", "Move it away"), env={"WORKSHOP_CACHE": "{w}/cache2"},
         setup=lambda w: (w.root / "cache2" / "pins.json").mkdir(parents=True)),
    Case("pins-file-malformed", ("pins",), 1, ("data problem", "is not valid JSON", "fix it, or move it away"),
         setup=lambda w: (w.cache / "pins.json").write_text('{"format": "workshop-pins/1", "pins": ')),
    Case("pins-file-not-utf8", ("pins",), 1, ("data problem", "is not valid JSON"),
         setup=lambda w: (w.cache / "pins.json").write_bytes(b"\xff\xfe{}")),
    Case("pins-file-bad-entry", ("fetch", "faultmod", "weights.pt"), 1,
         ("malformed entry 'faultmod/x.pt'", "64-digit sha256"),
         setup=lambda w: (w.cache / "pins.json").write_text(json.dumps(
             {"format": "workshop-pins/1", "pins": {"faultmod/x.pt": {"sha256": "nope", "size": 1}}}))),
    Case("download-truncated", ("fetch", "faultmod", "other.bin"), 1,
         ("FAILED", "could not download 'other.bin'", "Check your connection"),
         env={"WORKSHOP_MIRROR": "{base}/truncated/"},
         setup=lambda w: (w.served / "faultmod").mkdir() or (w.served / "faultmod" / "other.bin").write_bytes(OTHER)),
    Case("download-wrong-bytes", ("fetch", "faultmod", "other.bin"), 1,
         ("FAILED", "does not match its registry sha256", "the file was discarded"),
         setup=lambda w: (w.served / "other.bin").write_bytes(b"something else")),
    Case("download-host-down", ("fetch", "faultmod", "other.bin"), 1,
         ("could not download 'other.bin'", "'workshop doctor' tests the hosts"),
         env={"WORKSHOP_MIRROR": "http://127.0.0.1:9"}),
    # ------------------------------------------------------------------ progress
    Case("progress-corrupt-check", ("check", "faultmod"), 0,
         ("could not be read", "it was set aside as", "progress.json.unreadable-", "starts afresh"),
         setup=_corrupt_progress, new_files=("progress.json.unreadable-*",)),
    Case("progress-corrupt-list", ("list",), 0, ("it was set aside as",),
         setup=_corrupt_progress, new_files=("progress.json.unreadable-*",)),
    Case("progress-not-utf8", ("check", "faultmod"), 0, ("UnicodeDecodeError", "it was set aside as"),
         setup=lambda w: w.progress.write_bytes(b'{"modules": "\xff"}'), new_files=("progress.json.unreadable-*",)),
    Case("progress-json-but-not-a-record", ("check", "faultmod"), 0,
         ("not a progress record", "it was set aside as"),
         setup=lambda w: w.progress.write_text("[1, 2, 3]"), new_files=("progress.json.unreadable-*",)),
    Case("progress-wrong-types", ("check", "faultmod"), 0,
         ("2 malformed record(s)", "faultmod.double has status 5", "faultmod.triple has attempts 'many'",
          "Running those checks again records fresh results"),
         setup=lambda w: w.progress.write_text(json.dumps({"version": 1, "modules": {"faultmod": {
             "double": {"status": 5}, "triple": {"status": "passed", "attempts": "many"}}}}))),
    Case("progress-module-is-a-list", ("check", "faultmod.double"), 0,
         ("1 malformed record(s)", "faultmod is a list, not a table of checks"),
         setup=lambda w: w.progress.write_text(json.dumps({"version": 1, "modules": {"faultmod": [1, 2]}}))),
    Case("progress-unwritable-reset", ("check", "faultmod", "--reset"), 2,
         ("cannot use the progress file", "set WORKSHOP_PROGRESS to a file you can write"),
         env={"WORKSHOP_PROGRESS": "{unwritable}/progress.json"}),
    Case("out-unwritable", ("run", "faultmod", "hello", "--out", "{unwritable}"), 2,
         ("--out: cannot write into the folder", "choose a folder you can write to with --out")),
    Case("cache-unwritable", ("fetch", "faultmod", "other.bin"), 2,
         ("WORKSHOP_CACHE: cannot write into the folder", "point WORKSHOP_CACHE at a writable folder"),
         env={"WORKSHOP_CACHE": "{unwritable}"}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault(world, case: Case):
    w = world
    if case.setup:
        case.setup(w)
    unwritable = unwritable_folder(w) if any("{unwritable}" in v for v in (*case.args, *case.env.values())) else ""
    env = {k: v.replace("{base}", w.base).replace("{unwritable}", unwritable) for k, v in case.env.items()}
    args = tuple(a.replace("{unwritable}", unwritable) for a in case.args)
    before = w.snapshot()
    r = invoke(w, *args, env=env)
    assert r.exit_code == case.code, r.output
    flat = " ".join(r.output.split())  # messages wrap only at spaces
    for text in case.says:
        assert text in flat, f"{text!r} not in:\n{r.output}"
    assert "Traceback" not in r.output
    after = w.snapshot()
    allowed = {str(p.relative_to(w.root)) for g in case.new_files for p in w.root.glob(g)}
    for name, data in before.items():
        if case.new_files and name == "progress.json":
            continue  # set aside (its bytes are checked below), then started afresh
        assert after.get(name) == data, f"{name} was changed or lost"
    assert set(after) - set(before) <= allowed | {"progress.json"} if case.new_files else set(after) == set(before), \
        sorted(set(after) ^ set(before))
    if case.new_files:
        (aside,) = [w.root / a for a in allowed]
        assert aside.read_bytes() == before["progress.json"]  # the damaged file, kept whole


# --------------------------------------------------------------------------- the cases a table cannot hold


def test_an_unexpected_error_is_one_paragraph_with_its_traceback_in_a_log(world, tmp_path):
    r = invoke(world, "run", "faultmod", "bug", "--out", "{w}/out dir")
    assert r.exit_code == 1
    assert "The demo faultmod bug failed: ValueError: the demo's own bug" in r.output
    assert "rerun with --debug" in r.output and "Traceback" not in r.output
    log = Path(r.output.split("Its traceback is in ")[1].split(";")[0])
    assert log.is_file() and log.is_relative_to(tmp_path / "state")
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "ValueError: the demo's own bug" in text
    # the folder keeps the newest KEEP_LOGS tracebacks: older ones go when a new one comes
    from workshop._errors import KEEP_LOGS

    for k in range(KEEP_LOGS + 5):
        old = log.parent / f"workshop-error-20200101-0000{k:02d}.log"
        old.write_text("old")
        os.utime(old, (1_600_000_000 + k, 1_600_000_000 + k))
    other = log.parent / "notes.txt"
    other.write_text("not ours")
    r = invoke(world, "run", "faultmod", "bug", "--out", "{w}/out dir")
    newest = Path(r.output.split("Its traceback is in ")[1].split(";")[0])
    kept = sorted(log.parent.glob("workshop-error-*.log"))
    assert len(kept) == KEEP_LOGS and newest in kept and log in kept and other.read_text() == "not ours"
    assert not (log.parent / "workshop-error-20200101-000000.log").exists()


@pytest.mark.parametrize("how", ["--debug", "WORKSHOP_DEBUG=1"])
def test_debug_shows_the_traceback(world, how):
    args = ("--debug",) if how == "--debug" else ()
    env = {"WORKSHOP_DEBUG": "1"} if how != "--debug" else {}
    r = invoke(world, *args, "run", "faultmod", "bug", "--out", "{w}/out", env=env)
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.output and "raise ValueError" in r.output
    assert "The demo faultmod bug failed: ValueError: the demo's own bug" in r.output


def test_a_bug_in_a_core_command_is_one_paragraph(world, monkeypatch):
    from workshop import data

    def broken(self, name, **kwargs):
        raise RuntimeError("something inside the core broke")

    monkeypatch.setattr(data.ModuleData, "fetch", broken)
    r = invoke(world, "fetch", "faultmod")
    assert r.exit_code == 1
    assert "The command 'workshop fetch' failed: RuntimeError: something inside the core broke" in r.output
    assert "rerun with --debug" in r.output and "Traceback" not in r.output


def test_ctrl_c_in_a_demo_exits_130(world):
    r = invoke(world, "run", "faultmod", "interrupted", "--out", "{w}/out")
    assert r.exit_code == 130 and "Interrupted" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("name", ["other.bin", "weights.pt"])
def test_ctrl_c_during_a_download_exits_130_and_leaves_no_half_file(world, monkeypatch, name):
    import pooch  # here, not at collection: pooch binds its log handler to the stderr of its first import

    def half_then_interrupt(self, url, output_file, pooch_obj, check_only=False):
        Path(output_file).write_bytes(b"half of the fi")
        raise KeyboardInterrupt

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", half_then_interrupt)
    before = world.snapshot()
    r = invoke(world, "fetch", "faultmod", name)
    assert r.exit_code == 130 and "Interrupted" in r.output and "Traceback" not in r.output
    assert world.snapshot() == before  # no half file, no temporary file, the cached file untouched
    assert sorted(p.name for p in (world.cache / "faultmod").iterdir()) == ["remote.bin"]


def test_a_second_corruption_never_overwrites_the_first_set_aside_copy(world):
    world.progress.write_text("{ first damage")
    assert invoke(world, "check", "faultmod").exit_code == 0
    progress.record("faultmod", "double", "failed", "double(2) is 5")
    world.progress.write_text("{ second damage")
    r = invoke(world, "check", "faultmod")
    assert r.exit_code == 0 and "it was set aside as" in r.output
    kept = sorted(p.read_text() for p in world.root.glob("progress.json.unreadable-*"))
    assert kept == ["{ first damage", "{ second damage"]


def test_recording_over_a_malformed_record_copies_the_file_aside_first(world, capsys):
    bad = json.dumps({"version": 1, "modules": {"faultmod": {"double": {"status": 5}, "triple": {"x": 1}}}})
    world.progress.write_text(bad)
    progress.record("faultmod", "double", "passed", "ok")
    (aside,) = world.root.glob("progress.json.malformed-*")
    assert aside.read_text() == bad
    assert f"kept as {aside}" in capsys.readouterr().err
    assert progress.passed_checks("faultmod") == {"double"}
    assert progress.malformed_records("faultmod") == ["faultmod.triple has status None (expected one of passed, "
                                                      "failed, not_attempted)"]


def test_a_local_folder_mirror_is_copied_and_verified(world):
    mirror = world.root / "course mirror" / "faultmod"
    mirror.mkdir(parents=True)
    (mirror / "other.bin").write_bytes(OTHER)
    r = invoke(world, "fetch", "faultmod", "other.bin", env={"WORKSHOP_MIRROR": "{w}/course mirror"})
    assert r.exit_code == 0, r.output
    assert (world.cache / "faultmod" / "other.bin").read_bytes() == OTHER
    (mirror / "other.bin").write_bytes(b"a different file")
    (world.cache / "faultmod" / "other.bin").unlink()
    r = invoke(world, "fetch", "faultmod", "other.bin", env={"WORKSHOP_MIRROR": (mirror.parent.as_uri())})
    assert r.exit_code == 1 and "does not match its registry sha256" in r.output
    assert "The mirror (WORKSHOP_MIRROR) holds a different or damaged copy" in " ".join(r.output.split())
    assert not (world.cache / "faultmod" / "other.bin").exists()


def test_paths_with_spaces_work(world):
    r = invoke(world, "run", "faultmod", "hello", "--preset", "tiny", "--out", "{w}/results with spaces/run 1")
    assert r.exit_code == 0, r.output
    assert (world.root / "results with spaces" / "run 1" / "hello.txt").read_text() == "preset=tiny"
    r = invoke(world, "lessons", "faultmod", "--to", "{w}/note books")
    assert r.exit_code == 0, r.output
    assert (world.root / "note books" / "01_double.ipynb").is_file()


def test_an_edited_notebook_that_is_not_utf8_is_kept(world):
    dest = world.root / "nbs"
    dest.mkdir()
    (dest / "01_double.ipynb").write_bytes(b"\xff\xfe my own bytes")
    r = invoke(world, "lessons", "faultmod", "--to", str(dest))
    assert r.exit_code == 0, r.output
    assert "kept" in r.output and (dest / "01_double.ipynb").read_bytes() == b"\xff\xfe my own bytes"


def test_doctor_exits_1_on_problems_and_0_when_all_is_well(world):
    cached = world.cache / "faultmod" / "remote.bin"
    cached.write_bytes(b"damaged")
    r = invoke(world, "doctor", "--no-network")
    assert r.exit_code == 1 and "faultmod/remote.bin: damaged" in r.output and "1 thing(s) to fix" in r.output
    cached.write_bytes(PAYLOAD)
    r = invoke(world, "doctor", "--no-network")
    assert r.exit_code == 0, r.output
    assert "All good." in r.output


SECOND_DIST = '''
from workshop import hookimpl, ModuleDeclaration
@hookimpl
def workshop_module():
    return ModuleDeclaration(name="faultmod", title="An impostor", summary="s", minutes=1, package="impostor_plugin")
'''
FIRST_DIST = SECOND_DIST.replace("An impostor", "The real one").replace("impostor_plugin", "real_plugin")


def test_two_distributions_declaring_one_module_are_refused_naming_both(fake_dist):
    site = fake_dist({"faultmod": ("real_plugin", FIRST_DIST)})
    (site / "impostor_plugin.py").write_text(SECOND_DIST)
    info = site / "workshop_impostor-6.6.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: workshop-impostor\nVersion: 6.6\n")
    (info / "entry_points.txt").write_text("[workshop.modules]\nfaultmod = impostor_plugin\n")
    set_registry(None)
    reg = registry()
    assert "faultmod" not in reg.modules
    runner = CliRunner()
    for args, code in ((["list"], 0), (["run", "faultmod"], 2), (["info", "faultmod"], 2)):
        r = runner.invoke(main, args)
        flat = " ".join(r.output.split())
        assert r.exit_code == code, r.output
        for text in ("2 installed distributions declare the module 'faultmod'", "workshop-fake-plugins 0.1",
                     "workshop-impostor 6.6", "pip uninstall workshop-impostor"):
            assert text in flat, (args, text, r.output)
        assert "Traceback" not in r.output
    assert "impostor_plugin" not in sys.modules and "real_plugin" not in sys.modules  # neither was loaded


def test_a_second_plugin_with_a_taken_name_names_the_first(world):
    reg = Registry(plugins=(_plugin(world.base), _plugin(world.base)), use_entry_points=False)
    (b,) = reg.broken
    assert "a module named 'faultmod' is already installed (from" in b.error and "Rename one" in b.error
    assert reg.modules["faultmod"].title == "Fault module"


def test_fetch_all_names_a_broken_plugin_instead_of_skipping_it(world):
    from workshop._plugins import BrokenPlugin

    reg = Registry(plugins=(_plugin(world.base),), use_entry_points=False)
    reg.broken.append(BrokenPlugin("wrecked", "wrecked.plugin", "ImportError: nope"))
    set_registry(reg)
    r = CliRunner().invoke(main, ["fetch", "--all"])
    assert r.exit_code == 1, r.output
    assert "ok       faultmod/other.bin" in r.output  # the others are still fetched
    assert "FAILED   wrecked (broken plugin, its data is unknown)  ImportError: nope" in r.output
    assert "Traceback" not in r.output


def test_the_default_cache_is_pooch_s_and_listing_does_not_import_pooch(tmp_path):
    import subprocess

    code = ("import sys; from workshop.cli import main\ntry:\n    main(['list'])\nexcept SystemExit:\n    pass\n"
            "print('POOCH' if 'pooch' in sys.modules else 'no-pooch')\n"
            "import pooch; from workshop._environment import cache_dir\n"
            "print(cache_dir() == pooch.os_cache('workshop'))")
    env = {k: v for k, v in os.environ.items() if k != "WORKSHOP_CACHE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["no-pooch", "True"], out.stdout
