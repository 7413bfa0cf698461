"""``mledge export``: a finished RUN -> a bundle folder (.tflite file(s), labels.txt, manifest.json).

Route: Keras model cut at its logits -> ``model.export(format="tf_saved_model")`` -> TFLiteConverter
-> the standard TFLite metadata (export/metadata.py) -> sha256 in the manifest.
The sigmoid runs in float on the device (manifest output "logits"): under full-integer quantization
an in-graph logistic has a fixed output scale of 1/256, so every score below 1/512 becomes 0 and
average precision loses its ranking among the low scores. ``--output probabilities`` keeps it in
the graph, for comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle import bundle_bytes
from edge.predictor import Predictor
from edge.preprocess import mirror
from export.bundle_writer import file_entry, write_manifest
from export.metadata import check_writer, describe, write_metadata
from export.quantize import QUANT_MODES, representative_dataset
from toolkit import __version__
from toolkit.atomic import model_bytes, replace_dir, require_space, staging
from toolkit.data.arrays import load_arrays
from toolkit.data.store import Store
from toolkit.errors import UserError
from toolkit.metrics import mean_ap
from toolkit.outputs import check_output_folder, mark
from toolkit.predict import load_run_split, run_scorer, run_thresholds, score_split
from toolkit.run import Run

OUTPUT_KINDS = ("logits", "probabilities")


@dataclass
class ExportOptions:
    quant: str = "float32"
    calib_split: str = "train"
    calib_images: int = 300
    fuse: bool = False
    output: str = "logits"
    eval_split: str | None = None  # default: the run's val split
    eval_images: int | None = None
    force: bool = False
    flip_average: bool = False  # the device averages each photo's scores with its mirror's (two invocations)


def _graphs(run: Run, cfg, models: list, opts: ExportOptions) -> list[tuple[str, object, list[str]]]:
    """(file stem, Keras model to convert, classes of its output columns)."""
    from toolkit.models import fuse, logits_model

    logits = opts.output == "logits"
    if cfg.arch == "multioutput":
        return [("model", logits_model(models[0]) if logits else models[0], cfg.classes)]
    if opts.fuse:
        fused = fuse(models, cfg.model, shared_trunk=cfg.arch == "shared", logits=logits)
        return [("fused", fused, cfg.classes)]
    return [(c, logits_model(m) if logits else m, [c]) for c, m in zip(cfg.classes, models)]


def _layers(model):
    for layer in model.layers:
        yield from _layers(layer) if hasattr(layer, "layers") else (layer,)


def count_macs(model) -> int:
    """Multiply-accumulates of one image through the model's convolutions and Dense layers (what
    the latency of these CNNs is made of), for estimates on hardware we cannot run."""
    import keras

    macs = 0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c_out = layer.output.shape
            macs += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_out
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            macs += h * w * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1] * c_out
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return int(macs)


def _convert(model, quant: str, calibration: np.ndarray | None, workdir: Path) -> bytes:
    import tensorflow as tf

    saved = workdir / f"saved_{model.name}"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    mode = QUANT_MODES[quant]
    mode.configure(converter, representative_dataset(calibration) if mode.needs_calibration else None)
    try:
        return mode.convert(converter)
    finally:
        shutil.rmtree(saved, ignore_errors=True)


def _calibration_images(cfg, opts: ExportOptions, store: Store) -> np.ndarray:
    """A seeded sample of the split, and only its photos decoded: into a memory-mapped file of
    ``store`` (each graph reads them all again; --calib-images may be large)."""
    data = load_run_split(cfg, opts.calib_split)
    pick = np.random.default_rng(cfg.seed).permutation(len(data.ids))[: opts.calib_images]
    return load_arrays(data.subset(np.sort(pick)), cfg.model.pixels, on_bad_image="skip", store=store).images


def _input_spec(bundle: Path, first_file: str, model_cfg) -> dict:
    from edge.runtime import make_interpreter

    detail = make_interpreter(str(bundle / first_file)).get_input_details()[0]
    scale, zero = detail["quantization"]
    return {
        "height": model_cfg.pixels, "width": model_cfg.pixels, "channels": 3, "layout": "NHWC",
        "channel_order": "RGB",
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero)} if scale else None,
        "value_range": [0, 255], "resize": "bilinear", "decoder": "pillow (JPEG draft mode, EXIF orientation)",
        "rescale": ("none on the device: the model's first layer normalizes, "
                    + ("(x - 127) / 128 (EfficientNet-Lite)" if model_cfg.pretrained else "x / 255")),
        "backbone": model_cfg.backbone,
    }


def _stored_scores(run: Run, cfg, split: str, opts: ExportOptions) -> tuple[np.ndarray, np.ndarray] | None:
    """(scores, labels): the float model's val scores that training wrote (val_scores.npz), which
    Keras need not compute again (at 448 px, a minute and a half on two cores) if they are of the
    very photos the check reads (its caller compares the labels)."""
    path = run.path / "val_scores.npz"
    if split != cfg.val_split or opts.eval_images is not None or cfg.final or not path.is_file():
        return None
    with np.load(path) as stored:
        return stored["scores"].astype(np.float32), stored["labels"]


def _evaluate(bundle: Path, run: Run, cfg, models: list, opts: ExportOptions) -> dict:
    """The bundle against the float model on the split, its photos decoded a chunk at a time."""
    split = opts.eval_split or cfg.val_split
    data = load_run_split(cfg, split)
    predictor = Predictor(bundle, verify=False, num_threads=len(os.sched_getaffinity(0)))  # every core
    scorers = {"bundle": lambda images: np.concatenate([predictor.predict_pixels(images[i : i + 32])
                                                        for i in range(0, len(images), 32)])}
    keras = run_scorer(run, models)
    if opts.flip_average:  # the float model scored as the bundle is: with each photo's mirror
        scorers["mirror"] = lambda images: keras(mirror(images))
    stored = _stored_scores(run, cfg, split, opts)
    if stored is None:
        scorers["keras"] = keras
    scored = score_split(data, cfg.model.pixels, scorers, on_bad_image="skip", limit=opts.eval_images)
    labels, valid = scored.labels, scored.mask > 0  # difficult entries left out, as the devkit does
    if "keras" not in scorers:
        scores, stored_labels = stored
        if scores.shape == labels.shape and np.array_equal(stored_labels, labels):
            scored.scores["keras"] = scores
        else:  # other photos than training scored: Keras scores these
            scored.scores["keras"] = score_split(data, cfg.model.pixels, {"keras": keras}, on_bad_image="skip",
                                                 limit=opts.eval_images).scores["keras"]
    keras_probs, bundle_probs = scored.scores["keras"], scored.scores["bundle"]
    if opts.flip_average:
        keras_probs = (keras_probs + scored.scores["mirror"]) / 2
    return {
        "split": split, "images": len(scored.ids),
        "seen_in_training": bool(cfg.final) and split in (cfg.split, cfg.val_split),
        "keras_mAP_area": mean_ap(labels, keras_probs, valid, "area"),
        "bundle_mAP_area": mean_ap(labels, bundle_probs, valid, "area"),
        "keras_mAP_voc07": mean_ap(labels, keras_probs, valid, "voc07"),
        "bundle_mAP_voc07": mean_ap(labels, bundle_probs, valid, "voc07"),
        "max_abs_prob_diff": float(np.abs(keras_probs - bundle_probs).max()),
        "mean_abs_prob_diff": float(np.abs(keras_probs - bundle_probs).mean()),
    }


def export_run(run_path: str | Path, out: str | Path, opts: ExportOptions) -> dict:
    """Convert, evaluate and write the bundle atomically; returns its manifest."""
    import tensorflow as tf

    if opts.quant not in QUANT_MODES:
        raise UserError(f"--quant must be one of {', '.join(QUANT_MODES)}, not {opts.quant!r}")
    if opts.output not in OUTPUT_KINDS:
        raise UserError(f"--output must be one of {', '.join(OUTPUT_KINDS)}, not {opts.output!r}")
    out = Path(out)
    check_output_folder(out, "bundle", opts.force, (Path(run_path),))
    check_writer()  # a missing metadata writer is refused before minutes of conversion
    run = Run(Path(run_path))
    cfg = run.require_complete()
    models = run.load_models(cfg)
    if opts.fuse and cfg.arch == "multioutput":
        raise UserError("--fuse applies to independent and shared runs; multioutput is one graph already")
    if opts.fuse and cfg.model.pretrained and cfg.arch != "shared":
        raise UserError("--fuse of a pretrained backbone needs --arch shared (one trunk); independent has 20")
    sizes = sorted({cfg.for_class(c).model.img_size for c in cfg.classes})
    if opts.fuse and cfg.arch == "shared" and len(sizes) > 1:
        raise UserError(f"{run.path}: --fuse runs the shared trunk once, at one size, but the classes work at "
                        f"{', '.join(map(str, sizes))} px (export without --fuse)")
    # At most: a float32 SavedModel on the way and the .tflite files, each the size of the weights.
    require_space(out, 2 * sum(model_bytes(m) for m in models))
    with staging(out) as tmp:
        calibration = (_calibration_images(cfg, opts, Store(tmp / ".calibration"))
                       if QUANT_MODES[opts.quant].needs_calibration else None)
        t0 = time.perf_counter()
        graphs = []
        for stem, model, outputs in _graphs(run, cfg, models, opts):
            path = tmp / f"{stem}.tflite"
            path.write_bytes(_convert(model, opts.quant, calibration, tmp))
            graphs.append((path, outputs, count_macs(model)))
        seconds = time.perf_counter() - t0
        calibrated = None if calibration is None else len(calibration)
        del calibration
        shutil.rmtree(tmp / ".calibration", ignore_errors=True)  # not part of the bundle
        manifest = {
            "architecture": cfg.arch, "fused": opts.fuse, "classes": cfg.classes,
            "thresholds": [float(t) for t in run_thresholds(run, cfg.classes)],
            "input": _input_spec(tmp, graphs[0][0].name, cfg.model),
            "output": opts.output, "quantization": opts.quant, "flip_average": opts.flip_average,
            "calibration": {"split": opts.calib_split, "images": calibrated} if calibrated is not None else None,
            "toolkit_version": __version__, "tensorflow_version": tf.__version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "run": str(run.path.resolve()),
            "conversion_seconds": round(seconds, 2),
        }
        write_metadata([describe(path, outputs, manifest) for path, outputs, _ in graphs])
        manifest["files"] = [{**file_entry(path, outputs), "macs": macs} for path, outputs, macs in graphs]
        write_manifest(tmp, manifest)
        manifest["evaluation"] = _evaluate(tmp, run, cfg, models, opts)
        manifest["bytes"] = bundle_bytes(manifest)
        write_manifest(tmp, {k: v for k, v in manifest.items() if k != "format_version"})
        mark(tmp, "bundle")
        replace_dir(tmp, out)
    return json.loads((out / "manifest.json").read_text())
