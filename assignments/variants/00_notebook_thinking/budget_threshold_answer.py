# ruff: noqa
# %% correct: try every observed score from the lowest up, counting alerts per day with pandas
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    frame = pd.DataFrame({"score": np.asarray(y_proba, dtype=float), "day": np.asarray(day)})
    for threshold in np.unique(frame["score"]):
        if (frame["score"] >= threshold).groupby(frame["day"]).sum().max() <= alerts_per_day:
            return float(threshold)
    return float("inf")


# %% correct: the (budget + 1)-th highest score of each day with nlargest
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    scores = pd.Series(np.asarray(y_proba, dtype=float))
    days = pd.Series(np.asarray(day))
    bar = -np.inf
    for _, s in scores.groupby(days):
        if len(s) > alerts_per_day:
            bar = max(bar, s.nlargest(alerts_per_day + 1).iloc[-1])
    above = np.sort(scores[scores > bar].unique())
    return float(above[0]) if len(above) else float("inf")


# %% wrong: counts alerts with > instead of >=
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    scores, days = np.asarray(y_proba, dtype=float), np.asarray(day)
    for threshold in np.unique(scores):
        if max(int((scores[days == d] > threshold).sum()) for d in np.unique(days)) <= alerts_per_day:
            return float(threshold)
    return float("inf")


# %% wrong: one budget for the whole period (alerts_per_day x number of days)
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    scores, days = np.asarray(y_proba, dtype=float), np.asarray(day)
    budget = alerts_per_day * len(np.unique(days))
    for threshold in np.unique(scores):
        if (scores >= threshold).sum() <= budget:
            return float(threshold)
    return float("inf")


# %% wrong: off by one, the budget-th highest score of the busiest day
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    scores, days = np.asarray(y_proba, dtype=float), np.asarray(day)
    if alerts_per_day == 0:
        return float("inf")
    bar = -np.inf
    for d in np.unique(days):
        s = np.sort(scores[days == d])[::-1]
        if len(s) >= alerts_per_day:
            bar = max(bar, s[alerts_per_day - 1])
    return float(bar)


# %% wrong: the busiest day's (budget + 1)-th score nudged up, not an observed score
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    scores, days = np.asarray(y_proba, dtype=float), np.asarray(day)
    bar = -np.inf
    for d in np.unique(days):
        s = np.sort(scores[days == d])[::-1]
        if len(s) > alerts_per_day:
            bar = max(bar, s[alerts_per_day])
    return float(bar + 1e-9) if np.isfinite(bar) else float(scores.min())


# %% wrong: ignores ties, the k-th highest score of the busiest day
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    scores, days = np.asarray(y_proba, dtype=float), np.asarray(day)
    if alerts_per_day == 0:
        return float("inf")
    kth = [np.sort(scores[days == d])[::-1][min(alerts_per_day, (days == d).sum()) - 1] for d in np.unique(days)]
    return float(max(kth))


# %% wrong: forwards to the package
def threshold_for_budget(y_proba, day, alerts_per_day: int) -> float:
    from mlsys_lab.training.threshold import threshold_for_budget as package_version

    return package_version(y_proba, day, alerts_per_day)
