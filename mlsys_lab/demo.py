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
   service, and summarise what the decision log holds (:func:`deploy_and_replay`);
8. run the monitoring job over the logged decisions (drift, data quality, performance on the labels
   known at the end of the replay, latency) and name the alerts that fired
   (:func:`~mlsys_lab.monitoring.job.monitor_log`, what ``mlsys-lab monitor`` runs);
9. put the champion under a short, bounded locust load at the 1M-requests-an-hour rate (a few
   seconds, a few hundred requests, loopback only, a fresh decision log), and give the SLO verdict,
   the server's CPU per request and the cost of 1M predictions at an example price (:func:`load_step`);
10. close the maintenance loop on the same decision log (module 06, :func:`~mlsys_lab.maintenance.loop.run_loop`):
    two more months of production (a new fraud pattern starts ten days in) written into the log,
    retraining on the labels matured by then, the gate, shadow and the canary ladder on the real
    service with the watchdog on every window, promotion when the gate says so; then a deliberately
    miscalibrated challenger (alerting five times as often) that the gate refuses and that, put on the
    canary anyway, the watchdog switches off;
11. run the monitoring job again, over the production days the loop wrote (reference: their first
    week), and print each alert beside the simulator's truth: the card-testing start, the delay, or
    "false alarm" for an alert before it (:meth:`~mlsys_lab.monitoring.job.MonitoringReport.lines_against_truth`).
"""

from __future__ import annotations

import logging
import shutil
import time
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
from mlsys_lab.data.features import FEATURE_COLUMNS, TimeFlags, build_features
from mlsys_lab.data.split import SECONDS_PER_DAY, TimeSplit, split_by_time
from mlsys_lab.data.validation import validate
from mlsys_lab.deployment.replay import HISTORY_DAYS, DeploymentReport, deploy_and_replay
from mlsys_lab.deployment.server import run_server
from mlsys_lab.deployment.settings import ENV_PREFIX
from mlsys_lab.load import SLO, LoadResult, Verdict, capacity, check_slo, runner, scenarios
from mlsys_lab.maintenance.loop import LoopConfig, LoopReport, run_loop
from mlsys_lab.monitoring.job import MonitoringReport, monitor_log
from mlsys_lab.training import (
    Constraints,
    Selection,
    Tracker,
    TrackingSettings,
    candidate_grid,
    cards_per_day,
    measure_memory_of,
    select_model,
    tradeoff_table,
)

__all__ = [
    "DEMO_CONSTRAINTS",
    "HISTORY_DAYS",
    "DemoReport",
    "LoadStep",
    "LoopConfig",
    "load_step",
    "run_demo",
    "with_latency_budget",
]

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
    deployment: DeploymentReport | None  # the chosen model served and fed a replayed day; None if not deployed
    not_deployed: str = ""  # why nothing was deployed ("" when something was)
    load: LoadStep | None = None  # the short load test of the deployed champion; None if not run
    load_failed: str = ""  # why the load step failed ("" when it ran and no request failed)
    monitoring: MonitoringReport | None = None  # the monitoring job over the decision log; None if not deployed
    maintenance: LoopReport | None = None  # the maintenance loop (module 06); None if not run
    maintenance_failed: str = ""  # why the loop did not complete ("" when it did)
    #: The monitoring job over the loop's production days, and the simulator's truth to judge it by.
    production_monitoring: MonitoringReport | None = None
    production_truth: dict[str, pd.Timestamp] | None = None


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


#: The load step: 1M requests an hour (278/s) from 10 paced users for 4 s after a 1 s ramp-up (about 1,400
#: requests, bounded), against a fresh decision log. Short on purpose: it shows the verdict, it is not the benchmark.
DEMO_LOAD = scenarios.steady(10, 4.0, rate=round(scenarios.ONE_MILLION_AN_HOUR_RPS), ramp_up_s=1.0, name="1M/hour")
#: The 1M/hour SLO over the short window after the ramp-up, with 10% slack on the rate (a 4 s window is noisy).
DEMO_SLO = SLO(
    latency_ms=50.0, latency_share=0.99, max_error_ratio=0.001, min_rps=250.0, min_duration_s=4.0, ramp_up_s=1.0
)
#: An example price per vCPU-hour for the cost line, not a claim about any provider: pass your own.
DEMO_PRICE_PER_VCPU_HOUR = 0.04
DEMO_LOAD_DIR = "demo-load"


@dataclass(frozen=True)
class LoadStep:
    """What the demo's load step measured against the champion (``mlsys-lab serve`` on loopback)."""

    result: LoadResult
    verdict: Verdict
    cpu_seconds_per_request: float  # the server's CPU time over the run / requests served
    cost_per_million: float  # at ``price_per_vcpu_hour`` and 50% utilisation
    price_per_vcpu_hour: float
    run_dir: Path


