"""The release ledger: each release request admitted or refused, and where each release stands.

Pure, like the agents: a function of the snapshot, the saved ledger and the rollout's state
of the last tick, run by `decide` before the agents. It returns the ledger's next state,
what happened to releases (as data, with reasons), and the *effective* config: the
daemon's config file with the released versions added, the retired ones removed, and the
candidate and stable the releases imply. The agents, the actuator and the sources all work
with that config, so a released version is governed exactly like one written in the file.

A release's life: `canary` (admitted: its version is deployed and declared candidate) ->
`promoted`, `rolled-back` or `aborted` (the rollout's verdict) -> the losing version (the
old stable, or the candidate) is retired once the router has sent it nothing for the
rollout's `drain_s`: it leaves the effective config, so the actuator deletes its Serve
application. A refused release is recorded as `refused` and changes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, cast

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from controller.agents.base import AgentState, json_copy
from controller.agents.rollout import FINISHED, rollout_view
from controller.agents.state import IsoTime, seconds_since, to_iso
from controller.config import AppConfig, GovernorConfig, VersionConfig
from controller.releases.admission import Refusal, admit
from controller.releases.request import ReleaseRequest
from controller.snapshot import OperatorCommand, Snapshot

LEDGER = "release"
"""Key of the ledger among the saved agent states."""
RELEASE = "release"
"""The command action that requests a release."""
OUTCOMES = ("admitted", "refused", "promoted", "rolled-back", "aborted", "retired")
"""What a release event says happened (`governor_releases_total{outcome}`)."""
ACTIVE = "canary"
HISTORY_PER_APP = 10
"""Finished releases kept per application (the oldest are forgotten)."""
VERSION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
"""Version names the data plane accepts (serving.spec; the decision core does not import
the data plane, and a test checks that the two agree)."""


def deployment_name(version: str) -> str:
    """The data plane's name of a version's deployment (serving.spec.deployment_name)."""
    return f"model_{version}"


_VERDICTS = {
    "promoted": "promoted",
    "rolling-back": "rolled-back",
    "rolled-back": "rolled-back",
    "aborted": "aborted",
}


class ReleaseRecord(TypedDict):
    """One release as the ledger keeps it."""

    id: str
    app: str
    version: str
    model: str
    actor: str
    requested_at: IsoTime
    meta: dict[str, str]
    scores: dict[str, float]
    status: str
    """canary, promoted, rolled-back, aborted or refused."""
    reason: str
    updated_at: IsoTime
    application: NotRequired[str]
    """The Serve application of the released version (admitted releases)."""
    stable: NotRequired[str]
    """The version that was stable when the release was admitted."""
    min_replicas: NotRequired[int]
    max_replicas: NotRequired[int]
    retire: NotRequired[str]
    """A version to retire once drained: the old stable, or a candidate that lost."""
    drained_since: NotRequired[IsoTime]
    """Since when the router has sent `retire` nothing."""
    retired: NotRequired[str]


class Ledger(TypedDict):
    """The ledger's saved state."""

    releases: list[ReleaseRecord]
    retired: dict[str, list[str]]
    """Per application, the versions retired for good (gone from the effective config)."""


_LEDGER = TypeAdapter(Ledger)


@dataclass(frozen=True)
class ReleaseEvent:
    """Something that happened to a release, for the event log and the counter."""

    app: str
    version: str
    release_id: str
    outcome: str
    """One of OUTCOMES."""
    actor: str
    message: str


@dataclass(frozen=True)
class LedgerStep:
    """The ledger's next state, what happened to releases, and the effective config."""

    ledger: AgentState
    config: GovernorConfig
    events: tuple[ReleaseEvent, ...]


def check_ledger(saved: Any) -> tuple[AgentState, str | None]:
    """The saved ledger if it parses, else an empty one and the reason it was dropped."""
    if not saved:
        return {}, None
    try:
        return cast(AgentState, _LEDGER.validate_python(saved, strict=True)), None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return {}, f"{where}: {first['msg']}"


