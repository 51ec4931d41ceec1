"""The daemon's configuration: a pydantic model read from YAML.

A bad file is refused as a whole with the path of each bad field and the reason;
nothing is applied from it.
"""

from __future__ import annotations

import gc
import glob
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from controller.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SLO(_Strict):
    """Service-level objective of one application."""

    latency_p95_ms: float = Field(gt=0, description="p95 end-to-end latency target")
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    target_attainment: float = Field(default=0.99, gt=0, le=1)
    ttft_p95_ms: float | None = Field(default=None, gt=0)
    """Generation: p95 time-to-first-token target (None: no target)."""
    tpot_p95_ms: float | None = Field(default=None, gt=0)
    """Generation: p95 time-per-output-token target (None: no target)."""


class VersionConfig(_Strict):
    """One model version: its Serve deployment and replica bounds."""

    name: str = Field(min_length=1)
    deployment: str = Field(min_length=1)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=4, ge=1)
    initial_replicas: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> VersionConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        return self


class WorkModel(_Strict):
    """Replica-seconds one request costs at a replica's capacity within the SLO.

    Work per request = per_request_s + per_prompt_token_s x prompt tokens +
    per_output_token_s x output tokens; one replica does 1.0 replica-second of work per
    second at the load where it just meets the SLO. Written by `governor calibrate`.
    """

    per_request_s: float = Field(ge=0)
    per_prompt_token_s: float = Field(default=0, ge=0)
    per_output_token_s: float = Field(default=0, ge=0)
    reference_prompt_tokens: float = Field(default=0, ge=0)
    """Tokens of a typical request of the calibration: costs requests when token rates are
    not observed."""
    reference_output_tokens: float = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _some_cost(self) -> WorkModel:
        if self.reference_cost_s <= 0:
            raise ValueError("a request of the reference mix must cost some work (all zero)")
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

    target_utilization: float = Field(default=0.7, gt=0, le=1)
    """Fraction of a replica's capacity to plan for."""
    calibration: str | None = None
    """A `governor calibrate` file (relative to this config's folder): sets `work`."""
    work: WorkModel | None = None
    """What a request costs a replica: demand in work units carries across token mixes."""
    in_flight_per_replica: float | None = Field(default=None, gt=0)
    """Requests one replica holds at its capacity (from the calibration): sizes backlogs."""
    capacity_rps_per_replica: float | None = Field(default=None, gt=0)
    """Optional seed without a calibration: every request costs 1/this replica-seconds."""
    capacity_half_life_s: float = Field(default=1800, gt=0)
    """A learned capacity moves half way back to the calibrated one in this time."""
    burst_memory_s: float = Field(default=3600, gt=0)
    """How long observed demand (its rises and lulls) informs head-room and keep-warm."""
    forecast_window_s: float = Field(default=60, gt=0)
    upscale_delay_s: float = Field(default=0, ge=0)
    downscale_delay_s: float = Field(default=60, ge=0)
    max_upscale_step: int = Field(default=4, ge=1)
    max_downscale_step: int = Field(default=1, ge=1)
    hysteresis: float = Field(default=0.1, ge=0, lt=1)
    """Relative band around the current count inside which no change is proposed."""
    default_startup_s: float = Field(default=30, ge=0)
    scale_to_zero: bool = False
    idle_before_zero_s: float = Field(default=300, ge=0)

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

    steps: list[int] = Field(default_factory=lambda: [5, 25, 50, 100])
    step_min_duration_s: float = Field(default=30, ge=0)
    min_requests: int = Field(default=50, ge=1)
    """Minimum canary requests at a step before a verdict."""
    max_latency_ratio: float = Field(default=1.2, ge=1)
    """Fail when canary p95 exceeds stable p95 by more than this factor (significantly)."""
    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    deadline_s: float = Field(default=900, gt=0)
    """Abort a rollout that stays inconclusive this long at one step."""
    drain_s: float = Field(default=30, ge=0)
    """After weight 0, wait this long before scaling the old version down."""

    @model_validator(mode="after")
    def _steps(self) -> RolloutConfig:
        if not self.steps:
            raise ValueError("steps must not be empty")
        if any(not 0 < s <= 100 for s in self.steps):
            raise ValueError(f"every step must be in 1..100, got {self.steps}")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError(f"steps must increase strictly, got {self.steps}")
        if self.steps[-1] != 100:
            raise ValueError(f"the last step must be 100, got {self.steps[-1]}")
        return self


