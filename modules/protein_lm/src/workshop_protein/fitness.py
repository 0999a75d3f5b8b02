"""Supervised fitness prediction on a deep mutational scan: splits, baselines, a language model.

A model trained on measured variants is only worth something if it beats what a simple
model of the same data gives, on variants it has not seen. The pieces, in the order data
flows through them:

* **Splits** (:class:`Split`): :func:`random_split` holds out a seeded random fraction of
  the variants; :func:`position_split` holds out every variant that touches one of a
  seeded set of positions, so no training variant mutates a test position (the model
  must transfer what it learnt to new sites). :func:`validation_split` carves a
  validation set out of a split's training set *of the same kind*, for choosing
  regularisation and for early stopping; the test set is never looked at for either.
* **Additive baseline**: one weight per (position, amino acid) on one-hot features
  (:func:`one_hot_sites`), fitted in closed form by ridge regression
  (:func:`ridge_path`), the regularisation chosen on the validation set
  (:func:`choose_ridge`). A substitution never seen in training keeps the weight 0, so
  on a new position this model knows nothing; with :func:`amino_acid_counts` beside it
  (one weight per amino acid lost and per amino acid made, shared by all positions) it
  knows what the amino acids do on average.
* **Global-epistasis baseline** (:class:`GlobalEpistasis`): the same additive latent
  score pushed through a fitted sigmoid, ``y = low + span * sigmoid(bias + Σ w)``
  (Otwinowski, McCandlish & Plotkin 2018). A monotone map leaves ranks unchanged, so
  what it buys is better *weights*: a double whose sum is far below the floor of the
  assay no longer drags its single effects down.
* **Language model** (:class:`VariantPredictor`): the final ESM2 embeddings averaged
  over the *mutated sites* (where the tokens differ from the wild type) and over all
  residues, concatenated, with a linear head on them. Frozen: the head is ridge
  regression on the embeddings (the exact optimum of the regularised head,
  :func:`choose_ridge` again). Fine-tuned: the whole model is
  trained from that head with :func:`workshop_protein.finetune.train`, which shards
  each batch over the devices.
* **Metric**: Spearman's ρ with bootstrap intervals (:mod:`workshop_protein.zero_shot`)
  and :func:`spearman_difference` for a paired comparison of two methods.

Example::

    assay = load_assay("gb1")
    split = position_split(assay.variants, 11, seed=0)
    X = one_hot_sites(assay.variants, assay.wild_type)
    fit_idx, valid_idx = validation_split(split, assay.variants, seed=0)
    ridge, _ = choose_ridge(X, assay.fitness, fit_idx, valid_idx)
    spearman(ridge.predict(X[split.test]), assay.fitness[split.test])
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from .finetune import Predictor, masked_mean_pool, residue_mask
from .mutations import parse_mutations
from .tokens import AMINO_ACIDS, PAD, tokenize
from .zero_shot import spearman

__all__ = [
    "Split",
    "mutated_positions",
    "random_split",
    "position_split",
    "validation_split",
    "one_hot_sites",
    "amino_acid_counts",
    "RidgeFit",
    "ridge_path",
    "choose_ridge",
    "GlobalEpistasis",
    "fit_global_epistasis",
    "choose_global_epistasis",
    "VariantPredictor",
    "variant_embeddings",
    "Difference",
    "spearman_difference",
]

RIDGE_PENALTIES = tuple(float(x) for x in np.logspace(-4, 4, 9))
GLOBAL_EPISTASIS_PENALTIES = (0.01, 0.1, 1.0)


# --------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Indices of training and test variants.

    Arguments:
        name: ``"random"`` or ``"position"``.
        train, test: indices into the variants (disjoint, together all of them).
        held_out_positions: 1-based wild-type positions no training variant mutates
            (empty for a random split).
        description: exactly what is held out, in words.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    held_out_positions: tuple[int, ...] = ()
    description: str = ""


def mutated_positions(variant: str, wild_type: str) -> tuple[int, ...]:
    """The 1-based positions a variant (``"A23G:R30W"``) mutates."""
    return tuple(m.pos + 1 for m in parse_mutations(variant, wild_type))


def random_split(n: int, test_fraction: float = 0.2, *, seed: int = 0) -> Split:
    """Hold out ``round(test_fraction * n)`` variants drawn uniformly (``default_rng(seed)``)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)
    k = int(round(test_fraction * n))
    return Split("random", np.sort(order[k:]), np.sort(order[:k]), (),
                 f"{k} of {n} variants drawn uniformly at random (numpy default_rng({seed}).permutation)")


