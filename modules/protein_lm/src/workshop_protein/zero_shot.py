"""Zero-shot mutation scores judged against real deep mutational scans.

For an assay (:class:`~workshop_protein.dms.DMSAssay`) and a masked language model,
every variant gets a score by each method below, with no training on the assay; the
scores are then compared with the measured fitness by Spearman's ρ, with a seeded
percentile-bootstrap 95% interval, over all variants and over singles and doubles
apart.

Model scores (log-ratios in nats; multi-mutants additive over their sites):

* ``masked_marginal``: ``Σ_sites log p(mt | x_{-i}) - log p(wt | x_{-i})``, position
  ``i`` masked in the wild type (L passes for the whole assay).
* ``wildtype_marginal``: the same from one unmasked pass of the wild type.
* ``pseudo_likelihood``: ``PLL(mutant) - PLL(wild type)`` with
  ``PLL(s) = Σ_j log p(s_j | s_{-j})`` over *every* position ``j``, each masked alone
  (20 amino acids renormalised). Exact, not additive: the mutation also changes the
  context of every other position. It costs L masked passes per distinct mutant
  sequence, so :func:`score_assay` computes it only for the variants it is given
  (``pll_indices``) and leaves NaN elsewhere.

Baselines on the same variants (:mod:`~workshop_protein.baselines`, additive too):
``blosum62`` (``Σ B[wt, mt]``) and ``aa_frequency`` (``Σ log f(mt) - log f(wt)``).

Example::

    assay = load_assay("abeta42")
    model, info = load_model()
    scores = score_assay(model, assay)
    for row in evaluate(scores, assay):
        print(row["split"], row["method"], round(row["rho"], 3))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import guards
from .baselines import blosum62_table, frequency_table
from .dms import DMSAssay
from .mlm import masked_marginals
from .mutations import masked_marginal_scores, score_mutations, wildtype_marginal_scores
from .tokens import AMINO_ACIDS

__all__ = [
    "MODEL_METHODS",
    "BASELINE_METHODS",
    "METHOD_LABELS",
    "Correlation",
    "score_tables",
    "pseudo_log_likelihoods",
    "pseudo_likelihood_scores",
    "score_assay",
    "sample_variants",
    "spearman",
    "spearman_bootstrap",
    "evaluate",
    "plot_singles_heatmaps",
    "plot_method_bars",
]

MODEL_METHODS = ("masked_marginal", "wildtype_marginal", "pseudo_likelihood")
BASELINE_METHODS = ("blosum62", "aa_frequency")
METHOD_LABELS = {
    "masked_marginal": "masked marginal",
    "wildtype_marginal": "wild-type marginal",
    "pseudo_likelihood": "pseudo-likelihood",
    "blosum62": "BLOSUM62",
    "aa_frequency": "aa frequency",
}


def score_tables(model, wild_type: str, *, batch_size: int = 32) -> dict[str, np.ndarray]:
    """The ``(L, 20)`` single-substitution tables of the additive methods (baselines need no model: ``model=None``)."""
    tables = {"blosum62": blosum62_table(wild_type), "aa_frequency": frequency_table(wild_type)}
    if model is not None:
        tables["masked_marginal"] = masked_marginal_scores(model, wild_type, batch_size=batch_size)
        tables["wildtype_marginal"] = wildtype_marginal_scores(model, wild_type)
    return tables


def pseudo_log_likelihoods(model, seqs, *, batch_size: int = 32) -> np.ndarray:
    """``Σ_j log p(s_j | s_{-j})`` of each sequence (each position masked alone; L passes per sequence)."""
    out = np.empty(len(seqs))
    for k, s in enumerate(seqs):
        logp = masked_marginals(model, s, batch_size=batch_size)
        out[k] = logp[np.arange(len(s)), [AMINO_ACIDS.index(a) for a in s]].sum()
    return out


def pseudo_likelihood_scores(model, assay: DMSAssay, indices, *, batch_size: int = 32) -> np.ndarray:
    """``PLL(mutant) - PLL(wild type)`` for the variants at ``indices``; NaN for every other variant."""
    indices = np.asarray(indices, dtype=np.int64)
    out = np.full(len(assay), np.nan)
    if indices.size:
        seqs = [assay.mutant_sequence(assay.variants[i]) for i in indices]
        wt = pseudo_log_likelihoods(model, [assay.wild_type], batch_size=batch_size)[0]
        out[indices] = pseudo_log_likelihoods(model, seqs, batch_size=batch_size) - wt
    return out


def score_assay(model, assay: DMSAssay, *, pll_indices=(), batch_size: int = 32,
                tables: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Scores of every variant by every method: ``{method: (len(assay),) array}``.

    Arguments:
        model: an ESM2 (esm2quinox), or ``None`` for the baselines alone.
        assay: the assay.
        pll_indices: the variants that get a pseudo-likelihood score (the others: NaN);
            empty: no ``pseudo_likelihood`` entry.
        batch_size: masked copies evaluated together.
        tables: ``score_tables(model, assay.wild_type)`` when already computed (two
            assays of one wild type share them); default: computed here.
    """
    if tables is None:
        tables = score_tables(model, assay.wild_type, batch_size=batch_size)
    scores = {m: score_mutations(t, assay.wild_type, assay.variants) for m, t in tables.items()}
    if model is not None and len(pll_indices):
        scores["pseudo_likelihood"] = pseudo_likelihood_scores(model, assay, pll_indices, batch_size=batch_size)
    order = [*MODEL_METHODS, *BASELINE_METHODS]
    return {m: scores[m] for m in order if m in scores}


