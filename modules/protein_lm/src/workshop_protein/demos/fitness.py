"""Demo of supervised fitness prediction on a deep mutational scan: ``workshop run protein gb1``.

Data: GB1 binding to IgG-Fc (Olson et al. 2014) as shipped, ``load_assay("gb1")``: 5,000
double mutants sampled from 530,737. The table has **no measured single mutants**, so
every method trains on doubles only. (``gb1_additive_singles`` holds singles *estimated*
from all 530,737 doubles, the test doubles among them; it is used only as a labelled
reference row and for the epistasis figure, never for training.)

Two test sets, each with its own training set, both seeded by ``ctx.seed``:

* **random**: 20% of the doubles (1,000), drawn uniformly; training: the other 4,000.
* **position**: 11 of the 55 positions drawn uniformly; test: every double mutating any
  of them (one or both sites); training: the doubles mutating none of them.

A validation set cut from each training set, of the same kind (20% of the training
doubles at random; or the training doubles touching 4 more positions), chooses every
regularisation, the fine-tuning checkpoint, and which language-model variant (frozen or
fine-tuned) is compared with the baselines. Each method is then refitted on the whole
training set (the fine-tuned model excepted: it trains on the rest of it). The test
doubles are used once, for the table.

Methods: additive one-hot ridge; the same plus amino-acid terms shared by all positions;
global epistasis (the additive score through a fitted sigmoid); the language model's
features (:class:`~workshop_protein.fitness.VariantPredictor`) with a ridge head
(frozen), then fine-tuned whole from that head; one-hot + amino-acid terms +
language-model features in one ridge. References that are not trained on the split: the
model's zero-shot masked marginal, BLOSUM62, and the sum of the estimated singles.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from workshop import RunContext

# preset -> doubles used (None: all), fine-tuning steps, batch size, evaluations during
# fine-tuning, bootstrap resamples, Adam steps of the global-epistasis fit
_SIZES = {
    "tiny": dict(doubles=400, steps=4, batch=16, evals=2, n_boot=200, ge_steps=200),
    "cpu": dict(doubles=None, steps=40, batch=32, evals=2, n_boot=1000, ge_steps=800),
    "gpu": dict(doubles=None, steps=600, batch=64, evals=6, n_boot=2000, ge_steps=1500),
    "full": dict(doubles=None, steps=1500, batch=128, evals=10, n_boot=2000, ge_steps=1500),
}
TEST_FRACTION = 0.2
HELD_OUT_POSITIONS = 11
VALID_FRACTION = 0.2
FINETUNE_LR = 1e-5  # peak, after a linear warm-up over the first third of the steps

# method -> (label, kind); "{model}" is filled with the model's name
METHODS = {
    "additive": ("additive: one-hot ridge", "baseline"),
    "additive_aa": ("additive + amino-acid terms, ridge", "baseline"),
    "global_epistasis": ("global epistasis: additive + sigmoid", "baseline"),
    "lm_frozen": ("{model} frozen + ridge head", "language model"),
    "lm_finetuned": ("{model} fine-tuned", "language model"),
    "additive_aa_lm": ("additive + amino-acid terms + {model} embeddings", "language model"),
    "zero_shot": ("{model} zero-shot masked marginal", "reference: no training"),
    "blosum62": ("BLOSUM62 sum", "reference: no training"),
    "estimated_singles": ("sum of singles fitted to all 530,737 doubles", "reference: uses the test doubles"),
}

BASELINES = ("additive", "additive_aa", "global_epistasis")


def _model(ctx: RunContext):
    from .lm import demo_model

    return demo_model(ctx)


def gb1(ctx: RunContext) -> dict[str, Any]:
    """GB1 fitness regression: additive and global-epistasis baselines, a language model
    frozen and fine-tuned, judged by Spearman's ρ on held-out doubles (random and by position)."""
    from ..dms import load_assay
    from ..fitness import mutated_positions, position_split, random_split, validation_split

    size = _SIZES.get(ctx.preset, _SIZES["cpu"])
    laps = _Laps()
    assay = load_assay("gb1")
    if size["doubles"] is not None and size["doubles"] < len(assay):
        keep = np.sort(np.random.default_rng(ctx.seed).choice(len(assay), size["doubles"], replace=False))
        assay = assay.subset(keep)
    wt, y, variants = assay.wild_type, assay.fitness, assay.variants
    model, info = _model(ctx)
    name = info.name
    ctx.log(f"GB1 (Olson et al. 2014): {len(assay)} double mutants of a {len(wt)}-residue domain, fitness = log2 "
            "enrichment for IgG-Fc binding relative to the wild type; the shipped table has no measured singles")
    ctx.log(f"embedding {len(assay)} mutant sequences with {name} (mean at the mutated sites ‖ mean over residues)")
    features = _features(assay, model, size["batch"])
    laps("features and zero-shot scores")
    steps = _finetune_steps(ctx, model, name, size["steps"])
    # One schedule object for both splits, so the compiled training step is reused.
    import optax

    schedule = optax.linear_schedule(0.0, FINETUNE_LR, max(1, steps // 3))

    splits = [random_split(len(assay), TEST_FRACTION, seed=ctx.seed),
              position_split(variants, wt, HELD_OUT_POSITIONS, seed=ctx.seed)]
    out_splits, results, predicted, choice = {}, {m: {} for m in METHODS}, {}, {}
    for split in splits:
        fit, valid = validation_split(split, variants, wt, fraction=VALID_FRACTION, seed=ctx.seed)
        preds, details = _fit_baselines_and_probe(features, y, fit, valid, size["ge_steps"])
        laps(f"{split.name}: baselines and probe")
        ctx.log(f"[{split.name}] fine-tuning all of {name} for {steps} steps on {len(fit)} doubles")
        preds["lm_finetuned"], details["lm_finetuned"] = _fine_tune(
            ctx, model, wt, features, fit, valid, split.test, details["lm_frozen"]["fit_only"], steps, schedule,
            size, ckpt=ctx.path(f"gb1_{split.name}_finetuned.eqx"))
        laps(f"{split.name}: fine-tuning")
        preds |= {"zero_shot": features.zero_shot, "blosum62": features.blosum, "estimated_singles": features.expected}
        for method, row in _score(preds, details, y, split.test, size["n_boot"], ctx.seed).items():
            results[method][split.name] = row
        choice[split.name] = _compare(preds, details, y, split.test, size["n_boot"], ctx.seed)
        predicted[split.name] = preds
        out_splits[split.name] = {
            "held_out": split.description, "train": len(split.train), "fit": len(fit), "valid": len(valid),
            "test": len(split.test), "held_out_positions": list(split.held_out_positions),
            "held_out_residues": [f"{wt[p - 1]}{p + assay.offset}" for p in split.held_out_positions],
        }
        if split.held_out_positions:
            every = sum(set(mutated_positions(variants[i], wt)) <= set(split.held_out_positions) for i in split.test)
            out_splits[split.name]["test_with_every_site_held_out"] = int(every)
        laps(f"{split.name}: metrics")

    verdicts = [_verdict(s, choice[s], results, name) for s in ("random", "position")]
    table = _table(results, out_splits, name)
    for line in table + [""] + verdicts:
        ctx.log(line)
    figures = {"summary": str(ctx.path("gb1.png")), "epistasis": str(ctx.path("gb1_epistasis.png"))}
    _plot_summary(results, predicted, splits, y, choice, name, ctx.path("gb1.png"))
    _plot_epistasis(features.expected, y, name, ctx.path("gb1_epistasis.png"))
    laps("figures")
    summary = {
        "model": name, "preset": ctx.preset, "seed": ctx.seed,
        "data": {"assay": "gb1", "doubles": len(assay), "measured_singles": 0,
                 "note": "the shipped GB1 table holds double mutants only (a seeded sample of 5,000 of 530,737), so "
                         "every method trains on doubles; the estimated singles (dms_gb1_additive_singles) were fitted "
                         "to all doubles, test doubles included, and are used only as a labelled reference and for "
                         "the epistasis figure"},
        "language_model_features": "final embeddings averaged over the mutated sites, concatenated with their average "
                                   "over all residues; linear head",
        "finetuning": {"steps": steps, "batch": size["batch"], "peak_learning_rate": FINETUNE_LR,
                       "warmup_steps": max(1, steps // 3), "start": "the frozen model's ridge head (fitted on fit)"},
        "validation": f"cut from each training set by fitness.validation_split(fraction={VALID_FRACTION}): "
                      "random split: "
                      "that fraction of the training doubles at random; position split: the training doubles touching "
                      "round(fraction * P / 2) more positions, P the positions left in training",
        "splits": out_splits,
        "methods": {m: {"label": METHODS[m][0].format(model=name), "kind": METHODS[m][1], **results[m]}
                    for m in METHODS},
        "language_model_vs_baselines": choice, "verdicts": verdicts, "table": table,
        "metric": "Spearman rho on the test doubles, percentile bootstrap 95% interval over test doubles "
                  f"({size['n_boot']} resamples); positions are not resampled",
        "seconds": laps.seconds, "figures": figures,
    }
    ctx.save_json("gb1.json", summary)
    return summary


class _Laps:
    """Wall-clock seconds of each stage, for the JSON."""

    def __init__(self):
        self.seconds, self._t = {}, time.monotonic()

    def __call__(self, stage: str):
        now = time.monotonic()
        self.seconds[stage], self._t = round(now - self._t, 1), now


@dataclass
class _Features:
    data: Any  # LabelledSequences of the mutant sequences
    X: np.ndarray  # one-hot sites
    XA: np.ndarray  # one-hot sites + amino-acid counts
    E: np.ndarray  # frozen language-model features
    zero_shot: np.ndarray
    blosum: np.ndarray
    expected: np.ndarray  # s(a) + s(b) from the singles estimated on all doubles


def _features(assay, model, batch: int) -> _Features:
    from ..baselines import blosum62_table
    from ..dms import load_assay
    from ..finetune import LabelledSequences
    from ..fitness import amino_acid_counts, one_hot_sites, variant_embeddings
    from ..mutations import masked_marginal_scores, score_mutations

    wt, variants = assay.wild_type, assay.variants
    sequences = [assay.mutant_sequence(v) for v in variants]
    X = one_hot_sites(variants, wt)
    return _Features(
        data=LabelledSequences(tuple(sequences), assay.fitness.astype(np.float32), "regression",
                               label_name="GB1 fitness"),
        X=X, XA=np.hstack([X, amino_acid_counts(variants, wt)]),
        E=variant_embeddings(model, wt, sequences, batch_size=batch),
        zero_shot=score_mutations(masked_marginal_scores(model, wt), wt, variants),
        blosum=score_mutations(blosum62_table(wt), wt, variants),
        expected=score_mutations(load_assay("gb1_additive_singles").single_table(), wt, variants),
    )


def _finetune_steps(ctx: RunContext, model, name: str, steps: int) -> int:
    """At the cpu preset a model much larger than the embedded one (0.8M) gets fewer steps."""
    from ..models import count_parameters

    millions = count_parameters(model) / 1e6
    if ctx.preset != "cpu" or millions <= 2:
        return steps
    fewer = max(10, int(steps * 2 / millions))
    ctx.log(f"{name} has {millions:.0f}M parameters: fine-tuning {fewer} steps instead of {steps} on a CPU")
    return fewer


def _fit_baselines_and_probe(f: _Features, y, fit, valid, ge_steps: int):
    """Every closed-form (and the global-epistasis) fit: predictions for all variants, and details."""
    import jax.numpy as jnp

    from ..fitness import choose_global_epistasis, choose_ridge

    preds, details = {}, {}
    ridge, details["additive"] = choose_ridge(f.X, y, fit, valid)
    preds["additive"] = ridge.predict(f.X)
    ridge_aa, details["additive_aa"] = choose_ridge(f.XA, y, fit, valid)
    preds["additive_aa"] = ridge_aa.predict(f.XA)
    ge, details["global_epistasis"] = choose_global_epistasis(f.X, y, fit, valid, details["additive"]["fit_only"],
                                                              steps=ge_steps)
    preds["global_epistasis"] = np.asarray(ge(jnp.asarray(f.X)))
    probe, details["lm_frozen"] = choose_ridge(f.E, y, fit, valid, standardise=True)
    preds["lm_frozen"] = probe.predict(f.E)
    XAE = np.hstack([f.XA, f.E])
    embeddings_only = np.r_[np.zeros(f.XA.shape[1], bool), np.ones(f.E.shape[1], bool)]
    both, details["additive_aa_lm"] = choose_ridge(XAE, y, fit, valid, standardise=embeddings_only)
    preds["additive_aa_lm"] = both.predict(XAE)
    return preds, details


def _fine_tune(ctx, model, wt, f: _Features, fit, valid, test, probe, steps, schedule, size, *, ckpt):
    """Fine-tune everything from the frozen model's head (fitted on ``fit``: ``valid`` stays unseen
    until it picks the checkpoint). Returns test predictions (NaN elsewhere) and details."""
    from ..finetune import load_checkpoint, predictions, train
    from ..fitness import VariantPredictor

    y = f.data.labels
    start = VariantPredictor.from_probe(model, wt, probe, y[fit])
    _, history = train(start, f.data.subset(fit), f.data.subset(valid), mode="full", steps=steps,
                       batch_size=size["batch"], learning_rate=schedule, eval_every=max(1, steps // size["evals"]),
                       checkpoint=ckpt, seed=ctx.seed, log=ctx.log)
    tuned = load_checkpoint(ckpt, start)
    best = max(history.valid, key=lambda r: r["spearman"])
    out = np.full(len(y), np.nan)
    out[test] = predictions(tuned, f.data.subset(test), batch_size=size["batch"])
    return out, {"best_valid_rho": best["spearman"], "step": best["step"], "steps": steps,
                 "valid_rho_history": [(r["step"], r["spearman"]) for r in history.valid], "checkpoint": str(ckpt)}


def _score(preds, details, y, test, n_boot: int, seed: int) -> dict[str, dict]:
    from ..zero_shot import spearman_bootstrap

    rows = {}
    for method, p in preds.items():
        c = spearman_bootstrap(p[test], y[test], n_boot=n_boot, seed=seed)
        rows[method] = {"rho": c.rho, "low": c.low, "high": c.high, "n": c.n}
        rows[method] |= {k: v for k, v in details.get(method, {}).items() if k != "fit_only"}
    return rows


def _compare(preds, details, y, test, n_boot: int, seed: int) -> dict:
    """The language model (frozen or fine-tuned, whichever validates better) against the additive
    baseline and against the baseline that validates best, by paired bootstrap."""
    from ..fitness import spearman_difference

    lm = max(("lm_frozen", "lm_finetuned"), key=lambda m: details[m]["best_valid_rho"])
    strongest = max(BASELINES, key=lambda m: details[m]["best_valid_rho"])
    out = {"language_model": lm, "strongest_baseline": strongest}
    for key, other in (("minus_additive", "additive"), ("minus_strongest_baseline", strongest)):
        d = spearman_difference(preds[lm][test], preds[other][test], y[test], n_boot=n_boot, seed=seed)
        out[key] = {"delta": d.delta, "low": d.low, "high": d.high}
    return out


def _verdict(split: str, c: dict, results: dict, name: str) -> str:
    lm = results[c["language_model"]][split]
    which = "fine-tuned" if c["language_model"] == "lm_finetuned" else "frozen, ridge head"
    text = f"{split} split: {name} ({which}, chosen on validation) ρ {lm['rho']:.3f}."
    for key, other in (("minus_additive", "additive"), ("minus_strongest_baseline", c["strongest_baseline"])):
        if key == "minus_strongest_baseline" and other == "additive":
            break
        d, label = c[key], METHODS[other][0]
        text += (f" Against {label} ({results[other][split]['rho']:.3f}): {d['delta']:+.3f} "
                 f"[{d['low']:+.3f}, {d['high']:+.3f}]")
        if d["low"] > 0:
            text += ", the language model is better."
        elif d["high"] < 0:
            text += f", the language model does NOT beat it: worse by {-d['delta']:.3f}."
        else:
            text += ", the language model does not beat it (the difference is within the noise)."
    return text + " (differences: paired bootstrap 95% intervals)"


def _table(results: dict, splits: dict, name: str) -> list[str]:
    cols = [f"{s} split (test n={splits[s]['test']})" for s in ("random", "position")]
    width = max(len(METHODS[m][0].format(model=name)) for m in METHODS) + 2
    lines = [f"GB1 fitness, model {name}: Spearman ρ [95% bootstrap interval] on held-out doubles",
             f"{'method':<{width}}{cols[0]:<32}{cols[1]}"]
    for m, (label, kind) in METHODS.items():
        rows = (results[m][s] for s in ("random", "position"))
        cells = [f"{r['rho']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]" for r in rows]
        mark = " *" if kind.startswith("reference") else ""
        lines.append(f"{label.format(model=name) + mark:<{width}}{cells[0]:<32}{cells[1]}")
    lines.append("* reference, not trained on the split: zero-shot scores, "
                 "or fitted to all doubles (test doubles included)")
    return lines


def _plot_summary(results, predicted, splits, y, choice, name, path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 8.5))
    grid = fig.add_gridspec(2, 4, height_ratios=[1.1, 1])
    ax = fig.add_subplot(grid[0, :])
    methods = list(METHODS)
    width = 0.8 / len(methods)
    colours = plt.get_cmap("tab10").colors
    for k, m in enumerate(methods):
        rows = [results[m][s.name] for s in splits]
        xs = np.arange(len(splits)) + (k - (len(methods) - 1) / 2) * width
        err = [[r["rho"] - r["low"] for r in rows], [r["high"] - r["rho"] for r in rows]]
        ref = METHODS[m][1].startswith("reference")
        ax.bar(xs, [r["rho"] for r in rows], width, yerr=err, capsize=2, color=colours[k % 10],
               hatch="//" if ref else None, alpha=0.55 if ref else 1.0,
               label=METHODS[m][0].format(model=name) + (" (reference)" if ref else ""))
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(splits)), [f"{s.name} split: {len(s.test)} held-out doubles" for s in splits])
    ax.set_ylabel("Spearman ρ (test doubles)")
    ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    ax.set_title(f"GB1 fitness regression with {name}: Spearman ρ and 95% bootstrap intervals", fontsize=10)
    for j, s in enumerate(splits):
        lm = choice[s.name]["language_model"]
        for i, m in enumerate((lm, "additive")):
            a = fig.add_subplot(grid[1, 2 * j + i])
            p = predicted[s.name][m][s.test]
            a.scatter(p, y[s.test], s=3, alpha=0.35, color=colours[methods.index(m) % 10], rasterized=True)
            a.set_xlabel(f"predicted: {METHODS[m][0].format(model=name)}", fontsize=7)
            a.set_ylabel("measured fitness" if i == 0 else "", fontsize=8)
            r = results[m][s.name]
            a.set_title(f"{s.name} split, {name if m.startswith('lm') else 'additive'}: ρ {r['rho']:.3f}", fontsize=8)
            a.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_epistasis(expected, measured, name, path):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..zero_shot import spearman

    fig, ax = plt.subplots(figsize=(5.8, 5))
    ax.scatter(expected, measured, s=3, alpha=0.3, color="tab:blue", rasterized=True, label="double mutants")
    lo, hi = float(min(expected.min(), measured.min())), float(max(expected.max(), measured.max()))
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, label="measured = additive expectation")
    edges = np.quantile(expected, np.linspace(0, 1, 21))
    mid = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    med = [np.median(measured[(expected >= a) & (expected <= b)]) for a, b in zip(edges[:-1], edges[1:])]
    ax.plot(mid, med, color="tab:red", lw=2, label="median of measured, in 20 bins")
    ax.set_xlabel("additive expectation s(a) + s(b)\n"
                  "(singles estimated from all 530,737 doubles; none was measured alone)")
    ax.set_ylabel("measured double-mutant fitness (log2 enrichment)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"GB1 epistasis in the data (no model; this run used {name})\n"
                 f"{len(measured)} doubles, Spearman ρ {spearman(expected, measured):.3f}; "
                 f"{np.mean(measured < expected):.0%} below the expectation", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
