"""Benchmark: open-loop overload against a local Serve app, and how fast its backlog clears.

One local Ray runs the Serve config users run (`configs/serve.local.yaml` by default: the
bundled all-MiniLM-L6-v2, v1 taking all traffic). First the capacity is measured in the
same run: closed-loop clients (each waiting for its answer before sending again) for
`--capacity-s` seconds; answered requests per second is the capacity. Then, for each
multiplier (0.5x .. 3x of that capacity), requests arrive at a fixed rate for
`--phase-s` seconds whatever the answers (open loop, as users arrive), and the load then
drops to single probes. A phase's backlog has cleared when every request that arrived
before the drop has its answer and a probe sent after the drop is answered within the
SLO (`slo.latency_p95_ms` of the application in `--governor-config`).

Latency is counted from each request's scheduled arrival, so a load generator that falls
behind shows up as latency instead of being hidden. A 503 is `router` when it carries the
OpenAI error body with code `overloaded` (the router shed it), `proxy` when Serve's proxy
answered it (the router's own queue was full).

    flock /tmp/governor-ray.lock .venv/bin/python benchmarks/overload.py    # ~2 minutes

Prints a table and writes overload.json and overload.png under --out (out/benchmarks/).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from dataplane import make_texts, percentile  # a sibling: scripts run with their folder on sys.path
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
PROBE_INTERVAL_S = 0.25
SETTLE_S = 2.0


@dataclass(frozen=True)
class Outcome:
    """One request: when it was due, when its answer came, and what the answer was."""

    due: float
    done: float
    status: str
    """HTTP status, `timeout` or `error`."""
    shed_by: str = ""
    """For a 503: `router` (it names the version) or `proxy` (Serve's proxy answered)."""
    retry_after: str = ""
    well_formed: bool = True
    """For a 503: an OpenAI error body with code `overloaded` and a Retry-After header."""


@dataclass(frozen=True)
class Phase:
    """One open-loop phase: its arrival rate and what became of its requests."""

    multiplier: float
    rate: float
    offered: int
    ok: int
    shed_router: int
    shed_proxy: int
    timeouts: int
    other: int
    p50_ms: float
    p99_ms: float
    clear_s: float
    retry_after: list[str]
    malformed_503: int
    """503s without an OpenAI body of code `overloaded` or without Retry-After."""
    send_lag_ms: float
    """The load generator's worst lateness against the schedule."""


class Client:
    """Posts embedding requests and classifies the answers."""

    def __init__(self, session: aiohttp.ClientSession, url: str, model: str, timeout_s: float):
        self.session = session
        self.url = url
        self.model = model
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.texts = make_texts(2048)
        self.sent = 0

    async def post(self, due: float) -> Outcome:
        """One request due at `due` (perf_counter seconds), sent now."""
        text = self.texts[self.sent % len(self.texts)]
        self.sent += 1
        body = {"model": self.model, "input": [text], "encoding_format": "base64"}
        try:
            async with self.session.post(self.url, json=body, timeout=self.timeout) as r:
                payload = await r.read()
                status, retry = str(r.status), r.headers.get("retry-after", "")
                routed = "x-governor-version" in r.headers
        except TimeoutError:
            return Outcome(due, time.perf_counter(), "timeout")
        except aiohttp.ClientError:
            return Outcome(due, time.perf_counter(), "error")
        if status != "503":
            return Outcome(due, time.perf_counter(), status)
        well_formed = bool(retry) and _error_code(payload) == "overloaded"
        shed_by = "router" if routed else "proxy"
        return Outcome(due, time.perf_counter(), status, shed_by, retry, well_formed)


def _seconds(retry_after: str) -> float:
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return 1.0


def _error_code(payload: bytes) -> str | None:
    try:
        return str(json.loads(payload)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


async def closed_loop(client: Client, clients: int, seconds: float) -> list[Outcome]:
    """`clients` senders, each waiting for its answer, for `seconds`.

    A sender told 503 waits its Retry-After before sending again, as the OpenAI SDK does:
    one that retried at once would measure how fast refusals come, not answers.
    """
    stop_at = time.perf_counter() + seconds
    outcomes: list[Outcome] = []

    async def sender() -> None:
        while time.perf_counter() < stop_at:
            outcome = await client.post(time.perf_counter())
            outcomes.append(outcome)
            if outcome.status == "503":
                await asyncio.sleep(
                    min(_seconds(outcome.retry_after), stop_at - time.perf_counter())
                )

    await asyncio.gather(*(sender() for _ in range(clients)))
    return outcomes


async def open_loop(
    client: Client, rate: float, seconds: float
) -> tuple[list[asyncio.Task[Outcome]], float]:
    """Send requests at a fixed rate for `seconds`; their tasks and the worst send lag (s)."""
    count = max(1, round(rate * seconds))
    start = time.perf_counter() + 0.05
    tasks = []
    lag = 0.0
    for i in range(count):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        lag = max(lag, time.perf_counter() - due)
        tasks.append(asyncio.create_task(client.post(due)))
    return tasks, lag


async def until_clear(
    client: Client,
    arrived: list[asyncio.Task[Outcome]],
    drop: float,
    slo_s: float,
    limit_s: float,
) -> float:
    """Seconds from `drop` until every arrived request is answered and a probe sent after
    the drop is answered within the SLO (`limit_s` if that never happens)."""
    cleared_at = None
    while time.perf_counter() - drop < limit_s:
        sent = time.perf_counter()
        probe = await client.post(sent)
        if cleared_at is None and probe.status == "200" and probe.done - sent <= slo_s:
            cleared_at = sent
        if cleared_at is not None and all(t.done() for t in arrived):
            last = max(t.result().done for t in arrived)
            return max(cleared_at, last) - drop
        await asyncio.sleep(max(0.0, PROBE_INTERVAL_S - (time.perf_counter() - sent)))
    return limit_s


async def run_phase(
    client: Client, multiplier: float, capacity: float, args: argparse.Namespace, slo_s: float
) -> Phase:
    """One phase at `multiplier` x capacity, then the drop and the time to clear."""
    rate = multiplier * capacity
    arrived, lag = await open_loop(client, rate, args.phase_s)
    drop = time.perf_counter()
    clear_s = await until_clear(client, arrived, drop, slo_s, args.timeout_s + 10)
    outcomes = list(await asyncio.gather(*arrived))
    await asyncio.sleep(SETTLE_S)
    return summarize_phase(multiplier, rate, outcomes, clear_s, lag)


def summarize_phase(
    multiplier: float, rate: float, outcomes: list[Outcome], clear_s: float, lag: float
) -> Phase:
    """Counts and latency quantiles of one phase's requests."""
    by = Counter(o.status for o in outcomes)
    shed = Counter(o.shed_by for o in outcomes if o.status == "503")
    answered = [(o.done - o.due) * 1000 for o in outcomes if o.status == "200"]
    return Phase(
        multiplier=multiplier,
        rate=rate,
        offered=len(outcomes),
        ok=by["200"],
        shed_router=shed["router"],
        shed_proxy=shed["proxy"],
        timeouts=by["timeout"],
        other=len(outcomes) - by["200"] - shed["router"] - shed["proxy"] - by["timeout"],
        p50_ms=percentile(answered, 0.50),
        p99_ms=percentile(answered, 0.99),
        clear_s=clear_s,
        retry_after=sorted({o.retry_after for o in outcomes if o.status == "503"}),
        malformed_503=sum(o.status == "503" and not o.well_formed for o in outcomes),
        send_lag_ms=lag * 1000,
    )


async def measure_all(
    url: str, model: str, args: argparse.Namespace, slo_s: float, console: Console
) -> tuple[float, list[Phase]]:
    """Capacity by closed loop, then one open-loop phase per multiplier."""
    # No connection limit: a pool that makes requests wait for a connection would be a
    # queue in the client, and the load would no longer be open.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Client(session, url, model, args.timeout_s)
        await closed_loop(client, args.capacity_clients, args.warmup_s)
        done = await closed_loop(client, args.capacity_clients, args.capacity_s)
        capacity = sum(o.status == "200" for o in done) / args.capacity_s
        if capacity <= 0:
            statuses = Counter(o.status for o in done).most_common(3)
            raise RuntimeError(f"no request was answered 200 at {url}: {statuses}")
        console.print(
            f"capacity: {capacity:.1f} req/s ({args.capacity_clients} closed-loop clients)"
        )
        await asyncio.sleep(SETTLE_S)
        phases = []
        for multiplier in args.multipliers:
            phases.append(await run_phase(client, multiplier, capacity, args, slo_s))
            p = phases[-1]
            console.print(
                f"{multiplier:g}x: {p.ok}/{p.offered} answered, {p.shed_router}+{p.shed_proxy} "
                f"shed, p99 {p.p99_ms:.0f} ms, cleared in {p.clear_s:.1f} s"
            )
    return capacity, phases


def serve_config(path: Path, http_port: int) -> tuple[dict[str, Any], str, str]:
    """The Serve config at `path` on `http_port`, kept to its embeddings application (and
    the applications of its versions); the embeddings URL path and model name."""
    doc = copy.deepcopy(yaml.safe_load(path.read_text()))
    doc["http_options"] = {"host": "127.0.0.1", "port": http_port}
    builders = ("serving.app:build_app", "serving.app:build_router")
    for app in doc["applications"]:
        args = app.get("args") or {}
        if app.get("import_path") in builders and args.get("task") == "embeddings":
            prefix = (app.get("route_prefix") or "/").rstrip("/")
            held = {
                name
                for d in app["deployments"]
                for name in ((d.get("user_config") or {}).get("versions") or {}).values()
            }
            doc["applications"] = [app, *(a for a in doc["applications"] if a["name"] in held)]
            return doc, f"{prefix}/v1/embeddings", args["model_name"]
    raise SystemExit(f"{path}: no embeddings application (serving.app:build_router or build_app)")


def slo_of(governor_config: Path, app: str) -> float:
    """The application's latency SLO (p95, ms) in the daemon's config."""
    from controller.config import load_config

    config = load_config(governor_config)
    found = config.app(app)
    if found is None:
        raise SystemExit(f"{governor_config}: no application {app!r}")
    return found.slo.latency_p95_ms


SHED_SERIES = ("ray_governor_requests_shed_total", "ray_governor_proxy_requests_shed_total")


def shed_counted(metrics_url: str) -> float:
    """Requests the routers and the proxy counted as shed (SHED_SERIES)."""
    import httpx

    total = 0.0
    for line in httpx.get(metrics_url, timeout=10).text.splitlines():
        if line.startswith(SHED_SERIES):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_until_running(client: Any, app: str, timeout_s: float = 300.0) -> None:
    """Wait for `app` to be RUNNING with every deployment healthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = (client.get_applications().get("applications") or {}).get(app) or {}
        deployments = status.get("deployments", {}).values()
        if status.get("status") == "RUNNING" and all(d["status"] == "HEALTHY" for d in deployments):
            return
        if status.get("status") == "DEPLOY_FAILED":
            raise RuntimeError(f"application {app} failed: {status.get('message')}")
        time.sleep(0.5)
    raise RuntimeError(f"application {app} did not start in time")


def run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    """Start Ray and Serve, deploy, measure; the JSON report."""
    from ray import serve

    from controller.demo.local_ray import free_port, local_ray
    from controller.transports.ray_dashboard import RayDashboardClient

    with local_ray(num_cpus=args.ray_cpus, dashboard_port=free_port()) as head:
        http_port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": http_port})
        config, path, model = serve_config(args.serve_config, http_port)
        app = config["applications"][0]["name"]
        slo_ms = slo_of(args.governor_config, app)
        dashboard = RayDashboardClient(head.dashboard_url, timeout_s=60)
        try:
            dashboard.put_applications(config)
            for serve_app in config["applications"]:
                wait_until_running(dashboard, serve_app["name"])
            url = f"http://127.0.0.1:{http_port}{path}"
            capacity, phases = asyncio.run(measure_all(url, model, args, slo_ms / 1000, console))
            time.sleep(2 * SETTLE_S)
            counted = shed_counted(head.metrics_url)
        finally:
            dashboard.close()
    return {
        "serve_config": str(args.serve_config),
        "deployments": [d for a in config["applications"] for d in a.get("deployments", [])],
        "slo_p95_ms": slo_ms,
        "capacity_rps": capacity,
        "phase_s": args.phase_s,
        "timeout_s": args.timeout_s,
        "phases": [asdict(p) for p in phases],
        "shed_counted": counted,
        "load_avg_1m": os.getloadavg()[0],
    }


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """The two targets at the highest load: p99 under 2x the SLO, cleared within 5 s."""
    top = max(report["phases"], key=lambda p: p["multiplier"])
    return {
        "at_multiplier": top["multiplier"],
        "p99_under_2x_slo": top["p99_ms"] < 2 * report["slo_p95_ms"],
        "every_phase_cleared_within_5s": all(p["clear_s"] <= 5 for p in report["phases"]),
    }


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The table of phases and the verdict."""
    table = Table(
        title=f"open-loop overload: capacity {report['capacity_rps']:.1f} req/s, "
        f"SLO p95 {report['slo_p95_ms']:.0f} ms, {report['phase_s']:.0f} s per phase"
    )
    columns = ("rate", "req/s", "offered", "200", "200/s", "503 router", "503 proxy",
               "timeouts", "other", "p50 ms", "p99 ms", "clear s")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right")
    for p in report["phases"]:
        table.add_row(
            f"{p['multiplier']:g}x", f"{p['rate']:.0f}", str(p["offered"]), str(p["ok"]),
            f"{p['ok'] / report['phase_s']:.0f}", str(p["shed_router"]), str(p["shed_proxy"]),
            str(p["timeouts"]), str(p["other"]),
            f"{p['p50_ms']:.0f}", f"{p['p99_ms']:.0f}", f"{p['clear_s']:.1f}",
        )  # fmt: skip
    console.print(table)
    v = report["verdict"]
    console.print(
        f"at {v['at_multiplier']:g}x: p99 under 2x SLO: {v['p99_under_2x_slo']}; "
        f"every phase cleared within 5 s: {v['every_phase_cleared_within_5s']}; "
        f"shed counted by the routers and the proxy: {report['shed_counted']:.0f}; "
        f"503s not in OpenAI format or without Retry-After: "
        f"{sum(p['malformed_503'] for p in report['phases'])}"
    )


def plot(report: dict[str, Any], path: Path) -> None:
    """Answered p50/p99 against load, and what became of the requests, per phase."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = report["phases"]
    x = [p["multiplier"] for p in phases]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(x, [p["p50_ms"] for p in phases], marker="o", label="p50 of answered")
    left.plot(x, [p["p99_ms"] for p in phases], marker="o", label="p99 of answered")
    left.axhline(2 * report["slo_p95_ms"], linestyle="--", color="grey", label="2x SLO")
    left.set_xlabel("arrival rate / measured capacity")
    left.set_ylabel("ms")
    left.legend(fontsize=8)
    bottom = [0.0] * len(phases)
    for key, label in (("ok", "200"), ("shed_router", "503 router"),
                       ("shed_proxy", "503 proxy"), ("timeouts", "timeout")):  # fmt: skip
        share = [p[key] / max(1, p["offered"]) for p in phases]
        right.bar([str(v) for v in x], share, bottom=bottom, label=label)
        bottom = [b + s for b, s in zip(bottom, share, strict=True)]
    right.set_xlabel("arrival rate / measured capacity")
    right.set_ylabel("share of offered requests")
    right.legend(fontsize=8)
    figure.suptitle(f"Load shedding: capacity {report['capacity_rps']:.0f} req/s")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-config", type=Path, default=ROOT / "configs/serve.local.yaml")
    parser.add_argument(
        "--governor-config", type=Path, default=ROOT / "configs/governor.local.yaml"
    )
    parser.add_argument("--multipliers", type=_floats, default=[0.5, 1, 1.5, 2, 3])
    parser.add_argument("--phase-s", type=float, default=12.0)
    parser.add_argument("--capacity-s", type=float, default=10.0)
    parser.add_argument("--capacity-clients", type=int, default=32)
    parser.add_argument("--warmup-s", type=float, default=4.0)
    parser.add_argument("--timeout-s", type=float, default=60.0, help="client timeout")
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "out/benchmarks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table; write JSON and PNG under --out."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Ray starts workers (the proxy, the router, the replicas) at niceness 15 and this
    # load generator runs at 0: on a shared host the server would then lose every contest
    # for a core to its own client. Both run at the same priority.
    os.environ.setdefault("RAY_worker_niceness", "0")
    # The proxy's own 503s (the router's queue full) in the OpenAI error format.
    os.environ.setdefault(
        "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH", "serving.proxy_errors:middlewares"
    )
    console = Console(width=120)
    report = run(args, console)
    report["verdict"] = verdict(report)
    print_report(console, report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overload.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, args.out / "overload.png")
    console.print(f"wrote {args.out / 'overload.json'} and {args.out / 'overload.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
