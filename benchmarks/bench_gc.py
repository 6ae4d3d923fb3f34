"""The garbage collector's pauses in ``mlsys-lab serve``: refrozen, frozen once, not frozen.

A started service holds about 400,000 objects the collector tracks (the imported modules, sklearn's
and MLflow's included, the model, the feature state). CPython's full collection walks all of them,
and the event loop, so every request in flight, waits. ``mlsys-lab serve`` freezes its start-up heap
(``MLSYS_LAB_GC_FREEZE``, default true) and, after each full collection, what that collection found
alive (``MLSYS_LAB_GC_REFREEZE``, default true: :class:`mlsys_lab.deployment.service.HeapFreezer`),
because the feature state grows with every transaction and a heap frozen once is walked again and
again as it grows. This benchmark serves the same model three ways, one server each, and sends each
server ``--runs`` paced runs back to back (a server that has been up for a while, not a fresh one):

1. refreeze (the default);
2. ``MLSYS_LAB_GC_REFREEZE=false``: frozen at start-up only;
3. ``MLSYS_LAB_GC_FREEZE=false``: the baseline, Python's default collector.

For each run it reads the service's own ``mlsys_lab_gc_pause_seconds`` histogram before and after:

- full (generation 2) collections during the run, their total pause and how many took 50 ms or more;
- locust's share of requests within 50 ms, p99, errors; the server's CPU per request.

    python benchmarks/bench_gc.py [--duration 30] [--runs 4] [--rate 278]

The pause counts and sums are the stable part (a busy machine stretches each pause but does not add
collections); the latency share depends on what else runs. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import httpx
from _champion import champion
from prometheus_client.parser import text_string_to_metric_families

from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import capacity, scenarios
from mlsys_lab.load.result import LoadResult
from mlsys_lab.load.runner import run_locust

Samples = dict[tuple[str, str, str], float]


def gc_samples(url: str) -> Samples:
    """``(sample name, generation, le) -> value`` of the service's GC metrics, from one scrape."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, sample.labels.get("generation", ""), sample.labels.get("le", "")): sample.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("mlsys_lab_gc_")
        for sample in family.samples
    }


def _row(
    name: str, run: int, before: Samples, after: Samples, window: LoadResult, cpu: float, requests: int
) -> dict[str, object]:
    def delta(sample: str, generation: str, le: str = "") -> float:
        return after.get((sample, generation, le), 0.0) - before.get((sample, generation, le), 0.0)

    return {
        "service": name,
        "run": run,
        "frozen": after.get(("mlsys_lab_gc_frozen_objects", "", ""), 0.0),
        "full": delta("mlsys_lab_gc_pause_seconds_count", "2"),
        "full ms": 1000 * delta("mlsys_lab_gc_pause_seconds_sum", "2"),
        "young ms": 1000
        * (delta("mlsys_lab_gc_pause_seconds_sum", "0") + delta("mlsys_lab_gc_pause_seconds_sum", "1")),
        # All full collections minus those within the 50 ms bucket (cumulative buckets).
        "full >=50 ms": delta("mlsys_lab_gc_pause_seconds_count", "2")
        - delta("mlsys_lab_gc_pause_seconds_bucket", "2", "0.05"),
        "req/s": window.rps,
        "<=50 ms": window.histogram.share_at_most(50),
        "p99 ms": window.histogram.percentile(0.99),
        "errors": window.failure_count,
        "CPU ms/req": 1000 * cpu / max(requests, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per run, after ramp-up")
    parser.add_argument("--runs", type=int, default=4, help="paced runs back to back on each server")
    parser.add_argument("--rate", type=float, default=278.0, help="paced requests per second")
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp:
        root = Path(tmp)
        served = champion(root, "bench_gc", args.preset)
        transactions = scenarios.simulated_transactions(args.preset, last_days=7)
        scenario = scenarios.steady(50, args.duration, rate=args.rate, ramp_up_s=10, name=f"paced-{args.rate:g}")

        variants = [
            ("refreeze (default)", {}),
            ("GC_REFREEZE=false", {"MLSYS_LAB_GC_REFREEZE": "false"}),
            ("GC_FREEZE=false", {"MLSYS_LAB_GC_FREEZE": "false"}),
        ]
        rows = []
        for v, (name, changes) in enumerate(variants):
            env = {
                **served.env(root / f"decisions-{v}.db"),
                **changes,
            }
            with run_server(env, output=root / f"serve-{v}.log", wait_path="/ready", start_timeout=300) as server:
                for k in range(args.runs):
                    # New ids every run: a resent id is answered from the log, and cheaper.
                    fresh = transactions.assign(transaction_id=transactions["transaction_id"] + (k + 1) * 10**9)
                    pool = scenarios.write_request_pool(root / f"pool-{v}-{k}.jsonl", fresh, scenario.max_requests())
                    before, cpu_before = gc_samples(server.url), capacity.process_cpu_seconds(server.process.pid)
                    result = run_locust(server.url, scenario, root / f"run-{v}-{k}", pool=pool)
                    cpu = capacity.process_cpu_seconds(server.process.pid) - cpu_before
                    after = gc_samples(server.url)
                    rows.append(
                        _row(name, k + 1, before, after, result.window(scenario.ramp_up_s), cpu, result.requests)
                    )

        print(
            f"== {args.rate:g} req/s paced (50 locust users), {args.duration:g} s after a 10 s ramp-up, "
            f"{args.runs} runs back to back per server"
        )
        print(
            f"{'service':<20}{'run':>4}{'frozen':>9}{'full GCs':>9}{'>=50 ms':>8}{'full ms':>9}{'young ms':>9}"
            f"{'req/s':>7}{'<=50 ms':>9}{'p99 ms':>8}{'errors':>7}{'CPU ms/req':>11}"
        )
        for r in rows:
            print(
                f"{r['service']:<20}{r['run']:>4}{r['frozen']:>9,.0f}{r['full']:>9.0f}{r['full >=50 ms']:>8.0f}"
                f"{r['full ms']:>9.0f}{r['young ms']:>9.0f}{r['req/s']:>7.0f}{r['<=50 ms']:>9.2%}{r['p99 ms']:>8g}"
                f"{r['errors']:>7}{r['CPU ms/req']:>11.2f}"
            )
        print("(full GCs: generation-2 collections during the run; >=50 ms: how many of them paused 50 ms or more;")
        print(" full ms / young ms: total pause of the full / young (generations 0-1) collections)")
        print(f"load average (1 min) now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
