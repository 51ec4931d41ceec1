"""A real Serve application under a real Governor daemon, for the integration tests."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.actuators.state_file import FileStateStore
from controller.clock import SystemClock
from controller.config import GovernorConfig, parse_config
from controller.daemon import Daemon, TickReport
from controller.sim.replay import ReplayRequest, ReplayResult, replay_async, text_of
from controller.targets import build_local_target
from tests.conftest import RayServeCluster
from tests.serve_configs import add_version

REPO = Path(__file__).resolve().parents[2]
APP = "governed"
APPS = (APP, f"{APP}-v1", f"{APP}-v2")
"""The router application and the application of each version."""
RUNNING = dict.fromkeys(APPS, "RUNNING")
SLO_P95_MS = 500
MODEL = "minilm"


def serve_config(http_port: int, v2_batching: dict[str, Any] | None = None) -> dict[str, Any]:
    """The shipped local embeddings applications renamed to APP, one torch thread per replica."""
    doc = copy.deepcopy(yaml.safe_load((REPO / "configs/serve.local.yaml").read_text()))
    doc["http_options"] = {"host": "127.0.0.1", "port": http_port}
    add_version(doc, "embeddings", "v1", "v2")
    apps = {a["name"]: a for a in doc["applications"]}
    router, v1, v2 = apps["embeddings"], apps["embeddings-v1"], apps["embeddings-v2"]
    doc["applications"] = [router, v1, v2]
    router["name"] = APP
    # Admission answers within the SLO the daemon's config below holds the app to.
    router["args"]["latency_target_ms"] = SLO_P95_MS
    (router_deployment,) = router["deployments"]
    router_deployment["user_config"]["versions"] = {"v1": f"{APP}-v1", "v2": f"{APP}-v2"}
    for name, version in (("v1", v1), ("v2", v2)):
        version["name"] = f"{APP}-{name}"
        version["args"]["version"]["torch_threads"] = 1
    (model_v2,) = v2["deployments"]
    model_v2["num_replicas"] = 1
    if v2_batching is not None:
        model_v2["user_config"] = v2_batching
    return doc


def governor_config(
    cluster: RayServeCluster, state_dir: Path, **app_overrides: Any
) -> tuple[GovernorConfig, Path]:
    """A daemon config over APP with a fast loop; returns it and the serve config it uses."""
    serve_path = state_dir / "serve.yaml"
    serve_path.write_text(
        yaml.safe_dump(app_overrides.pop("serve", serve_config(cluster.http_port)))
    )
    app: dict[str, Any] = {
        "name": APP,
        "slo": {"latency_p95_ms": SLO_P95_MS, "max_error_rate": 0.01},
        "versions": [
            {
                "name": "v1",
                "deployment": "model_v1",
                "application": f"{APP}-v1",
                "min_replicas": 1,
                "max_replicas": 3,
            },
            {
                "name": "v2",
                "deployment": "model_v2",
                "application": f"{APP}-v2",
                "min_replicas": 0,
                "max_replicas": 2,
            },
        ],
        "stable": "v1",
        "scaling": {"downscale_delay_s": 6, "forecast_window_s": 10, "default_startup_s": 5},
        "rollout": {"drain_s": 2},
    }
    for key, value in app_overrides.items():
        app[key] = {**app[key], **value} if isinstance(value, dict) and key in app else value
    doc = {
        "local": {
            "dashboard_url": cluster.dashboard_url,
            "metrics_urls": [cluster.metrics_url],
            "serve_config": str(serve_path),
        },
        "interval_s": 1.0,
        "window_s": 8.0,
        "state_path": str(state_dir / "state.json"),
        "prices": {"cpu": 1.0},
        "applications": [app],
    }
    return parse_config(doc), serve_path


@dataclass
class RunningDaemon:
    """A daemon ticking in a thread, and everything it reported."""

    daemon: Daemon
    reports: list[TickReport] = field(default_factory=list)


@contextmanager
def daemon_running(config: GovernorConfig) -> Iterator[RunningDaemon]:
    """Run the daemon against the real cluster until the block ends."""
    clock = SystemClock()
    target = build_local_target(config, clock)
    daemon = Daemon(
        config,
        target.source,
        target.actuator,
        FileStateStore(config.state_path),
        clock,
        inbox=target.inbox,
    )
    running = RunningDaemon(daemon)
    stop = threading.Event()
    thread = threading.Thread(
        target=daemon.run, args=(stop,), kwargs={"on_tick": running.reports.append}, daemon=True
    )
    thread.start()
    try:
        yield running
    finally:
        stop.set()
        thread.join(timeout=30)
        target.close()


class Load:
    """Open-loop embeddings requests at a constant rate, from a background thread."""

    def __init__(
        self,
        cluster: RayServeCluster,
        rate: float,
        seconds: float,
        words: int = 48,
        inputs: int = 1,
    ) -> None:
        count = int(rate * seconds)
        self.requests = [ReplayRequest(i / rate, words, 0) for i in range(count)]
        self.inputs = inputs
        self.url = cluster.http_url
        self.results: list[ReplayResult] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.results = asyncio.run(
            replay_async(
                self.url,
                self.requests,
                model=MODEL,
                body=self._body,
                concurrency=128,
                timeout_s=60,
            )
        )

    def _body(self, req: ReplayRequest, model: str) -> dict[str, Any]:
        return {"model": model, "input": [text_of(req.prompt_tokens)] * self.inputs}

    def start(self) -> Load:
        """Begin sending."""
        self._thread.start()
        return self

    def wait(self) -> list[ReplayResult]:
        """Wait for every answer."""
        self._thread.join()
        return self.results


def targets(cluster: RayServeCluster) -> dict[str, int]:
    """Target replica counts of APP's version deployments, as Serve reports them."""
    apps = cluster.applications()
    return {
        name: int(d.get("target_num_replicas") or 0)
        for app in APPS[1:]
        for name, d in apps[app]["deployments"].items()
        if name.startswith("model_")
    }


def describe(report: TickReport | None) -> str:
    """What a tick saw and decided, for failure messages."""
    if report is None:
        return "no tick yet"
    lines = [f"error={report.error} held={report.applied.held if report.applied else None}"]
    for v in report.snapshot.apps[0].versions if report.snapshot and report.snapshot.apps else ():
        lines.append(
            f"{v.version}: run={v.running_replicas} target={v.target_replicas} "
            f"rate={v.request_rate} p95={v.latency_p95_ms} queue={v.queue_length}"
        )
    for d in report.plan.replicas if report.plan else ():
        lines.append(f"plan {d.version}={d.replicas}: {'; '.join(d.reasons)}")
    return "\n".join(lines)


def wait_until(
    predicate: Any, timeout_s: float, what: str, running: RunningDaemon | None = None
) -> None:
    """Poll `predicate` until true, or fail naming `what` and the daemon's last tick."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    last = running.reports[-1] if running and running.reports else None
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}\n{describe(last)}")
