"""Recipe: three real deep mutational scans shipped with the protein module.

The MAVE-NN 1.1.4 wheel (MIT) ships, as example data, three published deep mutational
scans as gzipped CSVs (``mavenn/examples/datasets/<name>_data.csv.gz``): one row per
variant, the full variant sequence in column ``x``, its Hamming distance from the wild
type in ``dist`` and the measurement in ``y``. This recipe downloads the wheel with pip,
checks its sha256 and writes one compact table per assay into
``modules/protein_lm/src/workshop_protein/data/``:

* ``dms_gb1.csv.gz``: GB1 IgG-Fc binding (Olson et al. 2014). The file holds double
  mutants only; a seeded sample of them is kept.
* ``dms_gb1_additive_singles.csv.gz``: GB1 single-mutant effects *estimated* from all
  530,737 doubles by least squares on ``y(a, b) = s(a) + s(b)`` (no intercept: ``y`` is
  already relative to the wild type). Not measurements: a separate, clearly named file.
* ``dms_abeta42.csv.gz``: Aβ42 nucleation (Seuma et al. 2021): all singles, a sample of doubles.
* ``dms_tdp43.csv.gz``: TDP-43 290-373 toxicity (Bolognesi et al. 2019): all singles, a
  sample of doubles.

Variants are written ``A4G`` / ``A4G:R10W`` in each paper's residue numbering; the
``offset`` header line converts it to positions in the stored wild-type sequence
(residue number = 1-based position + offset). Variants with
a stop codon (``*``) are dropped (the models score amino acids only). Doubles are a
uniform sample without replacement of ``N_DOUBLES`` per assay, each drawn with its own
``numpy.random.default_rng(SEED)``; see protein_dms.md.

It also checks the two baseline tables of ``workshop_protein.baselines`` against their
sources: BLOSUM62 against the NCBI matrix file in Biopython 1.85's source distribution,
the proteome counts against the FASTA in the pyhmmer 0.12.3 wheel.

Usage (needs pip and network; writes into the package, prints sha256 and size)::

    .venv/bin/python datasets/protein_dms.py
"""

from __future__ import annotations

import collections
import csv
import gzip
import hashlib
import importlib.util
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "modules/protein_lm/src/workshop_protein/data"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

MAVENN = ("mavenn==1.1.4", "mavenn-1.1.4-py3-none-any.whl",
          "b54077ee40a94892ace26b609b1b6778bc906e14483d7e74f8258c9731871e57")
BIOPYTHON = ("biopython==1.85", "biopython-1.85.tar.gz",
             "5dafab74059de4e78f49f6b5684eddae6e7ce46f09cfa059c1d1339e8b1ea0a6")
BLOSUM62_FILE = "biopython-1.85/Bio/Align/substitution_matrices/data/BLOSUM62"
PYHMMER_FASTA = ("pyhmmer/tests/data/seqs/938293.PRJEB85.HG003687.faa",
                 "7190c967978a9921f69dadc710db2d826b41ec738894bf51c1d439106d0a4a08")

# Olson et al. 2014's wild-type counts (selected 3,041,819; input 1,759,616), pseudo-count 1 as for every variant.
GB1_WT_LOG2 = float(np.log2((3_041_819 + 1) / (1_759_616 + 1)))
N_DOUBLES = 5000
SEED = 0

