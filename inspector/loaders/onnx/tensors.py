"""Lazy readers of stored ONNX tensors: inline, skipped by the wire reader,
external, generated; each checks the ``tensor_bytes`` limit before allocating."""

from __future__ import annotations

import os
import stat
import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ... import limits
from ...errors import LimitExceeded, ModelLoadError, UnsafeModel
from ...isolation import one_line
from ...limits import hint
from ...pathsafety import resolve_inside
from . import wire
from .fold import np_dtype, num_elements
from .protos import dtype_name
from .wire import PROTOBUF_MAX_BYTES

# -- lazy readers ---------------------------------------------------------------------------
# Every reader checks the tensor's declared size against the ``tensor_bytes`` limit in
# force when it is called, before it allocates anything, and turns a tensor whose
# stored bytes do not decode into one ModelLoadError sentence.
_SUB_BYTE_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2, 27: 6, 28: 6}
"""Data types packed several to a byte in ``raw_data`` (uint4, int4, float4, uint2, int2, float6)."""


_NUMPY_NAMES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
                10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128"}
"""ONNX data types numpy knows by itself (as ``onnx.helper.tensor_dtype_to_np_dtype`` maps them): reading
them needs no ``import onnx``, whose helper imports ml_dtypes (0.4-0.9 s)."""


def _np_type(data_type: int, name: str) -> Any:
    """The numpy dtype of ONNX ``data_type`` (ml_dtypes types included)."""
    import numpy as np

    plain = _NUMPY_NAMES.get(int(data_type))
    if plain is not None:
        return np.dtype(plain)
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(int(data_type)))
    except (KeyError, TypeError, ValueError):
        raise ModelLoadError(
            f"tensor {name!r} has data type {int(data_type)}, which is not an ONNX data type this version of onnx "
            "can decode") from None


def _check_tensor_bytes(name: str, dims: tuple[int, ...], data_type: int) -> Any:
    """Refuse a tensor whose values would take more memory than ``tensor_bytes``;
    return its numpy dtype."""
    dt = _np_type(data_type, name)
    _check_size(f"tensor {name!r}", dims, dt)
    return dt


def _check_size(what: str, dims: tuple[int, ...], dt: Any) -> None:
    """Refuse ``what`` (a tensor of ``dims`` and numpy dtype ``dt``) when it would take
    more memory than the ``tensor_bytes`` limit in force now."""
    nbytes = num_elements(dims) * dt.itemsize
    limit = limits.current().tensor_bytes
    if nbytes > limit:
        raise LimitExceeded(
            f"{what} declares {nbytes:,} bytes, more than the tensor_bytes limit of {limit:,} bytes; "
            f"{hint('tensor_bytes')}")


def _stored_bytes(dims: tuple[int, ...], data_type: int, dt: Any) -> int:
    """Bytes the ``raw_data`` of a tensor of ``dims`` and ``data_type`` takes."""
    bits = _SUB_BYTE_BITS.get(int(data_type))
    if bits is not None:
        return (num_elements(dims) * bits + 7) // 8
    return num_elements(dims) * int(dt.itemsize)


def _array_from_proto(t: Any, name: str) -> Any:
    """``numpy_helper.to_array`` of an inline ``TensorProto``, its failures as one sentence.
    ``raw_data`` of a type numpy knows by itself is decoded here, without ``import onnx``
    (whose helper imports ml_dtypes: 0.4-0.9 s in every fresh process or worker)."""
    if t.data_location == 1:  # pragma: no cover - callers pass inline tensors only
        raise ModelLoadError(f"tensor {name!r} is marked as external data and has no inline values")
    plain = _NUMPY_NAMES.get(int(t.data_type))
    if plain is not None and t.raw_data:
        import numpy as np

        buf = np.frombuffer(t.raw_data, dtype=np.uint8).copy()
        return _array_from_raw(buf, tuple(int(d) for d in t.dims), int(t.data_type), np.dtype(plain), name)
    from onnx import numpy_helper

    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # what to_array raises on inconsistent data
        raise ModelLoadError(
            f"tensor {name!r} cannot be decoded ({one_line(exc, 100)}); its stored values do not match its shape "
            "and data type") from None


