"""Astronomers' morphology statistics: Gini, M20, asymmetry and the Sérsic index.

All functions take a batch of background-subtracted luminance images ``(N, H, W)``
(flux, background 0) and return one number per image; they are vectorised over the batch
in NumPy, with a Python loop only for the connected-component labelling of the
segmentation map. None is corrected for the point spread function: they compare sets of
galaxies seen through the same pixels, they are not catalogue values.

Segmentation (:func:`segmentation_map`) follows Lotz, Primack & Madau (2004, AJ 128, 163):
the Petrosian radius ``r_p`` (``eta = 0.2``, circular apertures) from the flux-weighted
centre, the image smoothed by a boxcar of width ``r_p / 5``, and the galaxy = the
connected pixels of the smoothed image at or above the mean surface brightness at ``r_p``
(floored at the smoothed noise level, so that a galaxy fainter than the noise does not
spread into the background), keeping the region that holds the centre.

* :func:`gini` (Lotz et al. 2004): inequality of the pixel fluxes in the segmentation
  map; 0 when every pixel is equally bright, 1 when one pixel holds all the light.
* :func:`m20` (Lotz et al. 2004): log10 of the second moment of the brightest 20 % of the
  light over the total second moment; about -2.5 for bulges, -1 for clumpy or merging
  galaxies.
* :func:`asymmetry` (Conselice 2003, ApJS 147, 1; Conselice, Bershady & Jangren 2000):
  ``sum |I - I_180| / sum |I|`` within ``1.5 r_p``, minimised over the rotation centre,
  minus the expected contribution of the background noise.
* :func:`sersic_index` (Sérsic 1963; Graham & Driver 2005 for the growth curve): the
  index ``n`` of the Sérsic profile ``I(r) = I_e exp(-b_n [(r / R_e)^(1/n) - 1])`` whose
  curve of growth best fits the image's (1 exponential disc, 4 de Vaucouleurs bulge).

Example::

    >>> m = morphology(lum)                    # lum (N, H, W), background-subtracted
    >>> m["gini"], m["m20"], m["asymmetry"], m["sersic_index"]
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage
from scipy.special import gammainc, gammaincinv

__all__ = [
    "flux_centroid",
    "background_noise",
    "petrosian_radius",
    "segmentation_map",
    "gini",
    "m20",
    "asymmetry",
    "sersic_index",
    "morphology",
    "MORPHOLOGY_STATS",
]

MORPHOLOGY_STATS = ("gini", "m20", "asymmetry", "sersic_index")
PETROSIAN_ETA = 0.2


def _grid(h: int, w: int):
    return np.mgrid[0:h, 0:w].astype(np.float64)


def flux_centroid(lum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``(cy, cx)`` of the positive flux of each image ``(N, H, W)``, in pixels."""
    pos = np.clip(lum, 0, None)
    yy, xx = _grid(*lum.shape[1:])
    tot = pos.sum(axis=(1, 2)) + 1e-12
    return (pos * yy).sum(axis=(1, 2)) / tot, (pos * xx).sum(axis=(1, 2)) / tot


def background_noise(lum: np.ndarray) -> np.ndarray:
    """Standard deviation of the background of each image ``(N, H, W)``: 1.4826 times the
    median absolute deviation of the stamp's border pixels (robust to a neighbour there)."""
    b = np.concatenate([lum[:, 0, :], lum[:, -1, :], lum[:, :, 0], lum[:, :, -1]], axis=-1)
    return 1.4826 * np.median(np.abs(b - np.median(b, axis=-1, keepdims=True)), axis=-1)


def _radii(lum, cy, cx):
    yy, xx = _grid(*lum.shape[1:])
    return np.hypot(yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]).reshape(len(lum), -1)


_DR = 1 / 80  # radial bin (pixels): 0.8 R and 1.25 R of a quarter-pixel grid fall on bin edges


