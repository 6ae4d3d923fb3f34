"""Prequential validation: several periods before the test, each scored only with labels known at the decision.

One validation period is one noisy number (on ``small``, average precision moves by about ±0.12
between seeds). The handbook's prequential validation trains and scores a config on several folds,
each shifted one test period further into the past, and reports mean ± std.

The moment every number here stands for
    The final model is trained at ``T = split.test_start_seconds``, the start of the first test day,
    with the labels known at ``T``; it goes live then. The model selection (which candidate) and the
    decision threshold are decided at that same moment, from these validation scores. So **every
    label this module reads is a label known at T**:

    - a fold's *training* labels are those known at the fold's own test start (earlier than ``T``):
      the fold replays "train on what was known, then go live", exactly as the final model does;
    - a fold's *test* labels are those known at ``T``, not the full ``tx_fraud``
      (:func:`~mlsys_lab.data.labels.with_known_labels`): frauds reported by ``T`` are frauds,
      every other row counts as genuine, as the bank would score that week on the decision day.

    Why score on the labels known at ``T`` rather than move the folds back until their labels are
    mature: the newest fold's test days are the final training days, the most relevant ones, and
    on ``small`` (70 days) folds whose labels are all mature (frauds take up to 28 days, genuine
    labels about 30) would leave no room for a second fold. Scoring on known labels keeps the folds
    where the handbook puts them and gives the same answer as the full truth wherever the labels are
    mature. The price is stated: on ``small`` (seed 0) 54 of the newest fold's 69 frauds are
    reported by ``T``, 67 of 87 in the second fold and 59 of 64 in the third; the others count as
    genuine, so the newest folds under-state every model alike. Changing any label that is unknown
    at ``T``, or when it arrives, moves no validation score, no threshold, no selection and no
    training row (``tests/training/test_no_future_labels.py``).

Where the folds sit
    The newest validation fold is the test split moved back by ``delay_days + test_days``: its test
    period is the test split's training period. So validation never touches the test period. Older
    folds have shorter feature history on small simulations (windows reach 30 days back, terminal
    ones 37), which slightly lowers their scores.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from mlsys_lab.data.labels import with_known_labels
from mlsys_lab.data.split import TimeSplit, prequential_splits
from mlsys_lab.training.config import TrainingConfig, build_pipeline
from mlsys_lab.training.datasets import split_data
from mlsys_lab.training.scoring import METRICS, score_rows

__all__ = ["METRICS", "FoldScores", "prequential_evaluate", "validation_splits"]


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
    """Per-fold validation scores and their mean ± std, all from labels known at ``labels_as_of_seconds``.

    ``folds`` has one row per fold (newest first): ``fold``, ``train_start_day``, ``test_start_day``,
    the metrics in ``METRICS``, ``train_rows``, ``train_frauds`` and ``test_frauds_known`` (frauds
    among the fold's test rows that were reported by the decision time). ``newest_test`` holds the
    newest fold's test rows **with ``tx_fraud`` as known at the decision time** and ``newest_scores``
    the model's scores on them: the threshold is chosen on these, without the test period and
    without a label reported later.
    """

    folds: pd.DataFrame
    labels_as_of_seconds: int
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
    """Train ``config`` on each validation fold and score the fold's test period with the labels known at the decision.

    Parameters
    ----------
    config
        The training config; its split is the *test* split the folds sit before, and its
        ``split.test_start_seconds`` is the decision time whose known labels score every fold.
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
    decision = config.split.test_start_seconds
    rows, newest_test, newest_scores = [], None, None
    for fold, split in enumerate(validation_splits(config.split, n_folds)):
        data = split_data(config, frame, split)  # training labels known at this fold's own test start
        known = with_known_labels(data.test, decision)  # test labels known at the decision, not the truth
        model = clone(template).fit(data.X_train, data.y_train)
        y_proba = model.predict_proba(data.X_test)[:, 1].astype(np.float64)
        rows.append(
            {
                "fold": fold,
                "train_start_day": split.train_start_day,
                "test_start_day": split.test_start_day,
                **score_rows(known, y_proba, k),
                "train_rows": len(data.y_train),
                "train_frauds": int(data.y_train.sum()),
                "test_frauds_known": int(known["tx_fraud"].sum()),
            }
        )
        if fold == 0:
            newest_test, newest_scores = known, y_proba
    columns = ["fold", "train_start_day", "test_start_day", *METRICS, "train_rows", "train_frauds", "test_frauds_known"]
    return FoldScores(pd.DataFrame(rows, columns=columns), decision, newest_test, newest_scores)
