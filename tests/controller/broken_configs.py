"""Broken daemon configs, made by systematic mutation of one valid sample.

`sample` writes a valid config that sets every field (a main file, an included team file,
a Serve config) into a folder. `variants` breaks it one way at a time: each numeric field
set to what it must not be (negative, zero, NaN, infinities, huge, the wrong type), each
required field removed, each URL garbled, each name that must be unique repeated, and
the structure broken (repeated keys, deep nesting, a top level that is not a mapping,
unknown keys, include cycles, missing files). Each variant names the file and the field
path a refusal must name.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

MAIN = "governor.yaml"
TEAM = "teams/ads.yaml"
SERVE = "serve.yaml"
STATE_FOLDER = "state"
"""The folder of the sample's state file: a refused config must not make it."""

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Scope = Literal["document", "state", "serve"]
"""What a variant breaks: the file itself (every command refuses it), the state folder
(commands that write state), or the Serve config it names (commands that act on it)."""


@dataclass(frozen=True)
class Variant:
    """One broken config: how to write it, and what its refusal must name."""

    name: str
    field: str
    """The field path the refusal names (`<root>` for the document as a whole)."""
    write: Callable[[Path], Path]
    """Writes the config into a folder; returns the file to pass as --config."""
    file: str = MAIN
    """The file the refusal names, relative to the folder."""
    scope: Scope = "document"


def serve_config() -> dict[str, Any]:
    """The Serve config the sample governs: every application, router and version."""

    def app(name: str, deployments: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "route_prefix": f"/{name}",
            "import_path": "serving.app:build_app",
            "deployments": [{"name": d, "num_replicas": 1} for d in deployments],
        }

    return {
        "applications": [
            app("embed", ["router", "model_v1", "model_v2"]),
            app("chat", ["front", "chat_v1"]),
            app("ads", ["router", "ads_v1"]),
        ]
    }


