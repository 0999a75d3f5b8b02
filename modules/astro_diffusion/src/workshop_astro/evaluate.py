"""Science metrics for generated galaxies: morphology, colour, power spectrum, memorisation.

Every statistic is measured per image on background-subtracted flux (the images in
``[-1, 1]`` are mapped back to ``[0, 1]``; the background is the median of the stamp's
border). A generator is judged by the distance between the distribution of a
statistic over its images and over held-out real galaxies, next to the **floor**: the
same distance between training and held-out real galaxies (equal sample sizes), which
is what a perfect generator would score.

* ``log_flux``: log10 of the total background-subtracted luminance (a magnitude / -2.5).
* ``half_light_radius``: radius (pixels) around the flux-weighted centre holding half the flux.
* ``concentration``: ``5 log10(r80 / r20)`` (Bershady et al. 2000).
* ``ellipticity``: ``1 - b/a`` from the flux-weighted second moments.
* ``colour``: ``-2.5 log10(F_blue / F_red)`` (bluer is more negative).
* ``power_spectrum``: radially averaged power spectrum of the luminance, in log10.
* ``gini``, ``m20`` (Lotz, Primack & Madau 2004), ``asymmetry`` (Conselice 2003) and
  ``sersic_index`` (curve-of-growth fit), on the luminance inside the Lotz et al.
  Petrosian segmentation map: see :mod:`workshop_astro.morphology` for definitions.

Distances: the 1-D Wasserstein distance divided by the held-out spread (so all metrics
share one scale); for the power spectrum, the mean of that over wavenumber bins. Generated
and training images are compared with the held-out ones at one sample size, and both are
averaged over random subsets (:func:`compare`), so that the ratio to the floor measures the
generator rather than the luck of one draw.

Example::

    >>> stats = galaxy_statistics(images)          # images (N, 3, H, W) in [-1, 1]
    >>> report = compare(generated, train, test)   # distances, floors, memorisation
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from . import guards
from .morphology import MORPHOLOGY_STATS, morphology

__all__ = [
    "SCALAR_STATS",
    "galaxy_statistics",
    "radial_power_spectrum",
    "standardized_w1",
    "nearest_neighbour_distances",
    "compare",
    "format_table",
    "plot_report",
]

SCALAR_STATS = ("log_flux", "half_light_radius", "concentration", "ellipticity", "colour", *MORPHOLOGY_STATS)


def _flux_images(images) -> np.ndarray:
    x = np.asarray(images, np.float64) * 0.5 + 0.5  # (N, 3, H, W) in [0, 1]
    border = np.concatenate([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], axis=-1)
    return x - np.median(border, axis=-1)[..., None, None]


def radial_power_spectrum(lum: np.ndarray) -> np.ndarray:
    """Radially averaged power spectrum ``(N, H // 2)`` of images ``(N, H, W)``; bin ``k`` holds
    wavenumbers in ``[k, k + 1)`` (cycles per image), ``k = 0`` excluded by mean subtraction."""
    n, h, w = lum.shape
    f = np.fft.fft2(lum - lum.mean(axis=(1, 2), keepdims=True))
    p = np.abs(f) ** 2 / (h * w)
    ky = np.fft.fftfreq(h) * h
    kx = np.fft.fftfreq(w) * w
    k = np.floor(np.hypot(ky[:, None], kx[None, :])).astype(int)
    nb = min(h, w) // 2
    out = np.zeros((n, nb))
    for b in range(1, nb + 1):
        sel = k == b
        out[:, b - 1] = p[:, sel].mean(axis=1)
    return out


def galaxy_statistics(images) -> dict[str, np.ndarray]:
    """Per-image statistics of ``(N, 3, H, W)`` images in ``[-1, 1]`` (see the module docstring).

    Returns:
        ``{name: (N,) array}`` for :data:`SCALAR_STATS` and ``"power_spectrum": (N, H//2)``
        (log10 power).
    """
    f = _flux_images(images)
    n, c, h, w = f.shape
    lum = f.mean(axis=1)
    pos = np.clip(lum, 0, None)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    tot = pos.sum(axis=(1, 2)) + 1e-12
    cy = (pos * yy).sum(axis=(1, 2)) / tot
    cx = (pos * xx).sum(axis=(1, 2)) / tot
    r = np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None])
    rmax = min(h, w) / 2
    inside = r <= rmax
    wpos = pos * inside
    # growth curve: sort pixels by radius, cumulative flux
    rflat, fflat = r.reshape(n, -1), wpos.reshape(n, -1)
    order = np.argsort(rflat, axis=1)
    rs = np.take_along_axis(rflat, order, 1)
    fs = np.take_along_axis(fflat, order, 1)
    # midpoint rule: a pixel's flux counts half at its own radius (less bias for small galaxies)
    cum = np.cumsum(fs, axis=1) - 0.5 * fs
    cum /= fs.sum(axis=1, keepdims=True) + 1e-12

    def radius(frac):
        return np.array([np.interp(frac, cum[i], rs[i]) for i in range(n)])

    r20, r50, r80 = radius(0.2), radius(0.5), radius(0.8)
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    t = wpos.sum(axis=(1, 2)) + 1e-12
    qyy = (wpos * dy * dy).sum(axis=(1, 2)) / t
    qxx = (wpos * dx * dx).sum(axis=(1, 2)) / t
    qxy = (wpos * dx * dy).sum(axis=(1, 2)) / t
    tr, det = qxx + qyy, qxx * qyy - qxy**2
    disc = np.sqrt(np.clip(tr**2 / 4 - det, 0, None))
    l1, l2 = tr / 2 + disc, np.clip(tr / 2 - disc, 0, None)
    ell = 1 - np.sqrt(l2 / np.maximum(l1, 1e-12))
    band = np.clip(f * inside[:, None], 0, None).sum(axis=(2, 3))  # (N, 3): R, G, B
    colour = -2.5 * np.log10((band[:, 2] + 1e-3) / (band[:, 0] + 1e-3))
    ps = np.log10(radial_power_spectrum(lum) + 1e-12)
    morph = morphology(lum)
    return dict(
        log_flux=np.log10(np.maximum(lum.sum(axis=(1, 2)), 1e-2)),
        half_light_radius=r50,
        concentration=5 * np.log10(np.maximum(r80, 1e-3) / np.maximum(r20, 1e-3)),
        ellipticity=ell,
        colour=colour,
        **{k: morph[k] for k in MORPHOLOGY_STATS},
        power_spectrum=ps,
    )


def standardized_w1(a: np.ndarray, b: np.ndarray, scale: float) -> float:
    """1-D Wasserstein distance between samples ``a`` and ``b``, divided by ``scale``."""
    return float(wasserstein_distance(np.ravel(a), np.ravel(b)) / max(scale, 1e-12))


def _spread(x: np.ndarray) -> float:
    q75, q25 = np.percentile(x, [75, 25])
    return float((q75 - q25) / 1.349) or float(np.std(x)) or 1.0


def _distances(sa: dict, sb: dict, ref: dict) -> dict[str, float]:
    out = {k: standardized_w1(sa[k], sb[k], _spread(ref[k])) for k in SCALAR_STATS}
    ps_a, ps_b, ps_r = sa["power_spectrum"], sb["power_spectrum"], ref["power_spectrum"]
    out["power_spectrum"] = float(np.mean([standardized_w1(ps_a[:, j], ps_b[:, j], _spread(ps_r[:, j]))
                                           for j in range(ps_a.shape[1])]))
    return out


def nearest_neighbour_distances(queries, reference, symmetries: bool = True) -> np.ndarray:
    """Root-mean-square pixel distance of each query image to its nearest reference image.

    With ``symmetries``, the reference set is augmented by the 8 symmetries of the square
    (the model was trained on them, so a memorised image may come out rotated).
    """
    q = np.asarray(queries, np.float32).reshape(len(queries), -1)
    ref = np.asarray(reference, np.float32)
    if symmetries:
        refs = []
        for k in range(8):
            y = np.rot90(ref, k % 4, axes=(-2, -1))
            refs.append(np.flip(y, axis=-1) if k >= 4 else y)
        ref = np.concatenate(refs)
    r = ref.reshape(len(ref), -1)
    d2 = (q**2).sum(1)[:, None] - 2 * q @ r.T + (r**2).sum(1)[None, :]
    return np.sqrt(np.clip(d2.min(axis=1), 0, None) / q.shape[1])


def compare(generated, train, test, *, seed: int = 0, subsets: int = 50) -> dict:
    """Distances of generated vs held-out galaxies, the train-vs-held-out floor, memorisation.

    Arguments:
        generated, train, test: ``(N, 3, H, W)`` images in ``[-1, 1]``.
        seed: seed of the random subsets.
        subsets: how many random subsets the distances and the floor are averaged over.

    Every distance is measured between ``n = min(len(generated), len(train), len(test))``
    images and all held-out ones, so that generated and training images are judged at the
    same sample size (a distance between finite samples grows as they shrink). It is the
    mean over ``subsets`` random draws of ``n`` generated images, and the floor the mean
    over as many draws of ``n`` training images. One draw of each, as before, made the
    ratio a lottery: real training galaxies scored as "generated" exceeded 1.6x the floor
    on some statistic in 13 of 20 random splits (``benchmarks/astro_evaluation_null.py``).
    Averaging removes the noise of the draw, not that of the pools themselves, so give it
    several hundred generated images when you can.

    Returns:
        A JSON-ready dict: ``distance`` and ``floor`` per statistic, their ``ratio``, the
        summary means, ``floor_spread`` (the standard deviation of the floor between
        subsets, per statistic), and ``memorisation`` (median nearest-neighbour distances to
        the training set of generated and of held-out images, and their ratio: well below 1
        means the generator copies its training set).
    """
    generated = guards.model_images("generated", generated, values=False)
    train, test = guards.model_images("train", train), guards.model_images("test", test)
    if not generated.shape[1:] == train.shape[1:] == test.shape[1:]:
        raise ValueError(f"generated {generated.shape}, train {train.shape} and test {test.shape} must be images "
                         "of one size")
    for name, a in (("generated", generated), ("train", train), ("test", test)):
        if len(a) < 2:
            raise ValueError(f"{name} holds {len(a)} image(s); distributions need at least 2 (use 100 or more)")
    if int(subsets) < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets!r}")
    rng = np.random.default_rng(seed)
    n = min(len(generated), len(train), len(test))
    s_gen, s_train, s_test = galaxy_statistics(generated), galaxy_statistics(train), galaxy_statistics(test)
    dist = _mean_distances(s_gen, s_test, n, int(subsets), rng)
    floors = _subset_distances(s_train, s_test, n, int(subsets), rng)
    floor = {k: float(np.mean([f[k] for f in floors])) for k in dist}
    nn_gen = nearest_neighbour_distances(generated, train)
    nn_test = nearest_neighbour_distances(test, train)
    keys = list(dist)
    return dict(
        n_generated=int(len(generated)), n_train=int(len(train)), n_test=int(len(test)), n_subset=int(n),
        subsets=int(subsets),
        distance=dist, floor=floor,
        ratio={k: dist[k] / max(floor[k], 1e-12) for k in keys},
        floor_spread={k: float(np.std([f[k] for f in floors])) for k in keys},
        mean_distance=float(np.mean([dist[k] for k in keys])),
        mean_floor=float(np.mean([floor[k] for k in keys])),
        memorisation=dict(
            median_nn_generated=float(np.median(nn_gen)),
            median_nn_heldout=float(np.median(nn_test)),
            ratio=float(np.median(nn_gen) / max(np.median(nn_test), 1e-12)),
            fraction_closer_than_heldout_5pct=float(np.mean(nn_gen < np.percentile(nn_test, 5))),
        ),
        summary_generated={k: [float(np.mean(v)), float(np.std(v))] for k, v in s_gen.items() if k in SCALAR_STATS},
        summary_heldout={k: [float(np.mean(v)), float(np.std(v))] for k, v in s_test.items() if k in SCALAR_STATS},
        _stats=dict(generated=s_gen, train=s_train, test=s_test),
    )


def _subset_distances(s_pool: dict, s_ref: dict, n: int, subsets: int, rng) -> list[dict[str, float]]:
    """:func:`_distances` of ``subsets`` random draws of ``n`` images from a pool to ``s_ref``."""
    size = len(s_pool["log_flux"])
    out = []
    for _ in range(subsets):
        idx = rng.choice(size, size=n, replace=False)
        out.append(_distances({k: v[idx] for k, v in s_pool.items()}, s_ref, s_ref))
    return out


def _mean_distances(s_pool: dict, s_ref: dict, n: int, subsets: int, rng) -> dict[str, float]:
    draws = _subset_distances(s_pool, s_ref, n, subsets, rng)
    return {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}


def image_grid(images, ncols: int = 8) -> np.ndarray:
    """Tile ``(N, 3, H, W)`` images in ``[-1, 1]`` into one ``(rows*H, ncols*W, 3)`` picture."""
    from .galaxies import to_image

    im = to_image(images)
    n, h, w, c = im.shape
    rows = -(-n // ncols)
    grid = np.ones((rows * (h + 1) - 1, ncols * (w + 1) - 1, c), np.float32)
    for i in range(n):
        r, q = divmod(i, ncols)
        grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = im[i]
    return grid


def format_table(report: dict) -> str:
    """The report of :func:`compare` as a plain-text table: per statistic the generated and
    held-out mean +- standard deviation, the distance, the train-vs-held-out floor and their ratio."""
    gen, held = report["summary_generated"], report["summary_heldout"]
    lines = [f"{'statistic':<18} {'generated':>15} {'held-out':>15} {'distance':>9} {'floor':>7} {'ratio':>6}"]
    for k in report["distance"]:
        g = f"{gen[k][0]:.2f} +- {gen[k][1]:.2f}" if k in gen else ""
        t = f"{held[k][0]:.2f} +- {held[k][1]:.2f}" if k in held else ""
        lines.append(f"{k:<18} {g:>15} {t:>15} {report['distance'][k]:>9.2f} {report['floor'][k]:>7.2f} "
                     f"{report['ratio'][k]:>6.2f}")
    lines.append(f"{'mean':<18} {'':>15} {'':>15} {report['mean_distance']:>9.2f} {report['mean_floor']:>7.2f} "
                 f"{report['mean_distance'] / max(report['mean_floor'], 1e-12):>6.2f}")
    return "\n".join(lines)


def plot_report(report: dict, generated, test, path, title: str = "") -> None:
    """Figure: real vs generated grids, the power spectra, a histogram per statistic and the
    distance of every statistic beside its floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = report["_stats"]
    fig = plt.figure(figsize=(16, 12))
    gs = fig.add_gridspec(3, 5, height_ratios=[1.3, 1, 1])
    # A fixed random choice of each set: the held-out stamps come in catalogue order, and
    # their first 32 are brighter than the average (mean log flux 1.65 against 1.28), which
    # the eye would compare with typical generated ones.
    shown = {name: np.sort(np.random.default_rng(0).choice(len(x), min(32, len(x)), replace=False))
             for name, x in (("test", test), ("generated", generated))}
    ax = fig.add_subplot(gs[0, 0:2])
    ax.imshow(image_grid(np.asarray(test)[shown["test"]]))
    ax.set_title(f"held-out real galaxies ({len(shown['test'])} at random of {len(test)})")
    ax.axis("off")
    ax = fig.add_subplot(gs[0, 2:4])
    ax.imshow(image_grid(np.asarray(generated)[shown["generated"]]))
    ax.set_title(f"generated ({len(shown['generated'])} at random of {len(generated)})")
    ax.axis("off")
    ax = fig.add_subplot(gs[0, 4])
    k = np.arange(1, st["test"]["power_spectrum"].shape[1] + 1)
    for name, colour in (("test", "k"), ("train", "tab:blue"), ("generated", "tab:orange")):
        ps = st[name]["power_spectrum"]
        ax.plot(k, ps.mean(0), color=colour, label=name)
        ax.fill_between(k, *np.percentile(ps, [16, 84], axis=0), color=colour, alpha=0.15)
    ax.set_xlabel("wavenumber (cycles / stamp)")
    ax.set_ylabel("log10 power")
    ax.set_title(f"power spectrum: d={report['distance']['power_spectrum']:.2f} (floor {report['floor']['power_spectrum']:.2f})", fontsize=9)
    ax.legend(fontsize=8)
    for i, name in enumerate(SCALAR_STATS):
        ax = fig.add_subplot(gs[1 + i // 5, i % 5])
        allv = np.concatenate([st[s][name] for s in ("test", "train", "generated")])
        lo, hi = np.percentile(allv, [1, 99])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 25)
        for s, colour in (("test", "k"), ("train", "tab:blue"), ("generated", "tab:orange")):
            ax.hist(st[s][name], bins=bins, histtype="step", density=True, color=colour, label=s)
        ax.set_title(f"{name}\nd={report['distance'][name]:.2f} (floor {report['floor'][name]:.2f})", fontsize=9)
        if i == 0:
            ax.legend(fontsize=8)
    ax = fig.add_subplot(gs[2, 4])
    names = list(report["distance"])
    pos = np.arange(len(names))
    ax.barh(pos + 0.2, [report["distance"][n] for n in names], 0.4, color="tab:orange", label="generated vs held-out")
    ax.barh(pos - 0.2, [report["floor"][n] for n in names], 0.4, color="tab:blue", label="floor: train vs held-out")
    ax.set_yticks(pos, names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("standardised W1 distance")
    ax.set_title(f"mean {report['mean_distance']:.2f} (floor {report['mean_floor']:.2f})", fontsize=9)
    ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
