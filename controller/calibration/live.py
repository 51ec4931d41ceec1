"""Calibrate against a running deployment: bounded load steps over HTTP, one shape at a time.

For each request shape the load doubles from `start_rps` until the answers' p95 passes the
SLO (or errors pass its error rate, or `max_rps` is reached, which is then the answer;
generation is streamed and also held to the SLO's TTFT and TPOT targets where it sets them),
then bisects the last doubling `refine` times; no step ever exceeds `max_rps`. A first
step already beyond the SLO halves down instead, and a shape no rate serves is an error.
Every step sends Poisson arrivals for `step_s` seconds through
the replay client, so a server that falls behind shows up as latency. The in-flight count
at target utilization comes from Little's law over the step nearest it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from controller.calibration.model import Calibration, LoadPoint, fit_work
from controller.calibration.simulated import REFERENCE_INDEX
from controller.config import SLO, AppConfig
from controller.errors import GovernorError
from controller.sim.replay import (
    ReplayRequest,
    ReplayResult,
    StreamResult,
    completion_stream_body,
    embedding_body,
    replay,
    stream_replay_async,
)

Send = Callable[[list[ReplayRequest]], Sequence[ReplayResult]]
"""Sends one step's requests and returns their results (the HTTP seam, for tests)."""
StepDone = Callable[[str], None]


@dataclass(frozen=True)
class StepResult:
    """One load step: its rate, the answers' p95 and mean latency, the share of errors.

    Streamed generation steps also carry the p95 of time to first token and of time per
    output token (None where the answers were not streamed).
    """

    rate: float
    p95_ms: float
    mean_s: float
    error_rate: float
    ttft_p95_ms: float | None = None
    tpot_p95_ms: float | None = None

    def within(self, slo: SLO) -> bool:
        """Whether the step met the SLO: latency, each token target it sets, errors."""
        limits = ((self.ttft_p95_ms, slo.ttft_p95_ms), (self.tpot_p95_ms, slo.tpot_p95_ms))
        tokens_ok = all(seen is None or limit is None or seen <= limit for seen, limit in limits)
        return (
            self.p95_ms <= slo.latency_p95_ms
            and tokens_ok
            and self.error_rate <= slo.max_error_rate
        )

    def describe(self) -> str:
        """The step's p95s in words."""
        parts = [f"p95 {self.p95_ms:.0f} ms"]
        if self.ttft_p95_ms is not None:
            parts.append(f"TTFT p95 {self.ttft_p95_ms:.0f} ms")
        if self.tpot_p95_ms is not None:
            parts.append(f"TPOT p95 {self.tpot_p95_ms:.1f} ms")
        return ", ".join(parts)


def http_sender(url: str, model: str, kind: str, timeout_s: float = 60.0) -> Send:
    """A sender that posts embeddings, or streams completions, to a live OpenAI endpoint.

    Generation is streamed so that each answer's time to first token and per output token
    are measured as a client sees them.
    """
    if kind == "encoder":

        def send(requests: list[ReplayRequest]) -> Sequence[ReplayResult]:
            return replay(url, requests, model=model, body=embedding_body, timeout_s=timeout_s)

        return send

    def stream(requests: list[ReplayRequest]) -> Sequence[ReplayResult]:
        return asyncio.run(
            stream_replay_async(
                url,
                requests,
                model=model,
                route="/v1/completions",
                body=completion_stream_body,
                timeout_s=timeout_s,
            )
        )

    return stream


