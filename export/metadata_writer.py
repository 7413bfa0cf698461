"""Write the standard TFLite model metadata into a .tflite file, in pure Python.

The metadata is a FlatBuffer of the TFLite metadata schema (tflite-support's metadata_schema.fbs,
identifier M001), packed here with the ``flatbuffers`` package, field by field in the order that
schema's generated object API packs them, so the bytes are those tflite-support 0.4.4's
``image_classifier.MetadataWriter`` writes (tests/test_metadata.py holds its output). The model is
repacked with TensorFlow's own TFLite schema (``flatbuffer_utils``) to point a new buffer at it, and
the associated files (labels, score calibration) are appended as a zip, as the schema specifies.

tflite-support itself is not used: its metadata module loads a compiled library that links
libusb-1.0, which a new machine does not have, and it pins protobuf below 4 where TensorFlow needs 6.
A job is what ``export.metadata.describe`` returns.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import flatbuffers
import numpy as np
from tensorflow.lite.tools import flatbuffer_utils

from toolkit.atomic import write_atomic

# Every field we write is in metadata schema 1.0.0 (tflite-support's metadata_version.cc raises the
# version only for tokenizers, tensor groups, audio, value ranges, custom metadata and the like).
MIN_PARSER_VERSION = "1.0.0"
METADATA_NAME = "TFLITE_METADATA"
# Enum values of the two schemas.
FLOAT32, UINT8 = 0, 3  # tflite TensorType
RGB = 1  # ColorSpaceType
FEATURE_PROPERTIES, IMAGE_PROPERTIES = 1, 2  # ContentProperties
NORMALIZATION, SCORE_CALIBRATION = 1, 2  # ProcessUnitOptions
LABELS_FILE, CALIBRATION_FILE = 2, 4  # AssociatedFileType: TENSOR_AXIS_LABELS, TENSOR_AXIS_SCORE_CALIBRATION
ZIP_TIME = (2000, 1, 1, 0, 0, 0)  # the associated files' time in the zip: an export is reproducible byte for byte
LABELS_DESCRIPTION = "Labels for categories that the model can recognize."
CALIBRATION_DESCRIPTION = ("Contains sigmoid-based score calibration parameters. The main purposes of score "
                           "calibration is to make scores across classes comparable, so that a common threshold "
                           "can be used for all output classes.")

Pack = Callable[[flatbuffers.Builder], int]  # writes a child object, returns its offset
Field = tuple[int, str, object]  # slot, kind ("offset", "uint8", "int8", "float32"), value (a Pack for offsets)


def _table(n_slots: int, fields: Sequence[Field]) -> Pack:
    """A table as flatc's Python object API packs it: its children first, in field order, then the
    table with its fields in field order; a scalar equal to its default (0) is left out."""
    def pack(b: flatbuffers.Builder) -> int:
        children = {slot: value(b) for slot, kind, value in fields if kind == "offset"}
        b.StartObject(n_slots)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, children[slot], 0)
            elif kind == "uint8":
                b.PrependUint8Slot(slot, value, 0)
            elif kind == "int8":
                b.PrependInt8Slot(slot, value, 0)
            else:
                b.PrependFloat32Slot(slot, value, 0.0)
        return b.EndObject()
    return pack


def _string(text: str) -> Pack:
    return lambda b: b.CreateString(text)


def _floats(values: Sequence[float]) -> Pack:
    return lambda b: b.CreateNumpyVector(np.asarray(values, dtype=np.float32))


def _tables(items: Sequence[Pack]) -> Pack:
    def pack(b: flatbuffers.Builder) -> int:
        offsets = [item(b) for item in items]
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()
    return pack


def _stats(low: list[float] | None, high: list[float] | None) -> Pack:
    fields = [] if high is None else [(0, "offset", _floats(high)), (1, "offset", _floats(low))]
    return _table(2, fields)


def _file(name: str, description: str, kind: int) -> Pack:
    return _table(5, [(0, "offset", _string(name)), (1, "offset", _string(description)), (2, "int8", kind)])


def _tensor(name: str, description: str, content: Pack, units: list[Pack], stats: Pack,
            files: list[Pack]) -> Pack:
    fields: list[Field] = [(0, "offset", _string(name)), (1, "offset", _string(description)), (3, "offset", content)]
    if units:
        fields.append((4, "offset", _tables(units)))
    fields.append((5, "offset", stats))
    if files:
        fields.append((6, "offset", _tables(files)))
    return _table(7, fields)


def _image_input(job: dict, tensor_type: int) -> Pack:
    """RGB, the normalization if any, and the value range tflite-support derives from the type."""
    norm = job["normalization"]
    content = _table(3, [(0, "uint8", IMAGE_PROPERTIES), (1, "offset", _table(2, [(0, "int8", RGB)]))])
    units, low, high = [], None, None
    if norm:
        options = _table(2, [(0, "offset", _floats(norm["mean"])), (1, "offset", _floats(norm["std"]))])
        units = [_table(2, [(0, "uint8", NORMALIZATION), (1, "offset", options)])]
    if tensor_type == UINT8:
        low, high = [0.0], [255.0]
    elif tensor_type == FLOAT32 and norm:
        low = [(0.0 - m) / s for m, s in zip(norm["mean"], norm["std"])]
        high = [(255.0 - m) / s for m, s in zip(norm["mean"], norm["std"])]
    return _tensor("image", job["input_description"], content, units, _stats(low, high), [])


def _scores_output(job: dict, tensor_type: int) -> Pack:
    """Probabilities with a labels file and, for logits, a sigmoid score calibration file."""
    content = _table(3, [(0, "uint8", FEATURE_PROPERTIES), (1, "offset", _table(0, []))])
    files = [_file("labels.txt", LABELS_DESCRIPTION, LABELS_FILE)]
    units = []
    if job["sigmoid"]:
        files.append(_file("sigmoid_calibration.txt", CALIBRATION_DESCRIPTION, CALIBRATION_FILE))
        # transformation IDENTITY and default score 0: both the schema's defaults, so both left out
        units = [_table(2, [(0, "uint8", SCORE_CALIBRATION), (1, "offset", _table(2, []))])]
    low, high = {UINT8: ([0.0], [255.0]), FLOAT32: ([0.0], [1.0])}.get(tensor_type, (None, None))
    return _tensor("scores", job["output_description"], content, units, _stats(low, high), files)


def metadata_buffer(job: dict, input_type: int, output_type: int) -> bytes:
    """The M001 FlatBuffer of one file's ModelMetadata."""
    subgraph = _table(10, [(2, "offset", _tables([_image_input(job, input_type)])),
                           (3, "offset", _tables([_scores_output(job, output_type)]))])
    root = _table(8, [(0, "offset", _string(job["name"])), (1, "offset", _string(job["description"])),
                      (2, "offset", _string(job["version"])), (3, "offset", _tables([subgraph])),
                      (4, "offset", _string(job["author"])), (7, "offset", _string(MIN_PARSER_VERSION))])
    b = flatbuffers.Builder(0)
    b.Finish(root(b), file_identifier=b"M001")
    return bytes(b.Output())


