"""Causal LMs made on the spot: random weights and a byte-level BPE tokenizer trained on a
few lines, with a chat template. The tests and the generation benchmark use them where
nothing may be downloaded; they measure serving, not language."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
"""Each turn on its line, then the assistant's: a chat template as chat models ship one."""
CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world, a tiny model"]


@dataclass(frozen=True)
class LmShape:
    """The size of a GPT-2 made on the spot."""

    context: int = 128
    width: int = 32
    layers: int = 2
    heads: int = 2


TINY = LmShape()
"""Fast enough for unit tests on two cores."""
SMALL = LmShape(context=1024, width=256, layers=4, heads=4)
"""Compute that outweighs the per-step overhead on a CPU: for benchmarks."""


def build_causal_lm(path: Path, shape: LmShape = TINY, seed: int = 0) -> Path:
    """Write a GPT-2 of `shape` with its tokenizer (and chat template) to `path`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=shape.context,
        n_embd=shape.width,
        n_layer=shape.layers,
        n_head=shape.heads,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path
