"""Scan every other container a loader could read in a model file or folder (SEC006).

:func:`~inspector.loaders.load` reads a file as the format its first bytes name,
but Keras picks the loader by suffix (``.keras`` → zip, ``.h5`` → HDF5) and HDF5
and zip readers both tolerate data around what they read.  A harmless HDF5 model
with a ``.keras`` zip appended, or a zip in the user block of an HDF5 file holding
a ``Lambda``, or a SavedModel folder that also holds a Keras ``config.json`` (or
``.keras``/``.h5`` files) would pass a scan of the first container only.  Here the
other containers (found by :mod:`inspector.loaders.containers`) are scanned with
the same security scans, their facts are added to the graph (named by where they
sit), and the ambiguity itself is a ``SEC006`` fact.  Nothing is executed: configs
are parsed as JSON, HDF5 layouts indexed without tensor bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InspectorError, LimitExceeded
from ..ir import ModelGraph, SecurityFact
from ..limits import current, hint
from ..pathsafety import lies_inside
from .containers import ZipSpan, hdf5_offsets, zip_spans

KERAS_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
"""Files in a SavedModel folder that ``keras.models.load_model`` could be pointed at."""


def containers_of(path: Path) -> tuple[list[int], list[ZipSpan]]:
    """HDF5 superblock offsets and zip archives of the file ``path``."""
    hdf5 = hdf5_offsets(path)
    regions = [(0, hdf5[0])] if hdf5 and hdf5[0] > 0 else []
    return hdf5, zip_spans(path, regions=regions)


def scan_file(graph: ModelGraph, path: Path, *, read_as: str, hdf5: list[int], zips: list[ZipSpan]) -> None:
    """Add to ``graph`` (the file read as ``read_as``: ``keras``, ``keras-h5`` or ``onnx``) the
    facts of every other Keras model in the file, and a SEC006 fact for each."""
    others: list[tuple[str, Any]] = [("zip", span) for span in zips]
    if read_as == "keras-h5":
        first = f"an HDF5 file (superblock at byte {hdf5[0]:,})" if hdf5 else "an HDF5 file"
        if hdf5 and hdf5[0] > 0:
            others.append(("onnx", None))  # a user block: what else is in front of the HDF5 file?
    else:
        first = "an ONNX file" if read_as == "onnx" else "a zip archive"
        others += [("hdf5", off) for off in hdf5[:1]]  # HDF5 reads the first superblock it finds
        if read_as == "keras" and zips:
            read = _directory_read(path)
            others = [(k, w) for k, w in others if k != "zip" or w.directory != read]
    for kind, where in others:
        try:
            if kind == "zip":
                what = f"a zip archive (bytes {where.start:,}–{where.end:,})"
                facts = _zip_facts(path, where)
            elif kind == "onnx":
                what = "an ONNX model"
                facts = _onnx_facts(path)
            else:
                what = f"an HDF5 file (superblock at byte {where:,})"
                facts = _hdf5_facts(path)
        except InspectorError as exc:
            graph.notes.append(f"a second container in the file could not be scanned: {exc}")
            continue
        if facts is None:
            continue  # not a model a loader would read (weights only, no config)
        _add(graph, what, facts, SecurityFact(
            "SEC006", f"the file is {first} and also {what}{'' if kind == 'onnx' else ' holding a Keras model'}: "
                      "inspector reads the first, "
                      "a framework may load the second (Keras chooses by suffix); both were scanned",
            detail=what, kind="polyglot"))


def _directory_read(path: Path) -> int | None:
    """Where the central directory ``zipfile`` reads (the archive inspector loaded) starts."""
    import zipfile  # only for files that hold a zip archive: an ONNX summary starts without it

    try:
        with zipfile.ZipFile(path) as zf:
            return int(zf.start_dir)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, NotImplementedError):
        return None


def scan_folder(graph: ModelGraph, folder: Path) -> None:
    """A SavedModel folder that also holds a Keras model (``config.json``, ``.keras``/``.h5``
    files at its top level): scan each and add a SEC006 fact per model found."""
    from . import load

    candidates = []
    if (folder / "config.json").is_file():
        candidates.append(("config.json", folder))
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if entry.suffix.lower() in KERAS_FILE_SUFFIXES and entry.is_file() and lies_inside(folder, entry):
            candidates.append((entry.name, entry))
    for name, target in candidates:
        try:
            other = _load_keras_folder(target) if target == folder else load(target)
        except InspectorError as exc:
            if name == "config.json" or "model_config" not in str(exc) and "weights only" not in str(exc):
                graph.notes.append(f"the SavedModel folder's {name} could not be scanned: {exc}")
            continue
        what = f"a Keras model ({name})"
        _add(graph, f"its {name}", other.security, SecurityFact(
            "SEC006", f"the SavedModel folder also holds {what}: keras.models.load_model may read it "
                      "instead of the SavedModel; both were scanned", detail=name, kind="polyglot-folder"))


def _load_keras_folder(folder: Path) -> ModelGraph:
    from . import keras_v3

    return keras_v3.load_folder(folder)


def _add(graph: ModelGraph, what: str, facts: list[SecurityFact], ambiguity: SecurityFact) -> None:
    graph.security.append(ambiguity)
    for fact in facts:  # the layers are not the graph's: the message names them
        graph.security.append(SecurityFact(fact.code, f"in {what}: {fact.message}", detail=fact.detail,
                                           kind=fact.kind))


def _zip_facts(path: Path, span: ZipSpan) -> list[SecurityFact] | None:
    """The config scan of the archive ``span``; None when it holds no ``config.json``."""
    import zipfile

    from .h5index import ZipMemberFile
    from .keras_config import parse_json
    from .keras_security import scan_config
    from .keras_v3 import CONFIG_NAME, read_member

    lim = current()
    if span.entries > lim.zip_members:
        raise LimitExceeded(f"the archive lists {span.entries:,} entries, more than the limit of "
                            f"{lim.zip_members:,} ({hint('zip_members')})")
    window = ZipMemberFile(path, 0, span.end)
    try:
        with zipfile.ZipFile(window) as zf:
            members = {i.filename: i for i in zf.infolist()}
            if CONFIG_NAME not in members:
                return None
            raw = read_member(zf, members[CONFIG_NAME], lim.json_bytes, limit_name="json_bytes")
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, NotImplementedError):
        return None
    finally:
        window.close()
    return scan_config(parse_json(raw, what="config.json"))


def _onnx_facts(path: Path) -> list[SecurityFact] | None:
    """The ONNX loader's facts when the file also reads as an ONNX model; None when it does not."""
    from . import onnx

    try:
        return onnx.load(path).security
    except InspectorError:
        return None


def _hdf5_facts(path: Path) -> list[SecurityFact] | None:
    """The config and layout scan of the HDF5 file h5py finds in ``path``; None
    without a ``model_config`` (weights only: not a model Keras would load)."""
    from .h5index import index_h5
    from .keras_config import parse_json
    from .keras_security import scan_config

    index, root = index_h5(path, want_attrs=lambda _: (), root_attrs=("model_config",))
    model_config = root.get("model_config")
    if not isinstance(model_config, str):
        return None
    return scan_config(parse_json(model_config, what="the model_config attribute")) + index.security
