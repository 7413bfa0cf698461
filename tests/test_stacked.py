"""--stack: per-class models trained side by side in one Keras model (toolkit/train/stacked.py)."""

from __future__ import annotations

import json

import keras
import numpy as np
from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args, tiny_config
from tests.test_train import _kill_when, _train_process, check_complete
from toolkit.config import TrainConfig
from toolkit.data.arrays import SplitArrays
from toolkit.run import Run
from toolkit.train.checkpoint import StackCheckpoint, UnitState
from toolkit.train.loop import Unit, optimizer, unit_loss
from toolkit.train.stacked import narrow, stack_model

CLASSES = ["aeroplane", "car", "person"]


class DenseOnly:
    """A factory of small Dense models without dropout: their training is deterministic."""

    def build(self, unit: Unit) -> keras.Model:
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(6, activation="relu", name="dense")(inputs)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="logits")(hidden),
                           name=unit.model_name)

    def finish(self, unit: Unit, model: keras.Model) -> keras.Model:
        return model


def test_a_branch_learns_what_it_would_learn_alone(synth_root):
    """The summed per-branch losses and Adam's per-weight updates keep the branches independent: each
    stacked branch ends with the weights its model reaches trained alone on the same batches (masks too)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    labels = (rng.random((64, 3)) < 0.4).astype(np.float32)
    mask = (rng.random((64, 3)) < 0.8).astype(np.float32)
    train = SplitArrays([str(k) for k in range(64)], x, labels, mask)
    cfg = TrainConfig(root=str(synth_root), arch="independent", classes=CLASSES, lr=0.01)
    units = [Unit(name, name, name, 1, [k], cfg, k) for k, name in enumerate(CLASSES)]
    keras.utils.set_random_seed(1)
    stacked = stack_model(units, DenseOnly(), train, trunk=None)
    alone = [keras.models.clone_model(stacked.get_layer(u.name)) for u in units]
    for unit, model in zip(units, alone):
        model.set_weights(stacked.get_layer(unit.name).get_weights())
    stacked.compile(optimizer=keras.optimizers.Adam(0.01), loss=[unit_loss(u, train) for u in units])
    cols = [slice(k, k + 1) for k in range(3)]
    stacked.fit(x, [labels[:, c] for c in cols], sample_weight=[mask[:, c] for c in cols], batch_size=16,
                epochs=3, shuffle=False, verbose=0)
    for unit, model, c in zip(units, alone, cols):
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss=unit_loss(unit, train))
        model.fit(x, labels[:, c], sample_weight=mask[:, c], batch_size=16, epochs=3, shuffle=False, verbose=0)
        for a, b in zip(model.get_weights(), stacked.get_layer(unit.name).get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(alone[0].get_weights()[0], alone[1].get_weights()[0])


def test_a_stack_without_its_stopped_branch_goes_on_as_before(synth_root, tmp_path):
    """Leaving out a stopped branch changes nothing for the others: after more epochs they hold the
    weights the whole stack reaches (Adam's moments and the cosine schedule's step carried over),
    also when the narrowed stack is reloaded from its checkpoint, as a resume does."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    labels = (rng.random((64, 3)) < 0.4).astype(np.float32)
    train = SplitArrays([str(k) for k in range(64)], x, labels, np.ones_like(labels))
    cfg = TrainConfig(root=str(synth_root), arch="independent", classes=CLASSES, lr=0.01, epochs=8,
                      batch=16, schedule="cosine")
    units = [Unit(name, name, name, 1, [k], cfg, k) for k, name in enumerate(CLASSES)]
    losses = [unit_loss(u, train) for u in units]
    keras.utils.set_random_seed(1)
    whole = stack_model(units, DenseOnly(), train, trunk=None)
    whole.compile(optimizer=optimizer(cfg, 64), loss=losses)

    def fit(model, columns, epochs):
        model.fit(x, [labels[:, [k]] for k in columns], batch_size=16, epochs=epochs, shuffle=False, verbose=0)

    fit(whole, [0, 1, 2], 2)
    run = Run(tmp_path / "run")
    states = {u.name: UnitState(epoch=2) for u in units}
    states["car"].stopped = True
    ckpt = StackCheckpoint.of(run, CLASSES)
    ckpt.save(whole, states, {u.name: whole.get_layer(u.name) for u in units}, CLASSES)
    twin = ckpt.load()[0]
    narrowed, kept, _, new = narrow(run, twin, units, states, losses, ckpt, CLASSES, 64)
    assert [u.name for u in kept] == ["aeroplane", "person"] and not ckpt.folder.exists()
    assert new.data()["units"] == ["aeroplane", "person"] and new.group() == CLASSES
    assert len(narrowed.trainable_variables) == 2 * len(whole.trainable_variables) // 3

    def same(model):
        for name in ("aeroplane", "person"):
            for a, b in zip(whole.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    fit(whole, [0, 1, 2], 2)
    fit(narrowed, [0, 2], 2)
    same(narrowed)
    new.save(narrowed, {n: states[n] for n in ("aeroplane", "person")}, {}, CLASSES)
    resumed = new.load()[0]
    fit(whole, [0, 1, 2], 1)
    fit(resumed, [0, 2], 1)
    same(resumed)


def test_stacked_models_are_the_per_class_files_of_one_by_one(trained):
    """Stacked or not, each class is the same kind of file: a whole CNN with one output."""
    stacked = check_complete(trained("independent", classes=CLASSES, stack=3), units=3, classes=3)
    alone = check_complete(trained("independent", classes=CLASSES, stack=1), units=3, classes=3)
    for name in CLASSES:
        a, b = (keras.models.load_model(run.model_path(name), compile=False) for run in (stacked, alone))
        assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
        assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]
        assert a.output_shape == b.output_shape == (None, 1)
        assert stacked.record(name)["stacked_with"] == CLASSES and "stacked_with" not in alone.record(name)
    heads = [keras.models.load_model(stacked.model_path(n), compile=False).get_layer("logits").get_weights()[0]
             for n in CLASSES]
    assert not np.array_equal(heads[0], heads[1])


