"""Time-budgeted, resumable, data-parallel training of a noise-predicting U-Net.

* **Objective** (``TrainConfig.recipe``): ``"edm"`` (default) trains the network inside
  EDM's preconditioning (:mod:`workshop_astro.edm`): log-normal noise levels and the
  weighting ``lambda(sigma) = 1 / c_out(sigma)**2`` on images standardised per channel
  (``sigma_data = 1``). ``"eps"`` is the plain continuous-time denoising score matching
  with the forward SDE of :mod:`workshop_astro.sde`: ``t ~ U(t_eps, T)``,
  ``x(t) = alpha(t) x(0) + std(t) eps``, regress the network on ``eps`` (the score is
  ``-eps / std(t)``; DSM with the weighting ``lambda(t) = std(t)**2``). Both models answer
  ``model(x, t) -> eps``, so the samplers take either.
* **Optimiser**: Adam with gradient clipping; the learning rate (linear warm-up, then
  cosine decay to ``min_lr_ratio`` of the peak) is computed from the *planned* number of
  steps and passed to the compiled step, so planning never recompiles. EMA weights are
  kept for sampling.
* **Budget**: :func:`train` compiles, measures the step time (:func:`compile_and_measure`),
  then plans as many steps as fit in the budget (:func:`plan_steps`), and the loop
  (:func:`run_steps`) re-plans from the recent pace and stops at the deadline whatever
  happens on a shared machine. How a call runs (budget, checkpoint, progress, mesh) is a
  :class:`RunOptions`; what is learned is a :class:`TrainConfig`.
* **Checkpoints**: one file, written to a temporary name and moved into place
  (``os.replace``), holding the model, the EMA, the optimiser state, the PRNG key, the
  step, the plan and the loss history. ``Ctrl-C`` saves; calling :func:`train` again
  with the same checkpoint path resumes exactly where it stopped (each step's batch,
  augmentation and noise come from ``fold_in(key, step)``).
* **Data parallel**: the batch is sharded over every visible device along a 1-D mesh
  (``jax.sharding``); parameters are replicated and XLA inserts the gradient all-reduce.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .galaxies import square_symmetry
from .edm import EDMDenoiser, edm_loss
from .sde import SDE, VPSDE
from .unet import UNet, UNetConfig, init_unet, pixel_coordinates
from .xla_cpu import filter_jit as _fast_jit

__all__ = [
    "TrainConfig",
    "TrainState",
    "TrainResult",
    "Plan",
    "noise_prediction_loss",
    "learning_rate",
    "make_optimizer",
    "make_train_step",
    "init_state",
    "data_mesh",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_meta",
    "check_resumable",
    "check_crops",
    "images_per_step",
    "crop_steps",
    "RunOptions",
    "RunProgress",
    "measured_step_time",
    "plan_steps",
    "replan_total",
    "checkpoint_meta",
    "start_or_resume",
    "compile_and_measure",
    "run_steps",
    "train",
]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`train`.

    Arguments:
        batch_size: images per step (rounded up to a multiple of the device count).
        peak_lr: learning rate after warm-up.
        warmup_steps: length of the linear warm-up (at most a fifth of the planned steps).
        min_lr_ratio: the cosine decays to ``peak_lr * min_lr_ratio``.
        ema_decay: the largest EMA decay. At step ``n`` the decay is
            ``min(ema_decay, (1 + n) / (10 + n))``: 0.1 at the first step, so the average
            forgets the random start, and 0.995 only after 1,790 steps. The 5-minute demo
            (about 1,600 steps) ends at 0.994 whichever ``ema_decay`` is at least that:
            its average spans about the last 10 % of the run (0.99 and 0.998 were measured
            against 0.995 in the module README).
        grad_clip: global gradient-norm clip.
        t_eps: smallest training time (``std(t_eps)`` must not vanish).
        augment: apply a random symmetry of the square, about the centre pixel where the
            stamps hold their source, to every image.
        seed: PRNG seed of the initial weights and of the data order.
        recipe: ``"edm"`` (preconditioned denoiser, log-normal noise levels) or ``"eps"``
            (noise prediction with uniform times).
        sigma_data: the data's standard deviation assumed by the ``"edm"`` recipe (1 for
            images standardised per channel, :class:`~workshop_astro.galaxies.ChannelStats`).
        p_mean, p_std: ``log sigma ~ N(p_mean, p_std**2)`` in the ``"edm"`` recipe. EDM's
            own ``N(-1.2, 1.2**2)`` was tuned for ``sigma_data = 0.5`` and long runs; on the
            standardised galaxy stamps in the 5-minute demo it leaves the high noise levels,
            where a stamp's layout (one centred galaxy) is decided, nearly untrained, and
            the samples come out as scattered clumps (mean distance 2.9-3.9x the floor
            against 1.2-1.3x with these defaults at equal time, two seeds;
            ``benchmarks/astro_training_recipes.py``, module README).
        crop_every: every ``crop_every``-th step trains on random ``crop_size`` crops of
            the stamps instead of whole stamps (0: never). Each crop comes with the
            positions of its pixels in the stamp, so the network must read them
            (``UNetConfig.coords``); sampling still works on whole stamps. After patch
            diffusion (Wang et al. 2023, "Patch Diffusion: Faster and More Data-Efficient
            Training of Diffusion Models"). On the ``cpu`` preset, every second step on 64
            crops of 16x16 (half a whole step's pixels) took 92.6 ms a step on average
            against 120.4 ms for whole stamps only (2 threads, alternating turns), so the
            5-minute demo takes about 1.3x the steps, and its mean distance to the
            held-out galaxies fell (module README). ``"edm"`` recipe only.
        crop_size: side of the square crops, smaller than the stamps.
        crop_batch: crops per crop step.
    """

    batch_size: int = 32
    peak_lr: float = 2e-3
    warmup_steps: int = 50
    min_lr_ratio: float = 0.05
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    t_eps: float = 1e-3
    augment: bool = True
    seed: int = 0
    recipe: str = "edm"
    sigma_data: float = 1.0
    p_mean: float = 0.0
    p_std: float = 1.8
    crop_every: int = 0
    crop_size: int = 16
    crop_batch: int = 64

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ValueError(f"TrainConfig.recipe must be one of {RECIPES}, got {self.recipe!r}")
        if self.crop_every < 0 or self.crop_every == 1:
            raise ValueError(f"TrainConfig.crop_every must be 0 (whole stamps only) or at least 2 (every n-th step "
                             f"on crops), got {self.crop_every!r}")
        if self.crop_every and self.recipe != "edm":
            raise ValueError("TrainConfig.crop_every needs recipe='edm' (the crops are denoised with EDM's loss); "
                             "set crop_every=0 for the 'eps' recipe")
        if self.crop_every and (self.crop_size < 4 or self.crop_batch < 1):
            raise ValueError(f"TrainConfig.crop_size must be at least 4 and crop_batch at least 1, got "
                             f"{self.crop_size!r} and {self.crop_batch!r}")