class _Radial:
    """Flux and pixel counts of each image within any radius of its centre, from one radial
    histogram (bins of 1/80 pixel): ``within(R)`` counts the pixels with ``r <= R``."""

    def __init__(self, lum, cy, cx):
        n = len(lum)
        r = _radii(lum, cy, cx)
        self.nbins = int(np.ceil(r.max() / _DR)) + 2
        k = np.ceil(r / _DR - 1e-6).astype(int)  # bin k holds ((k - 1) dr, k dr]
        flat = (np.arange(n)[:, None] * self.nbins + k).ravel()
        size = n * self.nbins
        self.flux_hist = np.bincount(flat, lum.reshape(n, -1).ravel(), size).reshape(n, self.nbins)
        self.count_hist = np.bincount(flat, None, size).reshape(n, self.nbins)
        self.flux = np.cumsum(self.flux_hist, axis=1)
        self.count = np.cumsum(self.count_hist, axis=1)

    def within(self, radius):
        """``(flux, count)`` within ``radius`` ``(N, K)`` (nearest bin edge)."""
        k = np.clip(np.round(np.asarray(radius) / _DR).astype(int), 0, self.nbins - 1)
        return np.take_along_axis(self.flux, k, 1), np.take_along_axis(self.count, k, 1)

    def annulus_mean(self, radius):
        """Mean flux per pixel in the annulus ``0.8 R < r <= 1.25 R`` (Lotz et al. 2004); NaN
        where the annulus holds no pixel centre."""
        f_out, n_out = self.within(1.25 * radius)
        f_in, n_in = self.within(0.8 * radius)
        count = n_out - n_in
        return np.where(count > 0, (f_out - f_in) / np.maximum(count, 1), np.nan)

    def growth_curve(self, radii):
        """Flux within each of ``radii`` ``(K,)`` -> ``(N, K)``; a pixel counts with the fraction of
        a unit-wide ring around its centre radius that lies inside (a smooth aperture)."""
        centres = (np.arange(self.nbins) - 0.5) * _DR
        frac = np.clip(radii[None, :] - centres[:, None] + 0.5, 0, 1)
        return self.flux_hist @ frac


def petrosian_radius(lum: np.ndarray, cy, cx, eta: float = PETROSIAN_ETA, radial: _Radial | None = None) -> np.ndarray:
    """Circular Petrosian radius (pixels) of each image ``(N, H, W)`` about ``(cy, cx)``.

    The radius where the mean surface brightness in the annulus ``0.8 r - 1.25 r`` falls to
    ``eta`` times the mean surface brightness inside ``r`` (Petrosian 1976; ``eta = 0.2``
    as in Lotz et al. 2004 and Conselice 2003), linearly interpolated on a quarter-pixel
    grid from 1 pixel to half the stamp; half the stamp when the ratio never falls that low.
    """
    n, h, w = lum.shape
    rmax = min(h, w) / 2
    radial = radial or _Radial(lum, cy, cx)
    grid = np.arange(1.0, rmax + 1e-9, 0.25)
    radii = np.broadcast_to(grid, (n, len(grid)))
    f_in, n_in = radial.within(radii)
    inner = f_in / np.maximum(n_in, 1)
    with np.errstate(invalid="ignore"):
        ratio = np.where(inner > 0, radial.annulus_mean(radii) / np.where(inner > 0, inner, 1), 0.0)
        below = ratio < eta  # NaN (empty annulus) is never below
    found = below.any(axis=1)
    first = below.argmax(axis=1)
    out = np.full(n, rmax)
    for i in np.flatnonzero(found):
        k = first[i]
        prev = k - 1
        while prev >= 0 and np.isnan(ratio[i, prev]):
            prev -= 1
        if prev < 0:
            out[i] = grid[k]
            continue
        r0, r1, q0, q1 = grid[prev], grid[k], ratio[i, prev], ratio[i, k]
        out[i] = r0 + (r1 - r0) * (q0 - eta) / max(q0 - q1, 1e-12)
    return out


