"""Langevin dynamics on a 2-D Gaussian mixture whose score is known exactly.

The warm-up for score-based generative models: with the exact score
``∇ log p(x)`` (here ``jax.grad`` of the log density), unadjusted Langevin dynamics

    x ← x + ε ∇ log p(x) + √(2ε) z,   z ~ N(0, I)

samples ``p`` in the limit of small ``ε`` and many steps. In practice it mixes only
*within* a mode: particles never cross the low-density region between well separated
modes, so the mixture weights come out as the share of starting points in each basin,
not as the true weights. Annealing fixes this: run Langevin on ``p`` convolved with
``N(0, σ² I)`` for a decreasing ladder of ``σ`` (for a Gaussian mixture that is again a
Gaussian mixture, with variances ``s_k² + σ²``); at large ``σ`` the modes overlap and the
particles spread in proportion to the weights, and the ladder carries that split down
to ``σ = 0``.

Example::

    >>> mix = default_mixture()
    >>> x0 = initial_particles(jax.random.key(0), 500)
    >>> plain = langevin(lambda x: score(mix, x), jax.random.key(1), x0, step_size=0.1, n_steps=1000)
    >>> mode_weights(mix, plain)          # ~[0.5, 0.5]: the basins' shares, not the weights
    >>> annealed = annealed_langevin(mix, jax.random.key(1), x0, default_sigmas(), n_steps=50, eps=0.1)
    >>> mode_weights(mix, annealed)       # ~[0.2, 0.8]
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from . import guards


class GaussianMixture(eqx.Module):
    """A mixture of isotropic Gaussians in ``d`` dimensions (a pytree).

    Arguments:
        weights: mixture weights, summing to one.
        means: the component means.
        stds: the component standard deviations (isotropic).
    """

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    stds: Float[Array, " k"]


def default_mixture() -> GaussianMixture:
    """The lesson's mixture: weight 0.2 at (-4, -4) and 0.8 at (4, 4), unit stds."""
    return GaussianMixture(
        weights=jnp.array([0.2, 0.8]),
        means=jnp.array([[-4.0, -4.0], [4.0, 4.0]]),
        stds=jnp.array([1.0, 1.0]),
    )


def component_log_densities(mix: GaussianMixture, x: Float[Array, " d"]) -> Float[Array, " k"]:
    """``log w_k + log N(x; m_k, s_k² I)`` for every component ``k``."""
    d = x.shape[-1]
    sq = jnp.sum((x - mix.means) ** 2, axis=-1)
    return jnp.log(mix.weights) - 0.5 * sq / mix.stds**2 - d * jnp.log(mix.stds) - 0.5 * d * jnp.log(2 * jnp.pi)


def log_density(mix: GaussianMixture, x: Float[Array, " d"]) -> Float[Array, ""]:
    """``log p(x)`` at one point, with logsumexp so that far-away points do not underflow."""
    return jax.nn.logsumexp(component_log_densities(mix, x))


def score(mix: GaussianMixture, x: Float[Array, " d"]) -> Float[Array, " d"]:
    """``∇_x log p(x)`` at one point, by automatic differentiation."""
    return jax.grad(log_density, argnums=1)(mix, x)


def analytic_score(mix: GaussianMixture, x: Float[Array, " d"]) -> Float[Array, " d"]:
    """The same score in closed form: ``Σ_k r_k(x) (m_k - x) / s_k²`` (``r`` the responsibilities)."""
    r = jax.nn.softmax(component_log_densities(mix, x))
    return jnp.sum(r[:, None] * (mix.means - x) / mix.stds[:, None] ** 2, axis=0)


def noised(mix: GaussianMixture, sigma: Float[Array, ""] | float) -> GaussianMixture:
    """The law of ``x + σ z`` for ``x ~ mix``: the same mixture with stds ``√(s_k² + σ²)``."""
    return GaussianMixture(mix.weights, mix.means, jnp.sqrt(mix.stds**2 + jnp.asarray(sigma) ** 2))


