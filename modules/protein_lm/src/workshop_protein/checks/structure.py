"""Checks for the exercises of lessons 04-06 (fine-tuning, contacts, design).

Each check calls the participant's function on many inputs, compares with the
reference implementation of this package, and recognises the usual mistakes to give a
concrete hint.
"""

from __future__ import annotations

import numpy as np

from workshop.checking import CheckFailed, assert_close, assert_shape, call, expect

# ---------------------------------------------------------------- lesson 04: fine-tuning


def masked_mean_pool(candidate) -> str:
    """``masked_mean_pool(hidden (T, D), mask (T,)) -> (D,)``: mean over masked-in rows."""
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    for T, D, n in [(6, 3, 4), (10, 5, 1), (12, 8, 12), (9, 4, 7), (16, 2, 3)]:
        h = rng.normal(size=(T, D)).astype(np.float32)
        m = np.zeros(T, bool)
        m[rng.choice(T, n, replace=False)] = True
        got = call(candidate, jnp.asarray(h), jnp.asarray(m), what=f"hidden {h.shape}, mask with {n} of {T} True")
        expected = h[m].mean(0)
        assert_shape(got, (D,), what="the pooled embedding", hint="average over the length axis (axis 0), keep D")
        g = np.asarray(got)
        if np.allclose(g, h.mean(0), atol=1e-5) and n < T:
            raise CheckFailed("your pooling averages over every position, padding included",
                              hint="multiply hidden by mask[:, None] and divide by mask.sum(), not by T")
        if np.allclose(g, h[m].sum(0) / T, atol=1e-5) and n < T:
            raise CheckFailed("you sum the right positions but divide by the full length T",
                              hint="divide by the number of real positions, mask.sum()")
        assert_close(got, expected, what=f"the pooled embedding (mask with {n} of {T} True)", rtol=1e-4, atol=1e-5,
                     hint="(hidden * mask[:, None]).sum(0) / mask.sum()")
    return "5 inputs, padding ignored"


