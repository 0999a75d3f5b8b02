"""Benchmark: ESM2-8M inference in the project (JAX) against fair-esm (PyTorch), on CPU.

Both sides run the ESM2-8M architecture (6 layers, width 320, 20 heads) with the same
random weights (a fair-esm model converted with esm2quinox.from_torch):

1. **forward**: logits of a batch of random proteins. Rows: the project's batched
   forward (``workshop_protein.forward.esm2_logits``), esm2quinox's own
   ``jax.vmap(model)`` (the previous design), fair-esm under ``torch.no_grad()``.
2. **single-mutant scan** of a 300-residue protein (L masked passes, the full L x 20
   masked-marginal table): the project's ``masked_marginal_scores`` (masked copies in
   chunks through the batched forward) against fair-esm's usual per-position loop
   (mask one position, one forward pass, read its log-probabilities).

The sides take turns within each repeat, so both see the same machine load; medians
and minima are reported. Logits and scan tables are compared.

    .venv/bin/python benchmarks/protein_esm2_forward.py [--batch 8 --length 256 --repeats 7]

Writes benchmarks/results/protein_esm2_forward.json. Needs torch and fair-esm (benchmark
only; the module itself does not).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "protein_esm2_forward.json"


def interleaved(fns: dict, repeats: int) -> dict[str, dict]:
    """Time every function once per round, ``repeats`` rounds; after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: {"median_s": statistics.median(v), "min_s": min(v), "all_s": v} for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256, help="tokens per sequence (residues + 2)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--scan-length", type=int, default=300)
    ap.add_argument("--scan-repeats", type=int, default=3)
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import esm
    import esm2quinox
    import equinox as eqx
    import jax
    import torch

    from workshop_protein.forward import esm2_logits
    from workshop_protein.mutations import masked_marginal_scores
    from workshop_protein.tokens import AA_TOKENS, AMINO_ACIDS, MASK, batch_tokenize, tokenize

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    tmodel = esm.ESM2(num_layers=6, embed_dim=320, attention_heads=20, token_dropout=True).eval()
    model = esm2quinox.from_torch(tmodel)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list(AMINO_ACIDS), size=args.length - 2)) for _ in range(args.batch)]
    tokens, _ = batch_tokenize(seqs)
    n_tokens = tokens.size
    ttok = torch.as_tensor(tokens, dtype=torch.long)

    vmapped = eqx.filter_jit(lambda m, t: jax.vmap(m)(t).logits)
    t0 = time.perf_counter()
    ours = np.asarray(esm2_logits(model, tokens).block_until_ready())
    compile_s = time.perf_counter() - t0
    with torch.no_grad():
        ref = tmodel(ttok)["logits"].numpy()
    diff = float(np.abs(ours - ref).max())
    diff_vmap = float(np.abs(np.asarray(vmapped(model, tokens)) - ref).max())

    def torch_forward():
        with torch.no_grad():
            tmodel(ttok)

    fwd = interleaved({
        "project": lambda: esm2_logits(model, tokens).block_until_ready(),
        "esm2quinox_vmap": lambda: vmapped(model, tokens).block_until_ready(),
        "fair_esm": torch_forward,
    }, args.repeats)

    # Single-mutant scan: the full masked-marginal table of one protein.
    scan_seq = "".join(rng.choice(list(AMINO_ACIDS), size=args.scan_length))
    scan_tokens = torch.as_tensor(np.asarray(tokenize(scan_seq)), dtype=torch.long)[None]
    aa = torch.as_tensor(np.asarray(AA_TOKENS))

    def fair_esm_scan() -> np.ndarray:
        rows = []
        with torch.no_grad():
            for i in range(args.scan_length):
                masked = scan_tokens.clone()
                masked[0, i + 1] = MASK
                logits = tmodel(masked)["logits"][0, i + 1, aa]
                rows.append(torch.log_softmax(logits, -1).numpy())
        logp = np.stack(rows)
        wt = np.array([AMINO_ACIDS.index(a) for a in scan_seq])
        return logp - logp[np.arange(len(wt)), wt][:, None]

    t0 = time.perf_counter()
    ours_table = masked_marginal_scores(model, scan_seq)
    scan_first = time.perf_counter() - t0
    scan_diff = float(np.abs(ours_table - fair_esm_scan()).max())
    scan = interleaved({"project": lambda: masked_marginal_scores(model, scan_seq), "fair_esm": fair_esm_scan},
                       args.scan_repeats)

    def ratio(rows, key="median_s"):
        return rows["fair_esm"][key] / rows["project"][key]

    result = {
        "benchmark": "ESM2-8M architecture inference on CPU, random weights shared by both frameworks",
        "forward": {
            "batch": args.batch, "tokens_per_sequence": args.length,
            "project": {**fwd["project"], "tokens_per_s": n_tokens / fwd["project"]["median_s"],
                        "first_call_seconds_with_compile": compile_s,
                        "how": "workshop_protein.forward.esm2_logits (batched, deferred softmax normalisation, unrolled layers)"},
            "esm2quinox_vmap": {**fwd["esm2quinox_vmap"], "tokens_per_s": n_tokens / fwd["esm2quinox_vmap"]["median_s"],
                                "how": "eqx.filter_jit(jax.vmap(esm2quinox.ESM2)) (the previous design)"},
            "fair_esm": {**fwd["fair_esm"], "tokens_per_s": n_tokens / fwd["fair_esm"]["median_s"],
                         "how": "fair-esm ESM2 under torch.no_grad()"},
            "project_speedup_over_fair_esm": ratio(fwd),
            "project_speedup_over_fair_esm_min_times": ratio(fwd, "min_s"),
            "esm2quinox_vmap_speedup_over_fair_esm": fwd["fair_esm"]["median_s"] / fwd["esm2quinox_vmap"]["median_s"],
            "max_abs_logit_difference_project_vs_fair_esm": diff,
            "max_abs_logit_difference_vmap_vs_fair_esm": diff_vmap,
        },
        "single_mutant_scan": {
            "residues": args.scan_length, "substitutions": args.scan_length * 19, "forward_passes": args.scan_length,
            "project": {**scan["project"], "first_call_seconds_with_compile": scan_first,
                        "how": "masked_marginal_scores(model, seq): masked copies in chunks through esm2_logits"},
            "fair_esm": {**scan["fair_esm"], "how": "per-position loop: mask i, one forward pass, log_softmax at i"},
            "project_speedup_over_fair_esm": ratio(scan),
            "project_speedup_over_fair_esm_min_times": ratio(scan, "min_s"),
            "max_abs_score_difference": scan_diff,
        },
        "versions": {"jax": jax.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min_at_end": os.getloadavg()[0],
                    "platform": platform.platform(),
                    "note": "the frameworks take turns in every round, so they share whatever load the machine has"},
        "repeats": {"forward": args.repeats, "scan": args.scan_repeats},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    f, s = result["forward"], result["single_mutant_scan"]
    print(f"forward: project {f['project']['tokens_per_s']:.0f} tokens/s, esm2quinox vmap "
          f"{f['esm2quinox_vmap']['tokens_per_s']:.0f}, fair-esm {f['fair_esm']['tokens_per_s']:.0f}: "
          f"project {f['project_speedup_over_fair_esm']:.2f}x fair-esm (minima {f['project_speedup_over_fair_esm_min_times']:.2f}x); "
          f"logits differ by at most {diff:.1e}")
    print(f"{args.scan_length}-residue scan: project {s['project']['median_s']:.1f} s, fair-esm loop "
          f"{s['fair_esm']['median_s']:.1f} s: {s['project_speedup_over_fair_esm']:.2f}x "
          f"(minima {s['project_speedup_over_fair_esm_min_times']:.2f}x); scores differ by at most {scan_diff:.1e}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
