"""Adding a 21st class, retraining one class with its own settings, listing classes."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from edge import Predictor
from export.convert import ExportOptions, export_run
from mledge.cli import main
from toolkit.data.dataset import load_split
from toolkit.data.voc import VOC_CLASSES

FEW = ["aeroplane", "car", "person"]


def digests(run) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (run / "models").glob("*.keras")}


@pytest.fixture
def kite_root(synth_root, tmp_path):
    """A folder holding only the new class's label files: kite = aeroplane or bird (things in the sky)."""
    main_dir = tmp_path / "kite" / "VOC2007" / "ImageSets" / "Main"
    main_dir.mkdir(parents=True)
    for split in ("train", "val", "test"):
        data = load_split(synth_root, split, classes=["aeroplane", "bird"])
        positive = data.labels.any(axis=1)
        (main_dir / f"kite_{split}.txt").write_text("".join(f"{i} {1 if p else -1}\n" for i, p in positive.items()))
    return tmp_path / "kite"


def copy_run(run, tmp_path, name="run"):
    shutil.copytree(run, tmp_path / name)
    return tmp_path / name


def test_add_21st_class_to_shared(trained, kite_root, tmp_path):
    run = copy_run(trained("shared"), tmp_path)
    before = digests(run)
    result = CliRunner().invoke(main, ["classes", "add", str(run), "kite", str(kite_root)])
    assert result.exit_code == 0, result.output
    assert "added kite as class 21" in result.output
    after = digests(run)
    assert set(after) == set(before) | {"kite.keras"}
    assert all(after[name] == digest for name, digest in before.items())  # the 20 others: byte-identical
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == [*VOC_CLASSES, "kite"]
    assert len(json.loads((run / "thresholds.json").read_text())["thresholds"]) == 21
    # the new head sits on the same frozen trunk
    import keras

    kite = keras.models.load_model(run / "models" / "kite.keras", compile=False)
    first = keras.models.load_model(run / "models" / "aeroplane.keras", compile=False)
    np.testing.assert_array_equal(kite.get_layer("conv1a").get_weights()[0], first.get_layer("conv1a").get_weights()[0])
    assert not kite.get_layer("conv1a").trainable

    manifest = export_run(run, tmp_path / "bundle", ExportOptions(quant="float32", fuse=True))
    assert len(manifest["classes"]) == 21 and len(manifest["thresholds"]) == 21
    predictor = Predictor(tmp_path / "bundle")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
    assert predictor.predict_pixels(pixels).shape == (2, 21)
    table = CliRunner().invoke(main, ["classes", "list", str(run)])
    assert table.exit_code == 0 and "kite" in table.output


def test_add_class_to_independent(trained, kite_root, tmp_path):
    run = copy_run(trained("independent", classes=FEW), tmp_path)
    before = digests(run)
    result = CliRunner().invoke(main, ["classes", "add", str(run), "kite", str(kite_root)])
    assert result.exit_code == 0, result.output
    after = digests(run)
    assert {k: after[k] for k in before} == before and "kite.keras" in after
    manifest = export_run(run, tmp_path / "b", ExportOptions(quant="int8", calib_images=20))
    assert [f["outputs"] for f in manifest["files"]] == [["aeroplane"], ["car"], ["person"], ["kite"]]
    assert Predictor(tmp_path / "b").predict_pixels(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 4)


def test_multioutput_refuses_cleanly(trained, kite_root):
    run = trained("multioutput")
    before = (run / "config.json").read_text()
    result = CliRunner().invoke(main, ["classes", "add", str(run), "kite", str(kite_root)])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "multioutput model has one output layer for all classes" in result.output
    assert "mledge train" in result.output
    assert (run / "config.json").read_text() == before


def test_add_errors(trained, kite_root, tmp_path):
    run = copy_run(trained("independent", classes=FEW), tmp_path)
    runner = CliRunner()
    assert "already in this run" in runner.invoke(main, ["classes", "add", str(run), "car", str(kite_root)]).output
    result = runner.invoke(main, ["classes", "add", str(run), "dragon", str(kite_root)])
    assert result.exit_code == 2 and "dragon_train.txt: class label file is missing" in result.output
    assert json.loads((run / "config.json").read_text())["classes"] == FEW


