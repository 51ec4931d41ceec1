"""The governor's snapshot is what a metrics pipeline has: reported, windowed, delayed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from controller.sim.capacity import EPOCH, constant_trace
from controller.sim.engine import simulate
from controller.sim.observe import FleetStatus, PipelineSettings, build_snapshot
from controller.sim.policies.static import StaticPolicy
from controller.sim.trace import Trace
from controller.snapshot import Snapshot, VersionSnapshot
from tests.controller.sim import world


def snapshot_at(
    t: float, report_s: float = 10.0, window_s: float = 30.0
) -> tuple[Snapshot, VersionSnapshot]:
    app = world.app(slo_ms=150.0)
    # 10 req/s for 100 s, then one last request at 200 s.
    steady = constant_trace(rate=10.0, duration_s=100.0)
    trace = Trace(np.append(steady.arrival_s, 200.0), np.append(steady.prompt_tokens, 1),
                  np.append(steady.output_tokens, 1), EPOCH)
    result = simulate(trace, world.encoder(service_ms=40.0), app, StaticPolicy(2))
    pipeline = PipelineSettings(report_s=report_s, window_s=window_s)
    snap = build_snapshot(result.obs, app, t, EPOCH, {"v1": FleetStatus(2, 0, 2)},
                          {"v1": 100}, pipeline, {"v1": None}, "gpu")
    version = snap.apps[0].version("v1")
    assert version is not None
    return snap, version


def test_rate_and_quantiles_come_from_the_window_before_the_last_report() -> None:
    snap, v = snapshot_at(t=67.0)
    assert snap.now == EPOCH + timedelta(seconds=67.0)
    assert snap.window_s == 30.0
    # Visible up to the report at 60 s; the window is 30..60 s.
    assert v.request_rate == pytest.approx(10.0, rel=0.05)
    assert v.request_count == pytest.approx(300, abs=2)
    assert v.error_rate == 0.0
    assert v.latency_histogram is not None
    assert 20.0 <= v.latency_p95_ms <= 50.0  # 40 ms sits in Ray's 20..50 ms bucket
    assert v.running_replicas == 2
    assert v.startup_s is None


def test_traffic_that_stopped_after_the_last_report_is_not_seen_yet() -> None:
    _, v = snapshot_at(t=109.0)
    # At 109 s the newest report is from 100 s: the window 70..100 s still shows load.
    assert v.request_rate == pytest.approx(10.0, rel=0.05)
    _, later = snapshot_at(t=140.0)
    assert later.request_rate == 0.0
    assert later.latency_p95_ms is None


def test_nothing_is_reported_before_the_first_report() -> None:
    _, v = snapshot_at(t=5.0)
    assert v.request_rate is None
    assert v.latency_p95_ms is None
    assert v.queue_length == 0.0
