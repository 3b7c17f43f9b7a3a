"""Read an ONNX file without pulling its weight bytes into memory.

``onnx.load`` parses the whole protobuf: every initializer's ``raw_data`` is
copied into Python, so a 100 MB model costs well over 200 MB of RAM before
anything is inspected.  A summary needs only the *structure* (nodes, value
infos, initializer names, dims and dtypes) and the values of a few tiny tensors
(shape operands for data propagation).

This module walks the protobuf wire format of the file (with small positioned
reads, not ``mmap``: file systems with large folios map megabytes per touched
byte, which would count against the process's resident memory) and writes a
*stripped* copy: every ``TensorProto`` whose encoding is at least
``INLINE_THRESHOLD`` bytes keeps its name, dims and dtype but loses its data,
and is marked as external data with a location token nobody can guess.  The
token maps back to the byte range of the original tensor in the file, so a
weight can still be read later, one tensor at a time, on demand.  Only message
fields that are themselves large are descended into, so the Python work is
proportional to the number of *large* messages (graphs, big nodes), not to the
number of bytes.

The stripped bytes are an ordinary ``ModelProto`` that protobuf parses and that
ONNX shape inference accepts (shape inference reads dims and dtypes, and data
propagation needs only the small tensors, which stay inline).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LimitExceeded, ModelLoadError

INLINE_THRESHOLD = 1024
"""Tensors whose encoding is at least this many bytes are described by reference."""

MAX_WIRE_DEPTH = 200
"""Nesting of large messages the walker follows (graph -> node -> attribute -> graph …)."""

# Message kinds of the ONNX schema the walker knows, and which length-delimited
# fields of each hold sub-messages worth descending into.
_MODEL, _GRAPH, _NODE, _ATTR, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTR},
    _ATTR: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _FUNCTION: {7: _NODE},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
# TensorProto fields that carry element data: float_data, int32_data, string_data,
# int64_data, raw_data, double_data, uint64_data.
_TENSOR_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14


class WireError(ModelLoadError):
    """The bytes are not a well-formed protobuf message."""


@dataclass(slots=True)
class StrippedModel:
    """The stripped ``ModelProto`` bytes and where the removed tensors live."""

    data: bytes
    inline: dict[str, tuple[int, int]] = field(default_factory=dict)
    """token -> (start, end) byte range of the original ``TensorProto`` in the file."""
    token_prefix: str = ""
    file_size: int = 0


WINDOW = 64 * 1024
"""Bytes read at a time while walking the file."""


class _Reader:
    """Random access to a file through one small window of positioned reads."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.start = 0
        self.window = b""

    def _fill(self, pos: int) -> None:
        self.window = os.pread(self.fd, WINDOW, pos)
        self.start = pos

    def key(self, pos: int, end: int) -> tuple[int, int]:
        """A varint, with a fast path for the common one-byte case (field keys)."""
        off = pos - self.start
        win = self.window
        if 0 <= off < len(win) - 10 and pos < end:
            b = win[off]
            if b < 0x80:
                return b, pos + 1
        return self.varint(pos, end)

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        off = pos - self.start
        win = self.window
        if off < 0 or off + 10 > len(win):
            self._fill(pos)
            off, win = 0, self.window
        result = 0
        shift = 0
        while True:
            if pos >= end or off >= len(win):
                raise WireError(
                    f"is truncated or corrupt (a protobuf varint at byte {pos} runs past its message): "
                    "re-export or re-download the model")
            b = win[off]
            off += 1
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift > 63:
                raise WireError(f"is corrupt: an over-long protobuf varint at byte {pos}")

    def bytes(self, a: int, b: int) -> bytes:
        off = a - self.start
        if 0 <= off and b - self.start <= len(self.window):
            return self.window[off:b - self.start]
        data = os.pread(self.fd, b - a, a)
        if len(data) != b - a:
            raise WireError(f"is truncated (bytes {a}-{b} are missing): re-export or re-download the model")
        return data


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(field_number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _encode_varint(field_number << 3 | 2) + _encode_varint(len(payload)) + payload


_LOCATION_KEY = _ld(1, b"location")
_EXTERNAL_FLAG = _encode_varint(_TENSOR_DATA_LOCATION << 3 | 0) + _encode_varint(1)


class _Stripper:
    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.inline: dict[str, tuple[int, int]] = {}
        self.prefix = f"inspector-inline:{os.urandom(16).hex()}:"

    def message(self, kind: int, start: int, end: int, depth: int) -> bytes | None:
        """The message in ``buf[start:end]`` with big tensors stripped, or ``None``
        when nothing inside changed (the caller then copies it verbatim)."""
        if depth > MAX_WIRE_DEPTH:
            raise LimitExceeded(
                f"nests protobuf messages more than {MAX_WIRE_DEPTH} levels deep; inspector stops here to protect itself")
        r = self.r
        children = _CHILDREN.get(kind, {})
        chunks: list = []
        changed = False
        copy_from = start
        pos = start
        while pos < end:
            field_start = pos
            key, pos = r.key(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise WireError(f"is not an ONNX model (invalid protobuf: field number 0 at byte {field_start})")
            if wire == 0:
                _, pos = r.key(pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = r.key(pos, end)
                data_start = pos
                pos += length
                if pos > end:
                    break
                child = children.get(number)
                if child is not None and length >= INLINE_THRESHOLD:
                    if child == _TENSOR:
                        body = self.tensor(data_start, pos)
                    else:
                        body = self.message(child, data_start, pos, depth + 1)
                    if body is not None:
                        if field_start > copy_from:
                            chunks.append(r.bytes(copy_from, field_start))
                        chunks.append(_ld(number, body))
                        copy_from = pos
                        changed = True
            else:
                raise WireError(
                    f"is not an ONNX model (invalid protobuf: wire type {wire} at byte {field_start})")
            if pos > end:
                break
        if pos > end:
            raise WireError(
                f"is truncated or corrupt (a protobuf field inside bytes {start}-{end} runs past its end): "
                "re-export or re-download the model")
        if not changed:
            return None
        if end > copy_from:
            chunks.append(r.bytes(copy_from, end))
        return b"".join(chunks)

    def tensor(self, start: int, end: int) -> bytes | None:
        """A ``TensorProto`` without its element data, marked as external data
        whose location is a private token for ``buf[start:end]``."""
        r = self.r
        keep: list[tuple[int, int]] = []
        has_data = False
        external = False
        pos = start
        while pos < end:
            field_start = pos
            key, pos = r.key(pos, end)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = r.key(pos, end)
                if number == _TENSOR_DATA_LOCATION and value == 1:
                    external = True
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = r.key(pos, end)
                pos += length
            else:
                raise WireError(f"is not an ONNX model (invalid protobuf: wire type {wire} at byte {field_start})")
            if pos > end:
                raise WireError(
                    f"is truncated or corrupt (a tensor at bytes {start}-{end} has a field that runs past its end): "
                    "re-export or re-download the model")
            if number in _TENSOR_DATA_FIELDS:
                has_data = True
            elif number not in (_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION):
                if keep and keep[-1][1] == field_start:
                    keep[-1] = (keep[-1][0], pos)  # extend the previous run of kept fields
                else:
                    keep.append((field_start, pos))
        if external or not has_data:
            return None
        token = f"{self.prefix}{len(self.inline)}"
        self.inline[token] = (start, end)
        parts = [r.bytes(a, b) for a, b in keep]
        parts.append(_ld(_TENSOR_EXTERNAL_DATA, _LOCATION_KEY + _ld(2, token.encode())))
        parts.append(_EXTERNAL_FLAG)
        return b"".join(parts)


def strip_file(path: Path) -> StrippedModel:
    """Return the ``ModelProto`` bytes of ``path`` with big tensors replaced by
    references.  Raises :class:`WireError` on malformed protobuf."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            raise ModelLoadError("is empty (0 bytes): not an ONNX model")
        reader = _Reader(fh.fileno(), size)
        stripper = _Stripper(reader)
        body = stripper.message(_MODEL, 0, size, 0)
        if body is None:
            body = reader.bytes(0, size)
        return StrippedModel(body, stripper.inline, stripper.prefix, size)


def read_range(path: Path, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of ``path`` (used to read one stripped tensor back)."""
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    if len(data) != end - start:
        raise ModelLoadError(f"{path.name} changed on disk: bytes {start}-{end} are no longer there")
    return data
