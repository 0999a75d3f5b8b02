"""Contact prediction from ESM2 attention maps (the ESM contact head).

A protein language model trained only on sequences learns which residues touch in 3-D:
some attention heads attend from residue ``i`` to the residues it contacts. The ESM
contact head reads this out with a logistic regression on the attention maps:

1. collect the attention weights of every layer and head, ``(layers, heads, T, T)``;
2. drop the ``<cls>`` and ``<eos>`` rows and columns (and zero the padding);
3. **symmetrise** each map, ``A + Aᵀ`` (contacts are symmetric, attention is not);
4. **APC** (average product correction) removes the background each residue has in
   every map: ``F_ij = A_ij − (Σ_k A_ik)(Σ_k A_kj) / Σ_kl A_kl``;
5. a logistic regression over the ``layers × heads`` features of each pair gives
   ``P(contact_ij) = sigmoid(w · F_ij + b)``.

Example::

    maps = attention_maps(model, tokenize("MKTAYIAKQR"))       # (layers, heads, 12, 12)
    feats = contact_features(maps, tokenize("MKTAYIAKQR"))      # (10, 10, layers*heads)
    head = ContactHead.init(model)                               # or fit_contact_head / from_esm
    probs = head(feats)                                          # (10, 10)
"""

from __future__ import annotations

from typing import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, Int

from . import guards
from .embeddings import input_embedding
from .finetune import residue_mask
from .tokens import PAD

__all__ = [
    "attention_maps",
    "symmetrize",
    "apc",
    "contact_features",
    "ContactHead",
    "fit_contact_head",
    "predict_contacts",
    "contacts_from_coords",
    "contact_precision",
    "contact_density",
    "plot_contact_map",
    "real_structures",
    "load_contact_head",
    "EMBEDDED_CONTACT_HEAD",
]

#: The contact regression fitted for the embedded model (datasets/protein_finetune_contact_regression.py).
EMBEDDED_CONTACT_HEAD = "contact_head_embedded.npz"
#: Real protein chains shipped with the module (datasets/protein_finetune_data.py).
STRUCTURES = "structures_ca.npz"


# --------------------------------------------------------------------------------------
# Attention maps of an esm2quinox ESM2
# --------------------------------------------------------------------------------------