#: The training objectives :class:`TrainConfig` accepts.
RECIPES = ("edm", "eps")


@dataclass(frozen=True)
class RunOptions:
    """How one call of :func:`train` runs: its budget, checkpoint, progress and devices.

    :class:`TrainConfig` says what is learned (a checkpoint must match it to resume);
    these options may differ from one call to the next.

    Arguments:
        budget_s: wall-clock seconds for the whole call (compilation included); the
            number of steps is planned from the measured step time.
        max_steps: an upper bound on (or, without a budget, the exact) number of steps.
        checkpoint: file to resume from (if it exists) and to save into.
        checkpoint_every_s: seconds between periodic checkpoints.
        progress: show a tqdm bar (loss, steps/s, ETA).
        callback: ``callback(step, loss)`` after every step (may raise ``KeyboardInterrupt``).
        mesh: device mesh for data parallelism (default: all visible devices).
        measure_steps: timed steps after the compiling one, to measure the step time.
        reserve_fn: ``reserve_fn(step_time_s, compile_s) -> seconds`` to leave free at the
            end of the budget for what follows training (sampling, evaluation), estimated
            from the measured costs; the deadline moves earlier by that much.

    >>> RunOptions(max_steps=10).checkpoint is None
    True
    """

    budget_s: float | None = None
    max_steps: int | None = None
    checkpoint: str | os.PathLike | None = None
    checkpoint_every_s: float = 60.0
    progress: bool = True
    callback: Callable[[int, float], None] | None = None
    mesh: Mesh | None = None
    measure_steps: int = 3
    reserve_fn: Callable[[float, float], float] | None = None

    def __post_init__(self):
        if self.budget_s is None and self.max_steps is None:
            raise ValueError("give a time budget (budget_s) or a number of steps (max_steps)")


@dataclass
class Plan:
    """The planned run: total steps and the schedule, fixed once measured (saved in checkpoints)."""

    total_steps: int
    warmup_steps: int
    peak_lr: float
    min_lr_ratio: float
    step_time_s: float | None = None


class TrainState(eqx.Module):
    """Everything that changes during training (a pytree)."""

    model: eqx.Module  # a UNet (recipe "eps") or an EDMDenoiser around one ("edm")
    ema: eqx.Module
    opt_state: optax.OptState
    key: jax.Array  # raw uint32 key data, so it serialises like any array
    step: jax.Array


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    model: eqx.Module
    ema: eqx.Module
    losses: list[float]
    plan: Plan
    steps_done: int
    seconds: float
    step_time_s: float | None  # seconds per step over the loop (the plan's measurement if it took no step)
    images_per_s: float | None  # stamps, or crops on crop steps, per second
    stopped: str  # "planned", "deadline", "interrupted"
    resumed_from: int = 0


