"""Writing a bundle's manifest and labels (edge/bundle.py reads them, with the same names)."""

from __future__ import annotations

from pathlib import Path

from edge.bundle import LABELS, MANIFEST, sha256_of
from edge.schema import FORMAT_VERSION
from toolkit.atomic import write_atomic, write_json


def file_entry(path: Path, outputs: list[str]) -> dict:
    """A manifest entry for one model file: which classes its output columns are, bytes, sha256."""
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path), "outputs": outputs}


def write_manifest(bundle: Path, manifest: dict) -> None:
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    write_atomic(bundle / LABELS, "".join(f"{c}\n" for c in manifest["classes"]))
    write_json(bundle / MANIFEST, manifest)
