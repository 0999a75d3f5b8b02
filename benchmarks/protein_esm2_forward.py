"""Benchmark: ESM2 forward pass, esm2quinox (JAX, jit) against fair-esm (PyTorch), on CPU.

Both run the ESM2-8M architecture (6 layers, width 320, 20 heads) with the same random
weights (a fair-esm model converted with esm2quinox.from_torch), on the same batch of
random protein tokens; the logits are compared. Then the time of a full single-mutant
scan (masked marginals, L forward passes batched under vmap) of a 300-residue protein.

    .venv/bin/python benchmarks/protein_esm2_forward.py [--batch 8 --length 256 --repeats 5]

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


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256, help="tokens per sequence (residues + 2)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scan-length", type=int, default=300)
    ap.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import esm
    import esm2quinox
    import equinox as eqx
    import jax
    import torch

    from workshop_protein.mutations import masked_marginal_scores
    from workshop_protein.tokens import AMINO_ACIDS, batch_tokenize

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    tmodel = esm.ESM2(num_layers=6, embed_dim=320, attention_heads=20, token_dropout=True).eval()
    model = esm2quinox.from_torch(tmodel)
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list(AMINO_ACIDS), size=args.length - 2)) for _ in range(args.batch)]
    tokens, _ = batch_tokenize(seqs)
    n_tokens = tokens.size

    fwd = eqx.filter_jit(lambda m, t: jax.vmap(m)(t).logits)
    t0 = time.perf_counter()
    jax_logits = np.asarray(fwd(model, tokens).block_until_ready())
    jax_compile = time.perf_counter() - t0
    jax_s = median_time(lambda: fwd(model, tokens).block_until_ready(), args.repeats)

    ttok = torch.as_tensor(tokens, dtype=torch.long)
    with torch.no_grad():
        torch_logits = tmodel(ttok)["logits"].numpy()
        torch_s = median_time(lambda: tmodel(ttok), args.repeats)

    diff = float(np.abs(jax_logits - torch_logits).max())
    scan_seq = "".join(rng.choice(list(AMINO_ACIDS), size=args.scan_length))
    t0 = time.perf_counter()
    masked_marginal_scores(model, scan_seq, batch_size=16)
    scan_first = time.perf_counter() - t0
    scan_s = median_time(lambda: masked_marginal_scores(model, scan_seq, batch_size=16), max(1, args.repeats // 2))

    result = {
        "benchmark": "ESM2-8M architecture forward pass on CPU, random weights shared by both",
        "batch": args.batch, "tokens_per_sequence": args.length,
        "jax": {"version": jax.__version__, "seconds": jax_s, "tokens_per_s": n_tokens / jax_s,
                "first_call_seconds_with_compile": jax_compile, "how": "eqx.filter_jit(jax.vmap(esm2quinox.ESM2))"},
        "torch": {"version": torch.__version__, "threads": torch.get_num_threads(), "seconds": torch_s,
                  "tokens_per_s": n_tokens / torch_s, "how": "fair-esm ESM2 under torch.no_grad()"},
        "jax_speedup_over_torch": torch_s / jax_s,
        "max_abs_logit_difference": diff,
        "single_mutant_scan": {"residues": args.scan_length, "substitutions": args.scan_length * 19,
                               "forward_passes": args.scan_length, "seconds": scan_s,
                               "first_call_seconds_with_compile": scan_first,
                               "how": "masked_marginal_scores(model, seq, batch_size=16): L masked passes, 16 at a time under vmap"},
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0], "platform": platform.platform(),
                    "note": "shared machine: other processes ran at the same time; compare the two frameworks within this run"},
        "repeats": args.repeats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"JAX {result['jax']['tokens_per_s']:.0f} tokens/s, PyTorch {result['torch']['tokens_per_s']:.0f} tokens/s "
          f"(JAX {result['jax_speedup_over_torch']:.2f}x); logits differ by at most {diff:.1e}; "
          f"{args.scan_length}-residue single-mutant scan {scan_s:.1f} s; load average {result['machine']['load_average_1min']:.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
