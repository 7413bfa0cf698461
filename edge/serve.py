"""A small HTTP service on the board (``pip install 'multilabel-edge[serve]'``: Starlette on uvicorn).

    POST /predict   the photo's bytes as the body -> {"labels", "probabilities", "ms"}
    GET  /health    {"status": "ok", the bundle, the classes, how many photos it has served}
    GET  /latest    the last predictions (at most LATEST), newest first
    GET  /          a page that shows them, refreshed every two seconds (no script or font fetched)

An upload over ``max_bytes`` is refused with 413 before it is read whole, a body that is not an
image with 400, and anything else that goes wrong with 500 and one line on stderr: the client never
sees a traceback. Requests share a pool of predictors (one interpreter each, taken and given back
under a queue), so concurrent requests never run one interpreter at once. What the service keeps
is bounded: the last LATEST results and a counter.
"""

from __future__ import annotations

import collections
import html
import io
import queue
import sys
import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from edge.jsonlines import record
from edge.predictor import Prediction, Predictor
from edge.preprocess import ImageError
from edge.serve_page import PAGE

LATEST = 50


class TooLarge(Exception):
    pass


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it is known to be too large (by its header, or as it streams)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(bundle: str | Path, workers: int = 1, num_threads: int | None = None, max_bytes: int = 10 << 20,
               threshold: float | None = None) -> Starlette:
    pool: queue.Queue[Predictor] = queue.Queue()
    for _ in range(workers):
        pool.put(Predictor(bundle, num_threads=num_threads))
    classes = pool.queue[0].classes
    latest: collections.deque[dict] = collections.deque(maxlen=LATEST)
    served = {"photos": 0, "refused": 0, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def classify(body: bytes, name: str) -> dict:
        predictor = pool.get()
        try:
            t0 = time.perf_counter()
            probs = predictor.predict_pixels(predictor.load(io.BytesIO(body)))[0]
            ms = (time.perf_counter() - t0) * 1000
            labels = predictor.labels_of(probs, threshold)
        finally:
            pool.put(predictor)
        return record(Prediction(name, dict(zip(classes, map(float, probs))), labels), ms)

    def refuse(status: int, message: str) -> JSONResponse:
        served["refused"] += 1
        return JSONResponse({"error": message}, status_code=status)

    async def predict(request: Request) -> JSONResponse:
        name = request.query_params.get("name", "upload")[:200]
        try:
            body = await read_body(request, max_bytes)
            if not body:
                return refuse(400, "empty body: POST the photo's bytes")
            result = await run_in_threadpool(classify, body, name)
        except TooLarge:
            return refuse(413, f"the photo is over {max_bytes} bytes")
        except ImageError as err:
            return refuse(400, f"not an image this service can read ({str(err).split('(', 1)[-1].rstrip(')')})")
        except Exception as err:  # a bug or the model: one line here, no traceback to the client
            print(f"serve: {type(err).__name__}: {str(err)[:200]}", file=sys.stderr)
            return refuse(500, "internal error")
        served["photos"] += 1
        latest.appendleft({**result, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        return JSONResponse(result)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "bundle": str(bundle), "classes": classes, "workers": workers, **served})

    async def recent(_: Request) -> JSONResponse:
        return JSONResponse(list(latest))

    async def page(_: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(bundle=html.escape(Path(bundle).name)))

    async def no_icon(_: Request) -> Response:  # what a browser asks for first: nothing, not a 404
        return Response(status_code=204)

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health),
                             Route("/latest", recent), Route("/", page), Route("/favicon.ico", no_icon)])


def serve(bundle: str | Path, host: str, port: int, **options) -> None:
    import socket

    import uvicorn

    try:  # a port in use is one line before the bundle loads, not uvicorn's log
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise OSError(err.errno, f"cannot listen on {host}:{port} ({err.strerror})") from None
    uvicorn.run(create_app(bundle, **options), host=host, port=port, log_level="warning", access_log=False,
                timeout_keep_alive=5)
