"""Science metrics on inputs whose answers are known."""

from __future__ import annotations

import numpy as np

from workshop_astro.evaluate import compare, galaxy_statistics, nearest_neighbour_distances, radial_power_spectrum, standardized_w1


def blobs(n=6, size=48, sigma=(3.0, 3.0), colour=(1.0, 1.0, 1.0), amp=1.5):
    yy, xx = np.mgrid[0:size, 0:size] - (size - 1) / 2
    g = amp * np.exp(-0.5 * ((yy / sigma[0]) ** 2 + (xx / sigma[1]) ** 2))
    img = np.stack([c * g for c in colour])  # flux in [0, 1.5]; background 0
    x = np.repeat(img[None], n, axis=0) * 2 - 1  # model units; background -1
    return x.astype(np.float32)


def test_morphology_of_gaussian_galaxies():
    s = galaxy_statistics(blobs(sigma=(3.0, 3.0)))
    assert np.allclose(s["half_light_radius"], 3.0 * np.sqrt(2 * np.log(2)), atol=0.15)
    c_expected = 5 * np.log10(np.sqrt(np.log(5)) / np.sqrt(np.log(1 / 0.8)))  # r80 / r20 of a Gaussian
    assert np.allclose(s["concentration"], c_expected, atol=0.1)
    assert np.all(s["ellipticity"] < 0.02)
    assert np.allclose(s["colour"], 0.0, atol=1e-6)
    e = galaxy_statistics(blobs(sigma=(2.0, 4.0)))["ellipticity"]
    assert np.allclose(e, 0.5, atol=0.03)  # axis ratio 1/2
    red = galaxy_statistics(blobs(colour=(1.0, 0.5, 0.1)))["colour"]
    assert np.allclose(red, -2.5 * np.log10(0.1), atol=0.05)  # blue 10x fainter: +2.5 mag
    brighter = galaxy_statistics(blobs(amp=1.0))["log_flux"]
    assert np.all(galaxy_statistics(blobs(amp=0.5))["log_flux"] < brighter - 0.25)


def test_power_spectrum_of_white_noise_is_flat_and_of_smooth_images_falls():
    rng = np.random.default_rng(0)
    p = radial_power_spectrum(rng.normal(size=(200, 32, 32)))
    assert p.shape == (200, 16) and np.allclose(p.mean(0), 1.0, atol=0.1)
    smooth = radial_power_spectrum(blobs(n=1, size=32)[:, 0])
    assert smooth[0, 0] > 100 * smooth[0, -1]


def test_distances_and_memorisation():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    assert standardized_w1(a, b, 1.0) < 0.1
    assert np.isclose(standardized_w1(a, a + 2.0, 2.0), 1.0)
    train = np.clip(rng.normal(-0.5, 0.3, (40, 3, 8, 8)), -1, 1).astype(np.float32)
    rotated = np.rot90(train[:5], 1, axes=(-2, -1))
    assert np.allclose(nearest_neighbour_distances(rotated, train), 0, atol=1e-3)  # symmetries count as copies
    assert np.all(nearest_neighbour_distances(rotated, train, symmetries=False) > 0.1)


def test_compare_tells_copies_from_new_images():
    rng = np.random.default_rng(1)
    sig = rng.uniform(1.5, 4, 120)
    yy, xx = np.mgrid[0:16, 0:16] - 7.5
    imgs = np.exp(-(yy**2 + xx**2)[None] / (2 * sig[:, None, None] ** 2))
    imgs = np.repeat(imgs[:, None], 3, axis=1) * 1.6 - 1 + 0.02 * rng.normal(size=(120, 3, 16, 16))
    imgs = imgs.astype(np.float32)
    train, test, fresh = imgs[:60], imgs[60:90], imgs[90:]
    r_fresh = compare(fresh, train, test)
    r_copy = compare(train[:30], train, test)
    r_bad = compare(np.full_like(fresh, -1.0) + 0.05 * rng.normal(size=fresh.shape).astype(np.float32), train, test)
    assert r_fresh["mean_distance"] < 3 * r_fresh["mean_floor"] + 0.2
    assert r_bad["mean_distance"] > 3 * r_bad["mean_floor"]
    assert r_copy["memorisation"]["ratio"] < 0.1 < 0.5 < r_fresh["memorisation"]["ratio"]
