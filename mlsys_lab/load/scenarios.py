"""Load scenarios as data: what to send (a pre-generated request pool) and how (a table of stages).

Building a request during a run costs the load generator CPU the server needed: on two shared cores,
a ``json.dumps`` and a pandas row per request lower the rate the test can offer. So every body is
built **before** the run, from the simulator's transactions, and written one per line to a request
pool file the locustfile (and the open-loop generator) only read.

A scenario's shape is a table of :class:`Stage` rows (until when, how many users, how fast to
spawn them): steady rate, step (the capacity curve), spike and soak are all such tables, and one
``LoadTestShape`` in the locustfile plays any of them. Pacing is per user (a fixed period
from each user's own random phase, like ``constant_throughput`` but never in lockstep: see the
locustfile): ``rate_per_user`` x users is the offered rate, so a step in users is a step in
offered load.

This module is pure Python (pandas and the simulator): it never imports locust.

Examples
--------
>>> s = one_million_an_hour()
>>> s.offered_rate, s.users, s.duration_s
(278.0, 50, 70.0)
>>> [(st.until_s, st.users) for st in step(users=(10, 20), stage_s=30, rate_per_user=5).stages]
[(30.0, 10), (60.0, 20)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

__all__ = [
    "ENDPOINTS",
    "ONE_MILLION_AN_HOUR_RPS",
    "Endpoint",
    "Scenario",
    "Stage",
    "one_million_an_hour",
    "read_request_pool",
    "request_bodies",
    "simulated_transactions",
    "soak",
    "spike",
    "steady",
    "step",
    "write_request_pool",
]

Endpoint = Literal["/v1/score", "/v2/score", "/v1/score/batch", "/v2/score/batch"]
ENDPOINTS: tuple[Endpoint, ...] = ("/v1/score", "/v2/score", "/v1/score/batch", "/v2/score/batch")
#: 1M requests an hour, as a rate.
ONE_MILLION_AN_HOUR_RPS = 1_000_000 / 3600
_BANK_TIMEZONE = "Europe/Brussels"  # the service reads v1's naive times here (mlsys_lab.deployment.schemas)


@dataclass(frozen=True)
class Stage:
    """Until ``until_s`` seconds into the run, hold ``users`` users, spawning or stopping ``spawn_rate`` a second."""

    until_s: float
    users: int
    spawn_rate: float

    def __post_init__(self) -> None:
        if not (self.until_s > 0 and self.users >= 0 and self.spawn_rate > 0):
            raise ValueError(f"stage {self}: until_s must be > 0, users >= 0 and spawn_rate > 0")


@dataclass(frozen=True)
class Scenario:
    """A load test: its name, stages, per-user pacing and the endpoint it posts to.

    ``rate_per_user`` None means unpaced: each user sends its next request as soon as the last one
    answered (the closed loop at its tightest). ``ramp_up_s`` is what an SLO check should leave out.
    """

    name: str
    stages: tuple[Stage, ...]
    rate_per_user: float | None
    endpoint: Endpoint = "/v1/score"
    batch_size: int = 1
    ramp_up_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError(f"scenario {self.name!r} has no stages: give at least one Stage")
        if any(b.until_s <= a.until_s for a, b in zip(self.stages, self.stages[1:], strict=False)):
            raise ValueError(f"scenario {self.name!r}: stage end times must increase")
        if self.rate_per_user is not None and not self.rate_per_user > 0:
            raise ValueError(f"rate_per_user must be > 0 (or None for unpaced), got {self.rate_per_user!r}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}: choose one of {', '.join(ENDPOINTS)}")
        if self.batch_size < 1 or (self.batch_size > 1 and not self.endpoint.endswith("/batch")):
            raise ValueError(f"batch_size {self.batch_size} needs a /batch endpoint (and must be >= 1)")

    @property
    def duration_s(self) -> float:
        """When the last stage ends."""
        return self.stages[-1].until_s

    @property
    def users(self) -> int:
        """The most users any stage holds."""
        return max(s.users for s in self.stages)

    @property
    def offered_rate(self) -> float | None:
        """Requests per second offered at the busiest stage (None when unpaced)."""
        return None if self.rate_per_user is None else round(self.rate_per_user * self.users, 6)

    def max_requests(self) -> int:
        """An upper bound of the requests the stages can send when paced (the request pool must hold them)."""
        if self.rate_per_user is None:
            raise ValueError(f"scenario {self.name!r} is unpaced: say how many requests to allow")
        start, total = 0.0, 0.0
        for stage in self.stages:
            total += stage.users * self.rate_per_user * (stage.until_s - start)
            start = stage.until_s
        return math.ceil(total * 1.1) + self.users  # pacing catches up after slow answers; a margin


def steady(
    users: int,
    duration_s: float,
    *,
    rate: float | None = None,
    ramp_up_s: float = 5.0,
    endpoint: Endpoint = "/v1/score",
    batch_size: int = 1,
    name: str = "steady",
) -> Scenario:
    """``users`` users for ``duration_s`` s after a ``ramp_up_s`` spawn; ``rate`` req/s in total (None: unpaced)."""
    spawn = users / ramp_up_s if ramp_up_s > 0 else float(users)
    return Scenario(
        name=name,
        stages=(Stage(ramp_up_s + duration_s, users, spawn),),
        rate_per_user=None if rate is None else rate / users,
        endpoint=endpoint,
        batch_size=batch_size,
        ramp_up_s=ramp_up_s,
    )


def step(
    users: tuple[int, ...] = (5, 10, 20, 30, 40, 50, 60),
    *,
    stage_s: float = 20.0,
    rate_per_user: float | None = 10.0,
    endpoint: Endpoint = "/v1/score",
) -> Scenario:
    """The capacity curve: offered load raised in steps of ``stage_s`` seconds, one per user count."""
    stages = tuple(Stage(float(stage_s * (i + 1)), n, float(max(n, 1))) for i, n in enumerate(users))
    return Scenario("step", stages, rate_per_user, endpoint=endpoint)


def spike(
    base_users: int = 10,
    spike_users: int = 60,
    *,
    before_s: float = 20.0,
    spike_s: float = 10.0,
    after_s: float = 20.0,
    rate_per_user: float | None = 5.0,
    endpoint: Endpoint = "/v1/score",
) -> Scenario:
    """Steady base load, a sudden spike (all extra users at once), then the base again: does it recover?"""
    stages = (
        Stage(before_s, base_users, float(base_users)),
        Stage(before_s + spike_s, spike_users, float(spike_users)),
        Stage(before_s + spike_s + after_s, base_users, float(spike_users)),
    )
    return Scenario("spike", stages, rate_per_user, endpoint=endpoint, ramp_up_s=min(5.0, before_s))


def soak(
    users: int = 50, duration_s: float = 1800.0, *, rate: float = ONE_MILLION_AN_HOUR_RPS, ramp_up_s: float = 10.0
) -> Scenario:
    """A long steady run at a moderate rate: leaks, a growing log and slow drifts show up here, not in a minute."""
    return steady(users, duration_s, rate=rate, ramp_up_s=ramp_up_s, name="soak")


def one_million_an_hour(users: int = 50, duration_s: float = 60.0, *, ramp_up_s: float = 10.0) -> Scenario:
    """1M requests an hour: 278 req/s from ``users`` paced users for ``duration_s`` after the ramp-up."""
    return steady(users, duration_s, rate=round(ONE_MILLION_AN_HOUR_RPS), ramp_up_s=ramp_up_s, name="1M/hour")


# -- the request pool ---------------------------------------------------------------------------------------------


def simulated_transactions(preset: str = "tiny", *, random_state: int = 0, last_days: int = 7) -> pd.DataFrame:
    """The simulator's last ``last_days`` days: the "next days" a service trained on earlier ones would see."""
    from mlsys_lab import data

    transactions = data.simulate(data.preset(preset, random_state=random_state)).transactions
    last = int(transactions["tx_time_days"].max())
    return transactions[transactions["tx_time_days"] > last - last_days].reset_index(drop=True)