def _array_from_raw(buf: Any, dims: tuple[int, ...], data_type: int, dt: Any, name: str) -> Any:
    """The array that little-endian ``raw_data`` bytes ``buf`` (a uint8 array) hold."""
    if int(data_type) == 8:
        raise ModelLoadError(f"tensor {name!r} stores strings as raw bytes, which ONNX does not allow")
    expected = _stored_bytes(dims, data_type, dt)
    if buf.size != expected:
        raise ModelLoadError(
            f"tensor {name!r} stores {buf.size:,} bytes, but {num_elements(dims):,} {dtype_name(data_type)} values "
            f"need {expected:,}; the file is corrupt")
    if int(data_type) in _SUB_BYTE_BITS:  # packed: let onnx unpack it (bounded by tensor_bytes above)
        import onnx

        t = onnx.TensorProto(data_type=int(data_type), dims=dims)
        t.raw_data = buf.tobytes()
        return _array_from_proto(t, name)
    arr = buf.view(dt)
    if sys.byteorder == "big":  # pragma: no cover - ONNX stores little-endian
        arr = arr.byteswap()
    return arr.reshape(dims)


def _read_raw(path: Path, offset: int, nbytes: int, what: str) -> Any:
    """``nbytes`` bytes of ``path`` at ``offset`` as a fresh uint8 array (one copy)."""
    import numpy as np

    buf = np.empty(nbytes, dtype=np.uint8)
    try:
        wire.read_into(path, offset, buf.data, what=what)
    except OSError as exc:
        raise ModelLoadError(f"{what} cannot be read from {path.name}: {exc.strerror or exc}") from None
    return buf


def proto_reader(t: Any, name: str) -> Callable[[], Any]:
    def read() -> Any:
        _check_tensor_bytes(name, tuple(int(d) for d in t.dims), t.data_type)
        return _array_from_proto(t, name)

    return read


def inline_reader(path: Path, where: wire.InlineTensor, name: str, dims: tuple[int, ...],
                   data_type: int) -> Callable[[], Any]:
    """Read a tensor stored in the model file whose bytes the loader skipped.

    ``raw_data`` goes straight from the file into the array, so a tensor bigger than
    protobuf's 2 GiB limit reads like any other; values in the typed fields
    (``float_data`` …) are decoded by protobuf, which caps them at 2 GiB."""
    def read() -> Any:
        dt = _check_tensor_bytes(name, dims, data_type)
        if where.raw is not None:
            start, end = where.raw
            expected = _stored_bytes(dims, data_type, dt)
            if end - start != expected:  # checked before reading a byte
                raise ModelLoadError(
                    f"tensor {name!r} stores {end - start:,} bytes, but {num_elements(dims):,} {dtype_name(data_type)} "
                    f"values need {expected:,}; the file is corrupt")
            buf = _read_raw(path, start, end - start, f"tensor {name!r}")
            return _array_from_raw(buf, dims, data_type, dt, name)
        import onnx
        from google.protobuf.message import DecodeError

        encoded = where.end - where.start
        if encoded > PROTOBUF_MAX_BYTES:
            raise ModelLoadError(
                f"tensor {name!r} stores {encoded:,} bytes of values in typed protobuf fields, more "
                "than protobuf's 2 GiB limit; it cannot be decoded (store it as raw_data or as external data)")
        if int(data_type) != 8 and encoded > 10 * num_elements(dims) * dt.itemsize + 4096:
            # a number takes at most 10 bytes (a varint) in the typed fields
            raise ModelLoadError(
                f"tensor {name!r} stores {encoded:,} bytes of values, far more than its shape {list(dims)} of "
                f"{dtype_name(data_type)} holds; the file is corrupt")
        try:
            data = wire.read_range(path, where.start, where.end)
        except OSError as exc:
            raise ModelLoadError(f"tensor {name!r} cannot be read from {path.name}: {exc.strerror or exc}") from None
        t = onnx.TensorProto()
        try:
            t.ParseFromString(data)
        except DecodeError as exc:
            raise ModelLoadError(f"tensor {name!r} is corrupt ({one_line(exc, 100)})") from None
        del data
        return _array_from_proto(t, name)

    return read


def external_reader(files: DataFiles, location: str, offset: int, length: int | None, dims: tuple[int, ...],
                    data_type: int, name: str) -> Callable[[], Any]:
    """Read a tensor stored in the external data file ``location`` (through ``files``: the load's
    data files, each checked and opened once)."""
    def read() -> Any:
        dt = _check_tensor_bytes(name, dims, data_type)
        opened = files.open(location, name)
        try:
            expected = _stored_bytes(dims, data_type, dt)
            want = length if length is not None else expected
            if offset < 0 or want < 0 or offset + want > opened.size:
                raise ModelLoadError(
                    f"external data of {name!r} (offset {offset:,}, length {want:,}) lies beyond the end of "
                    f"{location!r} ({opened.size:,} bytes)")
            if want != expected:
                raise ModelLoadError(
                    f"external data of {name!r} is {want:,} bytes long, but {num_elements(dims):,} "
                    f"{dtype_name(data_type)} values need {expected:,}; the model or {location!r} is corrupt")
            buf = opened.read(offset, want, f"external data of {name!r}")
        finally:
            files.release(opened)
        return _array_from_raw(buf, dims, data_type, dt, name)

    return read


