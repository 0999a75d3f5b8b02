"""Masked-LM predictions and mutation scores against direct, one-at-a-time references."""

import jax
import numpy as np
import pytest

from workshop_protein.mlm import entropy, masked_marginals, predict_masked, pseudo_perplexity
from workshop_protein.models import new_model
from workshop_protein.mutations import (
    apply_mutations, masked_marginal_scores, parse_mutations, score_mutations, wildtype_marginal_scores,
)
from workshop_protein.tokens import AMINO_ACIDS, MASK, tokenize

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLG"


@pytest.fixture(scope="module")
def model():
    # Random weights, token dropout on: the scale depends on how many masks there are,
    # so a batched implementation that masks the wrong number of positions is caught.
    return new_model(2, 32, 4, key=jax.random.key(0), token_dropout=True)


def _reference_log_probs(model, tokens, pos):
    """Direct computation: one unbatched forward pass, log-softmax over the 20 amino acids."""
    logits = np.asarray(model(np.asarray(tokens)).logits, dtype=np.float64)
    aa = logits[pos][[int(t) for t in tokenize(AMINO_ACIDS)[1:-1]]]
    return aa - np.log(np.exp(aa - aa.max()).sum()) - aa.max()


def test_masked_marginals_equal_a_python_loop(model):
    got = masked_marginals(model, SEQ, batch_size=5)  # 28 positions: a ragged last batch
    assert got.shape == (len(SEQ), 20)
    base = tokenize(SEQ)
    for i in range(len(SEQ)):
        t = base.copy()
        t[i + 1] = MASK
        np.testing.assert_allclose(got[i], _reference_log_probs(model, t, i + 1), atol=2e-5)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-5)
    sub = masked_marginals(model, SEQ, positions=[3, 0, 27])
    np.testing.assert_allclose(sub, got[[3, 0, 27]], atol=1e-6)
    with pytest.raises(IndexError):
        masked_marginals(model, SEQ, positions=[len(SEQ)])


def test_masked_marginal_scores_match_reference(model):
    table = masked_marginal_scores(model, SEQ, batch_size=8)
    base = tokenize(SEQ)
    for i in (0, 7, len(SEQ) - 1):
        t = base.copy()
        t[i + 1] = MASK
        ref = _reference_log_probs(model, t, i + 1)
        wt = AMINO_ACIDS.index(SEQ[i])
        np.testing.assert_allclose(table[i], ref - ref[wt], atol=2e-5)
        assert table[i, wt] == 0.0


def test_wildtype_marginal_scores_match_reference(model):
    table = wildtype_marginal_scores(model, SEQ)
    base = tokenize(SEQ)
    for i in range(len(SEQ)):
        ref = _reference_log_probs(model, base, i + 1)
        np.testing.assert_allclose(table[i], ref - ref[AMINO_ACIDS.index(SEQ[i])], atol=2e-5)
    # The two scores differ: masking changes the input.
    assert not np.allclose(table, masked_marginal_scores(model, SEQ))


def test_multi_mutant_scores_are_additive_with_correct_sign(model):
    table = masked_marginal_scores(model, SEQ)
    a = table[3, AMINO_ACIDS.index("G")]
    b = table[9, AMINO_ACIDS.index("W")]
    got = score_mutations(table, SEQ, ["A4G", "R10W", "A4G:R10W", "M1M"])
    np.testing.assert_allclose(got, [a, b, a + b, 0.0], atol=1e-6)
    assert apply_mutations(SEQ, "A4G:R10W") == SEQ[:3] + "G" + SEQ[4:9] + "W" + SEQ[10:]


@pytest.mark.parametrize("text, match", [
    ("G4A", "not 'G'"), ("A40G", "past the end"), ("A4", "cannot read"), ("A0G", "1-based"),
    ("A4J", "not one of"), ("A4G:A4C", "twice"),
])
def test_parse_mutations_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_mutations(text, SEQ)


def test_predict_masked_together_and_entropy(model):
    pred = predict_masked(model, SEQ, positions=[2, 5])
    t = tokenize(SEQ)
    t[[3, 6]] = MASK
    ref = _reference_log_probs(model, t, 3)
    np.testing.assert_allclose(pred.probs[0], np.exp(ref), atol=2e-5)
    assert len(pred.top[0]) == 3 and pred.top[0][0][1] == pytest.approx(pred.probs[0].max(), abs=1e-6)
    np.testing.assert_allclose(pred.entropy, entropy(pred.probs))
    inline = predict_masked(model, SEQ[:2] + "<mask>" + SEQ[3:5] + "<mask>" + SEQ[6:])
    np.testing.assert_allclose(inline.probs, pred.probs, atol=1e-6)
    assert entropy(np.full(20, 0.05)) == pytest.approx(np.log(20))
    assert entropy(np.eye(20)[0]) == 0.0


def test_pseudo_perplexity_is_exp_mean_masked_nll(model):
    logp = masked_marginals(model, SEQ)
    ref = np.exp(-np.mean([logp[i, AMINO_ACIDS.index(a)] for i, a in enumerate(SEQ)]))
    assert pseudo_perplexity(model, SEQ) == pytest.approx(ref, rel=1e-5)
