"""Figures of the Langevin warm-up (Matplotlib, Agg backend: works without a display)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .langevin import Comparison, GaussianMixture, log_density, score  # noqa: E402


@partial(jax.jit, static_argnums=(1, 2))
def _field(mix: GaussianMixture, half_width: float, n_grid: int):
    """Log density on a fine grid; the score, log-scaled in length, on a coarse one."""
    g = jnp.linspace(-half_width, half_width, 80)
    xx, yy = jnp.meshgrid(g, g)
    pts = jnp.stack([xx.ravel(), yy.ravel()], axis=1)
    logp = jax.vmap(lambda p: log_density(mix, p))(pts).reshape(xx.shape)
    q = jnp.linspace(-half_width, half_width, n_grid)
    qx, qy = jnp.meshgrid(q, q)
    qp = jnp.stack([qx.ravel(), qy.ravel()], axis=1)
    s = jax.vmap(lambda p: score(mix, p))(qp)
    norm = jnp.linalg.norm(s, axis=1, keepdims=True)
    # the score grows linearly away from the modes; show directions with a log-scaled length
    return xx, yy, logp, qp, s / jnp.maximum(norm, 1e-12) * jnp.log1p(norm)


def plot_score_field(ax, mix: GaussianMixture, half_width: float = 8.0, n_grid: int = 17) -> None:
    """Log-density contours with the score as arrows (arrow length ~ log of the score's norm)."""
    xx, yy, logp, qp, s = _field(mix, half_width, n_grid)
    ax.contourf(np.asarray(xx), np.asarray(yy), np.asarray(jnp.maximum(logp, -40.0)), levels=30, cmap="viridis")
    ax.quiver(np.asarray(qp[:, 0]), np.asarray(qp[:, 1]), np.asarray(s[:, 0]), np.asarray(s[:, 1]),
              color="white", alpha=0.8, scale=60)
    ax.set_title("log p(x) and its score ∇log p = grad(log_density)")


def _scatter(ax, x, title: str, half_width: float, color: str) -> None:
    x = np.asarray(x)
    ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.5, color=color)
    ax.set_xlim(-half_width, half_width)
    ax.set_ylim(-half_width, half_width)
    ax.set_aspect("equal")
    ax.set_title(title)


def langevin_figure(mix: GaussianMixture, c: Comparison, path: str | Path | None = None, half_width: float = 8.0):
    """Score field, plain and annealed samples, and the mode weights against the truth.

    Every number in the titles comes from ``c`` (measured, never typed in). Saves a PNG
    at ``path`` when given; returns the figure.
    """
    fig, axes = plt.subplots(1, 4, figsize=(19, 5.2), layout="constrained")
    plot_score_field(axes[0], mix, half_width)
    axes[0].set_aspect("equal")
    _scatter(axes[1], c.plain, f"plain Langevin\nweights {_fmt(c.plain_weights)}, SW2 = {float(c.plain_distance):.2f}",
             half_width, "tab:red")
    _scatter(axes[2], c.annealed,
             f"annealed Langevin\nweights {_fmt(c.annealed_weights)}, SW2 = {float(c.annealed_distance):.2f}",
             half_width, "tab:blue")
    k = np.arange(len(c.true_weights))
    for i, (label, w) in enumerate([("true", c.true_weights), ("plain", c.plain_weights),
                                    ("annealed", c.annealed_weights)]):
        axes[3].bar(k + (i - 1) * 0.27, np.asarray(w), width=0.27, label=label)
    axes[3].set_xticks(k, [f"mode {i + 1}" for i in k])
    axes[3].set_ylim(0, 1)
    axes[3].legend()
    axes[3].set_title(f"mode weights\n(an exact sample of the same size: SW2 = {float(c.exact_distance):.2f})")
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig


def _fmt(w) -> str:
    return "[" + ", ".join(f"{float(v):.2f}" for v in np.asarray(w)) + "]"