def segmentation_map(lum: np.ndarray, cy=None, cx=None, r_p=None, noise=None, radial: _Radial | None = None) -> np.ndarray:
    """The galaxy's pixels in each image ``(N, H, W)``: boolean ``(N, H, W)``.

    Lotz, Primack & Madau (2004), Sec. 3.1: smooth the image with a boxcar of width
    ``r_p / 5`` (rounded to an odd number of pixels, 1 = no smoothing), keep the pixels of
    the smoothed image at or above the mean surface brightness ``mu(r_p)`` in the annulus
    at the Petrosian radius, and of those only the connected region (4-connected) that holds
    the pixel nearest the centre (else the brightest region). The threshold is floored at the
    noise of the smoothed background (``noise / width``). An image with nothing above it
    gets its brightest pixel.
    """
    n, h, w = lum.shape
    if cy is None or cx is None:
        cy, cx = flux_centroid(lum)
    radial = radial or _Radial(lum, cy, cx)
    if r_p is None:
        r_p = petrosian_radius(lum, cy, cx, radial=radial)
    if noise is None:
        noise = background_noise(lum)
    mu = np.nan_to_num(radial.annulus_mean(np.asarray(r_p, np.float64)[:, None])[:, 0], nan=0.0)
    seg = np.zeros(lum.shape, bool)
    for i in range(n):
        width = 2 * max(int(round((r_p[i] / 5 - 1) / 2)), 0) + 1  # the odd width nearest r_p / 5
        smooth = ndimage.uniform_filter(lum[i], size=width, mode="nearest") if width > 1 else lum[i]
        above = smooth >= max(mu[i], noise[i] / width)
        labels, count = ndimage.label(above)
        if count == 0:
            seg[i].flat[np.argmax(smooth)] = True
            continue
        yc, xc = int(np.clip(round(cy[i]), 0, h - 1)), int(np.clip(round(cx[i]), 0, w - 1))
        keep = labels[yc, xc] or labels.flat[np.argmax(np.where(above, smooth, -np.inf))]
        seg[i] = labels == keep
    return seg


