"""Tests of the main job (make demo) and the mlsys-lab command line, run as a user runs them.

The main job runs once here (``demo_run``): ``mlsys-lab demo`` in a process of its own, whose output
and exit code the CLI test reads, and whose report (what ``run_demo`` returned inside that process)
the other tests read. It is the job `make demo` runs, with a latency budget no machine misses.
"""

import os
import pickle
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlsys_lab.demo import DEMO_CONSTRAINTS, HISTORY_DAYS, DemoReport, run_demo, with_latency_budget
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import LOOPBACK, free_port
from mlsys_lab.maintenance.gate import GateStore
from mlsys_lab.maintenance.rollout import RolloutStore, routes_to_challenger
from mlsys_lab.report import format_report, tradeoff_columns
from mlsys_lab.training import TrackingSettings, runs_table, select_model
from mlsys_lab.training.prequential import validation_splits

#: A latency budget no machine misses: what these tests check must not depend on how busy it is
#: (whether the default 5 ms budget holds under load is the training layer's test).
ANY_SPEED = with_latency_budget(DEMO_CONSTRAINTS, 1e6)
#: The same rule preferring the smallest artifact: its choice depends on nothing timed, so two runs must agree.
BY_SIZE = replace(ANY_SPEED, prefer=("artifact_mb",))
#: The trade-off table's columns that decide the selection and are not timings.
DECIDING = ["val_ap_mean", "val_ap_std", "test_ap", "test_cp_at_k", "threshold", "test_daily_cost", "artifact_mb"]

CLI = Path(sys.executable).with_name("mlsys-lab")


def assert_nothing_listens(url: str) -> None:
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


#: ``mlsys-lab demo`` as its console script runs it (``cli.app``), with ``run_demo`` wrapped to pickle the
#: report it returns to ``argv[1]``: the command's own code path, unchanged, in a process of its own.
KEEP_THE_REPORT = """
import pickle
import sys

from mlsys_lab import cli, demo

run_demo = demo.run_demo


def keep_the_report(*args, **kwargs):
    report = run_demo(*args, **kwargs)
    with open(sys.argv[1], "wb") as out:
        pickle.dump(report, out)
    return report


demo.run_demo = keep_the_report
cli.app(args=sys.argv[2:], prog_name="mlsys-lab")
"""


@dataclass(frozen=True)
class DemoRun:
    """One run of ``mlsys-lab demo``: what it printed, its exit code, the folder it ran in, its report."""

    result: subprocess.CompletedProcess[str]
    cwd: Path
    report: DemoReport | None


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    # The default preset (small), as `make demo` runs it, with a latency budget no machine misses: whether
    # something deploys must not depend on machine load here. small, not tiny: tiny's 30 days leave no room
    # for validation folds (so nothing registrable) and only a handful of test frauds.
    cwd = tmp_path_factory.mktemp("demo-cwd")
    kept = tmp_path_factory.mktemp("demo-report") / "report.pickle"
    env = {**os.environ, "MLSYS_LAB_TRACKING_DIR": str(cwd / "runs")}
    result = subprocess.run(
        [sys.executable, "-c", KEEP_THE_REPORT, str(kept), "demo", "--latency-budget-ms", "1000000"],
        capture_output=True, text=True, timeout=1800, cwd=cwd, env=env, check=False,
    )  # fmt: skip
    report = pickle.loads(kept.read_bytes()) if kept.is_file() else None
    return DemoRun(result=result, cwd=cwd, report=report)


@pytest.fixture(scope="module")
def small_report(demo_run: DemoRun) -> DemoReport:
    """The report of the demo run, deployment and the maintenance loop included."""
    assert demo_run.report is not None, (
        f"`mlsys-lab demo` exited {demo_run.result.returncode} without a report:\n{demo_run.result.stderr[-3000:]}"
    )
    return demo_run.report


@pytest.fixture(scope="module")
def tracking(small_report: DemoReport) -> TrackingSettings:
    """Where the demo run recorded its runs, registry and rollouts."""
    return small_report.tracking


