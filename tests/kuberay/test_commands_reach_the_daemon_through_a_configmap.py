"""Operator commands on a cluster: keys of one ConfigMap, written by the CLI, read by the daemon."""

from __future__ import annotations

from controller.releases.request import ReleaseRequest
from kuberay.configmaps import ConfigMapClient
from kuberay.inbox import ConfigMapInbox
from tests.controller.releases.ledger_world import T0
from tests.kuberay.fake_apiserver import FakeApiServer

NAME = "governor-commands"


def _request(version: str) -> ReleaseRequest:
    return ReleaseRequest(
        id=f"embed-{version}",
        app="embed",
        version=version,
        model="/models/m",
        actor="ci",
        requested_at=T0,
        meta={"owner": "search"},
    )


def test_commands_are_read_in_order_and_removed_once_handled(cm_client: ConfigMapClient) -> None:
    inbox = ConfigMapInbox(cm_client, NAME)
    assert inbox.pending() == []
    where = inbox.submit("release", "embed", _request("v3").to_json())
    inbox.submit("abort-rollout", "embed")
    assert where.startswith(f"configmap/{NAME}:")
    pending = inbox.pending()
    assert [c.action for _, c in pending] == ["release", "abort-rollout"]
    assert ReleaseRequest.from_json(pending[0][1].args) == _request("v3")
    inbox.done([pending[0][0]])
    assert [c.action for _, c in inbox.pending()] == ["abort-rollout"]
    inbox.done([pending[1][0]])
    assert inbox.pending() == []


def test_a_write_racing_another_writer_lands_once_with_both_commands(
    apiserver: FakeApiServer, cm_client: ConfigMapClient
) -> None:
    inbox = ConfigMapInbox(cm_client, NAME)
    inbox.submit("release", "embed", _request("v3").to_json())
    other = ConfigMapInbox(cm_client, NAME)
    apiserver.add_fault(
        "PATCH",
        rf"/configmaps/{NAME}$",
        then=lambda: other.submit("abort-rollout", "chat"),
    )
    inbox.submit("release", "embed", _request("v4").to_json())
    actions = [(c.action, c.app) for _, c in inbox.pending()]
    assert sorted(actions) == [
        ("abort-rollout", "chat"),
        ("release", "embed"),
        ("release", "embed"),
    ]


def test_a_key_that_does_not_parse_is_skipped_not_fatal(cm_client: ConfigMapClient) -> None:
    inbox = ConfigMapInbox(cm_client, NAME)
    inbox.submit("abort-rollout", "embed")
    current = cm_client.get(NAME)
    assert current is not None
    cm_client.patch(NAME, {"0-broken.json": "{not json"}, current.resource_version)
    assert [c.action for _, c in inbox.pending()] == ["abort-rollout"]
