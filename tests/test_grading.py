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

    with pytest.raises(AssertionError, match=r"not answered yet.*Replace this line with your answer"):
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


def test_failures_render_as_one_line_in_ipython():
    with pytest.raises(grading.GradingError) as err:
        grading.check_equal("alerts", 3, 4)
    assert isinstance(err.value, AssertionError)
    assert err.value._render_traceback_() == ["GradingError: alerts: expected 4, got 3."]


def test_replaced_checker_or_library_function_fails_every_check(monkeypatch):
    grading.check_untampered()
    monkeypatch.setattr(grading, "check_equal", lambda *a, **k: None)
    with pytest.raises(AssertionError, match=r"grading\.check_equal was replaced"):
        grading.call(len, [1])
    monkeypatch.undo()
    monkeypatch.setattr(np, "array_equal", lambda *a, **k: True)
    with pytest.raises(AssertionError, match=r"numpy\.array_equal was replaced"):
        grading.check_close("x", 1.0, 1.0)
    monkeypatch.undo()
    grading.check_untampered()


def test_substitute_binds_reference_names_for_the_call_only():
    namespace = {"helper": lambda: "learner"}
    exec("def answer():\n    return helper()", namespace)
    with grading.substitute(namespace["answer"], helper=lambda: "reference"):
        assert grading.call(namespace["answer"]) == "reference"
    assert namespace["answer"]() == "learner"


def test_check_not_forwarding_follows_aliases_imports_and_helpers():
    from mlsys_lab import evaluate

    forbidden = ["mlsys_lab.evaluate.confusion_metrics"]
    namespace = {"evaluate": evaluate, "np": np, "alias": evaluate.confusion_metrics}
    sources = {
        "attribute": "def f(y, p):\n    return evaluate.confusion_metrics(y, p)",
        "import": "def f(y, p):\n    from mlsys_lab.evaluate import confusion_metrics as c\n    return c(y, p)",
        "module alias": "def f(y, p):\n    import mlsys_lab.evaluate as e\n    return e.confusion_metrics(y, p)",
        "notebook alias": "def f(y, p):\n    return alias(y, p)",
        "helper": "def g(y, p):\n    return evaluate.confusion_metrics(y, p)\ndef f(y, p):\n    return g(y, p)",
    }
    for label, source in sources.items():
        ns = dict(namespace)
        exec(source, ns)
        with pytest.raises(AssertionError, match="package's own version"):
            grading.check_not_forwarding(ns["f"], forbidden)
        assert label
    ns = dict(namespace)
    exec("def f(y, p):\n    return int(np.sum(np.asarray(y) & np.asarray(p)))", ns)
    grading.check_not_forwarding(ns["f"], forbidden)
    exec("def f(y, p):\n    return g(y, p)\ndef g(y, p):\n    return evaluate.confusion_metrics(y, p)", ns)
    grading.check_not_forwarding(ns["f"], forbidden, skip=["g"])
