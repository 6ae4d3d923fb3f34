"""One verify-then-load path: the model file is read once, and the bytes unpickled are the bytes hashed."""

import hashlib
import io
import os
import sys
from pathlib import Path

import joblib
import pytest

from mlsys_lab.training import ChecksumMismatch, IntegrityError, build_pipeline, load_model, save_model, split_data


@pytest.fixture(scope="module")
def saved(tmp_path_factory, forest_config_for_artifact, tiny_frame):
    data = split_data(forest_config_for_artifact, tiny_frame)
    pipeline = build_pipeline(forest_config_for_artifact).fit(data.X_train, data.y_train)
    artifact = save_model(pipeline, tmp_path_factory.mktemp("artifact"), {"name": "forest"})
    return artifact, pipeline, data.X_test


@pytest.fixture(scope="module")
def forest_config_for_artifact(tiny_split):
    from mlsys_lab.training import TrainingConfig

    return TrainingConfig(family="decision_tree", params={"max_depth": 3}, split=tiny_split, validation_folds=0)


class _OpenWatch:
    """Counts the opens of one path (Python's ``open`` audit event) and can rewrite it just before the second.

    The audit hook runs synchronously before each open, so "the file changes between two reads" is
    exact, with no race. Hooks cannot be removed: it stays installed, disarmed, after the test.
    """

    def __init__(self) -> None:
        self.path: str | None = None
        self.opens = 0
        self.second: bytes | None = None
        self._busy = False
        sys.addaudithook(self._hook)

    def arm(self, path: Path, second: bytes | None = None) -> None:
        self.path, self.opens, self.second = os.fspath(path), 0, second

    def disarm(self) -> None:
        self.path = None

    def _hook(self, event: str, args: tuple) -> None:
        if event != "open" or self.path is None or self._busy or not isinstance(args[0], str | os.PathLike):
            return
        if os.fspath(args[0]) != self.path:
            return
        self.opens += 1
        if self.opens == 2 and self.second is not None:
            self._busy = True
            try:
                Path(self.path).write_bytes(self.second)  # another model appears between the two reads
            finally:
                self._busy = False


_WATCH = _OpenWatch()


def test_load_model_reads_the_file_once_and_unpickles_the_bytes_it_hashed(saved, tmp_path):
    artifact, pipeline, X = saved
    impostor = io.BytesIO()
    joblib.dump({"not": "the model"}, impostor)
    path = tmp_path / "model.joblib"
    path.write_bytes(artifact.path.read_bytes())
    _WATCH.arm(path, second=impostor.getvalue())
    try:
        loaded = load_model(path, artifact.sha256)
    finally:
        opens = _WATCH.opens
        _WATCH.disarm()
    assert opens == 1, f"load_model opened the model file {opens} times: hash and unpickle must share one read"
    assert loaded.predict_proba(X).tobytes() == pipeline.predict_proba(X).tobytes()


def test_a_changed_missing_or_foreign_file_is_one_exception_type_and_nothing_is_unpickled(saved, tmp_path):
    artifact, _, _ = saved
    corrupted = tmp_path / "corrupted.joblib"
    corrupted.write_bytes(artifact.path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError, match=r"sha256 \w+ but \w+ was recorded"):
        load_model(corrupted, artifact.sha256)
    with pytest.raises(IntegrityError, match="is missing"):
        load_model(tmp_path / "nowhere.joblib", artifact.sha256)
    foreign = tmp_path / "foreign.joblib"
    joblib.dump({"a": 1}, foreign)
    with pytest.raises(IntegrityError, match="not a scikit-learn Pipeline"):
        load_model(foreign, hashlib.sha256(foreign.read_bytes()).hexdigest())
    assert ChecksumMismatch is IntegrityError, "the old name must stay the same class, so old except clauses work"
