"""Configs that loaded but could not work are refused at load, naming the file and field.

Each case was accepted before (or failed later with a traceback or exit 1): an infinite
SLO, deadline or interval, a deployment missing from the Serve config, URLs that are not
URLs, a window shorter than the interval, a state folder the daemon cannot write, a
repeated key, and a document nested 5,000 deep.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli import app
from controller.config import load_config
from controller.config_yaml import read_yaml
from controller.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def base(tmp_path: Path) -> dict[str, Any]:
    """The shipped local config, made safe to run: state in `tmp_path`, no reachable dashboard,
    dry run, its Serve config copied beside it, no calibration file."""
    doc = yaml.safe_load((REPO / "configs/governor.local.yaml").read_text())
    serve = yaml.safe_load((REPO / "configs/serve.local.yaml").read_text())
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(serve))
    # A calibration is measured for one SLO and refuses any other: seed capacity instead.
    for application in doc["applications"]:
        scaling = application["scaling"]
        del scaling["calibration"]
        scaling["capacity_rps_per_replica"] = 100.0
    doc["local"].update(dashboard_url="http://127.0.0.1:1", serve_config="serve.yaml")
    doc["dry_run"] = True
    doc["state_path"] = str(tmp_path / "state" / "state.json")
    return doc


def write(tmp_path: Path, doc: object, name: str = "governor.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def refused(config: Path, *command: str) -> str:
    """The output of `governor COMMAND --config CONFIG`, which must exit 2 without a traceback
    and write no state."""
    result = CliRunner().invoke(app, [*(command or ("run", "--once")), "--config", str(config)])
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert not (config.parent / "state").exists()
    return result.output


def test_the_shipped_local_config_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(app, ["check", "--config", "configs/governor.local.yaml"])
    assert result.exit_code == 0, result.output
    assert "2 applications, target local: OK" in result.output


@pytest.mark.parametrize(
    ("field", "where"),
    [
        ("latency_p95_ms", ("applications", 0, "slo")),
        ("deadline_s", ("applications", 0, "rollout")),
    ],
)
def test_an_infinite_slo_or_rollout_deadline_is_refused(
    tmp_path: Path, field: str, where: tuple[Any, ...]
) -> None:
    doc = base(tmp_path)
    section: Any = doc
    for part in where:
        section = section[part]
    section[field] = float("inf")
    output = refused(write(tmp_path, doc))
    assert f"{where[0]}[0].{where[2]}.{field}: Input should be a finite number" in output


@pytest.mark.parametrize("value", [".inf", "1e300", "1e12"])
def test_an_interval_the_loop_cannot_sleep_is_refused(tmp_path: Path, value: str) -> None:
    text = yaml.safe_dump(base(tmp_path), sort_keys=False).replace(
        "interval_s: 3\n", f"interval_s: {value}\n"
    )
    (tmp_path / "governor.yaml").write_text(text)
    assert "interval_s: Input should be" in refused(tmp_path / "governor.yaml")


@pytest.mark.parametrize(
    ("serve_app", "deployments", "field"),
    [
        ("embeddings-v1", [], "applications[0].versions[0].deployment"),
        ("embeddings", [], "applications[0].router_deployment"),
        ("chat-v1", None, "applications[1].versions[0].application"),
    ],
)
def test_a_deployment_missing_from_the_serve_config_is_refused(
    tmp_path: Path, serve_app: str, deployments: list[str] | None, field: str
) -> None:
    doc = base(tmp_path)
    serve = yaml.safe_load((tmp_path / "serve.yaml").read_text())
    apps = serve["applications"]
    if deployments is None:
        serve["applications"] = [a for a in apps if a["name"] != serve_app]
    else:
        (app,) = [a for a in apps if a["name"] == serve_app]
        app["deployments"] = [d for d in app["deployments"] if d["name"] in deployments]
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(serve))
    config = write(tmp_path, doc)
    for command in (("run", "--once"), ("plan",), ("check",)):
        output = refused(config, *command)
        assert f"{config}: {field}: " in output
        assert f"in the Serve config {tmp_path / 'serve.yaml'}" in output


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dashboard_url", "127.0.0.1:8265"),
        ("dashboard_url", "not a url"),
        ("dashboard_url", "http://:8265"),
        ("metrics_urls", ["localhost:8080/metrics"]),
        ("metrics_urls", ["http://127.0.0.1:99999/metrics"]),
    ],
)
def test_dashboard_and_metrics_urls_must_be_http_urls(
    tmp_path: Path, field: str, value: object
) -> None:
    doc = base(tmp_path)
    doc["local"][field] = value
    output = refused(write(tmp_path, doc))
    path = f"local.{field}" + ("[0]" if isinstance(value, list) else "")
    assert f"{path}: Value error, " in output


def test_a_window_shorter_than_the_interval_is_refused(tmp_path: Path) -> None:
    doc = base(tmp_path)
    doc.update(interval_s=10, window_s=5)
    output = refused(write(tmp_path, doc))
    assert "window_s: window_s (5) must be at least interval_s (10)" in output


def _under_a_file(tmp_path: Path) -> str:
    (tmp_path / "taken").write_text("")
    return str(tmp_path / "taken" / "state.json")


def _read_only_folder(tmp_path: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    return str(folder / "governor" / "state.json")


@pytest.mark.parametrize(
    "state_path",
    [_under_a_file, lambda _: "/proc/governor/state.json", _read_only_folder],
    ids=["under a file", "on a read-only file system", "in a read-only folder"],
)
def test_a_state_folder_the_daemon_cannot_write_is_refused(tmp_path: Path, state_path: Any) -> None:
    doc = base(tmp_path)
    doc["state_path"] = state_path(tmp_path)
    config = write(tmp_path, doc)
    for command in (("run", "--once"), ("rollout", "abort", "embeddings"), ("check",)):
        assert f"{config}: state_path: " in refused(config, *command)


@pytest.mark.parametrize("value", ["", "  ", "."])
def test_an_empty_state_path_is_refused_naming_the_field(tmp_path: Path, value: str) -> None:
    doc = base(tmp_path)
    doc["state_path"] = value
    output = refused(write(tmp_path, doc))
    assert f"{tmp_path / 'governor.yaml'}: state_path: " in output
    assert "Is a directory" not in output


def test_a_state_path_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    doc = base(tmp_path)
    (tmp_path / "here").mkdir()
    doc["state_path"] = str(tmp_path / "here")
    output = refused(write(tmp_path, doc), "plan")
    assert f"state_path: {tmp_path / 'here'} is a folder" in output


def test_a_repeated_key_is_refused_naming_the_key_and_its_lines(tmp_path: Path) -> None:
    doc = base(tmp_path)
    text = yaml.safe_dump(doc, sort_keys=False)
    lines = text.splitlines()
    first = lines.index("interval_s: 3") + 1
    (tmp_path / "governor.yaml").write_text(text + "interval_s: 30\n")
    output = refused(tmp_path / "governor.yaml")
    assert (
        f"governor.yaml: interval_s: the key is repeated at line {len(lines) + 1} "
        f"(first at line {first})"
    ) in output


def test_a_repeated_nested_key_is_refused_with_its_field_path(tmp_path: Path) -> None:
    text = "applications:\n  - name: a\n    slo: {latency_p95_ms: 100, latency_p95_ms: 200}\n"
    (tmp_path / "governor.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"applications\[0\]\.slo\.latency_p95_ms: the key is"):
        load_config(tmp_path / "governor.yaml")


def test_merge_keys_may_override_what_they_merge(tmp_path: Path) -> None:
    (tmp_path / "doc.yaml").write_text("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\n")
    assert read_yaml(tmp_path / "doc.yaml", "document") == {
        "base": {"x": 1, "y": 2},
        "use": {"x": 1, "y": 3},
    }


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("governor.yaml", "interval_s: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("governor.yaml", "window_s:\n" + "".join("  " * i + "- \n" for i in range(1, 1200))),
        ("governor.yaml", "prices: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
        ("governor.json", '{"interval_s": ' + "[" * 5000 + "]" * 5000 + "}"),
    ],
    ids=["YAML lists", "YAML blocks", "YAML mappings", "JSON"],
)
def test_a_document_nested_5000_deep_is_refused_naming_the_field(
    tmp_path: Path, name: str, text: str
) -> None:
    (tmp_path / name).write_text(text)
    output = refused(tmp_path / name)
    field = text.split(":")[0].strip('{"')
    assert f"{tmp_path / name}: {field}" in output
    assert "nested deeper than 32 levels" in output


def test_aliases_of_aliases_are_walked_once_not_expanded(tmp_path: Path) -> None:
    levels = ["a0: &a0 [1, 1]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 30)]
    (tmp_path / "doc.yaml").write_text("\n".join(levels) + "\n")
    began = time.process_time()
    read_yaml(tmp_path / "doc.yaml", "document")
    assert time.process_time() - began < 1.0


def test_the_demo_refuses_a_broken_config_before_it_starts_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def start(*_: object) -> None:
        raise AssertionError("the demo started")

    monkeypatch.setattr("controller.demo.run.run_demo", start)
    doc = base(tmp_path)
    doc["applications"][0]["router_deployment"] = "gateway"
    output = refused(write(tmp_path, doc), "demo", "--out", str(tmp_path / "out"))
    assert "applications[0].router_deployment: 'gateway' is not a deployment" in output
