"""Benchmark: governor vs Ray Serve's default autoscaler vs HPA vs static peak, over a trace suite.

Every trace of the suite (controller/sim/suite.py: the shared Azure conversation and
Mooncake traces, Gamma arrivals of CV 1, 2 and 4, on/off bursts, a flash crowd, a diurnal
ramp) is replayed at 1x and 10x its volume against a simulated fleet of each profile:
Llama-3.1-8B on H100 (configs/governor.sim.yaml) and the bundled MiniLM on CPU
(configs/governor.sim.minilm.yaml). Each policy gets the same calibration
(`governor calibrate`, referenced by the config). Prints one table per profile and volume
(trace x policy: attainment, GPU-hours, ratio to static-peak, scaling actions, worst-minute
attainment) with a verdict per trace, and writes `policies.json` and one PNG grid per
profile and volume to `--out`.

    .venv/bin/python benchmarks/policies.py [--profile llama|minilm] [--volume 1 --volume 10]
        [--trace NAME] [--jobs 2] [--out out/benchmarks]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from controller.config import load_config
from controller.errors import GovernorError
from controller.sim.command import with_initial_replicas
from controller.sim.profile import Profile, load_profile
from controller.sim.report import write_json
from controller.sim.runner import POLICIES, run_policies, scenario
from controller.sim.suite import SUITE_NAMES, SuiteKind, suite_traces
from controller.sim.trace import repo_root
from controller.sim.verdict import Outcome, TraceVerdict, judge_trace, mean_gpu_hours_ratio

ROOT = repo_root()


@dataclass(frozen=True)
class Setup:
    """One profile of the suite: its daemon config, profile and how traces are fitted."""

    config: Path
    profile: Path
    kind: SuiteKind
    initial_at_10x: int
    """Replicas every policy starts with at 10x volume (the recorded volume starts at the
    config's initial_replicas)."""


SETUPS = {
    "llama": Setup(ROOT / "configs/governor.sim.yaml",
                   ROOT / "configs/profiles/llama3-8b-h100.yaml", "generation", 8),
    "minilm": Setup(ROOT / "configs/governor.sim.minilm.yaml",
                    ROOT / "configs/profiles/minilm-cpu.yaml", "encoder", 8),
}


def fleet_profile(profile: Profile) -> Profile:
    """The profile as a fleet runs it: a replica per host, not replicas sharing this box."""
    return profile.model_copy(update={"host_parallelism": None})


def run_cell(setup_name: str, volume: float, trace_name: str, seed: int) -> dict[str, Any]:
    """Run every policy on one trace of the suite; a JSON-able summary."""
    setup = SETUPS[setup_name]
    config = load_config(setup.config)
    profile = fleet_profile(load_profile(setup.profile))
    limit = (profile.generation.max_context_tokens if profile.generation else
             profile.encoder.max_tokens if profile.encoder else None)
    traces = suite_traces(
        setup.kind, volume=volume, seed=seed,
        max_context_tokens=limit if setup.kind == "generation" else None,
        max_prompt_tokens=limit if setup.kind == "encoder" else None,
    )
    chosen = next(t for t in traces if t.name == trace_name)
    if volume >= 10:
        config = with_initial_replicas(config, config.applications[0].name, setup.initial_at_10x)
    began = time.perf_counter()
    s = scenario(config, profile, chosen.trace)
    runs = run_policies(s, list(POLICIES))
    return {
        "profile": setup_name, "volume": volume, "trace": trace_name,
        "requests": len(chosen.trace), "clipped": chosen.clipped,
        "target_attainment": s.slo.target_attainment,
        "policies": {name: run.summary for name, run in runs.items()},
        "setup": {name: {k: v for k, v in run.setup.items() if k != "search"}
                  for name, run in runs.items()},
        "wall_s": time.perf_counter() - began,
    }


def verdict_of(cell: dict[str, Any]) -> TraceVerdict:
    """The per-trace targets of one cell."""
    outcomes = {
        name: Outcome(float(s["slo_attainment"]), float(s["gpu_hours"]))
        for name, s in cell["policies"].items()
    }
    return judge_trace(cell["trace"], outcomes, cell["target_attainment"])


def _pct(x: Any) -> str:
    return "-" if x is None else f"{float(x):.2%}"


def table(cells: list[dict[str, Any]], title: str) -> Table:
    """Trace x policy rows with a verdict per trace."""
    t = Table(title=title)
    for col in ("trace", "policy", "attainment", "GPU-h", "vs static-peak", "actions",
                "worst minute", "verdict"):
        t.add_column(col, justify="left" if col in ("trace", "policy", "verdict") else "right")
    for cell in cells:
        v = verdict_of(cell)
        peak = float(cell["policies"]["static-peak"]["gpu_hours"])
        for i, (name, s) in enumerate(cell["policies"].items()):
            ratio = float(s["gpu_hours"]) / peak if peak > 0 else math.nan
            verdict = ("met" if v.met else "NOT met: " + "; ".join(v.misses)) if i == 0 else ""
            t.add_row(cell["trace"] if i == 0 else "", name, _pct(s["slo_attainment"]),
                      f"{float(s['gpu_hours']):.2f}", f"{ratio:.2f}", str(s["scaling_actions"]),
                      _pct(s.get("worst_minute_attainment")), verdict,
                      end_section=i == len(cell["policies"]) - 1)
    return t


def plot(cells: list[dict[str, Any]], title: str, path: Path) -> None:
    """One panel per trace: each policy's GPU-hours against its attainment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    rows = max(1, math.ceil(len(cells) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    colors = {"governor": "tab:green", "ray-default": "tab:blue", "hpa": "tab:orange",
              "static-peak": "tab:gray"}
    for ax, cell in zip(axes.flat, cells, strict=False):
        for name, s in cell["policies"].items():
            ax.scatter(float(s["gpu_hours"]), 100 * float(s["slo_attainment"]),
                       color=colors.get(name, "black"), label=name, s=40)
        ax.axhline(100 * cell["target_attainment"], color="red", lw=0.8, ls="--")
        ax.set_title(f"{cell['trace']} ({'met' if verdict_of(cell).met else 'not met'})",
                     fontsize=10)
        ax.set_xlabel("GPU-hours")
        ax.set_ylabel("SLO attainment %")
    for ax in list(axes.flat)[len(cells):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; 0 when it ran (targets are reported, not enforced), 2 on bad input."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", action="append", choices=sorted(SETUPS))
    p.add_argument("--volume", action="append", type=float)
    p.add_argument("--trace", action="append", choices=SUITE_NAMES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="processes (this machine has 2 cores)")
    p.add_argument("--out", type=Path, default=ROOT / "out/benchmarks")
    args = p.parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True)
    grid = [(s, v, t) for s in (args.profile or list(SETUPS)) for v in (args.volume or [1.0, 10.0])
            for t in (args.trace or list(SUITE_NAMES))]
    began = time.perf_counter()
    cells: list[dict[str, Any]] = []
    try:
        with ProcessPoolExecutor(max(1, args.jobs)) as pool:
            futures = [pool.submit(run_cell, s, v, t, args.seed) for s, v, t in grid]
            for i, future in enumerate(futures, 1):
                cell = future.result()
                cells.append(cell)
                gov = cell["policies"]["governor"]
                err.print(f"[{i}/{len(grid)}] {cell['profile']} x{cell['volume']:g} "
                          f"{cell['trace']}: governor {gov['slo_attainment']:.2%} at "
                          f"{gov['gpu_hours']:.2f} GPU-h ({cell['wall_s']:.0f} s)", highlight=False)
    except GovernorError as e:
        err.print(f"error ({e.kind}): {e}", highlight=False)
        return 2
    doc: dict[str, Any] = {"command": "benchmarks/policies.py " + " ".join(argv or sys.argv[1:]),
                           "scenarios": [], "wall_s": None}
    for setup_name in dict.fromkeys(c["profile"] for c in cells):
        for volume in dict.fromkeys(c["volume"] for c in cells if c["profile"] == setup_name):
            group = [c for c in cells if c["profile"] == setup_name and c["volume"] == volume]
            title = f"{setup_name} at x{volume:g} volume"
            out.print(table(group, title))
            verdicts = [verdict_of(c) for c in group]
            ratio = mean_gpu_hours_ratio(verdicts)
            met = sum(v.met for v in verdicts)
            out.print(f"{title}: {met}/{len(verdicts)} traces meet every per-trace target; mean "
                      f"governor GPU-h / static-peak {ratio:.2f} (target <= 0.75)"
                      if ratio is not None else f"{title}: {met}/{len(verdicts)} traces met",
                      highlight=False)
            stem = f"policies_{setup_name}_x{volume:g}"
            plot(group, title, args.out / f"{stem}.png")
            doc["scenarios"].append({
                "profile": setup_name, "volume": volume, "traces": group,
                "verdicts": [v.__dict__ for v in verdicts], "mean_gpu_hours_ratio": ratio,
            })
    doc["wall_s"] = time.perf_counter() - began
    write_json(doc, args.out / "policies.json")
    err.print(f"wrote {args.out / 'policies.json'} and the PNGs beside it "
              f"({doc['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
