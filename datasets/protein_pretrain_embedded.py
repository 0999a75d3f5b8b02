"""Recipe: pretrain the protein module's embedded ESM2-architecture model.

The model is esm2quinox's ESM2 (pre-LayerNorm transformer, rotary positions, tied
embedding/output), small enough to ship inside the package. It is trained with ESM2's
masked-language-model objective on the proteins of one bacterial genome that the
`pyhmmer` wheel ships as test data (readable offline). A random 10% of the proteins is
held out; the perplexity on their masked residues is compared to a unigram baseline
(amino-acid frequencies of the training split), and both go into the artifact.

Run (pyhmmer is needed for the data only; it is not a runtime dependency):

    uv pip install --python .venv/bin/python pyhmmer
    nice -n 10 .venv/bin/python datasets/protein_pretrain_embedded.py --minutes 50

It writes modules/protein_lm/src/workshop_protein/data/protein_embedded_model.npz (the best
validation checkpoint) and prints its sha256 for plugin.py and the datasheet
(datasets/protein_embedded_model.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "modules/protein_lm/src/workshop_protein/data/protein_embedded_model.npz"
FASTA = "tests/data/seqs/938293.PRJEB85.HG003687.faa"


def read_fasta(path: Path) -> list[tuple[str, str]]:
    records, name, chunks = [], None, []
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            if name is not None:
                records.append((name, "".join(chunks)))
            name, chunks = line[1:].split()[0], []
        elif line.strip():
            chunks.append(line.strip())
    if name is not None:
        records.append((name, "".join(chunks)))
    return records


def proteome() -> tuple[Path, list[tuple[str, str]]]:
    import pyhmmer

    path = Path(pyhmmer.__file__).parent / FASTA
    recs = read_fasta(path)
    # Prodigal marks stop codons with a trailing '*'; keep the standard residues only.
    clean = []
    for name, s in recs:
        s = s.rstrip("*").upper()
        if len(s) >= 30 and set(s) <= set("ACDEFGHIKLMNPQRSTVWY"):
            clean.append((name, s))
    return path, clean


def mask_batch(rng, tokens, mask_id, mask_frac=0.15):
    """ESM2/BERT masking: 15% of residues are targets; of those 80% <mask>, 10% random, 10% kept."""
    from workshop_protein.tokens import AA_TOKENS, CLS, EOS, PAD

    is_res = (tokens != PAD) & (tokens != CLS) & (tokens != EOS)
    target = is_res & (rng.random(tokens.shape) < mask_frac)
    # at least one target per row
    for b in range(tokens.shape[0]):
        if not target[b].any():
            idx = np.flatnonzero(is_res[b])
            target[b, rng.choice(idx)] = True
    u = rng.random(tokens.shape)
    inp = tokens.copy()
    inp[target & (u < 0.8)] = mask_id
    rand = target & (u >= 0.8) & (u < 0.9)
    inp[rand] = rng.choice(AA_TOKENS, size=int(rand.sum()))
    return inp, target


def crop_batch(rng, seqs, max_res):
    from workshop_protein.tokens import batch_tokenize

    crops = []
    for s in seqs:
        if len(s) > max_res:
            start = int(rng.integers(0, len(s) - max_res + 1))
            s = s[start : start + max_res]
        crops.append(s)
    tokens, _ = batch_tokenize(crops, length=max_res + 2)
    return tokens


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
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from workshop_protein.models import count_parameters, new_model, save_model
    from workshop_protein.tokens import AA_TOKENS, ALPHABET, MASK, batch_tokenize
    from workshop.data import sha256_of

    path, recs = proteome()
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(recs))
    n_val = len(recs) // 10
    val = [recs[i][1] for i in order[:n_val]]
    train = [recs[i][1] for i in order[n_val:]]
    print(f"{len(recs)} proteins from {path.name}: {len(train)} train ({sum(map(len, train))} residues), "
          f"{len(val)} validation ({sum(map(len, val))} residues)", flush=True)

    # Unigram baseline: training-split amino-acid frequencies.
    counts = np.zeros(len(ALPHABET))
    for s in train:
        for a, c in zip(*np.unique(list(s), return_counts=True)):
            counts[ALPHABET.index(a)] += c
    freqs = counts / counts.sum()

    # A fixed validation set: every validation protein cut into crops of `crop` residues,
    # each masked once with a fixed seed (the same positions for model and baseline).
    vrng = np.random.default_rng(12345)
    vcrops = [s[i : i + args.crop] for s in val for i in range(0, len(s), args.crop) if len(s[i : i + args.crop]) >= 10]
    vtok, _ = batch_tokenize(vcrops, length=args.crop + 2)
    vinp, vtarget = mask_batch(vrng, vtok, MASK)
    unigram_nll = float(-np.log(freqs[vtok[vtarget]]).mean())

    key = jax.random.key(args.seed)
    model = new_model(args.layers, args.dim, args.heads, key=key, token_dropout=False)
    n_params = count_parameters(model)
    print(f"model: {args.layers} layers × {args.dim} dims × {args.heads} heads = {n_params / 1e6:.2f}M parameters", flush=True)

    schedule = optax.inject_hyperparams(optax.adamw)(learning_rate=args.lr, b1=0.9, b2=0.98, weight_decay=0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0), schedule)
    opt_state = opt.init(eqx.filter(model, eqx.is_array))

    def loss_fn(model, inp, tokens, target):
        logits = jax.vmap(model)(inp).logits
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
        return jnp.sum(nll * target) / jnp.maximum(target.sum(), 1)

    @eqx.filter_jit
    def step(model, opt_state, inp, tokens, target, lr):
        opt_state[1].hyperparams["learning_rate"] = lr
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, inp, tokens, target)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    @eqx.filter_jit
    def eval_nll(model, inp, tokens, target):
        logits = jax.vmap(model)(inp).logits
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(logp, tokens[..., None], axis=-1)[..., 0]
        return jnp.sum(nll * target), target.sum()

    def validate(model):
        tot, n = 0.0, 0
        for i in range(0, len(vinp), 64):
            a, b = eval_nll(model, jnp.asarray(vinp[i : i + 64]), jnp.asarray(vtok[i : i + 64]), jnp.asarray(vtarget[i : i + 64]))
            tot += float(a)
            n += int(b)
        return tot / n

    budget = args.minutes * 60
    warmup = 100
    t0 = time.monotonic()
    best, best_step, history, it, running = math.inf, 0, [], 0, []
    lengths = np.array([len(s) for s in train], dtype=float)
    while True:
        elapsed = time.monotonic() - t0
        if elapsed > budget:
            break
        frac = elapsed / budget
        lr = args.lr * min(1.0, (it + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        # Sample proteins in proportion to length (every residue equally often).
        idx = rng.choice(len(train), size=args.batch, p=lengths / lengths.sum())
        tokens = crop_batch(rng, [train[i] for i in idx], args.crop)
        inp, target = mask_batch(rng, tokens, MASK)
        # lr goes in as an array: a Python float would be static under filter_jit (a recompile per step)
        model, opt_state, loss = step(model, opt_state, jnp.asarray(inp), jnp.asarray(tokens), jnp.asarray(target),
                                      jnp.asarray(lr, dtype=jnp.float32))
        running.append(float(loss))
        it += 1
        if it % args.eval_every == 0:
            v = validate(model)
            history.append({"step": it, "minutes": round(elapsed / 60, 2), "train_nll": float(np.mean(running)), "val_nll": v})
            running = []
            print(f"step {it:6d}  {elapsed / 60:5.1f} min  lr {lr:.2e}  train {history[-1]['train_nll']:.3f}  "
                  f"val {v:.3f} (ppl {math.exp(v):.2f}; unigram {math.exp(unigram_nll):.2f})", flush=True)
            if v < best:
                best, best_step = v, it
                meta = {
                    "recipe": "datasets/protein_pretrain_embedded.py",
                    "data": f"pyhmmer {__import__('pyhmmer').__version__} {FASTA}",
                    "proteins_train": len(train), "proteins_val": len(val),
                    "residues_train": int(sum(map(len, train))), "residues_val_masked": int(vtarget.sum()),
                    "steps": it, "batch": args.batch, "crop": args.crop, "seed": args.seed,
                    "parameters": n_params,
                    "val_nll": round(v, 4), "val_perplexity": round(math.exp(v), 3),
                    "unigram_nll": round(unigram_nll, 4), "unigram_perplexity": round(math.exp(unigram_nll), 3),
                    "train_minutes": round(elapsed / 60, 1),
                }
                save_model(args.out, model, metadata=meta)
    print(json.dumps({"history": history}, indent=None), flush=True)
    print(f"best validation NLL {best:.4f} (perplexity {math.exp(best):.3f}) at step {best_step}; "
          f"unigram {unigram_nll:.4f} (perplexity {math.exp(unigram_nll):.3f})")
    if not args.out.is_file():
        raise SystemExit("no checkpoint was written: the budget ended before the first evaluation")
    print(f"wrote {args.out}  sha256 {sha256_of(args.out)}  size {args.out.stat().st_size}")


if __name__ == "__main__":
    main()
