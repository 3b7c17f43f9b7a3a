"""ONNX loader: a ``.onnx`` protobuf into a :class:`~inspector.ir.ModelGraph`.

What the graph holds
--------------------
* Every graph input that is not an initializer becomes a layer of type
  ``InputLayer`` (files with IR version < 4 list every weight as an input too;
  those are weights, not inputs).
* Every operator node becomes a layer whose ``type`` is the op type (qualified
  as ``domain.OpType`` outside the default domain) and whose ``config`` holds
  the attributes as plain Python values (tensors as dtype/shape descriptions,
  graphs by name and size) plus two descriptive keys: ``"@inputs"`` — one entry
  per operand with its schema name, tensor name, kind (``input``, ``weight``,
  ``constant`` or ``absent``), dtype, shape and, for small shape-like constants,
  the value — and ``"@outputs"``, the output tensor names.  Unnamed nodes are
  called ``OpType_<index>`` (index in the file's node list).
* ``inbound`` is one call whose :class:`~inspector.ir.Inbound` list names the
  producers of the node's non-constant operands (``producer[0][k]``, k = the
  producer's output index); ``node_shapes`` holds one shape per output, from
  ONNX shape inference with data propagation: ``int`` dims, ``str`` for
  symbolic ones (``batch``), ``None`` where unknown.
* ``If``/``Loop``/``Scan`` bodies become nested graphs (``Layer.subgraphs`` keyed
  by attribute name); a call of a model-local function gets the function body as
  ``subgraphs["function"]`` (one shared graph per function).

Parameters (DESIGN.md)
----------------------
A parameter is a stored constant — an initializer, a ``Constant`` node's value,
or the output of a ``ConstantOfShape`` generator — that reaches an operator as
*data*, possibly through constant-only nodes (``Cast``, ``Reshape``,
``Transpose``, ``DequantizeLinear`` …).  Those constant-only nodes are folded:
they are not layers; the stored tensors they transform become weights of the
operator that consumes the result.  Shape, axes, index and similar operands
(``Reshape``'s shape, ``Resize``'s scales, ``Slice``'s starts, ``Gather``'s
indices …) are not parameters.  A weight's ``key`` is the stored tensor's name
(qualified by the sub-graph or function that defines it), so a tensor used by
several nodes counts once; ``BatchNormalization`` mean and variance are
non-trainable; quantization scales and zero points carry
``Weight.quantization=True`` and are reported apart.

Safety and memory
-----------------
The file is read in small positioned reads and its big tensors are stripped
before protobuf parses it (:mod:`inspector.loaders.onnx_wire`), so loading costs
memory in proportion to the graph's structure, not to its weights.  ONNX shape
inference, C++ that a crafted graph can make allocate gigabytes or crash, runs in
a forked helper process with a memory and time budget (Linux); when it fails the
shapes come from the file's ``value_info`` and a note says why.  External
data is recorded by reference (file, offset, length) and read only by
``Weight.read()``; a location that is absolute, contains ``..`` or resolves
outside the model's folder is never opened and becomes a ``SEC003`` security
fact.  Sub-graphs are built with an explicit work queue, not recursion.

The limits of :mod:`inspector.limits` in force when :func:`load` starts bound the
graph structure's size (``proto_bytes``) and protobuf nesting (``proto_depth``),
the node count (``onnx_nodes``), sub-graph nesting (``onnx_graph_depth``) and the
layers of a full walk (``onnx_expanded_layers``); ``Weight.read()`` refuses a
tensor whose declared size is over ``tensor_bytes`` (the limit in force when it is
called) before allocating anything.  Every limit error names the environment
variable that raises it.  A stored tensor that cannot be decoded (its bytes do
not match its shape and data type) is a :class:`~inspector.errors.ModelLoadError`
from ``Weight.read()``, never a numpy or protobuf exception.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import limits
from ..errors import InspectorError, LimitExceeded, ModelLoadError, UnsafeModel, UnsupportedFormat
from ..ir import ExternalData, Inbound, Layer, ModelGraph, SecurityFact, Weight
from ..limits import Limits, hint
from . import onnx_wire

# The limits that protect against hostile files are fields of inspector.limits.Limits
# (proto_bytes, proto_depth, onnx_nodes, onnx_graph_depth, onnx_expanded_layers,
# tensor_bytes).  Only protobuf's own limit is fixed:
PROTOBUF_MAX_BYTES = onnx_wire.PROTOBUF_MAX_BYTES
"""protobuf parses and serializes no message bigger than this (2 GiB - 1)."""
SMALL_VALUE = 4096
"""Constants with at most this many elements are evaluated (shape operands, trip counts)."""
CONFIG_VALUE = 64
"""Constant operand values with at most this many elements are shown in ``@inputs``."""

DEFAULT_DOMAINS = ("", "ai.onnx")

DTYPES: dict[int, str] = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn", 18: "float8_e4m3fnuz",
    19: "float8_e5m2", 20: "float8_e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4_e2m1",
    24: "float8_e8m0", 25: "uint2", 26: "int2", 27: "float6_e2m3", 28: "float6_e3m2",
}

# Operands that are shapes, axes, indices, counts or thresholds: never parameters.
_NON_DATA: dict[str, frozenset[int]] = {k: frozenset(v) for k, v in {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Slice": {1, 2, 3, 4}, "Squeeze": {1},
    "Unsqueeze": {1}, "Pad": {1, 2, 3}, "Resize": {1, 2, 3}, "Upsample": {1}, "Gather": {1},
    "GatherElements": {1}, "GatherND": {1}, "ScatterND": {1}, "ScatterElements": {1}, "Scatter": {1},
    "TopK": {1}, "Split": {1}, "ConstantOfShape": {0}, "Range": {0, 1, 2}, "OneHot": {0, 1, 2},
    "CumSum": {1}, "Trilu": {1}, "NonMaxSuppression": {2, 3, 4}, "Clip": {1, 2}, "Dropout": {1, 2},
    "Loop": {0, 1}, "If": {0}, "RoiAlign": {2}, "MaxUnpool": {2}, "CenterCropPad": {1},
    "Col2Im": {1, 2}, "AffineGrid": {1}, "STFT": {1, 3}, "DFT": {1, 2}, "ReverseSequence": {1},
    "Compress": {1}, "Shape": {0}, "Size": {0}, "EyeLike": {0}, "SequenceAt": {1},
    "SequenceInsert": {2}, "SequenceErase": {1}, "SplitToSequence": {1}, "ReduceSum": {1},
    "ReduceMean": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceProd": {1}, "ReduceL1": {1},
    "ReduceL2": {1}, "ReduceLogSum": {1}, "ReduceLogSumExp": {1}, "ReduceSumSquare": {1},
    "BlackmanWindow": {0}, "HannWindow": {0}, "HammingWindow": {0}, "MelWeightMatrix": {0, 1, 2, 3, 4},
    "LSTM": {4}, "GRU": {4}, "RNN": {4}, "RotaryEmbedding": {3}, "RandomNormalLike": {0},
    "RandomUniformLike": {0}, "Bernoulli": {0}, "Multinomial": {0}, "TensorScatter": {2},
    "MatMulNBits": {4}, "GatherBlockQuantized": {1},
}.items()}

# Operands that are quantization scales and zero points (reported apart).
_QUANT: dict[str, frozenset[int]] = {k: frozenset(v) for k, v in {
    "QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2}, "DynamicQuantizeLinear": set(),
    "QLinearConv": {1, 2, 4, 5, 6, 7}, "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "MatMulInteger": {2, 3}, "ConvInteger": {2, 3},
    # com.microsoft contrib ops
    "QLinearAdd": {1, 2, 4, 5, 6, 7}, "QLinearMul": {1, 2, 4, 5, 6, 7},
    "QLinearSigmoid": {1, 2, 3, 4}, "QLinearLeakyRelu": {1, 2, 3, 4}, "QLinearSoftmax": {1, 2, 3, 4},
    "QLinearAveragePool": {1, 2, 3, 4}, "QLinearGlobalAveragePool": {1, 2, 3, 4},
    "QGemm": {1, 2, 4, 5, 7, 8}, "DynamicQuantizeMatMul": {2, 3}, "MatMulIntegerToFloat": {2, 3, 4, 5},
    "MatMulNBits": {2, 3}, "GatherBlockQuantized": {2, 3}, "QAttention": {3, 4, 6, 7},
}.items()}

_BN_STATS = {"BatchNormalization": frozenset({3, 4})}
_NOT_FOLDABLE = frozenset({
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    "If", "Loop", "Scan",
})
_FOLDABLE_OTHER_DOMAIN = frozenset({("com.microsoft", "DequantizeLinear"), ("com.microsoft", "QuantizeLinear")})


# -- small records ---------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class _Source:
    """A stored tensor: what a parameter is."""

    name: str
    key: str
    dtype: str
    shape: tuple[int, ...] | None
    external: ExternalData | None = None
    reader: Callable[[], Any] | None = None


@dataclass(slots=True, eq=False)
class _Const:
    """A constant tensor of a graph: stored, generated or folded from constants."""

    name: str
    dtype: str | None
    shape: tuple | None
    origins: tuple[tuple[_Source, bool], ...]
    """(stored tensor, is_quantization) for every stored tensor that flows into it as data."""
    proto: Any = None
    """An inline ``TensorProto`` whose value can be parsed on demand."""
    value: Any = None
    evaluated: bool = False


@dataclass(slots=True, eq=False)
class _Scope:
    parent: _Scope | None
    graph: ModelGraph
    key_prefix: str
    opsets: dict[str, int]
    consts: dict[str, _Const] = field(default_factory=dict)
    producers: dict[str, Inbound] = field(default_factory=dict)
    types: dict[str, tuple[str | None, tuple | None]] = field(default_factory=dict)
    outer: dict[str, str] = field(default_factory=dict)
    """Outer-scope tensor -> name of the InputLayer standing for it in this graph."""
    used_names: set[str] = field(default_factory=set)
    non_data: dict[str, frozenset[int]] = field(default_factory=dict)
    """Layer name -> operand positions that are shapes/indices (not data)."""

    def find_const(self, name: str) -> _Const | None:
        scope: _Scope | None = self
        while scope is not None:
            c = scope.consts.get(name)
            if c is not None:
                return c
            if name in scope.producers:
                return None
            scope = scope.parent
        return None

    def find_type(self, name: str) -> tuple[str | None, tuple | None]:
        scope: _Scope | None = self
        while scope is not None:
            t = scope.types.get(name)
            if t is not None:
                return t
            scope = scope.parent
        return (None, None)

    def defined_outside(self, name: str) -> bool:
        scope = self.parent
        while scope is not None:
            if name in scope.producers or name in scope.consts or name in scope.outer:
                return True
            scope = scope.parent
        return False


@dataclass(slots=True)
class _Task:
    proto: Any  # GraphProto or FunctionProto
    graph: ModelGraph
    parent: _Scope | None
    key_prefix: str
    opsets: dict[str, int]
    depth: int
    is_function: bool = False


# -- public entry point ------------------------------------------------------------------
def load(path: Path, *, infer_shapes: bool = True) -> ModelGraph:
    """Read the ONNX model at ``path`` statically (nothing is executed)."""
    path = Path(path)
    lim = limits.current()  # the limits in force for this whole file
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelLoadError("is empty (0 bytes): not an ONNX model")
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[4:8] == b"ORTM":
        raise UnsupportedFormat(
            "is an ONNX Runtime .ort (flatbuffer) model, not an ONNX protobuf: inspect the .onnx file it was converted from")
    import gc

    # Building creates many small objects and no garbage cycles: the cyclic
    # collector would only rescan the growing graph again and again.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if infer_shapes and ISOLATE_INFERENCE:
            _HELPER.start()  # forked while this process holds no model yet
        if _looks_like_text(head, path):
            model, stripped = _load_text(path, size, lim), None
        else:
            model, stripped = _load_binary(path, lim)
        try:
            graph = _Builder(path, model, stripped, size, lim, infer_shapes=infer_shapes).build()
            if not _graph_has_bytes(graph):
                return graph
        except InspectorError:
            raise
        except RecursionError:
            raise ModelLoadError("nests its structure too deeply to be read safely") from None
        except Exception as exc:  # noqa: BLE001 - retried below, then one actionable line
            if not _any_bytes(model):
                raise ModelLoadError(
                    f"could not be read ({type(exc).__name__}: {_short(exc, 100)}); the file looks corrupt "
                    "(rerun with --debug to see where)") from exc
        # Protobuf returns bytes for a proto2 string that is not valid UTF-8: make
        # every such field text (lossy), then build again.
        _sanitize_strings(model)
        try:
            return _Builder(path, model, stripped, size, lim, infer_shapes=infer_shapes).build()
        except InspectorError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"could not be read ({type(exc).__name__}: {_short(exc, 100)}); the file looks corrupt "
                "(rerun with --debug to see where)") from exc
    finally:
        if was_enabled:
            gc.enable()


def _graph_has_bytes(graph: ModelGraph) -> bool:
    """Did some text reach the graph as bytes (invalid UTF-8 in the file)?  A
    cheap scan of the Python objects the builder made, sub-graphs included."""
    items: list[Any] = []
    add, extend = items.append, items.extend
    seen: set[int] = set()
    stack = [graph]
    while stack:
        g = stack.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        add(g.name)
        for lay in g.layers:
            add(lay.name)
            add(lay.type)
            config = lay.config
            extend(config)
            for entry in config.get("@inputs", ()):
                add(entry.get("tensor"))
                shape = entry.get("shape")
                if shape:
                    extend(shape)
            extend(config.get("@outputs", ()))
            for shapes in lay.node_shapes:
                for shape in shapes:
                    if shape:
                        extend(shape)
            for w in lay.weights:
                add(w.name)
                if w.external is not None:
                    add(w.external.location)
            if lay.subgraphs:
                stack.extend(lay.subgraphs.values())
    for value in graph.metadata.values():
        if isinstance(value, dict):
            extend(value)
            extend(value.values())
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, dict):
                    extend(v.values())
                    for x in v.values():
                        if isinstance(x, list):
                            extend(x)
                else:
                    add(v)
        else:
            add(value)
    return bytes in set(map(type, items))


def _any_bytes(message) -> bool:
    """Any string field anywhere in ``message`` that decoded as bytes (iterative)."""
    from google.protobuf.descriptor import FieldDescriptor

    stack = [message]
    while stack:
        msg = stack.pop()
        for fd, value in msg.ListFields():
            if fd.type == FieldDescriptor.TYPE_STRING:
                values = value if _is_repeated(fd) else [value]
                if any(type(v) is bytes for v in values):
                    return True
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend(value if _is_repeated(fd) else [value])
    return False


def _is_repeated(fd) -> bool:
    label = getattr(fd, "label", None)
    if label is not None:
        return label == fd.LABEL_REPEATED
    return bool(getattr(fd, "is_repeated", False))  # pragma: no cover - newer protobuf


def _sanitize_strings(message) -> None:
    """Replace every string field that decoded as bytes by its UTF-8 text (lossy)."""
    from google.protobuf.descriptor import FieldDescriptor

    stack = [message]
    while stack:
        msg = stack.pop()
        for fd, value in msg.ListFields():
            if fd.type == FieldDescriptor.TYPE_STRING:
                if _is_repeated(fd):
                    for i, v in enumerate(value):
                        if type(v) is bytes:
                            value[i] = v.decode("utf-8", errors="replace")
                elif type(value) is bytes:
                    setattr(msg, fd.name, value.decode("utf-8", errors="replace"))
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend(value if _is_repeated(fd) else [value])


_TEXT_STARTS = (b"ir_version", b"producer_name", b"producer_version", b"opset_import", b"graph", b"domain",
                b"model_version", b"doc_string", b"metadata_props", b"functions", b"<")


def _looks_like_text(head: bytes, path: Path) -> bool:
    """A text-format model (protobuf text or the ``onnxtxt`` syntax)?"""
    if path.suffix.lower() in (".onnxtxt", ".textproto", ".pbtxt"):
        return True
    text = head.lstrip()
    while text.startswith(b"#"):  # comment lines
        text = text.partition(b"\n")[2].lstrip()
    return text.startswith(_TEXT_STARTS) and all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def _load_text(path: Path, size: int, lim: Limits):
    import warnings

    import onnx

    if size > lim.proto_bytes:  # text protobuf has no way to skip weights: the whole file is structure
        raise LimitExceeded(
            f"is a {size:,}-byte text-format model, more than the proto_bytes limit of {lim.proto_bytes:,} bytes; "
            f"{hint('proto_bytes')}")
    try:
        with path.open("rb") as fh:
            head = fh.read(64).lstrip()
        fmt = "onnxtxt" if path.suffix.lower() == ".onnxtxt" or head.startswith(b"<") else "textproto"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "The onnxtxt format is experimental"
            try:
                return onnx.load_model(str(path), format=fmt, load_external_data=False)
            except Exception:  # noqa: BLE001 - try the other text syntax before giving up
                other = "textproto" if fmt == "onnxtxt" else "onnxtxt"
                return onnx.load_model(str(path), format=other, load_external_data=False)
    except Exception as exc:  # the text parsers raise several unrelated types
        msg = exc.decode("utf-8", "replace") if isinstance(exc, bytes) else _short(exc)
        if isinstance(exc.args[0] if exc.args else None, bytes):
            msg = _short(exc.args[0].decode("utf-8", "replace"))
        raise ModelLoadError(
            f"looks like a text-format ONNX model but does not parse ({msg}); "
            "fix the text or save the model in binary .onnx form") from None


def _load_binary(path: Path, lim: Limits):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        stripped = onnx_wire.strip_file(path, max_depth=lim.proto_depth,
                                        max_bytes=min(lim.proto_bytes, PROTOBUF_MAX_BYTES))
    except onnx_wire.StructureTooLarge as exc:
        if exc.limit >= PROTOBUF_MAX_BYTES:
            raise ModelLoadError(
                "has more than 2 GiB of graph structure outside its weights, which protobuf cannot parse") from None
        raise LimitExceeded(
            f"has more than {lim.proto_bytes:,} bytes of graph structure outside its weights, past the proto_bytes "
            f"limit; {hint('proto_bytes')}") from None
    except onnx_wire.WireError as exc:
        raise ModelLoadError(str(exc)) from None
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(stripped.data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        if "depth" in str(exc).lower() or "recursion" in str(exc).lower():
            raise ModelLoadError(
                "nests sub-graphs deeper than protobuf's parser allows (about 30 levels); it cannot be read") from None
        raise ModelLoadError(
            f"is not a valid ONNX protobuf ({_short(exc)}); the file is corrupt, truncated or not an ONNX model") from None
    stripped.data = b""
    if not model.HasField("graph") and not model.functions:
        raise ModelLoadError(
            "does not contain an ONNX graph (no ModelProto.graph); the file is corrupt or not an ONNX model")
    if not model.ir_version and not model.opset_import and not model.graph.node:
        raise ModelLoadError("does not look like an ONNX model (no IR version, opsets or nodes)")
    return model, stripped


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- shape inference, isolated -----------------------------------------------------------
# ONNX shape inference is C++ that trusts the model: a one-element shape operand
# holding 10**8, or a 1-D tensor declared (or inferred) 10**8 long, makes it build
# shapes of that rank or length — gigabytes in seconds, ``std::bad_alloc``, and a
# later call in the same process can crash it.  On Linux it therefore runs in a
# helper process forked once (before the first model is parsed, so it holds little
# memory) and reused: each request gets a memory and a time budget; a helper that
# ran out of memory, crashed or timed out is replaced.  Elsewhere, or with
# ``ISOLATE_INFERENCE = False``, inference runs in-process.
INFER_SECONDS = 30
"""Wall-clock budget of one shape-inference run, plus one second per MiB of graph structure."""
INFER_MEMORY = 1 << 30
"""Memory (address space) one shape-inference run may add, plus 16 bytes per byte of graph structure."""
_INFER_GROWTH = 8
"""An inferred model more than this many times the input (plus 16 MiB) is refused:
shapes of absurd rank, not information."""
_INFER_TIMEOUT = "stopped after"
ISOLATE_INFERENCE = sys.platform.startswith("linux") and hasattr(os, "fork")
"""Run shape inference in a forked helper process (set ``False`` in a program that must not fork)."""


def _infer_shapes(model, *, data_prop: bool):
    """``onnx.shape_inference.infer_shapes(model)``, or why it failed (a string)."""
    import onnx
    from onnx import shape_inference

    if ISOLATE_INFERENCE:
        size = model.ByteSize()
        outcome = _HELPER.infer(model.SerializeToString(), data_prop=data_prop,
                                seconds=INFER_SECONDS + size // (1 << 20), memory=INFER_MEMORY + 16 * size)
        if isinstance(outcome, str):
            return outcome
        if len(outcome) > min(_INFER_GROWTH * size + (16 << 20), PROTOBUF_MAX_BYTES):
            return (f"it produced {len(outcome):,} bytes of shapes for a {size:,}-byte graph, "
                    "which declares tensors of absurd rank")
        inferred = onnx.ModelProto()
        inferred.ParseFromString(outcome)
        return inferred
    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=data_prop)
    except MemoryError:
        return "it ran out of memory"
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError, ValueError, RuntimeError …
        return _short(exc)


class _InferenceHelper:
    """A forked process that runs shape inference requests one at a time.

    Request: ``<Q size><B data_prop><Q memory><I seconds>`` and the model bytes;
    answer: ``<Q length>`` and a tag byte (``K`` ok + inferred model bytes, ``E``
    error + message, ``M`` out of memory, after which the helper exits)."""

    _REQUEST = struct.Struct("<QBQI")
    _LENGTH = struct.Struct("<Q")

    def __init__(self) -> None:
        self.pid = 0
        self.owner = 0
        self.to_helper = -1
        self.from_helper = -1
        self.lock = threading.Lock()

    def start(self) -> None:
        """Fork the helper now (cheap when it already runs)."""
        with self.lock:
            self._ensure()

    def infer(self, data: bytes, *, data_prop: bool, seconds: int, memory: int) -> bytes | str:
        with self.lock:
            self._ensure()
            seconds = max(1, seconds)  # alarm(0) would mean no time limit
            request = self._REQUEST.pack(len(data), int(data_prop), memory, seconds)
            answer: bytes | None = None
            try:
                _write_all(self.to_helper, request)
                _write_all(self.to_helper, data)
                head = _read_exact(self.from_helper, self._LENGTH.size)
                if head is not None:
                    answer = _read_exact(self.from_helper, self._LENGTH.unpack(head)[0])
            except BrokenPipeError:
                answer = None
            except BaseException:  # interrupted mid-request: the helper's state is unknown
                self._stop(kill=True)
                raise
            if answer is None or answer[:1] == b"M":
                status = self._stop(kill=answer is None)
                if answer is not None:
                    return "it ran out of memory"
                if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
                    return f"{_INFER_TIMEOUT} {seconds} s"
                if os.WIFSIGNALED(status):
                    return f"onnx's shape inference crashed (signal {signal.Signals(os.WTERMSIG(status)).name})"
                return "onnx's shape inference ended without an answer"
            if answer[:1] == b"K":
                return answer[1:]
            return answer[1:].decode("utf-8", "replace")

    def _ensure(self) -> None:
        if self.pid and self.owner == os.getpid():
            try:
                alive = os.waitpid(self.pid, os.WNOHANG)[0] == 0
            except ChildProcessError:  # reaped by someone else
                alive = False
            if alive:
                return
        if self.pid or self.owner:  # a helper that ended, or one inherited through a fork (not ours)
            self.pid = 0
            self._close()
        from onnx import defs, shape_inference

        defs.get_schema("Relu", 1)  # onnx's schema registry is initialized before the fork
        infer = getattr(getattr(shape_inference, "C", None), "infer_shapes", None)
        if infer is None:  # pragma: no cover - another onnx layout
            def infer(data: bytes, check_type: bool, strict_mode: bool, prop: bool) -> bytes:
                return shape_inference.infer_shapes(data, check_type=check_type, strict_mode=strict_mode,
                                                    data_prop=prop).SerializeToString()
        import warnings

        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        with warnings.catch_warnings():
            # "multi-threaded, use of fork() may lead to deadlocks": the helper only runs onnx
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the helper: never returns, never runs the parent's atexit handlers
            try:
                _close_fds_except(2, req_r, ans_w)  # hold no file, pipe or socket of the parent open
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(null, 1)  # nothing may reach the parent's standard output
                _serve(infer, req_r, ans_w)
            finally:
                os._exit(0)
        os.close(req_r)
        os.close(ans_w)
        self.pid, self.owner, self.to_helper, self.from_helper = pid, os.getpid(), req_w, ans_r

    def _close(self) -> None:
        for fd in (self.to_helper, self.from_helper):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.to_helper = self.from_helper = -1

    def _stop(self, *, kill: bool) -> int:
        """End the helper; its wait status."""
        pid, self.pid = self.pid, 0
        self._close()
        if not pid:
            return 0
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:  # pragma: no cover - reaped elsewhere
            return 0


def _serve(infer: Callable[[bytes, bool, bool, bool], bytes], requests: int, answers: int) -> None:
    """The helper's loop: one request at a time until the parent closes the pipe."""
    import resource

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    while True:
        head = _read_exact(requests, _InferenceHelper._REQUEST.size)
        if head is None:
            return
        size, data_prop, memory, seconds = _InferenceHelper._REQUEST.unpack(head)
        data = _read_exact(requests, size)
        if data is None:
            return
        used = _address_space()
        if used:
            limit = used + memory if hard == resource.RLIM_INFINITY else min(used + memory, hard)
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit if soft == resource.RLIM_INFINITY
                                                        else min(limit, soft), hard))
            except (OSError, ValueError):  # pragma: no cover - the time budget still holds
                pass
        signal.alarm(seconds)
        try:
            answer = b"K" + infer(data, False, False, bool(data_prop))
        except MemoryError:
            answer = b"M"
        except Exception as exc:  # noqa: BLE001 - reported to the parent as text
            answer = b"E" + _short(exc).encode("utf-8", "replace")
        signal.alarm(0)
        del data
        _write_all(answers, _InferenceHelper._LENGTH.pack(len(answer)))
        _write_all(answers, answer)
        if answer[:1] == b"M":
            return  # after std::bad_alloc onnx's state is not trusted: the parent forks a new helper