def noise_prediction_loss(model, sde: SDE, x0: jax.Array, key: jax.Array, t_eps: float = 1e-3) -> jax.Array:
    """Mean squared error of the predicted noise on a batch ``x0`` of shape ``(B, C, H, W)``.

    Times are stratified over ``[t_eps, T]`` (one per slice of the batch) to lower the
    variance of the estimate.
    """
    b = x0.shape[0]
    kt, kn = jax.random.split(key)
    u = (jnp.arange(b) + jax.random.uniform(kt, (b,))) / b
    t = t_eps + (sde.T - t_eps) * u
    eps = jax.random.normal(kn, x0.shape, x0.dtype)
    alpha = jax.vmap(sde.marginal_mean_coeff)(t)[:, None, None, None]
    std = jax.vmap(sde.marginal_std)(t)[:, None, None, None]
    xt = alpha * x0 + std * eps
    pred = jax.vmap(model)(xt, t)
    return jnp.mean((pred - eps) ** 2)


def learning_rate(step: int, plan: Plan) -> np.float32:
    """Linear warm-up to ``peak_lr`` then cosine decay to ``peak_lr * min_lr_ratio``.

    Computed in Python (not traced), so that a new plan never recompiles the step.
    """
    w = max(plan.warmup_steps, 1)
    if step < w:
        return np.float32(plan.peak_lr * (step + 1) / w)
    frac = min(max((step - w) / max(plan.total_steps - w, 1), 0.0), 1.0)
    return np.float32(plan.peak_lr * (plan.min_lr_ratio + (1 - plan.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac))))


# --------------------------------------------------------------------------- planning

#: Share of the time left that the plan fills with steps (the rest absorbs jitter).
PLAN_FILL = 0.97


def measured_step_time(times: list[float]) -> float:
    """The step time from the first timed steps: the median without the first (which compiles).

    >>> measured_step_time([9.0, 0.5, 0.4, 0.6])
    0.5
    """
    return float(np.median(times[1:])) if len(times) > 1 else times[0]


