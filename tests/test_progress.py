"""Long work says how far it is: photos a second and the time left; short work says nothing."""

from __future__ import annotations

import re

from toolkit.progress import QUIET_BELOW, Progress, is_progress


def test_long_work_reports_its_rate_and_the_time_left(capsys):
    progress = Progress("decoding train", 4 * QUIET_BELOW, every=0)
    for _ in range(QUIET_BELOW):
        progress.update(2)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) > 1
    assert re.fullmatch(r"decoding train: 2/4,000 photos, [\d,]+/s, [\d,]+ s left", lines[0])
    assert re.fullmatch(r"decoding train: 2,000 photos in [\d.,]+ s \([\d,]+/s\)", lines[-1])


def test_short_work_says_nothing(capsys):
    progress = Progress("decoding val", QUIET_BELOW - 1, every=0)
    for _ in range(QUIET_BELOW - 1):
        progress.update()
    progress.close()
    assert capsys.readouterr().err == ""


def test_an_epoch_reports_its_photos_as_its_batches_end(capsys):
    """Keras' own line comes only when an epoch ends; ours come while it runs, the last batch short."""
    import keras
    import numpy as np

    from toolkit.train.loop import EpochProgress

    photos = 2 * QUIET_BELOW + 50
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((photos, 4), np.float32)
    progress = EpochProgress("multioutput", photos, 500, every=0)
    model.fit(x, x[:, :1], batch_size=500, epochs=2, verbose=0, callbacks=[progress])
    lines = capsys.readouterr().err.splitlines()
    running = re.compile(r"multioutput epoch 1/2: ([\d,]+)/2,050 photos, [\d,]+/s, [\d,]+ s left")
    assert [running.fullmatch(line).group(1) for line in lines[:4]] == ["500", "1,000", "1,500", "2,000"]
    assert re.fullmatch(r"multioutput epoch 1/2: 2,050 photos in [\d.,]+ s \([\d,]+/s\)", lines[4])
    assert re.fullmatch(r"multioutput epoch 2/2: 500/2,050 photos, [\d,]+/s, [\d,]+ s left", lines[5])
    assert is_progress(lines[5]) and len(lines) == 10