def sample_variants(assay: DMSAssay, k: int, seed: int) -> np.ndarray:
    """Indices of up to ``k`` singles and ``k`` doubles of ``assay``, drawn with ``default_rng(seed)``, sorted.

    The same seed gives the same variants; a split with at most ``k`` variants is kept whole.
    """
    k = guards.count("k", k)
    rng = np.random.default_rng(seed)
    picked = []
    for n in (1, 2):
        pool = np.flatnonzero(assay.n_mutations == n)
        picked.append(rng.choice(pool, size=min(k, len(pool)), replace=False))
    return np.sort(np.concatenate(picked))


# --- Spearman's ρ with a bootstrap interval --------------------------------------------


def _ranks(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a)  # average ranks for ties


def _pearson(a: np.ndarray, b: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation along the last axis, weighted by ``w`` (counts) when given."""
    if w is None:
        w = np.ones_like(a)
    total = w.sum(axis=-1)
    wa, wb = w * a, w * b
    sa, sb = wa.sum(axis=-1), wb.sum(axis=-1)
    saa, sbb = np.einsum("...i,...i->...", wa, a), np.einsum("...i,...i->...", wb, b)
    cov = np.einsum("...i,...i->...", wa, b) - sa * sb / total
    var_a, var_b = saa - sa * sa / total, sbb - sb * sb / total
    constant = (var_a <= 1e-9 * saa) | (var_b <= 1e-9 * sbb)  # zero up to rounding
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(constant, np.nan, cov / np.sqrt(np.where(constant, 1, var_a * var_b)))


def spearman(x, y) -> float:
    """Spearman's ρ over the pairs where both are finite (NaN when either is constant)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(_pearson(_ranks(x[ok]), _ranks(y[ok])))


def _resample_ranks(v: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Average ranks of every item within resamples that hold item ``i`` ``counts[:, i]`` times.

    In a resample, the items tied with ``v[i]`` (copies included) share the ranks after
    all smaller items: rank = (number of smaller items) + (size of the tie group + 1) / 2.
    Sorting once and cumulative sums give that for all resamples in O(n) each, instead
    of sorting every resample.
    """
    order = np.argsort(v, kind="stable")
    _, group, group_sizes = np.unique(v[order], return_inverse=True, return_counts=True)
    ends = np.cumsum(group_sizes) - 1
    below_end = np.cumsum(counts[:, order], axis=1)[:, ends]  # items up to the end of each group
    size = np.diff(below_end, axis=1, prepend=0)
    rank_sorted = (below_end - size + (size + 1) / 2)[:, group]
    ranks = np.empty_like(rank_sorted)
    ranks[:, order] = rank_sorted
    return ranks


@dataclass(frozen=True)
class Correlation:
    """Spearman's ρ and its percentile-bootstrap interval over ``n`` pairs."""

    rho: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.rho:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n})"


def spearman_bootstrap(x, y, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> Correlation:
    """Spearman's ρ with a percentile bootstrap interval (pairs resampled with replacement, re-ranked each time).

    Each resample draws ``n`` pair indices with ``numpy.random.default_rng(seed).integers``
    and computes Spearman's ρ of the resampled pairs (average ranks for ties, copies
    counted), as :func:`spearman` would on ``x[idx], y[idx]``.

    Arguments:
        x, y: paired values; pairs with a non-finite member are left out.
        n_boot: bootstrap resamples.
        seed: the seed; the same seed gives the same interval.
        level: the interval's coverage.
    """
    n_boot, level = guards.count("n_boot", n_boot), guards.fraction("level", level)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x and y must be paired 1-D values of one length, got shapes {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    rho = spearman(x, y)
    if n < 3:
        return Correlation(rho, float("nan"), float("nan"), n, level)
    rng = np.random.default_rng(seed)
    boot = []
    chunk = max(1, 1_000_000 // n)  # bound the memory of one (chunk, n) block
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))
        counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n).astype(float)
        boot.append(_pearson(_resample_ranks(x, counts), _resample_ranks(y, counts), counts))
    boot = np.concatenate(boot)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(boot, [tail, 100 - tail])
    return Correlation(rho, float(low), float(high), n, level)


