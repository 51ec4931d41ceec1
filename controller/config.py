"""The daemon's configuration: a pydantic model read from YAML.

A bad file is refused as a whole with the path of each bad field and the reason;
nothing is applied from it. Numbers are finite and within what the daemon can act on,
URLs parse, names that must be unique are; `check_state_folder` and `check_serve_config`
check what the daemon will write to and act on before it starts.
"""

from __future__ import annotations

import gc
import glob
import ipaddress
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    model_validator,
)

from controller.config_yaml import FieldPath, field_path, read_yaml
from controller.errors import ConfigError
from controller.releases.policy import ReleasePolicy

MAX_DURATION_S = 366 * 24 * 3600.0
"""The longest duration a field takes, a year: sleeps and date arithmetic overflow beyond."""
MAX_REPLICAS = 100_000
"""The most replicas a bound or a step may name."""

Seconds = Annotated[float, Strict(), Field(gt=0, le=MAX_DURATION_S, allow_inf_nan=False)]
"""A positive, finite duration of at most MAX_DURATION_S."""
Delay = Annotated[float, Strict(), Field(ge=0, le=MAX_DURATION_S, allow_inf_nan=False)]
"""A duration that may be zero."""
Millis = Annotated[float, Strict(), Field(gt=0, le=MAX_DURATION_S * 1000, allow_inf_nan=False)]
"""A positive, finite latency target in milliseconds."""
Share = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
"""A fraction in [0, 1] (an error rate)."""
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
"""A positive, finite number."""
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
"""A finite number of at least zero (a price, a budget, a cost)."""
Replicas = Annotated[int, Strict(), Field(ge=0, le=MAX_REPLICAS)]
"""A count of replicas."""
SomeReplicas = Annotated[int, Strict(), Field(ge=1, le=MAX_REPLICAS)]
"""A count of replicas of at least one."""
Integer = Annotated[int, Strict()]
"""A whole number written as one (not `true`, not `2.0`)."""
Name = Annotated[str, Strict(), Field(min_length=1, pattern=r"^\S(.*\S)?$")]
"""A non-empty name without leading or trailing blanks."""
PathText = Annotated[str, Strict(), Field(min_length=1, pattern=r"^\S(.*\S)?$")]
"""A file path."""
K8sName = Annotated[
    str, Strict(), Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]
"""A Kubernetes object name (DNS-1123 subdomain)."""
LabelName = Annotated[str, Strict(), Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
"""A Prometheus label name."""


class FieldError(ValueError):
    """A problem of one field found by a check across fields: its path and the reason.

    Raised in a model validator, its path is taken relative to the model's own.
    """

    def __init__(self, loc: FieldPath, reason: str) -> None:
        super().__init__(reason)
        self.loc = loc
        self.reason = reason


def _http_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host and a valid port, else ValueError."""
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as err:
        raise ValueError(f"not a URL ({err}): {value!r}") from None
    blank = any(c.isspace() for c in value)
    if parts.scheme not in ("http", "https") or not parts.hostname or blank or not port_ok:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    return value


HttpUrlText = Annotated[str, Strict(), AfterValidator(_http_url)]
"""An http(s) URL with a host, kept as written."""


def _host(value: str) -> str:
    """`value` if it is an IP address or a host name, else ValueError."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        labels = value.split(".")
        if not all(0 < len(x) <= 63 and x.replace("-", "").isalnum() for x in labels):
            raise ValueError(f"must be an IP address or a host name, got {value!r}") from None
    return value


Host = Annotated[str, Strict(), Field(max_length=253), AfterValidator(_host)]
"""An IP address or a host name to listen on."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _repeated(values: Iterable[object]) -> int | None:
    """The index of the first value that repeats an earlier one, None if none does."""
    seen: set[object] = set()
    for i, value in enumerate(values):
        if value in seen:
            return i
        seen.add(value)
    return None


def _repeats(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted."""
    return sorted(v for v, n in Counter(values).items() if n > 1)


class SLO(_Strict):
    """Service-level objective of one application."""

    latency_p95_ms: Millis = Field(description="p95 end-to-end latency target")
    max_error_rate: Share = 0.01
    target_attainment: float = Field(default=0.99, gt=0, le=1, strict=True)
    ttft_p95_ms: Millis | None = None
    """Generation: p95 time-to-first-token target (None: no target)."""
    tpot_p95_ms: Millis | None = None
    """Generation: p95 time-per-output-token target (None: no target)."""


class VersionConfig(_Strict):
    """One model version: its Serve deployment and replica bounds."""

    name: Name
    deployment: Name
    application: Name | None = None
    """The Serve application holding this version's deployment, when each version has its
    own (`serving.app:build_version`); None: the application itself holds it."""
    model: Name | None = None
    """Model source of a version whose Serve application is rendered from another
    version's (a release); None: as the Serve config has it."""
    min_replicas: Replicas = 1
    max_replicas: SomeReplicas = 4
    initial_replicas: SomeReplicas = 1

    @model_validator(mode="after")
    def _bounds(self) -> VersionConfig:
        if self.min_replicas > self.max_replicas:
            raise FieldError(
                ("min_replicas",),
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})",
            )
        return self