def _close_fds_except(*keep: int) -> None:
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):  # pragma: no cover - no /proc
        return
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or ``None`` at end of file."""
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 24))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 24]):]


def _address_space() -> int:
    """This process's virtual memory size in bytes (0 when unknown)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


_HELPER = _InferenceHelper()


# -- helpers over protos -------------------------------------------------------------------
def dtype_name(code: int) -> str:
    return DTYPES.get(int(code), f"dtype{int(code)}")


def _dims(tensor) -> tuple[int, ...] | None:
    dims = tuple(int(d) for d in tensor.dims)
    return None if any(d < 0 for d in dims) else dims


def _type_info(tp) -> tuple[str | None, tuple | None]:
    """(dtype, shape) of a TypeProto; shape ``None`` when unknown or not a tensor."""
    wrappers = []
    for _ in range(64):  # optional(optional(...)) nests at most this deep here
        which = tp.WhichOneof("value")
        if which in ("tensor_type", "sparse_tensor_type"):
            t = getattr(tp, which)
            dtype = dtype_name(t.elem_type) if t.elem_type else None
            shape = None
            if t.HasField("shape"):
                shape = tuple(_dim(d) for d in t.shape.dim)
            for w in reversed(wrappers):
                dtype = f"{w}({dtype or '?'})"
                if w != "optional":
                    shape = None
            return dtype, shape
        if which == "optional_type":
            wrappers.append("optional")
            tp = tp.optional_type.elem_type
        elif which == "sequence_type":
            wrappers.append("seq")
            tp = tp.sequence_type.elem_type
        elif which == "map_type":
            key = dtype_name(tp.map_type.key_type)
            inner, _ = _type_info_flat(tp.map_type.value_type)
            return f"map({key},{inner or '?'})", None
        else:
            return None, None
    return None, None


