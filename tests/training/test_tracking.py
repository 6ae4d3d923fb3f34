"""Are experiments logged? MLflow on SQLite, quiet, located by settings, comparable in a table."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlsys_lab.training import (
    ChecksumMismatch,
    Tracker,
    TrackingSettings,
    load_model,
    plot_runs,
    runs_table,
    split_data,
    train,
)
from mlsys_lab.training.artifact import file_sha256


@pytest.fixture(scope="module")
def tracked(tracker, forest_config_module, tiny_frame):
    return train(forest_config_module, tiny_frame, tracker=tracker)


@pytest.fixture(scope="module")
def forest_config_module(tiny_split):
    from mlsys_lab.training import TrainingConfig

    return TrainingConfig(
        family="random_forest", params={"n_estimators": 8}, split=tiny_split, validation_folds=0, random_state=1
    )


def test_a_tracked_run_writes_nothing_to_stderr(tracker, forest_config, tiny_frame, capfd):
    run = train(forest_config, tiny_frame, tracker=tracker)
    err = capfd.readouterr().err
    assert err == "", f"MLflow reached stderr: {err[:500]}"
    assert run.run_id is not None


def test_first_use_of_a_new_store_is_quiet_too(tmp_path, forest_config, tiny_frame, capfd):
    # The first use creates the tables and is where MLflow logs INFO lines.
    fresh = Tracker(TrackingSettings(root=tmp_path / "fresh"))
    train(forest_config, tiny_frame, tracker=fresh)
    assert capfd.readouterr().err == ""
    assert (tmp_path / "fresh" / "mlflow.db").is_file()
    assert not Path("mlruns").exists(), "MLflow's global default store must never be used"


def test_run_records_config_fingerprint_versions_and_artifacts(tracker, tracked):
    folder = tracker.artifact_dir(tracked.run_id)
    assert folder.is_relative_to(tracker.settings.root), "artifacts must stay under the store's root"
    record = json.loads((folder / "model" / "run.json").read_text())
    assert record["config"]["family"] == "random_forest"
    assert record["config"]["model_params"]["n_estimators"] == 8
    assert record["data_fingerprint"] == tracked.fingerprint
    assert {"python", "numpy", "pandas", "scikit-learn", "mlflow", "mlsys_lab"} <= set(record["versions"])
    assert {"test_average_precision", "fit_seconds", "artifact_bytes"} <= set(record["metrics"])
    card = (folder / "model" / "model_card.md").read_text()
    for section in ("## Data", "## Metrics", "## Decision threshold", "## Intended use", "## Limits"):
        assert section in card
    assert tracked.fingerprint in card


def test_model_file_checksum_is_tagged_and_verified_on_load(tracker, tracked, tiny_frame, tmp_path):
    table = runs_table(tracker)
    row = table.set_index("run_id").loc[tracked.run_id]
    path = tracker.artifact_dir(tracked.run_id) / "model" / "model.joblib"
    assert row["model_sha256"] == file_sha256(path)
    model = load_model(path, row["model_sha256"])
    X = split_data(tracked.config, tiny_frame).X_test
    assert model.predict_proba(X).tobytes() == tracked.pipeline.predict_proba(X).tobytes()
    corrupted = tmp_path / "model.joblib"
    corrupted.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumMismatch):
        load_model(corrupted, row["model_sha256"])


def test_runs_table_is_tidy(tracker, tracked):
    table = runs_table(tracker)
    assert table["run_id"].is_unique
    row = table.set_index("run_id").loc[tracked.run_id]
    assert row["family"] == "random_forest"
    assert row["model.n_estimators"] == 8 and row["random_state"] == 1  # numeric params come back as numbers
    assert row["fit_seconds"] > 0 and row["artifact_bytes"] == tracked.artifact_bytes
    assert row["test_average_precision"] == pytest.approx(tracked.test_metrics["average_precision"])


def test_plot_runs_returns_a_figure(tracker, tracked):
    figure = plot_runs(runs_table(tracker), x="fit_seconds", y="test_average_precision", yerr=None)
    assert figure.axes[0].get_xlabel() == "fit_seconds"
    with pytest.raises(ValueError, match="p99_cpu_ms"):
        plot_runs(runs_table(tracker))  # latency is added by tradeoff_table, not by train


def test_store_location_comes_from_settings_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSYS_LAB_TRACKING_DIR", str(tmp_path / "elsewhere"))
    settings = TrackingSettings()
    assert settings.root == (tmp_path / "elsewhere").resolve()
    assert settings.tracking_uri == f"sqlite:///{(tmp_path / 'elsewhere' / 'mlflow.db').as_posix()}"
    assert not (tmp_path / "elsewhere").exists(), "settings must not touch the disk"
    monkeypatch.delenv("MLSYS_LAB_TRACKING_DIR")
    assert TrackingSettings().root == (Path.cwd() / "runs" / "mlflow").resolve()


def test_importing_the_training_layer_has_no_side_effects(tmp_path):
    code = (
        "import os, sys; import mlsys_lab.training; "
        "assert 'mlflow' not in sys.modules, 'mlflow imported at import time'; "
        "assert os.listdir('.') == [], os.listdir('.')"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLSYS_LAB_TRACKING_DIR"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


_TRACK_IN_A_FRESH_PROCESS = """
import sys
{before}
from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train
frame = feature_frame(simulate(preset("tiny", random_state=0)).transactions)
config = TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(30), validation_folds=0)
stderr = sys.stderr
run = train(config, frame, tracker=Tracker(TrackingSettings(root=sys.argv[1])))
assert run.run_id and sys.stderr is stderr
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "before",
    ["", "import mlflow  # imported first, so MLflow configures its own stderr logging"],
    ids=["mlflow imported by the tracker", "mlflow imported before"],
)
def test_a_fresh_process_tracks_a_run_with_nothing_on_stderr(tmp_path, before):
    # A real process with Python's default warning filters and no pytest capture, as a notebook kernel
    # runs: MLflow's table-creation INFO lines must go to the DEBUG log, not to stderr.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    code = _TRACK_IN_A_FRESH_PROCESS.format(before=before)
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"stderr was not empty: {result.stderr[:800]}"
    assert (tmp_path / "store" / "mlflow.db").is_file()


def test_mlflow_log_lines_are_kept_in_the_debug_log_not_on_stderr(tmp_path, forest_config, tiny_frame, caplog, capfd):
    import logging

    from mlsys_lab.training import configure_mlflow

    configure_mlflow()
    with caplog.at_level(logging.DEBUG, logger="mlsys_lab.training.tracking"):
        logging.getLogger("mlflow.store.db.utils").info("a line MLflow logs while it creates its tables")
        train(forest_config, tiny_frame, tracker=Tracker(TrackingSettings(root=tmp_path / "fresh")))
    forwarded = [r.getMessage() for r in caplog.records if r.name == "mlsys_lab.training.tracking"]
    assert any("a line MLflow logs" in message for message in forwarded), forwarded
    assert capfd.readouterr().err == ""


def test_tracking_from_two_threads_at_once_is_quiet_and_leaves_stderr_alone(tmp_path, forest_config, tiny_frame, capfd):
    import threading

    stderr = sys.stderr
    errors: list[BaseException] = []

    def track(i: int) -> None:
        try:
            train(forest_config, tiny_frame, tracker=Tracker(TrackingSettings(root=tmp_path / f"store{i}")))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=track, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sys.stderr is stderr, "nothing may swap sys.stderr"
    assert capfd.readouterr().err == ""