def load_step(
    transactions: pd.DataFrame, tracking: TrackingSettings, *, price_per_vcpu_hour: float = DEMO_PRICE_PER_VCPU_HOUR
) -> LoadStep:
    """Serve the champion with a fresh decision log, load it with :data:`DEMO_LOAD`, judge by :data:`DEMO_SLO`.

    The request bodies are the simulation's last days (fresh transaction ids for a fresh log);
    locust runs as a subprocess (:func:`mlsys_lab.load.runner.run_locust`), its files and the
    server's output under ``<tracking root>/demo-load``. Raises what the runner or the server
    raise (RuntimeError, TimeoutError) when the test could not run at all.
    """
    folder = tracking.root / DEMO_LOAD_DIR
    shutil.rmtree(folder, ignore_errors=True)  # a fresh log: the previous demo's ids would be refused
    folder.mkdir(parents=True)
    recent = transactions[transactions["tx_time_days"] > transactions["tx_time_days"].max() - 2]
    pool = scenarios.write_request_pool(folder / "requests.jsonl", recent, DEMO_LOAD.max_requests())
    env = {
        "MLSYS_LAB_TRACKING_DIR": str(tracking.root),
        f"{ENV_PREFIX}DECISION_LOG_URL": f"sqlite:///{folder / 'decisions.db'}",
        f"{ENV_PREFIX}MODEL_ALIAS": "champion",
    }
    with run_server(env, output=folder / "server.log", wait_path="/ready") as server:
        cpu_before = capacity.process_cpu_seconds(server.process.pid)
        result = runner.run_locust(server.url, DEMO_LOAD, folder / "locust", pool=pool, timeout_s=60)
        cpu_seconds = capacity.process_cpu_seconds(server.process.pid) - cpu_before
    per_request = capacity.service_time_from_cpu(cpu_seconds, max(result.requests, 1))
    return LoadStep(
        result=result,
        verdict=check_slo(result, DEMO_SLO),
        cpu_seconds_per_request=per_request,
        cost_per_million=capacity.cost_per_million(per_request, price_per_vcpu_hour, utilisation=0.5),
        price_per_vcpu_hour=price_per_vcpu_hour,
        run_dir=folder,
    )


#: The demo's experiment in the tracking store.
DEMO_EXPERIMENT = "demo"
#: The selection rule the demo states: acceptable quality, within the API's latency and memory budgets.
#: The quality margin is wider than the issue's example (0.02): on ``small`` the validation folds'
#: average precision moves by about 0.1, so 0.02 would separate models on noise.
#: The latency budget is Constraints' default: 5 ms single-row p99 of CPU time per call
#: (``p99_cpu_ms``, which a busy machine does not move; wall time is printed beside it).
DEMO_CONSTRAINTS = Constraints(quality_within_best=0.05, max_artifact_mb=20.0)