# -- external data files ----------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class OpenedData:
    """One external data file, opened after its path checks and tied to them (see :class:`DataFiles`)."""

    fd: int
    size: int
    """Its size when opened (``fstat``): reads past it are refused before reading."""
    real: Path
    """Its real path (for messages)."""
    users: int = 0
    """Reads in progress (:meth:`DataFiles.open` to :meth:`DataFiles.release`): the descriptor is closed
    only when none is, so its number is never reused for another file under a read."""
    retired: bool = False
    """Closed to make room (or with its load) while read: the last read closes it."""

    def read(self, offset: int, nbytes: int, what: str) -> Any:
        """``nbytes`` bytes at ``offset`` as a fresh uint8 array (one copy, positioned reads of the open file)."""
        import numpy as np

        buf = np.empty(nbytes, dtype=np.uint8)
        out, done = buf.data.cast("B"), 0
        try:
            while done < nbytes:
                n = _pread_into(self.fd, out[done:done + wire.READ_CHUNK], offset + done)
                if not n:
                    raise ModelLoadError(
                        f"{what} is cut short: bytes {offset + done:,}-{offset + nbytes:,} of {self.real.name} "
                        "are missing (the file is truncated or changed on disk)")
                done += n
        except OSError as exc:
            raise ModelLoadError(f"{what} cannot be read from {self.real.name}: {exc.strerror or exc}") from None
        return buf


