"""One controller tick at fleet scale: 100, 1,000 and 10,000 applications.

Each size runs in its own process, so peak RSS is that size's own. The fleet is
`controller.sim.synthetic` (two versions per app, ten apps per team, the total and half
the team budgets binding, a fifth of the apps breaching their SLO, one in fifty in a
canary), played tick after tick with the agents' state carried as the daemon carries it.

Per tick, timed stage by stage:
- observe: the Prometheus source over a recorded fleet of the same size
  (`controller.sim.recorded_fleet`, one answer per query);
- decide: `controller.decide.decide` on the synthetic fleet's snapshot (closed loop);
- act: the local actuator rendering and writing the plan to a dashboard stand-in that
  keeps the deployed state in memory (no HTTP), so this is the actuator's own work;
- record: rollout views and `Telemetry.record`;
- state: the agents' state saved by the local state store (`FileStateStore`, a temp dir).

Also: config load (one main file that includes a file per team, as a large fleet is kept),
series exported and bytes per scrape, and bytes written in a tick where one application
changes (its replica count; its weights). Before the measured ticks, the agents' state is
grown to what a long-running daemon carries (one tick per window of
`scaling.burst_memory_s`); times are medians over the measured ticks after two more.

    .venv/bin/python benchmarks/fleet_scale.py            # 100, 1,000 and 10,000
    .venv/bin/python benchmarks/fleet_scale.py --sizes 100 1000 --ticks 5
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import generate_latest  # noqa: E402

from controller.actuators.local import LocalActuator  # noqa: E402
from controller.actuators.state_file import FileStateStore  # noqa: E402
from controller.agents.rollout import rollout_view  # noqa: E402
from controller.config import GovernorConfig, load_config  # noqa: E402
from controller.decide import decide  # noqa: E402
from controller.decisions import Plan, ReplicaDecision, WeightDecision  # noqa: E402
from controller.signals.prometheus import PrometheusSource  # noqa: E402
from controller.sim.recorded_fleet import prometheus_client_for  # noqa: E402
from controller.sim.synthetic import SyntheticFleet, fleet_document  # noqa: E402
from controller.telemetry import Telemetry  # noqa: E402

OUT = ROOT / "out" / "benchmarks"
SIZES = (100, 1_000, 10_000)
STAGES = ("observe", "decide", "act", "record", "state")
TARGET_TICK_S = 1.0
TARGET_RSS_MB = 500.0
TARGET_EXPONENT = 1.1


class FixedClock:
    """A clock that reads the synthetic fleet's time."""

    def __init__(self, fleet: SyntheticFleet) -> None:
        self.fleet = fleet

    def now(self) -> datetime:
        """The fleet's current tick time."""
        return self.fleet.now

    def sleep(self, seconds: float) -> None:
        """Never sleeps: ticks are driven by the benchmark."""


class Dashboard:
    """Ray's dashboard as the local actuator sees it, in memory; counts what is written."""

    def __init__(self, base: dict[str, Any]) -> None:
        self.deployed: dict[str, Any] = {}
        self.written = 0
        self.writes = 0
        self._submit(base)

    def _submit(self, doc: dict[str, Any]) -> None:
        for app in doc["applications"]:
            before = self.deployed.get(app["name"], {}).get("deployments", {})
            self.deployed[app["name"]] = {
                "name": app["name"],
                "status": "RUNNING",
                "deployed_app_config": app,
                "deployments": {
                    d["name"]: {
                        "target_num_replicas": (before.get(d["name"]) or {}).get(
                            "target_num_replicas", d.get("num_replicas", 1)
                        )
                    }
                    for d in app["deployments"]
                },
            }

    def get_applications(self) -> dict[str, Any]:
        """The Serve status document."""
        return {"applications": self.deployed}

    def put_applications(self, serve_config: dict[str, Any]) -> None:
        """Deploy a whole config; count its bytes."""
        self.written += len(json.dumps(serve_config))
        self.writes += 1
        self._submit(serve_config)

    def scale(self, app: str, deployment: str, replicas: int) -> None:
        """Set one deployment's count; count the request's bytes."""
        self.written += len(json.dumps({"target_num_replicas": replicas}))
        self.writes += 1
        self.deployed[app]["deployments"][deployment]["target_num_replicas"] = replicas

    def reset_counts(self) -> None:
        """Start counting writes again."""
        self.written = self.writes = 0


class Laps:
    """Seconds between consecutive `lap` calls, by stage name."""

    def __init__(self) -> None:
        self.took: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Close the stage that ran since the last lap."""
        now = time.perf_counter()
        self.took[stage], self._last = now - self._last, now


def current_rss_mb() -> float:
    """This process's resident memory now, in MiB (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


