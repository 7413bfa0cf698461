"""``mledge edge``: on-device inference and benchmarks; nothing here loads TensorFlow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mledge.params import COUNT, LAYOUTS, THREADS, THRESHOLD, int_list
from toolkit.errors import UserError


@click.group()
def edge() -> None:
    """On-device inference and benchmarks: numpy, Pillow and a TFLite interpreter only."""


def _note_if_bare(bundle: str) -> None:
    """A bare .tflite has nothing to verify it against: say so once, on stderr."""
    if Path(bundle).is_file():
        from edge.bare import NOTE

        click.echo(NOTE.format(path=bundle), err=True)


@edge.command("info")
@click.argument("bundle", required=False, type=click.Path())
def edge_info(bundle):
    """The interpreter in use, library versions, the CPU, and with BUNDLE (a bundle folder or a bare
    .tflite) whether XNNPACK is applied and each model file's TFLite metadata."""
    import numpy
    import PIL

    from edge.runtime import cpu_info, delegate_report, get_runtime

    files = []
    if bundle:
        from edge.bare import read_any
        from edge.bundle import model_path

        manifest = read_any(bundle)  # a bad bundle or file is refused before anything is printed
        _note_if_bare(bundle)
        if Path(bundle).is_file():
            files = [Path(bundle)]
        else:
            files = [model_path(Path(bundle), entry) for entry in manifest["files"]]
    rt = get_runtime()
    cpu = cpu_info()
    click.echo(f"interpreter  {rt.name} {rt.version}")
    click.echo(f"numpy        {numpy.__version__}")
    click.echo(f"pillow       {PIL.__version__}")
    click.echo(f"cpu          {cpu['machine']}, {cpu['cores']} cores, {cpu['model']}")
    if files:
        click.echo(f"xnnpack      {delegate_report(files[0])} ({files[0].name})")
        for path in files:
            for line in _metadata_lines(path):
                click.echo(line)
    else:
        click.echo("xnnpack      the default op resolver applies it to float ops; pass a BUNDLE to check")


def _metadata_lines(path: Path) -> list[str]:
    """A model file's TFLite metadata in three lines: who made it, its input, its output."""
    from edge.tflite_metadata import CALIBRATION_FILE, LABELS_FILE, associated_lines, read_metadata

    meta = read_metadata(path, path.read_bytes())
    if meta is None:
        return [f"metadata     {path.name}: none"]
    labels = associated_lines(path, meta, LABELS_FILE, "labels") or []
    shown = ", ".join(labels[:5]) + (f", ... ({len(labels)})" if len(labels) > 5 else "")
    norm = f"mean {meta.input.mean} std {meta.input.std}" if meta.input.mean else "no normalization"
    calibration = "none"
    if meta.output.calibration:
        lines = associated_lines(path, meta, CALIBRATION_FILE, "score calibration") or []
        plain = lines and all(line.strip() == "1.0,1.0,0.0" for line in lines)
        calibration = f"{meta.output.calibration[0]}" + (" (a sigmoid)" if plain else f", {len(lines)} lines")
    return [f"metadata     {path.name}: {meta.name} (version {meta.version}, by {meta.author})",
            f"  input      {meta.input.name}: {norm}",
            f"  output     {meta.output.name}: labels {shown or 'none'}; score calibration {calibration}"]


@edge.command("predict")
@click.argument("bundle", type=click.Path())
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--threads", type=THREADS, help="Interpreter threads (default: the runtime's choice).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True,
              help="Output format for photos (a video or camera always gives JSON lines).")
@click.option("--threshold", type=THRESHOLD, help="One threshold for every class instead of the bundle's own.")
@click.option("--every", default=1, show_default=True, type=click.IntRange(1, 1_000_000),
              help="For a video or camera: classify one frame in this many (1 to 1000000).")
@click.option("--camera", type=click.IntRange(0, 255),
              help="Classify the frames of camera N (0 to 255: /dev/videoN, V4L2) until SIGINT or SIGTERM; "
              "needs the video extra.")
