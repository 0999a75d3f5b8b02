'''``workshop new NAME``: scaffold a small but real workshop module.

The new module teaches one numerically meaningful exercise (a log-sum-exp that does not
overflow, the building block of softmax layers and log-likelihoods) with NumPy only, so
it installs in seconds. It has everything the contract in CONTRIBUTING.md asks for: a
declaration, a single-source lesson with one exercise and its check, a demo that writes
results, an embedded data file with its sha256, the generated exercise notebook and
tests. ``workshop validate NAME`` passes on it as created.
'''

from __future__ import annotations

import fnmatch
import hashlib
import keyword
import re
import tomllib
from pathlib import Path


class ScaffoldError(ValueError):
    """The module cannot be created (bad name, folder in the way); the message says why."""


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = '''[project]
name = "{dist}"
version = "0.1.0"
description = "{title}: a workshop module."
readme = "README.md"
requires-python = ">=3.11"
license = {{ text = "MIT" }}
dependencies = [
    "workshop-core",
    "numpy>=1.26",
]

[project.entry-points."workshop.modules"]
{name} = "{package}.plugin"
{uv_sources}
[build-system]
requires = ["hatchling>=1.24"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{package}"]
'''

UV_SOURCES = '''
[tool.uv.sources]
workshop-core = { workspace = true }
'''

README = '''# {title}

A workshop module (registered as `{name}`): one lesson on computing log-sum-exp without
overflow, with an exercise, its check and a demo.

```
pip install -e {folder_hint}        # inside the workshop repository: uv pip install -e {folder_hint}
workshop list                      # shows {name}
workshop lessons {name}            # the notebooks
workshop run {name}                # the demo
workshop validate {name}           # lessons build, the solution passes, the stub fails
```

Edit `src/{package}/lessons/01_stable_sums.py` (jupytext percent format), then refresh
the committed notebook with `workshop lessons {name} --to notebooks --force` (inside the
workshop repository: `python ci/build_notebooks.py {name}`).
'''

INIT = '''"""{title}: a workshop module. Importing it is light (NumPy only, on demand)."""

__version__ = "0.1.0"
'''

PLUGIN = '''"""The declaration of the '{name}' workshop module: plain data, no heavy imports."""

from workshop import Check, DataEntry, Demo, HardwareNeeds, Lesson, ModuleDeclaration, hookimpl


@hookimpl
def workshop_module():
    return ModuleDeclaration(
        name="{name}",
        title="{title}",
        summary="Why log(sum(exp(x))) overflows in float64, and the shift that fixes it: "
        "the building block of softmax layers and log-likelihoods.",
        minutes=20,
        package="{package}",
        distribution="{dist}",
        path="{path}",
        lessons=[Lesson("01_stable_sums", "Stable sums of exponentials", "lessons/01_stable_sums.py", minutes=20)],
        checks=[
            Check("logsumexp", "{package}.checks.stable_sums:logsumexp", lesson="01_stable_sums",
                  summary="log(sum(exp(x))) of a 1-D array, without overflow",
                  hint="exp(x - m) never overflows when m is the largest x; what must you add back?"),
        ],
        demos=[Demo("softmax", "{package}.demos.stable_sums:softmax_temperatures",
                    "softmax of embedded scores at several temperatures", minutes=0.1)],
        datasets=[
            DataEntry("scores.txt", sha256="{scores_sha}", embedded="data/scores.txt",
                      description="ten unnormalised scores (logits) for the softmax demo",
                      source="made up for this module; public domain"),
        ],
        presets={{"tiny": "3 temperatures", "cpu": "7 temperatures", "gpu": "7 temperatures", "full": "7 temperatures"}},
        hardware=HardwareNeeds(min_ram_gb=1, accelerator="none"),
    )
'''

