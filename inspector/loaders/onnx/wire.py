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

Two limits of :mod:`inspector.limits` apply here, passed in by the loader:
``proto_depth`` (nesting of the large messages walked) and ``proto_bytes`` (size
of the stripped structure, checked while it is assembled, so an oversized graph
is refused before it is all in memory).  Because a stripped tensor's element
bytes are never handed to protobuf, a tensor stored inline may be larger than
protobuf's 2 GiB message limit: :class:`InlineTensor` records where its
``raw_data`` payload lies, so the loader can read it straight into an array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import LimitExceeded, ModelLoadError
from ...limits import DEFAULTS, hint

INLINE_THRESHOLD = 1024
"""Tensors whose encoding is at least this many bytes are described by reference."""

PROTOBUF_MAX_BYTES = (1 << 31) - 1
"""protobuf parses no message bigger than this (2 GiB - 1)."""

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
_NODE_FIELD = {_GRAPH: 1, _FUNCTION: 7}
"""The field holding the nodes of a GraphProto and of a FunctionProto."""
_TENSOR_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})
_TENSOR_RAW_DATA = 9
_TENSOR_EXTERNAL_DATA = 13
_TENSOR_DATA_LOCATION = 14


class WireError(ModelLoadError):
    """The bytes are not a well-formed protobuf message."""


