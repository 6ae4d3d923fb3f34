"""The picture of a load run: rate and users, p50/p95/p99 over time, and the latency histogram with the SLO."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlsys_lab.load.result import LoadResult
from mlsys_lab.load.slo import SLO

__all__ = ["plot_run"]


def plot_run(result: LoadResult, slo: SLO, path: Path) -> Path:
    """Write a PNG of ``result`` to ``path``: three panels over the run's seconds, the SLO drawn in.

    Uses matplotlib's Agg backend through its object API (no pyplot state, no window), so it works
    headless and inside a notebook without changing the notebook's backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seconds = [s.second for s in result.history]
    figure = Figure(figsize=(10, 9), layout="constrained")
    FigureCanvasAgg(figure)
    rate_ax, latency_ax, histogram_ax = figure.subplots(3, 1)

    rate_ax.plot(seconds, [s.requests for s in result.history], label="completed req/s", color="C0")
    rate_ax.plot(seconds, [s.failure_count for s in result.history], label="failed req/s", color="C3")
    if any(s.intended is not None for s in result.history):
        rate_ax.plot(seconds, [s.intended or 0 for s in result.history], "--", label="intended req/s", color="C2")
    if slo.min_rps:
        rate_ax.axhline(slo.min_rps, color="grey", linestyle=":", label=f"SLO {slo.min_rps:g} req/s")
    if slo.ramp_up_s:
        for ax in (rate_ax, latency_ax):
            ax.axvspan(0, slo.ramp_up_s, color="grey", alpha=0.15)
    rate_ax.set_ylabel("requests per second")
    rate_ax.set_title(f"{result.generator} against {result.target} (shaded: ramp-up, left out of the SLO)")
    if any(s.users is not None for s in result.history):
        users_ax = rate_ax.twinx()
        users_ax.step(seconds, [s.users or 0 for s in result.history], where="post", color="C1", label="users")
        users_ax.set_ylabel("users", color="C1")
        users_ax.set_ylim(bottom=0)
    rate_ax.legend(loc="upper left")

    for q, colour in ((0.5, "C0"), (0.95, "C1"), (0.99, "C3")):
        latency_ax.plot(
            seconds,
            [s.histogram.percentile(q) if s.histogram.total else float("nan") for s in result.history],
            label=f"p{q * 100:g}",
            color=colour,
        )
    latency_ax.axhline(slo.latency_ms, color="black", linestyle=":", label=f"SLO {slo.latency_ms:g} ms")
    latency_ax.set_yscale("log")
    latency_ax.set_ylabel("latency per second (ms)")
    latency_ax.set_xlabel("seconds since the start")
    latency_ax.legend(loc="upper left")

    window = result.window(slo.ramp_up_s).histogram
    if window.total:
        low, high = max(min(window.buckets), 0.01), max(max(window.buckets), slo.latency_ms) * 1.05
        bins = np.geomspace(low, high, 50)
        histogram_ax.hist(np.clip(window.buckets, low, None), bins=bins, weights=window.counts, color="C0")
        histogram_ax.axvline(slo.latency_ms, color="black", linestyle=":", label=f"SLO {slo.latency_ms:g} ms")
        histogram_ax.set_xscale("log")
        histogram_ax.legend(loc="upper right")
        histogram_ax.set_title(
            f"latency after the ramp-up: {window.share_at_most(slo.latency_ms):.2%} <= {slo.latency_ms:g} ms "
            f"(objective {slo.latency_share:.0%})"
        )
    histogram_ax.set_yscale("log")
    histogram_ax.set_xlabel("latency (ms, log scale)")
    histogram_ax.set_ylabel("requests")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    return path