def request_bodies(transactions: pd.DataFrame, n: int, *, endpoint: Endpoint = "/v1/score") -> Iterator[dict]:
    """``n`` request bodies, in time order, for ``endpoint`` (v1 or v2 form), from ``transactions``.

    Each transaction is scored once by the service, so when ``n`` exceeds the rows the days are
    played again, shifted by whole spans of days and with ids offset past every id seen: new
    transactions of the same cards at the same terminals, still in time order.
    """
    rows = transactions.sort_values(["tx_time_seconds", "transaction_id"], kind="stable")
    if rows.empty:
        raise ValueError("no transactions to build requests from")
    span_days = int(rows["tx_time_days"].max() - rows["tx_time_days"].min()) + 1
    id_span = int(rows["transaction_id"].max()) + 1
    v2 = endpoint.startswith("/v2")
    ids, customers, terminals = (rows[c].to_numpy() for c in ("transaction_id", "customer_id", "terminal_id"))
    amounts, times = rows["tx_amount"].to_numpy(), rows["tx_datetime"]
    made, repeat = 0, 0
    while made < n:
        shifted = times + pd.Timedelta(days=span_days * repeat)
        if v2:  # v2 wants an aware time: the bank's local time with its offset, and integer cents
            local = shifted.dt.tz_localize(_BANK_TIMEZONE, ambiguous=False, nonexistent="shift_forward")
            stamps = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True)
        else:
            stamps = shifted.dt.strftime("%Y-%m-%dT%H:%M:%S")
        for i, stamp in enumerate(stamps.tolist()):
            if made == n:
                return
            body: dict[str, object] = {
                "transaction_id": int(ids[i]) + repeat * id_span,
                "customer_id": int(customers[i]),
                "terminal_id": int(terminals[i]),
                "tx_datetime": stamp,
            }
            if v2:
                body |= {"amount_minor": round(float(amounts[i]) * 100), "currency": "EUR"}
            else:
                body["tx_amount"] = float(amounts[i])
            yield body
            made += 1
        repeat += 1


