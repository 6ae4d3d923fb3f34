"""How is the model loaded, and what if the file corrupts? Versions, aliases with history, sha256 before unpickling."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import pickle
import sys
import threading
from pathlib import Path

import joblib
import numpy as np
import pytest

from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.deployment.registry import (
    CHALLENGER,
    CHAMPION,
    HISTORY_FILE,
    IntegrityError,
    LoadedModel,
    Registry,
    RegistryError,
)
from mlsys_lab.training import TrackingSettings, quiet_mlflow


class _Exploit:
    """A pickle that creates a file when unpickled: what a tampered model file could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def _registered(registry: Registry, store, n: int = 3) -> list[int]:
    return [registry.register(run).version for run in store.runs[:n]]


def test_creating_a_registry_touches_nothing(tmp_path):
    Registry(TrackingSettings(root=tmp_path / "store"))
    assert not (tmp_path / "store").exists()


def test_register_round_trips_the_metadata(fresh_registry, tracked_store):
    run = tracked_store.runs[0]
    info = fresh_registry.register(run, request_schema_version="v2")
    tags = tracked_store.tracker.client.get_run(run.run_id).data.tags

    assert info.version == 1 and info.run_id == run.run_id
    assert info.sha256 == tags["model_sha256"], "the sha256 recorded at training must be the one registered"
    assert info.data_fingerprint == run.fingerprint
    assert info.features == tuple(run.config.features) == FEATURE_COLUMNS
    assert info.threshold == run.threshold.threshold, "the threshold must round-trip exactly"
    assert info.request_schema_version == "v2"
    assert info.metrics["test_average_precision"] == run.test_metrics["average_precision"]
    assert info.metrics.keys() >= run.metrics().keys()
    assert info.created_at.tzinfo is not None and abs(info.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(hours=1)
    # The registered file is the run's own artifact, not a copy.
    assert info.artifact_path == tracked_store.tracker.artifact_dir(run.run_id) / "model" / "model.joblib"
    assert fresh_registry.get(1) == fresh_registry.get("1") == info


def test_versions_lists_every_version_with_its_record(fresh_registry, tracked_store):
    versions = _registered(fresh_registry, tracked_store)
    fresh_registry.promote(versions[1], who="ana", why="better AP")
    table = fresh_registry.versions()
    assert table["version"].tolist() == [1, 2, 3]
    assert table["run_id"].tolist() == [r.run_id for r in tracked_store.runs]
    assert table["aliases"].tolist() == ["", CHAMPION, ""]
    assert table["sha256"].nunique() == 3
    assert "metric.test_average_precision" in table.columns


def test_registering_the_same_run_twice_gives_the_same_version(fresh_registry, tracked_store):
    first = fresh_registry.register(tracked_store.runs[0])
    again = fresh_registry.register(tracked_store.runs[0].run_id)
    assert again.version == first.version
    assert len(fresh_registry.versions()) == 1


def test_an_untracked_or_unknown_run_cannot_be_registered(fresh_registry, tracked_store):
    from dataclasses import replace

    with pytest.raises(RegistryError, match="not tracked"):
        fresh_registry.register(replace(tracked_store.runs[0], run_id=None))
    with pytest.raises(RegistryError, match="not in the tracking store"):
        fresh_registry.register("0" * 32)


def test_a_corrupt_artifact_is_refused_at_registration(fresh_registry, tracked_store, protect_file):
    path = tracked_store.tracker.artifact_dir(tracked_store.runs[0].run_id) / "model" / "model.joblib"
    protect_file(path)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="sha256"):
        fresh_registry.register(tracked_store.runs[0])
    assert fresh_registry.versions().empty, "nothing may be registered for a file that fails its check"


def test_a_test_period_or_non_finite_threshold_is_refused_and_nothing_registered(
    fresh_registry, tracked_store, registrable_frame
):
    from dataclasses import replace

    from mlsys_lab.training import NotRegistrable, TrainingConfig, train

    # A real tracked run whose threshold was chosen on the test period (validation_folds=0) ...
    config = replace(tracked_store.runs[0].config, validation_folds=0)
    assert isinstance(config, TrainingConfig)
    on_test = train(config, registrable_frame, tracker=tracked_store.tracker)
    assert on_test.threshold_source == "test"
    # ... and one whose threshold is inf ("never alert"), tracked exactly as training would log it.
    validated = tracked_store.runs[0]
    never_alerts = replace(validated, threshold=replace(validated.threshold, threshold=float("inf")), run_id=None)
    never_alerts = replace(never_alerts, run_id=tracked_store.tracker.log_run(never_alerts, run_name="never-alerts"))

    with pytest.raises(NotRegistrable, match=rf"run {on_test.run_id} .*test period.*validation_folds >= 1"):
        fresh_registry.register(on_test)
    with pytest.raises(NotRegistrable, match=rf"run {never_alerts.run_id} .*not a number in \[0, 1\]"):
        fresh_registry.register(never_alerts.run_id)
    assert fresh_registry.versions().empty, "a refused run must leave no version behind"
    assert fresh_registry.register(validated).version == 1, "the same store still registers a validated run"


