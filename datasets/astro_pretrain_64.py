"""Recipe: the pretrained 64x64 galaxy model of module astro (``unet64_hdf.eqx``).

Data: 64x64 RGB stamps centred on sources detected in the Hubble Deep Field image
shipped inside scikit-image (``skimage.data.hubble_deep_field()``), neighbours allowed,
training strip only (columns < 800; the strip to the right is held out), augmented by
the 8 symmetries of the square at every step.

    # train a fixed number of steps (resumable across days: run the same command again after
    # Ctrl-C, a crash or a reboot; the plan and LR schedule are fixed by the first call)
    nice -n 10 .venv/bin/python datasets/astro_pretrain_64.py train --steps 20000 --work build/astro64_edm
    # or a time budget for this call (the steps are planned from the measured step time)
    nice -n 10 .venv/bin/python datasets/astro_pretrain_64.py train --minutes 70 --work build/astro64_edm
    # export the EMA weights in bfloat16 into the package; updates the sha256 and size in plugin.py
    .venv/bin/python datasets/astro_pretrain_64.py export --work build/astro64_edm
    # or export a candidate elsewhere, then measure it (and the shipped model) on the held-out strip
    .venv/bin/python datasets/astro_pretrain_64.py export --work build/astro64_edm --to build/candidate.eqx
    .venv/bin/python datasets/astro_pretrain_64.py evaluate --model build/candidate.eqx
    .venv/bin/python datasets/astro_pretrain_64.py evaluate

Datasheet: ``datasets/astro_pretrain_64.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "modules/astro_diffusion/src"))

from workshop_astro.pretrained import PRETRAIN_CUTS, pretrain_stamps  # noqa: E402
from workshop_astro.unet import UNetConfig  # noqa: E402

UNET = UNetConfig(channels=32, mults=(1, 2, 2), blocks=1, attention_levels=(2,), norm="none", time_dim=128, patch=2,
                  input_skip=True)
TARGET = ROOT / "modules/astro_diffusion/src/workshop_astro/data/unet64_hdf.eqx"


def _hardware() -> str:
    """What this process ran on: CPU cores it may use, XLA's thread flags, niceness."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    flags = os.environ.get("XLA_FLAGS", "")
    return (f"{platform.processor() or platform.machine()}, {cores} of {os.cpu_count()} CPU cores"
            + (f", XLA_FLAGS={flags!r}" if flags else "") + f", nice {os.nice(0)}")