def sample(folder: Path) -> dict[str, Any]:
    """A valid config setting every field; writes its Serve config and team file, returns it."""
    put(folder / SERVE, serve_config())
    put(
        folder / TEAM,
        {
            "budgets": {"teams": {"ads": {"per_hour": 5.0, "priority": 1}}},
            "applications": [
                {
                    "name": "ads",
                    "team": "ads",
                    "slo": {"latency_p95_ms": 100},
                    "versions": [{"name": "v1", "deployment": "ads_v1"}],
                }
            ],
        },
    )
    return {
        "target": "local",
        "local": {
            "dashboard_url": "http://127.0.0.1:1",
            "metrics_urls": ["http://127.0.0.1:1/metrics"],
            "service_discovery_file": str(folder / "sd.json"),
            "serve_config": SERVE,
            "request_timeout_s": 1,
        },
        "kuberay": {
            "namespace": "governor",
            "rayservice": "fleet",
            "dashboard_url": "http://fleet-head-svc:8265",
            "kubeconfig": str(folder / "kubeconfig"),
            "lease_name": "governor-leader",
            "lease_duration_s": 15,
            "renew_period_s": 5,
            "request_timeout_s": 10,
            "max_serve_config_bytes": 524288,
            "state_configmap": "governor-state",
            "max_state_bytes": 786432,
        },
        "signals": {
            "kind": "embedded",
            "prometheus": {
                "url": "http://127.0.0.1:9090",
                "timeout_s": 5,
                "rate_window": "1m",
                "max_sample_age_s": 60,
                "app_label": "application",
                "deployment_label": "deployment",
                "version_label": "version",
                "job": "ray",
                "match_labels": {"cluster": "east"},
                "bearer_token_env": "PROMETHEUS_TOKEN",
            },
        },
        "interval_s": 5,
        "window_s": 30,
        "dry_run": True,
        "state_path": str(folder / STATE_FOLDER / "state.json"),
        "metrics": {"host": "127.0.0.1", "port": 9400},
        "prices": {"cpu": 0.5, "h100": 3.0},
        "budgets": {
            "total_per_hour": 50.0,
            "teams": {"search": {"per_hour": 20.0, "priority": 10}},
        },
        "include": TEAM,
        "applications": [
            {
                "name": "embed",
                "team": "search",
                "priority": 10,
                "router_deployment": "router",
                "slo": {"latency_p95_ms": 300, "max_error_rate": 0.01, "target_attainment": 0.99},
                "versions": [
                    {
                        "name": "v1",
                        "deployment": "model_v1",
                        "min_replicas": 1,
                        "max_replicas": 4,
                        "initial_replicas": 1,
                    },
                    {"name": "v2", "deployment": "model_v2", "min_replicas": 0, "max_replicas": 4},
                ],
                "stable": "v1",
                "candidate": "v2",
                "resources": {"gpu_type": "cpu", "gpus_per_replica": 0},
                "scaling": {
                    "target_utilization": 0.7,
                    "capacity_rps_per_replica": 50.0,
                    "in_flight_per_replica": 4.0,
                    "capacity_half_life_s": 1800,
                    "burst_memory_s": 3600,
                    "forecast_window_s": 60,
                    "upscale_delay_s": 0,
                    "downscale_delay_s": 60,
                    "max_upscale_step": 4,
                    "max_downscale_step": 1,
                    "hysteresis": 0.1,
                    "default_startup_s": 30,
                    "scale_to_zero": False,
                    "idle_before_zero_s": 300,
                },
                "rollout": {
                    "steps": [5, 25, 50, 100],
                    "step_min_duration_s": 30,
                    "min_requests": 50,
                    "max_latency_ratio": 1.2,
                    "max_error_rate_increase": 0.01,
                    "confidence": 0.95,
                    "deadline_s": 900,
                    "drain_s": 30,
                },
            },
            {
                "name": "chat",
                "router_deployment": "front",
                "slo": {"latency_p95_ms": 20000, "ttft_p95_ms": 1000, "tpot_p95_ms": 50},
                "versions": [{"name": "v1", "deployment": "chat_v1", "max_replicas": 8}],
                "resources": {"gpu_type": "h100", "gpus_per_replica": 1},
                "scaling": {
                    "work": {
                        "per_request_s": 0.01,
                        "per_prompt_token_s": 1e-5,
                        "per_output_token_s": 1e-3,
                        "reference_prompt_tokens": 512,
                        "reference_output_tokens": 128,
                    }
                },
            },
        ],
    }


def put(path: Path, doc: Any) -> Path:
    """Write `doc` as YAML at `path` (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(doc, Dumper=DUMPER, sort_keys=False))
    return path


def path_text(parts: tuple[str | int, ...]) -> str:
    """`('applications', 0, 'slo')` as `applications[0].slo`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _at(doc: Any, parts: tuple[str | int, ...]) -> Any:
    for part in parts:
        doc = doc[part]
    return doc


def _set(doc: Any, parts: tuple[str | int, ...], value: Any) -> None:
    _at(doc, parts[:-1])[parts[-1]] = value


def _delete(doc: Any, parts: tuple[str | int, ...]) -> None:
    del _at(doc, parts[:-1])[parts[-1]]


Mutation = Callable[[dict[str, Any], Path], None]


def _mutated(
    name: str, field: str, mutate: Mutation, scope: Scope = "document", file: str = MAIN
) -> Variant:
    """A variant that changes the sample's main document before it is written."""

    def write(folder: Path) -> Path:
        doc = sample(folder)
        mutate(doc, folder)
        return put(folder / MAIN, doc)

    return Variant(name, field, write, file, scope)


def _setting(parts: tuple[str | int, ...], value: Any, scope: Scope = "document") -> Variant:
    """The sample with one field set to `value`; the refusal must name that field."""
    return _mutated(
        f"{path_text(parts)}={value!r}",
        path_text(parts),
        lambda doc, _: _set(doc, parts, copy.deepcopy(value)),
        scope,
    )


