"""Reproduce the Fraud Detection Handbook's baseline with our simulator and our features.

The handbook's reference experiment: 5,000 customers, 10,000 terminals, 183 days from 2018-04-01;
the 15 features; train on the 7 days from 2018-07-25, wait 7 days for labels, test on the next 7
days with cards already known to be compromised removed; logistic regression. It reports test
ROC AUC 0.871, average precision 0.606 and card precision@100 0.291.

Labels are instant here (``label_delay=None``), as the handbook assumes; everything else is the
package's own code: simulator, features, split and metrics. Prints our numbers beside the
handbook's for each seed, then the mean and spread across seeds. Information only: it asserts
nothing, but it says whether each mean sits inside COURSE.md's tolerance.

Usage: ``python benchmarks/reproduce_handbook.py [--seeds 0,1,2] [--preset full]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsys_lab import evaluate
from mlsys_lab.data import preset, simulate
from mlsys_lab.data.features import FEATURE_COLUMNS, build_features
from mlsys_lab.data.split import TimeSplit, split_by_time

HANDBOOK = {"roc_auc": 0.871, "average_precision": 0.606, "card_precision@100": 0.291}
TOLERANCE = {"roc_auc": 0.02, "average_precision": 0.05, "card_precision@100": 0.04}
# 2018-07-25 is day 115 of a simulation that starts on 2018-04-01.
SPLIT = TimeSplit(train_start_day=115, train_days=7, delay_days=7, test_days=7)


def run(preset_name: str, seed: int) -> dict[str, float]:
    """One reproduction: simulate, featurise, split, fit, score; returns metrics and timings."""
    started = time.perf_counter()
    transactions = simulate(preset(preset_name, random_state=seed, label_delay=None)).transactions
    simulated = time.perf_counter()
    features = build_features(transactions)
    featurised = time.perf_counter()
    frame = transactions.join(features.drop(columns=features.columns.intersection(transactions.columns)))
    train, test = split_by_time(frame, SPLIT, remove_known_compromised=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(random_state=0, max_iter=1000))
    model.fit(train[list(FEATURE_COLUMNS)], train["tx_fraud"])
    y_proba = model.predict_proba(test[list(FEATURE_COLUMNS)])[:, 1]
    return {
        "roc_auc": evaluate.roc_auc(test["tx_fraud"], y_proba),
        "average_precision": evaluate.average_precision(test["tx_fraud"], y_proba),
        "card_precision@100": evaluate.card_precision_at_k(test, y_proba, k=100).mean,
        "rows": float(len(transactions)),
        "train_rows": float(len(train)),
        "test_rows": float(len(test)),
        "simulate_s": simulated - started,
        "features_s": featurised - simulated,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7", help="comma-separated random_state values")
    parser.add_argument("--preset", default="full")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]

    results = pd.DataFrame([run(args.preset, seed) for seed in seeds], index=pd.Index(seeds, name="seed"))
    print(f"Handbook reproduction on the {args.preset!r} preset, logistic regression, 7/7/7 split from day 115\n")
    print("| seed | rows | train | test | ROC AUC | AP | CP@100 | simulate s | features s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed, r in results.iterrows():
        print(
            f"| {seed} | {r.rows:,.0f} | {r.train_rows:,.0f} | {r.test_rows:,.0f} | {r.roc_auc:.3f} | "
            f"{r.average_precision:.3f} | {r['card_precision@100']:.3f} | {r.simulate_s:.2f} | {r.features_s:.2f} |"
        )
    print("\n| metric | handbook | ours (mean ± std over seeds) | tolerance | within |")
    print("|---|---|---|---|---|")
    for metric, reference in HANDBOOK.items():
        mean, std = results[metric].mean(), results[metric].std(ddof=1) if len(results) > 1 else np.nan
        inside = abs(mean - reference) <= TOLERANCE[metric]
        verdict = "yes" if inside else "NO"
        print(f"| {metric} | {reference:.3f} | {mean:.3f} ± {std:.3f} | ± {TOLERANCE[metric]} | {verdict} |")


if __name__ == "__main__":
    main()
