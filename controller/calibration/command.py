"""`governor calibrate`: measure one replica's capacity model and write it for a config."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from controller.calibration.model import Calibration
from controller.errors import ConfigError, GovernorError


def _shapes(raw: list[str] | None) -> tuple[tuple[int, int], ...] | None:
    if not raw:
        return None
    out = []
    for item in raw:
        prompt, _, output = item.partition(":")
        try:
            out.append((int(prompt), int(output or 0)))
        except ValueError:
            raise ConfigError(
                f"--shape {item!r}: expected PROMPT:OUTPUT tokens, e.g. 512:128"
            ) from None
        if out[-1][0] < 1 or out[-1][1] < 0:
            raise ConfigError(f"--shape {item!r}: prompt tokens must be >= 1, output >= 0")
    return tuple(out)


def calibrate(
    config_path: Annotated[Path, typer.Option("--config", "-c", help="The daemon's YAML config.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the calibration.")],
    profile_path: Annotated[
        Path | None,
        typer.Option(
            "--profile", help="Calibrate a simulated replica of this service-time profile."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="Calibrate a live deployment behind this OpenAI-compatible base URL."
        ),
    ] = None,
    app_name: Annotated[str | None, typer.Option("--app", help="Application (SLO).")] = None,
    model: Annotated[str | None, typer.Option(help="Live: the model name requests carry.")] = None,
    kind: Annotated[str, typer.Option(help="Live: encoder or generation.")] = "encoder",
    shape: Annotated[
        list[str] | None,
        typer.Option(help="Live: PROMPT:OUTPUT tokens of one load shape; repeatable."),
    ] = None,
    step_s: Annotated[float, typer.Option(min=1, help="Live: seconds per load step.")] = 10.0,
    max_rps: Annotated[float, typer.Option(min=0.1, help="Live: highest rate tried.")] = 256.0,
) -> None:
    """Measure one replica's capacity per request shape and fit the work model a config uses."""
    err = Console(stderr=True)
    try:
        if (profile_path is None) == (url is None):
            raise ConfigError("give exactly one of --profile (simulated) or --url (live)")
        if kind not in ("encoder", "generation"):
            raise ConfigError(f"--kind {kind!r}: expected encoder or generation")
        result = _run(
            config_path,
            profile_path,
            url,
            app_name,
            model,
            kind,
            _shapes(shape),
            step_s,
            max_rps,
            err,
        )
    except GovernorError as e:
        err.print(f"[bold red]error[/] ({e.kind}): {e}", highlight=False)
        raise typer.Exit(2) from e
    from controller.calibration.model import write_calibration

    command = "governor calibrate " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    write_calibration(
        result,
        out,
        f"Written by: {command}\nReference it from a config as "
        "scaling.calibration (a path relative to the config's folder).",
    )
    w = result.work
    err.print(
        f"wrote {out}: {w.per_request_s * 1e3:.3g} ms per request + "
        f"{w.per_prompt_token_s * 1e6:.3g} us per prompt token + "
        f"{w.per_output_token_s * 1e6:.3g} us per output token (largest error "
        f"{result.fit_error:.0%} over {len(result.points)} shapes)",
        highlight=False,
    )


def _run(
    config_path: Path,
    profile_path: Path | None,
    url: str | None,
    app_name: str | None,
    model: str | None,
    kind: str,
    shapes: tuple[tuple[int, int], ...] | None,
    step_s: float,
    max_rps: float,
    err: Console,
) -> Calibration:
    from controller.config import load_config
    from controller.sim.runner import find_app

    config = load_config(config_path)
    app = find_app(config, app_name)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        if profile_path is not None:
            from controller.calibration.simulated import calibrate_profile, shapes_for
            from controller.sim.profile import load_profile

            profile = load_profile(profile_path)
            task = bar.add_task(f"load tests of {profile.name}", total=len(shapes_for(profile)))

            def step(done: int, total: int, what: str) -> None:
                bar.update(task, completed=done)
                err.print(f"  {what}", highlight=False)

            return calibrate_profile(profile, app, f"simulated load test of {profile_path}", step)
        from controller.calibration.live import calibrate_live, http_sender
        from controller.calibration.simulated import ENCODER_SHAPES, GENERATION_SHAPES

        assert url is not None
        chosen = shapes or (ENCODER_SHAPES if kind == "encoder" else GENERATION_SHAPES)
        task = bar.add_task(f"load steps against {url}", total=None)

        def done(what: str) -> None:
            bar.advance(task)
            err.print(f"  {what}", highlight=False)

        return calibrate_live(
            http_sender(url, model or app.name, kind),
            app,
            kind,
            chosen,
            f"live load test of {url} ({app.name})",
            step_s=step_s,
            max_rps=max_rps,
            done=done,
        )
