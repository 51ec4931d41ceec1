"""The `hpa` policy: the Kubernetes HorizontalPodAutoscaler v2 rule on a concurrency metric.

Per the HPA v2 algorithm (kubernetes.io, "Horizontal Pod Autoscaling", and
pkg/controller/podautoscaler): every sync period (15 s) the controller reads the metric
(`Pods` type: in-flight requests per pod, as a Prometheus adapter would serve them from a
15 s scrape), computes `desired = ceil(pods x current / target)`, skips changes within
the 10% tolerance, treats pods without a metric (still starting) as 0 when scaling up
and as at target when scaling down, keeps the highest recommendation of the last 300 s
before scaling down (scale-up stabilization 0 s), and limits steps by the default
policies: up by max(100%, 4 pods) per 15 s, down by 100% per 15 s. A run starts as
if the HPA had been recommending the initial replica count before the trace began.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.config import AppConfig
from controller.sim.observe import visible_time
from controller.sim.policies.base import Action, PolicyState, PolicyView

TOLERANCE = 0.1
SYNC_PERIOD_S = 15.0
SCRAPE_S = 15.0
DOWN_STABILIZATION_S = 300.0
UP_STABILIZATION_S = 0.0
UP_PERCENT, UP_PODS, UP_PERIOD_S = 100.0, 4, 15.0
DOWN_PERCENT, DOWN_PERIOD_S = 100.0, 15.0


def raw_recommendation(
    current: int, ready: int, starting: int, metric_total: float, target: float
) -> int:
    """`desired` from the metric before stabilization and rate limits."""
    if ready == 0:
        return current
    ratio = metric_total / (ready * target)
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    if starting == 0:
        return math.ceil(ratio * ready)
    pods = ready + starting
    # Pods without a metric: assumed idle on the way up, at target on the way down.
    if ratio > 1.0:
        adjusted = metric_total / (pods * target)
    else:
        adjusted = (metric_total + starting * target) / (pods * target)
    if abs(adjusted - 1.0) <= TOLERANCE or (adjusted > 1.0) != (ratio > 1.0):
        return current
    return math.ceil(adjusted * pods)


def stabilize(
    current: int, desired: int, now: float, history: list[list[float]]
) -> tuple[int, list[list[float]]]:
    """Apply the stabilization windows; returns the recommendation and the kept history."""
    keep = max(DOWN_STABILIZATION_S, UP_STABILIZATION_S)
    history = [h for h in history if h[0] > now - keep] + [[now, float(desired)]]
    up = min([desired] + [int(n) for t, n in history if t > now - UP_STABILIZATION_S])
    down = max([desired] + [int(n) for t, n in history if t > now - DOWN_STABILIZATION_S])
    if current < up:
        return up, history
    if current > down:
        return down, history
    return current, history


def rate_limit(current: int, desired: int, now: float, events: list[list[float]]) -> int:
    """Bound a change by the default scale-up and scale-down policies."""
    if desired > current:
        added = sum(int(d) for t, d in events if t > now - UP_PERIOD_S and d > 0)
        start = current - added
        limit = max(math.ceil(start * (1 + UP_PERCENT / 100.0)), start + UP_PODS)
        return min(desired, limit)
    if desired < current:
        removed = sum(-int(d) for t, d in events if t > now - DOWN_PERIOD_S and d < 0)
        start = current + removed
        limit = math.ceil(start * (1 - DOWN_PERCENT / 100.0))
        return max(desired, limit)
    return desired


@dataclass(frozen=True)
class HpaPolicy:
    """HPA v2 on average in-flight requests per pod (a `Pods` metric) with a target value."""

    target_in_flight: float
    min_replicas: int
    max_replicas: int
    initial: int
    name: str = "hpa"
    interval_s: float = SYNC_PERIOD_S

    @classmethod
    def for_app(cls, app: AppConfig, target_in_flight: float) -> HpaPolicy:
        """Bounds and initial replicas of the app's stable version."""
        v = app.version(app.stable_version)
        return cls(
            target_in_flight=target_in_flight,
            min_replicas=max(v.min_replicas, 1),
            max_replicas=v.max_replicas,
            initial=max(v.initial_replicas, 1),
        )

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        """The stable version starts at `initial` replicas."""
        return {v.name: (self.initial if v.name == app.stable_version else 0) for v in app.versions}

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        """One HPA sync: metric, recommendation, stabilization, rate limits, bounds."""
        version = view.app.stable_version
        status = view.statuses[version]
        sample = view.obs.at(version, visible_time(view.t, SCRAPE_S))
        current = status.target
        if sample is None:
            return Action(replicas={version: current}), state
        in_flight = float(sample.ongoing_at_replicas + sample.queued_at_router)
        desired = raw_recommendation(
            current, status.running, status.starting, in_flight, self.target_in_flight
        )
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        # A fresh run starts as if the HPA had recommended the initial count until now.
        seen = state.get("recommendations", [[view.t - self.interval_s, float(self.initial)]])
        stable, history = stabilize(current, desired, view.t, seen)
        events = [
            e for e in state.get("events", []) if e[0] > view.t - max(UP_PERIOD_S, DOWN_PERIOD_S)
        ]
        final = rate_limit(current, stable, view.t, events)
        final = max(self.min_replicas, min(self.max_replicas, final))
        if final != current:
            events.append([view.t, float(final - current)])
        return (Action(replicas={version: final}), {"recommendations": history, "events": events})
