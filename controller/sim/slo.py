"""Whether one request met its application's SLO, and whether the SLO can be met at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.config import AppConfig
from controller.sim.errors import InfeasibleError
from controller.sim.profile import Profile


@dataclass(frozen=True)
class RequestSlo:
    """Per-request thresholds: a request meets the SLO when it is within all that are set."""

    latency_ms: float | None
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    target_attainment: float = 0.99

    def met(self, latency_ms: np.ndarray, ttft_ms: np.ndarray, tpot_ms: np.ndarray) -> np.ndarray:
        """Boolean per request; NaN latencies (never answered) are misses."""
        ok = ~np.isnan(latency_ms)
        if self.latency_ms is not None:
            ok &= latency_ms <= self.latency_ms
        if self.ttft_ms is not None:
            ok &= ttft_ms <= self.ttft_ms
        if self.tpot_ms is not None:
            ok &= np.nan_to_num(tpot_ms, nan=0.0) <= self.tpot_ms
        return ok


def request_slo(app: AppConfig, profile: Profile) -> RequestSlo:
    """The thresholds of `app`'s SLO that each request served by `profile` is held to.

    An encoder's request is held to the latency target. A generation request is held to
    the time-to-first-token and time-per-output-token targets when the SLO sets them: its
    end-to-end time grows with the length of the answer it was asked for, so the latency
    target stays a p95 over the fleet (what the scaling agent steers by), not a per-request
    bound.
    """
    slo = app.slo
    per_token = profile.kind == "generation" and (
        slo.ttft_p95_ms is not None or slo.tpot_p95_ms is not None
    )
    return RequestSlo(
        latency_ms=None if per_token else slo.latency_p95_ms,
        ttft_ms=slo.ttft_p95_ms if per_token else None,
        tpot_ms=slo.tpot_p95_ms if per_token else None,
        target_attainment=slo.target_attainment,
    )


def check_feasible(app: AppConfig, profile: Profile, prompt: int, output: int) -> None:
    """Refuse a profile whose single typical request, served alone, already misses the SLO."""
    slo = request_slo(app, profile)
    latency, ttft, tpot = (x * 1000.0 for x in profile.alone_times_s(prompt, output))
    what = f"a request of {prompt} prompt tokens" + (
        f" and {output} output tokens" if profile.kind == "generation" else ""
    )
    checks = [
        ("latency", latency, slo.latency_ms),
        ("time to first token", ttft, slo.ttft_ms),
        ("time per output token", tpot, slo.tpot_ms),
    ]
    for label, took, limit in checks:
        if limit is not None and took > limit:
            raise InfeasibleError(
                f"infeasible fleet: profile {profile.name!r} serves {what} alone in "
                f"{took:.1f} ms {label}, above application {app.name!r}'s SLO of "
                f"{limit:.1f} ms; no number of replicas can meet it"
            )
