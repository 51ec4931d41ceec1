"""Benchmark: the embedding model raw in one process vs the same model behind Ray Serve.

Raw: `serving.embedding.Embedder` (the code the replicas run) called in a loop with
batches of each size, in this process, just before and just after the Serve points of
that size (their mean is the reference).
Serve: one local Ray, the `serving.app:build_app` application with one version,
`max_batch_size` changed live through the model's user_config, and closed-loop HTTP
clients (`--concurrency` of them, each waiting for its answer before sending again)
posting `--inputs-per-request` texts each to `/v1/embeddings`.

Reports inputs/s, request latency p50/p95, the Serve/raw throughput ratio at saturation
(best Serve throughput at the largest max_batch_size over raw at that batch size), and
the batching speedup (best Serve throughput at the largest max_batch_size over
max_batch_size=1). Prints a table and writes dataplane.json and dataplane.png to --out.

    .venv/bin/python benchmarks/dataplane.py                 # CPU, a few minutes
    .venv/bin/python benchmarks/dataplane.py --device cuda   # see benchmarks/gpu_check.sh
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

APP = "embeddings"
MODEL_NAME = "minilm"
VOCABULARY = (
    "the a model serves batches of requests with low latency while replicas scale up and "
    "down under a budget; traffic moves between versions by weight and every change is "
    "logged with its reasons so operators can audit cost latency and errors per team"
)


@dataclass(frozen=True)
class Row:
    """One measured point."""

    mode: str
    max_batch_size: int
    concurrency: int
    inputs_per_request: int
    inputs_per_s: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    errors: int
    load_avg_1m: float


def make_texts(count: int, seed: int = 0) -> list[str]:
    """Deterministic sentences of 8 to 24 words."""
    rng = random.Random(seed)
    words = VOCABULARY.split()
    return [" ".join(rng.choices(words, k=rng.randint(8, 24))) for _ in range(count)]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_raw(
    embed: Callable[[list[str]], Any], batch_sizes: list[int], texts: list[str], seconds: float
) -> list[Row]:
    """Throughput and batch latency of the model called directly, per batch size."""
    rows = []
    for size in batch_sizes:
        batches = [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]
        embed(batches[0])
        latencies: list[float] = []
        started = time.perf_counter()
        done = 0
        while time.perf_counter() - started < seconds:
            t0 = time.perf_counter()
            embed(batches[len(latencies) % len(batches)])
            latencies.append((time.perf_counter() - t0) * 1000.0)
            done += size
        elapsed = time.perf_counter() - started
        rows.append(
            Row(
                "raw",
                size,
                1,
                size,
                done / elapsed,
                len(latencies) / elapsed,
                statistics.median(latencies),
                percentile(latencies, 0.95),
                0,
                os.getloadavg()[0],
            )
        )
    return rows


async def closed_loop(
    url: str,
    concurrency: int,
    inputs: int,
    texts: list[str],
    seconds: float,
    warmup_s: float,
    encoding: str = "base64",
) -> tuple[list[float], int, float]:
    """Run `concurrency` clients for warm-up plus `seconds`; latencies of answers inside."""
    latencies: list[float] = []
    errors = 0
    # aiohttp (a Ray dependency) costs less CPU per request than httpx, and the load
    # generator shares the host's cores with the server it measures.
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        begin = time.perf_counter()
        measure_from = begin + warmup_s
        stop_at = measure_from + seconds

        async def worker(index: int) -> None:
            nonlocal errors
            position = index * inputs
            while time.perf_counter() < stop_at:
                batch = [texts[(position + j) % len(texts)] for j in range(inputs)]
                position += concurrency * inputs
                t0 = time.perf_counter()
                body = {"model": MODEL_NAME, "input": batch, "encoding_format": encoding}
                async with client.post(url, json=body) as response:
                    await response.read()
                t1 = time.perf_counter()
                if measure_from <= t1 <= stop_at:
                    if response.status == 200:
                        latencies.append((t1 - t0) * 1000.0)
                    else:
                        errors += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return latencies, errors, seconds


def serve_config(args: argparse.Namespace, max_batch_size: int, http_port: int) -> dict[str, Any]:
    """The Serve config of the benchmarked application."""
    gpu = args.device == "cuda"
    model_options: dict[str, Any] = {"num_cpus": 0 if gpu else 1}
    if gpu:
        model_options["num_gpus"] = 1
    version = {"name": "v1", "model": args.model, "device": args.device, "dtype": args.dtype}
    if args.threads:
        version["torch_threads"] = args.threads
    return {
        "http_options": {"host": "127.0.0.1", "port": http_port},
        "applications": [
            {
                "name": APP,
                "route_prefix": "/",
                "import_path": "serving.app:build_app",
                "external_scaler_enabled": True,
                "args": {
                    "task": "embeddings",
                    "model_name": MODEL_NAME,
                    "max_inputs": max(args.inputs_per_request),
                    "versions": [version],
                },
                "deployments": [
                    {
                        "name": "router",
                        "num_replicas": args.routers,
                        "max_ongoing_requests": 1024,
                        "ray_actor_options": {"num_cpus": 0},
                    },
                    {
                        "name": "model_v1",
                        "num_replicas": 1,
                        "max_ongoing_requests": 1024,
                        "user_config": {
                            "max_batch_size": max_batch_size,
                            "batch_wait_timeout_s": args.batch_wait_timeout_s,
                        },
                        "ray_actor_options": model_options,
                    },
                ],
            }
        ],
    }


def wait_until_running(client: Any, timeout_s: float = 300.0) -> None:
    """Wait for the benchmarked application to be RUNNING with every deployment healthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = (client.get_applications().get("applications") or {}).get(APP) or {}
        deployments = app.get("deployments", {}).values()
        if app.get("status") == "RUNNING" and all(d["status"] == "HEALTHY" for d in deployments):
            return
        if app.get("status") == "DEPLOY_FAILED":
            raise RuntimeError(f"benchmark application failed: {app.get('message')}")
        time.sleep(0.5)
    raise RuntimeError("benchmark application did not start in time")


