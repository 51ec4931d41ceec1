"""Benchmark: continuous batching raw, the same through Serve with streaming, and static
batching, at several concurrencies.

The model is a GPT-2 made on the spot (`serving.local_models.SMALL`: random weights, 4
layers, 1,024-token context; nothing is downloaded), so the figures measure the serving
machinery, not a language model. Each request's output length is drawn from the shared
Azure conversation trace's output tokens (clipped to `--max-tokens`); the random model
may end a sequence sooner (end-of-sequence), and throughput counts the tokens generated.
`--concurrency`
clients each send their next request when the last one is answered (closed loop):

- **raw**: `ContinuousEngine` (transformers' continuous batching) in this process;
- **serve**: the same engine in a Serve replica behind the router, streamed as
  server-sent events over HTTP (`/v1/completions`, `stream: true`);
- **static**: `Generator.generate`: the waiting prompts run as one left-padded batch to
  the longest of them, a new request waits for the batch before it (the batching
  generation replicas had before continuous batching).

Per column: output tokens per second, TTFT and TPOT p50/p95 (for static, TTFT is the
whole answer: its tokens arrive at once).

    flock /tmp/governor-ray.lock .venv/bin/python benchmarks/generation.py   # ~5 minutes

Prints a table and writes generation.json and generation.png under --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from dataplane import percentile  # a sibling: scripts run with their folder on sys.path
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "the quick brown fox jumps over the lazy dog"
TRACE = ROOT / "../shared/traces/AzureLLMInferenceTrace_conv.csv"


@dataclass(frozen=True)
class Answer:
    """One request: tokens generated, seconds to the first, seconds in all."""

    tokens: int
    ttft_s: float
    total_s: float
    step_s: float | None = None
    """Static batching: the batch's time over its decode steps (its tokens arrive at once)."""

    @property
    def tpot_s(self) -> float | None:
        """Seconds per output token after the first (static: per decode step)."""
        if self.step_s is not None:
            return self.step_s
        return (self.total_s - self.ttft_s) / (self.tokens - 1) if self.tokens > 1 else None


@dataclass(frozen=True)
class Cell:
    """One mode at one concurrency."""

    mode: str
    concurrency: int
    requests: int
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    tpot_p50_ms: float
    tpot_p95_ms: float


def summarize(mode: str, concurrency: int, answers: list[Answer], seconds: float) -> Cell:
    """Throughput and token latencies of one run."""
    ttft = [a.ttft_s * 1000 for a in answers]
    tpot = [a.tpot_s * 1000 for a in answers if a.tpot_s is not None]
    return Cell(
        mode, concurrency, len(answers), sum(a.tokens for a in answers) / seconds,
        percentile(ttft, 0.5), percentile(ttft, 0.95),
        percentile(tpot, 0.5), percentile(tpot, 0.95),
    )  # fmt: skip


def output_lengths(trace: Path, count: int, max_tokens: int, seed: int) -> list[int]:
    """`count` output lengths drawn from the trace, clipped to 2..max_tokens."""
    from controller.sim.trace import load_trace

    drawn = np.random.default_rng(seed).choice(load_trace(trace).output_tokens, size=count)
    return [int(min(max(n, 2), max_tokens)) for n in drawn]


