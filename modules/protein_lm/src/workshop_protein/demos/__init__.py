"""The runnable protein demos (``workshop run protein NAME``), one file per part of the module.

* :mod:`.lm`: ``tour`` (the default), the language model end to end on one protein
  (lessons 01-03), and ``demo_model``, the model every demo starts from;
* :mod:`.structure`: ``finetune``, ``contacts`` and ``design`` (lessons 04-06);
* :mod:`.dms`: ``dms``, zero-shot scores against three real deep mutational scans
  (lesson 07);
* :mod:`.fitness`: ``gb1``, supervised fitness prediction on the GB1 scan, ESM2 frozen
  and fine-tuned against additive and global-epistasis baselines.

Each demo takes a :class:`workshop.RunContext` and returns a dict of what it measured;
the demo functions are re-exported here.
"""

from __future__ import annotations

from .dms import zero_shot
from .fitness import gb1
from .lm import demo_model, tour
from .structure import contacts, design, finetune

__all__ = ["tour", "demo_model", "finetune", "contacts", "design", "zero_shot", "gb1"]
