"""Checks for the language-model lessons (01 attention, 02 masked LM, 03 mutations).

Each check runs the participant's function on many inputs, compares with a reference,
and when the answer is wrong, recognises the typical mistake (a missing 1/sqrt(d)
scale, a softmax over the wrong axis, a mask ignored or inverted, the <cls> offset,
masking everything at once, the sign of a log-ratio, 1-based positions) and says so.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from workshop.checking import CheckFailed, assert_close, call, expect

from ..tokens import AA_TOKENS, AMINO_ACIDS, CLS, EOS, MASK, PAD, tokenize

__all__ = [
    "scaled_dot_product_attention",
    "multi_head_attention",
    "mask_tokens",
    "masked_lm_loss",
    "wildtype_marginal",
    "masked_marginal_table",
    "additive_score",
]


def _close(a: Any, b: Any, atol: float = 1e-4) -> bool:
    try:
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=1e-4))


def _function(candidate: Any) -> None:
    if not callable(candidate):
        raise CheckFailed(f"expected a function, got {type(candidate).__name__}",
                          hint='pass the function itself, without calling it: check("protein.…", my_function)')


# --- lesson 01: attention ----------------------------------------------------------------


def _attention_ref(q, k, v, mask=None, *, scale=True, axis=-1):
    logits = q @ k.T
    if scale:
        logits = logits / np.sqrt(q.shape[-1])
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    logits = logits - logits.max(axis=axis, keepdims=True)
    w = np.exp(logits)
    w = w / w.sum(axis=axis, keepdims=True)
    return w @ v, w


def _attention_inputs(rng, t_q, t_k, d, dv):
    return (rng.normal(size=(t_q, d)) * 2).astype(np.float32), (rng.normal(size=(t_k, d)) * 2).astype(np.float32), \
        rng.normal(size=(t_k, dv)).astype(np.float32)


def scaled_dot_product_attention(candidate: Callable) -> str:
    """``attention(q, k, v, mask)`` -> ``(output, weights)``: softmax(q kᵀ/√d, masked) v."""
    _function(candidate)
    rng = np.random.default_rng(0)
    cases = 0
    for t_q, t_k, d, dv in [(4, 4, 8, 8), (5, 7, 16, 3), (1, 6, 4, 2), (9, 9, 32, 32)]:
        for with_mask in (False, True):
            q, k, v = _attention_inputs(rng, t_q, t_k, d, dv)
            mask = None
            if with_mask:
                mask = rng.random((t_q, t_k)) < 0.6
                mask[:, 0] = True  # every query sees at least one key
            what = f"q {q.shape}, k {k.shape}, v {v.shape}" + (f", mask {mask.shape}" if with_mask else ", mask=None")
            got = call(candidate, jnp.asarray(q), jnp.asarray(k), jnp.asarray(v),
                       None if mask is None else jnp.asarray(mask), what=what)
            if not (isinstance(got, tuple) and len(got) == 2):
                raise CheckFailed(f"with {what}: return a pair (output, weights), got {type(got).__name__}",
                                  hint="return out, weights")
            out, w = got
            ref_out, ref_w = _attention_ref(q, k, v, mask)
            if _close(w, ref_w) and _close(out, ref_out):
                cases += 1
                continue
            hint = "weights = softmax(q @ k.T / sqrt(d)) over the keys (last axis); output = weights @ v"
            if _close(w, _attention_ref(q, k, v, mask, scale=False)[1]):
                hint = "you forgot the scaling: divide q @ k.T by sqrt(d), d = q.shape[-1], before the softmax"
            elif _close(w, _attention_ref(q, k, v, mask, axis=0)[1]) and t_q > 1:
                hint = "the softmax runs over the wrong axis: each query's weights over the keys (axis=-1) must sum to 1"
            elif mask is not None and _close(w, _attention_ref(q, k, v, None)[1]):
                hint = "the mask is ignored: set the logits where mask is False to -inf (jnp.where(mask, logits, -jnp.inf)) before the softmax"
            elif mask is not None and np.asarray(w).shape == ref_w.shape and np.allclose(np.asarray(w)[mask], 0, atol=1e-6):
                hint = "the mask is inverted: True means 'may attend'; keep logits where mask is True"
            elif _close(w, ref_w) and not _close(out, ref_out):
                hint = "the weights are right but the output is not: output = weights @ v"
            assert_close(w, ref_w, what=f"attention weights with {what}", hint=hint, rtol=1e-4, atol=1e-5)
            assert_close(out, ref_out, what=f"attention output with {what}", hint=hint, rtol=1e-4, atol=1e-5)
    # Under jit, and with large logits (a numerically careless softmax overflows).
    q, k, v = _attention_inputs(rng, 3, 3, 4, 4)
    out, _ = call(jax.jit(candidate), jnp.asarray(q * 40), jnp.asarray(k * 40), jnp.asarray(v), None, what="large q and k under jit")
    expect(bool(np.isfinite(np.asarray(out)).all()), "the output has NaN or inf for large logits",
           hint="use jax.nn.softmax (it subtracts the maximum first) rather than exp(x) / sum(exp(x))")
    return f"checked on {cases} inputs with and without masks, and under jit"


def _mha_ref(x, wq, wk, wv, wo, num_heads, mask=None):
    t, e = x.shape
    dh = e // num_heads
    q, k, v = (x @ wq).reshape(t, num_heads, dh), (x @ wk).reshape(t, num_heads, dh), (x @ wv).reshape(t, num_heads, dh)
    outs = [_attention_ref(q[:, h], k[:, h], v[:, h], mask)[0] for h in range(num_heads)]
    return np.concatenate(outs, axis=-1) @ wo


def multi_head_attention(candidate: Callable) -> str:
    """``mha(x, wq, wk, wv, wo, num_heads, mask)``: project, split into heads, attend, concatenate, project."""
    _function(candidate)
    rng = np.random.default_rng(1)
    n = 0
    for t, e, h in [(5, 8, 2), (7, 12, 3), (4, 16, 4), (6, 8, 1)]:
        x = rng.normal(size=(t, e)).astype(np.float32)
        ws = [rng.normal(size=(e, e)).astype(np.float32) / np.sqrt(e) for _ in range(4)]
        for mask in (None, np.tril(np.ones((t, t), bool))):
            what = f"x {x.shape}, num_heads={h}" + (", a causal mask" if mask is not None else "")
            got = call(candidate, jnp.asarray(x), *map(jnp.asarray, ws), h, None if mask is None else jnp.asarray(mask), what=what)
            ref = _mha_ref(x, *ws, h, mask)
            if _close(got, ref):
                n += 1
                continue
            hint = ("project x with wq, wk, wv; reshape each to (T, num_heads, d_head) with d_head = E // num_heads; "
                    "attend per head (jax.vmap over the head axis, in_axes=1); concatenate the heads back to (T, E); multiply by wo")
            if h > 1 and _close(got, _mha_ref(x, *ws, 1, mask)):
                hint = "this is single-head attention: split the projections into num_heads heads of size E // num_heads"
            elif _close(got, _mha_ref(x, *ws, h, mask) @ np.linalg.inv(ws[3])):
                hint = "the output projection is missing: multiply the concatenated heads by wo"
            elif mask is not None and _close(got, _mha_ref(x, *ws, h, None)):
                hint = "pass the mask on to the attention of every head"
            assert_close(got, ref, what=f"multi-head attention with {what}", hint=hint, rtol=1e-3, atol=1e-4)
    return f"checked on {n} inputs (1 to 4 heads, with and without a mask)"


# --- lesson 02: masked language modelling --------------------------------------------------


def _random_tokens(rng, n_res: int, length: int | None = None) -> np.ndarray:
    res = rng.choice(AA_TOKENS, size=n_res)
    t = np.concatenate([[CLS], res, [EOS]]).astype(np.int32)
    if length is not None and length > len(t):
        t = np.concatenate([t, np.full(length - len(t), PAD, np.int32)])
    return t


def mask_tokens(candidate: Callable) -> str:
    """``mask_tokens(tokens, positions)``: ``<mask>`` at the 0-based residue positions (token index + 1)."""
    _function(candidate)
    rng = np.random.default_rng(2)
    n = 0
    for n_res, positions in [(10, [0]), (10, [9]), (12, [2, 5, 7]), (30, list(range(0, 30, 4))), (5, [])]:
        tokens = _random_tokens(rng, n_res, length=n_res + 4)
        original = tokens.copy()
        what = f"a sequence of {n_res} residues and positions {positions}"
        got = call(candidate, jnp.asarray(tokens), jnp.asarray(positions, dtype=jnp.int32), what=what)
        expected = tokens.copy()
        expected[np.asarray(positions, dtype=int) + 1] = MASK
        got_arr = np.asarray(got)
        if got_arr.shape == expected.shape and np.array_equal(got_arr, expected):
            n += 1
            continue
        hint = "token i + 1 is residue i (token 0 is <cls>): tokens.at[positions + 1].set(MASK)"
        off = original.copy()
        off[np.asarray(positions, dtype=int)] = MASK
        if got_arr.shape == expected.shape and np.array_equal(got_arr, off):
            hint = "off by one: token 0 is <cls>, so residue i is token i + 1; set tokens.at[positions + 1]"
        elif got_arr.shape != expected.shape:
            hint = "return the whole token array (same shape as tokens), with the masked positions replaced"
        assert_close(got_arr, expected, what=f"mask_tokens with {what}", hint=hint)
    return f"checked on {n} sequences"


def _mlm_loss_ref(logits, tokens, target):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    return float((nll * target).sum() / target.sum()), nll, logp


def masked_lm_loss(candidate: Callable) -> str:
    """``masked_lm_loss(logits, tokens, target)``: mean -log p(true token) over the target (masked) positions."""
    _function(candidate)
    rng = np.random.default_rng(3)
    n = 0
    for b, t, frac in [(1, 12, 0.3), (4, 20, 0.15), (3, 9, 0.5), (8, 40, 0.1)]:
        logits = (rng.normal(size=(b, t, 33)) * 3).astype(np.float32)
        tokens = np.stack([_random_tokens(rng, t - 2) for _ in range(b)])
        target = rng.random((b, t)) < frac
        target[:, 0] = target[:, -1] = False
        target[:, 1] = True
        what = f"logits {logits.shape}, {int(target.sum())} target positions"
        got = call(candidate, jnp.asarray(logits), jnp.asarray(tokens), jnp.asarray(target), what=what)
        ref, nll, logp = _mlm_loss_ref(logits, tokens, target)
        if _close(got, ref, atol=1e-4):
            n += 1
            continue
        g = float(np.asarray(got)) if np.asarray(got).size == 1 else None
        hint = "loss = mean over target positions of -log_softmax(logits)[true token]"
        if g is not None:
            if np.isclose(g, nll.mean(), atol=1e-4):
                hint = "you averaged over every position: only the masked (target) positions count; divide by target.sum()"
            elif np.isclose(g, -ref, atol=1e-4):
                hint = "the sign is flipped: the loss is the NEGATIVE log-probability of the true tokens"
            elif np.isclose(g, -float((np.take_along_axis(logits, tokens[..., None], -1)[..., 0] * target).sum() / target.sum()), atol=1e-4):
                hint = "apply jax.nn.log_softmax to the logits first: raw logits are not log-probabilities"
            elif np.isclose(g, float((nll * target).sum()), atol=1e-3):
                hint = "you summed: take the mean over the target positions (divide by their number)"
        else:
            hint = "return a single number (a scalar), the mean over all target positions of the batch"
        assert_close(got, ref, what=f"masked_lm_loss with {what}", hint=hint, rtol=1e-4, atol=1e-4)
    return f"checked on {n} batches"


# --- lesson 03: mutation effects -------------------------------------------------------------


def _log_softmax(x, axis=-1):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _random_seq(rng, n):
    return "".join(rng.choice(list(AMINO_ACIDS), size=n))


def wildtype_marginal(candidate: Callable) -> str:
    """``wildtype_marginal(log_probs, seq)``: ``log_probs[i, mt] - log_probs[i, wt_i]`` as an (L, 20) table."""
    _function(candidate)
    rng = np.random.default_rng(4)
    n = 0
    for length in (1, 5, 17, 40):
        seq = _random_seq(rng, length)
        lp = _log_softmax(rng.normal(size=(length, 20)) * 2).astype(np.float32)
        wt = np.array([AMINO_ACIDS.index(a) for a in seq])
        ref = lp - lp[np.arange(length), wt][:, None]
        got = call(candidate, jnp.asarray(lp), seq, what=f"a sequence of {length} residues",
                   hints={"Incompatible shapes for broadcasting": "the (L,) wild-type values do not broadcast against "
                          "the (L, 20) table: subtract each row's wild-type value with [:, None]"})
        if _close(got, ref):
            n += 1
            continue
        hint = "score[i, a] = log_probs[i, a] - log_probs[i, index of the wild type at i]; the wild-type column is 0"
        if _close(got, -ref):
            hint = "the sign is flipped: mutant minus wild type (negative = the model likes the mutant less)"
        elif _close(got, lp - lp[np.arange(length), wt]):
            hint = "subtract each row's wild-type value from that row: use [:, None] to broadcast over the 20 columns"
        assert_close(got, ref, what=f"wild-type marginal scores for {seq[:12]}{'…' if length > 12 else ''}", hint=hint)
    return f"checked on {n} sequences"


class _ToyModel:
    """A cheap stand-in for ESM2: each position's log-probabilities depend on its own token
    and on the mean embedding of the whole sequence, so which positions are masked matters."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        self.emb = jnp.asarray(rng.normal(size=(33, 20)).astype(np.float32))
        self.ctx = jnp.asarray(rng.normal(size=(33, 20)).astype(np.float32))
        self.pos = jnp.asarray(rng.normal(size=(64, 20)).astype(np.float32) * 0.5)

    def __call__(self, tokens):
        context = self.ctx[tokens].mean(axis=0)
        return jax.nn.log_softmax(self.emb[tokens] + context + self.pos[: tokens.shape[0]], axis=-1)


