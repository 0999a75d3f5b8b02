"""Demos of the protein module: what ``workshop run protein [DEMO]`` runs.

``tour`` (the default) goes through the module end to end on one protein:

1. the model: the preset's (ESM2-8M at ``cpu``, fetched and pinned on first use; the
   embedded model at ``tiny``), ``--model NAME`` to choose; offline with nothing cached,
   the small embedded model, and the demo says which and what that means;
2. masked-LM predictions: hide 15% of the residues, predict them, compare with a
   guess from amino-acid frequencies; the per-position probability table and entropy;
3. mutation effects: the full L × 20 masked-marginal heatmap, the most and least
   tolerated substitutions, agreement with the cheaper wild-type-marginal score;
4. a contact map and a short fine-tune, with the structure half of the module
   (each step is skipped, with the reason, if it fails: the rest of the tour stands).

Figures and ``tour.json`` go to ``ctx.out``.
"""

from __future__ import annotations

import time
import traceback

import numpy as np

# Human ubiquitin (76 residues): small, well studied, folds into a β-grasp.
UBIQUITIN = "MQIFVKTLTGKTITLEVEPSDTIENVKAKIQDKEGIPPDQQRLIFAGKQLEDGRTLSDYNIQKESTLHLVLRLRGG"

#: The sections of the tour, in order (tests may run a subset).
TOUR_SECTIONS = ("masked_lm", "mutations", "contacts", "finetune")

_SIZES = {
    "tiny": {"length": 30, "finetune_steps": 5},
    "cpu": {"length": 76, "finetune_steps": 60},
    "gpu": {"length": 76, "finetune_steps": 300},
    "full": {"length": 76, "finetune_steps": 1000},
}


def demo_model(ctx):
    """The model of a protein demo: ``--model`` or the preset's, with a line saying which."""
    from workshop import DemoOptionError

    from ..models import UnknownModel, select_model

    try:
        return select_model(ctx.model, ctx.preset, log=ctx.log)
    except UnknownModel as exc:
        raise DemoOptionError(f"{exc} (--model)") from None


def _step(ctx, results: dict, name: str, fn):
    """Run one section of the tour; a failure is reported and recorded, not raised."""
    t0 = time.monotonic()
    try:
        out = fn()
        results[name] = {**(out or {}), "seconds": round(time.monotonic() - t0, 2)}
    except Exception as exc:  # the structure half may be absent or still changing
        results[name] = {"skipped": f"{type(exc).__name__}: {exc}"[:500]}
        ctx.log(f"  [{name}] skipped: {type(exc).__name__}: {str(exc)[:200]}")
        if ctx.verbose:
            traceback.print_exc(limit=2)


def _measured_quality(model) -> str:
    """One line of measured quality for the heatmap: this model's masked-marginal Spearman
    on the shipped Aβ42 deep mutational scan (all 468 singles, one 42-residue scan) beside
    BLOSUM62's on the same variants. ``workshop run protein dms`` runs every assay."""
    from ..dms import load_assay
    from ..zero_shot import score_assay, spearman_bootstrap

    assay = load_assay("abeta42").singles()
    scores = score_assay(model, assay)
    mm = spearman_bootstrap(scores["masked_marginal"], assay.fitness)
    bl = spearman_bootstrap(scores["blosum62"], assay.fitness)
    return (f"on the Aβ42 DMS ({mm.n} singles): Spearman {mm.rho:+.2f} [{mm.low:+.2f}, {mm.high:+.2f}], "
            f"BLOSUM62 {bl.rho:+.2f} [{bl.low:+.2f}, {bl.high:+.2f}]")


