"""Recipe: the embedded galaxy stamps of module astro (``hdf_stamps_32.npz``).

Builds centred 32x32 RGB cut-outs of sources detected in the Hubble Deep Field image
shipped inside scikit-image, with a spatial held-out split, and writes them into the
package (``modules/astro_diffusion/src/workshop_astro/data/``). Deterministic: running it
again gives the same bytes, so the sha256 in ``workshop_astro/plugin.py`` stays valid.

    .venv/bin/python datasets/astro_hdf_stamps.py          # build and print the sha256
    .venv/bin/python datasets/astro_hdf_stamps.py --check  # rebuild in memory and compare

Datasheet: ``datasets/astro_hdf_stamps.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))

from workshop_astro.galaxies import build_hdf_stamps, save_stamps  # noqa: E402
from workshop.data import sha256_of  # noqa: E402

#: The cuts of the shipped file (changing any of them changes the file and its hash).
CUTS = dict(nsigma=5.0, min_area=12, max_fill=0.85, dominance=0.3)
SIZE = 32
HOLDOUT_X = 800
TARGET = ROOT / "modules/astro_diffusion/src/workshop_astro/data/hdf_stamps_32.npz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="rebuild into a temporary file and compare hashes")
    args = ap.parse_args()
    built = build_hdf_stamps(SIZE, holdout_x=HOLDOUT_X, **CUTS)
    if args.check:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / TARGET.name
            save_stamps(p, built)
            new, old = sha256_of(p), sha256_of(TARGET)
        print(f"rebuilt {new}\nshipped {old}\n{'identical' if new == old else 'DIFFERENT'}")
        sys.exit(0 if new == old else 1)
    save_stamps(TARGET, built)
    m = built["meta"]
    print(f"{TARGET.relative_to(ROOT)}: {m['n_train']} training + {m['n_test']} held-out stamps, "
          f"{TARGET.stat().st_size} bytes, sha256 {sha256_of(TARGET)}")


if __name__ == "__main__":
    main()