def edge_predict(bundle, inputs, threads, fmt, threshold, every, camera):
    """Label images (files or folders) with a bundle, or a bare .tflite image classifier with TFLite
    metadata (its labels and normalization; thresholds 0.5); unreadable images are reported and skipped.

    INPUTS may instead be video files (.mp4, .mkv, ...), or --camera N a camera: one JSON line per
    classified frame with its number and time (needs pip install 'multilabel-edge[video]')."""
    from edge.frames import is_video
    from edge.predictor import Predictor
    from edge.preprocess import ImageError, image_files
    from edge.text_table import RowStream

    videos = [item for item in inputs if is_video(Path(item))]
    if camera is not None or videos:
        from mledge.edge_loop_commands import predict_frames

        if len(videos) != len(inputs):
            raise UserError("give photos or videos, not both: " + ", ".join(i for i in inputs if i not in videos))
        if camera is not None and videos:
            raise UserError(f"--camera {camera} or videos, not both: " + ", ".join(videos))
        predict_frames(bundle, videos, camera, every, threads, threshold)
        return
    if not inputs:
        raise UserError("give the images, folders or videos to label, or --camera N")
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += image_files(item)
        elif item.exists():
            paths.append(str(item))
        else:
            raise UserError(f"{item}: no such file or folder")
    predictor = Predictor(bundle, num_threads=threads)
    _note_if_bare(bundle)
    top = min(3, len(predictor.classes))
    widths = {"image": max([5, *(len(str(p)) for p in paths)]),
              "labels": min(40, max(6, *(len(c) for c in predictor.classes))),
              "top": top * (max(len(c) for c in predictor.classes) + 6)}
    rows, failed = RowStream(sys.stdout, fmt, widths), 0
    with click.progressbar(paths, label="labelling", file=sys.stderr,
                           hidden=len(paths) < 10 or not sys.stderr.isatty()) as bar:
        for path in bar:  # decode, run, print, forget: memory does not grow with the folder
            try:
                result = predictor.predict([path], threshold)[0]
            except ImageError as err:
                failed += 1
                click.echo(f"\nskipped: {err}", err=True)
                continue
            if fmt == "json":
                rows.write({"image": result.source, "labels": result.labels, "probabilities": result.probabilities})
            else:
                best = sorted(result.probabilities.items(), key=lambda kv: -kv[1])[:top]
                rows.write({"image": result.source, "labels": " ".join(result.labels) or "-",
                            "top": " ".join(f"{c}:{p:.2f}" for c, p in best)})
    rows.close()
    if failed:
        click.echo(f"{failed} of {len(paths)} image(s) could not be read", err=True)
        sys.exit(1)


@edge.command("bench")
@click.argument("bundles", nargs=-1, required=True, type=click.Path())
@click.option("--images", "images_dir", type=click.Path(file_okay=False), help="Folder of images to run on.")
@click.option("--data", "--voc", "data", type=click.Path(exists=True),
              help="A dataset (VOC, CSV or COCO): its split's images and labels (adds mAP); --voc is the old name.")
@click.option("--data-format", type=LAYOUTS, default="auto", show_default=True,
              help="The layout of --data; auto detects it.")
@click.option("--split", default="val", show_default=True, help="The split of --data.")
@click.option("--limit", type=COUNT, help="Use the first N images only.")
@click.option("--threads", default="1", show_default=True, callback=lambda ctx, param, value: int_list(value),
              help="Thread counts to measure, e.g. 1,2,4 (each 1 to 256).")
@click.option("--runs", default=50, show_default=True, type=COUNT, help="Timed invoke-only calls per bundle (batch 1).")
@click.option("--warmup", default=5, show_default=True, type=click.IntRange(0, 100_000),
              help="Untimed calls before timing.")
@click.option("--json", "as_json", is_flag=True, help="Print the full results as JSON.")
@click.option("--save", type=click.Path(dir_okay=False),
              help="Also write the full results as JSON to this file (what mledge report reads); an existing file "
              "is replaced only if it is an earlier bench result.")
@click.option("--label", default="", help="A note printed above the table (e.g. 'emulated aarch64').")
def edge_bench(bundles, images_dir, data, data_format, split, limit, threads, runs, warmup, as_json, save, label):
    """Bundles side by side: files, bytes, load time, latency (invoke and end to end), memory, mAP.

    A BUNDLE may also be a bare .tflite image classifier with TFLite metadata (one of a bundle's files,
    or another tool's model). Each runs in its own process, so peak memory is that bundle's own.
    """
    from edge.bench import flat_rows, run_bench
    from edge.runtime import cpu_info, get_runtime
    from edge.text_table import format_rows

    if bool(images_dir) == bool(data):
        raise UserError("edge bench needs exactly one of --images DIR or --data DATA")
    if save and not Path(save).absolute().parent.is_dir():
        raise UserError(f"--save {save}: {Path(save).absolute().parent} is not a folder")
    if save:
        from toolkit.outputs import check_bench_save

        check_bench_save(save)  # before the bench runs
    for bundle in bundles:
        _note_if_bare(bundle)
    rows = run_bench(list(bundles), threads, runs, warmup, images_dir=images_dir, data=data, data_format=data_format,
                     split=split, limit=limit, progress=lambda msg: click.echo(msg, err=True))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        rt, cpu = get_runtime(), cpu_info()
        click.echo(f"{label + ' - ' if label else ''}{rt.name} {rt.version} on {cpu['machine']} "
                   f"({cpu['cores']} cores); latency in ms per image at batch 1; MB on disk; peak_MB = peak RSS")
        click.echo(format_rows(flat_rows(rows)))
    if save:
        from toolkit.atomic import write_json

        write_json(Path(save), rows)
    if any(r["status"] != "ok" for r in rows):
        sys.exit(1)

