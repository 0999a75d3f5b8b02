"""The ``toy`` demo: a 2-D diffusion model end to end, checked against the exact answer.

``workshop run astro toy``: trains a small MLP score on the Gaussian mixture (whose exact
score and density are known), samples it with the reverse SDE and the probability-flow
ODE, and compares both with the data (sliced Wasserstein distance, as a multiple of the
distance between two independent draws of the data), with samples from the exact score,
and by exact log-likelihood. Writes figures, a GIF of the forward process and
``toy_results.json`` to ``--out``.
"""

from __future__ import annotations

import time

from workshop import RunContext

# Sizes per preset: training steps, batch, samples, reverse-SDE steps, likelihood points.
SIZES = {
    "tiny": dict(steps=300, batch=256, n_samples=500, sde_steps=200, n_likelihood=8, frames=12),
    "cpu": dict(steps=3000, batch=512, n_samples=2000, sde_steps=500, n_likelihood=64, frames=30),
    "gpu": dict(steps=8000, batch=1024, n_samples=10000, sde_steps=1000, n_likelihood=512, frames=40),
    "full": dict(steps=20000, batch=2048, n_samples=20000, sde_steps=1000, n_likelihood=1024, frames=40),
}


def toy(ctx: RunContext) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from .. import toy_figures as figs
    from ..likelihood import log_likelihood
    from ..metrics import reference_level, sliced_wasserstein
    from ..sampling import probability_flow_sample, reverse_sde_sample
    from ..sde import VPSDE, forward_simulate
    from ..toy import GaussianMixture
    from ..toy_train import train_toy

    size = SIZES[ctx.preset]
    sde, gm = VPSDE(), GaussianMixture.default()
    key = jax.random.key(ctx.seed)
    k_train, k_data, k_ref, k_sde, k_ode, k_metric, k_fwd, k_ll = jax.random.split(key, 8)
    data_fn = lambda k, n: gm.sample(k, n)
    n = size["n_samples"]

    # --- train -----------------------------------------------------------------------------
    ctx.log(f"training an MLP score on the 2-D Gaussian mixture: {size['steps']} steps of {size['batch']} points")
    bar = None
    if ctx.verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=size["steps"], desc="train", unit="step")

    def on_chunk(done, losses):
        if bar is not None:
            bar.update(len(losses))
            bar.set_postfix(loss=f"{float(jnp.mean(losses)):.3f}")

    t0 = time.perf_counter()
    chunk = 100 if size["steps"] % 250 else 250
    result = train_toy(data_fn, sde, k_train, n_steps=size["steps"], batch_size=size["batch"], chunk=chunk, on_chunk=on_chunk)
    jax.block_until_ready(result.losses)
    train_s = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    model = result.ema_model

    # --- sample with both reverse processes, for the model and for the exact score -----------
    exact = lambda x, t: gm.score(x, t, sde)
    data = gm.sample(k_data, n)
    ref = float(reference_level(data_fn, n, k_ref, repeats=5))
    x_init = sde.prior_sample(k_ode, (n, 2))
    save_ts = jnp.linspace(sde.T, 1e-3, 41)[1:-1]

    @eqx.filter_jit
    def sample_both(score_fn):
        # The model's weights are traced arguments; a plain function (the exact score) is static.
        xs, nfe_s, traj_s = reverse_sde_sample(sde, score_fn, k_sde, (n, 2), size["sde_steps"], x_init=x_init, save_ts=save_ts)
        xo, nfe_o, traj_o = probability_flow_sample(sde, score_fn, k_ode, (n, 2), x_init=x_init, save_ts=save_ts)
        return xs, nfe_s, traj_s, xo, nfe_o, traj_o

    t0 = time.perf_counter()
    xs, nfe_s, traj_s, xo, nfe_o, traj_o = jax.block_until_ready(sample_both(model))
    sample_s = time.perf_counter() - t0
    ex_xs, _, _, ex_xo, ex_nfe_o, _ = sample_both(exact)

    # One sliced-Wasserstein value is noisy (the tails dominate): average over fresh data
    # draws, as reference_level does for the two-draw floor.
    metric_keys = jax.random.split(k_metric, 5)
    sw = lambda a: float(jnp.mean(jnp.stack([sliced_wasserstein(a, gm.sample(k, n), jax.random.fold_in(k, 1)) for k in metric_keys])))
    results = {
        "preset": ctx.preset,
        "dataset": "2-D Gaussian mixture (3 components)",
        "train_steps": int(result.losses.shape[0]),
        "train_seconds": round(train_s, 2),
        "final_loss": float(jnp.mean(result.losses[-100:])),
        "n_samples": n,
        "sliced_wasserstein": {
            "two_data_draws": ref,
            "model_reverse_sde": sw(xs),
            "model_probability_flow_ode": sw(xo),
            "exact_score_reverse_sde": sw(ex_xs),
            "exact_score_probability_flow_ode": sw(ex_xo),
        },
        "nfe": {"reverse_sde": int(nfe_s), "probability_flow_ode": int(nfe_o), "probability_flow_ode_exact_score": int(ex_nfe_o)},
        "sample_seconds": round(sample_s, 2),
    }

    # --- exact likelihood: the model's vs the true density --------------------------------
    t0 = time.perf_counter()
    pts = gm.sample(k_ll, size["n_likelihood"])
    batched_ll = eqx.filter_jit(lambda m, x: jax.vmap(lambda p: log_likelihood(sde, m, p, rtol=1e-4, atol=1e-4))(x))
    ll_model, _ = batched_ll(model, pts)
    results["mean_log_likelihood"] = {"model_ode": float(jnp.mean(ll_model)), "true_density": float(jnp.mean(gm.log_prob(pts)))}
    results["likelihood_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()

    # --- figures --------------------------------------------------------------------------
    frames_t = jnp.linspace(0.0, sde.T, size["frames"]) ** 2  # slow at the start, where the change is
    frames = forward_simulate(sde, gm.sample(k_fwd, 1000), k_fwd, frames_t, dt=5e-3)
    paths = {
        "forward_gif": figs.forward_animation(np.asarray(frames), np.asarray(frames_t), ctx.path("forward.gif")),
    }
    batched_score = eqx.filter_jit(lambda m, x, t: jax.vmap(m, in_axes=(0, None))(x, t))
    learned_b = lambda x, t: batched_score(model, x, t)
    exact_b = jax.jit(lambda x, t: gm.score(x, t, sde))
    figs.score_field_figure({"exact": exact_b, "learned": learned_b}, (0.05, 0.2, 0.5), ctx.path("score_field.png"))
    paths["score_field"] = ctx.path("score_field.png")
    with_ends = lambda tr, x_end: np.concatenate([np.asarray(x_init)[None], np.asarray(tr), np.asarray(x_end)[None]])
    figs.trajectories_figure(
        {f"reverse SDE ({int(nfe_s)} NFE)": with_ends(traj_s, xs), f"probability-flow ODE ({int(nfe_o)} NFE)": with_ends(traj_o, xo)},
        background=data, path=ctx.path("trajectories.png"),
    )
    paths["trajectories"] = ctx.path("trajectories.png")
    figs.samples_figure({"data": data, "reverse SDE": xs, "probability-flow ODE": xo}, ctx.path("samples.png"))
    paths["samples"] = ctx.path("samples.png")
    figs.loss_figure(np.asarray(result.losses), ctx.path("loss.png"))
    paths["loss"] = ctx.path("loss.png")
    results["figures_seconds"] = round(time.perf_counter() - t0, 2)
    results["total_seconds"] = round(ctx.elapsed(), 2)
    results["files"] = {k: str(v) for k, v in paths.items()}
    ctx.save_json("toy_results.json", results)

    s = results["sliced_wasserstein"]
    ctx.log(f"trained {results['train_steps']} steps in {train_s:.1f} s (final loss {results['final_loss']:.3f})")
    ctx.log(f"sliced Wasserstein to data (two data draws: {ref:.4f}):")
    ctx.log(f"  reverse SDE {s['model_reverse_sde']:.4f} with {int(nfe_s)} NFE; probability-flow ODE {s['model_probability_flow_ode']:.4f} with {int(nfe_o)} NFE")
    ctx.log(f"  exact score: reverse SDE {s['exact_score_reverse_sde']:.4f}; ODE {s['exact_score_probability_flow_ode']:.4f}")
    ll = results["mean_log_likelihood"]
    ctx.log(f"mean log-likelihood on {size['n_likelihood']} points: model {ll['model_ode']:.3f}, true density {ll['true_density']:.3f}")
    ctx.log(f"figures and animation in {ctx.out}")
    return results

