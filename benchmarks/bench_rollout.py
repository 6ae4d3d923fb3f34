"""The version-skew window of ``mlsys-lab serve --workers 2``: after an alias move, how long two versions decide.

Usage::

    python benchmarks/bench_rollout.py [--moves 6] [--refresh default 1]

Trains two logistic regressions on a ``tiny`` world (500 customers, 1,000 terminals, 45 days),
registers both and makes version 1 champion, then starts the real ``mlsys-lab serve --workers 2``
on loopback, with each worker following the alias every ``--refresh`` seconds (``default``: the
service's own 5 s for several workers). Steady traffic (4 threads, a new connection per request so
the kernel spreads requests over both workers) runs while the champion alias moves back and forth
between the versions ``--moves`` times, each move held until only the new version has decided for
a while. For each move, from the decision log (each decision's wall-clock ``decided_at`` and
``model_version``) and the registry's alias history (the move's time): the first decision by the new
version, the last by the old one, the window in which both decided, and the decisions in it.

Information only, never asserted; wall times on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import pandas as pd

from mlsys_lab.data import preset, simulate
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.registry import CHAMPION, Registry
from mlsys_lab.deployment.server import run_server
from mlsys_lab.load import scenarios
from mlsys_lab.maintenance.skew import SteadyTraffic, VersionSkew, version_skew
from mlsys_lab.training import Tracker, TrackingSettings, TrainingConfig, feature_frame, train

SETTLED_DECISIONS = 40  # a move is done when this many decisions in a row came from the new version


def _setup(root: Path) -> tuple[TrackingSettings, int, int]:
    tracking = TrackingSettings(root=root / "mlflow", experiment="rollout-skew")
    frame = feature_frame(
        simulate(preset("tiny", random_state=0, n_customers=500, n_terminals=1000, n_days=45)).transactions
    )
    tracker = Tracker(tracking)
    config = TrainingConfig(family="logistic_regression", split=TimeSplit.ending_at(45), validation_folds=1)
    first = train(config, frame, tracker=tracker)
    second = train(config, frame, tracker=tracker)
    registry = Registry(tracking)
    v1 = registry.register(first.run_id).version  # type: ignore[arg-type]
    v2 = registry.register(second.run_id).version  # type: ignore[arg-type]
    registry.promote(v1, who="bench", why="initial deployment")
    registry.close()
    return tracking, v1, v2


def _settled(log: DecisionLog, since_id: int, version: int) -> bool:
    newest = log.decisions(since_id=since_id).tail(SETTLED_DECISIONS)
    return len(newest) == SETTLED_DECISIONS and bool((newest["model_version"] == version).all())


def measure(root: Path, *, moves: int, refresh: float | None, timeout_s: float = 90.0) -> pd.DataFrame:
    """Run ``moves`` alias moves under steady traffic; one row per move (see the module docstring)."""
    tracking, v1, v2 = _setup(root)
    log_url = f"sqlite:///{root / 'decisions.db'}"
    env = {"MLSYS_LAB_TRACKING_DIR": str(tracking.root), "MLSYS_LAB_DECISION_LOG_URL": log_url}
    if refresh is not None:
        env["MLSYS_LAB_MODEL_REFRESH_SECONDS"] = str(refresh)
    transactions = scenarios.simulated_transactions("tiny", last_days=2)
    bodies = scenarios.request_bodies(transactions, 200_000)
    log, registry = DecisionLog(log_url), Registry(tracking)
    rows, skews = [], []
    with run_server(env, output=root / "serve.log", workers=2, wait_path="/ready") as server:
        traffic = SteadyTraffic(server.url, bodies, threads=4, max_seconds=moves * timeout_s + 60).start()
        try:
            deadline = time.monotonic() + timeout_s
            while len(log.decisions()) < 100 and time.monotonic() < deadline:
                time.sleep(0.2)
            current = v1
            for move in range(moves):
                target = v2 if current == v1 else v1
                before = int(log.decisions()["id"].max())
                registry.set_alias(CHAMPION, target, who="bench", why=f"skew move {move + 1}")
                moved_at = registry.history().iloc[-1]["at"]
                deadline = time.monotonic() + timeout_s
                while not _settled(log, before, target) and time.monotonic() < deadline:
                    time.sleep(0.25)
                skew = version_skew(log.decisions(since_id=before), old=current, new=target, moved_at=moved_at)
                skews.append(skew)
                rows.append(_row(move + 1, skew))
                current = target
        finally:
            traffic.stop()
    served = log.decisions()
    unlogged = len(traffic.acknowledged - set(served["request_id"]))
    log.close()
    registry.close()
    table = pd.DataFrame(rows)
    table.attrs.update(
        {"requests": traffic.sent, "failed": traffic.failed, "unlogged": unlogged, "errors": traffic.errors[:3]}
    )
    return table


def _row(move: int, skew: VersionSkew) -> dict[str, object]:
    return {
        "move": move,
        "from_to": f"{skew.old}->{skew.new}",
        "first_new_s": skew.first_new_seconds,
        "all_new_after_s": skew.followed_seconds,
        "both_window_s": skew.window_seconds,
        "mixed_decisions": skew.mixed,
        "old_after_move": skew.old_after_move,
        "decisions_after_move": skew.decisions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=6)
    parser.add_argument(
        "--refresh", nargs="+", default=["default", "1"], help="Alias refresh seconds per run ('default': 5 s)."
    )
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    for value in args.refresh:
        refresh = None if value == "default" else float(value)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            table = measure(Path(folder), moves=args.moves, refresh=refresh)
        print(f"\n--workers 2, alias refresh {'5 s (default)' if refresh is None else f'{refresh:g} s'}:")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        window = table["both_window_s"]
        print(
            f"both versions decided for {window.median():.2f} s median, {window.max():.2f} s at most over "
            f"{len(table)} moves; {table.attrs['requests']} requests, {table.attrs['failed']} failed, "
            f"{table.attrs['unlogged']} acknowledged but not in the log; {time.perf_counter() - started:.0f} s; "
            f"at {dt.datetime.now(dt.UTC):%H:%M} UTC"
        )
        if table.attrs["errors"]:
            print(f"first errors: {table.attrs['errors']}")


if __name__ == "__main__":
    main()