@pytest.mark.slow  # trains and measures the candidate grid (about 10-25 s)
def test_demo_shows_the_accuracy_trap(small_report):
    metrics = small_report.metrics
    trivial = metrics.loc["always legitimate"]
    baseline = metrics.loc["baseline (amount and calendar)"]
    model = metrics.loc["logistic regression, 15 features"]
    test_fraud_share = 1 - trivial["accuracy"]
    # Never saying fraud is right on every genuine row and catches nothing.
    assert trivial["recall"] == 0.0
    assert 0 < test_fraud_share < 0.05
    # The baseline is barely more accurate, but ranks frauds far better than a constant.
    assert abs(baseline["accuracy"] - trivial["accuracy"]) < 0.02
    assert baseline["average_precision"] > 2 * trivial["average_precision"]
    # The point-in-time features are what make the model useful.
    assert model["average_precision"] > baseline["average_precision"]


@pytest.mark.slow  # trains and measures the candidate grid (about 10-25 s)
def test_demo_trains_on_the_past_and_tests_on_the_future(small_report):
    split = small_report.split
    assert split.end_day == small_report.config.n_days
    assert split.train_start_day + split.train_days + split.delay_days == split.test_start_day


@pytest.mark.slow  # trains and measures the candidate grid (about 10-25 s)
def test_demo_validates_the_feed_before_using_it(small_report):
    validation = small_report.validation.set_index("fault")
    faulted = validation.drop(index="clean")
    assert faulted["injected"].sum() > 0
    assert (faulted["recall"] == 1.0).all(), "every injected fault must be quarantined"
    assert validation.loc["clean", "caught"] == 0, "no clean row may be quarantined"
    assert small_report.quarantine_rules["rows"].sum() >= faulted["injected"].sum()


@pytest.mark.slow  # trains and measures the candidate grid (about 10-25 s)
def test_demo_summary_counts_frauds_per_scenario(small_report):
    assert sum(small_report.frauds_per_scenario.values()) == small_report.data_summary["frauds"]
    text = format_report(small_report)
    assert "accuracy trap" in text and "S2 compromised terminal" in text


@pytest.mark.slow  # trains and measures the candidate grid (about 10-25 s)
def test_demo_names_a_chosen_model_that_meets_its_constraints(small_report):
    table, selection = small_report.tradeoff, small_report.selection
    assert set(table["family"]) == {"logistic_regression", "decision_tree", "random_forest", "hist_gradient_boosting"}
    assert small_report.validation_folds == 3
    assert selection.chosen is not None, selection.explain()
    row = table.loc[selection.chosen]
    assert row["val_ap_mean"] >= table["val_ap_mean"].max() - DEMO_CONSTRAINTS.quality_within_best
    assert row["artifact_mb"] <= DEMO_CONSTRAINTS.max_artifact_mb
    # The rule sets no memory limit, so only the chosen model's fit memory is measured (a traced refit).
    assert row["peak_fit_memory_mb"] > 0 and table["peak_fit_memory_mb"].isna().sum() == len(table) - 1
    assert selection.verdicts.loc[selection.chosen, "accepted"]
    # Every rejected candidate says which constraint it broke.
    rejected = selection.verdicts[~selection.verdicts["accepted"]]
    assert (rejected["broken"] != "").all()
    # Measured, not assumed: every cost column the table prints holds a positive number.
    printed = [column for column, _, _ in tradeoff_columns(table)]
    measured = [c for c in printed if c.endswith("_ms") or c in ("fit_seconds", "bulk_rows_per_s", "artifact_mb")]
    assert any(c.startswith("p99") for c in measured), printed
    assert (table[measured] > 0).all().all()
    text = format_report(small_report)
    assert f"Chosen: {selection.chosen}" in text and "<- chosen" in text and "p99" in text
    assert "measured for the chosen model only" in text and " nan " not in text


@pytest.mark.slow  # trains and measures the candidate grid (about 10-25 s)
def test_demo_tracks_every_candidate(small_report, tracking):
    tracked = runs_table(tracking)
    assert set(small_report.tradeoff["run_id"]) <= set(tracked["run_id"])
    assert tracked["model_sha256"].str.len().eq(64).all()


