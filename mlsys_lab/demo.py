"""The system's main job, end to end, on embedded defaults: what ``make demo`` runs.

It grows with the course. So far it runs the data layer and a first model:

1. simulate a bank's transactions (labels arrive days to weeks late);
2. receive them as a raw feed with faults, validate it and quarantine what is wrong;
3. compute the 15 point-in-time features on the accepted rows;
4. split by time with a delay gap, drop cards already known to be compromised from the test days,
   and train on the labels known when training happens;
5. print the accuracy trap (a model that never says "fraud" is as accurate as any) and the metrics
   that tell the models apart;
6. train a small grid of candidates (four families) with prequential validation, track every run in
   MLflow (``runs/mlflow`` by default, see :class:`~mlsys_lab.training.TrackingSettings`), measure
   what each costs to run, print the trade-off table and name the model a stated rule picks;
7. deploy the chosen model: register its run, promote it to ``champion``, start the real service
   (``mlsys-lab serve``) on loopback, replay the history its features need in batches, score the
   simulation's last day one request at a time, send the fraud labels known by then, stop the
   service, and summarise what the decision log holds (:func:`deploy_and_replay`).
"""

from __future__ import annotations

import logging
import os
import secrets
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab import evaluate
from mlsys_lab.data import SimulatorConfig, known_labels, preset, simulate
from mlsys_lab.data.faults import FeedFaults, raw_feed, score
from mlsys_lab.data.features import (
    DEFAULT_DELAY_DAYS,
    DEFAULT_WINDOWS,
    FEATURE_COLUMNS,
    TimeFlags,
    build_features,
)
from mlsys_lab.data.split import SECONDS_PER_DAY, TimeSplit, split_by_time
from mlsys_lab.data.validation import validate
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.deployment.settings import ENV_PREFIX, ServiceSettings
from mlsys_lab.training import (
    CARDS_CHECKED_SHARE,
    Constraints,
    Selection,
    Tracker,
    TrackingSettings,
    TrainedRun,
    candidate_grid,
    select_model,
    tradeoff_table,
)

logger = logging.getLogger(__name__)

SCENARIO_NAMES = {
    0: "genuine",
    1: "S1 large amount",
    2: "S2 compromised terminal",
    3: "S3 compromised card",
    4: "S4 card testing",
}
#: Share of raw-feed rows the demo corrupts, to show validation at work.
DEMO_FAULT_RATE = 0.01


def baseline_pipeline(random_state: int = 0) -> Pipeline:
    """Module 00's baseline: logistic regression on the amount and the calendar flags only."""
    columns = ColumnTransformer(
        [("amount", "passthrough", ["tx_amount"]), ("calendar", TimeFlags(), ["tx_datetime"])],
        verbose_feature_names_out=False,
    )
    return Pipeline(
        [
            ("features", columns),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(random_state=random_state, max_iter=1000)),
        ]
    )


def feature_pipeline(random_state: int = 0) -> Pipeline:
    """Logistic regression on the 15 point-in-time features (the handbook's baseline model)."""
    return make_pipeline(StandardScaler(), LogisticRegression(random_state=random_state, max_iter=1000))


@dataclass(frozen=True)
class DemoReport:
    """Everything the demo measured, ready to print or to assert on."""

    config: SimulatorConfig
    split: TimeSplit
    data_summary: dict[str, float]
    frauds_per_scenario: dict[str, int]
    validation: pd.DataFrame  # per fault kind: injected, caught, recall, precision
    quarantine_rules: pd.DataFrame  # per rule: rows quarantined
    metrics: pd.DataFrame  # one row per model
    seconds: dict[str, float]
    tradeoff: pd.DataFrame  # one row per candidate: quality and measured costs (training.tradeoff_table)
    selection: Selection  # the chosen candidate and why the others were rejected
    tracking: TrackingSettings  # where the candidates' runs were recorded
    validation_folds: int  # prequential folds per candidate (0 when the data is too short)
    deployment: DeploymentReport | None  # the chosen model served and fed a replayed day; None if none was chosen


