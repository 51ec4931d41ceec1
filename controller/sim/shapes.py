"""Generated request traces: arrival shapes the recorded traces lack, tokens from a mix.

Each shape is a pure function of its arguments; the same seed gives the same arrays.
Arrival seconds count from the start of the schedule (`SHAPE_START`), so a shape's
phases (bursts, the flash crowd, the daily trough) sit at the seconds asked for. Token
counts are (prompt, output) pairs drawn with replacement from the requests of a mix
trace, with the same random generator as the arrivals.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from controller.sim.errors import SimInputError
from controller.sim.trace import Trace

SHAPE_START = datetime(2024, 1, 1, tzinfo=UTC)
"""Wall-clock time of second 0 of every generated trace."""

Rate = Callable[[np.ndarray], np.ndarray]
"""Arrival rate (req/s) at each of the given seconds."""


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not (math.isfinite(value) and value > 0):
            raise SimInputError(f"{name} must be a positive number, got {value}")


def _at_least(name: str, value: float, low: float) -> None:
    if not (math.isfinite(value) and value >= low):
        raise SimInputError(f"{name} must be at least {low:g}, got {value}")


def _check_mix(mix: Trace) -> None:
    if not len(mix):
        raise SimInputError(f"the token mix {mix.source} has no requests to draw from")


def _with_tokens(arrival: np.ndarray, mix: Trace, rng: np.random.Generator, source: str) -> Trace:
    """A trace of these arrivals with (prompt, output) pairs drawn from `mix`."""
    if arrival.size == 0:
        raise SimInputError(f"{source} generated no requests; raise the rate or the duration")
    pick = rng.integers(0, len(mix), arrival.size)
    return Trace(
        arrival_s=arrival,
        prompt_tokens=mix.prompt_tokens[pick].copy(),
        output_tokens=mix.output_tokens[pick].copy(),
        start=SHAPE_START,
        source=source,
    )


def _thinned(rate: Rate, peak: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrivals of a Poisson process of rate `rate(t) <= peak` in [0, duration_s)."""
    n = int(rng.poisson(peak * duration_s))
    candidates = np.sort(rng.uniform(0.0, duration_s, n))
    keep = rng.random(n) * peak < rate(candidates)
    return candidates[keep]


def gamma_arrivals(
    mean_rate: float, cv: float, duration_s: float, mix: Trace, seed: int = 0
) -> Trace:
    """A renewal process with Gamma gaps of mean 1/mean_rate and this CV (1: Poisson)."""
    _positive(mean_rate=mean_rate, cv=cv, duration_s=duration_s)
    _check_mix(mix)
    rng = np.random.default_rng(seed)
    shape = 1.0 / cv**2
    scale = 1.0 / (mean_rate * shape)
    expected = mean_rate * duration_s
    chunk = int(expected + 10.0 * cv * math.sqrt(expected) + 100)
    parts: list[np.ndarray] = []
    end = 0.0
    while end < duration_s:
        times = end + np.cumsum(rng.gamma(shape, scale, chunk))
        parts.append(times)
        end = float(times[-1])
    arrival = np.concatenate(parts)
    source = f"gamma(cv={cv:g}, {mean_rate:.3g}/s, seed {seed})"
    return _with_tokens(arrival[arrival < duration_s], mix, rng, source)


def on_off(
    mean_rate: float, on_s: float, off_s: float, duration_s: float, mix: Trace, seed: int = 0
) -> Trace:
    """Poisson bursts in `on_s` windows from second 0, idle `off_s` gaps, mean_rate overall."""
    _positive(mean_rate=mean_rate, on_s=on_s, duration_s=duration_s)
    _at_least("off_s", off_s, 0.0)
    _check_mix(mix)
    rng = np.random.default_rng(seed)
    period = on_s + off_s
    cycles = math.floor(duration_s / period)
    on_total = cycles * on_s + min(on_s, duration_s - cycles * period)
    rate_on = mean_rate * duration_s / on_total
    on_time = np.sort(rng.uniform(0.0, on_total, int(rng.poisson(rate_on * on_total))))
    cycle = np.floor(on_time / on_s)
    arrival = cycle * period + (on_time - cycle * on_s)
    source = f"on-off({on_s:g} s on, {off_s:g} s off, {mean_rate:.3g}/s, seed {seed})"
    return _with_tokens(arrival[arrival < duration_s], mix, rng, source)


def flash_crowd(
    base_rate: float,
    factor: float,
    ramp_s: float,
    hold_s: float,
    at_s: float,
    duration_s: float,
    mix: Trace,
    seed: int = 0,
) -> Trace:
    """Poisson at base_rate, rising linearly to factor x within ramp_s from at_s, held hold_s."""
    _positive(base_rate=base_rate, duration_s=duration_s)
    _at_least("factor", factor, 1.0)
    _at_least("ramp_s", ramp_s, 0.0)
    _at_least("hold_s", hold_s, 0.0)
    _at_least("at_s", at_s, 0.0)
    if at_s >= duration_s:
        raise SimInputError(f"at_s ({at_s:g}) must fall before the end ({duration_s:g} s)")
    _check_mix(mix)

    def rate(t: np.ndarray) -> np.ndarray:
        rise = np.clip((t - at_s) / ramp_s, 0.0, 1.0) if ramp_s > 0 else (t >= at_s) * 1.0
        surge = (t >= at_s) & (t < at_s + ramp_s + hold_s)
        return base_rate * (1.0 + (factor - 1.0) * np.where(surge, rise, 0.0))

    rng = np.random.default_rng(seed)
    arrival = _thinned(rate, base_rate * factor, duration_s, rng)
    source = (
        f"flash-crowd({factor:g}x {base_rate:.3g}/s at {at_s:g} s, ramp {ramp_s:g} s, "
        f"hold {hold_s:g} s, seed {seed})"
    )
    return _with_tokens(arrival, mix, rng, source)


def diurnal(
    mean_rate: float,
    peak_to_trough: float,
    period_s: float,
    duration_s: float,
    mix: Trace,
    seed: int = 0,
) -> Trace:
    """Poisson with a sinusoidal rate: trough at second 0, peak at period_s/2, mean_rate mean."""
    _positive(mean_rate=mean_rate, period_s=period_s, duration_s=duration_s)
    _at_least("peak_to_trough", peak_to_trough, 1.0)
    _check_mix(mix)
    swing = (peak_to_trough - 1.0) / (peak_to_trough + 1.0)

    def rate(t: np.ndarray) -> np.ndarray:
        return mean_rate * (1.0 - swing * np.cos(2.0 * np.pi * t / period_s))

    rng = np.random.default_rng(seed)
    arrival = _thinned(rate, mean_rate * (1.0 + swing), duration_s, rng)
    source = f"diurnal({peak_to_trough:g}:1, period {period_s:g} s, {mean_rate:.3g}/s, seed {seed})"
    return _with_tokens(arrival, mix, rng, source)
