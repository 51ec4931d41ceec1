"""The embedded default end to end: local Ray, the serve app, the daemon, a replayed trace."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from controller.actuators.serve_config import load_serve_config
from controller.actuators.state_file import FileStateStore
from controller.clock import Clock, SystemClock
from controller.config import GovernorConfig, load_config
from controller.daemon import Daemon, TickReport
from controller.demo.load import ChatTraceLoad, TraceLoad
from controller.demo.local_ray import free_port, local_ray, wait_for_http
from controller.demo.report import Timeline, generation_summary, summarize, write_report
from controller.events import EventLog
from controller.release_cli import build_request
from controller.releases.ledger import LEDGER, releases_of
from controller.signals.commands import CommandInbox
from controller.targets import build_local_target
from controller.telemetry import Telemetry, serve_metrics
from controller.transports.ray_dashboard import RayDashboardClient
from controller.views import status_table


@dataclass(frozen=True)
class DemoOptions:
    """Knobs of the demo; the defaults finish in about four minutes on two cores."""

    config: Path = Path("configs/governor.local.yaml")
    out: Path = Path("out/demo")
    trace: Path | None = None
    replay_s: float = 170.0
    """Length of the replay: the whole trace, time-compressed to this many seconds."""
    rate_scale: float = 0.08
    """Fraction of the trace's requests sent (after time compression)."""
    chat_rate_scale: float = 0.01
    """Fraction of the trace's requests sent as streaming chats, where a generation app is."""
    release_at: float = 0.25
    """Fraction of the replay after which the new version is released (`governor release`)."""
    release_version: str = "v2"
    release_model: str = "bundled:all-MiniLM-L6-v2"
    num_cpus: int = 8
    metrics_port: int = 9400
    seed: int = 0


def _demo_config(options: DemoOptions, metrics_url: str, dashboard_url: str) -> GovernorConfig:
    config = load_config(options.config)
    state = options.out / "state.json"
    return config.model_copy(
        update={
            "local": config.local.model_copy(
                update={"metrics_urls": [metrics_url], "dashboard_url": dashboard_url}
            ),
            "state_path": str(state),
        }
    )


def _release(options: DemoOptions, config: GovernorConfig, app: str, clock: Clock) -> str:
    """Queue the demo's release in the daemon's inbox, as `governor release` does."""
    request = build_request(
        app,
        options.release_version,
        options.release_model,
        ["owner=governor-demo"],
        None,
        "governor demo",
        None,
        clock.now(),
    )
    CommandInbox.beside_state(config.state_path).submit("release", app, request.to_json())
    return request.id


def _release_record(daemon: Daemon, release_id: str | None) -> dict[str, Any] | None:
    """The daemon's record of the demo's release."""
    found = [r for r in releases_of(daemon.states.get(LEDGER) or {}) if r["id"] == release_id]
    return dict(found[-1]) if found else None


def _model_name(serve_doc: dict[str, Any], app: str) -> str:
    for a in serve_doc.get("applications", []):
        if a.get("name") == app:
            return str((a.get("args") or {}).get("model_name") or app)
    return app


@dataclass(frozen=True)
class _ChatApp:
    """A governed generation application of the Serve config: what the chat clients need."""

    name: str
    url: str
    model: str


def _chat_app(serve_doc: dict[str, Any], config: GovernorConfig, http_url: str) -> _ChatApp | None:
    governed = {a.name for a in config.applications}
    for a in serve_doc.get("applications", []):
        args = a.get("args") or {}
        if args.get("task") == "generation" and a.get("name") in governed:
            prefix = str(a.get("route_prefix") or "/").rstrip("/")
            return _ChatApp(a["name"], f"{http_url}{prefix}", str(args.get("model_name")))
    return None


def _http_url(serve_doc: dict[str, Any]) -> str:
    http = serve_doc.get("http_options") or {}
    return f"http://{http.get('host', '127.0.0.1')}:{http.get('port', 8000)}"


def _wait_running(client: RayDashboardClient, app: str, timeout_s: float, console: Console) -> None:
    deadline = time.monotonic() + timeout_s
    status = "absent"
    while time.monotonic() < deadline:
        apps = client.get_applications().get("applications") or {}
        status = (apps.get(app) or {}).get("status", "absent")
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            raise RuntimeError(f"application {app} failed to deploy: {apps[app].get('message')}")
        time.sleep(1.0)
    raise RuntimeError(f"application {app} not RUNNING after {timeout_s:.0f}s (status {status})")