def test_retrain_one_class_with_its_own_settings(trained, tmp_path):
    run = copy_run(trained("independent", classes=FEW), tmp_path)
    before = digests(run)
    result = CliRunner().invoke(main, ["classes", "retrain", str(run), "car", "--epochs", "2", "--lr", "0.003",
                                       "--loss", "focal"])
    assert result.exit_code == 0, result.output
    after = digests(run)
    assert after["car.keras"] != before["car.keras"]
    assert after["aeroplane.keras"] == before["aeroplane.keras"] and after["person.keras"] == before["person.keras"]
    config = json.loads((run / "config.json").read_text())
    assert config["class_settings"] == {"car": {"epochs": 2, "lr": 0.003, "loss": "focal"}}
    record = json.loads((run / "models" / "car.json").read_text())
    assert record["epochs"] == 2 and record["settings"]["loss"] == "focal"
    status = CliRunner().invoke(main, ["runs", "status", str(run), "--format", "json"])
    rows = {r["unit"]: r for r in json.loads(status.output)}
    assert rows["car"]["settings"] == "epochs=2, lr=0.003, loss=focal"
    assert rows["person"]["settings"] == "run defaults" and rows["person"]["status"] == "done"
    assert all(r["threshold"] is not None for r in rows.values())


def test_retrain_one_class_at_its_own_input_size(trained, tmp_path):
    import keras

    from toolkit.models import work_size

    run = copy_run(trained("independent", classes=FEW), tmp_path)
    before = digests(run)
    result = CliRunner().invoke(main, ["classes", "retrain", str(run), "car", "--img-size", "20"])
    assert result.exit_code == 0, result.output
    after = digests(run)
    assert after["car.keras"] != before["car.keras"]
    assert {k: after[k] for k in ("aeroplane.keras", "person.keras")} == {
        k: before[k] for k in ("aeroplane.keras", "person.keras")}
    car = keras.models.load_model(run / "models" / "car.keras", compile=False)
    assert car.input_shape[1:] == (32, 32, 3) and work_size(car) == 20  # the run's pixels, resized in the graph
    assert json.loads((run / "models" / "car.json").read_text())["settings"]["img_size"] == 20
    rows = {r["unit"]: r for r in json.loads(CliRunner().invoke(
        main, ["runs", "status", str(run), "--format", "json"]).output)}
    assert rows["car"]["settings"] == "img_size=20"

    # every file of the bundle still takes 32x32 pixels; the device gives what Keras gives
    manifest = export_run(run, tmp_path / "b", ExportOptions(quant="float32"))
    assert manifest["input"]["height"] == 32
    assert manifest["evaluation"]["max_abs_prob_diff"] < 1e-4
    fused = export_run(run, tmp_path / "fused", ExportOptions(quant="float32", fuse=True))
    pixels = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    np.testing.assert_allclose(Predictor(tmp_path / "fused").predict_pixels(pixels),
                               Predictor(tmp_path / "b").predict_pixels(pixels), atol=1e-5)
    assert len(fused["files"]) == 1
    int8 = export_run(run, tmp_path / "int8", ExportOptions(quant="int8", calib_images=20))
    assert abs(int8["evaluation"]["bundle_mAP_area"] - int8["evaluation"]["keras_mAP_area"]) < 0.1


def test_shared_class_at_its_own_size_keeps_the_trunk_and_cannot_fuse(trained, tmp_path):
    import keras

    from toolkit.models import work_size

    run = copy_run(trained("shared", classes=FEW), tmp_path)
    result = CliRunner().invoke(main, ["classes", "retrain", str(run), "person", "--img-size", "40"])
    assert result.exit_code == 0, result.output
    person = keras.models.load_model(run / "models" / "person.keras", compile=False)
    first = keras.models.load_model(run / "models" / "aeroplane.keras", compile=False)
    assert work_size(person) == 40 and work_size(first) == 32
    np.testing.assert_array_equal(person.get_layer("conv2b").get_weights()[0],
                                  first.get_layer("conv2b").get_weights()[0])
    assert not person.get_layer("conv2b").trainable
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(tmp_path / "b"), "--fuse"])
    assert result.exit_code == 2 and "work at 32, 40 px" in result.output and not (tmp_path / "b").exists()
    small = CliRunner().invoke(main, ["classes", "retrain", str(run), "car", "--img-size", "6"])
    assert small.exit_code == 2 and "at least 10 pixels" in small.output
