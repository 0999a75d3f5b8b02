"""How a participant's exception reads in a check's verdict (``checking.error_text``)."""

from __future__ import annotations

import pytest

from workshop.checking import CheckFailed, call, error_text


def test_short_message_unchanged():
    assert error_text(ValueError("bad value")) == "ValueError: bad value"


def test_jax_tracing_error_names_the_argument():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    @jax.jit
    def absolute(x):
        if x > 0:  # the classic mistake: Python control flow on a traced value
            return x
        return -x

    with pytest.raises(CheckFailed) as info:
        call(absolute, jnp.ones(()), what="x=1.0")
    message = info.value.message
    # The first line alone ("Attempted boolean conversion ...") does not say which input;
    # the line after it does, and the documentation link comes with it.
    assert "boolean conversion" in message
    assert "the argument x" in message
    assert "errors.html" in message
    assert "jax.lax.cond" in info.value.hint


def test_jax_shape_error_keeps_both_shapes():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    with pytest.raises(CheckFailed) as info:
        call(lambda x, w: jnp.dot(x, w), jnp.ones((5, 3)), jnp.ones((4, 2)), what="x (5, 3), w (4, 2)")
    assert "got (3,) and (4,)" in info.value.message


def test_internal_lines_dropped_and_long_text_kept_past_300():
    detail = "shapes " + ", ".join(f"({i}, {i + 1})" for i in range(40))  # > 300 characters
    text = ("first line of the message\n"
            "--------------------\n"
            "For simplicity, JAX has removed its internal frames from the traceback\n"
            '  File "/site-packages/jax/_src/core.py", line 1, in bind\n'
            "\n\n\n"
            f"{detail}\n"
            "    @ 0x7f00deadbeef  xla::Something\n")
    got = error_text(RuntimeError(text))
    assert got.startswith("RuntimeError: first line of the message\n")
    assert detail in got  # the old 300-character cut would have lost the end of it
    for internal in ("For simplicity", "jax/_src", "@ 0x", "-----"):
        assert internal not in got
    assert "\n\n\n" not in got


def test_cut_at_limit_says_how_much_is_left_out():
    got = error_text(RuntimeError("x" * 5000), limit=200)
    assert got.endswith(f"... ({len('RuntimeError: ') + 5000 - 200} more characters)")
    assert len(got) < 260
