"""Rich tables of a plan and of the fleet's status, for the CLI and the live view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table

from controller.config import GovernorConfig
from controller.decisions import Plan
from controller.snapshot import Snapshot


def _fmt(value: float | int | None, spec: str = ".0f") -> str:
    return "-" if value is None else format(value, spec)


def plan_table(config: GovernorConfig, snapshot: Snapshot | None, plan: Plan | None) -> Table:
    """One row per version: observed vs desired replicas and weight, with the reasons."""
    table = Table(title="plan", show_lines=True)
    for col in ("app", "version", "replicas", "weight", "reasons"):
        table.add_column(col, overflow="fold")
    if plan is None:
        return table
    for app in config.applications:
        observed_app = snapshot.app(app.name) if snapshot else None
        desired_weights = plan.weights_for(app.name) or {}
        weight_reasons = next((w.reasons for w in plan.weights if w.app == app.name), ())
        for v in app.versions:
            obs = observed_app.version(v.name) if observed_app else None
            decision = next(
                (d for d in plan.replicas if d.app == app.name and d.version == v.name), None
            )
            current = obs.target_replicas if obs else None
            want = decision.replicas if decision else None
            observed_w = (observed_app.weights or {}).get(v.name) if observed_app else None
            reasons = list(decision.reasons if decision else ())
            if observed_w != desired_weights.get(v.name):
                reasons += list(weight_reasons)
            table.add_row(
                app.name,
                v.name,
                f"{_fmt(current)} -> {_fmt(want)}",
                f"{_fmt(observed_w)} -> {_fmt(desired_weights.get(v.name))}",
                "\n".join(reasons) or "unchanged",
            )
    for alert in plan.alerts:
        table.add_row(alert.app, alert.version or "", "", "", f"[yellow]alert[/]: {alert.message}")
    table.caption = f"planned cost {plan.cost_per_hour:.2f}/h"
    return table


def status_table(
    config: GovernorConfig,
    snapshot: Snapshot | None,
    plan: Plan | None,
    rollouts: Mapping[str, Mapping[str, Any]],
) -> Table:
    """One row per version: replicas, weight, rate, p95 vs SLO, cost vs budget, rollout."""
    table = Table(title="fleet status")
    for col in (
        "app",
        "version",
        "replicas run/start/want",
        "weight",
        "req/s",
        "p95 ms / SLO",
        "cost/h",
        "rollout",
    ):
        table.add_column(col)
    for app in config.applications:
        observed_app = snapshot.app(app.name) if snapshot else None
        weights = (observed_app.weights if observed_app else None) or {}
        rollout = rollouts.get(app.name, {})
        for v in app.versions:
            obs = observed_app.version(v.name) if observed_app else None
            want = plan.replicas_for(app.name, v.name) if plan else None
            p95 = obs.latency_p95_ms if obs else None
            style = "red" if p95 is not None and p95 > app.slo.latency_p95_ms else "green"
            p95_text = "-" if p95 is None else f"[{style}]{p95:.0f}[/]"
            cost = (want or 0) * config.replica_price(app)
            table.add_row(
                app.name,
                v.name,
                f"{_fmt(obs.running_replicas if obs else None)}/"
                f"{_fmt(obs.starting_replicas if obs else None)}/{_fmt(want)}",
                _fmt(weights.get(v.name)),
                _fmt(obs.request_rate if obs else None, ".1f"),
                f"{p95_text} / {app.slo.latency_p95_ms:.0f}",
                f"{cost:.2f}",
                _rollout_text(rollout) if v.name == app.versions[0].name else "",
            )
    budget = config.budgets.total_per_hour
    if plan is not None:
        table.caption = f"fleet cost {plan.cost_per_hour:.2f}/h" + (
            f" of budget {budget:.2f}/h" if budget is not None else ""
        )
    return table


def _rollout_text(view: Mapping[str, Any]) -> str:
    phase = view.get("phase", "idle")
    if phase == "idle":
        return f"idle (stable {view.get('stable', '?')})"
    if phase == "promoted":
        return f"promoted {view.get('stable')}"
    parts = [str(phase)]
    if view.get("candidate"):
        parts.append(f"{view.get('stable')} -> {view.get('candidate')}")
    if view.get("weight") is not None:
        parts.append(f"at {view.get('weight')}%")
    if view.get("verdict"):
        parts.append(str(view.get("verdict")))
    return " ".join(parts)
