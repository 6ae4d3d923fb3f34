# ruff: noqa
# %% correct: asof lookups of the counters at each window's start
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    t = scrapes.index[-1]
    burns = []
    for w in (long_window, short_window):
        start_time = t - w
        start = scrapes.loc[:start_time].iloc[-1] if (scrapes.index <= start_time).any() else scrapes.iloc[0]
        total = scrapes["requests"].iloc[-1] - start["requests"]
        if total == 0:
            return False
        burns.append((scrapes["bad"].iloc[-1] - start["bad"]) / total / (1 - slo))
    return min(burns) >= burn_rate


# %% correct: numpy searchsorted on the index
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    times = scrapes.index
    requests, bad = scrapes["requests"].to_numpy(float), scrapes["bad"].to_numpy(float)
    budget = 1 - slo
    for w in (short_window, long_window):
        i = max(int(np.searchsorted(times, times[-1] - w, side="right")) - 1, 0)
        n = requests[-1] - requests[i]
        if n <= 0 or (bad[-1] - bad[i]) / n / budget < burn_rate:
            return False
    return True


# %% wrong: the long window only (keeps paging after the fix)
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    end = scrapes.index[-1]
    older = scrapes[scrapes.index <= end - long_window]
    start = older.iloc[-1] if len(older) else scrapes.iloc[0]
    n = scrapes["requests"].iloc[-1] - start["requests"]
    return bool(n > 0 and (scrapes["bad"].iloc[-1] - start["bad"]) / n / (1 - slo) >= burn_rate)


# %% wrong: the short window only (pages on every blip)
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    end = scrapes.index[-1]
    older = scrapes[scrapes.index <= end - short_window]
    start = older.iloc[-1] if len(older) else scrapes.iloc[0]
    n = scrapes["requests"].iloc[-1] - start["requests"]
    return bool(n > 0 and (scrapes["bad"].iloc[-1] - start["bad"]) / n / (1 - slo) >= burn_rate)


# %% wrong: the cumulative totals since the first scrape, not the increase over each window
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    last = scrapes.iloc[-1]
    if last["requests"] == 0:
        return False
    return bool(last["bad"] / last["requests"] / (1 - slo) >= burn_rate)


# %% wrong: the bad share compared with the burn rate, without dividing by the error budget
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    end = scrapes.index[-1]
    for w in (long_window, short_window):
        older = scrapes[scrapes.index <= end - w]
        start = older.iloc[-1] if len(older) else scrapes.iloc[0]
        n = scrapes["requests"].iloc[-1] - start["requests"]
        if n <= 0 or (scrapes["bad"].iloc[-1] - start["bad"]) / n < burn_rate:
            return False
    return True


# %% wrong: the error budget hard-coded at 1% (right only for a 99% SLO)
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    end = scrapes.index[-1]
    for w in (long_window, short_window):
        older = scrapes[scrapes.index <= end - w]
        start = older.iloc[-1] if len(older) else scrapes.iloc[0]
        n = scrapes["requests"].iloc[-1] - start["requests"]
        if n <= 0 or (scrapes["bad"].iloc[-1] - start["bad"]) / n / 0.01 < burn_rate:
            return False
    return True


# %% wrong: the counters summed over the window's scrapes as if they were per-scrape counts
def burn_rate_firing(
    scrapes: pd.DataFrame, slo: float, long_window: pd.Timedelta, short_window: pd.Timedelta, burn_rate: float
) -> bool:
    end = scrapes.index[-1]
    for w in (long_window, short_window):
        inside = scrapes[scrapes.index > end - w]
        n = inside["requests"].sum()
        if n <= 0 or inside["bad"].sum() / n / (1 - slo) < burn_rate:
            return False
    return True