def tour(ctx) -> dict:
    """Masked-LM predictions, a mutation heatmap, a contact map and a short fine-tune."""
    import jax

    from ..mlm import entropy, masked_marginals, plot_masked_marginals, predict_masked
    from ..mutations import _log_ratio, plot_mutation_heatmap, score_mutations, wildtype_marginal_scores
    from ..tokens import AMINO_ACIDS

    size = _SIZES.get(ctx.preset, _SIZES["cpu"])
    model, info = demo_model(ctx)
    seq = UBIQUITIN[: size["length"]]
    ctx.log(f"Protein: human ubiquitin, {len(seq)} residues: {seq}")
    results: dict = {"model": info.as_dict(), "sequence": seq, "preset": ctx.preset}
    rng = np.random.default_rng(ctx.seed)
    shared: dict = {}

    def masked_table():
        """``log p(a | x_{-i})`` for every position (L masked passes), computed once for
        both sections, with the seconds the passes took."""
        if "table" not in shared:
            t0 = time.monotonic()
            shared["table"] = masked_marginals(model, seq)
            shared["seconds"] = time.monotonic() - t0
        return shared["table"], shared["seconds"]

    def mlm():
        n_mask = max(1, round(0.15 * len(seq)))
        positions = sorted(rng.choice(len(seq), size=n_mask, replace=False).tolist())
        pred = predict_masked(model, seq, positions)
        guesses = [top[0][0] for top in pred.top]
        correct = sum(g == seq[p] for g, p in zip(guesses, positions))
        # Baseline: guess, everywhere, the residue most common among the unmasked ones.
        rest = [a for i, a in enumerate(seq) if i not in set(positions)]
        common = max(set(rest), key=rest.count)
        baseline = sum(seq[p] == common for p in positions)
        table, _ = masked_table()
        plot_masked_marginals(seq, table, ctx.path("masked_marginals.png"), title=f"p(amino acid | rest), {info.name}")
        ent = entropy(np.exp(table))
        nll = -np.mean([table[i, AMINO_ACIDS.index(a)] for i, a in enumerate(seq)])
        ctx.log(f"  masked {n_mask} residues together; top-1 correct {correct}/{n_mask} "
                f"(always guessing '{common}', the most common other residue: {baseline}/{n_mask})")
        for p, top in list(zip(positions, pred.top))[:5]:
            ctx.log(f"    position {p + 1} (true {seq[p]}): " + ", ".join(f"{a} {q:.2f}" for a, q in top))
        ctx.log(f"  pseudo-perplexity {np.exp(nll):.2f} (20 = uniform); entropy from {ent.min():.2f} to {ent.max():.2f} nats")
        return {"masked_positions_1based": [p + 1 for p in positions], "top1_correct": int(correct),
                "masked": n_mask, "baseline_correct": int(baseline), "pseudo_perplexity": float(np.exp(nll)),
                "entropy_nats": ent.round(3).tolist(), "figure": "masked_marginals.png"}

    def mutations():
        logp, scan_s = masked_table()
        table = _log_ratio(logp, seq)  # what masked_marginal_scores computes, without re-running the scan
        wt_table = wildtype_marginal_scores(model, seq)
        quality = _measured_quality(model)
        ctx.log(f"  how good are these scores? {quality}")
        plot_mutation_heatmap(seq, table, ctx.path("mutation_heatmap.png"), title=f"Masked-marginal scores, {info.name}",
                              quality=quality)
        flat = [(table[i, j], f"{seq[i]}{i + 1}{AMINO_ACIDS[j]}") for i in range(len(seq)) for j in range(20) if AMINO_ACIDS[j] != seq[i]]
        flat.sort()
        from scipy.stats import spearmanr

        off = np.array([AMINO_ACIDS[j] != seq[i] for i in range(len(seq)) for j in range(20)])
        rho = float(spearmanr(table.ravel()[off], wt_table.ravel()[off]).statistic)
        double = f"{flat[0][1]}:{flat[-1][1]}" if flat[0][1][1:-1] != flat[-1][1][1:-1] else flat[0][1]
        double_score = float(score_mutations(table, seq, double)[0])
        ctx.log(f"  full single-mutant scan: {len(seq)} × 19 substitutions in {scan_s:.1f} s")
        ctx.log("  most damaging: " + ", ".join(f"{m} {s:.2f}" for s, m in flat[:5]))
        ctx.log("  most tolerated: " + ", ".join(f"{m} {s:.2f}" for s, m in flat[-5:][::-1]))
        ctx.log(f"  additive double mutant {double}: {double_score:.2f}; masked vs wild-type marginal Spearman ρ = {rho:.2f}")
        return {"scan_seconds": round(scan_s, 2), "most_damaging": [[m, float(s)] for s, m in flat[:10]],
                "most_tolerated": [[m, float(s)] for s, m in flat[-10:][::-1]], "double_mutant": [double, double_score],
                "spearman_masked_vs_wildtype_marginal": rho, "measured_quality": quality, "figure": "mutation_heatmap.png"}

    def contacts():
        from .. import contacts as C
        from .structure import _head_for
        from ..tokens import tokenize

        head, how = _head_for(ctx, model, info, C.real_structures())
        probs = np.asarray(C.predict_contacts(model, head, tokenize(seq)))
        # No structure of ubiquitin ships with the module: the map shows the prediction alone, on its own scale.
        C.plot_contact_map(probs, title=f"Human ubiquitin, {len(seq)} residues (no structure shipped)",
                           model=info.name, path=ctx.path("contact_map.png"))
        i, j = np.triu_indices(len(seq), 6)
        top = np.argsort(-probs[i, j])[:5]
        ctx.log("  strongest predicted contacts (|i-j| ≥ 6): " +
                ", ".join(f"{seq[i[k]]}{i[k] + 1}-{seq[j[k]]}{j[k] + 1} {probs[i[k], j[k]]:.2f}" for k in top))
        return {"figure": "contact_map.png", "model": info.name, "head": how, "mean_probability": float(probs.mean()),
                "max_probability_separation_6": float(probs[i, j].max())}

    def finetune():
        from .. import finetune as F
        from workshop.data import fetch

        data = F.read_labelled(fetch("protein", "amp_vs_tm.csv"), label="is_antimicrobial")
        train_set, valid_set = F.train_valid_split(data, 0.2, seed=ctx.seed)
        predictor = F.Predictor.init(model, data.task, data.num_outputs, key=jax.random.key(ctx.seed))
        predictor, history = F.train(predictor, train_set, valid_set, mode="head", steps=size["finetune_steps"])
        metrics = F.evaluate(predictor, valid_set)
        ctx.log(f"  fine-tuned a head for {size['finetune_steps']} steps: validation {metrics}")
        return {"steps": size["finetune_steps"], "validation": metrics}

    sections = {"masked_lm": mlm, "mutations": mutations, "contacts": contacts, "finetune": finetune}
    for name in TOUR_SECTIONS:
        fn = sections[name]
        ctx.log(f"[{name}]")
        _step(ctx, results, name, fn)
    ctx.save_json("tour.json", results)
    ctx.log(f"Figures and tour.json are in {ctx.out}")
    # The returned summary keeps the headline numbers; the lists are in tour.json.
    return {k: {f: x for f, x in v.items() if not isinstance(x, list)} for k, v in results.items() if k in TOUR_SECTIONS}
