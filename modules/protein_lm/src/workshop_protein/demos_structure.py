"""Demos of the structure half: ``workshop run protein finetune|contacts|design``.

Each demo sizes itself from ``ctx.preset``, writes figures and a JSON summary into
``ctx.out`` and returns the numbers it measured.
"""

from __future__ import annotations

from typing import Any

from workshop import RunContext

_FINETUNE = {  # preset -> (head steps, full steps, batch size)
    "tiny": (30, 0, 16),
    "cpu": (300, 100, 32),
    "gpu": (1000, 500, 64),
    "full": (2000, 1000, 128),
}


def _model(ctx: RunContext):
    from .demos import demo_model

    return demo_model(ctx)


def _fine_tuned(ctx: RunContext, model, *, label: str = "is_antimicrobial", save: bool = True):
    """Fine-tune a predictor on the embedded AMP-vs-TM peptides; return it and a summary."""
    import jax
    import numpy as np

    from .finetune import Predictor, evaluate, read_labelled, train, train_valid_split

    data = read_labelled(ctx.fetch("amp_vs_tm.csv"), label=label)
    tr, va = train_valid_split(data, 0.2, seed=ctx.seed)
    head_steps, full_steps, batch = _FINETUNE[ctx.preset]
    predictor = Predictor.init(model, data.task, data.num_outputs, key=jax.random.key(ctx.seed), labels=tr.labels)
    before = evaluate(predictor, va)
    ckpt = ctx.path("finetune_best.eqx") if save else None
    ctx.log(f"fine-tuning on {len(tr)} peptides ({label}, {data.task}), validating on {len(va)}; "
            f"{len(jax.devices())} device(s)")
    predictor, hist = train(predictor, tr, va, mode="head", steps=head_steps, batch_size=batch,
                            eval_every=max(1, head_steps // 3), checkpoint=ckpt, seed=ctx.seed, log=ctx.log)
    losses = list(hist.loss)
    if full_steps:
        predictor, hist2 = train(predictor, tr, va, mode="full", steps=full_steps, batch_size=batch,
                                 eval_every=max(1, full_steps // 2), seed=ctx.seed + 1, log=ctx.log)
        losses += hist2.loss
    after = evaluate(predictor, va)
    metric = "spearman" if data.task == "regression" else "accuracy"
    summary = {
        "label": label, "task": data.task, "train": len(tr), "valid": len(va), "metric": metric,
        "valid_before": before[metric], "valid_after": after[metric],
        "loss_first10": float(np.mean(losses[:10])), "loss_last10": float(np.mean(losses[-10:])),
        "head_steps": head_steps, "full_steps": full_steps, "devices": len(jax.devices()),
    }
    return predictor, summary, losses


def finetune(ctx: RunContext) -> dict[str, Any]:
    """Fine-tune ESM2 on real peptides (antimicrobial vs transmembrane): head, then full."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, info = _model(ctx)
    _, summary, losses = _fine_tuned(ctx, model)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(losses, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(f"fine-tuning {info.name}: valid accuracy {summary['valid_after']:.2f}")
    fig.tight_layout()
    fig.savefig(ctx.path("finetune_loss.png"), dpi=110)
    plt.close(fig)
    summary |= {"model": info.name, "figure": str(ctx.path("finetune_loss.png"))}
    ctx.save_json("finetune.json", summary)
    ctx.log(f"valid accuracy {summary['valid_before']:.3f} -> {summary['valid_after']:.3f}")
    return summary


def _head_for(ctx: RunContext, model, info, structures):
    from .contacts import fit_contact_head, contact_features, attention_maps, contacts_from_coords, load_contact_head
    from .tokens import tokenize

    from workshop.data import DataMissing, DataUnreachable

    try:
        return load_contact_head(info.name), f"{info.name} regression"
    except (DataMissing, DataUnreachable, KeyError, ValueError) as exc:  # a refused (pin mismatch) file is raised
        ctx.log(f"no stored contact regression for {info.name} ({str(exc).splitlines()[0][:80]}); fitting one")
    train_ids = [t for t in structures if t != "1LCD_A"]
    feats, truth = [], []
    for t in train_ids:
        toks = tokenize(structures[t]["sequence"])
        feats.append(contact_features(attention_maps(model, toks), toks))
        truth.append(contacts_from_coords(structures[t]["cb"]))
    return fit_contact_head(feats, truth), f"fitted here on {', '.join(train_ids)}"


def contacts(ctx: RunContext) -> dict[str, Any]:
    """Contact maps from attention on real proteins, then 3-D folds from the contacts.

    Writes, per protein: the contact map (``<tag>_map.png``), the folds from the
    predicted and from the true contacts as pictures and as PDB files superposed onto
    the reference (``<tag>_fold_predicted.pdb``, ``<tag>_fold_true.pdb``; the B-factor
    column holds each residue's distance to the reference in Å), and the reference Cα
    trace (``<tag>_reference_ca.pdb``), so a viewer shows them overlaid.
    """
    import jax
    import numpy as np

    from .contacts import (
        contact_density, contact_precision, contacts_from_coords, plot_contact_map, predict_contacts, real_structures,
    )
    from .fold import fold_from_contacts, kabsch_rmsd, plot_trace, superpose, write_ca_pdb
    from .tokens import tokenize

    model, info = _model(ctx)
    structures = real_structures()
    head, where = _head_for(ctx, model, info, structures)
    ctx.log(f"contact head: {where}")
    targets = ["1LCD_A"] if ctx.preset == "tiny" else ["1LCD_A", "1A8O_A"]
    steps, restarts = {"tiny": (400, 2), "cpu": (1500, 8)}.get(ctx.preset, (3000, 16))
    out: dict[str, Any] = {
        "model": info.name, "head": where, "proteins": {},
        "notes": "precision: top-L/5 at |i-j| >= 6, chance = contact density; RMSD: Kabsch, reflection allowed; "
                 "'without contacts' folds a uniform map at the contact density (no information)",
    }
    for tag in targets:
        s = structures[tag]
        probs = np.asarray(predict_contacts(model, head, tokenize(s["sequence"])))
        truth = contacts_from_coords(s["cb"])
        L = len(probs)
        rng = np.random.default_rng(ctx.seed)
        density = contact_density(truth)
        res: dict[str, Any] = {
            "length": L,
            "top_L5_precision": contact_precision(probs, truth),
            "contact_density": density,  # the chance rate of the precision
            "random_top_L5_precision": float(np.mean([contact_precision(rng.random((L, L)), truth) for _ in range(20)])),
            "max_predicted_probability": float(probs[np.triu_indices(L, 6)].max()),
        }
        plot_contact_map(probs, truth, title=f"{tag}: predicted (upper) vs true (lower)", model=info.name,
                         path=ctx.path(f"{tag}_map.png"))

        def fold(p):
            return fold_from_contacts(p, key=jax.random.key(ctx.seed), steps=steps, restarts=restarts)[0]

        folds = {
            "predicted": (fold(probs), f"contacts predicted by {info.name} ({where})"),
            "true": (fold(truth.astype(np.float32)), f"the true contacts of {tag} (no model)"),
        }
        # The no-information baseline: every pair equally likely, at the true contact density.
        x_flat = fold(np.full((L, L), density, np.float32))
        res["rmsd_fold_from_predicted"] = kabsch_rmsd(folds["predicted"][0], s["ca"])
        res["rmsd_fold_from_true_contacts"] = kabsch_rmsd(folds["true"][0], s["ca"])
        res["rmsd_fold_without_contacts"] = kabsch_rmsd(x_flat, s["ca"])
        files = {"map": f"{tag}_map.png", "reference_pdb": f"{tag}_reference_ca.pdb"}
        write_ca_pdb(ctx.path(files["reference_pdb"]), s["ca"], s["sequence"],
                     remarks=[f"{tag}: Calpha atoms of the experimental structure (the reference)"])
        for kind, (x, source) in folds.items():
            rmsd = res["rmsd_fold_from_predicted" if kind == "predicted" else "rmsd_fold_from_true_contacts"]
            moved = superpose(x, s["ca"])
            files[f"fold_{kind}_pdb"] = f"{tag}_fold_{kind}.pdb"
            files[f"fold_{kind}_png"] = f"{tag}_fold_{kind}.png"
            write_ca_pdb(ctx.path(files[f"fold_{kind}_pdb"]), moved, s["sequence"],
                         bfactors=np.linalg.norm(moved - s["ca"], axis=-1),
                         remarks=[f"{tag} Calpha trace folded from {source} by distance geometry.",
                                  f"Superposed onto {files['reference_pdb']} (Kabsch, reflection allowed: contacts "
                                  f"do not fix the hand); RMSD {rmsd:.2f} A.",
                                  "B-factor column: distance to the reference (A)."])
            if kind == "predicted":
                title = (f"{tag} folded from contacts predicted by {info.name}\nRMSD {rmsd:.1f} Å to the structure "
                         f"(grey)\nbaselines: {res['rmsd_fold_from_true_contacts']:.1f} Å from the true contacts, "
                         f"{res['rmsd_fold_without_contacts']:.1f} Å without contacts")
            else:
                title = (f"{tag} folded from its true contacts (no model)\nRMSD {rmsd:.1f} Å to the structure (grey)"
                         f"\nfrom {info.name}'s predicted contacts {res['rmsd_fold_from_predicted']:.1f} Å, "
                         f"without contacts {res['rmsd_fold_without_contacts']:.1f} Å")
            plot_trace(x, s["ca"], title=title, path=ctx.path(files[f"fold_{kind}_png"]))
        res["files"] = files
        pdbs = ", ".join(v for k, v in files.items() if k.endswith("pdb"))
        ctx.log(f"{tag} ({L} aa): top-L/5 precision {res['top_L5_precision']:.2f} (chance {density:.2f}: the contact "
                f"density); RMSD of the fold from predicted contacts {res['rmsd_fold_from_predicted']:.1f} Å, from "
                f"true contacts {res['rmsd_fold_from_true_contacts']:.1f} Å, without contacts "
                f"{res['rmsd_fold_without_contacts']:.1f} Å; PDB files {pdbs}")
        out["proteins"][tag] = res
    ctx.save_json("contacts.json", out)
    return out


def design(ctx: RunContext) -> dict[str, Any]:
    """Fine-tune an antimicrobial-peptide classifier, then design peptides it scores high
    (simulated annealing with ESM2 proposals) and post them on a leaderboard."""
    import jax
    import numpy as np

    from .design import anneal, format_leaderboard, submit
    from .finetune import read_labelled
    from .tokens import tokenize

    model, info = _model(ctx)
    predictor, summary, _ = _fine_tuned(ctx, model, save=False)
    data = read_labelled(ctx.fetch("amp_vs_tm.csv"), label="is_antimicrobial")
    # Start from transmembrane peptides (class 0): the design must turn them antimicrobial.
    starts = [s for s, y in zip(data.sequences, data.labels) if y == 0][: {"tiny": 1, "cpu": 3}.get(ctx.preset, 6)]
    steps = {"tiny": 40, "cpu": 300, "gpu": 1000, "full": 2000}[ctx.preset]
    board = ctx.path("leaderboard.json")
    results = []
    for k, start in enumerate(starts):
        res = anneal(model, predictor.score, start, steps=steps, key=jax.random.key(ctx.seed + k),
                     temperature=(0.5, 0.01), naturalness=0.1)
        # The leaderboard ranks the property alone: log P(antimicrobial) by the classifier.
        p_start = float(np.exp(predictor.score(tokenize(start))))
        p_best = float(np.exp(predictor.score(tokenize(res.best_sequence))))
        submit(board, f"demo-{k}", res.best_sequence, np.log(p_best), start=start, steps=steps)
        results.append({"start": start, "best": res.best_sequence, "objective_start": res.start_score,
                        "objective_best": res.best_score, "p_antimicrobial_start": p_start,
                        "p_antimicrobial_best": p_best, "accepted": res.accepted})
        ctx.log(f"{start} -> {res.best_sequence}: P(antimicrobial) {p_start:.2f} -> {p_best:.2f}, objective "
                f"{res.start_score:.3f} -> {res.best_score:.3f} (accepted {res.accepted:.0%} of proposals)")
    ctx.log(format_leaderboard(board))
    out = {"model": info.name, "classifier_valid_accuracy": summary["valid_after"], "steps": steps,
           "designs": results, "leaderboard": str(board)}
    ctx.save_json("design.json", out)
    return out