def _texted(name: str, field: str, text: Callable[[dict[str, Any]], str]) -> Variant:
    """A variant written as text made from the sample (for what YAML dumping cannot make)."""

    def write(folder: Path) -> Path:
        path = folder / MAIN
        path.write_text(text(sample(folder)))
        return path

    return Variant(name, field, write)


NAN, INF = math.nan, math.inf
HUGE = 1e12
"""Finite, and longer than any duration a field takes (MAX_DURATION_S is a year)."""

BAD_VALUES: dict[str, list[Any]] = {
    "seconds": [-1, 0, NAN, INF, -INF, HUGE, "soon", True, None, [5]],
    "delay": [-1, NAN, INF, -INF, HUGE, "later", True, None],
    "millis": [-1, 0, NAN, INF, -INF, HUGE * 1000, "fast", True],
    "share": [-0.1, 1.5, NAN, INF, "low", True, None],
    "unit": [0, -0.5, 1.5, NAN, INF, "most"],
    "below_one": [-0.1, 1, NAN, INF],
    "confidence": [0.5, 1, NAN, -1],
    "ratio": [0.5, NAN, INF, -INF, "x"],
    "price": [-1, NAN, INF, -INF, "cheap", True],
    "positive": [0, -1, NAN, INF, "x"],
    "non_negative": [-1, NAN, INF, "x"],
    "replicas": [-1, 2.5, 10**6, "two", True, None],
    "at_least_one": [0, -1, 2.5, 10**6, "x", True],
    "integer": [2.5, "high", True, NAN],
    "count": [0, -1, 2.5, "many", True],
    "port": [-1, 65536, 1.5, "http", True],
    "bytes": [0, -1, 2_000_000, 1.5, "big"],
    "flag": ["yes", 2, None],
}
"""Values a field of each kind must refuse."""

APP, CHAT = ("applications", 0), ("applications", 1)
NUMBERS: list[tuple[tuple[str | int, ...], str]] = [
    (("interval_s",), "seconds"),
    (("window_s",), "seconds"),
    (("dry_run",), "flag"),
    (("local", "request_timeout_s"), "seconds"),
    (("kuberay", "lease_duration_s"), "seconds"),
    (("kuberay", "renew_period_s"), "seconds"),
    (("kuberay", "request_timeout_s"), "seconds"),
    (("kuberay", "max_serve_config_bytes"), "bytes"),
    (("kuberay", "max_state_bytes"), "bytes"),
    (("signals", "prometheus", "timeout_s"), "seconds"),
    (("signals", "prometheus", "max_sample_age_s"), "seconds"),
    (("metrics", "port"), "port"),
    (("prices", "cpu"), "price"),
    (("prices", "h100"), "price"),
    (("budgets", "total_per_hour"), "price"),
    (("budgets", "teams", "search", "per_hour"), "price"),
    (("budgets", "teams", "search", "priority"), "integer"),
    ((*APP, "priority"), "integer"),
    ((*APP, "slo", "latency_p95_ms"), "millis"),
    ((*APP, "slo", "max_error_rate"), "share"),
    ((*APP, "slo", "target_attainment"), "unit"),
    ((*APP, "versions", 0, "min_replicas"), "replicas"),
    ((*APP, "versions", 0, "max_replicas"), "at_least_one"),
    ((*APP, "versions", 0, "initial_replicas"), "at_least_one"),
    ((*APP, "resources", "gpus_per_replica"), "non_negative"),
    ((*APP, "scaling", "target_utilization"), "unit"),
    ((*APP, "scaling", "capacity_rps_per_replica"), "positive"),
    ((*APP, "scaling", "in_flight_per_replica"), "positive"),
    ((*APP, "scaling", "capacity_half_life_s"), "seconds"),
    ((*APP, "scaling", "burst_memory_s"), "seconds"),
    ((*APP, "scaling", "forecast_window_s"), "seconds"),
    ((*APP, "scaling", "upscale_delay_s"), "delay"),
    ((*APP, "scaling", "downscale_delay_s"), "delay"),
    ((*APP, "scaling", "max_upscale_step"), "at_least_one"),
    ((*APP, "scaling", "max_downscale_step"), "at_least_one"),
    ((*APP, "scaling", "hysteresis"), "below_one"),
    ((*APP, "scaling", "default_startup_s"), "delay"),
    ((*APP, "scaling", "scale_to_zero"), "flag"),
    ((*APP, "scaling", "idle_before_zero_s"), "delay"),
    ((*APP, "rollout", "step_min_duration_s"), "delay"),
    ((*APP, "rollout", "min_requests"), "count"),
    ((*APP, "rollout", "max_latency_ratio"), "ratio"),
    ((*APP, "rollout", "max_error_rate_increase"), "share"),
    ((*APP, "rollout", "confidence"), "confidence"),
    ((*APP, "rollout", "deadline_s"), "seconds"),
    ((*APP, "rollout", "drain_s"), "delay"),
    ((*CHAT, "slo", "ttft_p95_ms"), "millis"),
    ((*CHAT, "slo", "tpot_p95_ms"), "millis"),
    ((*CHAT, "scaling", "work", "per_request_s"), "non_negative"),
    ((*CHAT, "scaling", "work", "per_prompt_token_s"), "non_negative"),
    ((*CHAT, "scaling", "work", "per_output_token_s"), "non_negative"),
    ((*CHAT, "scaling", "work", "reference_prompt_tokens"), "non_negative"),
    ((*CHAT, "scaling", "work", "reference_output_tokens"), "non_negative"),
]
"""Every numeric (and flag) field of the sample, and its kind."""

