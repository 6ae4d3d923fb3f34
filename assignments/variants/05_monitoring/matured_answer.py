# ruff: noqa
# %% correct: the package's known-label convention spelled with pandas (unknown as NA, then filled with 0)
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    labels = window["tx_fraud"].where(window["tx_label_seconds"] <= (as_of_day + 1) * 86_400)
    alerted = pd.Series(np.asarray(y_proba) >= threshold, index=window.index)
    known_fraud = labels.fillna(0) == 1
    n_alerts = int(alerted.sum())
    return {
        "precision": (known_fraud & alerted).sum() / n_alerts if n_alerts else float("nan"),
        "recall": (known_fraud & alerted).sum() / known_fraud.sum() if known_fraud.any() else float("nan"),
        "label_coverage": labels.notna().mean(),
    }


# %% correct: counts in a loop over rows
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    cutoff = (as_of_day + 1) * 86_400
    alerts = hits = frauds = known = 0
    for fraud, label_s, score in zip(window["tx_fraud"], window["tx_label_seconds"], y_proba):
        is_known = label_s <= cutoff
        known += is_known
        alerts += score >= threshold
        if is_known and fraud == 1:
            frauds += 1
            hits += score >= threshold
    n = len(window)
    return {
        "precision": hits / alerts if alerts else math.nan,
        "recall": hits / frauds if frauds else math.nan,
        "label_coverage": known / n,
    }


# %% wrong: the truth (tx_fraud) instead of the labels known that day
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    scores = np.asarray(y_proba, dtype=float)
    fraud = window["tx_fraud"].to_numpy() == 1
    known = window["tx_label_seconds"].to_numpy() <= (as_of_day + 1) * 86_400
    alerted = scores >= threshold
    return {
        "precision": float(fraud[alerted].mean()) if alerted.any() else math.nan,
        "recall": float(alerted[fraud].mean()) if fraud.any() else math.nan,
        "label_coverage": float(known.mean()),
    }


# %% wrong: the start of as_of_day as the cut-off (a day of labels missed)
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    scores = np.asarray(y_proba, dtype=float)
    known = window["tx_label_seconds"].to_numpy() <= as_of_day * 86_400
    known_fraud = known & (window["tx_fraud"].to_numpy() == 1)
    alerted = scores >= threshold
    return {
        "precision": float(known_fraud[alerted].sum() / alerted.sum()) if alerted.any() else math.nan,
        "recall": float(alerted[known_fraud].mean()) if known_fraud.any() else math.nan,
        "label_coverage": float(known.mean()),
    }


# %% wrong: strictly before the cut-off (a label at the last second of the day missed)
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    scores = np.asarray(y_proba, dtype=float)
    known = window["tx_label_seconds"].to_numpy() < (as_of_day + 1) * 86_400
    known_fraud = known & (window["tx_fraud"].to_numpy() == 1)
    alerted = scores >= threshold
    return {
        "precision": float(known_fraud[alerted].sum() / alerted.sum()) if alerted.any() else math.nan,
        "recall": float(alerted[known_fraud].mean()) if known_fraud.any() else math.nan,
        "label_coverage": float(known.mean()),
    }


# %% wrong: precision among the alerts whose label is known (unlabelled alerts dropped)
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    scores = np.asarray(y_proba, dtype=float)
    known = window["tx_label_seconds"].to_numpy() <= (as_of_day + 1) * 86_400
    fraud = window["tx_fraud"].to_numpy() == 1
    alerted = scores >= threshold
    labelled_alerts = alerted & known
    return {
        "precision": float((fraud & labelled_alerts).sum() / labelled_alerts.sum())
        if labelled_alerts.any()
        else math.nan,
        "recall": float(alerted[known & fraud].mean()) if (known & fraud).any() else math.nan,
        "label_coverage": float(known.mean()),
    }


# %% wrong: 0.0 instead of nan when nothing is alerted or known
def known_performance(window: pd.DataFrame, y_proba, threshold: float, as_of_day: int) -> dict:
    scores = np.asarray(y_proba, dtype=float)
    known = window["tx_label_seconds"].to_numpy() <= (as_of_day + 1) * 86_400
    known_fraud = known & (window["tx_fraud"].to_numpy() == 1)
    alerted = scores >= threshold
    return {
        "precision": float(known_fraud[alerted].sum() / max(alerted.sum(), 1)),
        "recall": float(alerted[known_fraud].sum() / max(known_fraud.sum(), 1)),
        "label_coverage": float(known.mean()),
    }
