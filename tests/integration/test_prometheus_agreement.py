"""A real Prometheus over a real local Ray Serve fleet agrees with the embedded source.

Prometheus runs on a loopback port with the config `governor prometheus-config` writes:
Ray's exporters through Ray's own service-discovery file, and the daemon's /metrics.
The embeddings application of configs/serve.local.yaml serves a steady load; both
sources observe the same window. Then Prometheus is stopped under a running daemon.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from controller.clock import SystemClock
from controller.config import GovernorConfig, parse_config
from controller.daemon import Daemon
from controller.events import EventLog
from controller.prometheus_config import DEFAULT_RAY_SD_FILE, scrape_config
from controller.signals.prometheus import PrometheusSource, query_failures
from controller.targets import Target, build_local_target
from controller.telemetry import Telemetry, serve_metrics
from serving.metrics import LATENCY_BUCKETS_MS
from tests.conftest import RayServeCluster, free_port
from tests.controller.promql_names import RULES
from tests.prometheus_server import PrometheusServer

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
APP = "embeddings"
SERVE_APPS = (APP, f"{APP}-v1")
WINDOW_S = 30
LOAD_RPS = 6.0


class SteadyLoad:
    """Sends LOAD_RPS embedding requests per second on a fixed schedule until stopped."""

    def __init__(self, url: str, workers: int = 3) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failed = 0
        self._lock = threading.Lock()
        period = workers / LOAD_RPS
        self.threads = [
            threading.Thread(target=self._run, args=(period, i * period / workers), daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _run(self, period: float, offset: float) -> None:
        start = time.monotonic() + offset
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self.stop.wait(max(0.0, start + n * period - time.monotonic())):
                n += 1
                try:
                    r = client.post(self.url, json={"model": "minilm", "input": f"steady {n}"})
                    good = r.status_code == 200
                except httpx.HTTPError:
                    good = False
                with self._lock:
                    self.ok += good
                    self.failed += not good

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=35)


@dataclass
class Fleet:
    """The deployed app, its load, a Prometheus scraping it, and the daemon's target."""

    cluster: RayServeCluster
    prometheus: PrometheusServer
    config: GovernorConfig
    target: Target
    telemetry: Telemetry
    load: SteadyLoad


def _ray_scrape_target(cluster: RayServeCluster, sd_file: Path, timeout_s: float = 60) -> None:
    """Wait until Ray's service-discovery file lists this cluster's exporter."""
    port = cluster.metrics_url.split(":")[-1].split("/")[0]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            groups = json.loads(sd_file.read_text())
            if any(t.endswith(f":{port}") for g in groups for t in g["targets"]):
                return
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"{sd_file} never listed the exporter on port {port}")


def _config(cluster: RayServeCluster, tmp: Path, prometheus_url: str) -> GovernorConfig:
    serve = yaml.safe_load((CONFIGS / "serve.local.yaml").read_text())
    serve["applications"] = [a for a in serve["applications"] if a["name"] in SERVE_APPS]
    serve["http_options"] = {"host": "127.0.0.1", "port": cluster.http_port}
    serve_path = tmp / "serve.yaml"
    serve_path.write_text(yaml.safe_dump(serve))
    doc = yaml.safe_load((CONFIGS / "governor.prometheus.yaml").read_text())
    doc["applications"] = [a for a in doc["applications"] if a["name"] == APP]
    doc["local"].update(
        dashboard_url=cluster.dashboard_url,
        metrics_urls=[cluster.metrics_url],
        serve_config=str(serve_path),
    )
    doc["signals"]["prometheus"].update(
        url=prometheus_url, rate_window=f"{WINDOW_S}s", max_sample_age_s=20
    )
    doc.update(window_s=WINDOW_S, state_path=str(tmp / "state.json"))
    return parse_config(doc)