def plan_steps(cfg: TrainConfig, step_time_s: float, steps_done: int, seconds_left: float | None,
               max_steps: int | None) -> Plan:
    """The plan of a fresh run: as many steps as fit in ``seconds_left``, and the schedule.

    Arguments:
        cfg: gives the learning-rate schedule (peak, warm-up, floor).
        step_time_s: the measured seconds per step.
        steps_done: steps already taken (those that measured the step time).
        seconds_left: seconds until the deadline, or ``None`` without a budget.
        max_steps: an upper bound on the total (the exact total without a budget).

    Returns:
        A :class:`Plan` whose warm-up is at most a fifth of its steps.

    >>> plan_steps(TrainConfig(warmup_steps=50), 0.5, 4, 100.0, None).total_steps
    198
    """
    if seconds_left is None:
        if max_steps is None:
            raise ValueError("plan_steps needs seconds_left (a budget) or max_steps")
        total = max_steps
    else:
        total = steps_done + max(0, int(PLAN_FILL * seconds_left / step_time_s))
        if max_steps is not None:
            total = min(total, max_steps)
    warm = min(cfg.warmup_steps, max(1, total // 5))
    return Plan(int(total), int(warm), cfg.peak_lr, cfg.min_lr_ratio, step_time_s)


def replan_total(step: int, pace_s: float, seconds_left: float, max_steps: int | None = None,
                 ceiling: int | None = None) -> int:
    """A new total number of steps from the recent pace, so the schedule ends with the budget.

    On a shared machine the step time drifts; the total follows it, bounded by
    ``max_steps`` and by ``ceiling`` (a resumed run's plan is never extended).

    >>> replan_total(100, 0.5, 10.0, ceiling=110)
    110
    """
    total = step + max(1, int(PLAN_FILL * seconds_left / pace_s))
    if max_steps is not None:
        total = min(total, max_steps)
    if ceiling is not None:
        total = min(total, ceiling)
    return total


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Clip, then Adam's scaling; the (planned) learning rate is applied by the train step."""
    return optax.chain(optax.clip_by_global_norm(cfg.grad_clip), optax.scale_by_adam())


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: every visible device)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def init_state(config: UNetConfig, cfg: TrainConfig, optimizer=None) -> TrainState:
    """Fresh weights (from ``cfg.seed``), EMA = weights, zero optimiser state, step 0."""
    optimizer = optimizer or make_optimizer(cfg)
    model = init_unet(config, cfg.seed)
    if cfg.recipe == "edm":
        model = EDMDenoiser(model, cfg.sigma_data)
    # Adam's state is zeros: build it from shapes, without tracing or compiling anything.
    opt_state = jax.tree_util.tree_map(
        lambda s: jnp.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s,
        jax.eval_shape(optimizer.init, eqx.filter(model, eqx.is_inexact_array)),
    )
    kdata = np.asarray([0, cfg.seed], dtype=np.uint32)  # threefry key data of key(seed)
    return TrainState(model, model, opt_state, jnp.asarray(kdata), jnp.asarray(0, jnp.int32))


def make_train_step(sde: SDE, cfg: TrainConfig, optimizer=None, mesh: Mesh | None = None):
    """The compiled step ``(state, data, lr) -> (state, loss)``.

    ``data`` is the whole training set ``(N, C, H, W)`` (replicated on every device); the
    step draws its batch from it with ``fold_in(key, step)``, so a resumed run sees the
    same batches as an uninterrupted one. With a ``mesh``, the batch is sharded along it.
    With ``cfg.crop_every``, the steps numbered ``crop_every - 1``, ``2 crop_every - 1``,
    ... train on crops instead: two compiled functions, chosen by the step number.
    """
    optimizer = optimizer or make_optimizer(cfg)
    batch_sharding = NamedSharding(mesh, P("data")) if mesh is not None else None

    def draw(key_idx, key_sym, data, n):
        # n stamps drawn with replacement, each under a random symmetry of the square.
        x0 = data[jax.random.randint(key_idx, (n,), 0, data.shape[0])]
        if cfg.augment:
            x0 = jax.vmap(square_symmetry)(x0, jax.random.randint(key_sym, (n,), 0, 8))
        return x0

    def shard(x):
        return x if batch_sharding is None else jax.lax.with_sharding_constraint(x, batch_sharding)

    def update(state: TrainState, loss, grads, lr):
        params = eqx.filter(state.model, eqx.is_inexact_array)
        updates, opt_state = optimizer.update(grads, state.opt_state, params)
        updates = jax.tree_util.tree_map(lambda u: -lr * u, updates)
        model = eqx.apply_updates(state.model, updates)
        n = state.step.astype(jnp.float32)
        decay = jnp.minimum(cfg.ema_decay, (1.0 + n) / (10.0 + n))
        ema = jax.tree_util.tree_map(
            lambda e, p: decay * e + (1 - decay) * p if eqx.is_inexact_array(p) else e, state.ema, model
        )
        return TrainState(model, ema, opt_state, state.key, state.step + 1), loss

    def step_key(state: TrainState):
        return jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)

    @_fast_jit  # eqx.filter_jit with the CPU compiler options of xla_cpu.py
    def whole(state: TrainState, data: jax.Array, lr: jax.Array):
        kidx, ksym, kloss = jax.random.split(step_key(state), 3)
        x0 = shard(draw(kidx, ksym, data, cfg.batch_size))
        if cfg.recipe == "edm":
            loss, grads = eqx.filter_value_and_grad(edm_loss)(state.model, x0, kloss, cfg.p_mean, cfg.p_std)
        else:
            loss, grads = eqx.filter_value_and_grad(noise_prediction_loss)(state.model, sde, x0, kloss, cfg.t_eps)
        return update(state, loss, grads, lr)

    if not cfg.crop_every:
        return whole

    @_fast_jit
    def crops(state: TrainState, data: jax.Array, lr: jax.Array):
        kidx, ksym, kloss, kcrop = jax.random.split(step_key(state), 4)
        n, c, h, w = cfg.crop_batch, data.shape[1], data.shape[2], data.shape[3]
        size = cfg.crop_size
        # The stamps and their pixel positions, cut by the same window.
        both = jnp.concatenate([draw(kidx, ksym, data, n), jnp.broadcast_to(pixel_coordinates(h, w), (n, 2, h, w))], 1)
        corner = jax.random.randint(kcrop, (n, 2), 0, jnp.asarray([h - size + 1, w - size + 1]))
        cut = jax.vmap(lambda z, o: jax.lax.dynamic_slice(z, (0, o[0], o[1]), (c + 2, size, size)))(both, corner)
        cut = shard(cut)
        loss, grads = eqx.filter_value_and_grad(edm_loss)(state.model, cut[:, :c], kloss, cfg.p_mean, cfg.p_std,
                                                          cut[:, c:])
        return update(state, loss, grads, lr)

    def step(state: TrainState, data: jax.Array, lr: jax.Array):
        return (crops if crop_steps(cfg, int(state.step), 1)[0] else whole)(state, data, lr)

    return step


