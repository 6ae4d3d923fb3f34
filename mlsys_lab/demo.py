"""The system's main job, end to end, on embedded defaults: what ``make demo`` runs.

It grows with the course. At module 00 it simulates a bank's transactions, summarises them,
trains a baseline model on the past, tests it on the future, and prints the accuracy trap: the
model's accuracy beside a model that never says "fraud", with the metrics that tell them apart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab import evaluate
from mlsys_lab.data import SimulatorConfig, preset, simulate
from mlsys_lab.data.features import TimeFlags
from mlsys_lab.data.split import TimeSplit, split_by_time

logger = logging.getLogger(__name__)

SCENARIO_NAMES = {0: "genuine", 1: "S1 large amount", 2: "S2 compromised terminal", 3: "S3 compromised card"}


def baseline_pipeline(random_state: int = 0) -> Pipeline:
    """Module 00's baseline: logistic regression on the amount and the calendar flags.

    Deliberately naive (no customer or terminal history); module 01 adds the features that matter.
    """
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


@dataclass(frozen=True)
class DemoReport:
    """Everything the demo measured, ready to print or to assert on."""

    config: SimulatorConfig
    split: TimeSplit
    data_summary: dict[str, float]
    frauds_per_scenario: dict[str, int]
    metrics: pd.DataFrame  # one row per model: the baseline and the always-legitimate model
    seconds: dict[str, float]


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
    per_scenario = {SCENARIO_NAMES[s]: int(counts.get(s, 0)) for s in (1, 2, 3)}
    return summary, per_scenario


def run_demo(preset_name: str = "small", random_state: int = 0, threshold: float = 0.5, k: int = 100) -> DemoReport:
    """Simulate, summarise, train the baseline on the past and score it on the future.

    Parameters
    ----------
    preset_name
        Simulator preset (``tiny``, ``small``, ``medium``, ``full``).
    random_state
        Seed of the simulation and of the model.
    threshold
        Decision rule: block when the fraud score is at least this.
    k
        Cards investigators can check per day, for card precision@k.
    """
    seconds: dict[str, float] = {}
    config = preset(preset_name, random_state=random_state)
    started = time.perf_counter()
    transactions = simulate(config).transactions
    seconds["simulate"] = time.perf_counter() - started
    summary, per_scenario = summarize_transactions(transactions)
    logger.info("simulated %d transactions in %.2f s", len(transactions), seconds["simulate"])

    split = TimeSplit.ending_at(config.n_days)
    train, test = split_by_time(transactions, split)
    started = time.perf_counter()
    model = baseline_pipeline(random_state).fit(train, train["tx_fraud"])
    seconds["fit"] = time.perf_counter() - started

    y_test = test["tx_fraud"].to_numpy()
    scored = {
        "baseline (logistic regression)": model.predict_proba(test)[:, 1],
        # The notebook thinker's forgotten competitor: a constant score that never crosses any threshold.
        "always legitimate": np.zeros(len(test)),
    }
    rows = []
    for name, y_proba in scored.items():
        rows.append({"model": name, **evaluate.summarize(y_test, y_proba, test, threshold=threshold, k=k)})
    metrics = pd.DataFrame(rows).set_index("model")
    return DemoReport(config, split, summary, per_scenario, metrics, seconds)


def format_report(report: DemoReport) -> str:
    """The demo's printout: data summary, then the accuracy trap in one table."""
    s, split = report.data_summary, report.split
    lines = [
        f"== Data: preset with {report.config.n_customers} customers, {report.config.n_terminals} terminals, "
        f"{report.config.n_days} days (simulated in {report.seconds['simulate']:.2f} s)",
        f"rows {s['rows']:,}   frauds {s['frauds']:,}   fraud share {s['fraud_share']:.2%}",
        "frauds per scenario: " + ", ".join(f"{name} {n:,}" for name, n in report.frauds_per_scenario.items()),
        "",
        f"== Model: train days {split.train_start_day}-{split.train_start_day + split.train_days - 1}, "
        f"{split.delay_days}-day gap, test days {split.test_start_day}-{split.end_day - 1} "
        f"(fit in {report.seconds['fit']:.2f} s)",
    ]
    k_column = next(c for c in report.metrics.columns if c.startswith("card_precision@"))
    table = report.metrics[["accuracy", "precision", "recall", "average_precision", "roc_auc", k_column, "cost_total"]]
    lines.append(table.to_string(float_format=lambda v: f"{v:,.4f}" if abs(v) < 10 else f"{v:,.0f}"))
    base, trivial = report.metrics.iloc[0], report.metrics.iloc[1]
    lines += [
        "",
        f"The accuracy trap: {base['accuracy']:.2%} accuracy looks done, but never saying 'fraud' scores "
        f"{trivial['accuracy']:.2%}.",
        f"What accuracy hides: the baseline catches {base['recall']:.0%} of frauds, and "
        f"{base[k_column]:.0%} of the cards investigators check each day are really compromised.",
        "Average precision and card precision@k are the numbers to improve.",
    ]
    return "\n".join(lines)
