"""What ``GET /metrics`` costs: the service with its metrics on and off, one and two workers, in one run.

Two measurements, each against a baseline taken in the same run:

1. **The counting alone, in process.** CPU microseconds per request of one ASGI call (a trivial app
   that answers 200) through :class:`~mlsys_lab.deployment.metrics.MetricsMiddleware` plus the
   per-decision counting (``observe_scored``), against the same call without them: with
   prometheus-client's values in memory (one worker), and in a child process started with
   ``PROMETHEUS_MULTIPROC_DIR`` set (several workers: every change goes to a memory-mapped file).
   Also the CPU of one scrape (merging the files, in multiprocess mode). ``time.process_time``, so
   the other jobs on a shared machine change it little.
2. **The real server under locust.** ``mlsys-lab serve`` (logistic regression, decision logging on)
   with ``MLSYS_LAB_METRICS`` true and false, one worker and ``--workers 2`` (multiprocess mode),
   one server at a time, each with the same unpaced FastHttpUser load: server CPU per request
   (process tree: the number that stays put on a busy machine), then req/s, p50 and p99 (wall
   numbers: on a shared machine they measure the machine). ``--rounds`` repeats the four servers
   (odd rounds with each on/off pair swapped) and the table shows each one's median, so neither a
   burst of other work nor the order lands on one row.

    python benchmarks/bench_metrics.py [--duration 10] [--users 20] [--rounds 2] [--requests 20000]

Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _champion import champion

from mlsys_lab.deployment.metrics import MULTIPROC_ENV, MetricsMiddleware, ServiceMetrics
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import capacity, scenarios
from mlsys_lab.load.runner import run_locust

ROUTE = SimpleNamespace(path="/v1/score")
SCORED = [SimpleNamespace(replayed=False, score=0.012, model_version=1, decision=False)]


async def _answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = ROUTE  # what FastAPI's router leaves in the scope
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _cpu_per_call(n: int, metrics: ServiceMetrics | None) -> float:
    """CPU microseconds per request: an ASGI call, through the middleware and the decision counting if given."""
    app = _answer if metrics is None else MetricsMiddleware(_answer, metrics)  # type: ignore[arg-type]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def run() -> float:
        started = time.process_time()
        for _ in range(n):
            await app({"type": "http", "method": "POST", "path": "/v1/score"}, receive, send)  # type: ignore[arg-type]
            if metrics is not None:
                metrics.observe_scored(SCORED)  # type: ignore[arg-type]
        return time.process_time() - started

    return 1e6 * asyncio.run(run()) / n


def micro(n: int) -> dict[str, float]:
    """The in-process measurement, in this process's prometheus-client mode (memory or files)."""
    folder = os.environ.get(MULTIPROC_ENV)
    metrics = ServiceMetrics(Path(folder) if folder else None)
    _cpu_per_call(n // 10, metrics)  # warm up
    baseline = min(_cpu_per_call(n, None) for _ in range(3))
    counted = min(_cpu_per_call(n, metrics) for _ in range(3))
    started = time.process_time()
    for _ in range(50):
        metrics.exposition()
    scrape = 1e3 * (time.process_time() - started) / 50
    return {"baseline_us": baseline, "counted_us": counted, "scrape_ms": scrape}


def micro_in_child(n: int, multiprocess: bool) -> dict[str, float]:
    """:func:`micro` in a fresh interpreter: prometheus-client picks memory or files when first imported."""
    with tempfile.TemporaryDirectory(prefix="bench-metrics-mp-") as folder:
        env = {key: value for key, value in os.environ.items() if key != MULTIPROC_ENV}
        if multiprocess:
            env[MULTIPROC_ENV] = folder
        out = subprocess.run(
            [sys.executable, __file__, "--micro-child", str(n)], env=env, check=True, capture_output=True, text=True
        )
    return dict(json.loads(out.stdout))


def server_rows(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    served = champion(root, "bench_metrics", args.preset)
    transactions = scenarios.simulated_transactions(args.preset, last_days=7)
    load = scenarios.steady(args.users, args.duration, ramp_up_s=3)
    pool = scenarios.write_request_pool(root / "pool.jsonl", transactions, 2000 * int(args.duration + 10))

    servers = [("1 worker", 1, "false"), ("1 worker", 1, "true"), ("2 workers", 2, "false"), ("2 workers", 2, "true")]
    measured: dict[tuple[str, str], list[dict[str, float]]] = {(name, on): [] for name, _, on in servers}
    for round_ in range(args.rounds):
        # Odd rounds run each pair the other way round, so that the order does not favour one setting.
        for name, workers, on in servers if round_ % 2 == 0 else [servers[i ^ 1] for i in range(len(servers))]:
            tag = f"{workers}w-{on}-{round_}"
            env = {
                "MLSYS_LAB_TRACKING_DIR": str(served.tracking.root),
                "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{root / f'decisions-{tag}.db'}",  # ids are scored once
                "MLSYS_LAB_METRICS": on,
                "MLSYS_LAB_METRICS_DIR": str(root / "metrics"),
            }
            with run_server(
                env, output=root / f"{tag}.log", workers=workers, wait_path="/ready", start_timeout=300
            ) as s:
                before = capacity.process_cpu_seconds(s.process.pid)
                result = run_locust(s.url, load, root / tag, pool=pool)
                cpu = capacity.process_cpu_seconds(s.process.pid) - before
            window = result.window(load.ramp_up_s)
            measured[(name, on)].append(
                {
                    "cpu_ms": 1000 * cpu / max(result.requests, 1),
                    "rps": window.rps,
                    "p50": window.histogram.percentile(0.5),
                    "p99": window.histogram.percentile(0.99),
                    "errors": window.failure_count,
                }
            )
            print(f"  round {round_ + 1}: {name}, metrics {on}: {measured[(name, on)][-1]}", file=sys.stderr)
    rows = []
    for (name, on), runs in measured.items():
        rows.append({"server": name, "metrics": on, **{k: statistics.median(r[k] for r in runs) for k in runs[0]}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per server, after ramp-up")
    parser.add_argument("--users", type=int, default=20, help="unpaced locust users")
    parser.add_argument("--rounds", type=int, default=2, help="times each server is measured (the median is shown)")
    parser.add_argument("--requests", type=int, default=20_000, help="ASGI calls per in-process measurement")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--skip-servers", action="store_true", help="only the in-process measurement")
    parser.add_argument("--micro-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.micro_child:
        print(json.dumps(micro(args.micro_child)))
        return

    print(f"== the counting alone, in process ({args.requests:,} ASGI calls, CPU time, best of 3)")
    print(f"{'values':<28}{'no metrics us/req':>19}{'metrics us/req':>16}{'overhead us/req':>17}{'scrape CPU ms':>15}")
    for label, multiprocess in (("in memory (1 worker)", False), ("files (several workers)", True)):
        m = micro_in_child(args.requests, multiprocess)
        print(
            f"{label:<28}{m['baseline_us']:>19.1f}{m['counted_us']:>16.1f}"
            f"{m['counted_us'] - m['baseline_us']:>17.1f}{m['scrape_ms']:>15.2f}"
        )
    if args.skip_servers:
        return
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        rows = server_rows(args, Path(tmp))
    print(
        f"\n== mlsys-lab serve under locust ({args.users} unpaced users, {args.duration:g} s after a 3 s ramp-up, "
        f"median of {args.rounds} rounds, one server at a time)"
    )
    print(f"{'server':<12}{'metrics':>8}{'CPU ms/req':>12}{'vs off':>9}", end="")
    print(f"{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    off = {r["server"]: r["cpu_ms"] for r in rows if r["metrics"] == "false"}
    for r in rows:
        delta = r["cpu_ms"] - off[r["server"]]
        print(
            f"{r['server']:<12}{r['metrics']:>8}{r['cpu_ms']:>12.2f}{delta:>+9.2f}{r['rps']:>8.0f}"
            f"{r['p50']:>9g}{r['p99']:>9g}{r['errors']:>8g}"
        )
    print("(CPU ms/req: the server's process tree, stable under load; the wall columns measure the machine too)")


if __name__ == "__main__":
    main()
