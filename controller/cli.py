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
from typer.core import TyperGroup

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


class _ReleaseGroup(TyperGroup):
    """`governor release APP ...` runs `start`; `list` and `history` are commands of their own."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Route `release APP ...` to the hidden `start` command."""
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


release_app = typer.Typer(
    cls=_ReleaseGroup,
    help="Release a model artifact as a new version: `governor release APP --version NAME "
    "--model SOURCE [--wait]` (admission, canary, promotion; see `governor release start "
    "--help`); `list` and `history APP` show releases and their outcomes.",
    no_args_is_help=True,
)
app.add_typer(release_app, name="release")
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
            target.inbox,
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


def _observe_once(
    config: GovernorConfig, config_path: Path
) -> tuple[Snapshot, dict[str, Any], GovernorConfig]:
    """Read the fleet (twice, for rates) and the saved state: the snapshot, the states, and
    the effective config (the versions releases added or retired) it was observed under."""
    from controller.releases.ledger import LEDGER, effective_config
    from controller.signals.base import FollowsConfig

    clock = SystemClock()
    try:
        target = build_target(config, clock, config_path)
        try:
            states = target.store.load()
            effective = effective_config(config, states.get(LEDGER) or {})
            if isinstance(target.source, FollowsConfig):
                target.source.use_config(effective)
            target.source.observe()
            clock.sleep(min(config.window_s, RATE_PROBE_S))
            snapshot = target.source.observe()
        finally:
            target.close()
    except GovernorError as err:
        raise _fail(err) from err
    return snapshot, states, effective


def _print_problems(snapshot: Snapshot) -> None:
    for problem in snapshot.problems:
        console.print(f"[yellow]missing[/]: {problem}", highlight=False)


@app.command()
def plan(config_path: ConfigOption) -> None:
    """Observe the fleet once, decide, and print the plan with its reasons; apply nothing."""
    from controller.decide import decide

    config = _load(config_path, checks=OBSERVE_CHECKS)
    snapshot, states, effective = _observe_once(config, config_path)
    decision = decide(snapshot, states, config)
    console.print(plan_table(decision.config or effective, snapshot, decision.plan))
    _print_problems(snapshot)


@app.command()
def status(config_path: ConfigOption) -> None:
    """Per application and version: replicas, weights, p95 vs SLO, cost vs budget, rollout."""
    from controller.agents.rollout import rollout_view
    from controller.decide import decide

    config = _load(config_path, checks=OBSERVE_CHECKS)
    snapshot, states, effective = _observe_once(config, config_path)
    decision = decide(snapshot, states, config)
    rollouts = {a.name: rollout_view(states, a) for a in effective.applications}
    console.print(status_table(effective, snapshot, decision.plan, rollouts))
    _print_problems(snapshot)


@rollout_app.command("abort")
def rollout_abort(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application.")],
    config_path: ConfigOption,
) -> None:
    """Abort the rollout of APP: the daemon moves all traffic back to the stable version."""
    config = _load(config_path, checks=(check_state_folder,))
    names = [a.name for a in config.applications]
    if app_name not in names:
        err_console.print(f"[red]unknown application[/] {app_name!r}; known: {', '.join(names)}")
        raise typer.Exit(2)
    path = _submit(config, config_path, "abort-rollout", app_name, None)
    console.print(
        f"abort of {app_name}'s rollout queued ({path}); the daemon acts on its next tick"
    )


def _submit(
    config: GovernorConfig,
    config_path: Path,
    action: str,
    app_name: str,
    args: dict[str, Any] | None,
) -> str:
    """Queue a command in the inbox of the daemon this config runs; returns where."""
    try:
        target = build_target(config, SystemClock(), config_path)
        try:
            return target.inbox.submit(action, app_name, args)
        finally:
            target.close()
    except GovernorError as err:
        raise _fail(err) from err


