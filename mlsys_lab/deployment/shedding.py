"""Load shedding: a bounded number of scoring requests in flight, a 429 with ``Retry-After`` above it.

Off by default (``MLSYS_LAB_MAX_IN_FLIGHT`` unset or 0). With a limit, a scoring request that finds
``limit`` others already inside the app is answered 429 at once, before its body is read, so it
decides nothing and logs nothing: the client is told to come back (``Retry-After: 1``) instead of
queueing behind work the service cannot finish in time. Only the scoring routes are bounded:
``/health``, ``/ready``, ``/metrics``, feedback and admin keep answering, so an overloaded service
still looks alive to its probes. The count is per worker process (one event loop each), so the
check and the increment happen with no ``await`` between them and need no lock.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RETRY_AFTER_S", "SHED_PATHS", "LoadShedding"]

#: Paths that count against the limit (single and batch scoring, both schema versions).
SHED_PATHS: tuple[str, ...] = ("/v1/score", "/v2/score")
#: What a shed request is told: come back in a second (whole seconds, as RFC 9110 wants).
RETRY_AFTER_S = 1


class LoadShedding:
    """Pure ASGI middleware: at most ``limit`` scoring requests in flight; a 429 with ``Retry-After`` above it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1 (0 turns shedding off by not adding this), got {limit}")
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(SHED_PATHS):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self._shed(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _shed(self, send: Send) -> None:
        detail = (
            f"{self.in_flight} scoring requests in flight, the limit is {self.limit} (MLSYS_LAB_MAX_IN_FLIGHT): "
            f"nothing was decided; retry after {RETRY_AFTER_S} s"
        )
        payload = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"retry-after", str(RETRY_AFTER_S).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
