# ruff: noqa
# %% correct: np.histogram over edges padded with -inf and +inf
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if min(reference.size, current.size) < 5 * bins:
        raise ValueError(f"need at least {5 * bins} rows per window, got {reference.size} and {current.size}")
    edges = np.r_[-np.inf, np.unique(np.quantile(reference, np.arange(1, bins) / bins)), np.inf]
    r = np.histogram(reference, edges)[0] + 0.5
    c = np.histogram(current, edges)[0] + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(((c - r) * np.log(c / r)).sum())


# %% correct: pandas cut with left-closed bins, a loop over the bins
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    ref, cur = pd.Series(reference, dtype=float), pd.Series(current, dtype=float)
    if len(ref) < 5 * bins or len(cur) < 5 * bins:
        raise ValueError("window too small: at least 5 rows per bin")
    inner = sorted(set(np.quantile(ref, [k / bins for k in range(1, bins)])))
    edges = [-np.inf] + inner + [np.inf]
    r_counts = pd.cut(ref, edges, right=False).value_counts(sort=False).to_numpy() + 0.5
    c_counts = pd.cut(cur, edges, right=False).value_counts(sort=False).to_numpy() + 0.5
    total = 0.0
    for r, c in zip(r_counts / r_counts.sum(), c_counts / c_counts.sum()):
        total += (c - r) * math.log(c / r)
    return total


# %% wrong: bins from the current window's quantiles
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if min(reference.size, current.size) < 5 * bins:
        raise ValueError("too small")
    edges = np.unique(np.quantile(current, np.arange(1, bins) / bins))
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1) + 0.5
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1) + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


# %% wrong: empty bins clipped to a tiny share instead of smoothed
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if min(reference.size, current.size) < 5 * bins:
        raise ValueError("too small")
    edges = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1) / reference.size
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1) / current.size
    r, c = np.clip(r, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - r) * np.log(c / r)))


# %% wrong: no smoothing at all (log(0) on an empty bin)
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if min(reference.size, current.size) < 5 * bins:
        raise ValueError("too small")
    edges = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1) / reference.size
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1) / current.size
    return float(np.sum((c - r) * np.log(c / r)))


# %% wrong: no minimum window (ten bins on twenty rows answered with noise)
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = np.unique(np.quantile(reference, np.arange(1, bins) / bins))
    r = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1) + 0.5
    c = np.bincount(np.searchsorted(edges, current, side="right"), minlength=edges.size + 1) + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


# %% wrong: equal-width bins over the reference's range (values above the maximum dropped)
def psi_reference_bins(reference, current, bins: int = 10) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    if min(reference.size, current.size) < 5 * bins:
        raise ValueError("too small")
    edges = np.linspace(reference.min(), reference.max(), bins + 1)
    r = np.histogram(reference, edges)[0] + 0.5
    c = np.histogram(current, edges)[0] + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))
