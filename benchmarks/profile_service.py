"""Where a ``/v1/score`` request's time goes, under real requests to a real uvicorn on 127.0.0.1.

Two measurements in one run, on one trained logistic regression and one decision log each:

1. **The real command** (``mlsys-lab serve``, one worker, decision log on): ``--requests`` requests
   from ``--clients`` keep-alive clients (threads, httpx). It prints wall p50/p99, the server's CPU
   per request (psutil, every thread of the process: the stable number on a busy machine), and the
   mean of each ``Server-Timing`` stage the service reports: ``state`` (lock, tailing the log,
   duplicate check), ``features``, ``model``, ``log`` (insert and commit) and ``total`` (request
   reaching the app to its response starting). ``total`` minus the stages is what the framework
   spends around the endpoint: body parsing, validation, dependencies, the thread-pool hop, JSON.
2. **pyinstrument** on the event loop's thread of the same app in a child uvicorn (``--serve-profiled``,
   started by this script): everything that is not inside the endpoint runs on that thread, so its
   samples attribute the framework's share (HTTP parsing in httptools or h11, validation and serialisation in
   pydantic, FastAPI/Starlette routing and dependencies, the thread-pool hand-off, waiting for I/O).
   The endpoint body itself runs in Starlette's thread pool, which pyinstrument does not sample;
   its share comes from (1). The full pyinstrument tree goes to ``--profile-out``.

    python benchmarks/profile_service.py [--requests 3000] [--clients 4] [--profile-out runs/profile.txt]

It asserts nothing; timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from mlsys_lab.deployment.server import free_port, run_server
from mlsys_lab.load import capacity, scenarios
from mlsys_lab.load.request_path import STAGES, parse_server_timing

#: First match wins, innermost frame first: what a sample's own time is spent on.
CATEGORIES = (
    ("endpoint (mlsys_lab)", ("mlsys_lab/",)),
    ("validate / serialise (pydantic)", ("pydantic/", "pydantic_core/", "fastapi/_compat", "fastapi/encoders")),
    ("JSON", ("/json/",)),
    ("HTTP parsing (uvicorn: httptools, or h11)", ("h11/", "httptools/", "uvicorn/protocols/")),
    ("thread-pool hop (anyio)", ("anyio/", "starlette/concurrency")),
    ("waiting for I/O (epoll)", ("selectors.py",)),
    ("FastAPI/Starlette routing, middleware, dependencies", ("fastapi/", "starlette/")),
    ("event loop (uvloop, or asyncio)", ("asyncio/", "uvloop/")),
)


def train_store(root: Path, preset_name: str) -> Path:
    """A tracking store with one logistic regression promoted to champion; returns its folder."""
    from _champion import champion  # imported here: the profiled child process never trains

    return champion(root, "profile_service", preset_name).tracking.root


def bodies(preset_name: str, n: int, first_id: int) -> list[bytes]:
    import json

    transactions = scenarios.simulated_transactions(preset_name, last_days=7)
    out = []
    for i, body in enumerate(scenarios.request_bodies(transactions, n, endpoint="/v1/score")):
        out.append(json.dumps({**body, "transaction_id": first_id + i}).encode())
    return out


def send(url: str, payloads: list[bytes], clients: int) -> tuple[list[float], list[dict[str, float]]]:
    """Post every payload, ``clients`` keep-alive connections at once; wall ms and Server-Timing per answer."""
    wall: list[float] = []
    timings: list[dict[str, float]] = []
    lock = threading.Lock()

    def client(part: list[bytes]) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=url, timeout=30) as http:
            for payload in part:
                clock = time.perf_counter()
                answer = http.post("/v1/score", content=payload, headers=headers)
                elapsed = (time.perf_counter() - clock) * 1000
                answer.raise_for_status()
                stages = parse_server_timing(answer.headers["server-timing"])
                with lock:
                    wall.append(elapsed)
                    timings.append(stages)

    threads = [threading.Thread(target=client, args=(payloads[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wall, timings


def commit_counts(url: str) -> tuple[float, float] | None:
    """``(commits, decisions committed)`` from the service's ``/metrics``; None for a version without the count."""
    counts: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("mlsys_lab_decision_log_commit_decisions_count", "mlsys_lab_decision_log_commit_decisions_sum"):
            counts[name.rsplit("_", 1)[1]] = float(value)
    if len(counts) < 2:
        return None
    return counts["count"], counts["sum"]


