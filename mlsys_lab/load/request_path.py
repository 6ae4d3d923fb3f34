"""Where a request's time goes: the service's ``Server-Timing`` stages, read from real answers.

Every scoring answer of ``mlsys-lab serve`` carries a W3C ``Server-Timing`` header
(:class:`mlsys_lab.deployment.service.ServerTiming`) with five durations in milliseconds:

- ``state``: waiting for the feature state's lock, tailing the decision log, the duplicate check;
- ``features``: the card's and the terminal's online features;
- ``model``: the model's score;
- ``log``: inserting the decision and committing it (group commit: one commit for the decisions
  that arrived together);
- ``total``: from the request reaching the app to its answer starting. ``total`` minus the four
  stages is what the web stack spends around them: reading and validating the body, the hand-off
  to the decision thread and back, serialising the answer.

:func:`stage_times` sends requests one at a time from a pool file (:func:`scenarios.write_request_pool`)
and returns one row per answer, so that a learner can see the split on their own machine. One client,
one request at a time: this is the request path without a queue in front of it, the service time's
anatomy. Under load, ``state`` and ``log`` also hold the wait for the requests ahead.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd

STAGES = ("state", "features", "model", "log", "total")


def parse_server_timing(value: str) -> dict[str, float]:
    """A ``Server-Timing`` header value as ``{name: milliseconds}``; entries without ``dur`` are left out.

    Examples
    --------
    >>> parse_server_timing("state;dur=0.021, model;dur=0.4, total;dur=1.250")
    {'state': 0.021, 'model': 0.4, 'total': 1.25}
    >>> parse_server_timing("cache;desc=hit")
    {}
    """
    stages: dict[str, float] = {}
    for entry in value.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key.strip() == "dur" and name:
                stages[name] = float(number.strip().strip('"'))
    return stages


def stage_times(url: str, pool: Path, requests: int = 200, timeout_s: float = 10.0) -> pd.DataFrame:
    """Post the first ``requests`` requests of ``pool`` to ``url``, one at a time; their stages in ms.

    Columns: :data:`STAGES`, ``around`` (``total`` minus the four stages: the web stack's share) and
    ``client`` (the wall time the client saw, so also HTTP on loopback). A non-200 answer raises
    with its status and body: a profile of refused requests would measure the wrong path.
    """
    if requests < 1:
        raise ValueError(f"requests must be >= 1, got {requests}")
    lines = pool.read_text().splitlines()[:requests]
    if len(lines) < requests:
        raise ValueError(f"{pool} holds {len(lines)} requests, fewer than the {requests} asked for")
    rows = []
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        for line in lines:
            request = json.loads(line)
            answer = client.post(request["path"], json=request["body"])
            if answer.status_code != 200:
                raise RuntimeError(f"{request['path']} answered {answer.status_code}: {answer.text[:300]}")
            stages = parse_server_timing(answer.headers.get("server-timing", ""))
            missing = [name for name in STAGES if name not in stages]
            if missing:
                raise RuntimeError(f"the answer's Server-Timing header lacks {missing}: is this mlsys-lab serve?")
            rows.append({**{name: stages[name] for name in STAGES}, "client": answer.elapsed.total_seconds() * 1000})
    frame = pd.DataFrame(rows, columns=[*STAGES, "client"])
    frame.insert(len(STAGES), "around", frame["total"] - frame[list(STAGES[:-1])].sum(axis=1))
    return frame