@pytest.mark.slow  # trains the candidate grid and replays a day through the real service (about 50 s)
def test_demo_serves_the_registered_champion_and_logs_every_acknowledged_decision(small_report, tracking):
    deployment = small_report.deployment
    assert deployment is not None, "the demo chose a model, so it must deploy it"
    registry = Registry(tracking)
    try:
        moves = registry.history()
    finally:
        registry.close()
    assert deployment.run_id == small_report.tradeoff.loc[small_report.selection.chosen, "run_id"]
    # The demo's own promotion made the chosen model champion; the maintenance loop moves aliases later.
    promotions = moves[(moves["alias"] == "champion") & (moves["who"] == "make demo")]
    assert len(promotions) >= 1 and promotions.iloc[0]["to_version"] == deployment.version, moves
    log = DecisionLog(f"sqlite:///{deployment.decision_log}")
    try:
        decisions, labels = log.decisions(), log.labels()
    finally:
        log.close()
    # Every decision the API acknowledged is in the log, and nothing else is (counted when the replay
    # ended; the maintenance loop appends its own decisions after these, in id order).
    assert deployment.logged == deployment.acknowledged > 0 and deployment.unlogged == 0
    replayed = decisions.iloc[: deployment.logged]
    assert len(decisions) >= deployment.logged
    assert set(replayed["model_version"]) == {deployment.version}, "only the registered champion may decide"
    assert deployment.model_versions == (deployment.version,)
    assert deployment.labels_recorded == deployment.labels_sent > 0 and len(labels) >= deployment.labels_sent
    assert labels["is_fraud"].all()
    # The service saw the history the day's features reach back to, then the day one request at a time.
    day = small_report.config.n_days - 1
    assert deployment.day == day and deployment.history_days == (day - HISTORY_DAYS, day - 1)
    assert deployment.day_requests > 1000 and deployment.requests_per_second > 0
    assert 0 < deployment.p50_latency_ms <= deployment.p99_latency_ms
    assert 0 <= deployment.day_precision <= 1 and 0 <= deployment.day_recall <= 1
    assert deployment.alert_budget > 0
    text = format_report(small_report)
    assert "== Deployment" in text and f"version {deployment.version}" in text


@pytest.mark.slow  # trains the candidate grid and replays a day through the real service (about 50 s)
def test_demo_stops_its_server(small_report):
    deployment = small_report.deployment
    assert deployment is not None
    assert deployment.server_stopped == "on SIGTERM", "the server must shut down cleanly, not be killed"
    with pytest.raises(ProcessLookupError):
        os.kill(deployment.server_pid, 0)
    assert_nothing_listens(deployment.url)


@pytest.mark.slow  # the small_report fixture: the whole demo, the maintenance loop included
def test_demo_closes_the_maintenance_loop_and_the_watchdog_stops_the_bad_challenger(small_report, tracking):
    loop = small_report.maintenance
    assert loop is not None, small_report.maintenance_failed
    assert small_report.maintenance_failed == "" and loop.incomplete() == ""
    # The retraining used only mature days, all written after the replay (whose feature windows were filling).
    r = loop.retraining
    folds = validation_splits(r.split, 2)
    assert min(s.train_start_day for s in folds) >= loop.start_day
    assert r.split.end_day <= loop.as_of_day - r.maturity.days and r.immature_rows_left_out > 0
    assert r.trigger.kind == "schedule"
    # The gate judged on days neither model was trained on, and its decision is on record.
    assert loop.gate.gate_days[0] >= r.split.train_start_day + r.split.train_days
    stored = GateStore(tracking.root).get(loop.gate_id)
    assert stored["promote"] == loop.gate.promote and stored["challenger_version"] == loop.challenger_version
    # The bad challenger alerts several times as often: the gate refuses it on that guardrail...
    assert loop.bad_alert_ratio > 2
    assert not loop.bad_gate.promote
    assert [c.name for c in loop.bad_gate.checks if not c.passed] == ["alert_rate"]
    # ... and on the canary the watchdog switches it off after consecutive failing windows, by itself.
    assert loop.bad.watchdog_acted and not loop.bad.promoted
    judged = [w for step in loop.bad.steps for w in step.windows if w.judged]
    failures = judged[-3:]
    assert len(failures) == 3 and all(not w.passed and w.alert_rate_ratio > 2 for w in failures)
    moves = RolloutStore(tracking.root).history()
    assert moves.iloc[-1]["who"] == "watchdog" and moves.iloc[-1]["mode"] == "off"
    # Every decision the API acknowledged is in the log; the bad challenger decided only for its canary's cards.
    assert loop.unlogged == 0 and loop.acknowledged > 0
    log = DecisionLog(f"sqlite:///{small_report.deployment.decision_log}")
    try:
        decisions = log.decisions()
    finally:
        log.close()
    routed = decisions[decisions["model_version"] == loop.bad_version]["customer_id"].unique()
    assert len(routed) > 0 and all(routes_to_challenger(int(c), loop.bad.steps[-1].share) for c in routed)
    registry = Registry(tracking)
    try:
        champion = registry.get("champion").version
    finally:
        registry.close()
    promoted = loop.good is not None and loop.good.promoted
    assert champion == loop.champion_at_end == (loop.challenger_version if promoted else loop.champion_version)
    text = format_report(small_report)
    assert "== Maintenance loop" in text and "watchdog: switched the canary" in text


