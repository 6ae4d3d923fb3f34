"""Several ``mlsys-lab serve`` processes, as replicas behind a load balancer, sharing one PostgreSQL log.

The bounds these tests state and check:

- features: a decision one process has acknowledged is in the features of every request any other
  process *starts* after that acknowledgement (bound: zero; each request tails the shared log before
  computing its features, and the log commits before it answers). A process that does not tail the
  log, or a log whose tail skips rows, computes one customer's counts from its own requests only;
- the alias: a promotion reaches every process within ``MLSYS_LAB_MODEL_REFRESH_SECONDS`` plus one
  registry read, with no ``/admin/reload`` sent to any of them.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mlsys_lab.deployment.decision_log import DecisionLog
from mlsys_lab.deployment.server import ServerProcess

from .test_service_live import START_TIMEOUT, body, server_env, store  # noqa: F401  # store is a fixture

pytestmark = pytest.mark.slow  # starts three servers and a PostgreSQL database

REFRESH_SECONDS = 0.5


def test_three_processes_on_one_postgresql_log_agree_on_features_and_follow_a_promotion(store, postgres_url):  # noqa: F811
    env = server_env(store, postgres_url, {"MLSYS_LAB_MODEL_REFRESH_SECONDS": str(REFRESH_SECONDS)})
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(3) as starting:
        # Started side by side (each start imports MLflow and loads the model: seconds apiece).
        futures = [
            starting.submit(ServerProcess, env, wait_path="/ready", start_timeout=START_TIMEOUT) for _ in range(3)
        ]
        for future in futures:  # every server that started is stopped, even if another one failed
            if future.exception() is None:
                stack.callback(future.result().stop)
        servers = [future.result() for future in futures]
        assert len({s.port for s in servers}) == 3
        # One customer's transactions, round-robin over the three processes, one after the other:
        # the 1-day count must go 1, 2, 3, ... as offline, whichever process scores each one.
        n = 24
        for k in range(n):
            answer = httpx.post(f"{servers[k % 3].url}/v1/score", json=body(700 + k, 43, minute=k), timeout=10)
            assert answer.status_code == 200, answer.text
        log = DecisionLog(postgres_url)
        try:
            counts = [log.decision_for(700 + k)["features"]["customer_id_nb_tx_1day_window"] for k in range(n)]
        finally:
            log.close()
        assert counts == [float(k + 1) for k in range(n)], f"the processes disagree: counts {counts}"

        # A promotion, with no reload sent: each process follows the alias on its own.
        registry = store.registry()
        registry.promote(2, who="tests", why="three processes follow")
        promoted_at = time.monotonic()
        try:
            followed: dict[int, float] = {}
            deadline = promoted_at + 30  # generous for a busy machine; the bound reported is measured
            while len(followed) < 3 and time.monotonic() < deadline:
                for i, server in enumerate(servers):
                    if i not in followed and httpx.get(f"{server.url}/ready", timeout=10).json()["model_version"] == 2:
                        followed[i] = time.monotonic() - promoted_at
                time.sleep(0.05)
            assert len(followed) == 3, f"after 30 s only processes {sorted(followed)} serve version 2"
        finally:
            assert registry.rollback(who="tests", why="back to the first champion") == 1
