"""The VOC reader on hand-written label files and on the synthetic set, including every error path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mledge.cli import main
from toolkit.data.dataset import load_split
from toolkit.data.voc import VOC_CLASSES, DatasetError
from toolkit.errors import UserError

LABELS = {"kite": {"a": 1, "b": -1, "c": 0}, "pear": {"a": 1, "b": 1, "c": -1}}


def write_voc(root: Path, labels: dict = LABELS, split: str = "train", images: bool = True) -> Path:
    voc = root / "VOC2007"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for name, entries in labels.items():
        (voc / "ImageSets" / "Main" / f"{name}_{split}.txt").write_text(
            "".join(f"{i} {v:2d}\n" for i, v in entries.items()))
    if images:
        for image_id in next(iter(labels.values())):
            Image.new("RGB", (20, 16), (10, 200, 30)).save(voc / "JPEGImages" / f"{image_id}.jpg")
    return root


def test_reads_labels_and_difficult_mask(tmp_path):
    data = load_split(write_voc(tmp_path), "train")
    assert data.classes == ["kite", "pear"]
    assert data.ids == ["a", "b", "c"]
    assert data.labels.to_numpy().tolist() == [[1, 1], [0, 1], [0, 0]]
    assert data.difficult.to_numpy().tolist() == [[False, False], [False, False], [True, False]]


@pytest.mark.parametrize("mode, label, mask", [("ignore", 0, 0), ("positive", 1, 1), ("negative", 0, 1)])
def test_difficult_modes(tmp_path, mode, label, mask):
    y, m = load_split(write_voc(tmp_path), "train").targets(mode)
    assert (y[2, 0], m[2, 0]) == (label, mask)
    assert m[0].tolist() == [1, 1]


def test_accepts_devkit_or_voc2007_folder(tmp_path):
    write_voc(tmp_path)
    assert load_split(tmp_path, "train").root == load_split(tmp_path / "VOC2007", "train").root


def test_synthetic_has_all_classes_and_annotations_agree(synth_root):
    for split in ("train", "val", "test", "trainval"):
        sets = load_split(synth_root, split)
        xml = load_split(synth_root, split, labels="annotations")
        assert sets.classes == list(VOC_CLASSES)
        np.testing.assert_array_equal(sets.labels.to_numpy(), xml.labels.to_numpy())
        np.testing.assert_array_equal(sets.difficult.to_numpy(), xml.difficult.to_numpy())


def _stats(root, *extra):
    return CliRunner().invoke(main, ["data", "stats", str(root), "--split", "train", *extra])


def test_error_missing_root(tmp_path):
    result = _stats(tmp_path / "nope")
    assert result.exit_code == 2
    assert "nope: dataset root does not exist" in result.output
    assert "Traceback" not in result.output


def test_error_missing_class_file(tmp_path):
    write_voc(tmp_path)
    with pytest.raises(DatasetError, match="plum_train.txt: class label file is missing"):
        load_split(tmp_path, "train", classes=["kite", "plum"])


def test_error_no_split(tmp_path):
    write_voc(tmp_path)
    result = CliRunner().invoke(main, ["data", "stats", str(tmp_path), "--split", "val"])
    assert result.exit_code == 2 and "no <class>_val.txt files" in result.output


def test_error_ids_differ(tmp_path):
    write_voc(tmp_path, {"kite": {"a": 1, "b": -1}, "pear": {"a": 1, "z": 1}})
    result = _stats(tmp_path)
    assert result.exit_code == 2
    assert "pear_train.txt: image ids differ from kite_train.txt" in result.output


def test_error_bad_line(tmp_path):
    write_voc(tmp_path, {"kite": {"a": 1}})
    path = tmp_path / "VOC2007/ImageSets/Main/kite_train.txt"
    path.write_text("a 1\nb 2\n")
    result = _stats(tmp_path)
    assert result.exit_code == 2 and "kite_train.txt:2: expected '<id> <1|-1|0>'" in result.output


def test_error_id_without_jpeg(tmp_path):
    write_voc(tmp_path)
    (tmp_path / "VOC2007/JPEGImages/b.jpg").unlink()
    result = _stats(tmp_path)
    assert result.exit_code == 2 and "b.jpg: image listed in split 'train' is missing" in result.output


def test_error_annotations_missing(tmp_path):
    write_voc(tmp_path)
    with pytest.raises(UserError, match="Annotations: --labels annotations needs this folder"):
        load_split(tmp_path, "train", labels="annotations")


def test_a_voc_dataset_missing_a_class_file_is_an_error(tmp_path):
    """Never a quietly smaller class list: VOC's names mean VOC's 20 classes."""
    write_voc(tmp_path, {name: {"a": 1, "b": -1} for name in VOC_CLASSES if name != "bicycle"})
    with pytest.raises(DatasetError, match=r"Main/bicycle_train.txt: class label file is missing \(a VOC dataset"):
        load_split(tmp_path, "train")
    result = _stats(tmp_path)
    assert result.exit_code == 2 and "bicycle_train.txt: class label file is missing" in result.output


def test_other_label_files_are_not_classes_until_added(tmp_path, caplog):
    write_voc(tmp_path, {name: {"a": 1, "b": -1} for name in [*VOC_CLASSES, "giraffe"]})
    assert load_split(tmp_path, "train").classes == list(VOC_CLASSES)
    assert "giraffe_train.txt not taken as classes" in caplog.text and "mledge classes add" in caplog.text


def test_dataset_error_is_one_line(tmp_path):
    with pytest.raises(DatasetError) as err:
        load_split(tmp_path / "missing", "train")
    assert "\n" not in str(err.value)
