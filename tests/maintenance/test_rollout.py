"""Canary routing (sticky per card), the sample-ratio check, shadow scoring, the ladder and the watchdog's count."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.online import OnlineFeatureState
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import LoadedModel, ModelVersionInfo
from mlsys_lab.deployment.schemas import Transaction
from mlsys_lab.deployment.state import ServingState
from mlsys_lab.maintenance.rollout import (
    Ladder,
    RolloutStore,
    ServiceRollout,
    Watchdog,
    WatchdogConfig,
    card_bucket,
    routes_to_challenger,
    sample_ratio,
    shadow_report,
)

T0 = dt.datetime(2018, 5, 1, 10)
_ids = itertools.count(7_000_000)


def fake_model(version: int, threshold: float = 0.5) -> LoadedModel:
    """A fitted pipeline over the 15 features with a registry record, without a registry (no file is read)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(FEATURE_COLUMNS)))
    info = ModelVersionInfo(
        version=version,
        run_id="rollout-test",
        sha256="0" * 64,
        artifact_path=Path("/nonexistent/model.joblib"),
        features=FEATURE_COLUMNS,
        threshold=threshold,
        request_schema_version="v1",
        data_fingerprint="test",
        metrics={},
        created_at=dt.datetime.now(dt.UTC),
    )
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())]).fit(
        X, (X[:, 0] > 1).astype(int)
    )
    return LoadedModel(info=info, pipeline=pipeline)


def tx(customer: int, minutes: float) -> Transaction:
    return Transaction(
        transaction_id=next(_ids),
        customer_id=customer,
        terminal_id=customer % 17,
        tx_datetime=T0 + dt.timedelta(minutes=minutes),
        tx_amount=5.0 + customer % 40,
        schema_version="v1",
    )


def test_routing_is_sticky_per_card_and_monotone_in_the_share() -> None:
    cards = range(20_000)
    at5 = {c for c in cards if routes_to_challenger(c, 0.05)}
    at25 = {c for c in cards if routes_to_challenger(c, 0.25)}
    assert at5 <= at25, "a card on the canary at 5% must stay on it at 25%"
    assert abs(len(at5) / 20_000 - 0.05) < 0.006 and abs(len(at25) / 20_000 - 0.25) < 0.012
    assert all(routes_to_challenger(c, 0.05) == (c in at5) for c in range(0, 20_000, 97))  # same answer again
    other_salt = {c for c in cards if routes_to_challenger(c, 0.05, salt="other")}
    assert len(at5 & other_salt) < len(at5) / 2  # a new salt draws a new slice of cards
    assert routes_to_challenger(3, 1.0) and not routes_to_challenger(3, 0.0)
    assert 0.0 <= card_bucket(123) < 1.0


def test_sample_ratio_check() -> None:
    assert sample_ratio(250, 5_000, 0.05).ok
    assert not sample_ratio(400, 5_000, 0.05).ok  # 8 % routed where 5 % were asked for
    assert not sample_ratio(1, 10, 0.0).ok


def test_ladder() -> None:
    ladder = Ladder()
    assert [ladder.next_share(s) for s in (0.0, 0.01, 0.05, 0.25, 0.5, 1.0)] == [0.01, 0.05, 0.25, 0.5, 1.0, None]
    with pytest.raises(ValueError):
        Ladder(steps=(0.5, 0.1))


def _serving() -> ServingState:
    log = DecisionLog("sqlite://")
    log.create()
    return ServingState(log, OnlineFeatureState())


def test_canary_decides_by_card_and_logs_the_deciding_version(tmp_path: Path) -> None:
    champion, challenger = fake_model(version=1), fake_model(version=2, threshold=0.01)
    serving = _serving()
    store = RolloutStore(tmp_path)
    state = store.set("canary", 2, 0.25, who="test", why="canary step")
    serving.route = ServiceRollout(state=state, challenger=challenger, store=store).route
    for i, customer in enumerate(list(range(200)) * 3):
        serving.decide([tx(customer, minutes=i)], champion, time.perf_counter())
    batch = [tx(c, minutes=700 + c) for c in range(40)]  # a batch mixes cards: each row goes to its card's model
    serving.decide(batch, champion, time.perf_counter())
    logged = serving.log.decisions()
    per_card = logged.groupby("customer_id")["model_version"].agg(["nunique", "first"])
    assert (per_card["nunique"] == 1).all(), "a card switched models"
    expected = {c: 2 if routes_to_challenger(c, 0.25) else 1 for c in per_card.index}
    assert per_card["first"].to_dict() == expected
    on_challenger = logged[logged["model_version"] == 2]
    assert (on_challenger["threshold"] == 0.01).all() and (
        logged[logged["model_version"] == 1]["threshold"] == 0.5
    ).all()
    cards = per_card["first"]
    assert sample_ratio(int((cards == 2).sum()), len(cards), 0.25).ok


