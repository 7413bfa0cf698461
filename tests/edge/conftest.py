"""Edge tests load bundles that the training environment built (``make test-edge`` does both).

Run directly in the training environment they build the fixtures themselves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fixtures() -> Path:
    path = Path(os.environ.get("MLEDGE_EDGE_FIXTURES", REPO / "build" / "edge-fixtures"))
    if not (path / "stamp.json").is_file():
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pytest.fail(f"{path}: no edge fixtures; build them first: make test-edge")
        subprocess.run([sys.executable, "-m", "tests.edge.fixtures", str(path)], check=True, cwd=REPO)
    return path


@pytest.fixture(scope="session")
def bundles(fixtures) -> Path:
    return fixtures / "bundles"


@pytest.fixture(scope="session")
def test_images(fixtures) -> list[Path]:
    ids = (fixtures / "test_ids.txt").read_text().split()
    return [fixtures / "data" / "VOC2007" / "JPEGImages" / f"{i}.jpg" for i in ids]


@pytest.fixture(scope="session")
def reference(fixtures):
    import numpy as np

    with np.load(fixtures / "reference.npz") as data:
        return {k: data[k] for k in data.files}
