"""The tf.data pipeline: shapes, dtypes, ranges, the mask, determinism, bad images."""

from __future__ import annotations

import numpy as np
import pytest

from toolkit.data.arrays import load_arrays
from toolkit.data.dataset import load_split
from toolkit.data.pipeline import Augment, make_dataset
from toolkit.errors import UserError


@pytest.fixture(scope="module")
def arrays(synth_root):
    return load_arrays(load_split(synth_root, "train"), 32)


def test_arrays(arrays):
    assert arrays.images.shape == (60, 32, 32, 3) and arrays.images.dtype == np.uint8
    assert arrays.labels.shape == (60, 20) and set(np.unique(arrays.labels)) <= {0.0, 1.0}
    assert arrays.mask.shape == (60, 20)


def test_batches_shapes_dtypes_ranges(arrays):
    x, y, m = next(iter(make_dataset(arrays, 16, training=True, seed=0, augment=Augment())))
    assert x.shape == (16, 32, 32, 3) and x.dtype.name == "float32"
    assert float(x.numpy().min()) >= 0.0 and float(x.numpy().max()) <= 255.0
    assert y.shape == (16, 20) and m.shape == (16, 20)


def test_eval_order_and_values_unchanged(arrays):
    x, y, m = next(iter(make_dataset(arrays, 60, training=False)))
    np.testing.assert_array_equal(x.numpy(), arrays.images.astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), arrays.labels)
    np.testing.assert_array_equal(m.numpy(), arrays.mask)


def test_mask_marks_difficult(synth_root):
    data = load_split(synth_root, "trainval")
    arrays = load_arrays(data, 16)
    assert data.difficult.to_numpy().any()
    np.testing.assert_array_equal(arrays.mask == 0, data.difficult.to_numpy())


def test_deterministic_for_a_seed_and_augments(arrays):
    def first(seed):
        return next(iter(make_dataset(arrays, 8, training=True, seed=seed, augment=Augment())))[0].numpy()

    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))


def test_mixup_blends_pairs_of_photos_and_their_labels(arrays):
    from toolkit.data.pipeline import mixup_batch

    x, y, m = arrays.images[:6].astype(np.float32), arrays.labels[:6], arrays.mask[:6].copy()
    m[0, 3] = 0  # a difficult label: its pair (the last photo) does not count there either
    mx, my, mm = (t.numpy() for t in mixup_batch(x, y, m, np.array([5, 6], np.int64), 0.4))
    # each example is lam x itself + (1 - lam) x its partner in the reversed batch, one lam for pixels and labels
    checked = 0
    for i in range(6):
        j = 5 - i
        if np.array_equal(y[i], y[j]):
            continue
        checked += 1
        k = int(np.argmax(y[i] != y[j]))
        lam = (my[i, k] - y[j, k]) / (y[i, k] - y[j, k])
        assert 0 <= lam <= 1
        np.testing.assert_allclose(mx[i], lam * x[i] + (1 - lam) * x[j], atol=1e-3)
        np.testing.assert_allclose(my[i], lam * y[i] + (1 - lam) * y[j], atol=1e-5)
    assert checked >= 4 and mm[0, 3] == 0 and mm[5, 3] == 0
    np.testing.assert_array_equal(mm, m * m[::-1])


def test_mixup_changes_each_epoch_and_only_when_training(arrays):
    def first(seed, mixup, training=True):
        return next(iter(make_dataset(arrays, 8, training=training, seed=seed, mixup=mixup)))[1].numpy()

    mixed = first(3, 0.4)
    assert ((mixed > 0) & (mixed < 1)).any()  # blended labels
    np.testing.assert_array_equal(mixed, first(3, 0.4))
    assert set(np.unique(first(3, 0.0))) <= {0.0, 1.0}
    assert set(np.unique(first(3, 0.4, training=False))) <= {0.0, 1.0}


def test_columns_pick_classes(arrays):
    _, y, m = next(iter(make_dataset(arrays, 60, training=False, columns=[14])))
    assert y.shape == (60, 1)
    np.testing.assert_array_equal(y.numpy()[:, 0], arrays.labels[:, 14])


def test_augment_identity_when_off(arrays):
    from toolkit.data.pipeline import affine_batch

    x = arrays.images[:4].astype(np.float32)
    out = affine_batch(x, np.array([1, 2], np.int64), Augment(flip=False, zoom=0.0, shear_degrees=0.0))
    np.testing.assert_allclose(out.numpy(), x, atol=1e-3)


def test_bad_image_error_and_skip(tmp_path, synth_root):
    import shutil

    root = tmp_path / "voc"
    shutil.copytree(synth_root, root)
    data = load_split(root, "train")
    bad = data.paths[3]
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    with pytest.raises(UserError, match=f"{bad.name}: cannot read image"):
        load_arrays(data, 16)
    arrays = load_arrays(data, 16, on_bad_image="skip")
    assert len(arrays.ids) == 59 and data.ids[3] not in arrays.ids


def test_rotation_turns_about_the_centre():
    from toolkit.data.pipeline import affine_batch

    x = np.zeros((8, 31, 31, 3), np.float32)
    x[:, :, 15] = 255.0  # a vertical line through the centre
    still = Augment(flip=False, zoom=0.0, shear_degrees=0.0)
    turned = affine_batch(x, np.array([3, 4], np.int64), Augment(flip=False, zoom=0.0, shear_degrees=0.0,
                                                                  rotate_degrees=90)).numpy()
    np.testing.assert_allclose(turned[:, 15, 15], 255.0, atol=1e-3)  # the centre stays where it was
    column = turned[:, :, 15, 0].mean(axis=1)
    assert (column < 200).sum() >= 6  # the line left its column in (nearly) every image
    np.testing.assert_allclose(affine_batch(x, np.array([3, 4], np.int64), still).numpy(), x, atol=1e-3)
