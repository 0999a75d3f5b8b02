"""Reverse SDE and probability-flow ODE with the exact mixture score reproduce the mixture.

Threshold: the sliced Wasserstein distance between 1,500 samples and fresh mixture draws
(averaged over 3 draws) is at most 1.5 x the distance between two independent mixture
draws of the same size; a sampler with a useless score (zero) is far above it.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_astro.metrics import mmd, reference_level, sliced_wasserstein
from workshop_astro.sampling import probability_flow_sample, reverse_sde_sample, tsit5_nfe
from workshop_astro.sde import VPSDE
from workshop_astro.toy import GaussianMixture

SDE, GM = VPSDE(), GaussianMixture.default()
N = 1500
K = 1.5


def exact(x, t):
    return GM.score(x, t, SDE)


@pytest.fixture(scope="module")
def floor():
    return float(reference_level(lambda k, n: GM.sample(k, n), N, jax.random.key(100), repeats=5))


def distance_to_mixture(x):
    keys = jax.random.split(jax.random.key(200), 3)
    return float(np.mean([sliced_wasserstein(x, GM.sample(k, N), jax.random.fold_in(k, 1)) for k in keys]))


@pytest.fixture(scope="module")
def samples():
    @jax.jit
    def run(key):
        ks, ko = jax.random.split(key)
        xs, nfe_s = reverse_sde_sample(SDE, exact, ks, (N, 2), n_steps=500)
        xo, nfe_o = probability_flow_sample(SDE, exact, ko, (N, 2))
        return xs, nfe_s, xo, nfe_o

    return run(jax.random.key(0))


def test_reverse_sde_with_exact_score_matches_the_mixture(samples, floor):
    xs, nfe, _, _ = samples
    assert int(nfe) == 500
    assert distance_to_mixture(xs) <= K * floor, (distance_to_mixture(xs), floor)


def test_probability_flow_ode_with_exact_score_matches_the_mixture(samples, floor):
    _, _, xo, nfe = samples
    assert 20 < int(nfe) < 400
    assert distance_to_mixture(xo) <= K * floor, (distance_to_mixture(xo), floor)
    # MMD agrees: at the level of two independent draws (zero in expectation)
    assert float(mmd(xo, GM.sample(jax.random.key(5), N))) < 3e-3


def test_the_metric_detects_a_wrong_score(floor):
    x, _ = jax.jit(lambda k: probability_flow_sample(SDE, lambda x, t: jnp.zeros_like(x), k, (N, 2)))(jax.random.key(1))
    assert distance_to_mixture(x) > 3 * floor


def test_trajectories_and_given_starting_noise():
    x_T = jax.random.normal(jax.random.key(2), (50, 2))
    save_ts = jnp.array([0.5, 0.1])
    x, nfe, traj = probability_flow_sample(SDE, exact, None, x_T.shape, x_init=x_T, save_ts=save_ts)
    assert traj.shape == (2, 50, 2) and x.shape == (50, 2)
    # the ODE is deterministic: the last saved state is on the way to the samples
    assert float(jnp.mean(jnp.abs(traj[1] - x))) < float(jnp.mean(jnp.abs(traj[0] - x)))
    xs, nfe_s, traj_s = reverse_sde_sample(SDE, exact, jax.random.key(3), x_T.shape, 100, x_init=x_T, save_ts=save_ts)
    assert traj_s.shape == (2, 50, 2) and int(nfe_s) == 100
    xh, nfe_h = reverse_sde_sample(SDE, exact, jax.random.key(3), x_T.shape, 100, x_init=x_T, solver=diffrax.Heun())
    assert int(nfe_h) == 200 and np.all(np.isfinite(xh))


def test_tsit5_nfe_counts_real_evaluations():
    calls = []

    def velocity(t, y, args):
        jax.debug.callback(lambda _: calls.append(1), t)
        return -y * jnp.sin(3 * t)

    for tol in (1e-2, 1e-6):
        calls.clear()
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(velocity), diffrax.Tsit5(), t0=1.0, t1=1e-3, dt0=None, y0=jnp.ones(3),
            stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol),
        )
        jax.effects_barrier()
        assert len(calls) == int(tsit5_nfe(sol.stats["num_steps"]))
