"""The numpy row path: one transaction scored without scikit-learn's per-call checks.

A served pipeline scores one row per request. For a one-row array, scikit-learn's ``predict_proba``
spends almost all its time checking its input (``validate_data``, ``check_is_fitted``, the output
container), about 0.45 ms of CPU per call for a scaler and a logistic regression, against a few
microseconds of arithmetic. The service computes its features itself and hands the model a finite
float64 array of the right width, so those checks cannot find anything there.

:func:`row_scorer` recognises the pipelines whose arithmetic is a few numpy lines (standard scalers
followed by a binary logistic regression, or a single decision tree after optional scalers) and
returns an equivalent scorer; for anything else it returns None and the pipeline's own
``predict_proba`` is used. The scorer is checked against ``predict_proba`` on probe rows before it
is used (:func:`agrees_with`): a pipeline the scorer would score differently is never given one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

__all__ = ["RowScorer", "agrees_with", "row_scorer"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Scale:
    """A fitted :class:`~sklearn.preprocessing.StandardScaler`'s arithmetic (``(x - mean) / scale``)."""

    mean: Array | None
    scale: Array | None

    def __call__(self, rows: Array) -> Array:
        # The same two operations, in the same order, as StandardScaler.transform.
        if self.mean is not None:
            rows = rows - self.mean
        if self.scale is not None:
            rows = rows / self.scale
        return rows


@dataclass(frozen=True)
class RowScorer:
    """Fraud probabilities of a recognised pipeline, in numpy; picklable (no closures).

    ``linear``: ``(coef, intercept)`` of a binary logistic regression; ``tree``: a decision tree's
    ``(children_left, children_right, feature, threshold, fraud_share)`` arrays. Exactly one is set.
    """

    scalers: tuple[_Scale, ...]
    fraud_column: int
    linear: tuple[Array, float] | None = None
    tree: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.intp], Array, Array] | None = None

    def __call__(self, rows: Array) -> Array:
        for scale in self.scalers:
            rows = scale(rows)
        if self.linear is not None:
            coef, intercept = self.linear
            fraud: Array = expit(rows @ coef + intercept)  # sklearn's binary predict_proba: expit(decision)
            return fraud if self.fraud_column == 1 else 1.0 - fraud
        assert self.tree is not None
        left, right, feature, threshold, share = self.tree
        out = np.empty(len(rows))
        # The tree compares float32 inputs with its thresholds (sklearn casts X to float32 first).
        for i, row in enumerate(np.asarray(rows, dtype=np.float32).tolist()):
            node = 0
            while left[node] != -1:  # -1 marks a leaf, as in sklearn.tree._tree.TREE_LEAF
                node = left[node] if row[feature[node]] <= threshold[node] else right[node]
            out[i] = share[node]
        return out


def _scaler(step: Any) -> _Scale | None:
    if type(step) is not StandardScaler:
        return None
    mean = step.mean_ if step.with_mean else None
    scale = step.scale_ if step.with_std else None
    return _Scale(None if mean is None else np.asarray(mean, np.float64), None if scale is None else np.asarray(scale))


def row_scorer(pipeline: Any, fraud_column: int) -> RowScorer | None:
    """A numpy scorer equivalent to ``pipeline.predict_proba(rows)[:, fraud_column]``, or None.

    Only exact types are recognised (a subclass may override ``predict_proba``): a
    :class:`~sklearn.pipeline.Pipeline` of :class:`~sklearn.preprocessing.StandardScaler` steps ending
    in a binary :class:`~sklearn.linear_model.LogisticRegression` or a
    :class:`~sklearn.tree.DecisionTreeClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(random_state=0)
    >>> pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(X, y)
    >>> scorer = row_scorer(pipeline, fraud_column=1)
    >>> bool(np.allclose(scorer(X[:3]), pipeline.predict_proba(X[:3])[:, 1]))
    True
    """
    if type(pipeline) is not Pipeline:
        return None
    steps = [step for _, step in pipeline.steps if step is not None and step != "passthrough"]
    if not steps:
        return None
    scalers = [_scaler(step) for step in steps[:-1]]
    if any(scale is None for scale in scalers):
        return None
    kept = tuple(scale for scale in scalers if scale is not None)
    last = steps[-1]
    if type(last) is LogisticRegression and np.shape(last.coef_)[0] == 1:
        coef = np.asarray(last.coef_[0], np.float64)
        return RowScorer(kept, fraud_column, linear=(coef, float(last.intercept_[0])))
    if type(last) is DecisionTreeClassifier and last.n_outputs_ == 1:
        tree = last.tree_
        counts = np.asarray(tree.value[:, 0, :], np.float64)
        share = counts[:, fraud_column] / counts.sum(axis=1)  # predict_proba's leaf normalisation
        arrays = (tree.children_left, tree.children_right, tree.feature, tree.threshold, share)
        return RowScorer(kept, fraud_column, tree=arrays)
    return None


def agrees_with(scorer: RowScorer, pipeline: Pipeline, fraud_column: int, probes: Sequence[Array]) -> bool:
    """Whether ``scorer`` gives ``pipeline``'s probabilities (to 1e-12) on every array of ``probes``."""
    for rows in probes:
        expected = pipeline.predict_proba(rows)[:, fraud_column]
        if not np.allclose(scorer(rows), expected, rtol=1e-9, atol=1e-12):
            return False
    return True