def _type_info_flat(tp) -> tuple[str | None, None]:
    which = tp.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        return dtype_name(getattr(tp, which).elem_type), None
    return which, None


def _dim(d) -> int | str | None:
    which = d.WhichOneof("value")
    if which == "dim_value":
        return int(d.dim_value)
    if which == "dim_param" and d.dim_param:
        return str(d.dim_param)
    return None


def _float(x: float) -> float:
    """A float32 attribute as the shortest decimal that round-trips (1e-4, not 9.99999974737875e-05)."""
    try:
        import numpy as np

        return float(str(np.float32(x)))
    except (ValueError, OverflowError):
        return float(x)


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


def _small_value(t):
    """The values of a small inline ``TensorProto`` the builder evaluates (shape
    operands, fill values, attribute tensors), or ``None`` when they cannot be had.

    A tensor marked as external data is never read here: onnx would resolve its
    location against the working directory, not the model's folder."""
    if t.data_location == 1 or t.data_type == 8:
        return None
    from onnx import numpy_helper

    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError, KeyError, IndexError):  # inconsistent dims, data and dtype
        return None


def _tensor_desc(t) -> dict[str, Any]:
    desc: dict[str, Any] = {"dtype": dtype_name(t.data_type), "shape": [int(d) for d in t.dims]}
    if t.name:
        desc["name"] = t.name
    if t.data_location == 1:
        desc["external"] = True
    else:
        n = 1
        for d in t.dims:
            n *= int(d)
        if 0 <= n <= 16:
            value = _small_value(t)  # a malformed tiny tensor only loses its value
            if value is not None:
                desc["value"] = value.tolist()
    return desc