@pytest.fixture(scope="module")
def fleet(ray_serve: RayServeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("prometheus-agreement")
    sd_file = Path(DEFAULT_RAY_SD_FILE)
    _ray_scrape_target(ray_serve, sd_file)
    prometheus_port = free_port()
    config = _config(ray_serve, tmp, f"http://127.0.0.1:{prometheus_port}")
    ray_serve.deploy(yaml.safe_load(Path(config.local.serve_config).read_text()))
    ray_serve.wait_for_status(dict.fromkeys(SERVE_APPS, "RUNNING"))
    telemetry = Telemetry()
    daemon_port = free_port()
    metrics_server, _ = serve_metrics(telemetry, "127.0.0.1", daemon_port)
    prometheus = PrometheusServer(
        scrape_config(str(sd_file), f"127.0.0.1:{daemon_port}", "1s", [str(RULES)]),
        tmp,
        prometheus_port,
    )
    load = SteadyLoad(f"{ray_serve.http_url}/v1/embeddings")
    target = build_local_target(config, SystemClock())
    prometheus.start()
    try:
        load.start()
        prometheus.wait_until(
            f'sum(rate(ray_governor_requests_total{{application="{APP}",version="v1"}}[10s])) > 1',
            bool,
            timeout_s=90,
        )
        prometheus.wait_until('up{job="governor"} == 1', bool)
        yield Fleet(ray_serve, prometheus, config, target, telemetry, load)
    finally:
        load.close()
        prometheus.stop()
        target.close()
        close = getattr(target.source, "close", None)
        if callable(close):
            close()
        metrics_server.shutdown()
        ray_serve.deploy({"applications": []})


def _bucket(latency_ms: float) -> int:
    return next(
        (i for i, b in enumerate(LATENCY_BUCKETS_MS) if latency_ms <= b), len(LATENCY_BUCKETS_MS)
    )


def test_prometheus_and_embedded_sources_agree_on_the_same_window(fleet: Fleet) -> None:
    source = fleet.target.source
    assert isinstance(source, PrometheusSource)
    embedded = source.replicas_from
    assert embedded is not None
    embedded.observe()  # the baseline the embedded window starts from
    time.sleep(WINDOW_S)
    from_ray = embedded.observe()
    from_prometheus = source.observe()
    assert query_failures(from_prometheus.problems) == [], from_prometheus.problems
    ray_v1, prom_v1 = from_ray.version(APP, "v1"), from_prometheus.version(APP, "v1")
    assert ray_v1 is not None and prom_v1 is not None
    figures = {
        "request_rate": (prom_v1.request_rate, ray_v1.request_rate),
        "latency_p95_ms": (prom_v1.latency_p95_ms, ray_v1.latency_p95_ms),
        "latency_p50_ms": (prom_v1.latency_p50_ms, ray_v1.latency_p50_ms),
        "error_rate": (prom_v1.error_rate, ray_v1.error_rate),
        "queue_length": (prom_v1.queue_length, ray_v1.queue_length),
        "batch_size": (prom_v1.batch_size, ray_v1.batch_size),
        "shed_rate": (prom_v1.shed_rate, ray_v1.shed_rate),
    }
    print(f"\nagreement over {WINDOW_S}s (prometheus, embedded): {figures}")
    assert prom_v1.request_rate is not None and ray_v1.request_rate is not None
    assert ray_v1.request_rate > LOAD_RPS * 0.5
    assert prom_v1.request_rate == pytest.approx(ray_v1.request_rate, rel=0.10)
    assert prom_v1.latency_p95_ms is not None and ray_v1.latency_p95_ms is not None
    assert abs(_bucket(prom_v1.latency_p95_ms) - _bucket(ray_v1.latency_p95_ms)) <= 1
    assert prom_v1.error_rate == ray_v1.error_rate == 0.0
    # A steady load under capacity sheds nothing: both read 0 (no shed series exists yet).
    assert prom_v1.shed_rate == ray_v1.shed_rate == 0.0
    # Every batch holds at least one input (Ray's histogram `_sum` would say 0.5).
    assert prom_v1.batch_size is not None and prom_v1.batch_size >= 1.0
    assert prom_v1.running_replicas == ray_v1.running_replicas
    assert fleet.load.failed == 0


def test_a_stopped_prometheus_makes_the_daemon_hold_and_it_recovers_when_back(
    fleet: Fleet, tmp_path: Path
) -> None:
    events = EventLog(tmp_path / "events.jsonl")
    t = fleet.target
    daemon = Daemon(
        fleet.config, t.source, t.actuator, t.store, SystemClock(), fleet.telemetry, events
    )
    before = daemon.tick()
    assert before.error is None, before.error
    assert query_failures(before.snapshot.problems) == []  # type: ignore[union-attr]

    fleet.prometheus.stop()
    down = daemon.tick()
    assert down.error is None, down.error
    snap = down.snapshot
    assert snap is not None and down.plan is not None
    v1 = snap.version(APP, "v1")
    assert v1 is not None
    assert v1.request_rate is None and v1.latency_p95_ms is None and v1.queue_length is None
    assert v1.running_replicas is not None
    failed = query_failures(snap.problems)
    assert ("request_rate", "unreachable") in failed
    for version in snap.app(APP).versions:  # type: ignore[union-attr]
        assert down.plan.replicas_for(APP, version.version) == version.target_replicas
    assert down.applied is not None and down.applied.changes == ()
    missing = [e for e in events.recent if e["kind"] == "signal-missing"]
    assert any("request_rate" in e["message"] and "unreachable" in e["message"] for e in missing)
    value = fleet.telemetry.registry.get_sample_value(
        "governor_signal_query_failures_total", {"query": "request_rate", "reason": "unreachable"}
    )
    assert value is not None and value >= 1

    restarted = time.time()
    fleet.prometheus.start()
    fleet.prometheus.wait_until(f'min(timestamp(up{{job="ray"}})) > {restarted}', bool)
    back = daemon.tick()
    assert back.error is None, back.error
    assert query_failures(back.snapshot.problems) == [], back.snapshot.problems  # type: ignore[union-attr]
    v1 = back.snapshot.version(APP, "v1")  # type: ignore[union-attr]
    assert v1 is not None and v1.request_rate is not None and v1.request_rate > 0
    assert v1.latency_p95_ms is not None and v1.queue_length is not None
    # The outage is on record where operators look: the daemon's own series in Prometheus.
    fleet.prometheus.wait_until(
        'governor_signal_query_failures_total{query="request_rate",reason="unreachable"} >= 1',
        bool,
    )
