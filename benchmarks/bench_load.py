"""Module 04's benchmark: the real service against a naive same-job service and a no-log floor, one run.

Every service gets the same locust load (FastHttpUser, headless, on the same machine) one after the
other, so that they never compete with each other for the cores, only with the load generator:

1. ``naive``: mlsys_lab.load.baselines.naive_app (a pickle, a one-row DataFrame per request, print,
   a new sqlite3 connection and commit per decision, default threads);
2. ``floor``: the same features and model, no decision log (mlsys_lab.load.baselines.floor_app);
3. ``mlsys-lab serve``: the real service, decision log on, one worker, as it is on this branch;
4. ``mlsys-lab serve --workers 2``: the same, two uvicorn worker processes sharing the log;
5. ``http floor``: a FastAPI ``async def`` POST that returns a constant without reading the body
   (mlsys_lab.load.baselines.noop_app): what uvicorn and FastAPI alone cost, the ceiling of any service.

For each: throughput at ``--users`` unpaced users, p50/p99, the share within 50 ms, errors, the
server's CPU per request (psutil, process tree: stable on a busy machine, unlike wall time) and the
load generator's own CPU per request (locust's rusage), and whether that run met the 1M/hour SLO
shape (>= 278 req/s, >= 99% within 50 ms, no errors). Then
the 1M-requests-an-hour scenario (278 req/s paced) against the real service with its SLO verdict,
a capacity plan from the measured service time, and the cost per 1M predictions at
``--price-per-vcpu-hour`` (an example price you pass, not a claim about any provider).

    python benchmarks/bench_load.py [--duration 20] [--users 20] [--price-per-vcpu-hour 0.04]

Then the **sustainable-rate search** (``--search-duration`` s per step, 0 to skip): for naive, floor
and ``mlsys-lab serve``, paced locust runs (constant throughput) at rising rates (x1.5 from
``--min-rate``) until one breaks the SLO (99% within 50 ms from the exact histogram, zero errors, at
least 95% of the offered rate delivered), then bisection between the last rate that held and the
first that did not, until they are within ``--search-precision`` (5%) of each other. The highest
rate that held is the service's sustainable rate, and the ratios serve/naive and serve/floor are
ratios of those, measured side by side in one run (unpaced throughput says how fast a service
drains a queue, not what it can serve within its SLO). The default steps are short (8 s);
``--search-duration 60`` gives the README's 60 s runs.

Nothing here is a pass/fail test; timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _champion import champion

from mlsys_lab.deployment.server import free_port, run_server
from mlsys_lab.load import baselines, capacity, scenarios
from mlsys_lab.load.result import LoadResult
from mlsys_lab.load.runner import run_locust
from mlsys_lab.load.slo import ONE_MILLION_AN_HOUR, SLO, check_slo


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"baseline exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not answering")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children: the locust run just finished
    return usage.ru_utime + usage.ru_stime


def _measure(
    url: str, pid: int, scenario: scenarios.Scenario, pool: Path, run_dir: Path
) -> tuple[LoadResult, float, float]:
    before, generator_before = capacity.process_cpu_seconds(pid), _children_cpu()
    result = run_locust(url, scenario, run_dir, pool=pool)
    cpu = capacity.process_cpu_seconds(pid) - before
    return result, cpu, _children_cpu() - generator_before


def _row(name: str, result: LoadResult, cpu: float, ramp_up_s: float, generator_cpu: float) -> dict[str, object]:
    w = result.window(ramp_up_s)
    return {
        "service": name,
        "req/s": w.rps,
        "p50 ms": w.histogram.percentile(0.5),
        "p99 ms": w.histogram.percentile(0.99),
        "<=50 ms": w.histogram.share_at_most(50),
        "errors": w.failure_count,
        "CPU ms/req": 1000 * cpu / max(result.requests, 1),
        "locust ms/req": 1000 * generator_cpu / max(result.requests, 1),
        "1M/h": w.rps >= 278 and w.histogram.share_at_most(50) >= 0.99 and w.failure_count == 0,
    }


def _paced_step(
    url: str, pid: int, transactions: object, rate: float, duration_s: float, run_dir: Path, id_offset: int
) -> dict[str, object]:
    """One paced run at ``rate`` req/s: did the SLO hold, and the numbers it was judged on."""
    ramp_up_s = 2.0
    # Enough users that each one's pace leaves room for 100 ms answers (a user waits for its answer).
    users = min(150, max(10, math.ceil(rate * 0.1)))
    scenario = scenarios.steady(users, duration_s, rate=rate, ramp_up_s=ramp_up_s, name=f"paced-{rate:g}")
    fresh = transactions.assign(transaction_id=transactions["transaction_id"] + id_offset)  # type: ignore[attr-defined]
    pool = scenarios.write_request_pool(run_dir.with_suffix(".jsonl"), fresh, scenario.max_requests())
    before = capacity.process_cpu_seconds(pid)
    result = run_locust(url, scenario, run_dir, pool=pool)
    cpu = capacity.process_cpu_seconds(pid) - before
    # Zero errors, 99% within 50 ms, and the offered rate delivered (a server that falls behind
    # makes locust's users wait, and they send less: closed loop).
    slo = SLO(50.0, 0.99, 0.0, min_rps=0.95 * rate, min_duration_s=0.8 * duration_s, ramp_up_s=ramp_up_s)
    verdict = check_slo(result, slo)
    window = result.window(ramp_up_s)
    return {
        "rate": rate,
        "held": verdict.passed,
        "req/s": window.rps,
        "<=50 ms": window.histogram.share_at_most(50),
        "p99 ms": window.histogram.percentile(0.99),
        "errors": window.failure_count,
        "CPU ms/req": 1000 * cpu / max(result.requests, 1),
        "why": "; ".join(r.message for r in verdict.failed),
    }


def sustainable_rate(
    url: str,
    pid: int,
    transactions: object,
    root: Path,
    min_rate: float,
    duration_s: float,
    precision: float = 0.05,
    max_rate: float = 2000,
) -> tuple[float, list[dict[str, object]]]:
    """The highest paced rate at which the SLO held (0 when even ``min_rate`` failed), and every step.

    Rates rise x1.5 from ``min_rate`` until one step fails; then bisection between the last rate that
    held and the first that failed, until they are within ``precision`` of each other.
    """
    steps: list[dict[str, object]] = []
    held, failed, rate = 0.0, math.inf, min_rate
    while rate <= max_rate:
        steps.append(_paced_step(url, pid, transactions, rate, duration_s, root / f"step-{len(steps)}", _offset(steps)))
        if not steps[-1]["held"]:
            failed = rate
            break
        held, rate = rate, rate * 1.5
    while held > 0 and math.isfinite(failed) and failed > held * (1 + precision):
        middle = round((held + failed) / 2)
        if middle in (held, failed):
            break
        steps.append(
            _paced_step(url, pid, transactions, middle, duration_s, root / f"step-{len(steps)}", _offset(steps))
        )
        if steps[-1]["held"]:
            held = middle
        else:
            failed = middle
    return held, steps


def _offset(steps: list[dict[str, object]]) -> int:
    # Every step's transactions are new ones: a resent id is answered from the log, and cheaper.
    return (len(steps) + 2) * 10**9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per service, after ramp-up")
    parser.add_argument("--users", type=int, default=20, help="unpaced locust users for the throughput runs")
    parser.add_argument("--price-per-vcpu-hour", type=float, default=0.04, help="an example price (your currency)")
    parser.add_argument("--preset", default="small")
    parser.add_argument(
        "--search-duration", type=float, default=8.0, help="seconds per paced step of the rate search (0: skip)"
    )
    parser.add_argument("--min-rate", type=float, default=25.0, help="the rate search's first rate (req/s)")
    parser.add_argument(
        "--search-precision", type=float, default=0.05, help="bisect until held and failed rates are this close"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        served = champion(root, "bench_load", args.preset)
        run, info, tracking = served.run, served.info, served.tracking
        model_path = baselines.save_model(run.pipeline, run.config.features, info.threshold, root / "model.pkl")

        transactions = scenarios.simulated_transactions(args.preset, last_days=7)
        unpaced = scenarios.steady(args.users, args.duration, ramp_up_s=3)
        pool = scenarios.write_request_pool(root / "pool.jsonl", transactions, 2000 * int(args.duration + 10))
        rows = []
        searches: dict[str, tuple[float, list[dict[str, object]]]] = {}

        for kind in ("naive", "floor", "noop"):
            port = free_port()
            with (root / f"{kind}.log").open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "mlsys_lab.load.baselines", kind, str(model_path), str(port),
                     str(root / f"{kind}.db")],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )  # fmt: skip
            try:
                url = f"http://127.0.0.1:{port}"
                _wait(url, process)
                result, cpu, generator = _measure(url, process.pid, unpaced, pool, root / kind)
                rows.append(_row("http floor" if kind == "noop" else kind, result, cpu, unpaced.ramp_up_s, generator))
                if args.search_duration > 0 and kind != "noop":
                    (root / f"search-{kind}").mkdir()
                    searches[kind] = sustainable_rate(
                        url,
                        process.pid,
                        transactions,
                        root / f"search-{kind}",
                        args.min_rate,
                        args.search_duration,
                        args.search_precision,
                    )
            finally:
                process.terminate()
                process.wait(timeout=15)

        env = {
            "MLSYS_LAB_TRACKING_DIR": str(tracking.root),
            "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{root / 'decisions.db'}",
        }
        env2 = {**env, "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{root / 'decisions-2w.db'}"}
        with run_server(env2, output=root / "serve-2w.log", wait_path="/ready", workers=2, start_timeout=300) as server:
            result, cpu, generator = _measure(server.url, server.process.pid, unpaced, pool, root / "serve-2w")
            two_workers = _row("serve --workers 2", result, cpu, unpaced.ramp_up_s, generator)
        with run_server(env, output=root / "serve.log", wait_path="/ready", start_timeout=300) as server:
            result, cpu, generator = _measure(server.url, server.process.pid, unpaced, pool, root / "serve")
            rows.append(_row("mlsys-lab serve", result, cpu, unpaced.ramp_up_s, generator))
            rows.append(two_workers)
            window = result.window(unpaced.ramp_up_s)
            # Unpaced users have no think time: users = throughput x mean response time, if locust kept up.
            little = capacity.littles_law(args.users, window.rps, window.histogram.mean() / 1000)
            service_time = cpu / max(result.requests, 1)
            million = scenarios.one_million_an_hour(duration_s=args.duration)
            # New transaction ids: the log already holds the first run's, and each id is scored once.
            later = transactions.assign(transaction_id=transactions["transaction_id"] + 10**9)
            million_pool = scenarios.write_request_pool(root / "pool-1m.jsonl", later, million.max_requests())
            before = capacity.process_cpu_seconds(server.process.pid)
            at_million = run_locust(server.url, million, root / "serve-1m", pool=million_pool)
            million_cpu = capacity.process_cpu_seconds(server.process.pid) - before
            if args.search_duration > 0:
                (root / "search-serve").mkdir()
                later_still = transactions.assign(transaction_id=transactions["transaction_id"] + 10**11)
                searches["mlsys-lab serve"] = sustainable_rate(
                    server.url,
                    server.process.pid,
                    later_still,
                    root / "search-serve",
                    args.min_rate,
                    args.search_duration,
                    args.search_precision,
                )

        naive_rps = float(rows[0]["req/s"])  # type: ignore[arg-type]
        floor_rps = float(rows[1]["req/s"])  # type: ignore[arg-type]
        print(f"== {args.users} unpaced locust users, {args.duration:g} s after a 3 s ramp-up, one service at a time")
        header = f"{'service':<20}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'<=50 ms':>9}{'errors':>8}{'CPU ms/req':>12}"
        print(header + f"{'locust ms/req':>14}{'x naive':>9}{'x floor':>9}{'1M/h':>6}")
        for r in rows:
            rps = float(r["req/s"])  # type: ignore[arg-type]
            print(
                f"{r['service']:<20}{rps:>8.0f}{r['p50 ms']:>9g}{r['p99 ms']:>9g}{float(r['<=50 ms']):>9.1%}"  # type: ignore[arg-type]
                f"{r['errors']:>8}{float(r['CPU ms/req']):>12.2f}{float(r['locust ms/req']):>14.2f}"  # type: ignore[arg-type]
                f"{rps / naive_rps:>9.2f}{rps / floor_rps:>9.2f}{'yes' if r['1M/h'] else 'no':>6}"
            )
        print("(x floor: against the no-log floor; 1M/h: this run had >= 278 req/s, >= 99% within 50 ms, no errors)")
        if searches:
            print_search(searches, args.search_duration)

        slo = dataclasses.replace(ONE_MILLION_AN_HOUR, min_duration_s=args.duration, ramp_up_s=million.ramp_up_s)
        verdict = check_slo(at_million, slo)
        print(
            f"Little's law on the serve run: {little.users:g} users vs throughput x response time = "
            f"{little.predicted_users:.1f} ({little.relative_error:.0%} apart: the rest is the generator's own time)"
        )
        print(f"\n== 1M requests/hour against mlsys-lab serve: {million.users} users paced to 278 req/s")
        print(verdict)
        for note in at_million.notes:
            print(f"note: {note}")
        s_1m = million_cpu / max(at_million.requests, 1)
        u = capacity.utilisation(at_million.window(million.ramp_up_s).rps, s_1m)
        print(f"service time from CPU: {service_time * 1000:.2f} ms unpaced, {s_1m * 1000:.2f} ms at 278 req/s")
        print(f"utilisation law at 278 req/s: U = {u:.0%} of one core")
        print(f"M/M/1 prediction: p99 <= 50 ms up to {capacity.rate_at_slo(s_1m, 0.050):.0f} req/s on one worker")
        print(capacity.plan_capacity(278, s_1m, 0.050, headroom=0.3))
        cost = capacity.cost_per_million(s_1m, args.price_per_vcpu_hour, utilisation=min(1.0, u))
        print(
            f"cost per 1M predictions at {args.price_per_vcpu_hour:g} per vCPU-hour (an example price) and "
            f"{min(1.0, u):.0%} utilisation: {cost:.3f}"
        )


def print_search(searches: dict[str, tuple[float, list[dict[str, object]]]], duration_s: float) -> None:
    """Every paced step, then each service's sustainable rate and the ratios between them."""
    print(f"\n== sustainable rate: paced steps of {duration_s:g} s, SLO 99% <= 50 ms, 0 errors, >= 95% delivered")
    print(f"{'service':<18}{'offered':>9}{'req/s':>8}{'<=50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU ms/req':>12}  held")
    for name, (_, steps) in searches.items():
        for step in steps:
            print(
                f"{name:<18}{float(step['rate']):>9.0f}{float(step['req/s']):>8.0f}"  # type: ignore[arg-type]
                f"{float(step['<=50 ms']):>9.1%}{float(step['p99 ms']):>9g}{step['errors']:>8}"  # type: ignore[arg-type]
                f"{float(step['CPU ms/req']):>12.2f}  {'yes' if step['held'] else 'no: ' + str(step['why'])}"  # type: ignore[arg-type]
            )
    rates = {name: held for name, (held, _) in searches.items()}
    print("sustainable: " + ", ".join(f"{name} {rate:g} req/s" for name, rate in rates.items()))
    serve = rates.get("mlsys-lab serve", 0.0)
    for other in ("naive", "floor"):
        if rates.get(other):
            print(f"serve / {other}: {serve / rates[other]:.2f}")
    print(f"load average (1 min) now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
