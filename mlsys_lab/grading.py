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
mlsys_lab.grading.GradingError: alerts: expected 4, got 3. Hint: count days, not weeks

The failure is a :class:`GradingError`, a subclass of ``AssertionError`` whose
``_render_traceback_`` makes IPython (JupyterLab, ``nbgrader validate`` and ``autograde``) print
only the message: one readable line instead of twenty lines of traceback into this module.

What grading can and cannot defend against
------------------------------------------
An answer cell runs arbitrary code in the same kernel as the tests, and this repository (hidden
tests included) is public, so grading is a check of good-faith work, not exam security.

- Replacing a checker (``grading.check_equal = lambda *a, **k: None``) or a NumPy, pandas or
  builtin function that tests rely on (``np.array_equal = lambda *a: True``) is detected: every
  checker and :func:`call` first compares those objects with the ones captured when this module was
  imported, and fails the cell with a message saying what was replaced.
- A determined student can still defeat that check (replace every public name here at once,
  edit the captured originals, rebind the global name ``grading``, patch ``sys.modules``, or
  write a ``sitecustomize``). nbgrader's own guards cover the rest of the path: test cells are
  restored from the gradebook, so an edited test never runs. What remains is for a person to see:
  an answer cell that touches ``grading``, ``sys.modules`` or a library's attributes is
  conspicuous when an instructor reads the submission.
"""

from __future__ import annotations

import builtins
import contextlib
import dis
import importlib
import inspect
import io
import math
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from mlsys_lab.course import FAST_ENV

T = TypeVar("T")

#: The words the answer stub, the intro and the failure message all use.
STUB_TEXT = "Replace this line with your answer."

#: Set in the kernel's environment by nbgrader while it autogrades or validates a notebook.
GRADED_RUN_ENV = "NBGRADER_EXECUTION"


def fast_mode(requested: bool) -> bool:
    """Whether a notebook runs its short version (``FAST``): asked for, graded, or a ``--fast`` lab.

    nbgrader cannot pass parameters to a notebook, so a graded run (``nbgrader autograde``, the
    Validate button, ``mlsys-lab validate``) is recognised from ``NBGRADER_EXECUTION`` and runs the
    short lessons. That is safe because every hidden test computes its expected values from the
    notebook's own data, never from constants of one length: the answer-variant suite grades every
    correct and wrong answer in the short version. It makes a class's grading several times cheaper.

    Parameters
    ----------
    requested : bool
        The notebook's ``FAST`` parameter (``True`` when papermill or the learner set it).

    Returns
    -------
    bool
        ``True`` when ``requested``, when nbgrader is grading or validating, or when
        ``MLSYS_LAB_FAST`` is ``1``/``true`` (``mlsys-lab lab --fast``, for a slow laptop).
    """
    if requested or os.environ.get(GRADED_RUN_ENV):
        return True
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes"}


class GradingError(AssertionError):
    """A failed check: one readable message, shown without a traceback in notebooks."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of formatting the traceback; nbgrader records what it returns.
        return [f"{type(self).__name__}: {self}"]


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(name: str, expected: str, got: Any, hint: str) -> GradingError:
    message = f"{name}: expected {expected}, got {_short(got)}."
    if hint:
        message += f" Hint: {hint}"
    return GradingError(message)


# --------------------------------------------------------------------------------------------------
# Integrity: the objects the tests rely on are the ones this module saw at import
# --------------------------------------------------------------------------------------------------

_WATCHED: dict[str, Any] = {
    "numpy": np,
    "pandas": pd,
    "pandas.DataFrame": pd.DataFrame,
    "pandas.Series": pd.Series,
    "pandas.Index": pd.Index,
    "builtins": builtins,
    "math": math,
}


# ipykernel swaps builtins.input and friends on every execution, so builtins are watched by name.
_WATCHED_BUILTINS = frozenset(
    {
        "abs", "all", "any", "bool", "dict", "float", "getattr", "int", "isinstance", "len", "list",
        "max", "min", "range", "repr", "round", "set", "sorted", "str", "sum", "tuple", "type", "zip",
    }
)  # fmt: skip


