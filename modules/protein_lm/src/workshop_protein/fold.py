"""From a contact map to a 3-D Cα trace: differentiable distance geometry.

We look for coordinates ``x`` (one point per residue) whose distances agree with the
contact probabilities ``p``, by gradient descent (``jax.grad`` + Optax Adam) on

* **chain**: consecutive Cα atoms are 3.8 Å apart;
* **contacts**: a pair in contact (weight ``p_ij``) is closer than 8 Å;
* **non-contacts**: a pair not in contact (weight ``1 − p_ij``) is farther than 8 Å;
* **clash**: no two Cα atoms closer than 4 Å.

A contact map fixes a structure only up to rotation, translation *and mirror image*
(distances cannot tell left from right hands), so we compare structures by the RMSD
after the best rigid superposition, reflections allowed (:func:`kabsch_rmsd`).
Several random starts run at once (``jax.vmap``); the one with the lowest loss wins.

Example::

    coords, loss = fold_from_contacts(probs, key=jax.random.key(0))
    rmsd = kabsch_rmsd(coords, true_ca)
    plot_trace(coords, path="fold.png")
    write_ca_pdb("fold.pdb", superpose(coords, true_ca), sequence)  # open it in PyMOL/ChimeraX/Mol*
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from . import guards
from .pdbfile import read_ca_pdb, write_ca_pdb

__all__ = [
    "fold_loss", "fold_from_contacts", "kabsch_rmsd", "superpose", "plot_trace", "write_ca_pdb", "read_ca_pdb", "CA_CA",
]

#: The distance between consecutive Cα atoms of a protein chain (trans peptide), Å.
CA_CA = 3.8


def _distances(x: Float[Array, "L 3"]) -> Float[Array, "L L"]:
    diff = x[:, None, :] - x[None, :, :]
    return jnp.sqrt((diff**2).sum(-1) + 1e-8)


def fold_loss(
    x: Float[Array, "L 3"],
    probs: Float[Array, "L L"],
    *,
    contact_distance: float = 8.0,
    clash_distance: float = 4.0,
    min_separation: int = 3,
    non_contact_weight: float = 0.2,
) -> Float[Array, ""]:
    """The distance-geometry energy of a Cα trace ``x`` given contact probabilities."""
    L = x.shape[0]
    d = _distances(x)
    idx = jnp.arange(L)
    sep = jnp.abs(idx[:, None] - idx[None, :])
    bonds = jnp.diagonal(d, offset=1)
    chain = ((bonds - CA_CA) ** 2).mean()
    far = (sep >= min_separation).astype(x.dtype)
    attract = probs * jax.nn.relu(d - contact_distance) ** 2
    repel = (1 - probs) * jax.nn.relu(contact_distance - d) ** 2
    pair = ((attract + non_contact_weight * repel) * far).sum() / jnp.maximum(far.sum(), 1.0)
    clash = (jax.nn.relu(clash_distance - d) ** 2 * (sep >= 2)).sum() / (L * L)
    return 10.0 * chain + pair + 10.0 * clash


def fold_from_contacts(
    probs,
    *,
    key,
    restarts: int = 8,
    steps: int = 1500,
    learning_rate: float = 0.3,
    **loss_kwargs,
) -> tuple[np.ndarray, float]:
    """Fold a Cα trace that satisfies the contact map ``probs`` ``(L, L)``.

    Arguments:
        probs: contact probabilities (or a 0/1 contact map).
        key: a JAX random key for the starting coordinates.
        restarts: independent random starts, run together with ``vmap``.
        steps, learning_rate: Adam on the coordinates.
        **loss_kwargs: passed to :func:`fold_loss`.

    Returns:
        ``(coords (L, 3), loss)`` of the best start.
    """
    probs = guards.square_map("probs", probs)
    if probs.min() < 0 or probs.max() > 1:
        raise ValueError(f"probs must be contact probabilities in [0, 1], got values {probs.min():.3g}..{probs.max():.3g}"
                         " (pass jax.nn.sigmoid of logits)")
    restarts, steps = guards.count("restarts", restarts), guards.count("steps", steps)
    learning_rate = guards.positive("learning_rate", learning_rate)
    probs = jnp.asarray(probs)
    L = probs.shape[0]
    opt = optax.adam(learning_rate)
    loss = lambda x: fold_loss(x, probs, **loss_kwargs)  # noqa: E731

    def one(k):
        # Start from a random walk (a chain already), scaled to a compact blob.
        steps_ = jax.random.normal(k, (L, 3))
        x0 = jnp.cumsum(CA_CA * steps_ / jnp.linalg.norm(steps_, axis=-1, keepdims=True), 0)

        def step(carry, _):
            x, s = carry
            g = jax.grad(loss)(x)
            u, s = opt.update(g, s, x)
            return (optax.apply_updates(x, u), s), None

        (x, _), _ = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
        return x, loss(x)

    xs, losses = jax.jit(jax.vmap(one))(jax.random.split(key, restarts))
    best = int(jnp.argmin(losses))
    return np.asarray(xs[best]), float(losses[best])


def superpose(mobile, target, *, allow_reflection: bool = True) -> np.ndarray:
    """``mobile`` moved onto ``target`` by the best rotation (and, when allowed,
    reflection) and translation: the Kabsch algorithm."""
    a, b = np.asarray(mobile, np.float64), np.asarray(target, np.float64)
    ca, cb = a.mean(0), b.mean(0)
    h = (a - ca).T @ (b - cb)
    u, _, vt = np.linalg.svd(h)
    r = u @ vt
    if not allow_reflection and np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return (a - ca) @ r + cb


def kabsch_rmsd(mobile, target, *, allow_reflection: bool = True) -> float:
    """RMSD (Å) between two ``(L, 3)`` traces after optimal superposition."""
    moved = superpose(mobile, target, allow_reflection=allow_reflection)
    return float(np.sqrt(((moved - np.asarray(target, np.float64)) ** 2).sum(-1).mean()))


def plot_trace(coords, reference=None, *, title: str = "", path=None):
    """A 3-D picture of a Cα trace coloured from N- to C-terminus; ``reference`` (a true
    structure) is superposed and drawn in grey. Returns the figure; saves to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    x = np.asarray(coords, np.float64)
    fig = plt.figure(figsize=(5, 4.6))
    ax = fig.add_subplot(projection="3d")
    if reference is not None:
        ref = np.asarray(reference, np.float64)
        x = superpose(x, ref)
        ax.plot(*ref.T, color="0.6", lw=1.5, label="reference")
    colors = plt.cm.viridis(np.linspace(0, 1, len(x)))
    for i in range(len(x) - 1):
        ax.plot(*x[i : i + 2].T, color=colors[i], lw=2.5)
    ax.scatter(*x.T, c=colors, s=10)
    bar = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(1, len(x)))
    fig.colorbar(bar, ax=ax, shrink=0.6, pad=0.12, label="residue (fold), N to C")
    ax.set_title(title or f"Cα trace ({len(x)} residues)", fontsize=9)
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_zlabel("z (Å)")
    if reference is not None:
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return fig
