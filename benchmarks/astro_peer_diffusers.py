"""Benchmark: the galaxy demo against a standard PyTorch/diffusers recipe at equal training time.

What a learner gets from this project's recipe, measured against the recipe most people
would reach for first, on the same 32x32 HDF stamps, judged by the same metrics.

**Project side**: exactly the default ``workshop run astro galaxies`` at the ``cpu``
preset: the preset's U-Net (``unet.config_for("cpu")``: 3x3 blocks, channels 16 x (1, 2, 2),
attention at the lowest level, pixel positions as two more inputs), the preset's
``TrainConfig`` (``GalaxyPreset.train_config``: the EDM recipe on images standardised per
channel, AdamW at peak 2e-3 with warm-up and cosine decay, EMA 0.995, random symmetries of
the square, every second step on 64 crops of 16x16 since 2026-12-02), trained with
``train.train`` and sampled
with the demo's ``sample_galaxies`` (DPM-Solver++(2M) on EDM's sigma grid, 20 evaluations).

**Peer side**: the recipe of diffusers' ``train_unconditional`` example, on a network
sized for a CPU:

* network: ``UNet2DModel(sample_size=32, block_out_channels=(16, 32, 32),
  layers_per_block=1, down: Down, Down, AttnDown; up: AttnUp, Up, Up, norm_num_groups=8)``,
  the same widths, depth and attention level as the project's preset (280,755 parameters
  against 282 k; the example's own network has 6 levels up to 512 channels and 2 blocks
  per level, far beyond 5 CPU minutes); GroupNorm needs the 8 groups at 16 channels;
* noise: ``DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")``, epsilon
  prediction, uniform integer timesteps, plain MSE (the example's defaults);
* optimiser: AdamW (lr 1e-4, betas (0.95, 0.999), weight decay 1e-6, eps 1e-8), gradient
  norm clipped at 1, ``get_scheduler("cosine")`` with 500 warm-up steps over the planned
  steps, ``EMAModel`` with warm-up (max decay 0.9999, inv_gamma 1, power 3/4), all as in
  the example's defaults;
* data: the same training stamps in [-1, 1] (the example's ``Normalize([0.5], [0.5])``
  range), with the project's augmentation (one of the 8 symmetries of the square per
  image, a superset of the example's random horizontal flip; about the stamp's centre
  pixel since 2026-12-01), batch 32 like the project
  (the example's default is 16), shuffled epochs;
* sampling: the EMA weights with ``DPMSolverMultistepScheduler`` made from the DDPM
  scheduler's config (its default DPM-Solver++(2M), the same solver as the project's) at
  20 steps = 20 network evaluations, clamped to [-1, 1] as ``DDPMPipeline`` does. The
  same weights are also sampled with ``DDIMScheduler`` (20 steps) and with the example's
  own sampler, ``DDPMPipeline``'s 1,000 ancestral DDPM steps (50x the evaluations), as
  rows ``<peer>/ddim_20`` and ``<peer>/ddpm_1000``: DPM-Solver++ extrapolates from the
  network's clean-image estimate, which at the highest noise levels of a briefly trained
  noise-prediction network is far off (tens of the data's units), so the peer is not
  judged by one sampler only.

One deviation is run beside the example as-is (``peer_example``): ``peer_fast_lr`` warms
up for 50 steps (the project's) to a learning rate of 1e-3, since the example's 500
warm-up steps at 1e-4 are half of a 5-minute CPU run. Everything else is unchanged.

**Equal time** on a shared, loaded 2-core machine, as in ``astro_training_recipes.py``:
the training step of each side is timed in alternating turns in one process (medians;
torch limited to the threads XLA uses, one per core this process may run on), and each
side trains ``ref_steps * t_project / t_side`` steps, ``ref_steps`` being the 2,552 steps
the default demo fits in its 5-minute budget on the idle machine (``workshop run astro``,
0.095 s per step with every second step on crops, 2026-12-02; 1,529 steps at 0.173 s on
whole stamps the day before). Both are then sampled (100 galaxies) and
measured with ``evaluate.compare`` against the 100 held-out stamps (ten statistics, each
beside its train-vs-held-out floor).

    uv pip install --python .venv/bin/python diffusers   # not a project dependency
    nice .venv/bin/python benchmarks/astro_peer_diffusers.py

Writes benchmarks/results/astro_peer_diffusers.json and astro_peer_diffusers.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "astro_peer_diffusers.json"
INSTALL = "uv pip install --python .venv/bin/python diffusers"
DEMO_REF_STEPS = 2552
PRESET = "cpu"


@dataclass(frozen=True)
class PeerRecipe:
    """The diffusers ``train_unconditional`` optimiser recipe (its defaults unless stated)."""

    name: str
    lr: float = 1e-4
    warmup_steps: int = 500
    betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = 1e-6
    adam_eps: float = 1e-8
    grad_clip: float = 1.0
    ema_max_decay: float = 0.9999
    ema_inv_gamma: float = 1.0
    ema_power: float = 0.75
    train_timesteps: int = 1000
    beta_schedule: str = "linear"


PEERS = {
    "peer_example": PeerRecipe("peer_example"),
    "peer_fast_lr": PeerRecipe("peer_fast_lr", lr=1e-3, warmup_steps=50),
}


def require_peer_libraries() -> dict:
    """Versions of torch and diffusers, or exit 2 with the install command."""
    missing = []
    versions = {}
    for name in ("torch", "diffusers"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            missing.append(name)
    if missing:
        print(f"this benchmark needs {' and '.join(missing)}, which the project does not install; "
              f"install into the project's environment with:\n    {INSTALL}", file=sys.stderr)
        sys.exit(2)
    return versions


def demo_pieces():
    """The galaxy demo's presets and sampler (``demos/galaxies.py``, formerly ``demos.py``)."""
    try:
        from workshop_astro.demos.galaxies import GALAXY_PRESETS, sample_galaxies
    except ImportError:
        from workshop_astro.demos import GALAXY_PRESETS, sample_galaxies
    return GALAXY_PRESETS[PRESET], sample_galaxies