def summarize_transactions(transactions: pd.DataFrame) -> tuple[dict[str, float], dict[str, int]]:
    """Row, day, customer and fraud counts, and frauds per scenario."""
    summary = {
        "rows": len(transactions),
        "days": int(transactions["tx_time_days"].nunique()),
        "customers": int(transactions["customer_id"].nunique()),
        "terminals": int(transactions["terminal_id"].nunique()),
        "frauds": int(transactions["tx_fraud"].sum()),
        "fraud_share": float(transactions["tx_fraud"].mean()),
    }
    counts = transactions.loc[transactions["tx_fraud"] == 1, "tx_fraud_scenario"].value_counts()
    present = sorted(set(counts.index) | {1, 2, 3})
    per_scenario = {SCENARIO_NAMES.get(int(s), f"S{s}"): int(counts.get(s, 0)) for s in present}
    return summary, per_scenario


#: The demo's experiment in the tracking store.
DEMO_EXPERIMENT = "demo"
#: The selection rule the demo states: acceptable quality, within the API's latency and memory budgets.
#: The quality margin is wider than the issue's example (0.02): on ``small`` the validation folds'
#: average precision moves by about 0.1, so 0.02 would separate models on noise.
DEMO_CONSTRAINTS = Constraints(ap_within_best=0.05, p99_latency_ms=5.0, max_artifact_mb=20.0)


