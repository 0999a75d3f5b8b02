"""The JAX & Generative AI for Science workshop: the thin core.

Importing ``workshop`` is cheap: it never imports JAX or any module's science code.

* Plugin authors: :class:`ModuleDeclaration` and friends (:class:`Command` for a
  module's own ``workshop MODULE COMMAND`` command lines), :data:`hookimpl`.
* Participants: :func:`check` inside a notebook.
* Check authors: :mod:`workshop.checking`.
* Data: :mod:`workshop.data`; hardware presets: :mod:`workshop.hardware`.
* Command authors: :func:`read_text_input` reads a file the user named (a file that is
  missing or not UTF-8 is a :class:`ConfigError`, which the launcher reports as a usage
  error, exit code 2).
"""

from __future__ import annotations

from ._declaration import (
    Check,
    Command,
    DataEntry,
    DeclarationError,
    Demo,
    HardwareNeeds,
    Lesson,
    ModuleDeclaration,
)
from ._environment import ConfigError, read_text_input
from ._environment import flag as env_flag
from ._hookspecs import hookimpl
from ._lazy import resolve
from ._plugins import Registry
from ._run import DemoOptionError, RunContext

__version__ = "0.1.0"

__all__ = [
    "Check",
    "Command",
    "ConfigError",
    "DataEntry",
    "DeclarationError",
    "Demo",
    "HardwareNeeds",
    "Lesson",
    "ModuleDeclaration",
    "Registry",
    "RunContext",
    "DemoOptionError",
    "check",
    "env_flag",
    "hookimpl",
    "read_text_input",
    "resolve",
]


def check(name: str, candidate, **kwargs):
    """Check an exercise answer: ``check("astro.vp_marginal", vp_marginal)``.

    Prints a short verdict (passed, or what failed with a hint), records it in the
    participant's progress, and returns a :class:`workshop.progress.CheckResult`.
    A wrong answer never raises a traceback.
    """
    from ._check import run_check

    return run_check(name, candidate, **kwargs)
