"""Read the *layout* of an HDF5 file — groups, dataset shapes and dtypes, a few
attributes — in one pass, without reading any tensor bytes.

Both Keras loaders sit on this module: ``keras_h5`` opens the ``.h5`` file itself,
``keras_v3`` opens the ``model.weights.h5`` member of a ``.keras`` zip in place
(through :class:`ZipMemberFile`, a read-only window on the archive, so nothing is
extracted and nothing is read into memory).

Why low-level h5py calls: a ResNet50 file has ~650 objects, and h5py's high-level
``Group.__getitem__`` costs ~100 µs per object; ``H5Lvisit``/``H5Ovisit`` plus
``h5d.open`` do the same walk about eight times faster, which is most of what a
summary costs.

Safety.  The walk never follows a soft or external link, never opens a virtual
or external dataset's sources, reads attributes only after checking their stored
size, and stops at the ``hdf5_objects`` limit (:mod:`inspector.limits`).  On
Linux it runs in a forked child process with a time limit, because the HDF5 C
library can loop forever (or crash) on a damaged file.  What it finds is
returned as :class:`~inspector.ir.SecurityFact` objects (``SEC004``) for the lint
rules.  The file is closed when :func:`index_h5` returns; tensors are read later,
one at a time, by :func:`dataset_reader` callables that reopen the file and
refuse virtual, external and "declared far more than stored" datasets.
"""

from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

from .. import isolation
from ..errors import LimitExceeded, ModelLoadError, UnsafeModel
from ..fileio import SeekableReader
from ..ir import SecurityFact
from ..limits import DEFAULTS, current, hint
from ..pathsafety import hdf5_link_fact, hdf5_storage_outside

MAX_OBJECTS = DEFAULTS.hdf5_objects
"""Default most links (groups + datasets) an HDF5 file may hold before it is refused
(the limit in force is :func:`inspector.limits.current`)."""

MAX_ATTRIBUTE_BYTES = DEFAULTS.hdf5_attribute_bytes
"""Default largest attribute read (``model_config`` of a big model is a few MiB)."""

SUSPICIOUS_DECLARED_BYTES = 64 * 1024 * 1024
"""A dataset declaring more than this while storing less than 1/``compression_ratio``
of it (:mod:`inspector.limits`) is reported (SEC004) and never read: real Keras
weights are stored uncompressed."""

SUSPICIOUS_RATIO = DEFAULTS.compression_ratio


def dwarfs_storage(declared: int, stored: int) -> bool:
    """True when a dataset declares far more bytes than it stores (a memory bomb:
    reading it would allocate ``declared`` bytes out of almost nothing)."""
    return declared > SUSPICIOUS_DECLARED_BYTES and stored * current().compression_ratio < declared


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """Shape and dtype of one dataset, from its metadata only."""

    path: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(slots=True)
