"""The zero-shot DMS demo writes its table at the tiny preset; lesson 07's checks pass the
reference solutions and name each typical mistake."""

import json

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from workshop import RunContext
from workshop.checking import CheckFailed, NotAttempted
from workshop.hardware import Hardware

from workshop_protein.checks import dms as C
from workshop_protein.tokens import AMINO_ACIDS


def test_dms_demo_tiny_writes_every_method_and_assay(tmp_path):
    from workshop_protein.demos.dms import ESTIMATED, zero_shot
    from workshop_protein.dms import MEASURED_ASSAYS
    from workshop_protein.zero_shot import BASELINE_METHODS, MODEL_METHODS

    hw = Hardware("cpu", 1, "cpu", None, 2, None)
    ctx = RunContext(module="protein", demo="dms", preset="tiny", out=tmp_path, budget=None, hardware=hw, verbose=False)
    summary = zero_shot(ctx)
    data = json.loads((tmp_path / "dms.json").read_text())
    assert data["model"]["name"] == "embedded" and data["preset"] == "tiny"
    assert set(data["assays"]) == {*MEASURED_ASSAYS, ESTIMATED}
    assert not data["assays"][ESTIMATED]["measured"]
    for name in MEASURED_ASSAYS:
        methods = {r["method"] for r in data["rows"] if r["assay"] == name}
        assert methods == {*MODEL_METHODS, *BASELINE_METHODS}, (name, methods)
        splits = {r["split"] for r in data["rows"] if r["assay"] == name and r["variants"] == "all"}
        assert {"doubles"} <= splits and (name == "gb1" or "singles" in splits)
        assert data["assays"][name]["pseudo_likelihood_variants"] > 0
    for r in data["rows"]:
        assert -1 <= r["low"] <= r["rho"] <= r["high"] <= 1 and r["n"] >= 5, r
        if r["variants"] == "all":
            assert r["n"] <= 300  # the tiny preset's sample: 150 singles + 150 doubles at most
    # the measured agreement with the composition baseline, and one verdict per measured split and method
    assert set(data["model_vs_baselines"]) == set(data["assays"])
    assert all(-1 <= v <= 1 for d in data["model_vs_baselines"].values() for v in d.values())
    assert len(data["verdicts"]) == 2 * 5 and all("behind_blosum62" in v for v in data["verdicts"])
    for fig in data["figures"]:
        assert (tmp_path / fig).stat().st_size > 1000
    assert {"dms_bars.png", "dms_pll_sample_bars.png", "dms_abeta42_heatmaps.png", "dms_tdp43_heatmaps.png"} \
        <= set(data["figures"])
    assert summary["gb1 doubles"]["blosum62"] == round(
        next(r["rho"] for r in data["rows"] if (r["assay"], r["split"], r["method"], r["variants"])
             == ("gb1", "doubles", "blosum62", "all")), 3)


def test_verdicts_read_the_intervals():
    from workshop_protein.demos.dms import verdicts

    rows = [{"assay": "gb1", "split": "doubles", "method": m, "rho": r, "low": r - 0.03, "high": r + 0.03, "n": 100}
            for m, r in (("masked_marginal", -0.2), ("wildtype_marginal", 0.16), ("blosum62", 0.15))]
    found = {v["method"]: v for v in verdicts(rows)}
    assert found["masked_marginal"]["behind_blosum62"] and found["masked_marginal"]["clearly"]
    assert found["masked_marginal"]["negative"]
    assert not found["wildtype_marginal"]["behind_blosum62"] and not found["wildtype_marginal"]["clearly"]


# --- lesson 07's reference solutions and the typical mistakes ----------------------------------


def position(mutation, offset):
    return int(mutation[1:-1]) - offset - 1


def scores(log_probs, wild_type, variants, offset, index=position, term=None, combine=sum, validate=True):
    term = term or (lambda lp, i, wt, mt: lp[i, mt] - lp[i, wt])
    out = []
    for v in variants:
        parts = []
        for p in v.split(":"):
            i = index(p, offset)
            if validate and wild_type[i] != p[0]:
                raise ValueError(p)
            parts.append(term(log_probs, i, AMINO_ACIDS.index(wild_type[i]), AMINO_ACIDS.index(p[-1])))
        out.append(combine(parts))
    return np.array(out)


