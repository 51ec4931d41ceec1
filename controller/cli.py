"""The `governor` command line: the daemon and its operator commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="governor",
    help="An SLO- and cost-governed control loop over Ray Serve.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    """Entry point of the `governor` console script."""
    app()
