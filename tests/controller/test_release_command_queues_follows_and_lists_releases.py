"""`governor release`: the request it queues, how --wait follows it, list and history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controller import release_cli as rc
from controller.actuators.state_file import FileStateStore
from controller.cli import app
from controller.releases.ledger import LEDGER, step
from controller.releases.metadata import MetadataError
from controller.releases.request import ReleaseRequest
from controller.signals.commands import CommandInbox
from tests.controller.clock import ManualClock
from tests.controller.releases.ledger_world import T0, config, release, rollout, snapshot
from tests.controller.test_config_refuses_what_cannot_work import base, write


def _config_file(tmp_path: Path) -> Path:
    return write(tmp_path, base(tmp_path))


def _state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "state.json"


def test_a_release_is_queued_in_the_daemons_inbox_with_its_metadata(tmp_path: Path) -> None:
    model = tmp_path / "model-v3"
    model.mkdir()
    (model / "release.yaml").write_text("owner: search\nscores: {sts: 0.82}\n")
    result = CliRunner().invoke(
        app,
        [
            "release", "embeddings", "--version", "v3", "--model", str(model),
            "--meta", "ticket=OPS-7", "--actor", "ci-bot", "--id", "rel-1",
            "--config", str(_config_file(tmp_path)),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "queued in" in result.output
    ((_, command),) = CommandInbox.beside_state(_state(tmp_path)).pending()
    assert (command.action, command.app) == ("release", "embeddings")
    request = ReleaseRequest.from_json(command.args)
    assert (request.id, request.version, request.model, request.actor) == (
        "rel-1",
        "v3",
        str(model),
        "ci-bot",
    )
    assert dict(request.meta) == {"owner": "search", "ticket": "OPS-7"}
    assert dict(request.scores) == {"sts": 0.82}


def test_bad_metadata_is_refused_before_anything_is_queued(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "release", "embeddings", "--version", "v3", "--model", "bundled:x",
            "--meta", "owner", "--config", str(_config_file(tmp_path)),
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "owner" in result.output
    assert CommandInbox.beside_state(_state(tmp_path)).pending() == []


def test_wait_without_a_daemon_times_out_and_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "release", "embeddings", "--version", "v3", "--model", "bundled:x",
            "--meta", "owner=me", "--wait", "--timeout", "1",
            "--config", str(_config_file(tmp_path)),
        ],
    )  # fmt: skip
    assert result.exit_code == rc.EXIT_TIMED_OUT, result.output
    said = " ".join(result.output.split())
    assert "queued: waiting for the daemon" in said
    assert "is `governor run` running" in said


def _progression() -> list[dict[str, Any]]:
    """The daemon's saved states as a release of v3 goes from queued to promoted."""
    cfg = config()
    admitted = step(snapshot(commands=(release(id="rel-9"),)), {}, cfg).ledger
    canary = {"apps": {"embed": {"phase": "canary", "candidate": "v3", "step_index": 1,
                                 "weight": 25, "stable": "v1", "config_stable": "v1",
                                 "verdict": {"result": "pass", "reason": "latency alike"}}}}  # fmt: skip
    promoted_states = {LEDGER: admitted, "rollout": rollout("promoted", "v3")}
    promoted = step(snapshot(5, {"v1": 0, "v2": 0, "v3": 100}), promoted_states, cfg).ledger
    return [
        {},
        {LEDGER: admitted},
        {LEDGER: admitted, "rollout": canary},
        {LEDGER: promoted, "rollout": rollout("promoted", "v3")},
    ]


def test_wait_shows_each_step_and_exits_zero_on_promotion() -> None:
    states = iter(_progression())
    shown: list[str] = []
    code, line = rc.wait_for_verdict(
        "rel-9", "embed", config(), lambda: next(states), ManualClock(T0), 60, shown.append
    )
    assert code == rc.EXIT_PROMOTED
    assert shown[0].startswith("queued")
    assert shown[2] == "canary step 2/4 at weight 25% of 100: pass: latency alike"
    assert line.startswith("promoted: ")


@pytest.mark.parametrize(
    ("phase", "code"), [("rolled-back", rc.EXIT_ROLLED_BACK), ("aborted", rc.EXIT_ROLLED_BACK)]
)
def test_wait_exits_non_zero_with_the_reason_when_the_canary_loses(phase: str, code: int) -> None:
    cfg = config()
    admitted = step(snapshot(commands=(release(id="rel-9"),)), {}, cfg).ledger
    lost = {LEDGER: admitted, "rollout": rollout(phase, "v3", reason="p95 1.6x the stable's")}
    settled = step(snapshot(5), lost, cfg).ledger
    got, line = rc.wait_for_verdict(
        "rel-9", "embed", cfg, lambda: {**lost, LEDGER: settled}, ManualClock(T0), 60, print
    )
    assert got == code and "p95 1.6x the stable's" in line


def test_history_lists_the_releases_of_one_app_with_who_and_why(tmp_path: Path) -> None:
    cfg = config()
    refused = step(snapshot(commands=(release("v9", model="s3://x", id="r-bad"),)), {}, cfg)
    FileStateStore(_state(tmp_path)).save({LEDGER: refused.ledger})
    config_path = _config_file(tmp_path)
    wide = CliRunner(env={"COLUMNS": "300"})
    history = wide.invoke(app, ["release", "history", "embed", "-c", str(config_path)])
    listed = wide.invoke(app, ["release", "list", "-c", str(config_path)])
    assert history.exit_code == 0 and listed.exit_code == 0, history.output + listed.output
    for output in (history.output, listed.output):
        assert "v9" in output and "refused" in output and "ci@example.com" in output


def test_metadata_from_a_release_file_and_pairs_is_merged(tmp_path: Path) -> None:
    (tmp_path / "release.yaml").write_text(yaml.safe_dump({"owner": "a", "scores": {"s": 1}}))
    request = rc.build_request(
        "embed", "v3", str(tmp_path), ["owner=b", "score.t=2"], None, "me", None, T0
    )
    assert dict(request.meta) == {"owner": "b"} and dict(request.scores) == {"s": 1.0, "t": 2.0}
    with pytest.raises(MetadataError, match="cannot read"):
        rc.build_request("embed", "v3", "x", [], tmp_path / "missing.yaml", "me", None, T0)