def gini(lum: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Gini coefficient of the absolute pixel fluxes in each segmentation map.

    ``G = sum_i (2 i - n - 1) |X_i| / (mean|X| n (n - 1))`` over the ``n`` pixels sorted by
    increasing ``|X_i|`` (Lotz, Primack & Madau 2004, eq. 6; Glasser 1962's unbiased form).
    0 for equal pixels, 1 when one pixel holds all the light; defined as 1 for a map of
    fewer than two pixels.

    >>> disc = np.zeros((1, 9, 9)); disc[0, 2:7, 2:7] = 1.0
    >>> float(gini(disc, disc > 0)[0])
    0.0
    """
    n, h, w = lum.shape
    vals = np.where(seg, np.abs(lum), np.inf).reshape(n, -1)
    vals = np.sort(vals, axis=1)
    count = seg.reshape(n, -1).sum(axis=1)
    i = np.arange(1, vals.shape[1] + 1)[None, :]
    inside = i <= count[:, None]
    x = np.where(inside, vals, 0.0)
    num = ((2 * i - count[:, None] - 1) * x).sum(axis=1)
    total = x.sum(axis=1)
    denom = total * np.maximum(count - 1, 1)  # mean|X| n (n - 1) = total (n - 1)
    return np.where((count >= 2) & (total > 0), num / np.where(denom > 0, denom, 1.0), 1.0)


def m20(lum: np.ndarray, seg: np.ndarray, floor: float = 1e-4) -> np.ndarray:
    """M20 of each image: ``log10(sum_{brightest 20%} M_i / M_tot)`` (Lotz et al. 2004, eqs. 7-8).

    ``M_i = f_i ((x_i - x_c)^2 + (y_i - y_c)^2)`` over the segmentation map's pixels
    (negative fluxes count as 0), ``(x_c, y_c)`` the centre that minimises ``M_tot`` (the
    flux-weighted centroid of those pixels). Pixels are added from the brightest down until
    they hold 20 % of the flux; the pixel that crosses 20 % counts with the fraction of its
    flux needed (so M20 changes continuously with the image). Two equally bright points
    give exactly ``log10(0.2)``. The ratio is floored at ``floor`` (``M_tot = 0`` for a
    single pixel).
    """
    n, h, w = lum.shape
    f = np.where(seg, np.clip(lum, 0, None), 0.0).reshape(n, -1)
    yy, xx = _grid(h, w)
    yy, xx = yy.ravel(), xx.ravel()
    tot = f.sum(axis=1)
    safe = np.where(tot > 0, tot, 1.0)
    yc, xc = (f * yy).sum(axis=1) / safe, (f * xx).sum(axis=1) / safe
    m = f * ((yy[None] - yc[:, None]) ** 2 + (xx[None] - xc[:, None]) ** 2)
    order = np.argsort(-f, axis=1)
    fs, ms = np.take_along_axis(f, order, 1), np.take_along_axis(m, order, 1)
    before = np.cumsum(fs, axis=1) - fs
    frac = np.clip((0.2 * tot[:, None] - before) / np.where(fs > 0, fs, 1.0), 0, 1) * (fs > 0)
    m_tot = m.sum(axis=1)
    ratio = (frac * ms).sum(axis=1) / np.where(m_tot > 0, m_tot, 1.0)
    return np.log10(np.maximum(np.where(m_tot > 0, ratio, 0.0), floor))


def _rotation_residual(lum, ccy, ccx, radius):
    """``sum |I - I_180|``, ``sum |I|`` and the pixel count within ``radius`` of the centres
    ``(ccy, ccx)`` (half-integers or integers, so the rotation maps pixels onto pixels)."""
    n, h, w = lum.shape
    y, x = np.arange(h), np.arange(w)
    iy = np.rint(2 * ccy[:, None] - y[None]).astype(int)  # the rotated partner of row y
    ix = np.rint(2 * ccx[:, None] - x[None]).astype(int)
    valid = ((iy >= 0) & (iy < h))[:, :, None] & ((ix >= 0) & (ix < w))[:, None, :]
    r2 = (y[None, :, None] - ccy[:, None, None]) ** 2 + (x[None, None, :] - ccx[:, None, None]) ** 2
    ap = valid & (r2 <= (np.asarray(radius) ** 2)[:, None, None])
    rot = lum[np.arange(n)[:, None, None], np.clip(iy, 0, h - 1)[:, :, None], np.clip(ix, 0, w - 1)[:, None, :]]
    return (np.abs(lum - rot) * ap).sum(axis=(1, 2)), (np.abs(lum) * ap).sum(axis=(1, 2)), ap.sum(axis=(1, 2))


def asymmetry(lum: np.ndarray, cy, cx, radius, noise, max_moves: int = 3) -> np.ndarray:
    """Rotational asymmetry (Conselice 2003, eq. 3; Conselice, Bershady & Jangren 2000).

    ``A = min_c [sum |I - I_180| - (2 / sqrt(pi)) sigma N] / sum |I|`` over the ``N`` pixels
    within ``radius`` (``1.5 r_p`` in :func:`morphology`) of the rotation centre ``c`` whose
    rotated partner lies in the stamp. ``c`` starts at the half-pixel nearest ``(cy, cx)`` and
    moves to the best of its 8 half-pixel neighbours while that lowers ``A`` (at most
    ``max_moves`` times); on that grid a 180-degree rotation maps pixels onto pixels, no
    interpolation. The background term is the expected ``|n - n'|`` of two independent
    Gaussian noise pixels of standard deviation ``sigma`` (``noise``), in place of the
    asymmetry of a sky patch, which a 32-pixel stamp does not have. 0 for a symmetric image
    (before the noise term, at most 2); like Conselice's it over-corrects where the galaxy
    outshines the noise, so a faint, nearly symmetric galaxy can get a slightly negative ``A``.
    """
    noise_per_pixel = 2 / np.sqrt(np.pi) * np.asarray(noise, np.float64)

    def value(ccy, ccx):
        num, den, count = _rotation_residual(lum, ccy, ccx, radius)
        return (num - noise_per_pixel * count) / np.maximum(den, 1e-12)

    ccy, ccx = np.round(2 * np.asarray(cy)) / 2, np.round(2 * np.asarray(cx)) / 2
    best = value(ccy, ccx)
    moves = [(dy, dx) for dy in (-0.5, 0, 0.5) for dx in (-0.5, 0, 0.5) if dy or dx]
    for _ in range(max_moves):
        cand = np.stack([value(ccy + dy, ccx + dx) for dy, dx in moves])  # (8, N)
        k = cand.argmin(axis=0)
        better = cand[k, np.arange(len(k))] < best
        if not better.any():
            break
        step = np.asarray(moves)[k]
        ccy, ccx = ccy + better * step[:, 0], ccx + better * step[:, 1]
        best = np.where(better, cand[k, np.arange(len(k))], best)
    return best


@lru_cache(maxsize=4)
def _sersic_table(rmax: float):
    """Curves of growth ``L(<R) / L_tot`` of Sérsic profiles on a grid of ``(n, R_e)``."""
    radii = np.arange(1.5, rmax + 1e-9, 0.5)
    ns = np.geomspace(0.3, 8.0, 64)
    res = np.geomspace(0.5, 3 * rmax, 72)
    b = gammaincinv(2 * ns, 0.5)  # L(<R_e) = L_tot / 2 defines b_n
    x = b[:, None, None] * (radii[None, None, :] / res[None, :, None]) ** (1 / ns[:, None, None])
    return radii, ns, res, gammainc(2 * ns[:, None, None], x)  # (n, R_e, radius)


def sersic_index(lum: np.ndarray, cy, cx, radial: _Radial | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sérsic index and effective radius of each image from its curve of growth.

    The circular curve of growth of the background-subtracted flux (negative pixels kept,
    so that noise averages out) at radii 1.5, 2, ... up to half the stamp is fitted by
    least squares with ``F gammainc(2n, b_n (R / R_e)^(1/n))``, the growth curve of a
    Sérsic profile of total flux ``F`` (Graham & Driver 2005, eq. 2): ``F`` in closed form,
    ``(n, R_e)`` on a grid (``n`` in 0.3-8, 64 steps; ``R_e`` 0.5 pixel to 1.5 stamps, 72
    steps), refined by a parabola through the neighbours in ``log n``. No PSF: a small
    galaxy's ``n`` is biased low (its core is blurred).

    Returns:
        ``(n, R_e)``, each ``(N,)``; ``R_e`` in pixels.
    """
    n_img, h, w = lum.shape
    radii, ns, res, table = _sersic_table(min(h, w) / 2)
    g = (radial or _Radial(lum, cy, cx)).growth_curve(radii)
    m = table.reshape(-1, len(radii))
    mm = (m * m).sum(axis=1)
    mg = g @ m.T
    sse = (g * g).sum(axis=1)[:, None] - np.where(mg > 0, mg, 0.0) ** 2 / mm[None]
    sse = sse.reshape(n_img, len(ns), len(res))
    flat = sse.reshape(n_img, -1).argmin(axis=1)
    i_n, i_r = np.unravel_index(flat, (len(ns), len(res)))
    log_n = np.log(ns)[i_n]
    step = np.log(ns[1] / ns[0])
    interior = (i_n > 0) & (i_n < len(ns) - 1)
    k = np.clip(i_n, 1, len(ns) - 2)
    rows = np.arange(n_img)
    s_m, s_0, s_p = sse[rows, k - 1, i_r], sse[rows, k, i_r], sse[rows, k + 1, i_r]
    curv = s_m - 2 * s_0 + s_p
    shift = np.where(interior & (curv > 0), 0.5 * (s_m - s_p) / np.where(curv > 0, curv, 1.0), 0.0)
    return np.exp(log_n + np.clip(shift, -0.5, 0.5) * step), res[i_r]


def morphology(lum: np.ndarray) -> dict[str, np.ndarray]:
    """Gini, M20, asymmetry and Sérsic index of background-subtracted images ``(N, H, W)``.

    Returns:
        ``{"gini", "m20", "asymmetry", "sersic_index"}``, each ``(N,)``, plus
        ``"petrosian_radius"`` (pixels), all from the flux-weighted centre.
    """
    lum = np.asarray(lum, np.float64)
    if lum.ndim != 3:
        raise ValueError(f"morphology expects images of shape (N, H, W); got {lum.shape}. "
                         "Pass the luminance (mean over colour channels) of a batch of images.")
    cy, cx = flux_centroid(lum)
    noise = background_noise(lum)
    radial = _Radial(lum, cy, cx)
    r_p = petrosian_radius(lum, cy, cx, radial=radial)
    seg = segmentation_map(lum, cy, cx, r_p, noise, radial=radial)
    n, _ = sersic_index(lum, cy, cx, radial=radial)
    return dict(gini=gini(lum, seg), m20=m20(lum, seg), asymmetry=asymmetry(lum, cy, cx, 1.5 * r_p, noise),
                sersic_index=n, petrosian_radius=r_p)
