# ruff: noqa
# %% correct: counts with numpy directly, no helper
def fraud_rates(y_true, y_pred) -> dict[str, float]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((t == 1) & (p == 1)).sum())
    alerts, frauds = int((p == 1).sum()), int((t == 1).sum())
    return {
        "accuracy": float((t == p).mean()),
        "precision": tp / alerts if alerts else 0.0,
        "recall": tp / frauds if frauds else 0.0,
    }


# %% correct: sklearn metrics with zero_division=0
from sklearn.metrics import accuracy_score, precision_score, recall_score


def fraud_rates(y_true, y_pred) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
    }


# %% correct: builds on confusion_counts, even when the learner's confusion_counts is broken
def confusion_counts(y_true, y_pred):
    return {"tp": 0, "fp": 0, "tn": 0, "fn": 0}


def fraud_rates(y_true, y_pred) -> dict[str, float]:
    c = confusion_counts(y_true, y_pred)
    n = sum(c.values())
    alerts, frauds = c["tp"] + c["fp"], c["tp"] + c["fn"]
    return {
        "accuracy": (c["tp"] + c["tn"]) / n,
        "precision": c["tp"] / alerts if alerts else 0.0,
        "recall": c["tp"] / frauds if frauds else 0.0,
    }


# %% wrong: macro-averaged precision and recall
from sklearn.metrics import accuracy_score, precision_score, recall_score


def fraud_rates(y_true, y_pred) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
    }


# %% wrong: precision and recall swapped
def fraud_rates(y_true, y_pred) -> dict[str, float]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((t == 1) & (p == 1)).sum())
    alerts, frauds = int((p == 1).sum()), int((t == 1).sum())
    return {
        "accuracy": float((t == p).mean()),
        "precision": tp / frauds if frauds else 0.0,
        "recall": tp / alerts if alerts else 0.0,
    }


# %% wrong: nan instead of 0.0 when there are no alerts or no fraud
def fraud_rates(y_true, y_pred) -> dict[str, float]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    tp = float(((t == 1) & (p == 1)).sum())
    with np.errstate(all="ignore"):
        return {
            "accuracy": float((t == p).mean()),
            "precision": float(np.float64(tp) / (p == 1).sum()),
            "recall": float(np.float64(tp) / (t == 1).sum()),
        }


# %% wrong: accuracy of the fraud class only (tp / n)
def fraud_rates(y_true, y_pred) -> dict[str, float]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((t == 1) & (p == 1)).sum())
    alerts, frauds = int((p == 1).sum()), int((t == 1).sum())
    return {
        "accuracy": tp / len(t),
        "precision": tp / alerts if alerts else 0.0,
        "recall": tp / frauds if frauds else 0.0,
    }


# %% wrong: forwards to the package's confusion_metrics
def fraud_rates(y_true, y_pred) -> dict[str, float]:
    m = evaluate.confusion_metrics(y_true, y_pred)
    return {"accuracy": m.accuracy, "precision": m.precision, "recall": m.recall}
