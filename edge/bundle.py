"""The bundle: a folder of .tflite file(s), labels.txt and manifest.json, which is all a device needs.

``read_manifest`` (with sha256 checks) is what the runtime loads; export/bundle_writer.py writes them.
"""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

from edge.schema import SchemaError, validate

MANIFEST = "manifest.json"
LABELS = "labels.txt"
MAX_MANIFEST_BYTES = 16 << 20


class BundleError(Exception):
    """A bundle that cannot be used: missing or changed file, bad manifest. One line, names the file."""


def load_interpreter(path: Path, content: bytes, num_threads: int | None = None):
    """(interpreter, input details, output details) of an untrusted model's checked bytes; a model the
    interpreter cannot load is a BundleError naming ``path``."""
    from edge.runtime import make_interpreter

    try:
        interpreter = make_interpreter(content, num_threads)
        return interpreter, interpreter.get_input_details(), interpreter.get_output_details()
    except Exception as err:  # the interpreter's own error for a malformed model, whatever its type
        raise BundleError(f"{path}: the interpreter cannot load this model ({str(err)[:160]})") from None


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    return file_hash(path, "sha256")


def read_manifest(bundle: str | Path, verify: bool = True) -> dict:
    """Load a bundle's manifest and check it against the schema (edge/schema.py); with ``verify``
    every model file's place, size and sha256 too."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(f"{bundle}: bundle folder does not exist")
    if not path.is_file():
        raise BundleError(f"{path}: missing (not a bundle folder?)")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: {path.stat().st_size} bytes, more than a manifest holds ({MAX_MANIFEST_BYTES})")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, RecursionError) as err:  # bad UTF-8 or JSON, a 5,000-digit number, deep nesting
        raise BundleError(f"{path}: not valid JSON ({str(err)[:120]})") from None
    try:
        manifest = validate(data)
    except SchemaError as err:
        raise BundleError(f"{path}: {err}") from None
    if verify:
        for entry in manifest["files"]:
            read_model(bundle, entry)
    return manifest


def model_path(bundle: Path, entry: dict) -> Path:
    """A model file named by the manifest: a regular file inside the bundle folder (a link may point
    only to another place inside it)."""
    path = bundle / entry["name"]
    if not path.exists():
        raise BundleError(f"{path}: model file named in the manifest is missing")
    real, folder = path.resolve(), bundle.resolve()
    if real.parent != folder and folder not in real.parents:
        raise BundleError(f"{path}: links outside the bundle folder (to {real})")
    if not stat.S_ISREG(real.stat().st_mode):
        raise BundleError(f"{path}: not a regular file")
    return real


def read_model(bundle: Path, entry: dict, verify: bool = True) -> bytes:
    """The model file's bytes, read once: with ``verify`` their size and sha256 are checked, and these
    very bytes are what the interpreter loads, so a file swapped after the check never runs."""
    path = model_path(Path(bundle), entry)
    size = path.stat().st_size
    if verify and size != entry["bytes"]:
        raise BundleError(f"{bundle / entry['name']}: {size} bytes, the manifest says {entry['bytes']} "
                          f"(file changed since export)")
    with open(path, "rb") as f:
        data = f.read(entry["bytes"] + 1 if verify else size)
    if verify and (len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]):
        raise BundleError(f"{bundle / entry['name']}: file changed since export (sha256 does not match the manifest)")
    return data


def bundle_bytes(manifest: dict) -> int:
    return sum(entry["bytes"] for entry in manifest["files"])
