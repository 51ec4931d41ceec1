"""Adding and retiring a version's application restarts no replica of another version.

v1 serves a steady load throughout; v3 is added as an application of its own, named in
the router's version table (a live reconfigure), answers requests pinned to it, and is
then retired: its application and replicas are gone, and v1 never failed a request nor
changed process.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.serving.conftest import (
    EMBEDDINGS_APP,
    RUNNING,
    V1_APP,
    V2_APP,
    ServingApps,
    samples,
)

pytestmark = pytest.mark.integration

V3_APP = "embeddings-v3"


def _with_v3(serving_apps: ServingApps) -> dict[str, Any]:
    """The test config plus v3: v2's application under v3's names, in the router's table."""
    config = serving_apps.config()
    apps = {a["name"]: a for a in config["applications"]}
    v3 = copy.deepcopy(apps[V2_APP])
    v3["name"] = V3_APP
    v3["args"]["version"]["name"] = "v3"
    v3["deployments"][0]["name"] = "model_v3"
    v3["deployments"][0]["ray_actor_options"] = {"num_cpus": 0.25}
    config["applications"].append(v3)
    (router,) = apps[EMBEDDINGS_APP]["deployments"]
    router["user_config"]["versions"] = {**router["user_config"]["versions"], "v3": V3_APP}
    return config


class SteadyLoad:
    """Sends one embeddings request every `period_s` until stopped; counts the answers."""

    def __init__(self, url: str, period_s: float = 0.1) -> None:
        self.url, self.period_s = url, period_s
        self.codes: Counter[int] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                try:
                    answer = client.post(self.url, json={"model": "minilm", "input": "steady"})
                    self.codes[answer.status_code] += 1
                    if answer.status_code != 200:
                        self.failures.append(answer.text[:200])
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                self._stop.wait(self.period_s)


def _pinned(serving_apps: ServingApps, version: str) -> httpx.Response:
    body = {"model": f"minilm:{version}", "input": "pinned"}
    return httpx.post(serving_apps.embeddings_url, json=body, timeout=120)


def _wait_gone(serving_apps: ServingApps, app: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while app in serving_apps.cluster.applications():
        assert time.monotonic() < deadline, f"{app} still deployed"
        time.sleep(1.0)


def _weight_series(serving_apps: ServingApps) -> set[str]:
    """The versions the embeddings router exports a route weight for."""
    found = samples(serving_apps.cluster, "ray_governor_route_weight")
    return {s.labels["version"] for s in found if s.labels.get("application") == EMBEDDINGS_APP}


def _wait_for_weight_series(serving_apps: ServingApps, wanted: set[str]) -> None:
    deadline = time.monotonic() + 90.0
    while (found := _weight_series(serving_apps)) != wanted:
        assert time.monotonic() < deadline, f"route weights exported for {found}, not {wanted}"
        time.sleep(2.0)


def test_adding_and_retiring_a_version_keeps_the_others_serving_in_the_same_processes(
    serving_apps: ServingApps,
) -> None:
    cluster = serving_apps.cluster
    before = {
        "v1": cluster.replica_pids(V1_APP, "model_v1"),
        "v2": cluster.replica_pids(V2_APP, "model_v2"),
        "router": cluster.replica_pids(EMBEDDINGS_APP, "router"),
    }
    try:
        with SteadyLoad(serving_apps.embeddings_url) as load:
            cluster.deploy(_with_v3(serving_apps))
            cluster.wait_for_status({**RUNNING, V3_APP: "RUNNING"})
            serving_apps.wait_for_health("versions", ["v1", "v2", "v3"])
            added = _pinned(serving_apps, "v3")
            assert added.status_code == 200, added.text
            assert added.headers["x-governor-version"] == "v3"
            _wait_for_weight_series(serving_apps, {"v1", "v2", "v3"})

            cluster.deploy(serving_apps.config())
            _wait_gone(serving_apps, V3_APP)
            serving_apps.wait_for_health("versions", ["v1", "v2"])
            retired = _pinned(serving_apps, "v3")
            time.sleep(2.0)
        assert retired.status_code == 404, retired.text
        assert retired.json()["error"]["code"] == "model_not_found"
        assert load.failures == [], load.failures[:5]
        assert load.codes[200] >= 20, load.codes
        after = {
            "v1": cluster.replica_pids(V1_APP, "model_v1"),
            "v2": cluster.replica_pids(V2_APP, "model_v2"),
            "router": cluster.replica_pids(EMBEDDINGS_APP, "router"),
        }
        assert after == before
        _wait_for_weight_series(serving_apps, {"v1", "v2"})
    finally:
        cluster.deploy(serving_apps.config())
        cluster.wait_for_status(RUNNING)