def rho(variants, fitness, scores, drop=("wt", "_wt"), corr=spearmanr, sign=1):
    keep = np.array([v.strip().lower() not in drop for v in variants])
    return sign * float(corr(np.asarray(fitness)[keep], np.asarray(scores)[keep]).statistic)


def ordinal_rho(variants, fitness, scores):
    keep = np.array([v.strip().lower() not in ("wt", "_wt") for v in variants])
    rank = lambda a: np.argsort(np.argsort(np.asarray(a)[keep]))  # noqa: E731
    return float(np.corrcoef(rank(fitness), rank(scores))[0, 1])


RIGHT = [(C.mutant_position, position), (C.variant_scores, scores), (C.zero_shot_spearman, rho)]


@pytest.mark.parametrize("check, solution", RIGHT, ids=[c.__name__ for c, _ in RIGHT])
def test_reference_solutions_pass_and_stubs_are_not_attempted(check, solution):
    assert "checked" in check(solution)
    with pytest.raises(NotAttempted):
        check(lambda *a: None)


def unchecked(**kw):
    return lambda lp, s, v, o: scores(lp, s, v, o, validate=False, **kw)


WRONG = [
    (C.mutant_position, lambda m, o: int(m[1:-1]) - 1, "offset is ignored"),
    (C.mutant_position, lambda m, o: int(m[1:-1]) - o, "off by one"),
    (C.mutant_position, lambda m, o: int(m[1:-1]) + o - 1, "offset is added"),
    (C.mutant_position, lambda m, o: int(m[1]) - o - 1, "several digits"),
    (C.variant_scores, unchecked(index=lambda m, o: int(m[1:-1]) - 1), "offset is ignored"),
    (C.variant_scores, unchecked(index=lambda m, o: int(m[1:-1]) - o), "off by one"),
    (C.variant_scores, unchecked(index=lambda m, o: int(m[1:-1]) + o - 1), "offset is added"),
    (C.variant_scores, unchecked(term=lambda lp, i, wt, mt: lp[i, wt] - lp[i, mt]), "sign is reversed"),
    (C.variant_scores, unchecked(term=lambda lp, i, wt, mt: lp[i, wt]), "wild-type score instead of the difference"),
    (C.variant_scores, unchecked(term=lambda lp, i, wt, mt: lp[i, mt]), "log p(mutant) alone"),
    (C.variant_scores, unchecked(combine=lambda parts: parts[0]), "only the first mutation"),
    (C.variant_scores, unchecked(combine=np.mean), "averaged"),
    (C.variant_scores, unchecked(), "raise ValueError"),
    # validating the wild type with the offset ignored: the function raises on correct data
    (C.variant_scores, lambda lp, s, v, o: scores(lp, s, v, o, index=lambda m, o: int(m[1:-1]) - 1),
     "offset ignored or added"),
    (C.zero_shot_spearman, lambda v, f, s: rho(v, f, s, sign=-1), "ranking direction is reversed"),
    (C.zero_shot_spearman, lambda v, f, s: rho(v, f, s, drop=()), "wild-type rows left in"),
    (C.zero_shot_spearman, lambda v, f, s: rho([x if x != "WT" else "wt" for x in v], f, s, drop=("wt",)),
     "some wild-type rows left in"),  # only the 'WT' spelling dropped
    (C.zero_shot_spearman, lambda v, f, s: rho(v, f, s, corr=pearsonr), "Pearson"),
    (C.zero_shot_spearman, ordinal_rho, "ties"),
    (C.zero_shot_spearman, lambda v, f, s: spearmanr(f, s), ".statistic"),
]


@pytest.mark.parametrize("check, wrong, hint", WRONG, ids=[f"{c.__name__}-{h}" for c, _, h in WRONG])
def test_typical_mistakes_get_a_hint_that_names_them(check, wrong, hint):
    with pytest.raises(CheckFailed) as err:
        check(wrong)
    assert not isinstance(err.value, NotAttempted)
    assert hint in (err.value.hint or ""), err.value.render()
