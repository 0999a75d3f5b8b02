"""Zero-shot mutation scores against real deep mutational scans: ``workshop run protein dms``.

For the three measured scans shipped with the module (GB1 binding to IgG-Fc, Aβ42
nucleation, TDP-43 toxicity; ``datasets/protein_dms.md``) and the demo's model
(``--model`` or the preset's; offline with nothing cached, the embedded model, and the
first line says so), Spearman's ρ between the measured values and each zero-shot score,
with seeded percentile-bootstrap 95% intervals, singles and doubles apart:

* the model's **masked-marginal** and **wild-type-marginal** scores, on every variant;
* the model's **pseudo-likelihood** (L masked passes per variant, so only a sample):
  a seeded sample of ``pll_variants`` singles and as many doubles per assay, made
  smaller when the pseudo-likelihood's time allowance would not hold it (the demo
  times the wild type's L passes first); every other method is scored on the same
  sample, in a table of its own;
* the baselines that need no model, **BLOSUM62** and **amino-acid frequency**, on the
  same variants.

GB1's file holds doubles only; its single effects *estimated* from all doubles (not
measured) are scored too and marked so wherever they appear.

The table is printed as it comes out. Where the model loses to BLOSUM62 or correlates
negatively, the demo says so, with the likely reason it measures: how closely the
model's scores follow the amino-acid-frequency baseline. For Aβ42 and TDP-43 a higher
value means more aggregation or toxicity, not a fitter protein.

Sizes by preset (``_SIZES``): at ``tiny`` every assay is cut to a seeded sample of 150
singles and 150 doubles, with 200 bootstrap resamples and a pseudo-likelihood sample
of 6 + 6 (seconds, most of it compiling); from ``cpu`` on, every shipped variant and
at least 1,000 resamples; at ``cpu`` a pseudo-likelihood sample of up to 48 + 48 per
assay within 75 s in all (about two minutes in all on two CPU cores).

Writes ``dms.json``, ``dms_bars.png`` (every method, all variants), ``dms_pll_sample_bars.png``
(every method on the pseudo-likelihood sample) and ``dms_<assay>_heatmaps.png``
(measured and predicted singles side by side) to ``ctx.out``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workshop import RunContext

# preset -> variants per split (None: all), bootstrap resamples, pseudo-likelihood
# singles (and as many doubles) per assay, seconds allowed for all pseudo-likelihoods
_SIZES = {
    "tiny": dict(variants=150, n_boot=200, pll_variants=6, pll_seconds=20),
    "cpu": dict(variants=None, n_boot=1000, pll_variants=48, pll_seconds=75),
    "gpu": dict(variants=None, n_boot=1000, pll_variants=128, pll_seconds=180),
    "full": dict(variants=None, n_boot=2000, pll_variants=256, pll_seconds=400),
}
#: GB1's single effects estimated from its doubles: scored, but never called measured.
ESTIMATED = "gb1_additive_singles"
#: What a higher value means where it is not fitness (datasets/protein_dms.md).
NOT_FITNESS = {"abeta42": "faster amyloid nucleation", "tdp43": "more toxicity to yeast"}
#: The model methods scored on every variant (the pseudo-likelihood only on a sample).
EVERYWHERE = ("masked_marginal", "wildtype_marginal")
_MIN_PLL = 5  # fewer pseudo-likelihood variants per split than this: not worth a ρ
_BATCH = 32  # masked copies evaluated together


def _cell(row: dict | None) -> str:
    return f"{row['rho']:+.3f} [{row['low']:+.2f},{row['high']:+.2f}]" if row else "—"


def format_table(rows: list[dict], methods, *, labels: dict[str, str]) -> list[str]:
    """Lines of a table: one row per (assay, split), one column per method, ``ρ [interval]``."""
    from ..zero_shot import METHOD_LABELS

    keys = list(dict.fromkeys((r["assay"], r["split"]) for r in rows))
    width = 21
    lines = [f"{'assay / split':30s} {'n':>5s}  " + " ".join(f"{METHOD_LABELS[m]:<{width}s}" for m in methods)]
    for key in keys:
        found = {r["method"]: r for r in rows if (r["assay"], r["split"]) == key}
        n = max(r["n"] for r in found.values())
        name = f"{labels.get(key[0], key[0])} {key[1]}"
        lines.append(f"{name:30s} {n:5d}  " + " ".join(f"{_cell(found.get(m)):<{width}s}" for m in methods))
    return lines


def verdicts(rows: list[dict]) -> list[dict]:
    """For every measured (assay, split) and model method: ahead of or behind BLOSUM62, and the sign.

    ``behind``/``ahead`` compare the point estimates; ``clearly`` says the two bootstrap
    intervals do not overlap; ``negative`` says the whole interval is below 0.
    """
    out = []
    for assay, split in dict.fromkeys((r["assay"], r["split"]) for r in rows):
        if assay == ESTIMATED or split == "all":
            continue
        found = {r["method"]: r for r in rows if (r["assay"], r["split"]) == (assay, split)}
        base = found.get("blosum62")
        for method in EVERYWHERE:
            r = found.get(method)
            if r is None or base is None:
                continue
            behind = r["rho"] < base["rho"]
            clearly = r["high"] < base["low"] if behind else r["low"] > base["high"]
            out.append({"assay": assay, "split": split, "method": method, "rho": r["rho"], "blosum62": base["rho"],
                        "behind_blosum62": bool(behind), "clearly": bool(clearly), "negative": bool(r["high"] < 0)})
    return out


def _verdict_line(v: dict) -> str:
    from ..zero_shot import METHOD_LABELS

    side = "loses to" if v["behind_blosum62"] else "beats"
    how = "the intervals do not overlap" if v["clearly"] else "within the intervals"
    text = f"  {v['assay']} {v['split']}, {METHOD_LABELS[v['method']]} {v['rho']:+.3f}: {side} BLOSUM62 " \
           f"({v['blosum62']:+.3f}; {how})"
    if v["negative"]:
        text += "; correlates negatively (the whole interval is below 0)"
    elif v["rho"] < 0:
        text += "; negative, but its interval reaches 0"
    return text


def _pll_plan(model, assay, k_max: int, allowance: float, seed: int, batch_size: int) -> tuple[np.ndarray, str]:
    """The sample that gets a pseudo-likelihood, sized to ``allowance`` seconds from one timed wild type."""
    from ..zero_shot import pseudo_log_likelihoods, sample_variants

    t0 = time.monotonic()
    pseudo_log_likelihoods(model, [assay.wild_type], batch_size=batch_size)
    per_sequence = time.monotonic() - t0
    splits = int((assay.n_mutations == 1).any()) + int((assay.n_mutations == 2).any())
    k = min(k_max, int(allowance / max(per_sequence, 1e-3)) // max(splits, 1) - 1)
    if k < _MIN_PLL:
        return np.array([], np.int64), (f"skipped: one pseudo-likelihood takes {per_sequence:.2f} s here and "
                                        f"{allowance:.0f} s are left for it")
    idx = sample_variants(assay, k, seed)
    cut = "" if k == k_max else f" (cut from {k_max} to fit {allowance:.0f} s)"
    return idx, f"{k} per split{cut}, {per_sequence:.2f} s per variant ({len(assay.wild_type)} masked passes)"


def _score_one(ctx: RunContext, model, name: str, assay, tables: dict, size: dict, pll_allowance: float) -> dict:
    """Every method's scores of one assay judged against it: ``rows`` (all variants and the
    pseudo-likelihood sample), the model's agreement with the baselines, the sample's note."""
    from ..zero_shot import BASELINE_METHODS, evaluate, score_assay, spearman

    pll_idx, pll_note = np.array([], np.int64), "not computed for estimated values"
    if name != ESTIMATED:
        pll_idx, pll_note = _pll_plan(model, assay, size["pll_variants"], pll_allowance, ctx.seed, _BATCH)
    scores = score_assay(model, assay, pll_indices=pll_idx, tables=tables, batch_size=_BATCH)
    everywhere = {m: s for m, s in scores.items() if m != "pseudo_likelihood"}
    rows = [{**r, "variants": "all"} for r in evaluate(everywhere, assay, n_boot=size["n_boot"], seed=ctx.seed)]
    if len(pll_idx):
        rows += [{**r, "variants": "pll_sample"} for r in evaluate(
            {m: s[pll_idx] for m, s in scores.items()}, assay.subset(pll_idx), n_boot=size["n_boot"], seed=ctx.seed,
            min_variants=_MIN_PLL)]
    agreement = {f"{m} vs {b}": spearman(scores[m], scores[b]) for m in EVERYWHERE for b in BASELINE_METHODS}
    return {"rows": rows, "agreement": agreement, "pll_note": pll_note, "pll_variants": int(len(pll_idx))}


def _report(ctx: RunContext, results: dict, model_name: str, pretrained: bool) -> None:
    """Print the tables as they are, the verdicts against BLOSUM62, the likely reason and the assays' direction."""
    from ..dms import MEASURED_ASSAYS
    from ..zero_shot import BASELINE_METHODS, MODEL_METHODS

    labels = {ESTIMATED: "gb1 estimated*"}
    main = [r for r in results["rows"] if r["variants"] == "all" and r["split"] != "all"]
    pll = [r for r in results["rows"] if r["variants"] == "pll_sample" and r["split"] != "all"]
    ctx.log(f"\nSpearman ρ [95% bootstrap interval] against the measured values, model {model_name}, "
            f"{results['settings']['n_boot']} resamples; all variants:")
    for line in format_table(main, [*EVERYWHERE, *BASELINE_METHODS], labels=labels):
        ctx.log("  " + line)
    ctx.log(f"  * {ESTIMATED}: GB1 single effects fitted to all doubles, not measured (datasets/protein_dms.md)")
    notes = "; ".join(f"{n}: {a['pseudo_likelihood_sample']}" for n, a in results["assays"].items() if n != ESTIMATED)
    if pll:
        ctx.log(f"\nThe same on the pseudo-likelihood sample (same variants for every method; {notes}):")
        for line in format_table(pll, [*MODEL_METHODS, *BASELINE_METHODS], labels=labels):
            ctx.log("  " + line)
    else:
        ctx.log(f"\nNo pseudo-likelihood: {notes}")

    found = results["verdicts"]
    behind = [v for v in found if v["behind_blosum62"]]
    negative = [v for v in found if v["negative"]]
    ctx.log(f"\nAgainst BLOSUM62 (a table lookup, no model), on the measured assays: the {model_name} model "
            f"loses in {len(behind)} of {len(found)} comparisons and correlates negatively in {len(negative)}.")
    for v in found:
        ctx.log(_verdict_line(v))
    measured = {n: v for n, v in results["model_vs_baselines"].items() if n in MEASURED_ASSAYS}
    ctx.log("Spearman ρ between the model's masked-marginal scores and the amino-acid-frequency baseline's on the "
            "same variants: " + ", ".join(f"{n} {v['masked_marginal vs aa_frequency']:+.2f}" for n, v in measured.items())
            + " (with BLOSUM62's: " + ", ".join(f"{n} {v['masked_marginal vs blosum62']:+.2f}"
                                                for n, v in measured.items()) + ").")
    tracks = float(np.mean([v["masked_marginal vs aa_frequency"] for v in measured.values()])) > 0.5
    if tracks and (behind or negative):
        ctx.log(f"Likely reason: the {model_name} model's scores largely track amino-acid composition ('common "
                "residues are likely'), which is not what these assays select for: it cannot know which residues "
                "bind IgG-Fc or nucleate amyloid." + ("" if pretrained else " It was pretrained on one bacterial "
                "proteome; run the demo with a pretrained ESM2 (--model esm2_t6_8M_UR50D) to see what a model "
                "trained on UniRef50 changes."))
    elif not tracks:
        ctx.log(f"The {model_name} model's scores are not mainly a restatement of amino-acid composition.")
    ctx.log("Direction: a higher value means " + " and ".join(f"{w} for {n}" for n, w in NOT_FITNESS.items())
            + "; neither is a fitter protein (datasets/protein_dms.md). A likelihood need not rise with them: a "
            "negative ρ there is a finding about the assay, not a sign error. Only gb1 measures fitness in the usual "
            "sense (binding IgG-Fc).")


