"""The language-model checks accept right answers and name the typical mistakes."""

import jax
import jax.numpy as jnp
import pytest

from workshop.checking import CheckFailed, NotAttempted
from workshop_protein.checks import lm as C
from workshop_protein.tokens import AMINO_ACIDS, MASK


def attention(q, k, v, mask=None, scale=True):
    logits = q @ k.T / (jnp.sqrt(q.shape[-1]) if scale else 1.0)
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    w = jax.nn.softmax(logits, axis=-1)
    return w @ v, w


def mha(x, wq, wk, wv, wo, h, mask=None, use_wo=True):
    t, e = x.shape
    split = lambda a: a.reshape(t, h, e // h)
    heads, _ = jax.vmap(attention, in_axes=(1, 1, 1, None), out_axes=1)(split(x @ wq), split(x @ wk), split(x @ wv), mask)
    out = heads.reshape(t, e)
    return out @ wo if use_wo else out


def mask_tokens(tokens, positions):
    return tokens.at[positions + 1].set(MASK)


def mlm_loss(logits, tokens, target, all_positions=False):
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, tokens[..., None], -1)[..., 0]
    return nll.mean() if all_positions else (nll * target).sum() / target.sum()


def wt_marginal(lp, seq, sign=1):
    wt = jnp.array([AMINO_ACIDS.index(a) for a in seq])
    return sign * (lp - lp[jnp.arange(len(seq)), wt][:, None])


def mm_table(fn, tokens, wt, offset=1, all_at_once=False):
    L = tokens.shape[0] - 2
    if all_at_once:
        lp = fn(tokens.at[1:-1].set(MASK))[1:-1]
    else:
        lp = jax.vmap(lambda i: fn(tokens.at[i + offset].set(MASK))[i + offset])(jnp.arange(L))
    return lp - lp[jnp.arange(L), wt][:, None]


def additive(table, seq, muts, one_based=True):
    total = 0.0
    for m in muts.split(":"):
        pos = int(m[1:-1]) - (1 if one_based else 0)
        if seq[int(m[1:-1]) - 1] != m[0]:
            raise ValueError(m)
        total = total + table[min(pos, len(seq) - 1), AMINO_ACIDS.index(m[-1])]
    return total


RIGHT = [
    (C.scaled_dot_product_attention, attention),
    (C.multi_head_attention, mha),
    (C.mask_tokens, mask_tokens),
    (C.masked_lm_loss, mlm_loss),
    (C.wildtype_marginal, wt_marginal),
    (C.masked_marginal_table, mm_table),
    (C.additive_score, additive),
]


@pytest.mark.parametrize("check, solution", RIGHT, ids=[c.__name__ for c, _ in RIGHT])
def test_right_answers_pass_and_stubs_are_not_attempted(check, solution):
    assert "checked" in check(solution)
    with pytest.raises(NotAttempted):
        check(lambda *a: None)


WRONG = [
    (C.scaled_dot_product_attention, lambda q, k, v, m=None: attention(q, k, v, m, scale=False), "sqrt(d)"),
    (C.scaled_dot_product_attention, lambda q, k, v, m=None: attention(q, k, v, None), "mask is ignored"),
    (C.multi_head_attention, lambda x, a, b, c, d, h, m=None: mha(x, a, b, c, d, h, m, use_wo=False), "output projection"),
    (C.multi_head_attention, lambda x, a, b, c, d, h, m=None: mha(x, a, b, c, d, 1, m), "single-head"),
    (C.mask_tokens, lambda t, p: t.at[p].set(MASK), "off by one"),
    (C.masked_lm_loss, lambda l, t, m: mlm_loss(l, t, m, all_positions=True), "every position"),
    (C.masked_lm_loss, lambda l, t, m: -mlm_loss(l, t, m), "sign"),
    (C.wildtype_marginal, lambda lp, s: wt_marginal(lp, s, sign=-1), "sign"),
    (C.masked_marginal_table, lambda f, t, w: mm_table(f, t, w, offset=0), "off by one"),
    (C.masked_marginal_table, lambda f, t, w: mm_table(f, t, w, all_at_once=True), "at once"),
    (C.additive_score, lambda t, s, m: additive(t, s, m, one_based=False), "1-based"),
]


@pytest.mark.parametrize("check, wrong, hint", WRONG, ids=[f"{c.__name__}-{h}" for c, _, h in WRONG])
def test_typical_mistakes_get_a_concrete_hint(check, wrong, hint):
    with pytest.raises(CheckFailed) as err:
        check(wrong)
    assert hint in (err.value.hint or ""), err.value.render()


def test_additive_score_must_refuse_a_wrong_wild_type():
    def no_validation(table, seq, muts):
        return sum(table[int(m[1:-1]) - 1, AMINO_ACIDS.index(m[-1])] for m in muts.split(":"))

    with pytest.raises(CheckFailed, match="accepted"):
        C.additive_score(no_validation)
