# Server: none; the rendered Role read as data.
"""The Role grants exactly what the daemon uses, in its namespace only, with no wildcards."""

from __future__ import annotations

from tests.kuberay.conftest import NAMESPACE, rendered, rendered_manifests

EXPECTED = [
    {
        "apiGroups": ["ray.io"],
        "resources": ["rayservices"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {"apiGroups": ["ray.io"], "resources": ["rayservices/status"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["governor-leader"],
        "verbs": ["get", "update"],
    },
]


def test_the_role_grants_exactly_the_verbs_the_daemon_uses() -> None:
    assert rendered("Role")["rules"] == EXPECTED


def test_nothing_is_cluster_wide_and_nothing_is_a_wildcard() -> None:
    kinds = {d["kind"] for d in rendered_manifests()}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    for rule in rendered("Role")["rules"]:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), (field, rule)
        assert "nonResourceURLs" not in rule
    assert rendered("Role")["metadata"]["namespace"] == NAMESPACE


def test_the_binding_gives_the_role_to_the_deployments_service_account() -> None:
    binding, deployment = rendered("RoleBinding"), rendered("Deployment")
    account = rendered("ServiceAccount")
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]

    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": rendered("Role")["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}]
    assert account["metadata"]["name"] == sa
