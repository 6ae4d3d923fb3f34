# ruff: noqa
# %% correct: the unknown mask by hand, labels flipped with xor, past rows compared with Series.equals
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    unknown = (transactions["tx_label_seconds"] > as_of_seconds).to_numpy()
    flipped = transactions.copy()
    flipped["tx_fraud"] = np.where(unknown, flipped["tx_fraud"].astype(int) ^ 1, flipped["tx_fraud"])
    past = transactions["tx_time_seconds"] <= as_of_seconds
    before = pd.Series(np.asarray(feature_fn(transactions), dtype=float))[past.to_numpy()]
    after = pd.Series(np.asarray(feature_fn(flipped), dtype=float))[past.to_numpy()]
    return not before.reset_index(drop=True).equals(after.reset_index(drop=True))


# %% correct: with labels_known_at and a loop over past rows
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    known = data.labels_known_at(transactions, as_of_seconds)
    other = transactions.copy()
    other["tx_fraud"] = [y if k else 1 - y for y, k in zip(transactions["tx_fraud"], known)]
    a = np.asarray(feature_fn(transactions), dtype=float)
    b = np.asarray(feature_fn(other), dtype=float)
    for i, t in enumerate(transactions["tx_time_seconds"]):
        if t <= as_of_seconds and not (a[i] == b[i] or (np.isnan(a[i]) and np.isnan(b[i]))):
            return True
    return False


# %% wrong: sets unknown labels to 0 instead of flipping them
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    unknown = ~data.labels_known_at(transactions, as_of_seconds)
    zeroed = transactions.copy()
    zeroed.loc[unknown, "tx_fraud"] = 0
    before = np.asarray(feature_fn(transactions), dtype=float)
    after = np.asarray(feature_fn(zeroed), dtype=float)
    past = transactions["tx_time_seconds"].to_numpy() <= as_of_seconds
    return not np.allclose(before[past], after[past], equal_nan=True)


# %% wrong: only rows strictly before as_of are compared
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    unknown = ~data.labels_known_at(transactions, as_of_seconds)
    flipped = transactions.copy()
    flipped.loc[unknown, "tx_fraud"] = 1 - flipped.loc[unknown, "tx_fraud"]
    before = np.asarray(feature_fn(transactions), dtype=float)
    after = np.asarray(feature_fn(flipped), dtype=float)
    past = transactions["tx_time_seconds"].to_numpy() < as_of_seconds
    return not np.allclose(before[past], after[past], equal_nan=True)


# %% wrong: a label known exactly at as_of is treated as unknown
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    unknown = (transactions["tx_label_seconds"] >= as_of_seconds).to_numpy()
    flipped = transactions.copy()
    flipped.loc[unknown, "tx_fraud"] = 1 - flipped.loc[unknown, "tx_fraud"]
    before = np.asarray(feature_fn(transactions), dtype=float)
    after = np.asarray(feature_fn(flipped), dtype=float)
    past = transactions["tx_time_seconds"].to_numpy() <= as_of_seconds
    return not np.allclose(before[past], after[past], equal_nan=True)


# %% wrong: compares every row, future ones included
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    unknown = ~data.labels_known_at(transactions, as_of_seconds)
    flipped = transactions.copy()
    flipped.loc[unknown, "tx_fraud"] = 1 - flipped.loc[unknown, "tx_fraud"]
    before = np.asarray(feature_fn(transactions), dtype=float)
    after = np.asarray(feature_fn(flipped), dtype=float)
    return not np.allclose(before, after, equal_nan=True)


# %% wrong: flips the labels in the caller's table
def leaks_future_labels(feature_fn, transactions, as_of_seconds: int) -> bool:
    unknown = ~data.labels_known_at(transactions, as_of_seconds)
    before = np.asarray(feature_fn(transactions), dtype=float)
    transactions.loc[unknown, "tx_fraud"] = 1 - transactions.loc[unknown, "tx_fraud"]
    after = np.asarray(feature_fn(transactions), dtype=float)
    past = transactions["tx_time_seconds"].to_numpy() <= as_of_seconds
    return not np.allclose(before[past], after[past], equal_nan=True)
