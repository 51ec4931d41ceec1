"""Agent state in ConfigMaps, split by application so that it grows with the fleet.

`<name>` (default `governor-state`) holds `state.json`: the schema version, when it was
written, how many partitions there are (P, a power of two), and the state tied to no
application. Partition p of P is `<name>` for p = 0 and `<name>-<p>` otherwise; it holds
one data key per application (`app.<application>`) with that application's slice of every
agent's state. Agents key their per-application entries by the application's name or by
`<application>/<version>`; that convention is all this module knows of their state.

An application's partition is a stable hash of its name modulo P. When a partition would
outgrow `max_bytes`, P doubles and an application moves from partition p only to
p + P_old. New and changed values are written first and stale keys removed afterwards,
so a crash between two writes leaves every application's state somewhere; on load the
copy in the application's own partition wins. Only keys whose value changed are sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.clock import Clock
from controller.errors import ConflictError, GovernorError, PermanentError
from controller.state_store import STATE_SCHEMA_VERSION, PersistedState
from kuberay.client import RayServiceClient
from kuberay.configmaps import ConfigMapClient, ConfigMapData
from kuberay.errors import TooLargeError
from kuberay.shards import RayServiceShards

log = logging.getLogger(__name__)

STATE_KEY = "state.json"
APP_PREFIX = "app."
HASHED_PREFIX = "app-h."
LABELS = {"app.kubernetes.io/part-of": "governor", "app.kubernetes.io/component": "state"}
DEFAULT_MAX_STATE_BYTES = 768 * 1024
"""Under the API server's 1 MiB limit on a ConfigMap's data, with room for values that grow
between a partition's split and the removal of the keys that moved out of it."""
MAX_PARTITIONS = 1024
MAX_CONFLICTS = 5
STATE_ANNOTATION = "governor.ray.io/state"
"""Where state was kept before (on the RayService); read once when no ConfigMap exists."""

AgentStates = dict[str, dict[str, Any]]
_PLAIN_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,200}$")


def _utc_iso8601(value: str) -> str:
    offset = datetime.fromisoformat(value).utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise ValueError(f"saved_at must be UTC ISO-8601, got {value!r}")
    return value


class StateDocument(BaseModel):
    """The schema of the former annotation's value (the PersistedState document)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: int
    saved_at: str
    agents: AgentStates

    @field_validator("saved_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        return _utc_iso8601(value)


class IndexDocument(BaseModel):
    """The schema of `state.json`: state tied to no application, and the partition count."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: int
    saved_at: str
    partitions: int = Field(ge=1, le=MAX_PARTITIONS)
    agents: AgentStates

    @field_validator("saved_at")
    @classmethod
    def _utc(cls, value: str) -> str:
        return _utc_iso8601(value)

    @field_validator("partitions")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"partitions must be a power of two, got {value}")
        return value


class AppDocument(BaseModel):
    """The schema of one application's value: its slice of every agent's state."""

    model_config = ConfigDict(extra="forbid", strict=True)

    app: str
    agents: AgentStates


def _now_iso(clock: Clock) -> str:
    return clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z")