def measure_real_command(
    tracking_dir: Path, root: Path, payloads: list[bytes], clients: int, code: Path | None = None
) -> float:
    """Serve, send, print; returns the server's CPU ms per request. ``code``: run that copy of ``mlsys_lab``."""
    env = {"MLSYS_LAB_TRACKING_DIR": str(tracking_dir), "MLSYS_LAB_DECISION_LOG_URL": f"sqlite:///{root / 'real.db'}"}
    if code is not None:  # PYTHONPATH comes before the editable install: an older copy of the package
        env["PYTHONPATH"] = str(code)
    with run_server(env, output=root / "serve.log", wait_path="/ready") as server:
        send(server.url, payloads[:200], clients)  # warm-up: first-call costs are not the steady state
        commits_before = commit_counts(server.url)
        before = capacity.process_cpu_seconds(server.process.pid)
        clock = time.perf_counter()
        wall, timings = send(server.url, payloads[200:], clients)
        elapsed = time.perf_counter() - clock
        cpu = capacity.process_cpu_seconds(server.process.pid) - before
        commits_after = commit_counts(server.url)
    n = len(wall)
    which = "this checkout" if code is None else f"the package at {code}"
    print(f"\n== mlsys-lab serve ({which}), 1 worker, decision log on: {n} requests from {clients} keep-alive clients")
    print(f"wall: {n / elapsed:.0f} req/s, p50 {np.percentile(wall, 50):.2f} ms, p99 {np.percentile(wall, 99):.2f} ms")
    print(f"server CPU per request: {1000 * cpu / n:.2f} ms (all threads; the stable number)")
    print(f"load average (1 min) after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if commits_before is not None and commits_after is not None:
        commits = commits_after[0] - commits_before[0]
        decided = commits_after[1] - commits_before[1]
        print(
            f"decision log: {commits / elapsed:.0f} commits/s, {decided / max(commits, 1):.2f} decisions per commit "
            f"({commits:.0f} commits for {decided:.0f} decisions)"
        )
    else:
        print("decision log: this version does not count its commits (no group commit)")
    means = {name: statistics.fmean(t[name] for t in timings) for name in STAGES}
    inside = sum(means[name] for name in STAGES[:-1])
    print(f"\n{'Server-Timing stage (mean of every answer)':<52}{'ms':>8}{'share':>8}")
    for name in STAGES[:-1]:
        print(f"  {name:<50}{means[name]:>8.3f}{means[name] / means['total']:>8.0%}")
    rest = means["total"] - inside
    print(f"  {'framework: parse, validate, deps, thread hop, JSON':<50}{rest:>8.3f}{rest / means['total']:>8.0%}")
    print(f"  {'total (app in to response start)':<50}{means['total']:>8.3f}")
    print(f"  {'client wall minus total (network, client, h11)':<50}{statistics.fmean(wall) - means['total']:>8.3f}")
    return 1000 * cpu / n


def categorise(root_frame: object) -> dict[str, float]:
    """Self time of every frame, credited to the innermost frame's category (see :data:`CATEGORIES`)."""
    totals: dict[str, float] = defaultdict(float)

    def visit(frame: object, stack: tuple[str, ...]) -> None:
        path = (getattr(frame, "file_path", None) or "").replace(os.sep, "/")
        stack = (*stack, path)
        children = frame.children  # type: ignore[attr-defined]
        if not children:  # a leaf's time is its own (a frame's self time is a synthetic leaf child)
            hit = next(
                (label for p in reversed(stack) for label, needles in CATEGORIES if any(n in p for n in needles)),
                "other",
            )
            totals[hit] += float(frame.time)  # type: ignore[attr-defined]
        for child in children:
            visit(child, stack)

    visit(root_frame, ())
    return dict(totals)


def serve_profiled(tracking_dir: str, log_url: str, port: int, out: str) -> None:
    """Child mode: the service's app on uvicorn in this thread, pyinstrument on it until SIGTERM."""
    import uvicorn
    from pyinstrument import Profiler

    from mlsys_lab.deployment.service import create_app
    from mlsys_lab.deployment.settings import ServiceSettings

    settings = ServiceSettings(tracking_dir=Path(tracking_dir), decision_log_url=log_url)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    profiler = Profiler(interval=0.0005, async_mode="disabled")  # sample this thread, idle time included

    def toggle(signum: int, frame: object) -> None:
        if signum == signal.SIGUSR1:
            profiler.start()
        else:
            profiler.stop()
            session = profiler.last_session
            assert session is not None
            categories = categorise(session.root_frame())
            import json

            Path(out).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
            Path(out).with_suffix(".json").write_text(json.dumps({"duration": session.duration, **categories}))

    signal.signal(signal.SIGUSR1, toggle)
    signal.signal(signal.SIGUSR2, toggle)
    server.run()


@contextlib.contextmanager
def profiled_server(tracking_dir: Path, root: Path, out: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    args = [
        sys.executable,
        __file__,
        "--serve-profiled",
        str(tracking_dir),
        f"sqlite:///{root / 'prof.db'}",
        str(port),
        str(out),
    ]
    with (root / "profiled.log").open("wb") as output:
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"profiled server exited: {(root / 'profiled.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def measure_profiled(tracking_dir: Path, root: Path, payloads: list[bytes], clients: int, out: Path) -> None:
    import json

    with profiled_server(tracking_dir, root, out) as (url, process):
        send(url, payloads[:200], clients)
        process.send_signal(signal.SIGUSR1)
        time.sleep(0.2)
        wall, _ = send(url, payloads[200:], clients)
        process.send_signal(signal.SIGUSR2)
        deadline = time.monotonic() + 180  # rendering the tree takes a while on a busy machine
        while not out.with_suffix(".json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    shares = json.loads(out.with_suffix(".json").read_text())
    duration = shares.pop("duration")
    n = len(wall)
    print(f"\n== pyinstrument, event-loop thread, {n} requests ({duration:.1f} s sampled); tree in {out}")
    print(f"{'where the event loop thread spent its time':<54}{'ms/req':>8}{'share':>8}")
    for label, seconds in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"  {label:<52}{1000 * seconds / n:>8.3f}{seconds / duration:>8.0%}")
    print("(the endpoint's body runs in the thread pool and is not sampled here: see the Server-Timing stages)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-profiled":
        serve_profiled(*sys.argv[2:6])  # type: ignore[call-arg]
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4, help="keep-alive client threads sending at once")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--profile-out", type=Path, default=None, help="pyinstrument's text tree (default: temp)")
    parser.add_argument("--tracking-dir", type=Path, default=None, help="reuse this store (default: train one)")
    parser.add_argument("--rounds", type=int, default=1, help="measure the real command this many times")
    parser.add_argument("--no-profile", action="store_true", help="skip the pyinstrument run")
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help="a copy of an earlier mlsys_lab (its parent folder, e.g. from `git archive HEAD~1 mlsys_lab`), "
        "measured in turn with this checkout each round, for a before/after in one run; repeatable",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-service-") as tmp:
        root = Path(tmp)
        tracking_dir = args.tracking_dir or train_store(root, args.preset)
        payloads = bodies(args.preset, args.requests + 200, first_id=10**9)
        cpu: dict[str, list[float]] = defaultdict(list)
        codes: list[Path | None] = [*args.before, None]
        for round_ in range(args.rounds):
            # Reverse the order on odd rounds: a machine that gets busier during a round favours no one.
            for index, code in enumerate(codes if round_ % 2 == 0 else codes[::-1]):
                folder = root / f"{round_}-{index}"
                folder.mkdir()
                name = "this checkout" if code is None else code.name
                cpu[name].append(measure_real_command(tracking_dir, folder, payloads, args.clients, code))
        print("\n== server CPU ms per request, each round")
        for name, values in cpu.items():
            rounds = " ".join(f"{v:6.2f}" for v in values)
            print(f"  {name:<16}{rounds}   median {statistics.median(values):.2f}")
        if args.no_profile:
            return
        out = (args.profile_out or root / "profile.txt").resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        measure_profiled(tracking_dir, root, payloads, args.clients, out)


if __name__ == "__main__":
    main()
