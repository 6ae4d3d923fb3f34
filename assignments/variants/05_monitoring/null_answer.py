# ruff: noqa
# %% correct: resampled index arrays, percentile instead of quantile
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    reference = np.asarray(reference, dtype=float)
    rng = np.random.default_rng(random_state)
    values = np.empty(n_resamples)
    for i in range(n_resamples):
        pseudo_ref = reference[rng.integers(0, reference.size, reference.size)]
        pseudo_cur = reference[rng.integers(0, reference.size, n_current)]
        values[i] = psi_reference_bins(pseudo_ref, pseudo_cur, 10)
    return float(np.percentile(values, 100 * (1 - alpha)))


# %% correct: the pseudo-current window drawn first, sorted values and an order statistic
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    rng = np.random.default_rng(random_state)
    ref = np.asarray(reference, dtype=float)
    values = []
    for _ in range(n_resamples):
        cur = rng.choice(ref, size=n_current, replace=True)
        pseudo = rng.choice(ref, size=ref.size, replace=True)
        values.append(psi_reference_bins(pseudo, cur, bins=10))
    return float(np.quantile(np.sort(values), 1 - alpha))


# %% wrong: the folklore constant at every size
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    return 0.1


# %% wrong: the reference kept fixed (its own noise, the 1/m term, left out)
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    reference = np.asarray(reference, dtype=float)
    rng = np.random.default_rng(random_state)
    values = [psi_reference_bins(reference, rng.choice(reference, n_current)) for _ in range(n_resamples)]
    return float(np.quantile(values, 1 - alpha))


# %% wrong: the alpha quantile instead of the 1 - alpha quantile
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    reference = np.asarray(reference, dtype=float)
    rng = np.random.default_rng(random_state)
    values = [
        psi_reference_bins(rng.choice(reference, reference.size), rng.choice(reference, n_current))
        for _ in range(n_resamples)
    ]
    return float(np.quantile(values, alpha))


# %% wrong: the mean of the null instead of its tail
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    reference = np.asarray(reference, dtype=float)
    rng = np.random.default_rng(random_state)
    values = [
        psi_reference_bins(rng.choice(reference, reference.size), rng.choice(reference, n_current))
        for _ in range(n_resamples)
    ]
    return float(np.mean(values))


# %% wrong: numpy's global random state (not reproducible from random_state)
def null_threshold(
    reference, n_current: int, alpha: float = 0.01, n_resamples: int = 400, random_state: int = 0
) -> float:
    reference = np.asarray(reference, dtype=float)
    values = [
        psi_reference_bins(np.random.choice(reference, reference.size), np.random.choice(reference, n_current))
        for _ in range(n_resamples)
    ]
    return float(np.quantile(values, 1 - alpha))