def _attribute_value(a) -> Any:
    """An attribute as a plain Python value (graphs and tensors described, not inlined)."""
    t = a.type
    if a.ref_attr_name:
        return {"ref": a.ref_attr_name}
    if t == 0:  # UNDEFINED in old files: guess from the field that is set
        for name, guess in (("g", 5), ("t", 4), ("s", 3), ("graphs", 10), ("tensors", 9), ("strings", 8),
                            ("ints", 7), ("floats", 6)):
            v = getattr(a, name)
            if (name in ("g", "t") and a.HasField(name)) or (name == "s" and v) or (name not in ("g", "t", "s") and len(v)):
                t = guess
                break
        else:
            t = 2 if a.i else 1
    if t == 1:
        return _float(a.f)
    if t == 2:
        return int(a.i)
    if t == 3:
        return _text(a.s)
    if t == 4:
        return _tensor_desc(a.t)
    if t == 5:
        return {"graph": a.g.name, "nodes": len(a.g.node)}
    if t == 11:
        return {"sparse_tensor": _tensor_desc(a.sparse_tensor.values), "dims": list(a.sparse_tensor.dims)}
    if t == 13:
        return {"type": _type_info(a.tp)[0]}
    if t == 6:
        return [_float(x) for x in a.floats]
    if t == 7:
        return [int(x) for x in a.ints]
    if t == 8:
        return [_text(x) for x in a.strings]
    if t == 9:
        return [_tensor_desc(x) for x in a.tensors]
    if t == 10:
        return [{"graph": g.name, "nodes": len(g.node)} for g in a.graphs]
    if t == 12:
        return [{"sparse_tensor": _tensor_desc(x.values), "dims": list(x.dims)} for x in a.sparse_tensors]
    if t == 14:
        return [{"type": _type_info(x)[0]} for x in a.type_protos]
    return None


def _resolve_inside(base: Path, location: str) -> tuple[Path | None, str | None]:
    """The real path of ``location`` inside ``base``, or ``None`` and the reason it is refused."""
    if not location:
        return None, "it is empty"
    if "\x00" in location:
        return None, "it contains a NUL byte"
    parts = re.split(r"[\\/]+", location)
    if location.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", location) or os.path.isabs(location):
        return None, "it is an absolute path"
    if ".." in parts:
        return None, "it contains '..'"
    if location.startswith("~"):
        return None, "it starts with '~'"
    base_real = os.path.realpath(base)
    real = os.path.realpath(os.path.join(base_real, *[p for p in parts if p not in ("", ".")]))
    try:
        inside = os.path.commonpath([real, base_real]) == base_real
    except ValueError:
        inside = False
    if not inside:
        return None, "it resolves (through a symbolic link) outside the model's folder"
    return Path(real), None


