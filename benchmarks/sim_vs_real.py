"""Benchmark: the simulator's prediction against a real replay on local Ray Serve.

Replays a time-compressed slice of the trace against a running Serve endpoint (the
embeddings route of configs/serve.local.yaml), while polling the dashboard for the
deployment's replicas; then simulates the same slice with the CPU profile, with the
replica count the real fleet had (or, with --governor, with the governor policy, when a
`governor run` daemon drives the real fleet). Prints p50/p95 latency and replica-seconds
side by side with the relative error and writes `sim_vs_real.json` and `.png` to --out.

Start the fleet first, e.g. `serve run configs/serve.local.yaml`, then:

    .venv/bin/python benchmarks/sim_vs_real.py --serve-app embeddings-v1 --time-scale 2
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from controller.config import load_config
from controller.errors import GovernorError
from controller.signals.replicas import replica_counts
from controller.sim import report
from controller.sim.engine import SimSettings, simulate
from controller.sim.metrics import outcomes, replica_seconds
from controller.sim.policies.base import Policy
from controller.sim.policies.governor import GovernorPolicy
from controller.sim.policies.static import StaticPolicy
from controller.sim.profile import load_profile
from controller.sim.replay import latency_summary, replay, requests_from_trace
from controller.sim.runner import find_app
from controller.sim.slo import request_slo
from controller.sim.trace import (
    default_trace_path,
    load_trace,
    repo_root,
    scale_trace,
    slice_trace,
)
from controller.transports.ray_dashboard import RayDashboardClient


class ReplicaPoller:
    """Counts a deployment's running + starting replicas every `period_s` in a thread."""

    def __init__(self, client: RayDashboardClient, app: str, deployment: str,
                 period_s: float = 1.0) -> None:
        self.client, self.app, self.deployment, self.period_s = client, app, deployment, period_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = 0.0

    def count(self) -> int | None:
        """Replicas running or starting now, or None when the status cannot be read."""
        try:
            doc = self.client.get_applications()
        except GovernorError:
            return None
        dep = ((doc.get("applications") or {}).get(self.app) or {}).get("deployments", {})
        status = (dep or {}).get(self.deployment)
        if status is None:
            return None
        running, starting = replica_counts(status)
        return running + starting

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self.count()
            if n is not None:
                self.samples.append((time.perf_counter() - self._start, n))
            self._stop.wait(self.period_s)

    def __enter__(self) -> ReplicaPoller:
        self._start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def replica_seconds(self, until_s: float) -> float:
        """Integral of the polled count from 0 to `until_s` (each sample held until the next)."""
        total = 0.0
        for (t, n), (t_next, _) in zip(self.samples, [*self.samples[1:], (until_s, 0)],
                                       strict=True):
            total += n * max(0.0, min(t_next, until_s) - t)
        return total


def relative_error(sim: float | None, real: float | None) -> float | None:
    """(sim - real) / real, or None when either is missing or real is 0."""
    if sim is None or real is None or real == 0:
        return None
    return (sim - real) / real