REQUIRED: list[tuple[str | int, ...]] = [
    (*APP, "name"),
    (*APP, "slo"),
    (*APP, "slo", "latency_p95_ms"),
    (*APP, "versions"),
    (*APP, "versions", 0, "name"),
    (*APP, "versions", 0, "deployment"),
    (*CHAT, "scaling", "work", "per_request_s"),
    ("budgets", "teams", "search", "per_hour"),
    ("kuberay", "rayservice"),
]
"""Fields without which the config means nothing."""

URLS: list[tuple[str | int, ...]] = [
    ("local", "dashboard_url"),
    ("local", "metrics_urls", 0),
    ("kuberay", "dashboard_url"),
    ("signals", "prometheus", "url"),
]
GARBLED_URLS: list[Any] = [
    "not a url",
    "ftp://127.0.0.1/x",
    "http://",
    "127.0.0.1:8265",
    "http://127.0.0.1:99999",
    "http://127.0.0.1:0",
    "http://exa mple:80",
    "",
    8265,
]

NAMES: list[tuple[tuple[str | int, ...], Any]] = [
    ((*APP, "name"), ""),
    ((*APP, "name"), " embed"),
    ((*APP, "team"), ""),
    ((*APP, "router_deployment"), ""),
    ((*APP, "versions", 0, "name"), 1),
    ((*APP, "versions", 0, "deployment"), ""),
    ((*APP, "resources", "gpu_type"), ""),
    ((*APP, "stable"), "v9"),
    ((*APP, "candidate"), "v9"),
    ((*APP, "candidate"), "v1"),
    ((*APP, "resources", "gpu_type"), "a100"),
    ((*APP, "rollout", "steps"), []),
    ((*APP, "rollout", "steps"), [0, 100]),
    ((*APP, "rollout", "steps"), [50, 25, 100]),
    ((*APP, "rollout", "steps"), [5, 50]),
    ((*APP, "rollout", "steps"), [5, 150]),
    ((*APP, "rollout", "steps"), [5.5, 100]),
    ((*APP, "rollout", "steps"), [True, 100]),
    ((*APP, "rollout", "steps"), "5,25,100"),
    ((*APP, "scaling", "calibration"), "absent.yaml"),
    ((*APP, "scaling", "calibration"), ""),
    (("target",), "cluster"),
    (("signals", "kind"), "statsd"),
    (("signals", "prometheus", "rate_window"), "1 minute"),
    (("signals", "prometheus", "rate_window"), 60),
    (("signals", "prometheus", "app_label"), "1app"),
    (("signals", "prometheus", "match_labels"), {"bad-label": "x"}),
    (("signals", "prometheus", "match_labels"), {"cluster": 1}),
    (("signals", "prometheus", "bearer_token_env"), "MY-TOKEN"),
    (("metrics", "host"), "not a host!"),
    (("metrics", "host"), ""),
    (("kuberay", "namespace"), "Bad_Namespace"),
    (("kuberay", "lease_name"), "Governor Leader"),
    (("kuberay", "state_configmap"), "Not_A_Name"),
    (("kuberay", "kubeconfig"), ""),
    (("kuberay", "rayservice"), "UPPER"),
    (("local", "serve_config"), ""),
    (("local", "service_discovery_file"), ""),
    (("local", "metrics_urls"), "http://127.0.0.1:1/metrics"),
    (("prices",), [0.5]),
    (("budgets", "teams"), ["search"]),
    (("local",), "http://127.0.0.1:8265"),
    (("applications",), {"embed": {}}),
    ((*APP,), "embed"),
    ((*APP, "slo"), 300),
    ((*APP, "versions"), []),
    ((*APP, "versions", 0), "v1"),
    ((*APP, "scaling"), []),
]
"""Names, choices and sections set to what they cannot be."""