# -- the builder ---------------------------------------------------------------------------
class _Builder:
    def __init__(self, path: Path, model, stripped: onnx_wire.StrippedModel | None, size: int, lim: Limits, *,
                 infer_shapes: bool) -> None:
        self.path = path
        self.limits = lim
        self.model = model
        self.stripped = stripped
        self.file_size = size
        self.do_infer = infer_shapes
        self.notes: list[str] = []
        self.security: list[SecurityFact] = []
        self.external: dict[str, dict[str, Any]] = {}
        self.node_count = 0
        self.folded = 0
        self.referenced: set[str] = set()
        self._schemas: dict[tuple[str, str, int], Any] = {}
        self.functions: dict[tuple[str, str, str], ModelGraph] = {}
        self.function_protos: dict[tuple[str, str, str], Any] = {}
        self.shape_inference = "not run"
        self.cyclic_functions: set = set()
        self._refused: dict[str, tuple[str, str]] = {}
        self._sec_first: dict[str, str] = {}

    # ---- top level ----
    def build(self) -> ModelGraph:
        model = self.model
        self._check_counts(model)
        if self.do_infer:
            model = self._infer(model)
        self.model = model
        g = model.graph
        opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
        if "ai.onnx" in opsets and "" not in opsets:
            opsets[""] = opsets["ai.onnx"]
        name = g.name or self.path.stem
        graph = ModelGraph(name=name, format="onnx", kind="onnx", path=str(self.path))
        queue: deque[_Task] = deque()
        self._plan_functions(model, queue)
        queue.appendleft(_Task(g, graph, None, "", opsets, 0))
        main_scope: _Scope | None = None
        while queue:
            task = queue.popleft()
            scope = self._build_graph(task, queue)
            if task.graph is graph:
                main_scope = scope
        assert main_scope is not None
        self._check_expansion(graph)
        for location, (tensor, reason) in self._refused.items():
            self.security.append(SecurityFact(
                code="SEC003",
                message=(f"external data location {location!r} of tensor {tensor!r} is outside the model's folder "
                         f"({reason}); inspector did not open it"),
                layer=self._sec_first.get(location), detail=location))
        graph.security = self.security
        graph.notes = self.notes
        graph.metadata = self._metadata(model, main_scope, graph)
        graph.invalidate()
        return graph

    def _too_deep(self) -> LimitExceeded:
        depth = self.limits.onnx_graph_depth
        return LimitExceeded(f"nests sub-graphs and function calls more than {depth:,} levels deep, past the "
                             f"onnx_graph_depth limit; {hint('onnx_graph_depth')}")

    def _check_counts(self, model) -> None:
        # Count nodes iteratively before doing any real work.
        max_nodes, max_depth = self.limits.onnx_nodes, self.limits.onnx_graph_depth
        total = 0
        stack = [model.graph] + [f for f in model.functions]
        depth_stack = [(s, 0) for s in stack]
        while depth_stack:
            g, depth = depth_stack.pop()
            if depth > max_depth:
                raise self._too_deep()
            total += len(g.node)
            if total > max_nodes:
                raise LimitExceeded(
                    f"has more than {max_nodes:,} nodes in its graphs, sub-graphs and functions, past the onnx_nodes "
                    f"limit; {hint('onnx_nodes')}")
            for node in g.node:
                for a in node.attribute:
                    if a.type == 5 or a.HasField("g"):
                        depth_stack.append((a.g, depth + 1))
                    for sub in a.graphs:
                        depth_stack.append((sub, depth + 1))

    def _infer(self, model):
        if model.ByteSize() > PROTOBUF_MAX_BYTES - (1 << 20):  # inference serializes the model
            self.shape_inference = "skipped: the graph structure exceeds protobuf's 2 GiB limit"
            self.notes.append("Shape inference skipped: the graph structure exceeds protobuf's 2 GiB limit.")
            return model
        errors: list[str] = []
        for data_prop in (True, False):
            outcome = _infer_shapes(model, data_prop=data_prop)
            if isinstance(outcome, str):
                errors.append(outcome)
                if outcome.startswith(_INFER_TIMEOUT):
                    break  # without data propagation it would only time out again
                continue
            self.shape_inference = "ok" if data_prop else "ok (without data propagation)"
            if not data_prop:
                self.notes.append(
                    f"Shape inference with data propagation failed ({errors[0]}); shapes were inferred without it.")
            return outcome
        self.shape_inference = f"failed: {errors[-1]}"
        self.notes.append(f"Shape inference failed ({errors[-1]}); shapes come from the file's value_info only.")
        return model

    # ---- model-local functions ----
    def _plan_functions(self, model, queue: deque[_Task]) -> None:
        protos: dict[tuple[str, str, str], Any] = {}
        for f in model.functions:
            key = (f.domain, f.name, getattr(f, "overload", "") or "")
            if key in protos:
                self.notes.append(f"Function {f.domain}::{f.name} is defined twice; the first definition is used.")
                continue
            protos[key] = f
        if not protos:
            return
        # Call graph between functions; functions on a cycle are not expanded.
        calls: dict[tuple, set[tuple]] = {}
        for key, f in protos.items():
            callees = set()
            for node in _iter_nodes_flat(f.node):
                ck = (node.domain, node.op_type, getattr(node, "overload", "") or "")
                if ck in protos:
                    callees.add(ck)
            calls[key] = callees
        cyclic = _cyclic_nodes(calls)
        for key in sorted(cyclic):
            self.notes.append(f"Function {key[0]}::{key[1]} calls itself (directly or not); its calls are not expanded.")
        self.cyclic_functions = cyclic
        self.function_protos = protos
        model_opsets = {(o.domain or ""): int(o.version) for o in model.opset_import}
        for key, f in protos.items():
            sub = ModelGraph(name=f.name, format="onnx", kind="onnx",
                             metadata={"function": f"{f.domain}::{f.name}" if f.domain else f.name})
            self.functions[key] = sub
            opsets = dict(model_opsets)
            opsets.update({(o.domain or ""): int(o.version) for o in f.opset_import})
            prefix = f"{f.domain}::{f.name}/"
            queue.append(_Task(f, sub, None, prefix, opsets, 1, is_function=True))

    # ---- one graph ----
    def _build_graph(self, task: _Task, queue: deque[_Task]) -> _Scope:
        proto = task.proto
        graph = task.graph
        scope = _Scope(task.parent, graph, task.key_prefix, task.opsets)
        layers: list[Layer] = []
        if task.is_function:
            input_names = list(proto.input)
            output_names = list(proto.output)
            for vi in getattr(proto, "value_info", []):
                scope.types[vi.name] = _type_info(vi.type)
            inits: list = []
            sparse: list = []
        else:
            for vi in list(proto.input) + list(proto.output) + list(proto.value_info):
                info = _type_info(vi.type)
                if vi.name not in scope.types or info[1] is not None:
                    scope.types[vi.name] = info
            input_names = [vi.name for vi in proto.input]
            output_names = [vi.name for vi in proto.output]
            inits = list(proto.initializer)
            sparse = list(proto.sparse_initializer)
        # Constants stored in the graph.
        for t in inits:
            src = self._source_from_tensor(t, t.name, scope)
            if src is None:
                continue
            scope.consts[t.name] = _Const(t.name, src.dtype, src.shape, ((src, False),),
                                          proto=t if t.data_location != 1 else None)
            scope.types.setdefault(t.name, (src.dtype, src.shape))
        for st in sparse:
            name = st.values.name
            dtype = dtype_name(st.values.data_type)
            nnz = _dims(st.values)
            dense = tuple(int(d) for d in st.dims)
            if nnz is None:
                continue
            src = _Source(name, scope.key_prefix + name, dtype, nnz)
            scope.consts[name] = _Const(name, dtype, dense, ((src, False),))
            scope.types.setdefault(name, (dtype, dense))
        # Inputs (weights listed as inputs are not model inputs).
        for name in input_names:
            if name in scope.consts:
                continue
            lname = self._unique(scope, name or "input")
            dtype, shape = scope.types.get(name, (None, None))
            layers.append(Layer(name=lname, type="InputLayer", config={"name": name}, inbound=[[]],
                                node_shapes=[[shape]], dtype=dtype))
            scope.producers[name] = Inbound(lname, 0, 0)
            graph.inputs.append(Inbound(lname, 0, 0))
        graph_outputs = set(output_names)
        # Nodes, in a topological order that keeps the file order where it can.
        nodes = list(proto.node)
        order = self._topological(nodes, scope, task)
        for idx in order:
            node = nodes[idx]
            self.node_count += 1
            for name in node.input:
                self.referenced.add(name)
            if self._foldable(node, scope, graph_outputs, task):
                self._fold(node, scope)
                self.folded += 1
                continue
            layers.append(self._layer(node, idx, scope, task, queue))
        self._drop_shape_computations(layers, scope, graph_outputs, nodes)
        # Outputs.
        for name in output_names:
            self.referenced.add(name)
            ref = scope.producers.get(name)
            if ref is None and name in scope.outer:
                ref = Inbound(scope.outer[name], 0, 0)
            if ref is None:
                const = scope.find_const(name)
                if const is not None:
                    layer = self._constant_output_layer(name, const, scope)
                    layers.append(layer)
                    ref = Inbound(layer.name, 0, 0)
                elif scope.defined_outside(name):
                    ref = Inbound(self._outer_input(name, scope), 0, 0)
                else:
                    self.notes.append(f"Graph output {name!r} of {graph.name!r} is produced by no node.")
                    continue
            graph.outputs.append(ref)
        # Outer-scope InputLayers were appended to ``scope.graph.layers`` as found;
        # put them first, then this graph's own layers.
        graph.layers = graph.layers + layers
        graph.invalidate()
        return scope

    def _drop_shape_computations(self, layers: list[Layer], scope: _Scope, graph_outputs: set[str],
                                 nodes: list) -> None:
        """Constants consumed by nodes that only compute shapes are not parameters.

        tf2onnx and PyTorch compute target shapes at run time (``Shape`` →
        ``Gather`` → ``Concat`` with a constant → ``Reshape``'s shape operand).  A
        node all of whose outputs end, directly or through other such nodes, only
        in shape/axes/index operands is a shape computation; the constants it
        consumes are shape data, not weights."""
        inner_refs: set[str] = set()
        if any(a.type in (5, 10) or a.HasField("g") for n in nodes for a in n.attribute):
            inner_refs = {name for n in _iter_nodes_flat(nodes) for name in n.input}
        consumers: dict[str, list[tuple[Layer, int]]] = {}
        for lay in layers:
            for i, entry in enumerate(lay.config.get("@inputs", [])):
                if entry.get("kind") == "input":
                    consumers.setdefault(entry["tensor"], []).append((lay, i))
        shape_only: set[str] = set()
        for lay in reversed(layers):
            outs = [o for o in lay.config.get("@outputs", []) if o]
            if not outs or any(o in graph_outputs or o in inner_refs for o in outs):
                continue
            used = False
            ok = True
            for o in outs:
                for consumer, i in consumers.get(o, ()):
                    used = True
                    if i in scope.non_data.get(consumer.name, frozenset()) or consumer.name in shape_only:
                        continue
                    ok = False
                    break
                if not ok:
                    break
            if ok and used:
                shape_only.add(lay.name)
                if lay.weights:
                    lay.weights = []
                    for entry in lay.config.get("@inputs", []):
                        if entry.get("kind") == "weight":
                            entry["kind"] = "constant"

    def _topological(self, nodes: list, scope: _Scope, task: _Task) -> list[int]:
        produced_at: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for out in node.output:
                if out and out not in produced_at:
                    produced_at[out] = i
        in_order = True
        for i, node in enumerate(nodes):
            for name in node.input:
                j = produced_at.get(name)
                if j is not None and j > i:
                    in_order = False
                    break
            if not in_order:
                break
        if in_order:
            return list(range(len(nodes)))
        import heapq

        deps: list[set[int]] = []
        users: dict[int, list[int]] = {}
        for i, node in enumerate(nodes):
            d = {produced_at[n] for n in node.input if n in produced_at and produced_at[n] != i}
            deps.append(d)
            for j in d:
                users.setdefault(j, []).append(i)
        remaining = [len(d) for d in deps]
        heap = [i for i, r in enumerate(remaining) if r == 0]
        heapq.heapify(heap)
        order: list[int] = []
        while heap:
            i = heapq.heappop(heap)
            order.append(i)
            for u in users.get(i, ()):
                remaining[u] -= 1
                if remaining[u] == 0:
                    heapq.heappush(heap, u)
        if len(order) < len(nodes):
            done = set(order)
            rest = [i for i in range(len(nodes)) if i not in done]
            order.extend(rest)
            self.notes.append(
                f"Graph {task.graph.name!r} has a cycle through {len(rest)} node(s); they are listed in file order.")
        else:
            self.notes.append(f"Nodes of graph {task.graph.name!r} are not in topological order in the file; "
                              "they are listed in dependency order.")
        return order

    # ---- sources ----
    def _source_from_tensor(self, t, name: str, scope: _Scope) -> _Source | None:
        dims = _dims(t)
        dtype = dtype_name(t.data_type)
        if dims is None:
            self.notes.append(f"Tensor {name!r} has negative dims {list(t.dims)}; it is not counted.")
            return None
        key = scope.key_prefix + name
        external = None
        reader: Callable[[], Any] | None
        if t.data_location == 1:
            entries = {e.key: e.value for e in t.external_data}
            location = entries.get("location", "")
            if self.stripped is not None and location.startswith(self.stripped.token_prefix) \
                    and location in self.stripped.inline:
                reader = _inline_reader(self.path, self.stripped.inline[location], name, dims, t.data_type)
            else:
                external, reader = self._external(name, dims, t.data_type, entries)
        else:
            reader = _proto_reader(t, name)
        return _Source(name, key, dtype, dims, external, reader)

    def _external(self, name: str, dims: tuple[int, ...], data_type: int,
                  entries: dict[str, str]) -> tuple[ExternalData | None, Callable[[], Any] | None]:
        location = entries.get("location", "")
        try:
            offset = int(entries.get("offset", "0") or 0)
            length = int(entries["length"]) if entries.get("length") else None
        except ValueError:
            self.notes.append(f"Tensor {name!r} has a malformed external-data offset or length.")
            offset, length = 0, None
        ext = ExternalData(location, offset, length)
        info = self.external.setdefault(location, {"location": location, "tensors": 0, "bytes": 0,
                                                   "size": None, "status": "ok"})
        info["tensors"] += 1
        if length is not None:
            info["bytes"] += length
        resolved, reason = _resolve_inside(self.path.parent, location)
        if resolved is None:
            info["status"] = f"refused: {reason}"
            self._refused.setdefault(location, (name, reason))

            def refused() -> Any:
                raise UnsafeModel(f"external data {location!r} of {name!r} is outside the model's folder ({reason})")

            return ext, refused
        if info["size"] is None and info["status"] == "ok":
            try:
                st = resolved.stat()
                if not resolved.is_file():
                    info["status"] = "not a regular file"
                else:
                    info["size"] = st.st_size
            except OSError:
                info["status"] = "missing"
                self.notes.append(f"External data file {location!r} is missing next to the model.")
        return ext, _external_reader(self.path.parent, location, offset, length, dims, data_type, name)

    def _constant_node_sources(self, node, scope: _Scope) -> _Const | None:
        out = node.output[0] if node.output else ""
        if not out:
            return None
        key_name = out
        for a in node.attribute:
            kind = a.name
            if kind == "value":
                src = self._source_from_tensor(a.t, key_name, scope)
                if src is None:
                    return None
                return _Const(out, src.dtype, src.shape, ((src, False),), proto=a.t if a.t.data_location != 1 else None)
            if kind == "sparse_value":
                nnz = _dims(a.sparse_tensor.values)
                if nnz is None:
                    return None
                dtype = dtype_name(a.sparse_tensor.values.data_type)
                src = _Source(out, scope.key_prefix + out, dtype, nnz)
                return _Const(out, dtype, tuple(int(d) for d in a.sparse_tensor.dims), ((src, False),))
            simple = {"value_float": ("float32", ()), "value_int": ("int64", ()), "value_string": ("string", ()),
                      "value_floats": ("float32", (len(a.floats),)), "value_ints": ("int64", (len(a.ints),)),
                      "value_strings": ("string", (len(a.strings),))}
            if kind in simple:
                dtype, shape = simple[kind]
                value = _simple_constant_value(a)
                src = _Source(out, scope.key_prefix + out, dtype, shape, reader=_const_reader(value))
                c = _Const(out, dtype, shape, ((src, False),))
                c.value, c.evaluated = value, True
                return c
        return None

    # ---- folding ----
    def _foldable(self, node, scope: _Scope, graph_outputs: set[str], task: _Task) -> bool:
        domain = node.domain or ""
        op = node.op_type
        if domain not in DEFAULT_DOMAINS and (domain, op) not in _FOLDABLE_OTHER_DOMAIN:
            return False
        if op in _NOT_FOLDABLE or any(o in graph_outputs for o in node.output if o):
            return False
        if (domain, op, getattr(node, "overload", "") or "") in self.function_protos:
            return False
        if any(a.type in (5, 10) or a.HasField("g") for a in node.attribute):
            return False
        if op == "Constant":
            return True
        inputs = [n for n in node.input if n]
        if not inputs:
            return False
        return all(scope.find_const(n) is not None for n in inputs)

    def _fold(self, node, scope: _Scope) -> None:
        op = node.op_type
        if op == "Constant":
            c = self._constant_node_sources(node, scope)
            if c is not None:
                scope.consts[c.name] = c
                scope.types.setdefault(c.name, (c.dtype, c.shape))
            else:
                for out in node.output:
                    if out:
                        scope.consts[out] = _Const(out, None, None, ())
            return
        inputs = [scope.find_const(n) if n else None for n in node.input]
        if op == "ConstantOfShape":
            self._fold_constant_of_shape(node, inputs[0], scope)
            return
        non_data = _NON_DATA.get(op, frozenset())
        quant = _QUANT.get(op, frozenset())
        origins: list[tuple[_Source, bool]] = []
        seen: set[tuple[int, bool]] = set()
        for i, c in enumerate(inputs):
            if c is None or i in non_data:
                continue
            for src, is_q in c.origins:
                q = is_q or i in quant
                if (id(src), q) not in seen:
                    seen.add((id(src), q))
                    origins.append((src, q))
        value = _evaluate(node, inputs, self)
        for k, out in enumerate(node.output):
            if not out:
                continue
            dtype, shape = scope.types.get(out, (None, None))
            val = value[k] if value is not None and k < len(value) else None
            if val is not None:
                dtype = dtype or str(val.dtype)
                shape = tuple(int(d) for d in val.shape)
            elif shape is None or not _static(shape):
                shape = _propagate_shape(op, node, inputs) or shape
            if dtype is None and inputs and inputs[0] is not None and op not in ("Cast", "DequantizeLinear",
                                                                                   "QuantizeLinear", "Shape", "Size"):
                dtype = inputs[0].dtype
            c = _Const(out, dtype, shape, tuple(origins))
            if val is not None:
                c.value, c.evaluated = val, True
            scope.consts[out] = c

    def _fold_constant_of_shape(self, node, shape_const: _Const | None, scope: _Scope) -> None:
        out = node.output[0] if node.output else ""
        if not out:
            return
        dims = None
        if shape_const is not None:
            v = self.value_of(shape_const)
            if v is not None:
                try:
                    dims = tuple(int(x) for x in v.reshape(-1))
                except (TypeError, ValueError):
                    dims = None
        if dims is None:
            _, inferred = scope.types.get(out, (None, None))
            if inferred is not None and _static(inferred):
                dims = tuple(int(d) for d in inferred)
        if dims is not None and any(d < 0 for d in dims):
            dims = None
        dtype, fill = "float32", 0.0
        for a in node.attribute:
            if a.name == "value":
                dtype = dtype_name(a.t.data_type)
                arr = _small_value(a.t) if _size(_dims(a.t) or (0,)) <= SMALL_VALUE else None
                fill = arr.reshape(-1)[0].item() if arr is not None and arr.size else 0
        src = _Source(out, scope.key_prefix + out, dtype, dims,
                      reader=_fill_reader(dims, fill, dtype, out) if dims is not None else None)
        c = _Const(out, dtype, dims, ((src, False),))
        if dims is not None and _size(dims) <= SMALL_VALUE:
            try:
                import numpy as np

                c.value, c.evaluated = np.full(dims, fill, dtype=_np_dtype(dtype)), True
            except Exception:  # noqa: BLE001
                pass
        scope.consts[out] = c
        scope.types.setdefault(out, (dtype, dims))

    def value_of(self, c: _Const):
        """The numpy value of a small constant, or ``None``."""
        if c.evaluated:
            return c.value
        c.evaluated = True
        if c.proto is None or c.shape is None or not _static(c.shape) or _size(c.shape) > SMALL_VALUE:
            return None
        c.value = _small_value(c.proto)  # a malformed tensor just has no value
        return c.value

    # ---- compute layers ----
    def _layer(self, node, idx: int, scope: _Scope, task: _Task, queue: deque[_Task]) -> Layer:
        domain = node.domain or ""
        op = node.op_type
        ltype = op if domain in DEFAULT_DOMAINS else f"{domain}.{op}"
        lname = self._unique(scope, node.name or f"{op}_{idx}", idx)
        roles = self._roles(op, domain, len(node.input), scope.opsets)
        non_data = _NON_DATA.get(op, frozenset()) if domain in DEFAULT_DOMAINS or op in _NON_DATA else frozenset()
        quant = _QUANT.get(op, frozenset())
        bn_stats = _BN_STATS.get(op, frozenset()) if domain in DEFAULT_DOMAINS else frozenset()
        layer = Layer(name=lname, type=ltype)
        scope.non_data[lname] = non_data
        config: dict[str, Any] = {}
        for a in node.attribute:
            try:
                config[a.name] = _attribute_value(a)
            except Exception as exc:  # noqa: BLE001 - one odd attribute must not sink the model
                config[a.name] = None
                layer.notes.append(f"attribute {a.name!r} could not be read ({_short(exc, 80)})")
        operands: list[dict[str, Any]] = []
        inbound: list[Inbound] = []
        weights: dict[str, Weight] = {}
        for i, tname in enumerate(node.input):
            role = roles[i]
            entry: dict[str, Any] = {"name": role, "tensor": tname}
            if not tname:
                entry["kind"] = "absent"
                operands.append(entry)
                continue
            const = scope.find_const(tname)
            if const is not None:
                data = i not in non_data
                entry["kind"] = "weight" if data and const.origins else "constant"
                entry["dtype"] = const.dtype
                entry["shape"] = list(const.shape) if const.shape is not None else None
                if not data or (const.shape is not None and _static(const.shape) and _size(const.shape) <= 4
                                and const.dtype in ("int64", "int32", "bool")):
                    v = self.value_of(const)
                    if v is not None and v.size <= CONFIG_VALUE:
                        entry["value"] = v.tolist()
                if data:
                    for src, is_q in const.origins:
                        if src.shape is None:
                            layer.notes.append(f"constant {src.name!r} has an unknown size and is not counted")
                            continue
                        if src.key in weights:
                            continue
                        weights[src.key] = Weight(
                            name=src.name, role=role, shape=src.shape, dtype=src.dtype,
                            trainable=i not in bn_stats, key=src.key, external=src.external,
                            quantization=is_q or i in quant, reader=src.reader)
                        if src.external is not None:
                            self._sec_first.setdefault(src.external.location, lname)
            else:
                dtype, shape = scope.find_type(tname)
                entry["kind"] = "input"
                entry["dtype"] = dtype
                entry["shape"] = list(shape) if shape is not None else None
                ref = scope.producers.get(tname)
                if ref is None:
                    ref = Inbound(self._outer_input(tname, scope), 0, 0)
                inbound.append(ref)
            operands.append(entry)
        config["@inputs"] = operands
        config["@outputs"] = list(node.output)
        layer.config = config
        if op == "Constant" and domain in DEFAULT_DOMAINS:
            const = self._constant_node_sources(node, scope)
            for src, is_q in (const.origins if const is not None else ()):
                if src.shape is not None and src.key not in weights:
                    weights[src.key] = Weight(name=src.name, role="value", shape=src.shape, dtype=src.dtype,
                                              key=src.key, external=src.external, reader=src.reader)
        layer.inbound = [inbound]
        layer.weights = list(weights.values())
        shapes = []
        first_dtype = None
        for k, out in enumerate(node.output):
            if not out:
                shapes.append(None)
                continue
            dtype, shape = scope.types.get(out, (None, None))
            if k == 0:
                first_dtype = dtype
            shapes.append(shape)
            scope.producers[out] = Inbound(lname, 0, k)
        layer.node_shapes = [shapes]
        layer.dtype = first_dtype
        # Nested graphs.
        for a in node.attribute:
            subs = []
            if a.type == 5 or (a.type == 0 and a.HasField("g")):
                subs = [(a.name, a.g)]
            elif a.type == 10:
                subs = [(f"{a.name}[{j}]", g) for j, g in enumerate(a.graphs)]
            for key, g in subs:
                if task.depth + 1 > self.limits.onnx_graph_depth:
                    raise self._too_deep()
                sub = ModelGraph(name=g.name or f"{lname}/{key}", format="onnx", kind="onnx",
                                 metadata={"attribute": key, "parent": lname})
                layer.subgraphs[key] = sub
                queue.append(_Task(g, sub, scope, f"{scope.key_prefix}{lname}/{key}/", scope.opsets,
                                   task.depth + 1))
        fkey = (domain, op, getattr(node, "overload", "") or "")
        if fkey in self.functions:
            if fkey in self.cyclic_functions:
                layer.notes.append("calls a recursive function; its body is not expanded")
            else:
                layer.subgraphs["function"] = self.functions[fkey]
        return layer

    def _outer_input(self, tname: str, scope: _Scope) -> str:
        """An InputLayer in ``scope``'s graph standing for a tensor from an enclosing graph."""
        existing = scope.outer.get(tname)
        if existing is not None:
            return existing
        lname = self._unique(scope, tname)
        outer = scope.defined_outside(tname)
        dtype, shape = scope.find_type(tname)
        config = {"name": tname, "outer_scope": True} if outer else {"name": tname, "undefined": True}
        layer = Layer(name=lname, type="InputLayer", config=config, inbound=[[]], node_shapes=[[shape]],
                      dtype=dtype)
        if not outer:
            layer.notes.append("this tensor is consumed but produced by no node, input or initializer")
            self.notes.append(f"Tensor {tname!r} in graph {scope.graph.name!r} is used but never defined.")
        scope.graph.layers.append(layer)
        scope.outer[tname] = lname
        scope.producers.setdefault(tname, Inbound(lname, 0, 0))
        return lname

    def _constant_output_layer(self, name: str, const: _Const, scope: _Scope) -> Layer:
        lname = self._unique(scope, name)
        weights = [Weight(name=src.name, role="value", shape=src.shape, dtype=src.dtype, key=src.key,
                          external=src.external, quantization=is_q, reader=src.reader)
                   for src, is_q in const.origins if src.shape is not None]
        layer = Layer(name=lname, type="Constant", config={"@inputs": [], "@outputs": [name]}, inbound=[[]],
                      node_shapes=[[const.shape]], weights=weights, dtype=const.dtype)
        layer.notes.append("a constant tensor returned as a graph output")
        scope.producers[name] = Inbound(lname, 0, 0)
        return layer

    def _unique(self, scope: _Scope, base: str, idx: int | None = None) -> str:
        used = scope.used_names
        name = base
        if name in used and idx is not None:
            name = f"{base}_{idx}"
        n = 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        return name

    def _roles(self, op: str, domain: str, n: int, opsets: dict[str, int]) -> list[str]:
        version = opsets.get(domain, opsets.get("ai.onnx" if domain == "" else domain, 0)) or 0
        key = (op, domain, version)
        schema = self._schemas.get(key, False)
        if schema is False:
            schema = None
            if version:
                try:
                    from onnx import defs

                    schema = defs.get_schema(op, version, domain)
                except Exception:  # noqa: BLE001 - unknown or custom op
                    schema = None
            self._schemas[key] = schema
        names: list[str] = []
        formal = list(schema.inputs) if schema is not None else []
        for i in range(n):
            if i < len(formal):
                names.append(formal[i].name)
            elif formal and str(formal[-1].option).endswith("Variadic"):
                names.append(formal[-1].name)
            else:
                names.append(f"input_{i}")
        return names

    # ---- checks and metadata ----
    def _check_expansion(self, graph: ModelGraph) -> None:
        """Bound the depth and size of a full walk (shared function bodies count per call)."""
        max_layers, max_depth = self.limits.onnx_expanded_layers, self.limits.onnx_graph_depth
        sizes: dict[int, int] = {}
        depths: dict[int, int] = {}
        stack: list[tuple[ModelGraph, bool]] = [(graph, False)]
        on_stack: set[int] = set()
        while stack:
            g, done = stack.pop()
            gid = id(g)
            if done:
                size, depth = len(g.layers), 1
                for lay in g.layers:
                    for sub in lay.subgraphs.values():
                        size += sizes.get(id(sub), 0)
                        depth = max(depth, depths.get(id(sub), 0) + 1)
                sizes[gid], depths[gid] = size, depth
                on_stack.discard(gid)
                if size > max_layers:
                    raise LimitExceeded(
                        f"expands to more than {max_layers:,} layers through nested sub-graphs and function calls, "
                        f"past the onnx_expanded_layers limit; {hint('onnx_expanded_layers')}")
                if depth > max_depth:
                    raise self._too_deep()
                continue
            if gid in sizes or gid in on_stack:
                continue
            on_stack.add(gid)
            stack.append((g, True))
            for lay in g.layers:
                for sub in lay.subgraphs.values():
                    if id(sub) not in sizes and id(sub) not in on_stack:
                        stack.append((sub, False))

    def _metadata(self, model, scope: _Scope, graph: ModelGraph) -> dict[str, Any]:
        g = model.graph
        opsets = {}
        for o in model.opset_import:
            opsets[o.domain or "ai.onnx"] = int(o.version)
        ext = []
        for loc in sorted(self.external):
            info = dict(self.external[loc])
            ext.append(info)
        inits = {t.name for t in g.initializer}
        unused = sorted(n for n in inits if n not in self.referenced)

        def describe(refs: Iterable[Inbound], names: list[str]) -> list[dict[str, Any]]:
            out = []
            for ref, name in zip(refs, names):
                dtype, shape = scope.types.get(name, (None, None))
                out.append({"name": name, "dtype": dtype, "shape": list(shape) if shape is not None else None})
            return out

        input_names = [vi.name for vi in g.input if vi.name not in scope.consts]
        output_names = [vi.name for vi in g.output]
        meta: dict[str, Any] = {
            "producer_name": model.producer_name,
            "producer_version": model.producer_version,
            "ir_version": int(model.ir_version),
            "opset_import": dict(sorted(opsets.items())),
            "domain": model.domain,
            "model_version": int(model.model_version),
            "doc_string": model.doc_string,
            "graph_name": g.name,
            "metadata_props": {p.key: p.value for p in model.metadata_props},
            "inputs": describe(graph.inputs, input_names),
            "outputs": [{"name": n, "dtype": scope.types.get(n, (None, None))[0],
                         "shape": (list(scope.types[n][1]) if scope.types.get(n, (None, None))[1] is not None else None)}
                        for n in output_names],
            "external_data": ext,
            "file_size": self.file_size,
            "functions": sorted(f"{k[0]}::{k[1]}" if k[0] else k[1] for k in self.function_protos),
            "nodes": self.node_count,
            "folded_nodes": self.folded,
            "initializers": len(g.initializer) + len(g.sparse_initializer),
            "unused_initializers": unused,
            "shape_inference": self.shape_inference,
            "training_info": len(model.training_info),
        }
        return meta


