"""Features computed from transactions, as scikit-learn compatible transformers.

This module starts with the two calendar flags of the course's 15 features. The customer and
terminal windows arrive with module 01 (the data layer), next to the point-in-time rules they need.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

#: A transaction is at night when its hour of day is at most this (00:00 to 06:59), as in the handbook.
NIGHT_LAST_HOUR = 6


class TimeFlags(TransformerMixin, BaseEstimator):
    """Weekend and night flags from ``tx_datetime``.

    Stateless: ``fit`` learns nothing, so the flags cannot leak anything from training rows.

    Examples
    --------
    >>> X = pd.DataFrame({"tx_datetime": pd.to_datetime(["2018-04-07 03:00", "2018-04-09 12:00"])})
    >>> TimeFlags().fit_transform(X)
       tx_during_weekend  tx_during_night
    0                  1                1
    1                  0                0
    """

    datetime_column: str

    def __init__(self, datetime_column: str = "tx_datetime") -> None:
        self.datetime_column = datetime_column

    def fit(self, X: pd.DataFrame, y: npt.ArrayLike | None = None) -> TimeFlags:
        if self.datetime_column not in X.columns:
            raise ValueError(f"TimeFlags needs a {self.datetime_column!r} column; got columns {list(X.columns)}")
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        stamps = pd.DatetimeIndex(X[self.datetime_column])
        return pd.DataFrame(
            {
                "tx_during_weekend": (stamps.day_of_week >= 5).astype(np.int8),
                "tx_during_night": (stamps.hour <= NIGHT_LAST_HOUR).astype(np.int8),
            },
            index=X.index,
        )

    def get_feature_names_out(self, input_features: npt.ArrayLike | None = None) -> npt.NDArray[np.object_]:
        return np.array(["tx_during_weekend", "tx_during_night"], dtype=object)
