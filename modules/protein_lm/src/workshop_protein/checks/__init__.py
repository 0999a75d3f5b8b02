"""Checks for the protein exercises, one file per part of the module, mirroring the lessons.

* :mod:`.lm`: the language model, lessons 01-03 (attention, masked LM, mutation scores);
* :mod:`.structure`: lessons 04-06 (fine-tuning, contacts and folding, design);
* :mod:`.dms`: lesson 07 (zero-shot scores against a deep mutational scan).

Every check is re-exported here, so ``workshop_protein.checks:apc`` and
``workshop_protein.checks.structure:apc`` name the same function.
"""

from __future__ import annotations

from .dms import mutant_position, variant_scores, zero_shot_spearman
from .lm import (
    additive_score, mask_tokens, masked_lm_loss, masked_marginal_table, multi_head_attention,
    scaled_dot_product_attention, wildtype_marginal,
)
from .structure import (
    apc, geometric_temperature, masked_mean_pool, metropolis_accept, pairwise_distances, spearman_rho, top_precision,
)

__all__ = [
    # language model, lessons 01-03
    "scaled_dot_product_attention", "multi_head_attention", "mask_tokens", "masked_lm_loss", "wildtype_marginal",
    "masked_marginal_table", "additive_score",
    # structure, lessons 04-06
    "masked_mean_pool", "spearman_rho", "apc", "top_precision", "pairwise_distances", "metropolis_accept",
    "geometric_temperature",
    # deep mutational scans, lesson 07
    "mutant_position", "variant_scores", "zero_shot_spearman",
]