@partial(jax.jit, static_argnums=2)
def sample(mix: GaussianMixture, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
    """``n`` exact samples of the mixture (pick a component, then add its noise)."""
    n = guards.count("n", n)
    kc, kz = jax.random.split(key)
    comp = jax.random.choice(kc, mix.weights.shape[0], (n,), p=mix.weights)
    z = jax.random.normal(kz, (n, mix.means.shape[1]))
    return mix.means[comp] + mix.stds[comp, None] * z


@partial(jax.jit, static_argnums=(1, 2, 3))
def initial_particles(key: PRNGKeyArray, n: int, half_width: float = 8.0, dim: int = 2) -> Float[Array, "n d"]:
    """Particles spread uniformly over the box ``[-half_width, half_width]^dim``."""
    return jax.random.uniform(key, (n, dim), minval=-half_width, maxval=half_width)


def langevin_step(key: PRNGKeyArray, x: Float[Array, "n d"], score_fn: Callable, step_size) -> Float[Array, "n d"]:
    """One unadjusted Langevin step ``x + ε score(x) + √(2ε) z`` for a batch of particles.

    Arguments:
        key: the step's random key (split it before the next step).
        x: the particles.
        score_fn: the score at one point, ``(d,) -> (d,)``; it is vmapped here.
        step_size: ``ε``.
    """
    z = jax.random.normal(key, x.shape)
    return x + step_size * jax.vmap(score_fn)(x) + jnp.sqrt(2.0 * step_size) * z


def langevin(score_fn: Callable, key: PRNGKeyArray, x0: Float[Array, "n d"], step_size: float,
             n_steps: int) -> Float[Array, "n d"]:
    """Run ``n_steps`` Langevin steps from ``x0`` with :func:`jax.lax.scan`; return the final particles.

    Raises ``ValueError``/``TypeError`` for ``n_steps < 1`` (which would return ``x0``,
    the starting noise, as if it were a sample), a step size that is not positive, or
    particles that are not a float ``(n, d)`` array.
    """
    n_steps, step_size = guards.count("n_steps", n_steps), guards.positive("step_size", step_size)
    guards.float_array("x0", x0, ndim=2, layout="(n particles, d)")

    def body(x, k):
        return langevin_step(k, x, score_fn, step_size), None

    x, _ = jax.lax.scan(body, x0, jax.random.split(key, n_steps))
    return x


def default_sigmas(n_levels: int = 20, sigma_max: float = 10.0, sigma_min: float = 0.1) -> Float[Array, " levels"]:
    """A geometric ladder from ``sigma_max`` to ``sigma_min``, ending with ``σ = 0`` (the target itself)."""
    n_levels = guards.count("n_levels", n_levels)
    guards.positive("sigma_min", sigma_min), guards.positive("sigma_max", sigma_max)
    if not sigma_min < sigma_max:
        raise ValueError(f"sigma_min must be below sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    return jnp.concatenate([jnp.geomspace(sigma_max, sigma_min, n_levels), jnp.zeros(1)])


def annealing_step_sizes(sigmas: Float[Array, " levels"], eps: float, scale: float = 1.0) -> Float[Array, " levels"]:
    """Step size per level: ``ε (σ² + scale²)``, proportional to the noised target's variance.

    ``scale`` is the target's own length scale (the components' std), so that at ``σ = 0``
    the step is ``ε scale²``: the same step plain Langevin takes.
    """
    return eps * (jnp.asarray(sigmas) ** 2 + scale**2)


def annealed_langevin(mix: GaussianMixture, key: PRNGKeyArray, x0: Float[Array, "n d"],
                      sigmas: Float[Array, " levels"], n_steps: int, eps: float,
                      scale: float = 1.0) -> Float[Array, "n d"]:
    """Annealed Langevin: ``n_steps`` steps on ``noised(mix, σ)`` for each ``σ`` of the ladder.

    Two nested scans: the outer over noise levels, the inner over steps at one level.
    """
    n_steps, eps = guards.count("n_steps", n_steps), guards.positive("eps", eps)
    steps = annealing_step_sizes(sigmas, eps, scale)

    def level(x, inputs):
        sigma, step, k = inputs
        target = noised(mix, sigma)
        return langevin(lambda y: score(target, y), k, x, step, n_steps), None

    keys = jax.random.split(key, sigmas.shape[0])
    x, _ = jax.lax.scan(level, x0, (jnp.asarray(sigmas), steps, keys))
    return x


@jax.jit
def mode_weights(mix: GaussianMixture, x: Float[Array, "n d"]) -> Float[Array, " k"]:
    """The share of particles assigned to each component (by its largest responsibility)."""
    comp = jnp.argmax(jax.vmap(lambda y: component_log_densities(mix, y))(x), axis=-1)
    return jnp.mean(jax.nn.one_hot(comp, mix.weights.shape[0]), axis=0)


@partial(jax.jit, static_argnames="n_directions")
def sliced_wasserstein(x: Float[Array, "n d"], y: Float[Array, "m d"], n_directions: int = 64) -> Float[Array, ""]:
    """The sliced 2-Wasserstein distance between the 2-D point clouds ``x`` and ``y``.

    Projects both clouds onto ``n_directions`` evenly spaced unit vectors of the half
    circle (deterministic, so no key is needed); in each direction the 1-D W2² compares
    the sorted projections of ``x`` with the quantiles of ``y`` at the same levels
    (``y`` may be larger than ``x``: a big exact sample makes a less noisy reference).
    """
    angles = jnp.pi * jnp.arange(n_directions) / n_directions
    dirs = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
    px = jnp.sort(x @ dirs.T, axis=0)
    py = jnp.sort(y @ dirs.T, axis=0)
    n, m = px.shape[0], py.shape[0]
    idx = jnp.floor((jnp.arange(n) + 0.5) * m / n).astype(jnp.int32)
    return jnp.sqrt(jnp.mean((px - py[idx]) ** 2))


class Comparison(NamedTuple):
    """Plain vs annealed Langevin from the same start, against exact samples."""

    initial: Array
    plain: Array
    annealed: Array
    exact: Array
    true_weights: Array
    plain_weights: Array
    annealed_weights: Array
    plain_distance: Array
    annealed_distance: Array
    exact_distance: Array  # an exact sample of the same size: the metric's noise floor


def compare_samplers(key: PRNGKeyArray, n_particles: int, n_steps: int, n_levels: int = 20,
                     eps: float = 0.1, mix: GaussianMixture | None = None, n_reference: int = 20_000) -> Comparison:
    """Plain Langevin (``n_steps`` steps) vs annealed Langevin (the same total number of steps).

    Both start from the same uniform particles and use the same final step size. Each is
    measured by its mode weights and its sliced W2 to ``n_reference`` exact samples; an
    exact sample of ``n_particles`` measured the same way gives the noise floor.
    """
    n_particles, n_steps = guards.count("n_particles", n_particles), guards.count("n_steps", n_steps)
    n_levels, n_reference = guards.count("n_levels", n_levels), guards.count("n_reference", n_reference)
    eps = guards.positive("eps", eps)
    mix = default_mixture() if mix is None else mix
    k0, k1, k2, k3, k4 = jax.random.split(key, 5)
    x0 = initial_particles(k0, n_particles)
    sigmas = default_sigmas(n_levels)
    per_level = max(1, n_steps // sigmas.shape[0])
    plain = jax.jit(langevin, static_argnums=(0, 4))(lambda y: score(mix, y), k1, x0, eps, n_steps)
    annealed = jax.jit(annealed_langevin, static_argnums=(4,))(mix, k2, x0, sigmas, per_level, eps)
    exact = sample(mix, k3, n_particles)
    reference = sample(mix, k4, n_reference)
    return summarize(mix, x0, plain, annealed, exact, reference)


@jax.jit
def summarize(mix: GaussianMixture, initial: Array, plain: Array, annealed: Array, exact: Array,
              reference: Array) -> Comparison:
    """Measure plain and annealed samples (and an exact sample, the noise floor) against ``reference``."""
    return Comparison(
        initial=initial, plain=plain, annealed=annealed, exact=exact,
        true_weights=mix.weights,
        plain_weights=mode_weights(mix, plain),
        annealed_weights=mode_weights(mix, annealed),
        plain_distance=sliced_wasserstein(plain, reference),
        annealed_distance=sliced_wasserstein(annealed, reference),
        exact_distance=sliced_wasserstein(exact, reference),
    )
