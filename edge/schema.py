"""The written schema of manifest.json (format version 1). A bundle is untrusted input: every field
the runtime reads is checked here, before use, and a violation names the field.

Fields not listed are ignored (a later toolkit may add information without a new format version).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from edge.preprocess import RESIZE_METHODS

FORMAT_VERSION = 1
ARCHITECTURES = ("independent", "shared", "multioutput")
OUTPUT_KINDS = ("logits", "probabilities")
QUANTIZATIONS = ("float32", "float16", "dynamic", "int8", "int8-float-last")  # = export.quantize.QUANT_MODES
INPUT_DTYPES = ("uint8", "int8", "float32")
MAX_CLASSES = 10_000
MAX_FILES = 1_000
MAX_SIDE = 8192
MAX_MODEL_BYTES = 4 << 30


class SchemaError(Exception):
    """One field that breaks the schema: ``field`` is its path (``files[2].name``)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


def _int(lo: int, hi: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(lo: float = -math.inf, hi: float = math.inf) -> Callable[[object], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi


def _one_of(*values) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and v in values


def _text(max_len: int = 4096) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and len(v) <= max_len


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or check(v)


def _is_class_name(v) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 256 and v.strip() == v and not any(c in v for c in "\n\r\0")


def _is_plain_tflite_name(v) -> bool:
    """A file directly in the bundle folder: no folder part, no '..', nothing hidden."""
    return (isinstance(v, str) and 0 < len(v) <= 255 and v.endswith(".tflite") and not v.startswith(".")
            and not any(c in v for c in "/\\\0:"))


def _is_quantization(v) -> bool:
    return (isinstance(v, dict) and _number(1e-12, 1e12)(v.get("scale")) and _int(-128, 255)(v.get("zero_point")))


# field: (required, check, what it must be)
Spec = dict[str, tuple[bool, Callable[[object], bool], str]]

TOP: Spec = {
    "format_version": (True, _int(0, 1 << 31), "an integer"),
    "architecture": (True, _one_of(*ARCHITECTURES), f"one of {', '.join(ARCHITECTURES)}"),
    "fused": (False, lambda v: isinstance(v, bool), "true or false"),
    "classes": (True, lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(map(_is_class_name, v))
                and len(set(v)) == len(v), f"a list of 1 to {MAX_CLASSES} distinct class names (text, no line breaks)"),
    "thresholds": (True, lambda v: isinstance(v, list) and all(map(_number(0.0, 1.0), v)),
                   "a list of numbers in [0, 1]"),
    "input": (True, lambda v: isinstance(v, dict), "an object"),
    "output": (True, _one_of(*OUTPUT_KINDS), f"one of {', '.join(OUTPUT_KINDS)}"),
    "quantization": (True, _one_of(*QUANTIZATIONS), f"one of {', '.join(QUANTIZATIONS)}"),
    "calibration": (False, _optional(lambda v: isinstance(v, dict)), "null or an object"),
    "flip_average": (False, lambda v: isinstance(v, bool), "true or false"),
    "files": (True, lambda v: isinstance(v, list) and 0 < len(v) <= MAX_FILES and all(isinstance(e, dict) for e in v),
              f"a list of 1 to {MAX_FILES} objects"),
    "bytes": (False, _int(0, MAX_FILES * MAX_MODEL_BYTES), "a byte count"),
    "toolkit_version": (False, _text(64), "text"),
    "tensorflow_version": (False, _text(64), "text"),
    "created": (False, _text(64), "text"),
    "run": (False, _text(), "text"),
    "conversion_seconds": (False, _number(0.0), "a number of seconds"),
    "evaluation": (False, lambda v: isinstance(v, dict), "an object"),
}

INPUT: Spec = {
    "height": (True, _int(1, MAX_SIDE), f"an integer from 1 to {MAX_SIDE}"),
    "width": (True, _int(1, MAX_SIDE), f"an integer from 1 to {MAX_SIDE}"),
    "channels": (True, _int(3, 3), "3 (RGB)"),
    "layout": (False, _one_of("NHWC"), "NHWC"),
    "channel_order": (False, _one_of("RGB"), "RGB"),
    "dtype": (True, _one_of(*INPUT_DTYPES), f"one of {', '.join(INPUT_DTYPES)}"),
    "quantization": (False, _optional(_is_quantization), "null or {scale > 0, zero_point in -128..255}"),
    "value_range": (False, lambda v: isinstance(v, list) and len(v) == 2 and all(map(_number(), v)),
                    "two numbers"),
    "resize": (False, _one_of(*RESIZE_METHODS), f"one of {', '.join(RESIZE_METHODS)}"),
    "decoder": (False, _text(), "text"),
    "rescale": (False, _text(), "text"),
    "backbone": (False, _optional(_text(64)), "text"),
}

FILE: Spec = {
    "name": (True, _is_plain_tflite_name, "a plain .tflite file name in the bundle folder (no folder part, no '..')"),
    "bytes": (True, _int(1, MAX_MODEL_BYTES), f"a size from 1 to {MAX_MODEL_BYTES} bytes"),
    "sha256": (True, lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
               "64 lowercase hex digits"),
    "outputs": (True, lambda v: isinstance(v, list) and 0 < len(v) <= MAX_CLASSES and all(map(_is_class_name, v)),
                "a list of class names"),
    "macs": (False, _int(0, 1 << 62), "a non-negative integer"),
}


def _check(data: dict, spec: Spec, prefix: str = "") -> None:
    for key, (required, ok, what) in spec.items():
        if key not in data:
            if required:
                raise SchemaError(prefix + key, "missing")
        elif not ok(data[key]):
            raise SchemaError(prefix + key, f"must be {what}, not {_show(data[key])}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(manifest: object) -> dict:
    """The manifest itself when it meets the schema; else SchemaError naming the first bad field."""
    if not isinstance(manifest, dict):
        raise SchemaError("manifest", f"must be a JSON object, not {type(manifest).__name__}")
    if "format_version" in manifest and manifest["format_version"] != FORMAT_VERSION:
        raise SchemaError("format_version", f"format version {_show(manifest['format_version'])} is not "
                                            f"supported (this runtime reads version {FORMAT_VERSION})")
    _check(manifest, TOP)
    _check(manifest["input"], INPUT, "input.")
    for k, entry in enumerate(manifest["files"]):
        _check(entry, FILE, f"files[{k}].")
    classes = manifest["classes"]
    if len(manifest["thresholds"]) != len(classes):
        raise SchemaError("thresholds", f"{len(manifest['thresholds'])} thresholds for {len(classes)} classes")
    names = [entry["name"] for entry in manifest["files"]]
    if len(set(names)) != len(names):
        raise SchemaError("files", "a file is named twice")
    covered = sorted(c for entry in manifest["files"] for c in entry["outputs"])
    if covered != sorted(classes):
        raise SchemaError("files[].outputs", "the files' outputs do not cover the classes exactly once")
    return manifest
