"""The edge package stands alone: no TensorFlow, no Keras, nothing else of this project."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(os.environ.get("MLEDGE_EXPECT_NO_TF") != "1", reason="only in the edge-only environment")
def test_tensorflow_is_not_installed():
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401


def test_edge_imports_nothing_heavy():
    code = ("import sys, edge, edge.bench, edge.runtime, edge.metrics, edge.voclabels, toolkit.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'pandas', 'export')]; "
            "print(bad); assert not bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runtime_prefers_litert():
    from edge.runtime import get_runtime

    assert get_runtime().name in ("ai_edge_litert", "tflite_runtime", "tensorflow")
    proc = subprocess.run([sys.executable, "-c", "from edge.runtime import get_runtime; print(get_runtime().name)"],
                          capture_output=True, text=True, env={**os.environ, "MLEDGE_INTERPRETER": "ai_edge_litert"})
    assert proc.stdout.strip() == "ai_edge_litert", proc.stderr
