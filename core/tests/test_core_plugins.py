"""Plugin discovery through entry points, broken plugins isolated, lazy references."""

from __future__ import annotations

import sys

import pytest

from workshop import Check, DataEntry, DeclarationError, Demo, Lesson, ModuleDeclaration, resolve
from workshop._lazy import ReferenceError_
from workshop._plugins import Registry, UnknownModule, unknown_message

GOOD = '''
from workshop import hookimpl, ModuleDeclaration, Demo, Check
@hookimpl
def workshop_module():
    return ModuleDeclaration(
        name="fakegood", title="A good fake", summary="for tests", minutes=5, package="fakegood_plugin",
        demos=[Demo("hello", "fakegood_science:hello", "says hello")],
        checks=[Check("double", "fakegood_science:check_double")],
    )
'''
SCIENCE = '''
import sys
IMPORTED = True
def hello(ctx):
    return {"greeting": "hello"}
def check_double(candidate):
    return None
'''
RAISES = '''
from workshop import hookimpl
@hookimpl
def workshop_module():
    raise RuntimeError("the declaration exploded")
'''
WRONG_TYPE = '''
from workshop import hookimpl
@hookimpl
def workshop_module():
    return {"name": "fakedict"}
'''
MISMATCH = '''
from workshop import hookimpl, ModuleDeclaration
@hookimpl
def workshop_module():
    return ModuleDeclaration(name="othername", title="t", summary="s", minutes=1, package="x")
'''


def test_discovers_entry_points_and_isolates_broken_plugins(fake_dist):
    fake_dist(
        {
            "fakegood": ("fakegood_plugin", GOOD),
            "fakeraises": ("fakeraises_plugin", RAISES),
            "fakedict": ("fakedict_plugin", WRONG_TYPE),
            "fakemismatch": ("fakemismatch_plugin", MISMATCH),
        },
        extra_modules={"fakegood_science": SCIENCE},
    )
    reg = Registry()
    assert "fakegood" in reg.modules
    broken = {b.name: b for b in reg.broken}
    assert "the declaration exploded" in broken["fakeraises"].error
    assert "expected a ModuleDeclaration" in broken["fakedict"].error
    assert "declaration says 'othername'" in broken["fakemismatch"].error
    for name in ("fakeraises", "fakedict", "fakemismatch"):
        assert "workshop-fake-plugins" in broken[name].source
    # The good module keeps working next to the broken ones.
    assert reg.get("fakegood").title == "A good fake"
    with pytest.raises(UnknownModule, match="broken"):
        reg.get("fakeraises")


def test_plugin_import_error_is_reported_not_raised(fake_dist):
    fake_dist({"fakeimporterr": ("fakeimporterr_plugin", "import a_package_that_is_not_installed_xyz\n")})
    reg = Registry()
    (b,) = [b for b in reg.broken if b.name == "fakeimporterr"]
    assert "ModuleNotFoundError" in b.error and "a_package_that_is_not_installed_xyz" in b.error
    assert "Traceback" in b.details


def test_listing_does_not_import_science_code_and_refs_resolve_on_use(fake_dist):
    fake_dist({"fakegood": ("fakegood_plugin", GOOD)}, extra_modules={"fakegood_science": SCIENCE})
    reg = Registry()
    decl = reg.get("fakegood")
    assert "fakegood_science" not in sys.modules
    fn = resolve(decl.demo().ref)
    assert "fakegood_science" in sys.modules
    assert fn(None) == {"greeting": "hello"}


def test_resolve_errors_are_clear():
    assert resolve("os.path:join")("a", "b").endswith("b")
    with pytest.raises(ReferenceError_, match="cannot import 'no_such_pkg_abc.mod'"):
        resolve("no_such_pkg_abc.mod:f")
    with pytest.raises(ReferenceError_, match="has no attribute 'nope'"):
        resolve("os.path:nope")
    with pytest.raises(ReferenceError_, match="form 'package.module:attribute'"):
        resolve("os.path.join")


def test_unknown_module_suggests_closest_match():
    assert unknown_message("module", "astr", ["astro", "intro"]) == "no module 'astr'; did you mean 'astro'?"
    msg = unknown_message("module", "zzz", ["astro", "intro"])
    assert "choose one of: astro, intro" in msg


def _decl(**kw):
    base = dict(name="m", title="t", summary="s", minutes=1, package="m_pkg")
    base.update(kw)
    return ModuleDeclaration(**base)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="Bad-Name"), "module name 'Bad-Name' is invalid"),
        (dict(minutes=-3), "minutes must be a non-negative int"),
        (dict(demos=[Demo("d", "not a ref")]), "expected 'package.module:function'"),
        (dict(demos=[Demo("d", "a:b"), Demo("d", "a:c")]), "demo 'd' is declared twice"),
        (dict(datasets=[DataEntry("f", sha256="abc", url="http://x")]), "no valid sha256"),
        (dict(datasets=[DataEntry("f", sha256="0" * 64)]), "exactly one of 'embedded' and 'url'"),
        (dict(checks=[Check("c", "a:b", lesson="nope")]), "names lesson 'nope'"),
        (dict(demos=[Demo("d", "a:b")], default_demo="e"), "default_demo 'e'"),
    ],
)
def test_malformed_declarations_name_the_problem(kwargs, message):
    with pytest.raises(DeclarationError, match=message):
        _decl(**kwargs)


def test_declaration_demo_lookup():
    d = _decl(lessons=[Lesson("01_a", "A", "lessons/01_a.py")],
              demos=[Demo("a", "x:a"), Demo("b", "x:b")], default_demo="b")
    assert d.demo().name == "b" and d.demo("a").name == "a"
    with pytest.raises(KeyError):
        d.demo("zz")


def test_registry_accepts_plugins_directly_without_entry_points():
    class Plugin:
        from workshop import hookimpl

        @hookimpl
        def workshop_module(self):
            return _decl(name="direct")

    reg = Registry(plugins=(Plugin(),), use_entry_points=False)
    assert list(reg.modules) == ["direct"]
    # a second plugin with the same name is broken, the first keeps working
    reg2 = Registry(plugins=(Plugin(), Plugin()), use_entry_points=False)
    assert list(reg2.modules) == ["direct"] and "already installed" in reg2.broken[0].error
