"""The streamed path: photos decoded into a memory-mapped cache give the batches that the same
photos in memory give, for the same seed (shuffle, augmentation, mixup); a cache is reused only when
it is whole and made from the same photos; a kill while it is written leaves nothing a resume would
trust."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from toolkit.data.arrays import load_arrays
from toolkit.data.dataset import load_split
from toolkit.data.pipeline import Augment, make_dataset
from toolkit.data.store import Store

REPO = Path(__file__).parents[1]


def batches(arrays, epochs: int = 2, **kwargs) -> list[np.ndarray]:
    ds = make_dataset(arrays, 16, training=True, seed=5, augment=Augment(translate=0.1), mixup=0.4, **kwargs)
    return [t.numpy() for _ in range(epochs) for batch in ds for t in batch]


def mapped(array: np.ndarray) -> bool:
    """Whether the array's memory is a mapped file."""
    import mmap

    while isinstance(array, np.ndarray):
        array = array.base
    return isinstance(array, (mmap.mmap, memoryview)) and isinstance(getattr(array, "obj", array), mmap.mmap)


def test_streamed_and_in_memory_batches_are_identical(synth_root, tmp_path):
    data = load_split(synth_root, "train")
    memory = load_arrays(data, 32)
    streamed = load_arrays(data, 32, store=Store(tmp_path))
    assert mapped(streamed.images) and not mapped(memory.images) and not streamed.images.flags.writeable
    np.testing.assert_array_equal(memory.images, streamed.images)
    assert memory.source == streamed.source
    for a, b in zip(batches(memory), batches(streamed), strict=True):
        np.testing.assert_array_equal(a, b)
    one, other = (next(iter(make_dataset(x, 60, training=True, seed=5))) for x in (memory, streamed))
    # the order is a shuffle of the split (every photo once an epoch), the same on both paths
    assert sorted(one[1].numpy().sum(axis=1)) == sorted(memory.labels.sum(axis=1))
    np.testing.assert_array_equal(one[0].numpy(), other[0].numpy())


def test_the_cache_is_reused_only_for_the_same_photos(synth_root, tmp_path):
    data = load_split(synth_root, "train")
    first = load_arrays(data, 32, store=Store(tmp_path))
    cache = tmp_path / "pixels-train-32-bilinear.npy"
    made = cache.stat().st_mtime_ns
    again = load_arrays(data, 32, store=Store(tmp_path))
    assert cache.stat().st_mtime_ns == made and again.source == first.source
    os.utime(data.paths[0], ns=(time.time_ns(), time.time_ns()))  # a photo replaced in place
    changed = load_arrays(data, 32, store=Store(tmp_path))
    assert cache.stat().st_mtime_ns != made and changed.source != first.source
    assert not list(tmp_path.glob(".*tmp"))


def test_unreadable_photos_are_left_out_of_the_cache(synth_root, tmp_path):
    data = load_split(synth_root, "train")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    data.paths[3] = broken
    memory = load_arrays(data, 16, on_bad_image="skip")
    for _ in range(2):  # made, then read back
        streamed = load_arrays(data, 16, on_bad_image="skip", store=Store(tmp_path / "cache"))
        assert streamed.ids == memory.ids and len(streamed.ids) == len(data.ids) - 1
        np.testing.assert_array_equal(streamed.images, memory.images)
        np.testing.assert_array_equal(streamed.labels, memory.labels)


KILLED_WRITER = """
import sys, time
import numpy as np
from toolkit.data.store import Store
with Store(sys.argv[1]).create("pixels", "k", (64, 1000, 1000, 3), np.uint8) as out:
    out[0] = 1
    print("writing", flush=True)
    time.sleep(60)
"""


def test_two_sets_joined_in_the_store_are_the_two_in_memory(synth_root, tmp_path, monkeypatch):
    """train + val (a final run) copied into one mapped file a chunk at a time, the chunk smaller
    than either part and not dividing it."""
    import toolkit.data.arrays

    monkeypatch.setattr(toolkit.data.arrays, "CHUNK", 7)
    store = Store(tmp_path / "cache")
    train, val = (load_arrays(load_split(synth_root, split), 32, store=store) for split in ("train", "val"))
    joined = train.concat(val, store)
    assert mapped(joined.images) and joined.total == len(train.ids) + len(val.ids)
    np.testing.assert_array_equal(joined.images, np.concatenate([train.images, val.images]))
    np.testing.assert_array_equal(joined.labels, np.concatenate([train.labels, val.labels]))
    assert joined.ids == train.ids + val.ids


def test_a_kill_while_the_cache_is_written_leaves_no_trusted_cache(tmp_path):
    store = Store(tmp_path)
    with store.create("pixels", "k", (4, 2), np.uint8) as out:  # a finished cache of the same name first
        out[:] = 7
    assert store.load("pixels", "k") is not None
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.load("pixels", "k") is None  # its key went first: the earlier cache is not trusted either
    assert list(tmp_path.glob(".pixels.npy.*.tmp"))  # the half file is there, under its temporary name
    with store.create("pixels", "k", (4, 2), np.uint8) as out:  # made again; the dead writer's file goes
        out[:] = 9
    array, _ = store.load("pixels", "k")
    assert (array == 9).all() and not list(tmp_path.glob(".pixels.npy.*.tmp"))


def test_a_failure_while_the_cache_is_written_removes_it(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.create("maps", "k", (8, 3), np.float16) as out:
        out[:4] = 1
        raise RuntimeError("the prefix failed")
    assert store.load("maps", "k") is None and not list(tmp_path.iterdir())


def test_a_resumed_run_reuses_its_decoded_photos_and_maps(synth_root, cache_env, tmp_path):
    """A run not yet finished (one class of an independent run trained) keeps RUN/cache; the next
    process of the run takes the photos and the frozen prefix's maps from it, untouched."""
    from click.testing import CliRunner

    from mledge.cli import main

    out = tmp_path / "run"
    first = CliRunner().invoke(main, ["train", str(synth_root), "--arch", "independent", "--backbone",
                                      "efficientnet-lite0", "--img-size", "64", "--out", str(out), "--epochs", "1",
                                      "--patience", "0", "--precision", "float32", "--classes", "car"])
    assert first.exit_code == 0, first.output
    assert "TFLite float32 on XNNPACK" in first.output  # the maps were computed
    made = {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.npy")}
    assert sorted(name.split("-")[0] + "-" + name.split("-")[1].removesuffix(".npy") for name in made) == \
        ["maps-train", "maps-val", "pixels-train", "pixels-val"]
    second = CliRunner().invoke(main, ["train", "--resume", str(out), "--classes", "person"])
    assert second.exit_code == 0, second.output
    assert "cached earlier" in second.output and "2 of 20 model(s) done" in second.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.npy")} == made