def test_each_branch_stops_early_on_its_own(trained):
    run = Run(trained("independent", classes=CLASSES, stack=3, epochs=8, patience=1))
    for name in CLASSES:
        record = run.record(name)
        assert [h["epoch"] for h in record["history"]] == list(range(1, record["epochs"] + 1))
        assert record["epochs"] == 8 or record["epochs"] == record["best_epoch"] + 1
        assert record["stacked_with"] == CLASSES  # also when saved from a stack narrowed after others stopped


def stack_epoch(path) -> int:
    try:
        return max(s["epoch"] for s in json.loads(path.read_text())["states"].values())
    except (OSError, ValueError, KeyError):
        return 0


def test_killed_stack_resumes_from_its_last_epoch(synth_root, tmp_path):
    order = tmp_path / "three.txt"
    order.write_text("\n".join(CLASSES) + "\n")
    out = tmp_path / "run"
    args = tiny_cli_args(synth_root, "independent", out, "--classes-file", str(order), "--stack", "3")
    args[args.index("--epochs") + 1] = "40"
    proc = _train_process(args)
    folder = out / "checkpoints"
    _kill_when(proc, lambda: any(stack_epoch(f / "state.json") >= 2 for f in folder.glob("_stack-*")))
    (state,) = folder.glob("_stack-*/state.json")
    done = stack_epoch(state)

    status = CliRunner().invoke(main, ["runs", "status", str(out), "--format", "json"])
    rows = {r["unit"]: r for r in json.loads(status.output)}
    assert all(rows[n]["status"] == "in progress" and rows[n]["epochs"] == done for n in CLASSES), status.output

    result = CliRunner().invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 0, result.output
    assert f"3 classes stacked (aeroplane, car, person): resuming after epoch {done}" in result.output
    run = check_complete(out, units=3, classes=3)
    for name in CLASSES:
        assert [h["epoch"] for h in run.record(name)["history"]] == list(range(1, 41))


def test_stack_is_recorded_and_cli_checks_its_range(synth_root, tmp_path):
    cfg = tiny_config(synth_root, "independent", stack=4)
    assert TrainConfig.from_dict(cfg.to_dict()).stack == 4
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "independent", tmp_path / "r", "--stack", "0"))
    assert result.exit_code == 2 and "--stack" in result.output
