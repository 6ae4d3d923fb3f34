"""The garbage collector's pauses in ``mlsys-lab serve`` under the 1M-requests-an-hour load, with and without gc.freeze.

A started service holds about 400,000 objects the collector tracks (the imported modules, sklearn's
and MLflow's included, the model, the feature state). CPython's full collection walks all of them,
and the event loop, so every request in flight, waits. ``mlsys-lab serve`` freezes its start-up heap
(``MLSYS_LAB_GC_FREEZE``, default true: :func:`mlsys_lab.deployment.service.freeze_start_up_heap`).
This benchmark serves the same model on the same kind of traffic twice per round, frozen and
``MLSYS_LAB_GC_FREEZE=false`` (the baseline: Python's default collector), alternating, and reads the
service's own ``mlsys_lab_gc_pause_seconds`` histogram before and after each load run:

- full (generation 2) collections during the run, their total pause and the largest bucket;
- locust's share of requests within 50 ms, p99, errors; the server's CPU per request.

    python benchmarks/bench_gc.py [--duration 30] [--rounds 2] [--rate 278]

The pause counts and sums are the stable part (a busy machine stretches each pause but does not add
collections); the latency share depends on what else runs. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.registry import Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import capacity, scenarios
from mlsys_lab.load.runner import run_locust
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured per run, after ramp-up")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (frozen, not frozen)")
    parser.add_argument("--rate", type=float, default=278.0, help="paced requests per second")
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-gc-") as tmp:
        root = Path(tmp)
        config = preset(args.preset, random_state=0)
        frame = feature_frame(simulate(config).transactions)
        tracking = TrackingSettings(root=root / "mlflow", experiment="bench-gc")
        run = train(
            TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(config.n_days), validation_folds=2),
            frame,
            tracker=Tracker(tracking),
        )
        registry = Registry(tracking)
        registry.promote(registry.register(run).version, who="bench_gc", why="benchmark")
        registry.close()
        transactions = scenarios.simulated_transactions(args.preset, last_days=7)
        scenario = scenarios.steady(50, args.duration, rate=args.rate, ramp_up_s=10, name=f"paced-{args.rate:g}")

        rows = []
        for n in range(2 * args.rounds):
            frozen = n % 2 == 0
            name = "gc.freeze (default)" if frozen else "MLSYS_LAB_GC_FREEZE=false"
            env = {
                "MLSYS_LAB_TRACKING_DIR": str(tracking.root),
                "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{root / f'decisions-{n}.db'}",
                "MLSYS_LAB_GC_FREEZE": "true" if frozen else "false",
            }
            fresh = transactions.assign(transaction_id=transactions["transaction_id"] + (n + 1) * 10**9)
            pool = scenarios.write_request_pool(root / f"pool-{n}.jsonl", fresh, scenario.max_requests())
            with run_server(env, output=root / f"serve-{n}.log", wait_path="/ready", start_timeout=300) as server:
                before, cpu_before = gc_samples(server.url), capacity.process_cpu_seconds(server.process.pid)
                result = run_locust(server.url, scenario, root / f"run-{n}", pool=pool)
                cpu = capacity.process_cpu_seconds(server.process.pid) - cpu_before
                after = gc_samples(server.url)
            window = result.window(scenario.ramp_up_s)

            def delta(sample: str, generation: str, le: str = "", b: Samples = before, a: Samples = after) -> float:
                return a.get((sample, generation, le), 0.0) - b.get((sample, generation, le), 0.0)

            rows.append(
                {
                    "service": name,
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
                    "CPU ms/req": 1000 * cpu / max(result.requests, 1),
                }
            )

        print(f"== {args.rate:g} req/s paced (50 locust users), {args.duration:g} s after a 10 s ramp-up, per run")
        print(
            f"{'service':<28}{'frozen':>9}{'full GCs':>9}{'>=50 ms':>8}{'full ms':>9}{'young ms':>9}"
            f"{'req/s':>7}{'<=50 ms':>9}{'p99 ms':>8}{'errors':>7}{'CPU ms/req':>11}"
        )
        for r in rows:
            print(
                f"{r['service']:<28}{r['frozen']:>9,.0f}{r['full']:>9.0f}{r['full >=50 ms']:>8.0f}{r['full ms']:>9.0f}"
                f"{r['young ms']:>9.0f}{r['req/s']:>7.0f}{r['<=50 ms']:>9.2%}{r['p99 ms']:>8g}{r['errors']:>7}"
                f"{r['CPU ms/req']:>11.2f}"
            )
        print("(full GCs: generation-2 collections during the run; >=50 ms: how many of them paused 50 ms or more;")
        print(" full ms / young ms: total pause of the full / young (generations 0-1) collections)")
        print(f"load average (1 min) now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