async def closed_loop(concurrency: int, lengths: list[int], one: Any) -> tuple[list[Answer], float]:
    """`concurrency` clients sending the requests of `lengths` one after another."""
    queue = list(reversed(lengths))
    answers: list[Answer] = []

    async def client() -> None:
        while queue:
            answers.append(await one(queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return answers, time.perf_counter() - started


def run_raw(generator: Any, concurrency: int, lengths: list[int]) -> Cell:
    """Continuous batching in this process."""
    from serving.continuous import ContinuousEngine

    engine = ContinuousEngine(generator, max_sequences=max(concurrency, 1))
    engine.start()

    async def one(length: int) -> Answer:
        prompt = generator.encode(PROMPT, max_tokens=length, temperature=1.0)
        started = time.perf_counter()
        first, tokens = None, 0
        async for delta in engine.stream(prompt):
            if first is None and delta.completion_tokens:
                first = time.perf_counter() - started
            tokens = delta.completion_tokens
        total = time.perf_counter() - started
        return Answer(tokens, first if first is not None else total, total)

    try:
        answers, seconds = asyncio.run(closed_loop(concurrency, lengths, one))
    finally:
        engine.stop()
    return summarize("raw", concurrency, answers, seconds)


def run_static(generator: Any, concurrency: int, lengths: list[int]) -> Cell:
    """Static batches: what waits runs as one `generate` to its longest output."""
    pending = list(lengths)
    answers: list[Answer] = []
    started = time.perf_counter()
    while pending:
        batch, pending = pending[:concurrency], pending[concurrency:]
        prompts = [generator.encode(PROMPT, max_tokens=n, temperature=1.0) for n in batch]
        t0 = time.perf_counter()
        done = generator.generate(prompts)
        took = time.perf_counter() - t0
        step = took / max(batch)
        answers += [Answer(c.completion_tokens, took, took, step) for c in done]
    return summarize("static", concurrency, answers, time.perf_counter() - started)


async def _stream_one(client: Any, url: str, length: int) -> Answer:
    body = {
        "model": "bench-lm",
        "prompt": PROMPT,
        "max_tokens": length,
        "temperature": 1.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first, tokens = None, 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["text"] and first is None:
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    total = time.perf_counter() - started
    return Answer(tokens, first if first is not None else total, total)


def run_serve(
    model: str,
    device: str,
    concurrencies: list[int],
    lengths: list[int],
    cpus: int,
    stream_interval_s: float = 0.0,
) -> list[Cell]:
    """The same engine in a Serve replica, streamed over HTTP, at each concurrency."""
    import httpx
    from overload import wait_until_running  # a sibling script

    from controller.demo.local_ray import free_port, local_ray
    from controller.transports.ray_dashboard import RayDashboardClient

    cells = []
    with local_ray(num_cpus=cpus, dashboard_port=free_port()) as head:
        from ray import serve

        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        dashboard = RayDashboardClient(head.dashboard_url, timeout_s=120)
        try:
            for concurrency in concurrencies:
                dashboard.put_applications(
                    serve_config(model, device, port, concurrency, stream_interval_s)
                )
                wait_until_running(dashboard, "bench")
                url = f"http://127.0.0.1:{port}/v1/completions"

                async def measure(
                    c: int = concurrency, at: str = url
                ) -> tuple[list[Answer], float]:
                    async with httpx.AsyncClient(timeout=600) as client:
                        return await closed_loop(c, lengths, lambda n: _stream_one(client, at, n))

                answers, seconds = asyncio.run(measure())
                cells.append(summarize("serve", concurrency, answers, seconds))
        finally:
            dashboard.close()
    return cells


def serve_config(
    model: str, device: str, port: int, concurrency: int, stream_interval_s: float = 0.0
) -> dict[str, Any]:
    """One generation application of the benchmark model; its batch holds `concurrency`."""
    return {
        "http_options": {"host": "127.0.0.1", "port": port},
        "applications": [
            {
                "name": "bench",
                "route_prefix": "/",
                "import_path": "serving.app:build_app",
                "args": {
                    "task": "generation",
                    "model_name": "bench-lm",
                    "max_tokens_limit": 1000,
                    "versions": [
                        {"name": "v1", "model": model, "device": device, "torch_threads": 1}
                    ],
                },
                "deployments": [
                    {"name": "router", "ray_actor_options": {"num_cpus": 0.25}},
                    {
                        "name": "model_v1",
                        "max_ongoing_requests": 4 * concurrency,
                        "user_config": {
                            "max_batch_size": concurrency,
                            "stream_interval_s": stream_interval_s,
                        },
                        "ray_actor_options": {"num_cpus": 0.5}
                        | ({"num_gpus": 1} if device == "cuda" else {}),
                    },
                ],
            }
        ],
    }


def print_table(console: Console, cells: list[Cell]) -> None:
    """The cells as a table, concurrency by concurrency."""
    table = Table(title="generation: output tokens/s, TTFT and TPOT (ms)")
    for column in ("concurrency", "mode", "requests", "tokens/s", "TTFT p50", "TTFT p95",
                   "TPOT p50", "TPOT p95"):  # fmt: skip
        table.add_column(column, justify="right")
    for c in sorted(cells, key=lambda c: (c.concurrency, c.mode)):
        table.add_row(
            str(c.concurrency), c.mode, str(c.requests), f"{c.tokens_per_s:.0f}",
            f"{c.ttft_p50_ms:.0f}", f"{c.ttft_p95_ms:.0f}",
            f"{c.tpot_p50_ms:.1f}", f"{c.tpot_p95_ms:.1f}",
        )  # fmt: skip
    console.print(table)


def ratios(cells: list[Cell]) -> dict[str, Any]:
    """The targets: serve/raw tokens/s at the highest concurrency; raw/static at each."""
    by = {(c.mode, c.concurrency): c for c in cells}
    top = max(c.concurrency for c in cells)
    out: dict[str, Any] = {}
    if ("serve", top) in by and ("raw", top) in by:
        out["serve_over_raw_at_saturation"] = (
            by["serve", top].tokens_per_s / by["raw", top].tokens_per_s
        )
    out["continuous_over_static"] = {
        c: by["raw", c].tokens_per_s / by["static", c].tokens_per_s
        for (mode, c) in by
        if mode == "raw" and ("static", c) in by
    }
    return out


def plot(cells: list[Cell], path: Path) -> None:
    """Tokens/s and TPOT p95 against concurrency, one line per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("raw", "serve", "static"):
        mine = sorted((c for c in cells if c.mode == mode), key=lambda c: c.concurrency)
        if mine:
            xs = [c.concurrency for c in mine]
            left.plot(xs, [c.tokens_per_s for c in mine], marker="o", label=mode)
            right.plot(xs, [c.tpot_p95_ms for c in mine], marker="o", label=mode)
    left.set_xlabel("concurrent clients")
    left.set_ylabel("output tokens/s")
    right.set_xlabel("concurrent clients")
    right.set_ylabel("TPOT p95 (ms)")
    left.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    """Run every mode at every concurrency; print, write JSON and PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=lambda t: [int(x) for x in t.split(",")],
                        default=[1, 4, 16])  # fmt: skip
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--model-dir", type=Path, default=ROOT / ".cache/bench-lm")
    parser.add_argument(
        "--model",
        default=None,
        help="a model to use instead (a path, or a hub id in the local cache)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument(
        "--stream-interval-s",
        type=float,
        default=0.0,
        help="the replica's stream_interval_s: tokens within it go out as one event",
    )
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "out/benchmarks")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    console = Console(width=120)

    import torch

    from serving.generation import Generator
    from serving.local_models import SMALL, build_causal_lm
    from serving.spec import VersionSpec

    torch.set_num_threads(1)
    model = args.model
    if model is None:
        model = str(args.model_dir)
        if not (args.model_dir / "config.json").exists():
            console.print(f"making the benchmark model in {args.model_dir} ...")
            args.model_dir.mkdir(parents=True, exist_ok=True)
            build_causal_lm(args.model_dir, SMALL)
    generator = Generator.load(VersionSpec(name="v1", model=model, device=args.device))
    lengths = output_lengths(args.trace, args.requests, args.max_tokens, seed=0)
    cells: list[Cell] = []
    for concurrency in args.concurrency:
        for run in (run_raw, run_static):
            cells.append(run(generator, concurrency, lengths))
            console.print(
                f"{cells[-1].mode} at {concurrency}: {cells[-1].tokens_per_s:.0f} tokens/s"
            )
    if not args.skip_serve:
        cells += run_serve(
            model, args.device, args.concurrency, lengths, args.ray_cpus, args.stream_interval_s
        )
    print_table(console, cells)
    report = {
        "model": model,
        "device": args.device,
        "requests": args.requests,
        "stream_interval_s": args.stream_interval_s,
        "output_tokens": {"mean": float(np.mean(lengths)), "max": max(lengths)},
        "cells": [asdict(c) for c in cells],
        "ratios": ratios(cells),
        "load_avg_1m": os.getloadavg()[0],
    }
    console.print(report["ratios"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(cells, args.out / "generation.png")
    console.print(f"wrote {args.out / 'generation.json'} and {args.out / 'generation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
