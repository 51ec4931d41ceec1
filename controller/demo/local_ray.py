"""Starts and stops the local Ray head the embedded default runs on."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from controller.errors import TemporaryError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LocalRay:
    """Addresses of a running local Ray head."""

    dashboard_url: str
    metrics_url: str


def wait_for_http(url: str, timeout_s: float, what: str) -> None:
    """Poll `url` until it answers (any status below 500) or raise TemporaryError."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2.0).status_code < 500:
                return
        except httpx.HTTPError as err:
            last = str(err)
        time.sleep(0.5)
    raise TemporaryError(f"{what} did not come up within {timeout_s:.0f}s at {url}: {last}")


@contextmanager
def local_ray(num_cpus: int, dashboard_port: int = 8265) -> Iterator[LocalRay]:
    """Run a local Ray head (dashboard + metrics exporter) for the duration of the block."""
    import ray

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    metrics_port = free_port()
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=True,
        dashboard_host="127.0.0.1",
        dashboard_port=dashboard_port,
        _metrics_export_port=metrics_port,
        # Report metrics every 2 s so that a short window already holds several samples.
        _system_config={"metrics_report_interval_ms": 2000},
        log_to_driver=False,
    )
    try:
        head = LocalRay(
            dashboard_url=f"http://127.0.0.1:{dashboard_port}",
            metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        )
        wait_for_http(f"{head.dashboard_url}/api/version", 60, "the Ray dashboard")
        yield head
    finally:
        try:
            from ray import serve

            serve.shutdown()
        finally:
            ray.shutdown()