@pytest.mark.slow  # the small_report fixture: the whole demo, the maintenance loop included
def test_demo_monitors_the_production_days_against_the_truth(small_report):
    production, truth = small_report.production_monitoring, small_report.production_truth
    assert production is not None and truth, "the demo must monitor the loop's production days"
    start = min(truth.values())
    days = production.metrics.index
    assert days.min() < start <= days.max(), f"the monitored days {days.min()}-{days.max()} must cross {start}"
    # Matured recall is judged day by day with the labels known that day, so its dates are real dates.
    assert production.metrics["recall_drop"].notna().sum() > 0, production.metrics["matured_frauds"].describe()
    early = production.alerts[production.alerts["fired_at"] < start]
    assert early.empty, f"alerts fired before any drift event (false alarms):\n{early}"
    text = format_report(small_report)
    assert "== Monitoring the production days" in text
    assert f"truth (the simulator's drift log): card testing (a new fraud pattern) from {start:%Y-%m-%d}" in text
    for alert in production.alerts.itertuples(index=False):
        assert f"ALERT {alert.rule}: fired {alert.fired_at:%Y-%m-%d}, " in text and "after card testing" in text


@pytest.mark.slow  # formats the small_report fixture's real report; the CLI runs in-process
def test_cli_demo_exits_1_when_the_maintenance_loop_does_not_complete(small_report, monkeypatch):
    from typer.testing import CliRunner

    from mlsys_lab import cli, demo

    # The real report, with the bad challenger's rollout as it would read had the watchdog never acted.
    loop = replace(small_report.maintenance, bad=replace(small_report.maintenance.bad, watchdog_acted=""))
    failed = replace(small_report, maintenance=loop, maintenance_failed=loop.incomplete())
    assert "was not rolled back" in failed.maintenance_failed
    monkeypatch.setattr(demo, "run_demo", lambda *args, **kwargs: failed)
    result = CliRunner().invoke(cli.app, ["demo"])
    assert result.exit_code == 1, result.output
    assert "demo failed in the maintenance loop" in result.output and "was not rolled back" in result.output


@pytest.mark.slow  # trains and measures the candidate grid again, without deploying (about 30-60 s)
def test_demo_is_reproducible(small_report, tmp_path):
    # A second run, into a store of its own and without the deployment: what decides must not move.
    again = run_demo(
        "small", random_state=0, tracking=TrackingSettings(root=tmp_path / "runs"), constraints=ANY_SPEED, deploy=False
    )
    assert again.deployment is None and "skipped" in again.not_deployed
    pd.testing.assert_frame_equal(small_report.metrics, again.metrics)
    exact = [c for c in DECIDING if c != "artifact_mb"]
    pd.testing.assert_frame_equal(small_report.tradeoff[exact], again.tradeoff[exact])
    # The pickled size may differ by a few bytes between a fresh `mlsys-lab demo` process and this test
    # process (1,793 against 1,801 bytes for one model, seen when this test ran alone; cause not found):
    # within 1%, far from the 20 MB limit, and the choice by size below must still agree.
    pd.testing.assert_series_equal(
        small_report.tradeoff["artifact_mb"], again.tradeoff["artifact_mb"], check_exact=False, rtol=0.01
    )
    # Under a rule that ignores speed, acceptance depends only on these columns: same verdicts, same choice.
    first, second = small_report.selection.verdicts["accepted"], again.selection.verdicts["accepted"]
    pd.testing.assert_series_equal(first, second)
    chosen = select_model(small_report.tradeoff, BY_SIZE).chosen
    assert chosen is not None and chosen == select_model(again.tradeoff, BY_SIZE).chosen