ASSAYS = {
    "gb1": dict(
        file="gb1_data.csv.gz",
        wild_type="QYKLILNGKTLKGETTTEAVDAATAEKVFKQYANDNGVDGEWTYDDATKTFTVTE",
        offset=1,
        title="Protein G B1 domain (GB1), binding to IgG-Fc by mRNA display, double mutants",
        numbering="GB1 residue numbers of Olson et al. 2014 (variants as written here); "
        "position p of the wild type is residue p + 1: Q2..E56",
        fitness="log2((selected + 1) / (input + 1)) - log2((selected_wt + 1) / (input_wt + 1)), counts of Olson "
        "et al. 2014; "
        "higher: binds IgG-Fc better; 0: as the wild type",
        citation="Olson CA, Wu NC, Sun R. A comprehensive biophysical description of pairwise epistasis "
        "throughout an entire protein domain. Curr Biol 24:2643-2651 (2014). doi:10.1016/j.cub.2014.09.072",
    ),
    "abeta42": dict(
        file="amyloid_data.csv.gz",
        wild_type="DAEFRHDSGYEVHHQKLVFFAEDVGSNKGAIIGLMVGGVVIA",
        offset=0,
        title="Amyloid beta 1-42 (Abeta42), nucleation in yeast, single and double mutants",
        numbering="Abeta42 residue numbers (variants as written here); "
        "position p of the wild type is residue p: D1..A42",
        fitness="nucleation score of Seuma et al. 2021 (y of MAVE-NN); higher: nucleates amyloid faster",
        citation="Seuma M, Faure AJ, Badia M, Lehner B, Bolognesi B. The genetic landscape for amyloid beta "
        "fibril nucleation accurately discriminates familial Alzheimer's disease mutations. "
        "eLife 10:e63364 (2021). doi:10.7554/eLife.63364",
    ),
    "tdp43": dict(
        file="tdp43_data.csv.gz",
        wild_type="GNSRGGGAGLGNNQGSNMGGGMNFGAFSINPAMMAAAQAALQSSWGMMGMLASQQNQSGPSGNNQNQGNMQREPNQAFGSGNNS",
        offset=289,
        title="TDP-43 prion-like domain (residues 290-373), toxicity in yeast, single and double mutants",
        numbering="TDP-43 residue numbers (variants as written here); "
        "position p of the wild type is residue p + 289: G290..S373",
        fitness="toxicity score of Bolognesi et al. 2019 (y of MAVE-NN); higher: more toxic to yeast",
        citation="Bolognesi B, Faure AJ, Seuma M, Schmiedel JM, Tartaglia GG, Lehner B. The mutational "
        "landscape of a prion-like domain. Nat Commun 10:4162 (2019). doi:10.1038/s41467-019-12101-z",
    ),
}
SOURCE = "MAVE-NN 1.1.4 wheel (MIT), mavenn/examples/datasets/{file}; see datasets/protein_dms.md"


def pip_command() -> list[str]:
    """pip of this interpreter if it has one, else the first pip on PATH (a uv venv has none)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        if path := shutil.which(name):
            return [path]
    sys.exit("no pip found: install pip, or run this recipe with a Python that has it")


def download(spec: str, filename: str, sha256: str, into: Path, binary: bool = True) -> Path:
    kind = ["--only-binary", ":all:"] if binary else ["--no-binary", ":all:"]
    subprocess.run([*pip_command(), "download", "--no-deps", *kind, spec, "-d", str(into)], check=True)
    path = into / filename
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != sha256:
        sys.exit(f"{path.name}: sha256 {got}, expected {sha256}: not the file this recipe was written for")
    print(f"{path.name}: sha256 {got} (as expected)")
    return path


def variant_of(seq: str, wild_type: str) -> list[tuple[str, int, str]]:
    """``[(wt, 1-based position, mt), ...]`` of the positions where ``seq`` differs."""
    return [(w, i + 1, m) for i, (w, m) in enumerate(zip(wild_type, seq)) if w != m]


def read_mavenn(wheel: zipfile.ZipFile, name: str) -> tuple[list[list[tuple[str, int, str]]], np.ndarray, int]:
    spec = ASSAYS[name]
    wt = spec["wild_type"]
    text = gzip.decompress(wheel.read(f"mavenn/examples/datasets/{spec['file']}")).decode()
    variants, ys, nonsense = [], [], 0
    for row in csv.DictReader(io.StringIO(text)):
        x = row["x"]
        if len(x) != len(wt):
            sys.exit(f"{name}: a sequence of length {len(x)}, the wild type has {len(wt)}")
        muts = variant_of(x, wt)
        if len(muts) != int(row["dist"]):
            sys.exit(f"{name}: {x} differs from the wild type at {len(muts)} positions, the file says {row['dist']}")
        if any(m == "*" for _, _, m in muts):
            nonsense += 1
            continue
        if name == "gb1":  # y is log2 enrichment relative to the wild type, with pseudo-counts of 1
            enrichment = np.log2((float(row["selected_ct"]) + 1) / (float(row["input_ct"]) + 1)) - GB1_WT_LOG2
            if abs(enrichment - float(row["y"])) > 1e-9:
                sys.exit(f"gb1: y = {row['y']} is not the log2 enrichment {enrichment} of its counts")
        variants.append(muts)
        ys.append(float(row["y"]))
    keys = [tuple(v) for v in variants]
    if len(set(keys)) != len(keys):
        sys.exit(f"{name}: duplicated variants in the source file")
    return variants, np.array(ys), nonsense


def text_of(muts, offset: int) -> str:
    """``A4G:R10W`` in the paper's numbering (position in the wild type + offset)."""
    return ":".join(f"{w}{p + offset}{m}" for w, p, m in sorted(muts, key=lambda t: t[1]))


