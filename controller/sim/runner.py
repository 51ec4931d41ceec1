"""Runs the compared policies on one trace and scores them the same way."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from controller.config import AppConfig, GovernorConfig
from controller.sim.capacity import (
    fewest_replicas,
    in_flight_at,
    replica_capacity,
    static_attainment,
)
from controller.sim.engine import Progress, SimResult, SimSettings, simulate
from controller.sim.errors import SimInputError
from controller.sim.metrics import Pricing, summarize
from controller.sim.policies.base import Policy
from controller.sim.policies.governor import GovernorPolicy
from controller.sim.policies.hpa import HpaPolicy
from controller.sim.policies.ray_default import RayDefaultPolicy
from controller.sim.profile import Profile
from controller.sim.slo import RequestSlo, check_feasible, request_slo
from controller.sim.trace import Trace

POLICIES = ("governor", "ray-default", "hpa", "static-peak")
PEAK_WINDOW_S = 60.0
"""static-peak must meet the SLO's target attainment in every window of this length."""

Say = Callable[[str], None]


@dataclass(frozen=True)
class Scenario:
    """One application, its config and profile, and the trace it is simulated on."""

    config: GovernorConfig
    app: AppConfig
    profile: Profile
    trace: Trace
    settings: SimSettings = field(default_factory=SimSettings)
    mix: Trace | None = None
    """Requests whose token counts the load tests draw from (default: the trace)."""
    hpa_target: float | None = None
    """HPA's target in-flight requests per pod; None measures it (see `hpa_target`)."""

    @property
    def slo(self) -> RequestSlo:
        """Per-request SLO thresholds."""
        return request_slo(self.app, self.profile)

    @property
    def pricing(self) -> Pricing:
        """GPU units and price of one replica."""
        units = self.app.resources.gpus_per_replica or 1.0
        return Pricing(units, self.config.replica_price(self.app))


@dataclass(frozen=True)
class PolicyRun:
    """One policy's run, its summary and anything learned while setting it up."""

    name: str
    result: SimResult
    summary: dict[str, float | int | None]
    setup: dict[str, object] = field(default_factory=dict)