def serve_config(config: GovernorConfig) -> dict[str, Any]:
    """The Serve config the fleet was deployed with: a router and two versions per app."""
    return {
        "applications": [
            {
                "name": app.name,
                "route_prefix": f"/{app.name}",
                "import_path": "serving.app:build_app",
                "args": {"versions": [{"name": v.name} for v in app.versions]},
                "deployments": [
                    {"name": "router", "user_config": {"weights": {"v1": 100, "v2": 0}}},
                    *({"name": v.deployment, "num_replicas": 1} for v in app.versions),
                ],
            }
            for app in config.applications
        ]
    }


def write_config_tree(n: int, folder: Path) -> Path:
    """The fleet's config as a main file that includes one file per team."""
    doc = fleet_document(n)
    teams: dict[str, list[dict[str, Any]]] = {}
    for app in doc.pop("applications"):
        teams.setdefault(app["team"], []).append(app)
    team_budgets = doc["budgets"].pop("teams")
    (folder / "teams").mkdir()
    for team, apps in teams.items():
        part = {"budgets": {"teams": {team: team_budgets[team]}}, "applications": apps}
        (folder / "teams" / f"{team}.yaml").write_text(yaml.safe_dump(part, sort_keys=False))
    doc["include"] = ["teams/*.yaml"]
    main = folder / "governor.yaml"
    main.write_text(yaml.safe_dump(doc, sort_keys=False))
    return main


def one_changed(plan: Plan, app: str, replicas: int | None, weights: dict[str, int] | None) -> Plan:
    """`plan` with one application's count of v1 or its weights changed."""
    counts = tuple(
        ReplicaDecision(d.app, d.version, replicas, d.reasons)
        if replicas is not None and d.app == app and d.version == "v1"
        else d
        for d in plan.replicas
    )
    shares = tuple(
        WeightDecision(w.app, weights, w.reasons) if weights is not None and w.app == app else w
        for w in plan.weights
    )
    return replace(plan, replicas=counts, weights=shares)