@functools.lru_cache(maxsize=8)
def _cached_train_step(sde: SDE, cfg: TrainConfig, mesh: Mesh):
    # One compiled step per (SDE, config, mesh) in a process: a resumed or repeated
    # call of train() does not compile again.
    return make_train_step(sde, cfg, make_optimizer(cfg), mesh)


# --------------------------------------------------------------------------- checkpoints

_MAGIC = b"WSASTRO2"  # format 2: the header carries the sha256 of the leaves
_KIND = "workshop_astro training checkpoint"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: the message names the file, the problem and the fix."""


def _fix(path) -> str:
    return f"start afresh with another output folder (--out) or delete {path}"


def _leaves_bytes(state: TrainState) -> bytes:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    return buf.getvalue()


def save_checkpoint(path: str | os.PathLike, state: TrainState, meta: dict) -> Path:
    """Write ``state`` and ``meta`` (JSON) to ``path`` atomically (temporary file + ``os.replace``).

    The header records what the file is and the sha256 of the serialised state, which
    :func:`load_checkpoint` verifies (a truncated or altered file is refused).
    """
    path = Path(path)
    payload = _leaves_bytes(state)
    meta = dict(meta, kind=_KIND, sha256=hashlib.sha256(payload).hexdigest(), payload_bytes=len(payload))
    header = json.dumps(meta).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(_MAGIC + len(header).to_bytes(8, "little") + header + payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def _read(path: Path) -> tuple[dict, bytes]:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc.strerror or exc}") from None
    if blob[:8] != _MAGIC:
        what = ("a checkpoint of an older format of this module" if blob[:7] == _MAGIC[:7]
                else "not a workshop_astro training checkpoint")
        raise CheckpointError(f"{path} is {what}; {_fix(path)}")
    n = int.from_bytes(blob[8:16], "little")
    try:
        meta = json.loads(blob[16:16 + n])
        if not isinstance(meta, dict) or meta.get("kind") != _KIND or "sha256" not in meta:
            raise ValueError
    except ValueError:
        raise CheckpointError(f"the checkpoint {path} is damaged (its header cannot be read; "
                              f"the file may be truncated); {_fix(path)}") from None
    payload = blob[16 + n:]
    if len(payload) != meta.get("payload_bytes") or hashlib.sha256(payload).hexdigest() != meta["sha256"]:
        raise CheckpointError(f"the checkpoint {path} is damaged: {len(payload)} bytes of weights where "
                              f"{meta.get('payload_bytes')} were written, or their sha256 differs "
                              f"(truncated or altered); {_fix(path)}")
    return meta, payload


def read_checkpoint_meta(path: str | os.PathLike) -> dict:
    """The JSON header of a checkpoint, after verifying the file (see :func:`load_checkpoint`)."""
    return _read(Path(path))[0]


def load_checkpoint(path: str | os.PathLike, like: TrainState | None = None) -> tuple[TrainState, dict]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`; returns ``(state, meta)``.

    ``like`` gives the structure; by default it is rebuilt from the configs in ``meta``.

    Raises:
        CheckpointError: the file is not an astro training checkpoint, is truncated or
            altered (sha256), holds another network's weights, or weights that are not
            finite (a run that diverged); the message names the file and the fix.
    """
    path = Path(path)
    meta, payload = _read(path)
    try:
        if like is None:
            like = init_state(UNetConfig.from_dict(meta["unet"]), TrainConfig(**meta["train"]))
        state = eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint {path} does not fit this network and recipe ({exc}); "
                              f"{_fix(path)}") from None
    finite = all(bool(np.all(np.isfinite(np.asarray(x))))
                 for x in jax.tree_util.tree_leaves(eqx.filter((state.model, state.ema), eqx.is_inexact_array)))
    if not finite:
        raise CheckpointError(f"the checkpoint {path} holds weights that are NaN or infinite (training diverged at "
                              f"or before step {int(state.step)}); it cannot be resumed: {_fix(path)}, and lower "
                              f"the learning rate (TrainConfig.peak_lr) if it happens again")
    return state, meta


def check_resumable(path: str | os.PathLike, meta: dict, unet: UNetConfig, cfg: TrainConfig) -> None:
    """Refuse a checkpoint written for another network or recipe (``CheckpointError`` naming what differs)."""
    mine = dict(unet=unet.as_dict(), train=asdict(cfg))
    diffs = []
    for part in ("unet", "train"):
        theirs = dict(meta.get(part) or {})
        for k, v in mine[part].items():
            w = theirs.get(k, "(absent)")
            if (list(v) if isinstance(v, tuple) else v) != w:
                diffs.append(f"{part}.{k} {w} in the file, {list(v) if isinstance(v, tuple) else v} now")
    if diffs:
        raise CheckpointError(f"the checkpoint {path} was written by a run with another network or recipe "
                              f"(another preset?): {'; '.join(diffs[:4])}{' ...' if len(diffs) > 4 else ''}; "
                              f"{_fix(path)}")


