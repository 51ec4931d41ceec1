"""Whether one request met its application's SLO, and whether the SLO can be met at all."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.config import AppConfig
from controller.sim.errors import InfeasibleError
from controller.sim.profile import Profile


@dataclass(frozen=True)
class RequestSlo:
    """Per-request thresholds: a request meets the SLO when it is within all of them."""

    latency_ms: float
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    target_attainment: float = 0.99

    def met(self, latency_ms: np.ndarray, ttft_ms: np.ndarray, tpot_ms: np.ndarray
            ) -> np.ndarray:
        """Boolean per request; NaN latencies (never answered) are misses."""
        ok = latency_ms <= self.latency_ms
        if self.ttft_ms is not None:
            ok &= ttft_ms <= self.ttft_ms
        if self.tpot_ms is not None:
            ok &= np.nan_to_num(tpot_ms, nan=0.0) <= self.tpot_ms
        return ok


def request_slo(app: AppConfig, profile: Profile) -> RequestSlo:
    """The thresholds of `app`'s SLO that apply to requests served by `profile`."""
    slo = app.slo
    generation = profile.kind == "generation"
    return RequestSlo(
        latency_ms=slo.latency_p95_ms,
        ttft_ms=slo.ttft_p95_ms if generation else None,
        tpot_ms=slo.tpot_p95_ms if generation else None,
        target_attainment=slo.target_attainment,
    )


def check_feasible(app: AppConfig, profile: Profile, prompt: int, output: int) -> None:
    """Refuse a profile whose single typical request, served alone, already misses the SLO."""
    slo = request_slo(app, profile)
    latency, ttft, tpot = (x * 1000.0 for x in profile.alone_times_s(prompt, output))
    what = f"a request of {prompt} prompt tokens" + (
        f" and {output} output tokens" if profile.kind == "generation" else ""
    )
    checks = [("latency", latency, slo.latency_ms), ("time to first token", ttft, slo.ttft_ms),
              ("time per output token", tpot, slo.tpot_ms)]
    for label, took, limit in checks:
        if limit is not None and took > limit:
            raise InfeasibleError(
                f"infeasible fleet: profile {profile.name!r} serves {what} alone in "
                f"{took:.1f} ms {label}, above application {app.name!r}'s SLO of "
                f"{limit:.1f} ms; no number of replicas can meet it"
            )
