"""The `ray-default` policy: Ray Serve's own default autoscaler, run on the simulated clock.

The decision is Ray's code: `replica_queue_length_autoscaling_policy`, then Ray's
`_apply_scaling_factors` and `_apply_delay_logic` (with the simulated time passed as its
`_now`), then the bounds, exactly as `_apply_autoscaling_config` and
`AutoscalingState.get_decision_num_replicas` chain them, with every default of
`AutoscalingConfig` except the replica bounds, which come from the governor config.

Re-implemented around it, because it lives in Ray's controller and replicas rather than in
a function: the metric that feeds it. Each replica and handle records its ongoing requests
(running at replicas + queued at handles) every `min(look_back_period_s x 0.2,
metrics_interval_s)` seconds and pushes the last `look_back_period_s` of them every
`metrics_interval_s`; the controller averages the pushed step function over time (Ray's
`aggregate_timeseries`, the last point held until now) every CONTROL_LOOP_INTERVAL_S.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from controller.config import AppConfig
from controller.sim.policies.base import Action, PolicyState, PolicyView

RECORD_INTERVAL_FACTOR = 0.2
"""Ray's RAY_SERVE_AUTOSCALING_METRIC_RECORD_INTERVAL_FACTOR default."""


@functools.cache
def _ray() -> SimpleNamespace:
    # Imported on first use: Ray's modules take a second to import (and start nothing).
    import ray.serve._private.constants as constants
    import ray.serve.autoscaling_policy as policy
    from ray.serve._private.common import DeploymentID, TimeStampedValue
    from ray.serve._private.metrics_utils import aggregate_timeseries
    from ray.serve.config import AutoscalingConfig, AutoscalingContext

    return SimpleNamespace(
        policy=policy,
        constants=constants,
        DeploymentID=DeploymentID,
        TimeStampedValue=TimeStampedValue,
        aggregate_timeseries=aggregate_timeseries,
        AutoscalingConfig=AutoscalingConfig,
        AutoscalingContext=AutoscalingContext,
    )


@functools.cache
def ray_autoscaling_config(min_replicas: int, max_replicas: int) -> Any:
    """Ray's AutoscalingConfig with its defaults and the given replica bounds."""
    return _ray().AutoscalingConfig(min_replicas=min_replicas, max_replicas=max_replicas)


def ongoing_requests_metric(view: PolicyView, version: str, config: Any) -> float:
    """`total_num_requests` as Ray's controller would aggregate it at `view.t`."""
    ray = _ray()
    push_s = config.metrics_interval_s
    record_s = min(config.look_back_period_s * RECORD_INTERVAL_FACTOR, push_s)
    pushed = math.floor(view.t / push_s) * push_s
    first = math.floor((pushed - config.look_back_period_s) / record_s + 1) * record_s
    series = []
    k = max(first, 0.0)
    while k <= pushed + 1e-9:
        s = view.obs.at(version, k)
        if s is not None:
            ongoing = s.ongoing_at_replicas + s.queued_at_router
            series.append(ray.TimeStampedValue(k, float(ongoing)))
        k += record_s
    if not series:
        return 0.0
    last_window_s = max(view.t - series[-1].timestamp, 1e-3)
    value = ray.aggregate_timeseries(
        series, config.aggregation_function, last_window_s=last_window_s
    )
    return float(value) if value is not None else 0.0


@dataclass(frozen=True)
class RayDefaultPolicy:
    """Ray Serve's default queue-length autoscaler with AutoscalingConfig defaults."""

    min_replicas: int
    max_replicas: int
    initial: int
    name: str = "ray-default"

    @property
    def interval_s(self) -> float:
        """Ray Serve's controller loop period (CONTROL_LOOP_INTERVAL_S)."""
        return float(_ray().constants.CONTROL_LOOP_INTERVAL_S)

    @classmethod
    def for_app(cls, app: AppConfig) -> RayDefaultPolicy:
        """Bounds and initial replicas of the app's stable version."""
        v = app.version(app.stable_version)
        return cls(
            min_replicas=v.min_replicas,
            max_replicas=v.max_replicas,
            initial=max(v.initial_replicas, v.min_replicas),
        )

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        """The stable version starts at `initial` replicas."""
        return {v.name: (self.initial if v.name == app.stable_version else 0) for v in app.versions}

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        """One pass of Ray's autoscaling decision for the stable version."""
        ray = _ray()
        policy = ray.policy
        config = ray_autoscaling_config(self.min_replicas, self.max_replicas)
        version = view.app.stable_version
        status = view.statuses[version]
        policy_state: dict[str, Any] = dict(state.get("policy_state", {}))
        ctx = ray.AutoscalingContext(
            deployment_id=ray.DeploymentID(
                name=view.app.version(version).deployment, app_name=view.app.name
            ),
            deployment_name=view.app.version(version).deployment,
            app_name=view.app.name,
            current_num_replicas=status.running,
            target_num_replicas=status.target,
            running_replicas=[],
            total_num_requests=ongoing_requests_metric(view, version, config),
            total_queued_requests=0.0,
            aggregated_metrics={},
            raw_metrics={},
            capacity_adjusted_min_replicas=self.min_replicas,
            capacity_adjusted_max_replicas=self.max_replicas,
            policy_state=policy_state,
            last_scale_up_time=None,
            last_scale_down_time=None,
            current_time=view.t,
            config=config,
        )
        cold = policy._get_cold_start_scale_up_replicas(ctx)
        if cold is not None:
            decision = cold
        else:
            desired, _ = policy.replica_queue_length_autoscaling_policy(ctx)
            desired = policy._apply_scaling_factors(desired, ctx.current_num_replicas, config)
            if ctx.current_num_replicas == 0 and desired > 0:
                decision = desired
            else:
                decision, policy_state = policy._apply_delay_logic(
                    max(0, desired), ctx.target_num_replicas, config, policy_state, _now=view.t
                )
        decision = max(self.min_replicas, min(self.max_replicas, math.ceil(decision)))
        return Action(replicas={version: decision}), {"policy_state": policy_state}
