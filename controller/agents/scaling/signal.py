"""The latency a version is steered by, against its SLO target."""

from __future__ import annotations

from dataclasses import dataclass

from controller.config import SLO
from controller.snapshot import VersionSnapshot


def ms(x: float) -> str:
    """Milliseconds for a reason line: one decimal below 100."""
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


@dataclass(frozen=True)
class LatencySignal:
    """One observed latency p95 and its SLO target, in ms."""

    name: str
    observed_ms: float
    target_ms: float

    @property
    def pressure(self) -> float:
        """Observed over target: above 1 is a breach."""
        return self.observed_ms / self.target_ms

    @property
    def breached(self) -> bool:
        """Whether the observed p95 is above its target."""
        return self.observed_ms > self.target_ms

    def __str__(self) -> str:
        return f"{self.name} {ms(self.observed_ms)} ms"


def steering_signal(slo: SLO, vs: VersionSnapshot) -> LatencySignal | None:
    """The latency to steer by: the per-token p95 nearest its SLO, else end-to-end p95.

    An answer's end-to-end time mostly measures its length, not how loaded the replica
    is, so generation is steered by time to first token and time per output token where
    the SLO sets them and they are observed.
    """
    per_token = [
        LatencySignal(name, observed, target)
        for name, observed, target in (
            ("TTFT p95", vs.ttft_ms, slo.ttft_p95_ms),
            ("TPOT p95", vs.tpot_ms, slo.tpot_p95_ms),
        )
        if observed is not None and target is not None
    ]
    if per_token:
        return max(per_token, key=lambda s: s.pressure)
    if vs.latency_p95_ms is None:
        return None
    return LatencySignal("p95", vs.latency_p95_ms, slo.latency_p95_ms)
