"""Schemas of the application builder's `args` and of the deployments' `user_config`.

Everything that enters from a Serve config file is checked here, and a failure names
the field (`args.versions.1.model: Field required`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from serving.errors import ArgsError

Task = Literal["embeddings", "generation"]
Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "float16", "bfloat16"]

VERSION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"


class VersionSpec(BaseModel):
    """One model version: where its weights come from and how to place them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=VERSION_NAME_PATTERN)
    model: str = Field(min_length=1)
    device: Device = "auto"
    dtype: DType = "auto"
    torch_threads: int | None = Field(default=None, ge=1, le=256)
    max_input_tokens: int | None = Field(default=None, ge=8)
    allow_download: bool = False

    @property
    def deployment_name(self) -> str:
        """Name of this version's Serve deployment."""
        return deployment_name(self.name)


def deployment_name(version: str) -> str:
    """Name of the Serve deployment of version `version`, in whichever application holds it."""
    return f"model_{version}"


class RouterArgs(BaseModel):
    """The `args:` of a router application (`serving.app:build_router`).

    Its versions live in separate applications (`serving.app:build_version`), named in
    the router's `user_config.versions`: adding or retiring one restarts no other.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task
    model_name: str = Field(min_length=1, max_length=128, pattern=r"^[^\s:]+$")
    max_inputs: int = Field(default=64, ge=1, le=4096)
    max_input_chars: int = Field(default=8192, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_tokens_limit: int = Field(default=256, ge=1)
    default_max_tokens: int = Field(default=16, ge=1)
    max_queue_wait_ms: float | None = Field(default=None, gt=0, le=600_000, allow_inf_nan=False)
    """When set, a request not started within this time of reaching the router is shed
    (503), not served late: answered latency stays within it plus one batch. Off by
    default: a shed request is in no version's latency, so a slow canary would be shed
    rather than judged (docs/reliability.md, "Load shedding")."""

    latency_target_ms: float | None = Field(default=None, gt=0, le=600_000, allow_inf_nan=False)
    """When set, the router keeps each version's requests in flight at the number it
    answers within this latency, adapting the limit from the latencies it measures, and
    sheds (503) what is beyond it (serving/admission.py). Set it to the latency SLO."""

    @model_validator(mode="after")
    def _limits(self) -> RouterArgs:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("default_max_tokens must not exceed max_tokens_limit")
        return self


class AppArgs(RouterArgs):
    """The `args:` of one application holding its router and every version (`build_app`).

    Changing `args` changes the application's code version, so Serve restarts every
    replica of it: adding a version here restarts the others (see RouterArgs).
    """

    versions: list[VersionSpec] = Field(min_length=1)
    weights: dict[str, StrictInt] | None = None

    @field_validator("versions")
    @classmethod
    def _unique_names(cls, versions: list[VersionSpec]) -> list[VersionSpec]:
        names = [v.name for v in versions]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"version names must be unique; repeated: {duplicated}")
        return versions

    @model_validator(mode="after")
    def _weights(self) -> AppArgs:
        if self.weights is not None:
            check_weights(self.weights, self.version_names)
        return self

    @property
    def version_names(self) -> list[str]:
        """Names of the versions, in the order they are listed."""
        return [v.name for v in self.versions]

    def initial_weights(self) -> dict[str, int]:
        """Weights a router starts with when its user_config gives none."""
        if self.weights is not None:
            return {name: self.weights.get(name, 0) for name in self.version_names}
        first = self.version_names[0]
        return {name: 100 if name == first else 0 for name in self.version_names}


class VersionAppArgs(BaseModel):
    """The `args:` of an application holding one version (`serving.app:build_version`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Task
    model_name: str = Field(min_length=1, max_length=128, pattern=r"^[^\s:]+$")
    version: VersionSpec


class ModelUserConfig(BaseModel):
    """The live-tunable `user_config` of a model deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_batch_size: int = Field(default=16, ge=1, le=1024)
    batch_wait_timeout_s: float = Field(default=0.01, ge=0.0, le=10.0)
    stream_interval_s: float = Field(default=0.0, ge=0.0, le=1.0)
    """Generation: a stream's tokens decoded within this long go out as one event (the
    first at once); 0 sends every step's tokens. Each event costs every hop a message."""


RETRY_AFTER_S = 1.0
"""Retry-After of a shed request: the smallest delay the header carries (whole seconds).
A version's queue holds about three batch times of work (`version_queue_bounds`), so by
then it has turned over."""


