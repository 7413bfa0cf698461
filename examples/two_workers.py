"""Train one model with two worker processes on this machine: the pretrained path under
MultiWorkerMirroredStrategy, each worker decoding and caching its own half of the training photos.

    python examples/two_workers.py DATA OUT [--backbone efficientnet-lite0] [--img-size 224] [--epochs 3]

DATA is a dataset `mledge data synth` made (or any VOC, CSV or COCO folder); the weights are imported
once beforehand (`mledge weights import efficientnet-lite0`). On a real cluster, start the same
`mledge train ... --strategy multiworker` on every machine with its TF_CONFIG, --out on storage all
of them see. Prints each worker's last lines; the two sha256 of the final weights are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out")
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--img-size", default="224")
    parser.add_argument("--epochs", default="3")
    args = parser.parse_args()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    command = [sys.executable, "-m", "mledge", "train", args.data, "--arch", "multioutput", "--backbone",
               args.backbone, "--img-size", args.img_size, "--epochs", args.epochs, "--out", args.out,
               "--strategy", "multiworker", "--batch", "32"]
    print("+", " ".join(command[2:]), "(twice, worker 0 and worker 1)", flush=True)
    t0 = time.time()
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={
        **os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)]
    outputs = [w.communicate()[0] for w in workers]
    for i, (worker, text) in enumerate(zip(workers, outputs)):
        lines = [line for line in text.splitlines() if line.startswith(("multioutput:", "pretrained", args.out))]
        print(f"--- worker {i} (exit {worker.returncode})", *lines[-6:], sep="\n")
    print(f"two workers: {time.time() - t0:.0f} s")
    return max(w.returncode for w in workers)


if __name__ == "__main__":
    sys.exit(main())