def _snapshot() -> dict[str, dict[str, int]]:
    return {
        label: {
            key: id(value)
            for key, value in vars(owner).items()
            if callable(value) and (owner is not builtins or key in _WATCHED_BUILTINS)
        }
        for label, owner in _WATCHED.items()
    }


_LIBRARY_SNAPSHOT = _snapshot()
_PUBLIC_CHECKERS = (
    "call",
    "check_equal",
    "check_close",
    "check_type",
    "check_keys",
    "check_mapping_close",
    "check_raises",
    "check_not_forwarding",
    "substitute",
)
_ORIGINALS: dict[str, Any] = {}  # filled at the end of the module


def check_untampered() -> None:
    """Fail if a checker here, or a NumPy, pandas, math or builtin function, was replaced.

    Every checker runs this first, so an answer cell that stubs out ``grading.check_equal`` or
    patches ``np.array_equal`` fails the test cells instead of passing them. See the module
    docstring for what this cannot prevent.
    """
    module = sys.modules[__name__]
    replaced = [f"grading.{name}" for name, func in _ORIGINALS.items() if getattr(module, name, None) is not func]
    for label, ids in _LIBRARY_SNAPSHOT.items():
        current = vars(_WATCHED[label])
        replaced += [f"{label}.{key}" for key, ident in ids.items() if key in current and id(current[key]) != ident]
    if replaced:
        raise GradingError(
            f"grading cannot trust this kernel: {', '.join(sorted(replaced)[:5])} "
            f"{'was' if len(replaced) == 1 else 'were'} replaced since the notebook started. "
            "Hint: remove the code that assigns to them, restart the kernel and run all cells."
        )


# --------------------------------------------------------------------------------------------------
# Calling the learner's code
# --------------------------------------------------------------------------------------------------


