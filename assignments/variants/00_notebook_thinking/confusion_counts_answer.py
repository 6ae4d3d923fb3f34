# ruff: noqa
# %% correct: a plain loop over pairs
def confusion_counts(y_true, y_pred) -> dict[str, int]:
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for truth, decision in zip(list(y_true), list(y_pred)):
        if decision == 1:
            counts["tp" if truth == 1 else "fp"] += 1
        else:
            counts["fn" if truth == 1 else "tn"] += 1
    return counts


# %% correct: sklearn's confusion matrix with both labels named
from sklearn.metrics import confusion_matrix


def confusion_counts(y_true, y_pred) -> dict[str, int]:
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


# %% wrong: fp and fn swapped
def confusion_counts(y_true, y_pred) -> dict[str, int]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return {
        "tp": int(((y_pred == 1) & (y_true == 1)).sum()),
        "fp": int(((y_pred == 0) & (y_true == 1)).sum()),
        "tn": int(((y_pred == 0) & (y_true == 0)).sum()),
        "fn": int(((y_pred == 1) & (y_true == 0)).sum()),
    }


# %% wrong: sklearn's matrix unpacked in reading order (tp, fp, fn, tn)
from sklearn.metrics import confusion_matrix


def confusion_counts(y_true, y_pred) -> dict[str, int]:
    tp, fp, fn, tn = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


# %% wrong: sklearn's matrix without labels breaks when one class is missing
from sklearn.metrics import confusion_matrix


def confusion_counts(y_true, y_pred) -> dict[str, int]:
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred).ravel()
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


# %% wrong: compares lists with == 1, which works on arrays only
def confusion_counts(y_true, y_pred) -> dict[str, int]:
    t1, p1 = y_true == 1, y_pred == 1
    t0, p0 = y_true == 0, y_pred == 0
    return {
        "tp": int((t1 & p1).sum()),
        "fp": int((t0 & p1).sum()),
        "tn": int((t0 & p0).sum()),
        "fn": int((t1 & p0).sum()),
    }


# %% wrong: tn as everything that is not a true positive
def confusion_counts(y_true, y_pred) -> dict[str, int]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    tp = int(((y_pred == 1) & (y_true == 1)).sum())
    fp = int(((y_pred == 1) & (y_true == 0)).sum())
    fn = int(((y_pred == 0) & (y_true == 1)).sum())
    return {"tp": tp, "fp": fp, "tn": len(y_true) - tp, "fn": fn}


# %% wrong: forwards to the package
def confusion_counts(y_true, y_pred) -> dict[str, int]:
    m = evaluate.confusion_metrics(y_true, y_pred)
    return {"tp": m.tp, "fp": m.fp, "tn": m.tn, "fn": m.fn}
