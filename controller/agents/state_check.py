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


class _UnfitError(ValueError):
    """A parsed entry that cannot continue under this config."""


def _problem(err: ValidationError) -> tuple[tuple[str, ...], str]:
    first = err.errors()[0]
    return tuple(str(p) for p in first["loc"]), first["msg"]


def _entries(
    agent: str, key: str, state: Any, parse: Callable[[str, Any], Any]
) -> tuple[AgentState, list[StateReset]]:
    """Parse each entry of the mapping `state[key]`; drop and name those that fail."""
    entries = state.get(key) if isinstance(state, dict) else None
    if not isinstance(entries, dict):
        return {}, [StateReset(agent, "*", f"{key}: not a mapping")]
    kept: dict[str, Any] = {}
    resets: list[StateReset] = []
    for name, entry in entries.items():
        try:
            kept[str(name)] = parse(str(name), entry)
        except ValidationError as err:
            loc, msg = _problem(err)
            resets.append(StateReset(agent, str(name), f"{'.'.join((key, name, *loc))}: {msg}"))
        except _UnfitError as err:
            resets.append(StateReset(agent, str(name), f"{key}.{name}.{err}"))
    return {key: kept}, resets


def _rollout_fits(entry: RolloutAppState, app: str, config: GovernorConfig) -> str | None:
    """Why a parsed rollout entry cannot continue under this config, or None."""
    try:
        app_cfg = config.app(app)
    except KeyError:
        return None  # a removed application: the agent forgets it
    names = {v.name for v in app_cfg.versions}
    canary = entry.get("phase") == "canary"
    for key in ("stable", "candidate"):
        version = entry.get(key)
        if canary and version is not None and version not in names:
            return f"{key}: {version!r} is not a version of {app}"
    step = entry.get("step_index")
    if canary and step is not None and step >= len(app_cfg.rollout.steps):
        return f"step_index: {step} is past the {len(app_cfg.rollout.steps)} rollout steps"
    return None


def _check_rollout(state: Any, config: GovernorConfig) -> tuple[AgentState, list[StateReset]]:
    def parse(app: str, entry: Any) -> RolloutAppState:
        parsed = _ROLLOUT.validate_python(entry)
        unfit = _rollout_fits(parsed, app, config)
        if unfit is not None:
            raise _UnfitError(unfit)
        return parsed

    return _entries("rollout", "apps", state, parse)


def _check_scaling(state: Any, config: GovernorConfig) -> tuple[AgentState, list[StateReset]]:
    return _entries("scaling", "versions", state, lambda _, e: _SCALING.validate_python(e))


def _check_budget(state: Any, config: GovernorConfig) -> tuple[AgentState, list[StateReset]]:
    return _entries("budget", "capped_since", state, lambda _, e: _TIME.validate_python(e))


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