# --------------------------------------------------------------------------- the loop


def resume_message(path, step: int, plan: Plan, budget_then: float | None, budget_now: float | None,
                   max_steps: int | None) -> str:
    """The one line a resumed run prints: where it resumes and whether the plan stays as it was."""
    head = f"resuming {path} at step {step} of its plan of {plan.total_steps} steps"
    if step >= plan.total_steps:
        return f"{head}: the plan is complete, nothing left to train (delete the file or use another --out to train again)"
    longer = ((budget_now is not None and budget_then is not None and budget_now > budget_then + 1e-9)
              or (max_steps is not None and max_steps > plan.total_steps))
    if longer:
        then = f"{budget_then:.0f} s" if budget_then is not None else "the first run's budget"
        return (f"{head}: the plan made for {then} is kept, not extended to the longer budget (the learning-rate "
                f"schedule ends with it); to train longer, start afresh with another --out")
    return f"{head}: the plan is kept; it stops early if the budget ends first"


# --------------------------------------------------------------------------- resuming


@dataclass
class RunProgress:
    """Where a run stands: what its checkpoint holds and what :func:`train` returns.

    ``budget_s`` is the budget the plan was made for (a resumed run keeps its first
    run's); ``resumed_from`` the step a checkpoint resumed at (0 for a fresh run).
    """

    state: TrainState
    losses: list[float] = field(default_factory=list)
    plan: Plan | None = None
    resumed_from: int = 0
    budget_s: float | None = None


def checkpoint_meta(progress: RunProgress, unet: UNetConfig, cfg: TrainConfig, sde: SDE, stopped: str) -> dict:
    """The JSON header :func:`train` writes beside the state (read back by :func:`start_or_resume`)."""
    plan = progress.plan
    return dict(unet=unet.as_dict(), train=asdict(cfg), plan=asdict(plan) if plan else None,
                losses=progress.losses, stopped=stopped, sde=type(sde).__name__, budget_s=progress.budget_s)


def start_or_resume(path: Path | None, unet: UNetConfig, cfg: TrainConfig, run: RunOptions,
                    optimizer=None) -> RunProgress:
    """Fresh weights, or the state, plan and losses of the checkpoint at ``path`` if it exists.

    A resumed run keeps its plan and prints one line saying so (:func:`resume_message`).

    Raises:
        CheckpointError: the file cannot be resumed (another network or recipe, damaged,
            diverged); raised before anything is compiled.
    """
    state = init_state(unet, cfg, optimizer)
    if path is None or not path.is_file():
        return RunProgress(state, budget_s=run.budget_s)
    check_resumable(path, read_checkpoint_meta(path), unet, cfg)
    state, meta = load_checkpoint(path, like=state)
    progress = RunProgress(state, list(meta.get("losses", [])), resumed_from=int(state.step), budget_s=run.budget_s)
    if meta.get("plan"):
        progress.plan = Plan(**meta["plan"])
        progress.budget_s = meta.get("budget_s")
        print(resume_message(path, progress.resumed_from, progress.plan, progress.budget_s, run.budget_s,
                             run.max_steps), flush=True)
    return progress


class _Checkpoints:
    """Saves a run's progress into one file: periodically, on interrupt and at the end."""

    def __init__(self, path: Path | None, every_s: float, meta: Callable[[str], dict]):
        self.path, self.every_s, self.meta = path, every_s, meta
        self.last = time.monotonic()

    def save(self, state: TrainState, stopped: str) -> None:
        if self.path is not None:
            save_checkpoint(self.path, state, self.meta(stopped))
            self.last = time.monotonic()

    def save_if_due(self, state: TrainState) -> None:
        if self.path is not None and time.monotonic() - self.last > self.every_s:
            self.save(state, "running")


# --------------------------------------------------------------------------- the loop


def compile_and_measure(step_fn, progress: RunProgress, data: jax.Array, provisional: Plan, n_timed: int,
                        max_steps: int | None = None, callback=None) -> list[float]:
    """Take the first ``1 + n_timed`` steps (the first compiles) and return their durations in seconds.

    ``progress`` advances (state, losses); it stops early at ``max_steps``. The learning
    rate follows ``provisional`` (the real plan needs these times).
    """
    times = []
    for _ in range(1 + n_timed):
        s = int(progress.state.step)
        t0 = time.perf_counter()
        progress.state, loss = step_fn(progress.state, data, learning_rate(s, provisional))
        progress.losses.append(float(loss))
        times.append(time.perf_counter() - t0)
        if callback:
            callback(s + 1, progress.losses[-1])
        if max_steps is not None and int(progress.state.step) >= max_steps:
            break
    return times


