"""Load shedding: above the in-flight limit a scoring request gets a 429 with Retry-After at once; probes never.

The requests inside the app are held on an event, so "in flight" is exact, not a race: the test
does not depend on how fast the machine is.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mlsys_lab.deployment.service import create_app
from mlsys_lab.deployment.settings import ServiceSettings
from mlsys_lab.deployment.shedding import LoadShedding


class _HeldApp:
    """Answers 200 to every request, but only once ``release`` is set; counts who got in."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inside = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        if scope["path"].startswith("/v"):
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


async def _until(condition, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


def test_above_the_limit_scoring_gets_429_with_retry_after_and_probes_still_answer():
    async def scenario() -> None:
        inner = _HeldApp()
        shedder = LoadShedding(inner, limit=2)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shedder), base_url="http://drill") as client:
            held = [asyncio.create_task(client.post("/v1/score", json={})) for _ in range(2)]
            await _until(lambda: shedder.in_flight == 2)
            async with asyncio.timeout(5):  # a request let in would wait on the held ones: fail, do not hang
                shed = await client.post("/v2/score", json={})
                batch = await client.post("/v1/score/batch", json={})
                health = await client.get("/health")
            assert shed.status_code == 429 and batch.status_code == 429
            assert shed.headers["retry-after"] == "1"
            assert "MLSYS_LAB_MAX_IN_FLIGHT" in shed.json()["detail"] and "nothing was decided" in shed.json()["detail"]
            assert health.status_code == 200, "probes are never shed"
            assert inner.inside == 3, "the shed requests never reached the app (two held, one probe)"
            inner.release.set()
            assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
            assert shedder.in_flight == 0
            assert (await client.post("/v1/score", json={})).status_code == 200, "below the limit again: served"

    asyncio.run(scenario())


def test_a_failing_request_gives_its_slot_back():
    async def boom(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the route failed")

    async def scenario() -> None:
        shedder = LoadShedding(boom, limit=1)
        for _ in range(2):
            with pytest.raises(RuntimeError):
                await shedder({"type": "http", "path": "/v1/score"}, None, None)  # type: ignore[arg-type]
        assert shedder.in_flight == 0

    asyncio.run(scenario())


def test_shedding_is_off_by_default_and_a_setting_turns_it_on(tmp_path):
    def shedders(**values: object) -> list[int]:
        app = create_app(ServiceSettings(tracking_dir=tmp_path, **values))
        return [m.kwargs["limit"] for m in app.user_middleware if m.cls is LoadShedding]

    assert shedders() == []
    assert shedders(max_in_flight=4) == [4]
    assert ServiceSettings.from_env({"MLSYS_LAB_MAX_IN_FLIGHT": "3"}).max_in_flight == 3
    with pytest.raises(ValueError, match="max_in_flight"):
        ServiceSettings(max_in_flight=-1)
