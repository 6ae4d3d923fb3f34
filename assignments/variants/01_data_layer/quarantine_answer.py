# ruff: noqa
# %% correct: a table of rule functions, checked in order, over itertuples
def quarantine_batch(batch, known_customers, known_terminals):
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    seen, state = set(), {"latest": None}

    def is_number(v):
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))

    rules = [
        ("null", lambda r: any(pd.isna(getattr(r, c)) for c in columns)),
        ("wrong_type", lambda r: not is_number(r.tx_amount)),
        ("negative_amount", lambda r: r.tx_amount < 0),
        ("unknown_id", lambda r: r.customer_id not in known_customers or r.terminal_id not in known_terminals),
        ("duplicate_id", lambda r: r.transaction_id in seen),
        ("out_of_order", lambda r: state["latest"] is not None and r.tx_datetime < state["latest"]),
    ]
    reasons = {}
    for row in batch.itertuples():
        broken = next((name for name, rule in rules if rule(row)), None)
        if not pd.isna(row.transaction_id):
            seen.add(row.transaction_id)
        if broken is None:
            state["latest"] = row.tx_datetime
        else:
            reasons[row.Index] = broken
    mask = batch.index.isin(list(reasons))
    return batch[~mask], batch[mask].assign(reason=[reasons[i] for i in batch.index[mask]])


# %% correct: positions and plain lists, built output with iloc
def quarantine_batch(batch, known_customers, known_terminals):
    cols = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    seen, latest, bad, reasons = set(), None, [], []
    for position in range(len(batch)):
        row = batch.iloc[position]
        values = [row[c] for c in cols]
        amount = row["tx_amount"]
        if any(v is None or (not isinstance(v, str) and pd.isna(v)) for v in values):
            reason = "null"
        elif type(amount) is bool or not isinstance(amount, (int, float, np.number)):
            reason = "wrong_type"
        elif amount < 0:
            reason = "negative_amount"
        elif row["customer_id"] not in known_customers or row["terminal_id"] not in known_terminals:
            reason = "unknown_id"
        elif row["transaction_id"] in seen:
            reason = "duplicate_id"
        elif latest is not None and row["tx_datetime"] < latest:
            reason = "out_of_order"
        else:
            reason = ""
            latest = row["tx_datetime"]
        if not pd.isna(row["transaction_id"]):
            seen.add(row["transaction_id"])
        if reason:
            bad.append(position)
            reasons.append(reason)
    keep = [p for p in range(len(batch)) if p not in set(bad)]
    quarantined = batch.iloc[bad].copy()
    quarantined["reason"] = reasons
    return batch.iloc[keep], quarantined


# %% wrong: duplicate and order rules checked before the value rules
def quarantine_batch(batch, known_customers, known_terminals):
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    reasons, seen, latest = {}, set(), None
    for index, row in batch.iterrows():
        amount = row["tx_amount"]
        if any(pd.isna(row[c]) for c in columns):
            reason = "null"
        elif row["transaction_id"] in seen:
            reason = "duplicate_id"
        elif latest is not None and row["tx_datetime"] < latest:
            reason = "out_of_order"
        elif isinstance(amount, (str, bool)) or not isinstance(amount, (int, float, np.integer, np.floating)):
            reason = "wrong_type"
        elif amount < 0:
            reason = "negative_amount"
        elif row["customer_id"] not in known_customers or row["terminal_id"] not in known_terminals:
            reason = "unknown_id"
        else:
            reason = None
        if not pd.isna(row["transaction_id"]):
            seen.add(row["transaction_id"])
        if reason is None:
            latest = row["tx_datetime"]
        else:
            reasons[index] = reason
    rejected = batch.index.isin(list(reasons))
    quarantined = batch[rejected].copy()
    quarantined["reason"] = [reasons[i] for i in quarantined.index]
    return batch[~rejected], quarantined