def run_steps(step_fn, progress: RunProgress, data: jax.Array, *, deadline: float | None = None,
              max_steps: int | None = None, after_step: Callable[[int, float], None] | None = None,
              clock: Callable[[], float] = time.monotonic) -> str:
    """Take the planned steps of ``progress.plan``; returns why it stopped: ``"planned"`` or ``"deadline"``.

    With a ``deadline`` (a ``clock()`` time) it stops when half a step no longer fits,
    and re-plans the total from the recent pace every twentieth of the run (at least
    every 10 steps), so the cosine schedule ends when the budget does; a resumed plan
    (``progress.resumed_from``) is never extended. ``progress`` advances step by step,
    so an exception raised by ``after_step(step, loss)`` leaves it at the last step.
    """
    plan = progress.plan
    start = s = int(progress.state.step)
    ceiling = plan.total_steps if progress.resumed_from else None
    replan_every = max(10, (plan.total_steps - start) // 20)
    t_window = clock()
    while s < plan.total_steps:
        if deadline is not None:
            now = clock()
            if now + 0.5 * plan.step_time_s > deadline:
                return "deadline"
            if s > start and (s - start) % replan_every == 0:
                pace = (now - t_window) / replan_every
                plan.total_steps = replan_total(s, pace, deadline - now, max_steps, ceiling)
                t_window = now
        progress.state, loss = step_fn(progress.state, data, learning_rate(s, plan))
        s += 1
        progress.losses.append(float(loss))
        if after_step is not None:
            after_step(s, progress.losses[-1])
    return "planned"


class _LossBar:
    """A tqdm bar with the smoothed loss, following the plan's total when it is re-planned."""

    def __init__(self, total: int, start: int, last_loss: float | None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=start, desc="training", unit="step", dynamic_ncols=True)
        self.smooth = last_loss

    def step(self, loss: float, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        self.smooth = loss if self.smooth is None else 0.95 * self.smooth + 0.05 * loss
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self.smooth:.4f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _replicated(tree, mesh: Mesh):
    # Every array of ``tree`` on every device of ``mesh`` (parameters and the training set).
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, NamedSharding(mesh, P())), static)


def _measure_and_plan(step_fn, progress: RunProgress, data: jax.Array, cfg: TrainConfig, run: RunOptions,
                      deadline: float | None) -> float | None:
    # Compile, time the first steps and set progress.plan; returns the deadline, moved
    # earlier by what run.reserve_fn keeps for after training.
    provisional = Plan(run.max_steps or 10**9, cfg.warmup_steps, cfg.peak_lr, cfg.min_lr_ratio)
    times = compile_and_measure(step_fn, progress, data, provisional, run.measure_steps, run.max_steps, run.callback)
    step_time = measured_step_time(times)
    if deadline is not None and run.reserve_fn is not None:
        deadline -= max(0.0, float(run.reserve_fn(step_time, times[0])))
    left = None if deadline is None else deadline - time.monotonic()
    progress.plan = plan_steps(cfg, step_time, int(progress.state.step), left, run.max_steps)
    return deadline


