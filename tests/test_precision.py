"""--precision: auto picks what the machine computes fast, the run records it, and whatever the
training precision the saved models (and so the bundles) compute in float32."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args
from toolkit.train.precision import BF16_FLAGS, cpu_flags, resolve


def test_cpu_flags_and_auto(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n")
    assert {"amx_bf16", "avx2"} <= cpu_flags(fake)
    assert cpu_flags(tmp_path / "none") == set()
    assert resolve("float16") == "float16"
    expected = "bfloat16" if cpu_flags() & BF16_FLAGS else "float32"  # this machine, no GPU in tests
    assert resolve("auto") == expected


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_training_saves_float32_models(synth_root, tmp_path, precision):
    out = tmp_path / precision
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", out, "--precision", precision))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["precision"] == precision
    model = keras.models.load_model(out / "models" / "model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert all(w.dtype == np.float32 for w in model.get_weights())
    result = CliRunner().invoke(main, ["export", str(out), "--out", str(tmp_path / f"b-{precision}")])
    assert result.exit_code == 0 and "drop +0.00" in result.output, result.output


def test_with_policy_keeps_the_weights():
    from tests.helpers import TINY
    from toolkit.models import build_model
    from toolkit.train.precision import with_policy

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        mixed = build_model(TINY, 5, "m")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    plain = with_policy(mixed)
    assert mixed.layers[2].dtype_policy.name == "mixed_bfloat16" and plain.layers[2].dtype_policy.name == "float32"
    for a, b in zip(mixed.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(plain(x)), np.asarray(mixed(x)), atol=0.05)  # bfloat16's 8-bit mantissa
    half = with_policy(plain, "mixed_bfloat16")  # a saved (float32) model run in 16 bits, as bench-distill's teacher
    assert half.layers[2].dtype_policy.name == "mixed_bfloat16"
    assert half.get_layer("probs").dtype_policy.name == "float32"
    np.testing.assert_allclose(np.asarray(half(x)), np.asarray(mixed(x)), atol=1e-6)