def version_queue_bounds(max_batch_size: int) -> dict[str, Any]:
    """Serve options that bound the queue in front of a version batching `max_batch_size`.

    A replica holds two batches (`max_ongoing_requests`): the one it computes and the
    next, already in its mailbox so that it starts the moment the first ends. Serve's
    router refills a full replica only by polling it, with a back-off that grows to half a
    second, so a replica holding one batch would idle between batches. Each router may
    queue one batch more for the version (`max_queued_requests`): what arrives during one
    batch time at full load. A request beyond that would wait longer than the batches
    ahead of it take to run: it is shed at once with 503 and Retry-After instead.
    """
    return {
        "max_ongoing_requests": 2 * max_batch_size,
        "max_queued_requests": max_batch_size,
        "backpressure_config": {"retry_after_s": RETRY_AFTER_S},
    }


def router_queue_bounds(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """Serve options of a router in front of version deployments with these options.

    The router admits what its versions hold (at one replica each), so overload is shed
    per version, where it is counted against that version, and little more: admitted
    requests wait for the router's own CPU. As many may wait at the proxy for a router
    slot: Serve's proxy assigns requests to a router one by one, so a burst the router
    holds arrives there through that queue (a smaller bound refused part of a burst of
    48 at an idle router). Overload is refused before that queue by the proxy's
    admission, where the application sets a latency target (serving/proxy_admission.py).
    """
    held = sum(v["max_ongoing_requests"] + v["max_queued_requests"] for v in versions)
    return {
        "max_ongoing_requests": held,
        "max_queued_requests": held,
        "backpressure_config": {"retry_after_s": RETRY_AFTER_S},
    }


class RouterUserConfig(BaseModel):
    """The live-tunable `user_config` of the router: its versions and their weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, StrictInt]
    versions: dict[str, str] | None = None
    """Router applications only: version -> the Serve application holding its deployment."""

    @field_validator("versions")
    @classmethod
    def _names(cls, versions: dict[str, str] | None) -> dict[str, str] | None:
        if versions is not None:
            if not versions:
                raise ValueError("must name at least one version")
            for name, app in versions.items():
                if not re.match(VERSION_NAME_PATTERN, name):
                    raise ValueError(f"version name {name!r} must match {VERSION_NAME_PATTERN}")
                if not app.strip():
                    raise ValueError(f"application of version {name!r} must not be empty")
        return versions


@dataclass(frozen=True)
class RouterTable:
    """The versions a router sends to, where each lives, and their traffic weights."""

    weights: dict[str, int]
    applications: dict[str, str | None]
    """Version -> its Serve application; None for a version bound in the router's own."""

    @property
    def names(self) -> list[str]:
        """The version names, in table order."""
        return list(self.applications)


def check_weights(weights: dict[str, int], versions: list[str]) -> dict[str, int]:
    """Validate weights against the known versions; return them with every version present."""
    unknown = sorted(set(weights) - set(versions))
    if unknown:
        raise ValueError(f"weights name unknown versions {unknown}; known: {versions}")
    for name, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise ValueError(f"weight of {name!r} must be an integer, got {weight!r}")
        if not 0 <= weight <= 100:
            raise ValueError(f"weight of {name!r} must be within 0..100, got {weight}")
    total = sum(weights.values())
    if total != 100:
        raise ValueError(f"weights must sum to 100, got {total} ({weights})")
    return {name: weights.get(name, 0) for name in versions}


Schema = TypeVar("Schema", bound=BaseModel)


def parse(schema: type[Schema], data: Any, where: str) -> Schema:
    """Validate `data` against `schema`, raising ArgsError that names each bad field."""
    if data is None:
        data = {}
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ArgsError(describe(exc, where)) from exc


def describe(exc: ValidationError, where: str) -> str:
    """One line per problem: `where.path.to.field: reason`."""
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in (where, *error["loc"]))
        lines.append(f"{path}: {error['msg']}")
    return "; ".join(lines)


def parse_router_config(data: Any, bound: list[str]) -> RouterTable:
    """Validate a router user_config against the versions bound in its application.

    A router with bound versions (`build_app`) takes weights only; a router application
    (`build_router`) binds none and takes its version table from `versions`.
    """
    config = parse(RouterUserConfig, data, "user_config")
    if config.versions is not None and bound:
        raise ArgsError(
            "user_config.versions: this router's versions are bound in its application's "
            f"args ({bound}); a version table is for router applications (build_router)"
        )
    if config.versions is None and not bound:
        raise ArgsError(
            "user_config.versions: Field required (a router application names the Serve "
            "application of each version)"
        )
    applications: dict[str, str | None] = (
        dict(config.versions) if config.versions is not None else dict.fromkeys(bound)
    )
    try:
        weights = check_weights(config.weights, list(applications))
    except ValueError as exc:
        raise ArgsError(f"user_config.weights: {exc}") from exc
    return RouterTable(weights, applications)
