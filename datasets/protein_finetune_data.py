"""Recipe: the small real data the protein module's structure half ships.

Builds two embedded files of ``workshop_protein`` (see protein_finetune_data.md):

* ``data/structures_ca.npz``: Cα (and Cβ; Cα for glycine) coordinates and the sequence of
  four real protein chains, read from PDB files that Biopython's source distribution ships
  as test data (Tests/PDB/): 1A8O chain A, 1LCD chain A (model 1), 2XHE chain B, 7DDO chain C.
* ``data/amp_vs_tm.csv``: 412 peptides labelled antimicrobial (1) or transmembrane (0),
  the AMPvsTMset of the modlAMP package (BSD-3), with a second, clearly named
  *sequence-derived proxy* column ``gravy`` (Kyte-Doolittle mean hydropathy) for
  regression exercises.

Usage (downloads two packages from PyPI with pip)::

    python datasets/protein_finetune_data.py /tmp/protein_src
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "modules/protein_lm/src/workshop_protein/data"
CHAINS = [("1A8O", "A"), ("1LCD", "A"), ("2XHE", "B"), ("7DDO", "C")]
THREE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G",
    "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S",
    "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V", "MSE": "M",
}  # fmt: skip
KYTE_DOOLITTLE = {
    "A": 1.8, "R": -4.5, "N": -3.5, "D": -3.5, "C": 2.5, "Q": -3.5, "E": -3.5, "G": -0.4, "H": -3.2, "I": 4.5,
    "L": 3.8, "K": -3.9, "M": 1.9, "F": 2.8, "P": -1.6, "S": -0.8, "T": -0.7, "W": -0.9, "Y": -1.3, "V": 4.2,
}  # fmt: skip


def download(src: Path) -> tuple[Path, Path]:
    src.mkdir(parents=True, exist_ok=True)
    for spec in ("biopython==1.85", "modlamp==4.3.3"):
        extra = ["--no-binary", ":all:"] if spec.startswith("biopython") else []
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *extra, spec, "-d", str(src)], check=True)
    return next(src.glob("biopython-1.85.tar.gz")), next(src.glob("modlamp-4.3.3-*.whl"))


def parse_chain(pdb_text: str, chain: str):
    """(sequence, CA (L, 3), CB (L, 3)) of the first model of one chain; altloc A or blank."""
    residues: dict[tuple, dict] = {}
    order = []
    for line in pdb_text.splitlines():
        if line.startswith("ENDMDL"):
            break
        if not line.startswith(("ATOM", "HETATM")) or line[21] != chain or line[16] not in " A":
            continue
        name, resn = line[12:16].strip(), line[17:20]
        if resn not in THREE:
            continue
        key = (int(line[22:26]), line[26])
        if key not in residues:
            residues[key] = {"res": THREE[resn]}
            order.append(key)
        residues[key][name] = [float(line[30:38]), float(line[38:46]), float(line[46:54])]
    keep = [k for k in order if "CA" in residues[k]]
    seq = "".join(residues[k]["res"] for k in keep)
    ca = np.array([residues[k]["CA"] for k in keep], np.float32)
    cb = np.array([residues[k].get("CB", residues[k]["CA"]) for k in keep], np.float32)
    return seq, ca, cb


def build(src: Path) -> None:
    bio, modl = download(src)
    OUT.mkdir(parents=True, exist_ok=True)
    arrays = {}
    with tarfile.open(bio) as tf:
        for pdb_id, chain in CHAINS:
            text = tf.extractfile(f"biopython-1.85/Tests/PDB/{pdb_id}.pdb").read().decode()
            seq, ca, cb = parse_chain(text, chain)
            tag = f"{pdb_id}_{chain}"
            arrays[f"{tag}/sequence"] = np.array(seq)
            arrays[f"{tag}/ca"] = ca
            arrays[f"{tag}/cb"] = cb
            print(tag, len(seq), seq[:30] + "...")
    arrays["ids"] = np.array([f"{p}_{c}" for p, c in CHAINS])
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    (OUT / "structures_ca.npz").write_bytes(buf.getvalue())

    with zipfile.ZipFile(modl) as zf:
        rows = list(csv.reader(io.StringIO(zf.read("modlamp/data/AMPvsTMset.csv").decode())))
    body = rows[1:]  # the first row is "412,1,TM,AMP" (count, features, class names)
    with open(OUT / "amp_vs_tm.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["sequence", "is_antimicrobial", "gravy"])
        for seq, label in body:
            seq = seq.strip().upper()
            gravy = sum(KYTE_DOOLITTLE[a] for a in seq) / len(seq)
            w.writerow([seq, int(label), f"{gravy:.4f}"])
    print("peptides", len(body))
    for name in ("structures_ca.npz", "amp_vs_tm.csv"):
        print(name, hashlib.sha256((OUT / name).read_bytes()).hexdigest())


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/protein_src"))
