"""``mledge edge bench``: bundles side by side on this machine, each in its own process so that one
bundle's memory does not hide another's. Answers the study's question with measurements: files,
bytes, load time, latency (invoke only and end to end), images/s, peak memory and mAP.

A worker reads its job as JSON on stdin (any number of images; a command line would overflow) and
writes one JSON line: ``echo '{"bundle": ..., "images": [...], ...}' | python -m edge.bench``.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _percentiles(times_s: list[float]) -> dict:
    ms = np.asarray(times_s) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99))}


RING = 8  # distinct decoded images cycled through the invoke-only timings: a CNN's work does not depend on them


def _bare_loop_ms(predictor, pixels: np.ndarray, runs: int) -> float:
    """The same files driven by the interpreter API alone (no quantize, no sigmoid, no columns):
    the floor our per-image invoke can be compared with. Its interpreters are a second copy of the
    model, so it runs after the peak memory is read."""
    from edge.runtime import make_interpreter

    interpreters = [make_interpreter(str(f.path), predictor.num_threads) for f in predictor.files]
    feeds = []
    for it in interpreters:
        detail = it.get_input_details()[0]
        if list(detail["shape"][:1]) != [1]:
            it.resize_tensor_input(detail["index"], [1, *detail["shape"][1:]])
            it.allocate_tensors()
        feeds.append((detail["index"], it.get_output_details()[0]["index"], detail["dtype"]))
    casted = [[image[None].astype(dtype) for image in pixels] for _, _, dtype in feeds]
    times = []
    for k in range(runs):
        t0 = time.perf_counter()
        for it, (inp, outp, _), xs in zip(interpreters, feeds, casted):
            it.set_tensor(inp, xs[k % len(xs)])
            it.invoke()
            it.get_tensor(outp)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def measure(bundle: str, images: list[str], labels: list | None, valid: list | None, threads: int,
            runs: int, warmup: int) -> dict:
    """Everything for one bundle at one thread count, in this process."""
    from edge.bare import read_any
    from edge.bundle import bundle_bytes
    from edge.predictor import Predictor
    from edge.runtime import cpu_info, get_runtime

    manifest = read_any(bundle)
    runtime = get_runtime()  # the import is not load time
    t0 = time.perf_counter()
    predictor = Predictor(bundle, num_threads=threads, verify=False)
    load_ms = (time.perf_counter() - t0) * 1000
    pixels = np.stack([predictor.load(p) for p in images[:RING]])
    for k in range(warmup):
        predictor.predict_pixels(pixels[k % len(pixels)][None])
    invoke = []
    for k in range(runs):
        x = pixels[k % len(pixels)][None]
        t0 = time.perf_counter()
        predictor.predict_pixels(x)
        invoke.append(time.perf_counter() - t0)
    e2e, probs = [], np.empty((len(images), len(predictor.classes)), np.float32)
    with _progress(images, f"{Path(bundle).name} threads={threads}") as bar:
        for k, path in enumerate(bar):  # decode, run, keep the scores, forget the pixels
            t0 = time.perf_counter()
            probs[k] = predictor.predict_pixels(predictor.load(path)[None])[0]
            e2e.append(time.perf_counter() - t0)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the runtime, one model, 8 images
    result = {
        "bundle": str(bundle), "arch": manifest["architecture"] + ("+fused" if manifest.get("fused") else ""),
        "quant": manifest["quantization"], "threads": threads, "files": len(manifest["files"]),
        "MB": bundle_bytes(manifest) / 1e6, "load_ms": load_ms,
        "invoke_ms": _percentiles(invoke), "e2e_ms": _percentiles(e2e),
        "bare_invoke_ms": _bare_loop_ms(predictor, pixels, runs),
        "images": len(images), "classes": len(predictor.classes), "peak_rss_MB": peak_rss_mb,
        "runtime": f"{runtime.name} {runtime.version}", "cpu": cpu_info(),
    }
    result["images_per_s"] = 1000 / result["e2e_ms"]["p50"]
    if labels is not None:
        from edge.metrics import mean_ap

        result["mAP"] = mean_ap(np.asarray(labels), probs, np.asarray(valid, bool))
    return result


def dataset_images(root: str, split: str, classes: list[str], limit: int | None, fmt: str = "auto"):
    """Image paths, 0/1 labels and the valid mask (unknown labels left out) of a split in any layout."""
    from edge.datasets import read_split

    data = read_split(root, split, classes, fmt)
    paths, raw = data.paths[:limit] if limit else data.paths, data.raw[:limit] if limit else data.raw
    return [str(p) for p in paths], (raw == 1).tolist(), (raw != 0).tolist()


def worker_python() -> list[str]:
    """The command that starts a worker: this interpreter, or ``MLEDGE_PYTHON`` (e.g. a qemu-user
    command line, where the host cannot exec the emulated interpreter by itself)."""
    return shlex.split(os.environ["MLEDGE_PYTHON"]) if os.environ.get("MLEDGE_PYTHON") else [sys.executable]


def run_bench(bundles: list[str], threads: list[int], runs: int, warmup: int, images_dir: str | None = None,
              data: str | None = None, split: str = "val", limit: int | None = None, data_format: str = "auto",
              progress=print) -> list[dict]:
    """One subprocess per (bundle, threads): peak memory is then each bundle's own."""
    from edge.bare import read_any
    from edge.preprocess import image_files

    rows = []
    for bundle in bundles:
        for n in threads:
            job = {"bundle": bundle, "threads": n, "runs": runs, "warmup": warmup,
                   "labels": None, "valid": None}
            try:
                manifest = read_any(bundle)
                if data:
                    job["images"], job["labels"], job["valid"] = dataset_images(data, split, manifest["classes"], limit,
                                                                               data_format)
                else:
                    job["images"] = list(image_files(images_dir))[:limit]
                if not job["images"]:
                    raise ValueError(f"{images_dir}: no images found")
                progress(f"bench {bundle} threads={n} ({len(job['images'])} images)")
                env = {**os.environ, "PYTHONUNBUFFERED": "1", "MLEDGE_PROGRESS": "1" if sys.stderr.isatty() else ""}
                proc = subprocess.run([*worker_python(), "-m", "edge.bench"], input=json.dumps(job),
                                      stdout=subprocess.PIPE, text=True, env=env)  # stderr: the progress bar
                lines = proc.stdout.strip().splitlines()
                row = json.loads(lines[-1]) if lines else {"error": f"worker died (exit code {proc.returncode})"}
                if "error" in row:
                    raise RuntimeError(row["error"])
                row["status"] = "ok"
            except Exception as err:  # a broken bundle is a row with its reason, not a crash
                row = {"bundle": bundle, "threads": n, "status": f"failed: {str(err)[:160]}"}
            rows.append(row)
    return rows


