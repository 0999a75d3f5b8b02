"""Benchmark: zero-shot mutation scores against three real deep mutational scans.

For each shipped assay (GB1 binding doubles and GB1 single effects estimated from them,
Aβ42 nucleation, TDP-43 toxicity; ``workshop_protein.dms``) and each model that can be
loaded (the embedded model always; a published ESM2 when its weights are cached on this
machine, or downloaded with ``--download``; the others are listed as skipped with the
reason), Spearman's ρ between the
scores and the measured fitness, with seeded percentile-bootstrap 95% intervals, over
all variants, singles and doubles; and the same for the two baselines (BLOSUM62,
amino-acid frequency).

The pseudo-likelihood needs L masked passes per mutant sequence, so it is computed for
a seeded sample of ``--pll-variants`` singles and as many doubles per assay; on that
sample every other method is evaluated too (rows with ``"variants": "pll_sample"``), so
the comparison is on the same variants. On CPU the pseudo-likelihood dominates the run
time of an ESM2 (about ten times the embedded model's cost for ESM2-8M); lower
``--pll-variants`` for the larger ones.

    .venv/bin/python benchmarks/protein_dms_zero_shot.py [--pll-variants 48 --n-boot 1000 --figures DIR]

Writes benchmarks/results/protein_dms_zero_shot.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "protein_dms_zero_shot.json"


def load_cached_model(name: str, *, download: bool):
    """``load_model(name)``; without ``download`` only from the cache (``WORKSHOP_OFFLINE=1`` while loading)."""
    from workshop_protein.models import load_model

    if download or name == "embedded":
        return load_model(name)
    before = os.environ.get("WORKSHOP_OFFLINE")
    os.environ["WORKSHOP_OFFLINE"] = "1"
    try:
        return load_model(name)
    finally:
        if before is None:
            del os.environ["WORKSHOP_OFFLINE"]
        else:
            os.environ["WORKSHOP_OFFLINE"] = before


def print_table(results: list[dict], model_names: list[str], methods: list[str], variants: str) -> None:
    print(f"\nSpearman rho [95% interval], variants: {variants}")
    print(f"{'model':16s} {'assay / split':28s} " + " ".join(f"{m[:17]:>17s}" for m in methods))
    rows = [r for r in results if r["variants"] == variants]
    keys = list(dict.fromkeys((r["assay"], r["split"]) for r in rows))
    for model_name in model_names:
        for key in keys:
            cells = []
            for m in methods:
                hit = [r for r in rows if r["model"] == model_name and (r["assay"], r["split"]) == key and r["method"] == m]
                cells.append(f"{hit[0]['rho']:+.3f} [{hit[0]['low']:+.2f},{hit[0]['high']:+.2f}]" if hit else "")
            if any(cells):
                print(f"{model_name[:16]:16s} {key[0] + ' ' + key[1]:28s} " + " ".join(f"{c:>17s}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="embedded," + ",".join(
        ["esm2_t6_8M_UR50D", "esm2_t12_35M_UR50D", "esm2_t30_150M_UR50D", "esm2_t33_650M_UR50D"]),
        help="comma-separated model names to try")
    ap.add_argument("--download", action="store_true",
                    help="download ESM2 weights that are not cached (default: use only cached ones)")
    ap.add_argument("--pll-variants", type=int, default=48, help="singles (and as many doubles) per assay")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--figures", type=Path, default=None, help="also write heatmaps and bar charts there")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    t_start = time.perf_counter()
    import jax

    from workshop.data import DataError, DataMissing, cache_dir, fetch, sha256_of
    from workshop_protein.dms import ASSAYS, MEASURED_ASSAYS, load_assay
    from workshop_protein.models import ModelNotAvailable
    from workshop_protein.zero_shot import (
        BASELINE_METHODS, MODEL_METHODS, evaluate, plot_method_bars, plot_singles_heatmaps, sample_variants, score_assay,
        score_tables, spearman,
    )

    assays = {name: load_assay(name) for name in ASSAYS}
    samples = {name: sample_variants(a, args.pll_variants, args.seed) for name, a in assays.items()}
    results, timing, models, skipped, agreement = [], {}, {}, {}, {}

    def record(rows, model_name, variants):
        for r in rows:
            results.append({"model": model_name, **r, "variants": variants})

    baseline_scores = {}
    for name, assay in assays.items():  # baselines: no model
        scores = baseline_scores[name] = score_assay(None, assay)
        record(evaluate(scores, assay, n_boot=args.n_boot, seed=args.seed), "none (baseline)", "all")
        sub = assay.subset(samples[name])
        record(evaluate({m: s[samples[name]] for m, s in scores.items()}, sub, n_boot=args.n_boot, seed=args.seed),
               "none (baseline)", "pll_sample")

    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        try:
            model, info = load_cached_model(model_name, download=args.download)
        except (ModelNotAvailable, DataError) as e:
            if isinstance(e, DataMissing):
                why = ("its weights are not cached here and --download was not given "
                       f"('workshop fetch protein {model_name}.pt' fetches them)")
            else:  # keep the reason, not this machine's paths
                why = str(e).splitlines()[0].replace(str(cache_dir()), "$WORKSHOP_CACHE").replace(str(Path.home()), "~")
            skipped[model_name] = f"{type(e).__name__}: {why}"
            print(f"skipped {model_name}: {skipped[model_name]}")
            continue
        models[model_name] = {"describe": info.describe(), "parameters": info.parameters, "source": info.source}
        timing[model_name] = {}
        for name, assay in assays.items():
            t0 = time.perf_counter()
            scores = score_assay(model, assay, pll_indices=samples[name], batch_size=args.batch_size)
            scores = {m: s for m, s in scores.items() if m in MODEL_METHODS}
            timing[model_name][name] = {"scoring_seconds": time.perf_counter() - t0}
            t0 = time.perf_counter()
            everywhere = {m: s for m, s in scores.items() if m != "pseudo_likelihood"}
            record(evaluate(everywhere, assay, n_boot=args.n_boot, seed=args.seed), model_name, "all")
            sub = assay.subset(samples[name])
            record(evaluate({m: s[samples[name]] for m, s in scores.items()}, sub, n_boot=args.n_boot, seed=args.seed),
                   model_name, "pll_sample")
            timing[model_name][name]["evaluation_seconds"] = time.perf_counter() - t0
            # How far the model's scores just restate a baseline (rho between the two scores).
            agreement.setdefault(model_name, {})[name] = {
                f"{m} vs {b}": round(spearman(scores[m], baseline_scores[name][b]), 3)
                for m in ("masked_marginal", "wildtype_marginal") for b in BASELINE_METHODS}
            if args.figures is not None and (assay.n_mutations == 1).any():
                args.figures.mkdir(parents=True, exist_ok=True)
                table = score_tables(model, assay.wild_type, batch_size=args.batch_size)["masked_marginal"]
                plot_singles_heatmaps(assay, table, args.figures / f"dms_{name}_{model_name}_heatmaps.png",
                                      model_name=model_name)
        if args.figures is not None:
            rows = [r for r in results if r["variants"] == "all" and r["model"] in (model_name, "none (baseline)")]
            plot_method_bars(rows, args.figures / f"dms_methods_{model_name}.png", model_name=model_name)

    summary = {}
    for r in results:
        if r["variants"] == "all":
            key = r["model"] if r["method"] in MODEL_METHODS else "baseline"
            summary.setdefault(key, {}).setdefault(f"{r['assay']} {r['split']}", {})[r["method"]] = round(r["rho"], 3)

    result = {
        "benchmark": "protein_dms_zero_shot",
        "description": "Spearman's rho of zero-shot scores against measured fitness of three deep mutational scans",
        "assays": {
            name: {
                "title": a.title, "measured": name in MEASURED_ASSAYS, "fitness": a.metadata.get("fitness", ""),
                "wild_type_length": len(a.wild_type), "offset": a.offset,
                "singles": int((a.n_mutations == 1).sum()), "doubles": int((a.n_mutations == 2).sum()),
                "kept": a.metadata.get("kept", ""), "citation": a.metadata.get("citation", ""),
                "file_sha256": sha256_of(fetch("protein", f"dms_{name}.csv.gz")),
            }
            for name, a in assays.items()
        },
        "models": models,
        "skipped_models": skipped,
        "methods": {
            "masked_marginal": "sum over sites of log p(mt|x_-i) - log p(wt|x_-i), site i masked in the wild type",
            "wildtype_marginal": "sum over sites of log p(mt|x) - log p(wt|x), one unmasked pass of the wild type",
            "pseudo_likelihood": "PLL(mutant) - PLL(wild type), PLL(s) = sum_j log p(s_j|s_-j), every position "
            "masked alone (exact, not additive); only on the pll_sample variants",
            "blosum62": "sum over sites of BLOSUM62[wt, mt] (NCBI matrix)",
            "aa_frequency": "sum over sites of log f(mt) - log f(wt), f: composition of the embedded model's "
            "pretraining proteome (workshop_protein.baselines)",
        },
        "settings": {"n_boot": args.n_boot, "seed": args.seed, "interval": "percentile bootstrap, 95%",
                     "pll_variants_per_split": args.pll_variants, "batch_size": args.batch_size,
                     "pll_sample": "per assay, up to pll_variants singles and as many doubles, numpy "
                     "default_rng(seed).choice without replacement"},
        "summary_rho": summary,
        "model_vs_baseline_scores_rho": agreement,
        "results": results,
        "timing": {"total_seconds": time.perf_counter() - t_start, "per_model_and_assay": timing},
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
                    "platform": platform.platform(), "jax": jax.__version__, "backend": jax.default_backend(),
                    "note": "shared machine: other processes may have run at the same time"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    for variants in ("all", "pll_sample"):
        print_table(results, [*models, "none (baseline)"], [*MODEL_METHODS, *BASELINE_METHODS], variants)
    print(f"total {result['timing']['total_seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
