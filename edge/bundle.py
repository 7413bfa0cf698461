"""The bundle: a folder of .tflite file(s), labels.txt and manifest.json, which is all a device needs.

``read_manifest`` (with sha256 checks) is what the runtime loads; export/bundle_writer.py writes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LABELS = "labels.txt"


class BundleError(Exception):
    """A bundle that cannot be used: missing or changed file, bad manifest. One line, names the file."""


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    return file_hash(path, "sha256")


REQUIRED = ("format_version", "architecture", "classes", "thresholds", "input", "output", "quantization", "files")


def read_manifest(bundle: str | Path, verify: bool = True) -> dict:
    """Load and check a bundle's manifest; with ``verify`` every file's size and sha256 too."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: bundle folder does not exist")
    if not path.is_file():
        raise BundleError(f"{path}: missing (not a bundle folder?)")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({err})") from None
    missing = [k for k in REQUIRED if k not in manifest]
    if missing:
        raise BundleError(f"{path}: missing field(s) {', '.join(missing)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(f"{path}: format version {manifest['format_version']!r} is not supported "
                          f"(this runtime reads version {FORMAT_VERSION})")
    classes = manifest["classes"]
    if len(manifest["thresholds"]) != len(classes):
        raise BundleError(f"{path}: {len(manifest['thresholds'])} thresholds for {len(classes)} classes")
    covered = sorted(c for entry in manifest["files"] for c in entry["outputs"])
    if covered != sorted(classes):
        raise BundleError(f"{path}: the files' outputs do not cover the classes exactly once")
    if verify:
        for entry in manifest["files"]:
            model = bundle / entry["name"]
            if not model.is_file():
                raise BundleError(f"{model}: model file named in the manifest is missing")
            if model.stat().st_size != entry["bytes"] or sha256_of(model) != entry["sha256"]:
                raise BundleError(f"{model}: file changed since export (sha256 does not match the manifest)")
    return manifest


def bundle_bytes(manifest: dict) -> int:
    return sum(entry["bytes"] for entry in manifest["files"])
