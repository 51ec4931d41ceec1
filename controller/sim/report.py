"""The comparison as a table, a JSON document and a plot."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from controller.sim.metrics import outcomes
from controller.sim.runner import PolicyRun, Scenario

COLUMNS = (
    ("slo_attainment", "SLO attainment", "{:.2%}"),
    ("gpu_hours", "GPU-hours", "{:.2f}"),
    ("cost_usd", "cost $", "{:.2f}"),
    ("p50_ms", "p50 ms", "{:.0f}"),
    ("p95_ms", "p95 ms", "{:.0f}"),
    ("p99_ms", "p99 ms", "{:.0f}"),
    ("scaling_actions", "scaling actions", "{}"),
    ("goodput_per_gpu_hour", "goodput / GPU-h", "{:.0f}"),
    ("mean_replicas", "mean replicas", "{:.1f}"),
    ("wall_s", "sim s", "{:.1f}"),
)
GENERATION_COLUMNS = (
    ("ttft_p95_ms", "TTFT p95 ms", "{:.0f}"),
    ("tpot_p95_ms", "TPOT p95 ms", "{:.1f}"),
)


def _cell(value: object, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def table(s: Scenario, runs: Mapping[str, PolicyRun]) -> Table:
    """One row per policy with the benchmark's numbers."""
    columns = COLUMNS + (GENERATION_COLUMNS if s.profile.kind == "generation" else ())
    t = Table(
        title=f"{s.app.name} on {s.profile.name}: {len(s.trace)} requests "
        f"over {s.trace.duration_s / 60:.0f} min"
    )
    t.add_column("policy", style="bold")
    for _, label, _ in columns:
        t.add_column(label, justify="right")
    for name, run in runs.items():
        t.add_row(name, *(_cell(run.summary.get(key), fmt) for key, _, fmt in columns))
    return t


def per_minute(run: PolicyRun, s: Scenario) -> dict[str, list[float | None]]:
    """Per-minute series: arrivals, replicas held, attainment, p95 latency (and TTFT)."""
    r = run.result
    o = outcomes(r, s.slo)
    minutes = int(np.ceil(max(r.end_s, 1.0) / 60.0))
    bins = np.floor(r.trace.arrival_s / 60.0).astype(np.int64)

    def by_minute(values: np.ndarray, q: float | None) -> list[float | None]:
        out: list[float | None] = []
        for m in range(minutes):
            v = values[bins == m]
            if q is None:
                out.append(float(v.mean()) if v.size else None)
            else:
                v = v[~np.isnan(v)]
                out.append(float(np.quantile(v, q)) if v.size else None)
        return out

    held = []
    for m in range(minutes):
        mid = m * 60.0 + 30.0
        held.append(float(sum(1 for _, start, _, stop in r.replica_spans if start <= mid < stop)))
    series: dict[str, list[float | None]] = {
        "arrivals_per_s": [float((bins == m).sum()) / 60.0 for m in range(minutes)],
        "replicas": list(held),
        "attainment": by_minute(o.met.astype(np.float64), None),
        "p95_ms": by_minute(o.latency_ms, 0.95),
    }
    if s.profile.kind == "generation":
        series["ttft_p95_ms"] = by_minute(o.ttft_ms, 0.95)
    return series


def document(s: Scenario, runs: Mapping[str, PolicyRun], command: str = "") -> dict[str, Any]:
    """The JSON document: `{"policies": {NAME: {...}}}` plus what produced it."""
    slo = s.slo
    return {
        "policies": {
            name: {
                **run.summary,
                "setup": run.setup,
                "per_minute": per_minute(run, s),
                "notes": list(run.result.notes[-20:]),
            }
            for name, run in runs.items()
        },
        "scenario": {
            "command": command,
            "application": s.app.name,
            "profile": s.profile.name,
            "profile_source": s.profile.source,
            "trace": s.trace.source,
            "requests": len(s.trace),
            "trace_minutes": s.trace.duration_s / 60.0,
            "slo": {
                "latency_ms": slo.latency_ms,
                "ttft_ms": slo.ttft_ms,
                "tpot_ms": slo.tpot_ms,
                "target_attainment": slo.target_attainment,
            },
            "price_per_replica_hour": s.pricing.price_per_replica_hour,
            "gpus_per_replica": s.pricing.gpus_per_replica,
            "startup_s": s.settings.startup_s or s.profile.startup_s,
            "metrics_report_s": s.settings.pipeline.report_s,
            "window_s": s.settings.pipeline.window_s,
            "seed": s.settings.seed,
        },
    }


def write_json(doc: Mapping[str, Any], path: str | Path) -> None:
    """Write the document, creating the folder."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc, indent=2, default=float) + "\n")


def plot(s: Scenario, runs: Mapping[str, PolicyRun], path: str | Path) -> None:
    """Load and replicas over time per policy, and p95 latency against the SLO."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {name: per_minute(run, s) for name, run in runs.items()}
    generation = s.profile.kind == "generation"
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    first = next(iter(series.values()))
    minutes = np.arange(len(first["arrivals_per_s"]))
    axes[0].plot(minutes, first["arrivals_per_s"], color="black")
    axes[0].set_ylabel("load (req/s)")
    axes[0].set_title(f"{s.app.name} on {s.profile.name} ({len(s.trace)} requests)")
    latency_key = "ttft_p95_ms" if generation and s.slo.ttft_ms else "p95_ms"
    limit = (s.slo.ttft_ms if generation else None) or s.slo.latency_ms or s.app.slo.latency_p95_ms
    for name, sr in series.items():
        gpu_h = runs[name].summary["gpu_hours"]
        att = runs[name].summary["slo_attainment"]
        label = f"{name} ({att:.2%}, {gpu_h:.1f} GPU-h)"
        axes[1].step(minutes, sr["replicas"], where="post", label=label)
        axes[2].plot(minutes, [np.nan if v is None else v for v in sr[latency_key]], label=name)
        axes[3].plot(minutes, [np.nan if v is None else v for v in sr["attainment"]], label=name)
    axes[1].set_ylabel("replicas held")
    axes[1].legend(loc="upper left", fontsize=8)
    axes[2].axhline(limit, color="red", linestyle="--", label="SLO")
    axes[2].set_ylabel(("TTFT" if generation else "latency") + " p95 per minute (ms)")
    axes[2].set_yscale("log")
    axes[2].legend(loc="upper left", fontsize=8)
    axes[3].axhline(s.slo.target_attainment, color="red", linestyle="--")
    axes[3].set_ylabel("SLO attainment per minute")
    axes[3].set_ylim(max(0.0, min(0.9, s.slo.target_attainment - 0.1)), 1.005)
    axes[3].set_xlabel("minute of the trace")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
