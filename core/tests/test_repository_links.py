"""Every link to the project comes from one place: ``[project.urls]`` of the root pyproject.toml.

The repository's address is typed once. The core's pyproject carries a copy (the
installed core reads it from its metadata), the builder ``ci/build_notebooks.py``
derives the notebooks' Colab badges and install cells and the READMEs' link blocks from
it, and these tests fail when a copy diverges, when a link to GitHub, Colab or a
notebook host points anywhere else, or when the address is typed by hand elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tomllib
from pathlib import Path

import pytest

from workshop import _meta
from workshop import lessons as L
from workshop._plugins import registry

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "ci" / "build_notebooks.py"
pytestmark = pytest.mark.skipif(not BUILDER.is_file(), reason="needs the repository (ci/build_notebooks.py)")

FORK = "https://github.com/a-fork/its-workshop"
LINK = re.compile(r"""https?://[^\s"'<>()\[\]\\`]+""")
HOSTS = {"github.com", "www.github.com", "raw.githubusercontent.com", "colab.research.google.com",
         "mybinder.org", "nbviewer.org", "nbviewer.jupyter.org"}
# Other projects a lesson points learners to; never this repository.
EXTERNAL = {"https://github.com/lockwo/awesome-jax"}
SKIP_DIRS = {".git", ".venv", "build", "node_modules", "workshop-out", "__pycache__", ".pytest_cache"}


def _builder():
    if "build_notebooks" not in sys.modules:  # load it once, under its own name
        spec = importlib.util.spec_from_file_location("build_notebooks", BUILDER)
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_notebooks"] = module
        spec.loader.exec_module(module)
    return sys.modules["build_notebooks"]


def _project_files():
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        yield from (Path(folder) / f for f in files)


def _root_repository() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]


def allowed_prefixes(repository: str) -> tuple[str, ...]:
    path = _meta.github_path(repository)
    return (repository + "/", repository + "@", repository + "#", repository + ".git",
            _meta.colab_base(repository) + "/", f"https://mybinder.org/v2/gh/{path}/",
            f"https://nbviewer.org/github/{path}/")


def foreign_links(text: str, repository: str) -> list[str]:
    """The links of ``text`` to a code or notebook host that do not start from ``repository``."""
    bad = []
    for url in LINK.findall(text):
        url = url.rstrip(".,;:")
        host = url.split("/")[2].lower()
        if host not in HOSTS or url in EXTERNAL or url == L.COLAB_BADGE or url == repository:
            continue
        if not url.startswith(allowed_prefixes(repository)):
            bad.append(url)
    return bad


def _generated_and_documents() -> list[Path]:
    files = sorted(ROOT.glob("modules/*/notebooks/*.ipynb"))
    files += [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "ARCHITECTURE.md", ROOT / "core" / "README.md"]
    files += sorted(ROOT.glob("modules/*/README.md"))
    return [f for f in files if f.is_file()]


