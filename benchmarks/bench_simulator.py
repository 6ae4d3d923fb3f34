"""Benchmark the transaction simulator: time, throughput and peak memory per preset.

Usage::

    python benchmarks/bench_simulator.py [--presets tiny,small,medium,full] [--repeat 3]

Each preset runs in a fresh subprocess, so peak memory is that preset's alone. In the child we
report the best wall time of ``simulate`` over ``--repeat`` runs, the peak resident set size
(``ru_maxrss``, which includes the interpreter and imported libraries, shown separately) and the
peak of traced allocations (``tracemalloc``; NumPy reports its buffers to it) from one extra run.

For scale, a straightforward per-customer, per-day Python-loop generator of the same genuine
transaction rules (``_loop_baseline`` below, kept here and out of the package on purpose) is timed on
the ``small`` preset next to ``simulate`` (on ``tiny`` if the loop would take over a minute).
The targets (full preset: <= 5 s, < 1 GB on 2 cores) are printed next to the measurements as
information, never asserted: machines differ, and a benchmark is not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
import pandas as pd

from mlsys_lab.data import PRESETS, SimulatorConfig, preset, simulate

TARGET_SECONDS = 5.0
TARGET_MEMORY_MB = 1024.0
BASELINE_BUDGET_SECONDS = 60.0


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def _measure_preset(name: str, repeat: int) -> dict[str, Any]:
    """Runs in the child process: time ``simulate`` on one preset and record its peak memory."""
    config = preset(name)
    import_rss = _peak_rss_mb()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        sim = simulate(config)
        times.append(time.perf_counter() - started)
        rows = len(sim.transactions)
        fraud = float(sim.transactions["tx_fraud"].mean()) if rows else 0.0
        del sim  # keep one simulation alive at a time, as a caller would
    peak_rss = _peak_rss_mb()
    # A separate, traced run: tracemalloc slows allocation down, so it must not touch the timings.
    tracemalloc.start()
    simulate(config)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "preset": name,
        "customers": config.n_customers,
        "terminals": config.n_terminals,
        "days": config.n_days,
        "rows": rows,
        "fraud": fraud,
        "seconds": min(times),
        "import_rss_mb": import_rss,
        "peak_rss_mb": peak_rss,
        "traced_peak_mb": traced_peak / 1024**2,
    }


def _loop_baseline(config: SimulatorConfig) -> pd.DataFrame:
    """The genuine-transaction rules written the obvious way: Python loops over customers, days, rows.

    Same rules as the package (no fraud), one shared random generator, scalar draws. It is the
    yardstick the vectorised simulator is measured against, not a second implementation to use.
    """
    rng = np.random.default_rng(config.random_state)
    radius = config.radius if config.radius is not None else 5 * math.sqrt(10_000 / config.n_terminals)
    terminal_xy = rng.uniform(0, 100, size=(config.n_terminals, 2))
    rows = []
    for customer in range(config.n_customers):
        x, y = rng.uniform(0, 100), rng.uniform(0, 100)
        mean_amount = rng.uniform(5, 100)
        std_amount = mean_amount / 2
        mean_daily_tx = rng.uniform(0, 4)
        distance = np.sqrt((terminal_xy[:, 0] - x) ** 2 + (terminal_xy[:, 1] - y) ** 2)
        reachable = np.flatnonzero(distance < radius)
        if len(reachable) == 0:
            continue
        for day in range(config.n_days):
            for _ in range(rng.poisson(mean_daily_tx)):
                time_of_day = round(rng.normal(43_200, 20_000))
                if not 0 < time_of_day < 86_400:
                    continue
                amount = rng.normal(mean_amount, std_amount)
                if amount < 0:
                    amount = rng.uniform(0, 2 * mean_amount)
                terminal = reachable[int(rng.random() * len(reachable))]
                rows.append((customer, int(terminal), round(amount, 2), day * 86_400 + time_of_day, day))
    frame = pd.DataFrame(rows, columns=["customer_id", "terminal_id", "tx_amount", "tx_time_seconds", "tx_time_days"])
    frame = frame.sort_values(["tx_time_seconds", "customer_id"], kind="stable", ignore_index=True)
    frame.insert(0, "transaction_id", np.arange(len(frame)))
    frame.insert(
        1, "tx_datetime", pd.Timestamp(config.start_date) + pd.to_timedelta(frame["tx_time_seconds"], unit="s")
    )
    return frame


def _measure_baseline() -> dict[str, Any]:
    """Runs in the child process: time the loop baseline and ``simulate`` on the same preset."""
    started = time.perf_counter()
    tiny_rows = len(_loop_baseline(preset("tiny")))
    tiny_seconds = time.perf_counter() - started
    # Extrapolate from tiny by row count before committing to small.
    small_rows = len(simulate(preset("small")).transactions)
    name = "small" if tiny_seconds * small_rows / max(tiny_rows, 1) <= BASELINE_BUDGET_SECONDS else "tiny"
    config = preset(name)
    started = time.perf_counter()
    loop_rows = len(_loop_baseline(config))
    loop_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vector_rows = len(simulate(config).transactions)
    vector_seconds = time.perf_counter() - started
    return {
        "preset": name,
        "loop_seconds": loop_seconds,
        "loop_rows": loop_rows,
        "vector_seconds": vector_seconds,
        "vector_rows": vector_rows,
    }


def _run_child(*args: str) -> dict[str, Any]:
    completed = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _table(results: list[dict[str, Any]]) -> str:
    header = (
        "| preset | customers | terminals | days | rows | fraud % | simulate s | rows/s "
        "| peak RSS MB | RSS after import MB | tracemalloc peak MB |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in results:
        lines.append(
            f"| {r['preset']} | {r['customers']:,} | {r['terminals']:,} | {r['days']} | {r['rows']:,} "
            f"| {100 * r['fraud']:.3f} | {r['seconds']:.3f} | {r['rows'] / r['seconds']:,.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['import_rss_mb']:.0f} | {r['traced_peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated preset names")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per preset; the best is reported")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Python-loop baseline")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_measure_preset(args.child, args.repeat)))
        return
    if args.child_baseline:
        print(json.dumps(_measure_baseline()))
        return

    names = [name.strip() for name in args.presets.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PRESETS))
    if unknown:
        parser.error(f"unknown preset(s) {unknown}: choose from {sorted(PRESETS)}")

    results = [_run_child("--child", name, "--repeat", str(args.repeat)) for name in names]
    print(f"Simulator benchmark (Python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__})\n")
    print(_table(results))

    for r in results:
        if r["preset"] == "full":
            print(
                f"\nTarget, full preset: {r['seconds']:.2f} s (target <= {TARGET_SECONDS:.0f} s), "
                f"peak RSS {r['peak_rss_mb']:.0f} MB (target < {TARGET_MEMORY_MB:.0f} MB) "
                "-- information, not a pass/fail check."
            )

    if not args.no_baseline:
        b = _run_child("--child-baseline")
        print(
            f"\nPython-loop baseline on {b['preset']}: {b['loop_seconds']:.2f} s for {b['loop_rows']:,} rows; "
            f"simulate: {b['vector_seconds']:.3f} s for {b['vector_rows']:,} rows "
            f"(includes S1-S3); speed-up x{b['loop_seconds'] / b['vector_seconds']:.0f}."
        )


if __name__ == "__main__":
    main()
