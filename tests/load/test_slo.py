"""The SLO checker on hand-made runs, against the plausible wrong indicators a learner would compute.

Each "wrong SLI" below is written out as the shortcut it is, and shown to reach the opposite verdict
on a run built for it: the checker must not be fooled by the same run.
"""

from __future__ import annotations

import doctest
import math

import pytest

from mlsys_lab.load import result as result_module
from mlsys_lab.load import slo as slo_module
from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats, bucket_ms, locust_bucket_ms
from mlsys_lab.load.slo import ONE_MILLION_AN_HOUR, SLO, check_slo


def steady_run(
    per_second: dict[float, int],
    seconds: int,
    *,
    failures_per_second: dict[str, int] | None = None,
    ramp: list[dict[float, int]] | None = None,
) -> LoadResult:
    """A run whose seconds after ``ramp`` all hold the histogram ``per_second``."""
    shapes = [*(ramp or []), *([per_second] * seconds)]
    history = tuple(
        SecondStats(
            second=i,
            requests=sum(counts.values()),
            histogram=LatencyHistogram.from_counts(counts),
            failures=dict(failures_per_second or {}) if i >= len(ramp or []) else {},
        )
        for i, counts in enumerate(shapes)
    )
    failures: dict[str, int] = {}
    for s in history:
        for kind, n in s.failures.items():
            failures[kind] = failures.get(kind, 0) + n
    return LoadResult(
        generator="open-loop",
        target="http://127.0.0.1:1",
        duration_s=float(len(history)),
        requests=sum(s.requests for s in history),
        failures=failures,
        histogram=sum((s.histogram for s in history), LatencyHistogram()),
        history=history,
    )


def test_docstrings_run() -> None:
    for module in (result_module, slo_module):
        assert doctest.testmod(module).failed == 0


def test_a_run_inside_every_objective_passes() -> None:
    run = steady_run({10.0: 250, 30.0: 48, 45.0: 2}, seconds=60)
    verdict = check_slo(run, ONE_MILLION_AN_HOUR)
    assert verdict.passed, str(verdict)
    assert [r.name for r in verdict.reasons] == ["latency", "errors", "throughput", "duration"]
    assert verdict.reasons[0].measured == 1.0


def test_every_broken_objective_is_a_reason_not_only_the_first() -> None:
    # Too slow (2% over 50 ms), too many errors, too few requests/s and too short: four reasons.
    run = steady_run({10.0: 196, 80.0: 4}, seconds=30, failures_per_second={"HTTP 503": 1})
    verdict = check_slo(run, ONE_MILLION_AN_HOUR)
    assert not verdict.passed
    assert [r.name for r in verdict.failed] == ["latency", "errors", "throughput", "duration"]
    assert verdict.reasons[0].measured == pytest.approx(0.98)
    assert "HTTP 503 30" in verdict.reasons[1].message


def test_the_share_under_the_limit_not_the_mean() -> None:
    # 2% of requests take 400 ms: the mean is 13.8 ms, far under 50, but only 98% are within 50 ms.
    run = steady_run({6.0: 294, 400.0: 6}, seconds=60)
    mean_says_pass = run.histogram.mean() <= 50
    assert mean_says_pass
    verdict = check_slo(run, ONE_MILLION_AN_HOUR)
    assert not verdict.passed and [r.name for r in verdict.failed] == ["latency"]


def test_failures_count_even_when_they_are_fast() -> None:
    # 1% of requests are refused in 1 ms: every latency is within 50 ms, and the run still fails.
    run = steady_run({1.0: 3, 12.0: 297}, seconds=60, failures_per_second={"HTTP 503": 3})
    latency_only_says_pass = run.histogram.share_at_most(50) >= 0.99
    assert latency_only_says_pass
    verdict = check_slo(run, ONE_MILLION_AN_HOUR)
    assert not verdict.passed and [r.name for r in verdict.failed] == ["errors"]
    assert verdict.reasons[1].measured == pytest.approx(0.01)


