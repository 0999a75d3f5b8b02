"""Where the project lives, for generated notebooks (Colab badges, install cells).

The repository's address is written once, as ``Repository`` under ``[project.urls]`` of
the root ``pyproject.toml``. ``python ci/build_notebooks.py`` copies it into the core's
``pyproject.toml``, so an installed core reads it from its own distribution metadata
(the root project is never installed). Everything else is derived from it here: the
Colab address of a notebook and the ``git+`` requirement of an install cell.

A fork edits that one line, runs ``python ci/build_notebooks.py`` (notebooks, README
links and the core's copy follow) and reinstalls the core.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "workshop-core"
URL_LABEL = "Repository"
BRANCH = "main"
GITHUB = "https://github.com/"


class RepositoryURLError(ValueError):
    """The repository address is missing or is not a GitHub repository address."""


def installed_repository(distribution: str = DISTRIBUTION) -> str:
    """The ``Repository`` project URL of the installed ``distribution``.

    **Raises** :class:`RepositoryURLError` when the distribution is not installed or
    declares no such URL (then reinstall the core).
    """
    try:
        urls = metadata.metadata(distribution).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        raise RepositoryURLError(f"{distribution} is not installed, so the repository address is unknown; "
                                 f"install it (pip install ./core)") from None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip() == URL_LABEL:
            return checked_repository(url.strip())
    raise RepositoryURLError(f"{distribution}'s metadata has no '{URL_LABEL}' project URL; reinstall it "
                             f"(pip install ./core) after 'python ci/build_notebooks.py' copied it from "
                             f"the root pyproject.toml")


def checked_repository(url: str) -> str:
    """``url`` without a trailing ``/`` or ``.git``, when it names a GitHub repository.

    >>> checked_repository("https://github.com/someone/workshop.git")
    'https://github.com/someone/workshop'
    """
    clean = url.strip().rstrip("/").removesuffix(".git")
    path = clean.removeprefix(GITHUB)
    if not clean.startswith(GITHUB) or path.count("/") != 1 or not all(path.split("/")):
        raise RepositoryURLError(f"the repository address {url!r} is not of the form "
                                 f"{GITHUB}OWNER/NAME (Colab opens notebooks only from GitHub); "
                                 f"fix [project.urls] {URL_LABEL} in the root pyproject.toml")
    return clean


def github_path(repository: str) -> str:
    """``OWNER/NAME`` of a GitHub repository address."""
    return checked_repository(repository).removeprefix(GITHUB)


def colab_base(repository: str, branch: str = BRANCH) -> str:
    """The Colab address under which every committed notebook of ``branch`` opens."""
    return f"https://colab.research.google.com/github/{github_path(repository)}/blob/{branch}"


def pip_base(repository: str, branch: str = BRANCH) -> str:
    """The ``git+`` address that pip installs a subfolder of ``branch`` from."""
    return f"git+{checked_repository(repository)}@{branch}"


def __getattr__(name: str) -> str:
    # Read lazily: importing the core must not fail on an install without the URL.
    if name == "REPOSITORY":
        return installed_repository()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
