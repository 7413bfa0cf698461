"""The study's three architectures, side by side, in one registry.

All three share the study's CNN (input -> rescale -> [Conv32 same, Conv32 valid, MaxPool, Dropout .25]
-> [Conv64 same, Conv64 valid, MaxPool, Dropout .25] -> Flatten -> Dense512 ReLU -> Dropout .5) and
differ in how many of them there are, what their last layer holds and what trains:

- ``independent``: one CNN per class ending in Dense(1, sigmoid), each trained on its own class.
- ``shared``: the same per-class CNNs, but all share one frozen trunk (the conv blocks) taken from the
  first class's fully trained CNN (or a trunk trained on all labels); only the dense layers train.
- ``multioutput``: one CNN ending in Dense(C, sigmoid), trained once on all labels.

Layer names are fixed ("conv1a" ... "logits", "probs") so export can cut models at the logits and
fuse trunks and heads across files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np
from keras import layers

from toolkit.backbones.efficientnet_lite import VARIANTS, blocks, layer_name
from toolkit.heads import CSRA_LAMBDA, HEAD_WEIGHTS, HEADS

TRUNK_LAYERS = ("conv1a", "conv1b", "conv2a", "conv2b")  # the weights "shared" copies and freezes
HEAD_LAYERS = ("dense", "logits")


BACKBONES = ("study", *VARIANTS)
# The smallest input side each network takes: the study's CNN loses 2 pixels to each valid conv and
# halves twice (10 -> 1x1); EfficientNet-Lite strides 32 in all.
MIN_INPUT_SIZE = {"study": 10, **{name: 32 for name in VARIANTS}}
# The input side a network is trained at when --img-size is not given.
DEFAULT_SIZE = {"study": 100, **{name: size for name, (_, _, size) in VARIANTS.items()}}


@dataclass
class CNNConfig:
    """The study's CNN (widths and input size are parameters so tests can use tiny models), or an
    ImageNet-pretrained backbone with a Dense head: frozen (a linear probe) or with its last blocks
    fine-tuned."""

    img_size: int = 100  # the size the network works at
    conv1: int = 32
    conv2: int = 64
    dense: int = 512
    backbone: str = "study"
    freeze_backbone: bool = True
    finetune_blocks: int = 0  # pretrained: train the last N blocks (of 16 in Lite0, 21 in Lite1/2) and the head conv
    input_size: int = 0  # the pixels it takes, when other than img_size (0): resized in the graph
    head: str = "avg"  # pretrained: avg | csra (toolkit.heads)
    csra_lambda: float = CSRA_LAMBDA  # csra: the weight of the attention-weighted average

    @property
    def pixels(self) -> int:
        """The input side: the run's decode size, which every model file of a bundle takes."""
        return self.input_size or self.img_size

    @property
    def pretrained(self) -> bool:
        return self.backbone != "study"

    @property
    def cached_trunk(self) -> bool:
        """Pretrained with a frozen start: what is frozen runs once per image and what trains (the
        head, or the last blocks and the head) trains on its cached output."""
        return self.pretrained and self.freeze_backbone

    @property
    def backbone_layer(self) -> str:
        """The pretrained backbone's name as one nested layer of the model."""
        return layer_name(self.backbone)

    @property
    def blocks(self) -> int:
        return len(blocks(self.backbone)) if self.pretrained else 0

    @property
    def trunk_layers(self) -> tuple[str, ...]:
        return (self.backbone_layer,) if self.pretrained else TRUNK_LAYERS


def _resize(x, size: int, prefix: str = ""):
    """A class tuned to its own input size (``classes retrain --img-size``) resizes the bundle's pixels
    in its graph: training and the device then see the same bilinear resize (a TFLite builtin)."""
    if x.shape[1] == size and x.shape[2] == size:
        return x
    return layers.Resizing(size, size, interpolation="bilinear", name=f"{prefix}resize")(x)


