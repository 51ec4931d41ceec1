"""The trace suite a benchmark runs each policy on: two recorded traces and six shapes.

Recorded: the Azure conversation trace and the Mooncake trace. Generated, one hour each
at the conversation trace's mean rate and with its (prompt, output) pairs: Gamma arrivals
of CV 1, 2 and 4, bursts with idle gaps longer than a GPU replica's start-up, a flash
crowd, and a day compressed into an hour.

Every trace is then fitted to the model served, as a real server would: an encoder
truncates its input to the model's maximum length; a generation model holds prompt and
answer in one context, so a prompt that would not fit beside its answer is cut to fit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from controller.sim.errors import SimInputError
from controller.sim.shapes import diurnal, flash_crowd, gamma_arrivals, on_off
from controller.sim.trace import Trace, default_trace_path, load_trace, scale_trace

SuiteKind = Literal["generation", "encoder"]

AZURE_CONV = "AzureLLMInferenceTrace_conv.csv"
MOONCAKE = "mooncake_synthetic.jsonl"
SUITE_NAMES = (
    "azure-conv",
    "mooncake",
    "gamma-cv1",
    "gamma-cv2",
    "gamma-cv4",
    "on-off",
    "flash-crowd",
    "diurnal",
)
HOUR_S = 3600.0


@dataclass(frozen=True)
class SuiteTrace:
    """One trace of the suite and how many of its requests were cut to fit the model."""

    name: str
    trace: Trace
    clipped: int = 0


def default_traces_dir() -> Path:
    """The shared traces directory, resolved against the repository root."""
    return default_trace_path().parent


def generated_shapes(mix: Trace, seed: int = 0) -> list[tuple[str, Trace]]:
    """The suite's six generated hours at `mix`'s mean rate, tokens drawn from `mix`."""
    if mix.duration_s <= 0:
        raise SimInputError(f"{mix.source} spans no time, so it has no mean rate")
    rate = len(mix) / mix.duration_s
    return [
        ("gamma-cv1", gamma_arrivals(rate, 1.0, HOUR_S, mix, seed)),
        ("gamma-cv2", gamma_arrivals(rate, 2.0, HOUR_S, mix, seed)),
        ("gamma-cv4", gamma_arrivals(rate, 4.0, HOUR_S, mix, seed)),
        ("on-off", on_off(rate, on_s=120.0, off_s=180.0, duration_s=HOUR_S, mix=mix, seed=seed)),
        (
            "flash-crowd",
            flash_crowd(
                rate,
                factor=10.0,
                ramp_s=10.0,
                hold_s=120.0,
                at_s=1200.0,
                duration_s=HOUR_S,
                mix=mix,
                seed=seed,
            ),
        ),
        (
            "diurnal",
            diurnal(
                rate, peak_to_trough=4.0, period_s=HOUR_S, duration_s=HOUR_S, mix=mix, seed=seed
            ),
        ),
    ]


def fit_to_model(trace: Trace, kind: SuiteKind, max_tokens: int | None) -> tuple[Trace, int]:
    """The trace with each request cut to the model's limit, and how many were cut.

    Encoder: the prompt is truncated to `max_tokens`. Generation: prompt plus output must
    fit in `max_tokens`, so the prompt is cut to make room for the output (and an output
    longer than the whole context, with its prompt, to one token less than it).
    """
    if max_tokens is None:
        return trace, 0
    low = 1 if kind == "encoder" else 2
    if max_tokens < low:
        raise SimInputError(f"the {kind} token limit must be at least {low}, got {max_tokens}")
    prompt, output = trace.prompt_tokens, trace.output_tokens
    if kind == "generation":
        output = np.minimum(output, max_tokens - 1)
        prompt = np.minimum(prompt, max_tokens - output)
    else:
        prompt = np.minimum(prompt, max_tokens)
    cut = (prompt != trace.prompt_tokens) | (output != trace.output_tokens)
    return replace(trace, prompt_tokens=prompt, output_tokens=output), int(cut.sum())


def _limit(
    kind: SuiteKind, max_prompt_tokens: int | None, max_context_tokens: int | None
) -> int | None:
    """The limit that applies to `kind`; refuse the one that does not."""
    if kind == "encoder" and max_context_tokens is not None:
        raise SimInputError(
            "max_context_tokens applies to generation traces; "
            "an encoder's limit is max_prompt_tokens"
        )
    if kind == "generation" and max_prompt_tokens is not None:
        raise SimInputError(
            "max_prompt_tokens applies to encoder traces; "
            "a generation model's limit is max_context_tokens"
        )
    return max_prompt_tokens if kind == "encoder" else max_context_tokens


def suite_traces(
    kind: SuiteKind,
    traces_dir: Path | None = None,
    volume: float = 1.0,
    seed: int = 0,
    max_prompt_tokens: int | None = None,
    max_context_tokens: int | None = None,
) -> list[SuiteTrace]:
    """The suite's traces in `SUITE_NAMES` order, at `volume` times the requests, fitted."""
    if not volume > 0:
        raise SimInputError(f"volume must be a positive number, got {volume}")
    limit = _limit(kind, max_prompt_tokens, max_context_tokens)
    folder = traces_dir if traces_dir is not None else default_traces_dir()
    conv = load_trace(folder / AZURE_CONV)
    named = [
        ("azure-conv", conv),
        ("mooncake", load_trace(folder / MOONCAKE)),
        *generated_shapes(conv, seed),
    ]
    suite = []
    for name, trace in named:
        if volume != 1.0:
            scaled = scale_trace(trace, rate_scale=volume, seed=seed)
            trace = replace(scaled, source=f"{trace.source} x{volume:g} volume")
        fitted, clipped = fit_to_model(trace, kind, limit)
        suite.append(SuiteTrace(name, fitted, clipped))
    return suite