def _numbers() -> Iterator[Variant]:
    for parts, kind in NUMBERS:
        for value in BAD_VALUES[kind]:
            yield _setting(parts, value)


def _required() -> Iterator[Variant]:
    for parts in REQUIRED:
        yield _mutated(
            f"without {path_text(parts)}", path_text(parts), lambda d, _, p=parts: _delete(d, p)
        )


def _urls() -> Iterator[Variant]:
    for parts in URLS:
        for value in GARBLED_URLS:
            yield _setting(parts, value)


def _names() -> Iterator[Variant]:
    for parts, value in NAMES:
        yield _setting(parts, value)


def _both(*changes: tuple[tuple[str | int, ...], Any]) -> Mutation:
    def mutate(doc: dict[str, Any], _: Path) -> None:
        for parts, value in changes:
            if value is _DELETE:
                _delete(doc, parts)
            else:
                _set(doc, parts, value)

    return mutate


_DELETE = object()


def _across_fields() -> Iterator[Variant]:
    """Fields each valid alone that cannot work together."""
    v0, v1 = (*APP, "versions", 0), (*APP, "versions", 1)
    cases: list[tuple[str, str, Mutation]] = [
        ("window below interval", "window_s", _both((("interval_s",), 10), (("window_s",), 5))),
        ("min above max", path_text((*v0, "min_replicas")), _both(((*v0, "min_replicas"), 5))),
        ("version repeated", path_text((*v1, "name")), _both(((*v1, "name"), "v1"))),
        (
            "deployment repeated",
            path_text((*v1, "deployment")),
            _both(((*v1, "deployment"), "model_v1")),
        ),
        (
            "router is a version",
            path_text((*APP, "router_deployment")),
            _both(((*APP, "router_deployment"), "model_v2")),
        ),
        ("application repeated", "applications[1].name", _both(((*CHAT, "name"), "embed"))),
        (
            "metrics url repeated",
            "local.metrics_urls[1]",
            _both((("local", "metrics_urls"), ["http://a:1/m", "http://a:1/m"])),
        ),
        (
            "rayservices repeated",
            "kuberay.rayservices[1]",
            _both((("kuberay", "rayservice"), _DELETE), (("kuberay", "rayservices"), ["a", "a"])),
        ),
        (
            "two ways to name the fleet",
            "kuberay.rayservice_selector",
            _both((("kuberay", "rayservice_selector"), "fleet=governor")),
        ),
        (
            "one dashboard for shards",
            "kuberay.dashboard_url",
            _both(
                (("kuberay", "rayservice"), _DELETE),
                (("kuberay", "rayservices"), ["a", "b"]),
                (("kuberay", "dashboard_url"), "http://head:8265"),
            ),
        ),
        (
            "renewal not before the lease lapses",
            "kuberay.renew_period_s",
            _both((("kuberay", "renew_period_s"), 15)),
        ),
        (
            "deadline before a step can end",
            path_text((*APP, "rollout", "deadline_s")),
            _both(((*APP, "rollout", "deadline_s"), 30)),
        ),
        (
            "work costs nothing",
            path_text((*CHAT, "scaling", "work", "per_request_s")),
            _both(
                ((*CHAT, "scaling", "work"), {"per_request_s": 0, "per_prompt_token_s": 0}),
            ),
        ),
        (
            "kuberay target without its section",
            "kuberay",
            _both((("target",), "kuberay"), (("kuberay",), _DELETE)),
        ),
        (
            "no applications anywhere",
            "applications",
            _both((("applications",), _DELETE), (("include",), _DELETE)),
        ),
    ]
    for name, field, mutate in cases:
        yield _mutated(name, field, mutate)


