"""Load tests inside the simulator: synthetic traces, one replica's capacity, static sizing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from controller.config import AppConfig
from controller.sim.engine import SimResult, SimSettings, simulate
from controller.sim.metrics import outcomes, window_attainment
from controller.sim.policies.static import StaticPolicy
from controller.sim.profile import Profile
from controller.sim.slo import request_slo
from controller.sim.trace import Trace

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def poisson_trace(
    rate: float,
    duration_s: float,
    mix: Trace | None = None,
    seed: int = 0,
    prompt_tokens: int = 128,
    output_tokens: int = 1,
) -> Trace:
    """Poisson arrivals at `rate`; token counts drawn from `mix`'s requests, else fixed."""
    rng = np.random.default_rng(seed)
    n = max(1, int(rng.poisson(rate * duration_s)))
    arrival = np.sort(rng.uniform(0.0, duration_s, n))
    if mix is not None and len(mix):
        pick = rng.integers(0, len(mix), n)
        prompts, outputs = mix.prompt_tokens[pick], mix.output_tokens[pick]
    else:
        prompts = np.full(n, prompt_tokens, dtype=np.int64)
        outputs = np.full(n, output_tokens, dtype=np.int64)
    return Trace(
        arrival_s=arrival - arrival[0],
        prompt_tokens=prompts,
        output_tokens=outputs,
        start=EPOCH,
        source=f"poisson({rate:g}/s)",
    )


def constant_trace(
    rate: float, duration_s: float, prompt_tokens: int = 128, output_tokens: int = 1
) -> Trace:
    """Evenly spaced arrivals at `rate` with fixed token counts."""
    n = max(1, round(rate * duration_s))
    return Trace(
        arrival_s=np.arange(n, dtype=np.float64) / rate,
        prompt_tokens=np.full(n, prompt_tokens, dtype=np.int64),
        output_tokens=np.full(n, output_tokens, dtype=np.int64),
        start=EPOCH,
        source=f"constant({rate:g}/s)",
    )


def static_attainment(
    trace: Trace,
    profile: Profile,
    app: AppConfig,
    replicas: int,
    settings: SimSettings | None = None,
    window_s: float = 300.0,
) -> tuple[float, float, SimResult]:
    """(overall attainment, worst attainment over `window_s` windows, the run) of N replicas."""
    result = simulate(trace, profile, app, StaticPolicy(replicas), settings)
    met = outcomes(result, request_slo(app, profile)).met
    per_window = window_attainment(result, met, window_s)
    worst = float(np.nanmin(per_window)) if per_window.size else 1.0
    return float(met.mean()) if met.size else 1.0, worst, result


def fewest_replicas(ok: Callable[[int], bool], upper: int) -> int | None:
    """The smallest n in 1..upper with ok(n), assuming ok is monotone; None if none is."""
    if not ok(upper):
        return None
    lo, hi = 1, upper
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def replica_capacity(
    profile: Profile,
    app: AppConfig,
    mix: Trace | None = None,
    duration_s: float = 600.0,
    seed: int = 0,
    high: float = 1000.0,
    tolerance: float = 0.02,
) -> float:
    """Highest Poisson rate (req/s) one replica serves with the SLO's target attainment."""
    target = request_slo(app, profile).target_attainment

    def meets(rate: float) -> bool:
        trace = poisson_trace(rate, duration_s, mix, seed)
        overall, _, _ = static_attainment(trace, profile, app, 1)
        return overall >= target

    lo, hi = 0.0, 1.0
    while meets(hi):
        lo, hi = hi, hi * 2
        if hi > high:
            return lo
    while hi - lo > tolerance * hi:
        mid = (lo + hi) / 2
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return lo


def in_flight_at(
    profile: Profile,
    app: AppConfig,
    rate: float,
    mix: Trace | None = None,
    duration_s: float = 600.0,
    seed: int = 0,
) -> float:
    """Mean requests in flight at one replica carrying a Poisson load of `rate` req/s."""
    result = simulate(poisson_trace(rate, duration_s, mix, seed), profile, app, StaticPolicy(1))
    version = app.stable_version
    samples = result.obs.samples[version]
    if not samples:
        return 0.0
    return float(np.mean([s.ongoing_at_replicas + s.queued_at_router for s in samples]))