NUMERICS = '''"""Log-sum-exp and softmax, computed without overflow."""

from __future__ import annotations

import numpy as np


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(sum(exp(x)))`` along ``axis``, shifted by the maximum so that nothing overflows.

    Example::

        >>> float(logsumexp(np.array([1000.0, 1000.0])))  # 1000 + log 2
        1000.6931471805599
    """
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, through :func:`logsumexp`."""
    x = np.asarray(x, dtype=float)
    return np.exp(x - np.expand_dims(logsumexp(x, axis=axis), axis))


def entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of a probability vector."""
    p = np.asarray(p, dtype=float)
    nz = p[p > 0]
    return float(-np.sum(nz * np.log(nz)))
'''

CHECKS_INIT = '''"""Checks for the exercises of the '{name}' module, one file per part, mirroring the lessons.

* :mod:`.stable_sums`: lesson 01, stable sums of exponentials.

Every check is re-exported here.
"""

from __future__ import annotations

from .stable_sums import logsumexp

__all__ = ["logsumexp"]
'''

CHECKS = '''"""Checks for lesson 01 of the '{name}' module: stable sums of exponentials."""

from __future__ import annotations

import numpy as np
from workshop.checking import CheckFailed, assert_close, call

from ..numerics import logsumexp as _reference

OVERFLOW_HINT = ("np.exp overflows above about 709 and underflows below about -745: subtract the "
                 "largest value m first and return m + log(sum(exp(x - m)))")


def logsumexp(candidate) -> str:
    """The participant's ``logsumexp(x)`` against the reference on many 1-D inputs."""
    rng = np.random.default_rng(0)
    cases = [np.array([0.0]), np.array([1.0, 2.0, 3.0]), np.zeros(5)]
    cases += [rng.normal(size=n) * scale for n in (2, 7, 50) for scale in (1.0, 30.0)]
    cases += [np.array([1000.0, 1000.0]), np.array([-1000.0, -999.0]), rng.normal(size=20) + 800.0]
    for x in cases:
        shown = np.array2string(x[:3], precision=3, separator=", ")
        what = f"x = {{shown}}" if x.size <= 3 else f"x = {{shown[:-1]}}, ...] ({{x.size}} values)"
        got = call(candidate, x.copy(), what=what)
        expected = _reference(x)
        try:
            finite = bool(np.all(np.isfinite(np.asarray(got, dtype=float))))
        except (TypeError, ValueError):
            raise CheckFailed(f"for {{what}} your function returned {{type(got).__name__}}, not a number",
                              hint="return a single number: the log of the sum") from None
        if not finite:
            raise CheckFailed(f"for {{what}} your function returned a value that is not finite",
                              expected=expected, got=got, hint=OVERFLOW_HINT)
        assert_close(got, expected, what=f"logsumexp for {{what}}", rtol=1e-9, atol=1e-9,
                     hint="sum over all the values of x, and return a single number")
    return f"matches the reference on {{len(cases)}} inputs, including values near -1000 and +1000"
'''

DEMOS_INIT = '''"""Demos of the '{name}' module (what 'workshop run {name}' calls), one file per part.

* :mod:`.stable_sums`: ``softmax``, the softmax of embedded scores at several temperatures.

The demo functions are re-exported here.
"""

from __future__ import annotations

from .stable_sums import softmax_temperatures

__all__ = ["softmax_temperatures"]
'''

DEMOS = '''"""The demo of lesson 01 of the '{name}' module: ``workshop run {name} softmax``."""

from __future__ import annotations

import numpy as np

from ..numerics import entropy, softmax


def softmax_temperatures(ctx) -> dict:
    """Softmax of the embedded scores at several temperatures; entropy grows with temperature."""
    scores = np.loadtxt(ctx.fetch("scores.txt"))
    temperatures = [0.5, 1.0, 2.0] if ctx.preset == "tiny" else [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0]
    rows = []
    for t in temperatures:
        p = softmax(scores / t)
        rows.append({{"temperature": t, "entropy_nats": entropy(p), "top_probability": float(p.max())}})
        ctx.log(f"T={{t:<5g}} entropy {{rows[-1]['entropy_nats']:.3f}} nats, top p {{rows[-1]['top_probability']:.3f}}")
    path = ctx.save_json("softmax.json", {{"scores": scores, "rows": rows}})
    return {{"entropy_at_T1": next(r["entropy_nats"] for r in rows if r["temperature"] == 1.0), "results": path}}
'''