def test_the_address_is_the_same_in_the_root_the_core_and_the_installed_core():
    root = _root_repository()
    core = tomllib.loads((ROOT / "core" / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert root == _meta.checked_repository(root)
    assert core["Repository"] == root, ("core/pyproject.toml's [project.urls] Repository differs from the root's; "
                                        "run python ci/build_notebooks.py")
    assert _meta.installed_repository() == root, "the installed core is stale: reinstall it (uv sync --inexact)"
    assert _meta.REPOSITORY == root


def test_the_link_scan_tells_a_project_link_from_a_foreign_one():
    repo = "https://github.com/owner/name"
    text = (f"[a]({repo}/blob/main/x.py) git+{repo}@main#subdirectory=core {L.COLAB_BADGE} "
            f"https://colab.research.google.com/github/owner/name/blob/main/n.ipynb https://docs.jax.dev/x "
            "https://github.com/owner/name-old/tree https://colab.research.google.com/github/other/name/blob/main/n.ipynb "
            "https://mybinder.org/v2/gh/other/name/main")
    assert foreign_links(text, repo) == ["https://github.com/owner/name-old/tree",
                                         "https://colab.research.google.com/github/other/name/blob/main/n.ipynb",
                                         "https://mybinder.org/v2/gh/other/name/main"]


def test_every_link_in_the_notebooks_and_the_documentation_starts_from_the_one_address():
    repository = _root_repository()
    files = _generated_and_documents()
    notebooks = [f for f in files if f.suffix == ".ipynb"]
    assert len(notebooks) >= 20  # the committed notebooks of the four modules are being read
    bad, seen = [], 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        seen += text.count(_meta.github_path(repository))
        bad += [f"{path.relative_to(ROOT)}: {url}" for url in foreign_links(text, repository)]
    assert seen >= 3 * len(notebooks)  # badge, and the core and the module in the install cell
    assert not bad, "links that do not come from [project.urls] of pyproject.toml:\n" + "\n".join(bad)


def test_the_address_is_typed_by_hand_only_in_the_root_pyproject():
    repository = _root_repository()
    build = _builder()
    needle = _meta.github_path(repository)
    generated = {ROOT / "core" / "pyproject.toml", ROOT / "pyproject.toml"}
    typed = []
    for path in _project_files():
        if path in generated:
            continue
        if path.suffix not in {".py", ".md", ".toml", ".ipynb", ".txt", ".cfg", ".yml", ".yaml", ".sh", ".json"}:
            continue
        if path.suffix == ".ipynb" and path.parent.name == "notebooks":
            continue  # generated: checked above and by ci/build_notebooks.py --check
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.name == "README.md":
            text = build._REGION.sub("", text)  # the generated link block
        if needle in text:
            typed.append(str(path.relative_to(ROOT)))
    assert not typed, f"{needle} is typed by hand in (derive it from workshop._meta instead): {typed}"


def test_another_address_changes_every_generated_file_and_leaves_no_trace_of_the_old_one():
    build = _builder()
    old = _root_repository()
    result = build.build_all(ROOT, FORK, ["intro"])
    assert not result.problems
    intro = registry().get("intro")
    notebooks = [p for p in result.files if p.suffix == ".ipynb"]
    assert len(notebooks) == len(intro.lessons)
    assert ROOT / "modules" / "intro" / "README.md" in result.files
    assert ROOT / "core" / "pyproject.toml" in result.files
    for path, text in result.files.items():
        assert text != path.read_text(encoding="utf-8"), f"{path} does not depend on the address"
        assert _meta.github_path(old) not in text, f"{path} still names {old}"
        assert not foreign_links(text, FORK), path
    nb = result.files[notebooks[0]]
    assert f"{_meta.colab_base(FORK)}/modules/intro/notebooks/{intro.lessons[0].id}.ipynb" in nb
    assert f"workshop-core @ git+{FORK}@{_meta.BRANCH}#subdirectory=core" in nb
    core = tomllib.loads(result.files[ROOT / "core" / "pyproject.toml"])
    assert core["project"]["urls"]["Repository"] == FORK
    readme = build.with_links((ROOT / "README.md").read_text(encoding="utf-8"),
                              build.readme_links(list(registry().modules.values()), FORK))
    assert FORK in readme and _meta.github_path(old) not in readme


def test_the_link_block_is_added_once_then_replaced_in_place():
    build = _builder()
    text = "# Title\n\nWords.\n\n## Next\n\nMore.\n"
    once = build.with_links(text, "first")
    assert once == f"# Title\n\nWords.\n\n{build.LINKS_BEGIN}\nfirst\n{build.LINKS_END}\n\n## Next\n\nMore.\n"
    twice = build.with_links(once, "second")
    assert twice == once.replace("first", "second")
    assert build.with_links(twice, "second") == twice
    assert build.with_links("# Only a title\n", "x").endswith(f"{build.LINKS_BEGIN}\nx\n{build.LINKS_END}\n")


def test_a_missing_or_foreign_address_is_a_clear_error(tmp_path):
    build = _builder()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(build.BuildError, match=r"no Repository under \[project.urls\]; add Repository = "):
        build.repository_url(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\nRepository = "https://gitlab.com/a/b"\n')
    with pytest.raises(build.BuildError, match="not of the form https://github.com/OWNER/NAME"):
        build.repository_url(tmp_path)
    with pytest.raises(build.BuildError, match="no Repository = .* under \\[project.urls\\]"):
        build.core_pyproject('[project]\nname = "workshop-core"\n', FORK)
    decl, lesson = registry().get("intro"), registry().get("intro").lessons[0]
    with pytest.raises(L.LessonError, match="fix \\[project.urls\\] Repository in the root pyproject.toml"):
        L.colab_url(decl, lesson, "https://github.com/only-an-owner")
    assert _meta.checked_repository(FORK + ".git/") == FORK


RELATIVE_LINK = re.compile(r"\]\(([^)\s]+)\)")


def broken_relative_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative markdown links of ``path`` whose target does not exist."""
    broken = []
    for target in RELATIVE_LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(f"{path.relative_to(root)}: {target}")
    return broken


def test_every_relative_link_of_the_contributor_documents_resolves(tmp_path):
    docs = [ROOT / "ARCHITECTURE.md", ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted(ROOT.glob("modules/*/README.md"))]
    assert all(d.is_file() for d in docs[:3])
    assert len(RELATIVE_LINK.findall(docs[0].read_text(encoding="utf-8"))) >= 20  # the map links to the code
    broken = [b for d in docs for b in broken_relative_links(d)]
    assert not broken, "relative links to paths that do not exist:\n" + "\n".join(broken)
    for doc in ("README.md", "CONTRIBUTING.md"):
        assert "](ARCHITECTURE.md)" in (ROOT / doc).read_text(encoding="utf-8"), f"{doc} does not link ARCHITECTURE.md"
    (tmp_path / "a.md").write_text("[ok](a.md) [gone](gone/x.py#L3) [web](https://x.org/y) [here](#top)")
    assert broken_relative_links(tmp_path / "a.md", tmp_path) == ["a.md: gone/x.py#L3"]


def test_an_install_without_the_address_names_the_fix(monkeypatch, tmp_path):
    from click.testing import CliRunner

    from workshop.cli import main

    with pytest.raises(_meta.RepositoryURLError, match=r"no-such-dist is not installed.*\(pip install ./core\)"):
        _meta.installed_repository("no-such-dist")
    with pytest.raises(_meta.RepositoryURLError, match="workshop-intro's metadata has no 'Repository' project URL; reinstall"):
        _meta.installed_repository("workshop-intro")  # the modules do not carry the address
    real = _meta.installed_repository
    monkeypatch.setattr(_meta, "installed_repository", lambda: real("workshop-intro"))
    res = CliRunner().invoke(main, ["lessons", "intro", "--to", str(tmp_path / "nb")])
    assert res.exit_code == 1
    assert "cannot build the lessons" in res.output and "has no 'Repository' project URL" in res.output
    assert "Traceback" not in res.output
