# %% [markdown]
# # Measuring the science
#
# Pretty pictures are not a metric. Astronomers describe a galaxy by numbers: total
# flux, **half-light radius**, concentration $C = 5 \log_{10}(r_{80}/r_{20})$,
# ellipticity from the second moments, colour, and the power spectrum of its light. A
# generator is good when the *distributions* of these over its images match those over
# held-out real galaxies, as closely as the training set itself does (the **floor**). A
# generator that copies its training set would pass that test, so we also compare
# nearest-neighbour distances to the training set: generated vs held-out.

# %%
import matplotlib.pyplot as plt
import numpy as np

from workshop import check
from workshop.data import fetch
from workshop_astro.evaluate import compare, galaxy_statistics
from workshop_astro.galaxies import load_stamps

data = load_stamps(fetch("astro", "hdf_stamps_32.npz"))

# %% [markdown]
# ## Exercise: the half-light radius
#
# Write `half_light_radius(img)` for one 2-D image of non-negative flux: find the
# flux-weighted centre, the distance of every pixel from it, sort the pixels by distance
# and return the radius at which the cumulative flux reaches half the total
# (`np.interp` helps).

# %%
def half_light_radius(img):
    # BEGIN SOLUTION: centre, radii, sort, cumulative fraction, interpolate at 0.5
    img = np.clip(np.asarray(img, float), 0, None)
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    total = img.sum()
    cy, cx = (img * yy).sum() / total, (img * xx).sum() / total
    r = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order]) / total
    return float(np.interp(0.5, cum, r[order]))
    # END SOLUTION


# %%
check("astro.half_light_radius", half_light_radius)

# %% [markdown]
# ## The floor: training vs held-out real galaxies
#
# Below, "generated" is replaced by two stand-ins: the training galaxies themselves
# (a perfect memoriser) and blurred noise (a bad generator).

# %%
rng = np.random.default_rng(0)
copies = data.train[rng.choice(len(data.train), 100, replace=False)]
noise = np.clip(rng.normal(-0.8, 0.15, copies.shape), -1, 1).astype(np.float32)
for name, fake in (("memoriser", copies), ("noise", noise)):
    r = compare(fake, data.train, data.test)
    print(f"{name:10s} mean distance {r['mean_distance']:.2f} (floor {r['mean_floor']:.2f}); "
          f"nearest-neighbour ratio {r['memorisation']['ratio']:.2f}")

# %% [markdown]
# ## How large is chance?
#
# Every distance here is measured on about a hundred galaxies, so it is noisy, and so is
# its ratio to the floor. `compare` averages both over 50 random subsets of equal size,
# which removes the luck of one draw but not that of the images themselves. To see what
# chance alone does, let half of the training set pose as a *perfect* generator and the
# other half serve as the training set:

# %%
order = rng.permutation(len(data.train))
half = len(order) // 2
r = compare(data.train[order[:half]], data.train[order[half:]], data.test)
print("real galaxies posing as generated: mean ratio "
      f"{r['mean_distance'] / r['mean_floor']:.2f}, per statistic:")
print({k: round(v, 2) for k, v in r["ratio"].items()})

# %% [markdown]
# Over 100 such splits (`benchmarks/astro_evaluation_null.py`) the mean ratio of real
# galaxies stays between 0.80 and 1.30 (5th to 95th percentile), but in about half of the
# splits *some* statistic exceeds 1.6x its floor. Each statistic has its own chance level:
# `evaluate.HDF32_CHANCE_95` holds the ratio that real galaxies stay below in 95 % of the
# splits (1.38 for ellipticity, 2.09 for asymmetry), and the galaxy demo's report marks
# every ratio above it. Judge a generator by the mean and by statistics that stay above
# chance across seeds and draws, not by one number of one report.

# %%
stats = galaxy_statistics(data.test)
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, k in zip(axes, ("half_light_radius", "concentration", "colour")):
    ax.hist(stats[k], bins=20)
    ax.set_title(k)
