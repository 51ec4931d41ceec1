"""What one replica can do within the SLO, in work units, learned from what the fleet shows.

A calibration says one replica does 1.0 work unit per second at its SLO-limited capacity
(a seed of `capacity_rps_per_replica` says the same in requests). The fleet then teaches
the real value for the traffic it serves, with no bound to a multiple of the seed:
- a load served well within the SLO (p95 below 1 - `KNEE_BAND` of it: a p95 merely
  within the SLO is not yet the target attainment) raises the estimate to that load, and
  never past the seed: latency is far from linear in load near the knee (time per output
  token stays flat until the queue for prefills builds), so live latency cannot tell how
  far the cliff is that the calibration's load test found;
- a breach at a load the estimate said a replica could carry moves the estimate half way
  down to load x SLO / latency (no lower than half the load), one observation at a time,
  at any load: some mixes miss the SLO at light loads (a long prefill stalls the decode
  of short answers) and only more replicas, each less loaded, meet it; a breach beyond
  the estimate is the overload it predicts and teaches nothing.
A learned value relaxes back towards the seed with `capacity_half_life_s`, so one misread
window does not stay for good. Without any seed only a `proven` lower bound is known:
enough to scale down to what is proven, not to scale up, which then waits for a breach.
"""

from __future__ import annotations

from dataclasses import dataclass

LEARN_RATE = 0.5
"""How far one near-the-SLO observation moves the estimate towards it."""
KNEE_BAND = 0.3
"""Latency within this fraction of the SLO is near the knee of the latency curve; demand
within it of its smoothed level is steady."""
MAX_CUT = 0.5
"""A breach far beyond the SLO puts the knee no lower than this share of the load."""
LOADED_FRACTION = 0.5
"""A breach teaches capacity only when a replica carries at least this share of it."""
AT_SEED = 0.01
"""A learned capacity this close (relative) to the seed is the seed again."""


@dataclass(frozen=True)
class Capacity:
    """Work units per second one replica does within the SLO, and how that is known."""

    per_replica: float
    kind: str
    """calibrated | measured | proven (a lower bound)."""

    def planned(self, target_utilization: float) -> float:
        """The load per replica to plan for."""
        return self.per_replica if self.kind == "proven" else self.per_replica * target_utilization


def learn_capacity(
    known: Capacity | None, load: float, pressure: float, seed: float | None = None
) -> Capacity | None:
    """The estimate after one observation of load per replica and latency over its SLO.

    A load served well within the SLO raises the estimate, never past the seed: a load
    test measured where the SLO breaks, live latency far from it cannot tell.
    """
    if pressure <= 1:
        if pressure > 1 - KNEE_BAND or (known is not None and load <= known.per_replica):
            return known
        if seed is not None and load >= seed:
            return Capacity(seed, "calibrated")
        kind = "proven" if known is None or known.kind == "proven" else "measured"
        return Capacity(load, kind)
    ceiling = load * max(1 / pressure, MAX_CUT)
    if known is None or known.kind == "proven":
        return Capacity(max(ceiling, known.per_replica if known else 0.0), "measured")
    if load > known.per_replica or known.per_replica <= ceiling:
        # Beyond the capacity already known, a breach is the overload it predicts.
        return known
    return Capacity(known.per_replica + LEARN_RATE * (ceiling - known.per_replica), "measured")


def relaxed(
    capacity: Capacity, seed: float | None, elapsed_s: float, half_life_s: float
) -> Capacity:
    """A learned capacity moved back towards the seed for `elapsed_s` seconds."""
    if seed is None or capacity.kind == "calibrated" or elapsed_s <= 0:
        return capacity
    keep = 0.5 ** (elapsed_s / half_life_s)
    value = seed + (capacity.per_replica - seed) * keep
    if abs(value - seed) <= AT_SEED * seed:
        return Capacity(seed, "calibrated")
    return Capacity(value, capacity.kind)
