# ruff: noqa
# %% correct: Series.between on inclusive day bounds
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    days = transactions["tx_time_days"]
    test_start = train_start_day + train_days + gap_days
    train = transactions[days.between(train_start_day, train_start_day + train_days - 1)]
    test = transactions[days.between(test_start, test_start + test_days - 1)]
    return train, test


# %% correct: isin over the list of days of each period
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    train_days_list = list(range(train_start_day, train_start_day + train_days))
    first_test = train_days_list[-1] + 1 + gap_days if train_days_list else train_start_day + gap_days
    test_days_list = list(range(first_test, first_test + test_days))
    return (
        transactions.loc[transactions.tx_time_days.isin(train_days_list)],
        transactions.loc[transactions.tx_time_days.isin(test_days_list)],
    )


# %% wrong: period ends are inclusive (one day too many)
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    days = transactions["tx_time_days"]
    train_end = train_start_day + train_days
    test_start = train_end + gap_days
    return (
        transactions[(days >= train_start_day) & (days <= train_end)],
        transactions[(days >= test_start) & (days <= test_start + test_days)],
    )


# %% wrong: the gap is counted from the training start
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    days = transactions["tx_time_days"]
    test_start = train_start_day + max(gap_days, train_days)
    return (
        transactions[(days >= train_start_day) & (days < train_start_day + train_days)],
        transactions[(days >= test_start) & (days < test_start + test_days)],
    )


# %% wrong: counts the days that have rows, not calendar days
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    present = sorted(d for d in transactions["tx_time_days"].unique() if d >= train_start_day)
    train_set = present[:train_days]
    test_set = present[train_days + gap_days : train_days + gap_days + test_days]
    days = transactions["tx_time_days"]
    return transactions[days.isin(train_set)], transactions[days.isin(test_set)]


# %% wrong: resets the index
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    days = transactions["tx_time_days"]
    train_end = train_start_day + train_days
    test_start = train_end + gap_days
    train = transactions[(days >= train_start_day) & (days < train_end)].reset_index(drop=True)
    test = transactions[(days >= test_start) & (days < test_start + test_days)].reset_index(drop=True)
    return train, test


# %% wrong: skips one day too many after the gap
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    days = transactions["tx_time_days"]
    train_end = train_start_day + train_days
    test_start = train_end + gap_days + 1
    return (
        transactions[(days >= train_start_day) & (days < train_end)],
        transactions[(days >= test_start) & (days < test_start + test_days)],
    )


# %% wrong: forwards to the package
def time_split(transactions, train_start_day: int, train_days: int, gap_days: int, test_days: int):
    from mlsys_lab.data import split

    plan = split.TimeSplit(
        train_start_day=train_start_day, train_days=train_days, delay_days=gap_days, test_days=test_days
    )
    return split.split_by_time(transactions, plan)
