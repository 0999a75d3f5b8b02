"""Typical wrong answers to the protein exercises: each is caught, and the hint names the mistake.

``named`` is the words the message or hint must contain for a mistake to count as
recognised. The rate of named mistakes is printed (``-s``) and must stay 100 % for this
catalogue; cases that only fail on inputs where right and wrong differ (maps that are not
symmetric, ranks against orders) are among them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from workshop.checking import verdict

from workshop_protein.checks import lm as L
from workshop_protein.checks import structure as S
from workshop_protein.tokens import AMINO_ACIDS, MASK


def _attention(scale=True, axis=-1, use_mask=True, invert=False, naive=False):
    def attention(q, k, v, mask=None):
        logits = q @ k.T / (jnp.sqrt(q.shape[-1]) if scale else 1.0)
        if mask is not None and use_mask:
            logits = jnp.where(~mask if invert else mask, logits, -jnp.inf)
        if naive:
            e = jnp.exp(logits)
            w = e / e.sum(axis, keepdims=True)
        else:
            w = jax.nn.softmax(logits, axis=axis)
        return w @ v, w

    return attention


def _mha(single_head=False, output=True, pass_mask=True):
    def mha(x, wq, wk, wv, wo, num_heads, mask=None):
        h = 1 if single_head else num_heads
        t, e = x.shape
        split = lambda a: a.reshape(t, h, e // h)  # noqa: E731
        q, k, v = split(x @ wq), split(x @ wk), split(x @ wv)
        att = _attention()
        outs = jax.vmap(lambda a, b, c: att(a, b, c, mask if pass_mask else None)[0], in_axes=1, out_axes=1)(q, k, v)
        out = outs.reshape(t, e)
        return out @ wo if output else out

    return mha


def _lm_loss(kind):
    def loss(logits, tokens, target):
        logp = jax.nn.log_softmax(logits, -1) if kind != "raw" else logits
        nll = -jnp.take_along_axis(logp, tokens[..., None], -1)[..., 0]
        if kind == "all":
            return nll.mean()
        if kind == "sum":
            return (nll * target).sum()
        value = (nll * target).sum() / target.sum()
        return -value if kind == "sign" else value

    return loss


def _wt_rows(seq):
    return jnp.array([AMINO_ACIDS.index(a) for a in seq])


def _table(mask_mode="one", offset=1, subtract=True, sign=1.0):
    def table(fn, tokens, wt):
        n = tokens.shape[0] - 2
        if mask_mode == "all":
            lp = fn(tokens.at[1:-1].set(MASK))[1:-1]
        elif mask_mode == "none":
            lp = fn(tokens)[1:-1]
        else:
            lp = jax.vmap(lambda i: fn(tokens.at[i + offset].set(MASK))[i + offset])(jnp.arange(n))
        if not subtract:
            return lp
        return sign * (lp - lp[jnp.arange(n), wt][:, None])

    return table


def _additive(zero_based=False, sign=1.0, first_only=False, check_wt=True):
    def score(table, seq, mutations):
        total = 0.0
        for part in mutations.split(":")[: 1 if first_only else None]:
            wt, pos, mt = part[0], int(part[1:-1]), part[-1]
            if check_wt and seq[pos - 1] != wt:
                raise ValueError(f"residue {pos} is {seq[pos - 1]}, not {wt}")
            total = total + table[min(pos, len(seq) - 1) if zero_based else pos - 1, AMINO_ACIDS.index(mt)]
        return sign * total

    return score


def _ranks(a):
    return np.argsort(np.argsort(a))


CASES = [
    # (check, the wrong answer, words that name the mistake)
    (L.scaled_dot_product_attention, _attention(scale=False), "scaling"),
    (L.scaled_dot_product_attention, _attention(axis=0), "wrong axis"),
    (L.scaled_dot_product_attention, _attention(use_mask=False), "mask is ignored"),
    (L.scaled_dot_product_attention, _attention(invert=True), "inverted"),
    (L.scaled_dot_product_attention, _attention(naive=True), "NaN or inf"),
    (L.multi_head_attention, _mha(single_head=True), "single-head"),
    (L.multi_head_attention, _mha(output=False), "output projection"),
    (L.multi_head_attention, _mha(pass_mask=False), "pass the mask"),
    (L.mask_tokens, lambda tokens, positions: tokens.at[positions].set(MASK), "off by one"),
    (L.masked_lm_loss, _lm_loss("all"), "every position"),
    (L.masked_lm_loss, _lm_loss("sign"), "sign is flipped"),
    (L.masked_lm_loss, _lm_loss("raw"), "log_softmax"),
    (L.masked_lm_loss, _lm_loss("sum"), "summed"),
    (L.wildtype_marginal, lambda lp, seq: -(lp - lp[jnp.arange(len(seq)), _wt_rows(seq)][:, None]), "sign"),
    (L.wildtype_marginal, lambda lp, seq: lp - lp[jnp.arange(len(seq)), _wt_rows(seq)], "[:, None]"),
    (L.masked_marginal_table, _table(sign=-1.0), "sign"),
    (L.masked_marginal_table, _table(subtract=False), "subtract each row"),
    (L.masked_marginal_table, _table(mask_mode="all"), "every position at once"),
    (L.masked_marginal_table, _table(mask_mode="none"), "nothing was masked"),
    (L.masked_marginal_table, _table(offset=0), "off by one"),
    (L.additive_score, _additive(zero_based=True), "1-based"),
    (L.additive_score, _additive(sign=-1.0), "sign"),
    (L.additive_score, _additive(first_only=True), "only the first mutation"),
    (L.additive_score, _additive(check_wt=False), "residue 1 is M"),
    (S.masked_mean_pool, lambda h, m: h.mean(0), "padding included"),
    (S.masked_mean_pool, lambda h, m: (h * m[:, None]).sum(0) / h.shape[0], "full length T"),
    (S.spearman_rho, lambda x, y: float(np.corrcoef(x, y)[0, 1]), "Pearson"),
    (S.spearman_rho, lambda x, y: float(np.corrcoef(np.argsort(x), np.argsort(y))[0, 1]), "argsort()"),
    (S.apc, lambda a: a - a.sum(-1, keepdims=True) * a.sum(-2, keepdims=True), "not divided by the total"),
    (S.apc, lambda a: a - a.sum(-2, keepdims=True).swapaxes(-1, -2) * a.sum(-1, keepdims=True).swapaxes(-1, -2)
     / a.sum((-1, -2), keepdims=True), "swapped"),
    (S.apc, lambda a: a - a.mean((-1, -2), keepdims=True), "mean of the map"),
    (S.apc, lambda a: a - a.sum(-1, keepdims=True) * a.sum(-2, keepdims=True) / a.sum(), "on its own"),
    (S.apc, lambda a: a + a.sum(-1, keepdims=True) * a.sum(-2, keepdims=True) / a.sum((-1, -2), keepdims=True),
     "added, not subtracted"),
    (S.pairwise_distances, lambda x: ((x[:, None] - x[None]) ** 2).sum(-1), "squared distances"),
    (S.pairwise_distances, lambda x: jnp.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), "epsilon"),
    (S.metropolis_accept, lambda d, t, u: d >= 0 or u < np.exp(-d / t), "sign is flipped"),
    (S.geometric_temperature, lambda s, n, a, b: a + (b - a) * s / (n - 1), "linearly"),
    (S.geometric_temperature, lambda s, n, a, b: a * (b / a) ** (s / n), "steps - 1"),
]


def _verdict(check, fn):
    return verdict(check, fn)


def test_protein_checks_catch_and_name_typical_mistakes():
    results = [(check.__name__, words, *_verdict(check, fn)) for check, fn, words in CASES]
    missed = [(n, w, v) for n, w, v, _ in results if v != "fail"]
    assert not missed, f"mistakes that pass or look unattempted: {missed}"
    unnamed = [(n, w, text) for n, w, _, text in results if w not in text]
    rate = 1 - len(unnamed) / len(results)
    print(f"\nprotein: {len(results)} typical mistakes, all caught; {len(results) - len(unnamed)} named ({rate:.0%})")
    assert not unnamed, "hints that do not name the mistake:\n" + "\n".join(f"{n} [{w}]: {t}" for n, w, t in unnamed)


def test_apc_and_spearman_still_pass_the_reference():
    from workshop_protein.contacts import apc
    from workshop_protein.finetune import spearman

    assert S.apc(apc) and S.spearman_rho(spearman)
    assert S.spearman_rho(lambda x, y: float(np.corrcoef(_ranks(x), _ranks(y))[0, 1]))
