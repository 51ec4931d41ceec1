"""The `governor` policy: the daemon's own agents and arbiter, fed simulated snapshots."""

from __future__ import annotations

from dataclasses import dataclass

from controller.config import AppConfig, GovernorConfig
from controller.decide import decide
from controller.sim.observe import build_snapshot
from controller.sim.policies.base import Action, PolicyState, PolicyView


@dataclass(frozen=True)
class GovernorPolicy:
    """Calls `controller.decide.decide` every `config.interval_s` and applies its Plan."""

    config: GovernorConfig
    name: str = "governor"

    @property
    def interval_s(self) -> float:
        """The daemon's control interval."""
        return self.config.interval_s

    def initial_replicas(self, app: AppConfig) -> dict[str, int]:
        """Each version's `initial_replicas` (the stable version's; others start at 0)."""
        return {
            v.name: (v.initial_replicas if v.name in (app.stable_version, app.candidate) else 0)
            for v in app.versions
        }

    def decide(self, view: PolicyView, state: PolicyState) -> tuple[Action, PolicyState]:
        """Observe as the daemon would, decide, and turn the Plan into replicas and weights."""
        snapshot = build_snapshot(
            view.obs,
            view.app,
            view.t,
            view.start,
            view.statuses,
            view.weights,
            view.pipeline,
            view.startup_s,
            view.app.resources.gpu_type,
        )
        tick = decide(snapshot, state.get("agents", {}), self.config)
        replicas: dict[str, int] = {}
        reasons: list[str] = []
        for d in tick.plan.replicas:
            if d.app == view.app.name:
                replicas[d.version] = d.replicas
                if d.replicas != view.statuses[d.version].target:
                    reasons.extend(d.reasons)
        weights = tick.plan.weights_for(view.app.name)
        note = f"t={view.t:.0f}s " + "; ".join(reasons) if reasons else ""
        return Action(replicas=replicas, weights=weights, note=note), {"agents": tick.states}
