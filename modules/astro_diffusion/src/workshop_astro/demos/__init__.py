"""The runnable astro demos (``workshop run astro NAME``), one file per part of the module.

* :mod:`.toy`: ``toy``, the 2-D diffusion model end to end (lessons 01-06);
* :mod:`.galaxies`: ``galaxies``, a U-Net trained on HDF galaxies within a time budget,
  sampled in a few steps and measured against held-out galaxies (lessons 07-10);
* :mod:`.pretrained`: ``generate`` and ``reconstruct`` with the pretrained 64x64 model
  (lesson 11).

Each demo takes a :class:`workshop.RunContext` and returns a dict of numbers and paths.
The demos ``toy`` and ``galaxies`` share their file's name, so they are reached through it
(``workshop_astro.demos.toy:toy``); the other public names are re-exported here.
"""

from __future__ import annotations

from .galaxies import GALAXY_PRESETS, GalaxyPreset, sample_galaxies
from .pretrained import generate, reconstruct

__all__ = ["GALAXY_PRESETS", "GalaxyPreset", "generate", "reconstruct", "sample_galaxies"]
