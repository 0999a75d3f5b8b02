"""The live measurements of the transforms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from workshop_intro import timing


def test_jit_speedup_measures_compile_apart():
    t = timing.jit_speedup(timing.polynomial_chain, jnp.linspace(0.0, 1.0, 1000), repeats=2)
    assert t.eager_s > 0 and t.jit_s > 0 and t.compile_s > 0
    assert t.speedup == t.eager_s / t.jit_s
    np.testing.assert_allclose(jax.jit(timing.polynomial_chain)(jnp.ones(3)), timing.polynomial_chain(jnp.ones(3)),
                               rtol=1e-6)


def test_vmap_and_loop_agree():
    v = timing.vmap_vs_loop(lambda x: jnp.sum(jnp.tanh(x) ** 2), jnp.ones((5, 3)), repeats=1)
    assert v.max_abs_difference < 1e-6 and v.loop_s > 0 and v.vmap_s > 0


def test_hand_written_rosenbrock_gradient_is_right():
    x = jnp.linspace(-1.0, 1.0, 7)
    np.testing.assert_allclose(timing.rosenbrock_grad(x), jax.grad(timing.rosenbrock)(x), rtol=1e-5, atol=1e-4)


def test_grad_is_more_accurate_than_every_finite_difference():
    g = timing.grad_vs_finite_differences(jnp.linspace(-1.5, 1.5, 20), repeats=1)
    assert g.grad_error < 1e-5
    assert min(g.fd_errors.values()) > g.grad_error
    # truncation error: the largest step is worse than a moderate one
    assert g.fd_errors[1e-1] > g.fd_errors[1e-2]