def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a learner's function with warnings and stderr captured, and return its result.

    If the call raises, the error is re-raised as a :class:`GradingError` that names the function,
    the exception and anything it wrote to stderr, so the test cell fails with a readable message
    instead of a traceback into the learner's code. ``NotImplementedError`` (an unanswered stub)
    gets its own message.
    """
    check_untampered()
    buffer = io.StringIO()
    name = getattr(func, "__name__", "the function")
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(buffer):
        warnings.simplefilter("always")
        try:
            with np.errstate(all="ignore"):
                return func(*args, **kwargs)
        except NotImplementedError:
            raise GradingError(
                f"{name} is not answered yet: its cell still says {STUB_TEXT!r} Replace that line with your "
                "code, run the cell, then run this test again."
            ) from None
        except Exception as exc:
            noise = [str(w.message) for w in caught] + (
                [buffer.getvalue().strip()] if buffer.getvalue().strip() else []
            )
            extra = f" It also warned: {'; '.join(noise)[:300]}" if noise else ""
            raise GradingError(f"{name} raised {type(exc).__name__}: {exc}.{extra}") from None


@contextlib.contextmanager
def substitute(func: Callable[..., Any], **names: Any) -> Iterator[None]:
    """Run ``func`` with some of its global names bound to reference versions, then restore them.

    Later exercises are graded with the package's reference for the earlier ones, so one early
    mistake costs its points once: ``with substitute(fraud_rates, confusion_counts=reference):``
    makes a ``fraud_rates`` that calls the learner's ``confusion_counts`` call the reference.

    Parameters
    ----------
    func : callable
        The learner's function; its module globals (the notebook's namespace) are changed.
    **names
        Global name to the object it should mean during the block.
    """
    namespace = getattr(func, "__globals__", None)
    if namespace is None:
        yield
        return
    missing = object()
    saved = {name: namespace.get(name, missing) for name in names}
    namespace.update(names)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


# --------------------------------------------------------------------------------------------------
# Checkers
# --------------------------------------------------------------------------------------------------


def check_equal(name: str, got: Any, expected: Any, hint: str = "") -> None:
    """Fail unless ``got == expected`` (numpy arrays compared element-wise, shapes included)."""
    check_untampered()
    if isinstance(expected, np.ndarray) or isinstance(got, np.ndarray):
        got_arr, exp_arr = np.asarray(got), np.asarray(expected)
        if got_arr.shape == exp_arr.shape and bool(np.array_equal(got_arr, exp_arr)):
            return
    elif got == expected:
        return
    raise _fail(name, _short(expected), got, hint)


def check_close(name: str, got: Any, expected: float, *, tol: float = 1e-9, hint: str = "") -> None:
    """Fail unless ``got`` is a real number within ``tol`` (absolute or relative) of ``expected``."""
    check_untampered()
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
    check_untampered()
    if not isinstance(got, expected_type):
        names = (
            " or ".join(t.__name__ for t in expected_type)
            if isinstance(expected_type, tuple)
            else expected_type.__name__
        )
        raise _fail(name, f"a {names}", f"{type(got).__name__} {_short(got, 80)}", hint)


def check_keys(name: str, got: Any, keys: Iterable[str], hint: str = "") -> None:
    """Fail unless ``got`` is a mapping holding exactly ``keys``."""
    check_untampered()
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
    check_untampered()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            func(*args, **kwargs)
        except NotImplementedError:
            raise GradingError(f"{name}: the answer is not written yet (its cell still says {STUB_TEXT!r}).") from None
        except exception:
            return
        except Exception as exc:
            raise _fail(name, f"{exception.__name__} to be raised", f"{type(exc).__name__}: {exc}", hint) from None
    raise _fail(name, f"{exception.__name__} to be raised", "no error", hint)


# --------------------------------------------------------------------------------------------------
# Exercises that must not forward to the package
# --------------------------------------------------------------------------------------------------


def _resolve(dotted: str) -> Any:
    """Import ``package.module.attr.attr`` and return the object it names."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            value = getattr(value, attr)
        return value
    raise ImportError(f"cannot import {dotted}")


def _unwrap(value: Any) -> Any:
    value = getattr(value, "__func__", value)  # bound methods, classmethods
    return inspect.unwrap(value) if callable(value) else value


_TRANSPARENT_OPS = frozenset({"CACHE", "PRECALL", "EXTENDED_ARG", "NOP", "PUSH_NULL", "RESUME", "NOT_TAKEN"})


