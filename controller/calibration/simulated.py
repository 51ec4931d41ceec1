"""Calibrate from a service-time profile: load steps on one simulated replica."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from controller.calibration.model import Calibration, LoadPoint, fit_work
from controller.config import AppConfig
from controller.sim.capacity import EPOCH, in_flight_at, replica_capacity
from controller.sim.profile import Profile
from controller.sim.slo import request_slo
from controller.sim.trace import Trace

GENERATION_SHAPES: tuple[tuple[int, int], ...] = ((2048, 16), (1024, 128), (256, 256), (128, 512))
"""(prompt, output) tokens: prefill-heavy to decode-heavy, so that both costs are seen."""
ENCODER_SHAPES: tuple[tuple[int, int], ...] = ((8, 0), (32, 0), (72, 0), (128, 0), (256, 0))
"""Input tokens from short queries to the typical model limit."""
REFERENCE_INDEX = 1
"""The shape whose cost stands for a request when a source reports no token rates."""

Step = Callable[[int, int, str], None]
"""Called after each shape: (done, total, what was measured)."""


def shape_trace(prompt: int, output: int) -> Trace:
    """A one-request mix: every load-test request has these token counts."""
    return Trace(
        arrival_s=np.zeros(1),
        prompt_tokens=np.array([prompt], dtype=np.int64),
        output_tokens=np.array([max(output, 1)], dtype=np.int64),
        start=EPOCH,
        source=f"shape({prompt} in, {output} out)",
    )


def shapes_for(profile: Profile) -> tuple[tuple[int, int], ...]:
    """The load-test shapes of a profile, inputs clipped to what its model accepts."""
    if profile.kind == "generation":
        return GENERATION_SHAPES
    limit = profile.encoder.max_tokens if profile.encoder else None
    return tuple(sorted({(min(p, limit) if limit else p, o) for p, o in ENCODER_SHAPES}))


def calibrate_profile(
    profile: Profile,
    app: AppConfig,
    source: str,
    step: Step | None = None,
    duration_s: float = 300.0,
) -> Calibration:
    """Measure one replica of `profile` at each shape under `app`'s SLO and fit the work model."""
    utilization = app.scaling.target_utilization
    shapes = shapes_for(profile)
    points: list[LoadPoint] = []
    for i, (prompt, output) in enumerate(shapes):
        mix = shape_trace(prompt, output)
        capacity = replica_capacity(profile, app, mix, duration_s=duration_s)
        in_flight = in_flight_at(profile, app, capacity * utilization, mix, duration_s)
        points.append(
            LoadPoint(
                prompt_tokens=prompt,
                output_tokens=output,
                capacity_rps=capacity,
                in_flight=in_flight,
            )
        )
        if step is not None:
            step(
                i + 1,
                len(shapes),
                f"{prompt} in / {output} out: {capacity:.2f} req/s, "
                f"{in_flight:.1f} in flight at {utilization:.0%}",
            )
    reference = points[min(REFERENCE_INDEX, len(points) - 1)]
    work, error = fit_work(points, reference)
    slo = request_slo(app, profile)
    return Calibration(
        kind=profile.kind,
        source=source,
        slo={
            "latency_ms": slo.latency_ms,
            "ttft_ms": slo.ttft_ms,
            "tpot_ms": slo.tpot_ms,
            "target_attainment": slo.target_attainment,
        },
        target_utilization=utilization,
        points=points,
        work=work,
        in_flight_per_replica=max(reference.in_flight, 1e-3),
        fit_error=error,
    )
