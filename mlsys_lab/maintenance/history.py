"""Write simulated history into a decision log as the service would have, for tests, benchmarks and the demo.

:func:`backfill` writes one decision per transaction (the features as the service computes them,
the score and the decision of the model that served it) and the fraud labels reported by
``labels_until_seconds``, with the time each became known. It goes through
:class:`~mlsys_lab.deployment.decision_log.DecisionLog`'s own methods, like the service. Only fraud
labels are written: a transaction without a label counts as genuine in every reader of labels
(:func:`~mlsys_lab.data.labels.with_known_labels`), so genuine labels would change no number here
and cost one write each.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.deployment.decision_log import Decision, DecisionLog

__all__ = ["backfill"]

_BATCH = 5_000


def backfill(
    log: DecisionLog,
    frame: pd.DataFrame,
    *,
    scores: npt.ArrayLike | None = None,
    threshold: float = 0.5,
    model_version: int = 1,
    labels_until_seconds: float | None = None,
) -> tuple[int, int]:
    """Log ``frame``'s transactions (with features, :func:`~mlsys_lab.training.feature_frame`) and their known frauds.

    ``scores`` default to 0 (no model); ``labels_until_seconds`` (simulation seconds) defaults to
    every label. Returns ``(decisions, labels)`` written.
    """
    values = np.zeros(len(frame)) if scores is None else np.asarray(scores, dtype=np.float64)
    decided_at = dt.datetime.now(dt.UTC)
    features = frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64).tolist()
    # Columns as Python lists once, not a pandas row object and a Timestamp per transaction (3x the cost).
    columns = zip(
        frame["transaction_id"].tolist(),
        frame["customer_id"].tolist(),
        frame["terminal_id"].tolist(),
        list(frame["tx_datetime"].dt.to_pydatetime()),
        frame["tx_amount"].astype(np.float64).tolist(),
        values.tolist(),
        features,
        strict=True,
    )
    written = 0
    while chunk := list(itertools.islice(columns, _BATCH)):
        written += log.record_many(
            Decision(
                request_id=str(uuid.uuid4()),
                decided_at=decided_at,
                transaction_id=tx_id,
                customer_id=customer,
                terminal_id=terminal,
                tx_datetime=when,
                tx_amount=amount,
                model_version=model_version,
                features=dict(zip(FEATURE_COLUMNS, row, strict=True)),
                score=score,
                decision=score >= threshold,
                threshold=threshold,
                latency_ms=0.0,
            )
            for tx_id, customer, terminal, when, amount, score, row in chunk
        )
    until = np.inf if labels_until_seconds is None else float(labels_until_seconds)
    frauds = frame[(frame["tx_fraud"] == 1) & (frame["tx_label_seconds"] <= until)]
    origin = pd.Timestamp(frame["tx_datetime"].iloc[0]) - pd.Timedelta(seconds=int(frame["tx_time_seconds"].iloc[0]))
    known = origin + pd.to_timedelta(frauds["tx_label_seconds"].to_numpy(dtype=np.float64), unit="s")
    # One transaction for all the labels, as a day of chargebacks arrives (one commit per label was half the time).
    log.record_labels(zip(frauds["transaction_id"].tolist(), [True] * len(frauds), known.to_pydatetime(), strict=True))
    return written, len(frauds)
