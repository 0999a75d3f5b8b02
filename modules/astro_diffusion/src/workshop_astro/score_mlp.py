"""A small time-conditioned MLP score model for low-dimensional data.

The time enters through random Fourier features ``[sin(2 pi w t), cos(2 pi w t)]``
(Tancik et al. 2020), which let a small MLP represent scores that change quickly near
``t = 0``. The network predicts the noise ``eps`` and the score is ``-eps_hat / std(t)``:
the output is of order one at every time, while the score itself is of order
``1 / std(t)`` and blows up as ``t -> 0``.

Example::

    >>> model = ScoreMLP(VPSDE(), dim=2, key=jax.random.key(0))
    >>> model(jnp.zeros(2), 0.5).shape
    (2,)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .sde import SDE

__all__ = ["ScoreMLP"]


class ScoreMLP(eqx.Module):
    """``model(x, t) -> score`` for ONE sample ``x`` of shape ``(dim,)`` and a scalar ``t``.

    Arguments:
        sde: the forward SDE (its ``marginal_std`` turns predicted noise into a score).
        dim: the data dimension.
        key: initialisation key.
        width, depth: hidden width and number of hidden layers of the MLP.
        n_freqs: number of random Fourier frequencies for the time.
        freq_scale: standard deviation of those frequencies (in units of ``1 / T``).
    """

    mlp: eqx.nn.MLP
    freqs: Float[Array, " n_freqs"]
    sde: SDE

    def __init__(
        self,
        sde: SDE,
        dim: int = 2,
        *,
        key: PRNGKeyArray,
        width: int = 128,
        depth: int = 3,
        n_freqs: int = 16,
        freq_scale: float = 4.0,
    ):
        kf, km = jax.random.split(key)
        self.sde = sde
        self.freqs = freq_scale * jax.random.normal(kf, (n_freqs,))
        self.mlp = eqx.nn.MLP(dim + 2 * n_freqs, dim, width, depth, activation=jax.nn.silu, key=km)

    def time_features(self, t: ArrayLike) -> Float[Array, " 2*n_freqs"]:
        # The frequencies are a fixed random projection, not trained.
        angle = 2 * jnp.pi * jax.lax.stop_gradient(self.freqs) * (jnp.asarray(t) / self.sde.T)
        return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)])

    def __call__(self, x: Float[Array, " dim"], t: ArrayLike) -> Float[Array, " dim"]:
        eps_hat = self.mlp(jnp.concatenate([x, self.time_features(t)]))
        return -eps_hat / self.sde.marginal_std(t)