def associated_files(job: dict) -> dict[str, bytes]:
    """The files the metadata names, in the order it names them."""
    files = {"labels.txt": ("\n".join(job["labels"]) + "\n").encode()}
    if job["sigmoid"]:  # one line a class: scale 1, slope 1, offset 0 make the score sigmoid(logit)
        files["sigmoid_calibration.txt"] = "\n".join("1.0,1.0,0.0" for _ in job["labels"]).encode()
    return files


def with_metadata(model_bytes: bytes, job: dict) -> bytes:
    """The model with the job's metadata in a buffer named TFLITE_METADATA (replaced if there is
    one) and its associated files appended as a zip."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    graph = model.subgraphs[0]
    buffer = metadata_buffer(job, graph.tensors[graph.inputs[0]].type, graph.tensors[graph.outputs[0]].type)
    entry = next((m for m in model.metadata or [] if m.name.decode() == METADATA_NAME), None)
    if entry is None:
        model.buffers.append(flatbuffer_utils.schema_fb.BufferT())
        entry = flatbuffer_utils.schema_fb.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
    model.buffers[entry.buffer].data = np.frombuffer(buffer, dtype=np.uint8)
    out = io.BytesIO(flatbuffer_utils.convert_object_to_bytearray(model))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:  # no zip yet: appended, offsets counted from the file's start
        for name, data in associated_files(job).items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.external_attr = 0o600 << 16  # what ZipFile.writestr gives a file named by a string
            archive.writestr(info, data)
    return out.getvalue()


def write(job: dict) -> None:
    """Rewrite the job's file with its metadata, through a temporary file and a rename."""
    path = Path(job["path"])
    write_atomic(path, with_metadata(path.read_bytes(), job))
