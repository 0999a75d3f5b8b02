"""Fault catalogue of the intro module's public functions: a bad argument is refused with a
message naming it, the value received and what is expected, before any JAX work."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workshop_intro import langevin as L
from workshop_intro import timing as T

KEY = jax.random.key(0)
X0 = jnp.zeros((4, 2))

CASES = {
    "langevin 0 steps (would return the starting noise)": (
        lambda: L.langevin(lambda y: -y, KEY, X0, 0.1, 0), ValueError, "n_steps must be at least 1, got 0"),
    "langevin negative step size": (
        lambda: L.langevin(lambda y: -y, KEY, X0, -0.1, 10), ValueError, "step_size must be a finite number > 0"),
    "langevin integer particles": (
        lambda: L.langevin(lambda y: -y, KEY, jnp.zeros((4, 2), jnp.int32), 0.1, 10), TypeError,
        "x0 must hold floating-point values (n particles, d)"),
    "langevin one particle without batch axis": (
        lambda: L.langevin(lambda y: -y, KEY, jnp.zeros(2), 0.1, 10), ValueError,
        "x0 must have 2 axes (n particles, d), got shape (2,)"),
    "langevin steps as a float": (
        lambda: L.langevin(lambda y: -y, KEY, X0, 0.1, 10.0), TypeError, "n_steps must be a whole number"),
    "annealed_langevin 0 steps": (
        lambda: L.annealed_langevin(L.default_mixture(), KEY, X0, L.default_sigmas(3), 0, 0.1), ValueError,
        "n_steps must be at least 1, got 0"),
    "default_sigmas reversed": (lambda: L.default_sigmas(5, 0.1, 10.0), ValueError,
                                "sigma_min must be below sigma_max, got sigma_min=10.0, sigma_max=0.1"),
    "default_sigmas 0 levels": (lambda: L.default_sigmas(0), ValueError, "n_levels must be at least 1, got 0"),
    "compare_samplers 0 particles": (lambda: L.compare_samplers(KEY, 0, 10), ValueError,
                                     "n_particles must be at least 1, got 0"),
    "compare_samplers eps 0": (lambda: L.compare_samplers(KEY, 10, 10, eps=0.0), ValueError,
                               "eps must be a finite number > 0, got 0.0"),
    "sample n -3": (lambda: L.sample(L.default_mixture(), KEY, -3), ValueError, "n must be at least 1, got -3"),
    "best_time 0 repeats": (lambda: T.best_time(lambda: 1, repeats=0), ValueError,
                            "repeats must be at least 1, got 0"),
    "finite differences h 0": (lambda: T.finite_difference_grad(T.rosenbrock, jnp.ones(3), 0.0), ValueError,
                               "h must be a finite number > 0, got 0.0"),
    "finite differences at integers": (lambda: T.finite_difference_grad(T.rosenbrock, np.ones(3, int), 1e-3),
                                       TypeError, "x must hold floating-point values"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused(case):
    call, kind, words = CASES[case]
    with pytest.raises(kind) as exc:
        call()
    assert words in str(exc.value), str(exc.value)


def test_good_arguments_still_work():
    x = L.langevin(lambda y: -y, KEY, X0, 0.1, 3)
    assert x.shape == (4, 2) and not np.allclose(x, X0)