def _pick(row: dict, key: str, sub: str | None = None, digits: int = 2):
    if row.get("status") != "ok" or row.get(key) is None:
        return None
    return round(row[key][sub] if sub else row[key], digits)


def flat_rows(rows: list[dict]) -> list[dict]:
    """The table's columns, one row per (bundle, threads)."""
    return [{
        "bundle": Path(r["bundle"]).name, "arch": r.get("arch"), "quant": r.get("quant"), "thr": r["threads"],
        "files": r.get("files"), "MB": _pick(r, "MB", digits=3), "load_ms": _pick(r, "load_ms", digits=1),
        "invoke_p50": _pick(r, "invoke_ms", "p50"), "invoke_p90": _pick(r, "invoke_ms", "p90"),
        "invoke_p99": _pick(r, "invoke_ms", "p99"), "bare_p50": _pick(r, "bare_invoke_ms"),
        "e2e_p50": _pick(r, "e2e_ms", "p50"), "e2e_p90": _pick(r, "e2e_ms", "p90"),
        "e2e_p99": _pick(r, "e2e_ms", "p99"),
        "img_per_s": _pick(r, "images_per_s", digits=1), "peak_MB": _pick(r, "peak_rss_MB", digits=0),
        "mAP": None if _pick(r, "mAP", digits=4) is None else round(100 * r["mAP"], 2),
        "status": r["status"],
    } for r in rows]


def _progress(items: list, label: str):
    """A progress bar on the terminal the bench was started from (the parent says whether it is one)."""
    import click

    return click.progressbar(items, label=label, file=sys.stderr, hidden=os.environ.get("MLEDGE_PROGRESS") != "1")


def _worker() -> None:
    """One job from stdin, one JSON line on stdout: the measurements, or the error that stopped them."""
    try:
        job = json.load(sys.stdin)
        result = measure(job["bundle"], job["images"], job["labels"], job["valid"], job["threads"], job["runs"],
                         job["warmup"])
    except Exception as err:  # the parent turns it into the bundle's row
        print(json.dumps({"error": f"{type(err).__name__}: {err}"[:300]}))
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    _worker()
