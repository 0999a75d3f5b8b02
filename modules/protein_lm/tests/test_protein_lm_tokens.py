"""Tokenisation: ids of the ESM2 alphabet, validation errors, cropping, padding."""

import numpy as np
import pytest

from workshop_protein.tokens import (
    ALPHABET, AA_TOKENS, AMINO_ACIDS, CLS, EOS, MASK, PAD, UNK, InvalidSequence, SequenceTooLong,
    batch_tokenize, detokenize, tokenize,
)


def test_alphabet_matches_esm2_ids():
    assert (CLS, PAD, EOS, UNK, MASK) == (0, 1, 2, 3, 32)
    assert "".join(ALPHABET[4:29]) == "LAGVSERTIDPKQNFYMHWCXBUZO"
    assert ALPHABET[29:32] == (".", "-", "<null_1>") and len(ALPHABET) == 33
    assert [ALPHABET[t] for t in AA_TOKENS] == list(AMINO_ACIDS)


def test_alphabet_matches_fair_esm_when_installed():
    esm = pytest.importorskip("esm")
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    assert tuple(alphabet.all_toks) == ALPHABET
    seqs = ["MKTAYIAKQR", "GS<mask>LEX", "acdefg"]
    _, _, ref = alphabet.get_batch_converter()([(str(i), s if "<" in s else s.upper()) for i, s in enumerate(seqs)])
    tokens, mask = batch_tokenize(seqs)
    np.testing.assert_array_equal(tokens, ref.numpy())
    np.testing.assert_array_equal(mask, ref.numpy() != alphabet.padding_idx)


def test_tokenize_layout_and_roundtrip():
    t = tokenize("MKV")
    assert t.dtype == np.int32 and t.tolist() == [0, 20, 15, 7, 2]
    assert tokenize("mkv").tolist() == t.tolist()
    assert tokenize("M<mask>V")[2] == MASK
    assert detokenize(tokenize("ACDXBZ")) == "ACDXBZ"


@pytest.mark.parametrize("seq, char, pos, advice", [
    ("MKV*", "*", 4, "stop codon"),
    ("MK-V", "-", 3, "gap"),
    ("MK V", " ", 3, "spaces"),
    ("MKJV", "J", 3, None),
    ("MK1", "1", 3, None),
    (">sp|P1|X\nMKV", ">", 1, "FASTA header"),
    ("MK<cls>V", "<cls>", 3, None),
])
def test_invalid_characters_are_named_with_position(seq, char, pos, advice):
    with pytest.raises(InvalidSequence) as err:
        tokenize(seq)
    assert err.value.char == char and err.value.position == pos
    msg = str(err.value)
    assert f"position {pos}" in msg and "ACDEFGHIKLMNPQRSTVWY" in msg
    if advice:
        assert advice in msg


def test_lowercase_can_be_refused_and_empty_is_refused():
    with pytest.raises(InvalidSequence, match="lowercase=False"):
        tokenize("MkV", lowercase=False)
    with pytest.raises(InvalidSequence, match="empty"):
        tokenize("")


def test_too_long_raises_with_advice_or_crops():
    seq = "".join(AMINO_ACIDS[i % 20] for i in range(30))
    with pytest.raises(SequenceTooLong, match="crop="):
        tokenize(seq, max_residues=10)
    assert detokenize(tokenize(seq, max_residues=10, crop="start")) == seq[:10]
    assert detokenize(tokenize(seq, max_residues=10, crop="end")) == seq[-10:]
    assert detokenize(tokenize(seq, max_residues=10, crop="center")) == seq[10:20]
    assert detokenize(tokenize(seq, max_residues=10, crop=5)) == seq[5:15]
    with pytest.raises(ValueError):
        tokenize(seq, max_residues=10, crop=25)
    assert len(tokenize("A" * 1022)) == 1024
    with pytest.raises(SequenceTooLong, match="1023 residues"):
        tokenize("A" * 1023)


def test_batch_tokenize_pads_and_reports_which_sequence():
    tokens, mask = batch_tokenize(["MKV", "A", "ACDE"])
    assert tokens.shape == (3, 6) and mask.dtype == bool
    assert mask.sum(axis=1).tolist() == [5, 3, 6]
    assert (tokens[~mask] == PAD).all() and tokens[1, 2] == EOS
    tokens, _ = batch_tokenize(["MKV"], length=10)
    assert tokens.shape == (1, 10)
    with pytest.raises(InvalidSequence, match="sequence 1"):
        batch_tokenize(["MKV", "MK*"])
    with pytest.raises(TypeError):
        batch_tokenize("MKV")
