"""What the launcher's command files share: the help epilog and module lookup.

``cli.py`` (the launcher and its core commands), ``_cli_learning.py`` (lessons, check,
validate, new, course) and ``_cli_modules.py`` (module commands) import from here and
never from each other's upper layers, so the launcher has no import circle.
"""

from __future__ import annotations

from ._errors import UsageProblem
from ._plugins import UnknownModule, registry

EPILOG = """\b
Exit codes: 0 success; 1 the command found a problem (failed check or validation,
demo error, data error) or an unexpected error; 2 usage error (unknown module, demo,
check or preset, bad option value, bad environment variable, unusable path or file);
130 interrupted. 'workshop --debug COMMAND' (or WORKSHOP_DEBUG=1) shows the traceback
of an unexpected error.
\b
Environment: WORKSHOP_CACHE (data cache folder), WORKSHOP_OFFLINE=1 (never download),
WORKSHOP_MIRROR (fetch remote data from a mirror URL or folder), WORKSHOP_PINS (an
instructor's pins file), WORKSHOP_PRESET (default preset), WORKSHOP_PROGRESS (progress
file), WORKSHOP_CHECK_REPORT (also append check results to this JSON-lines file),
WORKSHOP_DEBUG=1 (tracebacks).
"""


def get_module(name: str):
    """The declaration of the installed module ``name``; an unknown name is a usage error."""
    try:
        return registry().get(name)
    except UnknownModule as exc:
        raise UsageProblem(str(exc)) from None