LESSON = '''# %% [markdown]
# # Stable sums of exponentials
#
# Softmax layers, log-likelihoods and diffusion models all need $\\log \\sum_i e^{{x_i}}$.
# Computed as written, it overflows as soon as one $x_i$ exceeds about 709 in float64.
# Here you will write the version that never does.

# %%
import numpy as np
from workshop import check

# %% [markdown]
# The naive formula is fine for small numbers and breaks for large ones:

# %%
for x in (np.array([1.0, 2.0, 3.0]), np.array([1000.0, 1000.0])):
    with np.errstate(over="ignore"):
        print(x, "->", np.log(np.sum(np.exp(x))))

# %% [markdown]
# ## Exercise: `logsumexp`
#
# Since $\\log \\sum_i e^{{x_i}} = m + \\log \\sum_i e^{{x_i - m}}$ for any $m$, choose
# $m = \\max_i x_i$: then every exponent is at most 0 and nothing overflows.

# %%
def logsumexp(x):
    """log(sum(exp(x))) of a 1-D array, without overflow."""
    # BEGIN SOLUTION: subtract the largest value m, then return m + log(sum(exp(x - m)))
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))
    # END SOLUTION


# %%
check("{name}.logsumexp", logsumexp)

# %% [markdown]
# With it, the softmax of large scores is well defined:

# %%
scores = np.array([1000.0, 1001.0, 1002.0])
probabilities = np.exp(scores - logsumexp(scores))
print(probabilities, probabilities.sum())
'''

TESTS = '''"""Tests of the '{name}' module: the declaration, the check on right and wrong answers, the demo."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workshop
from workshop import _plugins
from workshop.checking import CheckFailed, NotAttempted
from workshop.hardware import Hardware

from {package} import checks, demos, numerics, plugin


@pytest.fixture
def registered():
    old = _plugins._REGISTRY
    _plugins.set_registry(_plugins.Registry(plugins=(plugin,), use_entry_points=False))
    yield
    _plugins.set_registry(old)


def test_{name}_declaration_is_valid():
    decl = plugin.workshop_module()
    assert decl.name == "{name}"
    assert [c.name for c in decl.checks] == ["logsumexp"]


def test_{name}_reference_is_stable():
    x = np.array([1000.0, 1000.0])
    assert numerics.logsumexp(x) == pytest.approx(1000.0 + np.log(2.0))
    assert numerics.softmax(x) == pytest.approx([0.5, 0.5])


def test_{name}_check_passes_on_the_reference():
    assert "inputs" in checks.logsumexp(numerics.logsumexp)


def test_{name}_check_catches_overflow_with_a_hint():
    with pytest.raises(CheckFailed) as info:
        checks.logsumexp(lambda x: np.log(np.sum(np.exp(x))))
    assert "subtract the largest value" in info.value.hint


def test_{name}_check_reports_a_stub_as_not_attempted():
    with pytest.raises(NotAttempted):
        checks.logsumexp(lambda x: None)


def test_{name}_demo_writes_results(tmp_path, registered):
    hw = Hardware("cpu", 1, "cpu", None, 1, None)
    ctx = workshop.RunContext("{name}", "softmax", "tiny", tmp_path, None, hw, verbose=False)
    result = demos.softmax_temperatures(ctx)
    rows = json.loads((tmp_path / "softmax.json").read_text())["rows"]
    entropies = [r["entropy_nats"] for r in rows]
    assert entropies == sorted(entropies) and entropies[0] < entropies[-1]
    assert result["entropy_at_T1"] == pytest.approx(entropies[1])
'''

