"""What the shape-inference helper reads of an inferred model, without a Python object per node or tensor.

onnx's classes make a message object for every node and value info Python reads (about a microsecond
each: a third of a second on 160,000 nodes).  Here the model is parsed again with *twin* messages of
its field numbers, declared so that protobuf merges what repeats into one message: a graph's ``node``
declared one message whose ``output`` is repeated gathers the outputs of every node, in order; its
``input``, ``output`` and ``value_info`` declared one message each, with ``name`` and ``type`` (the
``TypeProto``'s bytes) repeated, gather the names and types of every value info.  A second twin, with
the value infos as bytes, counts them: names and types line up only when every value info has one of
each (an inferred model is serialized by onnx, so none has two), otherwise :func:`read` says it cannot
tell and the caller reads the model the general way (:func:`.protos.base_types`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_PACKAGE = "inspector_merged_twin"
"""The package of the twin messages (a private descriptor pool: onnx's own is untouched)."""
_STRING, _BYTES = "string", "bytes"


@dataclass(frozen=True, slots=True)
class MergedRead:
    """The declared value infos of a main graph (inputs, outputs, ``value_info``, in that order) and
    whether its node outputs are named once (:func:`.inference.names_unique`)."""

    names: list[str]
    types: list[bytes]
    """The serialized ``TypeProto`` of each value info."""
    unique: bool


def read(data: bytes) -> MergedRead | None:
    """What the serialized ``ModelProto`` ``data`` declares (:class:`MergedRead`); ``None`` when that cannot
    be told this way (a value info without a name or a type, no twin classes, a parse error)."""
    twins = _twins()
    if twins is None:
        return None
    merged, counted = twins
    try:
        model = merged()
        model.ParseFromString(data)
        count = counted()
        count.ParseFromString(data)
    except Exception:  # noqa: BLE001 - whatever the twins refuse: read the general way
        return None
    g, c = model.graph, count.graph
    parts = (g.input, g.output, g.value_info)
    if any(len(p.name) != len(n) or len(p.type) != len(n) for p, n in zip(parts, (c.input, c.output, c.value_info),
                                                                          strict=True)):
        return None
    outputs = g.node.output[:]  # a repeated field's slice: one call
    made = set(outputs)
    made.discard("")  # an output left out
    unique = (len(made) == len(outputs) - outputs.count("") and made.isdisjoint(g.initializer.name)
              and made.isdisjoint(g.sparse_initializer.values.name) and made.isdisjoint(g.input.name))
    return MergedRead([*g.input.name, *g.output.name, *g.value_info.name],
                      [*g.input.type, *g.output.type, *g.value_info.type], unique)


@lru_cache(maxsize=None)
def _twins() -> tuple[Any, Any] | None:
    """(the merging twin of ``ModelProto``, the counting one); ``None`` when they cannot be made."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        kinds = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto2")

        def message(name: str, *fields: tuple[str, int, str, bool]) -> None:
            m = proto.message_type.add(name=name)
            for field_name, number, kind, repeated in fields:
                f = m.field.add(name=field_name, number=number,
                                label=kinds.LABEL_REPEATED if repeated else kinds.LABEL_OPTIONAL)
                if kind == _STRING:
                    f.type = kinds.TYPE_STRING
                elif kind == _BYTES:
                    f.type = kinds.TYPE_BYTES
                else:
                    f.type, f.type_name = kinds.TYPE_MESSAGE, f".{_PACKAGE}.{kind}"

        message("Tensors", ("name", 8, _STRING, True))  # TensorProto.name, of every tensor merged
        message("Sparse", ("values", 1, "Tensors", False))  # SparseTensorProto.values
        message("Nodes", ("output", 2, _STRING, True))  # NodeProto.output
        message("Infos", ("name", 1, _STRING, True), ("type", 2, _BYTES, True))  # ValueInfoProto
        message("Graph", ("node", 1, "Nodes", False), ("initializer", 5, "Tensors", False),
                ("input", 11, "Infos", False), ("output", 12, "Infos", False), ("value_info", 13, "Infos", False),
                ("sparse_initializer", 15, "Sparse", False))
        message("Model", ("graph", 7, "Graph", False))
        message("Counted", ("input", 11, _BYTES, True), ("output", 12, _BYTES, True),
                ("value_info", 13, _BYTES, True))
        message("CountedModel", ("graph", 7, "Counted", False))
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
                     for name in ("Model", "CountedModel"))
    except Exception:  # noqa: BLE001 - another protobuf: callers read the general way
        return None