def write_request_pool(
    path: Path,
    transactions: pd.DataFrame,
    n_requests: int,
    *,
    endpoint: Endpoint = "/v1/score",
    batch_size: int = 1,
) -> Path:
    """Write ``n_requests`` ready-to-send requests to ``path``: one JSON line ``{"path": ..., "body": ...}`` each.

    For a ``/batch`` endpoint each request carries ``batch_size`` consecutive transactions.
    """
    if n_requests < 1:
        raise ValueError(f"n_requests must be >= 1, got {n_requests}")
    if batch_size > 1 and not endpoint.endswith("/batch"):
        raise ValueError(f"batch_size {batch_size} needs a /batch endpoint, not {endpoint}")
    bodies = request_bodies(transactions, n_requests * batch_size, endpoint=endpoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for _ in range(n_requests):
            if endpoint.endswith("/batch"):
                body: dict = {"transactions": [next(bodies) for _ in range(batch_size)]}
            else:
                body = next(bodies)
            out.write(json.dumps({"path": endpoint, "body": body}, separators=(",", ":")) + "\n")
    return path


def read_request_pool(path: Path) -> list[tuple[str, bytes]]:
    """The pool as (path, body bytes) pairs: what a generator sends without any encoding work during the run."""
    pool = []
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            try:
                item = json.loads(line)
                pool.append((str(item["path"]), json.dumps(item["body"], separators=(",", ":")).encode()))
            except (ValueError, KeyError) as exc:
                raise ValueError(
                    f"{path}:{number}: not a request pool line ({exc}); write it with write_request_pool"
                ) from None
    if not pool:
        raise ValueError(f"{path} holds no requests: write it with write_request_pool")
    return pool
