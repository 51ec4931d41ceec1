"""Benchmark: governor vs Ray Serve's default autoscaler vs HPA vs static peak provisioning.

Replays the shared Azure conversation trace against a simulated fleet of the GPU profile
under each policy, prints the table, and writes `policies.json` and `policies.png` to
`--out`. The targets of the issue are checked and reported, met or not.

    .venv/bin/python benchmarks/policies.py [--scenario recorded|x10] [--out out/benchmarks]

Two scenarios by default: the trace as recorded, and its shape at ten times the volume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from controller.errors import GovernorError
from controller.sim import report
from controller.sim.command import load_scenario, run_with_progress
from controller.sim.runner import POLICIES, PolicyRun
from controller.sim.trace import repo_root

SPEED_TARGET_S = 30.0
ATTAINMENT_TARGET = 0.99
GPU_HOURS_TARGET = 0.75


def _num(summary: dict[str, float | int | None], key: str) -> float:
    value = summary.get(key)
    return float(value) if value is not None else float("nan")


def targets(runs: dict[str, PolicyRun]) -> dict[str, Any]:
    """The issue's quality and speed targets, each with its measured value and verdict."""
    s = {name: run.summary for name, run in runs.items()}
    out: dict[str, Any] = {}
    gov = s.get("governor")
    if gov is not None:
        att = _num(gov, "slo_attainment")
        out["governor_attainment"] = {"value": att, "target": f">= {ATTAINMENT_TARGET}",
                                      "met": att >= ATTAINMENT_TARGET}
        if "static-peak" in s:
            ratio = _num(gov, "gpu_hours") / _num(s["static-peak"], "gpu_hours")
            out["governor_gpu_hours_vs_static_peak"] = {
                "value": ratio, "target": f"<= {GPU_HOURS_TARGET}",
                "met": ratio <= GPU_HOURS_TARGET}
        for other in ("ray-default", "hpa"):
            if other in s:
                o = s[other]
                met = (_num(gov, "slo_attainment") >= _num(o, "slo_attainment")
                       and _num(gov, "gpu_hours") <= _num(o, "gpu_hours"))
                out[f"governor_pareto_dominates_{other}"] = {
                    "value": {name: [_num(x, "slo_attainment"), _num(x, "gpu_hours")]
                              for name, x in (("governor", gov), (other, o))},
                    "target": "attainment >= and GPU-hours <=", "met": met}
    for name, run in runs.items():
        searched = run.setup.get("search_wall_s")
        seconds = float(searched) if isinstance(searched, int | float) else run.result.wall_s
        out[f"seconds_{name}"] = {"value": seconds, "target": f"<= {SPEED_TARGET_S}",
                                  "met": seconds <= SPEED_TARGET_S}
    return out


SCENARIOS = {
    # The trace as recorded: 5.5 req/s on average, one or two replicas of the profile.
    "recorded": (1.0, None),
    # The same shape at ten times the volume (rate scaling by seeded duplication): a
    # fleet of about ten replicas, where per-minute tracking can show.
    "x10": (10.0, 8),
}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (targets are reported, not enforced), 2 on bad input."""
    root = repo_root()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=root / "configs/governor.sim.yaml")
    p.add_argument("--profile", type=Path, default=root / "configs/profiles/llama3-8b-h100.yaml")
    p.add_argument("--trace", type=Path, default=None)
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                   help="default: all; ignored with --rate-scale")
    p.add_argument("--rate-scale", type=float, default=None, help="one custom scenario")
    p.add_argument("--initial-replicas", type=int, default=None)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--policy", action="append", choices=POLICIES)
    p.add_argument("--out", type=Path, default=root / "out/benchmarks")
    args = p.parse_args(argv)
    if args.rate_scale is not None:
        runs_of = {f"x{args.rate_scale:g}": (args.rate_scale, args.initial_replicas)}
    else:
        runs_of = {k: SCENARIOS[k] for k in (args.scenario or list(SCENARIOS))}
    out = Console(width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (rate, initial) in runs_of.items():
        try:
            s = load_scenario(args.config, args.trace, args.profile, args.time_scale, rate,
                              args.seed, initial_replicas=initial)
            runs = run_with_progress(s, args.policy or list(POLICIES), err)
        except GovernorError as e:
            err.print(f"error ({e.kind}): {e}", highlight=False)
            return 2
        out.print(report.table(s, runs))
        checks = targets(runs)
        for check_name, check in checks.items():
            verdict = "met" if check["met"] else "NOT met"
            out.print(f"{name} {check_name}: {check['value']} (target {check['target']}): "
                      f"{verdict}", highlight=False)
        command = (f"benchmarks/policies.py (scenario {name}: rate x{rate:g}, initial replicas "
                   f"{initial or 'from the config'}, seed {args.seed})")
        doc = report.document(s, runs, command)
        doc["targets"] = checks
        stem = "policies" if name == "recorded" else f"policies_{name}"
        report.write_json(doc, args.out / f"{stem}.json")
        report.plot(s, runs, args.out / f"{stem}.png")
        err.print(f"wrote {args.out / (stem + '.json')} and {args.out / (stem + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
