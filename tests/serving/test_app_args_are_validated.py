"""The builder's args and the user_configs are checked, and errors name the field."""

from __future__ import annotations

import pytest

from serving.errors import ArgsError
from serving.spec import (
    AppArgs,
    ModelUserConfig,
    RouterArgs,
    VersionAppArgs,
    parse,
    parse_router_config,
)

GOOD = {
    "task": "embeddings",
    "model_name": "minilm",
    "versions": [
        {"name": "v1", "model": "bundled:all-MiniLM-L6-v2"},
        {"name": "v2", "model": "bundled:all-MiniLM-L6-v2"},
    ],
}


def test_good_args_parse_and_default_weights_send_all_traffic_to_the_first_version() -> None:
    args = parse(AppArgs, GOOD, "args")
    assert args.version_names == ["v1", "v2"]
    assert args.initial_weights() == {"v1": 100, "v2": 0}
    assert args.versions[0].deployment_name == "model_v1"


def test_missing_model_names_the_field() -> None:
    bad = {**GOOD, "versions": [{"name": "v1"}]}
    with pytest.raises(ArgsError, match=r"args\.versions\.0\.model: Field required"):
        parse(AppArgs, bad, "args")


def test_unknown_arg_names_the_field() -> None:
    with pytest.raises(ArgsError, match=r"args\.max_inptus: Extra inputs are not permitted"):
        parse(AppArgs, {**GOOD, "max_inptus": 3}, "args")


def test_duplicate_version_names_are_refused() -> None:
    bad = {**GOOD, "versions": [GOOD["versions"][0], GOOD["versions"][0]]}
    with pytest.raises(ArgsError, match="repeated"):
        parse(AppArgs, bad, "args")


def test_wrong_task_names_the_field() -> None:
    with pytest.raises(ArgsError, match=r"args\.task"):
        parse(AppArgs, {**GOOD, "task": "chat"}, "args")


def test_initial_weights_in_args_must_sum_to_100() -> None:
    with pytest.raises(ArgsError, match="sum to 100"):
        parse(AppArgs, {**GOOD, "weights": {"v1": 60, "v2": 30}}, "args")
    args = parse(AppArgs, {**GOOD, "weights": {"v2": 100}}, "args")
    assert args.initial_weights() == {"v1": 0, "v2": 100}


def test_router_weights_fill_missing_versions_with_zero() -> None:
    table = parse_router_config({"weights": {"v2": 100}}, ["v1", "v2"])
    assert table.weights == {"v1": 0, "v2": 100}
    assert table.applications == {"v1": None, "v2": None}


def test_a_router_application_takes_its_versions_from_the_user_config() -> None:
    user_config = {"weights": {"v1": 100}, "versions": {"v1": "emb-v1", "v3": "emb-v3"}}
    table = parse_router_config(user_config, [])
    assert table.names == ["v1", "v3"]
    assert table.applications == {"v1": "emb-v1", "v3": "emb-v3"}
    assert table.weights == {"v1": 100, "v3": 0}


def test_a_router_application_without_a_version_table_names_the_field() -> None:
    with pytest.raises(ArgsError, match=r"user_config\.versions: Field required"):
        parse_router_config({"weights": {}}, [])


def test_a_version_table_for_a_router_with_bound_versions_is_refused() -> None:
    with pytest.raises(ArgsError, match="bound in its application"):
        parse_router_config({"weights": {"v1": 100}, "versions": {"v1": "a"}}, ["v1"])


@pytest.mark.parametrize(
    ("versions", "message"),
    [({}, "at least one version"), ({"bad name": "a"}, "must match"), ({"v1": " "}, "empty")],
)
def test_bad_version_tables_are_refused_with_the_reason(
    versions: dict[str, str], message: str
) -> None:
    with pytest.raises(ArgsError, match=message):
        parse_router_config({"weights": {"v1": 100}, "versions": versions}, [])


def test_weights_naming_a_version_outside_the_table_are_refused() -> None:
    with pytest.raises(ArgsError, match="unknown versions"):
        parse_router_config({"weights": {"v2": 100}, "versions": {"v1": "a"}}, [])


def test_router_and_version_application_args_name_bad_fields() -> None:
    router = {k: v for k, v in GOOD.items() if k != "versions"}
    assert parse(RouterArgs, router, "args").model_name == "minilm"
    with pytest.raises(ArgsError, match=r"args\.versions: Extra inputs are not permitted"):
        parse(RouterArgs, GOOD, "args")
    one = {"task": "embeddings", "model_name": "minilm", "version": GOOD["versions"][0]}
    assert parse(VersionAppArgs, one, "args").version.deployment_name == "model_v1"
    with pytest.raises(ArgsError, match=r"args\.version\.model: Field required"):
        parse(VersionAppArgs, {**one, "version": {"name": "v1"}}, "args")


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"v1": 50, "v2": 40}, "sum to 100"),
        ({"v1": 100, "v3": 0}, "unknown versions"),
        ({"v1": 150, "v2": -50}, "within 0..100"),
        ({"v1": "100"}, "valid integer"),
        ({"v1": 50.0, "v2": 50}, "valid integer"),
    ],
)
def test_bad_router_weights_are_refused_with_the_reason(
    weights: dict[str, object], message: str
) -> None:
    with pytest.raises(ArgsError, match=message):
        parse_router_config({"weights": weights}, ["v1", "v2"])


def test_router_config_without_weights_names_the_field() -> None:
    with pytest.raises(ArgsError, match=r"user_config\.weights: Field required"):
        parse_router_config({}, ["v1"])


def test_model_user_config_bounds_name_the_field() -> None:
    assert parse(ModelUserConfig, {"max_batch_size": 8}, "user_config").max_batch_size == 8
    with pytest.raises(ArgsError, match=r"user_config\.max_batch_size"):
        parse(ModelUserConfig, {"max_batch_size": 0}, "user_config")
    with pytest.raises(ArgsError, match=r"user_config\.batch_wait_timeout_s"):
        parse(ModelUserConfig, {"batch_wait_timeout_s": -1}, "user_config")
