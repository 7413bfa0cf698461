"""Read the standard TFLite model metadata of a .tflite file: its names, the image input's
normalization, the output's labels and score calibration (the schema MediaPipe Tasks and the LiteRT
support library read; export/metadata.py writes it).

On a board only numpy, Pillow and an interpreter exist, and neither LiteRT nor tflite-runtime reads
metadata, so this reads the few fields it needs itself. The file is untrusted: every offset is
checked against the buffer before use, vectors are capped by the bytes that could hold them, and
anything out of place is one ``MetadataError`` naming the file.

Layout: the model is a FlatBuffer (identifier TFL3) whose ``metadata`` list holds an entry named
TFLITE_METADATA pointing at a buffer, itself a FlatBuffer (identifier M001); the associated files
(labels, calibration) are a zip archive appended to the model.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.bundle import BundleError

MAX_ASSOCIATED_BYTES = 4 << 20  # a labels file of 10,000 classes is well under 1 MB
MAX_ASSOCIATED_FILES = 64
MAX_LABELS = 10_000

# Field slots of the schemas (a union takes two: its type, then its value).
_MODEL_METADATA, _MODEL_BUFFERS = 6, 4  # tflite Model: metadata, buffers
_META_NAME, _META_DESCRIPTION, _META_VERSION, _META_SUBGRAPHS, _META_AUTHOR = 0, 1, 2, 3, 4
_SUB_INPUTS, _SUB_OUTPUTS = 2, 3
_TENSOR_NAME, _TENSOR_PROCESS_UNITS, _TENSOR_FILES = 0, 4, 6
_NORMALIZATION, _SCORE_CALIBRATION = 1, 2  # ProcessUnitOptions
LABELS_FILE, CALIBRATION_FILE = 2, 4  # AssociatedFileType: TENSOR_AXIS_LABELS, TENSOR_AXIS_SCORE_CALIBRATION
TRANSFORMS = ("identity", "log", "inverse_logistic")  # ScoreTransformationType


class MetadataError(BundleError):
    """Malformed or unusable metadata in a .tflite file: one line, names the file."""


class _Table:
    """A FlatBuffer table, read with bounds checks (the ``flatbuffers`` package trusts its input)."""

    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        self.vtable = pos - self._unpack("<i", pos)
        self.vsize = self._unpack("<H", self.vtable)

    def _unpack(self, fmt: str, pos: int):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.buf):
            raise ValueError(f"offset {pos} outside the {len(self.buf)}-byte buffer")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def _field(self, slot: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vsize:
            return None
        offset = self._unpack("<H", self.vtable + entry)
        return self.pos + offset if offset else None

    def _target(self, slot: int) -> int | None:
        pos = self._field(slot)
        return None if pos is None else pos + self._unpack("<I", pos)

    def scalar(self, slot: int, fmt: str, default):
        pos = self._field(slot)
        return default if pos is None else self._unpack(fmt, pos)

    def _vector(self, slot: int, item_size: int) -> tuple[int, int]:
        start = self._target(slot)
        if start is None:
            return 0, 0
        n = self._unpack("<I", start)
        if start + 4 + n * item_size > len(self.buf):
            raise ValueError(f"a vector of {n} items runs past the buffer")
        return start + 4, n

    def string(self, slot: int) -> str | None:
        start, n = self._vector(slot, 1)
        return None if not start else self.buf[start : start + n].decode("utf-8", errors="replace")

    def bytes(self, slot: int) -> bytes:
        start, n = self._vector(slot, 1)
        return self.buf[start : start + n]

    def floats(self, slot: int) -> list[float]:
        start, n = self._vector(slot, 4)
        return list(struct.unpack_from(f"<{n}f", self.buf, start)) if n else []

    def table(self, slot: int) -> _Table | None:
        pos = self._target(slot)
        return None if pos is None else _Table(self.buf, pos)

    def tables(self, slot: int) -> list[_Table]:
        start, n = self._vector(slot, 4)
        return [_Table(self.buf, start + 4 * k + self._unpack("<I", start + 4 * k)) for k in range(n)]


def _root(buf: bytes, identifier: bytes) -> _Table:
    if len(buf) < 8 or buf[4:8] != identifier:
        raise ValueError(f"not a FlatBuffer with identifier {identifier.decode()}")
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0])


@dataclass
class TensorInfo:
    name: str | None = None
    mean: list[float] | None = None  # NormalizationOptions: (x - mean) / std, per channel or one for all
    std: list[float] | None = None
    files: dict[str, int] = field(default_factory=dict)  # associated file name -> AssociatedFileType
    calibration: tuple[str, float] | None = None  # ScoreCalibrationOptions: transformation, default score


@dataclass
class ModelMetadata:
    name: str | None
    description: str | None
    version: str | None
    author: str | None
    input: TensorInfo
    output: TensorInfo
    archive: dict[str, bytes]  # the associated files the model carries


def _tensor(table: _Table) -> TensorInfo:
    info = TensorInfo(name=table.string(_TENSOR_NAME))
    for unit in table.tables(_TENSOR_PROCESS_UNITS):
        kind, options = unit.scalar(0, "<B", 0), unit.table(1)
        if options is None:
            continue
        if kind == _NORMALIZATION:
            info.mean, info.std = options.floats(0), options.floats(1)
        elif kind == _SCORE_CALIBRATION:
            transform = options.scalar(0, "<b", 0)
            if not 0 <= transform < len(TRANSFORMS):
                raise ValueError(f"score transformation {transform} is not in the schema")
            info.calibration = (TRANSFORMS[transform], options.scalar(1, "<f", 0.0))
    for f in table.tables(_TENSOR_FILES):
        name = f.string(0)
        if name:
            info.files[name] = f.scalar(2, "<b", 0)
    return info


def _metadata_buffer(model: _Table) -> bytes | None:
    for entry in model.tables(_MODEL_METADATA):
        if entry.string(0) == "TFLITE_METADATA":
            buffers = model.tables(_MODEL_BUFFERS)
            index = entry.scalar(1, "<I", 0)
            if index >= len(buffers):
                raise ValueError(f"metadata buffer {index} of {len(buffers)}")
            data = buffers[index].bytes(0)
            if not data:  # a model over 2 GB keeps its buffers after the FlatBuffer, by offset
                offset, size = buffers[index].scalar(1, "<Q", 0), buffers[index].scalar(2, "<Q", 0)
                data = model.buf[offset : offset + size] if offset + size <= len(model.buf) else b""
            return data
    return None


def _archive(content: bytes) -> dict[str, bytes]:
    """The associated files: a zip appended to the model (none when the metadata names none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            files = {}
            if len(archive.infolist()) > MAX_ASSOCIATED_FILES:
                raise ValueError(f"{len(archive.infolist())} associated files")
            for info in archive.infolist():
                if info.file_size > MAX_ASSOCIATED_BYTES:
                    raise ValueError(f"associated file {info.filename} is {info.file_size} bytes")
                with archive.open(info) as f:
                    files[info.filename] = f.read(MAX_ASSOCIATED_BYTES + 1)[:MAX_ASSOCIATED_BYTES]
            return files
    except zipfile.BadZipFile:
        return {}


def read_metadata(path: Path, content: bytes) -> ModelMetadata | None:
    """The metadata of a model's bytes, None when it has none; MetadataError when it is malformed."""
    try:
        buf = _metadata_buffer(_root(content, b"TFL3"))
        if buf is None:
            return None
        meta = _root(buf, b"M001")
        subgraphs = meta.tables(_META_SUBGRAPHS)
        if len(subgraphs) != 1:
            raise ValueError(f"{len(subgraphs)} subgraph metadata entries, not 1")
        inputs, outputs = subgraphs[0].tables(_SUB_INPUTS), subgraphs[0].tables(_SUB_OUTPUTS)
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"metadata for {len(inputs)} inputs and {len(outputs)} outputs, not 1 each")
        return ModelMetadata(meta.string(_META_NAME), meta.string(_META_DESCRIPTION), meta.string(_META_VERSION),
                             meta.string(_META_AUTHOR), _tensor(inputs[0]), _tensor(outputs[0]), _archive(content))
    except (ValueError, struct.error, RecursionError, UnicodeDecodeError, zipfile.LargeZipFile) as err:
        raise MetadataError(f"{path}: malformed TFLite metadata ({str(err)[:160]})") from None


