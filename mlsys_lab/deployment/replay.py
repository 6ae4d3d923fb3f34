"""Serve a registered model and replay simulated traffic through the real HTTP API.

What ``make demo`` does after choosing a model, and what module 04's load tests and module 06's
shadow replay reuse: :func:`request_bodies` (v1 bodies from simulator rows), :func:`fraud_labels` and
:class:`LabelFeed` (labels sent in the order they became known), and :func:`deploy_and_replay` (register,
promote, serve on loopback, replay a history and a day, stop, and read the decision log back).
"""

from __future__ import annotations

import secrets
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

from mlsys_lab.data.features import DEFAULT_DELAY_DAYS, DEFAULT_WINDOWS, SECONDS_PER_DAY
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.deployment.settings import ENV_PREFIX, ServiceSettings
from mlsys_lab.training import TrackingSettings, TrainedRun

__all__ = [
    "DEMO_DECISION_LOG",
    "DEMO_SERVER_LOG",
    "HISTORY_DAYS",
    "DeploymentReport",
    "LabelFeed",
    "ReplayError",
    "deploy_and_replay",
    "fraud_labels",
    "request_bodies",
]


class ReplayError(RuntimeError):
    """The service answered a replayed request with an error: the replay stops and says what came back."""


#: The demo's decision log and the server's output, in the tracking store's folder (a fresh log per demo run).
DEMO_DECISION_LOG = "demo-decisions.db"
DEMO_SERVER_LOG = "demo-server.log"
#: Days of history the features reach back from a transaction: 30-day customer windows, and terminal
#: windows of 30 days that end ``delay`` (7) days before it. The service must have seen them first.
HISTORY_DAYS = DEFAULT_DELAY_DAYS + max(DEFAULT_WINDOWS)
_REQUEST_COLUMNS = ["transaction_id", "customer_id", "terminal_id", "tx_datetime", "tx_amount"]


@dataclass(frozen=True)
class DeploymentReport:
    """What deploying the chosen model and replaying a day through the running service measured.

    Counts of decisions and labels, alerts and latency are read back from the decision log after the
    server stopped, not from the client's side: the log is the record monitoring and retraining use.
    """

    version: int  # the registry version promoted to champion
    run_id: str
    url: str  # where the service listened (loopback)
    server_pid: int
    server_stopped: str  # how the server ended: "on SIGTERM" (clean shutdown) or "killed" (it did not stop in time)
    decision_log: Path
    server_log: Path
    history_days: tuple[int, int]  # first and last day sent as batches
    history_transactions: int
    history_seconds: float
    day: int  # the replayed day, scored one request at a time
    day_requests: int
    day_seconds: float  # wall time of the day's sequential requests
    acknowledged: int  # decisions the API answered 200 for, batches and single requests together
    logged: int  # decisions in the log
    unlogged: int  # acknowledged request ids missing from the log (must be 0)
    model_versions: tuple[int, ...]  # the versions that decided, per the log
    alerts: int  # all decisions that blocked
    labels_sent: int
    labels_recorded: int  # label rows in the log
    day_alerts: int
    day_frauds: int  # true frauds on the replayed day
    day_precision: float  # of the day's alerts, against the true labels
    day_recall: float
    alert_budget: int  # the model's daily alert budget (from its threshold choice)
    p50_latency_ms: float  # logged latency of the day's single requests
    p99_latency_ms: float

    @property
    def requests_per_second(self) -> float:
        """Throughput of the sequential replay: one client, one connection, one request at a time."""
        return self.day_requests / self.day_seconds if self.day_seconds > 0 else float("nan")


