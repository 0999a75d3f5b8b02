"""Checks for the intro exercises, one file per lesson.

* :mod:`.numpy_api`: lesson 01, JAX's NumPy API;
* :mod:`.transforms`: lesson 02, jit, vmap, grad, jacobians, scan;
* :mod:`.pytrees`: lesson 03, pytrees and Equinox modules;
* :mod:`.trace_vs_run`: lesson 04, trace time vs run time;
* :mod:`.ecosystem`: lesson 05, Equinox + Optax, Lineax;
* :mod:`.langevin`: lesson 06, Langevin dynamics with an exact score;
* :mod:`._common`: the hints for JAX's classic errors that every check shares.

Every check is re-exported here, so ``workshop_intro.checks:piecewise`` and
``workshop_intro.checks.trace_vs_run:piecewise`` name the same function.
"""

from __future__ import annotations

from .ecosystem import mlp_loss, solve_spd
from .langevin import langevin_step, mixture_score
from .numpy_api import set_diagonal, two_normals
from .pytrees import scale_weights, sgd_step
from .trace_vs_run import newton_sqrt, piecewise, power_static, safe_norm
from .transforms import ar1_trajectory, jacobian, loss_and_grad, pairwise_sq_distances

__all__ = [
    "set_diagonal", "two_normals",  # lesson 01
    "pairwise_sq_distances", "loss_and_grad", "jacobian", "ar1_trajectory",  # lesson 02
    "sgd_step", "scale_weights",  # lesson 03
    "piecewise", "newton_sqrt", "power_static", "safe_norm",  # lesson 04
    "mlp_loss", "solve_spd",  # lesson 05
    "mixture_score", "langevin_step",  # lesson 06
]
