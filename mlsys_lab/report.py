"""The demo's printout: the report :func:`mlsys_lab.demo.run_demo` returns, as text.

Formatting only: every number comes from the report. The trade-off table prints per-call latency
as the selection rule decides on it, CPU time (``p50_cpu_ms``, ``p99_cpu_ms``: stable when the
machine is busy), with the wall-clock p99 on this machine now (``p99_wall_ms``) beside it, and
headers that say which is which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from mlsys_lab.deployment.replay import DeploymentReport

if TYPE_CHECKING:
    from mlsys_lab.demo import DemoReport, LoadStep

__all__ = ["format_deployment", "format_load", "format_report", "format_tradeoff"]


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
            else [f"== Deployment: nothing was deployed: {report.not_deployed or 'no candidate was chosen'}"]
        ),
        *(["", *report.monitoring.lines(secs.get("monitor"))] if report.monitoring is not None else []),
        *(["", *format_load(report.load, secs["load"])] if report.load is not None else []),
    ]
    return "\n".join(lines)


#: Columns of the printed trade-off table, when the table has them: (column, header, format).
_TRADEOFF_COLUMNS = (
    ("val_ap_mean", "val AP", "{:.3f}"),
    ("val_ap_std", "± std", "{:.3f}"),
    ("test_ap", "test AP", "{:.3f}"),
    ("test_cp_at_k", "test CP@k", "{:.3f}"),
    ("fit_seconds", "fit s", "{:.2f}"),
    ("bulk_rows_per_s", "rows/s", "{:,.0f}"),
    ("artifact_mb", "size MB", "{:.2f}"),
    ("peak_fit_memory_mb", "fit MB", "{:.1f}"),
    ("test_alerts_per_day", "alerts/day", "{:.1f}"),
    ("test_daily_cost", "cost/day", "{:,.0f}"),
)


#: Per-call latency columns, printed after the fit time: CPU time (what the rule decides on), then wall time.
_LATENCY_COLUMNS = (
    ("p50_cpu_ms", "p50 CPU ms", "{:.2f}"),
    ("p99_cpu_ms", "p99 CPU ms", "{:.2f}"),
    ("p99_wall_ms", "p99 wall ms", "{:.2f}"),
)


def tradeoff_columns(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """The printed trade-off table's (column, header, format): known columns present, latency after fit time."""
    known = [c for c in _TRADEOFF_COLUMNS if c[0] in table.columns]
    latency = [c for c in _LATENCY_COLUMNS if c[0] in table.columns]
    at = next((i + 1 for i, c in enumerate(known) if c[0] == "fit_seconds"), len(known))
    return [*known[:at], *latency, *known[at:]]


def format_tradeoff(report: DemoReport) -> list[str]:
    """The candidates' trade-off table, the selection rule and its verdicts, and where the runs are."""
    table = pd.DataFrame(
        {header: report.tradeoff[column].map(fmt.format) for column, header, fmt in tradeoff_columns(report.tradeoff)},
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
        + "latency: one NumPy row per call, one thread; CPU ms is the process's CPU time per call (the rule "
        "decides on it: a busy machine does not move it), wall ms the clock time on this machine now",
        table.to_string(),
        "",
        report.selection.explain(),
        "",
        f"Runs tracked in {report.tracking.root} (experiment {report.tracking.experiment!r}); look at them with:",
        f"  {report.tracking.ui_command}",
    ]
    return lines


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


def format_load(step: LoadStep, seconds: float) -> list[str]:
    """The load step's printout: what was offered and served, the SLO table, CPU per request and the cost."""
    r, window = step.result, step.result.window(step.verdict.slo.ramp_up_s).histogram
    p50, p99 = (window.percentile(q) if window.total else float("nan") for q in (0.5, 0.99))
    return [
        f"== Load ({seconds:.1f} s): locust, {r.offered_rate or 0:,.0f} req/s offered (1M an hour) on {r.target}; "
        f"{r.requests:,} requests, {r.rps:,.0f} req/s achieved; after the ramp-up p50 {p50:g} ms, p99 {p99:g} ms",
        f"SLO verdict: {step.verdict}",
        f"server CPU {step.cpu_seconds_per_request * 1000:.2f} ms per request: 1M predictions cost "
        f"{step.cost_per_million:.4f} at {step.price_per_vcpu_hour:g} per vCPU-hour (example price), 50% utilisation",
        f"locust's files and the server's output are in {step.run_dir}",
    ]