def measure(n: int, ticks: int, warm_up: bool = True) -> dict[str, Any]:
    """Every figure for one fleet size, in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        main = write_config_tree(n, Path(tmp))
        began = time.perf_counter()
        config = load_config(main)
        load_s = time.perf_counter() - began
    before_fixtures = current_rss_mb()
    fleet = SyntheticFleet(n)
    source = PrometheusSource(
        config, FixedClock(fleet), client=prometheus_client_for(config, 600.0, seed=0)
    )
    base = serve_config(config)
    dashboard = Dashboard(base)
    # The world, the recorded answers and the dashboard stand-in are the benchmark's,
    # not the daemon's: their share of the RSS is reported apart.
    fixtures_mb = current_rss_mb() - before_fixtures
    actuator = LocalActuator(config, dashboard, base)
    telemetry = Telemetry()
    state_dir = tempfile.TemporaryDirectory()
    state_file = FileStateStore(Path(state_dir.name) / "state.json")
    states: dict[str, Any] = {}
    # As `governor run` does once its config and clients are built.
    gc.freeze()
    # Fill the agents' per-window memory (scaling.burst_memory_s) to what a daemon that
    # has run for a while carries: one window per warm-up tick.
    memory_s = max(a.scaling.burst_memory_s for a in config.applications)
    for _ in range(math.ceil(memory_s / config.window_s) if warm_up else 0):
        decision = decide(fleet.snapshot(), states, config)
        states = decision.states
        fleet.follow(decision.plan, seconds=config.window_s)
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    plan = Plan()
    for tick in range(ticks + 2):
        laps = Laps()
        lap = laps.lap
        source.observe()
        lap("observe")
        snapshot = fleet.snapshot()
        lap("world")  # the synthetic world's own snapshot: not part of the tick
        decision = decide(snapshot, states, config)
        lap("decide")
        dashboard.reset_counts()
        actuator.apply(decision.plan, snapshot)
        lap("act")
        views = {a.name: rollout_view(decision.states, a) for a in config.applications}
        telemetry.record(config, snapshot, decision.plan, views)
        lap("record")
        state_file.save(decision.states)
        lap("state")
        states, plan = decision.states, decision.plan
        fleet.follow(plan)
        if tick >= 2:
            for stage in STAGES:
                stages[stage].append(laps.took[stage])
    settled = fleet.snapshot()
    actuator.apply(plan, settled)
    name = config.applications[0].name
    have = plan.replicas_for(name, "v1") or 1
    dashboard.reset_counts()
    actuator.apply(one_changed(plan, name, have + 1, None), settled)
    count_bytes, count_writes = dashboard.written, dashboard.writes
    actuator.apply(plan, settled)
    dashboard.reset_counts()
    actuator.apply(one_changed(plan, name, None, {"v1": 90, "v2": 10}), settled)
    weight_bytes, weight_writes = dashboard.written, dashboard.writes
    text = generate_latest(telemetry.registry)
    series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
    state_bytes = state_file.path.stat().st_size
    state_dir.cleanup()
    median = {s: statistics.median(v) * 1000 if v else math.nan for s, v in stages.items()}
    return {
        "apps": n,
        "versions": sum(len(a.versions) for a in config.applications),
        "ticks": ticks,
        "ms": median,
        "tick_ms": sum(median.values()),
        "config_load_s": load_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fixtures_rss_mb": fixtures_mb,
        "series": series,
        "scrape_bytes": len(text),
        "state_bytes": state_bytes,
        "one_app_count_change": {"bytes": count_bytes, "writes": count_writes},
        "one_app_weight_change": {"bytes": weight_bytes, "writes": weight_writes},
        "gc": gc.get_threshold(),
    }


def exponent(small: dict[str, Any], large: dict[str, Any], key: str) -> float | None:
    """Growth exponent of `key` between two sizes: log(ratio of key) / log(ratio of size)."""
    a, b = small[key], large[key]
    if not a or not b:
        return None
    return math.log(b / a) / math.log(large["apps"] / small["apps"])


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    head = (
        f"{'apps':>7} {'observe':>8} {'decide':>8} {'act':>8} {'record':>8} {'state':>7} "
        f"{'tick ms':>8} {'RSS MB':>7} {'fixt. MB':>8} {'load s':>7} {'series':>7} "
        f"{'scrape KB':>9} "
        f"{'1 count B':>9} {'1 weight B':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ms = r["ms"]
        lines.append(
            f"{r['apps']:>7,} {ms['observe']:>8.0f} {ms['decide']:>8.0f} {ms['act']:>8.0f} "
            f"{ms['record']:>8.0f} {ms['state']:>7.0f} {r['tick_ms']:>8.0f} "
            f"{r['peak_rss_mb']:>7.0f} {r['fixtures_rss_mb']:>8.0f} {r['config_load_s']:>7.2f} "
            f"{r['series']:>7,} "
            f"{r['scrape_bytes'] / 1024:>9.0f} {r['one_app_count_change']['bytes']:>9,} "
            f"{r['one_app_weight_change']['bytes']:>10,}"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Milliseconds per tick and per stage against fleet size, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    apps = [r["apps"] for r in rows]
    for stage in STAGES:
        ax.plot(apps, [max(r["ms"][stage], 0.01) for r in rows], marker="o", label=stage)
    ax.plot(apps, [r["tick_ms"] for r in rows], marker="s", color="black", label="whole tick")
    ax.axhline(TARGET_TICK_S * 1000, color="red", linestyle="--", label="1 s target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("applications (2 versions each)")
    ax.set_ylabel("ms per tick (median)")
    ax.set_title("One controller tick by fleet size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    """Run each size in its own process, print the table, write JSON and a plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--ticks", type=int, default=8, help="measured ticks per size")
    parser.add_argument(
        "--no-warm-up", action="store_true", help="measure from empty agent state (faster)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.ticks, not args.no_warm_up)))
        return
    rows = []
    for n in args.sizes:
        print(f"measuring {n:,} applications ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--ticks", str(args.ticks)]
            + (["--no-warm-up"] if args.no_warm_up else []),
            check=True,
            capture_output=True,
            text=True,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(table(rows))
    verdicts = {}
    large = rows[-1]
    verdicts["tick_under_1s"] = large["tick_ms"] < TARGET_TICK_S * 1000
    verdicts["rss_under_500mb"] = large["peak_rss_mb"] < TARGET_RSS_MB
    by_size = {r["apps"]: r for r in rows}
    if 1_000 in by_size and 10_000 in by_size:
        growth = exponent(by_size[1_000], by_size[10_000], "tick_ms")
        verdicts["growth_exponent_1k_10k"] = growth
        verdicts["growth_at_most_1_1"] = growth is not None and growth <= TARGET_EXPONENT
        print(f"growth exponent of the tick, 1,000 -> 10,000 apps: {growth:.2f}")
    print(
        f"largest fleet ({large['apps']:,}): tick {large['tick_ms']:.0f} ms "
        f"(target < {TARGET_TICK_S * 1000:.0f}), peak RSS {large['peak_rss_mb']:.0f} MB, "
        f"{large['fixtures_rss_mb']:.0f} MB of it the benchmark's fixtures "
        f"(target < {TARGET_RSS_MB:.0f})"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fleet_scale.json").write_text(
        json.dumps({"rows": rows, "verdicts": verdicts, "command": " ".join(sys.argv)}, indent=2)
        + "\n"
    )
    plot(rows, OUT / "fleet_scale.png")
    print(f"wrote {OUT / 'fleet_scale.json'} and {OUT / 'fleet_scale.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
