"""`governor release`: ship a model artifact as a new version, and follow it to a verdict.

The command only writes a request to the daemon's inbox; the daemon admits or refuses it,
deploys the version and runs the canary (controller/releases/ledger.py), so the daemon
stays the only writer of the fleet. `--wait` follows the request in the daemon's saved
state until the release is promoted, rolled back, refused or the timeout passes.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from controller.agents.base import AgentState
from controller.agents.rollout import rollout_view
from controller.clock import Clock
from controller.config import GovernorConfig
from controller.releases.ledger import (
    ACTIVE,
    LEDGER,
    RELEASE,
    ReleaseRecord,
    effective_config,
    releases_of,
    step,
)
from controller.releases.metadata import (
    MetadataError,
    merged,
    parse_meta_pairs,
    parse_release_file,
)
from controller.releases.request import ReleaseRequest
from controller.snapshot import OperatorCommand, Snapshot

RELEASE_FILE = "release.yaml"
EXIT_PROMOTED = 0
EXIT_ROLLED_BACK = 1
EXIT_REFUSED = 3
EXIT_TIMED_OUT = 4
"""Exit codes of `governor release --wait` (2 stays the code of a bad command or config)."""
_EXITS = {"promoted": EXIT_PROMOTED, "rolled-back": EXIT_ROLLED_BACK, "aborted": EXIT_ROLLED_BACK}


def default_actor() -> str:
    """Who releases when `--actor` is not given: $GOVERNOR_ACTOR, else user@host."""
    return os.environ.get("GOVERNOR_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def release_file_of(model: str, given: Path | None) -> Path | None:
    """The release.yaml to read: the one given, else one beside a model on this disk."""
    if given is not None:
        return given
    beside = Path(model) / RELEASE_FILE
    return beside if beside.is_file() else None


def build_request(
    app: str,
    version: str,
    model: str,
    meta_pairs: Sequence[str],
    release_file: Path | None,
    actor: str,
    release_id: str | None,
    now: datetime,
) -> ReleaseRequest:
    """The request `governor release` sends; MetadataError names what cannot be used."""
    from_file: tuple[dict[str, str], dict[str, float]] = ({}, {})
    path = release_file_of(model, release_file)
    if path is not None:
        try:
            text = path.read_text()
        except OSError as err:
            raise MetadataError(f"{path}: cannot read the release file: {err.strerror}") from err
        from_file = parse_release_file(text, str(path))
    meta, scores = merged(from_file, parse_meta_pairs(meta_pairs))
    return ReleaseRequest(
        id=release_id or f"{app}-{version}-{uuid.uuid4().hex[:8]}",
        app=app,
        version=version,
        model=model,
        actor=actor,
        requested_at=now,
        meta=meta,
        scores=scores,
    )


def as_command(request: ReleaseRequest) -> OperatorCommand:
    """The inbox command that carries `request`."""
    return OperatorCommand(RELEASE, request.app, request.requested_at, args=request.to_json())


def preview(
    request: ReleaseRequest,
    snapshot: Snapshot,
    states: Mapping[str, AgentState],
    config: GovernorConfig,
) -> ReleaseRecord:
    """What the daemon would record for `request` on this snapshot: the dry run's verdict."""
    asked = replace(snapshot, commands=(as_command(request),))
    return releases_of(step(asked, states, config).ledger)[-1]


@dataclass(frozen=True)
class Progress:
    """Where a release stands, as `--wait` shows it."""

    status: str
    """queued (not yet seen by the daemon), canary, promoted, rolled-back, aborted, refused."""
    line: str

    @property
    def finished(self) -> bool:
        """Whether the release has its verdict."""
        return self.status not in ("queued", ACTIVE)


def progress(
    release_id: str, app: str, states: Mapping[str, AgentState], config: GovernorConfig
) -> Progress:
    """The progress of release `release_id` in the daemon's saved states."""
    found = [r for r in releases_of(states.get(LEDGER) or {}) if r["id"] == release_id]
    if not found:
        return Progress("queued", "queued: waiting for the daemon to read the request")
    record = found[-1]
    status = record["status"]
    if status != ACTIVE:
        return Progress(status, f"{status}: {record['reason']}")
    effective = effective_config(config, states.get(LEDGER) or {})
    if app not in {a.name for a in effective.applications}:
        return Progress(status, "canary: starting")
    view = rollout_view(states, effective.app(app))
    if view["phase"] != "canary" or view["candidate"] != record["version"]:
        return Progress(status, f"canary: starting (rollout {view['phase']})")
    steps = view["steps"]
    step_no = (view["step"] or 0) + 1
    verdict = f"{view['verdict']}: {view['reason']}" if view["verdict"] else "no verdict yet"
    return Progress(
        status,
        f"canary step {step_no}/{len(steps)} at weight {view['weight']}% of {steps[-1]}: {verdict}",
    )


def wait_for_verdict(
    release_id: str,
    app: str,
    config: GovernorConfig,
    load_states: Callable[[], Mapping[str, AgentState]],
    clock: Clock,
    timeout_s: float,
    show: Callable[[str], None],
    poll_s: float = 2.0,
) -> tuple[int, str]:
    """Follow a release until its verdict or the timeout: (exit code, last line)."""
    deadline = clock.now().timestamp() + timeout_s
    last = ""
    while True:
        now = progress(release_id, app, load_states(), config)
        if now.line != last:
            show(now.line)
            last = now.line
        if now.finished:
            return _EXITS.get(now.status, EXIT_REFUSED), now.line
        if clock.now().timestamp() >= deadline:
            hint = (
                " (is `governor run` running against this state?)" if now.status == "queued" else ""
            )
            return EXIT_TIMED_OUT, f"timed out after {timeout_s:g}s at {now.line}{hint}"
        clock.sleep(poll_s)


def release_table(records: Sequence[ReleaseRecord], title: str) -> Table:
    """Releases as a table, newest first."""
    table = Table(title=title)
    for column in ("requested", "app", "version", "model", "status", "actor", "why"):
        table.add_column(column, overflow="fold")
    for r in reversed(records):
        retired = f" (retired {r['retired']})" if "retired" in r else ""
        table.add_row(
            r["requested_at"][:19].replace("T", " "),
            r["app"],
            r["version"],
            r["model"],
            r["status"] + retired,
            r["actor"],
            r["reason"],
        )
    return table


def meta_summary(request: ReleaseRequest) -> str:
    """The metadata and scores of a request, on one line."""
    parts = [f"{k}={v}" for k, v in sorted(request.meta.items())]
    parts += [f"score.{k}={v:g}" for k, v in sorted(request.scores.items())]
    return ", ".join(parts) or "no metadata"


def describe_record(record: Mapping[str, Any]) -> str:
    """One line for a dry run's verdict."""
    if record["status"] == "refused":
        return f"refused: {record['reason']}"
    return f"admitted: a canary of {record['version']} against {record.get('stable')} would start"
