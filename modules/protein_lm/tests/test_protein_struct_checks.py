"""The checks of lessons 04-06 pass the reference solutions and fail typical mistakes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop.checking import CheckFailed, NotAttempted
from workshop_protein.checks import structure as C
from workshop_protein.contacts import apc, contact_precision
from workshop_protein.design import metropolis_accept, temperature_schedule
from workshop_protein.finetune import masked_mean_pool, spearman


def fails(check, fn, match=None):
    with pytest.raises(CheckFailed) as e:
        check(fn)
    if match:
        assert match in e.value.render()
    return e.value


def test_masked_mean_pool():
    assert C.masked_mean_pool(masked_mean_pool)
    fails(C.masked_mean_pool, lambda h, m: h.mean(0), "padding")
    fails(C.masked_mean_pool, lambda h, m: (h * m[:, None]).sum(0) / h.shape[0], "mask.sum()")
    with pytest.raises(NotAttempted):
        C.masked_mean_pool(lambda h, m: None)


def test_spearman_rho():
    assert C.spearman_rho(spearman)
    fails(C.spearman_rho, lambda x, y: np.corrcoef(x, y)[0, 1], "rank")


def test_apc():
    assert C.apc(apc)
    fails(C.apc, lambda a: a - a.mean((-1, -2), keepdims=True))
    fails(C.apc, lambda a: a - a.sum(-1, keepdims=True) * a.sum(-2, keepdims=True) / a.sum(), "")


def test_top_precision():
    assert C.top_precision(lambda p, t, k, s: contact_precision(p, t, top=k, min_separation=s))
    def no_sep(p, t, k, s):
        i, j = np.triu_indices(len(t), k=1)
        o = np.argsort(-p[i, j], kind="stable")[:k]
        return float(t[i[o], j[o]].mean())
    fails(C.top_precision, no_sep, "min_separation")


def test_pairwise_distances():
    assert C.pairwise_distances(lambda x: jnp.sqrt(((x[:, None] - x[None]) ** 2).sum(-1) + 1e-8))
    fails(C.pairwise_distances, lambda x: ((x[:, None] - x[None]) ** 2).sum(-1), "squared")
    fails(C.pairwise_distances, lambda x: jnp.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), "epsilon")


def test_metropolis_and_temperature():
    assert C.metropolis_accept(metropolis_accept)
    fails(C.metropolis_accept, lambda d, t, u: u < np.exp(-d / t) if d < 0 else True, "sign")
    fails(C.metropolis_accept, lambda d, t, u: d > 0)
    assert C.geometric_temperature(lambda s, n, a, b: temperature_schedule(s, n, a, b))
    fails(C.geometric_temperature, lambda s, n, a, b: a + (b - a) * s / (n - 1), "linearly")
    fails(C.geometric_temperature, lambda s, n, a, b: a * (b / a) ** (s / n), "steps - 1")
