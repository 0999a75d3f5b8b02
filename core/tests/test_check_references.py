"""Every check the documentation, the core's messages and the lessons name is a declared check.

A README that says ``workshop check astro.forward_marginal`` when no such check exists
sends a participant to an error on their first try. This scans README.md,
CONTRIBUTING.md, every module's README, the core's source (its messages and docstrings)
and every lesson for ``workshop check MOD.NAME`` and ``check("MOD.NAME"`` and asks the
installed modules' declarations; a module that is not installed is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from workshop._plugins import registry

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"""(?:workshop check\s+|check\(\\?["'])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)""")


def _documents() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "modules").glob("*/README.md"))]
    files += sorted((ROOT / "core" / "src" / "workshop").rglob("*.py"))
    files += sorted((ROOT / "modules").glob("*/src/*/lessons/*.py"))
    return [f for f in files if f.is_file()]


def references(text: str) -> list[tuple[str, str]]:
    """The ``(module, check)`` pairs a text names."""
    return REFERENCE.findall(text)


def test_the_pattern_finds_both_spellings_and_nothing_else():
    text = ('workshop check astro.vp_marginal   # status\n check("intro.piecewise", f) '
            "check(\\\"wrapup.fit_galaxy\\\", f)  check(name, fn)  workshop check --help")
    assert references(text) == [("astro", "vp_marginal"), ("intro", "piecewise"), ("wrapup", "fit_galaxy")]


def test_every_named_check_is_declared():
    reg = registry(refresh=True)
    if not reg.modules:
        pytest.skip("no workshop module is installed")
    declared = {m: {c.name for c in reg.get(m).checks} for m in reg.modules}
    unknown, seen = [], 0
    for path in _documents():
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for module, name in references(line):
                if module not in declared:
                    continue  # that module is not installed here
                seen += 1
                if name not in declared[module]:
                    unknown.append(f"{path.relative_to(ROOT)}:{line_no}: {module}.{name}")
    assert seen >= 20  # the lessons alone name dozens: the scan must be reading them
    assert not unknown, "checks named but not declared:\n" + "\n".join(unknown)