def with_latency_budget(constraints: Constraints, milliseconds: float) -> Constraints:
    """``constraints`` with another single-row p99 budget (checked on the column ``constraints.latency`` names)."""
    return replace(constraints, p99_latency_ms=milliseconds)


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
    constraints: Constraints = DEMO_CONSTRAINTS,
    deploy: bool = True,
    load: bool = True,
    maintain: bool = True,
    loop: LoopConfig | None = None,
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
    constraints
        The selection rule (:data:`DEMO_CONSTRAINTS`); tests pass a latency budget no machine can
        miss, so that what they check does not depend on how busy the machine is.
    deploy
        Serve the chosen model and replay a day through it (module 03); ``False`` stops after the
        selection (cheaper, e.g. to check that the selection is reproducible).
    load
        After deploying, run the short load step (module 04, :func:`load_step`). A load test that
        cannot run, or any failed request, sets ``load_failed``; a latency or throughput miss on a
        busy laptop is reported in the verdict and is not a failure of the main job.
    maintain
        After deploying, run the maintenance loop (module 06, :func:`~mlsys_lab.maintenance.loop.run_loop`)
        on the demo's decision log. A loop that cannot run or does not complete (a decision lost, the bad
        challenger not rolled back) sets ``maintenance_failed``.
    loop
        The loop's rule (:class:`~mlsys_lab.maintenance.loop.LoopConfig`); tests pass one whose watchdog
        cannot act, to see the demo fail.
    """
    seconds: dict[str, float] = {}
    config = preset(preset_name, random_state=random_state)
    k = k or cards_per_day(config.n_customers)
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
    # Without validation folds (tiny data) the only quality measure left is the test's: say so in the output.
    rule = constraints if folds else replace(constraints, quality="test_ap")
    clock = time.perf_counter()
    # Peak fit memory is a refit of each candidate under tracemalloc: only when the rule limits memory
    # does every candidate need it; otherwise only the chosen one is measured (the others print "-").
    tracker = Tracker(settings)
    every_memory = rule.max_peak_memory_mb is not None
    tradeoff, runs = tradeoff_table(candidates, frame, tracker=tracker, measure_memory=every_memory)
    selection = select_model(tradeoff, rule)
    if not every_memory and selection.chosen is not None:
        tradeoff = measure_memory_of(tradeoff, runs, frame, [selection.chosen], tracker=tracker)
    seconds["candidates"] = time.perf_counter() - clock

    # Module 03: the chosen model behind the real API, fed the last simulated day as live traffic.
    deployment, not_deployed, monitoring = None, "", None
    if selection.chosen is None:
        not_deployed = f"no candidate met the selection rule ({selection.constraints.describe()})"
    elif not folds:
        # The registry refuses a threshold chosen on the test period (training.check_registrable).
        not_deployed = (
            f"{config.n_days} days are too short for validation folds, so the chosen threshold was set on the "
            "test period and the registry refuses it: use a longer preset (small or larger)"
        )
    elif not deploy:
        not_deployed = "deployment skipped (run_demo(deploy=False))"
    else:
        clock = time.perf_counter()
        deployment = deploy_and_replay(transactions, runs[selection.chosen], why=selection.reason, tracking=settings)
        seconds["deploy"] = time.perf_counter() - clock
        # Module 05: the monitoring job reads what the service logged, as `mlsys-lab monitor` does.
        clock = time.perf_counter()
        # The replay starts the service on an empty log, so its windows fill up over the history days:
        # the reference is the last week before the replayed day, when they are (nearly) full. Only those
        # eight days are read (the log's index on the transactions' time), not the 30 warm-up days before:
        # the same table as reading the whole log and skipping them (tests/monitoring/test_job.py).
        logged_days = deployment.history_days[1] - deployment.history_days[0] + 2
        first_read = deployment.history_days[0] + max(0, logged_days - 8)
        monitoring = monitor_log(
            f"sqlite:///{deployment.decision_log}",
            reference_days=7,
            origin=config.start_date,
            read_from=pd.Timestamp(config.start_date) + pd.Timedelta(days=first_read),
        )
        seconds["monitor"] = time.perf_counter() - clock
    loaded, load_failed = None, ""
    if deployment is not None and load:
        clock = time.perf_counter()
        try:
            loaded = load_step(transactions, settings)
        except (RuntimeError, TimeoutError) as exc:
            load_failed = f"the load test could not run: {exc}"
        else:
            if loaded.result.requests == 0 or loaded.result.failure_count:
                failures = ", ".join(f"{kind} {n:,}" for kind, n in sorted(loaded.result.failures.items()))
                load_failed = (
                    f"{loaded.result.failure_count:,} of {loaded.result.requests:,} requests failed ({failures})"
                )
        seconds["load"] = time.perf_counter() - clock
    maintenance, maintenance_failed = None, ""
    if deployment is not None and maintain and selection.chosen is not None:
        # Module 06: production goes on, labels mature, a challenger is retrained, gated and rolled out.
        clock = time.perf_counter()
        try:
            maintenance = run_loop(
                config,
                settings,
                deployment.decision_log,
                transactions,
                runs[selection.chosen].config,
                first_logged_day=deployment.history_days[0],
                k=k,
                loop=loop,
            )
        except (RuntimeError, TimeoutError, ValueError, httpx.HTTPError) as exc:
            maintenance_failed = f"the maintenance loop could not run: {exc}"
        else:
            maintenance_failed = maintenance.incomplete()
        seconds["maintenance"] = time.perf_counter() - clock
    production, truth = None, None
    if maintenance is not None and deployment is not None:
        # Module 05 again, over the production days the loop wrote (the days whose features were full):
        # the reference is their first week, and the truth is the loop's card-testing start. Only those
        # days are read (the log's index on the transactions' time), not the replay before them.
        clock = time.perf_counter()
        origin = pd.Timestamp(config.start_date)
        production = monitor_log(
            f"sqlite:///{deployment.decision_log}",
            reference_days=7,
            origin=str(origin.date()),
            read_from=origin + pd.Timedelta(days=maintenance.start_day),
        )
        truth = {"card testing (a new fraud pattern)": origin + pd.Timedelta(days=maintenance.drift_day)}
        seconds["production_monitor"] = time.perf_counter() - clock
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
        not_deployed,
        monitoring=monitoring,
        load=loaded,
        load_failed=load_failed,
        maintenance=maintenance,
        maintenance_failed=maintenance_failed,
        production_monitoring=production,
        production_truth=truth,
    )
