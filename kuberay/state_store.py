"""Agent state in a namespaced annotation on the RayService, validated against a schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from controller.clock import Clock
from controller.errors import PermanentError
from controller.state_store import STATE_SCHEMA_VERSION, PersistedState
from kuberay.client import RayServiceClient
from kuberay.status import RayService

STATE_ANNOTATION = "governor.ray.io/state"
# The API server refuses more than 256 KiB of annotations per object; keep head-room.
MAX_STATE_BYTES = 200 * 1024


class StateDocument(BaseModel):
    """The schema of the annotation's value (the PersistedState document)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: int
    saved_at: str
    agents: dict[str, dict[str, Any]]

    @field_validator("saved_at")
    @classmethod
    def _utc_iso8601(cls, value: str) -> str:
        offset = datetime.fromisoformat(value).utcoffset()
        if offset is None or offset.total_seconds() != 0:
            raise ValueError(f"saved_at must be UTC ISO-8601, got {value!r}")
        return value


def encode_state(agents: dict[str, dict[str, Any]], clock: Clock) -> str:
    """The annotation value for `agents`: a PersistedState as compact JSON, time in UTC."""
    doc: PersistedState = {
        "schema_version": STATE_SCHEMA_VERSION,
        "saved_at": clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "agents": agents,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def decode_state(value: str, where: str) -> PersistedState:
    """Parse and validate an annotation value; PermanentError names what is wrong."""
    try:
        raw = json.loads(value)
    except ValueError as err:
        raise PermanentError(f"{where}: the saved state is not JSON: {err}") from err
    if isinstance(raw, dict) and raw.get("schema_version") != STATE_SCHEMA_VERSION:
        raise PermanentError(
            f"{where}: saved state has schema_version {raw.get('schema_version')!r}, expected "
            f"{STATE_SCHEMA_VERSION}; remove the annotation to start fresh"
        )
    try:
        doc = StateDocument.model_validate(raw)
    except ValidationError as err:
        raise PermanentError(f"{where}: the saved state does not match its schema: {err}") from err
    return {"schema_version": doc.schema_version, "saved_at": doc.saved_at, "agents": doc.agents}


class AnnotationStateStore:
    """Loads and saves the agents' state in one annotation of one RayService."""

    def __init__(
        self,
        client: RayServiceClient,
        name: str,
        clock: Clock,
        *,
        annotation: str = STATE_ANNOTATION,
        may_write: Callable[[], bool] = lambda: True,
    ) -> None:
        self.client = client
        self.name = name
        self.clock = clock
        self.annotation = annotation
        self.may_write = may_write

    @property
    def _where(self) -> str:
        return f"rayservice {self.client.namespace}/{self.name} annotation {self.annotation}"

    def _agents(self, service: RayService) -> dict[str, dict[str, Any]] | None:
        value = service.annotations.get(self.annotation)
        if value is None:
            return None
        return decode_state(value, self._where)["agents"]

    def load(self) -> dict[str, dict[str, Any]]:
        """Agent states by agent name; empty when nothing was saved yet."""
        return self._agents(self.client.get(self.name)) or {}

    def save(self, agents: dict[str, dict[str, Any]]) -> None:
        """Persist agent states; a no-op when unchanged or when this daemon may not write."""
        if not self.may_write():
            return

        def build(current: RayService) -> dict[str, str | None] | None:
            try:
                if self._agents(current) == agents:
                    return None
            except PermanentError:
                pass  # an unreadable old value is replaced by a valid one
            value = encode_state(agents, self.clock)
            if len(value.encode()) > MAX_STATE_BYTES:
                raise PermanentError(
                    f"{self._where}: the state is {len(value.encode())} bytes, over the "
                    f"{MAX_STATE_BYTES}-byte budget for one annotation"
                )
            return {self.annotation: value}

        self.client.patch_annotations(self.name, build)