def zero_shot(ctx: RunContext) -> dict[str, Any]:
    """Spearman's ρ of the model's zero-shot scores and two baselines against three deep mutational scans."""
    from .lm import demo_model
    from ..dms import MEASURED_ASSAYS, load_assay
    from ..zero_shot import plot_method_bars, plot_singles_heatmaps, sample_variants, score_tables

    t_start = time.monotonic()
    size = _SIZES.get(ctx.preset, _SIZES["cpu"])
    model, info = demo_model(ctx)
    pll_left = float(size["pll_seconds"])
    if ctx.remaining() is not None:
        pll_left = min(pll_left, max(0.0, ctx.remaining() / 3))
    results: dict[str, Any] = {
        "model": info.as_dict(), "preset": ctx.preset, "seed": ctx.seed, "assays": {}, "rows": [],
        "settings": {
            "n_boot": size["n_boot"], "interval": "percentile bootstrap, 95%",
            "variants": ("all shipped variants" if size["variants"] is None else
                         f"a seeded sample (numpy default_rng({ctx.seed})) of up to {size['variants']} singles and "
                         f"{size['variants']} doubles per assay"),
            "pseudo_likelihood": f"up to {size['pll_variants']} singles and as many doubles per assay "
                                 f"(default_rng({ctx.seed})), within {size['pll_seconds']} s in all",
        },
        "model_vs_baselines": {}, "figures": [], "seconds": {},
    }
    tables_by_wild_type: dict[str, dict] = {}  # GB1's two tables share one wild type

    ctx.log("Assays (datasets/protein_dms.md):")
    for k, name in enumerate((*MEASURED_ASSAYS, ESTIMATED)):
        t0 = time.monotonic()
        full = load_assay(name)
        assay = full if size["variants"] is None else full.subset(sample_variants(full, size["variants"], ctx.seed))
        singles, doubles = int((assay.n_mutations == 1).sum()), int((assay.n_mutations == 2).sum())
        ctx.log(f"  {name}: {full.title}; {singles} singles and {doubles} doubles used"
                f"{'' if assay is full else f' of {len(full)}'}.\n    value: {full.metadata.get('fitness', '?')}")
        if full.wild_type not in tables_by_wild_type:
            tables_by_wild_type[full.wild_type] = score_tables(model, full.wild_type, batch_size=_BATCH)
        tables = tables_by_wild_type[full.wild_type]
        t_pll = time.monotonic()
        one = _score_one(ctx, model, name, assay, tables, size, pll_left / max(1, len(MEASURED_ASSAYS) - k))
        if name != ESTIMATED:
            pll_left -= time.monotonic() - t_pll
        results["rows"] += one["rows"]
        results["model_vs_baselines"][name] = one["agreement"]
        results["assays"][name] = {
            "title": full.title, "measured": name in MEASURED_ASSAYS, "value": full.metadata.get("fitness", ""),
            "higher_means": NOT_FITNESS.get(name, "binds IgG-Fc better"), "offset": full.offset,
            "singles_used": singles, "doubles_used": doubles,
            "singles_shipped": int((full.n_mutations == 1).sum()), "doubles_shipped": int((full.n_mutations == 2).sum()),
            "pseudo_likelihood_sample": one["pll_note"], "pseudo_likelihood_variants": one["pll_variants"],
        }
        if singles:
            fig = f"dms_{name}_heatmaps.png"
            plot_singles_heatmaps(assay, tables["masked_marginal"], ctx.path(fig), model_name=info.name,
                                  kind="measured" if name in MEASURED_ASSAYS else "estimated (not measured)")
            results["figures"].append(fig)
        results["seconds"][name] = round(time.monotonic() - t0, 2)

    main = [r for r in results["rows"] if r["variants"] == "all" and r["split"] != "all"]
    pll = [r for r in results["rows"] if r["variants"] == "pll_sample" and r["split"] != "all"]
    plot_method_bars([{**r, "assay": "gb1" if r["assay"] == ESTIMATED else r["assay"],
                       "split": f"{r['split']} (estimated)" if r["assay"] == ESTIMATED else r["split"]}
                      for r in main], ctx.path("dms_bars.png"), model_name=info.name)
    results["figures"].append("dms_bars.png")
    if pll:
        plot_method_bars([{**r, "split": f"{r['split']} (sample of {r['n']})"} for r in pll],
                         ctx.path("dms_pll_sample_bars.png"), model_name=info.name)
        results["figures"].append("dms_pll_sample_bars.png")
    results["verdicts"] = verdicts(main)
    _report(ctx, results, info.name, info.pretrained_esm2)

    results["seconds"]["total"] = round(time.monotonic() - t_start, 2)
    ctx.save_json("dms.json", results)
    ctx.log(f"\n{results['seconds']['total']:.0f} s. Figures and dms.json are in {ctx.out}")
    summary: dict[str, Any] = {}
    for r in main:
        summary.setdefault(f"{r['assay']} {r['split']}", {})[r["method"]] = round(r["rho"], 3)
    return summary
