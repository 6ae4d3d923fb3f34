"""The champion/challenger gate: a paired bootstrap over days, a stated margin, and guardrails that must not regress.

Why days, and why a margin
    On the ``small`` preset a single 7-day window flips the sign of a logistic regression against
    random forest comparison (ΔCP@20 = +0.036, −0.007, +0.007, −0.029 on four weeks), and an A/A
    comparison (the same forest, seeds 0 and 1) differs by as much as two model families. Frauds
    cluster by card and by day (a compromised terminal defrauds many cards for weeks), so
    transactions are not independent: resampling them gives a confidence interval far too narrow.
    The unit of resampling is the **day**: both models are scored on the same days (card
    precision@k per day, :func:`daily_card_precision`), the per-day gains are resampled with
    replacement ``n_resamples`` times (:func:`paired_bootstrap`), and the challenger is promoted
    only when the **lower** bound of the ``confidence`` interval of the mean gain is above
    ``margin``. A challenger that is merely not worse keeps the champion: a swap has a cost.

The days
    "Recent matured days": days whose labels, as known at the decision time, are mature (see
    :mod:`mlsys_lab.maintenance.retraining`), and that neither model has seen. A model trained by
    :func:`~mlsys_lab.training.train` was fitted on rows before its ``trained_until_day``
    (``split.train_start_day + split.train_days``; its validation folds are older still); a gate day
    before that for either model is refused by the ``unseen_days`` guardrail. That is how a leaky
    challenger is caught: one retrained "on everything up to yesterday" has fitted the gate days, looks
    better on them, and would be promoted by a gate that only compares numbers.

Guardrails (:class:`GateConfig` states the limits; each is a :class:`Check` with its value and reason)
    ``enough_days`` (at least ``min_days``: one week cannot decide), ``unseen_days``, ``latency``
    (single-row p99 **CPU time** as :func:`~mlsys_lab.training.measure_latency` measures it: stable
    under load, unlike wall time), ``artifact_size``, ``request_schema`` (same request-schema version
    as the champion, and only features the service computes), ``checksum`` (the registry's sha256
    check passed), ``finite`` (every score a probability, the threshold a number in [0, 1]) and
    ``alert_rate`` (alerts per day at the challenger's own threshold within a factor
    ``max_alert_rate_ratio`` of the champion's: a model that pages investigators five times as often
    is not an upgrade, whatever its ranking).

The record
    :class:`GateDecision` holds every number and reason; :class:`GateStore` keeps them in
    ``<tracking root>/gate_decisions.db``, beside the registry's alias history, and a promotion made
    on a decision names its id in the history's ``why``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import sqlalchemy as sa

from mlsys_lab import evaluate
from mlsys_lab.deployment.decision_log import configure_sqlite, write_transaction

__all__ = [
    "GATE_FILE",
    "Candidate",
    "Check",
    "GateConfig",
    "GateDecision",
    "GateStore",
    "PairedBootstrap",
    "candidate_from_registry",
    "candidate_from_run",
    "daily_card_precision",
    "evaluate_gate",
    "gate_against_champion",
    "gate_rows",
    "paired_bootstrap",
]

logger = logging.getLogger(__name__)

#: The gate decisions' SQLite file, under the tracking root (beside the registry's ``alias_history.db``).
GATE_FILE = "gate_decisions.db"


def daily_card_precision(rows: pd.DataFrame, scores: npt.ArrayLike, k: int) -> pd.Series:
    """Card precision@k of each day of ``rows`` (``tx_time_days``, ``customer_id``, ``tx_fraud``), indexed by day."""
    per_day = evaluate.card_precision_at_k(rows, scores, k).per_day
    return per_day.set_index("day")["card_precision"].astype(float)


@dataclass(frozen=True)
class PairedBootstrap:
    """Mean per-day gain (challenger minus champion), its bootstrap interval, and the days behind it."""

    days: int
    gain: float
    ci_low: float
    ci_high: float
    confidence: float
    n_resamples: int
    per_day: pd.DataFrame = field(repr=False)  # day, champion, challenger, gain

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "gain": self.gain,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "n_resamples": self.n_resamples,
            "per_day": self.per_day.to_dict("records"),
        }


def paired_bootstrap(
    champion: pd.Series,
    challenger: pd.Series,
    *,
    n_resamples: int = 5_000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> PairedBootstrap:
    """Resample **days** with replacement; the interval of the mean gain ``challenger - champion``.

    Both series are indexed by day and must hold the same days (a comparison on different days is
    not paired, and is refused).

    Examples
    --------
    >>> days = pd.Index(range(20))
    >>> a = pd.Series(np.linspace(0.1, 0.3, 20), index=days)
    >>> paired_bootstrap(a, a + 0.05).ci_low > 0.049
    True
    """
    if not champion.index.equals(challenger.index):
        raise ValueError(
            "champion and challenger must be scored on the same days: got days "
            f"{list(champion.index)[:5]}... and {list(challenger.index)[:5]}..."
        )
    if len(champion) < 2:
        raise ValueError(f"a bootstrap over days needs at least 2 days, got {len(champion)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    gains = (challenger - champion).to_numpy(dtype=float)
    rng = np.random.default_rng(random_state)
    picks = rng.integers(0, gains.size, size=(n_resamples, gains.size))
    means = gains[picks].mean(axis=1)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    per_day = pd.DataFrame(
        {"day": champion.index, "champion": champion.to_numpy(), "challenger": challenger.to_numpy(), "gain": gains}
    )
    return PairedBootstrap(
        days=int(gains.size),
        gain=float(gains.mean()),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        n_resamples=n_resamples,
        per_day=per_day,
    )


@dataclass(frozen=True)
class GateConfig:
    """The gate's stated rule: the margin the gain's lower bound must beat, and every guardrail's limit."""

    margin: float = 0.005
    confidence: float = 0.95
    n_resamples: int = 5_000
    min_days: int = 14
    p99_cpu_ms: float = 5.0
    max_artifact_mb: float = 20.0
    max_alert_rate_ratio: float = 2.0
    random_state: int = 0


