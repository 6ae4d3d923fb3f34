# ruff: noqa
# %% correct: a loop over rows and min() with a (size, latency) key
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    best = max(table["val_ap_mean"])
    ok = [
        (row.artifact_mb, row.p99_latency_ms, name)
        for name, row in table.iterrows()
        if row.val_ap_mean >= best - ap_margin
        and row.p99_latency_ms <= max_p99_ms
        and row.artifact_mb <= max_artifact_mb
    ]
    return min(ok, key=lambda item: item[:2])[2] if ok else None


# %% correct: DataFrame.query and nsmallest
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    bar = table["val_ap_mean"].max() - ap_margin
    ok = table.query("val_ap_mean >= @bar and p99_latency_ms <= @max_p99_ms and artifact_mb <= @max_artifact_mb")
    if ok.empty:
        return None
    return ok.sort_values(["artifact_mb", "p99_latency_ms"], kind="mergesort").index[0]


# %% wrong: best AP among the models within budget only
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    within = table[(table.p99_latency_ms <= max_p99_ms) & (table.artifact_mb <= max_artifact_mb)]
    if within.empty:
        return None
    ok = within[within.val_ap_mean >= within.val_ap_mean.max() - ap_margin]
    return ok.sort_values(["artifact_mb", "p99_latency_ms"], kind="stable").index[0]


# %% wrong: > instead of >= at the quality gate
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    best = table["val_ap_mean"].max()
    ok = (
        (table.val_ap_mean > best - ap_margin)
        & (table.p99_latency_ms <= max_p99_ms)
        & (table.artifact_mb <= max_artifact_mb)
    )
    if not ok.any():
        return None
    return table[ok].sort_values(["artifact_mb", "p99_latency_ms"], kind="stable").index[0]


# %% wrong: the fastest acceptable model, not the smallest
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    best = table["val_ap_mean"].max()
    ok = (
        (table.val_ap_mean >= best - ap_margin)
        & (table.p99_latency_ms <= max_p99_ms)
        & (table.artifact_mb <= max_artifact_mb)
    )
    if not ok.any():
        return None
    return table[ok].sort_values(["p99_latency_ms", "artifact_mb"], kind="stable").index[0]


# %% wrong: budgets treated as exclusive
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    best = table["val_ap_mean"].max()
    ok = (
        (table.val_ap_mean >= best - ap_margin)
        & (table.p99_latency_ms < max_p99_ms)
        & (table.artifact_mb < max_artifact_mb)
    )
    if not ok.any():
        return None
    return table[ok].sort_values(["artifact_mb", "p99_latency_ms"], kind="stable").index[0]


# %% wrong: size ties broken by AP instead of latency
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    best = table["val_ap_mean"].max()
    ok = (
        (table.val_ap_mean >= best - ap_margin)
        & (table.p99_latency_ms <= max_p99_ms)
        & (table.artifact_mb <= max_artifact_mb)
    )
    if not ok.any():
        return None
    return table[ok].sort_values(["artifact_mb", "val_ap_mean"], ascending=[True, False], kind="stable").index[0]


# %% wrong: forwards to the package's select_model
def pick_model(table, ap_margin: float, max_p99_ms: float, max_artifact_mb: float):
    constraints = training.Constraints(
        ap_within_best=ap_margin, p99_latency_ms=max_p99_ms, max_artifact_mb=max_artifact_mb
    )
    return training.select_model(table, constraints).chosen
