"""Distillation (--teacher): the loss is the written formula, teacher and student see the same
augmented pixels, each per-class model learns its own class's column, the run records its teacher,
a bundle can teach, photos without labels teach through the teacher alone, and mistakes are one line."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from edge.predictor import sigmoid
from export.convert import ExportOptions, export_run
from mledge.cli import main
from tests.helpers import tiny_cli_args
from toolkit.data.arrays import SplitArrays, Views
from toolkit.data.dataset import load_split
from toolkit.data.pipeline import Augment
from toolkit.data.views import mirrored_logits, render_views, to_logits, view_dataset
from toolkit.losses import DistillLoss, MaskedLoss
from toolkit.run import Run
from toolkit.train.teacher import teacher_threads

FEW = ["aeroplane", "car", "person"]


def bce(t, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


@pytest.mark.parametrize("weight,temperature", [(0.0, 1.0), (0.5, 1.0), (0.7, 3.0), (1.0, 2.0)])
def test_loss_is_the_written_formula(weight, temperature):
    rng = np.random.default_rng(0)
    labels = (rng.random((6, 4)) < 0.3).astype(np.float32)
    mask = np.ones_like(labels)
    mask[4:] = 0  # two unlabelled photos: only the teacher teaches on them
    teacher = rng.random((6, 4)).astype(np.float32)
    probs = rng.uniform(0.02, 0.98, (6, 4)).astype(np.float32)
    loss = DistillLoss("bce", weight=weight, temperature=temperature)
    weights = np.concatenate([mask, np.ones_like(mask)], 1)
    got = float(loss(np.concatenate([labels, teacher], 1), probs, sample_weight=weights))
    hard = bce(labels, probs)[mask > 0].mean()
    student_t = sigmoid((np.log(probs) - np.log(1 - probs)) / temperature)
    want = (1 - weight) * hard + weight * bce(teacher, student_t).mean()
    assert got == pytest.approx(want, rel=1e-4)
    assert float(MaskedLoss("bce")(labels, probs, sample_weight=mask)) == pytest.approx(hard, rel=1e-5)


def test_teacher_and_student_see_the_same_pixels():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    photos = rng.integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    seen = []

    def teacher(pixels):  # a fixed function of the pixels it is shown
        seen.append(pixels.copy())
        return pixels.reshape(len(pixels), -1, 3).mean(axis=1) / 255

    views = render_views(photos, teacher, 16, views=3, augment=Augment(zoom=0.3, shear_degrees=10), seed=0, batch=2)
    assert views.images.shape == (3, 5, 16, 16, 3) and views.logits.shape == (3, 5, 3)
    shown = np.concatenate(seen).reshape(3, 5, 64, 64, 3)
    assert not np.array_equal(shown[0], shown[1])  # each view is augmented anew
    assert not np.array_equal(shown[0], photos)
    for v in range(3):  # the student's view is the teacher's, downscaled; the logits are the teacher's on it
        small = tf.image.resize(shown[v].astype(np.float32), (16, 16), antialias=True).numpy()
        assert np.abs(views.images[v].astype(float) - small).max() <= 1.0  # rounding: the teacher saw uint8
        np.testing.assert_allclose(views.logits[v], to_logits(shown[v].reshape(5, -1, 3).mean(axis=1) / 255),
                                   rtol=1e-5, atol=1e-5)


def test_a_bundle_teacher_uses_the_cores_a_job_may(monkeypatch):
    """An interpreter runs on one thread unless told; a --jobs share (TF_NUM_INTRAOP_THREADS) is kept."""
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    assert teacher_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    assert teacher_threads() == 1


def test_each_class_model_learns_its_own_column():
    rng = np.random.default_rng(2)
    n, c = 10, 4
    pixels = rng.integers(0, 256, (2, n, 8, 8, 3), dtype=np.uint8)
    views = Views(pixels, rng.normal(size=(2, n, c)).astype(np.float32))
    labels = (rng.random((n, c)) < 0.5).astype(np.float32)
    arrays = SplitArrays([str(k) for k in range(n)], views.images[0], labels, np.ones_like(labels), views)
    targets = views.targets(2.0)
    for columns in ([2], None):
        batches = list(view_dataset(arrays, 4, seed=0, temperature=2.0, columns=columns).as_numpy_iterator())
        width = 1 if columns else c
        assert all(y.shape[1] == m.shape[1] == 2 * width for _, y, m in batches)
        x = np.concatenate([b[0] for b in batches]).astype(np.uint8)
        y = np.concatenate([b[1] for b in batches])
        for pixels, row in zip(x, y):  # find the photo and view this row is, check its targets
            v, k = np.argwhere((views.images == pixels).all(axis=(2, 3, 4)))[0]
            cols = columns or list(range(c))
            np.testing.assert_array_equal(row[:width], labels[k, cols])
            np.testing.assert_allclose(row[width:], targets[v, k, cols], rtol=1e-6)


def test_views_without_a_teacher_give_labels_and_one_view_of_each_photo_an_epoch():
    rng = np.random.default_rng(4)
    n, c = 9, 3
    maps = rng.normal(size=(3, n, 2, 2, 4)).astype(np.float16)  # three cached views of each photo
    labels = (rng.random((n, c)) < 0.5).astype(np.float32)
    arrays = SplitArrays([str(k) for k in range(n)], maps[0], labels, np.ones_like(labels), Views(maps))
    ds = view_dataset(arrays, 4, seed=1)
    picked = []
    for _ in range(4):  # epochs
        x, y, m = (np.concatenate(part) for part in zip(*ds.as_numpy_iterator()))
        assert y.shape == m.shape == (n, c) and x.dtype == np.float32
        where = [np.argwhere((maps == row.astype(np.float16)).all(axis=(2, 3, 4)))[0] for row in x]
        assert sorted(k for _, k in where) == list(range(n))  # every photo once an epoch
        np.testing.assert_array_equal(y, labels[[k for _, k in where]])
        picked += [v for v, _ in where]
    assert set(picked) == {0, 1, 2}  # and any of its views


def test_augmented_photos_are_a_fixed_view_of_each_photo():
    from toolkit.data.pipeline import Augment
    from toolkit.data.views import augmented_photos

    photos = np.random.default_rng(5).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    augment = Augment(flip=False, zoom=0.3)
    one = augmented_photos(photos, augment, seed=0, view=1, batch=2)
    assert one.shape == photos.shape and one.dtype == np.uint8
    np.testing.assert_array_equal(one, augmented_photos(photos, augment, seed=0, view=1, batch=2))
    assert not np.array_equal(one, augmented_photos(photos, augment, seed=0, view=2, batch=2))
    assert not np.array_equal(one, photos)
    none = Augment(flip=False, zoom=0.0, shear_degrees=0.0)
    np.testing.assert_array_equal(augmented_photos(photos, none, seed=0, view=1), photos)


def test_a_student_on_cached_maps_learns_the_teachers_mean_on_the_photo_and_its_mirror():
    rng = np.random.default_rng(3)
    photos = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)

    def teacher(pixels):  # looks at the left half only: a mirror changes its mind
        return sigmoid(pixels[:, :, :4].astype(np.float32).mean(axis=(1, 2)) / 40 - 3)

    logits = mirrored_logits(photos, teacher, batch=2)
    want = (teacher(photos) + teacher(photos[:, :, ::-1])) / 2
    assert logits.shape == (1, 5, 3)
    np.testing.assert_allclose(sigmoid(logits[0]), want, rtol=1e-5)
    maps = rng.normal(size=(5, 2, 2, 6)).astype(np.float16)  # what a pretrained prefix cached
    labels = np.ones((5, 3), np.float32)
    arrays = SplitArrays([str(k) for k in range(5)], maps, labels, labels.copy(), Views(maps[None], logits))
    x, y, m = (np.concatenate(part) for part in zip(*view_dataset(arrays, 2, seed=0, temperature=1.0)))
    order = [int(np.argwhere((maps == row.astype(np.float16)).all(axis=(1, 2, 3)))[0, 0]) for row in x]
    assert sorted(order) == list(range(5)) and x.dtype == np.float32
    np.testing.assert_allclose(y[:, 3:], want[order], rtol=1e-5)


@pytest.fixture(scope="module")
def teacher(trained):
    return trained("multioutput")


def distil(synth_root, folder, arch, teacher_path, *extra):
    out = folder / f"student-{arch}"
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, arch, out, "--teacher", str(teacher_path),
                                                    "--teacher-views", "2", *extra))
    assert result.exit_code == 0, result.output
    return out


def test_multioutput_student_records_its_teacher(synth_root, tmp_path, teacher):
    out = distil(synth_root, tmp_path, "multioutput", teacher, "--distill-weight", "0.7", "--temperature", "2")
    record = json.loads((out / "teacher.json").read_text())
    teacher_metrics = json.loads((teacher / "metrics.json").read_text())
    assert record["path"] == str(teacher.resolve()) and record["kind"] == "run"
    assert record["sha256"] == hashlib.sha256((teacher / "models" / "model.keras").read_bytes()).hexdigest()
    assert record["val_mAP_area"] == teacher_metrics["mAP_area"] and record["views"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["teacher"]["weight"] == 0.7 and metrics["teacher"]["temperature"] == 2.0
    assert not (out / "teacher").exists()  # the views are gone once the run is finished
    cfg = Run(out).config()
    assert cfg.distill.teacher == str(teacher.resolve()) and cfg.distill.weight == 0.7
    (model,) = Run(out).load_models()
    assert model.output_shape == (None, 20)
    result = CliRunner().invoke(main, ["train", "--resume", str(out)])  # finished: nothing to teach again
    assert result.exit_code == 0 and "teacher: view" not in result.output and not (out / "teacher").exists()


def test_int8_bundle_teaches_independent_with_unlabeled_photos(synth_root, tmp_path, teacher):
    bundle = tmp_path / "teacher-int8"
    export_run(teacher, bundle, ExportOptions(quant="int8", calib_images=30))
    photos = tmp_path / "unlabeled" / "nested"
    photos.mkdir(parents=True)
    for path in sorted((synth_root / "VOC2007" / "JPEGImages").glob("*.jpg"))[:7]:
        (photos / path.name).write_bytes(path.read_bytes())
    out = distil(synth_root, tmp_path, "independent", bundle, "--classes", ",".join(FEW),
                 "--unlabeled", str(tmp_path / "unlabeled"))
    record = json.loads((out / "teacher.json").read_text())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert record["kind"] == "bundle" and record["val_mAP_area"] == manifest["evaluation"]["bundle_mAP_area"]
    assert record["photos"] == len(load_split(synth_root, "train").ids) + 7  # the training split, then the photos
    assert all(Run(out).is_done(c) for c in FEW)  # --classes: a job array's share of the run
    assert (out / "teacher" / "views.npy").is_file()  # kept for the other classes until the run is finished


@pytest.mark.parametrize("case,args,message", [
    ("not a run", lambda t, tmp: ["--teacher", str(tmp)], "not a finished training run"),
    ("unfinished", lambda t, tmp: ["--teacher", str(tmp / "unfinished")], "training is not finished"),
    ("no photos", lambda t, tmp: ["--teacher", str(t), "--unlabeled", str(tmp)], "no photo"),
    ("no teacher", lambda t, tmp: ["--unlabeled", str(tmp)], "needs a --teacher"),
])
def test_mistakes_are_one_line_and_write_nothing(synth_root, tmp_path, teacher, case, args, message):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((teacher / "config.json").read_text())
    out = tmp_path / "student"
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", out, *args(teacher, tmp_path)))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip() and "no positive image" not in line]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not out.exists()


def test_teacher_with_other_classes_is_refused(synth_root, tmp_path, trained):
    other = trained("multioutput", classes=FEW)
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", tmp_path / "s", "--teacher", str(other)))
    assert result.exit_code == 2 and "does not score" in result.output


def test_a_sweep_reuses_the_teacher_cache(synth_root, tmp_path, teacher):
    cache = tmp_path / "views"
    first = distil(synth_root, tmp_path / "a", "multioutput", teacher, "--teacher-cache", str(cache))
    made = (cache / "views.npy").stat().st_mtime_ns
    second = distil(synth_root, tmp_path / "b", "multioutput", teacher, "--teacher-cache", str(cache),
                    "--distill-weight", "0.9")
    assert (cache / "views.npy").stat().st_mtime_ns == made  # not made again
    assert json.loads((first / "teacher.json").read_text()) == json.loads((second / "teacher.json").read_text())
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", tmp_path / "c", "--teacher",
                                                    str(teacher), "--teacher-cache", str(cache), "--seed", "3"))
    assert result.exit_code == 2 and "made for other settings" in result.output
