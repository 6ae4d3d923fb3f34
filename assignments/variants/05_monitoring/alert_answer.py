# ruff: noqa
# %% correct: counts of the runs kept in a dict, a while loop
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    run = {"breach": 0, "safe": 0}
    firing, out, i = False, [], 0
    values = list(values)
    while i < len(values):
        v = values[i]
        run["breach"] = run["breach"] + 1 if v > threshold else 0
        run["safe"] = run["safe"] + 1 if v <= clear_threshold else 0
        if firing:
            firing = run["safe"] < clear_windows
        else:
            firing = run["breach"] >= for_windows
        out.append(firing)
        i += 1
    return out


# %% correct: looking back over the last windows with slices
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    values = [float(v) for v in values]
    states, firing = [], False
    for i in range(len(values)):
        last_fire = values[max(0, i - for_windows + 1) : i + 1]
        last_clear = values[max(0, i - clear_windows + 1) : i + 1]
        if not firing and len(last_fire) == for_windows and all(v > threshold for v in last_fire):
            firing = True
        elif firing and len(last_clear) == clear_windows and all(v <= clear_threshold for v in last_clear):
            firing = False
        states.append(firing)
    return states


# %% wrong: fires on any single breaching window
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    states, firing, safe = [], False, 0
    for v in values:
        safe = safe + 1 if v <= clear_threshold else 0
        if v > threshold:
            firing = True
        elif firing and safe >= clear_windows:
            firing = False
        states.append(firing)
    return states


# %% wrong: no hysteresis, clears as soon as the value is back under the threshold
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    states, firing, breaches, safe = [], False, 0, 0
    for v in values:
        breaches = breaches + 1 if v > threshold else 0
        safe = safe + 1 if v <= threshold else 0
        if not firing and breaches >= for_windows:
            firing = True
        elif firing and safe >= clear_windows:
            firing = False
        states.append(firing)
    return states


# %% wrong: counts breaching windows in total, not in a row
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    states, firing, breaches, safe = [], False, 0, 0
    for v in values:
        if v > threshold:
            breaches += 1
        safe = safe + 1 if v <= clear_threshold else 0
        if not firing and breaches >= for_windows:
            firing, breaches = True, 0
        elif firing and safe >= clear_windows:
            firing = False
        states.append(firing)
    return states


# %% wrong: an in-between value does not break the safe run
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    states, firing, breaches, safe = [], False, 0, 0
    for v in values:
        breaches = breaches + 1 if v > threshold else 0
        if v > threshold:
            safe = 0
        elif v <= clear_threshold:
            safe += 1
        if not firing and breaches >= for_windows:
            firing = True
        elif firing and safe >= clear_windows:
            firing = False
        states.append(firing)
    return states


# %% wrong: >= threshold breaches (a value at the threshold pages)
def alert_states(values, threshold: float, clear_threshold: float, for_windows: int, clear_windows: int) -> list:
    states, firing, breaches, safe = [], False, 0, 0
    for v in values:
        breaches = breaches + 1 if v >= threshold else 0
        safe = safe + 1 if v <= clear_threshold else 0
        if not firing and breaches >= for_windows:
            firing = True
        elif firing and safe >= clear_windows:
            firing = False
        states.append(firing)
    return states