def _referenced(code: types.CodeType, namespace: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Objects a code object reaches through globals, attribute chains, imports and local aliases."""
    aliases: dict[str, tuple[str, Any]] = {}
    spelled, value = "", None
    imported: tuple[str, Any] = ("", None)
    for instruction in dis.get_instructions(code):
        op, arg = instruction.opname, instruction.argval
        if op in _TRANSPARENT_OPS:
            continue
        if op in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(arg, str) and arg in namespace:
            spelled, value = arg, namespace[arg]
        elif op in ("LOAD_FAST", "LOAD_DEREF", "LOAD_FAST_CHECK", "LOAD_FAST_BORROW") and arg in aliases:
            spelled, value = aliases[arg]
        elif op == "IMPORT_NAME" and isinstance(arg, str):
            try:
                spelled, value = arg, importlib.import_module(arg)
            except ImportError:
                spelled, value = "", None
            imported = (spelled, value)
        elif op == "IMPORT_FROM" and imported[1] is not None and isinstance(arg, str):
            # ``from a.b import c, d``: the module stays on the stack for each name taken from it.
            found = getattr(imported[1], arg, None)
            if found is None and imported[0].rsplit(".", 1)[-1] == arg:
                found = imported[1]  # ``import a.b as c`` takes ``b`` from the module ``a.b`` itself
                spelled, value = imported[0], found
                yield spelled, value
                continue
            if found is None:
                with contextlib.suppress(ImportError):
                    found = importlib.import_module(f"{imported[0]}.{arg}")
            spelled, value = f"{imported[0]}.{arg}", found
        elif op in ("LOAD_ATTR", "LOAD_METHOD") and value is not None and isinstance(arg, str):
            spelled, value = f"{spelled}.{arg}", getattr(value, arg, None)
        elif op in ("STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL") and value is not None:
            aliases[str(arg)] = (spelled, value)
            spelled, value = "", None
            continue
        else:
            spelled, value = "", None
            continue
        if value is not None:
            yield spelled, value
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _referenced(const, namespace)


def _code_objects(func: Any) -> Iterator[tuple[types.CodeType, Mapping[str, Any]]]:
    func = _unwrap(func)
    if isinstance(func, type):
        for attr in vars(func).values():
            target = getattr(attr, "__func__", attr)
            if isinstance(target, types.FunctionType):
                yield target.__code__, target.__globals__
    elif isinstance(func, types.FunctionType):
        yield func.__code__, func.__globals__


def check_not_forwarding(
    func: Any, forbidden: Iterable[str], *, what: str = "", depth: int = 3, skip: Iterable[str] = ()
) -> None:
    """Fail if the learner's ``func`` reaches one of the package functions in ``forbidden``.

    Some exercises ask for something the package also has, on purpose: the point is to build it.
    This follows the names ``func`` loads (globals, attribute chains such as
    ``evaluate.card_precision_at_k``, imports inside the body, aliases bound in the notebook) into the
    learner's own helper functions, up to ``depth`` calls deep, and fails when one of them is a
    forbidden object. A class is checked through its methods and its base classes.

    Parameters
    ----------
    func : callable or class
        The learner's answer.
    forbidden : iterable of str
        Dotted names of the package objects the answer must not use,
        e.g. ``"mlsys_lab.evaluate.card_precision_at_k"``. Names that do not resolve are skipped, so
        a renamed package function never costs a learner points (a course test resolves them all).
    what : str
        What the exercise asks the learner to build, for the message.
    depth : int
        How many levels of the learner's own helper functions to follow.
    skip : iterable of str
        Global names not to follow: the learner's earlier answers, which their own tests judge
        (``fraud_rates`` may build on ``confusion_counts`` however that one was written).
    """
    check_untampered()
    targets = {}
    for dotted in forbidden:
        # A name the package no longer has cannot be forwarded to; the course lint resolves every one.
        with contextlib.suppress(ImportError, AttributeError):
            targets[id(_unwrap(_resolve(dotted)))] = dotted
    name = getattr(func, "__name__", "the answer")
    reason = what or "the exercise is to build it"

    def fail(spelled: str, dotted: str) -> GradingError:
        return GradingError(
            f"{name} uses {spelled} ({dotted}): the package's own version of this exercise. The tests "
            f"grade your code, not the package: {reason}. Hint: write it yourself; you can still compare "
            "your result with the package's on a small input in a cell of your own."
        )

    skipped = set(skip)
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(func, depth)]
    while stack:
        current, level = stack.pop()
        current = _unwrap(current)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if id(current) in targets:
            raise fail(getattr(current, "__qualname__", repr(current)), targets[id(current)])
        if isinstance(current, type):
            for base in current.__mro__[1:]:
                if id(base) in targets:
                    raise fail(f"a subclass of {base.__qualname__}", targets[id(base)])
        for code, namespace in _code_objects(current):
            for spelled, value in _referenced(code, namespace):
                if spelled.split(".")[0] in skipped:
                    continue
                target = _unwrap(value)
                if id(target) in targets:
                    raise fail(spelled, targets[id(target)])
                is_own = isinstance(target, types.FunctionType | type) and not str(
                    getattr(target, "__module__", "")
                ).startswith(("mlsys_lab", "numpy", "pandas", "sklearn", "scipy"))
                if is_own and level > 0:
                    stack.append((target, level - 1))


_ORIGINALS.update({name: globals()[name] for name in _PUBLIC_CHECKERS})
_ORIGINALS["check_untampered"] = check_untampered
