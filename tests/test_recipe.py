"""The training recipe's optional parts do what they say: the cosine schedule decays to 0, AdamW
decays weights, --translate shifts the picture, --jitter changes brightness and contrast, and the
val loss is the training loss's own kind."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args
from toolkit.data.arrays import SplitArrays
from toolkit.data.pipeline import Augment, make_dataset

OFF = {"flip": False, "zoom": 0.0, "shear_degrees": 0.0}


def train_cli(synth_root, out, *extra):
    """The trained model with its optimizer: trained in float32, so the saved file is the trained model
    itself (a bfloat16 run, --precision auto on a CPU with AMX, saves a float32 copy without one)."""
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "multioutput", out, "--precision", "float32", *extra))
    assert result.exit_code == 0, result.output
    return keras.models.load_model(out / "models" / "model.keras")


def test_cosine_schedule_reaches_zero_and_constant_stays(synth_root, tmp_path):
    cosine = train_cli(synth_root, tmp_path / "cos", "--epochs", "2", "--schedule", "cosine", "--lr", "0.01")
    steps = 2 * -(-60 // 32)  # 60 training images, batch 32
    assert int(cosine.optimizer.iterations) == steps
    assert isinstance(cosine.optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)
    assert float(cosine.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-7)
    assert float(cosine.optimizer._learning_rate(steps // 2)) == pytest.approx(0.005, rel=1e-4)  # half way: half
    constant = train_cli(synth_root, tmp_path / "const", "--lr", "0.01")
    assert float(constant.optimizer.learning_rate) == pytest.approx(0.01)


def test_weight_decay_means_adamw(synth_root, tmp_path):
    model = train_cli(synth_root, tmp_path / "wd", "--weight-decay", "0.05")
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(0.05)
    assert json.loads((tmp_path / "wd" / "config.json").read_text())["weight_decay"] == 0.05
    plain = train_cli(synth_root, tmp_path / "adam", "--weight-decay", "0")
    assert type(plain.optimizer) is keras.optimizers.Adam


def batch_of(images: np.ndarray, augment: Augment, seed: int = 3) -> np.ndarray:
    arrays = SplitArrays([str(k) for k in range(len(images))], images, np.zeros((len(images), 1), np.float32),
                         np.ones((len(images), 1), np.float32))
    x, _, _ = next(iter(make_dataset(arrays, len(images), training=True, seed=seed, augment=augment)))
    return np.asarray(x)


def centroid(image: np.ndarray) -> np.ndarray:
    weight = image.mean(axis=-1)
    ys, xs = np.indices(weight.shape)
    return np.array([(ys * weight).sum(), (xs * weight).sum()]) / weight.sum()


def test_translate_shifts_within_its_range():
    images = np.zeros((16, 40, 40, 3), np.uint8)
    images[:, 16:24, 16:24] = 255  # a white square in the middle of each image
    out = batch_of(images, Augment(**OFF, translate=0.2))
    shifts = np.array([centroid(o) - centroid(i.astype(np.float32)) for o, i in zip(out, images)])
    assert np.abs(shifts).max() <= 0.2 * 40 + 0.5  # never further than asked
    assert np.abs(shifts).max() > 2  # and the square really moves
    assert len({tuple(np.round(s, 1)) for s in shifts}) > 8  # each image its own shift
    np.testing.assert_array_equal(batch_of(images, Augment(**OFF)), images)  # off: untouched


def test_jitter_changes_brightness_and_contrast_per_image():
    grey = np.full((16, 8, 8, 3), 128, np.uint8)
    out = batch_of(grey, Augment(**OFF, translate=0.0, brightness=0.2, contrast=0.0))
    shift = out - 128.0
    assert np.allclose(shift, shift[:, :1, :1, :1], atol=1e-3)  # brightness: one offset per image
    assert np.abs(shift).max() <= 0.2 * 255 + 1e-3 and np.abs(shift[:, 0, 0, 0]).max() > 5
    stripes = np.zeros((16, 8, 8, 3), np.uint8)
    stripes[:, :, ::2] = 200
    stripes[:, :, 1::2] = 50
    out = batch_of(stripes, Augment(**OFF, translate=0.0, brightness=0.0, contrast=0.3))
    spread = out[:, 0, 0, 0] - out[:, 0, 1, 0]  # 150 before; contrast scales it around the mean
    assert np.all(np.abs(spread / 150 - 1) <= 0.3 + 1e-4) and np.ptp(spread) > 5
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 125.0, atol=1e-3)  # the mean stays


@pytest.mark.parametrize("loss", ["bce", "asl"])
def test_val_loss_is_the_training_loss_kind(synth_root, tmp_path, loss):
    """Under asl the val loss is asl too (it was always BCE before), and history.csv says which."""
    from toolkit.losses import make_loss
    from toolkit.predict import predict_batches
    from toolkit.run import Run
    from toolkit.train.runner import load_training_data

    model = train_cli(synth_root, tmp_path / loss, "--loss", loss, "--no-augment")
    run = Run(tmp_path / loss)
    _, val = load_training_data(run.config(), tmp_path / "cache")
    probs = predict_batches(model, val.images)
    expected = float(make_loss(loss, val.labels, val.mask)(val.labels, probs, sample_weight=val.mask))
    (row,) = [line.split(",") for line in (run.path / "history.csv").read_text().splitlines()[1:]]
    assert row[1] == loss and float(row[4]) == pytest.approx(expected, rel=1e-4)
