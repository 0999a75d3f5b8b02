# %% [markdown]
# # Fitting a galaxy with Optimistix, deconvolving an image with Lineax
#
# Two more libraries of the JAX scientific ecosystem, each on a small real problem.
#
# * **Optimistix**: root finding, minimisation and nonlinear least squares, with the
#   derivatives supplied by JAX. We fit a **Sérsic profile**, the standard model of a
#   galaxy's light, to a synthetic image whose true parameters we know.
# * **Lineax**: linear solves where the matrix may be a *function*. We undo the blur of
#   a telescope's point-spread function (PSF) without ever building the matrix.

# %%
import jax
import jax.numpy as jnp
import lineax as lx
import matplotlib.pyplot as plt
import numpy as np
import optimistix as optx

from workshop import check
from workshop.hardware import current_preset
from workshop_wrapup.fit import angle_difference, moment_guess, to_physical, to_unconstrained
from workshop_wrapup.sersic import PARAM_NAMES, make_galaxy, observed_model

preset = current_preset()
size = {"tiny": 32, "cpu": 48, "gpu": 64, "full": 64}[preset]
print("preset", preset)

# %% [markdown]
# ## A galaxy with known parameters
#
# The Sérsic profile is $I(r) = I_e \exp\{-b_n[(r/R_e)^{1/n} - 1]\}$, with $r$ the
# elliptical radius: half-light radius $R_e$ (`r_eff`), brightness there $I_e$
# (`amplitude`), index $n$ (1: a disc, 4: an elliptical), an ellipticity, a position
# angle and a centre. The telescope blurs it with a Gaussian PSF and adds noise.

# %%
galaxy = make_galaxy(jax.random.key(0), size=size)
print({k: round(v, 3) for k, v in galaxy.truth.as_dict().items()})
plt.imshow(galaxy.image, origin="lower", cmap="magma")
plt.title("observed galaxy (truth known)")
plt.colorbar()
plt.show()

# %% [markdown]
# ## Exercise 3: the residuals
#
# Least squares minimises $\sum_i r_i^2$ with $r_i = (\text{model}_i - \text{data}_i)/\sigma$.
# Radii and brightness must stay positive, so the solver works with free coordinates
# `u` (logarithms and logits); `to_physical(u)` turns them into `SersicParams`.
#
# Write `residuals(u, args)`: unpack `image, psf, sigma = args`, build the model image
# with `observed_model(to_physical(u), psf)` (it includes the PSF blur) and return the
# normalised residuals as a flat vector.

# %%
def residuals(u, args):
    # BEGIN SOLUTION: image, psf, sigma = args; return ((observed_model(to_physical(u), psf) - image) / sigma).ravel()
    image, psf, sigma = args
    model = observed_model(to_physical(u), psf)
    return ((model - image) / sigma).ravel()
    # END SOLUTION


# %%
check("wrapup.sersic_residuals", residuals)

# %% [markdown]
# ## Exercise 4: fit with Levenberg-Marquardt
#
# `optx.least_squares(fn, solver, y0, args=...)` minimises the sum of squares of
# `fn(y, args)`; Levenberg-Marquardt builds the Jacobian with `jax.jacfwd` for you.
# Write `fit_galaxy(image, psf, sigma)`: start from `moment_guess(image)` (the image's
# centroid, size and orientation), solve with
# `optx.LevenbergMarquardt(rtol=1e-6, atol=1e-6)` and `max_steps=200`, and return the
# **physical** parameters `to_physical(solution.value)`.

# %%
def fit_galaxy(image, psf, sigma):
    # BEGIN SOLUTION: y0 = to_unconstrained(moment_guess(image)); solve with optx.least_squares(residuals, optx.LevenbergMarquardt(rtol=1e-6, atol=1e-6), y0, args=(image, psf, sigma), max_steps=200); return to_physical(solution.value)
    y0 = to_unconstrained(moment_guess(image))
    solver = optx.LevenbergMarquardt(rtol=1e-6, atol=1e-6)
    solution = optx.least_squares(residuals, solver, y0, args=(image, psf, sigma), max_steps=200)
    return to_physical(solution.value)
    # END SOLUTION


# %%
check("wrapup.fit_galaxy", fit_galaxy)

