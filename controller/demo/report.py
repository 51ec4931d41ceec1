"""The demo's timeline, its PNG plot and its summary."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controller.config import SLO, GovernorConfig
from controller.daemon import TickReport


@dataclass
class TimelinePoint:
    """One control tick as the demo saw it."""

    t: float
    offered_rps: float
    client_p95_ms: float | None
    p95_ms: dict[str, float | None]
    running: dict[str, int | None]
    desired: dict[str, int | None]
    weights: dict[str, int]
    cost_per_hour: float
    rollout_phase: str


@dataclass
class Timeline:
    """The demo's record of one application over time."""

    app: str
    slo_ms: float
    versions: list[str]
    points: list[TimelinePoint] = field(default_factory=list)

    def add(
        self, t: float, report: TickReport, offered_rps: float, client_p95: float | None
    ) -> None:
        """Record one tick."""
        snap, plan = report.snapshot, report.plan
        app = snap.app(self.app) if snap else None
        p95: dict[str, float | None] = {}
        running: dict[str, int | None] = {}
        desired: dict[str, int | None] = {}
        for v in self.versions:
            vs = app.version(v) if app else None
            p95[v] = vs.latency_p95_ms if vs else None
            running[v] = vs.running_replicas if vs else None
            desired[v] = plan.replicas_for(self.app, v) if plan else None
        weights = (plan.weights_for(self.app) if plan else None) or {}
        phase = str(report.rollouts.get(self.app, {}).get("phase", "idle"))
        self.points.append(
            TimelinePoint(
                t,
                offered_rps,
                client_p95,
                p95,
                running,
                desired,
                weights,
                plan.cost_per_hour if plan else math.nan,
                phase,
            )
        )

    def replica_seconds(self) -> dict[str, float]:
        """Running replicas integrated over time, per version."""
        totals = dict.fromkeys(self.versions, 0.0)
        for a, b in zip(self.points, self.points[1:], strict=False):
            for v in self.versions:
                totals[v] += (a.running[v] or 0) * (b.t - a.t)
        return totals


def latency_quantile(latencies_ms: list[float], q: float) -> float | None:
    """The q-quantile of a list of latencies (nearest rank), None when empty."""
    if not latencies_ms:
        return None
    ordered = sorted(latencies_ms)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarize(
    timeline: Timeline,
    latencies_ms: list[float],
    failures: int,
    rollout: dict[str, Any],
    config: GovernorConfig,
) -> dict[str, Any]:
    """The demo's summary: SLO attainment, latency, replica-seconds, cost, the rollout's outcome."""
    total = len(latencies_ms) + failures
    within = sum(1 for x in latencies_ms if x <= timeline.slo_ms)
    replica_s = timeline.replica_seconds()
    app = config.app(timeline.app)
    return {
        "app": timeline.app,
        "requests": total,
        "failed_requests": failures,
        "slo_p95_ms": timeline.slo_ms,
        "slo_attainment": within / total if total else None,
        "p50_ms": latency_quantile(latencies_ms, 0.50),
        "p95_ms": latency_quantile(latencies_ms, 0.95),
        "p99_ms": latency_quantile(latencies_ms, 0.99),
        "replica_seconds": replica_s,
        "cost": sum(replica_s.values()) / 3600 * config.replica_price(app),
        "max_replicas": {
            v: max((p.running[v] or 0 for p in timeline.points), default=0)
            for v in timeline.versions
        },
        "rollout": rollout,
        "ticks": len(timeline.points),
    }


def write_report(out: Path, timeline: Timeline, summary: dict[str, Any]) -> tuple[Path, Path]:
    """Write summary.json and report.png under `out`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary_path.write_text(
        json.dumps(
            {"summary": summary, "timeline": [asdict(p) for p in timeline.points]},
            indent=2,
            default=str,
        )
    )
    ts = [p.t for p in timeline.points]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    axes[0].plot(ts, [p.offered_rps for p in timeline.points], color="black")
    axes[0].set_ylabel("offered load (req/s)")
    axes[0].set_title(f"Governor demo: {timeline.app}")
    for v in timeline.versions:
        axes[1].plot(ts, [_nan(p.p95_ms[v]) for p in timeline.points], label=f"p95 {v}")
    axes[1].plot(
        ts,
        [_nan(p.client_p95_ms) for p in timeline.points],
        label="p95 client",
        linestyle=":",
        color="gray",
    )
    axes[1].axhline(timeline.slo_ms, color="red", linestyle="--", label="SLO")
    axes[1].set_ylabel("latency (ms)")
    axes[1].legend(loc="upper left")
    for v in timeline.versions:
        axes[2].step(
            ts, [p.running[v] or 0 for p in timeline.points], where="post", label=f"running {v}"
        )
        axes[2].step(
            ts,
            [p.weights.get(v, 0) / 100 * 4 for p in timeline.points],
            where="post",
            linestyle=":",
            label=f"weight {v} (x4/100)",
        )
    axes[2].set_ylabel("replicas")
    axes[2].legend(loc="upper left")
    axes[3].plot(ts, [p.cost_per_hour for p in timeline.points], color="green")
    axes[3].set_ylabel("planned cost / h")
    axes[3].set_xlabel("seconds since start of load")
    fig.tight_layout()
    png = out / "report.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return summary_path, png


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


def generation_summary(
    app: str,
    slo: SLO,
    ttft_ms: list[float],
    tpot_ms: list[float],
    answered: int,
    failed: int,
    shed: int,
) -> dict[str, Any]:
    """What the streaming chat clients saw: token latencies against the app's SLO targets."""

    def within(values: list[float], target: float | None) -> float | None:
        if target is None or not values:
            return None
        return sum(1 for x in values if x <= target) / len(values)

    return {
        "app": app,
        "requests": answered + failed,
        "failed_requests": failed,
        "shed_requests": shed,
        "ttft_p50_ms": latency_quantile(ttft_ms, 0.50),
        "ttft_p95_ms": latency_quantile(ttft_ms, 0.95),
        "slo_ttft_p95_ms": slo.ttft_p95_ms,
        "ttft_within_slo": within(ttft_ms, slo.ttft_p95_ms),
        "tpot_p50_ms": latency_quantile(tpot_ms, 0.50),
        "tpot_p95_ms": latency_quantile(tpot_ms, 0.95),
        "slo_tpot_p95_ms": slo.tpot_p95_ms,
        "tpot_within_slo": within(tpot_ms, slo.tpot_p95_ms),
    }
