"""Canary judge quality in the simulator: how often releases roll back, by kind of candidate.

Each release runs the daemon's own agents (`controller.decide`) on a simulated fleet of
the generation profile `configs/profiles/llama3-8b-h100.yaml` under `configs/governor.sim.yaml`
with a second version `v2` declared candidate, over a random 20-minute window of the
shared Azure conversation trace at 10x its volume (about 55 req/s, so that the first 5 %
step sees `min_requests` within its minimum duration). The candidate is healthy, or
slower (every compute time x 1.10, 1.25, 1.5), or answers a share of its requests with
errors (+0.5 %, +2 %); each case runs `--seeds` releases, each seed its own window and
error draws. The rollout knobs are those of the shipped KubeRay config
(`configs/governor.kuberay.yaml`), below as ROLLOUT.

Prints per case the share rolled back (a false rollback for a healthy candidate, a
catch for a bad one), promoted and undecided, and the median time from the rollout's
start to its verdict; writes `canary.json` and `canary.png` under `--out`.

    .venv/bin/python benchmarks/canary.py --seeds 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from controller.agents.state import from_iso, seconds_since
from controller.config import GovernorConfig, load_config
from controller.sim.engine import SimSettings, Simulation, VersionFault
from controller.sim.policies.governor import GovernorPolicy
from controller.sim.profile import load_profile
from controller.sim.report import write_json
from controller.sim.suite import fit_to_model
from controller.sim.trace import (
    default_trace_path,
    load_trace,
    repo_root,
    scale_trace,
    slice_trace,
)

ROOT = repo_root()
CONFIG = ROOT / "configs/governor.sim.yaml"
PROFILE = ROOT / "configs/profiles/llama3-8b-h100.yaml"
APP = "chat"
VOLUME = 10.0
WINDOW_S = 20 * 60.0
STABLE_REPLICAS = 8
"""The stable's replicas at the start: what 10x the trace's volume needs (policies.py)."""
ROLLOUT = {
    "steps": [5, 25, 50, 100],
    "step_min_duration_s": 120,
    "min_requests": 200,
    "max_latency_ratio": 1.2,
    "max_error_rate_increase": 0.01,
    "confidence": 0.95,
    "deadline_s": 1800,
    "drain_s": 60,
}
CASES: dict[str, VersionFault] = {
    "healthy": VersionFault(),
    "slower 10%": VersionFault(slowdown=1.10),
    "slower 25%": VersionFault(slowdown=1.25),
    "slower 50%": VersionFault(slowdown=1.50),
    "errors +0.5%": VersionFault(error_rate=0.005),
    "errors +2%": VersionFault(error_rate=0.02),
}
MUST_CATCH = ("slower 50%", "errors +2%")
"""Regressions the judge must roll back at least 99 % of the time."""
FINISHED = {"promoted": "promoted", "rolling-back": "rolled back", "rolled-back": "rolled back"}
CHUNK_S = 30.0


@dataclass(frozen=True)
class Release:
    """How one simulated release ended."""

    case: str
    seed: int
    outcome: str
    """promoted | rolled back | aborted | undecided (no verdict within the window)."""
    verdict_s: float | None
    """From the rollout's start to its verdict."""
    reason: str


def release_config() -> GovernorConfig:
    """The simulator's config with `v2` as the candidate and the shipped rollout knobs."""
    config = load_config(CONFIG)
    app = config.app(APP)
    stable = app.version(app.stable_version)
    v2 = stable.model_copy(update={"name": "v2", "deployment": "llama_v2", "min_replicas": 0})
    v1 = stable.model_copy(update={"initial_replicas": STABLE_REPLICAS})
    rollout = app.rollout.model_copy(update=ROLLOUT)
    app = app.model_copy(update={"versions": [v1, v2], "candidate": "v2", "rollout": rollout})
    return config.model_copy(update={"applications": [app]})


def run_release(case: str, seed: int) -> Release:
    """One release of a candidate of kind `case`, on the window and draws of `seed`."""
    config = release_config()
    app = config.app(APP)
    profile = load_profile(PROFILE).model_copy(update={"host_parallelism": None})
    limit = profile.generation.max_context_tokens if profile.generation else None
    full = scale_trace(load_trace(default_trace_path()), rate_scale=VOLUME, seed=seed)
    rng = np.random.default_rng(seed)
    start = float(rng.uniform(0, max(0.0, full.duration_s - WINDOW_S)))
    trace, _ = fit_to_model(slice_trace(full, start, WINDOW_S), "generation", limit)
    settings = SimSettings(seed=seed, faults={"v2": CASES[case]})
    sim = Simulation(trace, profile, app, GovernorPolicy(config), settings)
    sim.start()
    t = 0.0
    st: dict[str, Any] = {}
    while t < WINDOW_S:
        t += CHUNK_S
        sim.advance(t)
        st = ((sim.state.get("agents") or {}).get("rollout") or {}).get("apps", {}).get(APP, {})
        if st.get("phase") in FINISHED or st.get("phase") == "aborted":
            break
    phase = st.get("phase", "idle")
    outcome = FINISHED.get(phase, "aborted" if phase == "aborted" else "undecided")
    verdict_s = None
    if outcome != "undecided" and st.get("started_at") and st.get("phase_since"):
        verdict_s = seconds_since(st["started_at"], from_iso(st["phase_since"]))
    reason = str((st.get("verdict") or {}).get("reason", ""))
    return Release(case, seed, outcome, verdict_s, reason)


