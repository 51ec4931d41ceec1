"""The policy benchmark's targets, judged per trace and over a suite of traces.

Per trace: the governor Pareto-dominates each baseline (attainment at least its, GPU-hours
at most its), and reaches the SLO's target attainment wherever static-peak provisioning
does. Over the suite: the governor's mean GPU-hours at most `GPU_HOURS_TARGET` of
static-peak's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

BASELINES = ("ray-default", "hpa")
GPU_HOURS_TARGET = 0.75
"""Mean governor GPU-hours over the suite, as a fraction of static-peak's."""


@dataclass(frozen=True)
class Outcome:
    """One policy's result on one trace."""

    attainment: float
    gpu_hours: float


@dataclass(frozen=True)
class TraceVerdict:
    """Which targets one trace met, and why not where it did not."""

    trace: str
    met: bool
    misses: tuple[str, ...]
    gpu_hours_ratio: float | None
    """Governor GPU-hours over static-peak's."""


def judge_trace(
    trace: str, outcomes: Mapping[str, Outcome], target_attainment: float
) -> TraceVerdict:
    """The per-trace targets, with each miss stated with its numbers."""
    gov = outcomes["governor"]
    misses: list[str] = []
    for name in BASELINES:
        other = outcomes.get(name)
        if other is None:
            continue
        if gov.attainment < other.attainment:
            misses.append(f"attainment {gov.attainment:.4%} < {name}'s {other.attainment:.4%}")
        if gov.gpu_hours > other.gpu_hours:
            misses.append(f"GPU-h {gov.gpu_hours:.2f} > {name}'s {other.gpu_hours:.2f}")
    peak = outcomes.get("static-peak")
    ratio = None
    if peak is not None:
        ratio = gov.gpu_hours / peak.gpu_hours if peak.gpu_hours > 0 else None
        if peak.attainment >= target_attainment > gov.attainment:
            misses.append(
                f"attainment {gov.attainment:.4%} < {target_attainment:.0%} where "
                f"static-peak reaches {peak.attainment:.4%}"
            )
    return TraceVerdict(trace, not misses, tuple(misses), ratio)


def mean_gpu_hours_ratio(verdicts: Sequence[TraceVerdict]) -> float | None:
    """The mean over traces of the governor's GPU-hours over static-peak's."""
    ratios = [v.gpu_hours_ratio for v in verdicts if v.gpu_hours_ratio is not None]
    return sum(ratios) / len(ratios) if ratios else None