def spearman_rho(candidate) -> str:
    """``spearman_rho(x, y) -> float``: Pearson correlation of the ranks."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(1)
    cases = [(np.arange(6.0), np.arange(6.0) ** 3), (np.arange(5.0), -np.exp(np.arange(5.0)))]
    for n in (8, 15, 30):
        x = rng.normal(size=n)
        cases.append((x, np.exp(2 * x) + rng.normal(scale=0.5, size=n)))
    for x, y in cases:
        got = float(call(candidate, x, y, what=f"{len(x)} points"))
        expected = float(spearmanr(x, y).statistic)
        pearson = float(np.corrcoef(x, y)[0, 1])
        order = float(np.corrcoef(np.argsort(x), np.argsort(y))[0, 1])
        if not np.isclose(got, expected, atol=1e-6) and np.isclose(got, order, atol=1e-6):
            raise CheckFailed("you correlated x.argsort() and y.argsort(): that is the order that sorts the values, "
                              "not their ranks", hint="the ranks are x.argsort().argsort() (or scipy.stats.rankdata(x))",
                              expected=expected, got=got)
        if not np.isclose(got, expected, atol=1e-6) and np.isclose(got, pearson, atol=1e-6):
            raise CheckFailed("you computed the Pearson correlation of the values",
                              hint="rank both arrays first (scipy.stats.rankdata or x.argsort().argsort()), then correlate the ranks",
                              expected=expected, got=got)
        assert_close(got, expected, what=f"Spearman's rho on {len(x)} points", atol=1e-6,
                     hint="np.corrcoef(rank(x), rank(y))[0, 1] with rank = argsort of argsort")
    return f"{len(cases)} pairs of arrays, monotone and noisy"


# ---------------------------------------------------------------- lesson 05: contacts


def apc(candidate) -> str:
    """``apc(a (..., L, L)) -> (..., L, L)``: average product correction.

    The maps are not symmetric (an attention map is not), so a correction built from the
    column sums where the row sums belong (``a.sum(-2)`` for ``a.sum(-1)``) gives other
    numbers; stacked maps must each be corrected on their own.
    """
    import jax.numpy as jnp

    from ..contacts import apc as reference

    rng = np.random.default_rng(2)
    fix = "APC_ij = a_ij - (row sum i)(column sum j) / (sum of all entries)"
    for shape in [(5, 5), (3, 7, 7), (2, 4, 12, 12)]:
        a = rng.random(shape).astype(np.float32) ** 3  # skewed entries: row sums and column sums differ
        got = call(candidate, jnp.asarray(a), what=f"a map of shape {shape}")
        assert_shape(got, shape, what="the corrected map", hint="APC keeps the shape of the map")
        expected = np.asarray(reference(jnp.asarray(a)))
        row, col, tot = a.sum(-1, keepdims=True), a.sum(-2, keepdims=True), a.sum((-1, -2), keepdims=True)
        mistakes = {
            "the correction is not divided by the total of the map": (a - row * col, fix),
            "the correction is divided by the number of entries, not by their sum":
                (a - row * col / (shape[-1] * shape[-2]), fix),
            "you subtracted the mean of the map, not the average product": (a - a.mean((-1, -2), keepdims=True), fix),
            "row and column sums are swapped (the sum over axis -2 used for rows)": (
                a - np.swapaxes(col, -1, -2) * np.swapaxes(row, -1, -2) / tot,
                "the row sum is a.sum(-1, keepdims=True) (a column vector), the column sum a.sum(-2, keepdims=True)"),
            "the correction is added, not subtracted": (a + row * col / tot, "APC subtracts: a - row * col / total"),
        }
        if len(shape) > 2:
            mistakes["the stacked maps were summed together: each map must be corrected on its own"] = (
                a - row * col / a.sum(), "sum over the last two axes only, with keepdims=True")
        assert_close(got, expected, what=f"APC of a map of shape {shape}", rtol=1e-4, atol=1e-5, mistakes=mistakes,
                     hint="row = a.sum(-1, keepdims=True); col = a.sum(-2, keepdims=True); "
                          "total = a.sum((-1, -2), keepdims=True); return a - row * col / total")
    return "3 shapes of maps that are not symmetric, stacked maps corrected separately"


def top_precision(candidate) -> str:
    """``top_precision(probs, truth, k, min_separation) -> float``."""
    from ..contacts import contact_precision

    rng = np.random.default_rng(3)
    for L, k, sep in [(20, 4, 6), (30, 6, 6), (25, 10, 12), (40, 8, 24), (12, 3, 1)]:
        sep_ij = np.abs(np.arange(L)[:, None] - np.arange(L)[None, :])
        truth = rng.random((L, L)) < 0.15
        truth = (truth | truth.T | (sep_ij <= 2)) & (sep_ij > 0)
        # as in real maps, pairs close in sequence get high probabilities
        probs = np.clip(0.3 * truth + 0.6 * rng.random((L, L)) + 0.5 * (sep_ij <= 3), 0, 1)
        probs = (probs + probs.T) / 2
        got = float(call(candidate, probs, truth, k, sep, what=f"L={L}, k={k}, min_separation={sep}"))
        expected = contact_precision(probs, truth, min_separation=sep, top=k)
        i, j = np.triu_indices(L, k=1)
        order = np.argsort(-probs[i, j], kind="stable")[:k]
        no_sep = float(truth[i[order], j[order]].mean())
        if not np.isclose(got, expected) and np.isclose(got, no_sep) and sep > 1:
            raise CheckFailed(f"for min_separation={sep} you also ranked pairs closer in sequence than that",
                              hint="keep only pairs with j - i >= min_separation (np.triu_indices(L, k=min_separation))")
        assert_close(got, expected, what=f"top-{k} precision (L={L}, min_separation={sep})", atol=1e-9,
                     hint="take pairs i < j with j - i >= min_separation, sort by probability (highest first), "
                          "keep k, and return the fraction that are true contacts")
    return "5 maps, several k and separations"


def pairwise_distances(candidate) -> str:
    """``pairwise_distances(x (L, 3)) -> (L, L)`` Euclidean distances."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(4)
    for L in (2, 5, 17):
        x = rng.normal(size=(L, 3)).astype(np.float32) * 5
        got = call(candidate, jnp.asarray(x), what=f"{L} points")
        assert_shape(got, (L, L), what="the distance matrix", hint="x[:, None, :] - x[None, :, :] has shape (L, L, 3)")
        expected = np.linalg.norm(x[:, None] - x[None], axis=-1)
        if np.allclose(np.asarray(got), expected**2, rtol=1e-4, atol=1e-4):
            raise CheckFailed("these are squared distances", hint="take the square root of the summed squares")
        assert_close(got, expected, what=f"distances between {L} points", rtol=1e-4, atol=1e-3,
                     hint="jnp.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) + 1e-8)")
    # The folding uses its gradient: it must be finite, also on the diagonal.
    x = jnp.asarray(rng.normal(size=(6, 3)).astype(np.float32))
    g = jax.grad(lambda x: call(candidate, x, what="6 points, under jax.grad").sum())(x)
    expect(bool(jnp.all(jnp.isfinite(g))), "the gradient of the distances is not finite (NaN) for coincident points "
           "(the diagonal)", hint="add a small epsilon inside the square root: jnp.sqrt(d2 + 1e-8)")
    return "3 point clouds, finite gradient"


