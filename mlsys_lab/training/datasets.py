"""The matrices a config is trained and scored on: a split's rows, the labels known when it is decided, a fingerprint.

Every training matrix here is labelled as it would be on the day the model goes live,
``split.test_start_seconds``: :func:`~mlsys_lab.data.labels.known_labels` at that moment, never the
full ``tx_fraud``. Test rows keep the truth, since scoring the test period is what the truth is for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab.data.labels import known_labels
from mlsys_lab.data.split import TimeSplit, split_by_time
from mlsys_lab.training.config import TrainingConfig

__all__ = ["SplitData", "data_fingerprint", "split_data"]


@dataclass(frozen=True)
class SplitData:
    """The matrices of one split: training rows labelled as known at its test start, test rows with the truth.

    ``labels_as_of_seconds`` is that test start (``split.test_start_seconds``): no training label
    after it was used.
    """

    X_train: npt.NDArray[np.float64]
    y_train: npt.NDArray[np.int8]
    X_test: npt.NDArray[np.float64]
    train: pd.DataFrame  # the training rows (for their days, dates and fingerprint)
    test: pd.DataFrame  # the test rows, cards already known compromised removed; tx_fraud is the truth
    labels_as_of_seconds: int

    @property
    def y_test(self) -> npt.NDArray[np.int8]:
        """The test rows' true labels (the whole ``tx_fraud``: for evaluation only)."""
        return self.test["tx_fraud"].to_numpy().astype(np.int8)


def split_data(config: TrainingConfig, frame: pd.DataFrame, split: TimeSplit | None = None) -> SplitData:
    """Cut ``frame`` (transactions joined with their features) into the matrices of ``split``.

    ``split`` defaults to ``config.split``; prequential validation passes earlier ones. Training labels
    are those known at ``split.test_start_seconds`` (``config.unknown_labels`` says what happens to
    the others). Test rows drop the cards already known to be compromised (they are blocked), as in
    the handbook.
    """
    split = split or config.split
    missing = [c for c in config.features if c not in frame.columns]
    if missing:
        raise ValueError(
            f"frame lacks feature column(s) {missing}: join the transactions with build_features(transactions)"
        )
    train, test = split_by_time(frame, split, remove_known_compromised=True)
    labels = known_labels(train, split.test_start_seconds)
    if config.unknown_labels == "drop":
        train, labels = train[labels.notna().to_numpy()], labels.dropna()
    y_train = labels.fillna(0).to_numpy(dtype=np.int8)
    columns = list(config.features)
    return SplitData(
        X_train=np.ascontiguousarray(train[columns].to_numpy(dtype=np.float64)),
        y_train=y_train,
        X_test=np.ascontiguousarray(test[columns].to_numpy(dtype=np.float64)),
        train=train,
        test=test,
        labels_as_of_seconds=split.test_start_seconds,
    )


def data_fingerprint(X: npt.NDArray[np.float64], y: npt.NDArray[np.int8], features: tuple[str, ...]) -> str:
    """sha256 of the training matrix, its labels and its column names: the same data gives the same hex.

    Hashes the raw bytes of ``X`` as C-contiguous float64 and of ``y`` as int8, plus the shape and
    the feature names, so a reordered column, a flipped label or one more row changes it.

    Examples
    --------
    >>> X, y = np.zeros((2, 1)), np.array([0, 1], dtype=np.int8)
    >>> data_fingerprint(X, y, ("tx_amount",)) == data_fingerprint(X.copy(), y.copy(), ("tx_amount",))
    True
    """
    digest = hashlib.sha256()
    digest.update(",".join(features).encode())
    digest.update(np.asarray(X.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int8).tobytes())
    return digest.hexdigest()
