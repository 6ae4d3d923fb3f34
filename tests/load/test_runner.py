"""The locust runner against a real uvicorn server on loopback: short, bounded runs.

Counts are checked against locust's own JSON; no timing is a pass/fail condition.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from mlsys_lab.load import runner, scenarios
from mlsys_lab.load.slo import SLO, check_slo


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8000", "http://example.com", "http://localhost:8000", "ftp://127.0.0.1"]
)
def test_only_loopback_targets_are_accepted(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not on loopback"):
        runner.run_locust(url, scenarios.steady(1, 1), tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written or started


def test_importing_the_package_never_imports_locust() -> None:
    modules = [
        "mlsys_lab",
        "mlsys_lab.cli",
        "mlsys_lab.load",
        *(f"mlsys_lab.load.{m}" for m in ("slo", "result", "scenarios", "runner", "openloop", "capacity")),
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_locust_run_reads_back_exact_counts_and_keeps_stderr_clean(
    stall_server: Callable[[int, float], str],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = stall_server(0, 0.0)
    # Ids that are multiples of 1000 answer 503 on the test server: the pool holds exactly 3 of them.
    transactions = scenarios.simulated_transactions()
    transactions = transactions.assign(transaction_id=range(1, len(transactions) + 1))
    pool = scenarios.write_request_pool(tmp_path / "pool.jsonl", transactions, 3500)
    scenario = scenarios.steady(8, 20, rate=400, ramp_up_s=1)  # bounded below by max_requests
    capfd.readouterr()
    result = runner.run_locust(url, scenario, tmp_path / "run", pool=pool, max_requests=3000)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # locust's log lines went to the run folder
    assert "Shutting down" in (tmp_path / "run" / "locust.log").read_text()

    locust_json = json.loads((tmp_path / "run" / "locust.json").read_text())
    assert isinstance(locust_json, list) and locust_json[0]["name"] == "/v1/score"
    assert result.requests == sum(e["num_requests"] for e in locust_json) == 3000
    assert result.failures == {"HTTP 503": 3}  # locust exited 1 on these; the runner reads them instead
    assert result.histogram.total == result.locust_histogram.total == result.requests  # type: ignore[union-attr]
    assert sum(s.requests for s in result.history) == 3000 and result.notes == ()
    assert max(s.users or 0 for s in result.history) == 8
    verdict = check_slo(result, SLO(latency_ms=10_000, min_rps=0, min_duration_s=0, max_error_ratio=0.0005))
    assert [r.name for r in verdict.failed] == ["errors"]  # 3 of 3000 = 0.1% > 0.05%


@pytest.mark.slow
def test_a_crashing_locust_is_an_error_with_its_log(tmp_path: Path, stall_server: Callable[[int, float], str]) -> None:
    bad = tmp_path / "pool.jsonl"
    bad.write_text("not json\n")
    with pytest.raises(RuntimeError, match="not a request pool line"):
        runner.run_locust(stall_server(0, 0.0), scenarios.steady(1, 2), tmp_path / "run", pool=bad)


@pytest.mark.slow
def test_a_distributed_run_with_two_workers_sends_each_request_once_and_merges_the_result(
    stall_server: Callable[[int, float], str], tmp_path: Path
) -> None:
    url = stall_server(0, 0.0)
    # Ids that are multiples of 1000 answer 503: they sit at pool lines 450-452, which only a run that
    # sends lines 0-599 once each reaches. Two workers sending the same first 300 lines would see none.
    transactions = scenarios.simulated_transactions().head(700)
    ids = list(range(1, 701))
    ids[450:453] = [1000, 2000, 3000]
    pool = scenarios.write_request_pool(tmp_path / "pool.jsonl", transactions.assign(transaction_id=ids), 700)
    # Workers that reach their share idle until the master ends the run: keep the scenario short.
    scenario = scenarios.steady(4, 6, rate=100, ramp_up_s=1)
    result = runner.run_locust(url, scenario, tmp_path / "run", pool=pool, max_requests=600, workers=2)

    run = tmp_path / "run"
    per_worker = [
        sum(s["requests"] for s in json.loads((run / f"samples-worker-{i}.json").read_text())["seconds"])
        for i in range(2)
    ]
    assert per_worker == [300, 300], f"each worker sends its half of the capped pool, got {per_worker}"
    assert result.requests == 600 and result.histogram.total == 600
    assert result.failures == {"HTTP 503": 3}, "every pool line up to 600 must be sent exactly once"
    # Locust's master may miss the workers' last report (it waits 0.5 s for it): never more, and said so.
    in_json = sum(e["num_requests"] for e in json.loads((run / "locust.json").read_text()))
    assert in_json <= 600 and (in_json == 600) == (result.notes == ()), result.notes
    assert "--master-bind-host 127.0.0.1" in (run / "command.txt").read_text()


@pytest.mark.slow
def test_paced_users_spawned_together_do_not_send_in_lockstep(
    stall_server: Callable[[int, float], str], pool_file: Path, tmp_path: Path
) -> None:
    # Locust starts floor(spawn_rate) users at one instant, and its constant_throughput keeps each user
    # on the phase of its creation: 10 users spawned at once sent their requests in bursts of 10 for the
    # whole run (about 90% of arrivals within 2 ms of the one before), and they queued behind each
    # other in the server. Each user now starts from its own random phase.
    url = stall_server(0, 0.0)
    scenario = scenarios.steady(10, 3, rate=50, ramp_up_s=1)  # spawn rate 10: all ten users in one batch
    result = runner.run_locust(url, scenario, tmp_path / "run", pool=pool_file)
    arrivals = sorted(httpx.get(f"{url}/arrivals", timeout=10).json())
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    bunched = sum(gap < 0.002 for gap in gaps) / len(gaps)
    assert result.requests == len(arrivals) >= 100
    # Ten random phases in a 200 ms period leave about 10% of gaps under 2 ms; lockstep left about 90%.
    assert bunched < 0.5, f"{bunched:.0%} of {len(arrivals)} requests arrived within 2 ms of another: lockstep"
