"""ONNX shape inference, isolated.

ONNX shape inference is C++ that trusts the model: a one-element shape operand
holding 10**8, or a 1-D tensor declared (or inferred) 10**8 long, makes it build
shapes of that rank or length — gigabytes in seconds, ``std::bad_alloc``, and a
later call in the same process can crash it.  On Linux it therefore runs in a
helper process (:class:`inspector.isolation.Helper`) forked once (before the first
model is parsed, so it holds little memory) and reused: each request gets a memory
and a time budget; a helper that ran out of memory, crashed or timed out is
replaced.  Elsewhere, or with ``ISOLATE_INFERENCE = False``, inference runs
in-process.

:func:`start_shape_inference` sends the request and returns while the helper works;
:func:`finish` waits for the answer (:func:`run_shape_inference` is both at once).  The
builder builds the graph from the file's own types meanwhile (:mod:`.retype`); for it the helper
also reads the inferred model's declared types, whether its node outputs are named once and its
outline (:func:`declared_types`, :func:`helper_names_unique`, :func:`same_outline`; read through
:mod:`.mergedread`), and keeps the inferred model when these tell enough: :func:`finish` answers an
:class:`Inferred`, fetched from the helper and parsed only if used.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, Callable, Iterable, Sequence

from ... import isolation
from . import lite  # onnx's C++ extension without ``import onnx`` (ml_dtypes): see lite.py
from .mergedread import MergedRead, outline_of, read
from .wire import PROTOBUF_MAX_BYTES

INFER_SECONDS = 30
"""Wall-clock budget of one shape-inference run, plus one second per MiB of graph structure."""
INFER_MEMORY = 1 << 30
"""Memory (address space) one shape-inference run may add, plus 16 bytes per byte of graph structure."""
_INFER_GROWTH = 8
"""An inferred model more than this many times the input (plus 16 MiB) is refused:
shapes of absurd rank, not information."""
INFER_TIMEOUT = "stopped after"
"""How the reason of a shape inference that ran out of time starts."""
ISOLATE_INFERENCE = isolation.ISOLATE
"""Run shape inference in a forked helper process (set ``False`` in a program that must not fork)."""
DATA_PROP_ELEMENTS = 1 << 20
"""A 1-D tensor longer than this reaching an op ONNX propagates data through makes data propagation
build a value of that length (``Add`` on a ``[2^28]`` fill: gigabytes): it is not run then."""
_LENGTHS = frozenset({"Constant", "Concat", "ConstantOfShape"})
"""Ops whose output length the hazard check follows."""
_PROPAGATING = frozenset({"Add", "Sub", "Mul", "Div", "Concat", "Gather", "Slice", "Cast", "CastLike",
                          "Squeeze", "Unsqueeze", "Neg", "Abs", "Reshape", "Expand"})


def _prepare() -> isolation.Serve:
    """In the parent, before the helper is forked: onnx's schema registry initialized,
    and the function the helper serves (model bytes, data propagation → inferred model bytes)."""
    lite.get_schema("Relu", 1, "")  # onnx's schema registry is initialized before the fork
    kept: dict[bytes, bytes] = {}
    """The inferred model the helper keeps (by its token) until the parent fetches it or sends another request."""

    def serve_c(data: bytes, flag: int) -> tuple[bytes, ...] | isolation.Served:
        if flag & _DROP:
            kept.clear()
            return (b"",)
        if flag & _FETCH:
            return (kept.pop(bytes(data)),)  # KeyError (an error answer): not kept, or no longer
        kept.clear()  # a new request: the last model is not wanted any more
        inferred = lite.infer_shapes_bytes(data, bool(flag & _DATA_PROP))
        held: list[Any] = []  # what the types were read from (half a million objects on 160,000 nodes)
        types = _declared_answer(inferred, len(data), hold=held.append) if flag & _TYPES else b""
        # Searched from the end: the search then skips on "u", not on the "_" every tensor name holds (twice as fast).
        unresolved = inferred.rfind(_UNKNOWN_DIM) >= 0
        # The request's text checked here, where the time is to spare (the parent builds meanwhile): 0.05 s
        # and 22,000 page faults on 160,000 nodes that the parent no longer spends (``StrippedModel.settle``).
        utf8 = _UTF8_UNKNOWN if not types else _UTF8_ALL if lite.all_text_utf8(data) else _UTF8_NOT
        if types and not unresolved:  # the parent may not need it: kept here, sent when asked for
            token = os.urandom(_TOKEN_BYTES)
            kept[token] = inferred
            head = _ANSWER.pack(len(types), len(inferred), unresolved, utf8) + token
            return isolation.Served((head, types), held)  # written in turn, not joined; freed after
        head = _ANSWER.pack(len(types), len(inferred), unresolved, utf8) + bytes(_TOKEN_BYTES)
        return isolation.Served((head + types, inferred), held)

    return serve_c


_DATA_PROP, _TYPES, _FETCH, _DROP = 1, 2, 4, 8
"""Request flags: run data propagation; answer the types the inferred main graph declares too (and keep
the inferred model in the helper when they tell enough); send the model kept under the request's token;
drop the model kept."""
_ANSWER = struct.Struct("<QQ?B")
"""An answer: the length of the types part (0: none), of the inferred model, whether it names a dim onnx could
not infer, whether every string field of the request is UTF-8 (:data:`_UTF8_ALL`, :data:`_UTF8_NOT`, or
:data:`_UTF8_UNKNOWN`: not checked); then the token of the model the helper keeps (zeros: it follows the
types), the types (:func:`_encode_answer`)."""
_UTF8_UNKNOWN, _UTF8_NOT, _UTF8_ALL = 0, 1, 2
"""What an answer says of the request's text (:func:`.lite.all_text_utf8`; checked with the types only)."""
_TOKEN_BYTES = 16
"""A kept model's token: random, so a helper forked again (which keeps nothing) never answers for another's."""
_HEAD = _ANSWER.size + _TOKEN_BYTES


