"""The synthetic dataset: deterministic, VOC-like label statistics, complete layout."""

from __future__ import annotations

import hashlib

import pytest

from toolkit.data.dataset import load_split
from toolkit.data.synth import class_pattern, make_synthetic_voc
from toolkit.data.voc import VOC_CLASSES
from toolkit.errors import UserError


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    a = make_synthetic_voc(tmp_path / "a", images=30, size=32, seed=7)
    b = make_synthetic_voc(tmp_path / "b", images=30, size=32, seed=7)
    c = make_synthetic_voc(tmp_path / "c", images=30, size=32, seed=8)
    assert digest(a) == digest(b) != digest(c)


def test_label_statistics_follow_voc(tmp_path):
    data = load_split(make_synthetic_voc(tmp_path / "d", images=1500, size=24, seed=3), "trainval")
    present = (data.labels.to_numpy() + data.difficult.to_numpy()) > 0
    rate = present.mean(axis=0)
    person, sheep = VOC_CLASSES.index("person"), VOC_CLASSES.index("sheep")
    assert 0.33 < rate[person] < 0.47
    assert 0 < rate[sheep] < 0.04
    assert rate[person] == rate.max()
    per_image = present.sum(axis=1)
    assert per_image.min() >= 1 and per_image.max() <= 4
    bicycle, chair, table = (VOC_CLASSES.index(c) for c in ("bicycle", "chair", "diningtable"))
    assert present[present[:, bicycle], person].mean() > 2 * rate[person] * 0.8  # person rides bicycles
    assert present[present[:, table], chair].mean() > 3 * rate[chair]


def test_layout_and_splits(synth_root):
    voc = synth_root / "VOC2007"
    ids = {s: (voc / "ImageSets/Main" / f"{s}.txt").read_text().split() for s in ("train", "val", "test", "trainval")}
    assert len(ids["train"]) == 60 and len(ids["val"]) == 30 and len(ids["test"]) == 30
    assert set(ids["train"]).isdisjoint(ids["val"]) and set(ids["trainval"]) == set(ids["train"]) | set(ids["val"])
    assert len(list((voc / "JPEGImages").glob("*.jpg"))) == 120
    assert len(list((voc / "Annotations").glob("*.xml"))) == 120


def test_patterns_are_distinct():
    patterns = [class_pattern(k)[:2] for k in range(20)]
    assert len(set(patterns)) == 20


def test_refuses_to_overwrite(tmp_path):
    make_synthetic_voc(tmp_path / "e", images=8, size=16)
    with pytest.raises(UserError, match="holds an earlier dataset"):
        make_synthetic_voc(tmp_path / "e", images=8, size=16)
    make_synthetic_voc(tmp_path / "e", images=10, size=16, force=True)
    assert len(list((tmp_path / "e/VOC2007/JPEGImages").iterdir())) == 10
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left
