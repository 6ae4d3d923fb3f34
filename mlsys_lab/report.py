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
    from mlsys_lab.maintenance.loop import LoopReport, RolloutRun

__all__ = ["format_deployment", "format_load", "format_maintenance", "format_report", "format_tradeoff"]


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
        *(["", *format_maintenance(report.maintenance, secs["maintenance"])] if report.maintenance is not None else []),
        *(
            [
                "",
                *report.production_monitoring.lines_against_truth(
                    report.production_truth or {}, secs.get("production_monitor")
                ),
            ]
            if report.production_monitoring is not None
            else []
        ),
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
        {
            header: report.tradeoff[column].map(lambda value, fmt=fmt: "-" if pd.isna(value) else fmt.format(value))
            for column, header, fmt in tradeoff_columns(report.tradeoff)
        },
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
        *(
            ["fit MB (peak traced memory of a refit) measured for the chosen model only: the rule sets no memory limit"]
            if "peak_fit_memory_mb" in report.tradeoff and report.tradeoff["peak_fit_memory_mb"].isna().any()
            else []
        ),
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


def format_maintenance(loop: LoopReport, seconds: float) -> list[str]:
    """The maintenance loop's printout: production days, the retraining, the gate, both rollouts, and the verdict."""
    r, secs = loop.retraining, loop.seconds
    record = r.record()
    split = record["split"]
    first_immature, last_immature = record["immature_days_left_out"]
    lines = [
        f"== Maintenance loop ({seconds:.1f} s): production goes on for days {loop.start_day}-{loop.as_of_day - 1} "
        f"(card testing, a new fraud pattern, from day {loop.drift_day}); version {loop.champion_version}'s "
        f"{loop.fast_forward[0]:,} decisions and {loop.fast_forward[1]:,} fraud labels reported by day "
        f"{loop.as_of_day} written into the demo's decision log ({secs['simulate'] + secs['fast_forward']:.1f} s)",
        f"retrain as of day {loop.as_of_day} (trigger {r.trigger.kind}: {r.trigger.reason}; {secs['retrain']:.1f} s): "
        f"{r.maturity.explanation}",
        f"  trained on days {split['train_start_day']}-{split['train_start_day'] + split['train_days'] - 1} "
        f"(labels known on day {split['labels_known_at_day']}), {r.rows_used:,} rows used, "
        f"{r.immature_rows_left_out:,} immature rows (days {first_immature}-{last_immature}) left out, "
        f"{r.rows_quarantined} quarantined; registered as version {loop.challenger_version} (alias 'challenger')",
        f"{loop.gate.summary()}",
        f"  decision {loop.gate_id} stored with every number ({secs['gate']:.1f} s)",
    ]
    if loop.good is None:
        lines.append(f"  the champion stays: version {loop.challenger_version} goes no further")
    else:
        lines += format_rollout(loop.good, "challenger")
    lines += [
        "",
        f"bad challenger: version {loop.bad_version}, the same retraining with its threshold set to "
        f"{loop.bad_threshold:.4f} so it alerts {loop.bad_alert_ratio:.1f}x as often as the champion on the gate days "
        f"({secs['bad_challenger']:.1f} s)",
        *("  " + line for line in loop.bad_gate.summary().splitlines()),
        "  put on the canary anyway (as if the gate were skipped), to show what stops it in production:",
        *format_rollout(loop.bad, "bad challenger"),
        "",
        f"served through the API during the rollouts: {loop.acknowledged:,} decisions acknowledged, "
        f"{'all' if loop.unlogged == 0 else f'{loop.unlogged:,} NOT'} in the decision log; the champion at the end "
        f"is version {loop.champion_at_end} ({secs['rollout']:.1f} s)",
    ]
    return lines


def format_rollout(run: RolloutRun, who: str) -> list[str]:
    """One rollout: the shadow report, each canary step's windows and card counts, and how it ended."""
    lines = []
    if run.shadow is not None:
        s = run.shadow
        lines.append(
            f"  shadow: {s['transactions']:,.0f} requests scored by version {run.version} too (answers stay the "
            f"champion's): score PSI {s['score_psi']:.3f}, top-k card overlap {s['top_k_card_overlap']:.0%}, "
            f"alert-rate ratio {s['alert_rate_ratio']:.2f}, added p50 {s['added_ms_p50']:.2f} ms, "
            f"p99 {s['added_ms_p99']:.2f} ms"
        )
    for step in run.steps:
        judged = [w for w in step.windows if w.judged]
        ratios = ", ".join(f"{w.alert_rate_ratio:.1f}{'' if w.passed else ' FAIL'}" for w in judged)
        c = step.cards
        lines.append(
            f"  canary {step.share:.0%}: {step.challenger_decisions:,} of {step.decisions:,} decisions by version "
            f"{run.version}, {c.n_challenger} of {c.n_total} cards (sample ratio {'ok' if c.ok else 'MISMATCH'}, "
            f"p {c.p_value:.2f}); alert-rate ratio per window of {len(judged) and step.windows[0].decisions}: "
            f"{ratios or 'none judged'}"
        )
    if run.watchdog_acted:
        lines.append(
            f"  watchdog: {run.watchdog_acted}; {run.challenger_after_stop} decisions by version {run.version} "
            "after it acted (the service follows the rollout store on its timer)"
        )
    elif run.promoted:
        lines.append(f"  promoted: version {run.version} is champion; the service follows the alias, no restart")
    else:
        lines.append(f"  not promoted: the {who} did not pass the gate; canary off")
    lines.append(f"  ({run.requests:,} requests, {run.seconds:.1f} s)")
    return lines