def _declared_answer(inferred: bytes, size: int, *, hold: Callable[[Any], object] | None = None) -> bytes:
    """In the helper, once inference is done: the types the inferred main graph declares
    (:func:`.protos.base_types`, read through :mod:`.mergedread` when it can tell them), whether its node
    outputs are named once (:func:`names_unique`) and its :func:`outline`, as :func:`_encode_answer`
    writes them, so the parent, building meanwhile, need not read them nor parse the inferred model;
    ``b""`` when that cannot be told (a name that is not text, an answer too big to be kept, out of memory,
    more than a second per MiB of graph).  ``hold`` is given what the answer was made of, for the caller
    to free later."""
    if len(inferred) > _growth_limit(size):
        return b""
    import signal

    def late(signum: int, frame: Any) -> None:
        raise TimeoutError

    signal.alarm(0)  # inference is done: its budget is spent; this part has its own, and ends quietly
    previous = signal.signal(signal.SIGALRM, late)
    signal.alarm(1 + size // (1 << 20))
    try:
        merged = read(inferred, hold=hold)  # the twins tell the outline too: the model is parsed only without them
        if merged is None:
            return _general_answer(inferred)
        names, index, infos = _merged_types(merged)
        if hold is not None:
            hold((merged, index))
        return _encode_answer(names, index, infos, unique=merged.unique, outline=merged.outline)
    except Exception:  # noqa: BLE001 - MemoryError, TimeoutError, a name that is bytes: the parent reads them
        return b""
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _general_answer(inferred: bytes) -> bytes:
    """:func:`_declared_answer` of the inferred model parsed whole (the twins could not read it)."""
    from .protos import base_types, declared

    model = lite.model_proto()
    model.ParseFromString(inferred)
    table: dict[Any, int] = {}
    names: list[str] = []
    index: list[int] = []
    for name, info in base_types(declared(model.graph)).items():
        names.append(name)
        index.append(table.setdefault(info, len(table)))
    return _encode_answer(names, index, list(table), unique=names_unique(model.graph), outline=outline(model))


def _merged_types(merged: MergedRead) -> tuple[list[str], list[int], list[Any]]:
    """The value infos :func:`.mergedread.read` read, as :func:`_encode_answer` writes them: the names
    (a name declared again too: the parent keeps the entry :func:`.protos.base_types` keeps), the
    index of each one's type, the types; each distinct type read once."""
    from .protos import type_info

    ids = {key: i for i, key in enumerate(dict.fromkeys(merged.types))}  # a few dozen distinct types
    index = list(map(ids.__getitem__, merged.types))
    holder = lite.model_proto().graph.input.add().type  # a TypeProto to parse each distinct type into
    infos = []
    for key in ids:
        holder.ParseFromString(key)
        infos.append(type_info(holder))
    return merged.names, index, infos


_TYPES_HEAD = struct.Struct("<QQQ")
"""The types part of an answer: the bytes of its JSON part, of its names, and how many names; then
those parts and the index of each name's type (an ``array`` of the JSON part's type code)."""


def _encode_answer(names: list[str], index: list[int], infos: list[Any], *, unique: bool,
                   outline: list[Any]) -> bytes:
    """The types part of the helper's answer: ``names`` (each declared tensor, in order), the ``index``
    of each one's type in ``infos`` (``[dtype, shape]``), whether node outputs are named once, the
    :func:`outline`.  The few types and the outline are JSON; the names, 100,000s of them, are UTF-8
    joined by NUL (``str.split`` reads them back in one call: JSON took a sixth of a second each way),
    or a JSON list when a name holds a NUL; the indices are an ``array`` of machine integers (the
    parent is this process's fork).  Nothing in it is code or pickled: the parent checks every part."""
    import json
    from array import array

    joined = "\0".join(names)
    split = joined.count("\0") == max(len(names) - 1, 0)  # no name holds the separator
    blob = joined.encode("utf-8", "surrogatepass") if split else json.dumps(names).encode()
    code = "B" if len(infos) <= 1 << 8 else "H" if len(infos) <= 1 << 16 else "L"
    meta = json.dumps([infos, unique, outline, split, code], separators=(",", ":")).encode()
    return b"".join((_TYPES_HEAD.pack(len(meta), len(blob), len(names)), meta, blob, array(code, index).tobytes()))


def names_unique(graph: Any) -> bool:
    """Is every node output of ``graph`` named once, and never like a stored tensor or an input?"""
    outs = [o for n in graph.node for o in n.output if o]
    names = set(outs)
    if len(names) != len(outs):
        return False
    stored = {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    return names.isdisjoint(stored) and names.isdisjoint(vi.name for vi in graph.input)


def outline(model: Any) -> list[Any]:
    """What the builder's metadata reads of ``model`` besides the types (``Builder._metadata``): two
    models of one outline give the same metadata from the same types."""
    g = model.graph
    return outline_of(model, [vi.name for vi in g.input], [vi.name for vi in g.output],
                      len(g.initializer) + len(g.sparse_initializer), len(model.training_info))


def _growth_limit(size: int) -> int:
    """The most bytes of inferred model a ``size``-byte graph may give (more: shapes of absurd rank)."""
    return min(_INFER_GROWTH * size + (16 << 20), PROTOBUF_MAX_BYTES)


TypeInfo = tuple[str | None, Any]
"""(dtype, shape) of a declared tensor (:func:`.protos.type_info`)."""
_HELPER = isolation.Helper(_prepare)


def prepare() -> None:
    """Fork the helper now, while this process holds no model yet (when isolation is on)."""
    if ISOLATE_INFERENCE:
        _HELPER.start()


def run_shape_inference(model: Any, *, data_prop: bool) -> Any:
    """``onnx.shape_inference.infer_shapes(model)``, or why it failed (a string)."""
    return finish(start_shape_inference(model, data_prop=data_prop))


@dataclass(slots=True)
class Pending:
    """A shape inference :func:`start_shape_inference` started: the helper's request, or the
    outcome already known (a data-propagation hazard, an in-process run)."""

    outcome: Any = None
    request: isolation.Request | None = None
    size: int = 0
    """Bytes of the serialized model sent."""
    graph_typed: bool = True
    """Whether a node of the model's main graph may have an attribute typed GRAPH (``False``: its bytes
    have none, or its skeleton shows that no attribute there holds a graph or is typed GRAPH)."""
    types: bool = False
    """Whether the helper reads the declared types too (then :func:`finish` answers an :class:`Inferred`)."""


class Inferred:
    """An inferred model the helper answered, parsed on the first use of an attribute: the overlapped
    build often needs only what the helper read of it (:func:`declared_types`, :func:`helper_names_unique`,
    :func:`same_outline`), and parsing it here would cost this process a third of a second per 100,000
    nodes.  When that read tells enough, the helper keeps the model (its bytes would take a fifth of a
    second per 100,000 nodes to cross the pipe) and sends it only when it is used (:func:`held`); when the
    helper no longer holds it (it was replaced or killed meanwhile), ``again`` (set by the builder) gives
    the model as the sequential path infers it.  Every attribute is the parsed ``ModelProto``'s."""

    __slots__ = ("_data", "_model", "_token", "_length", "again")

    def __init__(self, data: memoryview | None, token: bytes = b"", length: int = 0) -> None:
        self._data: memoryview | None = data
        self._model: Any = None
        self._token, self._length = token, length
        self.again: Callable[[], Any] | None = None
        """The model inferred again (the sequential path), when the helper no longer holds this one."""

    def parsed(self) -> Any:
        """The ``ModelProto`` (fetched from the helper and parsed now, the first time)."""
        if self._model is None:
            data = self._data if self._data is not None or not self._token else _fetch(self._token, self._length)
            if data is None:
                if self.again is None:
                    raise RuntimeError("the shape-inference helper no longer holds the inferred model")
                self._model = self.again()
            else:
                model = lite.model_proto()
                model.ParseFromString(data)
                self._model = model
            self._data = None
        return self._model

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parsed(), name)


def held(inferred: Any) -> bool:
    """Does the helper hold ``inferred`` (the model :func:`finish` returned), not sent yet?"""
    return (isinstance(inferred, Inferred) and inferred._model is None and inferred._data is None
            and bool(inferred._token))


def release(inferred: Any) -> None:
    """The build is done with ``inferred``: the helper drops it now if it still holds it (else the next
    request would), so an idle helper holds no model."""
    if held(inferred):
        inferred._token = b""  # no longer held: a use now infers it again (``again``)
        _drop()


def _drop() -> None:
    """Tell the helper to drop the model it keeps (a helper that ended holds nothing: none is forked)."""
    if _HELPER.running():
        _HELPER.call(b"", flag=_DROP, seconds=INFER_SECONDS, memory=INFER_MEMORY)


def _fetch(token: bytes, length: int) -> bytearray | None:
    """The model the helper keeps under ``token`` (``length`` bytes), or ``None`` when it no longer does."""
    if not _HELPER.running():  # a helper forked now would hold nothing
        return None
    answer = _HELPER.call(token, flag=_FETCH, seconds=INFER_SECONDS, memory=INFER_MEMORY)
    if isinstance(answer, isolation.Failure) or len(answer) != length:
        return None
    return answer


def parsed(model: Any) -> Any:
    """``model`` as a ``ModelProto`` (an :class:`Inferred` parsed)."""
    return model.parsed() if isinstance(model, Inferred) else model


def send_early(data: bytes | bytearray) -> Pending:
    """The request :func:`start_shape_inference` sends first for the model serialized as ``data`` (with data
    propagation and the types), sent before the checks that decide whether it is wanted, so the helper works
    while this process makes them: it is handed back to :func:`start_shape_inference` (``sent``), which
    drops it when the hazard check says data propagation must not run, or dropped by :func:`cancel`."""
    return _send(data, data_prop=True, types=True)


def _send(data: bytes | bytearray, *, data_prop: bool, types: bool) -> Pending:
    """A request for the model serialized as ``data``, sent to the helper."""
    size = len(data)  # what ``model.ByteSize()`` says, without a second pass
    request = _HELPER.send(data, flag=_DATA_PROP * data_prop + _TYPES * types,
                           seconds=INFER_SECONDS + size // (1 << 20), memory=INFER_MEMORY + 16 * size)
    return Pending(request=request, size=size, types=types)


def start_shape_inference(model: Any, *, data_prop: bool, types: bool = False, data: bytes | bytearray | None = None,
                          skeleton: lite.Skeleton | None = None, sent: Pending | None = None) -> Pending:
    """Start shape inference of ``model`` in the helper and return while it runs (when isolation
    is on; otherwise it runs here, now): :func:`finish` waits for the inferred model.  ``types``:
    the helper also reads the types the inferred main graph declares (:func:`declared_types`);
    ``data``: ``model`` serialized (or the bytes it was parsed from), when the caller has it;
    ``skeleton``: ``model``'s nodes as read off those bytes, when known (the hazard check then
    looks at fewer nodes, and a flat one tells :attr:`Pending.graph_typed`); ``sent``: this very request
    (``data``, with data propagation and the types), already sent by :func:`send_early`."""
    if data_prop:
        at = None if skeleton is None else skeleton.main_nodes_of(_LENGTHS)
        hazard = data_prop_hazard(model.graph, lengths_at=at)
        if hazard:
            if sent is not None:
                cancel(sent)  # data propagation must not run: the helper running it is stopped
            return Pending(outcome=hazard)
    if ISOLATE_INFERENCE:
        if data is None:
            data = model.SerializeToString()
        pending = _send(data, data_prop=data_prop, types=types) if sent is None else sent
        pending.graph_typed = _graph_typed(data, skeleton)
        return pending
    from onnx import shape_inference

    try:
        return Pending(outcome=shape_inference.infer_shapes(model, check_type=False, strict_mode=False,
                                                           data_prop=data_prop))
    except MemoryError:
        return Pending(outcome="it ran out of memory")
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError, ValueError, RuntimeError …
        return Pending(outcome=isolation.one_line(exc))


def _graph_typed(data: bytes | bytearray, skeleton: lite.Skeleton | None) -> bool:
    """:attr:`Pending.graph_typed` of the model serialized as ``data`` (whose nodes ``skeleton`` read, when
    known): a flat skeleton tells it without the scan of every byte (0.03 s for 38 MB)."""
    if skeleton is not None and skeleton.flat:
        return False
    return _GRAPH_TYPED in data


def finish(pending: Pending) -> Any:
    """The inferred model :func:`start_shape_inference` started (an :class:`Inferred` when it was asked
    for the types too), or why there is none (a string)."""
    if pending.request is None:
        return pending.outcome
    answer = _HELPER.receive(pending.request)
    if isinstance(answer, isolation.Failure):
        return _reason(answer)
    if len(answer) < _HEAD:
        return "onnx's shape inference ended without an answer"
    types_length, length, unresolved, utf8 = _ANSWER.unpack_from(answer)
    token = bytes(answer[_ANSWER.size:_HEAD])
    kept = any(token)  # the helper keeps the model (zeros: it follows the types)
    known = _HEAD + types_length
    size = pending.size
    if not kept:
        length = len(answer) - known
    if length > _growth_limit(size):
        if kept:
            _drop()
        return (f"it produced {length:,} bytes of shapes for a {size:,}-byte graph, "
                "which declares tensors of absurd rank")
    inferred: Any
    if kept:
        inferred = Inferred(None, token, length)
    elif pending.types:
        inferred = Inferred(memoryview(answer)[known:])
    else:
        inferred = lite.model_proto()
        inferred.ParseFromString(memoryview(answer)[known:])
    _TOLD.clear()
    _TOLD[id(inferred)] = _Told(unresolved, None if utf8 == _UTF8_UNKNOWN else utf8 == _UTF8_ALL,
                                _read_answer(memoryview(answer)[_HEAD:known]))  # a view: not copied
    return inferred


@dataclass(frozen=True, slots=True)
class _HelperRead:
    """What the helper read of the inferred model (:func:`_declared_answer`)."""

    types: dict[str, TypeInfo]
    unique: bool
    outline: list[Any]


def _read_answer(raw: bytes | bytearray | memoryview) -> _HelperRead | None:
    """What :func:`_encode_answer` wrote (``None``: nothing, or not what it writes)."""
    if not raw:
        return None
    import json
    from array import array

    try:
        meta_length, blob_length, count = _TYPES_HEAD.unpack_from(raw)
        view = memoryview(raw)[_TYPES_HEAD.size:]
        table, unique, lined, split, code = json.loads(bytes(view[:meta_length]))
        blob = view[meta_length:meta_length + blob_length]
        if len(blob) != blob_length:
            return None
        if not split:
            names = json.loads(bytes(blob))
        else:
            names = str(blob, "utf-8", "surrogatepass").split("\0") if count else []
        index = array(code)
        index.frombytes(view[meta_length + blob_length:])
        if type(names) is not list or len(names) != count or len(index) != count:
            return None
        infos = [(dtype, tuple(shape) if shape is not None else None) for dtype, shape in table]
        types = dict(zip(names, map(infos.__getitem__, index), strict=True))
        if len(types) != count:  # a name declared again
            types = _first_known(names, index, infos)
    except (ValueError, TypeError, IndexError, struct.error):  # not what the helper writes: the parent reads them
        return None
    if type(unique) is not bool or type(lined) is not list:
        return None
    return _HelperRead(types, unique, lined)


def _first_known(names: list[str], index: Any, infos: list[TypeInfo]) -> dict[str, TypeInfo]:
    """The types of ``names`` (``infos[index[i]]`` each) as :func:`.protos.base_types` keeps them: a name
    declared again replaces the first entry only when it knows a shape."""
    types: dict[str, TypeInfo] = {}
    for name, i in zip(names, index, strict=True):
        info = infos[i]
        if info[1] is not None or name not in types:
            types[name] = info
    return types


def declared_types(inferred: Any) -> dict[str, tuple[str | None, Any]] | None:
    """The types the main graph of ``inferred`` (the model :func:`finish` just returned, unchanged
    since) declares, as the helper read them; ``None`` when it did not."""
    read = _read_of(inferred)
    return None if read is None else read.types


def helper_names_unique(inferred: Any) -> bool | None:
    """:func:`names_unique` of the main graph of ``inferred`` (as :func:`declared_types`), as the
    helper told it; ``None`` when it did not."""
    read = _read_of(inferred)
    return None if read is None else read.unique


def same_outline(inferred: Any, model: Any) -> bool:
    """Has ``inferred`` (as :func:`declared_types`) the :func:`outline` of ``model``, as the helper read
    it?  ``False`` when that is not known."""
    read = _read_of(inferred)
    return read is not None and read.outline == outline(model)


def forget_types(inferred: Any) -> None:
    """``inferred`` was changed: the types the helper read of it no longer hold."""
    told = _TOLD.get(id(inferred))
    if told is not None:
        _TOLD[id(inferred)] = replace(told, read=None)


def cancel(pending: Pending) -> None:
    """Drop a started shape inference whose answer is no longer wanted (the helper is stopped)."""
    if pending.request is not None:
        _HELPER.cancel(pending.request)


_GRAPH_TYPED = b"\xa0\x01\x05"
"""An ``AttributeProto.type`` of GRAPH, serialized (field 20, varint 5); never a length followed by a
tag (field 0 does not exist).  GRAPHS (10) is left out: ``a0 01 0a`` is also a 160-byte length and a tag."""
_UNKNOWN_DIM = b"unk__"
"""How onnx names a dim it could not infer (``dim_param``)."""
@dataclass(frozen=True, slots=True)
class _Told:
    """What the helper's answer told of the model :func:`finish` returned, besides the model."""

    unresolved: bool
    """Whether its bytes name a dim onnx could not infer."""
    text_utf8: bool | None
    """Whether every string field of the request is UTF-8 (``None``: the helper did not check)."""
    read: _HelperRead | None
    """What the helper read of it (its main graph's types …; ``None``: nothing, or no longer true)."""


_TOLD: dict[int, _Told] = {}
"""id of the model the helper last returned → what its answer told (:class:`_Told`)."""


def _read_of(inferred: Any) -> _HelperRead | None:
    """What the helper read of ``inferred`` (as :func:`declared_types`), when it did."""
    told = _TOLD.get(id(inferred))
    return None if told is None else told.read


def text_utf8(inferred: Any) -> bool | None:
    """Whether every string field of the bytes sent to infer ``inferred`` (the model :func:`finish` just
    returned) is UTF-8, as :func:`.lite.all_text_utf8` says; ``None`` when the helper did not check."""
    told = _TOLD.get(id(inferred))
    return None if told is None else told.text_utf8


def unresolved_dims(inferred: Any) -> bool:
    """Whether shape inference left a dim of ``inferred`` (the model :func:`run_shape_inference` just
    returned) unresolved; ``True`` when not known (inference ran in-process), so callers look."""
    told = _TOLD.get(id(inferred))
    return True if told is None else told.unresolved


def data_prop_hazard(graph: Any, *, lengths_at: Sequence[int] | None = None) -> str:
    """Why ONNX's data propagation must not run on ``graph`` (a 1-D tensor, declared, stored or
    generated from a constant, or a ``Concat`` of them, longer than ``DATA_PROP_ELEMENTS`` reaching an
    op that propagates data), or ``""``.  One pass over the main graph; no tensor is read or built.
    ``lengths_at``: the positions of ``graph``'s nodes whose op is one of ``_LENGTHS``, when known
    (:meth:`.lite.Skeleton.main_nodes_of`): the other nodes matter only once a tensor is too long, so
    only these are looked at until one is (then every node after it, as without them)."""
    lengths: dict[str, int] = {}
    scalars: dict[str, int] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 1 and dims[0].HasField("dim_value"):
            lengths[vi.name] = int(dims[0].dim_value)
    for t in graph.initializer:
        if len(t.dims) == 1:  # (the others are not noted: looked at here, without a call)
            _note_tensor(t, t.name, lengths, scalars)
    limit = DATA_PROP_ELEMENTS
    over = {name for name, n in lengths.items() if n > limit}  # longer than the limit now: the only ones to look for
    nodes: Iterable[Any] = graph.node
    if lengths_at is not None and not over:
        for at in lengths_at:
            why = _hazard_at(graph.node[at], lengths, scalars, over)
            if why or over:
                if why:
                    return why
                nodes = islice(graph.node, at + 1, None)
                break
        else:
            return ""
    for node in nodes:
        why = _hazard_at(node, lengths, scalars, over)
        if why:
            return why
    return ""


def _hazard_at(node: Any, lengths: dict[str, int], scalars: dict[str, int], over: set[str]) -> str:
    """One node of :func:`data_prop_hazard`'s pass: the length it gives its output (``lengths``, and
    ``over`` when past the limit), then why data propagation must not run, if it reaches a tensor in ``over``."""
    op = node.op_type
    limit = DATA_PROP_ELEMENTS
    if op in _LENGTHS and node.output:
        out = node.output[0]
        if op == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    _note_tensor(a.t, out, lengths, scalars)
                elif a.name in ("value_ints", "value_floats"):
                    lengths[out] = len(a.ints) + len(a.floats)
        elif op == "Concat":
            lengths[out] = sum(lengths.get(i, 0) for i in node.input)
        elif node.input:  # ConstantOfShape
            lengths[out] = scalars.get(node.input[0], 0)
        if lengths.get(out, 0) > limit:
            over.add(out)
        else:
            over.discard(out)
    if op in _PROPAGATING and over and not (over.isdisjoint(node.input) and over.isdisjoint(node.output)):
        longest = max([lengths.get(i, 0) for i in node.input] + [lengths.get(o, 0) for o in node.output])
        where = node.name or (node.output[0] if node.output else "")
        return (f"a 1-D tensor of {longest:,} elements reaches {op} {where!r}; "
                "data propagation would build a value that long")
    return ""


def _note_tensor(t: Any, name: str, lengths: dict[str, int], scalars: dict[str, int]) -> None:
    """Record the length of a 1-D stored tensor, and the value of a one-element int64 one (a shape)."""
    if len(t.dims) != 1:
        return
    lengths[name] = int(t.dims[0])
    if int(t.dims[0]) == 1 and t.data_type == 7:
        if t.int64_data:
            scalars[name] = int(t.int64_data[0])
        elif len(t.raw_data) == 8:
            scalars[name] = int.from_bytes(t.raw_data, "little", signed=True)


def _reason(failure: isolation.Failure) -> str:
    """Why the helper gave no inferred model, as the note and metadata say it."""
    if failure.kind == "out-of-memory":
        return "it ran out of memory"
    if failure.kind == "timeout":
        return f"{INFER_TIMEOUT} {failure.seconds} s"
    if failure.kind == "crash":
        return f"onnx's shape inference crashed (signal {failure.signal_name})"
    if failure.kind == "error":
        return failure.message
    return "onnx's shape inference ended without an answer"
