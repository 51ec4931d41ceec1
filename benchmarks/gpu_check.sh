#!/usr/bin/env bash
# The data-plane benchmark on an NVIDIA GPU: the raw model vs Ray Serve over HTTP, on cuda.
# Needs only this project and its installed dependencies (no internet): run it from the
# repository root of a checkout whose virtual environment is set up.
#   benchmarks/gpu_check.sh [extra benchmarks/dataplane.py options]
# Results go to out/benchmarks/gpu/ (dataplane.json, dataplane.png) unless OUT is set.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
OUT="${OUT:-out/benchmarks/gpu}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export RAY_USAGE_STATS_ENABLED=0

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: nvidia-smi not found; this check needs an NVIDIA GPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

"$PYTHON" - <<'PY'
import torch

if not torch.cuda.is_available():
    raise SystemExit(f"gpu_check: torch {torch.__version__} sees no CUDA device")
print(f"torch {torch.__version__}, cuda {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
PY

"$PYTHON" benchmarks/dataplane.py \
  --device cuda \
  --dtype float16 \
  --batch-sizes 1,32,128 \
  --concurrency 1,16,64 \
  --inputs-per-request 1,16 \
  --threads 4 \
  --seconds 8 \
  --out "$OUT" \
  "$@"

# Generation: continuous batching raw, through Serve with streaming, and static batching,
# on cuda; Qwen2.5-0.5B-Instruct where the local Hugging Face cache holds it, else the
# benchmark's own model made on the spot.
QWEN="Qwen/Qwen2.5-0.5B-Instruct"
if "$PYTHON" -c "from huggingface_hub import snapshot_download as s; s('$QWEN', local_files_only=True)" >/dev/null 2>&1; then
  GEN_MODEL=(--model "$QWEN")
else
  GEN_MODEL=()
fi
"$PYTHON" benchmarks/generation.py --device cuda --concurrency 1,16,64 --requests 128 \
  --max-tokens 256 "${GEN_MODEL[@]}" --out "$OUT"
