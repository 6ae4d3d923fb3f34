"""Measure the scoring service: single-request latency, cold start, and the decision log's write cost.

Prints, in one run on one machine (compare numbers only within a run):

1. sequential single-request latency over one keep-alive connection (``httpx.Client``) to a real
   ``mlsys-lab serve`` on 127.0.0.1: ``/health`` (the floor of the HTTP stack, same run), ``/v1/score``
   and ``/v2/score`` with decision logging, and a batch of 64 per request; p50, p99, mean;
2. the same scoring path in process (``ServingState.decide``: tail the log, features, model, commit),
   so the HTTP stack's share is visible;
3. cold start: registry lookup (first, with MLflow's import, and warm), checksum, unpickling, the
   whole ``Registry.load``, the feature state's rebuild from the log, and for the process: spawn to
   ``/health``, to ``/ready``, and the first ``/v1/score``;
4. the decision log's write cost per request: ``DecisionLog.record`` with ``synchronous=FULL`` (the
   default, fsync per commit) and ``NORMAL``, and per row in a 64-row ``record_many``.

Throughput under load (several clients, workers) belongs to module 04's locust scenarios. Traffic goes
to loopback only and every loop is bounded. It asserts nothing.

Usage: ``python benchmarks/bench_service.py [--preset small] [--requests 2000]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import Decision, DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.schemas import Transaction
from mlsys_lab.deployment.state import ServingState
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train
from mlsys_lab.training.artifact import file_sha256

CLI = Path(sys.executable).with_name("mlsys-lab")


def percentiles(ms: list[float]) -> dict[str, float]:
    values = np.asarray(ms)
    return {
        "n": len(values),
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(values.mean()),
    }


def timed(fn: Callable[[], object]) -> float:
    clock = time.perf_counter()
    fn()
    return (time.perf_counter() - clock) * 1000


def markdown(table: pd.DataFrame) -> str:
    """A markdown table (pandas' own needs tabulate, which the course does not install)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:,.3f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [str(CLI), "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def wait_for(url: str, status: int = 200, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == status:
                return
        time.sleep(0.005)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s")


def v1_body(row: dict[str, object]) -> dict[str, object]:
    return {
        "transaction_id": int(row["transaction_id"]),
        "customer_id": int(row["customer_id"]),
        "terminal_id": int(row["terminal_id"]),
        "tx_datetime": pd.Timestamp(row["tx_datetime"]).isoformat(),
        "tx_amount": float(row["tx_amount"]),
    }


def v2_body(row: dict[str, object]) -> dict[str, object]:
    local = pd.Timestamp(row["tx_datetime"]).tz_localize("Europe/Brussels", ambiguous=True, nonexistent="shift_forward")
    return {
        "transaction_id": int(row["transaction_id"]),
        "customer_id": int(row["customer_id"]),
        "terminal_id": int(row["terminal_id"]),
        "tx_datetime": local.isoformat(),
        "amount_minor": round(float(row["tx_amount"]) * 100),
        "currency": "EUR",
    }


def history_decisions(rows: pd.DataFrame) -> list[Decision]:
    """The stream's past as logged decisions (features left out: only the transactions matter here)."""
    now = dt.datetime.now(dt.UTC)
    return [
        Decision(
            request_id=str(uuid.uuid4()),
            decided_at=now,
            transaction_id=int(r["transaction_id"]),
            customer_id=int(r["customer_id"]),
            terminal_id=int(r["terminal_id"]),
            tx_datetime=pd.Timestamp(r["tx_datetime"]).to_pydatetime(),
            tx_amount=float(r["tx_amount"]),
            model_version=0,
            features={},
            score=0.0,
            decision=False,
            threshold=0.5,
            latency_ms=0.0,
        )
        for r in rows.to_dict("records")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per endpoint")
    args = parser.parse_args()
    n = args.requests

    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    tracking = TrackingSettings(root=folder / "mlflow", experiment="bench")
    log_url = f"sqlite:///{folder / 'decisions.db'}"

    stream = simulate(preset(args.preset, random_state=0)).transactions
    frame = feature_frame(stream)
    last_day = int(stream["tx_time_days"].max())
    config = TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(last_day - 1), validation_folds=0)
    run = train(config, frame, tracker=Tracker(tracking))
    registry = Registry(tracking)
    version = registry.register(run).version
    registry.promote(version, who="benchmark", why="bench_service")

    # The log holds the 37 days the windows reach; traffic is the 8 days after them.
    history = stream[stream["tx_time_days"].between(last_day - 44, last_day - 8)]
    traffic = stream[stream["tx_time_days"] > last_day - 8].to_dict("records")
    needed = 4 * n + 64 * max(1, n // 20) + 10
    if len(traffic) < needed:
        raise SystemExit(f"preset {args.preset} has {len(traffic)} transactions after the history, need {needed}")
    log = DecisionLog(log_url)
    log.record_many(history_decisions(history))
    log.close()
    print(f"# Scoring service benchmark ({args.preset}: {len(history):,} logged transactions, model v{version})\n")

    # -- cold start, in process ------------------------------------------------------------------------
    fresh = Registry(tracking)
    cold = {
        "import mlflow + mlsys_lab.deployment.service, fresh interpreter": timed(
            lambda: subprocess.run(
                [sys.executable, "-c", "import mlflow.tracking, mlsys_lab.deployment.service"], check=True
            )
        )
    }
    cold["registry lookup, new Registry (MLflow imported)"] = timed(lambda: fresh.get("champion"))
    cold["registry lookup, warm"] = timed(lambda: fresh.get("champion"))
    info = fresh.get("champion")
    cold["sha256 of the artifact"] = timed(lambda: file_sha256(info.artifact_path))
    data = info.artifact_path.read_bytes()
    cold["unpickle (joblib, from memory)"] = timed(lambda: joblib.load(__import__("io").BytesIO(data)))
    cold["Registry.load (lookup, run check, sha256, unpickle)"] = timed(lambda: fresh.load("champion"))
    cold["feature state rebuilt from the log"] = timed(lambda: ServingState.rebuild(DecisionLog(log_url)))

    # -- the process: cold start and sequential latency ------------------------------------------------
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"MLSYS_LAB_TRACKING_DIR": str(tracking.root), "MLSYS_LAB_DECISION_LOG_URL": log_url}
    clock = time.perf_counter()
    latency: dict[str, dict[str, float]] = {}
    with server(env, port):
        wait_for(f"{url}/health")
        cold["process: spawn to /health 200"] = (time.perf_counter() - clock) * 1000
        wait_for(f"{url}/ready")
        cold["process: spawn to /ready 200"] = (time.perf_counter() - clock) * 1000
        rows = iter(traffic)
        with httpx.Client(base_url=url, timeout=10) as client:
            cold["process: first /v1/score"] = timed(lambda: client.post("/v1/score", json=v1_body(next(rows))))
            for _ in range(200):  # warm-up
                client.get("/health")

            def measure(name: str, send: Callable[[], httpx.Response], calls: int) -> None:
                ms = []
                for _ in range(calls):
                    clock = time.perf_counter()
                    response = send()
                    ms.append((time.perf_counter() - clock) * 1000)
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: {response.status_code} {response.text}")
                latency[name] = percentiles(ms)

            measure("GET /health (HTTP floor)", lambda: client.get("/health"), n)
            measure("POST /v1/score", lambda: client.post("/v1/score", json=v1_body(next(rows))), n)
            measure("POST /v2/score", lambda: client.post("/v2/score", json=v2_body(next(rows))), n)
            batch = 64
            measure(
                f"POST /v1/score/batch ({batch} per request)",
                lambda: client.post(
                    "/v1/score/batch", json={"transactions": [v1_body(next(rows)) for _ in range(batch)]}
                ),
                max(1, n // 20),
            )
            latency[f"POST /v1/score/batch ({batch} per request)"]["per transaction ms"] = (
                latency[f"POST /v1/score/batch ({batch} per request)"]["p50_ms"] / batch
            )
        remaining = list(rows)

    # -- the same path in process: no HTTP ------------------------------------------------------------------
    serving = ServingState.rebuild(DecisionLog(log_url))
    model = Registry(tracking).load("champion")
    ms = []
    for row in remaining[:n]:
        tx = Transaction(**v1_body(row), schema_version="v1")
        clock = time.perf_counter()
        serving.decide([tx], model, clock)
        ms.append((time.perf_counter() - clock) * 1000)
    latency["ServingState.decide in process (no HTTP)"] = percentiles(ms)
    features = np.zeros((1, len(model.info.features)))
    latency["model.score, one NumPy row"] = percentiles([timed(lambda: model.score(features)) for _ in range(n)])

    # -- a log outage: a read-only file refuses every commit; the 503s must stay fast ------------------------
    # Each failed single request leaves the state as the log is (it changes memory only after its
    # commit), so nothing is rebuilt; before, every failure rebuilt the whole state under the lock.
    path = log_url.removeprefix("sqlite:///")
    outage = ServingState.rebuild(DecisionLog(f"sqlite:///file:{path}?mode=ro&uri=true"))
    failed = []
    for row in remaining[n : n + min(n, 200)]:
        tx = Transaction(**v1_body(row), schema_version="v1")
        clock = time.perf_counter()
        with contextlib.suppress(Exception):
            outage.decide([tx], model, clock)
        failed.append((time.perf_counter() - clock) * 1000)
    latency["refused commit (read-only log), in process"] = percentiles(failed)
    print(f"rebuilds during the outage: {outage.rebuilds} for {len(failed)} refused commits")

    # -- decision log write cost -------------------------------------------------------------------------
    writes: dict[str, dict[str, float]] = {}
    sample = history_decisions(history.head(1))[0]
    for synchronous in ("FULL", "NORMAL"):
        writer = DecisionLog(f"sqlite:///{folder / f'writes-{synchronous}.db'}", synchronous=synchronous)  # type: ignore[arg-type]
        writer.create()
        one = [timed(lambda w=writer: w.record(_fresh(sample))) for _ in range(min(n, 1000))]
        writes[f"record(), synchronous={synchronous}"] = percentiles(one)
        many = [timed(lambda w=writer: w.record_many([_fresh(sample) for _ in range(64)])) for _ in range(50)]
        per_row = percentiles(many)
        writes[f"record_many(64) per row, synchronous={synchronous}"] = {
            k: (v / 64 if k != "n" else v * 64) for k, v in per_row.items()
        }
        writer.close()

    print("## Sequential single-request latency (one keep-alive connection, loopback)\n")
    print(markdown(pd.DataFrame([{"what": k, **v} for k, v in latency.items()])), "\n")
    print("## Cold start\n")
    print(markdown(pd.DataFrame([{"step": k, "ms": v} for k, v in cold.items()])), "\n")
    print("## Decision log write cost (SQLite, WAL, this disk)\n")
    print(markdown(pd.DataFrame([{"write": k, **v} for k, v in writes.items()])), "\n")
    print(f"lock wait in the in-process run: {serving.lock_wait_seconds * 1000:.1f} ms in total (one thread)")


_fresh_ids = itertools.count(10**15)


def _fresh(decision: Decision) -> Decision:
    # A new request id and transaction id each time: the log keeps one decision per transaction.
    return replace(decision, request_id=str(uuid.uuid4()), transaction_id=next(_fresh_ids))


if __name__ == "__main__":
    main()