def _saved_states(config: GovernorConfig, config_path: Path) -> dict[str, Any]:
    """The daemon's saved agent states (read only)."""
    try:
        target = build_target(config, SystemClock(), config_path)
        try:
            return dict(target.store.load())
        finally:
            target.close()
    except GovernorError as err:
        raise _fail(err) from err


@release_app.command("start", hidden=True)
def release_start(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application.")],
    config_path: ConfigOption,
    version: Annotated[str, typer.Option("--version", help="Name of the new version.")],
    model: Annotated[
        str,
        typer.Option(help="Model source: a path, bundled:NAME, made:NAME or a hub id."),
    ],
    meta: Annotated[
        list[str] | None,
        typer.Option(help="Release metadata KEY=VALUE (repeatable); score.NAME=NUMBER."),
    ] = None,
    release_file: Annotated[
        Path | None,
        typer.Option(help="A release.yaml (default: the one in the model's folder, if any)."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Who releases (default $GOVERNOR_ACTOR or user@host).")
    ] = None,
    release_id: Annotated[
        str | None, typer.Option("--id", help="An id for the release (default: generated).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check admission against the fleet; deploy nothing.")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="Follow the release until it is promoted or rolled back.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="With --wait: give up after this many seconds.", min=1)
    ] = 1800.0,
) -> None:
    """Release MODEL as version VERSION of APP: admission, then a canary under the daemon.

    Exit codes with --wait: 0 promoted, 1 rolled back or aborted, 3 refused, 4 timed out;
    2 for a bad command or config.
    """
    from controller import release_cli as rc
    from controller.releases.metadata import MetadataError

    config = _load(config_path, checks=(check_state_folder,))
    clock = SystemClock()
    try:
        request = rc.build_request(
            app_name,
            version,
            model,
            meta or [],
            release_file,
            actor or rc.default_actor(),
            release_id,
            clock.now(),
        )
    except MetadataError as err:
        err_console.print(f"[red]release metadata[/]: {err}", highlight=False)
        raise typer.Exit(2) from err
    console.print(
        f"release {request.id}: {app_name} {version} <- {model} by {request.actor} "
        f"({rc.meta_summary(request)})",
        highlight=False,
    )
    if dry_run:
        snapshot, states, _ = _observe_once(config, config_path)
        record = rc.preview(request, snapshot, states, config)
        console.print(f"dry run, nothing deployed: {rc.describe_record(record)}", highlight=False)
        _print_problems(snapshot)
        raise typer.Exit(rc.EXIT_REFUSED if record["status"] == "refused" else 0)
    where = _submit(config, config_path, "release", app_name, request.to_json())
    console.print(f"queued in {where}", highlight=False)
    if not wait:
        console.print(f"follow it with: governor release history {app_name} -c {config_path}")
        return
    code, line = rc.wait_for_verdict(
        request.id,
        app_name,
        config,
        lambda: _saved_states(config, config_path),
        clock,
        timeout,
        lambda text: console.print(f"  {text}", highlight=False),
    )
    (console if code == 0 else err_console).print(line, highlight=False)
    raise typer.Exit(code)


def _print_releases(config_path: Path, app_name: str | None) -> None:
    """The releases the daemon's saved state holds (of one app when given), newest first."""
    from controller import release_cli as rc
    from controller.releases.ledger import LEDGER, releases_of

    config = _load(config_path, checks=(check_state_folder,))
    records = releases_of(_saved_states(config, config_path).get(LEDGER) or {}, app_name)
    title = f"releases of {app_name}" if app_name else "releases"
    console.print(rc.release_table(records, f"{title} ({len(records)})"))


@release_app.command("list")
def release_list(config_path: ConfigOption) -> None:
    """Every release the daemon remembers, newest first, with its outcome."""
    _print_releases(config_path, None)


@release_app.command("history")
def release_history(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application.")],
    config_path: ConfigOption,
) -> None:
    """The releases of APP, newest first: who, what, when, and the verdict with its reason."""
    _print_releases(config_path, app_name)


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
