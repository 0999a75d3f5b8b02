"""What a demo receives: :class:`RunContext`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._files import write_text_atomically
from .hardware import Hardware


class DemoOptionError(ValueError):
    """A demo was given an option it cannot use (an unknown ``--model``, ...).

    ``workshop run`` reports it as a usage error (exit 2): the message alone, no traceback.
    """


@dataclass
class RunContext:
    """Everything a demo needs to size itself and write its outputs.

    Arguments:
        module: the module's registered name.
        demo: the demo's name.
        preset: ``"tiny"``, ``"cpu"``, ``"gpu"`` or ``"full"``.
        out: folder for figures and JSON (created).
        budget: wall-clock budget in seconds for the demo's long work, or ``None``.
        hardware: the detected :class:`~workshop.hardware.Hardware`.
        seed: the random seed the demo should use.
        verbose: print progress (bars and lines); tests turn it off.
        model: the model a demo should use where it offers a choice (``--model``);
            ``None``: the demo's default for the preset.
    """

    module: str
    demo: str
    preset: str
    out: Path
    budget: float | None
    hardware: Hardware
    seed: int = 0
    verbose: bool = True
    model: str | None = None
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)

    def fetch(self, name: str, **kwargs: Any) -> Path:
        """Fetch a file from this module's data registry (see :func:`workshop.data.fetch`)."""
        from .data import fetch

        return fetch(self.module, name, **kwargs)

    def path(self, name: str) -> Path:
        """``out / name``, with parent folders created."""
        p = self.out / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def save_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as indented JSON to ``out / name`` (atomically) and return the path."""
        p = self.path(name)
        write_text_atomically(p, json.dumps(obj, indent=2, default=_jsonable) + "\n")
        return p

    def log(self, message: str) -> None:
        if self.verbose:
            print(message, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float | None:
        """Seconds left of the budget (``None`` when there is no budget)."""
        if self.budget is None:
            return None
        return self.budget - self.elapsed()


def _jsonable(x: Any) -> Any:
    if isinstance(x, Path):
        return str(x)
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:
        pass
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"cannot write {type(x).__name__} as JSON")
