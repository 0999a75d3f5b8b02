"""Deep mutational scans: the shipped tables, the reader's refusals, Spearman, zero-shot scoring."""

import gzip

import jax
import numpy as np
import pytest
from scipy.stats import spearmanr

from workshop_protein.baselines import (
    BLOSUM62_ORDER, blosum62, blosum62_matrix, blosum62_table, frequency_table, proteome_frequencies,
)
from workshop_protein.dms import ASSAYS, MEASURED_ASSAYS, DMSAssay, DMSTableError, load_assay, read_dms_table
from workshop_protein.mlm import masked_marginals
from workshop_protein.models import load_model, new_model
from workshop_protein.mutations import masked_marginal_scores, score_mutations
from workshop_protein.tokens import AMINO_ACIDS
from workshop_protein.zero_shot import (
    evaluate, plot_method_bars, plot_singles_heatmaps, score_assay, spearman, spearman_bootstrap,
)

WT = "MKTAYIAKQR"  # positions 1..10: M1 K2 T3 A4 Y5 I6 A7 K8 Q9 R10


# --- Shipped tables -------------------------------------------------------------------


@pytest.mark.parametrize("name", ASSAYS)
def test_shipped_assays_verify_and_load(name):
    assay = load_assay(name)  # fetch checks the registry's sha256
    assert len(assay) == len(assay.fitness) == len(assay.n_mutations) > 1000
    assert np.isfinite(assay.fitness).all()
    assert not assay.dropped
    assert len(set(assay.variants)) == len(assay)
    for key in ("title", "fitness", "citation", "source", "kept", "numbering"):
        assert assay.metadata.get(key), key


def test_shipped_assays_hold_what_the_datasheet_says():
    gb1, abeta, tdp = load_assay("gb1"), load_assay("abeta42"), load_assay("tdp43")
    assert (gb1.n_mutations == 2).all() and len(gb1) == 5000
    assert len(gb1.wild_type) == 55 and gb1.offset == 1
    # GB1 numbering of Olson et al.: V39, D40, G41, V54 (the four sites of Wu et al. 2016).
    assert [gb1.wild_type[r - 1 - gb1.offset] for r in (39, 40, 41, 54)] == ["V", "D", "G", "V"]
    assert abeta.wild_type == "DAEFRHDSGYEVHHQKLVFFAEDVGSNKGAIIGLMVGGVVIA" and abeta.offset == 0
    assert int((abeta.n_mutations == 1).sum()) == 468 and int((abeta.n_mutations == 2).sum()) == 5000
    # TDP-43 residues of known ALS mutations: G294, G295, A315, Q331, M337, N345, G348, N352.
    assert tdp.offset == 289 and len(tdp.wild_type) == 84
    assert "".join(tdp.wild_type[r - 290] for r in (294, 295, 315, 331, 337, 345, 348, 352)) == "GGAQMNGN"
    assert tdp.paper_variant("G1A") == "G290A" and tdp.paper_variant("M48V") == "M337V"
    singles = load_assay("gb1_additive_singles")
    assert len(singles) == 55 * 19 and (singles.n_mutations == 1).all()
    assert "gb1_additive_singles" not in MEASURED_ASSAYS and "not measured" in singles.title


# --- The reader: refusals name the line and column --------------------------------------