@dataclass
class ScoreCalibration:
    """What MediaPipe applies to a class's score x: scale / (1 + exp(-(slope * g(x) + offset))), g the
    transformation; the default score where x <= min_score or the class's line is empty."""

    transform: str
    default: float
    params: np.ndarray  # (classes, 4): scale, slope, offset, min_score (nan: none); a row of nan: default

    @classmethod
    def parse(cls, path: Path, transform: str, default: float, lines: list[str]) -> ScoreCalibration:
        params = np.full((len(lines), 4), np.nan)
        for k, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                values = [float(v) for v in line.split(",")]
            except ValueError:
                values = []
            if len(values) not in (3, 4) or not np.isfinite(values).all():
                raise MetadataError(f"{path}: score calibration line {k + 1} is not scale,slope,offset[,min_score]")
            params[k, : len(values)] = values
        return cls(transform, default, params)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(N, classes) raw scores -> calibrated scores."""
        scale, slope, offset, floor = (self.params[:, i] for i in range(4))
        if self.transform == "identity":
            g = x
        else:
            p = np.clip(x, 1e-7, 1 - 1e-7) if self.transform == "inverse_logistic" else np.maximum(x, 1e-12)
            g = np.log(p) - (np.log1p(-p) if self.transform == "inverse_logistic" else 0)
        out = scale / (1.0 + np.exp(-np.clip(slope * g + offset, -80, 80)))
        default = np.isnan(scale) | (~np.isnan(floor) & (x <= floor))
        return np.where(default, self.default, out).astype(np.float32)


def associated_lines(path: Path, meta: ModelMetadata, kind: int, what: str) -> list[str] | None:
    """The lines of the output's associated file of a kind (labels, calibration), None if it has none."""
    names = [name for name, k in meta.output.files.items() if k == kind]
    if not names:
        return None
    if names[0] not in meta.archive:
        raise MetadataError(f"{path}: its metadata names the {what} file {names[0]!r}, which the model does not carry")
    try:
        text = meta.archive[names[0]].decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError(f"{path}: its {what} file {names[0]!r} is not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it is not an empty one
    if len(lines) > MAX_LABELS:
        raise MetadataError(f"{path}: its {what} file has {len(lines)} lines, more than {MAX_LABELS}")
    return [line.rstrip("\r") for line in lines]
