"""The number format training computes in: float16 on a GPU with tensor cores, bfloat16 on a CPU with
AMX or AVX512-BF16 (oneDNN runs its convolutions and matrix products in bfloat16 there), else
float32. Weights stay float32 either way, the output layer and the loss compute in float32, and the
saved models compute in float32, so bundles do not change."""

from __future__ import annotations

from pathlib import Path

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve(precision: str) -> str:
    """``auto`` -> what this machine computes fastest without losing the model; others as they are."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        return "float16" if tuple(capability) >= (7, 0) else "float32"  # tensor cores from Volta on
    return "bfloat16" if cpu_flags() & BF16_FLAGS else "float32"


def with_policy(model, policy: str = "float32"):
    """The same model and weights computing under ``policy``: float32 (a mixed-precision model's layers
    keep their policy in the saved file, which would make predictions and exports compute in 16 bits),
    or mixed_bfloat16 to run a saved model in 16 bits; the output layer ("probs") stays float32."""
    config = model.get_config()
    if policy == "float32" and "mixed_" not in repr(config):
        return model

    def convert(node):
        if isinstance(node, dict):
            if node.get("name") == "probs" and "dtype" in node:  # a layer's config: the sigmoid keeps float32
                return
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(node.get("config"), dict):
                node["config"]["name"] = policy
            for value in node.values():
                convert(value)
        elif isinstance(node, list):
            for value in node:
                convert(value)

    import keras

    convert(config)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)  # for the layers whose config names none (the input)
    try:
        copy = model.__class__.from_config(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy
