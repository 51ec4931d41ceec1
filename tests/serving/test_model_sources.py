"""Model sources resolve to bundles, paths or hub ids, and failures name the source."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.errors import ModelSourceError
from serving.loading import resolve_source


def test_bundled_minilm_resolves_to_its_package_directory() -> None:
    source = resolve_source("bundled:all-MiniLM-L6-v2")
    assert source.is_local_dir and (Path(source.location) / "config.json").is_file()


def test_unknown_bundle_lists_the_known_ones() -> None:
    with pytest.raises(ModelSourceError, match="all-MiniLM-L6-v2"):
        resolve_source("bundled:bert-huge")


def test_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelSourceError, match=f"model path does not exist: {missing}"):
        resolve_source(str(missing))


def test_hub_id_stays_offline_unless_allowed() -> None:
    assert resolve_source("Qwen/Qwen2.5-0.5B-Instruct").local_files_only
    assert not resolve_source("Qwen/Qwen2.5-0.5B-Instruct", allow_download=True).local_files_only


def test_uncached_hub_id_fails_naming_the_id() -> None:
    from transformers import AutoTokenizer

    from serving.loading import load_pretrained

    source = resolve_source("governor-tests/not-a-real-model")
    with pytest.raises(ModelSourceError, match="governor-tests/not-a-real-model"):
        load_pretrained(AutoTokenizer, source)
