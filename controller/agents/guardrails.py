"""Guardrails every replica recommendation passes through once.

Modelled on Ray Serve's `_apply_autoscaling_config`: clamp to bounds, a hysteresis band,
step limits, a delay per direction that starts over when the direction changes, and an
immediate way out of zero when requests arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from controller.agents.state import PendingChange, seconds_since, to_iso


def clamp(n: int, lo: int, hi: int) -> int:
    """`n` bounded to [lo, hi] (lo wins if the bounds cross)."""
    return max(lo, min(n, hi))


def limit_step(current: int, desired: int, max_up: int, max_down: int) -> int:
    """`desired` moved at most `max_up` above or `max_down` below `current`."""
    return clamp(desired, current - max_down, current + max_up)


def within_band(current: int, raw: float, hysteresis: float) -> bool:
    """Whether the unrounded need `raw` lies inside current x (1 +/- hysteresis)."""
    if current <= 0:
        return raw <= 0
    return current * (1 - hysteresis) <= raw <= current * (1 + hysteresis)


def replicas_for(raw: float) -> int:
    """The replica count that covers the unrounded need `raw`."""
    return max(0, math.ceil(raw - 1e-9))


@dataclass(frozen=True)
class Delayed:
    """What the delay guardrail lets through now, and what it keeps waiting."""

    replicas: int
    pending: PendingChange | None
    note: str


def apply_delay(
    current: int,
    desired: int,
    now: datetime,
    pending: PendingChange | None,
    up_delay_s: float,
    down_delay_s: float,
) -> Delayed:
    """Let a change through only once it has been recommended for its direction's delay.

    The delay starts over when the direction flips or the observed count moves. While a
    change waits, the most conservative recommendation seen is kept (the lowest upward,
    the highest downward), as Kubernetes' HPA stabilization window does.
    """
    if desired == current:
        return Delayed(current, None, "")
    direction = 1 if desired > current else -1
    if pending is None or pending["direction"] != direction or pending["from_replicas"] != current:
        pending = PendingChange(
            direction=direction, since=to_iso(now), from_replicas=current, bound=desired
        )
    else:
        bound = min(pending["bound"], desired) if direction > 0 else max(pending["bound"], desired)
        pending = PendingChange(
            direction=direction, since=pending["since"], from_replicas=current, bound=bound
        )
    delay = up_delay_s if direction > 0 else down_delay_s
    waited = seconds_since(pending["since"], now) or 0.0
    word = "up" if direction > 0 else "down"
    if waited >= delay:
        note = f"{word}scale recommended for {waited:.0f}s (delay {delay:.0f}s)" if delay else ""
        return Delayed(pending["bound"], None, note)
    return Delayed(
        current,
        pending,
        f"{word}scale to {pending['bound']} held: recommended for {waited:.0f}s "
        f"of the {delay:.0f}s delay",
    )
