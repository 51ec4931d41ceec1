"""Names of the series the data plane and Ray export, in one place for every source."""

from __future__ import annotations

REQUESTS = "ray_governor_requests_total"
ERRORS = "ray_governor_request_errors_total"
SHED = "ray_governor_requests_shed_total"
"""Requests a router refused with 503 + Retry-After because the version's queue was full:
demand the version did not serve, counted neither as its requests nor as its errors."""
PROXY_SHED = "ray_governor_proxy_requests_shed_total"
"""Requests Serve's proxy refused before they reached the router (serving/proxy_admission.py),
labelled with the version the router's weights would have drawn: shed like SHED."""
LATENCY_BUCKET = "ray_governor_request_latency_ms_bucket"
TTFT_BUCKET = "ray_governor_time_to_first_token_ms_bucket"
TPOT_BUCKET = "ray_governor_time_per_output_token_ms_bucket"
"""Token latencies of generation replicas, per sequence (serving/model.py)."""
BATCH_SIZE_COUNT = "ray_governor_batch_size_count"
BATCHED_INPUTS = "ray_governor_batched_inputs_total"
"""Inputs run through the model; over BATCH_SIZE_COUNT, the exact mean batch size (Ray
approximates a histogram's `_sum` from its buckets, so `_sum` is not used)."""
INPUT_TOKENS = "ray_governor_input_tokens_total"
OUTPUT_TOKENS = "ray_governor_output_tokens_total"
"""Token counters: the work a version did (the scaling agent's demand), and the recording
rules' cost per million tokens."""
SEQUENCES = "ray_governor_sequences"
KV_CACHE_USAGE = "ray_governor_kv_cache_usage_ratio"
"""Generation replicas' continuous batches: sequences by state, and paged KV cache in use
(the dashboard's; no agent reads them)."""
ONGOING = "ray_serve_num_ongoing_requests_at_replicas"
REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"
ROUTE_WEIGHT = "ray_governor_route_weight"

APP_LABEL = "application"
DEPLOYMENT_LABEL = "deployment"
VERSION_LABEL = "version"