class DataFiles:
    """The external data files of one loaded model: each location is checked and opened once, not per tensor.

    The first read from a location runs the path rules (:func:`~inspector.pathsafety.resolve_inside`:
    not absolute, no ``..``, real path inside the model's folder, one name only), requires a regular
    file, opens it with ``O_NOFOLLOW`` and ``O_NONBLOCK`` (a FIFO swapped in cannot block the open) and
    ties the open file to the checks: ``fstat`` of the descriptor must be a regular file with one name,
    and, after the open, the location must still resolve inside the folder to that very file (device
    and inode).  A file swapped in between the checks and the open is refused; one swapped in later is
    never read, because every read is a positioned read (``pread``) of the descriptor checked.  At most
    :attr:`KEEP_OPEN` files stay open (a model may keep every tensor in a file of its own); a file
    closed to make room is checked again on its next read (:attr:`KEEP_OPEN_ALL` over all loads, so
    graphs kept alive hold few descriptors).  Refused locations are not remembered:
    each read of one fails with the message it always had.  The descriptors close when the graph
    holding the readers is dropped."""

    KEEP_OPEN = 16
    """Data files one load keeps open."""
    KEEP_OPEN_ALL = 64
    """Data files all loads together keep open (graphs kept alive keep no more descriptors than this)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._open: OrderedDict[str, OpenedData] = OrderedDict()
        self._closer = weakref.finalize(self, _close_all, self._open)

    def open(self, location: str, name: str) -> OpenedData:
        """``location`` opened and checked (cached), held for a read until :meth:`release`: a file closed
        meanwhile to make room (by another thread) stays open until then.  The errors name the tensor
        ``name`` being read."""
        mine = self._open
        with _LOCK:
            opened = mine.get(location)
            if opened is not None:
                mine.move_to_end(location)
                _RECENT.move_to_end((id(mine), location))
                opened.users += 1
                return opened
            opened = self._check_and_open(location, name)
            mine[location] = opened
            _RECENT[(id(mine), location)] = mine
            while len(mine) > self.KEEP_OPEN:
                _forget(mine, next(iter(mine)))
            while len(_RECENT) > self.KEEP_OPEN_ALL:
                (_, oldest), owner = next(iter(_RECENT.items()))
                _forget(owner, oldest)
            opened.users += 1
            return opened

    @staticmethod
    def release(opened: OpenedData) -> None:
        """The read :meth:`open` held ``opened`` for is done (a retired file's last read closes it)."""
        with _LOCK:
            opened.users -= 1
            if opened.retired and opened.users == 0:
                _close(opened.fd)

    def close(self) -> None:
        """Close every open data file now (they reopen, checked again, on the next read)."""
        _close_all(self._open)

    def _check_and_open(self, location: str, name: str) -> OpenedData:
        resolved, reason = resolve_inside(self.base, location)
        if resolved is None:
            raise UnsafeModel(f"external data {location!r} of {name!r} is outside the model's folder ({reason})")
        missing = ModelLoadError(f"external data file {location!r} of {name!r} is missing or not a regular file")
        try:
            regular = stat.S_ISREG(os.stat(resolved).st_mode)
        except OSError:
            regular = False
        if not regular:  # a device or FIFO is never opened
            raise missing
        try:
            fd = os.open(resolved, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
        except FileNotFoundError:
            raise missing from None
        except OSError as exc:
            raise ModelLoadError(f"external data file {location!r} of {name!r} cannot be read: "
                                 f"{exc.strerror or exc}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise missing
            again, reason = resolve_inside(self.base, location)  # after the open: the file opened is the one checked
            if again is None:
                raise UnsafeModel(f"external data {location!r} of {name!r} is outside the model's folder ({reason})")
            now = os.stat(again)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or st.st_nlink > 1:
                raise UnsafeModel(f"external data {location!r} of {name!r} changed while it was checked; "
                                  "it was not read")
        except OSError as exc:
            os.close(fd)
            raise ModelLoadError(f"external data file {location!r} of {name!r} cannot be read: "
                                 f"{exc.strerror or exc}") from None
        except BaseException:
            os.close(fd)
            raise
        return OpenedData(fd, int(st.st_size), again)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _pread_into(fd: int, out: memoryview, offset: int) -> int:
    """Read into ``out`` from ``fd`` at ``offset`` without moving a file position; bytes read."""
    if hasattr(os, "preadv"):
        return int(os.preadv(fd, [out], offset))
    with _SEEK_LOCK, open(fd, "rb", buffering=0, closefd=False) as fh:  # pragma: no cover - Windows, old macOS
        fh.seek(offset)
        return fh.readinto(out) or 0


_SEEK_LOCK = threading.Lock()
"""Serialises seek-and-read on platforms without ``preadv`` (the descriptor's position is shared)."""


_LOCK = threading.RLock()
"""Guards every load's open data files (re-entrant: a collected graph's finalizer may close its files
while this thread holds it)."""
_RECENT: OrderedDict[tuple[int, str], OrderedDict[str, OpenedData]] = OrderedDict()
"""Every open data file of every load, least recently read first: (id of its load's table, location) -> that table."""


def _forget(opened: OrderedDict[str, OpenedData], location: str) -> None:
    """Close ``location``'s descriptor in the table ``opened`` and forget it (the caller holds ``_LOCK``)."""
    entry = opened.pop(location, None)
    _RECENT.pop((id(opened), location), None)
    if entry is not None:
        entry.retired = True
        if entry.users == 0:
            _close(entry.fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:  # pragma: no cover - already closed
        pass


def _close_all(opened: OrderedDict[str, OpenedData]) -> None:
    """Close the descriptors of the table ``opened`` and forget them."""
    with _LOCK:
        for location in list(opened):
            _forget(opened, location)


class FillReader:
    """Reads a tensor ``ConstantOfShape`` generates.  ``fill_spec`` (fill value, dtype) describes it
    without building it: ``inspector.analysis.weights`` computes a fill's statistics in closed form,
    and ``generated`` marks it a placeholder."""

    generated = True

    def __init__(self, dims: tuple[int, ...], fill: Any, dtype: str, name: str) -> None:
        self.dims, self.name = dims, name
        self.fill_spec = (fill, dtype)

    def __call__(self) -> Any:
        import numpy as np

        fill, dtype = self.fill_spec
        dt = np_dtype(dtype)
        _check_size(f"tensor {self.name!r} (generated by ConstantOfShape)", self.dims, dt)
        try:
            return np.full(self.dims, fill, dtype=dt)
        except (ValueError, TypeError, OverflowError) as exc:  # a fill value that does not fit the dtype
            raise ModelLoadError(f"tensor {self.name!r} (generated by ConstantOfShape) cannot be filled with "
                                 f"{fill!r} ({one_line(exc, 80)})") from None


def _fill_reader(dims: tuple[int, ...], fill: Any, dtype: str, name: str) -> Callable[[], Any]:
    return FillReader(dims, fill, dtype, name)


def const_reader(value: Any) -> Callable[[], Any]:
    def read() -> Any:
        return value

    return read
