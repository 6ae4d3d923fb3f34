"""Checkers that the course's nbgrader test cells call.

Every failed check raises ``AssertionError`` with one message in three parts: what was expected,
what came back, and a hint. A learner who reads only the last line of a red cell should know what
to fix.

nbgrader scores a test cell zero when it writes anything to stderr, even when the answer is right.
So nothing here writes to stderr, and :func:`call` runs a learner's function with warnings and
stderr captured: a stray ``RuntimeWarning`` in their code cannot cost them points, and it is shown
in the failure message when the answer is wrong.

Examples
--------
>>> check_close("recall", 0.5, 0.5)
>>> check_equal("alerts", 3, 4, hint="count days, not weeks")
Traceback (most recent call last):
...
AssertionError: alerts: expected 4, got 3. Hint: count days, not weeks
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(name: str, expected: str, got: Any, hint: str) -> AssertionError:
    message = f"{name}: expected {expected}, got {_short(got)}."
    if hint:
        message += f" Hint: {hint}"
    return AssertionError(message)


def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a learner's function with warnings and stderr captured, and return its result.

    If the call raises, the error is re-raised as an ``AssertionError`` that names the function,
    the exception and anything it wrote to stderr, so the test cell fails with a readable message
    instead of a traceback into the learner's code. ``NotImplementedError`` (an unanswered stub)
    gets its own message.
    """
    buffer = io.StringIO()
    name = getattr(func, "__name__", "the function")
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(buffer):
        warnings.simplefilter("always")
        try:
            with np.errstate(all="ignore"):
                return func(*args, **kwargs)
        except NotImplementedError:
            raise AssertionError(
                f"{name} is not written yet: replace `raise NotImplementedError()` with your code."
            ) from None
        except Exception as exc:
            noise = [str(w.message) for w in caught] + (
                [buffer.getvalue().strip()] if buffer.getvalue().strip() else []
            )
            extra = f" It also warned: {'; '.join(noise)[:300]}" if noise else ""
            raise AssertionError(f"{name} raised {type(exc).__name__}: {exc}.{extra}") from None


def check_equal(name: str, got: Any, expected: Any, hint: str = "") -> None:
    """Fail unless ``got == expected`` (numpy arrays compared element-wise, shapes included)."""
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        got_arr, exp_arr = np.asarray(got), np.asarray(expected)
        if got_arr.shape == exp_arr.shape and bool(np.array_equal(got_arr, exp_arr)):
            return
    elif got == expected:
        return
    raise _fail(name, _short(expected), got, hint)


def check_close(name: str, got: Any, expected: float, *, tol: float = 1e-9, hint: str = "") -> None:
    """Fail unless ``got`` is a real number within ``tol`` (absolute or relative) of ``expected``."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise _fail(name, f"a number close to {expected!r}", got, hint or "return a float, not a container") from None
    if math.isnan(expected) and math.isnan(value):
        return
    if not math.isclose(value, expected, rel_tol=tol, abs_tol=tol):
        raise _fail(name, f"{expected!r} (within {tol:g})", value, hint)


def check_type(name: str, got: Any, expected_type: type | tuple[type, ...], hint: str = "") -> None:
    """Fail unless ``got`` is an instance of ``expected_type``."""
    if not isinstance(got, expected_type):
        names = (
            " or ".join(t.__name__ for t in expected_type)
            if isinstance(expected_type, tuple)
            else expected_type.__name__
        )
        raise _fail(name, f"a {names}", f"{type(got).__name__} {_short(got, 80)}", hint)


def check_keys(name: str, got: Any, keys: Iterable[str], hint: str = "") -> None:
    """Fail unless ``got`` is a mapping holding exactly ``keys``."""
    wanted = sorted(keys)
    if not isinstance(got, Mapping):
        raise _fail(name, f"a dict with keys {wanted}", got, hint or "return a dict")
    if sorted(got) != wanted:
        raise _fail(name, f"keys {wanted}", sorted(got), hint)


def check_mapping_close(
    name: str, got: Any, expected: Mapping[str, float], *, tol: float = 1e-9, hint: str = ""
) -> None:
    """Fail unless ``got`` has exactly ``expected``'s keys and each value is close to it."""
    check_keys(name, got, expected.keys(), hint)
    for key, value in expected.items():
        check_close(f"{name}[{key!r}]", got[key], value, tol=tol, hint=hint)


def check_raises(
    name: str,
    func: Callable[..., Any],
    *args: Any,
    exception: type[BaseException] = ValueError,
    hint: str = "",
    **kwargs: Any,
) -> None:
    """Fail unless calling ``func(*args, **kwargs)`` raises ``exception``."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            func(*args, **kwargs)
        except NotImplementedError:
            raise AssertionError(f"{name}: the function is not written yet.") from None
        except exception:
            return
        except Exception as exc:
            raise _fail(name, f"{exception.__name__} to be raised", f"{type(exc).__name__}: {exc}", hint) from None
    raise _fail(name, f"{exception.__name__} to be raised", "no error", hint)