class WorkModel(_Strict):
    """Replica-seconds one request costs at a replica's capacity within the SLO.

    Work per request = per_request_s + per_prompt_token_s x prompt tokens +
    per_output_token_s x output tokens; one replica does 1.0 replica-second of work per
    second at the load where it just meets the SLO. Written by `governor calibrate`.
    """

    per_request_s: NonNegative
    per_prompt_token_s: NonNegative = 0
    per_output_token_s: NonNegative = 0
    reference_prompt_tokens: NonNegative = 0
    """Tokens of a typical request of the calibration: costs requests when token rates are
    not observed."""
    reference_output_tokens: NonNegative = 0

    @model_validator(mode="after")
    def _some_cost(self) -> WorkModel:
        if self.reference_cost_s <= 0:
            raise FieldError(
                ("per_request_s",), "a request of the reference mix must cost some work (all zero)"
            )
        return self

    @property
    def reference_cost_s(self) -> float:
        """Work of one request of the reference mix."""
        return (
            self.per_request_s
            + self.per_prompt_token_s * self.reference_prompt_tokens
            + self.per_output_token_s * self.reference_output_tokens
        )


class ScalingConfig(_Strict):
    """How the scaling agent turns demand into replicas."""

    target_utilization: float = Field(default=0.7, gt=0, le=1, strict=True)
    """Fraction of a replica's capacity to plan for."""
    calibration: PathText | None = None
    """A `governor calibrate` file (relative to this config's folder): sets `work`."""
    work: WorkModel | None = None
    """What a request costs a replica: demand in work units carries across token mixes."""
    in_flight_per_replica: Positive | None = None
    """Requests one replica holds at its capacity (from the calibration): sizes backlogs."""
    capacity_rps_per_replica: Positive | None = None
    """Optional seed without a calibration: every request costs 1/this replica-seconds."""
    capacity_half_life_s: Seconds = 1800
    """A learned capacity moves half way back to the calibrated one in this time."""
    burst_memory_s: Seconds = 3600
    """How long observed demand (its rises and lulls) informs head-room and keep-warm."""
    forecast_window_s: Seconds = 60
    upscale_delay_s: Delay = 0
    downscale_delay_s: Delay = 60
    max_upscale_step: SomeReplicas = 4
    max_downscale_step: SomeReplicas = 1
    hysteresis: float = Field(default=0.1, ge=0, lt=1, strict=True)
    """Relative band around the current count inside which no change is proposed."""
    default_startup_s: Delay = 30
    scale_to_zero: bool = Field(default=False, strict=True)
    idle_before_zero_s: Delay = 300

    @property
    def work_model(self) -> WorkModel | None:
        """The calibrated work model, else one where a request costs 1/capacity_rps."""
        if self.work is not None:
            return self.work
        if self.capacity_rps_per_replica is not None:
            return WorkModel(per_request_s=1.0 / self.capacity_rps_per_replica)
        return None


class RolloutConfig(_Strict):
    """Canary steps and the analysis that gates each one."""

    steps: list[Integer] = Field(default_factory=lambda: [5, 25, 50, 100])
    step_min_duration_s: Delay = 30
    min_requests: Integer = Field(default=50, ge=1)
    """Minimum canary requests at a step before a verdict."""
    max_latency_ratio: float = Field(default=1.2, ge=1, allow_inf_nan=False, strict=True)
    """Fail when canary p95 exceeds stable p95 by more than this factor (significantly)."""
    max_error_rate_increase: Share = 0.01
    confidence: float = Field(default=0.95, gt=0.5, lt=1, strict=True)
    deadline_s: Seconds = 900
    """Abort a rollout that stays inconclusive this long at one step."""
    drain_s: Delay = 30
    """After weight 0, wait this long before scaling the old version down."""

    @model_validator(mode="after")
    def _steps(self) -> RolloutConfig:
        if not self.steps:
            raise FieldError(("steps",), "steps must not be empty")
        if any(not 0 < s <= 100 for s in self.steps):
            raise FieldError(("steps",), f"every step must be in 1..100, got {self.steps}")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise FieldError(("steps",), f"steps must increase strictly, got {self.steps}")
        if self.steps[-1] != 100:
            raise FieldError(("steps",), f"the last step must be 100, got {self.steps[-1]}")
        if self.deadline_s <= self.step_min_duration_s:
            raise FieldError(
                ("deadline_s",),
                f"deadline_s ({self.deadline_s:g}) must be longer than step_min_duration_s "
                f"({self.step_min_duration_s:g}): no step could finish before it",
            )
        return self