def test_promote_and_rollback_move_champion_and_history_says_who_when_why(fresh_registry, tracked_store):
    v1, v2, v3 = _registered(fresh_registry, tracked_store)
    before = dt.datetime.now(dt.UTC)
    fresh_registry.promote(v1, who="ana", why="first model")
    fresh_registry.set_alias(CHALLENGER, v3, who="bo", why="shadow it")
    fresh_registry.promote(v2, who="bo", why="better AP on 3 folds")
    fresh_registry.promote(v3, who="cy", why="the challenger won")
    assert fresh_registry.get(CHAMPION).version == v3

    assert fresh_registry.rollback(who="dee", why="alerts doubled") == v2
    assert fresh_registry.get(CHAMPION).version == v2
    assert fresh_registry.rollback(who="dee", why="v2 is bad too") == v1, "a second rollback goes further back"
    assert fresh_registry.get(CHAMPION).version == v1
    assert fresh_registry.get(CHALLENGER).version == v3, "rollback moves champion only"
    after = dt.datetime.now(dt.UTC)

    history = fresh_registry.history()
    assert history[["alias", "from_version", "to_version", "action", "who", "why"]].astype(object).where(
        history.notna(), None
    ).values.tolist() == [
        [CHAMPION, None, v1, "promote", "ana", "first model"],
        [CHALLENGER, None, v3, "set_alias", "bo", "shadow it"],
        [CHAMPION, v1, v2, "promote", "bo", "better AP on 3 folds"],
        [CHAMPION, v2, v3, "promote", "cy", "the challenger won"],
        [CHAMPION, v3, v2, "rollback", "dee", "alerts doubled"],
        [CHAMPION, v2, v1, "rollback", "dee", "v2 is bad too"],
    ]
    assert str(history["at"].dt.tz) == "UTC"
    assert history["at"].is_monotonic_increasing
    assert before <= history["at"].iloc[0] and history["at"].iloc[-1] <= after
    assert (tracked_store.settings.root / HISTORY_FILE).is_file()

    with pytest.raises(RegistryError, match="nothing to roll back"):
        fresh_registry.rollback(who="dee", why="once more")


def test_rollback_with_no_history_is_an_error(fresh_registry, tracked_store):
    with pytest.raises(RegistryError, match="nothing to roll back"):
        fresh_registry.rollback(who="ana", why="no champion yet")
    (v1,) = _registered(fresh_registry, tracked_store, n=1)
    fresh_registry.promote(v1, who="ana", why="first")
    with pytest.raises(RegistryError, match="nothing to roll back"):
        fresh_registry.rollback(who="ana", why="only one champion ever")
    assert fresh_registry.get(CHAMPION).version == v1


def test_promoting_the_champion_again_records_nothing(fresh_registry, tracked_store):
    (v1,) = _registered(fresh_registry, tracked_store, n=1)
    fresh_registry.promote(v1, who="ana", why="first")
    fresh_registry.promote(v1, who="ana", why="again")
    assert len(fresh_registry.history()) == 1


def test_rollback_refuses_when_champion_was_moved_behind_its_back(fresh_registry, tracked_store):
    v1, v2, v3 = _registered(fresh_registry, tracked_store)
    fresh_registry.promote(v1, who="ana", why="first")
    fresh_registry.promote(v2, who="ana", why="second")
    with quiet_mlflow():
        tracked_store.tracker.client.set_registered_model_alias(fresh_registry.model_name, CHAMPION, str(v3))
    with pytest.raises(RegistryError, match="moved outside the registry"):
        fresh_registry.rollback(who="bo", why="undo")
    assert fresh_registry.get(CHAMPION).version == v3


def test_unknown_versions_and_aliases_are_registry_errors(fresh_registry, tracked_store):
    with pytest.raises(RegistryError, match="champion"):
        fresh_registry.load()
    _registered(fresh_registry, tracked_store, n=1)
    with pytest.raises(RegistryError, match="version 99"):
        fresh_registry.get(99)
    with pytest.raises(RegistryError, match="champion"):
        fresh_registry.load(CHAMPION)
    with pytest.raises(RegistryError):
        fresh_registry.promote(99, who="ana", why="typo")
    with pytest.raises(ValueError, match="who and why"):
        fresh_registry.promote(1, who="", why="")


def test_load_gives_a_pipeline_that_scores_like_the_trained_one(fresh_registry, tracked_store, tiny_frame):
    run = tracked_store.runs[0]
    fresh_registry.promote(fresh_registry.register(run).version, who="ana", why="first")
    model = fresh_registry.load()
    assert isinstance(model, LoadedModel) and model.info.version == 1
    rows = tiny_frame[list(model.info.features)].to_numpy()[:50]
    np.testing.assert_array_equal(model.score(rows), run.pipeline.predict_proba(rows)[:, 1])
    assert model.score(rows).dtype == np.float64
    with pytest.raises(ValueError, match="15 features"):
        model.score(rows[:, :3])


