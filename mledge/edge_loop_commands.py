"""``mledge edge watch`` and ``mledge edge serve``: a bundle on a board for days, classifying photos
as they arrive in a folder or as they are posted to a small HTTP service. Nothing here loads TensorFlow."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from mledge.params import THREADS, THRESHOLD
from toolkit.errors import UserError

SETTLE = click.FloatRange(0.01, 3600)
STAMP = "%Y-%m-%dT%H:%M:%S%z"
MEGABYTES = click.FloatRange(0.001, 100_000)


def predict_frames(bundle: str, videos: list[str], camera: int | None, every: int, threads: int | None,
                   threshold: float | None) -> None:
    """``edge predict`` on videos or a camera: one JSON line a classified frame, decoded one at a time."""
    from edge.frames import VideoError, frames
    from edge.jsonlines import JsonLines, record
    from edge.predictor import Prediction, Predictor
    from edge.watch import Stop

    for video in videos:
        if not Path(video).is_file():
            raise UserError(f"{video}: no such file")
    predictor = Predictor(bundle, num_threads=threads)
    stop = Stop()
    stop.install()
    sources = [(str(camera), True)] if camera is not None else [(v, False) for v in videos]
    lines = JsonLines()
    try:
        for source, is_camera in sources:
            for frame in frames(source, every, camera=is_camera):
                t0 = time.perf_counter()
                probs = predictor.predict_pixels(predictor.prepare(frame.image))[0]
                prediction = Prediction(f"/dev/video{source}" if is_camera else source,
                                        dict(zip(predictor.classes, map(float, probs))),
                                        predictor.labels_of(probs, threshold))
                lines.write(record(prediction, (time.perf_counter() - t0) * 1000, frame=frame.index,
                                   frame_time=None if frame.time is None else round(frame.time, 3)))
                if stop:
                    return
    except VideoError as err:
        raise UserError(str(err)) from None


@click.command("watch")
@click.argument("bundle", type=click.Path())
@click.argument("folder", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False),
              help="Append the JSON lines to this file, which rotates by size (default: stdout).")
@click.option("--rotate-mb", default=10.0, show_default=True, type=MEGABYTES,
              help="Rotate --out at this size: out -> out.1 -> ... (0.001 to 100000 MB).")
@click.option("--keep", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="Rotated files of --out to keep (1 to 1000); the oldest beyond them is removed.")
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Where the watch keeps its position, to resume without classifying a photo twice "
              "(default: OUT.checkpoint beside --out; with stdout and no --checkpoint a restart starts over).")
@click.option("--settle", default=1.0, show_default=True, type=SETTLE,
              help="A photo is complete once its file has not changed for this long (0.01 to 3600 s).")
@click.option("--poll", default=0.5, show_default=True, type=SETTLE,
              help="Seconds between looks at the folder when nothing is new (0.01 to 3600).")
@click.option("--idle-exit", type=click.FloatRange(0, 10_000_000),
              help="Stop once nothing new has come for this long (seconds; default: run until SIGINT or SIGTERM).")
@click.option("--threads", type=THREADS, help="Interpreter threads (1 to 256; default: the runtime's choice).")
@click.option("--threshold", type=THRESHOLD, help="One threshold (0 to 1) for every class instead of the bundle's own.")
def watch_cmd(bundle, folder, out, rotate_mb, keep, checkpoint, settle, poll, idle_exit, threads, threshold):
    """Classify every photo in FOLDER (and its subfolders), then each new one once completely written,
    one JSON line a photo: source, labels, probabilities, ms and the time. A photo that cannot be read
    is one line on stderr (and a JSON line with its error), and the loop goes on. SIGINT or SIGTERM
    stops after the photo in hand; run the same command again to go on from there."""
    from edge.jsonlines import JsonLines, ours, record
    from edge.predictor import Predictor
    from edge.watch import Checkpoint, Stop, watch

    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{folder}: not a folder")
    if out and not ours(Path(out)):
        raise UserError(f"{out}: not a file of watch results, so not appended to or rotated (another --out)")
    state = Path(checkpoint) if checkpoint else (Path(f"{out}.checkpoint") if out else None)
    if state is None:
        click.echo("note: no --out or --checkpoint, so a restart classifies every photo again", err=True)
    try:
        checkpoint = Checkpoint.load(state, root)  # before the bundle loads: a wrong file is refused at once
    except (ValueError, OSError) as err:
        raise UserError(str(err)) from None
    predictor = Predictor(bundle, num_threads=threads)
    stop = Stop()
    stop.install()
    lines = JsonLines(out, max_bytes=int(rotate_mb * (1 << 20)), keep=keep)

    def classify(path: Path) -> None:
        t0 = time.perf_counter()
        prediction = predictor.predict([path], threshold)[0]
        lines.write(record(prediction, (time.perf_counter() - t0) * 1000, time=time.strftime(STAMP)))

    def unreadable(path: Path, err: Exception) -> None:
        click.echo(f"skipped: {err}", err=True)
        lines.write({"source": str(path), "time": time.strftime(STAMP), "error": str(err)})

    try:
        count = watch(root, classify, unreadable, checkpoint, state, settle=settle, poll=poll, idle_exit=idle_exit,
                      stop=stop)
    finally:
        lines.close()
    click.echo(f"watched {folder}: {count} photo(s) classified" + (", stopped" if stop else ""), err=True)
    sys.exit(0)


@click.command("serve")
@click.argument("bundle", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: localhost only unless told otherwise (0.0.0.0: every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="TCP port (1 to 65535).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Interpreters in the pool (1 to 64): requests beyond them wait for one.")
@click.option("--threads", type=THREADS, help="Threads of each interpreter (1 to 256; default: the runtime's choice).")
@click.option("--max-mb", default=10.0, show_default=True, type=MEGABYTES,
              help="Largest upload accepted (0.001 to 100000 MB); a larger one gets 413.")
@click.option("--threshold", type=THRESHOLD, help="One threshold (0 to 1) for every class instead of the bundle's own.")
def serve_cmd(bundle, host, port, workers, threads, max_mb, threshold):
    """An HTTP service for BUNDLE: POST a photo's bytes to /predict for its labels and probabilities
    as JSON; GET /health; GET / shows the latest predictions. Needs the serve extra
    (pip install 'multilabel-edge[serve]')."""
    try:
        from edge.serve import serve
    except ImportError as err:
        raise UserError(f"mledge edge serve needs {err.name}: pip install 'multilabel-edge[serve]'") from None
    from edge.bare import read_any

    read_any(bundle)  # a bad bundle is one line before the server starts
    click.echo(f"serving {bundle} on http://{host}:{port}/ ({workers} interpreter(s)); Ctrl-C stops", err=True)
    serve(bundle, host, port, workers=workers, num_threads=threads, max_bytes=int(max_mb * (1 << 20)),
          threshold=threshold)
