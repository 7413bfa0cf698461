"""Small real datasets and models for the tests: nothing here downloads anything."""

from __future__ import annotations

from pathlib import Path

from toolkit.config import TrainConfig
from toolkit.data.pipeline import Augment
from toolkit.models import CNNConfig

TINY = CNNConfig(img_size=32, conv1=4, conv2=8, dense=16)


def tiny_config(root: Path, arch: str, **overrides) -> TrainConfig:
    """A config that trains in seconds: 32x32 input, narrow layers, one epoch."""
    settings = {"root": str(root), "arch": arch, "model": TINY, "epochs": 1, "batch": 32, "patience": 0,
                "augment": Augment()}
    settings.update(overrides)
    return TrainConfig(**settings)


def tiny_cli_args(root: Path, arch: str, out: Path, *extra: str) -> list[str]:
    return ["train", str(root), "--arch", arch, "--out", str(out), "--img-size", "32", "--widths", "4,8,16",
            "--epochs", "1", "--patience", "0", *extra]
