"""Forward diffusion processes: stochastic differential equations with closed-form marginals.

A forward SDE ``dx = f(x, t) dt + g(t) dW`` turns data ``x(0)`` into noise ``x(T)``. For
the linear SDEs used in diffusion models, ``x(t)`` given ``x(0)`` is Gaussian with mean
``alpha(t) * x(0)`` and covariance ``std(t)**2 * I``; training and sampling only need those
two numbers and the coefficients ``f`` and ``g``.

* :class:`VPSDE` (variance preserving, Song et al. 2021): ``f = -beta(t) x / 2``,
  ``g = sqrt(beta(t))`` with ``beta`` linear in ``t``; ``x(T)`` is close to ``N(0, I)``.
* :class:`VESDE` (variance exploding): ``f = 0``, ``g = sigma(t) sqrt(2 log(sigma_max /
  sigma_min))`` with ``sigma`` geometric in ``t``; ``x(T)`` is close to
  ``N(0, sigma_max**2 I)``.

Every function takes one array ``x`` of any shape (one sample, or a batch: the
coefficients are scalars of ``t`` and broadcast) and a scalar time ``t``.

Example::

    >>> import jax, jax.numpy as jnp
    >>> sde = VPSDE()
    >>> mean, std = sde.marginal(jnp.ones(2), 0.5)
    >>> xt = mean + std * jax.random.normal(jax.random.key(0), (2,))
"""

from __future__ import annotations

import abc
import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

__all__ = ["SDE", "VPSDE", "VESDE", "forward_simulate"]


class SDE(eqx.Module):
    """A linear forward SDE ``dx = f(x, t) dt + g(t) dW`` on ``[0, T]``.

    Subclasses give the drift ``f``, the scalar diffusion ``g`` and the marginal of
    ``x(t)`` given ``x(0)``: ``N(alpha(t) x(0), std(t)**2 I)``, plus the prior that
    ``x(T)`` approximately follows.
    """

    T: eqx.AbstractVar[float]

    @abc.abstractmethod
    def drift(self, x: Float[Array, "..."], t: ArrayLike) -> Float[Array, "..."]:
        """``f(x, t)``, the deterministic part of ``dx``; same shape as ``x``."""

    @abc.abstractmethod
    def diffusion(self, t: ArrayLike) -> Float[Array, ""]:
        """``g(t)``, the scalar that multiplies ``dW``."""

    @abc.abstractmethod
    def marginal_mean_coeff(self, t: ArrayLike) -> Float[Array, ""]:
        """``alpha(t)``: the mean of ``x(t)`` given ``x(0)`` is ``alpha(t) * x(0)``."""

    @abc.abstractmethod
    def marginal_std(self, t: ArrayLike) -> Float[Array, ""]:
        """``std(t)``: the standard deviation of each coordinate of ``x(t)`` given ``x(0)``."""

    @abc.abstractmethod
    def prior_sample(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
        """A draw from the distribution ``x(T)`` approximately follows."""

    @abc.abstractmethod
    def prior_logp(self, x: Float[Array, "..."]) -> Float[Array, ""]:
        """Log-density of ONE sample ``x`` (any shape) under the prior."""

    def marginal(self, x0: Float[Array, "..."], t: ArrayLike) -> tuple[Float[Array, "..."], Float[Array, ""]]:
        """``(mean, std)`` of ``x(t)`` given ``x(0) = x0``.

        Returns:
            ``mean`` with the shape of ``x0`` and the scalar ``std``.
        """
        return self.marginal_mean_coeff(t) * x0, self.marginal_std(t)


def _standard_normal_logp(x: Array, scale: ArrayLike) -> Array:
    n = x.size
    return -0.5 * jnp.sum((x / scale) ** 2) - n * jnp.log(scale) - 0.5 * n * math.log(2 * math.pi)


def _check_schedule(low_name: str, low, high_name: str, high, T) -> None:
    from . import guards

    guards.positive(low_name, low), guards.positive(high_name, high), guards.positive("T", T)
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and not low < high:
        raise ValueError(f"{low_name} must be below {high_name}, got {low_name}={low}, {high_name}={high}")


class VPSDE(SDE):
    """Variance-preserving SDE: ``dx = -beta(t) x / 2 dt + sqrt(beta(t)) dW``.

    ``beta(t) = beta_min + t / T (beta_max - beta_min)`` and, with
    ``B(t) = integral_0^t beta(s) ds``, ``alpha(t) = exp(-B(t) / 2)`` and
    ``std(t) = sqrt(1 - exp(-B(t)))``: if ``x(0)`` has unit variance, so has ``x(t)``.

    Arguments:
        beta_min, beta_max: the noise rate at ``t = 0`` and ``t = T``.
        T: the end time.
    """

    beta_min: float
    beta_max: float
    T: float

    # An explicit __init__ fixes the positional order (beta_min, beta_max, T).
    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0):
        _check_schedule("beta_min", beta_min, "beta_max", beta_max, T)
        self.beta_min, self.beta_max, self.T = beta_min, beta_max, T

    def beta(self, t: ArrayLike) -> Float[Array, ""]:
        """The instantaneous noise rate ``beta(t)``."""
        return self.beta_min + (self.beta_max - self.beta_min) * jnp.asarray(t) / self.T

    def integrated_beta(self, t: ArrayLike) -> Float[Array, ""]:
        """``B(t) = integral_0^t beta(s) ds`` (the marginals need this, not ``beta(t)``)."""
        t = jnp.asarray(t)
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2 / self.T

    def drift(self, x, t):
        return -0.5 * self.beta(t) * x

    def diffusion(self, t):
        return jnp.sqrt(self.beta(t))

    def marginal_mean_coeff(self, t):
        return jnp.exp(-0.5 * self.integrated_beta(t))

    def marginal_std(self, t):
        # -expm1(-B) = 1 - exp(-B) without cancellation for small t.
        return jnp.sqrt(-jnp.expm1(-self.integrated_beta(t)))

    def prior_sample(self, key, shape):
        return jax.random.normal(key, shape)

    def prior_logp(self, x):
        return _standard_normal_logp(x, 1.0)