def test_the_ramp_up_is_left_out() -> None:
    # Cold start: the first 10 s are slow. Counted, they sink the share; left out, the run passes.
    cold = [{200.0: 300}] * 10
    run = steady_run({10.0: 300}, seconds=60, ramp=cold)
    ramp_counted = check_slo(run, ONE_MILLION_AN_HOUR)
    assert not ramp_counted.passed and [r.name for r in ramp_counted.failed] == ["latency"]
    assert check_slo(run, SLO(ramp_up_s=10)).passed
    # And the converse: a run whose only good seconds are the ramp-up does not pass by skipping them.
    run = steady_run({200.0: 300}, seconds=60, ramp=[{10.0: 300}] * 10)
    assert not check_slo(run, SLO(ramp_up_s=10)).passed


def test_the_window_after_the_ramp_up_must_still_last_long_enough() -> None:
    run = steady_run({10.0: 300}, seconds=60)
    verdict = check_slo(run, SLO(ramp_up_s=10))
    assert [r.name for r in verdict.failed] == ["duration"]
    assert verdict.reasons[3].measured == 50


def test_rounded_percentiles_are_not_trusted() -> None:
    # A batch endpoint promised 99% within 200 ms. 1.5% of requests take 204 ms. Locust rounds
    # latencies over 100 ms to two significant digits, so its p99 reads "200": within the objective.
    slo = SLO(latency_ms=200, latency_share=0.99, min_rps=0, min_duration_s=1)
    run = steady_run({150.0: 985, 204.0: 15}, seconds=1)
    rounded_p99 = locust_bucket_ms(run.histogram.percentile(0.99))
    assert rounded_p99 == 200  # the rounded report passes ...
    verdict = check_slo(run, slo)
    assert not verdict.passed  # ... the exact share does not: 98.5% <= 200 ms
    assert verdict.reasons[0].measured == pytest.approx(0.985)


def test_an_empty_run_fails_every_indicator() -> None:
    run = steady_run({}, seconds=0)
    verdict = check_slo(run, SLO(min_rps=0, min_duration_s=0))
    assert not verdict.passed and len(verdict.failed) == 4


def test_a_share_exactly_at_the_objective_passes_and_one_request_less_fails() -> None:
    slo = SLO(min_rps=0, min_duration_s=1)
    assert check_slo(steady_run({10.0: 99, 60.0: 1}, seconds=1), slo).passed
    assert not check_slo(steady_run({10.0: 98, 60.0: 2}, seconds=1), slo).passed
    # 50.0 ms is within 50 ms; 50.1 ms is not.
    assert check_slo(steady_run({50.0: 100}, seconds=1), slo).passed
    assert not check_slo(steady_run({50.1: 100}, seconds=1), slo).passed


@pytest.mark.parametrize(
    "field",
    [{"latency_ms": 0}, {"latency_share": 1.5}, {"max_error_ratio": -0.1}, {"ramp_up_s": math.inf}],
)
def test_an_slo_out_of_range_names_its_field(field: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=f"SLO.{next(iter(field))}"):
        SLO(**field)


def test_the_slo_is_frozen() -> None:
    with pytest.raises(AttributeError):
        ONE_MILLION_AN_HOUR.latency_ms = 100  # type: ignore[misc]


def test_buckets_round_up_so_the_share_never_counts_a_slower_request() -> None:
    assert bucket_ms(50.0) == 50.0
    assert bucket_ms(50.000001) == 50.1
    assert bucket_ms(49.95) == 50.0
    assert bucket_ms(0.1234) == 0.124
    assert bucket_ms(1234.5) == 1240.0
    h = LatencyHistogram.from_latencies([49.99, 50.0, 50.01, 50.2])
    assert h.share_at_most(50) == 0.5
    assert h.percentile(0.5) == 50.0 and h.percentile(1.0) == 50.2
    with pytest.raises(ValueError, match="finite"):
        bucket_ms(math.nan)


def test_locust_bucket_copy_matches_locust() -> None:
    import subprocess
    import sys

    values = [0.4, 0.5, 1.5, 49.5, 50.49, 99.4, 99.6, 104.0, 147.0, 995.0, 3432.0, 58760.0]
    code = f"from locust.stats import bucket_response_time as b; print([b(v) for v in {values!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == str([locust_bucket_ms(v) for v in values])


def test_window_resums_seconds() -> None:
    run = steady_run({10.0: 5}, seconds=4, failures_per_second={"HTTP 500": 1})
    window = run.window(1, 3)
    assert (window.requests, window.duration_s, window.failures) == (10, 2.0, {"HTTP 500": 2})
    assert window.histogram.total == 10 and window.rps == 5