def _write(tmp_path, text, name="scan.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(path, *, line, column, words=(), **kw):
    with pytest.raises(DMSTableError) as err:
        read_dms_table(path, wild_type=WT, **kw)
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert err.value.line == line and err.value.column == column, msg
    if line is not None:
        assert f"line {line}" in msg, msg
    if column is not None:
        assert repr(column) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_reads_a_clean_table_with_offset_tabs_and_gzip(tmp_path):
    path = tmp_path / "scan.tsv.gz"
    path.write_bytes(gzip.compress(b"mutant\tscore\tother\nA14G\t0.5\tx\nR20W:K12A\t-1.25\ty\n"))
    assay = read_dms_table(path, wild_type=WT, variant_column="mutant", fitness_column="score", offset=10)
    assert assay.variants == ("A4G", "K2A:R10W") and list(assay.n_mutations) == [1, 2]
    np.testing.assert_allclose(assay.fitness, [0.5, -1.25])
    assert assay.paper_variant("K2A:R10W") == "K12A:R20W"
    assert str(assay.dropped) == "no rows dropped"


def test_missing_and_duplicated_columns(tmp_path):
    _refused(_write(tmp_path, "variant,score\nA4G,1\n"), line=1, column="fitness", words=["['variant', 'score']"])
    _refused(_write(tmp_path, "variant,fitness,fitness\nA4G,1,2\n"), line=1, column="fitness", words=["2, 3"])


def test_fitness_cells(tmp_path):
    _refused(_write(tmp_path, "variant,fitness\nA4G,1\nK2R,high\n"), line=3, column="fitness", words=["'high'"])
    _refused(_write(tmp_path, "variant,fitness\nA4G,\"1,5\"\n"), line=2, column="fitness", words=["decimal comma"])
    _refused(_write(tmp_path, "variant,fitness\nA4G,1\nK2R,-inf\n"), line=3, column="fitness", words=["-inf"])
    assay = read_dms_table(_write(tmp_path, "variant,fitness\nA4G,1\nK2R,NaN\nQ9E,\nR10W,2\n"), wild_type=WT)
    assert assay.variants == ("A4G", "R10W")
    assert assay.dropped.count("rows with fitness missing") == 2
    assert "2 rows dropped: 2 rows with fitness missing (lines 3, 4)" == str(assay.dropped)


def test_variants_that_do_not_fit_the_sequence(tmp_path):
    _refused(_write(tmp_path, "variant,fitness\nA4G,1\nG4A,2\n"), line=3, column="variant",
             words=["'A' at position 4", "offset"])
    _refused(_write(tmp_path, "variant,fitness\nA4G,1\nR11W,2\n"), line=3, column="variant", words=["outside 1..10"])
    _refused(_write(tmp_path, "variant,fitness\np.Ala4Gly,1\n"), line=2, column="variant", words=["'A23G'"])
    _refused(_write(tmp_path, "variant,fitness\nA4G:A4C,1\n"), line=2, column="variant", words=["twice"])
    # the same table read with the wrong offset: the first row already fails
    _refused(_write(tmp_path, "variant,fitness\nA4G,1\n"), line=2, column="variant", words=["residue 4"], offset=1)


def test_duplicate_variants_are_refused_even_when_written_in_another_order(tmp_path):
    msg = _refused(_write(tmp_path, "variant,fitness\nA4G:R10W,1\nK2R,0\nR10W:A4G,2\n"), line=4, column="variant")
    assert "first on line 2" in msg


def test_rows_that_are_safe_to_drop_are_counted(tmp_path):
    text = ("variant,fitness\nA4G,1\n\nvariant,fitness\nK2*,0.1\nK2K,0.2\nWT,0\nQ9E,3\n")
    assay = read_dms_table(_write(tmp_path, text), wild_type=WT)
    assert assay.variants == ("A4G", "Q9E")
    d = assay.dropped
    assert d.total == 5 and d.count("repeated header lines") == 1 and d.count("blank lines") == 1
    assert d.reasons["variants with a stop codon (models score amino acids only)"] == (5,)
    assert d.reasons["variants with a synonymous substitution"] == (6,)
    assert d.reasons["wild-type rows (all zero-shot scores are 0 there)"] == (7,)
    assert "5 rows dropped" in str(d) and "5 rows dropped" in assay.summary()


def test_ragged_rows_and_missing_wild_type(tmp_path):
    _refused(_write(tmp_path, "variant,fitness\nA4G,1,7\n"), line=2, column=None, words=["3 fields"])
    with pytest.raises(DMSTableError, match="wild_type"):
        read_dms_table(_write(tmp_path, "variant,fitness\nA4G,1\n"))
    with pytest.raises(DMSTableError, match="no variant left"):
        read_dms_table(_write(tmp_path, "variant,fitness\nA4G,nan\n"), wild_type=WT)


def test_assay_checks_its_variants():
    with pytest.raises(ValueError, match="canonically"):
        DMSAssay("x", WT, ("R10W:A4G",), np.array([1.0]))
    with pytest.raises(ValueError, match="not 'G'"):
        DMSAssay("x", WT, ("G4A",), np.array([1.0]))
    # a missing measurement would turn every correlation into NaN without a word
    with pytest.raises(ValueError, match=r"1 variant\(s\) have no finite fitness: R10W \(nan\); leave them out"):
        DMSAssay("x", WT, ("A4G", "R10W"), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="no finite fitness: A4G \\(inf\\)"):
        DMSAssay("x", WT, ("A4G",), np.array([np.inf]))


# --- Spearman with a bootstrap interval ---------------------------------------------------


def test_spearman_direction_and_ties():
    rng = np.random.default_rng(0)
    fitness = rng.normal(size=300)
    backwards = -fitness + 0.3 * rng.normal(size=300)
    c = spearman_bootstrap(backwards, fitness, n_boot=300, seed=1)
    assert c.rho < -0.8 and c.low <= c.rho <= c.high < 0
    forwards = spearman_bootstrap(-backwards, fitness, n_boot=300, seed=1)
    assert forwards.rho == pytest.approx(-c.rho) and forwards.low > 0
    x = rng.integers(0, 5, 60).astype(float)
    y = x + rng.integers(0, 3, 60)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y)[0], abs=1e-12)
    x[3] = np.nan  # non-finite pairs are left out
    assert spearman_bootstrap(x, y, n_boot=50).n == 59


