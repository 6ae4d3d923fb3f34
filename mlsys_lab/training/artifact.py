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

One verify-then-load path
    :func:`verified_bytes` reads the file **once**, hashes those bytes and returns them only if the
    hash is the one expected; :func:`load_model` unpickles exactly those bytes. Hashing the file and
    then opening it again to unpickle would trust a second read that nobody checked: a file
    replaced in between would be unpickled unverified. Every failure (missing, unreadable, wrong
    hash) is one exception type, :class:`IntegrityError`, whose message says what to do; the
    registry uses the same two functions and the same exception.
"""

from __future__ import annotations

import hashlib
import io
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
    "IntegrityError",
    "ModelArtifact",
    "file_sha256",
    "load_model",
    "save_model",
    "verified_bytes",
]

MODEL_FILE = "model.joblib"
METADATA_FILE = "model.json"


class IntegrityError(RuntimeError):
    """A model artifact is missing or unreadable, or its bytes or metadata are not the ones recorded."""


#: Old name of :class:`IntegrityError` (the same class), kept so that ``except ChecksumMismatch`` still works.
ChecksumMismatch = IntegrityError

_DEFAULT_FIX = "Restore the file from a backup, or retrain and save it again. Nothing was unpickled."


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


def verified_bytes(path: Path, expected_sha256: str, *, what: str = "model", fix: str = _DEFAULT_FIX) -> bytes:
    """The file's bytes, read once, if their sha256 is ``expected_sha256``; else :class:`IntegrityError`.

    ``what`` names the artifact in the message (e.g. ``"model version 3 of 'fraud-detector'"``) and
    ``fix`` says what to do about it.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "blob"
    >>> _ = path.write_bytes(b"abc")
    >>> verified_bytes(path, hashlib.sha256(b"abc").hexdigest())
    b'abc'
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise IntegrityError(f"{what}: artifact {path} is missing (expected sha256 {expected_sha256}). {fix}") from None
    except OSError as error:
        raise IntegrityError(
            f"{what}: artifact {path} cannot be read ({error}; expected sha256 {expected_sha256}). {fix}"
        ) from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise IntegrityError(
            f"{what}: artifact {path} has sha256 {actual} but {expected_sha256} was recorded ({len(data)} bytes "
            f"read): the file was corrupted, truncated or replaced after it was recorded. {fix}"
        )
    return data


def load_model(path: Path, expected_sha256: str, *, what: str = "model", fix: str = _DEFAULT_FIX) -> Pipeline:
    """Load a pipeline saved by :func:`save_model`: read the file once, check its sha256, unpickle those bytes.

    Raises
    ------
    IntegrityError
        When the file is missing or unreadable, or its sha256 differs (nothing is unpickled then), or
        it holds something other than a scikit-learn ``Pipeline``.
    """
    data = verified_bytes(path, expected_sha256, what=what, fix=fix)
    pipeline = joblib.load(io.BytesIO(data))  # the bytes just hashed, never the file again
    if not isinstance(pipeline, Pipeline):
        raise IntegrityError(
            f"{what}: artifact {path} holds a {type(pipeline).__name__}, not a scikit-learn Pipeline: "
            "it was not written by save_model. Retrain and save it again"
        )
    return pipeline
