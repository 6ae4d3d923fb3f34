"""Benchmark the features: offline time per feature family, a naive baseline, and the online path per call.

Usage::

    python benchmarks/bench_features.py [--preset full] [--repeat 3] [--baseline-share 0.05]

Offline: the best wall time over ``--repeat`` runs of each family (amount and flags, customer windows,
terminal windows) and of ``build_features`` as a whole, rows per second, and the peak of traced
allocations (``tracemalloc``, NumPy reports its buffers to it) in one extra, untimed run.

Baseline, measured in the same run: the obvious pandas code, ``groupby().apply`` with a time-based
``rolling`` per customer (the handbook's way) and a per-row Python loop per terminal (rolling cannot
count "known by t - delay" labels), on the rows of a share of customers and of terminals. The
vectorised code runs on the same rows, the values are compared, and the speed-up is printed.

Online: ``OnlineFeatureState.from_history`` on every transaction before the last day, then the last
day replayed as the API would (labels recorded as they arrive, untimed), timing each
``features() + observe()`` call; p50 and p99 in microseconds, and agreement with the offline values.

The target (15 features on ``full`` in at most 5 s on 2 cores) is printed next to the measurement as
information, never asserted: machines differ, and a benchmark is not a test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlsys_lab.data import PRESETS, preset, simulate
from mlsys_lab.data.features import (
    FEATURE_COLUMNS,
    CustomerWindows,
    TerminalWindows,
    TimeFlags,
    build_features,
)
from mlsys_lab.data.online import OnlineFeatureState

TARGET_SECONDS = 5.0
D = 86_400
DELAY_DAYS = 7
WINDOWS = (1, 7, 30)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


def _best_of(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def _transactions(name: str) -> pd.DataFrame:
    tx = simulate(preset(name)).transactions
    if "tx_label_seconds" not in tx.columns or tx["tx_label_seconds"].dtype.kind not in "iu":
        # Simulators without label times: frauds known after 0-14 days, genuine after 30.
        rng = np.random.default_rng(0)
        delay = np.where(tx["tx_fraud"].to_numpy() == 1, rng.integers(0, 14 * D, len(tx)), 30 * D)
        tx["tx_label_seconds"] = tx["tx_time_seconds"].to_numpy() + delay
    return tx


# -- the naive baseline, kept here and out of the package on purpose -------------------------------


def _naive_customer(tx: pd.DataFrame) -> pd.DataFrame:
    """Per-customer ``rolling`` on a datetime index inside ``groupby().apply``, as the handbook does."""

    def one_customer(rows: pd.DataFrame) -> pd.DataFrame:
        rows = rows.sort_values(["tx_datetime", "transaction_id"]).set_index("tx_datetime")
        out = {}
        for w in WINDOWS:
            rolled = rows["tx_amount"].rolling(f"{w}D")
            count, total = rolled.count(), rolled.sum()
            out[f"customer_id_nb_tx_{w}day_window"] = count.to_numpy()
            out[f"customer_id_avg_amount_{w}day_window"] = (total / count).to_numpy()
        return pd.DataFrame(out, index=rows["transaction_id"].to_numpy())

    columns = ["transaction_id", "tx_datetime", "tx_amount"]
    return tx.groupby("customer_id", group_keys=False)[columns].apply(one_customer)


def _naive_terminal(tx: pd.DataFrame) -> pd.DataFrame:
    """A Python loop over each terminal's rows inside ``groupby().apply``, from the definitions."""

    def one_terminal(rows: pd.DataFrame) -> pd.DataFrame:
        times = rows["tx_time_seconds"].to_numpy()
        fraud = rows["tx_fraud"].to_numpy() == 1
        label = rows["tx_label_seconds"].to_numpy()
        out: dict[str, list[float]] = {name: [] for w in WINDOWS for name in _terminal_names(w)}
        for t in times:
            as_of = t - DELAY_DAYS * D
            for w in WINDOWS:
                inside = (times > as_of - w * D) & (times <= as_of)
                count = int(inside.sum())
                known = int((inside & fraud & (label <= as_of)).sum())
                nb_name, risk_name = _terminal_names(w)
                out[nb_name].append(float(count))
                out[risk_name].append(known / count if count else 0.0)
        return pd.DataFrame(out, index=rows["transaction_id"].to_numpy())

    columns = ["transaction_id", "tx_time_seconds", "tx_fraud", "tx_label_seconds"]
    return tx.groupby("terminal_id", group_keys=False)[columns].apply(one_terminal)


def _terminal_names(w: int) -> tuple[str, str]:
    return f"terminal_id_nb_tx_{w}day_window", f"terminal_id_risk_{w}day_window"


def _baseline(tx: pd.DataFrame, share: float) -> list[dict[str, Any]]:
    results = []
    for family, entity, naive, vectorised in (
        ("customer windows", "customer_id", _naive_customer, CustomerWindows()),
        ("terminal windows", "terminal_id", _naive_terminal, TerminalWindows()),
    ):
        ids = tx[entity].unique()
        chosen = ids[: max(1, int(len(ids) * share))]
        rows = tx[tx[entity].isin(chosen)]
        started = time.perf_counter()
        expected = naive(rows)
        naive_seconds = time.perf_counter() - started
        started = time.perf_counter()
        got = vectorised.fit_transform(rows)
        fast_seconds = time.perf_counter() - started
        got = got.set_axis(rows["transaction_id"].to_numpy()).loc[expected.index, expected.columns]
        results.append(
            {
                "family": family,
                "rows": len(rows),
                "naive_s": naive_seconds,
                "vectorised_s": fast_seconds,
                "full_naive_s": naive_seconds * len(tx) / len(rows),
                "max_abs_diff": float(np.max(np.abs(got.to_numpy() - expected.to_numpy()))),
            }
        )
    return results