def scenario(
    config: GovernorConfig,
    profile: Profile,
    trace: Trace,
    app_name: str | None = None,
    settings: SimSettings | None = None,
    hpa_target: float | None = None,
    mix: Trace | None = None,
) -> Scenario:
    """Check that the inputs describe a feasible fleet and bundle them."""
    app = find_app(config, app_name)
    if profile.gpu_type is not None and profile.gpu_type != app.resources.gpu_type:
        raise SimInputError(
            f"profile {profile.name!r} is for gpu_type {profile.gpu_type!r} but application "
            f"{app.name!r} runs on {app.resources.gpu_type!r}"
        )
    prompt = int(sorted(trace.prompt_tokens.tolist())[len(trace) // 2])
    output = int(sorted(trace.output_tokens.tolist())[len(trace) // 2])
    check_feasible(app, profile, prompt, output)
    base = settings or SimSettings()
    base = replace(base, pipeline=replace(base.pipeline, window_s=config.window_s))
    return Scenario(
        config=config,
        app=app,
        profile=profile,
        trace=trace,
        settings=base,
        mix=mix,
        hpa_target=hpa_target,
    )


def find_app(config: GovernorConfig, name: str | None) -> AppConfig:
    """The application called `name` (the first one when None), or SimInputError."""
    if name is None:
        return config.applications[0]
    try:
        return config.app(name)
    except KeyError:
        names = [a.name for a in config.applications]
        raise SimInputError(f"no application {name!r} in the config; it has {names}") from None


def hpa_target(s: Scenario) -> tuple[float, dict[str, object]]:
    """HPA's target in-flight requests per pod, from the same calibration the governor has.

    The app's calibration (`governor calibrate`) measured the requests one replica holds at
    the configured target utilization; without one, a load test of one replica on the
    trace's own mix stands in (information the governor does not get).
    """
    if s.hpa_target is not None:
        return s.hpa_target, {"hpa_target_in_flight": s.hpa_target, "hpa_target_from": "given"}
    calibrated = s.app.scaling.in_flight_per_replica
    if calibrated is not None:
        return calibrated, {
            "hpa_target_in_flight": calibrated,
            "hpa_target_from": "the app's calibration: requests one replica holds at "
            f"{s.app.scaling.target_utilization:.0%} of its capacity",
        }
    mix = s.mix or s.trace
    capacity = replica_capacity(s.profile, s.app, mix)
    rate = capacity * s.app.scaling.target_utilization
    target = in_flight_at(s.profile, s.app, rate, mix)
    return target, {
        "hpa_target_in_flight": target,
        "hpa_target_from": f"load test: one replica at {s.app.scaling.target_utilization:.0%} "
        f"of its measured capacity {capacity:.2f} req/s on the trace's mix",
        "replica_capacity_rps": capacity,
    }


def static_peak(s: Scenario, say: Say | None = None) -> tuple[int, SimResult, dict[str, object]]:
    """The fewest fixed replicas meeting the target attainment in every peak-length window."""
    began = time.perf_counter()
    target = s.slo.target_attainment
    upper = s.app.version(s.app.stable_version).max_replicas
    tried: dict[int, tuple[float, float, SimResult]] = {}

    def ok(n: int) -> bool:
        if n not in tried:
            tried[n] = static_attainment(s.trace, s.profile, s.app, n, s.settings, PEAK_WINDOW_S)
            if say:
                say(
                    f"static-peak search: {n} replicas -> worst {PEAK_WINDOW_S:.0f}s window "
                    f"{tried[n][1]:.4f} (target {target})"
                )
        return tried[n][1] >= target

    n = fewest_replicas(ok, upper)
    setup: dict[str, object] = {
        "search": {
            str(k): {"attainment": v[0], "worst_window_attainment": v[1]}
            for k, v in sorted(tried.items())
        },
        "peak_window_s": PEAK_WINDOW_S,
    }
    if n is None:
        n = upper
        setup["note"] = f"the SLO is not met at the peak even with max_replicas={upper}"
    setup["replicas"] = n
    setup["search_wall_s"] = time.perf_counter() - began
    return n, tried[n][2], setup


def make_policy(name: str, s: Scenario) -> tuple[Policy, dict[str, object]]:
    """The policy called `name`, set up for this scenario (static-peak excepted)."""
    if name == "governor":
        return GovernorPolicy(s.config), {}
    if name == "ray-default":
        policy = RayDefaultPolicy.for_app(s.app)
        return policy, {
            "autoscaling_config": "AutoscalingConfig defaults; min/max replicas "
            f"{policy.min_replicas}/{policy.max_replicas} from the config"
        }
    if name == "hpa":
        target, setup = hpa_target(s)
        return HpaPolicy.for_app(s.app, target), setup
    raise SimInputError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")


def run_policies(
    s: Scenario,
    names: Sequence[str],
    say: Say | None = None,
    progress: Callable[[str], Progress] | None = None,
) -> dict[str, PolicyRun]:
    """Run each named policy over the scenario's trace."""
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise SimInputError(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICIES)}")
    runs: dict[str, PolicyRun] = {}
    for name in names:
        if name == "static-peak":
            _, result, setup = static_peak(s, say)
            result = replace(result, policy=name)
        else:
            policy, setup = make_policy(name, s)
            result = simulate(
                s.trace, s.profile, s.app, policy, s.settings, progress(name) if progress else None
            )
        runs[name] = PolicyRun(name, result, summarize(result, s.slo, s.pricing), setup)
        if say:
            sm = runs[name].summary
            say(
                f"{name}: attainment {sm['slo_attainment']:.4f}, {sm['gpu_hours']:.2f} GPU-h, "
                f"{result.wall_s:.1f} s"
            )
    return runs