def _compact(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _parse(model: type[BaseModel], value: str, where: str) -> Any:
    try:
        raw = json.loads(value)
    except (ValueError, RecursionError) as err:
        raise PermanentError(f"{where}: the saved state is not JSON: {err}") from err
    if isinstance(raw, dict) and raw.get("schema_version", STATE_SCHEMA_VERSION) != (
        STATE_SCHEMA_VERSION
    ):
        raise PermanentError(
            f"{where}: saved state has schema_version {raw['schema_version']!r}, expected "
            f"{STATE_SCHEMA_VERSION}; remove it to start fresh"
        )
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise PermanentError(f"{where}: the saved state does not match its schema: {err}") from err


def encode_state(agents: AgentStates, clock: Clock) -> str:
    """A PersistedState document for `agents` as compact JSON, time in UTC."""
    doc: PersistedState = {
        "schema_version": STATE_SCHEMA_VERSION,
        "saved_at": _now_iso(clock),
        "agents": agents,
    }
    return _compact(doc)


def decode_state(value: str, where: str) -> PersistedState:
    """Parse and validate a PersistedState document; PermanentError names what is wrong."""
    doc: StateDocument = _parse(StateDocument, value, where)
    return {"schema_version": doc.schema_version, "saved_at": doc.saved_at, "agents": doc.agents}


# -- splitting state by application ---------------------------------------------------------


def owner(key: str, apps: set[str] | frozenset[str]) -> str | None:
    """The application an entry's key belongs to (`app` or `app/...`, longest match), if any."""
    if key in apps:
        return key
    cut = key.rfind("/")
    while cut > 0:
        if key[:cut] in apps:
            return key[:cut]
        cut = key.rfind("/", 0, cut)
    return None


def split_by_app(
    agents: AgentStates, apps: set[str] | frozenset[str]
) -> tuple[AgentStates, dict[str, AgentStates]]:
    """(state tied to no application, each application's slice) of the agents' state."""
    common: AgentStates = {}
    per_app: dict[str, AgentStates] = {}
    for agent, state in agents.items():
        mine: dict[str, Any] = {}
        for fld, value in state.items():
            if not isinstance(value, dict):
                mine[fld] = value
                continue
            rest: dict[str, Any] = {}
            for key, entry in value.items():
                app = owner(key, apps) if isinstance(key, str) else None
                if app is None:
                    rest[key] = entry
                else:
                    slice_ = per_app.setdefault(app, {}).setdefault(agent, {})
                    slice_.setdefault(fld, {})[key] = entry
            # The field stays even when empty, so the state's shape survives a round trip.
            mine[fld] = rest
        common[agent] = mine
    return common, per_app


def join_apps(common: AgentStates, per_app: Iterable[AgentStates]) -> AgentStates:
    """The agents' state from its parts (the inverse of `split_by_app`)."""
    agents: AgentStates = {a: dict(s) for a, s in common.items()}
    for slices in per_app:
        for agent, fields in slices.items():
            state = agents.setdefault(agent, {})
            for fld, entries in fields.items():
                before = state.get(fld)
                target = dict(before) if isinstance(before, dict) else {}
                target.update(entries)
                state[fld] = target
    return agents


def data_key(app: str) -> str:
    """The ConfigMap data key of an application (a hash when its name is not a valid key)."""
    if _PLAIN_KEY.match(app):
        return APP_PREFIX + app
    return HASHED_PREFIX + hashlib.blake2b(app.encode(), digest_size=16).hexdigest()


def app_hash(app: str) -> int:
    """A hash of an application's name that is the same in every process."""
    return int.from_bytes(hashlib.blake2b(app.encode(), digest_size=8).digest(), "big")


def partition_of(app: str, partitions: int) -> int:
    """The partition of an application when there are `partitions` (a power of two)."""
    return app_hash(app) & (partitions - 1)


def _is_app_key(key: str) -> bool:
    return key.startswith(APP_PREFIX) or key.startswith(HASHED_PREFIX)


# -- the former home, on the RayService -----------------------------------------------------


class AnnotationMigration:
    """Reads the state a former version kept in an annotation of a RayService, then removes it."""

    def __init__(
        self,
        client: RayServiceClient,
        shards: RayServiceShards,
        annotation: str = STATE_ANNOTATION,
    ) -> None:
        self.client = client
        self.shards = shards
        self.annotation = annotation
        self.found_on: str | None = None

    def read(self) -> AgentStates | None:
        """The agents' state from the first shard carrying the annotation, if any does."""
        index = self.shards.read()
        if index.unread:
            # Starting fresh would leave the state of a shard we could not see behind.
            raise index.unread[0].error
        for shard in index.shards:
            value = shard.service.annotations.get(self.annotation)
            if value is not None:
                where = f"rayservice {shard.service.namespace}/{shard.name} annotation"
                agents = decode_state(value, f"{where} {self.annotation}")["agents"]
                self.found_on = shard.name
                return agents
        return None

    def clear(self) -> None:
        """Remove the annotation the state was read from (the ConfigMaps now hold it)."""
        if self.found_on is None:
            return
        self.client.patch_annotations(self.found_on, lambda current: {self.annotation: None})
        self.found_on = None


# -- the store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where a state goes: each partition's data, and the partition count."""

    partitions: int
    data: dict[int, dict[str, str]]
    homes: dict[str, int]
    """Data key -> partition, for every application written."""


class ConfigMapStateStore:
    """Loads and saves the agents' state in ConfigMaps; only the leader writes."""

    def __init__(
        self,
        configmaps: ConfigMapClient,
        apps: Iterable[str],
        clock: Clock,
        *,
        name: str = "governor-state",
        max_bytes: int = DEFAULT_MAX_STATE_BYTES,
        may_write: Callable[[], bool] = lambda: True,
        migration: AnnotationMigration | None = None,
    ) -> None:
        self.configmaps = configmaps
        self.apps = frozenset(apps)
        self.clock = clock
        self.name = name
        self.max_bytes = max_bytes
        self.may_write = may_write
        self.migration = migration
        self._partitions = 1
        self._seen: dict[int, ConfigMapData | None] | None = None
        self._migrating = False

    def configmap(self, partition: int) -> str:
        """The name of partition `partition`'s ConfigMap."""
        return self.name if partition == 0 else f"{self.name}-{partition}"

    def _where(self, partition: int, key: str | None = None) -> str:
        what = f"configmap {self.configmaps.namespace}/{self.configmap(partition)}"
        return f"{what} key {key}" if key else what

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> IndexDocument | None:
        """Read every partition into the cache; the index document, if there is one."""
        first = self.configmaps.get(self.name)
        seen: dict[int, ConfigMapData | None] = {0: first}
        index = None
        if first is not None and STATE_KEY in first.data:
            index = _parse(IndexDocument, first.data[STATE_KEY], self._where(0, STATE_KEY))
            for p in range(1, index.partitions):
                seen[p] = self.configmaps.get(self.configmap(p))
        self._seen = seen
        self._partitions = index.partitions if index is not None else 1
        return index

    def load(self) -> AgentStates:
        """Agent states by agent name; empty when nothing was saved yet."""
        index = self._read()
        if index is None:
            legacy = self.migration.read() if self.migration is not None else None
            self._migrating = legacy is not None
            return legacy or {}
        assert self._seen is not None
        found: dict[str, tuple[int, AgentStates]] = {}
        for p, cm in sorted(self._seen.items()):
            for key, value in (cm.data if cm is not None else {}).items():
                if not _is_app_key(key):
                    continue
                doc: AppDocument = _parse(AppDocument, value, self._where(p, key))
                if doc.app in found and p != partition_of(doc.app, index.partitions):
                    continue  # a copy left behind by a move; the app's own partition wins
                found[doc.app] = (p, doc.agents)
        return join_apps(index.agents, (agents for _, agents in found.values()))

    # -- writing ----------------------------------------------------------------------------

    def _layout(self, agents: AgentStates) -> Layout:
        """Each partition's data for `agents`, splitting further until every one fits."""
        common, per_app = split_by_app(agents, self.apps)
        values: list[tuple[str, str, int, int]] = []
        for app, slices in per_app.items():
            key = data_key(app)
            value = _compact({"app": app, "agents": slices})
            size = len(key.encode()) + len(value.encode())
            if size > self.max_bytes:
                raise TooLargeError(
                    f"the state of application {app} is {size} bytes, over the "
                    f"{self.max_bytes}-byte bound on one ConfigMap (kuberay.max_state_bytes); "
                    "nothing was written"
                )
            values.append((key, value, app_hash(app), size))
        index = self._index_text(common)
        index_size = len(STATE_KEY) + len(index.encode())
        if index_size > self.max_bytes:
            raise TooLargeError(
                f"{self._where(0, STATE_KEY)}: the state tied to no application is "
                f"{index_size} bytes, over the {self.max_bytes}-byte bound on one ConfigMap "
                "(kuberay.max_state_bytes); nothing was written"
            )
        partitions = self._partitions
        while True:
            sizes = [0] * partitions
            sizes[0] = index_size
            for _, _, h, size in values:
                sizes[h & (partitions - 1)] += size
            biggest = max(sizes)
            if biggest <= self.max_bytes:
                break
            if partitions * 2 > MAX_PARTITIONS:
                raise TooLargeError(
                    f"the agents' state needs more than {MAX_PARTITIONS} ConfigMaps of "
                    f"{self.max_bytes} bytes (kuberay.max_state_bytes); nothing was written"
                )
            partitions *= 2
        if partitions != self._partitions:
            index = self._index_text(common, partitions)
        data: dict[int, dict[str, str]] = {p: {} for p in range(partitions)}
        homes: dict[str, int] = {}
        data[0][STATE_KEY] = index
        for key, value, h, _ in values:
            p = h & (partitions - 1)
            data[p][key] = value
            homes[key] = p
        return Layout(partitions, data, homes)

    def _index_text(self, common: AgentStates, partitions: int | None = None) -> str:
        """`state.json` for `common`, kept as it is when nothing in it changed."""
        partitions = partitions or self._partitions
        first = (self._seen or {}).get(0)
        current = first.data.get(STATE_KEY) if first is not None else None
        if current is not None:
            try:
                doc = json.loads(current)
            except ValueError:
                doc = None
            if (
                isinstance(doc, dict)
                and doc.get("schema_version") == STATE_SCHEMA_VERSION
                and doc.get("partitions") == partitions
                and doc.get("agents") == common
            ):
                return current
        return _compact(
            {
                "schema_version": STATE_SCHEMA_VERSION,
                "saved_at": _now_iso(self.clock),
                "partitions": partitions,
                "agents": common,
            }
        )

    def save(self, agents: AgentStates) -> None:
        """Persist agent states; a no-op when unchanged or when this daemon may not write."""
        if not self.may_write():
            return
        if self._seen is None:
            try:
                self._read()
            except PermanentError:
                # An unreadable old state is replaced by a valid one.
                self._partitions = 1
        layout = self._layout(agents)
        # New and changed values first, in every partition; then what moved away.
        for p in range(layout.partitions):
            current = self._current(p)
            gone = {
                k
                for k in current
                if _is_app_key(k) and k not in layout.data[p] and k not in layout.homes
            }
            self._apply(p, layout.data[p], gone)
        self._partitions = layout.partitions
        for p in range(layout.partitions):
            moved = {k for k in self._current(p) if _is_app_key(k) and k not in layout.data[p]}
            if moved:
                self._apply(p, {}, moved)
        if self._migrating and self.migration is not None:
            try:
                self.migration.clear()
                self._migrating = False
            except GovernorError as err:
                log.warning("state: the former annotation stays for now: %s", err)

    def _current(self, partition: int) -> dict[str, str]:
        cm = (self._seen or {}).get(partition)
        return cm.data if cm is not None else {}

    def _apply(self, partition: int, sets: dict[str, str], removes: set[str]) -> None:
        """Make one partition carry `sets` and not `removes`, sending only what differs."""
        name = self.configmap(partition)
        seen = self._seen if self._seen is not None else {}
        self._seen = seen
        for _ in range(MAX_CONFLICTS):
            current = seen.get(partition)
            if current is None:
                if not sets:
                    return
                try:
                    seen[partition] = self.configmaps.create(name, dict(sets), LABELS)
                    return
                except ConflictError:
                    seen[partition] = self.configmaps.get(name)
                    continue
            changes: dict[str, str | None] = {
                k: v for k, v in sets.items() if current.data.get(k) != v
            }
            changes.update({k: None for k in removes if k in current.data})
            if not changes:
                return
            try:
                seen[partition] = self.configmaps.patch(name, changes, current.resource_version)
                return
            except ConflictError:
                # Someone wrote since our read (a former leader): diff against what is there.
                seen[partition] = self.configmaps.get(name)
        raise ConflictError(
            f"patch configmaps {self.configmaps.namespace}/{name}: still conflicting after "
            f"{MAX_CONFLICTS} fresh reads",
            self.configmaps.backoff.base_s,
        )
