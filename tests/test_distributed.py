"""Training beyond one process: MultiWorkerMirroredStrategy over two local workers, --jobs, and
concurrent processes with disjoint --classes writing one RUN."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from mledge.cli import main
from tests.helpers import tiny_cli_args, tiny_config
from toolkit import train
from toolkit.data.voc import VOC_CLASSES
from toolkit.run import Run

REPO = Path(__file__).parents[1]
FEW = ["aeroplane", "car", "person"]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(args: list[str], env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "mledge", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)


def workers(synth_root, out: Path, epochs: int) -> list[subprocess.Popen]:
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    args = tiny_cli_args(synth_root, "multioutput", out, "--strategy", "multiworker")
    args[args.index("--epochs") + 1] = str(epochs)
    return [start(args, {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
            for i in range(2)]


def finish(procs: list[subprocess.Popen]) -> list[str]:
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, text in zip(procs, outputs):
        assert p.returncode == 0, text[-3000:]
    return outputs


def digest(text: str) -> str:
    return re.findall(r"final weights sha256 ([0-9a-f]{64})", text)[-1]


def test_two_workers_train_the_same_weights(synth_root, tmp_path):
    outputs = finish(workers(synth_root, tmp_path / "run", epochs=1))
    assert all("training on 2 replicas" in text for text in outputs)
    assert digest(outputs[0]) == digest(outputs[1])
    run = Run(tmp_path / "run")
    assert run.is_done("model") and (run.path / "metrics.json").is_file()  # the chief wrote the RUN
    assert "the chief writes" in outputs[1]


def test_two_workers_train_a_pretrained_head_each_on_its_own_shard(synth_root, lite_cache, tmp_path):
    """The pretrained path under MultiWorkerMirroredStrategy: each worker decodes and caches the maps
    of its half of the training photos (and 2 views of each) in a folder of its own, and the two
    train one model."""
    out = tmp_path / "run"
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    args = ["train", str(synth_root), "--arch", "multioutput", "--backbone", "efficientnet-lite0", "--img-size", "64",
            "--out", str(out), "--epochs", "2", "--patience", "0", "--batch", "16", "--precision", "float32",
            "--cache-views", "2", "--strategy", "multiworker"]
    outputs = finish([start(args, {"MLEDGE_CACHE": str(lite_cache), "TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)])
    for i, text in enumerate(outputs):
        # its 30 of the 60 training photos with 1 augmented view each, and the 30 of val
        assert "of 90 images (2 views of each training photo)" in text, text[-3000:]
        assert f"{out / 'cache' / f'worker-{i}-of-2'}" in text
        assert "training on 2 replicas" in text
    assert digest(outputs[0]) == digest(outputs[1])
    run = Run(out)
    cfg = run.require_complete()
    assert run.record("model")["train_images"] == 60 and len(run.record("model")["history"]) == 2
    assert (out / "metrics.json").is_file() and not (out / "cache").exists()
    assert cfg.model.pretrained


def test_killed_cluster_continues_from_the_chiefs_checkpoint(synth_root, tmp_path):
    out = tmp_path / "run"
    procs = workers(synth_root, out, epochs=4)
    state = out / "checkpoints" / "model" / "state.json"
    deadline = time.time() + 240
    while not state.is_file():
        assert all(p.poll() is None for p in procs) and time.time() < deadline
        time.sleep(0.05)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    done = json.loads(state.read_text())["epoch"]
    outputs = finish(workers(synth_root, out, epochs=4))
    assert all(f"resuming after epoch {done}" in text for text in outputs)
    assert digest(outputs[0]) == digest(outputs[1])
    assert [h["epoch"] for h in Run(out).record("model")["history"]] == [1, 2, 3, 4]


def test_jobs_2_equals_sequential_class_list(synth_root, trained, tmp_path):
    metrics = train.train_parallel(tiny_config(synth_root, "independent", classes=FEW), tmp_path / "par", jobs=2)
    sequential = Run(trained("independent", classes=FEW))
    parallel = Run(tmp_path / "par")
    assert parallel.config().classes == sequential.config().classes == FEW
    assert sorted(p.name for p in parallel.models_dir.glob("*.keras")) == \
        sorted(p.name for p in sequential.models_dir.glob("*.keras"))
    assert len(list((parallel.path / "jobs").glob("job-*.log"))) == 2
    assert metrics["classes"] == FEW and len(parallel.load_models()) == 3


def test_concurrent_disjoint_classes_make_one_complete_run(synth_root, tmp_path):
    out = tmp_path / "run"
    halves = [",".join(VOC_CLASSES[:10]), ",".join(VOC_CLASSES[10:])]
    procs = [start(tiny_cli_args(synth_root, "independent", out, "--classes", half)) for half in halves]
    outputs = finish(procs)
    run = Run(out)
    cfg = run.require_complete()
    assert len(run.load_models(cfg)) == 20
    assert any("val mAP" in text for text in outputs)  # whichever finished last wrote the metrics
    assert (out / "metrics.json").is_file() and (out / "thresholds.json").is_file()
    assert not [p for p in out.rglob(".*tmp*")]


def test_a_process_joins_a_run_another_is_still_decoding_into(synth_root, tmp_path, monkeypatch):
    """The first of several processes claims the RUN before it decodes the photos into its cache: one
    that starts meanwhile finds a run of ours, not a folder of the user's."""
    from toolkit.outputs import check_joinable
    from toolkit.train import runner

    out = tmp_path / "run"
    decode = runner.load_training_data
    seen = []

    def decode_then_look(cfg, cache):
        arrays = decode(cfg, cache)
        assert any(cache.iterdir())  # the first one's decoded photos are there...
        check_joinable(out)  # ...and a second process that starts now joins
        seen.append(cache)
        return arrays

    monkeypatch.setattr(runner, "load_training_data", decode_then_look)
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "independent", out, "--classes", "car"))
    assert result.exit_code == 0, result.output
    assert seen == [out / "cache"]