def _trunk(x, cfg: CNNConfig, prefix: str = ""):
    x = _resize(x, cfg.img_size, prefix)
    x = layers.Rescaling(1 / 255, name=f"{prefix}rescale")(x)
    x = layers.Conv2D(cfg.conv1, 3, padding="same", activation="relu", name=f"{prefix}conv1a")(x)
    x = layers.Conv2D(cfg.conv1, 3, padding="valid", activation="relu", name=f"{prefix}conv1b")(x)
    x = layers.MaxPooling2D(2, name=f"{prefix}pool1")(x)
    x = layers.Dropout(0.25, name=f"{prefix}drop1")(x)
    x = layers.Conv2D(cfg.conv2, 3, padding="same", activation="relu", name=f"{prefix}conv2a")(x)
    x = layers.Conv2D(cfg.conv2, 3, padding="valid", activation="relu", name=f"{prefix}conv2b")(x)
    x = layers.MaxPooling2D(2, name=f"{prefix}pool2")(x)
    x = layers.Dropout(0.25, name=f"{prefix}drop2")(x)
    return layers.Flatten(name=f"{prefix}flatten")(x)


def _head(x, cfg: CNNConfig, outputs: int, prefix: str = ""):
    x = layers.Dense(cfg.dense, activation="relu", name=f"{prefix}dense")(x)
    x = layers.Dropout(0.5, name=f"{prefix}drop3")(x)
    return layers.Dense(outputs, name=f"{prefix}logits")(x)


def build_cnn(cfg: CNNConfig, outputs: int, name: str = "cnn") -> keras.Model:
    """The study's CNN with ``outputs`` sigmoid units; the sigmoid stays float32 under mixed precision."""
    inputs = keras.Input((cfg.pixels, cfg.pixels, 3), name="pixels")
    logits = _head(_trunk(inputs, cfg), cfg, outputs)
    probs = layers.Activation("sigmoid", dtype="float32", name="probs")(logits)
    return keras.Model(inputs, probs, name=name)


def cnn_trunk(model: keras.Model) -> keras.Model:
    """A study CNN's convolutions up to the flattened features (what a shared run's heads read)."""
    return keras.Model(model.inputs, model.get_layer("flatten").output, name="trunk")


def build_cnn_head(cfg: CNNConfig, features: int, outputs: int, name: str) -> keras.Model:
    """The study's dense head alone, on flattened trunk features: its layers are named as in
    build_cnn, so its weights go back into a whole CNN by name (HEAD_LAYERS)."""
    inputs = keras.Input((features,), name="features")
    probs = layers.Activation("sigmoid", dtype="float32", name="probs")(_head(inputs, cfg, outputs))
    return keras.Model(inputs, probs, name=name)


def pretrained_backbone(cfg: CNNConfig) -> keras.Model:
    """The backbone with its imported ImageNet weights, pooled features out; trainable as configured."""
    from toolkit.backbones.efficientnet_lite import efficientnet_lite
    from toolkit.backbones.weights import require_weights

    backbone = efficientnet_lite(cfg.backbone, cfg.img_size, pooled=HEADS[cfg.head][1])
    backbone.load_weights(require_weights(cfg.backbone))
    first_trained = cfg.blocks - cfg.finetune_blocks
    for layer in backbone.layers:
        if cfg.finetune_blocks:
            block = layer.name[5:].split("_")[0] if layer.name.startswith("block") else None
            layer.trainable = layer.name.startswith("head") or (block is not None and int(block) >= first_trained)
        else:
            layer.trainable = not cfg.freeze_backbone
    if cfg.freeze_backbone and not cfg.finetune_blocks:
        backbone.trainable = False
    return backbone