def run_demo(options: DemoOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the whole embedded default and return its summary."""
    console = console or Console()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    options.out.mkdir(parents=True, exist_ok=True)
    for stale in ("state.json", "events.jsonl"):
        (options.out / stale).unlink(missing_ok=True)
    base_config = load_config(options.config)
    app_cfg = base_config.applications[0]
    serve_doc = load_serve_config(base_config.local.serve_config)
    http_url = _http_url(serve_doc)
    console.print(f"[bold]starting local Ray[/] ({options.num_cpus} logical CPUs)")
    with local_ray(options.num_cpus) as head:
        config = _demo_config(options, head.metrics_url, head.dashboard_url)
        dashboard = RayDashboardClient(head.dashboard_url)
        console.print(f"deploying {config.local.serve_config} through {head.dashboard_url}")
        dashboard.put_applications(serve_doc)
        for serve_app in serve_doc.get("applications", []):
            _wait_running(dashboard, serve_app["name"], 240, console)
        wait_for_http(f"{http_url}/-/routes", 60, "the Serve HTTP proxy")
        console.print(f"[green]serving[/] at {http_url}")

        clock = SystemClock()
        target = build_local_target(config, clock)
        telemetry = Telemetry()
        metrics_port = options.metrics_port or free_port()
        server, _ = serve_metrics(telemetry, "127.0.0.1", metrics_port)
        daemon = Daemon(
            config,
            target.source,
            target.actuator,
            FileStateStore(config.state_path),
            clock,
            telemetry,
            EventLog(options.out / "events.jsonl"),
            CommandInbox.beside_state(config.state_path),
        )
        load = TraceLoad(
            url=http_url,
            model=_model_name(serve_doc, app_cfg.name),
            trace_path=options.trace,
            replay_s=options.replay_s,
            rate_scale=options.rate_scale,
            seed=options.seed,
        )
        chat_app = _chat_app(serve_doc, config, http_url)
        chat = (
            ChatTraceLoad(
                url=chat_app.url,
                model=chat_app.model,
                trace_path=options.trace,
                replay_s=options.replay_s,
                rate_scale=options.chat_rate_scale,
                seed=options.seed + 1,
            )
            if chat_app is not None and options.chat_rate_scale > 0
            else None
        )
        timeline = Timeline(
            app_cfg.name,
            app_cfg.slo.latency_p95_ms,
            [*(v.name for v in app_cfg.versions), options.release_version],
        )
        stop = threading.Event()
        reports: list[TickReport] = []
        daemon_thread = threading.Thread(
            target=daemon.run,
            args=(stop,),
            kwargs={"on_tick": reports.append},
            name="governor-daemon",
            daemon=True,
        )
        console.print(
            f"daemon ticking every {config.interval_s:.0f}s, metrics on "
            f"http://127.0.0.1:{metrics_port}/metrics; replaying {load.describe()}"
        )
        if chat is not None:
            console.print(f"streaming chats to {chat.base_url}: {chat.describe()}")
        daemon_thread.start()
        load.start()
        if chat is not None:
            chat.start()
        started = time.monotonic()
        release_id: str | None = None
        seen = 0
        try:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                while not (load.finished() and (chat is None or chat.finished())):
                    elapsed = time.monotonic() - started
                    if release_id is None and elapsed >= options.release_at * options.replay_s:
                        release_id = _release(options, config, app_cfg.name, clock)
                    while seen < len(reports):
                        rps, p95 = load.recent(elapsed, window_s=config.interval_s * 2)
                        timeline.add(time.monotonic() - started, reports[seen], rps, p95)
                        seen += 1
                    live.update(_live_view(daemon, load, chat, elapsed, options.replay_s))
                    time.sleep(0.5)
        finally:
            load.stop()
            if chat is not None:
                chat.stop()
            stop.set()
            daemon_thread.join(timeout=30)
            server.shutdown()
            target.close()
            try:
                dashboard.delete_applications()
            finally:
                dashboard.close()
        latencies, failures = load.results()
        summary = summarize(
            timeline, latencies, failures, daemon.rollouts().get(app_cfg.name, {}), daemon.config
        )
        summary["release"] = _release_record(daemon, release_id)
        if chat is not None and chat_app is not None:
            ttft, tpot = chat.token_latencies()
            slo = daemon.config.app(chat_app.name).slo
            summary["generation"] = generation_summary(
                chat_app.name, slo, ttft, tpot, chat.ok, chat.failed, chat.shed
            )
        summary_path, png = write_report(options.out, timeline, summary)
    _print_summary(console, summary, summary_path, png)
    return summary


def _live_view(
    daemon: Daemon, load: TraceLoad, chat: ChatTraceLoad | None, elapsed: float, total: float
) -> Group:
    last = daemon.last
    text = (
        f"t={elapsed:5.0f}s / {total:.0f}s   answered {load.sent} of {len(load.requests)} "
        f"(ok {load.ok}, failed {load.failed}, of which shed {load.shed})"
    )
    if chat is not None:
        text += (
            f"\nchats streamed {chat.sent} of {len(chat.requests)} "
            f"(ok {chat.ok}, failed {chat.failed}, of which shed {chat.shed})"
        )
    header = Text(text, style="bold")
    if last is None or last.snapshot is None:
        return Group(header, Text("waiting for the first tick..."))
    table = status_table(daemon.config, last.snapshot, last.plan, last.rollouts)
    lines: list[RenderableType] = [header, table]
    if last.error:
        lines.append(Text(f"last tick failed: {last.error}", style="red"))
    for event in list(daemon.events.recent)[-4:]:
        lines.append(Text(f"{event['at'][11:19]} {event['kind']}: {event['message']}"[:160]))
    return Group(*lines)


def _print_summary(console: Console, summary: dict[str, Any], path: Path, png: Path) -> None:
    console.rule("summary")
    console.print(
        yaml.safe_dump(summary, sort_keys=False, default_flow_style=None), highlight=False
    )
    console.print(f"report: {png}\nsummary: {path}")