def position_split(variants, wild_type: str, n_positions: int, *, seed: int = 0, among=None) -> Split:
    """Hold out ``n_positions`` positions and every variant that mutates any of them.

    Arguments:
        variants: ``"A23G:R30W"`` strings.
        n_positions: how many positions to hold out, drawn uniformly without replacement
            (``default_rng(seed)``) from ``among`` (default: every position some variant mutates).

    Returns:
        A :class:`Split` whose training variants mutate none of ``held_out_positions``.
    """
    sites = [mutated_positions(v, wild_type) for v in variants]
    pool = sorted(set(among) if among is not None else {p for s in sites for p in s})
    if not 0 < n_positions < len(pool):
        raise ValueError(f"n_positions must be between 1 and {len(pool) - 1}, got {n_positions}")
    held = tuple(sorted(int(p) for p in np.random.default_rng(seed).choice(pool, n_positions, replace=False)))
    touches = np.array([any(p in held for p in s) for s in sites], dtype=bool)
    return Split("position", np.flatnonzero(~touches), np.flatnonzero(touches), held,
                 f"every variant mutating any of {n_positions} of {len(pool)} positions drawn uniformly "
                 f"(numpy default_rng({seed}).choice); no training variant mutates them")


def validation_split(split: Split, variants, wild_type: str, *, fraction: float = 0.1,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cut a validation set out of ``split.train``, of the same kind as the split.

    Random split: ``fraction`` of the training variants at random. Position split: the
    training variants touching ``max(1, round(fraction * P / 2))`` more of the ``P``
    positions left in training (a double touches a given position with probability about
    ``2 / P``), so the validation set also asks for new positions.

    Returns:
        ``(fit, valid)``: indices into ``variants`` (together ``split.train``).
    """
    train = np.asarray(split.train)
    if not split.held_out_positions:
        inner = random_split(len(train), fraction, seed=seed + 1)
    else:
        train_variants = [variants[i] for i in train]
        left = sorted({p for v in train_variants for p in mutated_positions(v, wild_type)})
        k = max(1, int(round(fraction * len(left) / 2)))
        inner = position_split(train_variants, wild_type, k, seed=seed + 1, among=left)
    return train[inner.train], train[inner.test]


# --------------------------------------------------------------------------------------
# The additive baseline: one-hot ridge regression
# --------------------------------------------------------------------------------------


def one_hot_sites(variants, wild_type: str) -> np.ndarray:
    """``(n, L * 20)`` features: 1 at column ``20 * (position - 1) + amino acid`` per substitution."""
    X = np.zeros((len(variants), 20 * len(wild_type)), np.float32)
    for k, v in enumerate(variants):
        for m in parse_mutations(v, wild_type):
            X[k, 20 * m.pos + AMINO_ACIDS.index(m.mt)] = 1.0
    return X


def amino_acid_counts(variants, wild_type: str) -> np.ndarray:
    """``(n, 40)`` features shared by every position: how many substitutions leave each
    amino acid (columns 0-19) and how many make each (20-39).

    Beside :func:`one_hot_sites` they let an additive model say something about a
    position it never saw mutated ("proline is bad anywhere").
    """
    F = np.zeros((len(variants), 40), np.float32)
    for k, v in enumerate(variants):
        for m in parse_mutations(v, wild_type):
            F[k, AMINO_ACIDS.index(m.wt)] += 1.0
            F[k, 20 + AMINO_ACIDS.index(m.mt)] += 1.0
    return F


@dataclass(frozen=True)
class RidgeFit:
    """``y ≈ intercept + ((X - mean) / scale) @ weights``, fitted with penalty ``lam``."""

    weights: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    lam: float

    def predict(self, X) -> np.ndarray:
        return self.intercept + ((np.asarray(X, np.float64) - self.mean) / self.scale) @ self.weights

    def raw_weights(self) -> tuple[np.ndarray, float]:
        """``(w, b)`` with ``y ≈ b + X @ w`` on the unstandardised features."""
        w = self.weights / self.scale
        return w, float(self.intercept - self.mean @ w)


def _cross_products(X: np.ndarray) -> np.ndarray:
    """``XᵀX``, with mostly-zero columns (one-hot) multiplied as sparse beside the dense ones."""
    from scipy import sparse

    few = (X != 0).mean(0) < 0.1
    S, D = sparse.csc_matrix(X[:, few]), X[:, ~few]
    G = np.empty((X.shape[1], X.shape[1]))
    G[np.ix_(few, few)] = (S.T @ S).toarray()
    SD = np.asarray(S.T @ D)
    G[np.ix_(few, ~few)], G[np.ix_(~few, few)] = SD, SD.T
    G[np.ix_(~few, ~few)] = D.T @ D
    return G


def ridge_path(X, y, penalties=RIDGE_PENALTIES, *, standardise=False) -> list[RidgeFit]:
    """Ridge regression ``min ||y - b - Xs w||² + λ ||w||²`` for every ``λ`` in ``penalties``.

    The intercept is not penalised. ``standardise`` (True, or a boolean per column)
    scales columns to unit variance first, for dense features such as embeddings;
    one-hot columns are best left as they are, so a weight is the effect of one
    substitution. Each ``λ`` is one linear solve, in the smaller of the feature space
    (``(XsᵀXs + λI) w = Xsᵀy``) and the sample space (``w = Xsᵀ (XsXsᵀ + λI)⁻¹ y``).
    """
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    n = len(y)
    mean, std = X.mean(0), X.std(0)
    which = np.broadcast_to(np.asarray(standardise, bool), (X.shape[1],))
    scale = np.where(which & (std > 1e-12), std, 1.0)
    yc = y - y.mean()
    primal = X.shape[1] <= n
    if primal:  # centring is a rank-one correction, so the one-hot columns stay sparse
        gram = (_cross_products(X) - n * np.outer(mean, mean)) / np.outer(scale, scale)
        rhs = (X.T @ yc) / scale
    else:
        Xs = (X - mean) / scale
        gram, rhs = Xs @ Xs.T, yc
    fits = []
    for lam in penalties:
        # An LU solve: OpenBLAS's Cholesky ran 5x slower than it on these sizes.
        solved = np.linalg.solve(gram + lam * np.eye(len(gram)), rhs)
        fits.append(RidgeFit(solved if primal else Xs.T @ solved, float(y.mean()), mean, scale, float(lam)))
    return fits


def choose_ridge(X, y, fit, valid, penalties=RIDGE_PENALTIES, *, standardise=False):
    """The penalty with the best validation Spearman ρ, refitted on ``fit`` and ``valid`` together.

    Returns:
        ``(final, details)``: the refitted :class:`RidgeFit`, and a dict with the
        validation ρ of every penalty (``"valid_rho"``), the chosen penalty's
        (``"best_valid_rho"``) and the fit on ``fit`` alone (``"fit_only"``).
    """
    X, y = np.asarray(X), np.asarray(y)
    path = ridge_path(X[fit], y[fit], penalties, standardise=standardise)
    rhos = [spearman(r.predict(X[valid]), y[valid]) for r in path]
    best = int(np.nanargmax(rhos))
    both = np.concatenate([fit, valid])
    final = ridge_path(X[both], y[both], (path[best].lam,), standardise=standardise)[0]
    return final, {"lam": path[best].lam, "valid_rho": dict(zip(penalties, rhos)),
                   "best_valid_rho": rhos[best], "fit_only": path[best]}


# --------------------------------------------------------------------------------------
# Global epistasis: an additive latent score through a fitted sigmoid
# --------------------------------------------------------------------------------------


class GlobalEpistasis(eqx.Module):
    """``y = low + span * sigmoid(bias + X @ weights)``: additive in a latent, then saturating.

    ``latent(X)`` is the additive score; ``__call__`` the prediction in the assay's units.
    """

    weights: Float[Array, " F"]
    bias: Float[Array, ""]
    low: Float[Array, ""]
    span: Float[Array, ""]

    def latent(self, X: Float[Array, "n F"]) -> Float[Array, " n"]:
        return self.bias + X @ self.weights

    def saturate(self, latent: Float[Array, " n"]) -> Float[Array, " n"]:
        """The fitted sigmoid: latent score -> prediction."""
        return self.low + self.span * jax.nn.sigmoid(latent)

    def __call__(self, X: Float[Array, "n F"]) -> Float[Array, " n"]:
        return self.saturate(self.latent(X))

    @classmethod
    def from_additive(cls, ridge: RidgeFit, y) -> "GlobalEpistasis":
        """A start that reproduces the additive fit to first order around its mean prediction."""
        w, b = ridge.raw_weights()
        y = np.asarray(y, np.float64)
        low, span = float(y.min()) - 0.05 * np.ptp(y), 1.1 * float(np.ptp(y))
        m = float(np.clip((y.mean() - low) / span, 0.05, 0.95))
        slope = 1.0 / (span * m * (1 - m))  # d latent / d y at the mean
        bias = np.log(m / (1 - m)) + slope * (b - y.mean())
        return cls(jnp.asarray(w * slope, jnp.float32), jnp.asarray(bias, jnp.float32),
                   jnp.asarray(low, jnp.float32), jnp.asarray(span, jnp.float32))


def _nonzeros(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nonzero columns and values, padded with (column 0, value 0): ``X @ w``
    is then ``(w[cols] * vals).sum(-1)``, a few gathers per row instead of a dense product."""
    nz = X != 0
    k = max(1, int(nz.sum(1).max()))
    order = np.argsort(~nz, axis=1, kind="stable")[:, :k]
    vals = np.take_along_axis(X, order, 1)
    return np.where(vals != 0, order, 0).astype(np.int32), vals.astype(np.float32)


@eqx.filter_jit
def _fit_global_epistasis(model: GlobalEpistasis, cols, vals, y, rows, lam, steps: int, learning_rate: float):
    opt = optax.adam(learning_rate)
    n = rows.sum()
    var = (rows * (y - (rows * y).sum() / n) ** 2).sum() / n

    def loss(m):
        predicted = m.saturate(m.bias + (m.weights[cols] * vals).sum(-1))
        # The ridge objective divided by n: squared error plus λ||w||², in units of var(y).
        return (rows * (predicted - y) ** 2).sum() / n / var + lam * jnp.sum(m.weights**2) / n

    def step(carry, _):
        m, state = carry
        value, grads = eqx.filter_value_and_grad(loss)(m)
        updates, state = opt.update(grads, state, m)
        return (eqx.apply_updates(m, updates), state), value

    (model, _), losses = jax.lax.scan(step, (model, opt.init(model)), None, length=steps)
    return model, losses


def fit_global_epistasis(X, y, start: GlobalEpistasis, *, rows=None, lam: float = 1.0, steps: int = 1500,
                         learning_rate: float = 0.02) -> tuple[GlobalEpistasis, np.ndarray]:
    """Fit every parameter by Adam from ``start`` (e.g. :meth:`GlobalEpistasis.from_additive`).

    Arguments:
        rows: the rows of ``X`` to fit (indices; default all). The others get weight 0,
            so fits on different rows of one ``X`` share one compiled program.
        lam: penalises the latent weights as in :func:`ridge_path` (in units of ``var(y)``).

    Returns:
        The fitted model and the loss at each step.
    """
    cols, vals = _nonzeros(np.asarray(X, np.float32))
    weight = np.ones(len(y), np.float32) if rows is None else np.zeros(len(y), np.float32)
    if rows is not None:
        weight[np.asarray(rows)] = 1.0
    model, losses = _fit_global_epistasis(start, cols, vals, jnp.asarray(y, jnp.float32), jnp.asarray(weight),
                                          jnp.float32(lam), steps, learning_rate)
    return model, np.asarray(losses)


def choose_global_epistasis(X, y, fit, valid, additive: RidgeFit, penalties=GLOBAL_EPISTASIS_PENALTIES, *,
                            steps: int = 800):
    """Fit :class:`GlobalEpistasis` on ``fit`` for every penalty, keep the best by validation
    Spearman ρ, and refit it (warm-started) on ``fit`` and ``valid`` together.

    Arguments:
        additive: a ridge fit on ``fit``; the starting point (:meth:`GlobalEpistasis.from_additive`).

    Returns:
        ``(final, details)`` as :func:`choose_ridge`.
    """
    X, y = np.asarray(X, np.float32), np.asarray(y)
    start = GlobalEpistasis.from_additive(additive, y[fit])
    fits = [fit_global_epistasis(X, y, start, rows=fit, lam=lam, steps=steps)[0] for lam in penalties]
    rhos = [spearman(np.asarray(m(jnp.asarray(X[valid]))), y[valid]) for m in fits]
    best = int(np.nanargmax(rhos))
    final, _ = fit_global_epistasis(X, y, fits[best], rows=np.concatenate([fit, valid]), lam=penalties[best],
                                    steps=steps)
    return final, {"lam": float(penalties[best]), "valid_rho": dict(zip(map(float, penalties), rhos)),
                   "best_valid_rho": rhos[best], "fit_only": fits[best]}


# --------------------------------------------------------------------------------------
# The language model: embeddings at the mutated sites and a linear head
# --------------------------------------------------------------------------------------


class VariantPredictor(Predictor):
    """A :class:`~workshop_protein.finetune.Predictor` for variants of one wild type.

    Its linear head reads two averages of the final embeddings, concatenated: over the
    **mutated sites** (the positions where the tokens differ from ``wild_type``; all
    residues for the wild type itself) and over **all residues**. The whole-sequence
    average alone dilutes a double mutant of a 55-residue protein to 2/55 of the vector;
    the sites alone miss how the rest of the protein's representation shifts. Trains and
    predicts with the functions of :mod:`workshop_protein.finetune`.
    """

    wild_type: Int[Array, " T"]

    @classmethod
    def from_probe(cls, backbone, wild_type: str, probe: RidgeFit | None = None, labels=None) -> "VariantPredictor":
        """A linear head set to a ridge fit on :func:`variant_embeddings` (zero when ``probe`` is None).

        Arguments:
            backbone: the ESM2 model.
            wild_type: the sequence the variants are mutants of.
            probe: a :class:`RidgeFit` on this backbone's :func:`variant_embeddings`.
            labels: the training labels (their mean and spread standardise the output).
        """
        labels = np.zeros(2) if labels is None else np.asarray(labels, np.float64)
        mean, std = float(np.mean(labels)), float(np.std(labels) + 1e-6)
        size = 2 * backbone.embed_size
        w, b = probe.raw_weights() if probe is not None else (np.zeros(size), mean)
        head = eqx.nn.MLP(size, 1, size, depth=0, key=jax.random.key(0))
        head = eqx.tree_at(lambda h: (h.layers[0].weight, h.layers[0].bias), head,
                           (jnp.asarray(w[None, :] / std, jnp.float32), jnp.asarray([(b - mean) / std], jnp.float32)))
        return cls(backbone, head, jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32), "regression",
                   jnp.asarray(tokenize(wild_type), jnp.int32))

    def embed(self, tokens: Int[Array, " T"]) -> Float[Array, " 2D"]:
        n = tokens.shape[0]
        wt = self.wild_type[:n] if self.wild_type.shape[0] >= n else jnp.pad(
            self.wild_type, (0, n - self.wild_type.shape[0]), constant_values=PAD)
        hidden = self.backbone(tokens).hidden
        residues = residue_mask(tokens)
        sites = residues & (tokens != wt)
        at_sites = masked_mean_pool(hidden, jnp.where(sites.any(), sites, residues))
        return jnp.concatenate([at_sites, masked_mean_pool(hidden, residues)])


