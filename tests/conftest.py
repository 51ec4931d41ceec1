"""Fixtures shared by the whole test session.

`ray_serve` starts one local Ray (dashboard, metrics exporter, Serve HTTP proxy, all on
127.0.0.1 and free ports) for the whole session and stops it at the end; integration
tests deploy Serve configs onto it. `tiny_causal_lm` writes a small causal LM and its
tokenizer to a temporary directory, to be loaded by path like any real model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.demo import local_ray
from controller.demo.local_ray import (
    free_port,
    serve_http_options,
    start_local_ray,
    stop_local_ray,
)
from controller.transports.ray_dashboard import ray_auth_token

RAY_NUM_CPUS = 6
METRICS_REPORT_INTERVAL_MS = local_ray.METRICS_REPORT_INTERVAL_MS
WORKER_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "OMP_NUM_THREADS": "1",
}


def ray_auth_headers() -> dict[str, str]:
    """The bearer header the dashboard REST API wants when token auth is on."""
    token = ray_auth_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _failures(apps: dict[str, Any], names: list[str]) -> dict[str, list[str]]:
    """The application and deployment messages of failed applications."""
    return {
        name: [
            apps[name].get("message", ""),
            *(d.get("message", "") for d in apps[name].get("deployments", {}).values()),
        ]
        for name in names
    }


@dataclass
class RayServeCluster:
    """A running local Ray with Serve: where to reach it, and helpers to deploy configs."""

    dashboard_url: str
    http_url: str
    metrics_url: str
    http_port: int
    auth_headers: dict[str, str] = field(default_factory=dict)

    def rest(self) -> httpx.Client:
        """A client for the dashboard REST API, authenticated."""
        return httpx.Client(base_url=self.dashboard_url, headers=self.auth_headers, timeout=60)

    def deploy(self, config: dict[str, Any]) -> None:
        """PUT a whole Serve config (every application) through the dashboard, like an actuator."""
        config = {**config, "http_options": {"host": "127.0.0.1", "port": self.http_port}}
        with self.rest() as client:
            response = client.put("/api/serve/applications/", json=config)
        assert response.status_code == 200, f"deploy refused: {response.text}"

    def applications(self) -> dict[str, Any]:
        """The `applications` part of Serve's REST status."""
        with self.rest() as client:
            response = client.get("/api/serve/applications/")
        response.raise_for_status()
        return dict(response.json().get("applications") or {})

    def wait_for_status(self, wanted: dict[str, str], timeout_s: float = 300.0) -> dict[str, Any]:
        """Wait until each named application reaches its status (e.g. RUNNING)."""
        deadline = time.monotonic() + timeout_s
        apps: dict[str, Any] = {}
        while time.monotonic() < deadline:
            apps = self.applications()
            reached = {name: apps.get(name, {}).get("status") for name in wanted}
            if reached == wanted:
                return apps
            failed = [n for n, s in reached.items() if s == "DEPLOY_FAILED" != wanted[n]]
            if failed:
                raise AssertionError(f"applications failed to deploy: {_failures(apps, failed)}")
            time.sleep(1.0)
        summary = {name: apps.get(name, {}).get("status") for name in wanted}
        raise AssertionError(f"timed out waiting for {wanted}; now {summary}")

    def replica_pids(self, app: str, deployment: str) -> set[int]:
        """Process ids of the RUNNING replicas of one deployment."""
        replicas = self.applications()[app]["deployments"][deployment]["replicas"]
        return {int(r["pid"]) for r in replicas if r["state"] == "RUNNING" and r.get("pid")}

    def metrics_text(self) -> str:
        """The Prometheus text Ray exports on its metrics port."""
        return httpx.get(self.metrics_url, timeout=30).text


@pytest.fixture(scope="session")
def ray_serve() -> Iterator[RayServeCluster]:
    """One local Ray + Serve for the whole session, stopped at its end."""
    from ray import serve

    os.environ.update(WORKER_ENV)
    http_port = free_port()
    head = start_local_ray(RAY_NUM_CPUS, dashboard_port=free_port())
    try:
        serve.start(http_options=serve_http_options(http_port))
        yield RayServeCluster(
            dashboard_url=head.dashboard_url,
            http_url=f"http://127.0.0.1:{http_port}",
            metrics_url=head.metrics_url,
            http_port=http_port,
            auth_headers=ray_auth_headers(),
        )
    finally:
        stop_local_ray()


def build_tiny_causal_lm(path: Path) -> Path:
    """Write the test-made 2-layer GPT-2 (128-token context) with its tokenizer to `path`."""
    from serving.local_models import build_causal_lm

    return build_causal_lm(path)


@pytest.fixture(scope="session")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a small random causal LM (128-token context) and its tokenizer."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))
