"""Service-time profiles: how long a replica of one model on one kind of hardware takes.

Two shapes: an *encoder* (embeddings; dynamic batching) described by a measured
throughput-versus-batch curve, and a *generation* model (continuous batching) described
by a prefill cost per prompt token and a decode-step time that grows with the batch and
the tokens held in the KV cache. Every profile names the source of its numbers.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from controller.config import format_validation_error
from controller.sim.errors import SimInputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EncoderModel(_Strict):
    """An encoder's measured throughput by batch size."""

    throughput_seq_per_s: dict[int, float] = Field(min_length=1)
    """Sequences per second at each measured batch size."""
    reference_tokens: int | None = Field(default=None, gt=0)
    """Tokens per sequence in the measurement; None ignores request lengths."""
    max_tokens: int | None = Field(default=None, gt=0)
    """The model truncates inputs to this many tokens."""

    @model_validator(mode="after")
    def _curve(self) -> EncoderModel:
        if any(b < 1 for b in self.throughput_seq_per_s):
            raise ValueError("batch sizes in throughput_seq_per_s must be >= 1")
        if any(v <= 0 for v in self.throughput_seq_per_s.values()):
            raise ValueError("throughputs in throughput_seq_per_s must be > 0")
        return self


class GenerationModel(_Strict):
    """A decoder's prefill and decode costs."""

    prefill_ms_fixed: float = Field(ge=0)
    prefill_ms_per_token: float = Field(gt=0)
    decode_step_ms_fixed: float = Field(gt=0)
    """One decode iteration at batch 1 with an empty KV cache."""
    decode_step_ms_per_seq: float = Field(ge=0)
    decode_step_ms_per_context_token: float = Field(ge=0)
    """Extra time per token held in the KV cache of the running batch (attention reads)."""
    max_context_tokens: int | None = Field(default=None, gt=0)
    """Prompts are truncated to this many tokens."""


class Serving(_Strict):
    """How the deployment batches and queues (the data plane's settings)."""

    max_batch_size: int = Field(ge=1)
    """Encoder: `@serve.batch` max_batch_size. Generation: max sequences in flight."""
    batch_wait_ms: float = Field(default=0, ge=0)
    """Encoder: how long a partial batch waits for more requests."""
    max_ongoing_requests: int | None = Field(default=None, ge=1)
    """Requests a replica accepts at once; None means max_batch_size."""
    max_batched_tokens: int = Field(default=8192, ge=1)
    """Generation: prompt tokens prefilled in one iteration (at least one prompt)."""
    queue_limit: int = Field(default=1000, ge=0)
    """Requests waiting at the router beyond this are rejected (HTTP 503)."""

    @property
    def ongoing_limit(self) -> int:
        """Requests one replica accepts at once."""
        return self.max_ongoing_requests or self.max_batch_size


