"""Where ``make demo``'s minutes go: wall and CPU time of every step, the maintenance loop's parts included.

Usage::

    python benchmarks/bench_demo.py [--preset small] [--out runs/bench-demo] [--profile]

Runs :func:`mlsys_lab.demo.run_demo` in-process, as ``mlsys-lab demo`` does, into a fresh tracking
store (a fresh clone's first run: MLflow creates its tables), with every step's function wrapped to
record its wall time, this process's CPU time and the CPU time of the child processes it reaped
(the servers and locust run as children and are stopped inside their step, so their CPU lands in
the step that ran them). Prints one table, the load average before and after (the machine may be
shared: CPU time is the number to compare between runs, wall time is what a user waits), and the
chosen model and decision counts, so that a faster run can be checked to decide the same.
``--profile`` also writes a pyinstrument call tree of this process to ``<out>/profile.txt``.

Information only, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Timing:
    """One call of a wrapped step."""

    step: str
    wall_s: float
    cpu_s: float  # this process
    child_cpu_s: float  # child processes reaped during the call (servers, locust)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrap(module: Any, name: str, step: str, timings: list[Timing]) -> None:
    """Replace ``module.name`` by a version that appends its wall and CPU time to ``timings``."""
    original: Callable[..., Any] = getattr(module, name)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        wall, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
        try:
            return original(*args, **kwargs)
        finally:
            timings.append(Timing(step, time.perf_counter() - wall, time.process_time() - cpu, _children_cpu() - child))

    setattr(module, name, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-demo"))
    parser.add_argument("--profile", action="store_true", help="write a pyinstrument call tree to <out>/profile.txt")
    args = parser.parse_args()

    load_before = os.getloadavg()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    from mlsys_lab import demo
    from mlsys_lab.maintenance import loop
    from mlsys_lab.report import format_report
    from mlsys_lab.training import TrackingSettings

    import_s, import_cpu = time.perf_counter() - started_wall, time.process_time() - started_cpu
    timings: list[Timing] = []
    for module, name, step in [
        (demo, "simulate", "simulate"),
        (demo, "validate", "validate"),
        (demo, "build_features", "features"),
        (demo, "tradeoff_table", "candidates"),
        (demo, "measure_memory_of", "candidates: chosen's fit MB"),
        (demo, "deploy_and_replay", "deploy"),
        (demo, "monitor_log", "monitor"),
        (demo, "load_step", "load"),
        (demo, "run_loop", "maintenance"),
        (loop, "simulate", "  loop: simulate"),
        (loop, "feature_frame", "  loop: features"),
        (loop, "fast_forward", "  loop: fast forward"),
        (loop, "training_frame", "  loop: read the log"),
        (loop, "retrain", "  loop: retrain"),
        (loop, "gate_against_champion", "  loop: gate"),
        (loop, "_rollout", "  loop: rollout"),
    ]:
        wrap(module, name, step, timings)

    shutil.rmtree(args.out, ignore_errors=True)
    tracking = TrackingSettings(root=args.out / "mlflow", experiment=demo.DEMO_EXPERIMENT)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    clock = time.perf_counter()
    report = demo.run_demo(args.preset, tracking=tracking)
    text = format_report(report)
    total = time.perf_counter() - clock
    if profiler is not None:
        profiler.stop()
        (args.out / "profile.txt").write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    (args.out / "report.txt").write_text(text)

    # monitor_log runs twice: the replayed day, then the production days.
    names = iter(["monitor", "production monitor"])
    rows = [(next(names) if t.step == "monitor" else t.step, t) for t in timings]
    print(f"load average before {load_before[0]:.1f} {load_before[1]:.1f}, after {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"{'step':<26}{'wall s':>9}{'CPU s':>9}{'child CPU s':>13}")
    print(f"{'import':<26}{import_s:>9.1f}{import_cpu:>9.1f}")
    for step, t in sorted(rows, key=lambda r: r[0].startswith("  ")):
        print(f"{step:<26}{t.wall_s:>9.1f}{t.cpu_s:>9.1f}{t.child_cpu_s:>13.1f}")
    print(f"{'run_demo, whole':<26}{total:>9.1f}{time.process_time() - started_cpu:>9.1f}{_children_cpu():>13.1f}")
    chosen = report.selection.chosen
    d, m = report.deployment, report.maintenance
    print(f"chosen: {chosen}")
    if d is not None:
        print(f"deploy: {d.logged:,} logged of {d.acknowledged:,} acknowledged, unlogged {d.unlogged}")
    if m is not None:
        print(
            f"loop: gate {'PROMOTE' if m.gate.promote else 'KEEP'}, watchdog acted: {bool(m.bad.watchdog_acted)}, "
            f"{m.acknowledged:,} acknowledged, unlogged {m.unlogged}, incomplete: {m.incomplete()!r}"
        )
    if report.load is not None:
        print(f"load: SLO {'PASS' if report.load.verdict.passed else 'FAIL'}; failed: {report.load_failed!r}")
    if report.production_monitoring is not None:
        print(f"production monitoring: {len(report.production_monitoring.alerts)} alert(s)")


if __name__ == "__main__":
    main()
