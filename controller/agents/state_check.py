"""Parsing a saved state through its schema: keep what holds, drop what does not, say why.

A saved state comes back from a file or ConfigMaps that a person, a bug or a disk may have
changed. Each entry (one application's rollout, one version's scaling, one capped version)
is parsed through its TypedDict (`state.py`, strict: no coercion, finite numbers, times
that parse) and checked against the config (a rollout's step exists, its versions are
configured). An entry that fails is dropped and named in a `StateReset`; the agent then
rebuilds it from the fleet, as it would for a new application. Agents unknown to this
controller are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError

from controller.agents.base import AgentState
from controller.agents.state import IsoTime, RolloutAppState, VersionScalingState
from controller.config import GovernorConfig

_ROLLOUT = TypeAdapter(RolloutAppState)
_SCALING = TypeAdapter(VersionScalingState)
_TIME = TypeAdapter(IsoTime)


@dataclass(frozen=True)
class StateReset:
    """One part of an agent's saved state that was dropped, and what was wrong with it."""

    agent: str
    entry: str
    """The application or `app/version` the dropped part belonged to, or `*` for all."""
    reason: str


def _problem(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the entry"
    return f"{where}: {first['msg']}"


def _rollout_fits(entry: RolloutAppState, app: str, config: GovernorConfig) -> str | None:
    """Why a parsed rollout entry cannot continue under this config, or None."""
    app_cfg = next((a for a in config.applications if a.name == app), None)
    if app_cfg is None:
        return None  # a removed application: the agent forgets it
    names = {v.name for v in app_cfg.versions}
    for key in ("stable", "candidate"):
        version = entry.get(key)
        if version is not None and version not in names and entry.get("phase") == "canary":
            return f"{key}: {version!r} is not a version of {app}"
    step = entry.get("step_index")
    if entry.get("phase") == "canary" and step is not None and step >= len(app_cfg.rollout.steps):
        return f"step_index: {step} is past the {len(app_cfg.rollout.steps)} rollout steps"
    return None


def _check_rollout(state: Any, config: GovernorConfig) -> tuple[AgentState, list[StateReset]]:
    apps = state.get("apps") if isinstance(state, dict) else None
    if not isinstance(apps, dict):
        return {}, [StateReset("rollout", "*", "apps: not a mapping of applications")]
    kept: dict[str, Any] = {}
    resets: list[StateReset] = []
    for app, entry in apps.items():
        try:
            parsed = _ROLLOUT.validate_python(entry)
        except ValidationError as err:
            resets.append(StateReset("rollout", str(app), f"apps.{app}.{_problem(err)}"))
            continue
        unfit = _rollout_fits(parsed, str(app), config)
        if unfit is not None:
            resets.append(StateReset("rollout", str(app), f"apps.{app}.{unfit}"))
            continue
        kept[str(app)] = parsed
    return {"apps": kept}, resets


def _check_scaling(state: Any, config: GovernorConfig) -> tuple[AgentState, list[StateReset]]:
    versions = state.get("versions") if isinstance(state, dict) else None
    if not isinstance(versions, dict):
        return {}, [StateReset("scaling", "*", "versions: not a mapping of versions")]
    kept: dict[str, Any] = {}
    resets: list[StateReset] = []
    for key, entry in versions.items():
        try:
            kept[str(key)] = _SCALING.validate_python(entry)
        except ValidationError as err:
            resets.append(StateReset("scaling", str(key), f"versions.{key}.{_problem(err)}"))
    return {"versions": kept}, resets


def _check_budget(state: Any, config: GovernorConfig) -> tuple[AgentState, list[StateReset]]:
    capped = state.get("capped_since") if isinstance(state, dict) else None
    if not isinstance(capped, dict):
        return {}, [StateReset("budget", "*", "capped_since: not a mapping of versions")]
    kept: dict[str, Any] = {}
    resets: list[StateReset] = []
    for key, since in capped.items():
        try:
            kept[str(key)] = _TIME.validate_python(since)
        except ValidationError as err:
            resets.append(StateReset("budget", str(key), f"capped_since.{key}: {_problem(err)}"))
    return {"capped_since": kept}, resets


Checker = Callable[[Any, GovernorConfig], tuple[AgentState, list[StateReset]]]
CHECKERS: dict[str, Checker] = {
    "rollout": _check_rollout,
    "scaling": _check_scaling,
    "budget": _check_budget,
}


def check_states(
    saved: Mapping[str, Any], config: GovernorConfig
) -> tuple[dict[str, AgentState], tuple[StateReset, ...]]:
    """The saved agent states that parse and fit the config, and every part dropped."""
    states: dict[str, AgentState] = {}
    resets: list[StateReset] = []
    for agent, state in saved.items():
        checker = CHECKERS.get(agent)
        if checker is None:
            if isinstance(state, dict):
                states[agent] = cast(AgentState, state)
            else:
                resets.append(StateReset(agent, "*", "not a mapping"))
            continue
        kept, dropped = checker(state, config)
        states[agent] = kept
        resets += dropped
    return states, tuple(resets)
