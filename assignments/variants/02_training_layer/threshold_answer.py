# ruff: noqa
# %% correct: pandas groupby per day, candidates from high to low
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    tx = pd.DataFrame(
        {
            "y": np.asarray(y_true),
            "s": np.asarray(y_proba, dtype=float),
            "a": np.asarray(amount, dtype=float),
            "d": np.asarray(day),
        }
    )
    costs = {}
    for threshold in candidates:
        alert = tx.s >= threshold
        if alert.groupby(tx.d).sum().max() <= alerts_per_day:
            costs[float(threshold)] = tx.a[(tx.y == 1) & ~alert].sum() + false_alarm_cost * ((tx.y == 0) & alert).sum()
    if not costs:
        return float("inf")
    return max(costs, key=lambda t: (-costs[t], t))


# %% correct: plain loops, per-day counts in a dict
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    rows = list(zip(list(y_true), list(y_proba), list(amount), list(day)))
    best = (float("inf"), -float("inf"))  # (cost, -threshold)
    for threshold in candidates:
        per_day, cost = {}, 0.0
        for y, s, a, d in rows:
            if s >= threshold:
                per_day[d] = per_day.get(d, 0) + 1
                cost += false_alarm_cost if y == 0 else 0.0
            elif y == 1:
                cost += a
        if max(per_day.values(), default=0) <= alerts_per_day and (cost, -threshold) < best:
            best = (cost, -threshold)
    return float(-best[1]) if best[0] < float("inf") else float("inf")


# %% wrong: a false alarm costs the transaction's amount
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    y, s, a, d = np.asarray(y_true), np.asarray(y_proba, dtype=float), np.asarray(amount, dtype=float), np.asarray(day)
    best_t, best_c = float("inf"), float("inf")
    for t in sorted(candidates, reverse=True):
        alert = s >= t
        if pd.Series(alert).groupby(d).sum().max() > alerts_per_day:
            continue
        cost = a[(y == 1) & ~alert].sum() + a[(y == 0) & alert].sum()
        if cost < best_c:
            best_t, best_c = float(t), cost
    return best_t


# %% wrong: false alarms cost nothing
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    y, s, a, d = np.asarray(y_true), np.asarray(y_proba, dtype=float), np.asarray(amount, dtype=float), np.asarray(day)
    best_t, best_c = float("inf"), float("inf")
    for t in sorted(candidates, reverse=True):
        alert = s >= t
        if pd.Series(alert).groupby(d).sum().max() > alerts_per_day:
            continue
        cost = a[(y == 1) & ~alert].sum()
        if cost < best_c:
            best_t, best_c = float(t), cost
    return best_t


# %% wrong: one budget for the whole period
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    y, s, a, d = np.asarray(y_true), np.asarray(y_proba, dtype=float), np.asarray(amount, dtype=float), np.asarray(day)
    best_t, best_c = float("inf"), float("inf")
    for t in sorted(candidates, reverse=True):
        alert = s >= t
        if alert.sum() > alerts_per_day * len(np.unique(d)):
            continue
        cost = a[(y == 1) & ~alert].sum() + false_alarm_cost * ((y == 0) & alert).sum()
        if cost < best_c:
            best_t, best_c = float(t), cost
    return best_t


# %% wrong: alerts on y_proba > threshold
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    y, s, a, d = np.asarray(y_true), np.asarray(y_proba, dtype=float), np.asarray(amount, dtype=float), np.asarray(day)
    best_t, best_c = float("inf"), float("inf")
    for t in sorted(candidates, reverse=True):
        alert = s > t
        if pd.Series(alert).groupby(d).sum().max() > alerts_per_day:
            continue
        cost = a[(y == 1) & ~alert].sum() + false_alarm_cost * ((y == 0) & alert).sum()
        if cost < best_c:
            best_t, best_c = float(t), cost
    return best_t


# %% wrong: equal costs go to the lower threshold
def cheapest_threshold(y_true, y_proba, amount, day, alerts_per_day: int, false_alarm_cost: float, candidates) -> float:
    y, s, a, d = np.asarray(y_true), np.asarray(y_proba, dtype=float), np.asarray(amount, dtype=float), np.asarray(day)
    best_t, best_c = float("inf"), float("inf")
    for t in sorted(candidates, reverse=True):
        alert = s >= t
        if pd.Series(alert).groupby(d).sum().max() > alerts_per_day:
            continue
        cost = a[(y == 1) & ~alert].sum() + false_alarm_cost * ((y == 0) & alert).sum()
        if cost <= best_c:
            best_t, best_c = float(t), cost
    return best_t
