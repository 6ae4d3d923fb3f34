"""Tests of mlsys_lab.grading: messages carry expected, got and hint; nothing reaches stderr."""

import warnings

import numpy as np
import pytest

from mlsys_lab import grading


def test_check_equal_message_has_expected_got_and_hint():
    with pytest.raises(AssertionError) as err:
        grading.check_equal("alerts", 3, 4, hint="count days, not weeks")
    assert str(err.value) == "alerts: expected 4, got 3. Hint: count days, not weeks"


def test_check_equal_compares_arrays_by_value_and_shape():
    grading.check_equal("a", np.array([1, 2]), np.array([1, 2]))
    with pytest.raises(AssertionError):
        grading.check_equal("a", np.array([1, 2]), np.array([[1, 2]]))


def test_check_close_tolerance_and_type():
    grading.check_close("x", 0.1 + 0.2, 0.3)
    with pytest.raises(AssertionError, match="within"):
        grading.check_close("x", 0.31, 0.3, tol=1e-3)
    with pytest.raises(AssertionError, match="return a float"):
        grading.check_close("x", [0.3], 0.3)


def test_check_mapping_close_names_the_key():
    with pytest.raises(AssertionError, match=r"rates\['recall'\]"):
        grading.check_mapping_close("rates", {"precision": 0.5, "recall": 0.4}, {"precision": 0.5, "recall": 0.5})
    with pytest.raises(AssertionError, match="keys"):
        grading.check_mapping_close("rates", {"precision": 0.5}, {"precision": 0.5, "recall": 0.5})


def test_call_swallows_warnings_and_stderr(capsys):
    def noisy(x):
        warnings.warn("careful", RuntimeWarning, stacklevel=1)
        np.log(np.array([0.0]))  # a numpy divide warning
        import sys

        print("to stderr", file=sys.stderr)
        return x + 1

    assert grading.call(noisy, 1) == 2
    assert capsys.readouterr().err == ""


def test_call_explains_unanswered_stubs_and_errors(capsys):
    def stub():
        raise NotImplementedError()

    def broken():
        warnings.warn("looked odd", stacklevel=1)
        raise KeyError("tp")

    with pytest.raises(AssertionError, match="not written yet"):
        grading.call(stub)
    with pytest.raises(AssertionError, match=r"broken raised KeyError.*looked odd"):
        grading.call(broken)
    assert capsys.readouterr().err == ""


def test_check_raises():
    grading.check_raises("neg", int, "x", exception=ValueError)
    with pytest.raises(AssertionError, match="no error"):
        grading.check_raises("ok", int, "1", exception=ValueError)
    with pytest.raises(AssertionError, match="TypeError"):
        grading.check_raises("wrong", int, None, exception=ValueError)