# %% wrong: a time equal to the latest accepted one counts as out of order (<=)
def quarantine_batch(batch, known_customers, known_terminals):
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    reasons, seen, latest = {}, set(), None
    for index, row in batch.iterrows():
        amount = row["tx_amount"]
        if any(pd.isna(row[c]) for c in columns):
            reason = "null"
        elif isinstance(amount, (str, bool)) or not isinstance(amount, (int, float, np.integer, np.floating)):
            reason = "wrong_type"
        elif amount < 0:
            reason = "negative_amount"
        elif row["customer_id"] not in known_customers or row["terminal_id"] not in known_terminals:
            reason = "unknown_id"
        elif row["transaction_id"] in seen:
            reason = "duplicate_id"
        elif latest is not None and row["tx_datetime"] <= latest:
            reason = "out_of_order"
        else:
            reason = None
        if not pd.isna(row["transaction_id"]):
            seen.add(row["transaction_id"])
        if reason is None:
            latest = row["tx_datetime"]
        else:
            reasons[index] = reason
    rejected = batch.index.isin(list(reasons))
    quarantined = batch[rejected].copy()
    quarantined["reason"] = [reasons[i] for i in quarantined.index]
    return batch[~rejected], quarantined


# %% wrong: writes the reason column into the caller's batch
def quarantine_batch(batch, known_customers, known_terminals):
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    seen, latest = set(), None
    batch["reason"] = ""
    for index, row in batch.iterrows():
        amount = row["tx_amount"]
        if any(pd.isna(row[c]) for c in columns):
            reason = "null"
        elif isinstance(amount, (str, bool)) or not isinstance(amount, (int, float, np.integer, np.floating)):
            reason = "wrong_type"
        elif amount < 0:
            reason = "negative_amount"
        elif row["customer_id"] not in known_customers or row["terminal_id"] not in known_terminals:
            reason = "unknown_id"
        elif row["transaction_id"] in seen:
            reason = "duplicate_id"
        elif latest is not None and row["tx_datetime"] < latest:
            reason = "out_of_order"
        else:
            reason = ""
        if not pd.isna(row["transaction_id"]):
            seen.add(row["transaction_id"])
        if not reason:
            latest = row["tx_datetime"]
        batch.loc[index, "reason"] = reason
    rejected = batch["reason"] != ""
    return batch.loc[~rejected, columns], batch[rejected]


# %% wrong: duplicates only of accepted rows count
def quarantine_batch(batch, known_customers, known_terminals):
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    reasons, seen, latest = {}, set(), None
    for index, row in batch.iterrows():
        amount = row["tx_amount"]
        if any(pd.isna(row[c]) for c in columns):
            reason = "null"
        elif isinstance(amount, (str, bool)) or not isinstance(amount, (int, float, np.integer, np.floating)):
            reason = "wrong_type"
        elif amount < 0:
            reason = "negative_amount"
        elif row["customer_id"] not in known_customers or row["terminal_id"] not in known_terminals:
            reason = "unknown_id"
        elif row["transaction_id"] in seen:
            reason = "duplicate_id"
        elif latest is not None and row["tx_datetime"] < latest:
            reason = "out_of_order"
        else:
            reason = None
        if reason is None:
            seen.add(row["transaction_id"])
            latest = row["tx_datetime"]
        else:
            reasons[index] = reason
    rejected = batch.index.isin(list(reasons))
    quarantined = batch[rejected].copy()
    quarantined["reason"] = [reasons[i] for i in quarantined.index]
    return batch[~rejected], quarantined


# %% wrong: forwards to the package's validator
def quarantine_batch(batch, known_customers, known_terminals):
    from mlsys_lab.data import validation

    result = validation.validate(batch, known_customers=known_customers, known_terminals=known_terminals)
    quarantined = result.quarantined.rename(columns={"rules": "reason"})
    quarantined["reason"] = quarantined["reason"].map(lambda r: r.split(",")[0] if isinstance(r, str) else r)
    return result.accepted, quarantined
