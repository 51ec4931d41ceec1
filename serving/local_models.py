"""Causal LMs made on the spot: random weights and a byte-level BPE tokenizer trained on a
few lines, with a chat template. The tests, the generation benchmark and the local default's
chat application (`made:<name>`) use them where nothing may be downloaded; they measure
serving, not language."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
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
MADE = {"tiny-chat": LmShape(context=1024, width=64, layers=2, heads=2)}
"""Models a version may name as `made:<name>`: built on first use, then read from the cache."""
MADE_PREFIX = "made:"
CACHE_ENV = "GOVERNOR_MODEL_CACHE"
"""Where made models are kept; `~/.cache/governor/models` when unset."""


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


def model_cache() -> Path:
    """The folder made models are kept in."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "governor" / "models"


def made_model(name: str) -> Path:
    """The folder of the made model `name`, built on first use (once across processes).

    Raises KeyError for a name not in `MADE`.
    """
    shape = MADE[name]
    tag = "-".join(f"{k}{v}" for k, v in asdict(shape).items())
    path = model_cache() / f"{name}-{tag}"
    if (path / "config.json").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        # Replicas of two versions may start together: one builds, the other waits for it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "config.json").exists():
            scratch = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
            try:
                build_causal_lm(scratch, shape)
                scratch.rename(path)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
    return path
