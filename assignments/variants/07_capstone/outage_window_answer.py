# ruff: noqa
# %% correct: numpy arrays instead of pandas filters
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    status = requests["status"].to_numpy()
    sent = requests["sent_s"].to_numpy()
    done = requests["done_s"].to_numpy()
    bad = (status != 200) & (done >= after_s)
    if not bad.any():
        return {"first_failure_s": float("nan"), "recovered_s": float("nan"), "recovery_s": 0.0}
    first = done[bad].min()
    after = sent[(status == 200) & (sent > sent[bad].max())]
    recovered = after.min() if after.size else float("nan")
    return {"first_failure_s": float(first), "recovered_s": float(recovered), "recovery_s": float(recovered - first)}


# %% correct: a loop over the rows in send order
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    first, last_sent = None, None
    for row in requests.itertuples():
        if row.status != 200 and row.done_s >= after_s:
            first = row.done_s if first is None else min(first, row.done_s)
            last_sent = row.sent_s if last_sent is None else max(last_sent, row.sent_s)
    if first is None:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    recovered = min(
        (row.sent_s for row in requests.itertuples() if row.status == 200 and row.sent_s > last_sent), default=math.nan
    )
    return {"first_failure_s": first, "recovered_s": recovered, "recovery_s": recovered - first}


# %% wrong: the first failure by its send time
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    failed = requests[(requests["status"] != 200) & (requests["done_s"] >= after_s)]
    if failed.empty:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    first = float(failed["sent_s"].min())
    later = requests[(requests["status"] == 200) & (requests["sent_s"] > failed["sent_s"].max())]
    recovered = float(later["sent_s"].min())
    return {"first_failure_s": first, "recovered_s": recovered, "recovery_s": recovered - first}


# %% wrong: recovery at the first success after the first failure
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    failed = requests[(requests["status"] != 200) & (requests["done_s"] >= after_s)]
    if failed.empty:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    first = float(failed["done_s"].min())
    later = requests[(requests["status"] == 200) & (requests["sent_s"] > failed["sent_s"].min())]
    recovered = float(later["sent_s"].min())
    return {"first_failure_s": first, "recovered_s": recovered, "recovery_s": recovered - first}


# %% wrong: only status 0 counts as a failure
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    failed = requests[(requests["status"] == 0) & (requests["done_s"] >= after_s)]
    if failed.empty:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    first = float(failed["done_s"].min())
    later = requests[(requests["status"] == 200) & (requests["sent_s"] > failed["sent_s"].max())]
    recovered = float(later["sent_s"].min())
    return {"first_failure_s": first, "recovered_s": recovered, "recovery_s": recovered - first}


# %% wrong: recovered when the first success came back (done_s), not when it was sent
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    failed = requests[(requests["status"] != 200) & (requests["done_s"] >= after_s)]
    if failed.empty:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    first = float(failed["done_s"].min())
    later = requests[(requests["status"] == 200) & (requests["sent_s"] > failed["sent_s"].max())]
    recovered = float(later["done_s"].min())
    return {"first_failure_s": first, "recovered_s": recovered, "recovery_s": recovered - first}


# %% wrong: after_s ignored
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    failed = requests[requests["status"] != 200]
    if failed.empty:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    first = float(failed["done_s"].min())
    later = requests[(requests["status"] == 200) & (requests["sent_s"] > failed["sent_s"].max())]
    recovered = float(later["sent_s"].min())
    return {"first_failure_s": first, "recovered_s": recovered, "recovery_s": recovered - first}


# %% wrong: the notebook's clock instead of the evidence's
def outage_window(requests: pd.DataFrame, after_s: float = 0.0) -> dict:
    import time

    failed = requests[(requests["status"] != 200) & (requests["done_s"] >= after_s)]
    if failed.empty:
        return {"first_failure_s": math.nan, "recovered_s": math.nan, "recovery_s": 0.0}
    first = float(failed["done_s"].min())
    return {"first_failure_s": first, "recovered_s": time.time(), "recovery_s": time.time() - first}