class Resources(_Strict):
    """What one replica holds and how it is priced."""

    gpu_type: str = Field(default="cpu", min_length=1)
    """Key into `prices`; `cpu` for CPU replicas."""
    gpus_per_replica: float = Field(default=0, ge=0)
    """GPUs a replica holds (fractional allowed); 0 prices the replica as one unit of gpu_type."""


class AppConfig(_Strict):
    """One Serve application under the daemon's control."""

    name: str = Field(min_length=1)
    team: str = "default"
    priority: int = Field(default=0, description="higher keeps its replicas longer")
    router_deployment: str = "router"
    slo: SLO
    versions: list[VersionConfig] = Field(min_length=1)
    stable: str | None = None
    """The version serving traffic now; defaults to the first version."""
    candidate: str | None = None
    """Declaring a candidate starts a canary of it against the stable version."""
    resources: Resources = Field(default_factory=Resources)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    _index: tuple[object, dict[str, VersionConfig]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _versions(self) -> AppConfig:
        names = [v.name for v in self.versions]
        if len(set(names)) != len(names):
            raise ValueError(f"version names repeat: {names}")
        for label, value in (("stable", self.stable), ("candidate", self.candidate)):
            if value is not None and value not in names:
                raise ValueError(f"{label} {value!r} is not one of the versions {names}")
        if self.candidate is not None and self.candidate == self.stable_version:
            raise ValueError(f"candidate {self.candidate!r} is already the stable version")
        return self

    @property
    def stable_version(self) -> str:
        """The configured stable version (first version when not named)."""
        return self.stable or self.versions[0].name

    def version(self, name: str) -> VersionConfig:
        """The config of version `name` (KeyError if none)."""
        index = self.__pydantic_private__["_index"]  # type: ignore[index]
        if index is None or index[0] is not self.versions:
            index = (self.versions, {v.name: v for v in self.versions})
            self._index = index
        return index[1][name]


class TeamBudget(_Strict):
    """A team's spending ceiling."""

    per_hour: float = Field(ge=0, allow_inf_nan=False)
    priority: int = 0


class Budgets(_Strict):
    """Spending ceilings in currency units per hour."""

    total_per_hour: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    teams: dict[str, TeamBudget] = Field(default_factory=dict)


class LocalTarget(_Strict):
    """A local Ray cluster reached through its dashboard."""

    dashboard_url: str = "http://127.0.0.1:8265"
    metrics_urls: list[str] = Field(default_factory=list)
    """Ray metrics exporter endpoints; empty reads Ray's service-discovery file."""
    service_discovery_file: str = "/tmp/ray/prom_metrics_service_discovery.json"
    serve_config: str = "configs/serve.local.yaml"
    """The Serve config the actuator keeps applied (with replicas and weights updated)."""
    request_timeout_s: float = Field(default=10, gt=0)


class KubeRayTarget(_Strict):
    """RayServices on Kubernetes, managed by KubeRay: one, or several shards of the fleet."""

    namespace: str = "default"
    rayservice: str | None = Field(default=None, min_length=1)
    """The one RayService that holds every governed application."""
    rayservices: list[str] = Field(default_factory=list)
    """Several RayServices (shards), each holding some of the applications, by name."""
    rayservice_selector: str | None = Field(default=None, min_length=1)
    """A label selector for the shard RayServices, e.g. `governor.ray.io/fleet=governor`."""
    dashboard_url: str | None = None
    """Head service dashboard, for the scale API; None writes replicas through the config only.
    With several RayServices, `{rayservice}` in it stands for each one's name."""
    kubeconfig: str | None = None
    """Path to a kubeconfig; None uses the in-cluster config, then the default kubeconfig."""
    lease_name: str = "governor-leader"
    lease_duration_s: float = Field(default=15, gt=0)
    renew_period_s: float = Field(default=5, gt=0)
    request_timeout_s: float = Field(default=10, gt=0)
    max_serve_config_bytes: int = Field(default=512 * 1024, gt=0, le=1024 * 1024)
    """The largest serveConfigV2 written to one RayService (etcd refuses objects over 1.5 MiB)."""
    state_configmap: str = Field(
        default="governor-state", max_length=200, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
    )
    """The ConfigMap holding the agents' state; `<name>-<n>` hold the rest as it grows."""
    max_state_bytes: int = Field(default=768 * 1024, gt=0, le=1024 * 1024)
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
            raise ValueError(
                "name the RayServices in exactly one of rayservice, rayservices or "
                f"rayservice_selector (set: {given or 'none'})"
            )
        repeated = sorted(n for n, c in Counter(self.rayservices).items() if c > 1)
        if repeated:
            raise ValueError(f"rayservices repeat: {repeated}")
        several = len(self.rayservices) > 1 or self.rayservice_selector is not None
        if several and self.dashboard_url and "{rayservice}" not in self.dashboard_url:
            raise ValueError(
                "dashboard_url must contain {rayservice} when the fleet spans several "
                "RayServices (each has its own head service)"
            )
        return self


class PrometheusSource(_Strict):
    """Read signals from a Prometheus server through its HTTP query API."""

    url: str = "http://127.0.0.1:9090"
    timeout_s: float = Field(default=5, gt=0)
    rate_window: str = Field(default="1m", pattern=r"^([0-9]+(ms|s|m|h|d|w|y))+$")
    """PromQL range of rates and quantiles; at least four scrape intervals."""
    max_sample_age_s: float = Field(default=60, gt=0)
    app_label: str = "application"
    deployment_label: str = "deployment"
    version_label: str = "version"
    job: str | None = None
    """`job` label of the Ray exporter's series; None matches any job."""
    match_labels: dict[str, str] = Field(default_factory=dict)
    """Extra equality matchers on every series (e.g. a cluster or namespace label)."""
    bearer_token_env: str | None = None
    """Environment variable holding a bearer token for the Prometheus API, if it needs one."""


class MetricsSource(_Strict):
    """Where signals come from: Ray's own endpoints (embedded) or Prometheus."""

    kind: Literal["embedded", "prometheus"] = "embedded"
    prometheus: PrometheusSource = Field(default_factory=PrometheusSource)


class DaemonMetrics(_Strict):
    """The daemon's own /metrics endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(default=9400, ge=0, le=65535)


class GovernorConfig(_Strict):
    """The whole daemon configuration."""

    target: Literal["local", "kuberay"] = "local"
    local: LocalTarget = Field(default_factory=LocalTarget)
    kuberay: KubeRayTarget | None = None
    signals: MetricsSource = Field(default_factory=MetricsSource)
    interval_s: float = Field(default=5, gt=0)
    window_s: float = Field(default=30, gt=0)
    """Observation window for rates and quantiles."""
    dry_run: bool = False
    state_path: str = ".governor/state.json"
    metrics: DaemonMetrics = Field(default_factory=DaemonMetrics)
    prices: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=lambda: {"cpu": 0.0}
    )
    """Price per hour of one unit of each GPU type (`cpu`: one CPU replica)."""
    budgets: Budgets = Field(default_factory=Budgets)
    applications: list[AppConfig] = Field(min_length=1)
    _index: tuple[object, dict[str, AppConfig]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> GovernorConfig:
        if len(self._apps_by_name()) != len(self.applications):
            counts = Counter(a.name for a in self.applications)
            repeated = sorted(name for name, n in counts.items() if n > 1)
            raise ValueError(f"application names repeat: {repeated}")
        for app in self.applications:
            if app.resources.gpu_type not in self.prices:
                raise ValueError(
                    f"application {app.name!r}: gpu_type {app.resources.gpu_type!r} "
                    f"has no price in prices {sorted(self.prices)}"
                )
        if self.target == "kuberay" and self.kuberay is None:
            raise ValueError("target is kuberay but the kuberay section is missing")
        return self

    def app(self, name: str) -> AppConfig:
        """The config of application `name` (KeyError if none)."""
        return self._apps_by_name()[name]

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
    for e in err.errors():
        where, loc = _origin_of(tuple(e["loc"]), source, origins)
        path = ""
        for part in loc:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{where}: {path or '<root>'}: {e['msg']}")
    return "\n".join(lines)


def _origin_of(
    loc: tuple[int | str, ...], source: str, origins: ConfigOrigins | None
) -> tuple[str, tuple[int | str, ...]]:
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
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the document must be a mapping, got {type(data).__name__}")
    try:
        return GovernorConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, origins)) from err


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML was built with it: about ten times faster on large fleets."""


def read_yaml(path: Path, what: str) -> object:
    """The YAML document at `path`, or a ConfigError naming the file and what it was to be.

    A `.json` file is read with the json module: JSON is YAML, and a generated fleet in
    JSON parses in a fraction of the time.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what}: {err.strerror or err}") from err
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as err:
            raise ConfigError(f"{path}: not valid JSON: {err}") from err
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err


def load_config(path: str | Path) -> GovernorConfig:
    """Read and validate the daemon config at `path` (with its includes), or raise ConfigError."""
    p = Path(path)
    with _collector_paused():
        data, origins = read_config_document(p)
        data = with_calibrations(data, p.parent, str(p), origins)
        return parse_config(data, str(p), origins)


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
                        f"{target}: an included config must be a mapping, got {type(doc).__name__}"
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