class VESDE(SDE):
    """Variance-exploding SDE: ``dx = sigma(t) sqrt(2 log(sigma_max / sigma_min)) dW``.

    ``sigma(t) = sigma_min (sigma_max / sigma_min)**(t / T)``; the drift is zero, so
    ``alpha(t) = 1``, and the variance accumulated since ``t = 0`` is
    ``sigma(t)**2 - sigma_min**2`` (exactly what the SDE produces; it vanishes at ``t = 0``).

    Arguments:
        sigma_min, sigma_max: the noise scale at ``t = 0`` and ``t = T``.
        T: the end time.
    """

    sigma_min: float
    sigma_max: float
    T: float

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, T: float = 1.0):
        _check_schedule("sigma_min", sigma_min, "sigma_max", sigma_max, T)
        self.sigma_min, self.sigma_max, self.T = sigma_min, sigma_max, T

    def sigma(self, t: ArrayLike) -> Float[Array, ""]:
        """The noise scale ``sigma(t)``."""
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** (jnp.asarray(t) / self.T)

    def drift(self, x, t):
        return jnp.zeros_like(x)

    def diffusion(self, t):
        # d(sigma^2)/dt = 2 sigma^2 log(sigma_max/sigma_min) / T
        return self.sigma(t) * jnp.sqrt(2.0 * math.log(self.sigma_max / self.sigma_min) / self.T)

    def marginal_mean_coeff(self, t):
        return jnp.ones_like(jnp.asarray(t, dtype=float))

    def marginal_std(self, t):
        return jnp.sqrt(self.sigma(t) ** 2 - self.sigma_min**2)

    def prior_sample(self, key, shape):
        return self.sigma_max * jax.random.normal(key, shape)

    def prior_logp(self, x):
        return _standard_normal_logp(x, self.sigma_max)


def forward_simulate(
    sde: SDE,
    x0: Float[Array, "..."],
    key: PRNGKeyArray,
    ts: Float[ArrayLike, " n"],
    dt: float = 1e-3,
) -> Float[Array, "n ..."]:
    """Simulate the forward SDE from ``x0`` and return ``x`` at the times ``ts``.

    Euler–Maruyama with a constant step ``dt`` on a :class:`diffrax.VirtualBrownianTree`
    (so the same ``key`` gives the same path whatever the step). Every coordinate of
    ``x0`` (which may be a whole batch) receives independent noise.

    Arguments:
        sde: the forward SDE.
        x0: the starting point(s), any shape.
        key: the Brownian path's key.
        ts: increasing save times in ``[0, T]``; the path starts at ``ts[0]``.
        dt: the Euler–Maruyama step.

    Returns:
        An array of shape ``(len(ts), *x0.shape)``.
    """
    from . import guards

    guards.positive("dt", dt)
    if jnp.ndim(ts) != 1 or jnp.shape(ts)[0] < 1:
        raise ValueError(f"ts must be a 1-D array of increasing save times, got shape {jnp.shape(ts)}")
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    shape = jnp.shape(x0)
    y0 = jnp.ravel(jnp.asarray(x0, dtype=ts.dtype))
    t0, t1 = ts[0], ts[-1]
    brownian = diffrax.VirtualBrownianTree(t0, t1, tol=dt / 4, shape=y0.shape, key=key)
    drift = diffrax.ODETerm(lambda t, y, args: sde.drift(y, t))
    noise = diffrax.ControlTerm(lambda t, y, args: lx.DiagonalLinearOperator(sde.diffusion(t) * jnp.ones_like(y)), brownian)
    sol = diffrax.diffeqsolve(
        diffrax.MultiTerm(drift, noise),
        diffrax.Euler(),
        t0=t0,
        t1=t1,
        dt0=dt,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        max_steps=int(math.ceil(sde.T / dt)) + 2,
    )
    return sol.ys.reshape((ts.shape[0], *shape))
