"""onnx's protobuf classes and its C++ extension (operator schemas, shape inference) without running
``onnx/__init__.py``, which imports ``onnx.helper`` and through it ``ml_dtypes`` (0.9 s with ml_dtypes 0.7).

The generated ``onnx_ml_pb2`` module and the ``onnx_cpp2py_export`` extension are loaded from the installed
onnx package's folder under their own module names, so a later ``import onnx`` (text models, tensor readers
for exotic dtypes, the probe) finds and reuses them: there is one ``ModelProto`` class either way.  When the
package looks different (another layout, a build without the ML proto), this falls back to ``import onnx``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress, repeat
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

_PB2 = "onnx.onnx_ml_pb2"
_EXT = "onnx.onnx_cpp2py_export"


def _load(name: str, spec: importlib.machinery.ModuleSpec | None) -> ModuleType:
    if spec is None or spec.loader is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@lru_cache(maxsize=None)
def _modules() -> tuple[ModuleType, ModuleType]:
    """(``onnx.onnx_ml_pb2``, ``onnx.onnx_cpp2py_export``), loaded once."""
    pb2, ext = sys.modules.get(_PB2), sys.modules.get(_EXT)
    if pb2 is not None and ext is not None:
        return pb2, ext
    try:
        spec = importlib.util.find_spec("onnx")
        if spec is None or not spec.submodule_search_locations or "onnx" in sys.modules:
            raise ImportError("onnx")
        folder = Path(next(iter(spec.submodule_search_locations)))
        if ext is None:  # the file the import system would pick: the first extension suffix found (no glob)
            so = next((p for suffix in importlib.machinery.EXTENSION_SUFFIXES
                       if (p := folder / f"onnx_cpp2py_export{suffix}").is_file()), None)
            if so is None:
                raise ImportError(_EXT)
            loader = importlib.machinery.ExtensionFileLoader(_EXT, str(so))
            ext = _load(_EXT, importlib.util.spec_from_loader(_EXT, loader))
        if not getattr(ext, "ONNX_ML", False):
            raise ImportError("onnx built without ONNX_ML")
        if pb2 is None:
            pb2 = _load(_PB2, importlib.util.spec_from_file_location(_PB2, folder / "onnx_ml_pb2.py"))
        return pb2, ext
    except (ImportError, OSError, ValueError, AttributeError):
        import onnx
        import onnx.onnx_cpp2py_export as cpp

        return onnx.onnx_ml_pb2, cpp


def model_proto() -> Any:
    """A new, empty ``onnx.ModelProto``."""
    return _modules()[0].ModelProto()


def get_schema(op: str, version: int, domain: str) -> Any:
    """``onnx.defs.get_schema``: the operator schema (raises for an unknown operator)."""
    return _modules()[1].defs.get_schema(op, version, domain)


def infer_shapes_bytes(data: bytes, data_prop: bool) -> bytes:
    """onnx's C++ shape inference on a serialized model (no type check, not strict)."""
    answer: bytes = _modules()[1].shape_inference.infer_shapes(data, False, False, data_prop)
    return answer


_TWIN = "inspector_utf8_twin"
"""The package of :func:`_utf8_twin`'s messages (a private descriptor pool: onnx's own is untouched)."""


@lru_cache(maxsize=None)
def _utf8_twin() -> Any:
    """A ``ModelProto`` class of onnx's schema declared ``proto3``, whose parser refuses a string
    field that is not valid UTF-8 (onnx's is ``proto2``: protobuf hands such a field over as bytes);
    ``None`` when it cannot be made."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    try:
        proto = descriptor_pb2.FileDescriptorProto()
        _modules()[0].DESCRIPTOR.CopyToProto(proto)
        if proto.package != "onnx" or proto.dependency:
            return None
        proto.name, proto.package, proto.syntax = f"{_TWIN}.proto", _TWIN, "proto3"
        stack = list(proto.message_type)
        while stack:
            message = stack.pop()
            stack.extend(message.nested_type)
            for f in message.field:
                f.ClearField("default_value")  # proto3 has no defaults, no required fields
                if f.label == f.LABEL_REQUIRED:
                    f.label = f.LABEL_OPTIONAL
                if f.type_name.startswith(".onnx."):
                    f.type_name = f".{_TWIN}.{f.type_name[6:]}"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_TWIN}.ModelProto"))
    except Exception:  # noqa: BLE001 - another protobuf or onnx: callers look the slow way
        return None


def all_text_utf8(data: bytes | bytearray | memoryview) -> bool:
    """Is every string field of the serialized ``ModelProto`` ``data`` valid UTF-8 (so none parses
    as bytes)?  ``False`` also when that cannot be told cheaply: callers then look at what they built."""
    twin = _utf8_twin()
    if twin is None:
        return False
    try:
        twin().ParseFromString(data)
    except Exception:  # noqa: BLE001 - DecodeError (bad UTF-8, or anything the twin refuses): not known
        return False
    return True


_SKELETON = "inspector_skeleton_twin"
"""The package of :func:`_skeleton_twins`' messages (a private descriptor pool)."""