def releases_of(ledger: Mapping[str, Any], app: str | None = None) -> list[ReleaseRecord]:
    """The ledger's releases (of `app` when given), oldest first."""
    found = cast(list[ReleaseRecord], ledger.get("releases") or [])
    return [r for r in found if app is None or r["app"] == app]


def version_application(app: str, version: str) -> str:
    """The Serve application a release gives its version."""
    return f"{app}-{version}"


def effective_config(base: GovernorConfig, ledger: Mapping[str, Any]) -> GovernorConfig:
    """`base` with the ledger's released versions added and its retired versions removed.

    The same base and ledger give the same config object back (the last one is kept), so
    a tick whose releases did not change hands its source and actuator nothing new.
    """
    records = releases_of(ledger)
    retired = cast(dict[str, list[str]], ledger.get("retired") or {})
    if not records and not retired:
        return base
    # A record's version, model and bounds never change after it is made: its id and
    # status, with the retired versions, say all the effective config depends on.
    key = (
        tuple((r["id"], r["status"]) for r in records),
        tuple((app, tuple(names)) for app, names in sorted(retired.items())),
    )
    last = _last_effective[0]
    if last is not None and last[0] is base and last[1] == key:
        return last[2]
    by_app: dict[str, list[ReleaseRecord]] = {}
    for r in records:
        if r["status"] != "refused":
            by_app.setdefault(r["app"], []).append(r)
    apps = [
        _effective_app(app, by_app.get(app.name, []), set(retired.get(app.name, ())))
        if app.name in by_app or app.name in retired
        else app
        for app in base.applications
    ]
    config = base.model_copy(update={"applications": apps})
    # One tuple swapped whole: a reader in another thread sees the old entry or the new.
    _last_effective[0] = (base, key, config)
    return config


_last_effective: list[tuple[GovernorConfig, object, GovernorConfig] | None] = [None]
"""The last (base, ledger key, effective config), for the daemon's every tick."""


def _effective_app(app: AppConfig, mine: list[ReleaseRecord], retired: set[str]) -> AppConfig:
    versions = [v for v in app.versions if v.name not in retired]
    have = {v.name for v in versions}
    for r in mine:
        if r["version"] not in retired and r["version"] not in have:
            versions.append(_released_version(r))
            have.add(r["version"])
    promoted = [r["version"] for r in mine if r["status"] == "promoted" and r["version"] in have]
    stable = promoted[-1] if promoted else app.stable_version
    if stable not in have:
        stable = versions[0].name
    active = [r["version"] for r in mine if r["status"] == ACTIVE]
    candidate = active[-1] if active else app.candidate
    if candidate not in have or candidate == stable:
        candidate = None
    return app.model_copy(update={"versions": versions, "stable": stable, "candidate": candidate})


def _released_version(r: ReleaseRecord) -> VersionConfig:
    return VersionConfig(
        name=r["version"],
        deployment=deployment_name(r["version"]),
        application=r.get("application") or version_application(r["app"], r["version"]),
        model=r["model"],
        min_replicas=r.get("min_replicas", 1),
        max_replicas=r.get("max_replicas", 4),
        initial_replicas=1,
    )


def step(snapshot: Snapshot, states: Mapping[str, AgentState], base: GovernorConfig) -> LedgerStep:
    """Settle releases from the rollout's verdicts, retire drained versions, admit new ones."""
    requests = [c for c in snapshot.commands if c.action == RELEASE]
    saved = states.get(LEDGER) or {}
    if not saved and not requests:
        return LedgerStep({}, base, ())
    moving = [r for r in releases_of(saved) if r["status"] == ACTIVE or "retire" in r]
    if not requests and not moving:
        # Nothing to settle, retire or admit: the ledger stays as it is.
        return LedgerStep(saved, effective_config(base, saved), ())
    ledger = cast(Ledger, json_copy(saved))
    ledger.setdefault("releases", [])
    ledger.setdefault("retired", {})
    events: list[ReleaseEvent] = []
    now = snapshot.now
    governed = {a.name for a in base.applications}
    config = effective_config(base, ledger)
    for record in ledger["releases"]:
        if record["status"] == ACTIVE and record["app"] in governed:
            _settle(record, config.app(record["app"]), states, now, events)
    config = effective_config(base, ledger)
    for record in ledger["releases"]:
        if "retire" in record and record["app"] in governed:
            _retire(record, config.app(record["app"]), ledger, snapshot, events)
    config = effective_config(base, ledger)
    known = {r["id"] for r in ledger["releases"]}
    for command in requests:
        if command.args.get("id") in known:
            # Read again after a crash between saving the ledger and clearing the inbox:
            # the release is already recorded, and is not decided twice.
            continue
        record = _request(command, config, ledger, states, snapshot, events)
        known.add(record["id"])
        ledger["releases"].append(record)
        config = effective_config(base, ledger)
    ledger["releases"] = _trimmed(ledger["releases"])
    return LedgerStep(cast(AgentState, ledger), config, tuple(events))


