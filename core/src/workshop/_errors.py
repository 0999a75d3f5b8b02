"""The one error path of the ``workshop`` command: what each kind of failure prints and
the exit code it ends with.

* 0: success.
* 1: the command ran and found a problem (a failed check or validation, a demo that
  raised, data that could not be fetched), or an unexpected error (a bug).
* 2: a usage error: unknown module, demo, check or preset, a bad option value, a bad
  environment variable, a path that cannot be used, an input file that cannot be read.
* 130: interrupted with Ctrl-C.

An unexpected error prints one paragraph (``WHAT failed: Type: message``, where its
traceback was written, and how to see it); ``workshop --debug`` or ``WORKSHOP_DEBUG=1``
print the traceback itself.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import time
import traceback
from pathlib import Path

import click

from . import _environment
from ._environment import ConfigError

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_debug_switch = False


class UsageProblem(click.UsageError):
    """A usage error with our exit code (2) and a clear message."""


def set_debug(on: bool) -> None:
    """``workshop --debug``: show tracebacks of unexpected errors."""
    global _debug_switch
    _debug_switch = on


def debugging() -> bool:
    return _debug_switch or _environment.debug()


def log_folder() -> Path:
    """Where tracebacks of unexpected errors are written (the user's log folder)."""
    import platformdirs

    return platformdirs.user_log_path("workshop", appauthor=False)


#: How many traceback files the log folder keeps; older ones are removed when a new one is written.
KEEP_LOGS = 50


def _prune_logs(folder: Path, keep: int = KEEP_LOGS) -> None:
    # the newest ``keep`` traceback files stay (their names sort by time); never fails
    logs = sorted(folder.glob("workshop-error-*.log"), key=lambda p: (p.stat().st_mtime, p.name))
    for old in logs[:-keep] if keep > 0 else logs:
        with contextlib.suppress(OSError):
            old.unlink()


def write_traceback(label: str) -> Path | None:
    """Write the current exception's traceback to a new file; its path, or ``None`` when
    no folder would take it. The folder keeps the newest :data:`KEEP_LOGS` such files."""
    import tempfile

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    text = f"{label}\nworkshop {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    for folder in (log_folder(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(100):
                path = folder / (f"workshop-error-{stamp}" + (f"-{k}" if k else "") + ".log")
                try:
                    with open(path, "x", encoding="utf-8") as f:
                        f.write(text)
                    with contextlib.suppress(Exception):
                        _prune_logs(folder)
                    return path
                except FileExistsError:
                    continue
        except Exception:  # an error path must not fail: no log then
            continue
    return None


@contextlib.contextmanager
def reported_errors(what, *, interrupted: str = "Interrupted.", usage_errors: tuple[type[Exception], ...] = ()):
    """Run a command's, a demo's or a module command's code under the core's exit codes.

    * Ctrl-C: the ``interrupted`` line and exit code 130;
    * ``click`` exceptions pass through (click prints them: 2 for usage errors, 1 otherwise);
    * :class:`~workshop._environment.ConfigError` and ``usage_errors`` (exception types)
      become usage errors: their message, exit code 2;
    * a :class:`workshop.data.DataError`: ``data problem: ...`` and exit code 1;
    * anything else is unexpected (a bug): ``WHAT failed: Type: message``, where the
      traceback was written, and exit code 1; with ``--debug`` the traceback itself.

    Arguments:
        what: what is running, for the failure line (``"The demo astro toy"``), or a
            function returning it when it is known only later.
    """
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"\n{interrupted}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise  # click's own: it prints them with their exit code (--help is an Exit too)
    except (ConfigError, *usage_errors) as exc:
        raise UsageProblem(str(exc)) from None
    except Exception as exc:
        from .data import DataError

        if isinstance(exc, DataError):
            click.echo(click.style("data problem: ", fg="red", bold=True) + str(exc), err=True)
            sys.exit(EXIT_PROBLEM)
        if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
            raise  # output piped into a program that stopped reading: click handles it
        label = what() if callable(what) else what
        headline = f"{label} failed: {type(exc).__name__}: {exc}"
        if debugging():
            traceback.print_exc()
            click.echo(click.style(f"\n{headline}", fg="red"), err=True)
        else:
            log = write_traceback(headline)
            where = f"Its traceback is in {log}; rerun" if log else "Rerun"
            click.echo(click.style(headline, fg="red") + f"\n{where} with --debug (workshop --debug ...) or "
                       "WORKSHOP_DEBUG=1 to see the traceback, and include it if you report the problem.", err=True)
        sys.exit(EXIT_PROBLEM)
