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


@pytest.fixture(scope="session")
def lite_cache(tmp_path_factory):
    """A weights cache with EfficientNet-Lite0 imported (from the pretrained extra's PyTorch package,
    installed with it: nothing is downloaded)."""
    pytest.importorskip("torch", reason="the pretrained extra is not installed")
    from click.testing import CliRunner

    from mledge.cli import main

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLEDGE_CACHE", str(cache))
        result = CliRunner().invoke(main, ["weights", "import", "efficientnet-lite0"])
        assert result.exit_code == 0, result.output
        assert "match PyTorch within" in result.output
    return cache


@pytest.fixture
def cache_env(lite_cache, monkeypatch):
    monkeypatch.setenv("MLEDGE_CACHE", str(lite_cache))
    return lite_cache
