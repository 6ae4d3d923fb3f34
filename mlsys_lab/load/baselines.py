"""Two comparison services for the load benchmark, written the way a notebook would, on purpose.

``naive``: the same job as ``mlsys-lab serve``, as a notebook thinker writes it the first time. It
is honestly naive, not a strawman: it works, and every line is what a tutorial shows.

- the model is the pickle the notebook saved (``joblib.load`` of the fitted pipeline; no checksum);
- the 15 features come from the package's ``OnlineFeatureState`` (the same values the real service
  computes), guarded by one global lock (the first concurrent test crashed without it);
- each request becomes a one-row pandas ``DataFrame`` passed to ``predict_proba``;
- a plain ``def`` endpoint on FastAPI's default thread pool, one uvicorn process with default settings;
- ``print`` for logging, one line per request;
- the decision written the obvious way: a new ``sqlite3`` connection, an ``INSERT`` and a ``commit``
  per request (default journal mode), before the answer.

``floor``: the same features and model with **no decision log at all** (and no print), an
``async def`` endpoint: what serving costs without the guarantee that every decision is kept. The
real service, which logs every decision, should come as close to it as engineering allows.

``noop``: an ``async def`` POST ``/v1/score`` that reads nothing and returns a constant: the HTTP
floor, what uvicorn and FastAPI cost per request before any scoring. No service can beat it.

Run one with ``python -m mlsys_lab.load.baselines naive|floor|noop MODEL.pkl PORT [DB]``; it binds 127.0.0.1.
Both answer ``/health`` and ``POST /v1/score`` with the v1 body.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["Tx", "floor_app", "naive_app", "noop_app", "save_model"]


class Tx(BaseModel):
    """The v1 body, as a notebook would declare it: types, no constraints."""

    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float


def save_model(pipeline: Any, features: tuple[str, ...], threshold: float, path: Path) -> Path:
    """Pickle what the notebook would: the fitted pipeline, its feature order and its threshold."""
    import joblib

    joblib.dump({"pipeline": pipeline, "features": list(features), "threshold": float(threshold)}, path)
    return path


def _load(path: Path) -> dict[str, Any]:
    import joblib

    model: dict[str, Any] = joblib.load(path)
    return model


def naive_app(model_path: Path, db_path: Path) -> Any:
    """The naive same-job service (see the module docstring)."""
    import pandas as pd
    from fastapi import FastAPI

    from mlsys_lab.data.online import OnlineFeatureState

    # The pipeline was fitted on arrays; a DataFrame with names makes sklearn warn on every call.
    warnings.filterwarnings("ignore", message="X has feature names")
    model = _load(model_path)
    state = OnlineFeatureState(origin="1970-01-01")  # as the real service does with an empty history
    lock = threading.Lock()
    connection = sqlite3.connect(db_path)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS decisions (transaction_id INTEGER, score REAL, decision INTEGER, decided_at TEXT)"
    )
    connection.commit()
    connection.close()
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.post("/v1/score")
    def score(tx: Tx) -> dict[str, Any]:
        with lock:
            features = state.features_and_observe(tx.model_dump())
        row = pd.DataFrame([features])[model["features"]]
        probability = float(model["pipeline"].predict_proba(row)[0, 1])
        decision = probability >= model["threshold"]
        db = sqlite3.connect(db_path)
        db.execute(
            "INSERT INTO decisions VALUES (?, ?, ?, ?)",
            (tx.transaction_id, probability, int(decision), dt.datetime.now().isoformat()),
        )
        db.commit()
        db.close()
        print(f"scored {tx.transaction_id}: {probability:.4f} -> {decision}")  # the notebook's logging
        return {"transaction_id": tx.transaction_id, "score": probability, "decision": decision}

    return app


def floor_app(model_path: Path) -> Any:
    """The floor without guarantees: same features and model, no decision log (see the module docstring)."""
    import pandas as pd
    from fastapi import FastAPI

    from mlsys_lab.data.online import OnlineFeatureState

    warnings.filterwarnings("ignore", message="X has feature names")
    model = _load(model_path)
    state = OnlineFeatureState(origin="1970-01-01")  # as the real service does with an empty history
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.post("/v1/score")
    async def score(tx: Tx) -> dict[str, Any]:
        # async def: runs on the event loop, one at a time, so the feature state needs no lock.
        features = state.features_and_observe(tx.model_dump())
        row = pd.DataFrame([features])[model["features"]]
        probability = float(model["pipeline"].predict_proba(row)[0, 1])
        return {
            "transaction_id": tx.transaction_id,
            "score": probability,
            "decision": probability >= model["threshold"],
        }

    return app


def noop_app() -> Any:
    """The HTTP floor: the same routes, no parsing, no features, no model, no log (see the module docstring)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "alive"}

    @app.post("/v1/score")
    async def score() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str]) -> None:
    """``naive|floor MODEL.pkl PORT [DB]``: serve one baseline on 127.0.0.1:PORT until stopped."""
    import uvicorn

    kind, model_path, port = argv[0], Path(argv[1]), int(argv[2])
    if kind == "naive":
        app = naive_app(model_path, Path(argv[3]))
    elif kind == "floor":
        app = floor_app(model_path)
    elif kind == "noop":
        app = noop_app()
    else:
        raise SystemExit(f"unknown baseline {kind!r}: choose naive, floor or noop")
    uvicorn.run(app, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main(sys.argv[1:])
