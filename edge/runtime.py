"""Which TFLite interpreter to use: LiteRT, then tflite_runtime, then TensorFlow's own, first that imports.

``MLEDGE_INTERPRETER`` (ai_edge_litert, tflite_runtime or tensorflow) forces one, for comparisons.
"""

from __future__ import annotations

import importlib
import os
import platform
from dataclasses import dataclass
from typing import Any

CANDIDATES = ("ai_edge_litert", "tflite_runtime", "tensorflow")


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    interpreter_class: Any


def _load(name: str) -> Runtime:
    if name == "ai_edge_litert":
        from ai_edge_litert.interpreter import Interpreter

        version = _dist_version("ai-edge-litert")
    elif name == "tflite_runtime":
        from tflite_runtime.interpreter import Interpreter

        version = _dist_version("tflite-runtime")
    elif name == "tensorflow":
        tf = importlib.import_module("tensorflow")
        Interpreter, version = tf.lite.Interpreter, tf.__version__
    else:
        raise ValueError(f"unknown interpreter {name!r}; choose from {', '.join(CANDIDATES)}")
    return Runtime(name, version, Interpreter)


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


_cached: Runtime | None = None


def get_runtime() -> Runtime:
    """The interpreter this process uses (chosen once)."""
    global _cached
    if _cached is None:
        forced = os.environ.get("MLEDGE_INTERPRETER")
        if forced:
            _cached = _load(forced)
        else:
            for name in CANDIDATES:
                try:
                    _cached = _load(name)
                    break
                except ImportError:
                    continue
            else:
                raise ImportError("no TFLite interpreter found: pip install ai-edge-litert "
                                  "(or tflite-runtime on boards without a LiteRT wheel)")
    return _cached


def make_interpreter(model: str | bytes, num_threads: int | None = None) -> Any:
    """An interpreter with tensors allocated, from a file path or the model's bytes (what the bundle
    reader checked). XNNPACK is applied by the default op resolver."""
    source = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    interpreter = get_runtime().interpreter_class(**source, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
             "0xd08": "Cortex-A72 (Raspberry Pi 4)", "0xd0b": "Cortex-A76 (Raspberry Pi 5)", "0xd0c": "Neoverse-N1"}


def cpu_info() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key = line.split(":")[0].strip().lower()
                if key in ("model name", "cpu part", "hardware") and not model:
                    value = line.split(":", 1)[1].strip()
                    model = ARM_PARTS.get(value, value) if key == "cpu part" else value
    except OSError:
        pass
    return {"machine": platform.machine(), "cores": os.cpu_count(), "model": model or platform.processor()}


def delegate_report(model_path: str) -> str:
    """Whether the runtime applied XNNPACK to this model: it says so on stderr at creation."""
    import tempfile

    with tempfile.TemporaryFile() as capture:
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            make_interpreter(model_path)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    return "applied" if "XNNPACK" in text else "not reported (not applied, or the runtime logs nothing)"