def poisson_step(
    rate: float, seconds: float, prompt: int, output: int, seed: int
) -> list[ReplayRequest]:
    """Poisson arrivals at `rate` for `seconds`, every request of one shape."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, size=max(1, int(rate * seconds * 1.5) + 1))
    times = np.cumsum(gaps)
    return [ReplayRequest(float(t), prompt, output) for t in times[times < seconds]]


def run_step(
    send: Send, rate: float, seconds: float, prompt: int, output: int, seed: int
) -> StepResult:
    """Send one step and summarize what came back."""
    results = send(poisson_step(rate, seconds, prompt, output, seed))
    if not results:
        return StepResult(rate, float("inf"), float("inf"), 1.0)
    ok = [r for r in results if r.ok]
    errors = (len(results) - len(ok)) / len(results)
    if not ok:
        return StepResult(rate, float("inf"), float("inf"), errors)
    latencies = np.array([r.latency_s for r in ok]) * 1000.0
    streamed = [r for r in ok if isinstance(r, StreamResult)]
    return StepResult(
        rate,
        float(np.quantile(latencies, 0.95)),
        float(latencies.mean()) / 1000,
        errors,
        ttft_p95_ms=_p95_ms([r.ttft_s for r in streamed], bool(streamed)),
        tpot_p95_ms=_p95_ms([r.tpot_s for r in streamed], bool(streamed)),
    )


def _p95_ms(seconds: list[float | None], streamed: bool) -> float | None:
    """p95 in ms of what the streams measured; None when nothing was streamed or measured."""
    known = [s for s in seconds if s is not None]
    if not streamed:
        return None
    return float(np.quantile(known, 0.95)) * 1000.0 if known else None


def measure_shape(
    send: Send,
    app: AppConfig,
    prompt: int,
    output: int,
    *,
    start_rps: float,
    max_rps: float,
    step_s: float,
    refine: int,
    done: StepDone | None = None,
) -> LoadPoint:
    """The highest rate one replica serves within the SLO at one shape, and its in-flight."""
    slo = app.slo
    steps: list[StepResult] = []

    def step(rate: float) -> StepResult:
        result = run_step(send, rate, step_s, prompt, output, seed=len(steps))
        steps.append(result)
        if done is not None:
            verdict = "within" if result.within(slo) else "beyond"
            done(
                f"{prompt} in / {output} out at {rate:.2f} req/s: {result.describe()}, "
                f"errors {result.error_rate:.1%} ({verdict} the SLO)"
            )
        return result

    lo, hi = 0.0, min(start_rps, max_rps)
    while hi <= max_rps and step(hi).within(slo):
        lo, hi = hi, hi * 2
    if lo <= 0:
        # The first step already broke the SLO: halve down, as far as the refine budget goes.
        rate = hi
        for _ in range(refine + 2):
            hi, rate = rate, rate / 2
            if step(rate).within(slo):
                lo = rate
                break
        else:
            raise GovernorError(
                f"{prompt} in / {output} out: even {rate:.3g} req/s breaks the SLO "
                f"({steps[-1].describe()}, errors {steps[-1].error_rate:.1%}); is "
                "the deployment at one healthy replica, and the SLO reachable at all?"
            )
    if hi <= max_rps:
        for _ in range(refine):
            mid = (lo + hi) / 2
            if step(mid).within(slo):
                lo = mid
            else:
                hi = mid
    target = lo * app.scaling.target_utilization
    near = min(
        (s for s in steps if s.within(slo)),
        key=lambda s: abs(s.rate - target),
        default=None,
    )
    in_flight = target * near.mean_s if near is not None else 1.0
    return LoadPoint(
        prompt_tokens=prompt, output_tokens=output, capacity_rps=lo, in_flight=in_flight
    )


def calibrate_live(
    send: Send,
    app: AppConfig,
    kind: str,
    shapes: tuple[tuple[int, int], ...],
    source: str,
    *,
    start_rps: float = 1.0,
    max_rps: float = 512.0,
    step_s: float = 10.0,
    refine: int = 2,
    done: StepDone | None = None,
) -> Calibration:
    """Measure each shape on a live deployment of one replica and fit the work model."""
    points = [
        measure_shape(
            send,
            app,
            p,
            o,
            start_rps=start_rps,
            max_rps=max_rps,
            step_s=step_s,
            refine=refine,
            done=done,
        )
        for p, o in shapes
    ]
    reference = points[min(REFERENCE_INDEX, len(points) - 1)]
    work, error = fit_work(points, reference)
    return Calibration(
        kind="encoder" if kind == "encoder" else "generation",
        source=source,
        slo={
            "latency_ms": app.slo.latency_p95_ms,
            "ttft_ms": app.slo.ttft_p95_ms,
            "tpot_ms": app.slo.tpot_p95_ms,
            "max_error_rate": app.slo.max_error_rate,
            "target_attainment": app.slo.target_attainment,
        },
        target_utilization=app.scaling.target_utilization,
        points=points,
        work=work,
        in_flight_per_replica=max(reference.in_flight, 1e-3),
        fit_error=error,
    )
