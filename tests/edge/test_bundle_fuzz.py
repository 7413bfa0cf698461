"""Fuzzing the bundle reader: random JSON as the manifest, random changes to a real manifest, and
random changes to a real model file (with its sha256 updated, as an attacker would). Whatever comes
in, only BundleError comes out: never another exception, never a crash of the process."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from edge import BundleError, Predictor

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install hypothesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def load_and_run(bundle) -> None:
    """Everything a device does with a bundle; only BundleError may escape."""
    try:
        predictor = Predictor(bundle)
        predictor.predict_pixels(np.zeros((1, *predictor.size, 3), np.uint8))
    except BundleError:
        pass


@pytest.fixture(scope="module")
def base(bundles, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    for name in ("independent-int8", "multioutput-int8-float-last"):
        shutil.copytree(bundles / name, folder / name)
    return folder


@FUZZ
@given(manifest=JSON)
def test_random_json_manifest(base, manifest):
    bundle = base / "independent-int8"
    original = (bundle / "manifest.json").read_bytes()
    try:
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        load_and_run(bundle)
    finally:
        (bundle / "manifest.json").write_bytes(original)


def paths_of(node, prefix=()):
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from paths_of(child, (*prefix, key))


@FUZZ
@given(data=st.data())
def test_mutated_real_manifest(base, data):
    bundle = base / "independent-int8"
    original = (bundle / "manifest.json").read_bytes()
    manifest = json.loads(original)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from([p for p in paths_of(manifest) if p]))
        parent = manifest
        for key in where[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(JSON)
    try:
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        load_and_run(bundle)
    finally:
        (bundle / "manifest.json").write_bytes(original)


@FUZZ
@given(data=st.data())
def test_mutated_model_file_with_matching_hash(base, data):
    bundle = base / "multioutput-int8-float-last"
    model, manifest_path = bundle / "model.tflite", bundle / "manifest.json"
    original, original_manifest = model.read_bytes(), manifest_path.read_bytes()
    content = bytearray(original)
    kind = data.draw(st.sampled_from(["bytes", "truncate", "splice"]))
    if kind == "truncate":
        content = content[: data.draw(st.integers(0, len(content) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 16))):
            at = data.draw(st.integers(0, len(content) - 1))
            if kind == "bytes":
                content[at] = data.draw(st.integers(0, 255))
            else:
                content[at : at + 8] = data.draw(st.binary(min_size=8, max_size=8))
    manifest = json.loads(original_manifest)
    manifest["files"][0].update(bytes=len(content), sha256=hashlib.sha256(content).hexdigest())
    try:
        model.write_bytes(bytes(content))
        manifest_path.write_text(json.dumps(manifest))
        load_and_run(bundle)
    finally:
        model.write_bytes(original)
        manifest_path.write_bytes(original_manifest)
