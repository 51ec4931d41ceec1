"""Sentence embeddings: a transformer encoder, mean pooling over tokens, L2 normalisation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer

from serving.loading import (
    ModelSource,
    load_pretrained,
    resolve_device,
    resolve_dtype,
    resolve_source,
)
from serving.spec import VersionSpec


class Embedder:
    """A loaded encoder that turns texts into unit-length vectors."""

    def __init__(
        self, tokenizer: Any, model: Any, device: torch.device, max_input_tokens: int
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.max_input_tokens = max_input_tokens

    @classmethod
    def load(cls, spec: VersionSpec) -> Embedder:
        """Load the encoder and tokenizer of a version onto its device."""
        source = resolve_source(spec.model, spec.allow_download)
        device = resolve_device(spec.device)
        tokenizer = load_pretrained(AutoTokenizer, source)
        model = load_pretrained(AutoModel, source, dtype=resolve_dtype(spec.dtype, device))
        model.to(device).eval()
        limit = spec.max_input_tokens or _default_max_tokens(source, tokenizer, model)
        return cls(tokenizer, model, device, limit)

    @property
    def dimensions(self) -> int:
        """Length of the vectors this model returns."""
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def embed(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """Embed texts; returns float32 vectors (one row per text) and tokens per text."""
        encoded = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_input_tokens,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        vectors = F.normalize(pooled.float(), p=2, dim=1)
        tokens = encoded["attention_mask"].sum(dim=1).tolist()
        return vectors.cpu().numpy(), [int(t) for t in tokens]


def _default_max_tokens(source: ModelSource, tokenizer: Any, model: Any) -> int:
    """The sentence-transformers limit when the model ships one, else the model's own."""
    if source.is_local_dir:
        config = Path(source.location) / "sentence_bert_config.json"
        if config.is_file():
            limit = json.loads(config.read_text()).get("max_seq_length")
            if isinstance(limit, int) and limit > 0:
                return limit
    limits = [getattr(model.config, "max_position_embeddings", None), tokenizer.model_max_length]
    return min(int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000)
