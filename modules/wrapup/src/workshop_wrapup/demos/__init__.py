"""The runnable wrap-up demos (``workshop run wrapup NAME``), one file per part of the module.

* :mod:`.parallel`: ``sharding`` and ``multihost`` (lessons 01-02);
* :mod:`.ecosystem`: ``sersic`` and ``deconvolution`` (lessons 03-04);
* :mod:`.tour`: ``tour`` (the default), every part in order, then further reading.

Each demo takes a :class:`workshop.RunContext` and returns a dict of what it measured.
``tour`` shares its file's name, so it is reached through it (``workshop_wrapup.demos.tour:tour``);
the other demos are re-exported here.
"""

from __future__ import annotations

from .ecosystem import deconvolution, sersic
from .parallel import multihost, sharding

__all__ = ["sharding", "multihost", "sersic", "deconvolution"]