def _unknown_keys() -> Iterator[Variant]:
    for parts in [
        ("intervall_s",),
        (*APP, "slo_ms"),
        (*APP, "slo", "latency_p99_ms"),
        (*APP, "versions", 0, "replicas"),
        ("local", "dashboard"),
        ("kuberay", "rayservice_name"),
        ("signals", "prometheus", "query"),
        ("budgets", "monthly"),
        ("metrics", "path"),
    ]:
        yield _mutated(
            f"unknown {path_text(parts)}", path_text(parts), lambda d, _, p=parts: _set(d, p, 1)
        )


def _state() -> Iterator[Variant]:
    """State paths the daemon cannot write to."""

    def state_path(value: Callable[[Path], Any]) -> Mutation:
        return lambda doc, folder: _set(doc, ("state_path",), value(folder))

    def a_file(folder: Path) -> str:
        (folder / "taken").write_text("")
        return str(folder / "taken" / "state.json")

    def a_folder(folder: Path) -> str:
        (folder / "here").mkdir()
        return str(folder / "here")

    cases: list[tuple[str, Callable[[Path], Any], Scope]] = [
        ("empty", lambda _: "", "document"),
        ("blank", lambda _: "  ", "document"),
        ("a folder by its slash", lambda f: f"{f}/state/", "document"),
        ("dot", lambda _: ".", "document"),
        ("a number", lambda _: 3, "document"),
        ("an existing folder", a_folder, "state"),
        ("under a file", a_file, "state"),
        ("on a read-only file system", lambda _: "/proc/governor/state.json", "state"),
    ]
    for name, value, scope in cases:
        yield _mutated(f"state_path {name}", "state_path", state_path(value), scope)


def _serve() -> Iterator[Variant]:
    """Serve configs without what the daemon config names."""

    def serve(change: Callable[[dict[str, Any]], Any]) -> Mutation:
        def mutate(_: dict[str, Any], folder: Path) -> None:
            doc = serve_config()
            doc = change(doc) or doc
            put(folder / SERVE, doc)

        return mutate

    def deployments(app: int, names: list[str]) -> Callable[[dict[str, Any]], None]:
        def change(doc: dict[str, Any]) -> None:
            doc["applications"][app]["deployments"] = [{"name": n} for n in names]

        return change

    cases: list[tuple[str, str, Mutation]] = [
        (
            "no model_v2",
            "applications[0].versions[1].deployment",
            serve(deployments(0, ["router", "model_v1"])),
        ),
        (
            "no router",
            "applications[0].router_deployment",
            serve(deployments(0, ["model_v1", "model_v2"])),
        ),
        ("no front", "applications[1].router_deployment", serve(deployments(1, ["chat_v1"]))),
        ("no deployments", "applications[0].router_deployment", serve(deployments(0, []))),
        ("no chat", "applications[1].name", serve(lambda d: d["applications"].pop(1) and None)),
        ("not a mapping", "local.serve_config", serve(lambda d: d["applications"])),
        ("no applications", "local.serve_config", serve(lambda d: {"proxy_location": "HeadOnly"})),
        (
            "missing",
            "local.serve_config",
            lambda doc, _: _set(doc, ("local", "serve_config"), "absent.yaml"),
        ),
    ]
    for name, field, mutate in cases:
        yield _mutated(f"Serve config {name}", field, mutate, "serve")

    def ads_missing(_: dict[str, Any], folder: Path) -> None:
        doc = serve_config()
        doc["applications"][2]["deployments"] = [{"name": "router"}]
        put(folder / SERVE, doc)

    yield _mutated(
        "Serve config no ads_v1",
        "applications[0].versions[0].deployment",
        ads_missing,
        "serve",
        TEAM,
    )