def wait_for_batch_size(versions_url: str, size: int, timeout_s: float = 60.0) -> None:
    """Wait until the v1 replica reports `max_batch_size == size` (a live reconfigure)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            batching = httpx.get(versions_url, timeout=10).json()["v1"].get("batching") or {}
        except (httpx.HTTPError, ValueError, KeyError):
            batching = {}
        if batching.get("max_batch_size") == size:
            return
        time.sleep(0.5)
    raise RuntimeError(f"max_batch_size={size} was not applied in time")


def measure(
    args: argparse.Namespace,
    embed: Callable[[list[str]], Any],
    texts: list[str],
    console: Console,
) -> tuple[list[Row], list[Row]]:
    """Raw and Serve rows; per batch size raw is measured just before and just after Serve.

    On a host whose load changes, the mean of the two keeps the ratio fair.
    """
    from ray import serve

    from controller.demo.local_ray import free_port, local_ray, serve_http_options
    from controller.transports.ray_dashboard import RayDashboardClient

    raw: list[Row] = []
    rows: list[Row] = []
    num_gpus = 1 if args.device == "cuda" else 0
    with local_ray(num_cpus=args.ray_cpus, dashboard_port=free_port()) as head:
        if num_gpus:
            console.print("GPU visible to Ray:", _ray_gpus())
        http_port = free_port()
        serve.start(http_options=serve_http_options(http_port))
        client = RayDashboardClient(head.dashboard_url, timeout_s=60)
        url = f"http://127.0.0.1:{http_port}/v1/embeddings"
        try:
            for size in args.batch_sizes:
                client.put_applications(serve_config(args, size, http_port))
                wait_until_running(client)
                wait_for_batch_size(f"http://127.0.0.1:{http_port}/versions", size)
                raw += measure_raw(embed, [size], texts, args.seconds)
                console.print(f"raw batch={size}: {raw[-1].inputs_per_s:.0f} inputs/s")
                for inputs in args.inputs_per_request:
                    for concurrency in args.concurrency:
                        rows.append(measure_point(args, url, size, concurrency, inputs, texts))
                        console.print(
                            f"serve max_batch_size={size} clients={concurrency} "
                            f"inputs/request={inputs}: {rows[-1].inputs_per_s:.0f} inputs/s"
                        )
                raw += measure_raw(embed, [size], texts, args.seconds)
                console.print(f"raw batch={size} again: {raw[-1].inputs_per_s:.0f} inputs/s")
        finally:
            client.close()
    return raw, rows


def measure_point(
    args: argparse.Namespace, url: str, size: int, concurrency: int, inputs: int, texts: list[str]
) -> Row:
    """One Serve point: closed-loop clients against the running application."""
    latencies, errors, seconds = asyncio.run(
        closed_loop(
            url, concurrency, inputs, texts, args.seconds, args.warmup, args.encoding_format
        )
    )
    return Row(
        "serve",
        size,
        concurrency,
        inputs,
        len(latencies) * inputs / seconds,
        len(latencies) / seconds,
        percentile(latencies, 0.5),
        percentile(latencies, 0.95),
        errors,
        os.getloadavg()[0],
    )


def _ray_gpus() -> float:
    import ray

    return float(ray.cluster_resources().get("GPU", 0))


def _raw_means(raw: list[Row]) -> dict[int, float]:
    """Mean raw throughput per batch size (over the before and after measurements)."""
    sizes = sorted({row.max_batch_size for row in raw})
    return {
        size: statistics.mean(r.inputs_per_s for r in raw if r.max_batch_size == size)
        for size in sizes
    }


def _ratios(raw: list[Row], served: list[Row]) -> dict[str, Any]:
    best: dict[int, float] = {}
    for row in served:
        best[row.max_batch_size] = max(best.get(row.max_batch_size, 0.0), row.inputs_per_s)
    raw_by_size = _raw_means(raw)
    largest, smallest = max(best), min(best)
    return {
        "serve_best_inputs_per_s": best,
        "saturation_batch_size": largest,
        "serve_over_raw_at_saturation": best[largest] / raw_by_size[largest],
        "batching_speedup": best[largest] / best[smallest],
        "batching_speedup_vs_batch_size": smallest,
    }


def summarize(raw: list[Row], served: list[Row]) -> dict[str, Any]:
    """The two headline ratios over every load, and the same per inputs-per-request."""
    shapes = sorted({row.inputs_per_request for row in served})
    return {
        **_ratios(raw, served),
        "raw_inputs_per_s": _raw_means(raw),
        "by_inputs_per_request": {
            k: _ratios(raw, [r for r in served if r.inputs_per_request == k]) for k in shapes
        },
    }


def print_report(console: Console, rows: list[Row], summary: dict[str, Any]) -> None:
    """The table of every point, then the two ratios."""
    table = Table(title="data plane: raw model vs Ray Serve over HTTP")
    for column in (
        "mode",
        "max_batch",
        "clients",
        "inputs/req",
        "inputs/s",
        "req/s",
        "p50 ms",
        "p95 ms",
        "errors",
        "load 1m",
    ):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r.mode,
            str(r.max_batch_size),
            str(r.concurrency),
            str(r.inputs_per_request),
            f"{r.inputs_per_s:.1f}",
            f"{r.requests_per_s:.1f}",
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            str(r.errors),
            f"{r.load_avg_1m:.1f}",
        )
    console.print(table)
    console.print(
        f"Serve/raw throughput at saturation (max_batch_size="
        f"{summary['saturation_batch_size']}): {summary['serve_over_raw_at_saturation']:.2f}x"
    )
    console.print(
        f"batching speedup (max_batch_size={summary['saturation_batch_size']} over "
        f"{summary['batching_speedup_vs_batch_size']}): {summary['batching_speedup']:.2f}x"
    )
    for inputs, ratios in summary["by_inputs_per_request"].items():
        console.print(
            f"  with {inputs} inputs/request: Serve/raw "
            f"{ratios['serve_over_raw_at_saturation']:.2f}x, "
            f"batching speedup {ratios['batching_speedup']:.2f}x"
        )


def plot(rows: list[Row], path: Path) -> None:
    """Serve throughput against clients, one panel per inputs/request; raw as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    served = [r for r in rows if r.mode == "serve"]
    shapes = sorted({r.inputs_per_request for r in served})
    figure, axes = plt.subplots(1, len(shapes), figsize=(6 * len(shapes), 4.5), squeeze=False)
    for axis, inputs in zip(axes[0], shapes, strict=True):
        for size in sorted({r.max_batch_size for r in served}):
            points = sorted(
                (r.concurrency, r.inputs_per_s)
                for r in served
                if r.max_batch_size == size and r.inputs_per_request == inputs
            )
            line = axis.plot(*zip(*points, strict=True), marker="o", label=f"serve, batch {size}")
            raw = _raw_means([r for r in rows if r.mode == "raw"]).get(size)
            if raw is not None:
                color = line[0].get_color()
                axis.axhline(raw, linestyle="--", color=color, label=f"raw, batch {size}")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel("inputs / s")
        axis.set_title(f"{inputs} input(s) per request")
        axis.legend(fontsize=8)
    figure.suptitle("MiniLM embeddings: raw model vs Ray Serve over HTTP")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"]
    )
    parser.add_argument("--model", default="bundled:all-MiniLM-L6-v2")
    parser.add_argument("--batch-sizes", type=_ints, default=[1, 8, 32])
    parser.add_argument("--concurrency", type=_ints, default=[1, 8, 32])
    parser.add_argument("--inputs-per-request", type=_ints, default=[1, 16])
    parser.add_argument("--seconds", type=float, default=6.0, help="measured time per point")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured time per point")
    parser.add_argument(
        "--encoding-format",
        choices=["base64", "float"],
        default="base64",
        help="embedding encoding asked for (the openai client asks for base64)",
    )
    parser.add_argument("--batch-wait-timeout-s", type=float, default=0.005)
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads, raw and in the replica (0: torch default)",
    )
    parser.add_argument("--routers", type=int, default=1)
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("out/benchmarks"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write JSON and PNG under --out."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Ray starts workers at niceness 15; the raw run is at 0. On a shared host that alone
    # would tilt the comparison, so the replicas run at the raw run's priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    # As in configs/serve.local.yaml; set before torch loads OpenMP, for raw and replicas.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    console = Console()
    from serving.embedding import Embedder
    from serving.loading import set_torch_threads
    from serving.spec import VersionSpec

    texts = make_texts(2048)
    set_torch_threads(args.threads or None)
    spec = VersionSpec(name="v1", model=args.model, device=args.device, dtype=args.dtype)
    embedder = Embedder.load(spec)
    raw, served = measure(args, embedder.embed, texts, console)
    rows = raw + served
    summary = summarize(raw, served)
    print_report(console, rows, summary)
    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    document = {"settings": settings, "rows": [asdict(r) for r in rows], "summary": summary}
    (args.out / "dataplane.json").write_text(json.dumps(document, indent=2))
    plot(rows, args.out / "dataplane.png")
    console.print(f"wrote {args.out / 'dataplane.json'} and {args.out / 'dataplane.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