def _masked_table_ref(fn, tokens, wt):
    L = len(tokens) - 2
    rows = []
    for i in range(L):
        t = np.array(tokens)
        t[i + 1] = MASK
        rows.append(np.asarray(fn(jnp.asarray(t)))[i + 1])
    lp = np.stack(rows)
    return lp - lp[np.arange(L), wt][:, None], lp


def masked_marginal_table(candidate: Callable) -> str:
    """``masked_marginal_table(log_prob_fn, tokens, wt)``: mask each position alone, score mutant - wild type."""
    _function(candidate)
    rng = np.random.default_rng(5)
    n = 0
    for seed, length in [(0, 6), (1, 13), (2, 25)]:
        fn = _ToyModel(seed)
        seq = _random_seq(rng, length)
        tokens = tokenize(seq)
        wt = np.array([AMINO_ACIDS.index(a) for a in seq])
        ref, lp = _masked_table_ref(fn, tokens, wt)
        got = call(candidate, fn, jnp.asarray(tokens), jnp.asarray(wt), what=f"a toy model and {length} residues")
        if _close(got, ref):
            n += 1
            continue
        hint = ("for each residue i (jax.vmap over jnp.arange(L)): masked = tokens.at[i + 1].set(MASK); "
                "row = log_prob_fn(masked)[i + 1]; then subtract each row's wild-type entry")
        all_masked = np.array(tokens)
        all_masked[1:-1] = MASK
        lp_all = np.asarray(fn(jnp.asarray(all_masked)))[1:-1]
        lp_none = np.asarray(fn(jnp.asarray(tokens)))[1:-1]
        off_rows = []
        for i in range(length):
            t = np.array(tokens)
            t[i] = MASK
            off_rows.append(np.asarray(fn(jnp.asarray(t)))[i])
        lp_off = np.stack(off_rows)
        if _close(got, -ref):
            hint = "the sign is flipped: mutant minus wild type"
        elif _close(got, lp):
            hint = "these are the masked log-probabilities; subtract each row's wild-type value to get scores"
        elif _close(got, lp_all - lp_all[np.arange(length), wt][:, None]):
            hint = "you masked every position at once: mask ONE position per forward pass (that is what the vmap is for)"
        elif _close(got, lp_none - lp_none[np.arange(length), wt][:, None]):
            hint = "nothing was masked: this is the wild-type marginal; mask position i before reading row i"
        elif _close(got, lp_off - lp_off[np.arange(length), wt][:, None]):
            hint = "off by one: residue i is token i + 1 (token 0 is <cls>), both for the mask and the row you read"
        assert_close(got, ref, what=f"masked-marginal table for {length} residues", hint=hint, rtol=1e-4, atol=1e-4)
    return f"checked on {n} sequences against one forward pass per masked position"


