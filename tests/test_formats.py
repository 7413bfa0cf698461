"""Your own photos: the same synthetic photos in VOC, CSV and COCO layouts give the same labels,
the same trained weights, evaluation and bundles; conversions round-trip; bad data is one line that
names the file and the row (or the annotation)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args
from toolkit.data.dataset import load_split
from toolkit.data.voc import VOC_CLASSES

REPO = Path(__file__).parents[1]

LAYOUTS = ("voc", "csv", "coco")


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    base = tmp_path_factory.mktemp("layouts")
    for layout in LAYOUTS:
        result = cli("data", "synth", base / layout, "--images", "120", "--size", "48", "--seed", "1",
                     "--format", layout)
        assert result.exit_code == 0, result.output
    return {layout: base / layout for layout in LAYOUTS}


def matrix(root, split, fmt="auto"):
    data = load_split(root, split, fmt=fmt)
    order = np.argsort([Path(p).stem for p in data.paths])
    return data.classes, data.labels.to_numpy()[order], data.difficult.to_numpy()[order], [data.paths[k] for k in order]


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_three_layouts_give_identical_labels(layouts, split):
    classes, labels, unknown, paths = matrix(layouts["voc"], split)
    assert classes == list(VOC_CLASSES) and (unknown.any() or split != "train")  # difficult labels too
    for layout in ("csv", "coco"):
        other = matrix(layouts[layout], split)
        assert other[0] == classes
        np.testing.assert_array_equal(other[1], labels)
        np.testing.assert_array_equal(other[2], unknown)
        assert [p.read_bytes() for p in other[3][:5]] == [p.read_bytes() for p in paths[:5]]


def test_seeded_training_is_identical_on_every_layout(layouts, tmp_path):
    import keras

    weights, maps, bundles = {}, {}, {}
    for layout, root in layouts.items():
        out = tmp_path / layout
        result = cli(*tiny_cli_args(root, "multioutput", out))
        assert result.exit_code == 0, result.output
        assert json.loads((out / "config.json").read_text())["format"] == layout  # the run records it
        weights[layout] = keras.models.load_model(out / "models" / "model.keras", compile=False).get_weights()
        maps[layout] = json.loads((out / "metrics.json").read_text())["mAP_area"]
        result = cli("export", out, "--out", tmp_path / f"b-{layout}")
        assert result.exit_code == 0, result.output
        bundles[layout] = hashlib.sha256((tmp_path / f"b-{layout}" / "model.tflite").read_bytes()).hexdigest()
    for layout in ("csv", "coco"):
        assert all(np.array_equal(a, b) for a, b in zip(weights["voc"], weights[layout])), layout
        assert maps[layout] == maps["voc"] and bundles[layout] == bundles["voc"]
    evaluations = [json.loads(cli("evaluate", tmp_path / layout, "--split", "test", "--format", "json").stdout)
                   for layout in LAYOUTS]
    assert evaluations[0]["mAP_area"] == evaluations[1]["mAP_area"] == evaluations[2]["mAP_area"]
    rows = {layout: json.loads(cli("edge", "bench", tmp_path / f"b-{layout}", "--data", layouts[layout], "--split",
                                   "test", "--runs", "3", "--json").stdout)[0] for layout in LAYOUTS}
    assert rows["voc"]["mAP"] == rows["csv"]["mAP"] == rows["coco"]["mAP"]
    assert rows["voc"]["mAP"] == pytest.approx(evaluations[0]["mAP_area"], abs=1e-4)


def test_voc_csv_coco_csv_round_trip(layouts, tmp_path):
    steps = [(layouts["voc"], tmp_path / "a", "csv"), (tmp_path / "a", tmp_path / "b", "coco"),
             (tmp_path / "b", tmp_path / "c", "csv")]
    for source, dest, to in steps:
        result = cli("data", "convert", source, dest, "--to", to)
        assert result.exit_code == 0, result.output
    for split in ("train", "val", "test", "trainval"):
        first, last = matrix(layouts["voc"], split), matrix(tmp_path / "c", split)
        np.testing.assert_array_equal(first[1], last[1])
        np.testing.assert_array_equal(first[2], last[2])
    assert (tmp_path / "a" / "train.csv").read_text() == (tmp_path / "c" / "train.csv").read_text()


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


@pytest.fixture
def photos(layouts, tmp_path):
    """A folder with six of the synthetic photos, for hand-written CSV and COCO files."""
    folder = tmp_path / "data" / "photos"
    folder.mkdir(parents=True)
    for path in sorted((layouts["csv"] / "images").iterdir())[:6]:
        shutil.copy(path, folder / path.name)
    return tmp_path / "data", sorted(p.name for p in folder.iterdir())


def test_csv_labels_column_one_file_and_classes_file(photos, tmp_path):
    root, names = photos
    write_csv(root / "all.csv", [["filename", "tags", "split"],
                                 [f"photos/{names[0]}", "dog cat", "train"],
                                 [f"photos/{names[1]}", "cat,bird", "train"],
                                 [f"photos/{names[2]}", "", "train"], [f"photos/{names[3]}", "dog; bird", "val"]])
    data = load_split(root / "all.csv", "train")
    assert data.classes == ["bird", "cat", "dog"]  # sorted names
    assert data.labels.to_numpy().tolist() == [[0, 1, 1], [1, 1, 0], [0, 0, 0]]
    (tmp_path / "order.txt").write_text("dog\ncat\nbird\n")
    ordered = load_split(root / "all.csv", "val", classes_file=str(tmp_path / "order.txt"))
    assert ordered.classes == ["dog", "cat", "bird"] and ordered.labels.to_numpy().tolist() == [[1, 0, 1]]


def test_csv_one_hot_with_unknowns(photos):
    root, names = photos
    write_csv(root / "train.csv", [["image", "sky", "sea"], [f"photos/{names[0]}", "1", "-1"],
                                   [f"photos/{names[1]}", "0", ""], [f"photos/{names[1]}", "0", ""]])
    data = load_split(root, "train")
    assert data.classes == ["sky", "sea"] and len(data.ids) == 2  # the repeated identical row counts once
    assert data.labels.to_numpy().tolist() == [[1, 0], [0, 0]]
    assert data.difficult.to_numpy().tolist() == [[False, True], [False, True]]


def test_roboflow_coco_layout_and_unused_categories(photos, caplog):
    root, names = photos
    for split, picked in (("train", names[:3]), ("valid", names[3:5])):
        (root / split).mkdir()
        images = [{"id": k, "file_name": n, "width": 48, "height": 48} for k, n in enumerate(picked)]
        for name in picked:
            shutil.copy(root / "photos" / name, root / split / name)
        annotations = [{"id": 1, "image_id": 0, "category_id": 2, "bbox": [0, 0, 5, 5]},
                       {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}]
        categories = [{"id": 0, "name": "objects"}, {"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
        (root / split / "_annotations.coco.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
    train, val = load_split(root, "train"), load_split(root, "val")  # "val" finds Roboflow's "valid"
    assert train.classes == ["cat", "dog"] and train.format == "coco"
    assert train.labels.to_numpy().tolist() == [[0, 1], [1, 0], [0, 0]]  # no annotation: all negative
    assert len(val.ids) == 2
    assert "categories no annotation uses are not classes: objects" in caplog.text


BAD = {  # (file name, content) -> what the one line must say
    "missing image": ("train.csv", "image,sky\nphotos/nope.jpg,1\n",
                      "nope.jpg: image listed in split 'train' is missing"),
    "outside": ("train.csv", "image,sky\n../elsewhere.jpg,1\n", "train.csv:2: image '../elsewhere.jpg' points outside"),
    "bad value": ("train.csv", "image,sky\nphotos/{0},yes\n",
                  "train.csv:2: column 'sky': 'yes' is not 1, 0, -1 or blank"),
    "twice": ("train.csv", "image,sky\nphotos/{0},1\nphotos/{0},0\n",
              "train.csv:3: photos/{0} is listed again with other"),
    "empty": ("train.csv", "image,sky\n", "train.csv: split 'train' is empty"),
    "no image column": ("train.csv", "picture,sky\nphotos/{0},1\n", "train.csv: no image column"),
    "unknown image": ("annotations/instances_train.json", {"images": [{"id": 1, "file_name": "{0}"}], "annotations":
                      [{"id": 7, "image_id": 9, "category_id": 1}], "categories": [{"id": 1, "name": "sky"}]},
                      "instances_train.json: annotation 7: unknown image_id 9"),
    "unknown category": ("annotations/instances_train.json", {"images": [{"id": 1, "file_name": "{0}"}],
                         "annotations": [{"id": 8, "image_id": 1, "category_id": 5}],
                         "categories": [{"id": 1, "name": "sky"}]}, "instances_train.json: annotation 8: unknown"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_is_one_line_naming_file_and_row(photos, case):
    root, names = photos
    name, content, message = BAD[case]
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, dict):
        shutil.copytree(root / "photos", root / "images" / "train")
        content = json.dumps(content).replace("{0}", names[0])
    path.write_text(content.replace("{0}", names[0]))
    result = cli("data", "stats", root, "--split", "train")
    assert result.exit_code == 2 and result.output.count("\n") <= 2, result.output  # a warning line at most
    assert message.replace("{0}", names[0]) in result.output


def test_a_class_without_training_positives_is_warned(photos, tmp_path):
    root, names = photos
    write_csv(root / "train.csv", [["image", "sky", "sea"], *[[f"photos/{n}", "1", "0"] for n in names[:4]]])
    write_csv(root / "val.csv", [["image", "sky", "sea"], *[[f"photos/{n}", "0", "1"] for n in names[4:]]])
    # in a process of its own: Python prints an unhandled log warning to the real stderr (not under pytest)
    args = map(str, tiny_cli_args(root, "multioutput", tmp_path / "run"))
    result = subprocess.run([sys.executable, "-m", "mledge", *args], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning: split 'train' has no positive image of sea: its AP is undefined" in result.stderr
    assert result.stderr.count("no positive image") == 1, result.stderr


def test_split_is_stratified_and_complete(layouts, tmp_path):
    result = cli("data", "split", layouts["voc"], "--split", "trainval", "--out", tmp_path / "s",
                 "--val-fraction", "0.25", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "val_share" in result.output and "person" in result.output
    whole = load_split(layouts["voc"], "trainval")
    train, val = load_split(tmp_path / "s", "train"), load_split(tmp_path / "s", "val")
    assert len(train.ids) + len(val.ids) == len(whole.ids)
    assert not {Path(i).name for i in train.ids} & {Path(i).name for i in val.ids}
    positives = whole.labels.to_numpy().sum(axis=0)
    share = val.labels.to_numpy().sum(axis=0) / np.maximum(positives, 1)
    assert np.all(np.abs(share[positives >= 8] - 0.25) <= 0.13), share  # each class divided as asked


def test_classes_add_on_a_csv_dataset_takes_a_new_column(photos, tmp_path):
    root, names = photos
    rows = [[f"photos/{n}", str(k % 2), str((k + 1) % 2), str(int(k < 3))] for k, n in enumerate(names)]
    write_csv(root / "train.csv", [["image", "sky", "sea", "sand"], *rows[:4]])
    write_csv(root / "val.csv", [["image", "sky", "sea", "sand"], *rows[4:]])
    (tmp_path / "two.txt").write_text("sky\nsea\n")
    args = tiny_cli_args(root, "independent", tmp_path / "run", "--classes-file", tmp_path / "two.txt")
    assert cli(*args).exit_code == 0
    result = cli("classes", "add", tmp_path / "run", "sand", root)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["classes"] == ["sky", "sea", "sand"]
