"""What a load run measured, one type for every generator: locust (closed loop) and the open-loop generator.

A :class:`LoadResult` holds the counts a verdict needs and nothing rounded: the latency
:class:`LatencyHistogram` (how many requests took each latency), failures by kind, and a per-second
history whose seconds each carry their own histogram, so that a window (ramp-up excluded) is an
exact sum of seconds, not an estimate from percentiles.

Latencies are kept at three significant digits, rounded **up** (0.01 ms under 10 ms, 0.1 ms under
100 ms, 1 ms under 1 s, ...): a share "at most 50 ms" computed from the histogram can only
under-count fast requests, never count a 50.04 ms request as within 50 ms. Locust's own JSON keeps
coarser buckets (rounded to the nearest 1 ms under 100 ms, 10 ms under 1 s, about two significant
digits); it is kept beside ours as :attr:`LoadResult.locust_histogram` for cross-checks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

__all__ = ["Generator", "LatencyHistogram", "LoadResult", "SecondStats", "bucket_ms", "locust_bucket_ms"]

Generator = Literal["locust", "open-loop"]
_SIGNIFICANT = 3


def bucket_ms(latency_ms: float) -> float:
    """The histogram bucket of a latency: three significant digits, rounded up (never faster than measured).

    Examples
    --------
    >>> bucket_ms(0.2341), bucket_ms(50.0), bucket_ms(50.01), bucket_ms(1234.0)
    (0.235, 50.0, 50.1, 1240.0)
    """
    if not math.isfinite(latency_ms) or latency_ms < 0:
        raise ValueError(f"latency must be a finite number of milliseconds >= 0, got {latency_ms!r}")
    if latency_ms == 0:
        return 0.0
    step = 10.0 ** (math.floor(math.log10(latency_ms)) - _SIGNIFICANT + 1)
    # The small tolerance keeps 50.0 at 50.0 when float division lands at 500.0000000001 steps.
    steps = math.ceil(latency_ms / step - 1e-9)
    return float(f"{steps * step:.{_SIGNIFICANT}g}")


def locust_bucket_ms(latency_ms: float) -> int:
    """Locust's own bucket (``locust.stats.bucket_response_time``, 2.47): about two significant digits, nearest.

    Written out here so that nothing imports locust; a test checks it against locust's function.
    """
    if latency_ms < 100:
        return round(latency_ms)
    if latency_ms < 1000:
        return int(round(latency_ms, -1))
    if latency_ms < 10000:
        return int(round(latency_ms, -2))
    return int(round(latency_ms, -3))


@dataclass(frozen=True)
class LatencyHistogram:
    """Counts of requests per latency bucket (milliseconds), sorted by latency.

    Build one with :meth:`from_latencies` (raw measurements) or :meth:`from_counts` (bucket -> count).
    """

    buckets: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(self.buckets) != len(self.counts):
            raise ValueError(f"{len(self.buckets)} buckets but {len(self.counts)} counts: give one count per bucket")
        if any(b >= a for a, b in zip(self.buckets[1:], self.buckets, strict=False)):
            raise ValueError("buckets must be strictly increasing: build the histogram with from_counts()")
        if any(c < 0 for c in self.counts):
            raise ValueError("counts must be >= 0")

    @classmethod
    def from_counts(cls, counts: Mapping[float, int] | Iterable[tuple[float, int]]) -> LatencyHistogram:
        """A histogram from bucket -> count pairs (any order; equal buckets are added; zero counts dropped)."""
        total: Counter[float] = Counter()
        for bucket, count in counts.items() if isinstance(counts, Mapping) else counts:
            if int(count) != count or count < 0:
                raise ValueError(f"count of bucket {bucket} ms must be a whole number >= 0, got {count!r}")
            total[float(bucket)] += int(count)
        items = sorted((b, c) for b, c in total.items() if c > 0)
        return cls(tuple(b for b, _ in items), tuple(c for _, c in items))

    @classmethod
    def from_latencies(cls, latencies_ms: Iterable[float]) -> LatencyHistogram:
        """A histogram of raw latencies, each put in its :func:`bucket_ms` bucket."""
        return cls.from_counts(Counter(bucket_ms(x) for x in latencies_ms))

    @property
    def total(self) -> int:
        """Number of requests counted."""
        return sum(self.counts)

    def share_at_most(self, limit_ms: float) -> float:
        """Share of requests with latency <= ``limit_ms`` (NaN when empty): the latency SLI."""
        n = self.total
        if n == 0:
            return math.nan
        return sum(c for b, c in zip(self.buckets, self.counts, strict=True) if b <= limit_ms) / n

    def share_above(self, limit_ms: float) -> float:
        """Share of requests with latency > ``limit_ms`` (NaN when empty)."""
        return 1.0 - self.share_at_most(limit_ms)

    def percentile(self, q: float) -> float:
        """The nearest-rank ``q``-quantile (0 < q <= 1): the smallest bucket holding at least q of the requests."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q!r} (write 0.99 for p99)")
        n = self.total
        if n == 0:
            return math.nan
        rank, seen = math.ceil(q * n - 1e-9), 0
        for bucket, count in zip(self.buckets, self.counts, strict=True):
            seen += count
            if seen >= rank:
                return bucket
        return self.buckets[-1]

    def mean(self) -> float:
        """Mean latency (ms) over the buckets (NaN when empty); not an SLI, see :mod:`mlsys_lab.load.slo`."""
        n = self.total
        return sum(b * c for b, c in zip(self.buckets, self.counts, strict=True)) / n if n else math.nan

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        merged: Counter[float] = Counter(dict(zip(self.buckets, self.counts, strict=True)))
        merged.update(dict(zip(other.buckets, other.counts, strict=True)))
        return LatencyHistogram.from_counts(merged)


