"""Known-answer evaluation of the drift monitors: detection rate, delay and false alarms per detector.

Usage::

    python benchmarks/bench_monitoring.py [--seeds 5] [--controls 12] [--control-days 160]

For every drift event type of the simulator at its default size (``AmountInflation`` x1.25,
``NewTerminals`` +20 %, ``CardTesting`` 3 cards per 5,000 customers a day, ``ScenarioOff`` of S2), and
each seed, simulates the ``small`` preset (70 days) with that one event starting on day 55, so each
detection has one known cause. Control runs have no event and run ``--control-days`` days (still the
``small`` world), so the false-alarm rate rests on more monitored days (by default 12 x 109 = 1,308:
one false alarm is 0.08 per 100 days).

In every run: the 15 features (``build_features``), a logistic regression (the package's
``build_pipeline``) trained on days 30-36 with the labels known on day 44, a threshold from a budget
of 20 alerts a day on the reference window, days 44-50 (all feature windows full by then, so the
reference is stationary), and daily windows from day 51 on. ``daily_alarms`` gives each detector's
verdict each day; ``evaluate_detectors`` scores them against the truth. The matured-recall detector
(``RecallDropRule``) cannot see an event before ``lag_days`` after its start (its first window with
an event day is reported then): that is its label-delay floor, printed beside its delays. A detection
rate is read against chance: a detector with ``f`` false alarms per 100 days alarms somewhere in the
``d`` days after a start with probability about ``1 - (1 - f/100)^d`` even when blind to the event.
A second table shows, on the card-testing runs, the label-free estimate beside the truth before and
after the event.

Information only, never asserted; timings on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from mlsys_lab.data import AmountInflation, CardTesting, DriftEvent, NewTerminals, ScenarioOff, preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.monitoring import evaluation
from mlsys_lab.monitoring.performance import RecallDropRule, window_performance
from mlsys_lab.training import TrainingConfig, build_pipeline, feature_frame, split_data
from mlsys_lab.training.threshold import threshold_for_budget

START_DAY = 55
TRAIN_START_DAY = 30  # train 30-36, labels known at day 44 (the 7-day gap)
REFERENCE_DAYS = (44, 50)
FIRST_MONITORED_DAY = 51
ALERTS_PER_DAY = 20
EVENTS: dict[str, DriftEvent] = {
    "AmountInflation": AmountInflation(start_day=START_DAY),
    "NewTerminals": NewTerminals(start_day=START_DAY),
    "CardTesting": CardTesting(start_day=START_DAY),
    "ScenarioOff": ScenarioOff(start_day=START_DAY, scenario=2),
    # Not a default size: ten times the default rate, to show what matured labels see when there is
    # something to see (at the default rate, about 3 card-testing frauds a day join about 13 others).
    "CardTesting x10": CardTesting(start_day=START_DAY, customers_per_5k_per_day=30.0),
}


def _run(event: DriftEvent | None, seed: int, n_days: int) -> tuple[pd.DataFrame, dict[str, float]]:
    drift = () if event is None else (event,)
    sim = simulate(preset("small", random_state=seed, n_days=n_days, drift=drift))
    frame = feature_frame(sim.transactions)
    config = TrainingConfig(
        family="logistic_regression", split=TimeSplit(train_start_day=TRAIN_START_DAY), validation_folds=0
    )
    data = split_data(config, frame)
    model = build_pipeline(config).fit(data.X_train, data.y_train)
    scores = model.predict_proba(frame[list(FEATURE_COLUMNS)].to_numpy())[:, 1]
    days = frame["tx_time_days"].to_numpy()
    in_reference = (days >= REFERENCE_DAYS[0]) & (days <= REFERENCE_DAYS[1])
    threshold = threshold_for_budget(scores[in_reference], days[in_reference], ALERTS_PER_DAY)
    alarms = evaluation.daily_alarms(
        sim.transactions,
        frame[list(FEATURE_COLUMNS)],
        scores,
        threshold=threshold,
        reference_days=REFERENCE_DAYS,
        days=range(FIRST_MONITORED_DAY, n_days),
    )
    summary: dict[str, float] = {}
    if isinstance(event, CardTesting):
        # Before (the reference week) and after (the 7 days from the start + 3), with every label known.
        for name, first, last in (("before", *REFERENCE_DAYS), ("after", START_DAY + 3, START_DAY + 9)):
            mask = (days >= first) & (days <= last)
            perf = window_performance(
                sim.transactions[mask], scores[mask], as_of_seconds=10**9, threshold=threshold, k=None
            )
            summary[f"true AP {name}"] = perf.true_average_precision
            summary[f"expected AP {name}"] = perf.expected_average_precision
            summary[f"true recall {name}"] = perf.true_recall
            summary[f"expected recall {name}"] = perf.expected_recall
    return alarms, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per event type")
    parser.add_argument("--controls", type=int, default=12, help="control seeds (no drift)")
    parser.add_argument("--control-days", type=int, default=160, help="days of each control run")
    args = parser.parse_args()

    started = time.perf_counter()
    all_alarms, runs, card_testing = [], [], []
    jobs: list[tuple[str, DriftEvent | None, int, int]] = [
        (name, event, seed, 70) for name, event in EVENTS.items() for seed in range(args.seeds)
    ]
    jobs += [(evaluation.CONTROL, None, 1_000 + seed, args.control_days) for seed in range(args.controls)]
    for name, event, seed, n_days in jobs:
        run = f"{name}/{seed}"
        alarms, summary = _run(event, seed, n_days)
        all_alarms.append(alarms.assign(run=run))
        runs.append({"run": run, "event": name, "start_day": START_DAY if event is not None else np.nan})
        if summary:
            card_testing.append({"event": name, **summary})
    elapsed = time.perf_counter() - started

    table = evaluation.evaluate_detectors(pd.concat(all_alarms), pd.DataFrame(runs).set_index("run"))
    events = table[table["event"] != evaluation.CONTROL]
    controls = table[table["event"] == evaluation.CONTROL].set_index("detector")
    wide = events.pivot(index="detector", columns="event", values="on_time").add_suffix(" on time")
    delays = events.pivot(index="detector", columns="event", values="median_delay_days").add_suffix(" delay")
    detected = events.pivot(index="detector", columns="event", values="detected").add_suffix(" detected")
    out = pd.concat([detected, wide, delays], axis=1)
    out = out[[f"{event} {what}" for event in EVENTS for what in ("detected", "on time", "delay")]]
    out["FA/100 days"] = controls["false_alarms_per_100_days"]
    out = out.reindex(list(evaluation.DETECTORS))

    n_control_days = int(controls["monitored_days"].iloc[0])
    print(
        f"== Known-answer evaluation: {args.seeds} seeds per event (small, event on day {START_DAY}, "
        f"days {FIRST_MONITORED_DAY}-69 monitored), {args.controls} control seeds ({n_control_days} monitored "
        f"days); {elapsed:.0f} s"
    )
    print("detected: share of runs with an alarm on or after the start; on time: within 3 days; delay: median days")
    floor = RecallDropRule().lag_days
    days_after = 70 - START_DAY
    print(
        f"matured recall: label-delay floor {floor} day(s); by chance alone (its false-alarm rate over the "
        f"{days_after} days after a start) it would 'detect' "
        f"{1 - (1 - controls.loc['matured recall', 'false_alarms_per_100_days'] / 100) ** days_after:.0%} of runs"
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        print(out.to_string())
        if card_testing:
            print("\n== Card testing (concept drift), mean over seeds: the truth against the label-free estimate")
            means = pd.DataFrame(card_testing).groupby("event").mean()
            after = f"days {START_DAY + 3}-{START_DAY + 9}"
            rows = {}
            for event, row in means.iterrows():
                for metric in ("true AP", "expected AP", "true recall", "expected recall"):
                    rows[(event, metric)] = {
                        "days 44-50 (before)": row[f"{metric} before"],
                        after: row[f"{metric} after"],
                    }
            print(pd.DataFrame(rows).T.to_string())


if __name__ == "__main__":
    main()
