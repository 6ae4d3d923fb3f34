"""Shadow, canary and automatic rollback: how a challenger that passed the gate meets real traffic.

Shadow
    The service scores every request with the challenger too, answers with the champion's decision
    only, and writes the shadow score, version and the time shadow scoring added to the request to
    this module's own table (``shadow_scores`` in ``<tracking root>/rollout.db``; the decision log
    belongs to the deployment layer and is not changed). :func:`shadow_report` compares the two.

Canary, sticky per card
    A share of the traffic goes to the challenger by a **stable hash of the card id**
    (:func:`card_bucket`: sha256 of ``salt:card``, as a number in [0, 1)); a card goes to the
    challenger when its bucket is below the share. The same card always gets the same model, so a
    customer never sees two models' decisions in one session, and a card on the canary at 5 % stays on
    it at 25 % (the buckets do not move when the share grows). Random routing per request would mix
    models within a card, and make per-card metrics meaningless. The share climbs a :class:`Ladder`
    (1 → 5 → 25 → 50 → 100 %) with a hold per step; :func:`sample_ratio` checks that the routed
    counts match the share (a sample-ratio mismatch means routing or logging is broken, and every
    comparison built on it is biased). Every decision in the log carries the version that made it
    (``decisions.model_version``), so the canary's decisions are on record like the champion's.

How the service follows
    :class:`RolloutStore` holds the rollout's state (mode, challenger version, share, salt) as a
    history of moves, newest first wins. Each worker of the service reads it on its alias-following
    timer (:func:`attach_rollout`, called by :func:`mlsys_lab.deployment.service.follow_rollout`),
    loads the challenger through the registry (sha256 first) and attaches a router or a shadow scorer
    to its :class:`~mlsys_lab.deployment.state.ServingState`. No restart.

The watchdog
    :class:`Watchdog` evaluates guardrails on each sliding window of decisions (:func:`window_check`:
    alert rate against a reference, p99 latency, the 5xx ratio when a count is given) and, after
    ``failures`` consecutive failing windows (one noisy window is not a breach), acts: it moves the
    ``champion`` alias back (``Registry.rollback`` with who = ``"watchdog"`` and the reasons) when the
    challenger was promoted, or switches the canary off when it was still on a share. Services follow
    the alias without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from scipy import stats

from mlsys_lab.deployment.decision_log import configure_sqlite, write_transaction

if TYPE_CHECKING:
    from mlsys_lab.deployment.deps import Service
    from mlsys_lab.deployment.registry import LoadedModel, Registry
    from mlsys_lab.deployment.state import Scored

__all__ = [
    "LADDER",
    "MODES",
    "ROLLOUT_FILE",
    "Ladder",
    "RolloutState",
    "RolloutStore",
    "SampleRatio",
    "ServiceRollout",
    "Watchdog",
    "WatchdogConfig",
    "WindowCheck",
    "attach_rollout",
    "card_bucket",
    "routes_to_challenger",
    "sample_ratio",
    "shadow_report",
    "window_check",
]

logger = logging.getLogger(__name__)

#: The rollout's SQLite file, under the tracking root.
ROLLOUT_FILE = "rollout.db"
#: The canary's shares, in order.
LADDER: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 1.0)
#: Rollout modes: nothing, shadow scoring, or a canary share.
MODES = ("off", "shadow", "canary")


def card_bucket(card_id: int, salt: str = "canary") -> float:
    """A card's stable place in [0, 1): the first 8 bytes of sha256(``salt:card``) over 2**64.

    The same card and salt give the same number in every process and on every machine (Python's own
    ``hash`` is salted per process, so it would route a card differently in each worker).

    Examples
    --------
    >>> card_bucket(42) == card_bucket(42), 0.0 <= card_bucket(42) < 1.0
    (True, True)
    """
    digest = hashlib.sha256(f"{salt}:{int(card_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def routes_to_challenger(card_id: int, share: float, salt: str = "canary") -> bool:
    """Whether the canary at ``share`` sends this card to the challenger (sticky, and monotone in ``share``)."""
    return card_bucket(card_id, salt) < share


@dataclass(frozen=True)
class Ladder:
    """The canary's steps and how many clean windows each step holds before the next."""

    steps: tuple[float, ...] = LADDER
    hold_windows: int = 3

    def __post_init__(self) -> None:
        if not self.steps or list(self.steps) != sorted(self.steps) or not 0 < self.steps[0] <= self.steps[-1] <= 1:
            raise ValueError(f"ladder steps must increase within (0, 1], got {self.steps}")
        if self.hold_windows < 1:
            raise ValueError(f"hold_windows must be at least 1, got {self.hold_windows}")

    def next_share(self, share: float) -> float | None:
        """The step after ``share`` (the first step from 0), or None at the top."""
        for step in self.steps:
            if step > share + 1e-12:
                return step
        return None


