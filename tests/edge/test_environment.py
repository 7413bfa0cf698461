"""The edge package stands alone: no TensorFlow, no Keras, nothing else of this project."""

from __future__ import annotations

import os
import subprocess

import pytest


@pytest.mark.skipif(os.environ.get("MLEDGE_EXPECT_NO_TF") != "1", reason="only in the edge-only environment")
def test_tensorflow_is_not_installed():
    with pytest.raises(ImportError):
        import tensorflow  # noqa: F401


def test_edge_imports_nothing_heavy():
    code = ("import sys, edge, edge.bench, edge.runtime, edge.metrics, edge.label_files, mledge.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'pandas', 'export')]; "
            "print(bad); assert not bad")
    from edge.bench import worker_python

    proc = subprocess.run([*worker_python(), "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runtime_choice_and_override():
    from edge.runtime import CANDIDATES, get_runtime

    name = get_runtime().name
    assert name in CANDIDATES
    installed = []
    for candidate in CANDIDATES:  # the first importable one is chosen
        try:
            __import__(candidate)
            installed.append(candidate)
        except ImportError:
            pass
    assert name == installed[0] or os.environ.get("MLEDGE_INTERPRETER") == name


def _runtime_in_a_new_process(forced: str) -> subprocess.CompletedProcess:
    from edge.bench import worker_python

    code = "from edge.runtime import get_runtime; print(get_runtime().name)"
    return subprocess.run([*worker_python(), "-c", code], capture_output=True, text=True,
                          env={**os.environ, "MLEDGE_INTERPRETER": forced})


def test_interpreter_override_forces_each_installed_runtime():
    from edge.runtime import CANDIDATES

    forced = 0
    for candidate in CANDIDATES:
        proc = _runtime_in_a_new_process(candidate)
        try:
            __import__(candidate)
        except ImportError:
            assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr  # asked for, not there: no fallback
            continue
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == candidate
        forced += 1
    assert forced >= 1
    unknown = _runtime_in_a_new_process("onnxruntime")
    assert unknown.returncode != 0 and "unknown interpreter 'onnxruntime'" in unknown.stderr