def test_bootstrap_equals_reranking_each_resample_and_is_seeded():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 6, 30).astype(float)
    y = x + rng.normal(size=30)
    c = spearman_bootstrap(x, y, n_boot=200, seed=7)
    draws = np.random.default_rng(7).integers(0, 30, size=(200, 30))
    ref = [spearmanr(x[i], y[i])[0] for i in draws]
    np.testing.assert_allclose([c.low, c.high], np.nanpercentile(ref, [2.5, 97.5]), atol=1e-10)
    assert spearman_bootstrap(x, y, n_boot=200, seed=7) == c


# --- Baselines ------------------------------------------------------------------------------


def test_blosum62_is_the_published_matrix():
    m = blosum62_matrix()
    assert (m == m.T).all() and sorted(BLOSUM62_ORDER) == sorted(AMINO_ACIDS)
    assert blosum62("W", "W") == 11 and blosum62("C", "C") == 9 and blosum62("A", "A") == 4
    assert blosum62("W", "C") == -2 and blosum62("I", "V") == 3 and blosum62("D", "E") == 2
    assert blosum62("P", "W") == -4 and blosum62("H", "Y") == 2
    table = blosum62_table("AW")
    assert table[0, AMINO_ACIDS.index("S")] == 1 and table[1, AMINO_ACIDS.index("Y")] == 2


def test_frequency_baseline():
    f = proteome_frequencies()
    assert f.sum() == pytest.approx(1) and (f > 0).all()
    t = frequency_table("AW")
    assert t[0, AMINO_ACIDS.index("A")] == 0
    assert t[1, AMINO_ACIDS.index("L")] == pytest.approx(np.log(f[AMINO_ACIDS.index("L")] / f[AMINO_ACIDS.index("W")]))


# --- Zero-shot scoring ----------------------------------------------------------------------


def _small(assay, k=15):
    ones, twos = np.flatnonzero(assay.n_mutations == 1)[:k], np.flatnonzero(assay.n_mutations == 2)[:k]
    return assay.subset(np.concatenate([ones, twos]))


def _check_pipeline(model, assay, model_name):
    pll = [0, len(assay) - 1]  # one single, one double
    scores = score_assay(model, assay, pll_indices=pll, batch_size=16)
    assert list(scores) == ["masked_marginal", "wildtype_marginal", "pseudo_likelihood", "blosum62", "aa_frequency"]
    for m, s in scores.items():
        assert s.shape == (len(assay),)
        assert np.isfinite(s).all() if m != "pseudo_likelihood" else np.isfinite(s[pll]).all()
    assert np.isnan(np.delete(scores["pseudo_likelihood"], pll)).all()
    table = masked_marginal_scores(model, assay.wild_type, batch_size=16)
    np.testing.assert_allclose(scores["masked_marginal"], score_mutations(table, assay.wild_type, assay.variants))
    # pseudo-likelihood of the double, directly: every position of both sequences masked alone
    v = assay.variants[-1]
    pll_of = [masked_marginals(model, s)[np.arange(len(s)), [AMINO_ACIDS.index(a) for a in s]].sum()
              for s in (assay.mutant_sequence(v), assay.wild_type)]
    assert scores["pseudo_likelihood"][-1] == pytest.approx(pll_of[0] - pll_of[1], abs=1e-3)
    rows = evaluate(scores, assay, n_boot=50, min_variants=10)
    assert {(r["split"], r["method"]) for r in rows} >= {("singles", "masked_marginal"), ("doubles", "blosum62")}
    assert all(np.isfinite(r["rho"]) and r["low"] <= r["high"] for r in rows)
    fig = plot_singles_heatmaps(assay, table, model_name=model_name)
    assert model_name in fig._suptitle.get_text() and model_name in fig.axes[1].get_title()
    bars = plot_method_bars(rows, model_name=model_name)
    assert model_name in bars.axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_zero_shot_pipeline_on_the_embedded_model():
    model, info = load_model("embedded")
    _check_pipeline(model, _small(load_assay("abeta42")), info.name)


def test_zero_shot_pipeline_on_a_random_esm2_architecture_model():
    model = new_model(2, 64, 4, key=jax.random.key(0))
    _check_pipeline(model, _small(load_assay("tdp43"), k=12), "random ESM2 (2 layers, width 64)")


def test_heatmaps_need_singles():
    with pytest.raises(ValueError, match="no single mutants"):
        plot_singles_heatmaps(load_assay("gb1"), np.zeros((55, 20)), model_name="m")