# %%
best = fit_galaxy(galaxy.image, galaxy.psf, galaxy.noise_sigma)
for name, t, f in zip(PARAM_NAMES, galaxy.truth, best):
    print(f"{name:12s} truth {float(t):8.4f}   fit {float(f):8.4f}")
print("angle error (modulo pi):", float(angle_difference(best.angle, galaxy.truth.angle)))
resid = galaxy.image - observed_model(best, galaxy.psf)
print("residual rms / noise sigma:", float(resid.std() / galaxy.noise_sigma))

# %% [markdown]
# ## Lineax: deconvolution as a regularised linear inverse problem
#
# The observation is $y = Kx + \varepsilon$ with $K$ the PSF convolution. Dividing by the
# PSF in Fourier space (the naive inverse) divides the noise by numbers close to zero.
# Tikhonov regularisation instead minimises $\|Kx - y\|^2 + \lambda\|x\|^2$, whose
# solution solves the **normal equations** $(K^\top K + \lambda I)\,x = K^\top y$. That
# operator is symmetric positive definite, so conjugate gradients (CG) applies, and CG
# only needs to *apply* the operator: `lx.FunctionLinearOperator` wraps a function, and
# `.transpose()` gives $K^\top$ by JAX's automatic transposition of linear code.
#
# ## Exercise 5: the normal operator
#
# Write `normal_operator(psf, lam)` returning $K^\top K + \lambda I$ as a
# `lx.FunctionLinearOperator` on images of the PSF's shape. Use `blur_operator(psf)`
# for $K$, and tag the operator `lx.symmetric_tag` and `lx.positive_semidefinite_tag`
# (CG requires them: Lineax cannot look inside a function to find out).

# %%
from workshop_wrapup.deconvolution import (blur_operator, fourier_tikhonov, make_blurred_scene, naive_deconvolve,
                                           rms_error)


def normal_operator(psf, lam):
    # BEGIN SOLUTION: K = blur_operator(psf); return lx.FunctionLinearOperator(lambda x: K.transpose().mv(K.mv(x)) + lam * x, jax.ShapeDtypeStruct(psf.shape, psf.dtype), tags=(lx.symmetric_tag, lx.positive_semidefinite_tag))
    K = blur_operator(psf)
    Kt = K.transpose()
    structure = jax.ShapeDtypeStruct(psf.shape, psf.dtype)
    return lx.FunctionLinearOperator(lambda x: Kt.mv(K.mv(x)) + lam * x, structure,
                                     tags=(lx.symmetric_tag, lx.positive_semidefinite_tag))
    # END SOLUTION


# %%
check("wrapup.normal_operator", normal_operator)

# %% [markdown]
# Now solve. We run CG in double precision (`jax.enable_x64`): Lineax's CG reports a
# breakdown when the curvature along a search direction drops below about
# $100\,\varepsilon_\text{float} \times$ (image size), and for float32 on a 48×48 image
# that is larger than a small $\lambda$.

# %%
scene = make_blurred_scene(jax.random.key(1), size=48)
lam = 1e-3
with jax.enable_x64(True):
    k, y = jnp.asarray(scene.psf, jnp.float64), jnp.asarray(scene.observed, jnp.float64)
    rhs = blur_operator(k).transpose().mv(y)
    solution = lx.linear_solve(normal_operator(k, lam), rhs, lx.CG(rtol=1e-6, atol=1e-9, max_steps=1000))
    restored = np.asarray(solution.value)
    print("CG iterations:", int(solution.stats["num_steps"]),
          "| agrees with the closed-form Fourier answer:", bool(np.allclose(restored, fourier_tikhonov(y, k, lam), atol=1e-5)))
naive = naive_deconvolve(scene.observed, scene.psf)
for name, img in (("blurred", scene.observed), ("naive inverse", naive), ("Tikhonov + CG", restored)):
    print(f"{name:15s} rms error vs truth: {float(rms_error(jnp.asarray(img, jnp.float32), scene.truth)):.4g}")
fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
for ax, (name, img) in zip(axes, (("truth", scene.truth), ("observed", scene.observed), ("restored", restored))):
    ax.imshow(img, origin="lower", cmap="magma", vmin=0, vmax=float(scene.truth.max()) / 2)
    ax.set_title(name)
plt.show()
