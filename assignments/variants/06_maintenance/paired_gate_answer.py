# ruff: noqa
# %% correct: a pivot table and a loop of resamples
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    table = checked.pivot_table(index="day", columns="model", values="fraud", aggfunc="mean")
    if list(sorted(table.columns)) != ["challenger", "champion"] or table.isna().to_numpy().any():
        raise ValueError("not the same days")
    gains = (table["challenger"] - table["champion"]).to_numpy()
    rng = np.random.default_rng(random_state)
    means = [rng.choice(gains, size=len(gains), replace=True).mean() for _ in range(n_resamples)]
    ci_low = float(np.percentile(means, 100 * (1 - confidence) / 2))
    days = len(gains)
    return {
        "days": days,
        "gain": float(np.mean(gains)),
        "ci_low": ci_low,
        "promote": days >= min_days and ci_low > margin,
    }


# %% correct: per-model series aligned by day, the legacy RandomState
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    champ = checked[checked["model"] == "champion"].groupby("day")["fraud"].mean()
    chall = checked[checked["model"] == "challenger"].groupby("day")["fraud"].mean()
    if len(champ) == 0 or len(chall) == 0 or not champ.index.equals(chall.index):
        raise ValueError("champion and challenger were checked on different days")
    gains = chall.to_numpy() - champ.to_numpy()
    rng = np.random.RandomState(random_state)
    picks = rng.randint(0, len(gains), size=(n_resamples, len(gains)))
    ci_low = float(np.quantile(gains[picks].mean(axis=1), (1 - confidence) / 2))
    return {
        "days": int(len(gains)),
        "gain": float(gains.mean()),
        "ci_low": ci_low,
        "promote": bool(len(gains) >= min_days and ci_low > margin),
    }


# %% wrong: resamples the checked cards instead of the days
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    precision = checked.groupby(["day", "model"])["fraud"].mean().unstack("model")
    if set(precision.columns) != {"champion", "challenger"} or precision.isna().any().any():
        raise ValueError("champion and challenger must be checked on the same days")
    gains = (precision["challenger"] - precision["champion"]).to_numpy(dtype=float)
    a = checked[checked["model"] == "challenger"]["fraud"].to_numpy()
    b = checked[checked["model"] == "champion"]["fraud"].to_numpy()
    rng = np.random.default_rng(random_state)
    means = [rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(n_resamples)]
    ci_low = float(np.quantile(means, (1 - confidence) / 2))
    return {
        "days": len(gains),
        "gain": float(gains.mean()),
        "ci_low": ci_low,
        "promote": bool(len(gains) >= min_days and ci_low > margin),
    }


# %% wrong: no margin, only a lower bound above zero
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    precision = checked.groupby(["day", "model"])["fraud"].mean().unstack("model")
    if set(precision.columns) != {"champion", "challenger"} or precision.isna().any().any():
        raise ValueError("champion and challenger must be checked on the same days")
    gains = (precision["challenger"] - precision["champion"]).to_numpy(dtype=float)
    rng = np.random.default_rng(random_state)
    means = gains[rng.integers(0, len(gains), size=(n_resamples, len(gains)))].mean(axis=1)
    ci_low = float(np.quantile(means, (1 - confidence) / 2))
    return {
        "days": len(gains),
        "gain": float(gains.mean()),
        "ci_low": ci_low,
        "promote": bool(len(gains) >= min_days and ci_low > 0),
    }


# %% wrong: one week is enough (no minimum number of days)
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    precision = checked.groupby(["day", "model"])["fraud"].mean().unstack("model")
    if set(precision.columns) != {"champion", "challenger"} or precision.isna().any().any():
        raise ValueError("champion and challenger must be checked on the same days")
    gains = (precision["challenger"] - precision["champion"]).to_numpy(dtype=float)
    rng = np.random.default_rng(random_state)
    means = gains[rng.integers(0, len(gains), size=(n_resamples, len(gains)))].mean(axis=1)
    ci_low = float(np.quantile(means, (1 - confidence) / 2))
    return {"days": len(gains), "gain": float(gains.mean()), "ci_low": ci_low, "promote": bool(ci_low > margin)}


# %% wrong: compares the two models' overall means, whatever days each was checked on
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    per_day = checked.groupby(["model", "day"])["fraud"].mean()
    champ = per_day.get("champion", pd.Series(dtype=float)).to_numpy()
    chall = per_day.get("challenger", pd.Series(dtype=float)).to_numpy()
    rng = np.random.default_rng(random_state)
    means = [rng.choice(chall, len(chall)).mean() - rng.choice(champ, len(champ)).mean() for _ in range(n_resamples)]
    ci_low = float(np.quantile(means, (1 - confidence) / 2))
    days = min(len(champ), len(chall))
    return {
        "days": days,
        "gain": float(chall.mean() - champ.mean()),
        "ci_low": ci_low,
        "promote": bool(days >= min_days and ci_low > margin),
    }


# %% wrong: the mean gain instead of its lower bound
def paired_gate(checked, *, margin=0.01, min_days=14, confidence=0.95, n_resamples=2_000, random_state=0):
    precision = checked.groupby(["day", "model"])["fraud"].mean().unstack("model")
    if set(precision.columns) != {"champion", "challenger"} or precision.isna().any().any():
        raise ValueError("champion and challenger must be checked on the same days")
    gains = (precision["challenger"] - precision["champion"]).to_numpy(dtype=float)
    gain = float(gains.mean())
    return {"days": len(gains), "gain": gain, "ci_low": gain, "promote": bool(len(gains) >= min_days and gain > margin)}
