"""`ray-default` decides with Ray Serve's own policy functions, on the simulated clock."""

from __future__ import annotations

import types

import pytest

from controller.sim.capacity import EPOCH
from controller.sim.observe import (
    FleetStatus,
    Observations,
    PipelineSettings,
    VersionCounters,
)
from controller.sim.policies.base import PolicyView
from controller.sim.policies.ray_default import (
    RayDefaultPolicy,
    ongoing_requests_metric,
    ray_autoscaling_config,
)
from tests.controller.sim import world

pytest.importorskip("ray.serve.autoscaling_policy")


def observations(ongoing: dict[float, int], until: int = 200) -> Observations:
    """One sample per second; ongoing requests change at the given times."""
    obs = Observations(("v1",))
    c = VersionCounters()
    for t in range(until + 1):
        c.ongoing_at_replicas = ongoing.get(float(t), c.ongoing_at_replicas)
        obs.add(float(t), "v1", c, 1, 0, 1)
    return obs


def view(obs: Observations, t: float, running: int, target: int) -> PolicyView:
    return PolicyView(t=t, start=EPOCH, app=world.app(max_replicas=100), obs=obs,
                      statuses={"v1": FleetStatus(running, 0, target)}, weights={"v1": 100},
                      pipeline=PipelineSettings(), startup_s={"v1": None})


def test_metric_is_rays_time_weighted_mean_of_pushed_samples() -> None:
    obs = observations({0.0: 0, 50.0: 20})
    config = ray_autoscaling_config(1, 100)
    # Pushed at 60 s: samples every 6 s at 36..60 (0, 0, 0, 20, 20); the last holds to 65 s.
    value = ongoing_requests_metric(view(obs, 65.0, 1, 1), "v1", config)
    assert value == pytest.approx((20 * 6 + 20 * 5) / 29)


def test_upscale_waits_rays_30s_delay_then_targets_ongoing_over_2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray.serve.autoscaling_policy as rp
    from ray.serve._private.common import DeploymentID
    from ray.serve.config import AutoscalingContext

    obs = observations({0.0: 20})
    policy = RayDefaultPolicy(min_replicas=1, max_replicas=100, initial=1)
    wrapped = rp._apply_autoscaling_config(rp.replica_queue_length_autoscaling_policy)
    ours: dict = {}
    theirs: dict = {}
    target = 1
    for t in range(40, 80, 2):
        action, ours = policy.decide(view(obs, float(t), running=1, target=target), ours)
        # Ray's own wrapper, with its wall clock replaced by the simulated one.
        monkeypatch.setattr(rp, "time", types.SimpleNamespace(time=lambda t=t: float(t)))
        ctx = AutoscalingContext(
            deployment_id=DeploymentID(name="model_v1", app_name="app"),
            deployment_name="model_v1", app_name="app", current_num_replicas=1,
            target_num_replicas=target, running_replicas=[], total_num_requests=20.0,
            total_queued_requests=0.0, aggregated_metrics={}, raw_metrics={},
            capacity_adjusted_min_replicas=1, capacity_adjusted_max_replicas=100,
            policy_state=theirs, last_scale_up_time=None, last_scale_down_time=None,
            current_time=float(t), config=ray_autoscaling_config(1, 100))
        expected, theirs = wrapped(ctx)
        assert action.replicas["v1"] == expected
        assert expected == (1 if t < 70 else 10), t
        target = expected
