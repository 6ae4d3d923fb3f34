# ruff: noqa
# %% correct: boolean masks with between and where
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    first, last = as_of_day - maturity_days - train_days, as_of_day - maturity_days - 1
    rows = transactions[transactions["tx_time_days"].between(first, last)].copy()
    known = rows["tx_label_seconds"].fillna(np.inf) <= as_of_day * 86_400
    rows["tx_fraud"] = np.where(known & (rows["tx_fraud"] == 1), 1, 0)
    return rows


# %% correct: a query and a row-by-row label
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    end = as_of_day - maturity_days
    rows = transactions.query("@end - @train_days <= tx_time_days < @end").copy()
    cutoff = as_of_day * 86_400
    rows["tx_fraud"] = [
        1 if fraud == 1 and not pd.isna(when) and when <= cutoff else 0
        for fraud, when in zip(rows["tx_fraud"], rows["tx_label_seconds"])
    ]
    return rows


# %% wrong: "everything up to yesterday": the immature days are kept
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    days = transactions["tx_time_days"]
    rows = transactions[(days >= as_of_day - train_days) & (days < as_of_day)].copy()
    known = rows["tx_label_seconds"].to_numpy(dtype=float) <= as_of_day * 86_400
    rows["tx_fraud"] = ((rows["tx_fraud"].to_numpy() == 1) & known).astype(int)
    return rows


# %% wrong: the labels as the simulator knows them, not as known at as_of_day
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    end = as_of_day - maturity_days
    days = transactions["tx_time_days"]
    return transactions[(days >= end - train_days) & (days < end)].copy()


# %% wrong: off by one, the window includes the first immature day
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    end = as_of_day - maturity_days
    days = transactions["tx_time_days"]
    rows = transactions[(days > end - train_days) & (days <= end)].copy()
    known = rows["tx_label_seconds"].to_numpy(dtype=float) <= as_of_day * 86_400
    rows["tx_fraud"] = ((rows["tx_fraud"].to_numpy() == 1) & known).astype(int)
    return rows


# %% wrong: labels known by the end of as_of_day (a day into the future)
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    end = as_of_day - maturity_days
    days = transactions["tx_time_days"]
    rows = transactions[(days >= end - train_days) & (days < end)].copy()
    known = rows["tx_label_seconds"].to_numpy(dtype=float) < (as_of_day + 1) * 86_400
    rows["tx_fraud"] = ((rows["tx_fraud"].to_numpy() == 1) & known).astype(int)
    return rows


# %% wrong: a label reported exactly at the start of the day is treated as unknown
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    end = as_of_day - maturity_days
    days = transactions["tx_time_days"]
    rows = transactions[(days >= end - train_days) & (days < end)].copy()
    known = rows["tx_label_seconds"].to_numpy(dtype=float) < as_of_day * 86_400
    rows["tx_fraud"] = ((rows["tx_fraud"].to_numpy() == 1) & known).astype(int)
    return rows


# %% wrong: relabels the caller's frame in place
def training_window(transactions: pd.DataFrame, as_of_day: int, maturity_days: int, train_days: int) -> pd.DataFrame:
    known = transactions["tx_label_seconds"].to_numpy(dtype=float) <= as_of_day * 86_400
    transactions["tx_fraud"] = ((transactions["tx_fraud"].to_numpy() == 1) & known).astype(int)
    end = as_of_day - maturity_days
    days = transactions["tx_time_days"]
    return transactions[(days >= end - train_days) & (days < end)]
