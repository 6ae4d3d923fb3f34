"""A short markdown model card per run: what the model is, what it was trained on, how good, its limits.

Written next to each tracked run (artifact ``model/model_card.md``), so whoever finds a model file in
the registry later can read what it is for without the notebook that made it.
"""

from __future__ import annotations

import math
from pathlib import Path

from mlsys_lab.training.run import THRESHOLD_FROM_VALIDATION, TrainedRun

__all__ = ["model_card", "write_model_card"]


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else ("inf (alert on nothing)" if math.isinf(value) else f"{value:.{digits}f}")


def model_card(run: TrainedRun) -> str:
    """The model card of ``run`` as markdown text."""
    c, w, t, tt = run.config, run.window, run.threshold, run.test_threshold
    params = ", ".join(f"`{k}={v}`" for k, v in run.config.model_params.items()) or "defaults"
    lines = [
        f"# Model card: {c.name}",
        "",
        "## Model",
        f"- Family: `{c.family}`; parameters: {params}",
        f"- Input: {len(c.features)} features as a float64 row, in this order: {', '.join(c.features)}",
        f"- Output: fraud score `predict_proba[:, 1]`; alert when score >= {_number(t.threshold, 6)}",
        f"- Artifact: {run.artifact_bytes / 1e6:.2f} MB (joblib); fit in {run.fit_seconds:.2f} s",
        "",
        "## Data",
        f"- Training window: days {w['train']['first_day']}-{w['train']['last_day']} "
        f"({w['train']['first_date']} to {w['train']['last_date']}), {w['train']['rows']:,} transactions, "
        f"{run.train_frauds:,} known frauds",
        f"- Labels: those known on day {c.split.test_start_day} (the test start); "
        + (
            "unknown labels counted as genuine" if c.unknown_labels == "genuine" else "rows with unknown labels dropped"
        ),
        f"- Test window: days {w['test']['first_day']}-{w['test']['last_day']} "
        f"({w['test']['first_date']} to {w['test']['last_date']}), {w['test']['rows']:,} transactions, after a "
        f"{c.split.delay_days}-day gap, cards already known compromised removed",
        f"- Training data fingerprint (sha256): `{run.fingerprint}`",
        "",
        "## Metrics",
        "| metric | validation (mean ± std) | test |",
        "|---|---|---|",
    ]
    names = {
        "average_precision": "average precision",
        "roc_auc": "ROC AUC",
        "card_precision_at_k": f"card precision@{run.k}",
    }
    for key, label in names.items():
        if run.validation is not None:
            val = f"{_number(run.validation.mean[key])} ± {_number(run.validation.std[key])}"
        else:
            val = "not run"
        lines.append(f"| {label} | {val} | {_number(run.test_metrics[key])} |")
    folds = 0 if run.validation is None else len(run.validation.folds)
    source = (
        f"the newest validation fold, with the labels known on day {c.split.test_start_day}"
        if run.threshold_source == THRESHOLD_FROM_VALIDATION
        else "the test period (no validation folds): optimistic, and not registrable"
    )
    lines += [
        f"\nValidation: {folds} prequential folds before the test period, scored with the labels known on day "
        f"{c.split.test_start_day} (frauds reported later count as genuine there).",
        "",
        "## Decision threshold",
        f"- Budget: {t.alerts_per_day_budget} alerts per day; chosen on {source} to minimise "
        f"expected cost (missed fraud: amount + {c.cost.missed_fraud_fixed:g}; false alarm: {c.cost.false_alarm:g})",
        f"- On the test days: {tt.alerts_per_day_mean:.1f} alerts per day on average (max {tt.alerts_per_day_max}), "
        f"precision {tt.precision:.2f}, recall {tt.recall:.2f}, expected cost {tt.expected_daily_cost:,.0f} per day",
        "",
        "## Intended use",
        "- Scoring card transactions one at a time in the course's fraud API, to rank them for investigators "
        "within the daily alert budget. A teaching model: not for decisions about real people.",
        "",
        "## Limits",
        "- Trained on simulated transactions (the Fraud Detection Handbook's generator), not real payments.",
        "- Labels arrive late: frauds of the last training days may still be unreported and count as genuine.",
        "- Scores are not calibrated probabilities; thresholds move when the model or the data change.",
        "- Drift (amounts, new terminals, new fraud patterns) lowers quality: monitor it and retrain.",
        f"- Small data is noisy: compare models on the validation mean ± std, not one number "
        f"(here ±{_number(run.validation.std['average_precision']) if run.validation is not None else 'n/a'} AP).",
        "",
        "## Versions",
        ", ".join(f"{name} {version}" for name, version in run.versions.items()),
        "",
    ]
    return "\n".join(lines)


def write_model_card(run: TrainedRun, path: Path) -> Path:
    """Write :func:`model_card` of ``run`` to ``path`` (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card(run), encoding="utf-8")
    return path
