"""The `governor` command line: the daemon and its operator commands."""

from __future__ import annotations

import typer

from controller import prometheus_config

app = typer.Typer(
    name="governor",
    help="An SLO- and cost-governed control loop over Ray Serve.",
    no_args_is_help=True,
    add_completion=False,
)


app.command("prometheus-config")(prometheus_config.command)


def main() -> None:
    """Entry point of the `governor` console script."""
    app()
