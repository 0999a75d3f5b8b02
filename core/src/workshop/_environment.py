"""The environment variables and paths the core takes, validated in one place.

Every ``WORKSHOP_*`` variable the core reads is read here, and every folder the user
names (``--out``, ``--to``, the cache) is checked here before anything is written. A bad
value raises :class:`ConfigError`, whose message names the variable or option, the value,
what is wrong and how to fix it. The ``workshop`` command reports it as a usage error
(exit code 2); in a notebook the same message is the exception's.

Example::

    >>> import os; os.environ["WORKSHOP_OFFLINE"] = "maybe"
    >>> offline()                                         # doctest: +SKIP
    ConfigError: WORKSHOP_OFFLINE='maybe' is neither on nor off; ...
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

_ON = {"1", "true", "yes", "on"}
_OFF = {"", "0", "false", "no", "off"}

VARIABLES = ("WORKSHOP_CACHE", "WORKSHOP_OFFLINE", "WORKSHOP_MIRROR", "WORKSHOP_PINS", "WORKSHOP_PRESET",
             "WORKSHOP_PROGRESS", "WORKSHOP_CHECK_REPORT", "WORKSHOP_DEBUG", "WORKSHOP_XLA_DEFAULTS")


class ConfigError(ValueError):
    """A bad environment variable, option value or path (a usage error: exit code 2).

    The message names the problem and the fix.
    """


class PresetError(ConfigError):
    """An unknown preset name (the message lists the valid ones); a usage error."""


#: The presets every module sizes its demos for (:mod:`workshop.hardware` picks one).
PRESETS: dict[str, str] = {
    "tiny": "smallest sizes, seconds per demo (tests, CI, notebook execution)",
    "cpu": "laptop CPU: small models, minutes per demo",
    "gpu": "one accelerator: larger models and batches",
    "full": "a large accelerator or several: the full-size runs",
}


def raw(name: str) -> str:
    """The variable's value with surrounding blanks removed ("" when unset)."""
    return os.environ.get(name, "").strip()


def flag(name: str) -> bool:
    """An on/off variable: 1/true/yes/on or 0/false/no/off (any case); unset is off.

    Anything else is refused rather than silently read as off.
    """
    value = raw(name).lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(f"{name}={os.environ[name]!r} is neither on nor off; set {name}=1 to turn it on, "
                      f"or unset it (accepted values: 1/0, true/false, yes/no, on/off)")


def flag_or_off(name: str) -> bool:
    """:func:`flag`, reading a value it does not understand as off (for error paths)."""
    try:
        return flag(name)
    except ConfigError:
        return False