def _iter_nodes_flat(nodes) -> Iterable[Any]:
    """Every node in ``nodes`` and in their sub-graphs, without recursion."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        for a in node.attribute:
            if a.HasField("g"):
                stack.extend(a.g.node)
            for g in a.graphs:
                stack.extend(g.node)


def _cyclic_nodes(edges: dict) -> set:
    """Vertices of ``edges`` that lie on a cycle (iterative Tarjan)."""
    index: dict = {}
    low: dict = {}
    on: set = set()
    stack: list = []
    result: set = set()
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in edges.get(v, ()):
                    result.update(comp)
    return result


# -- values ------------------------------------------------------------------------------
def _static(shape: tuple | None) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def _size(shape: tuple) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _np_dtype(dtype: str):
    import numpy as np

    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(np.float32)


def _simple_constant_value(a):
    import numpy as np

    if a.name == "value_float":
        return np.array(a.f, dtype=np.float32)
    if a.name == "value_int":
        return np.array(a.i, dtype=np.int64)
    if a.name == "value_floats":
        return np.array(list(a.floats), dtype=np.float32)
    if a.name == "value_ints":
        return np.array(list(a.ints), dtype=np.int64)
    if a.name == "value_string":
        return np.array(_text(a.s), dtype=object)
    return np.array([_text(s) for s in a.strings], dtype=object)


def _propagate_shape(op: str, node, inputs: list[_Const | None]) -> tuple | None:
    """Shape of a folded node's output when inference did not give one (simple ops only)."""
    first = inputs[0] if inputs else None
    if first is None or first.shape is None:
        return None
    if op in ("Identity", "Cast", "CastLike", "DequantizeLinear", "QuantizeLinear", "Neg", "Abs", "Relu",
              "Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid", "Tanh", "Floor", "Ceil", "Round", "Dropout"):
        return first.shape
    if op == "Transpose" and _static(first.shape):
        perm = None
        for a in node.attribute:
            if a.name == "perm":
                perm = list(a.ints)
        if perm is None:
            return tuple(reversed(first.shape))
        if sorted(perm) == list(range(len(first.shape))):
            return tuple(first.shape[p] for p in perm)
    return None


