"""Checks for the wrap-up exercises, one file per part of the module, mirroring the lessons.

* :mod:`.parallel`: lessons 01-02 (shardings, shard_map);
* :mod:`.ecosystem`: lessons 03-04 (Optimistix, Lineax, NumPyro).

Every check is re-exported here, so ``workshop_wrapup.checks:fit_galaxy`` and
``workshop_wrapup.checks.ecosystem:fit_galaxy`` name the same function.
"""

from __future__ import annotations

from .ecosystem import fit_galaxy, normal_operator, sersic_model, sersic_residuals
from .parallel import shard_batch, sum_of_squares

__all__ = ["shard_batch", "sum_of_squares", "sersic_residuals", "fit_galaxy", "normal_operator", "sersic_model"]
