"""The `governor` command line: the daemon and its operator commands."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from controller import prometheus_config
from controller.calibration import command as calibrate_command
from controller.clock import Clock, SystemClock
from controller.config import (
    ConfigCheck,
    GovernorConfig,
    check_serve_config,
    check_state_folder,
    check_state_path,
    load_config,
)
from controller.errors import ConfigError, GovernorError
from controller.sim import command as sim_command
from controller.snapshot import Snapshot
from controller.target import Target, TargetBuilder
from controller.views import plan_table, status_table
from kuberay import render as kuberay_render

app = typer.Typer(
    name="governor",
    help="An SLO- and cost-governed control loop over Ray Serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rollout_app = typer.Typer(help="Operate rollouts by hand.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")
app.command("prometheus-config")(prometheus_config.command)
app.command("render-manifests")(kuberay_render.command)

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The daemon's YAML config file.")
]


def _serve_config_check(config: GovernorConfig, config_path: Path) -> None:
    """`check_serve_config` on the Serve config file the local target reads."""
    from controller.targets import resolve_path

    check_serve_config(config, resolve_path(config.local.serve_config, config_path))


RUN_CHECKS: tuple[ConfigCheck, ...] = (check_state_folder, _serve_config_check)
"""What `governor run` needs beyond a valid file: a state folder it can write, and the
deployments it governs in the Serve config it applies."""
OBSERVE_CHECKS: tuple[ConfigCheck, ...] = (check_state_path, _serve_config_check)
"""What the commands that read the fleet and the state (plan, status) need."""


def _load(
    path: Path, dry_run: bool | None = None, checks: tuple[ConfigCheck, ...] = ()
) -> GovernorConfig:
    try:
        config = load_config(path, checks)
    except ConfigError as err:
        # One line per problem, never wrapped: operators grep for the file and field.
        err_console.print(f"[bold red]invalid config[/]\n{err}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from err
    if dry_run:
        config = config.model_copy(update={"dry_run": True})
    return config


def _fail(err: GovernorError) -> typer.Exit:
    err_console.print(f"[bold red]error[/] ({err.kind}): {err}", highlight=False, soft_wrap=True)
    return typer.Exit(2 if isinstance(err, ConfigError) else 1)


@app.command()
def run(
    config_path: ConfigOption,
    once: Annotated[bool, typer.Option(help="Run one tick and exit.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Decide and report; apply nothing.")] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics here (overrides the config).")
    ] = None,
) -> None:
    """Run the control loop (the daemon)."""
    from controller.daemon import Daemon
    from controller.events import EventLog
    from controller.signals.commands import CommandInbox
    from controller.telemetry import Telemetry, serve_metrics

    config = _load(config_path, dry_run, RUN_CHECKS)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    clock = SystemClock()
    try:
        target = build_target(config, clock, config_path)
    except GovernorError as err:
        raise _fail(err) from err
    telemetry = Telemetry()
    port = config.metrics.port if metrics_port is None else metrics_port
    server = None
    if not once:
        server, _ = serve_metrics(telemetry, config.metrics.host, port)
        console.print(f"metrics on http://{config.metrics.host}:{port}/metrics")
    events = EventLog(Path(config.state_path).parent / "events.jsonl")
    try:
        daemon = Daemon(
            config,
            target.source,
            target.actuator,
            target.store,
            clock,
            telemetry,
            events,
            CommandInbox.beside_state(config.state_path),
            is_leader=target.is_leader,
        )
    except GovernorError as err:
        raise _fail(err) from err
    # The config, targets and clients live as long as the daemon: moving them out of the
    # collector's reach keeps full collections proportional to one tick's garbage.
    gc.freeze()
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def _show(report: Any) -> None:
        if report.error:
            err_console.print(f"[red]tick failed[/]: {report.error}", highlight=False)
        elif once:
            console.print(plan_table(config, report.snapshot, report.plan))
            if report.applied is not None:
                for change in report.applied.changes:
                    console.print(f"applied: {change}")
                if report.applied.held:
                    console.print(f"held: {report.applied.held}")

    try:
        daemon.run(stop, max_ticks=1 if once else None, on_tick=_show)
    finally:
        target.close()
        if server is not None:
            server.shutdown()
    if once and daemon.last is not None and daemon.last.error:
        raise typer.Exit(1)


@app.command()
def check(config_path: ConfigOption) -> None:
    """Check the config as `governor run` would, contacting nothing; exit 2 if it cannot work."""
    config = _load(config_path, checks=RUN_CHECKS)
    console.print(
        f"{config_path}: {len(config.applications)} applications, target {config.target}: OK",
        highlight=False,
        soft_wrap=True,
    )


def target_builders() -> dict[str, TargetBuilder]:
    """The builder of each `target:` kind the config may name."""
    from controller.targets import build_local_target
    from kuberay.target import build_kuberay_target

    return {"local": build_local_target, "kuberay": build_kuberay_target}


def build_target(config: GovernorConfig, clock: Clock, config_path: Path) -> Target:
    """The target the config names, from its entry in `target_builders()`."""
    return target_builders()[config.target](config, clock, config_path)


RATE_PROBE_S = 5.0
"""One-shot commands read the fleet twice this far apart, so rates have a window."""


def _observe_once(config: GovernorConfig, config_path: Path) -> tuple[Snapshot, dict[str, Any]]:
    clock = SystemClock()
    try:
        target = build_target(config, clock, config_path)
        try:
            target.source.observe()
            clock.sleep(min(config.window_s, RATE_PROBE_S))
            snapshot = target.source.observe()
            states = target.store.load()
        finally:
            target.close()
    except GovernorError as err:
        raise _fail(err) from err
    return snapshot, states


def _print_problems(snapshot: Snapshot) -> None:
    for problem in snapshot.problems:
        console.print(f"[yellow]missing[/]: {problem}", highlight=False)


@app.command()
def plan(config_path: ConfigOption) -> None:
    """Observe the fleet once, decide, and print the plan with its reasons; apply nothing."""
    from controller.decide import decide

    config = _load(config_path, checks=OBSERVE_CHECKS)
    snapshot, states = _observe_once(config, config_path)
    decision = decide(snapshot, states, config)
    console.print(plan_table(config, snapshot, decision.plan))
    _print_problems(snapshot)


@app.command()
def status(config_path: ConfigOption) -> None:
    """Per application and version: replicas, weights, p95 vs SLO, cost vs budget, rollout."""
    from controller.agents.rollout import rollout_view
    from controller.decide import decide

    config = _load(config_path, checks=OBSERVE_CHECKS)
    snapshot, states = _observe_once(config, config_path)
    decision = decide(snapshot, states, config)
    rollouts = {a.name: rollout_view(states, a) for a in config.applications}
    console.print(status_table(config, snapshot, decision.plan, rollouts))
    _print_problems(snapshot)


@rollout_app.command("abort")
def rollout_abort(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application.")],
    config_path: ConfigOption,
) -> None:
    """Abort the rollout of APP: the daemon moves all traffic back to the stable version."""
    from controller.signals.commands import CommandInbox

    config = _load(config_path, checks=(check_state_folder,))
    names = [a.name for a in config.applications]
    if app_name not in names:
        err_console.print(f"[red]unknown application[/] {app_name!r}; known: {', '.join(names)}")
        raise typer.Exit(2)
    path = CommandInbox.beside_state(config.state_path).submit("abort-rollout", app_name)
    console.print(
        f"abort of {app_name}'s rollout queued ({path}); the daemon acts on its next tick"
    )


@app.command()
def demo(
    config_path: Annotated[
        Path, typer.Option("--config", "-c", help="The daemon config of the demo fleet.")
    ] = Path("configs/governor.local.yaml"),
    out: Annotated[Path, typer.Option(help="Where the report goes.")] = Path("out/demo"),
    replay_s: Annotated[
        float, typer.Option(help="Seconds the whole trace is compressed to.")
    ] = 170.0,
    rate_scale: Annotated[
        float, typer.Option(help="Fraction of the trace's requests sent.")
    ] = 0.08,
    chat_rate_scale: Annotated[
        float,
        typer.Option(
            min=0, help="Fraction of the trace's requests streamed to the chat app (0: none)."
        ),
    ] = 0.01,
    trace: Annotated[Path | None, typer.Option(help="Trace CSV (default: the shared one).")] = None,
) -> None:
    """Run the embedded default: local Ray, the serve app, the daemon and a replayed trace."""
    from controller.demo.run import DemoOptions, run_demo

    _load(config_path, checks=(_serve_config_check,))
    # Events show in the live view; the log would only repeat them under it.
    logging.basicConfig(level=logging.ERROR)
    try:
        run_demo(
            DemoOptions(
                config=config_path,
                out=out,
                replay_s=replay_s,
                rate_scale=rate_scale,
                chat_rate_scale=chat_rate_scale,
                trace=trace,
            )
        )
    except GovernorError as err:
        raise _fail(err) from err


app.command("simulate")(sim_command.simulate)
app.command("calibrate")(calibrate_command.calibrate)


def main() -> None:
    """Entry point of the `governor` console script."""
    app()


if __name__ == "__main__":
    main()
