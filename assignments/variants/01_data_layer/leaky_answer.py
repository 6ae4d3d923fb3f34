# ruff: noqa
# %% correct: the set written out after reading the detector's results
LEAKY_FEATURES = {"terminal_fraud_rate", "terminal_risk_last_week", "card_defrauded_before"}

# %% correct: the detector at every fifth day
LEAKY_FEATURES = {
    name for name, fn in CANDIDATES.items() if any(leaks_future_labels(fn, probe, d * 86_400) for d in range(5, 30, 5))
}

# %% wrong: misses the innocent-looking card_defrauded_before
LEAKY_FEATURES = {"terminal_fraud_rate", "terminal_risk_last_week"}

# %% wrong: every candidate that reads tx_fraud, delayed ones included
LEAKY_FEATURES = {"terminal_fraud_rate", "terminal_risk_last_week", "card_defrauded_before", "terminal_risk_delayed"}

# %% wrong: a list, not a set
LEAKY_FEATURES = ["terminal_fraud_rate", "terminal_risk_last_week", "card_defrauded_before"]

# %% wrong: only the obvious one
LEAKY_FEATURES = {"terminal_fraud_rate"}

# %% wrong: function objects instead of names
LEAKY_FEATURES = {CANDIDATES[n] for n in ("terminal_fraud_rate", "terminal_risk_last_week", "card_defrauded_before")}


# %% wrong: the set a wrong detector gives (it flips every label, known ones too); graded through that detector it would pass
def flips_every_label(feature_fn, transactions, as_of_seconds):
    flipped = transactions.copy()
    flipped["tx_fraud"] = 1 - flipped["tx_fraud"]
    past = transactions["tx_time_seconds"].to_numpy() <= as_of_seconds
    before = np.asarray(feature_fn(transactions), dtype=float)[past]
    return not np.allclose(before, np.asarray(feature_fn(flipped), dtype=float)[past], equal_nan=True)


LEAKY_FEATURES = {
    name for name, fn in CANDIDATES.items() if any(flips_every_label(fn, probe, d * 86_400) for d in (10, 18, 25))
}