@eqx.filter_jit
def _embed_batch(predictor: VariantPredictor, tokens):
    return jax.vmap(predictor.embed)(tokens)


def variant_embeddings(backbone, wild_type: str, sequences, *, batch_size: int = 32) -> np.ndarray:
    """``(n, 2D)`` frozen features of :class:`VariantPredictor`: [mean at mutated sites, mean over residues]."""
    from .finetune import LabelledSequences, make_batch

    data = LabelledSequences(tuple(sequences), np.zeros(len(sequences), np.float32), "regression")
    predictor = VariantPredictor.from_probe(backbone, wild_type)
    out = np.empty((len(sequences), 2 * backbone.embed_size), np.float32)
    for start in range(0, len(sequences), batch_size):
        idx = np.arange(start, min(start + batch_size, len(sequences)))
        tokens = make_batch(data, idx, rows=batch_size)[0]
        out[idx] = np.asarray(_embed_batch(predictor, tokens))[: len(idx)]
    return out


# --------------------------------------------------------------------------------------
# Comparing two methods on the same variants
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """``ρ(a) - ρ(b)`` on the same variants, with a paired percentile-bootstrap interval."""

    delta: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.delta:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n})"


def spearman_difference(a, b, measured, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Difference:
    """Spearman ρ of predictions ``a`` minus that of ``b`` against ``measured``, with an interval
    from resampling the variants (the same resample for both, so shared noise cancels)."""
    from scipy.stats import rankdata

    a, b, y = (np.asarray(v, np.float64) for v in (a, b, measured))
    n = len(y)

    def rho(p, t):
        p, t = rankdata(p, axis=-1), rankdata(t, axis=-1)
        p, t = p - p.mean(-1, keepdims=True), t - t.mean(-1, keepdims=True)
        den = np.sqrt((p * p).sum(-1) * (t * t).sum(-1))
        return np.where(den > 0, (p * t).sum(-1) / np.where(den > 0, den, 1.0), np.nan)

    delta = float(rho(a, y) - rho(b, y))
    rng = np.random.default_rng(seed)
    boot, chunk = [], max(1, 1_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        boot.append(rho(a[idx], y[idx]) - rho(b[idx], y[idx]))
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(np.concatenate(boot), [tail, 100 - tail])
    return Difference(delta, float(low), float(high), n, level)