def main(argv: list[str] | None = None) -> int:
    """Run the replay and the simulation; 0 when both ran, 2 on bad input, 1 if Serve is down."""
    root = repo_root()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--serve-url", default="http://127.0.0.1:8000")
    p.add_argument("--dashboard", default="http://127.0.0.1:8265")
    p.add_argument("--config", type=Path, default=root / "configs/governor.local.yaml")
    p.add_argument("--app", default=None, help="application in the governor config")
    p.add_argument("--serve-app", default=None, help="Serve application name (default: --app)")
    p.add_argument("--profile", type=Path, default=root / "configs/profiles/minilm-cpu.yaml")
    p.add_argument("--trace", type=Path, default=None)
    p.add_argument("--start-s", type=float, default=1200.0, help="slice start in the trace")
    p.add_argument("--duration-s", type=float, default=300.0, help="slice length (trace time)")
    p.add_argument("--time-scale", type=float, default=2.0)
    p.add_argument("--rate-scale", type=float, default=1.0)
    p.add_argument("--model", default="minilm")
    p.add_argument("--route", default="/v1/embeddings")
    p.add_argument("--max-input-tokens", type=int, default=512)
    p.add_argument("--governor", action="store_true",
                   help="a `governor run` daemon drives the real fleet: simulate the governor")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=root / "out/benchmarks")
    args = p.parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True)
    try:
        config = load_config(args.config)
        app = find_app(config, args.app)
        profile = load_profile(args.profile)
        base = load_trace(args.trace or default_trace_path())
        trace = scale_trace(slice_trace(base, args.start_s, args.duration_s),
                            args.time_scale, args.rate_scale, args.seed)
    except GovernorError as e:
        err.print(f"error ({e.kind}): {e}", highlight=False)
        return 2
    deployment = app.version(app.stable_version).deployment
    client = RayDashboardClient(args.dashboard)
    poller = ReplicaPoller(client, args.serve_app or app.name, deployment)
    replicas_at_start = poller.count()
    if replicas_at_start is None:
        err.print(f"cannot read deployment {deployment!r} of Serve application "
                  f"{args.serve_app or app.name!r} at {args.dashboard}; is the fleet running?")
        return 1
    requests = requests_from_trace(trace, args.max_input_tokens)
    err.print(f"replaying {len(requests)} requests over {trace.duration_s:.0f} s against "
              f"{args.serve_url}{args.route} ({replicas_at_start} replicas at start)")
    with poller:
        results = replay(args.serve_url, requests, model=args.model, route=args.route)
    end_s = max(r.done_s for r in results)
    real = latency_summary(results)
    real["replica_seconds"] = poller.replica_seconds(end_s)

    policy: Policy = GovernorPolicy(config) if args.governor else StaticPolicy(replicas_at_start)
    result = simulate(trace, profile, app, policy, SimSettings(seed=args.seed))
    o = outcomes(result, request_slo(app, profile))
    sim_summary = latency_summary_from_sim(o.latency_ms)
    sim_summary["replica_seconds"] = replica_seconds(result)

    table = Table(title=f"sim vs real: {len(requests)} requests, trace {args.start_s:.0f}+"
                  f"{args.duration_s:.0f} s compressed {args.time_scale:g}x")
    for col in ("metric", "real", "sim", "relative error"):
        table.add_column(col, justify="right")
    rows: dict[str, Any] = {}
    for key in ("p50_ms", "p95_ms", "p99_ms", "replica_seconds"):
        r, s = real.get(key), sim_summary.get(key)
        rel = relative_error(s, r)
        rows[key] = {"real": r, "sim": s, "relative_error": rel}
        table.add_row(key, f"{r:.1f}" if r is not None else "-",
                      f"{s:.1f}" if s is not None else "-",
                      f"{rel:+.1%}" if rel is not None else "-")
    out.print(table)
    out.print(f"real: {real['answered']} answered, {real['failed']} failed, "
              f"{real['late_sends']} sent late", highlight=False)
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json({"comparison": rows, "real": real, "sim": sim_summary,
                       "settings": {k: str(v) for k, v in vars(args).items()},
                       "replicas_real": poller.samples,
                       "profile_source": profile.source}, args.out / "sim_vs_real.json")
    plot(results, o.latency_ms, poller.samples, result, args.out / "sim_vs_real.png")
    return 0


def latency_summary_from_sim(latency_ms: Any) -> dict[str, float | int | None]:
    """p50/p95/p99 of the simulated latencies of answered requests."""
    import numpy as np

    ok = latency_ms[~np.isnan(latency_ms)]

    def q(p: float) -> float | None:
        return float(np.quantile(ok, p)) if ok.size else None

    return {"requests": int(latency_ms.size), "answered": int(ok.size),
            "p50_ms": q(0.5), "p95_ms": q(0.95), "p99_ms": q(0.99)}


def plot(results: Any, sim_latency_ms: Any, real_replicas: list[tuple[float, int]],
         sim_result: Any, path: Path) -> None:
    """Latency distributions and replicas over time, real against simulated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 7))
    real_ms = np.sort([r.latency_s * 1000.0 for r in results if r.ok])
    sim_ms = np.sort(sim_latency_ms[~np.isnan(sim_latency_ms)])
    for values, label in ((real_ms, "real"), (sim_ms, "sim")):
        if len(values):
            a.plot(values, np.arange(1, len(values) + 1) / len(values), label=label)
    a.set_xscale("log")
    a.set_xlabel("latency (ms)")
    a.set_ylabel("fraction of requests")
    a.legend()
    if real_replicas:
        b.step([t for t, _ in real_replicas], [n for _, n in real_replicas], where="post",
               label="real")
    times = sim_result.obs.times
    held = [s.running + s.starting for s in sim_result.obs.samples[sim_result.versions[0]]]
    b.step(times, held, where="post", label="sim")
    b.set_xlabel("seconds of the replay")
    b.set_ylabel("replicas")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