@dataclass(frozen=True)
class Candidate:
    """What the gate needs to know about one model, measured on the gate's rows.

    ``scores`` are its fraud scores on the gate rows (in their order); ``trained_until_day`` is the
    first day after its training rows (``split.train_start_day + split.train_days``); ``p99_cpu_ms`` its
    single-row CPU p99; ``checksum_error`` the registry's refusal, empty when the sha256 matched.
    """

    name: str
    scores: npt.NDArray[np.float64] = field(repr=False)
    threshold: float
    trained_until_day: int
    p99_cpu_ms: float
    artifact_bytes: int
    request_schema_version: str = "v1"
    features: tuple[str, ...] = ()
    version: int | None = None
    checksum_error: str = ""


@dataclass(frozen=True)
class Check:
    """One guardrail's verdict: its value, its limit and a sentence."""

    name: str
    passed: bool
    value: Any
    limit: Any
    reason: str


@dataclass(frozen=True)
class GateDecision:
    """Promote or keep, with every number and reason (:meth:`record`)."""

    promote: bool
    reasons: tuple[str, ...]
    bootstrap: PairedBootstrap | None
    checks: tuple[Check, ...]
    config: GateConfig
    champion: str
    challenger: str
    champion_version: int | None = None
    challenger_version: int | None = None
    gate_days: tuple[int, int] = (0, 0)
    numbers: dict[str, float] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-able: the decision, the reasons, the bootstrap with its per-day gains, every check, the rule."""
        return {
            "promote": self.promote,
            "reasons": list(self.reasons),
            "champion": self.champion,
            "challenger": self.challenger,
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "gate_days": list(self.gate_days),
            "bootstrap": None if self.bootstrap is None else self.bootstrap.as_dict(),
            "checks": [asdict(c) for c in self.checks],
            "config": asdict(self.config),
            "numbers": self.numbers,
        }

    def summary(self) -> str:
        """Two lines a person reads first: the verdict and why."""
        verdict = "PROMOTE" if self.promote else "KEEP the champion"
        lines = [
            f"gate: {verdict} ({self.challenger} against {self.champion}, days {self.gate_days[0]}-{self.gate_days[1]})"
        ]
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)


def _alerts_per_day(rows: pd.DataFrame, scores: npt.NDArray[np.float64], threshold: float) -> float:
    days = rows["tx_time_days"].to_numpy()
    n_days = max(1, len(np.unique(days)))
    return float(np.sum(scores >= threshold)) / n_days


def _guardrails(
    rows: pd.DataFrame, champion: Candidate, challenger: Candidate, config: GateConfig, served: Sequence[str] | None
) -> list[Check]:
    first_day = int(rows["tx_time_days"].min())
    n_days = int(rows["tx_time_days"].nunique())
    checks = [
        Check(
            "enough_days",
            n_days >= config.min_days,
            n_days,
            config.min_days,
            f"{n_days} gate days (at least {config.min_days}: one week flips the sign of a comparison)",
        )
    ]
    for who in (champion, challenger):
        ok = who.trained_until_day <= first_day
        checks.append(
            Check(
                "unseen_days" if who is challenger else "unseen_days_champion",
                ok,
                who.trained_until_day,
                first_day,
                f"{who.name} was trained on days up to {who.trained_until_day - 1}; the gate starts on day {first_day}"
                + ("" if ok else ": it has seen the days it is judged on (a leak), so its gain means nothing"),
            )
        )
    checks.append(
        Check(
            "latency",
            challenger.p99_cpu_ms <= config.p99_cpu_ms,
            round(challenger.p99_cpu_ms, 4),
            config.p99_cpu_ms,
            f"single-row p99 CPU time {challenger.p99_cpu_ms:.3f} ms (budget {config.p99_cpu_ms} ms)",
        )
    )
    size_mb = challenger.artifact_bytes / 1e6
    checks.append(
        Check(
            "artifact_size",
            size_mb <= config.max_artifact_mb,
            round(size_mb, 4),
            config.max_artifact_mb,
            f"artifact {size_mb:.2f} MB (limit {config.max_artifact_mb} MB)",
        )
    )
    unknown = [] if served is None else [name for name in challenger.features if name not in served]
    same_schema = challenger.request_schema_version == champion.request_schema_version
    checks.append(
        Check(
            "request_schema",
            same_schema and not unknown,
            challenger.request_schema_version,
            champion.request_schema_version,
            f"request schema {challenger.request_schema_version} (champion {champion.request_schema_version})"
            + (f"; features the service does not compute: {unknown}" if unknown else ""),
        )
    )
    checks.append(
        Check(
            "checksum",
            not challenger.checksum_error,
            "ok" if not challenger.checksum_error else "refused",
            "sha256 as registered",
            challenger.checksum_error or "artifact sha256 matches the registry's record",
        )
    )
    scores = np.asarray(challenger.scores, dtype=float)
    finite_scores = bool(np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1)))
    finite_threshold = math.isfinite(challenger.threshold) and 0.0 <= challenger.threshold <= 1.0
    checks.append(
        Check(
            "finite",
            finite_scores and finite_threshold,
            {"scores_ok": finite_scores, "threshold": challenger.threshold},
            "probabilities, threshold in [0, 1]",
            "scores are probabilities and the threshold is a number in [0, 1]"
            if finite_scores and finite_threshold
            else f"non-finite or out-of-range {'scores' if not finite_scores else 'threshold'} "
            f"(threshold {challenger.threshold!r})",
        )
    )
    if finite_scores and finite_threshold:
        ours = _alerts_per_day(rows, scores, challenger.threshold)
        theirs = _alerts_per_day(rows, np.asarray(champion.scores, dtype=float), champion.threshold)
        ratio = (ours + 1.0) / (theirs + 1.0)  # +1: a champion with no alert on some days does not divide by zero
        limit = config.max_alert_rate_ratio
        checks.append(
            Check(
                "alert_rate",
                1.0 / limit <= ratio <= limit,
                round(ratio, 4),
                limit,
                f"{ours:.1f} alerts/day at its threshold against the champion's {theirs:.1f} (ratio {ratio:.2f}, "
                f"allowed 1/{limit:g} to {limit:g})",
            )
        )
    return checks


def evaluate_gate(
    rows: pd.DataFrame,
    champion: Candidate,
    challenger: Candidate,
    *,
    k: int,
    config: GateConfig | None = None,
    served_features: Sequence[str] | None = None,
) -> GateDecision:
    """Judge ``challenger`` against ``champion`` on ``rows``: the gate days, labels as known at the decision.

    ``rows`` needs ``tx_time_days``, ``customer_id``, ``tx_fraud``; the candidates' ``scores`` are
    aligned with it. The challenger is promoted only when every guardrail passes and the lower bound
    of the bootstrap interval of the mean daily gain in card precision@k is above ``config.margin``.
    """
    config = config or GateConfig()
    for who in (champion, challenger):
        if len(who.scores) != len(rows):
            raise ValueError(f"{who.name}: {len(who.scores)} scores for {len(rows)} gate rows; score the same rows")
    checks = _guardrails(rows, champion, challenger, config, served_features)
    reasons = [f"guardrail {c.name} failed: {c.reason}" for c in checks if not c.passed]
    bootstrap = None
    numbers: dict[str, float] = {}
    if all(np.isfinite(np.asarray(c.scores, dtype=float)).all() for c in (champion, challenger)):
        ours = daily_card_precision(rows, challenger.scores, k)
        theirs = daily_card_precision(rows, champion.scores, k)
        bootstrap = paired_bootstrap(
            theirs,
            ours,
            n_resamples=config.n_resamples,
            confidence=config.confidence,
            random_state=config.random_state,
        )
        numbers = {
            "champion_cp_at_k": float(theirs.mean()),
            "challenger_cp_at_k": float(ours.mean()),
            "gain": bootstrap.gain,
            "ci_low": bootstrap.ci_low,
            "ci_high": bootstrap.ci_high,
            "margin": config.margin,
            "k": float(k),
        }
        interval = (
            f"gain in card precision@{k} {bootstrap.gain:+.4f}, {config.confidence:.0%} CI "
            f"[{bootstrap.ci_low:+.4f}, {bootstrap.ci_high:+.4f}] over {bootstrap.days} days"
        )
        if bootstrap.ci_low > config.margin:
            quality = f"{interval}: the lower bound beats the margin {config.margin:+.4f}"
        else:
            quality = f"{interval}: the lower bound does not beat the margin {config.margin:+.4f}"
            reasons.insert(0, quality)
    else:
        quality = "no comparison: a model returned non-finite scores"
        reasons.insert(0, quality)
    promote = not reasons
    if promote:
        reasons = [quality, "every guardrail passed"]
    days = rows["tx_time_days"]
    return GateDecision(
        promote=promote,
        reasons=tuple(reasons),
        bootstrap=bootstrap,
        checks=tuple(checks),
        config=config,
        champion=champion.name,
        challenger=challenger.name,
        champion_version=champion.version,
        challenger_version=challenger.version,
        gate_days=(int(days.min()), int(days.max())),
        numbers=numbers,
    )


_metadata = sa.MetaData()
_decisions = sa.Table(
    "gate_decisions",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),  # UTC, stored naive
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("champion_version", sa.Integer, nullable=True),
    sa.Column("challenger_version", sa.Integer, nullable=True),
    sa.Column("promote", sa.Boolean, nullable=False),
    sa.Column("record", sa.Text, nullable=False),  # GateDecision.record() as JSON
)


class GateStore:
    """Gate decisions on record, in ``<root>/gate_decisions.db`` beside the registry's alias history."""

    def __init__(self, root: Path, model_name: str = "fraud-detector") -> None:
        self.path = Path(root) / GATE_FILE
        self.model_name = model_name
        self._engine: sa.Engine | None = None

    def _db(self) -> sa.Engine:
        if self._engine is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(f"sqlite:///{self.path.as_posix()}")
            configure_sqlite(engine, synchronous="FULL")  # an audit record
            with write_transaction(engine) as connection:
                _metadata.create_all(connection)
            self._engine = engine
        return self._engine

    def add(self, decision: GateDecision) -> int:
        """Store ``decision``; returns its id (name it in the promotion's ``why``)."""
        with write_transaction(self._db()) as connection:
            result = connection.execute(
                _decisions.insert().values(
                    at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    model_name=self.model_name,
                    champion_version=decision.champion_version,
                    challenger_version=decision.challenger_version,
                    promote=decision.promote,
                    record=json.dumps(decision.record(), default=str, allow_nan=True),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def get(self, decision_id: int) -> dict[str, Any]:
        """A stored decision's record, with its ``id`` and ``at``."""
        with self._db().connect() as connection:
            row = connection.execute(sa.select(_decisions).where(_decisions.c.id == int(decision_id))).one_or_none()
        if row is None:
            raise LookupError(f"no gate decision {decision_id} in {self.path}")
        return {"id": row.id, "at": row.at.replace(tzinfo=dt.UTC).isoformat(), **json.loads(row.record)}

    def table(self) -> pd.DataFrame:
        """One row per stored decision, oldest first: id, at, versions, promote."""
        with self._db().connect() as connection:
            rows = connection.execute(
                sa.select(
                    _decisions.c.id,
                    _decisions.c.at,
                    _decisions.c.champion_version,
                    _decisions.c.challenger_version,
                    _decisions.c.promote,
                )
                .where(_decisions.c.model_name == self.model_name)
                .order_by(_decisions.c.id)
            ).all()
        return pd.DataFrame(
            [r._asdict() for r in rows], columns=["id", "at", "champion_version", "challenger_version", "promote"]
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def candidate_from_run(
    run: Any,
    rows: pd.DataFrame,
    *,
    name: str | None = None,
    version: int | None = None,
    latency_calls: int = 300,
    request_schema_version: str = "v1",
) -> Candidate:
    """A :class:`Candidate` from a :class:`~mlsys_lab.training.TrainedRun`: scores on ``rows``, CPU p99, size.

    For experiments and benchmarks on simulated data; :func:`mlsys_lab.maintenance.rollout.candidate_from_registry`
    builds one from a registered version (checksum verified) instead.
    """
    from mlsys_lab.training.selection import measure_latency

    features = tuple(run.config.features)
    X = np.ascontiguousarray(rows[list(features)].to_numpy(dtype=np.float64))
    scores = run.pipeline.predict_proba(X)[:, 1].astype(np.float64)
    latency = measure_latency(run.pipeline, X[: min(len(X), 500)], calls=latency_calls)
    return Candidate(
        name=name or run.config.name,
        scores=scores,
        threshold=float(run.threshold.threshold),
        trained_until_day=int(run.config.split.train_start_day + run.config.split.train_days),
        p99_cpu_ms=latency.p99_cpu_ms,
        artifact_bytes=int(run.artifact_bytes),
        request_schema_version=request_schema_version,
        features=features,
        version=version,
    )


def candidate_from_registry(
    registry: Any, ref: str | int, rows: pd.DataFrame, *, latency_calls: int = 300
) -> Candidate:
    """A :class:`Candidate` for a registered version: loaded through the registry's sha256 check, scored on ``rows``.

    A version whose artifact fails the check becomes a candidate with the refusal in
    ``checksum_error`` and no scores (NaN), so the gate refuses it and says why. What it knows
    (``trained_until_day``) comes from its training run's ``split.*`` parameters; a run
    without them is taken to know everything, so the ``unseen_days`` guardrail refuses it.
    """
    from mlsys_lab.training.artifact import IntegrityError
    from mlsys_lab.training.selection import measure_latency
    from mlsys_lab.training.tracking import Tracker

    info = registry.get(ref)
    params = Tracker(registry.settings).client.get_run(info.run_id).data.params
    if "split.train_start_day" in params and "split.train_days" in params:
        known_at = int(params["split.train_start_day"]) + int(params["split.train_days"])
    else:
        known_at = 10**9
    base = {
        "name": f"version {info.version}",
        "threshold": float(info.threshold),
        "trained_until_day": known_at,
        "request_schema_version": info.request_schema_version,
        "features": tuple(info.features),
        "version": int(info.version),
    }
    try:
        model = registry.load(info.version)
    except IntegrityError as exc:
        return Candidate(
            scores=np.full(len(rows), np.nan), p99_cpu_ms=math.inf, artifact_bytes=0, checksum_error=str(exc), **base
        )
    X = np.ascontiguousarray(rows[list(info.features)].to_numpy(dtype=np.float64))
    latency = measure_latency(model.pipeline, X[: min(len(X), 500)], calls=latency_calls)
    return Candidate(
        scores=model.score(X),
        p99_cpu_ms=latency.p99_cpu_ms,
        artifact_bytes=int(Path(info.artifact_path).stat().st_size),
        **base,
    )


def gate_rows(frame: pd.DataFrame, as_of_day: int, maturity_days: int, gate_days: int) -> pd.DataFrame:
    """The gate's rows: the ``gate_days`` newest mature days before ``as_of_day`` (labels as known then).

    Cards already reported as compromised before a day are not scored on it by
    :func:`~mlsys_lab.evaluate.card_precision_at_k` either way (it drops cards detected on earlier days).
    """
    end = as_of_day - maturity_days
    rows = frame[(frame["tx_time_days"] >= end - gate_days) & (frame["tx_time_days"] < end)]
    return rows.reset_index(drop=True)


def gate_against_champion(
    registry: Any,
    frame: pd.DataFrame,
    version: int,
    *,
    as_of_day: int,
    maturity_days: int,
    gate_days: int,
    k: int,
    config: GateConfig,
) -> GateDecision:
    """Judge registered ``version`` against the champion on the ``gate_days`` newest mature days of ``frame``.

    The one path from a decision log to a gate decision: ``mlsys-lab gate`` and the demo's loop call
    it. ``frame`` is :func:`~mlsys_lab.maintenance.retraining.training_frame` as of the
    start of ``as_of_day``; both versions are loaded through the registry's sha256 check and judged
    by :func:`evaluate_gate` with ``config``, on the features the service computes.

    Raises
    ------
    ValueError
        No mature day in ``frame`` to gate on.
    mlsys_lab.deployment.registry.RegistryError
        No champion, or no such version.
    """
    from mlsys_lab.data.online import OnlineFeatureState
    from mlsys_lab.deployment.registry import CHAMPION

    rows = gate_rows(frame, as_of_day, maturity_days, gate_days)
    if rows.empty:
        raise ValueError(f"no mature days before day {as_of_day - maturity_days} in the log: nothing to gate on")
    champion = candidate_from_registry(registry, CHAMPION, rows)
    challenger = candidate_from_registry(registry, version, rows)
    return evaluate_gate(
        rows, champion, challenger, k=k, config=config, served_features=OnlineFeatureState().feature_names
    )