def pretrained_prefix(cfg: CNNConfig) -> tuple[keras.Model, keras.Model]:
    """(frozen prefix, the backbone it was cut from): pixels -> pooled features (a linear probe), or
    -> the activation entering the first of the ``finetune_blocks`` last blocks."""
    from toolkit.backbones.efficientnet_lite import block_input

    backbone = pretrained_backbone(replace(cfg, finetune_blocks=0, freeze_backbone=True))
    if not cfg.finetune_blocks:
        return backbone, backbone
    return keras.Model(backbone.input, block_input(backbone, cfg.blocks - cfg.finetune_blocks), name="prefix"), backbone


def build_head(cfg: CNNConfig, shape: tuple[int, ...], outputs: int, name: str, source: keras.Model) -> keras.Model:
    """What trains on a cached prefix (layer names as in the full model, so weights copy by name):
    the head on the cached features; on a cached map (the last blocks fine-tuned, or a head that
    reads the map) first a random horizontal flip of it (the augmentation left), then the last
    blocks and head conv, initialized from ``source``, their batch norms kept in inference mode
    (small batches, small data)."""
    from toolkit.backbones.efficientnet_lite import tail

    build, pooled = HEADS[cfg.head]
    inputs = keras.Input(shape, name="features")
    x = inputs
    if len(shape) == 3:
        x = layers.RandomFlip("horizontal", seed=0, name="flip")(x)
    if cfg.finetune_blocks:
        x = tail(x, cfg.backbone, cfg.blocks - cfg.finetune_blocks, pooled=pooled)
    logits = build(x, outputs, cfg.csra_lambda)
    head = keras.Model(inputs, layers.Activation("sigmoid", dtype="float32", name="probs")(logits), name=name)
    for layer in head.layers:
        if layer.weights and layer.name not in HEAD_WEIGHTS:
            layer.set_weights(source.get_layer(layer.name).get_weights())
            layer.trainable = not isinstance(layer, layers.BatchNormalization)
    return head


def assemble(head: keras.Model, cfg: CNNConfig, outputs: int, name: str) -> keras.Model:
    """The full model (pixels in) of a head trained on a cached prefix: the head's weights copied by name."""
    full = build_model(cfg, outputs, name)
    backbone = full.get_layer(cfg.backbone_layer)
    for layer in head.layers:
        if layer.weights:
            target = full.get_layer(layer.name) if layer.name in HEAD_WEIGHTS else backbone.get_layer(layer.name)
            target.set_weights(layer.get_weights())
    return full


def build_model(cfg: CNNConfig, outputs: int, name: str = "model") -> keras.Model:
    """The study's CNN, or the pretrained backbone + its head (toolkit.heads) + sigmoid."""
    if not cfg.pretrained:
        return build_cnn(cfg, outputs, name)
    if cfg.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {cfg.backbone!r}; choose from {', '.join(BACKBONES)}")
    if cfg.pixels != cfg.img_size:
        raise ValueError("a pretrained backbone works at the run's input size (no per-class --img-size)")
    inputs = keras.Input((cfg.img_size, cfg.img_size, 3), name="pixels")
    logits = HEADS[cfg.head][0](pretrained_backbone(cfg)(inputs), outputs, cfg.csra_lambda)
    probs = layers.Activation("sigmoid", dtype="float32", name="probs")(logits)
    return keras.Model(inputs, probs, name=name)


def copy_trunk(source: keras.Model, target: keras.Model, freeze: bool = True,
               names: tuple[str, ...] = TRUNK_LAYERS) -> None:
    """The study's Model 2 step: copy the conv weights into another class's CNN and freeze them.
    ValueError names the first layer whose weights do not fit (another input size or widths), and
    then nothing is copied."""
    weights = {name: source.get_layer(name).get_weights() for name in names}
    for name in names:
        if [w.shape for w in target.get_layer(name).get_weights()] != [w.shape for w in weights[name]]:
            raise ValueError(f"layer {name} of the source does not fit this model")
    for name in names:
        layer = target.get_layer(name)
        layer.set_weights(weights[name])
        layer.trainable = not freeze


