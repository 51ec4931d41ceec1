"""Benchmark: the embedding model's raw throughput by batch size and input length.

Measures what a simulator profile needs (`configs/profiles/minilm-cpu.yaml`): sequences
per second at several batch sizes, for inputs as the trace replay makes them, with the
torch threads one replica has. Runs the data plane's own `Embedder`, in one process.

    .venv/bin/python benchmarks/encoder_profile.py [--words 8,64] [--threads 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from controller.sim.replay import text_of
from serving.embedding import Embedder
from serving.spec import VersionSpec


def measure(embedder: Embedder, text: str, batch: int, seconds: float) -> float:
    """Sequences per second embedding `batch` copies of `text` for about `seconds`."""
    texts = [text] * batch
    embedder.embed(texts)
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        embedder.embed(texts)
        done += batch
    return done / (time.perf_counter() - began)


def main() -> None:
    """Print the table and write `encoder_profile.json`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default="8,64", help="input lengths in words, comma-separated")
    parser.add_argument("--batch-sizes", default="1,8,32,64")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (one replica's)")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("out/benchmarks"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    spec = VersionSpec(
        name="v1", model="bundled:all-MiniLM-L6-v2", device="cpu", torch_threads=args.threads
    )
    embedder = Embedder.load(spec)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    table = Table(title=f"all-MiniLM-L6-v2 raw, {args.threads} torch thread(s), seq/s")
    table.add_column("words (tokens)")
    for b in batches:
        table.add_column(f"batch {b}", justify="right")
    results = []
    for words in (int(w) for w in args.words.split(",")):
        text = text_of(words)
        _, tokens = embedder.embed([text])
        curve = {b: round(measure(embedder, text, b, args.seconds), 1) for b in batches}
        results.append({"words": words, "tokens": tokens[0], "seq_per_s": curve})
        table.add_row(f"{words} ({tokens[0]})", *(f"{curve[b]:.0f}" for b in batches))
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "encoder_profile.json"
    path.write_text(json.dumps({"threads": args.threads, "results": results}, indent=2))
    Console().print(f"wrote {path}")


if __name__ == "__main__":
    main()
