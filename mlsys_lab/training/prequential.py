"""Prequential validation: several consecutive periods before the test, so a score comes with its spread.

One validation period is one noisy number (on ``small``, average precision moves by about ±0.12
between seeds). The handbook's prequential validation trains and scores a config on several folds,
each shifted one test period further into the past, and reports mean ± std.

Where the folds sit
    The newest validation fold is the test split moved back by ``delay_days + test_days``: its test
    period is the test split's training period, whose labels are (mostly) known when the final model
    is trained. So validation never touches the test period, and model selection and threshold choice
    can use it without peeking at the test. Older folds have shorter feature history on small
    simulations (windows reach 30 days back, terminal ones 37), which slightly lowers their scores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from mlsys_lab.data.split import TimeSplit, prequential_splits
from mlsys_lab.training.pipeline import TrainingConfig, build_pipeline, score_split, split_data

__all__ = ["FoldScores", "prequential_evaluate", "validation_splits"]

METRICS = ("average_precision", "roc_auc", "card_precision_at_k")


def validation_splits(split: TimeSplit, n_folds: int) -> list[TimeSplit]:
    """The ``n_folds`` prequential validation splits before ``split``'s test period, newest first.

    Examples
    --------
    >>> [s.train_start_day for s in validation_splits(TimeSplit(train_start_day=49), 3)]
    [35, 28, 21]
    """
    newest = replace(split, train_start_day=split.train_start_day - split.delay_days - split.test_days)
    if newest.train_start_day < 0:
        raise ValueError(
            f"no room for validation before day {split.train_start_day}: the newest fold would start on day "
            f"{newest.train_start_day}; simulate more days, move the split later or set validation_folds=0"
        )
    return prequential_splits(newest, n_folds)


@dataclass(frozen=True)
class FoldScores:
    """Per-fold validation scores and their mean ± std.

    ``folds`` has one row per fold (newest first): ``fold``, ``train_start_day``, ``test_start_day``,
    the metrics in ``METRICS``, ``train_rows``, ``train_frauds``. ``newest_scores`` keeps the newest
    fold's test rows and scores, on which a decision threshold can be chosen without using the test.
    """

    folds: pd.DataFrame
    newest_test: pd.DataFrame | None = None
    newest_scores: npt.NDArray[np.float64] | None = None

    @property
    def mean(self) -> pd.Series:
        return self.folds[list(METRICS)].mean()

    @property
    def std(self) -> pd.Series:
        """Sample standard deviation across folds (NaN with one fold)."""
        return self.folds[list(METRICS)].std(ddof=1)

    def summary(self) -> pd.DataFrame:
        """One row per metric: mean, std and the ``mean ± std`` text."""
        table = pd.DataFrame({"mean": self.mean, "std": self.std})
        table["mean ± std"] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(table["mean"], table["std"], strict=True)]
        return table


def prequential_evaluate(
    config: TrainingConfig, frame: pd.DataFrame, n_folds: int | None = None, *, k: int, pipeline: Pipeline | None = None
) -> FoldScores:
    """Train ``config`` on each validation fold and score the fold's test period.

    Parameters
    ----------
    config
        The training config; its split is the *test* split the folds sit before.
    frame
        Transactions joined with their features (see :func:`mlsys_lab.training.run.train`).
    n_folds
        Number of folds; ``config.validation_folds`` by default.
    k
        Cards per day for card precision@k.
    pipeline
        An unfitted pipeline to clone per fold; ``build_pipeline(config)`` by default. Tests pass a
        modified one.
    """
    n_folds = config.validation_folds if n_folds is None else n_folds
    template = pipeline if pipeline is not None else build_pipeline(config)
    rows, newest_test, newest_scores = [], None, None
    for fold, split in enumerate(validation_splits(config.split, n_folds)):
        data = split_data(config, frame, split)
        model = clone(template).fit(data.X_train, data.y_train)
        y_proba = model.predict_proba(data.X_test)[:, 1]
        rows.append(
            {
                "fold": fold,
                "train_start_day": split.train_start_day,
                "test_start_day": split.test_start_day,
                **score_split(data, y_proba, k),
                "train_rows": len(data.y_train),
                "train_frauds": int(data.y_train.sum()),
            }
        )
        if fold == 0:
            newest_test, newest_scores = data.test, y_proba
    columns = ["fold", "train_start_day", "test_start_day", *METRICS, "train_rows", "train_frauds"]
    return FoldScores(pd.DataFrame(rows, columns=columns), newest_test, newest_scores)