class Profile(_Strict):
    """One model on one kind of hardware, with the source of its numbers."""

    name: str = Field(min_length=1)
    kind: Literal["encoder", "generation"]
    model: str = Field(min_length=1)
    hardware: str = Field(min_length=1)
    gpu_type: str | None = None
    """The price key this profile was measured on (checked against the app's gpu_type)."""
    source: str = Field(min_length=1)
    startup_s: float = Field(ge=0)
    """Model load: from replica start until it serves."""
    host_parallelism: float | None = Field(default=None, gt=0)
    """Replicas that can compute at full speed at once on the shared host; None: unshared."""
    encoder: EncoderModel | None = None
    generation: GenerationModel | None = None
    serving: Serving

    @model_validator(mode="after")
    def _kind(self) -> Profile:
        if self.kind == "encoder" and self.encoder is None:
            raise ValueError("kind encoder needs an encoder section")
        if self.kind == "generation" and self.generation is None:
            raise ValueError("kind generation needs a generation section")
        return self

    def slowed(self, factor: float) -> Profile:
        """This profile with every compute time multiplied by `factor` (a slower build)."""
        if factor == 1.0:
            return self
        if factor <= 0 or not math.isfinite(factor):
            raise SimInputError(f"a slow-down factor must be positive and finite, got {factor}")
        update: dict[str, object] = {"name": f"{self.name} x{factor:g}"}
        if self.encoder is not None:
            curve = {b: v / factor for b, v in self.encoder.throughput_seq_per_s.items()}
            update["encoder"] = self.encoder.model_copy(update={"throughput_seq_per_s": curve})
        if self.generation is not None:
            g = self.generation
            update["generation"] = g.model_copy(
                update={
                    "prefill_ms_fixed": g.prefill_ms_fixed * factor,
                    "prefill_ms_per_token": g.prefill_ms_per_token * factor,
                    "decode_step_ms_fixed": g.decode_step_ms_fixed * factor,
                    "decode_step_ms_per_seq": g.decode_step_ms_per_seq * factor,
                    "decode_step_ms_per_context_token": g.decode_step_ms_per_context_token * factor,
                }
            )
        return self.model_copy(update=update)

    def batch_time_s(self, batch: int, longest_tokens: int) -> float:
        """Seconds an encoder replica takes for a batch whose longest input has these tokens."""
        enc = self.encoder
        assert enc is not None
        seconds = batch / _interpolate(enc.throughput_seq_per_s, batch)
        if enc.reference_tokens is None:
            return seconds
        tokens = min(longest_tokens, enc.max_tokens) if enc.max_tokens else longest_tokens
        return seconds * max(tokens, 1) / enc.reference_tokens

    def prompt_tokens(self, tokens: int) -> int:
        """Prompt tokens the model really processes (after truncation)."""
        gen = self.generation
        cap = gen.max_context_tokens if gen is not None else None
        return min(tokens, cap) if cap else tokens

    def prefill_time_s(self, tokens: int) -> float:
        """Seconds one prefill iteration over `tokens` prompt tokens takes."""
        gen = self.generation
        assert gen is not None
        return (gen.prefill_ms_fixed + gen.prefill_ms_per_token * tokens) / 1000.0

    def decode_step_s(self, batch: int, context_tokens: float) -> float:
        """Seconds one decode iteration takes for `batch` sequences holding `context_tokens`."""
        gen = self.generation
        assert gen is not None
        return (
            gen.decode_step_ms_fixed
            + gen.decode_step_ms_per_seq * batch
            + gen.decode_step_ms_per_context_token * context_tokens
        ) / 1000.0

    def alone_times_s(self, prompt: int, output: int) -> tuple[float, float, float]:
        """(latency, time to first token, time per output token) of a request served alone."""
        if self.kind == "encoder":
            t = self.batch_time_s(1, prompt)
            return t, t, 0.0
        p = self.prompt_tokens(prompt)
        ttft = self.prefill_time_s(p)
        tpot = self.decode_step_s(1, p + output / 2)
        return ttft + tpot * max(output - 1, 0), ttft, tpot


def _interpolate(curve: dict[int, float], batch: int) -> float:
    """Throughput at `batch`, linear in log2(batch) between measured points, flat outside."""
    points = sorted(curve.items())
    if batch <= points[0][0]:
        return points[0][1]
    for (b0, v0), (b1, v1) in itertools.pairwise(points):
        if batch <= b1:
            x = (math.log2(batch) - math.log2(b0)) / (math.log2(b1) - math.log2(b0))
            return v0 + (v1 - v0) * x
    return points[-1][1]


def parse_profile(data: object, source: str = "<profile>") -> Profile:
    """Validate a parsed YAML document into a Profile, or raise SimInputError."""
    if not isinstance(data, dict):
        raise SimInputError(f"{source}: the profile must be a mapping, got {type(data).__name__}")
    try:
        return Profile.model_validate(data)
    except ValidationError as err:
        raise SimInputError(format_validation_error(err, source)) from err


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file, or raise SimInputError."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as err:
        raise SimInputError(f"{p}: cannot read the profile: {err.strerror or err}") from err
    except yaml.YAMLError as err:
        raise SimInputError(f"{p}: not valid YAML: {err}") from err
    return parse_profile(data, str(p))