@dataclass(frozen=True)
class SecondStats:
    """One second of a run, counted from the run's start (second 0 is the first)."""

    second: int
    requests: int  # completed in this second, failures included
    histogram: LatencyHistogram  # latency of this second's completed requests, failures included
    failures: Mapping[str, int] = field(default_factory=dict)  # kind -> count, among this second's requests
    users: int | None = None  # locust's user count (None for the open-loop generator)
    intended: int | None = None  # open loop: requests scheduled to start in this second

    @property
    def failure_count(self) -> int:
        """Failed requests in this second."""
        return sum(self.failures.values())


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured.

    ``histogram`` and ``failures`` cover the whole run; :meth:`window` gives the same type for a span
    of seconds (the SLO checker uses it to leave the ramp-up out).
    """

    generator: Generator
    target: str  # the URL the load went to (loopback)
    duration_s: float  # wall time the generator ran
    requests: int  # completed requests, failures included
    failures: Mapping[str, int]  # kind (e.g. "HTTP 503", "ConnectionResetError") -> count
    histogram: LatencyHistogram
    history: tuple[SecondStats, ...]
    offered_rate: float | None = None  # the rate (req/s) the generator aimed at; None when unpaced
    intended: int | None = None  # open loop: requests the schedule intended to send in the run
    run_dir: Path | None = None  # where the generator's files are (locust CSV, JSON, log)
    locust_histogram: LatencyHistogram | None = None  # locust's own buckets, from its JSON file
    notes: tuple[str, ...] = field(default=())

    @property
    def failure_count(self) -> int:
        """All failed requests."""
        return sum(self.failures.values())

    @property
    def error_ratio(self) -> float:
        """Failed / completed requests (NaN when nothing completed)."""
        return self.failure_count / self.requests if self.requests else math.nan

    @property
    def rps(self) -> float:
        """Achieved rate: completed requests per second of the run."""
        return self.requests / self.duration_s if self.duration_s > 0 else math.nan

    @property
    def achieved_rate(self) -> float:
        """Same as :attr:`rps`; named to read against :attr:`offered_rate`."""
        return self.rps

    def percentiles(self, qs: Iterable[float] = (0.5, 0.95, 0.99)) -> dict[float, float]:
        """Nearest-rank percentiles (ms) of the whole run's histogram."""
        return {q: self.histogram.percentile(q) for q in qs}

    def window(self, start_s: float = 0.0, end_s: float | None = None) -> LoadResult:
        """The run restricted to the seconds ``start_s <= second < end_s`` of its history (whole seconds).

        Everything is re-summed from the seconds: requests, failures by kind, the histogram; the
        duration is the part of ``[start_s, end_s)`` the run lasted, so a window's rate is requests
        per second of it (a last, partial second counts for the fraction it lasted).
        """
        end = self.duration_s if end_s is None else min(end_s, self.duration_s)
        first = math.ceil(start_s)
        seconds = tuple(s for s in self.history if first <= s.second < end)
        failures: Counter[str] = Counter()
        for s in seconds:
            failures.update(s.failures)
        return replace(
            self,
            duration_s=max(0.0, end - first),
            requests=sum(s.requests for s in seconds),
            failures=dict(failures),
            histogram=sum((s.histogram for s in seconds), LatencyHistogram()),
            history=seconds,
            intended=None if self.intended is None else sum(s.intended or 0 for s in seconds),
            locust_histogram=None,
        )