def additive_score(candidate: Callable) -> str:
    """``additive_score(table, seq, mutations)``: the sum of single-mutant scores of ``"A4G:R10W"``."""
    _function(candidate)
    rng = np.random.default_rng(6)
    n = 0
    for length in (8, 20, 50):
        seq = _random_seq(rng, length)
        table = (rng.normal(size=(length, 20))).astype(np.float32)
        table[np.arange(length), [AMINO_ACIDS.index(a) for a in seq]] = 0.0
        for k in (1, 2, 3):
            pos = sorted(rng.choice(length, size=k, replace=False).tolist())
            muts = []
            for p in pos:
                mt = rng.choice([a for a in AMINO_ACIDS if a != seq[p]])
                muts.append(f"{seq[p]}{p + 1}{mt}")
            text = ":".join(muts)
            ref = float(sum(table[int(m[1:-1]) - 1, AMINO_ACIDS.index(m[-1])] for m in muts))
            got = call(candidate, jnp.asarray(table), seq, text, what=f"mutations {text!r}")
            if _close(got, ref):
                n += 1
                continue
            g = np.asarray(got)
            hint = "split on ':', read wild type, 1-based position and mutant from each part, and add table[position - 1, mutant index]"
            zero_based = sum(table[min(int(m[1:-1]), length - 1), AMINO_ACIDS.index(m[-1])] for m in muts)
            if g.size == 1 and np.isclose(float(g), zero_based, atol=1e-5):
                hint = "positions in 'A4G' are 1-based: row position - 1 of the table"
            elif g.size == 1 and np.isclose(float(g), -ref, atol=1e-5):
                hint = "the sign is flipped: add the table entries as they are"
            elif g.size == 1 and k > 1 and np.isclose(float(g), float(table[int(muts[0][1:-1]) - 1, AMINO_ACIDS.index(muts[0][-1])]), atol=1e-5):
                hint = "only the first mutation was counted: a multi-mutant 'A4G:R10W' is the SUM over its parts"
            assert_close(got, ref, what=f"additive_score for {text!r}", hint=hint, rtol=1e-5, atol=1e-5)
    # A wrong wild type must be refused, not silently scored.
    seq = "MKTAYIAK"
    table = np.zeros((8, 20), np.float32)
    try:
        candidate(jnp.asarray(table), seq, "A1G")
    except ValueError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"for 'A1G' on {seq!r} (residue 1 is M) your function raised {type(exc).__name__}, not ValueError",
                          hint="raise ValueError when seq[position - 1] differs from the stated wild type") from None
    else:
        raise CheckFailed(f"'A1G' on {seq!r} was accepted, but residue 1 is M, not A",
                          hint="check the wild type: if seq[pos - 1] != wt: raise ValueError(...)")
    return f"checked on {n} mutants (1 to 3 mutations) and a wrong wild type"
