"""The posterior over Sérsic parameters with NumPyro's NUTS sampler.

The least-squares fit (:mod:`workshop_wrapup.fit`) gives one best answer; the posterior
says how sure we may be of each number and how they trade off (a larger radius with a
fainter ``I_e`` fits almost as well: the two are correlated). The likelihood is the same
Gaussian pixel noise the fit assumes; priors are broad and physical.

Example::

    >>> import jax
    >>> from workshop_wrapup.sersic import make_galaxy
    >>> galaxy = make_galaxy(jax.random.key(0))
    >>> post = sample_posterior(jax.random.key(1), galaxy.image, galaxy.psf, galaxy.noise_sigma,
    ...                         num_warmup=100, num_samples=100)
    >>> post.samples["n"].shape
    (100,)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float
from numpyro.infer import MCMC, NUTS, init_to_value

from . import guards
from .sersic import PARAM_NAMES, SersicParams, observed_model


def sersic_priors(shape: tuple[int, int]) -> dict[str, dist.Distribution]:
    """Broad, physical priors on the seven parameters of a galaxy in an image of ``shape``.

    The brightness is positive and may span orders of magnitude (log-normal); the radius
    is anywhere from half a pixel to the image size (log-uniform); the index and the
    ellipticity are bounded; the centre is near the middle of the stamp.
    """
    h, w = shape
    return {
        "amplitude": dist.LogNormal(0.0, 2.0),
        "r_eff": dist.LogUniform(0.5, float(max(h, w))),
        "n": dist.Uniform(0.3, 8.0),
        "ellipticity": dist.Uniform(0.0, 0.9),
        "angle": dist.Uniform(0.0, float(np.pi)),
        "x0": dist.Normal((w - 1) / 2, w / 4),
        "y0": dist.Normal((h - 1) / 2, h / 4),
    }


def sersic_model(image: Float[Array, "h w"] | None, psf: Float[Array, "h w"], noise_sigma: float) -> None:
    """The generative model: :func:`sersic_priors` on the parameters, Gaussian noise on every pixel.

    Arguments:
        image: the observed image (``None`` to sample fake images from the prior).
        psf: the PSF, wrapped at pixel ``(0, 0)``.
        noise_sigma: the per-pixel noise standard deviation.
    """
    priors = sersic_priors(psf.shape)
    params = SersicParams(*(numpyro.sample(name, priors[name]) for name in PARAM_NAMES))
    numpyro.sample("image", dist.Normal(observed_model(params, psf), noise_sigma).to_event(2), obs=image)


class Posterior(NamedTuple):
    """Posterior samples and their summaries.

    Arguments:
        samples: parameter name -> array of samples.
        mean, std: parameter name -> posterior mean and standard deviation.
        divergences: number of divergent NUTS transitions (should be 0 or close).
    """

    samples: dict[str, np.ndarray]
    mean: dict[str, float]
    std: dict[str, float]
    divergences: int

    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """The central credible interval of ``name`` holding ``level`` of the posterior mass."""
        lo, hi = np.quantile(self.samples[name], [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


def sample_posterior(key: jax.Array, image: Float[Array, "h w"], psf: Float[Array, "h w"], noise_sigma: float, *,
                     start: SersicParams | None = None, num_warmup: int = 300, num_samples: int = 300,
                     num_chains: int = 1) -> Posterior:
    """Run NUTS on :func:`sersic_model` for one image.

    Arguments:
        key: a JAX PRNG key.
        image, psf, noise_sigma: the observation (see :class:`workshop_wrapup.sersic.Galaxy`).
        start: where the chains start (a least-squares fit is a good choice; default: the prior median).
        num_warmup, num_samples, num_chains: NUTS settings.

    Returns:
        A :class:`Posterior`.
    """
    guards.positive("noise_sigma", noise_sigma)
    num_warmup = guards.count("num_warmup", num_warmup, minimum=0)
    num_samples, num_chains = guards.count("num_samples", num_samples), guards.count("num_chains", num_chains)
    guards.float_array("image", image, ndim=2, layout="(h, w)")
    init = init_to_value(values={k: jnp.asarray(v) for k, v in zip(PARAM_NAMES, start)}) if start is not None else None
    # A dense mass matrix learns the correlations between parameters (radius against
    # brightness) during warm-up: about 5x fewer leapfrog steps per sample than a diagonal one here.
    kernel = NUTS(sersic_model, dense_mass=True, **({"init_strategy": init} if init is not None else {}))
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="sequential", progress_bar=False)
    mcmc.run(key, image, psf, noise_sigma, extra_fields=("diverging",))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    divergences = int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())
    return Posterior(
        samples=samples,
        mean={k: float(np.mean(v)) for k, v in samples.items()},
        std={k: float(np.std(v)) for k, v in samples.items()},
        divergences=divergences,
    )
