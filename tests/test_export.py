"""Export: every architecture x every mode converts, the interpreter agrees with Keras, the manifest
describes the files, int8 takes raw uint8 pixels, and a broken RUN leaves no bundle behind.

Tolerances on max |Keras - interpreter| probability (tests/edge/fixtures.TOLERANCE, shared with the edge tests):
- float32 1e-5: the same float graph, only op order differs.
- float16 1e-2: weights rounded to 11-bit mantissas (relative error 5e-4) through 6 layers.
- dynamic 0.02 and int8 (both modes) 0.05: 256 levels per tensor (int8 weights; int8 also quantizes every activation
  over its calibrated range). Logit errors of a few quantization steps, through the sigmoid's slope of at
  most 1/4, stay far below these bounds (measured here: about 1e-3 and 1e-2), which still catch a wrong
  scale, zero point or input range (those give errors of 0.1 to 0.5).
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from edge.bundle import read_manifest, sha256_of
from edge.predictor import Predictor
from export.convert import ExportOptions, export_run
from mledge.cli import main
from tests.edge.fixtures import TOLERANCE
from toolkit.data.arrays import load_arrays
from toolkit.data.dataset import load_split
from toolkit.errors import UserError
from toolkit.predict import predict_run
from toolkit.run import Run

FEW = ["aeroplane", "car", "person"]  # per-class runs export one file per class: three keep this fast


@pytest.fixture(scope="module")
def runs(trained):
    return {"multioutput": trained("multioutput"), "independent": trained("independent", classes=FEW),
            "shared": trained("shared", classes=FEW)}


@pytest.fixture(scope="module")
def val_images(synth_root):
    return load_arrays(load_split(synth_root, "val"), 32).images


def keras_probs(run_path, images):
    return predict_run(Run(run_path), images)


@pytest.mark.parametrize("quant", list(TOLERANCE))
@pytest.mark.parametrize("arch", ["multioutput", "independent", "shared"])
def test_every_architecture_and_mode(runs, val_images, tmp_path, arch, quant):
    out = tmp_path / "bundle"
    manifest = export_run(runs[arch], out, ExportOptions(quant=quant, calib_images=40))
    classes = Run(runs[arch]).config().classes
    assert manifest["quantization"] == quant and manifest["classes"] == classes
    assert len(manifest["files"]) == (1 if arch == "multioutput" else len(classes))
    for entry in manifest["files"]:
        assert sha256_of(out / entry["name"]) == entry["sha256"]
        assert (out / entry["name"]).stat().st_size == entry["bytes"]
    assert (out / "labels.txt").read_text().split() == classes
    assert manifest["input"]["dtype"] == ("uint8" if quant == "int8" else "float32")
    if quant == "int8":
        assert manifest["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}  # raw pixels
    got = Predictor(out).predict_pixels(val_images)
    diff = np.abs(got - keras_probs(runs[arch], val_images)).max()
    assert diff <= TOLERANCE[quant], f"{arch}/{quant}: max |dprob| {diff}"
    assert manifest["evaluation"]["max_abs_prob_diff"] == pytest.approx(diff, abs=1e-6)


def test_cli_offers_every_mode():
    from export.quantize import QUANT_MODES

    quant = next(p for p in main.commands["export"].params if p.name == "quant")
    assert list(quant.type.choices) == list(QUANT_MODES)


def test_int8_float_last_keeps_only_the_logits_layer_in_float(runs, tmp_path):
    """The logits kernel (20 x Dense units) is int8 under int8 and float32 under int8-float-last;
    the convolutions' kernels are int8 under both."""
    def kernels(quant):
        export_run(runs["multioutput"], tmp_path / quant, ExportOptions(quant=quant, calib_images=20))
        details = Predictor(tmp_path / quant).files[0].interpreter.get_tensor_details()
        return {tuple(d["shape"]): np.dtype(d["dtype"]) for d in details if len(d["shape"]) in (2, 4)}

    cfg = Run(runs["multioutput"]).config()
    logits_kernel, conv_kernel = (len(cfg.classes), cfg.model.dense), (cfg.model.conv2, 3, 3, cfg.model.conv2)
    assert kernels("int8")[logits_kernel] == np.int8
    mixed = kernels("int8-float-last")
    assert mixed[logits_kernel] == np.float32 and mixed[conv_kernel] == np.int8


@pytest.mark.parametrize("arch", ["independent", "shared"])
def test_fuse_gives_one_file_with_the_same_predictions(runs, val_images, tmp_path, arch):
    manifest = export_run(runs[arch], tmp_path / "fused", ExportOptions(quant="float32", fuse=True))
    assert len(manifest["files"]) == 1 and manifest["fused"]
    np.testing.assert_allclose(Predictor(tmp_path / "fused").predict_pixels(val_images),
                               keras_probs(runs[arch], val_images), atol=1e-5)


def test_probabilities_output_kind(runs, val_images, tmp_path):
    manifest = export_run(runs["multioutput"], tmp_path / "p", ExportOptions(quant="float32", output="probabilities"))
    assert manifest["output"] == "probabilities"
    np.testing.assert_allclose(Predictor(tmp_path / "p").predict_pixels(val_images),
                               keras_probs(runs["multioutput"], val_images), atol=1e-5)


