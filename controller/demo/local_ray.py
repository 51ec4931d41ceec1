"""Starts and stops the local Ray head the embedded default runs on.

The demo, the tests and the benchmarks all start Ray through `start_local_ray` (or the
`local_ray` block), so they get the same listeners: on loopback, with token auth on.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from controller.errors import PermanentError, TemporaryError
from serving.local_models import CACHE_ENV

LOOPBACK = "127.0.0.1"
SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE_ENV = "RAY_AUTH_MODE"
METRICS_REPORT_INTERVAL_MS = 2000
"""Ray reports metrics every 2 s so that a short window already holds several samples."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class LocalRay:
    """Addresses of a running local Ray head."""

    dashboard_url: str
    metrics_url: str


PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_MIDDLEWARES = "serving.proxy_errors:middlewares"


def local_ray_env() -> dict[str, str]:
    """Environment variables the local Ray head and every process it starts run with."""
    return {
        # "0" puts Ray in the single-node mode it uses on macOS and Windows: the node's
        # address is 127.0.0.1, so the GCS, the raylet, the object manager, the workers'
        # gRPC servers and the agents bind loopback, not the LAN address or every interface.
        SINGLE_NODE_ENV: "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        # Serve's proxy refuses what an application cannot answer in time before it costs
        # a hop to the router, and answers its own 503s in OpenAI's format.
        PROXY_CALLBACK_ENV: PROXY_MIDDLEWARES,
        # Models made on first use (`made:` sources) are kept in the checkout's ignored
        # .cache/, beside the other local caches, unless a cache is set already.
        CACHE_ENV: os.environ.get(CACHE_ENV) or str(Path(".cache/models").resolve()),
    }


def local_ray_init_kwargs(num_cpus: int, dashboard_port: int, metrics_port: int) -> dict[str, Any]:
    """The `ray.init` arguments of the local head: dashboard and metrics on loopback."""
    return {
        "num_cpus": num_cpus,
        "include_dashboard": True,
        "dashboard_host": LOOPBACK,
        "dashboard_port": dashboard_port,
        "_node_ip_address": LOOPBACK,
        "_metrics_export_port": metrics_port,
        "_system_config": {"metrics_report_interval_ms": METRICS_REPORT_INTERVAL_MS},
        "log_to_driver": False,
    }


def serve_http_options(port: int) -> dict[str, Any]:
    """Serve's HTTP proxy options on the local head: loopback only."""
    return {"host": LOOPBACK, "port": port}


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


def _refuse_auth_off() -> None:
    mode = os.environ.get(AUTH_MODE_ENV)
    if mode is not None and mode.lower() != "token":
        raise PermanentError(
            f"{AUTH_MODE_ENV}={mode}: the local Ray head runs only with token authentication "
            f"(unset {AUTH_MODE_ENV} or set it to 'token')"
        )


def _enter_single_node_mode() -> None:
    import ray._private.ray_constants as ray_constants

    # Ray reads SINGLE_NODE_ENV once, when it is first imported; a process that imported
    # Ray before (a test session does) gets the same mode through the constant it sets.
    ray_constants.ENABLE_RAY_CLUSTER = False


def _check_loopback(node_ip: str) -> None:
    if node_ip != LOOPBACK:
        raise PermanentError(f"the local Ray head took {node_ip} as its address, not {LOOPBACK}")


def _check_token_required(dashboard_url: str) -> None:
    code = httpx.get(f"{dashboard_url}/api/version", timeout=10.0).status_code
    if code != 401:
        raise PermanentError(
            f"the local Ray dashboard answered {code} without a token; token auth is off"
        )


def start_local_ray(
    num_cpus: int, dashboard_port: int = 8265, metrics_port: int | None = None
) -> LocalRay:
    """Start a local Ray head in this process, listening on loopback with token auth on."""
    import ray

    _refuse_auth_off()
    os.environ.update(local_ray_env())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _enter_single_node_mode()
    metrics_port = metrics_port or free_port()
    ray.init(**local_ray_init_kwargs(num_cpus, dashboard_port, metrics_port))
    head = LocalRay(
        dashboard_url=f"http://{LOOPBACK}:{dashboard_port}",
        metrics_url=f"http://{LOOPBACK}:{metrics_port}/metrics",
    )
    try:
        _check_loopback(ray.util.get_node_ip_address())
        wait_for_http(f"{head.dashboard_url}/api/version", 60, "the Ray dashboard")
        _check_token_required(head.dashboard_url)
    except BaseException:
        ray.shutdown()
        raise
    return head


def stop_local_ray() -> None:
    """Stop Serve, if it runs, and the local Ray head this process started."""
    import ray
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()


@contextmanager
def local_ray(num_cpus: int, dashboard_port: int = 8265) -> Iterator[LocalRay]:
    """Run a local Ray head (dashboard + metrics exporter) for the duration of the block."""
    head = start_local_ray(num_cpus, dashboard_port)
    try:
        yield head
    finally:
        stop_local_ray()
