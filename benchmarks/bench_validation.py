"""Benchmark the raw feed and its validation: time, throughput, and how well faults are caught.

Usage::

    python benchmarks/bench_validation.py [--preset full] [--rate 0.02] [--baseline-rows 200000]

Simulates the preset, injects faults with ``raw_feed`` and validates the whole raw feed once with
``validate``. As a baseline measured in the same run, a naive validator (``_naive_validate`` below: a
Python loop over rows with if-statements, the way a first version is usually written, kept here and
out of the package on purpose) checks the same rules on the first ``--baseline-rows`` rows; its time
is scaled linearly to the whole feed. Then the quarantine is scored against the ground truth per
fault kind. Information only, never asserted: machines differ, and a benchmark is not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from typing import Any

import pandas as pd

from mlsys_lab.data import PRESETS, preset, simulate
from mlsys_lab.data.faults import FeedFaults, raw_feed, score
from mlsys_lab.data.validation import validate

TARGET_ROWS_PER_SECOND = 300_000


def _naive_validate(
    raw: pd.DataFrame, known_customers: set[int], known_terminals: set[int]
) -> tuple[list[Any], list[str]]:
    """The same rules, one row at a time: returns the quarantined index labels and their rules."""
    seen_ids: set[int] = set()
    latest = None
    quarantined, rules_per_row = [], []
    for index, row in zip(raw.index, raw.itertuples(index=False), strict=True):
        rules = []
        for column in ("transaction_id", "customer_id", "terminal_id", "tx_amount", "tx_datetime"):
            value = getattr(row, column)
            if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
                rules.append("null")
            elif column == "tx_datetime":
                if not isinstance(value, dt.datetime):
                    rules.append("wrong_type")
            elif isinstance(value, str | bool) or not isinstance(value, int | float):
                rules.append("wrong_type")
            elif column == "tx_amount" and value < 0:
                rules.append("negative_amount")
            elif column != "tx_amount" and value < 0:
                rules.append("negative_id")
            elif column == "customer_id" and value not in known_customers:
                rules.append("unknown_customer")
            elif column == "terminal_id" and value not in known_terminals:
                rules.append("unknown_terminal")
        if isinstance(row.transaction_id, int):
            if row.transaction_id in seen_ids:
                rules.append("duplicate_id")
            seen_ids.add(row.transaction_id)
        if not rules and latest is not None and row.tx_datetime < latest:
            rules.append("out_of_order")
        if rules:
            quarantined.append(index)
            rules_per_row.append("|".join(dict.fromkeys(rules)))
        else:
            latest = row.tx_datetime if latest is None else max(latest, row.tx_datetime)
    return quarantined, rules_per_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--rate", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    args = parser.parse_args()

    sim = simulate(preset(args.preset))
    started = time.perf_counter()
    feed = raw_feed(sim.transactions, FeedFaults(rate=args.rate), random_state=args.seed)
    feed_seconds = time.perf_counter() - started

    customers, terminals = sim.customers["customer_id"], sim.terminals["terminal_id"]
    started = time.perf_counter()
    result = validate(feed.raw, known_customers=customers, known_terminals=terminals)
    validate_seconds = time.perf_counter() - started

    subset = feed.raw.iloc[: args.baseline_rows]
    started = time.perf_counter()
    naive_index, naive_rules = _naive_validate(subset, set(customers.tolist()), set(terminals.tolist()))
    naive_seconds = (time.perf_counter() - started) * len(feed.raw) / max(len(subset), 1)
    # The same rules must give the same quarantine on the subset, or the comparison means nothing.
    on_subset = validate(subset, known_customers=customers, known_terminals=terminals).quarantined["rules"]
    agree = list(on_subset.index) == naive_index and on_subset.tolist() == naive_rules

    # The same rows already typed (no object columns): what parsing at the edge would buy.
    typed = sim.transactions
    started = time.perf_counter()
    validate(typed, known_customers=customers, known_terminals=terminals)
    typed_seconds = time.perf_counter() - started

    rows = len(feed.raw)
    print(f"## Raw feed validation, preset `{args.preset}`, fault rate {args.rate}\n")
    print("| rows | faulted rows | raw_feed s | validate s | rows/s | naive loop s | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {rows:,} | {feed.n_faulted:,} | {feed_seconds:.2f} | {validate_seconds:.2f} | "
        f"{rows / validate_seconds:,.0f} | {naive_seconds:.1f} | {naive_seconds / validate_seconds:.0f}x |"
    )
    scaled = "" if len(subset) == rows else f", timed on the first {len(subset):,} rows and scaled"
    print(
        f"| {len(typed):,} (clean, typed columns) | 0 | - | {typed_seconds:.2f} | "
        f"{len(typed) / typed_seconds:,.0f} | - | - |"
    )
    print(f"\nTarget: at least {TARGET_ROWS_PER_SECOND:,} rows/s. Naive loop{scaled}; same quarantine: {agree}.\n")

    print("### Rows per rule\n")
    print(_markdown(result.report))
    print("\n### Scored against the ground truth (`clean`: clean rows quarantined, should be 0)\n")
    print(_markdown(score(feed.truth, result.quarantined)))


def _markdown(frame: pd.DataFrame) -> str:
    """A markdown table without the optional tabulate dependency."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * frame.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