def _corrupt_truncate(path: Path, other: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_flip_one_byte(path: Path, other: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _corrupt_replace_with_another_model(path: Path, other: Path) -> None:
    path.write_bytes(other.read_bytes())


def _corrupt_delete(path: Path, other: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "corrupt", [_corrupt_truncate, _corrupt_flip_one_byte, _corrupt_replace_with_another_model, _corrupt_delete]
)
def test_a_corrupted_artifact_is_refused_naming_version_and_both_hashes(
    corrupt, fresh_registry, tracked_store, protect_file
):
    v1, v2 = _registered(fresh_registry, tracked_store, n=2)
    fresh_registry.promote(v1, who="ana", why="first")
    info, other = fresh_registry.get(v1), fresh_registry.get(v2)
    protect_file(info.artifact_path)
    corrupt(info.artifact_path, other.artifact_path)

    with pytest.raises(IntegrityError) as refused:
        fresh_registry.load(CHAMPION)
    message = str(refused.value)
    assert f"model version {v1}" in message and str(info.artifact_path) in message
    assert info.sha256 in message, "the message must give the expected sha256"
    if info.artifact_path.exists():
        actual = hashlib.sha256(info.artifact_path.read_bytes()).hexdigest()
        assert actual in message, "the message must give the sha256 found on disk"
    else:
        assert "missing" in message
    assert "Nothing was unpickled" in message and "rollback" in message.lower(), "the message must say the fix"

    # The refusal leaves the registry usable: another version loads.
    assert fresh_registry.load(v2).info.version == v2
    with pytest.raises(IntegrityError):
        fresh_registry.set_alias(CHALLENGER, v1, who="ana", why="a corrupt version never gets an alias")


def test_a_tampered_pickle_is_never_unpickled(fresh_registry, tracked_store, protect_file, tmp_path):
    (v1,) = _registered(fresh_registry, tracked_store, n=1)
    info = fresh_registry.get(v1)
    marker = tmp_path / "pwned"
    protect_file(info.artifact_path)
    info.artifact_path.write_bytes(pickle.dumps(_Exploit(marker)))

    with pytest.raises(IntegrityError, match="sha256"):
        fresh_registry.load(v1)
    assert not marker.exists(), "the tampered file was unpickled: its code ran"

    opened = joblib.load(io.BytesIO(info.artifact_path.read_bytes()))  # the control: unchecked, its code runs
    opened.close()
    assert marker.exists(), "the test's exploit must work, or the assertion above proves nothing"


def test_after_a_refused_load_the_restored_file_loads_again(fresh_registry, tracked_store, protect_file):
    (v1,) = _registered(fresh_registry, tracked_store, n=1)
    info = fresh_registry.get(v1)
    good = info.artifact_path.read_bytes()
    protect_file(info.artifact_path)
    info.artifact_path.write_bytes(good + b"\0")
    with pytest.raises(IntegrityError):
        fresh_registry.load(v1)
    info.artifact_path.write_bytes(good)
    assert fresh_registry.load(v1).info.sha256 == info.sha256


def test_a_registry_record_that_disagrees_with_its_run_is_refused(fresh_registry, tracked_store):
    (v1,) = _registered(fresh_registry, tracked_store, n=1)
    client = tracked_store.tracker.client
    with quiet_mlflow():
        client.set_model_version_tag(fresh_registry.model_name, str(v1), "sha256", "0" * 64)
    with pytest.raises(IntegrityError, match="metadata mismatch"):
        fresh_registry.load(v1)


def test_concurrent_loads_work_and_leave_stderr_alone(fresh_registry, tracked_store):
    versions = _registered(fresh_registry, tracked_store)
    fresh_registry.promote(versions[0], who="ana", why="first")
    stderr = sys.stderr
    loaded: list[int] = []
    errors: list[BaseException] = []

    def load(ref: int | str) -> None:
        try:
            for _ in range(5):
                loaded.append(fresh_registry.load(ref).info.version)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=load, args=(ref,)) for ref in [*versions, CHAMPION]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(loaded) == sorted([*versions, versions[0]] * 5)
    assert sys.stderr is stderr, "quiet_mlflow from several threads must not leave sys.stderr swapped"


def test_nothing_reaches_stderr(tmp_path, tracked_store, protect_file, capfd):
    capfd.readouterr()
    registry = Registry(tracked_store.settings, model_name="quiet-check")
    v1, v2 = (registry.register(run).version for run in tracked_store.runs[:2])
    registry.promote(v1, who="ana", why="first")
    registry.promote(v2, who="ana", why="second")
    registry.rollback(who="ana", why="back")
    registry.load()
    protect_file(registry.get(v2).artifact_path)
    registry.get(v2).artifact_path.write_bytes(b"junk")
    with pytest.raises(IntegrityError):
        registry.load(v2)
    registry.versions()
    registry.history()
    with pytest.raises(RegistryError):
        registry.get("no-such-alias")
    captured = capfd.readouterr()
    assert captured.err == "", f"the registry wrote to stderr: {captured.err[:500]}"
