"""Pins: the sha256 and size of remote files whose publishers give no checksum.

Some files a module needs (the published ESM2 checkpoints, for instance) come with no
published checksum, so their registry entry cannot carry one. Such an entry is declared
with ``pin=True``: the first download's sha256 and size are recorded here and printed,
and every later use is verified against them ("trust on first use").

Two places hold pins, looked up in this order:

1. an instructor's pins file named by ``WORKSHOP_PINS`` (written by ``workshop pins``
   on a machine with a known-good download, shipped with a course or a mirror); when it
   names a file, that pin is the one every participant's copy must match;
2. ``$WORKSHOP_CACHE/pins.json``: the pins this machine recorded on first use.

Both files have the same format::

    {"format": "workshop-pins/1",
     "pins": {"protein/esm2_t6_8M_UR50D.pt": {"sha256": "...", "size": 31000000,
                                             "url": "...", "pinned": "2026-11-30T23:59:00Z"}}}
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ._files import locked, write_text_atomically

FORMAT = "workshop-pins/1"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PinsFileError(ValueError):
    """A pins file cannot be read (the message names the file and the fix)."""


@dataclass(frozen=True)
class Pin:
    """The recorded identity of one file.

    Arguments:
        sha256: lower-case hex digest.
        size: size in bytes.
        url: where it was downloaded from when pinned ("" when unknown).
        pinned: UTC time of pinning, ISO 8601.
        origin: where this pin was read from (not stored): a path, for messages.
    """

    sha256: str
    size: int
    url: str = ""
    pinned: str = ""
    origin: str = ""

    def record(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "origin"}


def key(module: str, name: str) -> str:
    return f"{module}/{name}"


def machine_pins_path() -> Path:
    """This machine's pins: ``$WORKSHOP_CACHE/pins.json``."""
    from ._environment import cache_dir

    return cache_dir() / "pins.json"


def instructor_pins_path() -> Path | None:
    """The pins file named by ``WORKSHOP_PINS``, or ``None``; a path that is not a file
    raises :class:`~workshop._environment.ConfigError` (a usage error)."""
    from ._environment import pins_file

    return pins_file()


def read(path: Path) -> dict[str, Pin]:
    """``{"module/name": Pin}`` from a pins file (an absent file holds no pins)."""
    named = os.environ.get("WORKSHOP_PINS", "").strip()
    instructor = bool(named) and Path(named).expanduser() == path
    fix = "ask for a fresh one, or unset WORKSHOP_PINS" if instructor else "fix it, or move it away to start afresh"
    if not path.exists():
        return {}
    if not path.is_file():
        raise PinsFileError(f"the pins file {path} is a folder, not a file; nothing was changed. Move it away "
                            "(pins are recorded anew on the next download)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PinsFileError(f"the pins file {path} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("pins"), dict):
        raise PinsFileError(f"the pins file {path} is not a {FORMAT!r} file; {fix}")
    pins = {}
    for k, rec in data["pins"].items():
        ok = isinstance(rec, dict) and _SHA256.match(str(rec.get("sha256", ""))) and isinstance(rec.get("size"), int)
        if not ok or "/" not in k:
            raise PinsFileError(f"the pins file {path} has a malformed entry {k!r} (needs 'module/file' with "
                                f"a 64-digit sha256 and an integer size); {fix}")
        pins[k] = Pin(rec["sha256"], rec["size"], str(rec.get("url", "")), str(rec.get("pinned", "")), str(path))
    return pins


def lookup(module: str, name: str) -> Pin | None:
    """The pin of ``module/name``: the instructor's when ``WORKSHOP_PINS`` names it, else this machine's."""
    k = key(module, name)
    instructor = instructor_pins_path()
    if instructor is not None:
        pin = read(instructor).get(k)
        if pin is not None:
            return pin
    return read(machine_pins_path()).get(k)


def _write(path: Path, pins: dict[str, Pin]) -> None:
    body = {"format": FORMAT, "pins": {k: pins[k].record() for k in sorted(pins)}}
    write_text_atomically(path, json.dumps(body, indent=2) + "\n")


def record(module: str, name: str, sha256: str, size: int, url: str) -> Pin:
    """Record this machine's pin of ``module/name`` (first use) and return it."""
    path = machine_pins_path()
    pin = Pin(sha256, size, url, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), str(path))
    with locked(path):
        pins = read(path)
        pins[key(module, name)] = pin
        _write(path, pins)
    return pin


def forget(module: str, name: str) -> bool:
    """Drop this machine's pin of ``module/name``; True when there was one."""
    path = machine_pins_path()
    with locked(path):
        pins = read(path)
        gone = pins.pop(key(module, name), None)
        if gone is not None:
            _write(path, pins)
    return gone is not None


def export(keys: list[str] | None = None) -> str:
    """This machine's pins (all, or those in ``keys``) as the text of a pins file."""
    pins = read(machine_pins_path())
    if keys is not None:
        pins = {k: p for k, p in pins.items() if k in keys}
    body = {"format": FORMAT, "pins": {k: pins[k].record() for k in sorted(pins)}}
    return json.dumps(body, indent=2) + "\n"