class Resources(_Strict):
    """What one replica holds and how it is priced."""

    gpu_type: Name = "cpu"
    """Key into `prices`; `cpu` for CPU replicas."""
    gpus_per_replica: NonNegative = 0
    """GPUs a replica holds (fractional allowed); 0 prices the replica as one unit of gpu_type."""


class AppConfig(_Strict):
    """One Serve application under the daemon's control."""

    name: Name
    team: Name = "default"
    priority: Integer = Field(default=0, description="higher keeps its replicas longer")
    router_deployment: Name = "router"
    slo: SLO
    versions: list[VersionConfig] = Field(min_length=1)
    stable: Name | None = None
    """The version serving traffic now; defaults to the first version."""
    candidate: Name | None = None
    """Declaring a candidate starts a canary of it against the stable version."""
    resources: Resources = Field(default_factory=Resources)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    _index: tuple[object, dict[str, VersionConfig]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _versions(self) -> AppConfig:
        names = [v.name for v in self.versions]
        again = _repeated(names)
        if again is not None:
            raise FieldError(("versions", again, "name"), f"version names repeat: {names}")
        deployments = [v.deployment for v in self.versions]
        again = _repeated(deployments)
        if again is not None:
            raise FieldError(
                ("versions", again, "deployment"),
                f"two versions name the deployment {deployments[again]!r}",
            )
        held = [v.application for v in self.versions if v.application is not None]
        if held and len(held) != len(self.versions):
            j = next(j for j, v in enumerate(self.versions) if v.application is None)
            raise FieldError(
                ("versions", j, "application"),
                "either every version names its own Serve application or none does",
            )
        again = _repeated(held)
        if again is None and self.name in held:
            again = held.index(self.name)
        if again is not None:
            raise FieldError(
                ("versions", again, "application"),
                f"Serve application {held[again]!r} would hold two versions, or a version "
                "and the router: each version needs its own",
            )
        if self.router_deployment in deployments:
            raise FieldError(
                ("router_deployment",),
                f"{self.router_deployment!r} is also the deployment of a version",
            )
        for label, value in (("stable", self.stable), ("candidate", self.candidate)):
            if value is not None and value not in names:
                raise FieldError((label,), f"{label} {value!r} is not one of the versions {names}")
        if self.candidate is not None and self.candidate == self.stable_version:
            raise FieldError(
                ("candidate",), f"candidate {self.candidate!r} is already the stable version"
            )
        return self

    @property
    def stable_version(self) -> str:
        """The configured stable version (first version when not named)."""
        return self.stable or self.versions[0].name

    def serve_app(self, version: str) -> str:
        """The Serve application holding the deployment of version `version`."""
        return self.version(version).application or self.name

    @property
    def per_version(self) -> bool:
        """Whether every version lives in a Serve application of its own."""
        return all(v.application is not None for v in self.versions)

    @property
    def serve_apps(self) -> list[str]:
        """Every Serve application this application spans: its own, then its versions'."""
        return [self.name, *(v.application for v in self.versions if v.application)]

    def version(self, name: str) -> VersionConfig:
        """The config of version `name` (KeyError if none)."""
        index = self.__pydantic_private__["_index"]  # type: ignore[index]
        if index is None or index[0] is not self.versions:
            index = (self.versions, {v.name: v for v in self.versions})
            self._index = index
        return index[1][name]


class TeamBudget(_Strict):
    """A team's spending ceiling."""

    per_hour: NonNegative
    priority: Integer = 0


class Budgets(_Strict):
    """Spending ceilings in currency units per hour."""

    total_per_hour: NonNegative | None = None
    teams: dict[Name, TeamBudget] = Field(default_factory=dict)


class LocalTarget(_Strict):
    """A local Ray cluster reached through its dashboard."""

    dashboard_url: HttpUrlText = "http://127.0.0.1:8265"
    metrics_urls: list[HttpUrlText] = Field(default_factory=list)
    """Ray metrics exporter endpoints; empty reads Ray's service-discovery file."""
    service_discovery_file: PathText = "/tmp/ray/prom_metrics_service_discovery.json"
    serve_config: PathText = "configs/serve.local.yaml"
    """The Serve config the actuator keeps applied (with replicas and weights updated)."""
    request_timeout_s: Seconds = 10

    @model_validator(mode="after")
    def _distinct_urls(self) -> LocalTarget:
        again = _repeated(self.metrics_urls)
        if again is not None:
            raise FieldError(
                ("metrics_urls", again), f"{self.metrics_urls[again]!r} is listed twice"
            )
        return self


def _templated_url(value: str) -> str:
    """`value` if it is an http(s) URL with a host once `{rayservice}` in it is a name."""
    _http_url(value.replace("{rayservice}", "rayservice"))
    return value


TemplatedUrl = Annotated[str, Strict(), AfterValidator(_templated_url)]
"""An http(s) URL in which `{rayservice}` stands for a RayService's name."""


class KubeRayTarget(_Strict):
    """RayServices on Kubernetes, managed by KubeRay: one, or several shards of the fleet."""

    namespace: str = Field(
        default="default", max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", strict=True
    )
    rayservice: K8sName | None = None
    """The one RayService that holds every governed application."""
    rayservices: list[K8sName] = Field(default_factory=list)
    """Several RayServices (shards), each holding some of the applications, by name."""
    rayservice_selector: Name | None = None
    """A label selector for the shard RayServices, e.g. `governor.ray.io/fleet=governor`."""
    dashboard_url: TemplatedUrl | None = None
    """Head service dashboard, for the scale API; None writes replicas through the config only.
    With several RayServices, `{rayservice}` in it stands for each one's name."""
    kubeconfig: PathText | None = None
    """Path to a kubeconfig; None uses the in-cluster config, then the default kubeconfig."""
    lease_name: K8sName = "governor-leader"
    lease_duration_s: Seconds = 15
    renew_period_s: Seconds = 5
    request_timeout_s: Seconds = 10
    max_serve_config_bytes: Integer = Field(default=512 * 1024, gt=0, le=1024 * 1024)
    """The largest serveConfigV2 written to one RayService (etcd refuses objects over 1.5 MiB)."""
    state_configmap: str = Field(
        default="governor-state",
        max_length=200,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        strict=True,
    )
    """The ConfigMap holding the agents' state; `<name>-<n>` hold the rest as it grows."""
    commands_configmap: str = Field(
        default="governor-commands",
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        strict=True,
    )
    """The ConfigMap operator commands (`governor release`, `rollout abort`) are written to."""
    max_state_bytes: Integer = Field(default=768 * 1024, gt=0, le=1024 * 1024)
    """The most state data one ConfigMap holds before the state is split further."""

    @model_validator(mode="after")
    def _one_way_to_name_the_fleet(self) -> KubeRayTarget:
        given = [
            f
            for f, v in (
                ("rayservice", self.rayservice),
                ("rayservices", self.rayservices),
                ("rayservice_selector", self.rayservice_selector),
            )
            if v
        ]
        if len(given) != 1:
            raise FieldError(
                (given[-1] if given else "rayservice",),
                "name the RayServices in exactly one of rayservice, rayservices or "
                f"rayservice_selector (set: {given or 'none'})",
            )
        again = _repeated(self.rayservices)
        if again is not None:
            raise FieldError(
                ("rayservices", again), f"rayservices repeat: {_repeats(self.rayservices)}"
            )
        several = len(self.rayservices) > 1 or self.rayservice_selector is not None
        if several and self.dashboard_url and "{rayservice}" not in self.dashboard_url:
            raise FieldError(
                ("dashboard_url",),
                "dashboard_url must contain {rayservice} when the fleet spans several "
                "RayServices (each has its own head service)",
            )
        if self.renew_period_s >= self.lease_duration_s:
            raise FieldError(
                ("renew_period_s",),
                f"renew_period_s ({self.renew_period_s:g}) must be shorter than "
                f"lease_duration_s ({self.lease_duration_s:g}), or the lease lapses between "
                "renewals",
            )
        return self


class PrometheusSource(_Strict):
    """Read signals from a Prometheus server through its HTTP query API."""

    url: HttpUrlText = "http://127.0.0.1:9090"
    timeout_s: Seconds = 5
    rate_window: str = Field(default="1m", pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$", strict=True)
    """PromQL range of rates and quantiles; at least four scrape intervals."""
    max_sample_age_s: Seconds = 60
    app_label: LabelName = "application"
    deployment_label: LabelName = "deployment"
    version_label: LabelName = "version"
    job: Name | None = None
    """`job` label of the Ray exporter's series; None matches any job."""
    match_labels: dict[LabelName, Annotated[str, Strict()]] = Field(default_factory=dict)
    """Extra equality matchers on every series (e.g. a cluster or namespace label)."""
    bearer_token_env: (
        Annotated[str, Strict(), Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None
    ) = None
    """Environment variable holding a bearer token for the Prometheus API, if it needs one."""


class MetricsSource(_Strict):
    """Where signals come from: Ray's own endpoints (embedded) or Prometheus."""

    kind: Literal["embedded", "prometheus"] = "embedded"
    prometheus: PrometheusSource = Field(default_factory=PrometheusSource)


class DaemonMetrics(_Strict):
    """The daemon's own /metrics endpoint."""

    host: Host = "127.0.0.1"
    port: Integer = Field(default=9400, ge=0, le=65535)


def _state_file(value: str) -> str:
    """`value` if it names a file, not a folder."""
    if value.endswith(("/", os.sep)) or Path(value).name in ("", ".", ".."):
        raise ValueError(
            f"names a folder, not a file: {value!r} (e.g. {value.rstrip('/')}/state.json)"
        )
    return value


class GovernorConfig(_Strict):
    """The whole daemon configuration."""

    target: Literal["local", "kuberay"] = "local"
    local: LocalTarget = Field(default_factory=LocalTarget)
    kuberay: KubeRayTarget | None = None
    signals: MetricsSource = Field(default_factory=MetricsSource)
    interval_s: Seconds = 5
    window_s: Seconds = 30
    """Observation window for rates and quantiles."""
    dry_run: bool = Field(default=False, strict=True)
    state_path: Annotated[PathText, AfterValidator(_state_file)] = ".governor/state.json"
    """The agents' state file (local target); events and operator commands go beside it."""
    metrics: DaemonMetrics = Field(default_factory=DaemonMetrics)
    prices: dict[Name, NonNegative] = Field(default_factory=lambda: {"cpu": 0.0})
    """Price per hour of one unit of each GPU type (`cpu`: one CPU replica)."""
    budgets: Budgets = Field(default_factory=Budgets)
    applications: list[AppConfig] = Field(min_length=1)
    releases: ReleasePolicy = Field(default_factory=ReleasePolicy)
    """What a release (`governor release`) must satisfy before anything is deployed."""
    _index: tuple[object, dict[str, AppConfig]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> GovernorConfig:
        if len(self._apps_by_name()) != len(self.applications):
            names = [a.name for a in self.applications]
            raise FieldError(
                ("applications", _repeated(names) or 0, "name"),
                f"application names repeat: {_repeats(names)}",
            )
        for i, app in enumerate(self.applications):
            if app.resources.gpu_type not in self.prices:
                raise FieldError(
                    ("applications", i, "resources", "gpu_type"),
                    f"application {app.name!r}: gpu_type {app.resources.gpu_type!r} "
                    f"has no price in prices {sorted(self.prices)}",
                )
        if self.target == "kuberay" and self.kuberay is None:
            raise FieldError(("kuberay",), "target is kuberay but the kuberay section is missing")
        if self.window_s < self.interval_s:
            raise FieldError(
                ("window_s",),
                f"window_s ({self.window_s:g}) must be at least interval_s ({self.interval_s:g}): "
                "a tick would not see what happened since the last one",
            )
        return self

    def app(self, name: str) -> AppConfig:
        """The config of application `name` (KeyError if none)."""
        return self._apps_by_name()[name]

    @property
    def serve_apps(self) -> list[str]:
        """Every Serve application the governed applications span (routers and versions)."""
        return [name for app in self.applications for name in app.serve_apps]

    def _apps_by_name(self) -> dict[str, AppConfig]:
        # Keyed to the list itself: `model_copy(update=...)` carries private attributes over.
        # Read through `__pydantic_private__`: pydantic's attribute hook is slow per call.
        index = self.__pydantic_private__["_index"]  # type: ignore[index]
        if index is None or index[0] is not self.applications:
            index = (self.applications, {a.name: a for a in self.applications})
            self._index = index
        return index[1]

    def replica_price(self, app: AppConfig) -> float:
        """Cost per hour of one replica of `app`."""
        units = app.resources.gpus_per_replica or 1.0
        return units * self.prices[app.resources.gpu_type]


@dataclass(frozen=True)
class ConfigOrigins:
    """Where the entries of a merged config document were written (see `include:`)."""

    apps: tuple[tuple[str, int], ...]
    """Per application of the merged list: its file and its index in that file."""
    teams: dict[str, str]
    """The file that set each `budgets.teams` entry."""


def format_validation_error(
    err: ValidationError, source: str, origins: ConfigOrigins | None = None
) -> str:
    """One line per bad field: `file: a.b[0].c: reason`, naming the included file it is in."""
    lines = []
    for e in err.errors(include_url=False):
        loc, reason = tuple(e["loc"]), e["msg"]
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            loc, reason = (*loc, *cause.loc), cause.reason
        lines.append(_problem_line(loc, reason, source, origins))
    return "\n".join(lines)


def _problem_line(loc: FieldPath, reason: str, source: str, origins: ConfigOrigins | None) -> str:
    where, loc = _origin_of(loc, source, origins)
    return f"{where}: {field_path(loc)}: {reason}"


def _origin_of(loc: FieldPath, source: str, origins: ConfigOrigins | None) -> tuple[str, FieldPath]:
    """The file a field was written in, and its location in that file."""
    if origins is None or len(loc) < 2:
        return source, loc
    if loc[0] == "applications" and isinstance(loc[1], int) and loc[1] < len(origins.apps):
        file, index = origins.apps[loc[1]]
        return file, ("applications", index, *loc[2:])
    if loc[:2] == ("budgets", "teams") and len(loc) > 2 and str(loc[2]) in origins.teams:
        return origins.teams[str(loc[2])], loc
    return source, loc


def parse_config(
    data: object, source: str = "<config>", origins: ConfigOrigins | None = None
) -> GovernorConfig:
    """Validate a parsed YAML document into a GovernorConfig, or raise ConfigError."""
    if data is None:
        raise ConfigError(f"{source}: <root>: the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: <root>: the document must be a mapping, got {type(data).__name__}"
        )
    try:
        return GovernorConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, origins)) from err


ConfigCheck = Callable[[GovernorConfig, Path], None]
"""A check of a valid config against what it names outside itself (given the config's
path); raises FieldError."""


def load_config(path: str | Path, checks: Sequence[ConfigCheck] = ()) -> GovernorConfig:
    """Read and validate the daemon config at `path` (with its includes), or raise ConfigError.

    `checks` then run in order (`check_state_folder`, `check_serve_config`, ...); the first
    problem one finds is refused like a bad field.
    """
    p = Path(path)
    with _collector_paused():
        data, origins = read_config_document(p)
        data = with_calibrations(data, p.parent, str(p), origins)
        config = parse_config(data, str(p), origins)
        for check in checks:
            try:
                check(config, p)
            except FieldError as err:
                raise ConfigError(_problem_line(err.loc, err.reason, str(p), origins)) from err
    return config


def check_state_path(config: GovernorConfig, config_path: Path) -> None:
    """Raise FieldError if `state_path` names a folder or lies under something not a folder."""
    path = Path(config.state_path)
    if path.is_dir():
        raise FieldError(("state_path",), f"{os.path.abspath(path)} is a folder; name a file in it")
    folder = _nearest_existing(path.parent)
    if not folder.is_dir():
        raise FieldError(("state_path",), f"{os.path.abspath(folder)} is not a folder")


def check_state_folder(config: GovernorConfig, config_path: Path) -> None:
    """Raise FieldError unless the daemon can write its state, events and commands.

    They go in the folder of `state_path` (relative to the working directory), made when
    missing: the nearest folder that exists must take a new file.
    """
    check_state_path(config, config_path)
    path = Path(config.state_path)
    if path.exists() and not os.access(path, os.W_OK):
        raise FieldError(("state_path",), f"{os.path.abspath(path)} is not writable")
    folder = _nearest_existing(path.parent)
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".governor-probe-")
    except OSError as err:
        raise FieldError(
            ("state_path",), f"cannot write in {os.path.abspath(folder)}: {err.strerror or err}"
        ) from None
    os.close(fd)
    os.unlink(probe)


def _nearest_existing(folder: Path) -> Path:
    """`folder`, or the nearest of its parents that exists (`.` and `/` always do)."""
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def check_serve_config(config: GovernorConfig, serve_path: Path) -> None:
    """Raise FieldError unless the Serve config at `serve_path` has every application, every
    version's deployment and every router the config names (local target only)."""
    if config.target != "local":
        return
    try:
        doc = read_yaml(serve_path, "Serve config")
    except ConfigError as err:
        raise FieldError(("local", "serve_config"), str(err)) from None
    apps = doc.get("applications") if isinstance(doc, dict) else None
    if not isinstance(apps, list):
        raise FieldError(
            ("local", "serve_config"),
            f"{serve_path}: a Serve config needs a top-level `applications:` list",
        )
    deployed = _deployments_by_app(apps)
    for i, app in enumerate(config.applications):
        named: list[tuple[FieldPath, str, str]] = [(("name",), app.name, app.router_deployment)]
        named += [
            (("versions", j, "application"), app.serve_app(v.name), v.deployment)
            for j, v in enumerate(app.versions)
        ]
        for loc, serve_app, deployment in named:
            have = deployed.get(serve_app)
            if have is None:
                raise FieldError(
                    ("applications", i, *loc),
                    f"application {serve_app!r} is not in the Serve config {serve_path}",
                )
            if deployment not in have:
                where = ("router_deployment",) if loc == ("name",) else (*loc[:2], "deployment")
                raise FieldError(
                    ("applications", i, *where),
                    f"{deployment!r} is not a deployment of application {serve_app!r} in the "
                    f"Serve config {serve_path} (it has {_some(have)})",
                )


def _deployments_by_app(apps: list[Any]) -> dict[str, set[str]]:
    """The deployment names each application of a Serve config lists, by application."""
    deployed: dict[str, set[str]] = {}
    for app in apps:
        if isinstance(app, dict) and isinstance(app.get("name"), str):
            entries = app.get("deployments")
            names = deployed.setdefault(app["name"], set())
            for d in entries if isinstance(entries, list) else ():
                if isinstance(d, dict) and isinstance(d.get("name"), str):
                    names.add(d["name"])
    return deployed


def _some(names: set[str], most: int = 8) -> str:
    """Up to `most` of `names`, sorted, and how many more."""
    shown = sorted(names)[:most]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return (", ".join(shown) or "none") + more


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block.

    A fleet's config is hundreds of thousands of new containers that all stay alive; the
    collector would walk them again and again while they are built (two thirds of the
    load time at 10,000 applications) and find nothing, since none of it is cyclic garbage.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


INCLUDABLE_KEYS = ("applications", "budgets", "include")
"""What an included file may set (`budgets` only its `teams`)."""


def read_config_document(path: Path) -> tuple[object, ConfigOrigins | None]:
    """The document at `path` with its `include:` files merged in, and where each entry came from.

    `include:` is a path or a list of paths and globs, relative to the including file. An
    included file holds `applications:` and `budgets: {teams: ...}` (and may include
    more); its applications follow the including file's, in include order, globs sorted.
    """
    data = read_yaml(path, "config")
    if not isinstance(data, dict) or "include" not in data:
        return data, None
    return _Includes(path).merge(data)


class _Includes:
    """Merges a config's included files into one document, remembering where entries were."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.applications: list[object] = []
        self.app_origins: list[tuple[str, int]] = []
        self.app_defined: dict[str, str] = {}
        self.teams: dict[str, object] = {}
        self.team_files: dict[str, str] = {}
        self.included_by: dict[Path, Path] = {}

    def merge(self, data: dict[str, object]) -> tuple[dict[str, object], ConfigOrigins]:
        """The merged document and the origins of its applications and team budgets."""
        doc = {k: v for k, v in data.items() if k != "include"}
        self._take(self.root, doc, top=True)
        self._include(self.root, data["include"], [self.root.resolve()])
        doc["applications"] = self.applications
        if self.teams:
            budgets = doc.get("budgets")
            budgets = dict(budgets) if isinstance(budgets, dict) else {}
            budgets["teams"] = self.teams
            doc["budgets"] = budgets
        return doc, ConfigOrigins(tuple(self.app_origins), dict(self.team_files))

    def _take(self, file: Path, doc: dict[str, object], top: bool) -> None:
        """Collect the applications and team budgets of one file."""
        apps = doc.get("applications", [])
        if not isinstance(apps, list):
            raise ConfigError(f"{file}: applications: must be a list, got {type(apps).__name__}")
        for i, app in enumerate(apps):
            name = app.get("name") if isinstance(app, dict) else None
            if isinstance(name, str):
                here = f"{file}: applications[{i}]"
                if name in self.app_defined:
                    raise ConfigError(
                        f"{here}.name: application {name!r} is also defined at "
                        f"{self.app_defined[name]}"
                    )
                self.app_defined[name] = here
            self.applications.append(app)
            self.app_origins.append((str(file), i))
        budgets = doc.get("budgets")
        if budgets is None:
            return
        if not isinstance(budgets, dict) or (not top and set(budgets) - {"teams"}):
            raise ConfigError(f"{file}: budgets: an included file may set only budgets.teams")
        teams = budgets.get("teams") or {}
        if not isinstance(teams, dict):
            raise ConfigError(f"{file}: budgets.teams: must be a mapping of team to budget")
        for team, budget in teams.items():
            if team in self.team_files:
                raise ConfigError(
                    f"{file}: budgets.teams.{team}: also set in {self.team_files[team]}"
                )
            self.team_files[team] = str(file)
            self.teams[team] = budget

    def _include(self, file: Path, entries: object, chain: list[Path]) -> None:
        """Read and take every file `entries` names, relative to `file`, depth first."""
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise ConfigError(f"{file}: include: must be a path or a list of paths (globs allowed)")
        for entry in entries:
            for target in _expand(file, entry):
                resolved = target.resolve()
                if resolved in chain:
                    cycle = " -> ".join(str(p) for p in [*chain, resolved])
                    raise ConfigError(f"{file}: include: {entry!r} makes a cycle: {cycle}")
                if resolved in self.included_by:
                    raise ConfigError(
                        f"{file}: include: {target} is already included by "
                        f"{self.included_by[resolved]}"
                    )
                self.included_by[resolved] = file
                doc = read_yaml(target, "included config")
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise ConfigError(
                        f"{target}: <root>: an included config must be a mapping, got "
                        f"{type(doc).__name__}"
                    )
                extra = sorted(str(k) for k in doc if k not in INCLUDABLE_KEYS)
                if extra:
                    raise ConfigError(
                        f"{target}: {extra[0]}: an included file may set only applications, "
                        "budgets.teams and include"
                    )
                self._take(target, doc, top=False)
                if "include" in doc:
                    self._include(target, doc["include"], [*chain, resolved])


def _expand(file: Path, entry: str) -> list[Path]:
    """The files one `include:` entry names: a path, or a glob's matches in sorted order."""
    pattern = file.parent / entry
    if glob.has_magic(entry):
        matches = sorted(Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file())
        if not matches:
            raise ConfigError(f"{file}: include: {entry!r} matches no file")
        return matches
    if not pattern.is_file():
        raise ConfigError(f"{file}: include: {pattern} does not exist")
    return [pattern]


def with_calibrations(
    data: object, folder: Path, source: str, origins: ConfigOrigins | None = None
) -> object:
    """The document with each app's `scaling.calibration` file read into `scaling.work`.

    A path is relative to the folder of the file the application is written in; each
    calibration file is read once, however many applications name it.
    """
    if not isinstance(data, dict) or not isinstance(data.get("applications"), list):
        return data
    apps = []
    read: dict[Path, object] = {}
    for n, app in enumerate(data["applications"]):
        scaling = app.get("scaling") if isinstance(app, dict) else None
        ref = scaling.get("calibration") if isinstance(scaling, dict) else None
        if isinstance(ref, str) and isinstance(app, dict) and isinstance(scaling, dict):
            file, i = origins.apps[n] if origins is not None else (source, n)
            base = Path(file).parent if origins is not None else folder
            where = f"{file}: applications[{i}].scaling.calibration"
            calibrated = read_calibration(base / ref, where, app.get("slo"), read)
            # A field set in the config wins over the calibration; a null one is unset.
            scaling = {**calibrated, **{k: v for k, v in scaling.items() if v is not None}}
            app = {**app, "scaling": scaling}
        apps.append(app)
    return {**data, "applications": apps}


_CALIBRATED_SLO = {
    "latency_ms": "latency_p95_ms",
    "ttft_ms": "ttft_p95_ms",
    "tpot_ms": "tpot_p95_ms",
    "target_attainment": "target_attainment",
}
"""A calibration's SLO keys and the application SLO fields they must equal."""


def _slo_mismatch(measured: object, slo: object) -> str | None:
    """Which SLO target the calibration was measured under differs from the app's, if any."""
    if not isinstance(measured, dict) or not isinstance(slo, dict):
        return None
    for key, field in _CALIBRATED_SLO.items():
        value = measured.get(key)
        mine = slo.get(field, SLO.model_fields[field].default)
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (value, mine))
        if numbers and float(value) != float(mine):  # type: ignore[arg-type]
            return f"it was measured for slo.{field} {value}, the application's is {mine}"
    return None


def read_calibration(
    path: Path, where: str, slo: object = None, read: dict[Path, object] | None = None
) -> dict[str, object]:
    """The scaling fields a calibration file sets (`work`, `in_flight_per_replica`).

    A capacity holds for the SLO it was measured under only: a calibration made for other
    targets is refused. `read` keeps the documents already read, by path.
    """
    if read is not None and path in read:
        doc = read[path]
    else:
        try:
            doc = read_yaml(path, "calibration")
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from err
        if read is not None:
            read[path] = doc
    if not isinstance(doc, dict) or not isinstance(doc.get("work"), dict):
        raise ConfigError(
            f"{where}: {path} has no `work` mapping (write it with governor calibrate)"
        )
    mismatch = _slo_mismatch(doc.get("slo"), slo)
    if mismatch is not None:
        raise ConfigError(
            f"{where}: {path} does not fit this application: {mismatch} "
            "(run governor calibrate again)"
        )
    fields: dict[str, object] = {"work": doc["work"]}
    if doc.get("in_flight_per_replica") is not None:
        fields["in_flight_per_replica"] = doc["in_flight_per_replica"]
    return fields
