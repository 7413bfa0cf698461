from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """120 synthetic images at 48 px in VOC layout (train 60 / val 30 / test 30)."""
    from toolkit.data.synth import make_synthetic_voc

    root = tmp_path_factory.mktemp("data") / "voc"
    make_synthetic_voc(root, images=120, size=48, seed=1)
    return root


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synth_root):
    """trained(arch, **overrides) -> RUN path; each distinct configuration trains once per session."""
    from tests.helpers import tiny_config
    from toolkit import train

    cache = {}

    def get(arch: str, **overrides):
        key = (arch, tuple(sorted((k, str(v)) for k, v in overrides.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"run-{arch}")
            train.start(tiny_config(synth_root, arch, **overrides), out, force=True)
            cache[key] = out
        return cache[key]

    return get
