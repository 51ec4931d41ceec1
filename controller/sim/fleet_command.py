"""`governor simulate --fleet N`: run a fleet simulation and print who got what."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from controller.errors import GovernorError

TEAMS_SHOWN = 12


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _money(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f}"


def team_table(summary: dict[str, Any]) -> Table:
    """Attainment and cost per team against its budget (the first teams, then the rest)."""
    table = Table(title=f"{summary['apps']} applications: per team")
    for column in ("team", "apps", "priority", "attainment", "cost/h", "budget/h"):
        table.add_column(column, justify="left" if column == "team" else "right")
    rows = summary["teams"]
    for row in rows[:TEAMS_SHOWN]:
        table.add_row(
            row["team"],
            str(row["apps"]),
            str(row["priority"]),
            _pct(row["attainment"]),
            _money(row["cost_per_hour"]),
            _money(row["budget_per_hour"]),
        )
    if len(rows) > TEAMS_SHOWN:
        table.add_row(f"... {len(rows) - TEAMS_SHOWN} more teams in the JSON", "", "", "", "", "")
    return table


def priority_table(summary: dict[str, Any]) -> Table:
    """How the budget was shared: what each priority asked for, lost, and attained."""
    table = Table(title="budget shared by priority (team x 3 + app; lowest yields first)")
    for column in (
        "priority",
        "apps",
        "asked replica-h",
        "cut replica-h",
        "cut",
        "attainment",
        "cost/h",
    ):
        table.add_column(column, justify="right")
    for row in summary["priorities"]:
        table.add_row(
            str(row["priority"]),
            str(row["apps"]),
            f"{row['replica_hours_asked']:,.1f}",
            f"{row['replica_hours_cut']:,.1f}",
            _pct(row["cut_share"]),
            _pct(row["attainment"]),
            _money(row["cost_per_hour"]),
        )
    return table


def run(
    config_path: Path,
    profile_path: Path | None,
    apps: int,
    volume: float,
    seed: int,
    json_out: Path | None,
    out: Console,
    err: Console,
) -> None:
    """Load, simulate N applications with a progress bar, print tables, write JSON."""
    from controller.config import load_config
    from controller.sim.command import profile_for
    from controller.sim.engine import SimSettings
    from controller.sim.errors import SimInputError
    from controller.sim.fleet import (
        FleetOptions,
        FleetSimulation,
        fleet_config,
        fleet_members,
        summarize_fleet,
    )
    from controller.sim.observe import PipelineSettings
    from controller.sim.profile import load_profile
    from controller.sim.suite import SuiteKind
    from controller.sim.trace import repo_root

    try:
        base = load_config(config_path)
        template = base.applications[0]
        if profile_path is None:
            profile_path = profile_for(template.resources.gpu_type, repo_root())
            if profile_path is None:
                raise SimInputError(
                    f"no profile in configs/profiles/ for gpu_type "
                    f"{template.resources.gpu_type!r}; pass --profile"
                )
        profile = load_profile(profile_path).model_copy(update={"host_parallelism": None})
        kind: SuiteKind = "generation" if profile.kind == "generation" else "encoder"
        limit = (
            profile.generation.max_context_tokens
            if profile.generation
            else profile.encoder.max_tokens
            if profile.encoder
            else None
        )
        options = FleetOptions(apps=apps, volume=volume, seed=seed)
        err.print(f"building {apps} applications from {template.name!r} ...", highlight=False)
        members = fleet_members(template, kind, options, limit)
        config = fleet_config(base, members, options)
        pipeline = PipelineSettings(window_s=config.window_s)
        # The snapshot reads one window back from the newest reported sample; keep a margin.
        keep_s = 2 * (pipeline.window_s + pipeline.report_s + config.interval_s)
        settings = SimSettings(seed=seed, pipeline=pipeline, keep_s=keep_s)
        sim = FleetSimulation(config, members, profile, settings)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{apps} apps", total=1.0)
            result = sim.run(lambda done, total: bar.update(task, completed=done / total))
    except GovernorError as e:
        err.print(f"[bold red]error[/] ({e.kind}): {e}", highlight=False)
        raise typer.Exit(2) from e
    summary = summarize_fleet(result, profile)
    out.print(team_table(summary))
    out.print(priority_table(summary))
    out.print(
        f"fleet attainment {_pct(summary['attainment'])} (target "
        f"{_pct(summary['target_attainment'])}), cost {_money(summary['cost_per_hour'])}/h of "
        f"{_money(summary['total_budget_per_hour'])}/h; {summary['requests']:,} requests, "
        f"{summary['ticks']} ticks, decide p50 {summary['decide_ms_p50']:.0f} ms, "
        f"wall {summary['wall_s']:.0f} s",
        highlight=False,
    )
    if json_out is not None:
        summary["command"] = "governor simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2) + "\n")
        err.print(f"wrote {json_out}")