def _repeated_key(parts: tuple[str | int, ...], value: Any) -> Variant:
    """The sample with the key at `parts` written a second time in its mapping."""
    key = str(parts[-1])

    def text(doc: dict[str, Any]) -> str:
        _set(doc, (*parts[:-1], "REPEATED_KEY"), value)
        return yaml.dump(doc, Dumper=DUMPER, sort_keys=False).replace("REPEATED_KEY:", f"{key}:")

    return _texted(f"repeated key {path_text(parts)}", path_text(parts), text)


def _nested(parts: tuple[str | int, ...], depth: int, style: str) -> Variant:
    """The sample with the value at `parts` nested `depth` deep."""
    deep = {
        "lists": "[" * depth + "]" * depth,
        "maps": "{a: " * depth + "1" + "}" * depth,
    }[style]

    def text(doc: dict[str, Any]) -> str:
        _set(doc, parts, "NESTED_VALUE")
        return yaml.dump(doc, Dumper=DUMPER, sort_keys=False).replace("NESTED_VALUE", deep)

    return _texted(f"{path_text(parts)} nested {depth} deep in {style}", path_text(parts), text)


def _block_nested(depth: int) -> Variant:
    def text(doc: dict[str, Any]) -> str:
        del doc["interval_s"]
        block = "".join("  " * (i + 1) + "a:\n" for i in range(depth)) + "  " * (depth + 1) + "1\n"
        return yaml.safe_dump(doc, sort_keys=False) + "interval_s:\n" + block

    return _texted(f"interval_s nested {depth} deep in blocks", "interval_s", text)


def _json_nested(depth: int) -> Variant:
    def write(folder: Path) -> Path:
        doc = sample(folder)
        doc["window_s"] = "NESTED_VALUE"
        path = folder / "governor.json"
        text = json.dumps(doc).replace('"NESTED_VALUE"', "[" * depth + "]" * depth)
        path.write_text(text)
        return path

    return Variant(f"JSON window_s nested {depth} deep", "window_s", write, "governor.json")


def _json_repeated_key() -> Variant:
    def write(folder: Path) -> Path:
        doc = sample(folder)
        doc["REPEATED_KEY"] = 7
        path = folder / "governor.json"
        path.write_text(json.dumps(doc).replace('"REPEATED_KEY"', '"interval_s"'))
        return path

    return Variant("JSON repeated key interval_s", "interval_s", write, "governor.json")