@dataclass(frozen=True)
class SampleRatio:
    """Routed counts against the share: the binomial test's p-value, and whether it passes at ``alpha``."""

    expected_share: float
    observed_share: float
    n_challenger: int
    n_total: int
    p_value: float
    ok: bool


def sample_ratio(n_challenger: int, n_total: int, share: float, *, alpha: float = 0.001) -> SampleRatio:
    """A sample-ratio check: is ``n_challenger`` of ``n_total`` consistent with routing ``share`` of the traffic?

    Counted in cards when routing is by card (requests of one card are not independent draws).
    ``alpha`` is small on purpose (a mismatch means a broken pipeline, and the check runs often).

    Examples
    --------
    >>> sample_ratio(50, 1000, 0.05).ok, sample_ratio(120, 1000, 0.05).ok
    (True, False)
    """
    if n_total <= 0:
        return SampleRatio(share, math.nan, n_challenger, n_total, 1.0, True)
    if share in (0.0, 1.0):
        ok = n_challenger == (0 if share == 0.0 else n_total)
        return SampleRatio(share, n_challenger / n_total, n_challenger, n_total, 1.0 if ok else 0.0, ok)
    p_value = float(stats.binomtest(int(n_challenger), int(n_total), share).pvalue)
    return SampleRatio(share, n_challenger / n_total, int(n_challenger), int(n_total), p_value, p_value >= alpha)


@dataclass(frozen=True)
class RolloutState:
    """The rollout now: ``mode`` (``off``, ``shadow``, ``canary``), the challenger, its share and the hash salt."""

    mode: str = "off"
    challenger_version: int | None = None
    share: float = 0.0
    salt: str = "canary"
    who: str = ""
    why: str = ""
    at: dt.datetime | None = None


