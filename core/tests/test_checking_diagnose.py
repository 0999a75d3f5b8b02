"""diagnose and assert_close(mistakes=...): a wrong answer's numbers name the mistake."""

import numpy as np
import pytest

from workshop.checking import CheckFailed, assert_close, diagnose


def test_diagnose_names_the_matching_mistake_and_nothing_else():
    a = np.array([[1.0, 2.0], [3.0, 5.0]])
    mistakes = {"a factor of 2": 2 * a, "the sign": -a, "a transpose": a.T, "a missing square root": a**2}
    assert diagnose(2 * a, mistakes) == "a factor of 2"
    assert diagnose(-a, mistakes) == "the sign"
    assert diagnose(a.T, mistakes) == "a transpose"
    assert diagnose(a**2, mistakes) == "a missing square root"
    assert diagnose(a + 0.3, mistakes) is None
    assert diagnose(a[:1], mistakes) is None  # another shape explains nothing


def test_diagnose_computes_lazy_candidates_only_when_needed_and_skips_broken_ones():
    calls = []

    def costly():
        calls.append(1)
        return np.ones(3)

    def broken():
        raise ValueError("cannot be computed on this input")

    assert diagnose(np.ones(3), {"first": np.zeros(3), "broken": broken, "costly": costly}) == "costly"
    assert calls == [1]
    assert diagnose(np.zeros(3), {"first": np.zeros(3), "costly": costly}) == "first"
    assert calls == [1]


def test_diagnose_compares_pytrees_leaf_by_leaf():
    got = (np.ones(2), np.float32(3.0))
    assert diagnose(got, {"swapped": (np.float32(3.0), np.ones(2)), "right order": (np.ones(2), 3.0)}) == "right order"


def test_assert_close_names_the_mistake_in_the_message_and_uses_its_hint():
    expected = np.array([1.0, -2.0, 0.5])
    mistakes = {"the sign is flipped": (-expected, "the score points uphill"),
                "it is twice too large": (2 * expected, "average, do not sum")}
    with pytest.raises(CheckFailed) as info:
        assert_close(-expected, expected, what="the score", hint="generic", mistakes=mistakes)
    assert "the sign is flipped" in info.value.message
    assert info.value.hint == "the score points uphill"
    with pytest.raises(CheckFailed) as info:
        assert_close(expected + 1.0, expected, what="the score", hint="generic", mistakes=mistakes)
    assert info.value.hint == "generic" and "differ" in info.value.message
    assert_close(expected, expected, what="the score", mistakes=mistakes)  # a right answer passes


def test_call_uses_the_hint_named_by_the_error_and_keeps_the_generic_one_otherwise():
    from workshop.checking import call

    def broadcast(x):
        raise ValueError("Incompatible shapes for broadcasting: shapes=[(5, 20), (5,)]")

    hints = {"Incompatible shapes": "subtract each row's value with [:, None]"}
    with pytest.raises(CheckFailed) as info:
        call(broadcast, 1.0, what="x=1", hints=hints)
    assert "(5, 20), (5,)" in info.value.message and info.value.hint == hints["Incompatible shapes"]
    with pytest.raises(CheckFailed) as info:
        call(lambda x: 1 / 0, 1.0, hints=hints)
    assert info.value.hint != hints["Incompatible shapes"] and "ZeroDivisionError" in info.value.message


def test_verdict_reports_pass_fail_and_unattempted_with_the_participant_message():
    from workshop.checking import NotAttempted, assert_close, verdict

    def check_double(fn):
        got = fn(3.0)
        if got is None:
            raise NotAttempted("double not attempted yet")
        assert_close(got, 6.0, what="double(3)", mistakes={"you added 2 instead of doubling": (5.0, "multiply by 2")})

    assert verdict(check_double, lambda x: 2 * x) == ("pass", "")
    outcome, text = verdict(check_double, lambda x: x + 2)
    assert outcome == "fail" and "added 2 instead of doubling" in text
    outcome, text = verdict(check_double, lambda x: None)
    assert outcome == "not attempted" and "not attempted" in text
    with pytest.raises(ZeroDivisionError):  # a broken check is not a verdict on the answer
        verdict(lambda fn: 1 / 0, lambda x: x)
