# ruff: noqa
# %% correct: a loop over transactions
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    total = 0.0
    for truth, decision, value in zip(y_true, y_pred, amount):
        if truth == 1 and decision == 0:
            total += float(value)
        elif truth == 0 and decision == 1:
            total += false_alarm_cost
    return total


# %% correct: pandas masks
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    tx = pd.DataFrame({"y": list(y_true), "alert": list(y_pred), "amount": list(amount)})
    missed = tx.loc[(tx.y == 1) & (tx.alert == 0), "amount"].sum()
    false_alarms = int(((tx.y == 0) & (tx.alert == 1)).sum())
    return float(missed + false_alarms * false_alarm_cost)


# %% wrong: a false alarm costs its amount
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    y, p, a = np.asarray(y_true), np.asarray(y_pred), np.asarray(amount, dtype=float)
    return float(a[(y == 1) & (p == 0)].sum() + a[(y == 0) & (p == 1)].sum())


# %% wrong: a missed fraud costs false_alarm_cost, a false alarm its amount
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    y, p, a = np.asarray(y_true), np.asarray(y_pred), np.asarray(amount, dtype=float)
    return float(false_alarm_cost * ((y == 1) & (p == 0)).sum() + a[(y == 0) & (p == 1)].sum())


# %% wrong: charges every fraud's amount, caught ones too
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    y, p, a = np.asarray(y_true), np.asarray(y_pred), np.asarray(amount, dtype=float)
    return float(a[y == 1].sum() + false_alarm_cost * ((y == 0) & (p == 1)).sum())


# %% wrong: charges false_alarm_cost for every alert, caught frauds too
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    y, p, a = np.asarray(y_true), np.asarray(y_pred), np.asarray(amount, dtype=float)
    return float(a[(y == 1) & (p == 0)].sum() + false_alarm_cost * (p == 1).sum())


# %% wrong: forwards to the package
def decision_cost(y_true, y_pred, amount, false_alarm_cost: float) -> float:
    model = evaluate.CostModel(missed_fraud_fixed=0.0, false_alarm=false_alarm_cost)
    return float(evaluate.decision_cost(y_true, y_pred, amount, model)["total"])
