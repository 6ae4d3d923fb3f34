# ruff: noqa
# %% correct: a plain double loop per customer
def customer_spend_7d(transactions) -> pd.Series:
    week = 7 * 86_400
    result = pd.Series(0.0, index=transactions.index)
    for _, rows in transactions.groupby("customer_id"):
        times = rows["tx_time_seconds"].to_numpy()
        amounts = rows["tx_amount"].to_numpy(dtype=float)
        for label, t in zip(rows.index, times):
            inside = (times > t - week) & (times <= t)
            result.loc[label] = amounts[inside].sum()
    return result


# %% correct: a self-merge on the customer, then a filter on the time difference
def customer_spend_7d(transactions) -> pd.Series:
    left = transactions[["customer_id", "tx_time_seconds"]].reset_index(names="row")
    right = transactions[["customer_id", "tx_time_seconds", "tx_amount"]]
    pairs = left.merge(right, on="customer_id", suffixes=("", "_other"))
    lag = pairs["tx_time_seconds"] - pairs["tx_time_seconds_other"]
    inside = pairs[(lag >= 0) & (lag < 7 * 86_400)]
    return inside.groupby("row")["tx_amount"].sum().reindex(transactions.index).astype(float)


# %% wrong: pandas rolling("7D") leaves out later rows of the same second
def customer_spend_7d(transactions) -> pd.Series:
    tx = transactions.assign(when=pd.to_datetime(transactions["tx_time_seconds"], unit="s"))
    tx = tx.sort_values(["customer_id", "when"], kind="stable")
    rolled = tx.groupby("customer_id").rolling("7D", on="when")["tx_amount"].sum()
    return pd.Series(rolled.to_numpy(), index=tx.index).reindex(transactions.index)


# %% wrong: the window includes a transaction exactly 7 days back, [t - 7 days, t]
def customer_spend_7d(transactions) -> pd.Series:
    week = 7 * 86_400
    result = pd.Series(0.0, index=transactions.index)
    for _, rows in transactions.groupby("customer_id"):
        times, amounts = rows["tx_time_seconds"].to_numpy(), rows["tx_amount"].to_numpy(dtype=float)
        for label, t in zip(rows.index, times):
            result.loc[label] = amounts[(times >= t - week) & (times <= t)].sum()
    return result


# %% wrong: the current transaction is left out
def customer_spend_7d(transactions) -> pd.Series:
    week = 7 * 86_400
    result = pd.Series(0.0, index=transactions.index)
    for _, rows in transactions.groupby("customer_id"):
        times, amounts = rows["tx_time_seconds"].to_numpy(), rows["tx_amount"].to_numpy(dtype=float)
        for label, t in zip(rows.index, times):
            result.loc[label] = amounts[(times > t - week) & (times < t)].sum()
    return result


# %% wrong: whole days (the last 7 calendar days), not a sliding 7-day window
def customer_spend_7d(transactions) -> pd.Series:
    day = transactions["tx_time_seconds"] // 86_400
    result = pd.Series(0.0, index=transactions.index)
    for _, rows in transactions.assign(day=day).groupby("customer_id"):
        for label, d in zip(rows.index, rows["day"]):
            result.loc[label] = rows.loc[(rows["day"] > d - 7) & (rows["day"] <= d), "tx_amount"].sum()
    return result


# %% wrong: assumes the rows arrive sorted by time (cumsum without sorting)
def customer_spend_7d(transactions) -> pd.Series:
    week = 7 * 86_400
    spend = pd.Series(0.0, index=transactions.index)
    for _, rows in transactions.groupby("customer_id", sort=False):
        times = rows["tx_time_seconds"].to_numpy()
        running = np.concatenate([[0.0], np.cumsum(rows["tx_amount"].to_numpy(dtype=float))])
        first = np.searchsorted(times, times - week, side="right")
        last = np.searchsorted(times, times, side="right")
        spend.loc[rows.index] = running[last] - running[first]
    return spend


# %% wrong: returns the values in sorted order with a fresh index
def customer_spend_7d(transactions) -> pd.Series:
    week = 7 * 86_400
    ordered = transactions.sort_values(["customer_id", "tx_time_seconds"], kind="stable")
    out = []
    for _, rows in ordered.groupby("customer_id", sort=False):
        times, amounts = rows["tx_time_seconds"].to_numpy(), rows["tx_amount"].to_numpy(dtype=float)
        out += [amounts[(times > t - week) & (times <= t)].sum() for t in times]
    return pd.Series(out, dtype=float)


# %% wrong: forwards to the package (count x average of the 7-day window)
def customer_spend_7d(transactions) -> pd.Series:
    built = features.build_features(transactions.assign(transaction_id=range(len(transactions))))
    return built["customer_id_nb_tx_7day_window"] * built["customer_id_avg_amount_7day_window"]
