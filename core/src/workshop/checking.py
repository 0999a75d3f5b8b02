"""Tools for writing exercise checks.

A check is a function that takes the participant's object (usually a function) and
returns quietly (optionally a short string saying what was verified) when it is right,
or raises :class:`CheckFailed` with a concrete, kind message and a hint when it is
wrong. :func:`call` runs the participant's code so that their exceptions become
messages, never raw tracebacks; :class:`NotAttempted` marks an untouched stub.

Example::

    from workshop.checking import call, assert_close

    def square(candidate):
        for x in (0.0, 1.5, -2.0):
            got = call(candidate, x, what=f"x={x}")
            assert_close(got, x * x, what=f"square({x})", hint="multiply x by itself")
        return "checked on 3 inputs"
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

__all__ = ["CheckFailed", "NotAttempted", "call", "assert_close", "assert_shape", "expect", "describe", "diagnose",
           "verdict", "error_text"]

#: Lines of an exception's text that describe JAX's or Python's machinery rather than the
#: mistake: frames inside JAX, the notes on traceback filtering, separators.
_INTERNAL_LINE_MARKS = (
    "jax/_src/", "jax._src.", "jaxlib/", "For simplicity, JAX has removed its internal frames",
    "JAX_TRACEBACK_FILTERING", "The stack trace below excludes JAX-internal frames",
    "The preceding is the original exception", "--------------------", "*** Begin stack trace",
    "*** End stack trace",
)


def error_text(exc: BaseException, limit: int = 1200) -> str:
    """The text of an exception as a participant should read it: ``"TypeError: ..."``.

    JAX's messages are kept whole where they help: the line after the first often names
    the argument a traced value came from ("... depends on the value of the argument x")
    or the shapes involved. Lines about JAX's internals (its own frames, notes on
    traceback filtering, C++ stack traces) are dropped, blank runs collapsed, and the rest
    cut at ``limit`` characters with the number left out said.

    >>> error_text(ValueError("Incompatible shapes for broadcasting: shapes=[(5, 2), (5,)]"))
    'ValueError: Incompatible shapes for broadcasting: shapes=[(5, 2), (5,)]'
    """
    kept: list[str] = []
    for line in str(exc).strip().splitlines():
        line = line.rstrip()
        if any(mark in line for mark in _INTERNAL_LINE_MARKS) or line.lstrip().startswith("@ 0x"):
            continue
        if not line and (not kept or not kept[-1]):
            continue
        kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    text = f"{type(exc).__name__}: " + "\n  ".join(kept)
    if len(text) > limit:
        text = text[:limit].rstrip() + f" ... ({len(text) - limit} more characters)"
    return text


class CheckFailed(Exception):
    """The participant's answer is wrong.

    Arguments:
        message: what failed, on which input (``"for t=0.5 the std is wrong"``).
        hint: what to look at next, kindly (``"the std is sqrt(1 - exp(-∫β))"``).
        expected, got: short descriptions or values shown side by side.
    """

    def __init__(self, message: str, *, hint: str | None = None, expected: Any = None, got: Any = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.expected = expected
        self.got = got

    def render(self) -> str:
        lines = [self.message]
        if self.expected is not None or self.got is not None:
            lines.append(f"  expected: {describe(self.expected)}")
            lines.append(f"  got:      {describe(self.got)}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class NotAttempted(CheckFailed):
    """The exercise still looks like its stub (returns ``...``/``None`` or raises NotImplementedError)."""


def describe(x: Any, limit: int = 6) -> str:
    """A short human description of a value: arrays by shape, dtype and a few numbers."""
    if x is None:
        return "None"
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None and dtype is not None:
        try:
            import numpy as np

            arr = np.asarray(x)
            if arr.ndim == 0:  # a scalar reads best as a number
                return repr(arr.item())
            flat = arr.ravel()[:limit]
            vals = np.array2string(flat, precision=4, separator=", ")
            more = ", …" if arr.size > limit else ""
            return f"array of shape {tuple(shape)}, dtype {dtype}: {vals[:-1]}{more}]" if arr.size else f"empty array of shape {tuple(shape)}"
        except Exception:
            return f"array of shape {tuple(shape)}, dtype {dtype}"
    if isinstance(x, (tuple, list)):
        inner = ", ".join(describe(v, limit) for v in list(x)[:4])
        return f"{type(x).__name__} of {len(x)}: ({inner}{', …' if len(x) > 4 else ''})"
    text = repr(x)
    return text if len(text) <= 120 else text[:117] + "..."


def call(fn: Callable, *args: Any, what: str = "", hints: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
    """Call the participant's ``fn``; turn their exceptions into :class:`CheckFailed`.

    Arguments:
        fn: the participant's function.
        *args, **kwargs: the input.
        what: a short description of the input for messages (``"x of shape (5, 2), t=0.3"``).
        hints: words of an error message -> the hint for the mistake that raises it (e.g.
            ``{"Incompatible shapes for broadcasting": "index with [:, None]"}``); the first
            whose words appear in the error replaces the generic hint.

    Returns:
        Whatever ``fn`` returned. A stub's ``None``/``...`` raises :class:`NotAttempted`.
    """
    if not callable(fn):
        raise CheckFailed(
            f"expected a function, got {describe(fn)}",
            hint="pass the function itself, without calling it: check(\"...\", my_function)",
        )
    on = f" with {what}" if what else ""
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        raise NotAttempted("this exercise has not been attempted yet (it raises NotImplementedError)") from None
    except CheckFailed:
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        hint = next((h for needle, h in (hints or {}).items() if needle in text), None)
        raise CheckFailed(
            f"calling your function{on} raised {error_text(exc)}",
            hint=hint or _hint_for_exception(exc),
        ) from None
    if result is None or result is Ellipsis:
        raise NotAttempted(
            "your function returned " + ("None" if result is None else "...") + ": it still looks like the "
            "exercise stub. Replace the '...' with your code and return the result."
        )
    return result


def _hint_for_exception(exc: Exception) -> str:
    name = type(exc).__name__
    text = str(exc)
    if "TracerBoolConversionError" in name or "ConcretizationTypeError" in name or "Tracer" in text and "bool" in text:
        return ("Python 'if'/'while' on a traced value does not work inside jit/vmap/grad; use "
                "jnp.where, jax.lax.cond or jax.lax.while_loop instead")
    if "does not support item assignment" in text or "immutable" in text:
        return "JAX arrays are immutable: write x = x.at[i].set(v) instead of x[i] = v"
    if name in {"TypeError"} and "shape" in text:
        return "check the shapes of your inputs and outputs"
    if name == "NameError":
        return "a name is not defined: did you run the cells above this one?"
    return "read the error above, fix your function and run the check again"


def _tree_leaves(x: Any) -> list:
    try:
        import jax

        return jax.tree_util.tree_leaves(x)
    except ImportError:
        return list(x) if isinstance(x, (list, tuple)) else [x]


def assert_shape(got: Any, shape: tuple, *, what: str, hint: str | None = None) -> None:
    """Fail unless ``got`` has exactly ``shape``."""
    gshape = getattr(got, "shape", None)
    if gshape is None:
        raise CheckFailed(f"{what}: expected an array of shape {tuple(shape)}", expected=tuple(shape), got=got, hint=hint)
    if tuple(gshape) != tuple(shape):
        raise CheckFailed(
            f"{what}: the shape is {tuple(gshape)}, expected {tuple(shape)}",
            hint=hint or "check which axis you reduce or broadcast over",
        )


def _matches(got: Any, answer: Any, rtol: float, atol: float) -> bool:
    """Whether ``got`` equals ``answer`` leaf by leaf (same count, shapes and values, NaN equal to NaN)."""
    import numpy as np

    g_leaves, a_leaves = _tree_leaves(got), _tree_leaves(answer)
    if len(g_leaves) != len(a_leaves):
        return False
    for g, a in zip(g_leaves, a_leaves):
        try:
            g_arr, a_arr = np.asarray(g, dtype=np.float64), np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if g_arr.shape != a_arr.shape:
            return False
        with np.errstate(invalid="ignore"):
            if not np.isclose(g_arr, a_arr, rtol=rtol, atol=atol, equal_nan=True).all():
                return False
    return True


def diagnose(got: Any, mistakes: Mapping[str, Any], *, rtol: float = 1e-4, atol: float = 1e-5) -> str | None:
    """Name the typical mistake that explains a wrong answer, from its numbers.

    Arguments:
        got: the participant's (wrong) answer: an array, a number or a pytree of them.
        mistakes: the name of each typical mistake -> the answer that mistake gives on the
            same input (an array or pytree, or a function of no arguments computing it, so
            that costly candidates are only computed when needed).
        rtol, atol: how close ``got`` must be to a mistake's answer to be recognised.

    Returns:
        The name of the first mistake whose answer ``got`` matches, or ``None``.

    Example::

        >>> right = 1.5
        >>> diagnose(-1.5, {"the sign is flipped": -right, "a factor of 2": 2 * right})
        'the sign is flipped'
        >>> diagnose(0.7, {"the sign is flipped": -right, "a factor of 2": 2 * right}) is None
        True
    """
    for name, answer in mistakes.items():
        if callable(answer):
            try:
                answer = answer()
            except Exception:  # a candidate that cannot be computed on this input explains nothing
                continue
        if _matches(got, answer, rtol, atol):
            return name
    return None


def assert_close(got: Any, expected: Any, *, what: str, hint: str | None = None, rtol: float = 1e-5, atol: float = 1e-6,
                 mistakes: Mapping[str, tuple[Any, str]] | None = None) -> None:
    """Fail unless ``got`` matches ``expected`` (arrays, scalars or pytrees of them).

    Compares structure, then shapes, then values (``|got - expected| <= atol + rtol |expected|``),
    and reports the worst element. ``mistakes`` maps the name of a typical mistake to
    ``(the answer it gives, the hint that fixes it)``: when ``got`` is wrong and matches one
    within the same tolerances (see :func:`diagnose`), the message names that mistake and its
    hint replaces ``hint``.
    """
    import numpy as np

    if mistakes and not _matches(got, expected, rtol, atol):
        name = diagnose(got, {k: v[0] for k, v in mistakes.items()}, rtol=rtol, atol=atol)
        if name is not None:
            raise CheckFailed(f"{what} is wrong: {name}", expected=expected if _is_small(expected) else None,
                              got=got if _is_small(got) else None, hint=mistakes[name][1])
    g_leaves, e_leaves = _tree_leaves(got), _tree_leaves(expected)
    if len(g_leaves) != len(e_leaves):
        raise CheckFailed(
            f"{what}: expected {len(e_leaves)} output value(s), got {len(g_leaves)}",
            expected=expected, got=got, hint=hint,
        )
    for i, (g, e) in enumerate(zip(g_leaves, e_leaves)):
        label = what if len(e_leaves) == 1 else f"{what} (output {i})"
        e_arr = np.asarray(e)
        try:
            g_arr = np.asarray(g, dtype=np.result_type(e_arr.dtype, np.float32) if e_arr.dtype.kind == "f" else None)
        except (TypeError, ValueError):
            raise CheckFailed(f"{label}: expected a number or array, got {describe(g)}", hint=hint) from None
        if g_arr.shape != e_arr.shape:
            raise CheckFailed(
                f"{label}: the shape is {g_arr.shape}, expected {e_arr.shape}",
                hint=hint or "check which axis you reduce or broadcast over",
            )
        if e_arr.dtype.kind in "biu" and g_arr.dtype.kind not in "fc":
            ok = np.array_equal(g_arr, e_arr)
            bad = None if ok else np.argwhere(g_arr != e_arr)[0]
        else:
            with np.errstate(invalid="ignore"):
                close = np.isclose(g_arr, e_arr, rtol=rtol, atol=atol, equal_nan=True)
            ok = bool(close.all())
            bad = None if ok else np.argwhere(~close)[0]
        if not ok:
            idx = tuple(int(j) for j in bad) if bad is not None and len(bad) else ()
            where = f" at index {idx}" if idx else ""
            raise CheckFailed(
                f"{label}: the values differ{where}",
                expected=e_arr[idx] if idx else e_arr,
                got=g_arr[idx] if idx else g_arr,
                hint=hint,
            )


def _is_small(x: Any) -> bool:
    """A value short enough to print whole beside the message (a number or a short array)."""
    import numpy as np

    try:
        return np.asarray(x).size <= 6
    except Exception:
        return False


def expect(condition: bool, message: str, *, hint: str | None = None) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message, hint=hint)


def verdict(check: Callable[[Callable], Any], answer: Callable) -> tuple[str, str]:
    """Run ``check(answer)`` and say how it ended: ``("pass", "")``, ``("fail", message)`` or
    ``("not attempted", message)``, the message being what a participant would read.

    For instructors and tests that try a typical mistake on a check::

        outcome, text = verdict(checks.langevin_step, my_wrong_step)
        assert outcome == "fail" and "square root" in text
    """
    try:
        check(answer)
    except NotAttempted as exc:
        return "not attempted", exc.render()
    except CheckFailed as exc:
        return "fail", exc.render()
    return "pass", ""
