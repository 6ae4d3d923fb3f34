"""The model artifact: a fitted pipeline in one file, with its sha256, and the metadata to serve it.

Format
    ``model.joblib`` is ``joblib.dump`` of the fitted scikit-learn ``Pipeline``, uncompressed (its
    size is the size the API loads into memory, and loading is fastest). ``model.json`` beside it says
    what the pipeline expects (feature names in order), which library versions wrote it, and the
    file's sha256. joblib files are pickles: load only files whose sha256 you recorded yourself.

The seam for the deployment layer
    :func:`save_model` returns the sha256 that a run logs as the ``model_sha256`` tag; the model
    registry (module 03) records it at registration and :func:`load_model` refuses a file whose
    bytes no longer match. MLflow's sklearn flavour is not used: logging a model with an input
    example costs seconds per run, and a plain file plus a checksum is all serving needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
from sklearn.pipeline import Pipeline

__all__ = [
    "METADATA_FILE",
    "MODEL_FILE",
    "ChecksumMismatch",
    "ModelArtifact",
    "file_sha256",
    "load_model",
    "save_model",
]

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"


class ChecksumMismatch(ValueError):
    """The model file's bytes are not the ones recorded: corrupted, truncated or replaced."""


@dataclass(frozen=True)
class ModelArtifact:
    """Where a saved model is, its sha256 and its size in bytes."""

    path: Path
    sha256: str
    n_bytes: int


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(pipeline: Pipeline, directory: Path, metadata: dict[str, Any]) -> ModelArtifact:
    """Write ``model.joblib`` and ``model.json`` (``metadata`` plus the file's sha256) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    joblib.dump(pipeline, path, compress=0)
    artifact = ModelArtifact(path=path, sha256=file_sha256(path), n_bytes=path.stat().st_size)
    record = {**metadata, "file": MODEL_FILE, "sha256": artifact.sha256, "bytes": artifact.n_bytes}
    (directory / METADATA_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return artifact


def load_model(path: Path, expected_sha256: str) -> Pipeline:
    """Load a pipeline saved by :func:`save_model` after checking its bytes against ``expected_sha256``.

    Raises
    ------
    ChecksumMismatch
        When the file's sha256 differs: nothing is unpickled.
    """
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ChecksumMismatch(f"{path}: sha256 is {actual}, expected {expected_sha256}; the file changed since saved")
    pipeline: Pipeline = joblib.load(path)
    return pipeline