def request_bodies(rows: pd.DataFrame) -> list[dict[str, object]]:
    """v1 request bodies: the simulator's columns, the time as naive ISO text (bank-local, as simulated)."""
    bodies = rows[_REQUEST_COLUMNS].assign(tx_datetime=rows["tx_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    return bodies.to_dict("records")  # native ints and floats: JSON-ready


def fraud_labels(window: pd.DataFrame, known_by_seconds: int) -> pd.DataFrame:
    """The window's fraud labels known by ``known_by_seconds``, in the order they became known, as feedback."""
    frauds = window[(window["tx_fraud"] == 1) & (window["tx_label_seconds"] <= known_by_seconds)]
    frauds = frauds.sort_values(["tx_label_seconds", "transaction_id"], kind="stable")
    label_time = frauds["tx_datetime"] + pd.to_timedelta(frauds["tx_label_seconds"] - frauds["tx_time_seconds"], "s")
    return pd.DataFrame(
        {
            "transaction_id": frauds["transaction_id"].to_numpy(),
            "label_seconds": frauds["tx_label_seconds"].to_numpy(),
            "label_time": label_time.dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(),
        }
    )


def _ok(answer: httpx.Response) -> dict[str, object]:
    """The JSON body of a 200; anything else stops the demo with what the service said."""
    if answer.status_code != 200:
        raise ReplayError(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}: {answer.text[:500]}"
        )
    body: dict[str, object] = answer.json()
    return body


class LabelFeed:
    """Sends fraud labels to ``/v1/feedback/batch`` in the order they became known, up to a point in time.

    The labels that became known since the last call go together, in requests of at most ``limit``
    (the service's batch limit): ordering matters only against the transactions, and a label between
    two score batches is recorded before the next one either way. One request per label cost about
    15 ms each on a busy machine, a third of the concept-drift drill's replay.
    """

    def __init__(self, client: httpx.Client, labels: pd.DataFrame, *, limit: int | None = None) -> None:
        self._client = client
        self._limit = int(ServiceSettings.model_fields["batch_limit"].default) if limit is None else int(limit)
        if self._limit < 1:
            raise ValueError(f"limit must be at least 1 label per request, got {limit}")
        self._rows: Iterator[tuple[int, float, str]] = iter(
            zip(
                labels["transaction_id"].tolist(),
                labels["label_seconds"].tolist(),
                labels["label_time"].tolist(),
                strict=True,
            )
        )
        self._next = next(self._rows, None)
        self.sent = 0  # labels
        self.requests = 0

    def send_before(self, seconds: float) -> None:
        """Send every label known strictly before ``seconds`` (a label at a transaction's second follows it)."""
        due: list[dict[str, object]] = []
        while self._next is not None and self._next[1] < seconds:
            tx_id, _, label_time = self._next
            due.append({"transaction_id": tx_id, "is_fraud": True, "label_time": label_time})
            self._next = next(self._rows, None)
        for start in range(0, len(due), self._limit):
            chunk = due[start : start + self._limit]
            _ok(self._client.post("/v1/feedback/batch", json={"labels": chunk}))
            self.sent += len(chunk)
            self.requests += 1


def deploy_and_replay(
    transactions: pd.DataFrame,
    run: TrainedRun,
    *,
    why: str,
    tracking: TrackingSettings,
) -> DeploymentReport:
    """Register and promote ``run``, serve it, replay the last simulated day through the API, summarise the log.

    1. ``run`` (tracked in ``tracking``) becomes a registry version, promoted to ``champion`` by
       "make demo" with ``why`` (shortened) on record.
    2. ``mlsys-lab serve`` starts on a free 127.0.0.1 port with a fresh decision log
       (``<tracking root>/demo-decisions.db``; the previous demo's is deleted, so transaction ids do not
       collide) and its output in ``demo-server.log`` beside it; the demo waits (bounded) for ``/ready``.
    3. The :data:`HISTORY_DAYS` days before the last one go through ``/v1/score/batch`` (the
       service's batch limit per request), each fraud label sent to ``/v1/feedback/batch`` once the clock
       passes its ``tx_label_seconds``, so the service's windows hold what offline features see.
       Then the last day is scored one ``/v1/score`` request at a time over one keep-alive
       connection, and the labels known by the end of that day follow with their real label times.
    4. The server is stopped (SIGTERM, bounded wait, SIGKILL if needed).
    5. The decision log, opened after the server stopped, gives the summary.

    Parameters
    ----------
    transactions
        The accepted transactions, with the simulator's columns and true labels (``tx_fraud``,
        ``tx_label_seconds``), in any order.
    run
        The chosen candidate's tracked run (``run.run_id`` set).
    why
        Why it was chosen, for the alias history.
    tracking
        The tracking store the run is in; the registry, the decision log and the server log go there too.
    """
    registry = Registry(tracking)
    try:
        info = registry.register(run)
        registry.promote(info.version, who="make demo", why=textwrap.shorten(why, width=200, placeholder=" ..."))
    finally:
        registry.close()

    folder = tracking.root
    log_path, server_log = folder / DEMO_DECISION_LOG, folder / DEMO_SERVER_LOG
    feedback_token = secrets.token_urlsafe(16)  # labels need a token; this one lives as long as the server
    for stale in (log_path, log_path.with_name(log_path.name + "-wal"), log_path.with_name(log_path.name + "-shm")):
        stale.unlink(missing_ok=True)
    env = {
        "MLSYS_LAB_TRACKING_DIR": str(folder),
        f"{ENV_PREFIX}DECISION_LOG_URL": f"sqlite:///{log_path}",
        f"{ENV_PREFIX}MODEL_ALIAS": "champion",
        f"{ENV_PREFIX}FEEDBACK_TOKEN": feedback_token,
    }
    batch_limit = ServiceSettings.from_env(env).batch_limit

    day = int(transactions["tx_time_days"].max())
    first_day = max(0, day - HISTORY_DAYS)
    window = transactions[transactions["tx_time_days"] >= first_day]
    window = window.sort_values(["tx_time_seconds", "transaction_id"], kind="stable")
    history, today = window[window["tx_time_days"] < day], window[window["tx_time_days"] == day]
    end_of_day = (day + 1) * SECONDS_PER_DAY
    acknowledged: set[str] = set()

    with (
        run_server(env, output=server_log, wait_path="/ready") as server,
        httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {feedback_token}"}) as client,
    ):
        ready = _ok(client.get("/ready"))
        if ready["model_version"] != info.version:
            raise ReplayError(f"the service serves version {ready['model_version']}, not champion {info.version}")
        labels = LabelFeed(client, fraud_labels(window, end_of_day), limit=batch_limit)

        clock = time.perf_counter()
        bodies, seconds = request_bodies(history), history["tx_time_seconds"].tolist()
        for start in range(0, len(bodies), batch_limit):
            labels.send_before(seconds[start])
            answer = _ok(client.post("/v1/score/batch", json={"transactions": bodies[start : start + batch_limit]}))
            acknowledged.update(str(result["request_id"]) for result in answer["results"])  # type: ignore[attr-defined]
        labels.send_before(today["tx_time_seconds"].min())
        history_seconds = time.perf_counter() - clock

        clock = time.perf_counter()
        for body in request_bodies(today):
            acknowledged.add(str(_ok(client.post("/v1/score", json=body))["request_id"]))
        day_seconds = time.perf_counter() - clock
        labels.send_before(end_of_day + 1)  # the day's labels, after its requests, with their real times
    # run_server stopped the server on leaving the block.

    log = DecisionLog(f"sqlite:///{log_path}")
    try:
        decisions, label_rows = log.decisions(), log.labels()
    finally:
        log.close()
    on_day = decisions[decisions["transaction_id"].isin(today["transaction_id"])]
    truth = today.set_index("transaction_id")["tx_fraud"].reindex(on_day["transaction_id"]).to_numpy() == 1
    alerted = on_day["decision"].to_numpy()
    caught = int((alerted & truth).sum())
    return DeploymentReport(
        version=info.version,
        run_id=info.run_id,
        url=server.url,
        server_pid=server.process.pid,
        server_stopped="killed" if server.killed else "on SIGTERM",
        decision_log=log_path,
        server_log=server_log,
        history_days=(first_day, day - 1),
        history_transactions=len(history),
        history_seconds=history_seconds,
        day=day,
        day_requests=len(today),
        day_seconds=day_seconds,
        acknowledged=len(acknowledged),
        logged=len(decisions),
        unlogged=len(acknowledged - set(decisions["request_id"])),
        model_versions=tuple(sorted(int(v) for v in decisions["model_version"].unique())),
        alerts=int(decisions["decision"].sum()),
        labels_sent=labels.sent,
        labels_recorded=len(label_rows),
        day_alerts=int(alerted.sum()),
        day_frauds=int(truth.sum()),
        day_precision=caught / alerted.sum() if alerted.sum() else float("nan"),
        day_recall=caught / truth.sum() if truth.sum() else float("nan"),
        alert_budget=run.threshold.alerts_per_day_budget,
        p50_latency_ms=float(on_day["latency_ms"].quantile(0.50)),
        p99_latency_ms=float(on_day["latency_ms"].quantile(0.99)),
    )
