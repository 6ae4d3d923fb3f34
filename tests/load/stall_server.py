"""A tiny scoring-shaped server for load tests: answers in microseconds, and can freeze every N requests.

``python tests/load/stall_server.py PORT STALL_EVERY STALL_S`` serves on 127.0.0.1:PORT with uvicorn.
Every STALL_EVERY-th request blocks the event loop for STALL_S seconds (``time.sleep``, on purpose:
the whole server freezes, as in a stop-the-world pause or a lock held too long), so every request in
flight or arriving meanwhile waits too. STALL_EVERY 0 never stalls. ``/v1/score`` with
``"transaction_id"`` divisible by 1000 answers 503, to make failures on demand. ``GET /arrivals``
lists when each ``/v1/score`` request arrived (``time.monotonic()`` seconds), to test arrival patterns.
"""

from __future__ import annotations

import json
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STALL_EVERY, STALL_S = 0, 0.0
_count = 0
_arrivals: list[float] = []


async def score(request: Request) -> JSONResponse:
    global _count
    _arrivals.append(time.monotonic())
    _count += 1
    if STALL_EVERY and _count % STALL_EVERY == 0:
        time.sleep(STALL_S)
    body = json.loads(await request.body())
    if body.get("transaction_id", 1) % 1000 == 0:
        return JSONResponse({"detail": "refused"}, status_code=503)
    return JSONResponse({"transaction_id": body.get("transaction_id"), "score": 0.01})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive", "requests": _count})


async def arrivals(request: Request) -> JSONResponse:
    return JSONResponse(_arrivals)


app = Starlette(
    routes=[Route("/v1/score", score, methods=["POST"]), Route("/health", health), Route("/arrivals", arrivals)]
)

if __name__ == "__main__":
    port, STALL_EVERY, STALL_S = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