@pytest.mark.slow  # the demo_run fixture: the whole main job on its default preset
def test_cli_demo_runs_end_to_end(demo_run):
    result = demo_run.result
    assert result.returncode == 0, result.stderr
    assert "The accuracy trap" in result.stdout
    assert "== Candidates" in result.stdout and "Rule:" in result.stdout
    assert "== Deployment" in result.stdout and "(all in the log)" in result.stdout
    assert "== Maintenance loop" in result.stdout and "watchdog: switched the canary" in result.stdout
    # What it printed is the report the other tests read.
    assert result.stdout.rstrip("\n") == format_report(demo_run.report).rstrip("\n")
    # The only line on stderr: the watchdog's warning as it stops the deliberately bad challenger.
    warnings = [line for line in result.stderr.splitlines() if line]
    assert all(line.startswith("WARNING mlsys_lab.maintenance.rollout: watchdog:") for line in warnings), warnings
    served = re.search(r"served by `mlsys-lab serve` on (http://127\.0\.0\.1:\d+)", result.stdout)
    assert served is not None, result.stdout[-2000:]
    assert_nothing_listens(served.group(1))
    assert sorted(p.name for p in demo_run.cwd.iterdir()) == ["runs"], "the demo must leave nothing but its store"


@pytest.mark.slow  # trains the candidate grid on tiny (about 15 s)
def test_cli_demo_exits_1_and_says_what_to_do_when_nothing_is_deployed(tmp_path):
    # A latency budget of 0 ms: no candidate can meet it, so the main job cannot complete.
    env = {**os.environ, "MLSYS_LAB_TRACKING_DIR": str(tmp_path / "runs")}
    result = run_cli("demo", "--preset", "tiny", "--latency-budget-ms", "0", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "nothing was deployed" in result.stderr and "What to do" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # simulates small and tiny, trains three models and registers them (about 20-40 s)
def test_cli_train_prints_a_run_id_that_register_takes(tmp_path):
    env = {**os.environ, "MLSYS_LAB_TRACKING_DIR": str(tmp_path / "runs")}
    trained = run_cli("train", "--family", "decision_tree", "--param", "max_depth=3", "--preset", "small", env=env)
    assert trained.returncode == 0, trained.stderr
    run_id = re.search(r"run id ([0-9a-f]{32})", trained.stdout)
    assert run_id is not None, trained.stdout
    registered = run_cli("register", run_id.group(1), env=env)
    assert registered.returncode == 0, registered.stderr
    assert "as version 1" in registered.stdout
    bad = run_cli("train", "--param", "max_depth", "--preset", "tiny", env=env)
    assert bad.returncode == 2 and "NAME=VALUE" in bad.stderr


@pytest.mark.slow  # simulates tiny twice and trains one model (about 10-20 s)
def test_cli_register_refuses_a_test_period_threshold_naming_run_id(tmp_path):
    env = {**os.environ, "MLSYS_LAB_TRACKING_DIR": str(tmp_path / "runs")}
    # tiny's 30 days hold no validation fold: the default refuses, saying what to change.
    too_short = run_cli("train", "--preset", "tiny", env=env)
    assert too_short.returncode == 2 and "--validation-folds" in too_short.stderr, too_short.stderr
    assert "Traceback" not in too_short.stderr
    trained = run_cli("train", "--preset", "tiny", "--validation-folds", "0", env=env)
    assert trained.returncode == 0, trained.stderr
    run_id = re.search(r"run id ([0-9a-f]{32})", trained.stdout)
    assert run_id is not None, trained.stdout
    refused = run_cli("register", run_id.group(1), env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    flat = " ".join(refused.stderr.replace("│", " ").split())  # typer wraps the message in a box
    assert "RUN_ID" in flat and "test period" in flat and "validation_folds" in flat, refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow  # starts the real server (a few seconds)
def test_cli_serve_binds_where_mlsys_lab_host_and_port_say(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "MLSYS_LAB_HOST": LOOPBACK,
        "MLSYS_LAB_PORT": str(port),
        "MLSYS_LAB_TRACKING_DIR": str(tmp_path / "runs"),
        "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{tmp_path / 'log.db'}",
    }
    server = subprocess.Popen([str(CLI), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(f"http://{LOOPBACK}:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail(f"nothing answered on port {port} (MLSYS_LAB_PORT); exit code {server.poll()}")
        assert answer.json() == {"status": "alive"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_cli_rejects_an_unknown_preset_by_name():
    result = run_cli("demo", "--preset", "huge")
    assert result.returncode == 2
    assert "huge" in result.stderr and "Traceback" not in result.stderr


def test_cli_simulate_writes_csv(tmp_path):
    out = tmp_path / "tx.csv"
    result = run_cli("simulate", str(out), "--preset", "tiny", "--seed", "1")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(out)
    assert len(written) > 1000 and written["tx_fraud"].sum() > 0
    refused = run_cli("simulate", str(tmp_path / "tx.xlsx"), "--preset", "tiny")
    assert refused.returncode == 2 and ".csv" in refused.stderr
