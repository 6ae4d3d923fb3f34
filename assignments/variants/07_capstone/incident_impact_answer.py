# ruff: noqa
# %% correct: a merge against the log
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    answered = requests[requests["status"] == 200][["request_id"]]
    merged = answered.merge(decisions[["request_id"]].drop_duplicates(), on="request_id", how="left", indicator=True)
    failed = len(requests) - len(answered)
    allowed = len(requests) * (1 - slo)
    return {
        "requests_failed": failed,
        "decisions_lost": int((merged["_merge"] == "left_only").sum()),
        "error_budget_burnt": failed / allowed if len(requests) else 0.0,
    }


# %% correct: error ratio over the allowed ratio
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    ok = requests["status"].eq(200)
    failed = int(len(ok) - ok.sum())
    logged = set(decisions["request_id"].tolist())
    lost = sum(1 for rid in requests.loc[ok, "request_id"] if rid not in logged)
    ratio = failed / len(requests) if len(requests) else 0.0
    return {"requests_failed": failed, "decisions_lost": lost, "error_budget_burnt": ratio / (1 - slo)}


# %% wrong: only connection errors (status 0) count as failed
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    failed = int((requests["status"] == 0).sum())
    acknowledged = set(requests.loc[requests["status"] == 200, "request_id"])
    lost = len(acknowledged - set(decisions["request_id"]))
    budget = (1 - slo) * len(requests)
    return {"requests_failed": failed, "decisions_lost": lost, "error_budget_burnt": failed / budget if budget else 0.0}


# %% wrong: lost decisions as a count difference
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    ok = requests["status"] == 200
    failed = int((~ok).sum())
    lost = max(0, int(ok.sum()) - len(decisions))
    budget = (1 - slo) * len(requests)
    return {"requests_failed": failed, "decisions_lost": lost, "error_budget_burnt": failed / budget if budget else 0.0}


# %% wrong: failed requests counted as lost decisions
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    failed = int((requests["status"] != 200).sum())
    budget = (1 - slo) * len(requests)
    return {
        "requests_failed": failed,
        "decisions_lost": failed,
        "error_budget_burnt": failed / budget if budget else 0.0,
    }


# %% wrong: the budget burnt is the error ratio (slo forgotten)
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    ok = requests["status"] == 200
    failed = int((~ok).sum())
    lost = len(set(requests.loc[ok, "request_id"]) - set(decisions["request_id"]))
    return {
        "requests_failed": failed,
        "decisions_lost": lost,
        "error_budget_burnt": failed / len(requests) if len(requests) else 0.0,
    }


# %% wrong: the budget as slo x requests
def incident_impact(requests: pd.DataFrame, decisions: pd.DataFrame, slo: float = 0.99) -> dict:
    ok = requests["status"] == 200
    failed = int((~ok).sum())
    lost = len(set(requests.loc[ok, "request_id"]) - set(decisions["request_id"]))
    budget = slo * len(requests)
    return {"requests_failed": failed, "decisions_lost": lost, "error_budget_burnt": failed / budget if budget else 0.0}
