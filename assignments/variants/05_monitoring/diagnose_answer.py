# ruff: noqa
# %% correct: the same order of checks, with the bug signatures per feature over the days after it starts
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    per_feature = drift.groupby(level="feature")
    always_zero = per_feature.apply(lambda g: ((g["zero_share"] >= 0.99) & (g["reference_zero_share"] < 0.5)).any())
    ratio = drift["median_ratio"].where(np.isfinite(drift["median_ratio"]))
    if always_zero.any() or ((ratio > 50) | (ratio < 0.02)).any():
        return "pipeline bug"
    if int(recall["alarm"].sum()) >= 3:
        return "concept drift"
    alarm_days = drift["alarm"].groupby(level="day").any()
    return "data drift" if alarm_days.sum() >= 3 else "none"


# %% correct: scores for each cause, the strongest wins
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    ratio = drift["median_ratio"].replace([np.inf, -np.inf], np.nan).abs()
    bug = int(((drift["zero_share"] > 0.98) & (drift["reference_zero_share"] < 0.3)).any()) + int(
        (np.log10(ratio) > 1.5).any()
    )
    concept = int(recall["alarm"].sum() >= 4)
    data = int(drift["alarm"].groupby(level="day").sum().gt(0).sum() >= 2)
    if bug:
        return "pipeline bug"
    if concept:
        return "concept drift"
    if data:
        return "data drift"
    return "none"


# %% wrong: any feature alarm is data drift (bugs and concept drift called data drift)
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    if drift["alarm"].any():
        return "data drift"
    if recall["alarm"].any():
        return "concept drift"
    return "none"


# %% wrong: one recall alarm day is concept drift (the detector's own noise on a drift-free world)
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    stuck = (drift["zero_share"] >= 0.99) & (drift["reference_zero_share"] < 0.5)
    ratio = drift["median_ratio"].replace([np.inf, -np.inf], np.nan)
    if stuck.any() or ((ratio > 20) | (ratio < 0.05)).any():
        return "pipeline bug"
    if recall["alarm"].any():
        return "concept drift"
    if drift["alarm"].groupby(level="day").any().sum() >= 2:
        return "data drift"
    return "none"


# %% wrong: ignores the labels (concept drift is invisible to it)
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    stuck = (drift["zero_share"] >= 0.99) & (drift["reference_zero_share"] < 0.5)
    ratio = drift["median_ratio"].replace([np.inf, -np.inf], np.nan)
    if stuck.any() or ((ratio > 20) | (ratio < 0.05)).any():
        return "pipeline bug"
    if drift["alarm"].groupby(level="day").any().sum() >= 2:
        return "data drift"
    return "none"


# %% wrong: the folklore PSI > 0.1 on any feature means data drift
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    stuck = (drift["zero_share"] >= 0.99) & (drift["reference_zero_share"] < 0.5)
    if stuck.any():
        return "pipeline bug"
    if (drift["psi"] > 0.1).any():
        return "data drift"
    if recall["alarm"].any():
        return "concept drift"
    return "none"


# %% wrong: a zero share of 1 alone is a bug (features that are mostly 0 anyway trip it)
def diagnose(drift: pd.DataFrame, recall: pd.DataFrame) -> str:
    if (drift["zero_share"] >= 0.99).any():
        return "pipeline bug"
    if recall["alarm"].any():
        return "concept drift"
    if drift["alarm"].groupby(level="day").any().sum() >= 2:
        return "data drift"
    return "none"
