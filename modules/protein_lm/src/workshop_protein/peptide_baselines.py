"""Baselines for peptide classification that need no language model, and the metrics
to compare a fine-tuned model against them.

A fine-tuned language model earns its place only if it beats what counting residues
gives. The baselines here are logistic regressions on features a reader can write down:

* **amino-acid composition**: the fraction of each of the 20 amino acids (order-free);
* **composition + dipeptides**: the above and the fraction of each of the 400 adjacent
  pairs (a little order, the nearest neighbour only);
* **length**: the logarithm of the number of residues, one feature.

Each is an L2-regularised logistic regression on standardised features (fitted by
L-BFGS), the penalty chosen by k-fold cross-validation on the training set
alone (the validation set is never looked at until the end).

The metrics are the accuracy at probability 0.5 and the threshold-free ROC AUC, each
with a seeded bootstrap interval over the validation peptides, and a paired bootstrap
of the difference between two models scored on the same peptides.

Example::

    fitted = baselines(train.sequences, train.labels, valid.sequences)
    for name, b in fitted.items():
        print(name, score_summary(valid.labels, b["probabilities"]))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from jaxtyping import Float, Int

from .tokens import AMINO_ACIDS

__all__ = [
    "composition",
    "dipeptide_composition",
    "log_length",
    "FEATURES",
    "LogisticRegression",
    "fit_logistic_regression",
    "choose_l2",
    "baselines",
    "accuracy",
    "roc_auc",
    "bootstrap_interval",
    "paired_difference",
    "score_summary",
    "compare_with_baselines",
    "plot_comparison",
]

_INDEX = {a: i for i, a in enumerate(AMINO_ACIDS)}


def composition(sequences: Sequence[str]) -> Float[np.ndarray, "N 20"]:
    """The fraction of each amino acid (columns in :data:`~workshop_protein.tokens.AMINO_ACIDS` order)."""
    out = np.zeros((len(sequences), 20))
    for k, s in enumerate(sequences):
        np.add.at(out[k], [_INDEX[a] for a in s], 1.0)
        out[k] /= max(len(s), 1)
    return out


def dipeptide_composition(sequences: Sequence[str]) -> Float[np.ndarray, "N 420"]:
    """The composition and the fraction of each of the 400 adjacent pairs ``ab`` (column ``20 * a + b``)."""
    pairs = np.zeros((len(sequences), 400))
    for k, s in enumerate(sequences):
        ids = [_INDEX[a] for a in s]
        np.add.at(pairs[k], [20 * a + b for a, b in zip(ids, ids[1:])], 1.0)
        pairs[k] /= max(len(s) - 1, 1)
    return np.concatenate([composition(sequences), pairs], axis=1)


def log_length(sequences: Sequence[str]) -> Float[np.ndarray, "N 1"]:
    """``log(number of residues)``: what length alone tells."""
    return np.log([[max(len(s), 1)] for s in sequences])


#: The baselines, by the name figures and reports give them.
FEATURES: dict[str, Callable[[Sequence[str]], np.ndarray]] = {
    "amino-acid composition": composition,
    "composition + dipeptides": dipeptide_composition,
    "length only": log_length,
}


@dataclass(frozen=True)
class LogisticRegression:
    """A fitted logistic regression: ``P(y=1 | x) = sigmoid(((x - mean) / scale) · weight + bias)``."""

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: float
    l2: float

    def probability(self, features: Float[np.ndarray, "N F"]) -> Float[np.ndarray, " N"]:
        z = (np.asarray(features, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.weight + self.bias)))


def fit_logistic_regression(
    features: Float[np.ndarray, "N F"], labels: Int[np.ndarray, " N"], *, l2: float = 1.0
) -> LogisticRegression:
    """Maximise ``sum log P(y | x) - l2 / 2 * |weight|^2`` (the bias is not penalised)
    on standardised features. The objective is convex; L-BFGS (scipy) finds its optimum
    with matrix-vector products only, quick even for hundreds of features.

    Arguments:
        features: one row per example.
        labels: 0 or 1.
        l2: the penalty (on standardised features, so one value suits every feature).

    Returns:
        A :class:`LogisticRegression`.
    """
    from scipy.optimize import minimize

    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    if set(np.unique(y)) - {0.0, 1.0} or len(np.unique(y)) < 2:
        raise ValueError("labels must be 0 or 1, with both present")
    mean = x.mean(0)
    scale = np.maximum(x.std(0), 1e-6)  # a feature constant in training contributes nothing
    a = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)
    penalty = np.full(a.shape[1], l2)
    penalty[-1] = 0.0

    def loss_and_grad(w):
        z = a @ w
        loss = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(penalty * w * w)
        return loss, a.T @ (1.0 / (1.0 + np.exp(-z)) - y) + penalty * w

    w = minimize(loss_and_grad, np.zeros(a.shape[1]), jac=True, method="L-BFGS-B",
                 options={"maxiter": 2000, "gtol": 1e-7, "ftol": 1e-13}).x
    return LogisticRegression(mean, scale, w[:-1], float(w[-1]), float(l2))


def choose_l2(
    features: Float[np.ndarray, "N F"], labels: Int[np.ndarray, " N"], *,
    grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0), folds: int = 5, seed: int = 0,
) -> float:
    """The penalty of ``grid`` with the lowest cross-validated log-loss (stratified folds)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    fold = np.empty(len(labels), int)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold[idx] = np.arange(len(idx)) % folds
    losses = []
    for l2 in grid:
        total = 0.0
        for f in range(folds):
            fit = fit_logistic_regression(features[fold != f], labels[fold != f], l2=l2)
            p = np.clip(fit.probability(features[fold == f]), 1e-12, 1 - 1e-12)
            y = labels[fold == f]
            total -= float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
        losses.append(total)
    return float(grid[int(np.argmin(losses))])