# -- the online path --------------------------------------------------------------------------------


def _online(tx: pd.DataFrame, offline: pd.DataFrame) -> dict[str, Any]:
    last_day = int(tx["tx_time_days"].max())
    start = last_day * D
    history = tx[tx["tx_time_seconds"] < start]
    today = tx[tx["tx_time_days"] == last_day]

    # Memory in a traced run, time in an untraced one: tracemalloc slows every allocation down.
    tracemalloc.start()
    state = OnlineFeatureState.from_history(history, labels_as_of=start - 1)
    state_mb = tracemalloc.get_traced_memory()[0] / 1024**2
    tracemalloc.stop()
    del state
    started = time.perf_counter()
    state = OnlineFeatureState.from_history(history, labels_as_of=start - 1)
    rebuild_seconds = time.perf_counter() - started
    entries = len(state)

    labels = tx[tx["tx_label_seconds"] >= start].sort_values("tx_label_seconds")
    label_times = labels["tx_label_seconds"].to_numpy()
    label_rows = list(zip(labels["transaction_id"].tolist(), (labels["tx_fraud"] == 1).tolist(), strict=True))
    next_label = 0
    calls_ns = []
    values = []
    for record in today.to_dict("records"):
        while next_label < len(label_times) and label_times[next_label] < record["tx_time_seconds"]:
            tx_id, is_fraud = label_rows[next_label]
            state.record_label(tx_id, is_fraud, int(label_times[next_label]))
            next_label += 1
        started_ns = time.perf_counter_ns()
        features = state.features(record)
        state.observe(record)
        calls_ns.append(time.perf_counter_ns() - started_ns)
        values.append(features)
    online = pd.DataFrame(values, index=today.index)
    micros = np.array(calls_ns) / 1_000
    return {
        "calls": len(micros),
        "p50_us": float(np.percentile(micros, 50)),
        "p99_us": float(np.percentile(micros, 99)),
        "mean_us": float(micros.mean()),
        "max_us": float(micros.max()),
        "rebuild_s": rebuild_seconds,
        "history_rows": len(history),
        "entries": entries,
        "state_mb": state_mb,
        "max_abs_diff": float(np.max(np.abs(online[list(FEATURE_COLUMNS)].to_numpy() - offline.loc[today.index]))),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full", choices=sorted(PRESETS))
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the best is reported")
    parser.add_argument(
        "--baseline-share", type=float, default=0.05, help="share of customers/terminals for the naive baseline"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    tx = _transactions(args.preset)
    simulate_seconds = time.perf_counter() - started
    rows = len(tx)

    def flags_and_amount() -> None:
        TimeFlags().fit_transform(tx)
        tx["tx_amount"].to_numpy(dtype=np.float64)

    families = {
        "amount + flags (3)": _best_of(args.repeat, flags_and_amount),
        "customer windows (6)": _best_of(args.repeat, lambda: CustomerWindows().fit_transform(tx)),
        "terminal windows (6)": _best_of(args.repeat, lambda: TerminalWindows().fit_transform(tx)),
    }
    total = _best_of(args.repeat, lambda: build_features(tx))
    tracemalloc.start()
    offline = build_features(tx)
    traced_peak_mb = tracemalloc.get_traced_memory()[1] / 1024**2
    tracemalloc.stop()

    print(f"Feature benchmark (Python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__})")
    print(f"\npreset {args.preset}: {rows:,} transactions, simulated in {simulate_seconds:.2f} s\n")
    print("| step | seconds | rows/s |")
    print("|---|---|---|")
    for name, seconds in families.items():
        print(f"| {name} | {seconds:.3f} | {rows / seconds:,.0f} |")
    print(f"| **build_features, all 15** | **{total:.3f}** | **{rows / total:,.0f}** |")
    print(
        f"\nPeak traced memory of build_features: {traced_peak_mb:.0f} MB; peak RSS of the process: "
        f"{_peak_rss_mb():.0f} MB."
    )
    if args.preset == "full":
        print(f"Target, full preset: {total:.2f} s (target <= {TARGET_SECONDS:.0f} s) -- information, not a check.")

    if not args.no_baseline:
        print(f"\nNaive baseline on {args.baseline_share:.0%} of the customers / terminals (same rows for both):\n")
        print(
            "| family | rows | naive groupby().apply s | vectorised s | speed-up | naive, extrapolated to all rows s "
            "| max abs difference |"
        )
        print("|---|---|---|---|---|---|---|")
        for r in _baseline(tx, args.baseline_share):
            print(
                f"| {r['family']} | {r['rows']:,} | {r['naive_s']:.2f} | {r['vectorised_s']:.3f} "
                f"| x{r['naive_s'] / r['vectorised_s']:.0f} | {r['full_naive_s']:.0f} | {r['max_abs_diff']:.1e} |"
            )

    o = _online(tx, offline)
    print(f"\nOnline path: state rebuilt from {o['history_rows']:,} rows, then the last day replayed:\n")
    print(
        "| calls | features()+observe() p50 us | p99 us | mean us | max us | from_history s | entries held "
        "| state MB | max abs difference vs offline |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {o['calls']:,} | {o['p50_us']:.1f} | {o['p99_us']:.1f} | {o['mean_us']:.1f} | {o['max_us']:.0f} "
        f"| {o['rebuild_s']:.2f} | {o['entries']:,} | {o['state_mb']:.0f} | {o['max_abs_diff']:.1e} |"
    )


if __name__ == "__main__":
    main()
