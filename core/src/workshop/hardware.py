"""Hardware detection and the presets demos use to size themselves.

Presets, smallest first:

* ``tiny``: seconds per demo; for tests, CI and notebook execution. Never auto-detected.
* ``cpu``:  a laptop without an accelerator (the default on CPU).
* ``gpu``:  one accelerator with less than 40 GiB of memory.
* ``full``: a large accelerator (>= 40 GiB) or several.

``--preset NAME`` or ``WORKSHOP_PRESET=NAME`` override the detected preset. JAX is
imported only by :func:`detect`, never at import time of this file.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from ._environment import PRESETS, ConfigError, PresetError

class BudgetError(ConfigError):
    """A duration that cannot be parsed (the message shows valid forms); a usage error."""


@dataclass(frozen=True)
class Hardware:
    """What this machine offers.

    Arguments:
        backend: JAX's default backend: ``"cpu"``, ``"gpu"`` or ``"tpu"``.
        device_count: number of JAX devices of that backend.
        device_kind: e.g. ``"cpu"`` or ``"NVIDIA H100 80GB HBM3"``.
        device_memory_gb: memory per device in GiB when JAX reports it.
        cpu_cores: logical CPU cores available to this process.
        ram_gb: total RAM in GiB, when known.
        jax_version: the installed JAX version.
    """

    backend: str
    device_count: int
    device_kind: str
    device_memory_gb: float | None
    cpu_cores: int
    ram_gb: float | None
    jax_version: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        mem = f", {self.device_memory_gb:.0f} GiB each" if self.device_memory_gb else ""
        ram = f"{self.ram_gb:.0f} GiB RAM" if self.ram_gb else "RAM unknown"
        dev = f"{self.device_count} × {self.device_kind}{mem}" if self.backend != "cpu" else "no accelerator"
        return f"{self.backend} backend ({dev}); {self.cpu_cores} CPU cores, {ram}"


def cpu_cores() -> int:
    """Cores this process may use (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def ram_gb() -> float | None:
    """Total physical memory in GiB, or ``None`` when the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (AttributeError, ValueError, OSError):
        return None


def detect() -> Hardware:
    """Inspect JAX's devices and the machine. Imports JAX.

    Without JAX installed (a NumPy-only module), reports the CPU alone.
    """
    try:
        import jax
    except ImportError:
        return Hardware("cpu", 1, "cpu (JAX not installed)", None, cpu_cores(), ram_gb(), None)

    devices = jax.devices()
    backend = jax.default_backend()
    kind = devices[0].device_kind if devices else "unknown"
    mem = None
    try:
        stats = devices[0].memory_stats()
        if stats and "bytes_limit" in stats:
            mem = stats["bytes_limit"] / 2**30
    except Exception:  # not all backends report memory
        mem = None
    return Hardware(
        backend=backend,
        device_count=len(devices),
        device_kind=kind,
        device_memory_gb=mem,
        cpu_cores=cpu_cores(),
        ram_gb=ram_gb(),
        jax_version=jax.__version__,
    )


def choose_preset(hw: Hardware) -> str:
    """The preset this hardware gets when nothing overrides it."""
    if hw.backend == "cpu":
        return "cpu"
    if hw.device_count >= 2 or (hw.device_memory_gb or 0) >= 40:
        return "full"
    return "gpu"


def validate_preset(name: str) -> str:
    if name not in PRESETS:
        from ._plugins import unknown_message

        raise PresetError(unknown_message("preset", name, list(PRESETS)))
    return name


def resolve_preset(override: str | None, hw: Hardware | None) -> tuple[str, str]:
    """``(preset, why)``: the override, else ``WORKSHOP_PRESET``, else detection."""
    if override:
        return validate_preset(override), "chosen with --preset"
    from ._environment import preset as env_preset

    env = env_preset()
    if env:
        return env, "from WORKSHOP_PRESET"
    if hw is None:
        hw = detect()
    return choose_preset(hw), "detected"


_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def parse_duration(text: str) -> float:
    """Seconds in ``"5m"``, ``"90s"``, ``"1h30m"``, ``"2.5m"`` or plain ``"300"``.

    Example::

        >>> parse_duration("1h30m")
        5400.0
    """
    s = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", s):
        value = float(s)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)(h|hr|min|m|sec|s)", s)
        if not parts or "".join(n + u for n, u in parts) != s:
            raise BudgetError(f"cannot read the duration {text!r}; write e.g. '5m', '90s', '1h30m' or '300' (seconds)")
        value = sum(float(n) * _UNITS[u] for n, u in parts)
    if value <= 0:
        raise BudgetError(f"the duration {text!r} must be positive; write e.g. '5m', '90s' or '1h30m'")
    return value


def current_preset() -> str:
    """The preset in force for notebooks and library code: ``WORKSHOP_PRESET`` or detected.

    Example (in a lesson)::

        from workshop.hardware import current_preset
        steps = {"tiny": 20, "cpu": 500, "gpu": 5000, "full": 20000}[current_preset()]
    """
    return resolve_preset(None, None)[0]
