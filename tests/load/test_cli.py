"""``mlsys-lab load run``: the verdict printed, the exit code follows it, the plot written, loopback only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlsys_lab.cli import app


def test_a_target_off_loopback_is_refused_naming_the_option(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["load", "run", "--target", "http://10.0.0.1:80", "--out", str(tmp_path)])
    assert done.exit_code == 2 and "--target" in done.output and "loopback" in done.output


@pytest.mark.slow
def test_the_exit_code_follows_the_verdict(stall_server: Callable[[int, float], str], tmp_path: Path) -> None:
    url = stall_server(0, 0.0)
    common = ["load", "run", "--target", url, "--generator", "open-loop", "--rate", "100", "--duration", "2"]
    common += ["--ramp-up", "1", "--slo-min-rps", "0"]
    passed = CliRunner().invoke(app, [*common, "--slo-p99-ms", "5000", "--out", str(tmp_path / "a")])
    assert passed.exit_code == 0, passed.output
    assert "PASS" in passed.output and (tmp_path / "a" / "plot.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "a" / "result.json").read_text())
    assert summary["passed"] is True and summary["generator"] == "open-loop" and summary["requests"] > 0
    # The same load against a 0.01 ms objective: nothing is that fast.
    failed = CliRunner().invoke(app, [*common, "--slo-p99-ms", "0.01", "--out", str(tmp_path / "b")])
    assert failed.exit_code == 1, failed.output
    assert "FAIL latency" in failed.output
