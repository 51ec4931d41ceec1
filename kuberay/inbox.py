"""Operator commands on a cluster: one key per command in a ConfigMap the daemon reads.

`governor release` and `governor rollout abort` run where the daemon's state folder is out
of reach (a CI job), so on KubeRay a command is a data key of the `governor-commands`
ConfigMap. The daemon needs no new rights for it: it reads and patches ConfigMaps already
(its state lives in them); whoever submits needs `get`, `create` and `patch` on it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from controller.signals.commands import command_document, command_name, parse_command
from controller.snapshot import OperatorCommand
from kuberay.configmaps import ConfigMapClient, ConfigMapData
from kuberay.errors import ConflictError

LABELS = {"app.kubernetes.io/name": "governor", "app.kubernetes.io/component": "commands"}
ATTEMPTS = 5
"""Writes retried on a conflict (another writer patched the ConfigMap in between)."""


class ConfigMapInbox:
    """Pending commands as data keys of one ConfigMap, named so that they sort by time."""

    def __init__(self, configmaps: ConfigMapClient, name: str) -> None:
        self.configmaps = configmaps
        self.name = name

    def submit(self, action: str, app: str, args: Mapping[str, Any] | None = None) -> str:
        """Add one command key (creating the ConfigMap on first use); returns where."""
        key = command_name()
        text = command_document(action, app, args)

        def write(current: ConfigMapData | None) -> None:
            if current is None:
                self.configmaps.create(self.name, {key: text}, LABELS)
            else:
                self.configmaps.patch(self.name, {key: text}, current.resource_version)

        self._retrying(write)
        return f"configmap/{self.name}:{key}"

    def pending(self) -> list[tuple[Any, OperatorCommand]]:
        """Commands not yet handled, oldest first; keys that do not parse are skipped."""
        current = self.configmaps.get(self.name)
        found: list[tuple[Any, OperatorCommand]] = []
        for key in sorted((current.data if current else {}).keys()):
            try:
                found.append((key, parse_command(current.data[key])))  # type: ignore[union-attr]
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def done(self, handles: list[Any]) -> None:
        """Remove the handled keys."""
        if not handles:
            return

        def remove(current: ConfigMapData | None) -> None:
            if current is not None:
                gone: dict[str, str | None] = {k: None for k in handles if k in current.data}
                if gone:
                    self.configmaps.patch(self.name, gone, current.resource_version)

        self._retrying(remove)

    def _retrying(self, write: Callable[[ConfigMapData | None], None]) -> None:
        for attempt in range(ATTEMPTS):
            try:
                write(self.configmaps.get(self.name))
                return
            except ConflictError:
                if attempt == ATTEMPTS - 1:
                    raise
