# ruff: noqa
# %% correct: a table of checks
def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    if report["transactions"] < min_transactions:
        return "wait", []
    checks = {
        "score_psi": report["score_psi"] <= max_psi,
        "top_k_card_overlap": report["top_k_card_overlap"] >= min_overlap,
        "alert_rate_ratio": 1 / max_alert_ratio <= report["alert_rate_ratio"] <= max_alert_ratio,
        "added_ms_p99": report["added_ms_p99"] <= max_added_ms,
    }
    failed = sorted(name for name, ok in checks.items() if not ok)
    return ("proceed", []) if not failed else ("stop", failed)


# %% correct: the ratio judged on a log scale
import math


def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    if report["transactions"] < min_transactions:
        return ("wait", [])
    failed = []
    if abs(math.log(report["alert_rate_ratio"])) > math.log(max_alert_ratio) + 1e-12:
        failed.append("alert_rate_ratio")
    if report["added_ms_p99"] > max_added_ms:
        failed.append("added_ms_p99")
    if report["top_k_card_overlap"] < min_overlap:
        failed.append("top_k_card_overlap")
    if report["score_psi"] > max_psi:
        failed.append("score_psi")
    return ("stop" if failed else "proceed", sorted(failed))


# %% wrong: only an alert rate far above the champion's stops the rollout
def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    if report["transactions"] < min_transactions:
        return "wait", []
    failed = []
    if report["score_psi"] > max_psi:
        failed.append("score_psi")
    if report["top_k_card_overlap"] < min_overlap:
        failed.append("top_k_card_overlap")
    if report["alert_rate_ratio"] > max_alert_ratio:
        failed.append("alert_rate_ratio")
    if report["added_ms_p99"] > max_added_ms:
        failed.append("added_ms_p99")
    return ("stop" if failed else "proceed"), sorted(failed)


# %% wrong: the median added latency instead of the p99
def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    if report["transactions"] < min_transactions:
        return "wait", []
    failed = []
    if report["score_psi"] > max_psi:
        failed.append("score_psi")
    if report["top_k_card_overlap"] < min_overlap:
        failed.append("top_k_card_overlap")
    if not 1 / max_alert_ratio <= report["alert_rate_ratio"] <= max_alert_ratio:
        failed.append("alert_rate_ratio")
    if report["added_ms_p50"] > max_added_ms:
        failed.append("added_ms_p50")
    return ("stop" if failed else "proceed"), sorted(failed)


# %% wrong: too little traffic is judged anyway
def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    failed = []
    if report["score_psi"] > max_psi:
        failed.append("score_psi")
    if report["top_k_card_overlap"] < min_overlap:
        failed.append("top_k_card_overlap")
    if not 1 / max_alert_ratio <= report["alert_rate_ratio"] <= max_alert_ratio:
        failed.append("alert_rate_ratio")
    if report["added_ms_p99"] > max_added_ms:
        failed.append("added_ms_p99")
    return ("stop" if failed else "proceed"), sorted(failed)


# %% wrong: strict limits, a report exactly at the limits stops
def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    if report["transactions"] <= min_transactions:
        return "wait", []
    failed = []
    if report["score_psi"] >= max_psi:
        failed.append("score_psi")
    if report["top_k_card_overlap"] <= min_overlap:
        failed.append("top_k_card_overlap")
    if not 1 / max_alert_ratio < report["alert_rate_ratio"] < max_alert_ratio:
        failed.append("alert_rate_ratio")
    if report["added_ms_p99"] >= max_added_ms:
        failed.append("added_ms_p99")
    return ("stop" if failed else "proceed"), sorted(failed)


# %% wrong: stops at the first failed check
def shadow_decision(
    report, *, min_transactions=500, max_psi=0.25, min_overlap=0.5, max_alert_ratio=2.0, max_added_ms=10.0
):
    if report["transactions"] < min_transactions:
        return "wait", []
    if report["score_psi"] > max_psi:
        return "stop", ["score_psi"]
    if report["top_k_card_overlap"] < min_overlap:
        return "stop", ["top_k_card_overlap"]
    if not 1 / max_alert_ratio <= report["alert_rate_ratio"] <= max_alert_ratio:
        return "stop", ["alert_rate_ratio"]
    if report["added_ms_p99"] > max_added_ms:
        return "stop", ["added_ms_p99"]
    return "proceed", []