def _structure() -> Iterator[Variant]:
    """Documents broken as a whole."""
    for parts, value in [
        (("interval_s",), 7),
        ((*APP, "slo", "latency_p95_ms"), 10),
        (("prices", "cpu"), 1.0),
        (("budgets", "teams", "search"), {"per_hour": 1}),
        ((*APP, "versions", 1, "name"), "v3"),
        (("applications",), []),
    ]:
        yield _repeated_key(parts, value)
    yield _json_repeated_key()
    for parts, depth, style in [
        (("interval_s",), 5000, "lists"),
        (("interval_s",), 40, "lists"),
        ((*APP, "slo"), 5000, "maps"),
        (("prices",), 33, "maps"),
        ((*APP, "versions", 0, "name"), 1500, "lists"),
    ]:
        yield _nested(parts, depth, style)
    yield _block_nested(1200)
    yield _json_nested(5000)
    yield _json_nested(100)
    for name, text in [
        ("a list", "- 1\n- 2\n"),
        ("a number", "5\n"),
        ("a string", "governor\n"),
        ("empty", ""),
        ("null", "null\n"),
    ]:
        yield _texted(f"top level {name}", "<root>", lambda _, t=text: t)
    yield _texted("not YAML", "applications[0]: line 2", lambda _: "applications: [\n")
    yield _texted("tab indented", "local: line 2", lambda _: "local:\n\tdashboard_url: x\n")
    yield _texted(
        "a date out of range",
        "interval_s",
        lambda d: (
            yaml.safe_dump({k: v for k, v in d.items() if k != "interval_s"})
            + "interval_s: 2024-13-45\n"
        ),
    )
    yield _texted("a float tag", "not valid YAML", lambda _: "interval_s: !!float soon\n")
    yield _texted("a python tag", "line 1", lambda _: "interval_s: !!python/name:os.system\n")


def _includes() -> Iterator[Variant]:
    """Included files that cannot be merged."""

    def team_file(doc: Any) -> Mutation:
        return lambda _, folder: put(folder / TEAM, doc)

    def write_team(change: Callable[[dict[str, Any]], None]) -> Mutation:
        def mutate(_: dict[str, Any], folder: Path) -> None:
            team = yaml.safe_load((folder / TEAM).read_text())
            change(team)
            put(folder / TEAM, team)

        return mutate

    def slo_in_team(team: dict[str, Any]) -> None:
        team["applications"][0]["slo"]["latency_p95_ms"] = INF

    def extra_in_team(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda team: team.update({key: value})

    main: list[tuple[str, str, Mutation]] = [
        ("include missing", "include", lambda d, _: _set(d, ("include",), "teams/absent.yaml")),
        ("include glob empty", "include", lambda d, _: _set(d, ("include",), "none/*.yaml")),
        ("include twice", "include", lambda d, _: _set(d, ("include",), [TEAM, "teams/*.yaml"])),
        ("include not a path", "include", lambda d, _: _set(d, ("include",), {"ads": 1})),
        ("include itself", "include", lambda d, _: _set(d, ("include",), MAIN)),
    ]
    for name, field, mutate in main:
        yield _mutated(name, field, mutate)
    team: list[tuple[str, str, Mutation]] = [
        ("include cycle", "include", write_team(extra_in_team("include", "../governor.yaml"))),
        ("team file sets prices", "prices", write_team(extra_in_team("prices", {"cpu": 1}))),
        ("team file not a mapping", "<root>", team_file(["ads"])),
        ("team file bad slo", "applications[0].slo.latency_p95_ms", write_team(slo_in_team)),
        (
            "team file repeats an application",
            "applications[0].name",
            write_team(lambda t: t["applications"][0].update({"name": "embed"})),
        ),
        (
            "team file repeats a team budget",
            "budgets.teams.search",
            write_team(lambda t: t["budgets"]["teams"].update({"search": {"per_hour": 1}})),
        ),
        (
            "team file sets the total budget",
            "budgets",
            write_team(lambda t: t["budgets"].update({"total_per_hour": 1})),
        ),
        (
            "team file repeats a key",
            "applications",
            lambda _, folder: (folder / TEAM).write_text(
                (folder / TEAM).read_text() + "applications: []\n"
            ),
        ),
    ]
    for name, field, mutate in team:
        yield _mutated(name, field, mutate, file=TEAM)


def variants() -> list[Variant]:
    """Every broken variant of the sample."""
    return [
        *_numbers(),
        *_required(),
        *_urls(),
        *_names(),
        *_across_fields(),
        *_unknown_keys(),
        *_state(),
        *_serve(),
        *_structure(),
        *_includes(),
    ]
