"""Text generation with a causal LM: tokenizing and checking prompts, chat templates, and
static batched `generate` over left-padded prompts (the warm-up, and the baseline that
continuous batching is measured against)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from serving.errors import InputRejectedError
from serving.loading import load_pretrained, resolve_device, resolve_dtype, resolve_source
from serving.results import Completion
from serving.spec import VersionSpec


@dataclass(frozen=True)
class Prompt:
    """One tokenized prompt with its sampling settings."""

    token_ids: tuple[int, ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()

    @property
    def sampling_key(self) -> tuple[float, float]:
        """Prompts with the same key can share one `generate` call."""
        if self.temperature == 0.0:
            return (0.0, 1.0)
        return (self.temperature, self.top_p)


class Generator:
    """A loaded causal LM and its tokenizer, padding on the left for batched generation."""

    def __init__(
        self, tokenizer: Any, model: Any, device: torch.device, context_tokens: int
    ) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.context_tokens = context_tokens
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids: frozenset[int] = frozenset(
            () if eos is None else (eos if isinstance(eos, list) else [eos])
        )
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(sorted(self.eos_ids)), 0)

    @classmethod
    def load(cls, spec: VersionSpec) -> Generator:
        """Load the causal LM and tokenizer of a version onto its device."""
        source = resolve_source(spec.model, spec.allow_download)
        device = resolve_device(spec.device)
        tokenizer = load_pretrained(AutoTokenizer, source, padding_side="left")
        model = load_pretrained(
            AutoModelForCausalLM, source, dtype=resolve_dtype(spec.dtype, device)
        )
        model.to(device).eval()
        context = spec.max_input_tokens or _context_length(model, tokenizer)
        return cls(tokenizer, model, device, context)

    def encode(
        self,
        text: str,
        max_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: tuple[str, ...] = (),
    ) -> Prompt:
        """Tokenize a prompt; refuse it when prompt plus `max_tokens` exceeds the context."""
        ids = tuple(self.tokenizer(text)["input_ids"])
        if not ids:
            raise InputRejectedError("prompt has no tokens", param="prompt")
        if len(ids) + max_tokens > self.context_tokens:
            raise InputRejectedError(
                f"prompt is {len(ids)} tokens; with max_tokens={max_tokens} it exceeds the "
                f"model's context of {self.context_tokens} tokens",
                param="prompt",
            )
        return Prompt(ids, max_tokens, temperature, top_p, stop)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The conversation as the model's chat template renders it, up to the assistant's turn."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise InputRejectedError(
                "this model has no chat template; send a prompt to /v1/completions instead",
                param="messages",
            )
        try:
            rendered = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        except Exception as exc:  # jinja2's TemplateError and whatever a template raises
            raise InputRejectedError(
                f"the model's chat template refused the messages: {exc}", param="messages"
            ) from exc
        return str(rendered)

    def generate(self, prompts: list[Prompt]) -> list[Completion]:
        """Generate for every prompt; one `generate` call per group of equal sampling."""
        results: dict[int, Completion] = {}
        order = sorted(range(len(prompts)), key=lambda i: prompts[i].sampling_key)
        for _, group in groupby(order, key=lambda i: prompts[i].sampling_key):
            indices = list(group)
            outputs = self._generate_group([prompts[i] for i in indices])
            results.update(zip(indices, outputs, strict=True))
        return [results[i] for i in range(len(prompts))]

    @torch.inference_mode()
    def _generate_group(self, prompts: list[Prompt]) -> list[Completion]:
        batch = self.tokenizer.pad(
            {"input_ids": [list(p.token_ids) for p in prompts]},
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        first = prompts[0]
        sampling: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0.0:
            sampling = {"do_sample": True, "temperature": first.temperature, "top_p": first.top_p}
        config = GenerationConfig(
            max_new_tokens=max(p.max_tokens for p in prompts),
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids) or None,
            **sampling,
        )
        output = self.model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            generation_config=config,
        )
        new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
        return [self._finish(p, ids) for p, ids in zip(prompts, new_tokens, strict=True)]

    def _finish(self, prompt: Prompt, ids: list[int]) -> Completion:
        ids = ids[: prompt.max_tokens]
        finish = "length"
        for position, token in enumerate(ids):
            if token in self.eos_ids:
                ids, finish = ids[: position + 1], "stop"
                break
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        for stop in prompt.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Completion(text, finish, len(prompt.token_ids), len(ids))


def _context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence (prompt plus output) the model accepts."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return int(min(tokenizer.model_max_length, 1_000_000))
