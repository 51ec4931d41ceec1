"""A Prometheus scrape config for a local Ray (through Ray's file-SD document) plus the daemon."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

DEFAULT_RAY_SD_FILE = "/tmp/ray/prom_metrics_service_discovery.json"
DEFAULT_DAEMON = "127.0.0.1:9400"
RAY_JOB = "ray"
DAEMON_JOB = "governor"

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_HOST_PORT = re.compile(r"^[^\s/:]+:[0-9]{1,5}$")


def scrape_config(
    ray_sd_file: str = DEFAULT_RAY_SD_FILE,
    daemon: str | None = DEFAULT_DAEMON,
    scrape_interval: str = "5s",
    rule_files: Sequence[str] = (),
) -> dict[str, Any]:
    """The Prometheus config document: job `ray` over Ray's file-SD, job `governor` the daemon."""
    if not _DURATION.match(scrape_interval):
        raise ValueError(f"scrape interval {scrape_interval!r} is not a Prometheus duration")
    if daemon is not None and not _HOST_PORT.match(daemon):
        raise ValueError(f"daemon address {daemon!r} is not HOST:PORT")
    jobs: list[dict[str, Any]] = [
        {
            "job_name": RAY_JOB,
            # Ray rewrites this file as nodes come and go; Prometheus watches it.
            "file_sd_configs": [{"files": [ray_sd_file], "refresh_interval": scrape_interval}],
        }
    ]
    if daemon is not None:
        jobs.append({"job_name": DAEMON_JOB, "static_configs": [{"targets": [daemon]}]})
    doc: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}
    }
    if rule_files:
        doc["rule_files"] = list(rule_files)
    doc["scrape_configs"] = jobs
    return doc


def write_scrape_config(out: Path, doc: dict[str, Any]) -> Path:
    """Write `doc` as YAML to `out` (parents created); returns the path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Written by `governor prometheus-config`.\n" + yaml.safe_dump(doc, sort_keys=False)
    )
    return out


def command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Prometheus config.")],
    ray_sd_file: Annotated[
        str, typer.Option(help="Ray's Prometheus service-discovery file.")
    ] = DEFAULT_RAY_SD_FILE,
    daemon: Annotated[
        str, typer.Option(help="HOST:PORT of the daemon's /metrics; 'none' to leave it out.")
    ] = DEFAULT_DAEMON,
    scrape_interval: Annotated[str, typer.Option(help="Scrape and rule interval.")] = "5s",
    rules: Annotated[
        list[Path] | None, typer.Option("--rules", help="Rule files to load (repeatable).")
    ] = None,
) -> None:
    """Write a Prometheus scrape config for a local Ray and the Governor daemon."""
    try:
        doc = scrape_config(
            ray_sd_file,
            None if daemon.lower() == "none" else daemon,
            scrape_interval,
            [str(p.resolve()) for p in rules or ()],
        )
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    path = write_scrape_config(out, doc)
    typer.echo(f"wrote {path}; run: prometheus --config.file {path}")
