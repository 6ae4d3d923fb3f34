"""What a model is in this system: a typed training config and the scikit-learn pipeline it builds.

A :class:`TrainingConfig` says everything that decides a trained model: the model family and its
hyperparameters, the time split, the feature set, the label policy and the seed. It is frozen and
hashable, so a config can be a dictionary key, logged as-is and compared between runs.

The pipeline's input
    :func:`build_pipeline` returns ``Pipeline([("scale", ...), ("model", ...)])`` that maps the
    feature vector (``config.features``, in that order, float64) to a fraud score. The 15 window
    features need each transaction's history, so they are computed by the data layer, not inside the
    pipeline: :func:`~mlsys_lab.data.features.build_features` offline and
    :class:`~mlsys_lab.data.online.OnlineFeatureState` online give the same values. The pipeline is
    fitted on a NumPy array, not a DataFrame, because the API scores one NumPy row per request (a
    one-row DataFrame costs about 4x more) and a pipeline fitted with column names warns on every
    NumPy row, which would reach stderr.

Label policy
    A model trained for a test period starting on day ``split.test_start_day`` can only use labels
    known then (:func:`~mlsys_lab.data.labels.known_labels` at ``split.test_start_seconds``, see
    :mod:`mlsys_lab.training.datasets`). With ``unknown_labels="genuine"`` (the default, as in the
    handbook and the demo) a training transaction nobody has reported as fraud yet counts as genuine;
    this under-counts the frauds of the last training days, which are reported late.
    ``unknown_labels="drop"`` trains only on transactions whose label is known, which keeps every
    fraud's label honest but drops recent genuine rows too (genuine labels take about 30 days).

Seeds
    ``random_state`` goes into the estimator's ``random_state`` and nowhere else: no global seeds.
    Logistic regression (lbfgs) ignores it; trees, forests and boosting use it.

Threads
    :func:`~mlsys_lab.training.run.train` fits under ``threadpool_limits(1)`` by default: on a 2-core
    machine a histogram-gradient-boosting fit on ``small`` took 1.5-3 s with the default OpenMP
    threads and 0.2 s with one, and one thread keeps float sums in one order. A random forest is
    built with ``n_jobs=1`` unless ``params`` says otherwise: with ``n_jobs=-1`` every single-row
    prediction pays joblib's dispatch overhead and is several times slower (scikit-learn issue
    16143). OpenMP threads also slow a single-row boosting prediction; the server limits them, and
    :mod:`mlsys_lab.training.selection` measures latency the same way.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlsys_lab import evaluate
from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit

__all__ = ["DEFAULT_PARAMS", "FAMILIES", "Family", "ParamValue", "TrainingConfig", "build_pipeline"]

Family = Literal["logistic_regression", "decision_tree", "random_forest", "hist_gradient_boosting"]

_ESTIMATORS: Mapping[str, Callable[..., BaseEstimator]] = types.MappingProxyType(
    {
        "logistic_regression": LogisticRegression,
        "decision_tree": DecisionTreeClassifier,
        "random_forest": RandomForestClassifier,
        "hist_gradient_boosting": HistGradientBoostingClassifier,
    }
)
#: The model families a config may name.
FAMILIES: tuple[str, ...] = tuple(_ESTIMATORS)

#: Per-family defaults, applied under ``config.params``. Chosen to be small and fast on the ``small``
#: preset, and explicit where scikit-learn's default would hide a decision: ``n_jobs=1`` for serving
#: speed, ``early_stopping=False`` so boosting uses every training row and the number of trees is a
#: hyperparameter, not a side effect of the data size. Boosting is regularised (fewer, larger leaves, an L2
#: penalty): with scikit-learn's defaults it overfits the ~50 known frauds of a ``small`` training week
#: and its validation average precision collapses to about 0.02.
DEFAULT_PARAMS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {
        "logistic_regression": {"C": 1.0, "max_iter": 1000},
        "decision_tree": {"max_depth": 8, "min_samples_leaf": 1},
        "random_forest": {"n_estimators": 50, "max_depth": 10, "n_jobs": 1},
        "hist_gradient_boosting": {
            "max_iter": 100,
            "learning_rate": 0.1,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 50,
            "l2_regularization": 1.0,
            "early_stopping": False,
        },
    }
)

ParamValue = bool | int | float | str | None


def _frozen_params(family: str, params: object) -> tuple[tuple[str, ParamValue], ...]:
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in params):
        items = list(params)
    else:
        raise ValueError(f"params must be a mapping of hyperparameters, got {type(params).__name__}: pass e.g. {{}}")
    valid = set(_ESTIMATORS[family]().get_params())
    for name, value in items:
        if name == "random_state":
            raise ValueError("params must not hold random_state: set TrainingConfig.random_state instead")
        if name not in valid:
            raise ValueError(f"params: {name!r} is not a hyperparameter of {family}; valid ones are {sorted(valid)}")
        if not isinstance(value, ParamValue):
            raise ValueError(
                f"params[{name!r}] must be a bool, int, float, str or None (loggable and hashable), "
                f"got {type(value).__name__}"
            )
    names = [name for name, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"params names a hyperparameter twice: {sorted(names)}")
    return tuple(sorted(items))


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Everything that decides a trained model; the same config on the same data gives the same bytes.

    Parameters
    ----------
    family
        One of ``FAMILIES``.
    params
        Hyperparameters of the family's scikit-learn estimator, over ``DEFAULT_PARAMS[family]``. Given
        as a mapping, stored as a sorted tuple of ``(name, value)`` pairs so the config stays frozen
        and hashable; :attr:`model_params` gives the resolved dict.
    split
        Train / delay / test days (:class:`~mlsys_lab.data.split.TimeSplit`).
    features
        Feature columns, in the order the pipeline expects them; a subset of ``FEATURE_COLUMNS``.
    random_state
        The seed, passed to the estimator as ``random_state``.
    validation_folds
        Prequential validation folds before the test period (see
        :func:`mlsys_lab.training.prequential.validation_splits`); 0 skips validation.
    unknown_labels
        ``"genuine"``: labels not known at the test start count as genuine; ``"drop"``: such rows
        are left out of training. See the module docstring.
    cards_per_day
        ``k`` of card precision@k; ``None`` means ``CARDS_CHECKED_SHARE`` of the customers in the data.
    alerts_per_day
        Daily alert budget for the decision threshold; ``None`` means the same as ``cards_per_day``.
    cost
        The cost model the threshold minimises (:class:`~mlsys_lab.evaluate.CostModel`).

    Examples
    --------
    >>> config = TrainingConfig(family="decision_tree", params={"max_depth": 4}, split=TimeSplit(train_start_day=49))
    >>> config.model_params["max_depth"], config.params
    (4, (('max_depth', 4),))
    """

    family: str
    params: Mapping[str, ParamValue] | tuple[tuple[str, ParamValue], ...] = ()
    split: TimeSplit
    features: tuple[str, ...] = FEATURE_COLUMNS
    random_state: int = 0
    validation_folds: int = 3
    unknown_labels: Literal["genuine", "drop"] = "genuine"
    cards_per_day: int | None = None
    alerts_per_day: int | None = None
    cost: evaluate.CostModel = field(default_factory=evaluate.CostModel)

    def __post_init__(self) -> None:
        if self.family not in _ESTIMATORS:
            raise ValueError(f"family must be one of {list(FAMILIES)}, got {self.family!r}")
        object.__setattr__(self, "params", _frozen_params(self.family, self.params))
        if not isinstance(self.split, TimeSplit):
            raise ValueError(f"split must be a TimeSplit, got {type(self.split).__name__}: pass TimeSplit(...)")
        if not isinstance(self.features, tuple) or not self.features:
            raise ValueError(f"features must be a non-empty tuple of feature names, got {self.features!r}")
        unknown = [name for name in self.features if name not in FEATURE_COLUMNS]
        if unknown or len(set(self.features)) != len(self.features):
            raise ValueError(
                f"features must be distinct names from FEATURE_COLUMNS; got unknown {unknown} in {self.features!r}"
            )
        for name in ("random_state", "validation_folds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.unknown_labels not in ("genuine", "drop"):
            raise ValueError(f"unknown_labels must be 'genuine' or 'drop', got {self.unknown_labels!r}")
        for name in ("cards_per_day", "alerts_per_day"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.cost, evaluate.CostModel):
            raise ValueError(f"cost must be an evaluate.CostModel, got {type(self.cost).__name__}")

    @property
    def param_items(self) -> tuple[tuple[str, ParamValue], ...]:
        """``params`` as stored: sorted ``(name, value)`` pairs (typed for readers and mypy)."""
        return cast(tuple[tuple[str, ParamValue], ...], self.params)

    @property
    def model_params(self) -> dict[str, ParamValue]:
        """The estimator's hyperparameters: the family defaults, overridden by ``params``, plus the seed."""
        return {**DEFAULT_PARAMS[self.family], **dict(self.param_items), "random_state": self.random_state}

    @property
    def name(self) -> str:
        """A short readable name, e.g. ``random_forest(max_depth=10, n_estimators=50)``."""
        return f"{self.family}({', '.join(f'{k}={v}' for k, v in self.param_items)})"

    def as_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able values (what a run records)."""
        return {
            "family": self.family,
            "params": dict(self.param_items),
            "model_params": self.model_params,
            "split": {
                "train_start_day": self.split.train_start_day,
                "train_days": self.split.train_days,
                "delay_days": self.split.delay_days,
                "test_days": self.split.test_days,
            },
            "features": list(self.features),
            "random_state": self.random_state,
            "validation_folds": self.validation_folds,
            "unknown_labels": self.unknown_labels,
            "cards_per_day": self.cards_per_day,
            "alerts_per_day": self.alerts_per_day,
            "cost": {
                "missed_fraud_fixed": self.cost.missed_fraud_fixed,
                "missed_fraud_pays_amount": self.cost.missed_fraud_pays_amount,
                "false_alarm": self.cost.false_alarm,
                "review": self.cost.review,
            },
        }


def build_pipeline(config: TrainingConfig) -> Pipeline:
    """The unfitted pipeline of ``config``: scaling where the family needs it, then the estimator.

    Logistic regression gets a ``StandardScaler`` (its penalty and solver assume comparable scales);
    trees split on thresholds and need none, so their ``scale`` step is ``"passthrough"``. Every
    pipeline has the same two step names, so ``pipeline["model"]`` works for all families.

    Examples
    --------
    >>> pipe = build_pipeline(TrainingConfig(family="random_forest", split=TimeSplit(train_start_day=0)))
    >>> pipe["model"].n_jobs, pipe["model"].random_state
    (1, 0)
    """
    estimator = _ESTIMATORS[config.family](**config.model_params)
    scale: StandardScaler | str = StandardScaler() if config.family == "logistic_regression" else "passthrough"
    return Pipeline([("scale", scale), ("model", estimator)])