def test_joining_with_other_settings_is_refused(synth_root, trained, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    first = runner.invoke(main, tiny_cli_args(synth_root, "independent", out, "--classes", "car"))
    assert first.exit_code == 0, first.output
    assert "1 of 20 model(s) done" in first.output
    other = runner.invoke(main, tiny_cli_args(synth_root, "independent", out, "--classes", "cat", "--lr", "0.01"))
    assert other.exit_code == 2 and "created with other settings" in other.output
    status = runner.invoke(main, ["runs", "status", str(out)])
    assert "1 of 20 model(s) done" in status.output


def test_shared_heads_need_the_trunk(synth_root, tmp_path):
    result = CliRunner().invoke(main, tiny_cli_args(synth_root, "shared", tmp_path / "s", "--stage", "heads",
                                                    "--classes", "car"))
    assert result.exit_code == 2 and "the shared trunk (aeroplane) is not trained yet" in result.output


def test_multiworker_step_scales_the_loss_under_float16():
    """Under mixed_float16 the multi-worker step updates the weights as Keras' own step does (it used
    to skip the loss scaling, so its updates were smaller by the loss scale, 32768)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tests.helpers import TINY
    from toolkit.losses import make_loss
    from toolkit.models import build_model
    from toolkit.train.multiworker import distributed_step

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    y = (rng.random((8, 20)) < 0.3).astype(np.float32)
    m = np.ones_like(y)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        reference = build_model(TINY, 20, "a")
        start = reference.get_weights()
        reference.compile(optimizer=keras.optimizers.SGD(0.5), loss=make_loss("bce", y, m))
        assert isinstance(reference.optimizer, keras.optimizers.LossScaleOptimizer)
        reference.train_on_batch(x, y, sample_weight=m)

        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        keras.utils.set_random_seed(0)  # the same dropout masks
        with strategy.scope():
            model = build_model(TINY, 20, "b")
            model.set_weights(start)
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=make_loss("bce", y, m))
        data = tf.data.Dataset.from_tensor_slices((x, y, m)).batch(8).repeat()
        step = distributed_step(model, strategy, global_batch=8)
        step(iter(strategy.experimental_distribute_dataset(data)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    moved = [np.abs(a - s).max() for a, s in zip(reference.get_weights(), start)]
    assert max(moved) > 1e-3  # the step did something
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-3, rtol=1e-2)