class H5Index:
    """The layout of an HDF5 file: what :func:`index_h5` found."""

    groups: dict[str, list[str]] = field(default_factory=dict)
    """Group path (``""`` for the root) → names of its children, in HDF5 name order."""
    datasets: dict[str, DatasetInfo] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Group path → the attributes that were asked for and exist."""
    security: list[SecurityFact] = field(default_factory=list)
    security_paths: list[str] = field(default_factory=list)
    """The HDF5 path each fact of ``security`` is about (same order)."""
    hard_link_aliases: dict[str, str] = field(default_factory=dict)
    """Dataset path → the first path of the same object (a tensor stored once,
    linked twice): used as the weight key so shared storage counts once."""

    def children(self, path: str) -> list[str]:
        return self.groups.get(path, [])

    def is_group(self, path: str) -> bool:
        return path in self.groups

    def key(self, path: str) -> str:
        return self.hard_link_aliases.get(path, path)

    def add_fact(self, path: str, message: str, *, kind: str, detail: str | None = None) -> None:
        self.security.append(SecurityFact("SEC004", message, detail=detail, kind=kind))
        self.security_paths.append(path)

    def attributed_security(self, owner_of: Callable[[str], str | None]) -> list[SecurityFact]:
        """The facts, each attributed to the layer that owns its HDF5 path
        (``owner_of(path)`` returns a layer path or None)."""
        out = []
        for fact, path in zip(self.security, self.security_paths, strict=True):  # appended in step by add_security
            layer = owner_of(path)
            out.append(fact if layer is None else SecurityFact(
                fact.code, fact.message, layer=layer, detail=fact.detail, kind=fact.kind))
        return out

    def datasets_under(self, path: str) -> list[DatasetInfo]:
        """Every dataset below group ``path``, depth first, children in name order."""
        out: list[DatasetInfo] = []
        stack = [path]
        while stack:
            g = stack.pop()
            kids = self.groups.get(g, [])
            subgroups = []
            for name in kids:
                child = join(g, name)
                if child in self.datasets:
                    out.append(self.datasets[child])
                elif child in self.groups:
                    subgroups.append(child)
            stack.extend(reversed(subgroups))
        return out


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _decode(value: Any) -> Any:
    """h5py attribute value → plain Python (str for bytes, list of str for arrays)."""
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_decode(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_decode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _dtype_name(dt: Any) -> str:
    import numpy as np

    try:
        dt = np.dtype(dt)
    except TypeError:
        return "unknown"
    if dt.kind in ("S", "U", "O"):
        return "string"
    if dt.kind == "V" and dt.fields is None:
        return f"opaque{dt.itemsize * 8}"
    return str(dt.name)


def read_attrs(obj: Any, names: Iterable[str], *, where: str) -> dict[str, Any]:
    """Read the attributes ``names`` of an h5py object id (group or file), checking
    each one's stored size first; missing attributes are skipped.  Keras 2 splits
    big ``layer_names``/``weight_names`` arrays into ``name0``, ``name1`` …; those
    chunks are joined back."""
    import h5py

    out: dict[str, Any] = {}
    for name in names:
        bname = name.encode()
        if h5py.h5a.exists(obj, bname):
            out[name] = _read_one_attr(obj, bname, where=where)
            continue
        chunks: list[Any] = []
        i = 0
        while h5py.h5a.exists(obj, f"{name}{i}".encode()):
            value = _read_one_attr(obj, f"{name}{i}".encode(), where=where)
            chunks.extend(value if isinstance(value, list) else [value])
            i += 1
        if chunks:
            out[name] = chunks
    return out


def _read_one_attr(obj: Any, bname: bytes, *, where: str) -> Any:
    import h5py

    aid = h5py.h5a.open(obj, bname)
    try:
        size = aid.get_storage_size()
    except RuntimeError:  # HDF5 reports an empty attribute's size as an error
        size = 0
    limit = current().hdf5_attribute_bytes
    if size > limit:
        raise LimitExceeded(
            f"HDF5 attribute {bname.decode()!r} of {where or '/'} is {size:,} bytes, "
            f"more than the {limit:,}-byte limit: the file is not a Keras model "
            f"or was crafted to exhaust memory ({hint('hdf5_attribute_bytes')})"
        )
    atype = aid.get_type()
    if isinstance(atype, h5py.h5t.TypeStringID) and atype.is_variable_str():
        return _read_vlen_strings(aid, bname.decode(), where=where, limit=limit)
    return _decode(h5py.AttributeManager(_IdHolder(obj))[bname.decode()])


def _read_vlen_strings(aid: Any, name: str, *, where: str, limit: int) -> Any:
    """A variable-length string attribute, at most ``limit`` bytes of text in memory.

    Its stored size counts one heap reference per string, not the text: 1,500
    references to one 1 MiB string are 24 KB on disk and 1.5 GB when read.  So the
    strings are read converted to fixed-length strings (HDF5 truncates each one), 256
    bytes wide first and 16 times wider while some string filled its width, as long as
    all of them fit the limit."""
    import h5py
    import numpy as np

    count = 1
    for d in aid.shape or ():
        count *= int(d)
    cap = limit // max(1, count) + 1  # all the strings at this width fit the limit
    width = min(256, cap)
    while True:
        out = np.zeros(aid.shape or (), dtype=f"S{width}")
        try:
            aid.read(out, mtype=h5py.h5t.py_create(out.dtype))
        except (MemoryError, OSError) as exc:
            # HDF5 expands every string before truncating it: an allocation past the
            # memory budget of the child process (index_memory) fails here.
            if isinstance(exc, OSError) and "alloc" not in str(exc).lower():
                raise
            raise LimitExceeded(
                f"HDF5 attribute {name!r} of {where or '/'} holds {count:,} variable-length string(s) that expand "
                f"past the memory budget when read: the file is not a Keras model or was crafted to exhaust "
                f"memory ({hint('hdf5_attribute_bytes')})") from None
        longest = max((len(v) for v in np.atleast_1d(out).tolist()), default=0)
        if longest < width:
            return _decode(out if out.shape else out[()])
        if width >= cap:
            raise LimitExceeded(
                f"HDF5 attribute {name!r} of {where or '/'} holds {count:,} variable-length string(s) longer than "
                f"the {limit:,}-byte limit allows: the file is not a Keras model or was crafted to exhaust memory "
                f"({hint('hdf5_attribute_bytes')})")
        width = min(width * 16, cap)


class _IdHolder:
    """What ``h5py.AttributeManager`` needs of its parent: an ``id``."""

    __slots__ = ("id",)

    def __init__(self, oid: Any) -> None:
        self.id = oid


def index_h5(source: str | os.PathLike[str] | BinaryIO, *,
             want_attrs: Callable[[str], Iterable[str]],
             root_attrs: Iterable[str] = (),
             subject: str = "is",
             what: str = "the file") -> tuple[H5Index, dict[str, Any]]:
    """Walk the HDF5 file ``source`` (a path or a seekable binary file object).

    ``want_attrs(group_path)`` names the attributes to read from each group;
    ``root_attrs`` those of the file's root.  Returns the index and the root
    attributes.  Raises :class:`ModelLoadError` for a file HDF5 cannot read; its
    message starts with ``subject`` (``"is"``, or ``"its model.weights.h5 is"``) and
    ends by blaming ``what``.

    On Linux the walk runs in a forked child process with a time limit
    (``hdf5_seconds`` of :mod:`inspector.limits`): the HDF5 C library loops forever
    on some damaged files (a global heap whose free-space object has size 0) and
    may crash on others, and neither can be interrupted from Python.  The child
    returns the index through a pipe; a child that runs out of time is killed.
    """
    if _ISOLATE:
        return _index_isolated(source, want_attrs=want_attrs, root_attrs=root_attrs, subject=subject, what=what)
    return _index_here(source, want_attrs=want_attrs, root_attrs=root_attrs, subject=subject, what=what)


_ISOLATE = isolation.ISOLATE
"""Whether HDF5 metadata is read in a forked, time-limited child process (:mod:`inspector.isolation`)."""


def disable_plugins() -> None:
    """Empty HDF5's plugin search path: a dataset naming a filter HDF5 does not know
    makes the library list its plugin folders (``HDF5_PLUGIN_PATH``, the default
    ``/usr/local/hdf5/lib/plugin``) and load every shared library there.  Model files
    never need a plugin filter (Keras writes none); without one such data is unreadable."""
    import h5py

    try:
        while h5py.h5pl.size():
            h5py.h5pl.remove(0)
    except Exception:  # pragma: no cover - an HDF5 build without plugin support
        pass


def _index_here(source: str | os.PathLike[str] | BinaryIO, *, want_attrs: Callable[[str], Iterable[str]],
                root_attrs: Iterable[str], subject: str, what: str) -> tuple[H5Index, dict[str, Any]]:
    import h5py

    disable_plugins()

    try:
        f = h5py.File(source, "r", locking=False) if not isinstance(source, (str, os.PathLike)) \
            else h5py.File(os.fspath(source), "r", locking=False)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{subject} not a readable HDF5 file ({_h5_reason(exc)}): {what} is corrupt or truncated"
        ) from None
    try:
        try:
            return _walk(f, want_attrs=want_attrs, root_attrs=root_attrs)
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ModelLoadError(
                f"{subject} a damaged HDF5 file ({_h5_reason(exc)}): {what} is corrupt or truncated"
            ) from None
    finally:
        try:
            f.close()
        except Exception:  # pragma: no cover - closing a broken file
            pass


def _index_isolated(source: str | os.PathLike[str] | BinaryIO, *, want_attrs: Callable[[str], Iterable[str]],
                    root_attrs: Iterable[str], subject: str, what: str) -> tuple[H5Index, dict[str, Any]]:
    import h5py  # imported before the fork, so the child does not pay for it

    assert h5py
    seconds = current().hdf5_seconds
    outcome = isolation.call_in_child(
        lambda: _index_here(source, want_attrs=want_attrs, root_attrs=root_attrs, subject=subject, what=what),
        seconds=seconds, what="indexing the HDF5 file", memory=index_memory())
    if not isinstance(outcome, isolation.Failure):
        return outcome  # type: ignore[no-any-return]
    if outcome.kind == "timeout":
        raise LimitExceeded(
            f"{subject} an HDF5 file the HDF5 library could not finish reading in {seconds:g} s: {what} is damaged "
            f"or crafted to hang its reader ({hint('hdf5_seconds')})")
    if outcome.kind == "crash":
        raise ModelLoadError(f"{subject} an HDF5 file that crashed the HDF5 library (signal {outcome.signal}): "
                             f"{what} is corrupt or crafted")
    raise ModelLoadError(f"{subject} an HDF5 file whose metadata could not be read: {what} is corrupt")


def index_memory() -> int:
    """Address space the HDF5 layout walk may add in its child process: 128 MiB plus
    three times the attribute limit (HDF5 expands variable-length strings in memory)."""
    return 128 * 1024 * 1024 + 3 * current().hdf5_attribute_bytes


def _h5_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # h5py messages look like "Unable to open file (file signature not found)".
    if "(" in text and text.endswith(")"):
        text = text[text.rfind("(") + 1:-1]
    return text[:160]


def _walk(f: Any, *, want_attrs: Callable[[str], Iterable[str]],
          root_attrs: Iterable[str]) -> tuple[H5Index, dict[str, Any]]:
    import h5py

    index = H5Index()
    fid = f.id
    links, kinds = _visit(fid)
    index.groups[""] = []
    seen_objects: dict[int, str] = {}
    for path, ltype, addr in links:
        parent, _, name = path.rpartition("/")
        if parent not in index.groups:
            # The parent is reached through a soft/external link or is not a group.
            continue
        if ltype != h5py.h5l.TYPE_HARD:  # soft, external or user-defined: never followed
            external_or_soft = ltype in (h5py.h5l.TYPE_EXTERNAL, h5py.h5l.TYPE_SOFT)
            target = _link_value(fid, path) if external_or_soft else ""
            link_kind, message = hdf5_link_fact(ltype, path, target)
            index.add_fact(path, message, kind=link_kind, detail=target if external_or_soft else None)
            continue
        bpath = path.encode()
        kind = kinds.get(addr)
        if kind is None:
            info = h5py.h5o.get_info(fid, bpath)
            kind, addr = info.type, info.addr
        if kind == h5py.h5o.TYPE_GROUP:
            index.groups[parent].append(name)
            if addr in seen_objects:
                # A group linked twice: index it once (no cycles, no double counting).
                index.add_fact(path, f"HDF5 group {path!r} is a second hard link to {seen_objects[addr]!r} "
                                     "(Keras writes none; a loop if it contains itself); indexed once",
                               kind="group-alias", detail=seen_objects[addr])
                continue
            seen_objects[addr] = path
            index.groups[path] = []
            names = list(want_attrs(path))
            if names:
                gid = h5py.h5g.open(fid, bpath)
                attrs = read_attrs(gid, names, where=path)
                if attrs:
                    index.attrs[path] = attrs
        elif kind == h5py.h5o.TYPE_DATASET:
            index.groups[parent].append(name)
            if addr in seen_objects:
                index.hard_link_aliases[path] = seen_objects[addr]
            else:
                seen_objects[addr] = path
            index.datasets[path] = _dataset_info(fid, path, bpath, index)
        # Named datatypes and other object kinds carry no weights: skipped.
    attrs = read_attrs(fid, list(root_attrs), where="") if root_attrs else {}
    return index, attrs


def _visit(fid: Any) -> tuple[list[tuple[str, int, int]], dict[int, int]]:
    """Every link of the file as (path, link type, object address), and each object's
    type by address, in two C-level traversals instead of one call per object:
    H5Lvisit lists every link with its type and (for hard links) the object's address,
    without following soft or external links; H5Ovisit gives each object's type.
    Stops past the ``hdf5_objects`` limit."""
    import h5py

    links: list[tuple[str, int, int]] = []
    kinds: dict[int, int] = {}
    max_objects = current().hdf5_objects

    def on_link(name: bytes, info: Any) -> Any:
        links.append((name.decode("utf-8", "replace"), info.type, info.u))
        return True if len(links) > max_objects else None  # True stops the visit

    def on_object(name: bytes, info: Any) -> Any:
        kinds.setdefault(info.addr, info.type)
        return True if len(kinds) > max_objects else None

    fid.links.visit(on_link, info=True)
    if len(links) > max_objects:
        raise LimitExceeded(
            f"the HDF5 file holds more than {max_objects:,} objects: refusing to index it ({hint('hdf5_objects')})"
        )
    h5py.h5o.visit(fid, on_object, info=True)
    return links, kinds


def _link_value(fid: Any, path: str) -> str:
    try:
        val = fid.links.get_val(path.encode())
    except Exception:  # pragma: no cover - unreadable link
        return "?"
    if isinstance(val, tuple):
        return " :: ".join(v.decode("utf-8", "replace") for v in val)
    return val.decode("utf-8", "replace") if isinstance(val, bytes) else str(val)


def _dataset_info(fid: Any, path: str, bpath: bytes, index: H5Index) -> DatasetInfo:
    import h5py

    did = h5py.h5d.open(fid, bpath)
    shape = tuple(int(d) for d in (did.shape or ()))
    dtype = _dtype_name(did.dtype)
    if dtype.startswith("opaque") or dtype == "uint16":
        # Keras 3 writes bfloat16 tensors with an explicit dtype attribute.
        try:
            if h5py.h5a.exists(did, b"dtype"):
                tag = _read_one_attr(did, b"dtype", where=path)
                if isinstance(tag, str):
                    dtype = tag
        except LimitExceeded:
            raise
        except Exception:  # pragma: no cover - odd attribute: keep the storage dtype
            pass
    problem = storage_problem(did)
    if problem is not None:
        kind, message = problem
        index.add_fact(path, f"HDF5 dataset {path!r} {message}", kind=kind)
    return DatasetInfo(path, shape, dtype)


def storage_problem(did: Any) -> tuple[str, str] | None:
    """Why the dataset ``did`` must not be read, as (kind, explanation), or None.

    A dataset that keeps its bytes in other files (:func:`inspector.pathsafety.hdf5_storage_outside`)
    makes HDF5 open them; a dataset declaring far more than it stores expands out of
    nothing when read."""
    outside = hdf5_storage_outside(did.get_create_plist())
    if outside is not None:
        return outside
    n = 1
    for d in did.shape or ():
        n *= int(d)
    declared = n * did.dtype.itemsize
    if declared > SUSPICIOUS_DECLARED_BYTES:
        stored = did.get_storage_size()
        if dwarfs_storage(declared, stored):
            return "declared-size", (f"declares {declared:,} bytes but stores {stored:,}: reading it would "
                                     "allocate memory out of nothing; it is never read")
    return None


# -- a .keras member read in place ------------------------------------------------------

class ZipMemberFile(SeekableReader):
    """A read-only, seekable window on an uncompressed (stored) zip member.

    h5py reads HDF5 from any Python file object; this one maps reads to the
    member's bytes inside the archive, so a 100 MB weights file is neither
    extracted nor loaded into memory, and seeks cost nothing (``zipfile``'s own
    member objects re-read from the start on every backward seek).
    """

    def __init__(self, path: str | os.PathLike[str], offset: int, size: int) -> None:
        super().__init__()
        self._fh = open(path, "rb")
        self._offset = offset
        self.size = size
        self._pos = 0

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        n = min(len(view), max(0, self.size - self._pos))
        if n == 0:
            return 0
        self._fh.seek(self._offset + self._pos)
        got = self._fh.readinto(view[:n])
        self._pos += got or 0
        return got or 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        buf = bytearray(min(size, max(0, self.size - self._pos)))
        n = self.readinto(buf)
        return bytes(buf[:n])

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


def stored_member_span(path: str | os.PathLike[str], info: zipfile.ZipInfo) -> tuple[int, int]:
    """(offset of the member's data in the archive, its size) for a stored member."""
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise ModelLoadError(f"the zip entry {info.filename!r} has a damaged local header: the archive is corrupt")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    offset = info.header_offset + 30 + name_len + extra_len
    size = info.file_size
    total = Path(path).stat().st_size
    if offset + size > total:
        raise ModelLoadError(
            f"the zip entry {info.filename!r} runs past the end of the archive: the file is truncated")
    return offset, size


def _check_numeric(ds: Any, path: str) -> None:
    """Refuse, before reading a value, a tensor whose stored type is not numbers: strings
    (variable-length ones declare 16 bytes per element, whatever each holds or its fill
    value expands to), compound, opaque (other than a tagged bfloat16) or reference types."""
    dt = ds.dtype
    if dt.kind in "biufc" and dt.fields is None:
        return
    if dt.kind == "V" and dt.fields is None and dt.itemsize == 2:
        tag = ds.attrs.get("dtype") if "dtype" in ds.attrs else None
        if tag in ("bfloat16", b"bfloat16"):
            return
    raise ModelLoadError(f"tensor {path!r} is stored as {_dtype_name(dt)}, not as numbers: its values are not read")


def dataset_reader(opener: Callable[[], Any], path: str) -> Callable[[], Any]:
    """A callable that opens the HDF5 file (``opener()`` returns a path or file object),
    reads the one dataset ``path`` and closes everything again."""

    def read() -> Any:
        import h5py
        import numpy as np

        disable_plugins()
        src = opener()
        try:
            with h5py.File(src, "r", locking=False) as f:
                ds = f[path]
                if not isinstance(ds, h5py.Dataset):
                    raise ModelLoadError(f"{path!r} is not a dataset")
                problem = storage_problem(ds.id)
                if problem is not None:
                    error = LimitExceeded if problem[0] == "declared-size" else UnsafeModel
                    raise error(f"tensor {path!r} {problem[1]}")
                _check_numeric(ds, path)
                declared = ds.size * ds.dtype.itemsize
                limit = current().tensor_bytes
                if declared > limit:
                    raise LimitExceeded(f"tensor {path!r} declares {declared:,} bytes, more than the "
                                        f"{limit:,}-byte limit ({hint('tensor_bytes')})")
                value = ds[()]
                tag = ds.attrs.get("dtype")
                if isinstance(tag, bytes):
                    tag = tag.decode()
                if tag == "bfloat16":
                    try:
                        import ml_dtypes

                        value = np.asarray(value).view(ml_dtypes.bfloat16) if value.dtype.itemsize == 2 \
                            else np.asarray(value, dtype=ml_dtypes.bfloat16)
                    except ImportError:  # pragma: no cover - ml_dtypes comes with keras/tensorflow
                        pass
                return np.asarray(value)
        except OSError as exc:
            raise ModelLoadError(f"cannot read tensor {path!r}: {_h5_reason(exc)}") from None
        finally:
            if hasattr(src, "close"):
                src.close()

    return read
