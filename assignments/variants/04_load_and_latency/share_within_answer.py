# ruff: noqa
# %% correct: sorted buckets and numpy weights
def share_within(histogram: dict, limit_ms: float) -> float:
    if not histogram or sum(histogram.values()) == 0:
        raise ValueError("empty histogram")
    latencies = np.array(sorted(histogram), dtype=float)
    counts = np.array([histogram[b] for b in sorted(histogram)], dtype=float)
    return float(counts[latencies <= limit_ms].sum() / counts.sum())


# %% correct: one minus the share above the limit
def share_within(histogram: dict, limit_ms: float) -> float:
    total = sum(histogram.values())
    if not total:
        raise ValueError("no requests")
    above = sum(c for latency, c in histogram.items() if latency > limit_ms)
    return 1 - above / total


# %% wrong: strictly under the limit (<, not <=)
def share_within(histogram: dict, limit_ms: float) -> float:
    total = sum(histogram.values())
    if total == 0:
        raise ValueError("empty")
    return sum(c for latency, c in histogram.items() if latency < limit_ms) / total


# %% wrong: share of buckets, not of requests
def share_within(histogram: dict, limit_ms: float) -> float:
    if not histogram:
        raise ValueError("empty")
    return sum(1 for latency in histogram if latency <= limit_ms) / len(histogram)


# %% wrong: latencies rounded to whole milliseconds first, as locust's percentiles do
def share_within(histogram: dict, limit_ms: float) -> float:
    total = sum(histogram.values())
    if total == 0:
        raise ValueError("empty")
    return sum(c for latency, c in histogram.items() if round(latency) <= limit_ms) / total


# %% wrong: the mean under the limit counts as everything within it
def share_within(histogram: dict, limit_ms: float) -> float:
    total = sum(histogram.values())
    if total == 0:
        raise ValueError("empty")
    mean = sum(latency * c for latency, c in histogram.items()) / total
    return 1.0 if mean <= limit_ms else 0.0


# %% wrong: an empty histogram returns 0 instead of raising
def share_within(histogram: dict, limit_ms: float) -> float:
    total = sum(histogram.values())
    if total == 0:
        return 0.0
    return sum(c for latency, c in histogram.items() if latency <= limit_ms) / total