# --------------------------------------------------------------------------- the peer


def peer_unet(seed: int):
    """``UNet2DModel`` with the widths, depth and attention level of the project's ``cpu`` U-Net."""
    import torch
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(16, 32, 32), norm_num_groups=8,
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))


def random_symmetries(x, rng: np.random.Generator):
    """Each ``(C, H, W)`` image of the batch under one random symmetry of the square."""
    import torch

    k = rng.integers(0, 8, len(x))
    out = torch.empty_like(x)
    for j in range(8):
        sel = np.flatnonzero(k == j)
        if len(sel):
            y = torch.rot90(x[sel], j % 4, dims=(-2, -1))
            out[sel] = torch.flip(y, dims=(-1,)) if j >= 4 else y
    return out


class PeerTrainer:
    """One training run of the diffusers recipe: ``step()`` does one optimiser step."""

    def __init__(self, recipe: PeerRecipe, images: np.ndarray, total_steps: int, batch: int, seed: int):
        import torch
        from diffusers import DDPMScheduler
        from diffusers.optimization import get_scheduler
        from diffusers.training_utils import EMAModel

        self.recipe, self.batch = recipe, batch
        self.model = peer_unet(seed)
        self.noise = DDPMScheduler(num_train_timesteps=recipe.train_timesteps, beta_schedule=recipe.beta_schedule,
                                   prediction_type="epsilon")
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=recipe.lr, betas=recipe.betas,
                                     weight_decay=recipe.weight_decay, eps=recipe.adam_eps)
        self.lr = get_scheduler("cosine", optimizer=self.opt, num_warmup_steps=recipe.warmup_steps,
                                num_training_steps=total_steps)
        self.ema = EMAModel(self.model.parameters(), decay=recipe.ema_max_decay, use_ema_warmup=True,
                            inv_gamma=recipe.ema_inv_gamma, power=recipe.ema_power)
        self.data = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.order: list[int] = []
        self.losses: list[float] = []

    def _batch(self):
        while len(self.order) < self.batch:  # shuffled epochs, carried over
            self.order.extend(self.rng.permutation(len(self.data)).tolist())
        idx, self.order = self.order[:self.batch], self.order[self.batch:]
        return random_symmetries(self.data[idx], self.rng)

    def step(self) -> float:
        import torch
        import torch.nn.functional as F

        self.model.train()
        clean = self._batch()
        noise = torch.randn(clean.shape, generator=self.gen)
        t = torch.randint(0, self.noise.config.num_train_timesteps, (len(clean),), generator=self.gen)
        loss = F.mse_loss(self.model(self.noise.add_noise(clean, noise, t), t).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.opt.step()
        self.lr.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.step(self.model.parameters())
        self.losses.append(float(loss.detach()))
        return self.losses[-1]

    def sample(self, n: int, sampler: str, seed: int) -> tuple[np.ndarray, int]:
        """``n`` images from the EMA weights with one of ``PEER_SAMPLERS``; ``(images, network evaluations)``."""
        import copy

        import diffusers
        import torch

        cls_name, steps, _ = PEER_SAMPLERS[sampler]
        model = copy.deepcopy(self.model).eval()
        self.ema.copy_to(model.parameters())
        solver = getattr(diffusers, cls_name).from_config(self.noise.config)
        solver.set_timesteps(steps)
        x = torch.randn((n, 3, 32, 32), generator=torch.Generator().manual_seed(seed))
        noise = torch.Generator().manual_seed(seed + 1)  # for DDPM's ancestral steps; the others ignore it
        nfe = 0
        with torch.no_grad():
            for t in solver.timesteps:
                x = solver.step(model(x, t).sample, t, x, generator=noise).prev_sample
                nfe += 1
        return x.clamp(-1, 1).numpy(), nfe


#: How a peer model is sampled: the diffusers scheduler made from the DDPM scheduler's
#: config, its number of steps (= network evaluations), and the description kept in the
#: JSON. The first is the project's solver at the project's 20 evaluations; DDIM is another
#: 20-evaluation sampler; DDPM's 1,000 ancestral steps are what the example's
#: ``DDPMPipeline`` runs. Every sample is clamped to [-1, 1] as ``DDPMPipeline`` does.
PEER_SAMPLERS = {
    "dpmpp_2m_20": ("DPMSolverMultistepScheduler", 20, "diffusers DPMSolverMultistepScheduler (DPM-Solver++(2M)), "
                                                       "20 steps, clamped to [-1, 1]"),
    "ddim_20": ("DDIMScheduler", 20, "diffusers DDIMScheduler, 20 steps (eta 0), clamped to [-1, 1]"),
    "ddpm_1000": ("DDPMScheduler", 1000, "diffusers DDPMScheduler, 1,000 ancestral steps (DDPMPipeline's default), "
                                         "clamped to [-1, 1]"),
}


# --------------------------------------------------------------------------- equal time


def project_setup(seed: int):
    from workshop_astro.unet import config_for

    preset, _ = demo_pieces()
    return config_for(preset.unet), preset.train_config(seed)


def step_times(images: np.ndarray, batch: int, repeats: int = 5, steps_per_turn: int = 4) -> dict:
    """Median seconds per training step of the project and the peer, timed in alternating turns.

    ``steps_per_turn`` is even, so the project's turns hold as many crop steps as whole-stamp ones."""
    import jax.numpy as jnp

    from workshop_astro.galaxies import channel_stats
    from workshop_astro.sde import VPSDE
    from workshop_astro.train import init_state, make_train_step

    unet, cfg = project_setup(0)
    data = jnp.asarray(channel_stats(images).standardise(images))
    step = make_train_step(VPSDE(), cfg)
    state = init_state(unet, cfg)
    for _ in range(2):  # compile (the whole-stamp step, then the crop step)
        state, loss = step(state, data, np.float32(1e-4))
    loss.block_until_ready()
    peer = PeerTrainer(PEERS["peer_example"], images, 10_000, batch, 0)
    peer.step()
    times = {"project": [], "peer": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps_per_turn):
            state, loss = step(state, data, np.float32(1e-4))
        loss.block_until_ready()
        times["project"].append((time.perf_counter() - t0) / steps_per_turn)
        t0 = time.perf_counter()
        for _ in range(steps_per_turn):
            peer.step()
        times["peer"].append((time.perf_counter() - t0) / steps_per_turn)
    return times


# --------------------------------------------------------------------------- quality


def _report(name, images, data, seed, **extra) -> dict:
    from workshop_astro.evaluate import compare

    rep = compare(images, data.train, data.test, seed=seed)
    rep.pop("_stats")
    return dict(side=name, **extra, mean_distance=rep["mean_distance"], mean_floor=rep["mean_floor"],
                mean_ratio=rep["mean_distance"] / rep["mean_floor"], distance=rep["distance"], floor=rep["floor"],
                ratio=rep["ratio"], memorisation=rep["memorisation"], summary_generated=rep["summary_generated"],
                summary_heldout=rep["summary_heldout"], load_avg_after=os.getloadavg())


def run_project(data, steps: int, seed: int, n: int) -> tuple[dict, np.ndarray]:
    import jax

    from workshop_astro.galaxies import channel_stats
    from workshop_astro.sde import VPSDE
    from workshop_astro.train import train
    from workshop_astro.unet import count_params

    preset, sample_galaxies = demo_pieces()
    unet, cfg = project_setup(seed)
    stats = channel_stats(data.train)
    t0 = time.monotonic()
    result = train(stats.standardise(data.train), unet, cfg, sde=VPSDE(), max_steps=steps, progress=False)
    train_s = time.monotonic() - t0
    t0 = time.monotonic()
    gen, nfe = sample_galaxies(result.ema, VPSDE(), jax.random.key(seed + 1), n, preset.sampler_steps,
                               data.resolution)
    sample_s = time.monotonic() - t0
    gen = stats.unstandardise(gen)
    return _report("project", gen, data, seed, recipe=dict(unet=unet.as_dict(), train=asdict(cfg)),
                   parameters=count_params(result.ema), steps=result.steps_done, train_s_under_load=train_s,
                   sample_s_under_load=sample_s, nfe=int(nfe), sampler="DPM-Solver++(2M) in EDM sigma",
                   final_loss=float(np.mean(result.losses[-20:]))), gen


def run_peer(recipe: PeerRecipe, data, steps: int, batch: int, seed: int, n: int) -> list[tuple[dict, np.ndarray]]:
    """Train one peer recipe, then sample its EMA weights with each of ``PEER_SAMPLERS``: one
    ``(report, images)`` per sampler, the first (the project's solver) named as the recipe."""
    trainer = PeerTrainer(recipe, data.train, steps, batch, seed)
    t0 = time.monotonic()
    for _ in range(steps):
        trainer.step()
    train_s = time.monotonic() - t0
    params = sum(p.numel() for p in trainer.model.parameters())
    out = []
    for i, sampler in enumerate(PEER_SAMPLERS):
        t0 = time.monotonic()
        gen, nfe = trainer.sample(n, sampler, seed + 1)
        sample_s = time.monotonic() - t0
        side = recipe.name if i == 0 else f"{recipe.name}/{sampler}"
        out.append((_report(side, gen, data, seed, recipe=asdict(recipe), parameters=int(params), steps=steps,
                            train_s_under_load=train_s, sample_s_under_load=sample_s, nfe=nfe,
                            sampler=PEER_SAMPLERS[sampler][2], final_loss=float(np.mean(trainer.losses[-20:]))), gen))
    return out


def plot(path: Path, data, generated: dict, runs: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workshop_astro.evaluate import image_grid

    panels = [("held-out real", data.test[:36], None)] + [(r["side"], generated[r["side"]][:36], r) for r in runs]
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 4.1 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, (name, imgs, r) in zip(axes.flat, panels):
        ax.imshow(image_grid(imgs, ncols=6))
        ax.set_axis_off()
        label = name if r is None else (f"{name}\n{r['steps']} steps, {r['nfe']} evaluations\n"
                                        f"mean distance / floor {r['mean_ratio']:.3g}")
        ax.set_title(label, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref-steps", type=int, default=DEMO_REF_STEPS,
                    help=f"the project's steps (default {DEMO_REF_STEPS}: the demo's 5 minutes on an idle machine)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"peer recipes to run, from {sorted(PEERS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--step-times", help="reuse step times measured earlier: project=SECONDS,peer=SECONDS")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    peers = a.peers.split(",")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        sys.exit(f"unknown peer recipe(s) {unknown}; choose from {sorted(PEERS)}")
    if a.ref_steps < 1:
        sys.exit(f"--ref-steps must be a positive number of steps, got {a.ref_steps}")
    versions = require_peer_libraries()
    import equinox
    import jax
    import torch

    from workshop.data import fetch
    from workshop_astro.galaxies import load_stamps

    threads = len(os.sched_getaffinity(0))  # XLA's CPU client runs one thread per available core
    torch.set_num_threads(threads)
    versions.update(jax=jax.__version__, equinox=equinox.__version__, python=platform.python_version())
    data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))
    preset, _ = demo_pieces()
    load_start = os.getloadavg()
    if a.step_times:
        timing = {k: float(v) for k, v in (kv.split("=") for kv in a.step_times.split(","))}
        samples = None
    else:
        samples = step_times(data.train, preset.batch_size)
        timing = {k: float(np.median(v)) for k, v in samples.items()}
    ratio = timing["project"] / timing["peer"]
    print(f"step times (s, alternating turns, load {load_start[0]:.1f}): project {timing['project']:.3f}, "
          f"peer {timing['peer']:.3f}; the peer trains {ratio:.2f}x the project's steps", flush=True)
    full = a.ref_steps == DEMO_REF_STEPS
    result = dict(
        benchmark="astro_peer_diffusers",
        budget=("the default demo's 5 minutes on an idle 2-core machine" if full else
                f"SHORT RUN: {a.ref_steps} of the {DEMO_REF_STEPS} steps the demo fits in 5 minutes "
                f"({a.ref_steps / DEMO_REF_STEPS:.2f}x its budget)"),
        ref_steps=a.ref_steps, demo_ref_steps=DEMO_REF_STEPS, batch=preset.batch_size, threads=threads,
        n_samples=a.samples, sampler_steps=preset.sampler_steps, step_time_s=timing, step_time_turns_s=samples,
        images_per_s={k: preset.batch_size / v for k, v in timing.items()},
        peer_steps_per_project_step=ratio, load_avg_start=load_start, versions=versions, runs=[])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    generated = {}

    def record(res, gen):
        res["when"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        result["runs"].append(res)
        generated[res["side"]] = gen
        print(f"{res['side']:24s}: {res['parameters']} parameters, {res['steps']} steps "
              f"({res['train_s_under_load']:.0f} s), mean/floor {res['mean_ratio']:.2f}, "
              + ", ".join(f"{k} {v:.2f}" for k, v in res["ratio"].items()), flush=True)
        proj = next((r for r in result["runs"] if r["side"] == "project"), None)
        if proj is not None:
            result["peer_better_than_project"] = {
                r["side"]: [k for k in r["ratio"] if r["ratio"][k] < proj["ratio"][k]]
                for r in result["runs"] if r["side"] != "project"}
        out.write_text(json.dumps(result, indent=1) + "\n")

    record(*run_project(data, a.ref_steps, a.seed, a.samples))
    for p in peers:
        steps = int(round(a.ref_steps * ratio))
        for res, gen in run_peer(PEERS[p], data, steps, preset.batch_size, a.seed, a.samples):
            record(res, gen)
    title = f"HDF galaxies at equal training time ({result['budget']}); {a.samples} samples each"
    plot(out.with_suffix(".png"), data, generated, result["runs"], title)
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