# ---------------------------------------------------------------- lesson 06: design


def metropolis_accept(candidate) -> str:
    """``metropolis_accept(delta, temperature, u) -> bool`` for maximisation."""
    cases = [(0.5, 1.0, 0.99, True), (0.0, 1.0, 0.999, True), (-1.0, 0.1, 0.5, False), (-1.0, 10.0, 0.5, True),
             (-0.2, 1.0, 0.8, True), (-0.2, 1.0, 0.85, False), (-3.0, 1.0, 0.04, True), (-3.0, 1.0, 0.06, False),
             (2.0, 0.01, 0.0, True)]
    for delta, t, u, expected in cases:
        got = bool(call(candidate, delta, t, u, what=f"delta={delta}, T={t}, u={u}"))
        if got != expected:
            hint = ("we maximise: a positive delta (better) is always accepted; a negative one with probability "
                    "exp(delta / T), i.e. when u < exp(delta / T)")
            if delta < 0 and got and np.exp(-delta / t) > u:
                hint = "the sign is flipped: accept a worse move when u < exp(delta / T) with delta < 0 (a small number)"
            raise CheckFailed(f"for delta={delta}, T={t}, u={u} you returned {got}, expected {expected} "
                              f"(exp(delta / T) = {np.exp(min(delta, 0) / t):.4f})", hint=hint)
    return f"{len(cases)} moves, better and worse, hot and cold"


def geometric_temperature(candidate) -> str:
    """``geometric_temperature(step, steps, start, end) -> float``."""
    for start, end, steps in [(1.0, 0.01, 11), (2.0, 0.1, 5), (0.5, 0.5, 3), (10.0, 0.001, 101)]:
        expected = [start * (end / start) ** (s / (steps - 1)) for s in range(steps)]
        got = [float(call(candidate, s, steps, start, end, what=f"step {s} of {steps}, {start} -> {end}"))
               for s in range(steps)]
        lin = [start + (end - start) * s / (steps - 1) for s in range(steps)]
        if np.allclose(got, lin, rtol=1e-4) and not np.allclose(lin, expected, rtol=1e-4):
            raise CheckFailed("your schedule cools linearly", hint="geometric: start * (end / start) ** (step / (steps - 1))")
        if not np.isclose(got[-1], end, rtol=1e-4):
            raise CheckFailed(f"the last step (step {steps - 1}) should be at the end temperature {end}, got {got[-1]}",
                              hint="divide step by steps - 1, so the fraction runs from 0 to 1")
        assert_close(np.array(got), np.array(expected), what=f"the temperatures {start} -> {end} over {steps} steps",
                     rtol=1e-4, hint="start * (end / start) ** (step / (steps - 1))")
    return "4 schedules, both ends exact"
