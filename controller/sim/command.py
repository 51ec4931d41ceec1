"""`governor simulate`: replay a trace against a simulated fleet under several policies."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from controller.errors import GovernorError

if TYPE_CHECKING:
    from controller.config import GovernorConfig
    from controller.sim.engine import Progress as SimProgress
    from controller.sim.runner import PolicyRun, Scenario

POLICY_NAMES = ("governor", "ray-default", "hpa", "static-peak")


def profile_for(gpu_type: str, root: Path) -> Path | None:
    """The first profile in `configs/profiles/` measured on `gpu_type`."""
    import yaml

    for path in sorted((root / "configs" / "profiles").glob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and doc.get("gpu_type") == gpu_type:
            return path
    return None


def simulate(
    config_path: Annotated[Path, typer.Option("--config", "-c", help="The daemon's YAML config.")],
    trace_path: Annotated[
        Path | None,
        typer.Option("--trace", help="Trace CSV (default: the shared conversation trace)."),
    ] = None,
    policies: Annotated[
        list[str] | None,
        typer.Option("--policy", help="governor, ray-default, hpa or static-peak; repeatable."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    plot_out: Annotated[Path | None, typer.Option("--plot", help="Write a PNG plot here.")] = None,
    time_scale: Annotated[float, typer.Option(help="Replay this many times faster.")] = 1.0,
    rate_scale: Annotated[float, typer.Option(help="Multiply the request rate.")] = 1.0,
    profile_path: Annotated[
        Path | None, typer.Option("--profile", help="Service-time profile YAML.")
    ] = None,
    app_name: Annotated[str | None, typer.Option("--app", help="Application to simulate.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the rate scaling.")] = 0,
    hpa_target: Annotated[
        float | None, typer.Option(help="HPA target in-flight requests per pod.")
    ] = None,
    initial_replicas: Annotated[
        int | None, typer.Option(min=1, help="Replicas at the start, for every policy.")
    ] = None,
    fleet: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Simulate this many copies of the config's first application at once, each "
            "on its own rotated trace of the suite, under one decide() and shared budgets.",
        ),
    ] = None,
    volume: Annotated[
        float, typer.Option(min=0.001, help="--fleet: each app's traffic x the suite trace's.")
    ] = 0.25,
) -> None:
    """Simulate a trace against the fleet under each policy and compare them."""
    # A table wider than 80 columns: keep it readable when piped to a file.
    out = Console(width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True)
    if fleet is not None:
        from controller.sim import fleet_command

        fleet_command.run(config_path, profile_path, fleet, volume, seed, json_out, out, err)
        return
    try:
        s = load_scenario(
            config_path,
            trace_path,
            profile_path,
            time_scale,
            rate_scale,
            seed,
            app_name,
            hpa_target,
            initial_replicas,
        )
        runs = run_with_progress(s, policies or list(POLICY_NAMES), err)
    except GovernorError as e:
        err.print(f"[bold red]error[/] ({e.kind}): {e}", highlight=False)
        raise typer.Exit(2) from e
    from controller.sim import report

    out.print(report.table(s, runs))
    command = "governor simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    if json_out is not None:
        report.write_json(report.document(s, runs, command), json_out)
        err.print(f"wrote {json_out}")
    if plot_out is not None:
        report.plot(s, runs, plot_out)
        err.print(f"wrote {plot_out}")


def load_scenario(
    config_path: Path,
    trace_path: Path | None,
    profile_path: Path | None,
    time_scale: float,
    rate_scale: float,
    seed: int,
    app_name: str | None = None,
    hpa_target: float | None = None,
    initial_replicas: int | None = None,
) -> Scenario:
    """Read and check the inputs of a simulation; raises GovernorError on bad input."""
    from controller.config import load_config
    from controller.sim.engine import SimSettings
    from controller.sim.errors import SimInputError
    from controller.sim.profile import load_profile
    from controller.sim.runner import find_app, scenario
    from controller.sim.trace import default_trace_path, load_trace, repo_root, scale_trace

    config = load_config(config_path)
    if initial_replicas is not None:
        config = with_initial_replicas(config, find_app(config, app_name).name, initial_replicas)
    if profile_path is None:
        gpu_type = find_app(config, app_name).resources.gpu_type
        profile_path = profile_for(gpu_type, repo_root())
        if profile_path is None:
            raise SimInputError(
                f"no profile in configs/profiles/ for gpu_type {gpu_type!r}; pass --profile"
            )
    profile = load_profile(profile_path)
    base = load_trace(trace_path or default_trace_path())
    trace = scale_trace(base, time_scale=time_scale, rate_scale=rate_scale, seed=seed)
    return scenario(config, profile, trace, app_name, SimSettings(seed=seed), hpa_target, mix=base)


def with_initial_replicas(config: GovernorConfig, app: str, n: int) -> GovernorConfig:
    """`config` with the stable version of `app` starting at `n` replicas."""
    apps = []
    for a in config.applications:
        if a.name == app:
            versions = [
                v.model_copy(update={"initial_replicas": n}) if v.name == a.stable_version else v
                for v in a.versions
            ]
            a = a.model_copy(update={"versions": versions})
        apps.append(a)
    return config.model_copy(update={"applications": apps})


def run_with_progress(s: Scenario, names: list[str], err: Console) -> dict[str, PolicyRun]:
    """Run the policies with a progress bar per policy on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from controller.sim.runner import run_policies

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:

        def progress(name: str) -> SimProgress:
            task = bar.add_task(name, total=max(s.trace.duration_s, 1.0))

            def update(done: float, total: float) -> None:
                bar.update(task, completed=min(done, total))

            return update

        return run_policies(
            s, names, say=lambda line: err.print(line, highlight=False), progress=progress
        )