def validation_folds_that_fit(split: TimeSplit, wanted: int = 3) -> int:
    """How many prequential validation folds (at most ``wanted``) fit before ``split``; 0 on short data."""
    newest_start = split.train_start_day - split.delay_days - split.test_days
    return 0 if newest_start < 0 else min(wanted, newest_start // split.test_days + 1)


def run_demo(
    preset_name: str = "small",
    random_state: int = 0,
    threshold: float = 0.5,
    k: int | None = None,
    tracking: TrackingSettings | None = None,
) -> DemoReport:
    """Run the data layer and the first models end to end, and measure them.

    Parameters
    ----------
    preset_name
        Simulator preset (``tiny``, ``small``, ``medium``, ``full``).
    random_state
        Seed of the simulation, the feed faults and the models.
    threshold
        Decision rule: block when the fraud score is at least this.
    k
        Cards investigators can check per day, for card precision@k; by default
        ``CARDS_CHECKED_SHARE`` of the customers (100 on ``full``).
    tracking
        Where to record the candidates' runs; ``TrackingSettings()`` (``$MLSYS_LAB_TRACKING_DIR`` or
        ``./runs/mlflow``) by default, experiment ``demo``.
    """
    seconds: dict[str, float] = {}
    config = preset(preset_name, random_state=random_state)
    k = k or max(1, round(config.n_customers * CARDS_CHECKED_SHARE))
    clock = time.perf_counter()
    simulation = simulate(config)
    truth = simulation.transactions
    seconds["simulate"] = time.perf_counter() - clock
    summary, per_scenario = summarize_transactions(truth)

    # The bank receives a feed, not a clean table: validate it, quarantine what is wrong.
    clock = time.perf_counter()
    feed = raw_feed(truth, FeedFaults(rate=DEMO_FAULT_RATE), random_state=random_state)
    checked = validate(
        feed.raw,
        known_customers=simulation.customers["customer_id"].to_numpy(),
        known_terminals=simulation.terminals["terminal_id"].to_numpy(),
    )
    seconds["validate"] = time.perf_counter() - clock
    validation = score(feed.truth, checked.quarantined)
    quarantine_rules = checked.report.loc[checked.report["rows"] > 0, ["rule", "rows"]].reset_index(drop=True)
    # Labels and simulator bookkeeping come from the bank's case system, joined by transaction id.
    accepted_ids = checked.accepted["transaction_id"].to_numpy()
    transactions = truth[truth["transaction_id"].isin(accepted_ids)]
    logger.info("validated %d feed rows, quarantined %d", checked.n_in, checked.n_quarantined)

    clock = time.perf_counter()
    features = build_features(transactions)
    seconds["features"] = time.perf_counter() - clock
    frame = transactions.join(features.drop(columns=features.columns.intersection(transactions.columns)))

    split = TimeSplit.ending_at(config.n_days)
    train, test = split_by_time(frame, split, remove_known_compromised=True)
    # The model is trained when the test period starts: only the labels known then exist, and a
    # transaction nobody reported as fraud counts as genuine.
    cutoff = split.test_start_day * SECONDS_PER_DAY
    y_train = known_labels(train, cutoff).fillna(0).astype(int).to_numpy()

    clock = time.perf_counter()
    baseline = baseline_pipeline(random_state).fit(train, y_train)
    model = feature_pipeline(random_state).fit(train[list(FEATURE_COLUMNS)], y_train)
    seconds["fit"] = time.perf_counter() - clock

    y_test = test["tx_fraud"].to_numpy()
    scored = {
        "logistic regression, 15 features": model.predict_proba(test[list(FEATURE_COLUMNS)])[:, 1],
        "baseline (amount and calendar)": baseline.predict_proba(test)[:, 1],
        # The notebook thinker's forgotten competitor: a constant score that never crosses any threshold.
        "always legitimate": np.zeros(len(test)),
    }
    rows = [
        {"model": name, **evaluate.summarize(y_test, y_proba, test, threshold=threshold, k=k)}
        for name, y_proba in scored.items()
    ]
    metrics = pd.DataFrame(rows).set_index("model")

    # Module 02: which model is acceptable, not which is best. Every candidate is validated on the
    # folds before the test period, tracked, and measured the way the API will run it.
    settings = tracking or TrackingSettings(experiment=DEMO_EXPERIMENT)
    folds = validation_folds_that_fit(split)
    candidates = candidate_grid(split, random_state=random_state, validation_folds=folds, cards_per_day=k)
    clock = time.perf_counter()
    tradeoff, runs = tradeoff_table(candidates, frame, tracker=Tracker(settings))
    seconds["candidates"] = time.perf_counter() - clock
    # Without validation folds (tiny data) the only quality measure left is the test's: say so in the output.
    constraints = DEMO_CONSTRAINTS if folds else replace(DEMO_CONSTRAINTS, quality="test_ap")
    selection = select_model(tradeoff, constraints)

    # Module 03: the chosen model behind the real API, fed the last simulated day as live traffic.
    deployment = None
    if selection.chosen is not None:
        clock = time.perf_counter()
        deployment = deploy_and_replay(transactions, runs[selection.chosen], why=selection.reason, tracking=settings)
        seconds["deploy"] = time.perf_counter() - clock
    return DemoReport(
        config,
        split,
        summary,
        per_scenario,
        validation,
        quarantine_rules,
        metrics,
        seconds,
        tradeoff,
        selection,
        settings,
        folds,
        deployment,
    )


def format_report(report: DemoReport) -> str:
    """The demo's printout: data, validation, then the models and the accuracy trap in one table."""
    s, split, secs = report.data_summary, report.split, report.seconds
    caught = report.validation.set_index("fault")
    faulted = caught.drop(index="clean")
    lines = [
        f"== Data: {report.config.n_customers:,} customers, {report.config.n_terminals:,} terminals, "
        f"{report.config.n_days} days (simulated in {secs['simulate']:.2f} s)",
        f"rows {s['rows']:,}   frauds {s['frauds']:,}   fraud share {s['fraud_share']:.2%}",
        "frauds per scenario: " + ", ".join(f"{name} {n:,}" for name, n in report.frauds_per_scenario.items()),
        "",
        f"== Feed validation ({secs['validate']:.2f} s): {int(faulted['injected'].sum()):,} faulty rows injected, "
        f"{int(faulted['caught'].sum()):,} quarantined, {int(caught.loc['clean', 'caught']):,} clean rows "
        "wrongly quarantined",
        "quarantined per rule: " + ", ".join(f"{r.rule} {r.rows:,}" for r in report.quarantine_rules.itertuples()),
        "",
        f"== Features: 15 point-in-time features in {secs['features']:.2f} s",
        f"== Models: train days {split.train_start_day}-{split.train_start_day + split.train_days - 1} "
        f"(labels known on day {split.test_start_day}), {split.delay_days}-day gap, test days "
        f"{split.test_start_day}-{split.end_day - 1} without cards already known compromised "
        f"(fit in {secs['fit']:.2f} s)",
    ]
    k_column = next(c for c in report.metrics.columns if c.startswith("card_precision@"))
    table = report.metrics[["accuracy", "precision", "recall", "average_precision", "roc_auc", k_column, "cost_total"]]
    lines.append(table.to_string(float_format=lambda v: f"{v:,.4f}" if abs(v) < 10 else f"{v:,.0f}"))
    best, trivial = report.metrics.iloc[0], report.metrics.loc["always legitimate"]
    lines += [
        "",
        f"The accuracy trap: every model scores about {trivial['accuracy']:.1%} accuracy, and so does never "
        "saying 'fraud'.",
        f"What accuracy hides: the 15-feature model catches {best['recall']:.0%} of frauds at threshold 0.5; of the "
        f"{k_column.split('@')[1]} cards investigators check each day, {best[k_column]:.0%} are really compromised.",
        "",
        *format_tradeoff(report),
        "",
        *(
            format_deployment(report.deployment, secs["deploy"])
            if report.deployment is not None
            else ["== Deployment: no candidate met the rule, so nothing was deployed"]
        ),
    ]
    return "\n".join(lines)


#: Columns of the printed trade-off table: (column, header, format).
_TRADEOFF_COLUMNS = (
    ("val_ap_mean", "val AP", "{:.3f}"),
    ("val_ap_std", "± std", "{:.3f}"),
    ("test_ap", "test AP", "{:.3f}"),
    ("test_cp_at_k", "test CP@k", "{:.3f}"),
    ("fit_seconds", "fit s", "{:.2f}"),
    ("p50_latency_ms", "p50 ms", "{:.2f}"),
    ("p99_latency_ms", "p99 ms", "{:.2f}"),
    ("bulk_rows_per_s", "rows/s", "{:,.0f}"),
    ("artifact_mb", "size MB", "{:.2f}"),
    ("peak_fit_memory_mb", "fit MB", "{:.1f}"),
    ("test_alerts_per_day", "alerts/day", "{:.1f}"),
    ("test_daily_cost", "cost/day", "{:,.0f}"),
)


def format_tradeoff(report: DemoReport) -> list[str]:
    """The candidates' trade-off table, the selection rule and its verdicts, and where the runs are."""
    table = pd.DataFrame(
        {header: report.tradeoff[column].map(fmt.format) for column, header, fmt in _TRADEOFF_COLUMNS},
        index=report.tradeoff.index,
    )
    table.insert(0, "", ["<- chosen" if name == report.selection.chosen else "" for name in table.index])
    folds = report.validation_folds
    lines = [
        f"== Candidates ({len(table)} models, {report.seconds['candidates']:.1f} s): "
        + (
            f"{folds} prequential validation folds before the test period; "
            if folds
            else "data too short for validation folds, so selection uses the test period (optimistic); "
        )
        + "latency is one NumPy row per call, one thread, measured here",
        table.to_string(),
        "",
        report.selection.explain(),
        "",
        f"Runs tracked in {report.tracking.root} (experiment {report.tracking.experiment!r}); look at them with:",
        f"  {report.tracking.ui_command}",
    ]
    return lines


# -- 7. Deployment: the chosen model behind the real service, fed a replayed day ------------------------------------

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


def _request_bodies(rows: pd.DataFrame) -> list[dict[str, object]]:
    """v1 request bodies: the simulator's columns, the time as naive ISO text (bank-local, as simulated)."""
    bodies = rows[_REQUEST_COLUMNS].assign(tx_datetime=rows["tx_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    return bodies.to_dict("records")  # native ints and floats: JSON-ready


def _fraud_labels(window: pd.DataFrame, known_by_seconds: int) -> pd.DataFrame:
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
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}: {answer.text[:500]}"
        )
    body: dict[str, object] = answer.json()
    return body


class _LabelFeed:
    """Sends fraud labels to ``/v1/feedback`` in the order they became known, up to a point in time."""

    def __init__(self, client: httpx.Client, labels: pd.DataFrame) -> None:
        self._client = client
        self._rows: Iterator[tuple[int, float, str]] = iter(
            zip(
                labels["transaction_id"].tolist(),
                labels["label_seconds"].tolist(),
                labels["label_time"].tolist(),
                strict=True,
            )
        )
        self._next = next(self._rows, None)
        self.sent = 0

    def send_before(self, seconds: float) -> None:
        """Send every label known strictly before ``seconds`` (a label at a transaction's second follows it)."""
        while self._next is not None and self._next[1] < seconds:
            tx_id, _, label_time = self._next
            _ok(
                self._client.post(
                    "/v1/feedback", json={"transaction_id": tx_id, "is_fraud": True, "label_time": label_time}
                )
            )
            self.sent += 1
            self._next = next(self._rows, None)


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
       service's batch limit per request), each fraud label sent to ``/v1/feedback`` once the clock
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
    batch_limit = ServiceSettings.from_env({**os.environ, **env}).batch_limit

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
            raise RuntimeError(f"the service serves version {ready['model_version']}, not champion {info.version}")
        labels = _LabelFeed(client, _fraud_labels(window, end_of_day))

        clock = time.perf_counter()
        bodies, seconds = _request_bodies(history), history["tx_time_seconds"].tolist()
        for start in range(0, len(bodies), batch_limit):
            labels.send_before(seconds[start])
            answer = _ok(client.post("/v1/score/batch", json={"transactions": bodies[start : start + batch_limit]}))
            acknowledged.update(str(result["request_id"]) for result in answer["results"])  # type: ignore[attr-defined]
        labels.send_before(today["tx_time_seconds"].min())
        history_seconds = time.perf_counter() - clock

        clock = time.perf_counter()
        for body in _request_bodies(today):
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


def format_deployment(report: DeploymentReport, seconds: float) -> list[str]:
    """The deployment's printout: what was promoted and served, the replay, and the decision log's summary."""
    r = report
    first, last = r.history_days
    return [
        f"== Deployment ({seconds:.1f} s): version {r.version} (run {r.run_id[:8]}) promoted to champion, served by "
        f"`mlsys-lab serve` on {r.url}",
        f"history: days {first}-{last}, {r.history_transactions:,} transactions in batches with their fraud labels "
        f"({r.history_seconds:.1f} s, {r.history_transactions / r.history_seconds:,.0f} transactions/s)",
        f"replayed day {r.day}: {r.day_requests:,} requests one at a time on one connection in {r.day_seconds:.1f} s "
        f"({r.requests_per_second:,.0f} requests/s); logged latency p50 {r.p50_latency_ms:.2f} ms, "
        f"p99 {r.p99_latency_ms:.2f} ms",
        f"decision log: {r.logged:,} decisions logged for {r.acknowledged:,} acknowledged "
        f"({'all' if r.unlogged == 0 else f'{r.unlogged:,} NOT'} in the log), decided by version(s) "
        f"{', '.join(map(str, r.model_versions))}; {r.alerts:,} alerts; {r.labels_recorded:,} labels recorded "
        f"({r.labels_sent:,} sent)",
        f"day {r.day}: {r.day_alerts} alerts (budget {r.alert_budget} a day), precision {r.day_precision:.2f}, "
        f"recall {r.day_recall:.2f} ({r.day_frauds} frauds)",
        f"Server stopped {r.server_stopped}; its output is in {r.server_log}, the decisions in {r.decision_log}",
    ]