class StructureTooLarge(ModelLoadError):
    """The stripped structure would exceed ``max_bytes`` (the loader words the error:
    the ``proto_bytes`` limit or protobuf's own 2 GiB limit)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"has more than {limit:,} bytes of graph structure outside its weights")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class InlineTensor:
    """Where a stripped ``TensorProto`` lies in the file."""

    start: int
    end: int
    """Byte range of the whole encoded ``TensorProto``."""
    raw: tuple[int, int] | None = None
    """Byte range of its ``raw_data`` payload (the last one, as protobuf keeps), or
    ``None`` when its values are in the typed fields (``float_data`` …)."""


@dataclass(slots=True)
class StrippedModel:
    """The stripped ``ModelProto`` bytes and where the removed tensors live."""

    data: bytes | bytearray
    """The stripped ``ModelProto`` (a ``bytearray`` when tensors were stripped: filled in place, not joined)."""
    inline: dict[str, InlineTensor] = field(default_factory=dict)
    """token -> where the original ``TensorProto`` lies in the file."""
    token_prefix: str = ""
    file_size: int = 0
    all_utf8: bool = False
    """Every string field of ``data`` is valid UTF-8 (so none reaches the graph as bytes); set by
    :meth:`settle` (:func:`.lite.all_text_utf8`), ``False`` when not known."""
    edited: bool = False
    """The model parsed from ``data`` was changed since (dims bound): ``data`` is no longer its serialization."""

    def settle(self, *, utf8: bool | None = None) -> None:
        """Note whether all text in ``data`` is UTF-8 (:attr:`all_utf8`: ``utf8`` when the inference helper
        checked these very bytes, else checked here), then let ``data`` go: the loader keeps the bytes it
        parsed only until shape inference was sent them (no serialization made for it) and, when the helper
        checks them, until it answered."""
        if self.data:
            if utf8 is None:
                from . import lite

                utf8 = lite.all_text_utf8(self.data)
            self.all_utf8 = utf8
            self.data = b""


WINDOW = 64 * 1024
"""Bytes read at a time while walking the file."""

Piece = bytes | tuple[int, int]
"""Part of a stripped message: bytes, or the range of the file they are to be read from."""
Body = tuple[list[Piece], int]
"""A stripped message: its pieces in order, and its length in bytes."""


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

    def field(self, pos: int, end: int) -> tuple[int, int, int]:
        """The key of the field at ``pos``: (field number, wire type, position after it)."""
        key, after = self.key(pos, end)
        number = key >> 3
        if number == 0:
            raise WireError(f"is not an ONNX model (invalid protobuf: field number 0 at byte {pos})")
        return number, key & 7, after

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

    def piece(self, a: int, b: int) -> Piece:
        """Bytes ``a:b`` to copy into the output: a slice of the window when they lie in it, else their
        range, read straight into the output by :meth:`assemble` (no copy of its own)."""
        off = a - self.start
        if 0 <= off and b - self.start <= len(self.window):
            return self.window[off:b - self.start]
        return a, b

    def read_into(self, out: memoryview, a: int) -> None:
        """Fill ``out`` with the bytes from ``a`` on (a short file is a :class:`WireError`, as in :meth:`bytes`)."""
        done = 0
        while done < len(out):
            n = os.preadv(self.fd, [out[done:done + READ_CHUNK]], a + done)
            if not n:
                b = a + len(out)
                raise WireError(f"is truncated (bytes {a}-{b} are missing): re-export or re-download the model")
            done += n

    def assemble(self, body: Body) -> bytearray:
        """The bytes a stripped message's ``body`` lists, in one buffer: each byte of the file kept is
        copied once, into it (joining the pieces at every level of nesting copied the whole structure
        three times more: 110 MB of new memory for a 37 MB graph)."""
        pieces, length = body
        out = bytearray(length)
        view = memoryview(out)
        at = 0
        for piece in pieces:
            if isinstance(piece, tuple):
                a, b = piece
                self.read_into(view[at:at + b - a], a)
                at += b - a
            else:
                view[at:at + len(piece)] = piece
                at += len(piece)
        view.release()
        return out


MODEL_FUNCTIONS = 25
"""``ModelProto.functions``: the model-local functions."""
TOP_FIELDS = 1000
"""Fields :func:`top_fields` reads at most (a model has a dozen; more: not told)."""


def top_fields(data: bytes | bytearray) -> set[int] | None:
    """The numbers of the fields of the message serialized as ``data`` (its own fields, not those of
    the messages in them: a model's graph is one field), or ``None`` when that is not told: bytes that
    are not well-formed there, or more than :data:`TOP_FIELDS` fields."""
    numbers: set[int] = set()
    pos, end = 0, len(data)
    for _ in range(TOP_FIELDS):
        if pos >= end:
            return numbers if pos == end else None
        key, pos = _decode_varint(data, pos)
        wire = key & 7
        if wire == 0:
            pos = _decode_varint(data, pos)[1]
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = _decode_varint(data, pos)
            pos += length
        elif wire == 5:
            pos += 4
        else:
            return None
        numbers.add(key >> 3)
    return numbers if pos == end else None


def _decode_varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` of ``data`` and the position after it (past the end when it runs past it)."""
    result, shift = 0, 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    return result, len(data) + 1


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


def _ld_head(field_number: int, length: int) -> bytes:
    """The key and length of a length-delimited field of ``length`` bytes (its payload follows)."""
    return _encode_varint(field_number << 3 | 2) + _encode_varint(length)


def _ld(field_number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _ld_head(field_number, len(payload)) + payload


_LOCATION_KEY = _ld(1, b"location")
_EXTERNAL_FLAG = _encode_varint(_TENSOR_DATA_LOCATION << 3 | 0) + _encode_varint(1)


class _Stripper:
    def __init__(self, reader: _Reader, *, max_depth: int, max_bytes: int, max_nodes: int | None = None) -> None:
        self.r = reader
        self.max_depth = max_depth
        self.max_bytes = max_bytes
        self.max_nodes = max_nodes
        self.nodes = 0
        """Nodes seen so far in the graphs and functions walked (nodes of small nested graphs are not
        walked: the loader counts every node again after parsing)."""
        self.inline: dict[str, InlineTensor] = {}
        self.prefix = f"inspector-inline:{os.urandom(16).hex()}:"

    # long: one loop over a message's fields is the hot path of every ONNX read; helpers per field cost time
    def message(self, kind: int, start: int, end: int, depth: int) -> Body | None:  # noqa: C901 (see above)
        """The message in ``buf[start:end]`` with big tensors stripped, as the pieces it is made of
        (:meth:`_Reader.assemble` joins them once, at the end), or ``None`` when nothing inside
        changed (the caller then copies it verbatim).

        One loop over the wire fields, kept whole: it is the loader's hot path (every
        byte of structure passes through it once) and splitting it would add a call
        per field."""
        if depth > self.max_depth:
            raise LimitExceeded(
                f"nests protobuf messages more than {self.max_depth} levels deep, past the proto_depth limit; "
                f"{hint('proto_depth')}")
        r = self.r
        children = _CHILDREN.get(kind, {})
        node_field = _NODE_FIELD.get(kind, 0) if self.max_nodes is not None else 0
        chunks: list[Piece] = []
        kept = 0  # bytes in ``chunks``, give or take: no message of the output may exceed max_bytes
        total = 0  # bytes in ``chunks``, exactly
        changed = False
        copy_from = start
        pos = start
        max_nodes = self.max_nodes or 0
        while pos < end:
            if node_field or kind == _GRAPH:  # runs of short fields (nodes …): skipped in one call
                pos = self.skip_short(pos, end, node_field)
                if pos >= end:
                    break
            field_start = pos
            off = pos - r.start
            win = r.window
            # The common field, read here without a call: a one-byte key of a length-delimited field and
            # a length of one or two bytes, all inside the window and the message (else the general way).
            if 0 <= off and off + 3 <= len(win) and pos + 3 <= end and (win[off] & 0x87) == 2 and win[off] > 7:
                number = win[off] >> 3
                b = win[off + 1]
                if b < 0x80:
                    length, pos, wire = b, pos + 2, 2
                elif win[off + 2] < 0x80:
                    length, pos, wire = (b & 0x7F) | win[off + 2] << 7, pos + 3, 2
                else:
                    length, pos, wire = r.varint(pos + 1, end) + (2,)
                if length < INLINE_THRESHOLD and pos + length <= end:  # most fields: nothing to descend into
                    pos += length
                    if number == node_field:
                        self.nodes += 1
                        if self.nodes > max_nodes:
                            self.count_node()
                    continue
            else:
                number, wire, pos = r.field(pos, end)
                if wire == 2:
                    length, pos = r.key(pos, end)
            if wire == 0:
                _, pos = r.key(pos, end)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                data_start = pos
                pos += length
                if pos > end:
                    break
                if number == node_field:
                    self.nodes += 1
                    if self.nodes > max_nodes:
                        self.count_node()
                child = children.get(number) if length >= INLINE_THRESHOLD else None
                if child is not None:
                    if child == _TENSOR:
                        tensor = self.tensor(data_start, pos)
                        body: Body | None = None if tensor is None else ([tensor], len(tensor))
                    else:
                        body = self.message(child, data_start, pos, depth + 1)
                    if body is not None:
                        kept += field_start - copy_from + body[1] + 12
                        if kept > self.max_bytes:
                            raise StructureTooLarge(self.max_bytes)
                        if field_start > copy_from:
                            chunks.append(r.piece(copy_from, field_start))
                        head = _ld_head(number, body[1])
                        chunks.append(head)
                        chunks.extend(body[0])
                        total += field_start - copy_from + len(head) + body[1]
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
            if end - start > self.max_bytes:
                raise StructureTooLarge(self.max_bytes)
            return None
        if kept + end - copy_from > self.max_bytes:
            raise StructureTooLarge(self.max_bytes)
        if end > copy_from:
            chunks.append(r.piece(copy_from, end))
        return chunks, total + end - copy_from

    def skip_short(self, pos: int, end: int, node_field: int) -> int:
        """Where the first field from ``pos`` on starts that is not short: a one-byte key of a length-delimited
        field, a length of one or two bytes under ``INLINE_THRESHOLD``, all in the reader's window and inside
        the message (``end``).  Nothing in a short field is descended into; the nodes among them are counted.
        A graph is mostly such fields (its nodes): they are passed here without a call each."""
        r = self.r
        win, base = r.window, r.start
        # Offsets in the window, not positions in the file: one subtraction fewer per field read.
        off, stop, last = pos - base, min(len(win), end - base) - 3, end - base
        node_key = node_field << 3 | 2  # a node's one-byte key (its field number is under 16)
        nodes = 0
        while 0 <= off <= stop:
            k = win[off]
            if (k & 0x87) != 2 or k < 8:
                break
            b = win[off + 1]
            if b < 0x80:
                after = off + 2 + b
            else:
                c = win[off + 2]
                if c >= 0x80 or (b & 0x7F | c << 7) >= INLINE_THRESHOLD:
                    break
                after = off + 3 + (b & 0x7F | c << 7)
            if after > last:
                break
            if k == node_key:
                nodes += 1
            off = after
        pos = off + base
        if nodes:
            self.nodes += nodes
            self.count_node()
        return pos

    def count_node(self) -> None:
        """Counted one node too many (past ``max_nodes``): the file is refused before protobuf parses anything."""
        if self.max_nodes is not None and self.nodes > self.max_nodes:
            raise LimitExceeded(
                f"has more than {self.max_nodes:,} nodes in its graphs, sub-graphs and functions, past the "
                f"onnx_nodes limit; {hint('onnx_nodes')}")

    def tensor(self, start: int, end: int) -> bytes | None:
        """A ``TensorProto`` without its element data, marked as external data
        whose location is a private token for ``buf[start:end]``."""
        r = self.r
        keep: list[tuple[int, int]] = []
        has_data = False
        external = False
        raw: tuple[int, int] | None = None
        pos = start
        while pos < end:
            field_start = pos
            number, wire, pos = r.field(pos, end)
            if wire == 0:
                value, pos = r.key(pos, end)
                if number == _TENSOR_DATA_LOCATION:
                    external = value == 1  # the last occurrence wins, as in protobuf
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                length, pos = r.key(pos, end)
                if number == _TENSOR_RAW_DATA:
                    raw = (pos, pos + length)
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
        self.inline[token] = InlineTensor(start, end, raw)
        parts = [r.bytes(a, b) for a, b in keep]
        parts.append(_ld(_TENSOR_EXTERNAL_DATA, _LOCATION_KEY + _ld(2, token.encode())))
        parts.append(_EXTERNAL_FLAG)
        return b"".join(parts)


def strip_file(path: Path, *, max_depth: int = DEFAULTS.proto_depth,
               max_bytes: int = min(DEFAULTS.proto_bytes, PROTOBUF_MAX_BYTES),
               max_nodes: int | None = None) -> StrippedModel:
    """Return the ``ModelProto`` bytes of ``path`` with big tensors replaced by
    references.  Raises :class:`WireError` on malformed protobuf,
    :class:`~inspector.errors.LimitExceeded` past ``max_depth`` or past ``max_nodes`` nodes in the
    graphs and functions walked, and :class:`StructureTooLarge` when the result would exceed ``max_bytes``."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            raise ModelLoadError("is empty (0 bytes): not an ONNX model")
        reader = _Reader(fh.fileno(), size)
        stripper = _Stripper(reader, max_depth=max_depth, max_bytes=max_bytes, max_nodes=max_nodes)
        try:
            body = stripper.message(_MODEL, 0, size, 0)
        except RecursionError:  # only with a proto_depth raised far past protobuf's own 100 levels
            raise ModelLoadError(
                "nests protobuf messages too deeply to be read (protobuf itself parses at most 100 levels)") from None
        data = reader.bytes(0, size) if body is None else reader.assemble(body)
        return StrippedModel(data, stripper.inline, stripper.prefix, size)


STREAM_WINDOW = 4 * 1024
"""Bytes asked for at a time by :func:`strip_stream`."""


class _StreamReader(_Reader):
    """:class:`_Reader` over any positioned reader ``pread(n, pos)`` (remote objects read by byte ranges)."""

    def __init__(self, pread: Callable[[int, int], bytes], size: int) -> None:
        super().__init__(-1, size)
        self._pread = pread

    def _fill(self, pos: int) -> None:
        self.window = self._pread(STREAM_WINDOW, pos)  # small: each byte may be a network fetch
        self.start = pos

    def bytes(self, a: int, b: int) -> bytes:
        off = a - self.start
        if 0 <= off and b - self.start <= len(self.window):
            return self.window[off:b - self.start]
        data = self._pread(b - a, a)
        if len(data) != b - a:
            raise WireError(f"is truncated (bytes {a}-{b} are missing): re-export or re-download the model")
        return data

    def read_into(self, out: memoryview, a: int) -> None:
        out[:] = self.bytes(a, a + len(out))  # one fetch per range, as before


def strip_stream(pread: Callable[[int, int], bytes], size: int, *, max_depth: int = DEFAULTS.proto_depth,
                 max_bytes: int = min(DEFAULTS.proto_bytes, PROTOBUF_MAX_BYTES)) -> StrippedModel:
    """:func:`strip_file` over a positioned reader: only the bytes outside big tensor
    payloads are asked for (how :mod:`inspector.remote` reads ONNX by byte ranges)."""
    reader = _StreamReader(pread, size)
    stripper = _Stripper(reader, max_depth=max_depth, max_bytes=max_bytes)
    body = stripper.message(_MODEL, 0, size, 0)
    data = reader.bytes(0, size) if body is None else reader.assemble(body)
    return StrippedModel(data, stripper.inline, stripper.prefix, size)


def read_range(path: Path, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of ``path`` (used to read one stripped tensor back)."""
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    if len(data) != end - start:
        raise ModelLoadError(f"{path.name} changed on disk: bytes {start}-{end} are no longer there")
    return data


READ_CHUNK = 1 << 30
"""Bytes asked for by one ``read`` (one system call returns at most ~2 GiB)."""


def read_into(path: Path, start: int, out: memoryview, *, what: str = "") -> None:
    """Fill ``out`` with the bytes of ``path`` from ``start`` on, in reads of at most
    :data:`READ_CHUNK` bytes, with no intermediate copy.  A short file is a
    :class:`~inspector.errors.ModelLoadError`."""
    want = len(out)
    done = 0
    with path.open("rb", buffering=0) as fh:
        fh.seek(start)
        while done < want:
            n = fh.readinto(out[done:done + READ_CHUNK])
            if not n:
                raise ModelLoadError(
                    f"{what or path.name} is cut short: bytes {start + done:,}-{start + want:,} of {path.name} "
                    "are missing (the file is truncated or changed on disk)")
            done += n
