"""Would writing a result file destroy an input?  (``-o``, ``--write-baseline`` and the like.)

A command that writes its result over the model it reads loses the model: ``graph m.onnx -o
m.onnx``, an output written into a SavedModel folder, or over the ``weights.bin`` an ONNX model
keeps its tensors in.  :func:`clash` compares an output path with one input by resolved path and
by inode (symbolic and hard links included), and looks inside input folders and at the external
data files of input ONNX models.  ``commands/_options.check_output`` turns its answer into the
one-line error.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

ONNX_SUFFIXES = (".onnx", ".onnxtxt", ".pbtxt", ".textproto", ".txtpb")
"""Suffixes of ONNX files whose external data files an output must not replace."""


def _real(path: Path) -> Path:
    """The real path of ``path`` (symbolic links resolved, also when its last part does not exist)."""
    return Path(os.path.realpath(path))


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: equal real paths, or the same inode (a hard link)."""
    if _real(a) == _real(b):
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    real, top = _real(path), _real(folder)
    return real != top and top in real.parents


def _mentions(model: Path, name: str) -> bool:
    """Whether the bytes of ``name`` occur in ``model`` (a cheap test before loading it)."""
    needle = name.encode("utf-8", "surrogatepass")
    try:
        with model.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return False
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return data.find(needle) >= 0
    except (OSError, ValueError):
        return False


def _external_files(model: Path) -> list[Path]:
    """The external-data files the ONNX ``model`` reads (none when it cannot be loaded: the
    command then reports that error itself)."""
    from .batch import load_graph
    from .errors import InspectorError

    try:
        graph = load_graph(str(model))
    except InspectorError:
        return []
    entries = graph.metadata.get("external_data") or []
    return [model.parent / str(e.get("location")) for e in entries if isinstance(e, dict) and e.get("location")]


def _overwrites_external_data(target: Path, model: Path) -> bool:
    if not model.is_file() or model.suffix.lower() not in ONNX_SUFFIXES:
        return False
    if not target.is_file():
        return False  # nothing there yet: writing it destroys nothing
    hard_linked = target.stat().st_nlink > 1
    if not hard_linked and not _mentions(model, _real(target).name):
        return False  # the model names no file of that name: no need to load it
    return any(same_file(target, data) for data in _external_files(model))


def clash(output: str, source: str) -> str | None:
    """Why writing ``output`` would destroy the input ``source`` (``"over an input file"`` …), or ``None``."""
    target, item = Path(output), Path(source)
    if same_file(target, item):
        return "over an input file"
    if item.is_dir() and _inside(target, item):
        return f"inside the input folder {source}"
    if _overwrites_external_data(target, item):
        return f"over an external data file of {source}"
    return None
