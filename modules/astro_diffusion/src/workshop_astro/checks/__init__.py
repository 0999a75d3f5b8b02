"""Checks for the astro exercises, one file per part of the module, mirroring the lessons.

* :mod:`.toy`: lessons 01-06 (forward SDE, score matching, reverse processes, Diffrax
  sampling, likelihood) on 2-D data;
* :mod:`.galaxies`: lessons 07-11 (U-Net, training, few-step sampling, evaluation,
  pretrained model and reconstruction) on galaxy images.

Every check is re-exported here, so ``workshop_astro.checks:psnr`` and
``workshop_astro.checks.toy:vp_marginal`` name the same function.
"""

from __future__ import annotations

from .galaxies import (
    ddim_step, ema_update, eps_matching_loss, final_denoise, half_light_radius, psnr, standardise, time_conditioned_block,
    time_features, tweedie_denoise, unstandardise, upsample_nearest,
)
from .toy import (
    divergence, dsm_loss, em_step, gaussian_score, hutchinson_divergence, perturb, probability_flow_drift,
    probability_flow_solve, reverse_sde_drift, sliced_wasserstein, vp_marginal,
)

__all__ = [
    # toy part, lessons 01-06
    "vp_marginal", "perturb", "em_step", "gaussian_score", "dsm_loss", "reverse_sde_drift", "probability_flow_drift",
    "probability_flow_solve", "sliced_wasserstein", "divergence", "hutchinson_divergence",
    # galaxy part, lessons 07-11
    "upsample_nearest", "time_features", "time_conditioned_block", "standardise", "unstandardise", "eps_matching_loss",
    "ema_update", "ddim_step", "final_denoise", "half_light_radius", "tweedie_denoise", "psnr",
]
