"""``mledge edge serve`` in a process of its own on a free port of 127.0.0.1, for the tests, the
browser check and the soak bench: started, and waited for until it accepts connections."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(python: list[str], bundle: str | Path, *options: str, timeout: float = 300
                  ) -> tuple[subprocess.Popen, int]:
    """(the server process, its port); SystemExit with its stderr when it does not come up."""
    port = free_port()
    proc = subprocess.Popen([*python, "-m", "mledge", "edge", "serve", str(bundle), "--port", str(port), *options],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"mledge edge serve did not start: {proc.stderr.read().decode()[-300:]}") from None
            time.sleep(0.1)
