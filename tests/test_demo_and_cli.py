"""Tests of the main job (make demo) and the mlsys-lab command line, run as a user runs them."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlsys_lab.demo import format_report, run_demo

CLI = Path(sys.executable).with_name("mlsys-lab")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def small_report():
    # small, not tiny: tiny's 30 days leave the 30-day windows truncated and only a handful of test frauds.
    return run_demo("small", random_state=0)


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


def test_demo_trains_on_the_past_and_tests_on_the_future(small_report):
    split = small_report.split
    assert split.end_day == small_report.config.n_days
    assert split.train_start_day + split.train_days + split.delay_days == split.test_start_day


def test_demo_validates_the_feed_before_using_it(small_report):
    validation = small_report.validation.set_index("fault")
    faulted = validation.drop(index="clean")
    assert faulted["injected"].sum() > 0
    assert (faulted["recall"] == 1.0).all(), "every injected fault must be quarantined"
    assert validation.loc["clean", "caught"] == 0, "no clean row may be quarantined"
    assert small_report.quarantine_rules["rows"].sum() >= faulted["injected"].sum()


def test_demo_summary_counts_frauds_per_scenario(small_report):
    assert sum(small_report.frauds_per_scenario.values()) == small_report.data_summary["frauds"]
    text = format_report(small_report)
    assert "accuracy trap" in text and "S2 compromised terminal" in text


def test_demo_is_reproducible():
    first, second = run_demo("tiny", random_state=3), run_demo("tiny", random_state=3)
    pd.testing.assert_frame_equal(first.metrics, second.metrics)


def test_cli_demo_runs_end_to_end():
    result = run_cli("demo", "--preset", "tiny")
    assert result.returncode == 0, result.stderr
    assert "The accuracy trap" in result.stdout
    assert result.stderr == ""


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