def _evaluate(node, inputs: list[_Const | None], builder: _Builder):
    """Values of a folded node's outputs for a few shape-arithmetic ops, or ``None``.

    Only small tensors are evaluated: this exists to find the shapes that
    ``ConstantOfShape`` generators produce and the values of shape operands."""
    op = node.op_type
    if op not in _EVALUATORS:
        return None
    vals = []
    for c in inputs:
        if c is None:
            vals.append(None)
            continue
        if op == "Shape" or op == "Size":
            vals.append(c)
            continue
        if c.shape is None or not _static(c.shape) or _size(c.shape) > SMALL_VALUE:
            return None
        v = builder.value_of(c)
        if v is None:
            return None
        vals.append(v)
    attrs = {a.name: _attribute_value(a) for a in node.attribute}
    try:
        out = _EVALUATORS[op](vals, attrs)
    except Exception:  # noqa: BLE001 - anything odd: no value, shapes still come from inference
        return None
    if out is None:
        return None
    outs = out if isinstance(out, list) else [out]
    if any(o.size > SMALL_VALUE for o in outs):
        return None
    return outs


def _ev_reshape(v, a):
    import numpy as np

    data, shape = v[0], [int(x) for x in v[1].reshape(-1)]
    if not a.get("allowzero", 0):
        shape = [data.shape[i] if s == 0 and i < data.ndim else s for i, s in enumerate(shape)]
    return np.reshape(data, shape)


def _axes(v, a):
    if len(v) > 1 and v[1] is not None:
        return [int(x) for x in v[1].reshape(-1)]
    return a.get("axes")


def _ev_unsqueeze(v, a):
    import numpy as np

    x = v[0]
    axes = sorted(ax % (x.ndim + len(_axes(v, a))) for ax in _axes(v, a))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return x


def _ev_squeeze(v, a):
    import numpy as np

    axes = _axes(v, a)
    return np.squeeze(v[0], axis=tuple(axes) if axes else None)


def _ev_gather(v, a):
    import numpy as np

    return np.take(v[0], v[1].astype(np.int64), axis=a.get("axis", 0))


def _ev_slice(v, a):
    import numpy as np

    x = v[0]
    if len(v) > 1:
        starts = [int(s) for s in v[1].reshape(-1)]
        ends = [int(s) for s in v[2].reshape(-1)]
        axes = [int(s) for s in v[3].reshape(-1)] if len(v) > 3 and v[3] is not None else list(range(len(starts)))
        steps = [int(s) for s in v[4].reshape(-1)] if len(v) > 4 and v[4] is not None else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes = a.get("axes", list(range(len(starts))))
        steps = [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[ax] = slice(s, e, st)
    return np.asarray(x[tuple(index)])


def _ev_cast(v, a):
    from onnx import helper

    return v[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))


def _ev_div(v, a):
    import numpy as np

    x, y = v
    if np.issubdtype(x.dtype, np.integer):
        return np.trunc(x / y).astype(x.dtype)
    return x / y


def _ev_range(v, a):
    import math

    import numpy as np

    start, limit, delta = (x.reshape(-1)[0] for x in v)
    if delta == 0 or math.ceil((limit - start) / delta) > SMALL_VALUE:
        raise ValueError("range too long to evaluate")
    return np.arange(start, limit, delta, dtype=v[0].dtype)


def _broadcast(fn):
    """An element-wise evaluator that refuses outputs bigger than SMALL_VALUE."""

    def ev(v, a):
        import numpy as np

        shape = np.broadcast_shapes(v[0].shape, v[1].shape)
        if _size(shape) > SMALL_VALUE:
            raise ValueError("result too large to evaluate")
        return fn(v[0], v[1])

    return ev


