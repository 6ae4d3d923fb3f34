# ruff: noqa
# %% correct: a list of verdicts, skipping the small windows
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    judged = [(i, float(np.percentile(w, 99)) > p99_limit_ms) for i, w in enumerate(windows) if len(w) >= min_requests]
    for j in range(consecutive - 1, len(judged)):
        if all(breach for _, breach in judged[j - consecutive + 1 : j + 1]):
            return judged[j][0]
    return None


# %% correct: numpy arrays and a streak counter
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    streak = 0
    for i, latencies in enumerate(windows):
        latencies = np.asarray(latencies, dtype=float)
        if latencies.size < min_requests:
            continue
        if np.percentile(latencies, 99) > p99_limit_ms:
            streak += 1
            if streak == consecutive:
                return i
        else:
            streak = 0
    return None


# %% wrong: rolls back on the first breaching window
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    for i, latencies in enumerate(windows):
        if len(latencies) >= min_requests and np.percentile(latencies, 99) > p99_limit_ms:
            return i
    return None


# %% wrong: the mean latency instead of the p99
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    run = 0
    for i, latencies in enumerate(windows):
        if len(latencies) < min_requests:
            continue
        run = run + 1 if np.mean(latencies) > p99_limit_ms else 0
        if run >= consecutive:
            return i
    return None


# %% wrong: counts breaches in total, a clean window does not reset
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    breaches = 0
    for i, latencies in enumerate(windows):
        if len(latencies) >= min_requests and np.percentile(latencies, 99) > p99_limit_ms:
            breaches += 1
            if breaches >= consecutive:
                return i
    return None


# %% wrong: a small window resets the count
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    run = 0
    for i, latencies in enumerate(windows):
        breach = len(latencies) >= min_requests and np.percentile(latencies, 99) > p99_limit_ms
        run = run + 1 if breach else 0
        if run >= consecutive:
            return i
    return None


# %% wrong: the maximum latency instead of the p99
def rollback_window(windows, p99_limit_ms, *, consecutive=3, min_requests=50):
    run = 0
    for i, latencies in enumerate(windows):
        if len(latencies) < min_requests:
            continue
        run = run + 1 if max(latencies) > p99_limit_ms else 0
        if run >= consecutive:
            return i
    return None