def test_flip_average_scores_each_photo_with_its_mirror(runs, val_images, tmp_path):
    result = CliRunner().invoke(main, ["export", str(runs["multioutput"]), "--out", str(tmp_path / "f"),
                                       "--flip-average"])
    assert result.exit_code == 0 and "each photo averaged with its mirror" in result.output, result.output
    manifest = read_manifest(tmp_path / "f")
    assert manifest["flip_average"] is True
    mirrored = np.ascontiguousarray(val_images[:, :, ::-1])
    want = (keras_probs(runs["multioutput"], val_images) + keras_probs(runs["multioutput"], mirrored)) / 2
    np.testing.assert_allclose(Predictor(tmp_path / "f").predict_pixels(val_images), want, atol=1e-5)
    assert manifest["evaluation"]["max_abs_prob_diff"] < 1e-5  # Keras was averaged the same way
    plain = Predictor(tmp_path / "f").files[0].invoke(val_images)  # the file alone: one view
    assert np.abs(plain - want).max() > 1e-3


def test_never_overwrites_without_force(runs, tmp_path):
    export_run(runs["multioutput"], tmp_path / "b", ExportOptions())
    with pytest.raises(UserError, match="holds an earlier bundle"):
        export_run(runs["multioutput"], tmp_path / "b", ExportOptions())
    export_run(runs["multioutput"], tmp_path / "b", ExportOptions(quant="dynamic", force=True))
    assert read_manifest(tmp_path / "b")["quantization"] == "dynamic"
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary folders left


def test_every_file_carries_metadata_in_its_sha256(runs, tmp_path):
    from edge.tflite_metadata import read_metadata

    manifest = export_run(runs["independent"], tmp_path / "b", ExportOptions(quant="int8", calib_images=20))
    for entry in manifest["files"]:
        path = tmp_path / "b" / entry["name"]
        meta = read_metadata(path, path.read_bytes())
        assert meta.name.endswith(f": {entry['outputs'][0]}")
        assert meta.archive["labels.txt"].decode().split() == entry["outputs"]
        assert sha256_of(path) == entry["sha256"]


def test_the_runs_own_val_scores_are_not_computed_again(runs, tmp_path, monkeypatch):
    import export.convert

    metrics = json.loads((runs["multioutput"] / "metrics.json").read_text())
    monkeypatch.setattr(export.convert, "run_scorer",
                        lambda *a, **k: lambda images: pytest.fail("Keras scored val again"))
    manifest = export_run(runs["multioutput"], tmp_path / "b", ExportOptions())
    assert manifest["evaluation"]["keras_mAP_area"] == pytest.approx(metrics["mAP_area"], abs=1e-9)


def test_no_metadata_writer_is_one_line_before_converting(runs, tmp_path, monkeypatch):
    """A Python without the writer's package (None in sys.modules makes its import fail) is refused
    before any conversion starts."""
    import export.convert

    monkeypatch.setitem(sys.modules, "flatbuffers", None)
    monkeypatch.delitem(sys.modules, "export.metadata_writer", raising=False)
    monkeypatch.setattr(export.convert, "_convert", lambda *a, **k: pytest.fail("converted before refusing"))
    result = CliRunner().invoke(main, ["export", str(runs["multioutput"]), "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "needs flatbuffers" in result.output and "pip install 'multilabel-edge[train]'" in result.output
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_broken_run_gives_clear_error_and_no_bundle(runs, tmp_path, damage):
    run = tmp_path / "run"
    shutil.copytree(runs["independent"], run)
    model = run / "models" / "car.keras"
    if damage == "missing":
        model.unlink()
    else:
        model.write_bytes(model.read_bytes()[:500])
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 2, result.output
    expected = "training is not finished" if damage == "missing" else "car.keras: cannot load model"
    assert expected in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bundle").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")]


def test_cli_reports_and_max_map_drop(runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(runs["multioutput"]), "--quant", "int8", "--out", str(tmp_path / "a"),
                                  "--calib-images", "20"])
    assert result.exit_code == 0, result.output
    assert "mAP Keras" in result.output and "max |dprob|" in result.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["calibration"] == {"split": "train", "images": 20}
    # a negative allowance cannot be met: export keeps the bundle but exits non-zero
    result = runner.invoke(main, ["export", str(runs["multioutput"]), "--out", str(tmp_path / "b"),
                                  "--max-map-drop", "-100"])
    assert result.exit_code == 1 and "more than --max-map-drop" in result.output
    assert (tmp_path / "b" / "manifest.json").is_file()


def test_mac_count_by_hand():
    from export.convert import count_macs
    from toolkit.models import CNNConfig, build_cnn

    by_hand = (100 * 100 * 9 * 3 * 32      # conv1a, same
               + 98 * 98 * 9 * 32 * 32     # conv1b, valid
               + 49 * 49 * 9 * 32 * 64     # conv2a after the first 2x2 pool
               + 47 * 47 * 9 * 64 * 64     # conv2b, valid
               + 23 * 23 * 64 * 512        # dense on the flattened 23x23x64
               + 512 * 20)                 # logits
    assert count_macs(build_cnn(CNNConfig(), 20)) == by_hand == 240_182_784