def evaluate(scores: dict[str, np.ndarray], assay: DMSAssay, *, n_boot: int = 1000, seed: int = 0,
             min_variants: int = 10) -> list[dict]:
    """Spearman's ρ of every method against the measured fitness, over all variants, singles and doubles.

    A split with fewer than ``min_variants`` scored variants is left out (e.g. the singles
    of an assay of doubles). Returns one dict per (split, method): ``assay``, ``split``,
    ``method``, ``n``, ``rho``, ``low``, ``high``.
    """
    splits = {"all": np.ones(len(assay), bool), "singles": assay.n_mutations == 1, "doubles": assay.n_mutations == 2}
    rows = []
    for split, mask in splits.items():
        if split == "all" and len(np.unique(assay.n_mutations)) == 1:
            continue  # the same variants as the one non-empty split
        for method, s in scores.items():
            keep = mask & np.isfinite(s)
            if keep.sum() < min_variants:
                continue
            c = spearman_bootstrap(s[keep], assay.fitness[keep], n_boot=n_boot, seed=seed)
            rows.append({"assay": assay.name, "split": split, "method": method, "n": c.n,
                         "rho": c.rho, "low": c.low, "high": c.high})
    return rows


# --- Figures ---------------------------------------------------------------------------


def _heatmap(ax, table, assay: DMSAssay, title: str, label: str):
    finite = table[np.isfinite(table)]
    lim = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    im = ax.imshow(table, aspect="auto", cmap="RdBu", vmin=-(lim or 1.0), vmax=lim or 1.0, interpolation="nearest")
    ax.set_facecolor("0.85")  # grey: not measured
    ax.set_xticks(range(20), list(AMINO_ACIDS), fontsize=6)
    n = len(assay.wild_type)
    step = max(1, n // 30)
    ax.set_yticks(range(0, n, step), [f"{assay.wild_type[i]}{i + 1 + assay.offset}" for i in range(0, n, step)],
                  fontsize=6)
    ax.scatter([AMINO_ACIDS.index(a) for a in assay.wild_type], range(n), marker="s", s=6, c="black")
    ax.set_xlabel("mutant amino acid")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(im, ax=ax, shrink=0.6, label=label)


def plot_singles_heatmaps(assay: DMSAssay, table: np.ndarray, path=None, *, model_name: str,
                          method: str = "masked_marginal", kind: str = "measured"):
    """Measured single-mutant fitness and a model's ``(L, 20)`` scores side by side (positions × amino acids).

    Grey cells were not measured; black squares mark the wild type. The title names the
    model and gives Spearman's ρ on the measured singles. ``kind`` names what the left
    panel shows (e.g. ``"estimated (not measured)"`` for GB1's singles fitted to doubles).
    Returns the figure (saved to ``path`` and closed when given).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    singles = assay.singles()
    if len(singles) == 0:
        raise ValueError(f"{assay.name} has no single mutants to draw; try an assay with singles")
    measured = singles.single_table()
    predicted = np.asarray(table, np.float64)
    rho = spearman(predicted[np.isfinite(measured)], measured[np.isfinite(measured)])
    n = len(assay.wild_type)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, max(4.0, 0.11 * n + 1.8)), sharey=True)
    _heatmap(left, measured, assay, f"{kind}: {assay.name}", "fitness (0: wild type)")
    left.set_ylabel("wild-type residue (paper numbering)")
    _heatmap(right, predicted, assay, f"{model_name}: {METHOD_LABELS.get(method, method)}",
             "log p(mt) - log p(wt)" if method in MODEL_METHODS else "score")
    fig.suptitle(f"{assay.title}\nmodel {model_name}, {METHOD_LABELS.get(method, method)}: "
                 f"Spearman ρ = {rho:.3f} on {len(singles)} {kind} singles", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig


def plot_method_bars(rows: list[dict], path=None, *, model_name: str):
    """Spearman's ρ of every method (bars) per assay and split (groups), with the bootstrap intervals.

    ``rows`` as returned by :func:`evaluate`. Returns the figure (saved and closed when ``path`` is given).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys((r["assay"], r["split"]) for r in rows))
    present = {r["method"] for r in rows}
    methods = [m for m in METHOD_LABELS if m in present] + sorted(present - set(METHOD_LABELS))
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups) + 2), 4))
    for k, method in enumerate(methods):
        xs, ys, err = [], [], [[], []]
        for g, key in enumerate(groups):
            for r in rows:
                if (r["assay"], r["split"]) == key and r["method"] == method:
                    xs.append(g + (k - (len(methods) - 1) / 2) * width)
                    ys.append(r["rho"])
                    err[0].append(r["rho"] - r["low"])
                    err[1].append(r["high"] - r["rho"])
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=METHOD_LABELS.get(method, method))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(groups)), [f"{a}\n{s}" for a, s in groups], fontsize=8)
    ax.set_ylabel("Spearman ρ vs measured fitness")
    ax.legend(fontsize=7, ncol=min(5, len(methods)), loc="upper center", bbox_to_anchor=(0.5, -0.15), frameon=False)
    ax.set_title(f"Zero-shot scores against deep mutational scans, model {model_name} (95% bootstrap intervals)",
                 fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return fig
