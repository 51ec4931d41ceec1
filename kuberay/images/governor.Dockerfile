# The Governor daemon image (`governor run`). Build from the repository root:
#   docker build -f kuberay/images/governor.Dockerfile -t <registry>/governor:0.1.0 .
FROM python:3.11-slim
WORKDIR /app
# The pinned CPU build of torch first: the daemon needs no GPU.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY controller controller
COPY serving serving
COPY kuberay kuberay
COPY configs configs
RUN pip install --no-cache-dir .
RUN useradd --uid 10001 --no-create-home governor
USER 10001
ENTRYPOINT ["governor"]
CMD ["run", "--config", "/etc/governor/governor.yaml"]
