"""A trained MLP score model reaches the stated metric (its training time is measured by
the toy demo, not asserted here).

Stated metric: after 3,000 Adam steps of 512 points, samples
from the EMA model, with the reverse SDE and with the probability-flow ODE, are within
2 x the sliced Wasserstein distance between two independent draws of the mixture
(1,500 points each).
"""


import jax
import numpy as np
import pytest

from workshop_astro.metrics import reference_level, sliced_wasserstein
from workshop_astro.sampling import probability_flow_sample, reverse_sde_sample
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture
from workshop_astro.toy_train import train_toy

N = 1500


@pytest.mark.slow
def test_trained_mlp_reaches_the_metric():
    sde, gm = VPSDE(), GaussianMixture.default()
    result = train_toy(lambda k, n: gm.sample(k, n), sde, jax.random.key(0), n_steps=3000, batch_size=512)
    assert float(result.losses[-200:].mean()) < float(result.losses[:200].mean())

    import equinox as eqx

    @eqx.filter_jit
    def sample(model, key):
        ks, ko = jax.random.split(key)
        return (reverse_sde_sample(sde, model, ks, (N, 2), n_steps=500)[0],
                probability_flow_sample(sde, model, ko, (N, 2))[0])

    xs, xo = sample(result.ema_model, jax.random.key(1))
    floor = float(reference_level(lambda k, n: gm.sample(k, n), N, jax.random.key(2)))
    keys = jax.random.split(jax.random.key(3), 3)
    dist = lambda x: float(np.mean([sliced_wasserstein(x, gm.sample(k, N), jax.random.fold_in(k, 1)) for k in keys]))
    assert dist(xs) < 2 * floor, (dist(xs), floor)
    assert dist(xo) < 2 * floor, (dist(xo), floor)
