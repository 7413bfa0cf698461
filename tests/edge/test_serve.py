"""``mledge edge serve``: a photo in, its labels out; a clear 4xx for what is not a photo or too
large, and the service goes on; concurrent requests share the interpreter pool safely; the page
(checked in Chromium by make test-report) is served."""

from __future__ import annotations

import http.client
import io
import json
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the serve extra: pip install 'multilabel-edge[serve]'")
from starlette.testclient import TestClient  # noqa: E402

from edge.bench import worker_python  # noqa: E402
from edge.predictor import Predictor  # noqa: E402
from edge.serve import LATEST, create_app  # noqa: E402
from tests.edge.service import start_service  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def jpeg(k: int, size: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(k).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def bundle(bundles) -> Path:
    return bundles / "multioutput-int8"


@pytest.fixture(scope="module")
def client(bundle):
    with TestClient(create_app(bundle, workers=2, max_bytes=20_000), raise_server_exceptions=False) as c:
        yield c


def test_a_photo_gets_what_the_predictor_says(client, bundle):
    body = jpeg(0)
    got = client.post("/predict?name=cam0.jpg", content=body)
    assert got.status_code == 200
    want = Predictor(bundle).predict([io.BytesIO(body)])[0]
    assert got.json()["labels"] == want.labels and got.json()["source"] == "cam0.jpg"
    assert got.json()["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"PK\x03\x04 a zip, not a photo", 400, "not an image"),
    (b"", 400, "empty body"),
    (jpeg(1, size=200) + b"\0" * 20_000, 413, "over 20000 bytes"),
])
def test_what_is_not_a_photo_is_a_4xx_and_the_service_goes_on(client, body, status, says):
    got = client.post("/predict", content=body)
    assert got.status_code == status and says in got.json()["error"] and "Traceback" not in got.text
    assert client.post("/predict", content=jpeg(2)).status_code == 200


def test_health_and_latest_are_bounded(client):
    for k in range(LATEST + 5):
        client.post("/predict", content=jpeg(k))
    health = client.get("/health").json()
    assert health["status"] == "ok" and len(health["classes"]) == 20 and health["photos"] >= LATEST + 5
    latest = client.get("/latest").json()
    assert len(latest) == LATEST and latest[0]["time"] and client.get("/").text.startswith("<!doctype html>")
    assert client.get("/favicon.ico").status_code == 204 and client.get("/nowhere").status_code == 404


def test_concurrent_requests_to_a_real_server_each_get_their_own_answer(bundle):
    proc, port = start_service(worker_python(), bundle, "--workers", "2")
    try:
        photos = [jpeg(k) for k in range(8)]
        want = [p.labels for p in Predictor(bundle).predict([io.BytesIO(b) for b in photos])]

        def post(k: int) -> tuple[int, list[str]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/predict", body=photos[k % 8])
            reply = conn.getresponse()
            return k, reply.status, json.loads(reply.read())["labels"]

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(post, range(64)))
        assert all(status == 200 and labels == want[k % 8] for k, status, labels in answers)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_port_in_use_is_one_line(bundle):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run([*worker_python(), "-m", "mledge", "edge", "serve", str(bundle), "--port", str(port)],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
