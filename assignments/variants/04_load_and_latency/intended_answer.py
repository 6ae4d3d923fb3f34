# ruff: noqa
# %% correct: numpy arrays
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    intended = sent_s[0] + interval_s * np.arange(len(done_s))
    return ((np.asarray(done_s, dtype=float) - intended) * 1000).tolist()


# %% correct: a loop that walks the schedule
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    out, intended = [], sent_s[0]
    for done in done_s:
        out.append(1000.0 * (done - intended))
        intended += interval_s
    return out


# %% wrong: measured from the actual send time (coordinated omission)
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    return [(d - s) * 1000 for s, d in zip(sent_s, done_s)]


# %% wrong: the schedule anchored at time 0
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    return [(d - i * interval_s) * 1000 for i, d in enumerate(done_s)]


# %% wrong: re-anchored at the previous send (what a paced closed loop does)
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    out = [(done_s[0] - sent_s[0]) * 1000]
    for i in range(1, len(done_s)):
        out.append((done_s[i] - (sent_s[i - 1] + interval_s)) * 1000)
    return out


# %% wrong: seconds, not milliseconds
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    return [d - (sent_s[0] + i * interval_s) for i, d in enumerate(done_s)]


# %% wrong: off by one in the schedule (request i intended at sent_s[0] + (i + 1) * interval)
def corrected_latencies_ms(sent_s: list, done_s: list, interval_s: float) -> list:
    return [(d - (sent_s[0] + (i + 1) * interval_s)) * 1000 for i, d in enumerate(done_s)]