def write_table(path: Path, header: dict[str, str], variants: list[str], fitness: np.ndarray) -> None:
    """A gzipped CSV with ``# key: value`` header lines; byte-for-byte reproducible (gzip mtime 0)."""
    out = io.StringIO()
    out.write("# workshop-protein DMS table 1\n")
    for k, v in header.items():
        out.write(f"# {k}: {v}\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["variant", "fitness"])
    for v, y in zip(variants, fitness):
        w.writerow([v, f"{y:.6g}"])
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(out.getvalue().encode())
    path.write_bytes(buf.getvalue())


def sort_key(muts):
    return (len(muts), [(p, m) for _, p, m in sorted(muts, key=lambda t: t[1])])


def additive_singles(wild_type: str, variants, y: np.ndarray):
    """Least-squares single effects ``s`` with ``y(a, b) ≈ s(a) + s(b)`` over all doubles."""
    index = {(i + 1, a): k for k, (i, a) in enumerate(
        (i, a) for i, w in enumerate(wild_type) for a in AMINO_ACIDS if a != w)}
    k1 = np.array([index[(v[0][1], v[0][2])] for v in variants])
    k2 = np.array([index[(v[1][1], v[1][2])] for v in variants])
    n = len(index)
    xtx = np.zeros((n, n))
    np.add.at(xtx, (k1, k1), 1.0)
    np.add.at(xtx, (k2, k2), 1.0)
    np.add.at(xtx, (k1, k2), 1.0)
    np.add.at(xtx, (k2, k1), 1.0)
    xty = np.bincount(k1, y, n) + np.bincount(k2, y, n)
    s = np.linalg.solve(xtx, xty)
    fitted = s[k1] + s[k2]
    r2 = 1 - ((y - fitted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    support = np.diag(xtx)
    singles = [[(wild_type[i - 1], i, a)] for (i, a) in index]
    return singles, s, float(r2), support


def build_assays(wheel_path: Path) -> list[Path]:
    written = []
    with zipfile.ZipFile(wheel_path) as wheel:
        for name, spec in ASSAYS.items():
            variants, y, nonsense = read_mavenn(wheel, name)
            n_mut = np.array([len(v) for v in variants])
            singles = np.flatnonzero(n_mut == 1)
            doubles = np.flatnonzero(n_mut == 2)
            rng = np.random.default_rng(SEED)  # one generator per assay: samples do not depend on each other
            sample = np.sort(rng.choice(doubles, size=min(N_DOUBLES, len(doubles)), replace=False))
            keep = sorted([*singles, *sample], key=lambda k: sort_key(variants[k]))
            header = {
                "name": name, "title": spec["title"], "wild_type": spec["wild_type"], "offset": str(spec["offset"]),
                "numbering": spec["numbering"], "fitness": spec["fitness"], "citation": spec["citation"],
                "source": SOURCE.format(file=spec["file"]),
                "kept": (f"all {len(singles)} single mutants" if len(singles) else "no single mutant (the source has none)")
                + f" and {len(sample)} of {len(doubles)} double mutants "
                f"(uniform sample without replacement: numpy default_rng({SEED}).choice over the doubles "
                f"in file order); "
                f"{nonsense} variants with a stop codon dropped",
            }
            path = OUT / f"dms_{name}.csv.gz"
            write_table(path, header, [text_of(variants[k], spec["offset"]) for k in keep], y[keep])
            print(f"{name}: {len(singles)} singles, {len(sample)}/{len(doubles)} doubles, {nonsense} nonsense dropped")
            written.append(path)
            if name == "gb1":
                pairs = [variants[k] for k in doubles]
                est, s, r2, support = additive_singles(spec["wild_type"], pairs, y[doubles])
                header = dict(header, name="gb1_additive_singles",
                              title="GB1 single-mutant effects estimated from all double mutants (not measured)",
                              fitness="least-squares s with y(a,b) = s(a) + s(b) over all "
                              f"{len(doubles)} doubles of Olson et al. 2014 (y as in dms_gb1.csv.gz, no intercept); "
                              f"R^2 of the fit on the doubles {r2:.3f}; each estimate rests on "
                              f"{int(support.min())}-{int(support.max())} doubles",
                              kept=f"all {len(est)} single substitutions; none was measured alone in this file")
                path = OUT / "dms_gb1_additive_singles.csv.gz"
                write_table(path, header, [text_of(v, spec["offset"]) for v in est], s)
                print(f"gb1 additive singles: R^2 {r2:.3f} on {len(doubles)} doubles; "
                      f"support {int(support.min())}..{int(support.max())} doubles per single")
                written.append(path)
    return written


def check_baselines(tmp: Path) -> None:
    from workshop_protein.baselines import BLOSUM62_ORDER, PROTEOME_COUNTS, blosum62

    sdist = download(*BIOPYTHON, tmp, binary=False)
    with tarfile.open(sdist) as tf:
        lines = [ln.split() for ln in tf.extractfile(BLOSUM62_FILE).read().decode().splitlines()
                 if ln.strip() and not ln.startswith("#")]
    cols, checked = lines[0], 0
    for row in lines[1:]:
        for col, value in zip(cols, row[1:]):
            if row[0] in BLOSUM62_ORDER and col in BLOSUM62_ORDER:
                if blosum62(row[0], col) != int(value):
                    sys.exit(f"BLOSUM62[{row[0]}, {col}] is {blosum62(row[0], col)} here, {value} in the NCBI file")
                checked += 1
    print(f"BLOSUM62: all {checked} entries equal the NCBI file")

    subprocess.run([*pip_command(), "download", "--no-deps", "--only-binary", ":all:", "pyhmmer==0.12.3",
                    "-d", str(tmp)], check=True)
    wheel = next(tmp.glob("pyhmmer-0.12.3-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(PYHMMER_FASTA[0])
    if hashlib.sha256(data).hexdigest() != PYHMMER_FASTA[1]:
        sys.exit(f"{PYHMMER_FASTA[0]} in {wheel.name} is not the file the baseline counts were made from")
    proteins, chunks = [], []
    for line in data.decode().splitlines() + [">"]:
        if line.startswith(">"):
            if chunks:
                proteins.append("".join(chunks).rstrip("*").upper())
            chunks = []
        elif line.strip():
            chunks.append(line.strip())
    clean = [p for p in proteins if len(p) >= 30 and set(p) <= set(AMINO_ACIDS)]
    counts = collections.Counter("".join(clean))
    if dict(counts) != PROTEOME_COUNTS:
        sys.exit(f"proteome counts differ: {dict(sorted(counts.items()))}")
    print(f"proteome counts: equal ({len(clean)} proteins, {sum(counts.values())} residues)")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = download(*MAVENN, tmp)
        written = build_assays(wheel)
        check_baselines(tmp)
    for path in written:
        print(f"{path.name}  sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}  size {path.stat().st_size}")


if __name__ == "__main__":
    main()