@dataclass(frozen=True)
class Architecture:
    name: str
    per_class: bool  # one model per class (True) or one model with C outputs
    summary: str


ARCHITECTURES: dict[str, Architecture] = {
    "independent": Architecture("independent", per_class=True,
                                summary="20 separate CNNs, each Dense(1, sigmoid), each trained on its class"),
    "shared": Architecture("shared", per_class=True,
                           summary="per-class CNNs sharing one frozen conv trunk; only dense layers train"),
    "multioutput": Architecture("multioutput", per_class=False,
                                summary="one CNN ending in Dense(20, sigmoid), trained on all labels"),
}


def logits_model(model: keras.Model) -> keras.Model:
    """The same model cut before the sigmoid: for export, where the sigmoid runs in float on the device."""
    return keras.Model(model.inputs, model.get_layer("logits").output, name=f"{model.name}_logits")


def work_size(model: keras.Model) -> int:
    """The side a study CNN's convolutions see (its own size when it resizes the bundle's pixels)."""
    return int(model.get_layer("conv1a").input.shape[1])


def fuse(models: list[keras.Model], cfg: CNNConfig, shared_trunk: bool, logits: bool = True) -> keras.Model:
    """One graph for a per-class ensemble: with ``shared_trunk`` the trunk runs once and the heads
    after it; otherwise one branch per class (each at its own size). Same weights, same predictions."""
    if cfg.pretrained:
        return _fuse_pretrained(models, cfg, shared_trunk, logits)
    sizes = [work_size(m) for m in models]
    if shared_trunk and len(set(sizes)) > 1:
        raise ValueError(f"a shared trunk runs once, at one size; these classes work at {sorted(set(sizes))}")
    inputs = keras.Input((cfg.pixels, cfg.pixels, 3), name="pixels")
    features = _trunk(inputs, replace(cfg, img_size=sizes[0])) if shared_trunk else None
    outs = []
    for k, size in enumerate(sizes):
        prefix = f"c{k}_"
        feats = features if shared_trunk else _trunk(inputs, replace(cfg, img_size=size), prefix)
        outs.append(_head(feats, cfg, 1, prefix))
    out = layers.Concatenate(name="logits")(outs)
    if not logits:
        out = layers.Activation("sigmoid", name="probs")(out)
    fused = keras.Model(inputs, out, name="fused")
    for k, model in enumerate(models):
        prefix = f"c{k}_"
        for name in HEAD_LAYERS + (() if shared_trunk else TRUNK_LAYERS):
            fused.get_layer(prefix + name).set_weights(model.get_layer(name).get_weights())
    if shared_trunk:
        for name in TRUNK_LAYERS:
            fused.get_layer(name).set_weights(models[0].get_layer(name).get_weights())
    return fused


def _fuse_pretrained(models: list[keras.Model], cfg: CNNConfig, shared_trunk: bool, logits: bool) -> keras.Model:
    """The frozen trunk once, then every class's Dense(1) as one Dense(C): the same products in one op,
    which int8-float-last can leave in float (20 ops behind a Concatenate stay int8)."""
    if not shared_trunk:
        raise ValueError("--fuse of pretrained per-class models needs a shared trunk (use --arch shared)")
    inputs = keras.Input((cfg.img_size, cfg.img_size, 3), name="pixels")
    features = models[0].get_layer(cfg.backbone_layer)(inputs)
    heads = layers.Dense(len(models), name="logits")
    out = heads(features)
    if not logits:
        out = layers.Activation("sigmoid", name="probs")(out)
    fused = keras.Model(inputs, out, name="fused")
    heads.set_weights(joined_logits(models))
    return fused


def joined_logits(models: list[keras.Model]) -> list[np.ndarray]:
    """[kernel, bias] of the per-class models' Dense(1) logits side by side: one Dense(C)'s weights."""
    return [np.concatenate(w, axis=-1) for w in zip(*(m.get_layer("logits").get_weights() for m in models))]
