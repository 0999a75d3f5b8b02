"""Checks for lesson 07: zero-shot scores judged against a deep mutational scan.

Each check runs the participant's function on inputs built so that the usual mistakes
give different numbers (offsets that are not 0 or 1, multi-mutants, wild-type rows
that would inflate ρ, scores with ties), and names the mistake when it recognises the
wrong answer: the data's residue-number offset ignored, added or off by one, the
wild-type log-probability used instead of the difference, a reversed sign or ranking
direction, wild-type rows left in, Pearson instead of Spearman.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

from workshop.checking import CheckFailed, NotAttempted, assert_close, call, describe

from ..tokens import AMINO_ACIDS

__all__ = ["mutant_position", "variant_scores", "zero_shot_spearman", "WILD_TYPE_WORDS"]

#: How the rows of the wild type itself are written in the lesson's tables (any case).
WILD_TYPE_WORDS = ("wt", "_wt")


def _function(candidate: Any) -> None:
    if not callable(candidate):
        raise CheckFailed(f"expected a function, got {type(candidate).__name__}",
                          hint='pass the function itself, without calling it: check("protein.…", my_function)')


def _number(mutation: str) -> int:
    return int(mutation[1:-1])


def _first_rule(outcomes: list, rules: dict[str, list]) -> str | None:
    """The first rule whose answers match every numeric outcome, on at least one case where it is not the right one.

    ``outcomes[i]``: the participant's answer on case ``i`` (``None`` where it raised);
    ``rules[hint] = [(answer, differs_from_right) per case]`` (answer ``None``: undefined there).
    """
    for hint, answers in rules.items():
        compared = [(o, a, d) for o, (a, d) in zip(outcomes, answers) if o is not None and a is not None]
        if any(d for _, _, d in compared) and all(np.allclose(o, a, atol=1e-5, rtol=1e-5)
                                                  for o, a, _ in compared if np.shape(o) == np.shape(a)) \
                and all(np.shape(o) == np.shape(a) for o, a, _ in compared):
            return hint
    return None


# --- residue numbering ---------------------------------------------------------------------

_POSITION_CASES = [  # (mutation in the paper's numbering, offset): GB1 (offset 1), Abeta42 (0), TDP-43 (289)
    ("Q2A", 1), ("W43A", 1), ("T55P", 1), ("D1N", 0), ("E22G", 0), ("A42T", 0),
    ("G290A", 289), ("M337V", 289), ("S373T", 289), ("K100R", 10), ("A5G", 3),
]


def mutant_position(candidate: Callable) -> str:
    """``mutant_position(mutation, offset)``: the 0-based index in the stored sequence of the residue that
    ``mutation`` (paper numbering, e.g. ``"G290A"``) names, ``number - offset - 1`` (``"G290A"``, offset 289 -> 0).

    Tests 1- to 3-digit residue numbers with offsets 0, 1, 3, 10 and 289 (the numbering of
    Abeta42, GB1 and TDP-43), and recognises an ignored offset, a 1-based answer (off by
    one), an added offset and a residue number read from its first digit only.
    """
    _function(candidate)
    got = []
    for mutation, offset in _POSITION_CASES:
        g = call(candidate, mutation, offset, what=f"mutation {mutation!r} and offset {offset}")
        arr = np.asarray(g)
        if arr.shape != () or arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and arr != np.round(arr)):
            raise CheckFailed(f"for {mutation!r} (offset {offset}) your function returned {describe(g)}",
                              hint="return one whole number, the 0-based index: int(mutation[1:-1]) - offset - 1")
        got.append(int(arr))
    right = [_number(m) - o - 1 for m, o in _POSITION_CASES]
    if got == right:
        return f"checked on {len(right)} mutations with offsets 0, 1, 3, 10 and 289"
    rules = {
        "the offset is ignored: residue numbers are the paper's, and position 1 of the stored sequence is residue "
        "offset + 1 (e.g. GB1's Q2, TDP-43's G290); subtract the offset: number - offset - 1":
            [_number(m) - 1 for m, o in _POSITION_CASES],
        "off by one: number - offset is the 1-based position; a 0-based index is number - offset - 1":
            [_number(m) - o for m, o in _POSITION_CASES],
        "the offset is added instead of subtracted: residue number = index + 1 + offset, so index = "
        "number - offset - 1": [_number(m) + o - 1 for m, o in _POSITION_CASES],
        "the residue number has several digits: read all of them, int(mutation[1:-1]), not only mutation[1]":
            [int(m[1]) - o - 1 for m, o in _POSITION_CASES],
    }
    hint = _first_rule(got, {h: [(a, a != r) for a, r in zip(answers, right)] for h, answers in rules.items()})
    k = next(i for i, (g, r) in enumerate(zip(got, right)) if g != r)
    mutation, offset = _POSITION_CASES[k]
    raise CheckFailed(f"for {mutation!r} with offset {offset} the 0-based index is wrong", expected=right[k], got=got[k],
                      hint=hint or "index = int(mutation[1:-1]) - offset - 1 (the paper's residue number, minus the "
                      "offset, minus 1 for 0-based)")


# --- additive masked-marginal scores of a list of variants -------------------------------------


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _scores(log_probs, seq, variants, offset, *, index=lambda n, o: n - o - 1, term=None, parts=None) -> list | None:
    """The reference (defaults) or one of the typical mistakes; ``None`` when a wrong index leaves the sequence."""
    term = term or (lambda lp, i, wt, mt: lp[i, mt] - lp[i, wt])
    out = []
    for v in variants:
        values = []
        for p in v.split(":"):
            i = index(_number(p), offset)
            if not 0 <= i < len(seq):
                return None
            values.append(term(log_probs, i, AMINO_ACIDS.index(seq[i]), AMINO_ACIDS.index(p[-1])))
        out.append(parts(values) if parts else sum(values))
    return out


def _variant_cases(rng) -> list[tuple[np.ndarray, str, list[str], int]]:
    """(log_probs, wild type, variants in the paper's numbering, offset), with 1 to 3 mutations per variant.

    For small offsets every residue is picked so that the mistaken indices stay inside
    the sequence (their numbers can be compared); the last case has TDP-43's offset.
    """
    cases = []
    for length, offset in ((30, 0), (40, 1), (50, 7), (84, 289)):
        seq = "".join(rng.choice(list(AMINO_ACIDS), size=length))
        lp = _log_softmax(rng.normal(size=(length, 20)) * 1.5)
        top = length - 2 * offset - 2 if offset < 20 else length - 1
        variants = []
        for k in (1, 2, 3, 2, 1, 3):
            idx = sorted(rng.choice(top + 1, size=k, replace=False).tolist())
            variants.append(":".join(f"{seq[i]}{i + 1 + offset}{rng.choice([a for a in AMINO_ACIDS if a != seq[i]])}"
                                     for i in idx))
        cases.append((lp, seq, variants, offset))
    return cases


_POSITION_OFF = ("if that is your own wild-type check or an IndexError, the position is off: the residue numbers are "
                 "the paper's, so index = int(m[1:-1]) - offset - 1; is the offset ignored or added, or the 1 of "
                 "1-based numbering forgotten (off by one)?")


def variant_scores(candidate: Callable) -> str:
    """``variant_scores(log_probs, wild_type, variants, offset)``: one additive masked-marginal score per variant,
    ``Σ log_probs[i, mt] - log_probs[i, wt]`` over its mutations, with ``i = number - offset - 1``
    (``variants`` in the paper's numbering, e.g. ``["G290A", "G290A:S305T"]``), and a ``ValueError``
    when a stated wild-type residue is not the sequence's there.

    Tests variants of 1 to 3 mutations with offsets 0, 1, 7 and 289 on random
    log-probability tables, and recognises the offset ignored, added or off by one, the
    sign reversed, log p(mutant) or log p(wild type) used instead of the difference, only the
    first mutation counted, the mean taken instead of the sum, and a mismatched wild type
    that is not refused.
    """
    _function(candidate)
    rng = np.random.default_rng(70)
    cases = _variant_cases(rng)
    outcomes, failures = [], []
    for lp, seq, variants, offset in cases:
        what = f"{len(variants)} variants of a {len(seq)}-residue wild type, offset {offset}"
        try:
            got = call(candidate, lp.copy(), seq, list(variants), offset, what=what)
        except NotAttempted:
            raise
        except CheckFailed as exc:
            outcomes.append(None)
            failures.append((offset, exc))
            continue
        arr = np.asarray(got, dtype=np.float64) if not isinstance(got, (str, bytes)) else np.array(np.nan)
        if arr.shape != (len(variants),):
            raise CheckFailed(f"with {what}: expected {len(variants)} scores, one per variant, got {describe(got)}",
                              hint="return one score per variant, in their order (a list or an array)")
        outcomes.append(arr)
    right = [np.asarray(_scores(lp, seq, v, o)) for lp, seq, v, o in cases]
    if failures and all(o is None for o in outcomes):
        offset, exc = failures[0]
        raise CheckFailed(f"{exc.message}; yet every variant of these inputs has the right wild-type residue at "
                          f"index number - offset - 1 (here number - {offset + 1})", hint=_POSITION_OFF)
    bad = [k for k, (o, r) in enumerate(zip(outcomes, right)) if o is None or not np.allclose(o, r, atol=1e-5)]
    if bad:
        mistakes = {
            "the offset is ignored: the residue numbers are the paper's (position 1 is residue offset + 1); "
            "index = number - offset - 1": dict(index=lambda n, o: n - 1),
            "off by one: number - offset is the 1-based position; the row is number - offset - 1":
                dict(index=lambda n, o: n - o),
            "the offset is added instead of subtracted: index = number - offset - 1": dict(index=lambda n, o: n + o - 1),
            "the sign is reversed: the score is log p(mutant) - log p(wild type) (negative: the model likes the "
            "mutant less)": dict(term=lambda lp, i, wt, mt: lp[i, wt] - lp[i, mt]),
            "you summed log p(mutant) alone: the score is the difference log p(mutant) - log p(wild type) at each "
            "site": dict(term=lambda lp, i, wt, mt: lp[i, mt]),
            "you used the wild-type score instead of the difference: log p(wild type) alone says nothing about "
            "the mutant; take log p(mutant) - log p(wild type)": dict(term=lambda lp, i, wt, mt: lp[i, wt]),
            "only the first mutation was counted: a multi-mutant 'A4G:R10W' scores the SUM over its mutations":
                dict(parts=lambda values: values[0]),
            "you averaged: a multi-mutant's additive score is the SUM over its mutations, not the mean":
                dict(parts=lambda values: sum(values) / len(values)),
        }
        rules = {}
        for hint, kwargs in mistakes.items():
            answers = []
            for (lp, seq, v, o), r in zip(cases, right):
                a = _scores(lp, seq, v, o, **kwargs)
                answers.append((None if a is None else np.asarray(a), a is not None and not np.allclose(a, r)))
            rules[hint] = answers
        hint = _first_rule(outcomes, rules)
        k = bad[0]
        lp, seq, variants, offset = cases[k]
        if outcomes[k] is None:
            exc = failures[[i for i, o in enumerate(outcomes) if o is None].index(k)][1]
            raise CheckFailed(f"{exc.message}; yet every variant of this input has the right wild-type residue at "
                              f"index number - offset - 1 (here number - {offset + 1})", hint=hint or _POSITION_OFF)
        assert_close(outcomes[k], right[k], what=f"scores of {variants[:3]}… (offset {offset})",
                     hint=hint or "for each mutation 'A23G': i = 23 - offset - 1; add log_probs[i, index of G] - "
                     "log_probs[i, index of A]; sum over the mutations of a variant")
    # The wild-type letters are a free check of the numbering: a mismatch must be refused.
    lp, seq, _, offset = cases[1]
    i = 5
    wrong = next(a for a in AMINO_ACIDS if a != seq[i])
    bad_variant = f"{wrong}{i + 1 + offset}{next(a for a in AMINO_ACIDS if a not in (wrong, seq[i]))}"
    try:
        candidate(lp.copy(), seq, [bad_variant], offset)
    except ValueError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise CheckFailed(f"for {bad_variant!r} (offset {offset}; the wild type has {seq[i]!r} there) your function "
                          f"raised {type(exc).__name__}, not ValueError",
                          hint="raise ValueError when wild_type[i] differs from the variant's stated wild type") from None
    else:
        raise CheckFailed(f"{bad_variant!r} was scored, but residue {i + 1 + offset} (index {i}) of the wild type is "
                          f"{seq[i]!r}, not {wrong!r}",
                          hint="check the stated wild type: a mismatch is the data's way of telling you the numbering "
                          "is off; raise ValueError")
    return f"checked on {sum(len(c[2]) for c in cases)} variants (1 to 3 mutations, offsets 0, 1, 7, 289) " \
           "and a wrong wild type"


# --- Spearman against the measured fitness ---------------------------------------------------


def _is_wild_type(v: str) -> bool:
    return v.strip().lower() in WILD_TYPE_WORDS


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def _ordinal_spearman(x, y) -> float:
    """ρ with ties broken by order (argsort of argsort), a mistake when there are ties."""
    rx, ry = np.argsort(np.argsort(x, kind="stable"), kind="stable"), np.argsort(np.argsort(y, kind="stable"), kind="stable")
    return float(np.corrcoef(rx, ry)[0, 1])


def _spearman_cases(rng) -> list[tuple[list[str], np.ndarray, np.ndarray, bool]]:
    """(variants, fitness, scores, has ties): wild-type rows written 'WT', '_wt' or 'wt', tied scores last."""
    cases = []
    for n_mut, n_wt, words, slope, ties in [(60, 15, ("WT",), 0.5, False), (45, 12, ("WT", "_wt", "wt"), 0.6, False),
                                             (50, 10, ("_wt",), -0.5, False), (80, 0, (), 0.4, True)]:
        scores = rng.normal(-3.0, 1.5, size=n_mut)
        if ties:
            scores = np.round(scores)  # integer scores (like BLOSUM62 sums): many ties
        fitness = slope * (scores + 3) / 1.5 + rng.normal(0, 0.8, size=n_mut) - 1.0
        variants = [f"A{k + 2}G" for k in range(n_mut)]
        # wild-type replicates: score 0 by definition, fitness near 0 (the reference)
        variants += [words[k % len(words)] for k in range(n_wt)]
        scores = np.concatenate([scores, np.zeros(n_wt)])
        fitness = np.concatenate([fitness, rng.normal(0, 0.1, size=n_wt)])
        order = rng.permutation(len(variants))
        cases.append(([variants[k] for k in order], fitness[order], scores[order], ties))
    return cases


def zero_shot_spearman(candidate: Callable) -> str:
    """``zero_shot_spearman(variants, fitness, scores)``: Spearman's ρ (average ranks for ties) between the
    measured fitness and the scores over the rows that are not the wild type itself (``'WT'`` or ``'_wt'``,
    any case).

    Tests tables with 10-15 wild-type rows (score 0, fitness near 0: left in, they inflate
    ρ), a negative relation (a toxicity-like readout) and integer scores with ties, and
    recognises a reversed ranking direction, wild-type rows left in (all or some of their
    spellings), Pearson instead of Spearman and ties ranked by order.
    """
    _function(candidate)
    rng = np.random.default_rng(71)
    cases = _spearman_cases(rng)
    for variants, fitness, scores, ties in cases:
        n_wt = sum(_is_wild_type(v) for v in variants)
        what = f"{len(variants)} rows ({n_wt} of them wild type)"
        got = call(candidate, list(variants), fitness.copy(), scores.copy(), what=what)
        arr = np.asarray(got) if not isinstance(got, (str, bytes)) else np.array(np.nan)
        if arr.shape != () or arr.dtype.kind not in "iuf":
            raise CheckFailed(f"with {what}: expected one number, got {describe(got)}",
                              hint="return ρ alone: scipy.stats.spearmanr(...) returns (statistic, pvalue); "
                              "return its .statistic as a float")
        g = float(arr)
        keep = np.array([not _is_wild_type(v) for v in variants])
        ref = _spearman(fitness[keep], scores[keep])
        if np.isclose(g, ref, atol=1e-6):
            continue
        hint = "drop the wild-type rows (v.strip().lower() in ('wt', '_wt')), then scipy.stats.spearmanr(fitness, " \
               "scores).statistic"
        spellings = sorted({v for v in variants if _is_wild_type(v)})
        partial = [np.array([v not in dropped for v in variants])  # some spellings dropped, not all
                   for r in range(1, len(spellings)) for dropped in itertools.combinations(spellings, r)]
        if np.isclose(g, -ref, atol=1e-6):
            hint = "the ranking direction is reversed (ρ has the wrong sign): a higher score means the model likes " \
                   "the mutant more; correlate the scores as they are with the fitness, without negating or ranking " \
                   "from the top"
        elif n_wt and any(np.isclose(g, f(fitness, scores), atol=1e-6) for f in (_spearman, _ordinal_spearman)):
            hint = f"wild-type rows left in: {n_wt} rows are the wild type itself (score 0 by definition, fitness " \
                   "the reference); they are trivially right and inflate ρ: drop every row whose variant is 'WT' or " \
                   "'_wt', in any case"
        elif any(np.isclose(g, _spearman(fitness[m], scores[m]), atol=1e-6) for m in partial):
            hint = f"some wild-type rows left in: {', '.join(repr(w) for w in spellings)} are all the wild type; " \
                   "compare v.strip().lower() with 'wt' and '_wt'"
        elif np.isclose(g, float(np.corrcoef(fitness[keep], scores[keep])[0, 1]), atol=1e-6):
            hint = "this is Pearson's correlation of the values: Spearman's ρ correlates their ranks " \
                   "(scipy.stats.spearmanr)"
        elif ties:  # the earlier cases (no ties) passed
            hint = "the scores have ties: tied values must share their average rank (scipy.stats.spearmanr or " \
                   "scipy.stats.rankdata do that; argsort of argsort breaks ties by order)"
        raise CheckFailed(f"Spearman's ρ with {what} is wrong", expected=round(ref, 6), got=round(g, 6), hint=hint)
    return f"checked on {len(cases)} tables with wild-type rows, a negative relation and tied scores"
