"""The frozen prefix of a pretrained backbone, run once per photo for the activation cache: as a
float32 TFLite graph on XNNPACK (one interpreter a core, a photo at a time) instead of Keras on
oneDNN, whose depthwise convolutions are the slow part on a CPU (make bench-pipeline times both).

The maps stay what the float model computes: the first photos are also run through Keras and the
largest difference is logged (op order only); a graph that differs by more than ``TOLERANCE`` is
not used and Keras computes the cache instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from toolkit.predict import predict_batches
from toolkit.progress import Progress

log = logging.getLogger("mledge.train")
TOLERANCE = 1e-2  # max |TFLite - Keras| on a map; float32 op order gives about 1e-4
CHECKED = 8  # photos run through both


def _graph(prefix) -> bytes:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_keras_model(prefix).convert()


def _run(graph: bytes, images: np.ndarray, out: np.ndarray, start: int, stop: int, progress: Progress) -> None:
    from edge.runtime import make_interpreter

    interpreter = make_interpreter(graph, 1)
    source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    for i in range(start, stop):  # batch 1 is XNNPACK's fastest here; invoke releases the GIL
        interpreter.set_tensor(source, images[i : i + 1].astype(np.float32))
        interpreter.invoke()
        out[i] = interpreter.get_tensor(target)[0]  # into a float16 cache as it comes
        progress.update()


def _tflite_maps(graph: bytes, images: np.ndarray, out: np.ndarray, progress: Progress) -> None:
    workers = max(1, min(len(os.sched_getaffinity(0)), len(images)))
    bounds = np.linspace(0, len(images), workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for job in [pool.submit(_run, graph, images, out, a, b, progress) for a, b in zip(bounds[:-1], bounds[1:])]:
            job.result()


def _keras_maps(prefix, images: np.ndarray, out: np.ndarray, progress: Progress) -> None:
    for start in range(0, len(images), 256):
        out[start : start + 256] = predict_batches(prefix, images[start : start + 256], batch=32)
        progress.update(len(out[start : start + 256]))


Runner = Callable[[np.ndarray, np.ndarray, Progress], None]


def prefix_runner(prefix, sample: np.ndarray) -> tuple[Runner, float | None]:
    """(a function that writes the maps of photos into ``out`` - any array, a memory-mapped cache
    too - the largest |TFLite - Keras| on ``sample``; None: Keras computes them). The graph is
    converted and checked once, whatever it runs on afterwards."""
    keras_maps = predict_batches(prefix, sample[:CHECKED], batch=CHECKED)
    try:
        graph = _graph(prefix)
    except Exception as err:  # a converter that cannot take this graph: Keras does it all, as before
        log.warning("the prefix does not convert to TFLite (%s): Keras computes the cache", str(err)[:120])
        graph = None
    if graph is not None:
        first = np.empty(keras_maps.shape, np.float32)
        _tflite_maps(graph, sample[:CHECKED], first, Progress("", 0))
        diff = float(np.abs(first - keras_maps).max())
        if diff <= TOLERANCE:
            return lambda images, out, progress: _tflite_maps(graph, images, out, progress), diff
        log.warning("the TFLite prefix differs from Keras by %.3g: Keras computes the cache", diff)
    return lambda images, out, progress: _keras_maps(prefix, images, out, progress), None
