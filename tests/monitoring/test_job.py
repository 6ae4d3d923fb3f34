"""``mlsys-lab monitor`` over a real SQLite decision log, written through the log's own methods.

The log holds what the service would have logged for a tiny simulation scored by a logistic
regression: features, score, decision, latency, and the fraud labels with the times they became
known. What each test catches: a job that ignores the drift (amounts inflated by 2x from day 47:
no alert, exit 0), one that pages on a drift-free log (exit 1), one that uses labels not yet known
at the report time (coverage and known frauds change with ``--as-of``), and a CLI that hides a
bad argument behind a traceback.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from mlsys_lab.cli import app
from mlsys_lab.data import preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS, build_features
from mlsys_lab.data.simulator import AmountInflation
from mlsys_lab.deployment.decision_log import Decision, DecisionLog
from mlsys_lab.monitoring.cli import ALERT_EXIT_CODE
from mlsys_lab.monitoring.job import monitor_log

pytestmark = pytest.mark.slow  # one `small` simulation scored and logged per fixture (about 10 s each)

ORIGIN = pd.Timestamp("2018-04-01")
DAYS = 52
DRIFT_DAY = 47
#: The log starts here: the 30-day windows and the 7-day label delay are warm by then.
FIRST_DAY = 38


def write_log(path: Path, *, drift: bool) -> str:
    """A decision log for days FIRST_DAY..DAYS-1 of a `small` simulation (the days before feed the windows)."""
    events = (AmountInflation(start_day=DRIFT_DAY, factor=2.0),) if drift else ()
    tx = simulate(preset("small", random_state=3, n_days=DAYS, drift=events)).transactions
    features = build_features(tx)
    frame = tx.join(features.drop(columns=features.columns.intersection(tx.columns)))
    frame = frame[frame["tx_time_days"] >= FIRST_DAY].reset_index(drop=True)
    train = frame[frame["tx_time_days"] < FIRST_DAY + 7]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(train[list(FEATURE_COLUMNS)], train["tx_fraud"])
    scores = model.predict_proba(frame[list(FEATURE_COLUMNS)])[:, 1]
    threshold = float(np.quantile(scores, 0.99))
    rng = np.random.default_rng(0)
    decided = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    decisions = [
        Decision(
            request_id=f"r{row.transaction_id}",
            decided_at=decided,
            transaction_id=int(row.transaction_id),
            customer_id=int(row.customer_id),
            terminal_id=int(row.terminal_id),
            tx_datetime=row.tx_datetime,
            tx_amount=float(row.tx_amount),
            model_version=1,
            features={name: float(getattr(row, name)) for name in FEATURE_COLUMNS},
            score=float(score),
            decision=bool(score >= threshold),
            threshold=threshold,
            latency_ms=float(rng.gamma(2.0, 2.0)),
        )
        for row, score in zip(frame.itertuples(index=False), scores, strict=True)
    ]
    url = f"sqlite:///{path}"
    log = DecisionLog(url)
    log.create()
    log.record_many(decisions)
    for row in frame[frame["tx_fraud"] == 1].itertuples(index=False):
        log.record_label(
            int(row.transaction_id), True, (ORIGIN + pd.Timedelta(seconds=row.tx_label_seconds)).to_pydatetime()
        )
    log.close()
    return url


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("monitor") / "drifted.db"
    write_log(path, drift=True)
    return path


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("monitor") / "control.db"
    write_log(path, drift=False)
    return path


def test_amount_inflation_fires_feature_drift_after_the_event_and_the_cli_exits_non_zero(drifted, tmp_path):
    result = CliRunner().invoke(app, ["monitor", str(drifted), "--out", str(tmp_path)])
    assert result.exit_code == ALERT_EXIT_CODE, f"an alert should fire and exit {ALERT_EXIT_CODE}: {result.output}"
    alerts = pd.read_csv(tmp_path / "alerts.csv", parse_dates=["fired_at"])
    drift = alerts[alerts["rule"] == "feature drift"]
    assert not drift.empty, f"no feature-drift alert on amounts inflated 2x: {alerts}"
    first = drift["fired_at"].min()
    assert ORIGIN + pd.Timedelta(days=DRIFT_DAY) <= first <= ORIGIN + pd.Timedelta(days=DRIFT_DAY + 3), (
        f"feature drift should fire within 3 days of day {DRIFT_DAY} and not before, fired at {first}"
    )
    metrics = pd.read_csv(tmp_path / "metrics.csv", index_col="day")
    assert {"drifting_features", "score_drift", "known_recall", "label_coverage", "latency_p99_ms"} <= set(
        metrics.columns
    )


def test_a_drift_free_log_pages_nobody(control, tmp_path):
    result = CliRunner().invoke(app, ["monitor", str(control), "--out", str(tmp_path)])
    assert result.exit_code == 0, f"a drift-free log raised an alert: {result.output}"
    assert "no alert fired" in result.output


def test_performance_uses_only_labels_known_at_the_report_time(control):
    early = monitor_log(f"sqlite:///{control}", as_of=ORIGIN + pd.Timedelta(days=DAYS)).metrics
    late = monitor_log(f"sqlite:///{control}", as_of=ORIGIN + pd.Timedelta(days=DAYS + 60)).metrics
    # Only fraud labels were sent: coverage is the share of frauds known, which grows as they mature.
    last_day = early.index.max()
    assert early.loc[last_day, "known_frauds"] < late.loc[last_day, "known_frauds"], (
        "the last day's frauds cannot all be known at the end of that day; the job used later labels"
    )
    assert (early["label_coverage"] <= late["label_coverage"]).all()


def test_a_missing_log_is_a_clear_error_not_a_traceback(tmp_path):
    result = CliRunner().invoke(app, ["monitor", str(tmp_path / "nope.db")])
    assert result.exit_code == 2 and "no decision log" in result.output, result.output


def test_a_bad_date_names_the_option_to_fix(control):
    result = CliRunner().invoke(app, ["monitor", str(control), "--since", "last tuesday"])
    assert result.exit_code == 2, result.output
    assert "--since" in result.output and "2018-05-20" in result.output, result.output


def test_a_bug_inside_the_job_is_not_reported_as_a_bad_argument(control, monkeypatch):
    # Only the job's own input errors are usage errors; any other ValueError is a bug and must surface.
    def broken(*args, **kwargs):
        raise ValueError("a bug deep inside the job")

    monkeypatch.setattr("mlsys_lab.monitoring.job.evaluate_rules", broken)
    result = CliRunner().invoke(app, ["monitor", str(control)])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError), result.output
    assert "Invalid value" not in result.output, result.output


def test_the_decisions_since_a_time_are_exactly_the_logs_rows_from_then_on(control):
    log = DecisionLog(f"sqlite:///{control}")
    try:
        since = ORIGIN + pd.Timedelta(days=FIRST_DAY + 2, hours=12)
        everything = log.decisions(with_features=True)
        recent = log.decisions(with_features=True, since=since)
    finally:
        log.close()
    expected = everything[everything["tx_datetime"] >= since].reset_index(drop=True)
    assert 0 < len(recent) < len(everything), "the read must leave out the days before `since`, and only them"
    pd.testing.assert_frame_equal(recent, expected)


def test_reading_from_the_first_reference_day_gives_the_table_of_a_whole_log_read(control):
    # The demo's production monitor reads only the loop's days (read_from) instead of reading the
    # whole log and skipping the replay (skip_days): the same days, so the same numbers and alerts.
    url = f"sqlite:///{control}"
    skipped = monitor_log(url, reference_days=7, skip_days=3)
    read = monitor_log(url, reference_days=7, read_from=ORIGIN + pd.Timedelta(days=FIRST_DAY + 3))
    assert read.reference_days == skipped.reference_days == (FIRST_DAY + 3, FIRST_DAY + 9)
    pd.testing.assert_frame_equal(read.metrics, skipped.metrics)
    pd.testing.assert_frame_equal(read.alerts, skipped.alerts)
    assert read.as_of == skipped.as_of
    assert read.reference_recall == skipped.reference_recall or (
        np.isnan(read.reference_recall) and np.isnan(skipped.reference_recall)
    )


def test_reading_from_after_the_log_ends_names_the_problem(control):
    with pytest.raises(ValueError, match="no decisions on or after 2030-01-01"):
        monitor_log(f"sqlite:///{control}", read_from="2030-01-01")


def test_the_cli_reads_from_a_date_and_gives_the_table_of_a_whole_log_read(control, tmp_path):
    # `mlsys-lab monitor --read-from` is monitor_log(read_from=): the same days as --skip-days, the same CSVs.
    first_read = (ORIGIN + pd.Timedelta(days=FIRST_DAY + 3)).date().isoformat()
    runner = CliRunner()
    skipped = runner.invoke(app, ["monitor", str(control), "--skip-days", "3", "--out", str(tmp_path / "skip")])
    read = runner.invoke(app, ["monitor", str(control), "--read-from", first_read, "--out", str(tmp_path / "read")])
    assert skipped.exit_code == read.exit_code == 0, f"{skipped.output}\n{read.output}"
    for name in ("metrics.csv", "alerts.csv"):
        expected, got = (tmp_path / "skip" / name).read_text(), (tmp_path / "read" / name).read_text()
        assert got == expected, f"--read-from {first_read} and --skip-days 3 should write the same {name}"
    monitored = pd.read_csv(tmp_path / "read" / "metrics.csv", index_col="day")
    assert monitored.index.min() > first_read, "the reference days are not monitored days: the table starts later"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("last tuesday", "2018-05-20"), ("2030-01-01", "no decisions on or after 2030-01-01")],
    ids=["not a date", "after the log ends"],
)
def test_a_bad_read_from_names_the_option_to_fix(control, value, expected):
    result = CliRunner().invoke(app, ["monitor", str(control), "--read-from", value])
    assert result.exit_code == 2, result.output
    assert "--read-from" in result.output and expected in result.output, result.output