def baselines(
    train_sequences: Sequence[str], train_labels: Int[np.ndarray, " N"], valid_sequences: Sequence[str],
    *, seed: int = 0, features: dict[str, Callable] | None = None,
) -> dict[str, dict]:
    """Fit every baseline of ``features`` (default :data:`FEATURES`) on the training
    peptides and predict the validation ones.

    Returns:
        ``{name: {"probabilities": (M,) P(class 1) on the validation peptides,
        "model": LogisticRegression, "features": int}}``.
    """
    out = {}
    for name, featurise in (features or FEATURES).items():
        x_train, x_valid = featurise(train_sequences), featurise(valid_sequences)
        l2 = choose_l2(x_train, train_labels, seed=seed)
        fit = fit_logistic_regression(x_train, train_labels, l2=l2)
        out[name] = {"probabilities": fit.probability(x_valid), "model": fit, "features": x_train.shape[1]}
    return out


# --------------------------------------------------------------------------------------
# Metrics with intervals
# --------------------------------------------------------------------------------------


def accuracy(labels, probabilities):
    """The fraction of examples on the right side of probability 0.5 (along the last axis)."""
    right = (np.asarray(probabilities) > 0.5) == (np.asarray(labels) == 1)
    return right.mean(-1)


def roc_auc(labels, scores):
    """The area under the ROC curve: the probability that a random positive scores
    higher than a random negative (ties count one half); 0.5 is chance. Along the last
    axis, so a stack of bootstrap resamples is scored at once."""
    from scipy.stats import rankdata

    positive = np.asarray(labels) == 1
    n_pos, n_neg = positive.sum(-1), (~positive).sum(-1)
    if np.any(n_pos == 0) or np.any(n_neg == 0):
        raise ValueError("the ROC AUC needs both classes")
    ranks = rankdata(np.asarray(scores, np.float64), axis=-1)
    return ((ranks * positive).sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _resamples(labels, n: int, seed: int) -> np.ndarray:
    """``(n, N)`` bootstrap indices, resampled within each class so both stay present."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    parts = [rng.choice(idx, size=(n, len(idx))) for idx in (np.flatnonzero(labels == c) for c in np.unique(labels))]
    return np.concatenate(parts, axis=1)


def bootstrap_interval(metric, labels, scores, *, n: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval of ``metric(labels, scores)`` over the examples
    (``metric`` works along the last axis, as :func:`accuracy` and :func:`roc_auc`)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    idx = _resamples(labels, n, seed)
    lo, hi = np.quantile(metric(labels[idx], scores[idx]), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_difference(metric, labels, scores_a, scores_b, *, n: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """``metric(a) - metric(b)`` on the same examples, with a paired bootstrap interval
    (both models scored on the same resamples)."""
    labels, a, b = np.asarray(labels), np.asarray(scores_a), np.asarray(scores_b)
    idx = _resamples(labels, n, seed)
    lo, hi = np.quantile(metric(labels[idx], a[idx]) - metric(labels[idx], b[idx]), [(1 - level) / 2, (1 + level) / 2])
    return {"difference": float(metric(labels, a) - metric(labels, b)), "interval": [float(lo), float(hi)]}


def score_summary(labels, probabilities, *, n: int = 2000, seed: int = 0) -> dict:
    """Accuracy and ROC AUC with 95% bootstrap intervals."""
    return {
        "accuracy": float(accuracy(labels, probabilities)),
        "accuracy_interval": list(bootstrap_interval(accuracy, labels, probabilities, n=n, seed=seed)),
        "roc_auc": float(roc_auc(labels, probabilities)),
        "roc_auc_interval": list(bootstrap_interval(roc_auc, labels, probabilities, n=n, seed=seed)),
    }


def plot_comparison(results: dict[str, dict], *, title: str, path=None):
    """Horizontal bars of accuracy and ROC AUC with their intervals, one row per model
    (``results``: ``{name: score_summary(...)}``, the first row drawn on top)."""
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.55 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, metric, chance in zip(axes, ("accuracy", "roc_auc"), (None, 0.5)):
        values = np.array([results[m][metric] for m in names])
        lo = np.array([results[m][f"{metric}_interval"][0] for m in names])
        hi = np.array([results[m][f"{metric}_interval"][1] for m in names])
        colours = ["tab:blue" if k == 0 else "tab:grey" for k in range(len(names))]
        ax.barh(y, values, xerr=[values - lo, hi - values], color=colours, capsize=3)
        for yy, v in zip(y, values):
            ax.text(0.02, yy, f"{v:.3f}", va="center", color="white", fontsize=8)
        if chance is not None:
            ax.axvline(chance, color="k", lw=0.8, ls=":")
        ax.set_xlim(0, 1)
        ax.set_xlabel("accuracy (p > 0.5)" if metric == "accuracy" else "ROC AUC (0.5: chance)")
    axes[0].set_yticks(y, names)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def compare_with_baselines(
    train_sequences: Sequence[str], train_labels, valid_sequences: Sequence[str], valid_labels,
    model_probabilities, model_name: str, *, reference: str = "amino-acid composition", seed: int = 0,
) -> dict:
    """Score a model's validation probabilities beside every baseline of :data:`FEATURES`
    fitted on the same training peptides.

    Returns:
        ``{"scores": {name: score_summary}`` (the model first), ``"baselines": {name:
        {"features", "l2"}}``, ``"model_minus_reference": {"roc_auc": paired_difference,
        "accuracy": paired_difference}``, ``"reference": reference}``.
    """
    fitted = baselines(train_sequences, train_labels, valid_sequences, seed=seed)
    scores = {model_name: score_summary(valid_labels, model_probabilities, seed=seed)}
    scores |= {name: score_summary(valid_labels, b["probabilities"], seed=seed) for name, b in fitted.items()}
    ref = fitted[reference]["probabilities"]
    return {
        "scores": scores,
        "baselines": {name: {"features": b["features"], "l2": b["model"].l2} for name, b in fitted.items()},
        "model_minus_reference": {
            "roc_auc": paired_difference(roc_auc, valid_labels, model_probabilities, ref, seed=seed),
            "accuracy": paired_difference(accuracy, valid_labels, model_probabilities, ref, seed=seed),
        },
        "reference": reference,
    }
