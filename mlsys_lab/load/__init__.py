"""Module 04, load and latency: SLOs, load results, scenarios, locust and open-loop runs, capacity and cost.

Importing this package never imports locust (or gevent): locust monkey-patches the standard library
at import and breaks a Jupyter kernel. Locust runs only as a subprocess (:mod:`mlsys_lab.load.runner`),
and its locustfile (:mod:`mlsys_lab.load.locustfile`) is imported by that subprocess alone.
"""

from mlsys_lab.load.result import LatencyHistogram, LoadResult, SecondStats, bucket_ms
from mlsys_lab.load.slo import ONE_MILLION_AN_HOUR, SLO, Reason, Verdict, check_slo

__all__ = [
    "ONE_MILLION_AN_HOUR",
    "SLO",
    "LatencyHistogram",
    "LoadResult",
    "Reason",
    "SecondStats",
    "Verdict",
    "bucket_ms",
    "check_slo",
]
