# ruff: noqa
# %% correct: numpy masks and a dict comprehension
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    names = verdicts["detector"].to_numpy()
    fired = verdicts["alarm"].to_numpy(dtype=bool) & (verdicts["day"].to_numpy() >= start_day)
    days = verdicts["day"].to_numpy()
    return {
        name: float(days[fired & (names == name)].min() - start_day) if (fired & (names == name)).any() else math.nan
        for name in pd.unique(names)
    }


# %% correct: sort by day, keep the first alarm per detector, then add the silent ones
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    after = verdicts[(verdicts["day"] >= start_day) & verdicts["alarm"]].sort_values("day")
    first = after.drop_duplicates("detector").set_index("detector")["day"]
    return {
        name: (int(first[name]) - start_day if name in first.index else math.nan)
        for name in verdicts["detector"].unique()
    }


# %% wrong: alarms before the start count as detections
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    delays = {}
    for detector, rows in verdicts.groupby("detector", sort=False):
        fired = rows.loc[rows["alarm"].astype(bool), "day"]
        delays[detector] = int(fired.min() - start_day) if len(fired) else math.nan
    return delays


# %% wrong: the value column read as the alarm
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    column = "value" if "value" in verdicts.columns else "alarm"
    delays = {}
    for detector, rows in verdicts.groupby("detector", sort=False):
        fired = rows.loc[rows[column].astype(bool) & (rows["day"] >= start_day), "day"]
        delays[detector] = int(fired.min() - start_day) if len(fired) else math.nan
    return delays


# %% wrong: detectors that never fired are left out
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    after = verdicts[(verdicts["day"] >= start_day) & verdicts["alarm"]]
    return {name: int(day - start_day) for name, day in after.groupby("detector")["day"].min().items()}


# %% wrong: the start day counted as day one of the delay
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    delays = {}
    for detector, rows in verdicts.groupby("detector", sort=False):
        fired = rows.loc[rows["alarm"].astype(bool) & (rows["day"] >= start_day), "day"]
        delays[detector] = int(fired.min() - start_day + 1) if len(fired) else math.nan
    return delays


# %% wrong: the first alarm in row order, not the earliest day
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    delays = {}
    for detector, rows in verdicts.groupby("detector", sort=False):
        fired = rows.loc[rows["alarm"].astype(bool) & (rows["day"] >= start_day), "day"]
        delays[detector] = int(fired.iloc[0] - start_day) if len(fired) else math.nan
    return delays


# %% wrong: a strict comparison leaves out an alarm on the start day
def detection_delays(verdicts: pd.DataFrame, start_day: int) -> dict:
    delays = {}
    for detector, rows in verdicts.groupby("detector", sort=False):
        fired = rows.loc[rows["alarm"].astype(bool) & (rows["day"] > start_day), "day"]
        delays[detector] = int(fired.min() - start_day) if len(fired) else math.nan
    return delays
