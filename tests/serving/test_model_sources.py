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


def test_a_made_model_is_built_on_first_use_then_read_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from transformers import AutoTokenizer

    from serving.local_models import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with ThreadPoolExecutor(2) as pool:  # two replicas starting together build it once
        first, second = pool.map(lambda _: resolve_source("made:tiny-chat"), range(2))
    assert first == second and Path(first.location).parent == tmp_path
    built = (Path(first.location) / "config.json").stat().st_mtime_ns
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [
        Path(first.location).name
    ], "no half-built folder is left beside it"
    assert resolve_source("made:tiny-chat") == first
    assert (Path(first.location) / "config.json").stat().st_mtime_ns == built
    assert AutoTokenizer.from_pretrained(first.location).chat_template


def test_unknown_made_model_lists_the_known_ones() -> None:
    with pytest.raises(ModelSourceError, match="tiny-chat"):
        resolve_source("made:gpt-huge")