def _ev_concat(v, a):
    import numpy as np

    return np.concatenate([x for x in v if x is not None], axis=a.get("axis", 0))


def _ev_shape(v, a):
    import numpy as np

    c = v[0]
    if c.shape is None or not _static(c.shape):
        raise ValueError("shape unknown")
    dims = list(c.shape)
    start, end = a.get("start", 0), a.get("end", len(dims))
    return np.array(dims[start:end], dtype=np.int64)


def _ev_size(v, a):
    import numpy as np

    c = v[0]
    if c.shape is None or not _static(c.shape):
        raise ValueError("shape unknown")
    return np.array(_size(c.shape), dtype=np.int64)


_EVALUATORS: dict[str, Callable[[list, dict], Any]] = {
    "Identity": lambda v, a: v[0],
    "Cast": _ev_cast,
    "Reshape": _ev_reshape,
    "Unsqueeze": _ev_unsqueeze,
    "Squeeze": _ev_squeeze,
    "Concat": _ev_concat,
    "Gather": _ev_gather,
    "Slice": _ev_slice,
    "Shape": _ev_shape,
    "Size": _ev_size,
    "Add": _broadcast(lambda x, y: x + y),
    "Sub": _broadcast(lambda x, y: x - y),
    "Mul": _broadcast(lambda x, y: x * y),
    "Div": _broadcast(lambda x, y: _ev_div([x, y], {})),
    "Neg": lambda v, a: -v[0],
    "Range": _ev_range,
    "Transpose": lambda v, a: v[0].transpose(a.get("perm")) if a.get("perm") else v[0].T,
    "Flatten": lambda v, a: v[0].reshape(int(__import__("numpy").prod(v[0].shape[:a.get("axis", 1)])), -1),
}


# -- lazy readers ---------------------------------------------------------------------------
# Every reader checks the tensor's declared size against the ``tensor_bytes`` limit in
# force when it is called, before it allocates anything, and turns a tensor whose
# stored bytes do not decode into one ModelLoadError sentence.
_SUB_BYTE_BITS = {21: 4, 22: 4, 23: 4, 25: 2, 26: 2, 27: 6, 28: 6}
"""Data types packed several to a byte in ``raw_data`` (uint4, int4, float4, uint2, int2, float6)."""


def _np_type(data_type: int, name: str):
    """The numpy dtype of ONNX ``data_type`` (ml_dtypes types included)."""
    import numpy as np
    from onnx import helper

    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(int(data_type)))
    except (KeyError, TypeError, ValueError):
        raise ModelLoadError(
            f"tensor {name!r} has data type {int(data_type)}, which is not an ONNX data type this version of onnx "
            "can decode") from None


def _check_tensor_bytes(name: str, dims: tuple[int, ...], data_type: int):
    """Refuse a tensor whose values would take more memory than ``tensor_bytes``;
    return its numpy dtype."""
    dt = _np_type(data_type, name)
    nbytes = _size(dims) * dt.itemsize
    limit = limits.current().tensor_bytes
    if nbytes > limit:
        raise LimitExceeded(
            f"tensor {name!r} declares {nbytes:,} bytes, more than the tensor_bytes limit of {limit:,} bytes; "
            f"{hint('tensor_bytes')}")
    return dt


def _stored_bytes(dims: tuple[int, ...], data_type: int, dt) -> int:
    """Bytes the ``raw_data`` of a tensor of ``dims`` and ``data_type`` takes."""
    bits = _SUB_BYTE_BITS.get(int(data_type))
    if bits is not None:
        return (_size(dims) * bits + 7) // 8
    return _size(dims) * dt.itemsize


def _array_from_proto(t, name: str):
    """``numpy_helper.to_array`` of an inline ``TensorProto``, its failures as one sentence."""
    from onnx import numpy_helper

    if t.data_location == 1:  # pragma: no cover - callers pass inline tensors only
        raise ModelLoadError(f"tensor {name!r} is marked as external data and has no inline values")
    try:
        return numpy_helper.to_array(t)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # what to_array raises on inconsistent data
        raise ModelLoadError(
            f"tensor {name!r} cannot be decoded ({_short(exc, 100)}); its stored values do not match its shape "
            "and data type") from None


def _array_from_raw(buf, dims: tuple[int, ...], data_type: int, dt, name: str):
    """The array that little-endian ``raw_data`` bytes ``buf`` (a uint8 array) hold."""
    if int(data_type) == 8:
        raise ModelLoadError(f"tensor {name!r} stores strings as raw bytes, which ONNX does not allow")
    expected = _stored_bytes(dims, data_type, dt)
    if buf.size != expected:
        raise ModelLoadError(
            f"tensor {name!r} stores {buf.size:,} bytes, but {_size(dims):,} {dtype_name(data_type)} values need "
            f"{expected:,}; the file is corrupt")
    if int(data_type) in _SUB_BYTE_BITS:  # packed: let onnx unpack it (bounded by tensor_bytes above)
        import onnx

        t = onnx.TensorProto(data_type=int(data_type), dims=dims)
        t.raw_data = buf.tobytes()
        return _array_from_proto(t, name)
    arr = buf.view(dt)
    if sys.byteorder == "big":  # pragma: no cover - ONNX stores little-endian
        arr = arr.byteswap()
    return arr.reshape(dims)


def _read_raw(path: Path, offset: int, nbytes: int, what: str):
    """``nbytes`` bytes of ``path`` at ``offset`` as a fresh uint8 array (one copy)."""
    import numpy as np

    buf = np.empty(nbytes, dtype=np.uint8)
    try:
        onnx_wire.read_into(path, offset, memoryview(buf), what=what)
    except OSError as exc:
        raise ModelLoadError(f"{what} cannot be read from {path.name}: {exc.strerror or exc}") from None
    return buf


def _proto_reader(t, name: str) -> Callable[[], Any]:
    def read():
        _check_tensor_bytes(name, tuple(int(d) for d in t.dims), t.data_type)
        return _array_from_proto(t, name)

    return read


def _inline_reader(path: Path, where: onnx_wire.InlineTensor, name: str, dims: tuple[int, ...],
                   data_type: int) -> Callable[[], Any]:
    """Read a tensor stored in the model file whose bytes the loader skipped.

    ``raw_data`` goes straight from the file into the array, so a tensor bigger than
    protobuf's 2 GiB limit reads like any other; values in the typed fields
    (``float_data`` …) are decoded by protobuf, which caps them at 2 GiB."""
    def read():
        dt = _check_tensor_bytes(name, dims, data_type)
        if where.raw is not None:
            start, end = where.raw
            expected = _stored_bytes(dims, data_type, dt)
            if end - start != expected:  # checked before reading a byte
                raise ModelLoadError(
                    f"tensor {name!r} stores {end - start:,} bytes, but {_size(dims):,} {dtype_name(data_type)} "
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
        if int(data_type) != 8 and encoded > 10 * _size(dims) * dt.itemsize + 4096:
            # a number takes at most 10 bytes (a varint) in the typed fields
            raise ModelLoadError(
                f"tensor {name!r} stores {encoded:,} bytes of values, far more than its shape {list(dims)} of "
                f"{dtype_name(data_type)} holds; the file is corrupt")
        try:
            data = onnx_wire.read_range(path, where.start, where.end)
        except OSError as exc:
            raise ModelLoadError(f"tensor {name!r} cannot be read from {path.name}: {exc.strerror or exc}") from None
        t = onnx.TensorProto()
        try:
            t.ParseFromString(data)
        except DecodeError as exc:
            raise ModelLoadError(f"tensor {name!r} is corrupt ({_short(exc, 100)})") from None
        del data
        return _array_from_proto(t, name)

    return read


def _external_reader(base: Path, location: str, offset: int, length: int | None, dims: tuple[int, ...],
                     data_type: int, name: str) -> Callable[[], Any]:
    def read():
        dt = _check_tensor_bytes(name, dims, data_type)
        resolved, reason = _resolve_inside(base, location)
        if resolved is None:
            raise UnsafeModel(f"external data {location!r} of {name!r} is outside the model's folder ({reason})")
        try:
            if not resolved.is_file():
                raise ModelLoadError(f"external data file {location!r} of {name!r} is missing or not a regular file")
            size = resolved.stat().st_size
        except OSError as exc:
            raise ModelLoadError(f"external data file {location!r} of {name!r} cannot be read: "
                                 f"{exc.strerror or exc}") from None
        expected = _stored_bytes(dims, data_type, dt)
        want = length if length is not None else expected
        if offset < 0 or want < 0 or offset + want > size:
            raise ModelLoadError(
                f"external data of {name!r} (offset {offset:,}, length {want:,}) lies beyond the end of {location!r} "
                f"({size:,} bytes)")
        if want != expected:
            raise ModelLoadError(
                f"external data of {name!r} is {want:,} bytes long, but {_size(dims):,} {dtype_name(data_type)} "
                f"values need {expected:,}; the model or {location!r} is corrupt")
        buf = _read_raw(resolved, offset, want, f"external data of {name!r}")
        return _array_from_raw(buf, dims, data_type, dt, name)

    return read


def _fill_reader(dims: tuple[int, ...], fill: Any, dtype: str, name: str) -> Callable[[], Any]:
    # ``inspector.analysis.weights.is_placeholder`` recognizes this reader by its name.
    def read():
        import numpy as np

        dt = _np_dtype(dtype)
        nbytes = _size(dims) * dt.itemsize
        limit = limits.current().tensor_bytes
        if nbytes > limit:
            raise LimitExceeded(
                f"tensor {name!r} (generated by ConstantOfShape) declares {nbytes:,} bytes, more than the "
                f"tensor_bytes limit of {limit:,} bytes; {hint('tensor_bytes')}")
        try:
            return np.full(dims, fill, dtype=dt)
        except (ValueError, TypeError, OverflowError) as exc:  # a fill value that does not fit the dtype
            raise ModelLoadError(f"tensor {name!r} (generated by ConstantOfShape) cannot be filled with {fill!r} "
                                 f"({_short(exc, 80)})") from None

    return read


def _const_reader(value) -> Callable[[], Any]:
    def read():
        return value

    return read