def test_shadow_scores_are_stored_and_answers_unchanged(tmp_path: Path) -> None:
    champion, challenger = fake_model(version=1), fake_model(version=2, threshold=0.2)
    serving = _serving()
    store = RolloutStore(tmp_path)
    state = store.set("shadow", 2, 0.0, who="test", why="shadow")
    serving.shadow = ServiceRollout(state=state, challenger=challenger, store=store).shadow
    answers = [serving.decide([tx(c, minutes=c)], champion, time.perf_counter())[0] for c in range(100)]
    assert {a.model_version for a in answers} == {1}
    shadow = store.shadow_frame()
    assert len(shadow) == 100 and set(shadow["shadow_version"]) == {2}
    np.testing.assert_allclose(shadow["served_score"], [a.score for a in answers])
    report = shadow_report(shadow, k=5)
    assert report["top_k_card_overlap"] == pytest.approx(1.0)  # the same pipeline ranks cards the same way
    assert report["alert_rate_ratio"] >= 1.0 and report["added_ms_p99"] >= report["added_ms_p50"] > 0


def test_a_failing_shadow_never_fails_a_request() -> None:
    serving = _serving()

    def broken(*_: Any) -> None:
        raise RuntimeError("shadow store is down")

    serving.shadow = broken
    assert serving.decide([tx(1, 0)], fake_model(version=1), time.perf_counter())[0].model_version == 1


class RecordingRegistry:
    """The one registry call the watchdog makes, recorded (the end-to-end test uses the real registry)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def rollback(self, *, who: str, why: str) -> int:
        self.calls.append({"who": who, "why": why})
        return 1


def _window(version: int, alert_rate: float, n: int = 400, latency_ms: float = 2.0) -> pd.DataFrame:
    alerts = np.zeros(n, dtype=bool)
    alerts[: round(alert_rate * n)] = True
    return pd.DataFrame({"model_version": version, "decision": alerts, "latency_ms": latency_ms})


def test_watchdog_rolls_back_after_n_consecutive_failures_only(tmp_path: Path) -> None:
    registry = RecordingRegistry()
    dog = Watchdog(registry, RolloutStore(tmp_path), version=2, reference_alert_rate=0.01, promoted=True)  # type: ignore[arg-type]
    dog.observe(_window(2, 0.05))  # five times the alerts: one noisy window
    dog.observe(_window(2, 0.01))  # recovered: the count starts again
    dog.observe(_window(2, 0.05))
    dog.observe(_window(2, 0.05))
    assert registry.calls == [] and not dog.acted
    dog.observe(_window(2, 0.05))
    assert len(registry.calls) == 1 and registry.calls[0]["who"] == "watchdog"
    assert "alert rate" in registry.calls[0]["why"] and "3 consecutive" in registry.calls[0]["why"]
    dog.observe(_window(2, 0.05))
    assert len(registry.calls) == 1, "the watchdog acts once"
    assert dog.store.current().mode == "off"


def test_watchdog_leaves_a_healthy_or_too_small_window_alone(tmp_path: Path) -> None:
    registry = RecordingRegistry()
    config = WatchdogConfig(failures=2)
    dog = Watchdog(registry, RolloutStore(tmp_path), 2, 0.01, promoted=False, config=config)  # type: ignore[arg-type]
    for _ in range(5):
        dog.observe(_window(2, 0.012))
        dog.observe(_window(2, 0.5, n=10))  # too few decisions to judge
    assert registry.calls == [] and not dog.acted
    slow = replace(config, max_p99_ms=1.0)
    dog = Watchdog(registry, RolloutStore(tmp_path / "b"), 2, 0.01, promoted=False, config=slow)  # type: ignore[arg-type]
    dog.observe(_window(2, 0.01))
    dog.observe(_window(2, 0.01))
    assert "switched the canary" in dog.acted and "p99" in dog.acted and registry.calls == []
