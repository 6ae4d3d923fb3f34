"""Issue 15's benchmark: throughput and p99 of 1, 2 and 4 service processes on a SQLite log and on PostgreSQL.

For each decision log (a SQLite file in WAL mode; a throwaway PostgreSQL server on loopback with its
default durability, fsync on) and each process count N, ``mlsys-lab serve --workers N`` starts N
uvicorn worker processes on one port (the kernel spreads the connections over them, as a load
balancer spreads them over replicas; each worker keeps its own feature state and tails the shared
log, exactly as N separate ``mlsys-lab serve`` processes would). One locust (FastHttpUser, headless,
``--users`` unpaced users) loads it for ``--duration`` seconds after a 3 s ramp-up. Every run gets an
empty log, and the same request pool. Reported per run: requests/s, p50 and p99 after the ramp-up,
errors, and the CPU the server's process tree used per request (stable on a busy machine).

    python benchmarks/bench_scaleout.py [--duration 10] [--users 20] [--processes 1 2 4]

Nothing here is a pass/fail test; the numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _champion import champion

from mlsys_lab.deployment.pgcluster import ThrowawayCluster
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import capacity, scenarios
from mlsys_lab.load.runner import run_locust


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run, after ramp-up")
    parser.add_argument("--users", type=int, default=20, help="unpaced locust users")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp, ThrowawayCluster() as cluster:
        root = Path(tmp)
        served = champion(root, "bench_scaleout", args.preset)

        unpaced = scenarios.steady(args.users, args.duration, ramp_up_s=3)
        transactions = scenarios.simulated_transactions(args.preset, last_days=7)
        pool = scenarios.write_request_pool(root / "pool.jsonl", transactions, 1500 * int(args.duration + 10))
        rows = []
        for backend in ("sqlite", "postgresql"):
            for n in args.processes:
                name = f"{backend}-{n}"
                url = f"sqlite:///{root / (name + '.db')}" if backend == "sqlite" else cluster.create_database(name)
                env = {"MLSYS_LAB_TRACKING_DIR": str(served.tracking.root), "MLSYS_LAB_DECISION_LOG_URL": url}
                with run_server(env, workers=n, wait_path="/ready", start_timeout=180) as server:
                    before = capacity.process_cpu_seconds(server.process.pid)
                    result = run_locust(server.url, unpaced, root / name, pool=pool)
                    cpu = capacity.process_cpu_seconds(server.process.pid) - before
                window = result.window(unpaced.ramp_up_s)
                rows.append((backend, n, window, 1000 * cpu / max(result.requests, 1)))

        print(f"== {args.users} unpaced locust users, {args.duration:g} s after a 3 s ramp-up, one run at a time")
        print(f"{'log':<12}{'processes':>10}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU ms/req':>12}")
        for backend, n, window, cpu_ms in rows:
            print(
                f"{backend:<12}{n:>10}{window.rps:>8.0f}{window.histogram.percentile(0.5):>9g}"
                f"{window.histogram.percentile(0.99):>9g}{window.failure_count:>8}{cpu_ms:>12.2f}"
            )


if __name__ == "__main__":
    main()