def _layer_with_attention(layer, x: Float[Array, "T D"], is_pad: Bool[Array, " T"]):
    """One pre-LayerNorm transformer layer of ESM2; returns (output, attention weights)."""
    attn = layer.attn
    T = x.shape[0]
    y = jax.vmap(layer.layer_norm1)(x)
    q = jax.vmap(attn.query_proj)(y).reshape(T, attn.num_heads, -1)
    k = jax.vmap(attn.key_proj)(y).reshape(T, attn.num_heads, -1)
    v = jax.vmap(attn.value_proj)(y).reshape(T, attn.num_heads, -1)
    # Rotary position embedding on queries and keys, head by head.
    q = jax.vmap(layer.rotary_embed, in_axes=1, out_axes=1)(q)
    k = jax.vmap(layer.rotary_embed, in_axes=1, out_axes=1)(k)
    logits = jnp.einsum("shd,Shd->hsS", q, k) / jnp.sqrt(q.shape[-1])
    keep = jnp.broadcast_to(~is_pad, (T, T))
    logits = jnp.where(keep[None], logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(x.dtype)
    out = jnp.einsum("hsS,Shd->shd", weights, v).reshape(T, -1)
    x = x + jax.vmap(attn.output_proj)(out)
    y = jax.vmap(layer.layer_norm2)(x)
    y = jax.vmap(layer.linear2)(jax.nn.gelu(jax.vmap(layer.linear1)(y), approximate=False))
    return x + y, weights


@eqx.filter_jit
def attention_maps(model, tokens: Int[Array, " T"], *, return_hidden: bool = False):
    """Attention weights of every layer and head of an ESM2 model for one sequence.

    Arguments:
        model: an ``esm2quinox.ESM2`` (any size).
        tokens: ``(T,)`` token ids, ``<cls> residues <eos>`` possibly followed by ``<pad>``.
        return_hidden: also return the final hidden states ``(T, D)`` (after the last
            LayerNorm), identical to ``model(tokens).hidden``.

    Returns:
        ``(layers, heads, T, T)`` attention weights (rows sum to 1 over non-padding keys),
        or ``(maps, hidden)`` with ``return_hidden=True``.
    """
    tokens = jnp.asarray(tokens)
    is_pad = tokens == PAD
    x = input_embedding(model, tokens)
    dynamic, static = eqx.partition(model.layers, eqx.is_array)

    def step(x, dyn):
        return _layer_with_attention(eqx.combine(dyn, static), x, is_pad)

    x, maps = jax.lax.scan(step, x, dynamic)
    if return_hidden:
        return maps, jax.vmap(model.layer_norm)(x)
    return maps


# --------------------------------------------------------------------------------------
# Features: symmetrise and APC
# --------------------------------------------------------------------------------------


def symmetrize(a: Float[Array, "... L L"]) -> Float[Array, "... L L"]:
    """``A + Aᵀ`` over the last two axes."""
    return a + jnp.swapaxes(a, -1, -2)


def apc(a: Float[Array, "... L L"]) -> Float[Array, "... L L"]:
    """Average product correction: ``A_ij − (row sum_i)(column sum_j) / total``."""
    row = a.sum(-1, keepdims=True)
    col = a.sum(-2, keepdims=True)
    total = a.sum((-1, -2), keepdims=True)
    return a - row * col / total


def contact_features(maps: Float[Array, "layers heads T T"], tokens: Int[Array, " T"]) -> Float[Array, "L L C"]:
    """The per-pair features of the contact regression, as in ESM.

    Arguments:
        maps: attention weights from :func:`attention_maps`.
        tokens: the ``(T,)`` tokens the maps came from.

    Returns:
        ``(T - 2, T - 2, layers * heads)``: symmetrised, APC-corrected attention of each
        residue pair, features ordered layer by layer. Rows of ``<eos>``/padding are zero;
        for an unpadded sequence ``T - 2`` is its number of residues.
    """
    tokens = jnp.asarray(tokens)
    real = residue_mask(tokens)
    nl, nh, T, _ = maps.shape
    a = maps * (real[:, None] & real[None, :])
    a = a[:, :, 1:-1, 1:-1].reshape(nl * nh, T - 2, T - 2)
    f = apc(symmetrize(a))
    return jnp.moveaxis(f, 0, -1)


# --------------------------------------------------------------------------------------
# The logistic regression head
# --------------------------------------------------------------------------------------


class ContactHead(eqx.Module):
    """``P(contact) = sigmoid(w · features + b)`` over the ``layers × heads`` features.

    Arguments:
        weight: ``(layers * heads,)``.
        bias: scalar.
    """

    weight: Float[Array, " C"]
    bias: Float[Array, ""]

    @classmethod
    def init(cls, model) -> "ContactHead":
        """An untrained head (zero weights) sized for ``model``."""
        return cls(jnp.zeros(model.num_layers * model.num_heads), jnp.zeros(()))

    @classmethod
    def from_esm(cls, source) -> "ContactHead":
        """The official ESM contact regression.

        Arguments:
            source: a fair-esm ``ESM2`` PyTorch model (its ``contact_head.regression``),
                or a mapping with the keys ``contact_head.regression.weight`` and
                ``contact_head.regression.bias`` (a fair-esm state dict, or the
                ``-contact-regression.pt`` file's dict, whose ``"model"`` entry holds them).
        """
        if hasattr(source, "contact_head"):
            reg = source.contact_head.regression
            w, b = reg.weight, reg.bias
        else:
            state: Mapping = source["model"] if "model" in source and not _has_keys(source) else source
            if not _has_keys(state):
                raise KeyError("no 'contact_head.regression.weight'/'.bias' in the given state dict")
            w, b = state["contact_head.regression.weight"], state["contact_head.regression.bias"]
        w, b = _to_numpy(w), _to_numpy(b)
        return cls(jnp.asarray(w.reshape(-1), jnp.float32), jnp.asarray(b.reshape(()), jnp.float32))

    def logits(self, features: Float[Array, "L L C"]) -> Float[Array, "L L"]:
        return features @ self.weight + self.bias

    def __call__(self, features: Float[Array, "L L C"]) -> Float[Array, "L L"]:
        return jax.nn.sigmoid(self.logits(features))


def _has_keys(d) -> bool:
    return "contact_head.regression.weight" in d and "contact_head.regression.bias" in d


def _to_numpy(t) -> np.ndarray:
    if hasattr(t, "detach"):
        t = t.detach().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


def predict_contacts(model, head: ContactHead, tokens: Int[Array, " T"]) -> Float[Array, "L L"]:
    """Contact probabilities ``(T - 2, T - 2)`` for one tokenised sequence."""
    return head(contact_features(attention_maps(model, tokens), tokens))


def fit_contact_head(
    features: list[Float[Array, "L L C"]],
    contacts: list[Bool[Array, "L L"]],
    *,
    min_separation: int = 6,
    l1: float = 1e-3,
    steps: int = 500,
    learning_rate: float = 0.05,
) -> ContactHead:
    """Fit the logistic regression on known structures (what ESM did with L1-regularised
    logistic regression on 20 structures).

    Arguments:
        features: per protein, :func:`contact_features` cut to its ``L`` residues.
        contacts: per protein, the true ``(L, L)`` contact map.
        min_separation: only pairs with ``|i - j| >= min_separation`` are used.
        l1: L1 penalty on the weights (keeps few heads, as ESM's fit).
        steps, learning_rate: Adam on the full batch.

    Returns:
        The fitted :class:`ContactHead`.
    """
    steps, learning_rate = guards.count("steps", steps), guards.positive("learning_rate", learning_rate)
    l1 = guards.positive("l1", l1, zero=True)
    if len(features) != len(contacts) or not len(features):
        raise ValueError(f"features and contacts must be one entry per protein (at least one), got {len(features)} and "
                         f"{len(contacts)}")
    xs, ys = [], []
    for k, (f, c) in enumerate(zip(features, contacts)):
        L = c.shape[0]
        if np.shape(f)[:2] != (L, L) or np.shape(c) != (L, L):
            raise ValueError(f"protein {k}: features of shape {np.shape(f)} and contacts of shape {np.shape(c)}; both "
                             "must cover the same L x L residue pairs (features (L, L, C), contacts (L, L))")
        i, j = np.triu_indices(L, k=min_separation)
        xs.append(np.asarray(f)[i, j])
        ys.append(np.asarray(c)[i, j].astype(np.float32))
    x, y = jnp.asarray(np.concatenate(xs)), jnp.asarray(np.concatenate(ys))
    # Standardise for the optimiser, then fold the scaling back into the weights.
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    params = (jnp.zeros(x.shape[1]), jnp.asarray(jnp.log(y.mean() / (1 - y.mean() + 1e-6) + 1e-6)))
    opt = optax.adam(learning_rate)

    def loss(p):
        w, b = p
        return optax.sigmoid_binary_cross_entropy(z @ w + b, y).mean() + l1 * jnp.abs(w).sum()

    @jax.jit
    def run(params):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = opt.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return p

    w, b = run(params)
    return ContactHead(w / sd, b - (w / sd) @ mu)


# --------------------------------------------------------------------------------------
# Truth and metrics
# --------------------------------------------------------------------------------------


def contacts_from_coords(coords: Float[Array, "L 3"], threshold: float = 8.0) -> np.ndarray:
    """Boolean ``(L, L)`` contact map: pairs closer than ``threshold`` Å (diagonal False)."""
    c = np.asarray(coords, np.float64)
    d = np.linalg.norm(c[:, None] - c[None, :], axis=-1)
    out = d < threshold
    np.fill_diagonal(out, False)
    return out


def contact_precision(probs, true_contacts, *, min_separation: int = 6, top: int | None = None) -> float:
    """Precision of the ``top`` most probable pairs with ``|i - j| >= min_separation``
    (default ``top = L // 5``: "top-L/5 precision", the usual ESM figure)."""
    p, t = guards.square_map("probs", probs), guards.square_map("true_contacts", true_contacts).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"probs has shape {p.shape}, true_contacts {t.shape}: they must describe the same protein")
    L = t.shape[0]
    i, j = np.triu_indices(L, k=min_separation)
    if len(i) == 0:
        raise ValueError(f"no pairs with separation >= {min_separation} in a protein of {L} residues")
    top = max(1, L // 5) if top is None else guards.count("top", top)
    order = np.argsort(-p[i, j], kind="stable")[:top]
    return float(t[i[order], j[order]].mean())


def contact_density(true_contacts, *, min_separation: int = 6) -> float:
    """The fraction of pairs ``i < j`` with ``j - i >= min_separation`` that are in contact:
    the precision a random ranking of the pairs has on average (the chance rate)."""
    t = np.asarray(true_contacts, bool)
    i, j = np.triu_indices(t.shape[0], k=min_separation)
    return float(t[i, j].mean())


def plot_contact_map(
    probs,
    true_contacts=None,
    *,
    title: str = "",
    model: str | None = None,
    min_separation: int = 6,
    scale_quantile: float = 0.99,
    path=None,
):
    """Predicted contact probabilities on their own colour scale, beside the true contacts.

    The upper triangle shows ``P(contact)`` from 0 to the ``scale_quantile`` quantile of
    the predicted probabilities over pairs ``|i - j| >= min_separation`` (a weak model's
    probabilities stay far below 1, so a fixed 0–1 scale would hide them); the colour bar
    gives that scale. With ``true_contacts``, the lower triangle shows the true contacts
    (grey) and the top-L/5 predicted pairs (``|i - j| >= min_separation``) mirrored onto
    them: a hit where a true contact is, a miss elsewhere; the title gives the top-L/5
    precision beside the chance rate (:func:`contact_density`).

    Arguments:
        probs: ``(L, L)`` predicted contact probabilities.
        true_contacts: optional ``(L, L)`` boolean contact map from a structure.
        title: the first title line (default: the protein's length).
        model: the name of the model that predicted ``probs``, shown in the title.
        min_separation: the smallest ``|i - j|`` scored and used for the colour scale.
        scale_quantile: the quantile that sets the top of the colour scale (1.0: the maximum).
        path: save the figure there (and close it) when given.

    Returns:
        The matplotlib figure; its first axes hold the prediction's image, whose
        ``norm.vmax`` is the top of the scale.

    Example::

        plot_contact_map(probs, contacts_from_coords(cb), title="1LCD", model=info.name)

    Long because its docstring describes every element of the figure and its body is one
    linear figure layout (scale, image, colour bar, truth overlay, title), read top to bottom.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    p = np.asarray(probs, np.float64)
    L = p.shape[0]
    i, j = np.triu_indices(L, k=min_separation)
    scored = p[i, j] if len(i) else p[np.triu_indices(L, k=1)]
    vmax = float(np.quantile(scored, scale_quantile)) if scored.size else 1.0
    if not vmax > 0:
        vmax = 1.0
    # With a structure the lower triangle is the truth's; without one the whole map is the prediction's.
    keep = np.triu(np.ones((L, L), bool), 1) if true_contacts is not None else ~np.eye(L, dtype=bool)
    upper = np.ma.masked_where(~keep, p)

    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    extent = (0.5, L + 0.5, L + 0.5, 0.5)  # pixel centres at the 1-based residue numbers
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    im = ax.imshow(upper, cmap=cmap, vmin=0.0, vmax=vmax, extent=extent, interpolation="nearest")
    shown = upper.compressed()
    extend = "max" if shown.size and shown.max() > vmax else "neither"
    what = "maximum" if scale_quantile >= 1 else f"{100 * scale_quantile:g}th percentile"
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, extend=extend)
    cbar.set_label(f"predicted P(contact)\n(scale: 0 to its {what} over |i−j| ≥ {min_separation})")
    ax.plot([0.5, L + 0.5], [0.5, L + 0.5], color="0.5", lw=0.6)

    head = title or f"contact map, {L} residues"
    if model:
        head += f"\nmodel: {model}"
    if true_contacts is not None and len(i):
        t = np.asarray(true_contacts, bool)
        lower = np.ma.masked_where(~(np.tril(t, -1)), np.ones((L, L)))
        ax.imshow(lower, cmap=ListedColormap(["0.72"]).with_extremes(bad=(0, 0, 0, 0)), vmin=0, vmax=1,
                  extent=extent, interpolation="nearest")
        top = max(1, L // 5)
        best = np.argsort(-p[i, j], kind="stable")[:top]
        hit = t[i[best], j[best]]
        size = float(np.clip(2400.0 / L, 4.0, 40.0))
        # Mirrored into the lower triangle (row j, column i), on top of the truth.
        ax.scatter(i[best][hit] + 1, j[best][hit] + 1, s=size, marker="o", color="tab:orange",
                   edgecolor="black", linewidth=0.4, label=f"top-L/5 predicted, true contact ({hit.sum()})")
        ax.scatter(i[best][~hit] + 1, j[best][~hit] + 1, s=size, marker="x", color="tab:red",
                   linewidth=1.0, label=f"top-L/5 predicted, no contact ({(~hit).sum()})")
        ax.scatter([], [], s=size, marker="s", color="0.72", label="true contacts (Cβ < 8 Å), lower triangle")
        precision = float(hit.mean())
        head += (f"\ntop-L/5 precision at |i−j| ≥ {min_separation}: {precision:.2f} "
                 f"(chance: contact density {contact_density(t, min_separation=min_separation):.2f})")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize=7, ncol=1, frameon=False)
    else:
        head += "\nprediction only (no known structure)"
    ax.set_title(head, fontsize=9)
    ax.set_xlabel("residue j")
    ax.set_ylabel("residue i")
    ax.set_xlim(0.5, L + 0.5)
    ax.set_ylim(L + 0.5, 0.5)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig


# --------------------------------------------------------------------------------------
# Data: real structures, fitted and official heads
# --------------------------------------------------------------------------------------


def real_structures() -> dict[str, dict]:
    """The real protein chains shipped with the module: ``{id: {"sequence", "ca", "cb"}}``
    (Cα and Cβ coordinates in Å; Cβ is Cα for glycine). See the datasheet
    ``datasets/protein_finetune_data.md``."""
    from workshop.data import fetch

    with np.load(fetch("protein", STRUCTURES)) as z:
        return {str(t): {"sequence": str(z[f"{t}/sequence"]), "ca": z[f"{t}/ca"], "cb": z[f"{t}/cb"]} for t in z["ids"]}


def load_contact_head(name: str = "embedded") -> ContactHead:
    """The contact regression of a named model.

    * ``"embedded"``: fitted for the embedded model on real structures (shipped, sha256
      checked);
    * a published ESM2 (``"esm2_t6_8M_UR50D"``, ...): the official regression weights,
      ``<name>-contact-regression.pt``, fetched through the data registry (pinned on
      first use) and read without running code from the file.

    Raises:
        workshop.data.DataError: the official file cannot be fetched (the message says how).
    """
    if name == "embedded":
        from workshop.data import fetch

        from workshop.data import module_data

        from .models import EMBEDDED_MODEL_FILE

        with np.load(fetch("protein", EMBEDDED_CONTACT_HEAD)) as z:
            head = ContactHead(jnp.asarray(z["weight"]), jnp.asarray(z["bias"]))
            fitted_for = str(z["model_sha256"])
        model_sha = module_data("protein").entry(EMBEDDED_MODEL_FILE).sha256
        if fitted_for != model_sha:
            raise ValueError(
                f"the shipped contact regression was fitted for another version of the embedded model "
                f"(sha256 {fitted_for[:12]}…, installed {model_sha[:12]}…); refit it with "
                "datasets/protein_finetune_contact_regression.py"
            )
        return head
    from .models import ESM2_PRETRAINED, contact_regression_file, fetch_esm2_file

    if name not in ESM2_PRETRAINED:
        raise ValueError(f"unknown model {name!r}; choose 'embedded' or one of {', '.join(ESM2_PRETRAINED)}")
    path = fetch_esm2_file(contact_regression_file(name))
    from .torch_weights import read_checkpoint

    return ContactHead.from_esm(read_checkpoint(path))