def _settle(
    record: ReleaseRecord,
    app: AppConfig,
    states: Mapping[str, AgentState],
    now: datetime,
    events: list[ReleaseEvent],
) -> None:
    """Take the rollout's verdict on an active release, once it has one."""
    view = rollout_view(states, app)
    if view["candidate"] != record["version"] or view["phase"] not in FINISHED:
        return
    outcome = _VERDICTS[view["phase"]]
    record["status"] = outcome
    record["reason"] = str(view["reason"] or view["phase"])
    record["updated_at"] = to_iso(now)
    loser = record.get("stable") if outcome == "promoted" else record["version"]
    if loser:
        record["retire"] = loser
    events.append(_event(record, outcome, f"{record['version']} {outcome}: {record['reason']}"))


def _retire(
    record: ReleaseRecord,
    app: AppConfig,
    ledger: Ledger,
    snapshot: Snapshot,
    events: list[ReleaseEvent],
) -> None:
    """Retire the release's losing version once the router has sent it nothing for drain_s."""
    version = record["retire"]
    names = {v.name for v in app.versions}
    if version not in names or version == app.stable_version:
        record.pop("retire"), record.pop("drained_since", None)
        return
    observed = snapshot.app(app.name)
    weights = observed.weights if observed is not None else None
    if weights is None or weights.get(version, 0) != 0:
        record.pop("drained_since", None)
        return
    since = record.setdefault("drained_since", to_iso(snapshot.now))
    drained = seconds_since(since, snapshot.now) or 0.0
    if drained < app.rollout.drain_s:
        return
    ledger["retired"].setdefault(app.name, []).append(version)
    record["retired"] = version
    record.pop("retire"), record.pop("drained_since", None)
    events.append(
        _event(
            record,
            "retired",
            f"{version} retired after {drained:.0f}s without traffic: its Serve application "
            "is removed",
            version=version,
        )
    )


def _request(
    command: OperatorCommand,
    config: GovernorConfig,
    ledger: Ledger,
    states: Mapping[str, AgentState],
    snapshot: Snapshot,
    events: list[ReleaseEvent],
) -> ReleaseRecord:
    """Admit or refuse one release request; the record says which and why."""
    now = snapshot.now
    try:
        request = ReleaseRequest.from_json(command.args)
    except ValueError as err:
        request = ReleaseRequest(
            id=str(command.args.get("id") or f"invalid-{to_iso(command.issued_at)}"),
            app=command.app,
            version=str(command.args.get("version") or "?"),
            model=str(command.args.get("model") or "?"),
            actor=str(command.args.get("actor") or "?"),
            requested_at=command.issued_at,
        )
        refusals = [Refusal("request", str(err))]
    else:
        refusals = _refusals(request, config, ledger, states, snapshot)
    record: ReleaseRecord = {
        "id": request.id,
        "app": request.app,
        "version": request.version,
        "model": request.model,
        "actor": request.actor,
        "requested_at": to_iso(request.requested_at),
        "meta": dict(request.meta),
        "scores": dict(request.scores),
        "status": "refused" if refusals else ACTIVE,
        "reason": "; ".join(f"{r.rule}: {r.message}" for r in refusals) or "admitted",
        "updated_at": to_iso(now),
    }
    if refusals:
        events.append(
            _event(record, "refused", f"release of {request.version} refused: {record['reason']}")
        )
        return record
    app = config.app(request.app)
    stable = app.version(app.stable_version)
    record["application"] = version_application(app.name, request.version)
    record["stable"] = stable.name
    record["min_replicas"] = stable.min_replicas
    record["max_replicas"] = stable.max_replicas
    events.append(
        _event(
            record,
            "admitted",
            f"release of {request.version} ({request.model}) admitted: canary against "
            f"{stable.name}",
        )
    )
    return record


