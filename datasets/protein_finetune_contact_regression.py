"""Recipe: fit the contact regression of the embedded model on real structures.

ESM fitted its contact head (a logistic regression over the symmetrised, APC-corrected
attention maps of every layer and head) on 20 structures. Offline we have 4 real chains
(``structures_ca.npz``, see protein_finetune_data.md): we fit on three (1A8O A, 2XHE B,
7DDO C) and hold out 1LCD A to measure what the head does on a protein it never saw.

Contacts: Cβ–Cβ distance < 8 Å (Cα for glycine), pairs with |i − j| ≥ 6 (as ESM).

    python datasets/protein_finetune_contact_regression.py            # writes the embedded head
    python datasets/protein_finetune_contact_regression.py --out /tmp/head.npz

Prints the sha256 of the file (for plugin.py) and the held-out precision (for the
datasheet protein_finetune_data.md).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import numpy as np

TRAIN = ("1A8O_A", "2XHE_B", "7DDO_C")
HELD_OUT = ("1LCD_A",)
OUT = Path(__file__).resolve().parents[1] / "modules/protein_lm/src/workshop_protein/data/contact_head_embedded.npz"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--weights", type=Path, default=None,
                    help="read the model from this file (save_model format) instead of load_model(--model)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import jax.numpy as jnp

    from workshop_protein.contacts import (
        ContactHead, attention_maps, contact_features, contact_precision, contacts_from_coords, fit_contact_head,
        real_structures,
    )
    from workshop.data import sha256_of
    from workshop_protein.models import EMBEDDED_MODEL_FILE, load_model, read_model
    from workshop_protein.tokens import tokenize

    if args.weights is not None:
        model, _ = read_model(args.weights)
        name, model_sha = args.weights.name, sha256_of(args.weights)
    else:
        model, info = load_model(args.model)
        name, model_sha = info.name, None
        if args.model == "embedded":
            from workshop.data import fetch

            model_sha = sha256_of(fetch("protein", EMBEDDED_MODEL_FILE))
    structures = real_structures()
    feats, truth = {}, {}
    for tag, s in structures.items():
        toks = tokenize(s["sequence"])
        feats[tag] = contact_features(attention_maps(model, toks), toks)
        truth[tag] = contacts_from_coords(s["cb"])
    head = fit_contact_head([feats[t] for t in TRAIN], [truth[t] for t in TRAIN])
    report = {"model": name, "model_sha256": model_sha, "fit_on": list(TRAIN), "features": int(head.weight.shape[0])}
    rng = np.random.default_rng(0)
    for tag in TRAIN + HELD_OUT:
        probs = np.asarray(head(feats[tag]))
        L = len(probs)
        rand = np.mean([contact_precision(rng.random((L, L)), truth[tag]) for _ in range(20)])
        report[tag] = {
            "length": L,
            "top_L5_precision": contact_precision(probs, truth[tag]),
            "top_L5_precision_long_range": contact_precision(probs, truth[tag], min_separation=24),
            "random_top_L5_precision": float(rand),
            "held_out": tag in HELD_OUT,
        }
    buf = io.BytesIO()
    # The head belongs to one model: its sha256 is stored with it and checked on load.
    np.savez(buf, weight=np.asarray(head.weight, np.float32), bias=np.asarray(head.bias, np.float32),
             model_sha256=np.array(model_sha or ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buf.getvalue())
    report["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
