"""An `ApiClient` for the cluster: in-cluster service account, or a kubeconfig."""

from __future__ import annotations

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from controller.errors import ConfigError


def _no_hidden_retries(configuration: k8s.Configuration) -> k8s.Configuration:
    # urllib3 would silently retry reads; retries and their back-off are ours to count.
    configuration.retries = False
    return configuration


def api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """A client from `kubeconfig` if given, else the pod's service account, else ~/.kube/config."""
    configuration = k8s.Configuration()
    try:
        if kubeconfig is not None:
            k8s_config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        else:
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                k8s_config.load_kube_config(context=context, client_configuration=configuration)
    except (ConfigException, OSError) as err:
        where = kubeconfig or "the in-cluster service account or ~/.kube/config"
        raise ConfigError(
            f"kuberay.kubeconfig: cannot load a cluster config from {where}: {err}"
        ) from err
    return k8s.ApiClient(configuration=_no_hidden_retries(configuration))


def api_client_for_host(host: str, token: str | None = None) -> k8s.ApiClient:
    """A client for an API server at `host` (plain HTTP or HTTPS without a kubeconfig)."""
    configuration = k8s.Configuration(host=host)
    if token:
        configuration.api_key = {"BearerToken": token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return k8s.ApiClient(configuration=_no_hidden_retries(configuration))
