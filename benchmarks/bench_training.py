"""Measure the training layer: the trade-off table, thread settings for single-row latency, tracking overhead.

Prints, in one run on one machine (compare numbers only within a run):

1. the trade-off table of the candidate grid on the chosen preset (quality from prequential
   validation, fit time, single-row p50/p99, bulk rows/s, artifact size, peak fit memory) and the
   model the default rule picks;
2. single-row latency under different thread settings: random forest ``n_jobs=1`` against
   ``n_jobs=-1``, and histogram gradient boosting with one OpenMP thread against the default;
3. tracking overhead: the first tracked run on a fresh store (tables created) against later ones;
4. single-row CPU time against wall time, on the machine as it is and with every core kept busy by
   spinning helper processes: the numbers behind the rule that decides on CPU time (see
   :mod:`mlsys_lab.training.selection`).

Information only: it asserts nothing. Usage: ``python benchmarks/bench_training.py [--preset medium]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.training import (
    Constraints,
    Tracker,
    TrackingSettings,
    TrainingConfig,
    build_pipeline,
    candidate_grid,
    feature_frame,
    measure_latency,
    select_model,
    split_data,
    tradeoff_table,
    train,
)


def thread_comparison(frame: pd.DataFrame, split: TimeSplit) -> pd.DataFrame:
    """Single-row latency of the same fitted model under different thread settings."""
    rows = []
    settings = [
        ("random_forest n_estimators=100", {"n_estimators": 100, "n_jobs": 1}, "n_jobs=1", 1),
        ("random_forest n_estimators=100", {"n_estimators": 100, "n_jobs": -1}, "n_jobs=-1", None),
        ("hist_gradient_boosting", {}, "1 OpenMP thread", 1),
        ("hist_gradient_boosting", {}, "default OpenMP threads", None),
    ]
    for label, params, setting, threads in settings:
        family = label.split()[0]
        config = TrainingConfig(family=family, params=params, split=split, validation_folds=0)
        data = split_data(config, frame)
        pipeline = build_pipeline(config)
        pipeline.fit(data.X_train, data.y_train)
        latency = measure_latency(pipeline, data.X_test, calls=500, threads=threads)
        rows.append(
            {
                "model": label,
                "setting": setting,
                "p50_cpu_ms": latency.p50_cpu_ms,
                "p99_cpu_ms": latency.p99_cpu_ms,
                "p50_wall_ms": latency.p50_wall_ms,
                "p99_wall_ms": latency.p99_wall_ms,
            }
        )
    return pd.DataFrame(rows)


def cpu_against_wall_under_load(frame: pd.DataFrame, split: TimeSplit, calls: int = 300) -> pd.DataFrame:
    """p99 CPU and wall time per single-row call, on the machine as it is and with every core kept busy."""
    candidates = [
        ("logistic_regression", {}),
        ("decision_tree", {"max_depth": 4}),
        ("random_forest", {"n_estimators": 25, "max_depth": 8}),
        ("hist_gradient_boosting", {}),
    ]
    pipelines = {}
    for family, params in candidates:
        config = TrainingConfig(family=family, params=params, split=split, validation_folds=0)
        data = split_data(config, frame)
        pipelines[config.name] = (build_pipeline(config).fit(data.X_train, data.y_train), data.X_test)
    rows: dict[str, dict[str, float]] = {name: {} for name in pipelines}

    def measure(tag: str) -> None:
        for name, (pipeline, X) in pipelines.items():
            latency = measure_latency(pipeline, X, calls=calls)
            rows[name] |= {f"p99_cpu_ms {tag}": latency.p99_cpu_ms, f"p99_wall_ms {tag}": latency.p99_wall_ms}

    measure("as is")
    spin = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end: pass"
    helpers = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(max(2, os.cpu_count() or 2))]
    try:
        time.sleep(0.3)
        measure("busy")
    finally:
        for helper in helpers:
            helper.kill()
            helper.wait()
    return pd.DataFrame.from_dict(rows, orient="index")


def tracking_overhead(frame: pd.DataFrame, split: TimeSplit, runs: int = 4) -> pd.DataFrame:
    """Seconds per tracked run on a fresh store: the first creates MLflow's tables."""
    config = TrainingConfig(family="logistic_regression", split=split, validation_folds=0)
    untracked = time.perf_counter()
    train(config, frame)
    untracked = time.perf_counter() - untracked
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tracker = Tracker(TrackingSettings(root=Path(folder)))
        for i in range(runs):
            start = time.perf_counter()
            train(replace(config, random_state=i), frame, tracker=tracker)
            rows.append({"run": i + 1, "seconds": time.perf_counter() - start, "untracked_seconds": untracked})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = preset(args.preset, random_state=args.seed)
    start = time.perf_counter()
    frame = feature_frame(simulate(config).transactions)
    split = TimeSplit.ending_at(config.n_days)
    print(f"Training layer on {args.preset!r} ({len(frame):,} rows, data in {time.perf_counter() - start:.1f} s)\n")

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        table, _ = tradeoff_table(
            candidate_grid(split, random_state=args.seed), frame, tracker=Tracker(TrackingSettings(root=Path(folder)))
        )
        seconds = time.perf_counter() - start
    columns = [
        "val_ap_mean", "val_ap_std", "test_ap", "test_cp_at_k", "fit_seconds", "p50_cpu_ms",
        "p99_cpu_ms", "p99_wall_ms", "bulk_rows_per_s", "artifact_mb", "peak_fit_memory_mb",
    ]  # fmt: skip
    print(f"1. Trade-off table ({len(table)} candidates, {seconds:.1f} s, one thread; budget on CPU time):\n")
    print(table[columns].to_markdown(floatfmt=".3f") if _has_tabulate() else table[columns].round(3).to_string())
    for constraints in (Constraints(), Constraints(quality_within_best=0.05)):
        print("\n" + select_model(table, constraints).explain())

    print("\n2. Single-row latency by thread setting (same config and seed per pair, so the same trees):\n")
    print(thread_comparison(frame, split).round(3).to_string(index=False))

    print("\n3. Tracking overhead, fresh store (seconds per train call, logistic regression):\n")
    print(tracking_overhead(frame, split).round(3).to_string(index=False))

    print("\n4. Single-row p99, CPU time against wall time, machine as it is and with every core busy (ms):\n")
    print(cpu_against_wall_under_load(frame, split).round(3).to_string())


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
