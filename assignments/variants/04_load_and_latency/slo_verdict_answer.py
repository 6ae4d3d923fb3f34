# ruff: noqa
# %% correct: a dict of checks, without share_within
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    total = sum(run["latency_ms"].values())
    within = sum(c for latency, c in run["latency_ms"].items() if latency <= latency_ms)
    checks = {
        "requests": n >= min_requests,
        "latency": total > 0 and within / total >= share,
        "errors": n > 0 and run["failures"] <= max_error_ratio * n,
    }
    failed = sorted(name for name, ok in checks.items() if not ok)
    return len(failed) == 0, failed


# %% correct: stops judging latency and errors when too few requests, and still fails
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    if n == 0:
        return False, ["errors", "latency", "requests"]
    failed = []
    if n < min_requests:
        failed.append("requests")
    if share_within(run["latency_ms"], latency_ms) < share:
        failed.append("latency")
    if run["failures"] / n > max_error_ratio:
        failed.append("errors")
    return (not failed), sorted(failed)


# %% wrong: the mean latency instead of the share within the limit
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    failed = []
    if n < min_requests:
        failed.append("requests")
    total = sum(run["latency_ms"].values())
    mean = sum(l * c for l, c in run["latency_ms"].items()) / total if total else math.inf
    if mean > latency_ms:
        failed.append("latency")
    if n == 0 or run["failures"] / n > max_error_ratio:
        failed.append("errors")
    return not failed, sorted(failed)


# %% wrong: failures ignored
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    failed = []
    if n < min_requests:
        failed.append("requests")
    if n == 0 or share_within(run["latency_ms"], latency_ms) < share:
        failed.append("latency")
    return not failed, sorted(failed)


# %% wrong: too few requests passes if the numbers look good
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    if n == 0:
        return False, ["requests"]
    failed = []
    if share_within(run["latency_ms"], latency_ms) < share:
        failed.append("latency")
    if run["failures"] / n > max_error_ratio:
        failed.append("errors")
    return not failed, sorted(failed)


# %% wrong: the default share hard-coded, the argument ignored
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    failed = []
    if n < min_requests:
        failed.append("requests")
    if n == 0 or share_within(run["latency_ms"], latency_ms) < 0.99:
        failed.append("latency")
    if n == 0 or run["failures"] / n > max_error_ratio:
        failed.append("errors")
    return not failed, sorted(failed)


# %% wrong: failed requests taken out of the latency histogram's total (as if only successes counted)
def slo_verdict(
    run: dict,
    *,
    latency_ms: float = 50.0,
    share: float = 0.99,
    max_error_ratio: float = 0.001,
    min_requests: int = 1000,
) -> tuple:
    n = run["requests"]
    failed = []
    if n < min_requests:
        failed.append("requests")
    ok = n - run["failures"]
    within = sum(c for l, c in run["latency_ms"].items() if l <= latency_ms)
    if ok <= 0 or within / ok < share:
        failed.append("latency")
    return not failed, sorted(failed)
