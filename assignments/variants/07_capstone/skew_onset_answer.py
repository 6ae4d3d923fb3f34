# ruff: noqa
# %% correct: an inner merge
def skew_onset_s(requests: pd.DataFrame, decisions: pd.DataFrame) -> float:
    joined = requests.merge(decisions[decisions["schema_version"] == "v2"][["transaction_id"]], on="transaction_id")
    return float(joined["intended_s"].min()) if len(joined) else float("nan")


# %% correct: a dict from transaction to time
def skew_onset_s(requests: pd.DataFrame, decisions: pd.DataFrame) -> float:
    when = dict(zip(requests["transaction_id"], requests["intended_s"]))
    times = [
        when[t] for t, v in zip(decisions["transaction_id"], decisions["schema_version"]) if v == "v2" and t in when
    ]
    return min(times) if times else math.nan


# %% wrong: the first v2 row of the log (commit order)
def skew_onset_s(requests: pd.DataFrame, decisions: pd.DataFrame) -> float:
    v2 = decisions[decisions["schema_version"] == "v2"]
    if v2.empty:
        return math.nan
    first = v2.iloc[0]["transaction_id"]
    return float(requests.loc[requests["transaction_id"] == first, "intended_s"].iloc[0])


# %% wrong: the actual send time instead of the intended one
def skew_onset_s(requests: pd.DataFrame, decisions: pd.DataFrame) -> float:
    v2 = set(decisions.loc[decisions["schema_version"] == "v2", "transaction_id"])
    times = requests.loc[requests["transaction_id"].isin(v2), "sent_s"]
    return float(times.min()) if len(times) else math.nan


# %% wrong: the last v1 request
def skew_onset_s(requests: pd.DataFrame, decisions: pd.DataFrame) -> float:
    v1 = set(decisions.loc[decisions["schema_version"] == "v1", "transaction_id"])
    times = requests.loc[requests["transaction_id"].isin(v1), "intended_s"]
    return float(times.max()) if len(times) else math.nan


# %% wrong: positions instead of the join on transaction_id
def skew_onset_s(requests: pd.DataFrame, decisions: pd.DataFrame) -> float:
    positions = [i for i, v in enumerate(decisions["schema_version"]) if v == "v2"]
    return float(requests["intended_s"].iloc[positions[0]]) if positions else math.nan