SCORES = "2.0\n1.0\n0.5\n3.2\n-1.0\n0.0\n2.7\n1.5\n-0.3\n0.9\n"


def _workspace_root(folder: Path) -> tuple[Path | None, list[str]]:
    """The nearest enclosing uv workspace root and its member globs."""
    for parent in [folder, *folder.parents]:
        pp = parent / "pyproject.toml"
        if pp.is_file():
            try:
                ws = tomllib.loads(pp.read_text()).get("tool", {}).get("uv", {}).get("workspace")
            except tomllib.TOMLDecodeError:
                continue
            if ws is not None:
                return parent, list(ws.get("members", []))
    return None, []


def scaffold(name: str, dest: Path | None = None, *, title: str | None = None, check_installed: bool = True) -> Path:
    """Create the module ``name`` in ``dest`` (default ``./modules/<name>``); return its folder.

    Arguments:
        name: the module's registered name (lower case, digits, underscores).
        dest: the new module's folder; must not exist or be empty.
        title: the human title (default: from the name).
        check_installed: refuse a name an installed module already has.
    """
    if not _NAME.match(name or "") or keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is not a valid module name: use lower-case letters, digits and "
                            "underscores, starting with a letter (e.g. 'ocean_models')")
    if check_installed:
        from ._plugins import registry

        if name in registry().modules:
            raise ScaffoldError(f"a module named {name!r} is already installed; choose another name")
    folder = (Path(dest) if dest is not None else Path("modules") / name).resolve()
    if folder.exists() and not folder.is_dir():
        raise ScaffoldError(f"{folder} is a file, not a folder; choose another --to folder")
    if folder.exists() and any(folder.iterdir()):
        raise ScaffoldError(f"{folder} already exists and is not empty; choose another --to folder")
    package, dist = f"workshop_{name}", f"workshop-{name.replace('_', '-')}"
    title = title or name.replace("_", " ").capitalize()
    root, members = _workspace_root(folder.parent)
    rel = folder.relative_to(root).as_posix() if root is not None else ""
    member = root is not None and any(fnmatch.fnmatch(rel, m) for m in members)
    scores_sha = hashlib.sha256(SCORES.encode()).hexdigest()
    fields = dict(name=name, package=package, dist=dist, title=title.replace('"', "'"), path=rel if member else "",
                  scores_sha=scores_sha, uv_sources=UV_SOURCES if member else "",
                  folder_hint=rel or str(folder))
    src = folder / "src" / package
    files = {
        folder / "pyproject.toml": PYPROJECT,
        folder / "README.md": README,
        src / "__init__.py": INIT,
        src / "plugin.py": PLUGIN,
        src / "numerics.py": NUMERICS,
        src / "checks" / "__init__.py": CHECKS_INIT,
        src / "checks" / "stable_sums.py": CHECKS,
        src / "demos" / "__init__.py": DEMOS_INIT,
        src / "demos" / "stable_sums.py": DEMOS,
        src / "lessons" / "01_stable_sums.py": LESSON,
        folder / "tests" / f"test_{name}_module.py": TESTS,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields), encoding="utf-8")
    (src / "data").mkdir(exist_ok=True)
    (src / "data" / "scores.txt").write_text(SCORES, encoding="utf-8")
    _write_notebooks(folder, src)
    return folder


def _write_notebooks(folder: Path, src: Path) -> None:
    """Generate the committed exercise notebook from the new lesson source."""
    import importlib.util

    from .lessons import build_from_text, notebook_text

    spec = importlib.util.spec_from_file_location(f"_workshop_scaffold_{src.name}", src / "plugin.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    decl = mod.workshop_module()
    out = folder / "notebooks"
    out.mkdir(exist_ok=True)
    for lesson in decl.lessons:
        text = (src / lesson.source).read_text(encoding="utf-8")
        built = build_from_text(decl, lesson, text)
        (out / f"{lesson.id}.ipynb").write_text(notebook_text(built.exercise), encoding="utf-8", newline="\n")