def summarize(releases: list[Release]) -> dict[str, dict[str, Any]]:
    """Per case: shares of each outcome and the median time to verdict."""
    out: dict[str, dict[str, Any]] = {}
    for case in CASES:
        mine = [r for r in releases if r.case == case]
        n = len(mine)
        if n == 0:
            continue
        times = [r.verdict_s for r in mine if r.verdict_s is not None]
        out[case] = {
            "releases": n,
            "rolled_back": sum(r.outcome == "rolled back" for r in mine) / n,
            "promoted": sum(r.outcome == "promoted" for r in mine) / n,
            "aborted": sum(r.outcome == "aborted" for r in mine) / n,
            "undecided": sum(r.outcome == "undecided" for r in mine) / n,
            "median_verdict_s": statistics.median(times) if times else None,
        }
    return out


def verdict_budget_s(config: GovernorConfig) -> float:
    """The steps' minimum durations plus one observation window: the target time to verdict."""
    rollout = config.app(APP).rollout
    return len(rollout.steps) * rollout.step_min_duration_s + config.window_s


def table(summary: dict[str, dict[str, Any]], budget_s: float) -> Table:
    """One row per case."""
    t = Table(title="canary judge on simulated releases (llama3-8b-h100, azure-conv x10)")
    for col in (
        "candidate",
        "releases",
        "rolled back",
        "promoted",
        "aborted",
        "undecided",
        "median s to verdict",
        "target",
    ):
        t.add_column(col, justify="left" if col in ("candidate", "target") else "right")
    for case, s in summary.items():
        if case == "healthy":
            target = f"false rollbacks <= 1%: {'met' if s['rolled_back'] <= 0.01 else 'NOT met'}"
        elif case in MUST_CATCH:
            target = f"caught >= 99%: {'met' if s['rolled_back'] >= 0.99 else 'NOT met'}"
        else:
            target = "-"
        median = s["median_verdict_s"]
        t.add_row(
            case,
            str(s["releases"]),
            f"{s['rolled_back']:.1%}",
            f"{s['promoted']:.1%}",
            f"{s['aborted']:.1%}",
            f"{s['undecided']:.1%}",
            "-" if median is None else f"{median:.0f} (budget {budget_s:.0f})",
            target,
        )
    return t


def plot(summary: dict[str, dict[str, Any]], path: Path) -> None:
    """Rolled back / promoted / other share per case, stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(summary)
    fig, ax = plt.subplots(figsize=(9, 4))
    bottom = np.zeros(len(cases))
    for key, color in (
        ("rolled_back", "tab:red"),
        ("promoted", "tab:green"),
        ("aborted", "tab:gray"),
        ("undecided", "tab:olive"),
    ):
        values = np.array([100 * summary[c][key] for c in cases])
        ax.bar(cases, values, bottom=bottom, color=color, label=key.replace("_", " "))
        bottom += values
    ax.set_ylabel("% of releases")
    ax.set_title("Canary verdicts by candidate (simulated)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run every case for `--seeds` seeds; 0 when it ran (targets are reported)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--case", action="append", choices=list(CASES))
    p.add_argument("--jobs", type=int, default=2, help="processes (this machine has 2 cores)")
    p.add_argument("--out", type=Path, default=ROOT / "out/benchmarks")
    args = p.parse_args(argv)
    out = Console(width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True)
    cases = args.case or list(CASES)
    grid = [(c, s) for c in cases for s in range(args.seeds)]
    began = time.perf_counter()
    releases: list[Release] = []
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for i, release in enumerate(pool.map(run_release, *zip(*grid, strict=True)), 1):
            releases.append(release)
            if i % 20 == 0 or i == len(grid):
                err.print(f"[{i}/{len(grid)}] {time.perf_counter() - began:.0f} s", highlight=False)
    summary = summarize(releases)
    budget = verdict_budget_s(release_config())
    out.print(table(summary, budget))
    write_json(
        {
            "command": "benchmarks/canary.py " + " ".join(argv or sys.argv[1:]),
            "volume": VOLUME,
            "window_s": WINDOW_S,
            "rollout": ROLLOUT,
            "verdict_budget_s": budget,
            "summary": summary,
            "releases": [r.__dict__ for r in releases],
            "wall_s": time.perf_counter() - began,
        },
        args.out / "canary.json",
    )
    plot(summary, args.out / "canary.png")
    err.print(
        f"wrote {args.out / 'canary.json'} and canary.png ({time.perf_counter() - began:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