def check_crops(unet: UNetConfig, cfg: TrainConfig, data_shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` (naming the fix) if ``cfg``'s crops cannot train ``unet`` on images of ``data_shape``."""
    if not unet.coords:
        raise ValueError("TrainConfig.crop_every trains on crops, and the network must know where each crop lies: "
                         "build it with UNetConfig(coords=True), or set crop_every=0")
    h, w = data_shape[-2:]
    if cfg.crop_size >= min(h, w):
        raise ValueError(f"TrainConfig.crop_size={cfg.crop_size} must be smaller than the {h}x{w} images")
    factor = unet.patch * 2 ** (len(unet.mults) - 1)
    if cfg.crop_size % factor:
        raise ValueError(f"TrainConfig.crop_size={cfg.crop_size} must be a multiple of {factor} (the network halves "
                         f"the image {len(unet.mults) - 1} time(s) after space-to-depth {unet.patch})")


def images_per_step(cfg: TrainConfig) -> float:
    """Images a step takes on average: ``batch_size`` stamps, or ``crop_batch`` crops on crop steps.

    >>> images_per_step(TrainConfig(batch_size=32, crop_every=2, crop_batch=64))
    48.0
    """
    if not cfg.crop_every:
        return float(cfg.batch_size)
    return (cfg.batch_size * (cfg.crop_every - 1) + cfg.crop_batch) / cfg.crop_every


def crop_steps(cfg: TrainConfig, first: int, n: int) -> np.ndarray:
    """Which of the steps ``first, ..., first + n - 1`` train on crops (a boolean array):
    those numbered ``crop_every - 1``, ``2 crop_every - 1``, ..., none without crops.

    >>> crop_steps(TrainConfig(crop_every=2, crop_size=16), 0, 4).tolist()
    [False, True, False, True]
    """
    steps = np.arange(first, first + n)
    if not cfg.crop_every:
        return np.zeros(n, bool)
    return steps % cfg.crop_every == cfg.crop_every - 1


def _run_options(run: RunOptions | None, options: dict) -> RunOptions:
    # train(..., budget_s=..., checkpoint=...) as before, or train(..., RunOptions(...)).
    known = RunOptions.__dataclass_fields__
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"train() got unknown option(s) {', '.join(unknown)}; the options are "
                        f"{', '.join(known)} (see RunOptions)")
    if run is None:
        return RunOptions(**options)
    return replace(run, **options) if options else run


def train(data: np.ndarray, unet: UNetConfig, cfg: TrainConfig = TrainConfig(), run: RunOptions | None = None,
          *, sde: SDE | None = None, **options) -> TrainResult:
    """Train a :class:`~workshop_astro.unet.UNet` on ``data`` for a time budget or a number of steps.

    Arguments:
        data: training images ``(N, C, H, W)`` in ``[-1, 1]``.
        unet, cfg: the model size and the hyper-parameters.
        run: the :class:`RunOptions` (budget, steps, checkpoint, progress, mesh, ...);
            or give them as keywords, ``train(data, unet, cfg, max_steps=100)``
            (keywords override the fields of ``run``).
        sde: the forward SDE (default :class:`~workshop_astro.sde.VPSDE`).

    Returns:
        A :class:`TrainResult`. On ``KeyboardInterrupt`` the state is saved to the
        checkpoint first and the interrupt is re-raised.

    The pieces, each usable alone: :func:`start_or_resume` (fresh weights or a
    checkpoint), :func:`compile_and_measure` and :func:`plan_steps` (the plan),
    :func:`run_steps` (the loop), :func:`checkpoint_meta` (what is saved).
    """
    run = _run_options(run, options)
    t_start = time.monotonic()
    deadline = None if run.budget_s is None else t_start + run.budget_s
    sde = sde or VPSDE()
    mesh = run.mesh or data_mesh()
    ndev = mesh.devices.size
    if cfg.batch_size % ndev:
        cfg = replace(cfg, batch_size=ndev * math.ceil(cfg.batch_size / ndev))
    if cfg.crop_every:
        check_crops(unet, cfg, np.shape(data))
        if cfg.crop_batch % ndev:
            cfg = replace(cfg, crop_batch=ndev * math.ceil(cfg.crop_batch / ndev))
    ckpt = Path(run.checkpoint) if run.checkpoint is not None else None
    progress = start_or_resume(ckpt, unet, cfg, run, make_optimizer(cfg))

    progress.state = _replicated(progress.state, mesh)
    data_dev = _replicated(jnp.asarray(data, jnp.float32), mesh)
    step_fn = _cached_train_step(sde, cfg, mesh)
    checkpoints = _Checkpoints(ckpt, run.checkpoint_every_s,
                               lambda stopped: checkpoint_meta(progress, unet, cfg, sde, stopped))
    bar = None
    try:
        if progress.plan is None:  # compile and measure, unless resuming a planned run
            deadline = _measure_and_plan(step_fn, progress, data_dev, cfg, run, deadline)
        if run.progress:
            bar = _LossBar(progress.plan.total_steps, int(progress.state.step),
                           progress.losses[-1] if progress.losses else None)

        def after_step(step: int, loss: float) -> None:
            if bar is not None:
                bar.step(loss, progress.plan.total_steps)
            if run.callback:
                run.callback(step, loss)
            checkpoints.save_if_due(progress.state)

        first, t_loop = int(progress.state.step), time.monotonic()
        stopped = run_steps(step_fn, progress, data_dev, deadline=deadline, max_steps=run.max_steps,
                            after_step=after_step)
        taken = int(progress.state.step) - first
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()  # before the message below
        if ckpt is not None and progress.plan is not None:
            checkpoints.save(progress.state, "interrupted")
            print(f"\ninterrupted at step {int(progress.state.step)}: saved {ckpt}; run again to resume", flush=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    # The pace of the loop (the plan's measured step time when it took no step).
    step_time = (time.monotonic() - t_loop) / taken if taken > 0 else progress.plan.step_time_s
    checkpoints.save(progress.state, stopped)
    return TrainResult(
        model=progress.state.model, ema=progress.state.ema, losses=progress.losses, plan=progress.plan,
        steps_done=int(progress.state.step), seconds=time.monotonic() - t_start, step_time_s=step_time,
        images_per_s=(images_per_step(cfg) / step_time) if step_time else None,
        stopped=stopped, resumed_from=progress.resumed_from,
    )