def _refusals(
    request: ReleaseRequest,
    config: GovernorConfig,
    ledger: Ledger,
    states: Mapping[str, AgentState],
    snapshot: Snapshot,
) -> list[Refusal]:
    """What stands in the way of a release: the fleet's state first, then the policy."""
    names = [a.name for a in config.applications]
    if request.app not in names:
        return [Refusal("application", f"{request.app!r} is not governed here; governed: {names}")]
    app = config.app(request.app)
    if not app.per_version:
        return [
            Refusal(
                "layout",
                f"the versions of {app.name!r} share one Serve application, so adding one "
                "would restart the others; give each version its own (serving.app:"
                "build_version, docs/releases.md)",
            )
        ]
    if not re.match(VERSION_NAME_PATTERN, request.version):
        return [
            Refusal(
                "version", f"version name {request.version!r} must match {VERSION_NAME_PATTERN}"
            )
        ]
    used = {v.name for v in app.versions}
    used |= {r["version"] for r in releases_of(ledger, app.name) if r["status"] != "refused"}
    used |= set(ledger["retired"].get(app.name, ()))
    if request.version in used:
        return [Refusal("version", f"{app.name} already has or had a version {request.version!r}")]
    taken = set(config.serve_apps)
    wanted = version_application(app.name, request.version)
    if wanted in taken:
        return [Refusal("application", f"Serve application {wanted!r} already exists")]
    busy = [r["version"] for r in releases_of(ledger, app.name) if r["status"] == ACTIVE]
    busy += [r["retire"] for r in releases_of(ledger, app.name) if "retire" in r]
    rollout = rollout_view(states, app)
    if rollout["phase"] == "canary":
        busy.append(str(rollout["candidate"]))
    if busy:
        doing = busy[0]
        return [
            Refusal(
                "in-progress",
                f"{app.name} is still releasing {doing}: one release at a time per application",
            )
        ]
    return admit(request, app, config, config.releases, snapshot, snapshot.now)


def _event(
    record: ReleaseRecord, outcome: str, message: str, version: str | None = None
) -> ReleaseEvent:
    return ReleaseEvent(
        app=record["app"],
        version=version or record["version"],
        release_id=record["id"],
        outcome=outcome,
        actor=record["actor"],
        message=message,
    )


def _trimmed(records: list[ReleaseRecord]) -> list[ReleaseRecord]:
    """Every active record, and the latest HISTORY_PER_APP finished ones of each app."""
    kept: list[ReleaseRecord] = []
    finished: dict[str, int] = {}
    for r in reversed(records):
        done = r["status"] != ACTIVE and "retire" not in r
        if done:
            finished[r["app"]] = finished.get(r["app"], 0) + 1
            if finished[r["app"]] > HISTORY_PER_APP:
                continue
        kept.append(r)
    return list(reversed(kept))


def implied_events(ledger: Mapping[str, Any]) -> list[ReleaseEvent]:
    """Every event the ledger's records imply happened, in order, for a restarted daemon to
    compare with its event log: an event lost to a crash between saving and logging is
    logged then, and one already logged is not logged again."""
    out: list[ReleaseEvent] = []
    for r in releases_of(ledger):
        if r["status"] == "refused":
            out.append(_event(r, "refused", f"release of {r['version']} refused: {r['reason']}"))
            continue
        out.append(_event(r, "admitted", f"release of {r['version']} ({r['model']}) admitted"))
        if r["status"] in _VERDICTS.values():
            out.append(_event(r, r["status"], f"{r['version']} {r['status']}: {r['reason']}"))
        if "retired" in r:
            out.append(_event(r, "retired", f"{r['retired']} retired", version=r["retired"]))
    return out