_metadata = sa.MetaData()
_moves = sa.Table(
    "rollout_moves",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),  # UTC, stored naive
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("challenger_version", sa.Integer, nullable=True),
    sa.Column("share", sa.Double, nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("who", sa.String(256), nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)
_shadow = sa.Table(
    "shadow_scores",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("transaction_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("customer_id", sa.BigInteger, nullable=False),
    sa.Column("tx_datetime", sa.DateTime, nullable=False),
    sa.Column("served_version", sa.Integer, nullable=False),
    sa.Column("served_score", sa.Double, nullable=False),
    sa.Column("served_decision", sa.Boolean, nullable=False),
    sa.Column("shadow_version", sa.Integer, nullable=False),
    sa.Column("shadow_score", sa.Double, nullable=False),
    sa.Column("shadow_decision", sa.Boolean, nullable=False),
    sa.Column("added_ms", sa.Double, nullable=False),  # what shadow scoring added to the request
)


class RolloutStore:
    """The rollout's state (a history of moves) and the shadow scores, in ``<root>/rollout.db``."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / ROLLOUT_FILE
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    def _db(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(f"sqlite:///{self.path.as_posix()}")
                configure_sqlite(engine)
                with write_transaction(engine) as connection:
                    _metadata.create_all(connection)
                self._engine = engine
            return self._engine

    def set(
        self, mode: str, challenger_version: int | None, share: float, *, who: str, why: str, salt: str = "canary"
    ) -> RolloutState:
        """Record a move (``mode``, version, share); services pick it up on their next tick."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if mode != "off" and challenger_version is None:
            raise ValueError(f"mode {mode!r} needs a challenger version")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {share}")
        if not who or not why:
            raise ValueError("a rollout move needs who and why")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with write_transaction(self._db()) as connection:
            connection.execute(
                _moves.insert().values(
                    at=now, mode=mode, challenger_version=challenger_version, share=share, salt=salt, who=who, why=why
                )
            )
        logger.info("rollout: %s version %s at %.0f%% (%s: %s)", mode, challenger_version, share * 100, who, why)
        return RolloutState(mode, challenger_version, share, salt, who, why, now.replace(tzinfo=dt.UTC))

    def current(self) -> RolloutState:
        """The newest move (``off`` when there is none)."""
        with self._db().connect() as connection:
            row = connection.execute(sa.select(_moves).order_by(_moves.c.id.desc()).limit(1)).one_or_none()
        if row is None:
            return RolloutState()
        return RolloutState(
            row.mode,
            row.challenger_version,
            float(row.share),
            row.salt,
            row.who,
            row.why,
            row.at.replace(tzinfo=dt.UTC),
        )

    def history(self) -> pd.DataFrame:
        """Every move, oldest first."""
        with self._db().connect() as connection:
            rows = connection.execute(sa.select(_moves).order_by(_moves.c.id)).all()
        return pd.DataFrame([r._asdict() for r in rows], columns=[c.name for c in _moves.columns])

    def add_shadow(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store shadow scores (one committed write per request)."""
        if rows:
            with write_transaction(self._db()) as connection:
                connection.execute(_shadow.insert(), list(rows))

    def shadow_frame(self) -> pd.DataFrame:
        """Every shadow score, in id order."""
        with self._db().connect() as connection:
            rows = connection.execute(sa.select(_shadow).order_by(_shadow.c.id)).all()
        frame = pd.DataFrame([r._asdict() for r in rows], columns=[c.name for c in _shadow.columns])
        frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"])
        return frame

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


@dataclass
class ServiceRollout:
    """What a service worker attaches for a rollout: the challenger, the state, and the store for shadow scores."""

    state: RolloutState
    challenger: LoadedModel
    store: RolloutStore

    def route(self, transaction: Any) -> LoadedModel | None:
        """The canary's choice for one transaction: the challenger for cards under the share, else None."""
        if self.state.mode == "canary" and routes_to_challenger(
            transaction.customer_id, self.state.share, self.state.salt
        ):
            return self.challenger
        return None

    def shadow(self, decided: Sequence[Scored], rows: np.ndarray) -> None:
        """Score the decided rows with the challenger too and store it; the answers are not changed."""
        started = time.perf_counter()
        scores = self.challenger.score(rows)
        threshold = float(self.challenger.threshold)
        added_ms = (time.perf_counter() - started) * 1000
        self.store.add_shadow(
            [
                {
                    "transaction_id": s.transaction.transaction_id,
                    "customer_id": s.transaction.customer_id,
                    "tx_datetime": s.transaction.tx_datetime.replace(tzinfo=None),
                    "served_version": s.model_version,
                    "served_score": s.score,
                    "served_decision": s.decision,
                    "shadow_version": self.challenger.info.version,
                    "shadow_score": float(score),
                    "shadow_decision": bool(score >= threshold),
                    "added_ms": (time.perf_counter() - started) * 1000 if i == 0 else added_ms,
                }
                for i, (s, score) in enumerate(zip(decided, scores.tolist(), strict=True))
            ]
        )


def attach_rollout(service: Service) -> ServiceRollout | None:
    """Make ``service``'s feature state follow the rollout store: attach or detach the router and shadow scorer.

    The challenger is loaded through the registry (sha256 check, probe) only when the state names a
    new version; a refused challenger leaves the service serving its champion alone.
    """
    from mlsys_lab.deployment.registry import Registry
    from mlsys_lab.deployment.state import check_model

    serving = service.serving
    if serving is None:
        return None
    attached = getattr(serving.route or serving.shadow, "__self__", None)
    store = attached.store if isinstance(attached, ServiceRollout) else RolloutStore(service.settings.tracking.root)
    state = store.current() if store.path.exists() else RolloutState()
    if state.mode == "off":
        serving.route = serving.shadow = None
        store.close()
        return None
    if isinstance(attached, ServiceRollout) and attached.challenger.info.version == state.challenger_version:
        attached.state = state  # a new share or mode for the same challenger
        rollout = attached
    else:
        if service.registry is None:
            service.registry = Registry(service.settings.tracking)
        assert state.challenger_version is not None
        challenger = service.registry.load(state.challenger_version)  # sha256 first; a refusal propagates
        check_model(challenger, serving.feature_names)
        rollout = ServiceRollout(state=state, challenger=challenger, store=store)
    serving.route = rollout.route if state.mode == "canary" else None
    serving.shadow = rollout.shadow if state.mode == "shadow" else None
    return rollout


def shadow_report(shadow: pd.DataFrame, *, k: int) -> dict[str, float]:
    """Shadow against served: score drift (PSI on the served scores' deciles), top-k card overlap per day,
    alert-rate ratio, and the latency shadow scoring added (p50, p99 ms)."""
    from mlsys_lab.monitoring.drift import psi

    if shadow.empty:
        raise ValueError("no shadow scores yet: put a challenger in shadow and send traffic")
    day = shadow["tx_datetime"].dt.floor("D")
    overlaps = []
    for _, rows in shadow.groupby(day):
        served = set(rows.groupby("customer_id")["served_score"].max().nlargest(k).index)
        ours = set(rows.groupby("customer_id")["shadow_score"].max().nlargest(k).index)
        overlaps.append(len(served & ours) / max(1, min(k, len(served))))
    served_rate = float(shadow["served_decision"].mean())
    return {
        "transactions": float(len(shadow)),
        "score_psi": float(psi(shadow["served_score"].to_numpy(), shadow["shadow_score"].to_numpy())),
        "top_k_card_overlap": float(np.mean(overlaps)),
        "alert_rate_ratio": (float(shadow["shadow_decision"].mean()) + 1e-9) / (served_rate + 1e-9),
        "added_ms_p50": float(np.percentile(shadow["added_ms"], 50)),
        "added_ms_p99": float(np.percentile(shadow["added_ms"], 99)),
    }


@dataclass(frozen=True)
class WatchdogConfig:
    """Guardrails per window and how many consecutive failing windows trigger a rollback."""

    max_alert_rate_ratio: float = 2.0
    max_p99_ms: float = 50.0
    max_error_ratio: float = 0.001
    min_decisions: int = 50
    failures: int = 3


@dataclass(frozen=True)
class WindowCheck:
    """One window's verdict for the watched version: its numbers and the guardrails it broke."""

    decisions: int
    alert_rate: float
    reference_alert_rate: float
    alert_rate_ratio: float
    p99_ms: float
    error_ratio: float
    reasons: tuple[str, ...] = ()
    judged: bool = True

    @property
    def passed(self) -> bool:
        return not self.reasons


def window_check(
    window: pd.DataFrame,
    version: int,
    reference_alert_rate: float,
    config: WatchdogConfig,
    *,
    requests: int = 0,
    errors: int = 0,
) -> WindowCheck:
    """Guardrails on one window of decisions (``model_version``, ``decision``, ``latency_ms``) of ``version``.

    The alert rate is compared with ``reference_alert_rate`` (the champion's in the same window during
    a canary, the previous champion's before a promotion); the latency is the window's p99 of the
    logged in-process latency; ``errors``/``requests`` the 5xx ratio when the caller counts them. A
    window with fewer than ``min_decisions`` decisions is not judged (it neither passes nor fails).
    """
    ours = window[window["model_version"] == version]
    n = len(ours)
    if n < config.min_decisions:
        return WindowCheck(n, math.nan, reference_alert_rate, math.nan, math.nan, 0.0, (), judged=False)
    rate = float(ours["decision"].mean())
    # Add one alert's worth to each side: a reference with no alert in a window does not make any alert a breach.
    ratio = (rate + 1.0 / n) / (reference_alert_rate + 1.0 / n)
    p99 = float(np.percentile(ours["latency_ms"], 99))
    error_ratio = errors / requests if requests else 0.0
    reasons = []
    if ratio > config.max_alert_rate_ratio:
        reasons.append(
            f"alert rate {rate:.2%} is {ratio:.1f}x the reference {reference_alert_rate:.2%} "
            f"(limit {config.max_alert_rate_ratio:g}x)"
        )
    if p99 > config.max_p99_ms:
        reasons.append(f"p99 latency {p99:.1f} ms over {config.max_p99_ms:g} ms")
    if error_ratio > config.max_error_ratio:
        reasons.append(f"5xx ratio {error_ratio:.3%} over {config.max_error_ratio:.3%}")
    return WindowCheck(n, rate, reference_alert_rate, ratio, p99, error_ratio, tuple(reasons))


@dataclass
class Watchdog:
    """Counts consecutive failing windows of ``version`` and rolls back after ``config.failures`` of them.

    ``promoted``: the watched version is the champion now (roll the alias back); otherwise it is on a
    canary share (switch the canary off). ``history`` keeps every window's check.
    """

    registry: Registry
    store: RolloutStore
    version: int
    reference_alert_rate: float
    promoted: bool
    config: WatchdogConfig = field(default_factory=WatchdogConfig)
    consecutive: int = 0
    acted: str = ""
    history: list[WindowCheck] = field(default_factory=list)

    def observe(self, window: pd.DataFrame, *, requests: int = 0, errors: int = 0) -> WindowCheck:
        """Judge one window; after ``failures`` consecutive failures, act once (``acted`` says what was done)."""
        check = window_check(
            window, self.version, self.reference_alert_rate, self.config, requests=requests, errors=errors
        )
        self.history.append(check)
        if not check.judged:
            return check
        self.consecutive = 0 if check.passed else self.consecutive + 1
        if self.consecutive >= self.config.failures and not self.acted:
            why = f"{self.consecutive} consecutive failing windows: " + "; ".join(check.reasons)
            if self.promoted:
                back = self.registry.rollback(who="watchdog", why=why)
                self.acted = f"rolled champion back from version {self.version} to {back}: {why}"
            else:
                self.acted = f"switched the canary of version {self.version} off: {why}"
            self.store.set("off", None, 0.0, who="watchdog", why=why)
            logger.warning("watchdog: %s", self.acted)
        return check