@lru_cache(maxsize=None)
def _skeleton_twins() -> tuple[Any, Any] | None:
    """Two message classes over ONNX's field numbers (``None`` when they cannot be made): a ``ModelProto``
    that keeps only its graph's and functions' nodes, of each node its ``op_type`` and of each attribute
    whether it holds a graph (``g``, ``graphs``: as empty messages) or is typed GRAPH; and one that reads
    that model's serialized main-graph nodes as plain bytes."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FieldDescriptorProto
    one, many, message, octets = fd.LABEL_OPTIONAL, fd.LABEL_REPEATED, fd.TYPE_MESSAGE, fd.TYPE_BYTES
    proto = descriptor_pb2.FileDescriptorProto(name=f"{_SKELETON}.proto", package=_SKELETON, syntax="proto2")
    messages: dict[str, list[tuple[int, str, int, int, str]]] = {
        "Model": [(7, "graph", message, one, "Graph"), (25, "functions", message, many, "Function")],
        "Graph": [(1, "node", message, many, "Node")],
        "Function": [(7, "node", message, many, "Node")],
        "Node": [(4, "op_type", octets, one, ""), (5, "attribute", message, many, "Attribute")],
        "Attribute": [(6, "g", message, one, "Empty"), (11, "graphs", message, many, "Empty"),
                      (20, "type", fd.TYPE_INT32, one, "")],
        "Empty": [],
        "Records": [(7, "graph", message, one, "RecordGraph")],
        "RecordGraph": [(1, "node", octets, many, "")],
    }
    try:
        for name, fields in messages.items():
            declared = proto.message_type.add(name=name)
            for number, fname, ftype, label, type_name in fields:
                f = declared.field.add(name=fname, number=number, type=ftype, label=label)
                if type_name:
                    f.type_name = f".{_SKELETON}.{type_name}"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        # Every class made now and kept: one made on first use of a sub-message would be dropped with it,
        # as cyclic garbage (classes refer to themselves), which the CLI leaves to reference counting.
        classes = {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_SKELETON}.{name}"))
                   for name in messages}
        _KEPT.append(classes)
        return classes["Model"], classes["Records"]
    except Exception:  # noqa: BLE001 - another protobuf: callers walk the parsed model
        return None


_KEPT: list[dict[str, Any]] = []
"""The skeleton's message classes, kept for the life of the process."""

_HOLDS_GRAPH = (b"\x32\x00", b"\x5a\x00", b"\xa0\x01\x05")
"""In the skeleton's own (canonical) serialization: an attribute's ``g``, a ``graphs`` element (both empty
messages there) and ``type: GRAPH``.  Elsewhere these bytes can only appear inside an ``op_type``."""
_TYPED_GRAPHS = b"\xa0\x01\x0a"
"""``type: GRAPHS`` in the skeleton's serialization (an attribute so typed may hold no graph)."""


@dataclass(frozen=True, slots=True)
class Skeleton:
    """The nodes of a serialized ``ModelProto`` as protobuf parses them, read without Python work per node
    (:func:`skeleton`)."""

    nodes: int
    """Nodes of the main graph and of the model-local functions (not of graphs held in attributes)."""
    nested: bool
    """Whether an attribute of those nodes may hold a graph (``g``, ``graphs``) or be typed GRAPH; ``False``
    only when none does."""
    canonical: bytes = field(repr=False)
    """The twin model, serialized by protobuf: each node with only its ``op_type`` (first) and attribute marks."""

    @property
    def flat(self) -> bool:
        """Whether no attribute of those nodes holds a graph or is typed GRAPH or GRAPHS (what
        :func:`.protos.any_graph` looks for): ``False`` also when one may."""
        return not self.nested and _TYPED_GRAPHS not in self.canonical

    def main_nodes_of(self, ops: Iterable[str]) -> list[int]:
        """The positions of the main graph's nodes whose ``op_type`` is one of ``ops`` (names, not empty),
        in order.  Each node's bytes are read by protobuf (a twin with the nodes as ``bytes``) and only
        compared here, at C speed."""
        twins = _skeleton_twins()
        assert twins is not None  # a skeleton was made with them
        records = twins[1]()
        records.ParseFromString(self.canonical)  # protobuf's own bytes: they parse
        nodes = records.graph.node  # iterated once, not copied into a list first
        prefixes = tuple(b"\x22" + _varint(len(op.encode())) + op.encode() for op in ops)
        # bytes.startswith mapped directly: a third faster than a methodcaller per node (162,000 nodes: 0.014 s)
        return list(compress(range(len(nodes)), map(bytes.startswith, nodes, repeat(prefixes))))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def skeleton(data: bytes | bytearray | memoryview) -> Skeleton | None:
    """The :class:`Skeleton` of the serialized ``ModelProto`` ``data``, or ``None`` when it cannot be read
    so (callers then walk the parsed model).  Parsed by protobuf with twin messages that declare only the
    fields above (the rest parsed as unknown fields, then dropped), then serialized again: protobuf's own
    canonical bytes, in which a graph held by an attribute cannot hide."""
    twins = _skeleton_twins()
    if twins is None:
        return None
    model_twin = twins[0]
    try:
        model = model_twin()
        model.ParseFromString(data)
        model.DiscardUnknownFields()
        nodes = len(model.graph.node) + sum(len(f.node) for f in model.functions)
        canonical = model.SerializeToString()
        del model
    except Exception:  # noqa: BLE001 - anything protobuf refuses: not known this way
        return None
    return Skeleton(nodes, any(mark in canonical for mark in _HOLDS_GRAPH), canonical)