def cmd_train(args):
    from workshop_astro.train import TrainConfig, train

    from workshop_astro.galaxies import channel_stats

    train_x, test_x, meta = pretrain_stamps()
    print(f"{len(train_x)} training stamps, {len(test_x)} held out", flush=True)
    # The EDM recipe on images standardised per channel (sigma_data = 1), as in the galaxies demo.
    stats = channel_stats(train_x)
    cfg = TrainConfig(batch_size=16, peak_lr=1e-3, warmup_steps=100, ema_decay=0.999, seed=0, recipe="edm")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    budget = None if args.steps else args.minutes * 60
    r = train(stats.standardise(train_x), UNET, cfg, budget_s=budget, max_steps=args.steps, checkpoint=work / "ckpt.eqx",
              checkpoint_every_s=120, progress=True)
    info = dict(steps=r.steps_done, planned=r.plan.total_steps, stopped=r.stopped, step_time_s=r.step_time_s,
                seconds_this_call=time.time() - t0, final_loss_mean_last100=float(sum(r.losses[-100:]) / max(1, len(r.losses[-100:]))),
                hardware=_hardware(),
                channel_stats=dict(mean=list(stats.mean), std=list(stats.std)))
    previous = json.loads((work / "train_info.json").read_text()) if (work / "train_info.json").exists() else {}
    info["seconds_all_calls"] = previous.get("seconds_all_calls", 0.0) + info["seconds_this_call"]
    info["calls"] = previous.get("calls", 0) + 1
    (work / "train_info.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))


def cmd_export(args):
    from workshop_astro.pretrained import export_pretrained
    from workshop_astro.train import load_checkpoint

    work = Path(args.work)
    state, meta = load_checkpoint(work / "ckpt.eqx")
    info = json.loads((work / "train_info.json").read_text()) if (work / "train_info.json").exists() else {}
    extra = dict(data="HDF 64x64 source-centred stamps (skimage.data.hubble_deep_field), training strip x<800",
                 cuts=PRETRAIN_CUTS, steps=int(state.step), plan=meta.get("plan"), train=meta.get("train"), info=info,
                 loss_last100=float(sum(meta["losses"][-100:]) / max(1, len(meta["losses"][-100:]))))
    stats = None
    if meta.get("train", {}).get("recipe", "eps") == "edm":
        from workshop_astro.galaxies import channel_stats

        stats = channel_stats(pretrain_stamps()[0])  # the statistics the training images were standardised with
    target = Path(args.to).resolve() if args.to else TARGET
    sha = export_pretrained(state.ema, target, extra, stats=stats)
    size = target.stat().st_size
    print(f"{target}: {size} bytes, sha256 {sha}")
    if target != TARGET:
        return  # a candidate: the package and its registry stay as they are
    # keep the registry entry in step with the file
    plugin = ROOT / "modules/astro_diffusion/src/workshop_astro/plugin.py"
    text = plugin.read_text()
    new, n = re.subn(r'(DataEntry\("unet64_hdf\.eqx", sha256=")[0-9a-f]{64}(",\s*embedded="data/unet64_hdf\.eqx", size=)\d+',
                     lambda m: f"{m.group(1)}{sha}{m.group(2)}{size}", text)
    if n != 1:
        raise SystemExit(f"could not find the unet64_hdf.eqx entry in {plugin}; set sha256={sha} size={size} there")
    plugin.write_text(new)
    print(f"updated {plugin.relative_to(ROOT)}")


def cmd_evaluate(args):
    """Sample a model file and measure its galaxies against the held-out strip (``evaluate.compare``)."""
    import jax
    import numpy as np

    from workshop_astro.demos.galaxies import sample_galaxies
    from workshop_astro.evaluate import compare, format_table, plot_report
    from workshop.data import sha256_of
    from workshop_astro.pretrained import PretrainedFileError, load_pretrained, pretrained_stats
    from workshop_astro.sde import VPSDE

    path = Path(args.model) if args.model else TARGET
    try:
        model, header = load_pretrained(path)
    except PretrainedFileError as exc:
        raise SystemExit(str(exc)) from None
    train_x, test_x, _ = pretrain_stamps()
    t0 = time.time()
    images, nfe = sample_galaxies(model, VPSDE(), jax.random.key(args.seed), args.n, args.sampler_steps, 64)
    stats = pretrained_stats(header, path)
    if stats is not None:
        images = stats.unstandardise(images)
    sample_s = time.time() - t0
    rep = compare(images, train_x, test_x, seed=args.seed)
    print(format_table(rep))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_report(rep, images, test_x, out.with_suffix(".png"),
                title=f"{path.name}: {header.get('info', {}).get('steps', '?')} training steps, {nfe} NFE")
    rep.pop("_stats")
    row = dict(model=path.name, sha256=sha256_of(path), training_steps=header.get("info", {}).get("steps"),
               recipe=header.get("recipe", "eps"), n=args.n, nfe=nfe,
               sample_seconds=sample_s, seed=args.seed, mean_ratio=rep["mean_distance"] / rep["mean_floor"], **rep)
    previous = json.loads(out.read_text()) if out.exists() else dict(benchmark="astro_pretrained_64", rows=[])
    previous["rows"] = [r for r in previous["rows"] if (r["model"], r["training_steps"], r["seed"]) !=
                        (row["model"], row["training_steps"], row["seed"])] + [row]
    out.write_text(json.dumps(previous, indent=1, default=float) + "\n")
    print(f"mean distance / floor {row['mean_ratio']:.2f}; wrote {out} and {out.with_suffix('.png')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--minutes", type=float, default=70, help="time budget of this call (ignored with --steps)")
    t.add_argument("--steps", type=int, default=None, help="train exactly this many steps in all (resumable)")
    t.add_argument("--work", default="build/astro64_edm")
    e = sub.add_parser("export")
    e.add_argument("--work", default="build/astro64_edm")
    e.add_argument("--to", default=None, help="write the model here instead of into the package (a candidate)")
    v = sub.add_parser("evaluate")
    v.add_argument("--model", default=None, help="a model file (default: the shipped one)")
    v.add_argument("--n", type=int, default=300, help="galaxies to sample")
    v.add_argument("--sampler-steps", type=int, default=15, help="score evaluations (the generate demo's 15)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default=str(ROOT / "benchmarks/results/astro_pretrained_64.json"))
    args = ap.parse_args()
    {"train": cmd_train, "export": cmd_export, "evaluate": cmd_evaluate}[args.cmd](args)


if __name__ == "__main__":
    main()
