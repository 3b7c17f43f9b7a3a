"""Loaders: one module per format; :func:`load` picks the module by content.

Every loader exposes ``load(path: pathlib.Path) -> ModelGraph`` and raises
:class:`~inspector.errors.InspectorError` subclasses for anything it cannot read.
Detection looks at the bytes first and the suffix second, so a ``.bin`` that is
really an ONNX file loads, and a ``.keras`` that is really HDF5 loads as HDF5.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..errors import ModelLoadError, UnsupportedFormat
from ..ir import ModelGraph

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
KERAS_SUFFIXES = {".keras"}
H5_SUFFIXES = {".h5", ".hdf5", ".keras"}
ONNX_SUFFIXES = {".onnx", ".ort", ".pb", ".onnxtxt"}


def _is_hdf5(head: bytes, path: Path) -> bool:
    if head.startswith(HDF5_SIGNATURE):
        return True
    # HDF5 allows a user block: the superblock then sits at 512, 1024, 2048 … bytes.
    # (The format is chosen from the first MiB; polyglot.py looks for superblocks further on.)
    from .containers import hdf5_offsets

    return bool(hdf5_offsets(path, limit=1 << 20))


def detect(path: str | os.PathLike[str]) -> str:
    """Name of the loader for ``path``: ``keras``, ``keras-h5``, ``savedmodel`` or ``onnx``."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError("no such file or directory")
    if p.is_dir():
        if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
            return "savedmodel"
        if (p / "config.json").is_file():  # an unzipped .keras (model.save(dir, zipped=False))
            return "keras"
        raise UnsupportedFormat(
            "is a directory without saved_model.pb: point inspector at a model file or a SavedModel folder"
        )
    if not p.is_file():
        raise UnsupportedFormat("is not a regular file")
    try:
        with p.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise ModelLoadError("is empty (0 bytes): not a model file")
    if head.startswith(ZIP_SIGNATURES):
        return "keras"
    if _is_hdf5(head, p):
        return "keras-h5"
    suffix = p.suffix.lower()
    if suffix not in ONNX_SUFFIXES | H5_SUFFIXES and _is_text(head):
        raise UnsupportedFormat(
            f"not a model file (suffix {suffix or 'none'!r}, no model signature): "
            "inspector reads .keras, .h5, .onnx files and SavedModel folders"
        )
    if suffix in ONNX_SUFFIXES or _looks_like_onnx(head):
        return "onnx"
    if suffix in KERAS_SUFFIXES or suffix in H5_SUFFIXES:
        kind = "a .keras zip archive" if suffix == ".keras" else "an HDF5 file"
        raise ModelLoadError(f"is not {kind} (no zip or HDF5 signature): the file is corrupt or not a Keras model")
    raise UnsupportedFormat(
        f"unknown model format (suffix {suffix or 'none'!r}): "
        "inspector reads .keras, .h5, .onnx files and SavedModel folders"
    )


def _is_text(head: bytes) -> bool:
    # Source files, notes, CSV logs: printable characters (UTF-8 included) and whitespace only.
    # A binary ONNX ModelProto starts with tag and varint bytes below 0x20 (ir_version: 0x08).
    return all(b >= 32 and b != 127 or b in (9, 10, 13) for b in head)


def _looks_like_onnx(head: bytes) -> bool:
    # A ModelProto starts with field 1 (ir_version, varint: 0x08) in every exporter
    # we know of; field 7 (graph, 0x3a) or 2-4 (producer strings) occasionally first.
    return bool(head) and head[0] in (0x08, 0x12, 0x1A, 0x22, 0x3A)


def load(path: str | os.PathLike[str], *, dims: Mapping[str, int] | None = None,
         dims_found: set[str] | None = None) -> ModelGraph:
    """Read the model at ``path`` into a :class:`ModelGraph`, statically where possible; ``dims``
    binds symbolic dims to numbers before shapes are computed (:mod:`.bind`; with ``dims_found``,
    names that are not symbols of the model are skipped and the others added to that set).

    A Keras file that is also another container (an HDF5 file with a zip appended, a
    zip in an HDF5 user block) or a SavedModel folder that also holds a Keras model has
    every other container scanned too (:mod:`inspector.loaders.polyglot`, SEC006)."""
    p = Path(path)
    kind = detect(p)
    if kind in ("keras", "keras-h5") and p.is_file():
        graph = _load_keras_file(p, kind)
    elif kind == "keras":
        from . import keras_v3

        graph = keras_v3.load(p)
    elif kind == "savedmodel":
        from . import polyglot, savedmodel

        graph = savedmodel.load(p)
        polyglot.scan_folder(graph, p)
    else:
        from . import onnx, polyglot

        graph = onnx.load(p, dims=dims, dims_found=dims_found)
        if p.is_file():
            hdf5, zips = polyglot.containers_of(p)
            polyglot.scan_file(graph, p, read_as="onnx", hdf5=hdf5, zips=zips)
    if dims and kind != "onnx":
        from .bind import bind_graph

        bind_graph(graph, dims, found=dims_found)
    graph.path = str(path)
    return graph


def _load_keras_file(p: Path, kind: str) -> ModelGraph:
    """A ``.keras`` zip or ``.h5`` file, then every other container it holds.  A zip whose
    archive no reader finds but that holds an HDF5 file after its first bytes is read as HDF5."""
    from . import keras_h5, keras_v3, polyglot

    hdf5, zips = polyglot.containers_of(p)
    if kind == "keras":
        try:
            graph = keras_v3.load(p)
        except ModelLoadError as exc:
            if not hdf5:
                raise
            try:
                kind, graph = "keras-h5", keras_h5.load(p)
            except ModelLoadError:
                raise exc from None
    else:
        graph = keras_h5.load(p)
    polyglot.scan_file(graph, p, read_as=kind, hdf5=hdf5, zips=zips)
    return graph
