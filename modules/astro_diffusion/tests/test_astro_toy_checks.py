"""The toy checks pass on reference answers, fail on stubs, and name the typical mistakes."""

import diffrax
import jax
import jax.numpy as jnp
import pytest

from workshop.checking import CheckFailed, NotAttempted
from workshop_astro.checks import toy as C
from workshop_astro.sampling import probability_flow_drift as lib_pf_drift


def vp_marginal(x0, t, beta_min=0.1, beta_max=20.0):
    B = beta_min * t + 0.5 * (beta_max - beta_min) * t**2
    return jnp.exp(-0.5 * B) * x0, jnp.sqrt(1.0 - jnp.exp(-B))


def vp_marginal_beta_not_integral(x0, t, beta_min=0.1, beta_max=20.0):
    b = beta_min + (beta_max - beta_min) * t
    return jnp.exp(-0.5 * b * t) * x0, jnp.sqrt(1.0 - jnp.exp(-b * t))


def vp_marginal_no_sqrt(x0, t, beta_min=0.1, beta_max=20.0):
    B = beta_min * t + 0.5 * (beta_max - beta_min) * t**2
    return jnp.exp(-0.5 * B) * x0, 1.0 - jnp.exp(-B)


def perturb(sde, x0, t, eps):
    e = (slice(None),) + (None,) * (x0.ndim - 1)
    return sde.marginal_mean_coeff(t)[e] * x0 + sde.marginal_std(t)[e] * eps


def perturb_no_expand(sde, x0, t, eps):
    return sde.marginal_mean_coeff(t) * x0 + sde.marginal_std(t) * eps


def em_step(sde, x, t, dt, z):
    return x + sde.drift(x, t) * dt + sde.diffusion(t) * jnp.sqrt(dt) * z


def em_step_dt_noise(sde, x, t, dt, z):
    return x + sde.drift(x, t) * dt + sde.diffusion(t) * dt * z


def gaussian_score(x, mean, std):
    return -(x - mean) / std**2


def dsm_loss(model, sde, x0, t, eps):
    std = sde.marginal_std(t)[:, None]
    xt = sde.marginal_mean_coeff(t)[:, None] * x0 + std * eps
    return jnp.mean(std**2 * (jax.vmap(model)(xt, t) + eps / std) ** 2)


def dsm_loss_wrong_sign(model, sde, x0, t, eps):
    std = sde.marginal_std(t)[:, None]
    xt = sde.marginal_mean_coeff(t)[:, None] * x0 + std * eps
    return jnp.mean(std**2 * (jax.vmap(model)(xt, t) - eps / std) ** 2)


def reverse_sde_drift(sde, score_fn, x, t):
    return sde.drift(x, t) - sde.diffusion(t) ** 2 * score_fn(x, t)


def probability_flow_drift(sde, score_fn, x, t):
    return sde.drift(x, t) - 0.5 * sde.diffusion(t) ** 2 * score_fn(x, t)


def probability_flow_solve(sde, score_fn, x_T, t_eps):
    v = jax.vmap(lib_pf_drift, in_axes=(None, None, 0, None))
    sol = diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, a: v(sde, score_fn, y, t)), diffrax.Tsit5(), t0=sde.T, t1=t_eps,
                              dt0=None, y0=x_T, stepsize_controller=diffrax.PIDController(rtol=1e-5, atol=1e-5))
    return sol.ys[-1]


def sliced_wasserstein(x, y, d):
    return jnp.sqrt(jnp.mean((jnp.sort(x @ d, axis=0) - jnp.sort(y @ d, axis=0)) ** 2))


def sliced_wasserstein_unsorted(x, y, d):
    return jnp.sqrt(jnp.mean((x @ d - y @ d) ** 2))


def divergence(fn, x):
    return jnp.trace(jax.jacfwd(fn)(x))


def hutchinson_divergence(fn, x, z):
    return jnp.sum(z * jax.jvp(fn, (x,), (z,))[1])


REFERENCES = {
    "vp_marginal": vp_marginal,
    "perturb": perturb,
    "em_step": em_step,
    "gaussian_score": gaussian_score,
    "dsm_loss": dsm_loss,
    "reverse_sde_drift": reverse_sde_drift,
    "probability_flow_drift": probability_flow_drift,
    "probability_flow_solve": probability_flow_solve,
    "sliced_wasserstein": sliced_wasserstein,
    "divergence": divergence,
    "hutchinson_divergence": hutchinson_divergence,
}

CHEAP = ["vp_marginal", "perturb", "em_step", "gaussian_score", "reverse_sde_drift", "probability_flow_drift",
         "divergence", "hutchinson_divergence"]


@pytest.mark.parametrize("name", CHEAP)
def test_reference_passes(name):
    msg = getattr(C, name)(REFERENCES[name])
    assert isinstance(msg, str) and msg


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dsm_loss", "probability_flow_solve", "sliced_wasserstein"])
def test_reference_passes_slow(name):
    assert getattr(C, name)(REFERENCES[name])


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_stub_is_not_attempted(name):
    def stub(*args):
        return None

    with pytest.raises(NotAttempted):
        getattr(C, name)(stub)


MISTAKES = [
    ("vp_marginal", vp_marginal_beta_not_integral, "integral"),
    ("vp_marginal", vp_marginal_no_sqrt, "square root"),
    ("perturb", perturb_no_expand, "(B, 1, ...)"),
    ("em_step", em_step_dt_noise, "sqrt(dt)"),
    ("gaussian_score", lambda x, m, s: (x - m) / s**2, "towards the mean"),
    ("gaussian_score", lambda x, m, s: -(x - m) / s, "variance"),
    ("dsm_loss", dsm_loss_wrong_sign, "sign"),
    ("reverse_sde_drift", lambda sde, s, x, t: sde.drift(x, t) + sde.diffusion(t) ** 2 * s(x, t), "minus sign"),
    ("reverse_sde_drift", probability_flow_drift, "g^2 score / 2"),
    ("probability_flow_drift", reverse_sde_drift, "g^2 score / 2"),
    ("probability_flow_solve", lambda sde, s, x_T, t_eps: x_T, "you returned x_T"),
    ("sliced_wasserstein", sliced_wasserstein_unsorted, "sort"),
    ("divergence", lambda fn, x: jnp.sum(jax.jacfwd(fn)(x)), "trace"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.trace(jax.jacfwd(fn)(x)), "exact divergence"),
    ("hutchinson_divergence", lambda fn, x, z: jnp.sum(jax.jvp(fn, (x,), (z,))[1]), "multiply J z by z"),
]


@pytest.mark.parametrize("name,wrong,hint", MISTAKES, ids=[f"{m[0]}:{m[2]}" for m in MISTAKES])
def test_typical_mistake_fails_with_its_hint(name, wrong, hint):
    with pytest.raises(CheckFailed) as info:
        getattr(C, name)(wrong)
    assert not isinstance(info.value, NotAttempted)
    assert hint in (info.value.hint or ""), info.value.render()


def test_errors_become_messages():
    def broken(x0, t, beta_min=0.1, beta_max=20.0):
        raise ZeroDivisionError("oops")

    with pytest.raises(CheckFailed, match="ZeroDivisionError"):
        C.vp_marginal(broken)
