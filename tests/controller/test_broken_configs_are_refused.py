"""Every broken variant of a valid config is refused: exit 2, the file and field named,
no traceback, nothing written. Run in-process, so hundreds of variants take seconds.

    .venv/bin/pytest -q -p no:cacheprovider tests/controller/test_broken_configs_are_refused.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from click.testing import CliRunner

from controller.cli import app
from tests.controller import broken_configs
from tests.controller.broken_configs import STATE_FOLDER, Scope, Variant

REPO = Path(__file__).resolve().parents[2]
GOVERNOR = typer.main.get_command(app)
"""The command line built once: typer would build it again for every invocation."""
VARIANTS = broken_configs.variants()
PROFILE = str(REPO / "configs" / "profiles" / "minilm-cpu.yaml")

OTHER_COMMANDS: dict[Scope, list[list[str]]] = {
    "document": [
        ["run", "--once"],
        ["plan"],
        ["status"],
        ["rollout", "abort", "embed"],
        ["simulate", "--profile", PROFILE],
        ["calibrate", "--profile", PROFILE, "--out", "{folder}/calibration.yaml"],
    ],
    "state": [["run", "--once"], ["rollout", "abort", "embed"]],
    "serve": [["run", "--once"], ["plan"], ["status"]],
}
"""Besides `governor check`, each variant goes through one of the commands that must
refuse it, in turn: every command that loads a config is exercised."""


def squeezed(text: str) -> str:
    """`text` without whitespace: a console may wrap a long line anywhere."""
    return "".join(text.split())


def invoke(command: list[str], config: Path) -> tuple[int, str, BaseException | None]:
    """Exit code, output and exception of `governor COMMAND --config CONFIG`, in-process."""
    args = [a.replace("{folder}", str(config.parent)) for a in command]
    result = CliRunner().invoke(GOVERNOR, [*args, "--config", str(config)])
    return result.exit_code, result.output, result.exception


def test_the_generator_makes_over_200_distinct_variants() -> None:
    names = [v.name for v in VARIANTS]
    assert len(names) >= 200
    assert len(set(names)) == len(names)


def test_the_sample_itself_is_accepted(tmp_path: Path) -> None:
    broken_configs.put(tmp_path / "governor.yaml", broken_configs.sample(tmp_path))
    code, output, _ = invoke(["check"], tmp_path / "governor.yaml")
    assert code == 0, output
    assert "3 applications" in output


@pytest.mark.parametrize(
    ("index", "variant"), list(enumerate(VARIANTS)), ids=[v.name for v in VARIANTS]
)
def test_a_broken_config_is_refused_naming_its_file_and_field(
    tmp_path: Path, index: int, variant: Variant
) -> None:
    config = variant.write(tmp_path)
    others = OTHER_COMMANDS[variant.scope]
    for command in (["check"], others[index % len(others)]):
        code, output, exception = invoke(command, config)
        assert isinstance(exception, SystemExit), f"{command}: {exception!r}\n{output}"
        assert code == 2, f"{command} exited {code}:\n{output}"
        named = f"{tmp_path / variant.file}: {variant.field}"
        assert squeezed(named) in squeezed(output), f"{command}: {output}"
        assert not (tmp_path / STATE_FOLDER).exists()
