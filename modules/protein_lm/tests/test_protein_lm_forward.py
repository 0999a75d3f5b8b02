"""The batched forward pass gives the model's own logits and hidden states."""

import jax
import numpy as np
import pytest

import esm2quinox
from workshop_protein.forward import esm2_hidden, esm2_logits
from workshop_protein.mlm import masked_chunk_size, masked_marginals
from workshop_protein.tokens import MASK, batch_tokenize


@pytest.mark.parametrize("token_dropout", [True, False])
def test_batched_forward_equals_the_model_with_padding_and_masks(token_dropout):
    model = esm2quinox.ESM2(num_layers=3, embed_size=48, num_heads=4, token_dropout=token_dropout,
                            key=jax.random.key(1))
    tokens, mask = batch_tokenize(["MKTAYIAKQRQISFVKSHF", "GSHM", "ACDEFGHIKLMNPQ"])
    tokens = np.array(tokens)
    tokens[0, 3] = tokens[2, 5] = MASK  # masked positions change the token-dropout rescaling
    ref = jax.vmap(model)(tokens)
    np.testing.assert_allclose(np.asarray(esm2_logits(model, tokens))[mask], np.asarray(ref.logits)[mask], atol=2e-4)
    np.testing.assert_allclose(np.asarray(esm2_hidden(model, tokens))[mask], np.asarray(ref.hidden)[mask], atol=2e-4)


def test_batched_forward_matches_fair_esm():
    torch = pytest.importorskip("torch")
    esm = pytest.importorskip("esm")
    torch.manual_seed(0)
    tmodel = esm.ESM2(num_layers=2, embed_dim=64, attention_heads=4, token_dropout=True).eval()
    model = esm2quinox.from_torch(tmodel)
    tokens, mask = batch_tokenize(["MKTAYIAKQRQISFVKSHF", "GSHMLE"])
    with torch.no_grad():
        ref = tmodel(torch.as_tensor(tokens, dtype=torch.long))["logits"].numpy()
    np.testing.assert_allclose(np.asarray(esm2_logits(model, tokens))[mask], ref[mask], atol=1e-4)


def test_chunked_scan_is_independent_of_the_chunk_size():
    model = esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(0))
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"
    a = masked_marginals(model, seq, batch_size=5)  # 33 positions: the last chunk is padded
    b = masked_marginals(model, seq, batch_size=64)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.shape == (33, 20)
    np.testing.assert_allclose(masked_marginals(model, seq, positions=[32, 0])[0], a[32], atol=1e-5)
    # Bounded memory: long proteins run few copies at a time.
    assert masked_chunk_size(model, 100) == 64 and masked_chunk_size(model, 5000) == 1


def test_long_sequences_and_single_row_logits_give_the_same_numbers():
    # Over 256 tokens attention runs in query blocks; esm2_logits_at runs the last layer on one row.
    from workshop_protein.forward import esm2_logits_at

    model = esm2quinox.ESM2(num_layers=2, embed_size=32, num_heads=2, token_dropout=True, key=jax.random.key(2))
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=n)) for n in (300, 120)]
    tokens, mask = batch_tokenize(seqs)
    assert tokens.shape[1] > 256
    ref = jax.vmap(model)(tokens)
    ours = np.asarray(esm2_logits(model, tokens))
    np.testing.assert_allclose(ours[mask], np.asarray(ref.logits)[mask], atol=2e-4)
    rows = np.array([299, 7])
    np.testing.assert_allclose(np.asarray(esm2_logits_at(model, tokens, rows)), ours[[0, 1], rows], atol=2e-4)