def _blocking_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` (or ``path`` itself) that is not a folder."""
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            return None if p.is_dir() else p
    return None


def _reason(path: Path, exc: OSError) -> str:
    blocker = _blocking_file(path)
    if blocker is not None and blocker.is_symlink() and not blocker.exists():
        return f"{blocker} is a link to {os.readlink(blocker)}, which does not exist"
    if blocker is not None:
        return (f"{blocker} is a file, not a folder" if blocker == path
                else f"{blocker} is a file, so no folder can be made under it")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (the folder, or the one it would be made in, is not writable)"
    if exc.errno == errno.EROFS:
        return "it is on a read-only file system"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


def writable_folder(path: Path, what: str, fix: str) -> Path:
    """Make ``path`` a folder (with its parents) and prove a file can be written in it.

    Arguments:
        path: the folder.
        what: how the user named it, for the message (``"--out"``, ``"WORKSHOP_CACHE"``).
        fix: what to do instead (``"choose another folder with --out"``).

    Returns:
        ``path``. Raises :class:`ConfigError` naming ``what``, the path, the reason and ``fix``.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".workshop-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot write into the folder {path}: {_reason(path, exc)}; {fix}") from None
    return path


def folder_path(value: str | os.PathLike, what: str) -> Path:
    """A folder path given on the command line; an empty one is refused."""
    if not str(value).strip():
        raise ConfigError(f"{what} was given an empty path; name a folder, e.g. {what} ./results")
    return Path(value).expanduser()


def read_text_input(path: str | os.PathLike, what: str) -> str:
    """The text of an input file the user named, as UTF-8.

    A missing file, a folder, an unreadable file or bytes that are not UTF-8 raise
    :class:`ConfigError` (a usage error, exit code 2) naming ``what``, the file, the byte
    and the fix, never a bare ``UnicodeDecodeError``.

    Example::

        text = read_text_input(args.fasta, "the FASTA file")
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a folder; name a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}; check the path") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}, line {line}: "
                          f"{data[exc.start:exc.start + 1]!r}); save it as UTF-8 and try again") from None


# --------------------------------------------------------------------------- the variables


def offline() -> bool:
    """``WORKSHOP_OFFLINE``: never touch the network."""
    return flag("WORKSHOP_OFFLINE")


def debug() -> bool:
    """``WORKSHOP_DEBUG``: show tracebacks of unexpected errors (never raises)."""
    return flag_or_off("WORKSHOP_DEBUG")


def cache_dir() -> Path:
    """``$WORKSHOP_CACHE`` or Pooch's OS cache folder; a value naming a file is refused."""
    env = raw("WORKSHOP_CACHE")
    if env:
        path = Path(env).expanduser()
        blocker = _blocking_file(path)
        if blocker is not None:
            where = "is a file" if blocker == path else f"is under the file {blocker}"
            raise ConfigError(f"WORKSHOP_CACHE={env!r} {where}, not a folder; point WORKSHOP_CACHE at a folder "
                              "(it is created when missing), or unset it to use the default cache folder")
        return path
    import platformdirs  # the folder pooch.os_cache("workshop") names, without importing pooch (0.3 s)

    return Path(platformdirs.user_cache_dir("workshop"))


def writable_cache() -> Path:
    """:func:`cache_dir`, created and proven writable (before a download or a pin is written)."""
    named = bool(raw("WORKSHOP_CACHE"))
    fix = ("point WORKSHOP_CACHE at a writable folder" if named
           else "set WORKSHOP_CACHE to a writable folder (export WORKSHOP_CACHE=~/workshop-cache)")
    return writable_folder(cache_dir(), "WORKSHOP_CACHE" if named else "the data cache", fix)


def mirror() -> str | None:
    """``WORKSHOP_MIRROR`` as a base URL: ``http(s)://host/path`` or a local folder (as a
    ``file://`` URL); ``None`` when unset. Anything else is refused."""
    from urllib.parse import urlparse

    value = raw("WORKSHOP_MIRROR")
    if not value:
        return None
    u = urlparse(value)
    layout = "laid out as MODULE/FILE"
    if u.scheme in ("http", "https"):
        if not u.hostname:
            raise ConfigError(f"WORKSHOP_MIRROR={value!r} names no host; write it as http://host/path "
                              f"(a copy of the data {layout}), or unset it")
        return value.rstrip("/")
    if u.scheme == "file":
        from urllib.request import url2pathname

        folder = Path(url2pathname(u.path))
    elif u.scheme and len(u.scheme) > 1:
        raise ConfigError(f"WORKSHOP_MIRROR={value!r} uses {u.scheme}://, which cannot be fetched from; use an "
                          f"http:// or https:// URL or a local folder {layout}, or unset it")
    else:
        folder = Path(value).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"WORKSHOP_MIRROR={value!r} is neither an http(s):// URL nor an existing folder; "
                          f"point it at a mirror URL or at a folder {layout}, or unset it")
    return folder.resolve().as_uri()


def preset() -> str | None:
    """``WORKSHOP_PRESET`` (validated), or ``None`` when unset."""
    value = raw("WORKSHOP_PRESET")
    if not value:
        return None
    from ._plugins import unknown_message

    if value not in PRESETS:
        raise PresetError(f"WORKSHOP_PRESET={value!r}: " + unknown_message("preset", value, list(PRESETS))
                          + "; fix WORKSHOP_PRESET or unset it to use the detected preset")
    return value


def progress_file() -> Path | None:
    """``WORKSHOP_PROGRESS`` as a file path, or ``None`` when unset; a folder is refused."""
    value = raw("WORKSHOP_PROGRESS")
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        raise ConfigError(f"WORKSHOP_PROGRESS={value!r} is a folder; point it at a file, e.g. "
                          f"WORKSHOP_PROGRESS={path / 'progress.json'}, or unset it")
    blocker = _blocking_file(path.parent)
    if blocker is not None:
        raise ConfigError(f"WORKSHOP_PROGRESS={value!r} is under {blocker}, which is a file; point it at a "
                          "file in a folder, or unset it")
    return path


def pins_file() -> Path | None:
    """``WORKSHOP_PINS`` (an instructor's pins file, which must exist), or ``None``."""
    value = raw("WORKSHOP_PINS")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"WORKSHOP_PINS={value!r} {what}; point it at the pins file your instructor shared "
                          "(written by 'workshop pins'), or unset it")
    return path


def problems() -> list[str]:
    """Every bad environment variable, one message each (``workshop doctor``)."""
    found = []
    for check in (offline, lambda: flag("WORKSHOP_DEBUG"), lambda: flag("WORKSHOP_XLA_DEFAULTS"), cache_dir, mirror,
                  preset, progress_file, pins_file):
        try:
            check()
        except ConfigError as exc:
            found.append(str(exc))
    return found

