"""What the shape-inference helper reads of an inferred model, without a Python object per node or tensor.

onnx's classes make a message object for every node and value info Python reads (about a microsecond
each: a third of a second on 160,000 nodes).  Here the model is parsed again with *twin* messages of
its field numbers, declared so that protobuf merges what repeats into one message: a graph's ``node``
declared one message whose ``output`` is repeated gathers the outputs of every node, in order; its
``input``, ``output`` and ``value_info`` declared one message each, with ``name`` and ``type`` (the
``TypeProto``'s bytes) repeated, gather the names and types of every value info.  A second twin, with
the value infos as bytes, counts them: names and types line up only when every value info has one of
each (an inferred model is serialized by onnx, so none has two), otherwise :func:`read` says it cannot
tell and the caller reads the model the general way (:func:`.protos.base_types`).  The twins also
declare what :func:`.inference.outline` reads (the model's few scalar fields, its opsets and metadata,
the graph's name; the counting twin counts stored tensors and training infos), so the helper need not
parse the whole model for it (a sixth of a second on 160,000 nodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

_PACKAGE = "inspector_merged_twin"
"""The package of the twin messages (a private descriptor pool: onnx's own is untouched)."""
_STRING, _BYTES, _INT64 = "string", "bytes", "int64"


@dataclass(frozen=True, slots=True)
class MergedRead:
    """The declared value infos of a main graph (inputs, outputs, ``value_info``, in that order) and
    whether its node outputs are named once (:func:`.inference.names_unique`)."""

    names: list[str]
    types: list[bytes]
    """The serialized ``TypeProto`` of each value info."""
    unique: bool
    outline: list[Any]
    """:func:`.inference.outline` of the model, read off the twins."""


def read(data: bytes, *, hold: Callable[[Any], object] | None = None) -> MergedRead | None:
    """What the serialized ``ModelProto`` ``data`` declares (:class:`MergedRead`); ``None`` when that cannot
    be told this way (a value info without a name or a type, no twin classes, a parse error).  ``hold``
    is given what the read was made of (the parsed twins, every node output), for the caller to free
    later (the helper: once its answer is written)."""
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
    if hold is not None:
        hold((model, count, outputs, made))
    return MergedRead([*g.input.name, *g.output.name, *g.value_info.name],
                      [*g.input.type, *g.output.type, *g.value_info.type], unique, _outline(model, count))


def outline_of(model: Any, inputs: list[str], outputs: list[str], stored: int, trainings: int) -> list[Any]:
    """:func:`.inference.outline`'s layout: ``model``'s scalar fields, opsets, metadata and graph name
    (read alike from an onnx ``ModelProto`` and from the merging twin, which declares them alike), the
    main graph's ``inputs`` and ``outputs`` names, its number of ``stored`` tensors and of ``trainings``
    infos (read differently from each)."""
    return [model.producer_name, model.producer_version, int(model.ir_version),
            [[o.domain, int(o.version)] for o in model.opset_import], model.domain, int(model.model_version),
            model.doc_string, model.graph.name, [[p.key, p.value] for p in model.metadata_props],
            inputs, outputs, stored, trainings]


def _outline(model: Any, count: Any) -> list[Any]:
    """:func:`.inference.outline` of the model the twins ``model`` (merging: each value info list one
    message, its names repeated) and ``count`` (counting) parsed."""
    g, c = model.graph, count.graph
    return outline_of(model, list(g.input.name), list(g.output.name),
                      len(c.initializer) + len(c.sparse_initializer), len(count.training_info))


def _replaced(*numbers: int) -> tuple[tuple[str, int, str, bool], ...]:
    """Fields a twin never reads, declared single ``bytes`` (each occurrence replaces the last, and they
    are length-delimited in onnx's schema): protobuf skips them so faster than it gathers them as unknown
    fields (a merged message would keep every node's inputs, name and attributes: a sixth less time)."""
    return tuple((f"replaced_{number}", number, _BYTES, False) for number in numbers)


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
                elif kind == _INT64:
                    f.type = kinds.TYPE_INT64
                else:
                    f.type, f.type_name = kinds.TYPE_MESSAGE, f".{_PACKAGE}.{kind}"

        message("Tensors", ("name", 8, _STRING, True),  # TensorProto.name, of every tensor merged
                *_replaced(1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16))
        message("Sparse", ("values", 1, "Tensors", False))  # SparseTensorProto.values
        message("Nodes", ("output", 2, _STRING, True), *_replaced(1, 3, 4, 5, 6, 7, 8, 9, 10))  # NodeProto.output
        message("Infos", ("name", 1, _STRING, True), ("type", 2, _BYTES, True))  # ValueInfoProto
        message("Graph", ("node", 1, "Nodes", False), ("name", 2, _STRING, False), ("initializer", 5, "Tensors", False),
                ("input", 11, "Infos", False), ("output", 12, "Infos", False), ("value_info", 13, "Infos", False),
                ("sparse_initializer", 15, "Sparse", False))
        message("Opset", ("domain", 1, _STRING, False), ("version", 2, _INT64, False))  # OperatorSetIdProto
        message("Entry", ("key", 1, _STRING, False), ("value", 2, _STRING, False))  # StringStringEntryProto
        message("Model", ("ir_version", 1, _INT64, False), ("producer_name", 2, _STRING, False),
                ("producer_version", 3, _STRING, False), ("domain", 4, _STRING, False),
                ("model_version", 5, _INT64, False), ("doc_string", 6, _STRING, False), ("graph", 7, "Graph", False),
                ("opset_import", 8, "Opset", True), ("metadata_props", 14, "Entry", True))
        message("Counted", *_replaced(1), ("initializer", 5, _BYTES, True), ("input", 11, _BYTES, True),
                ("output", 12, _BYTES, True), ("value_info", 13, _BYTES, True),
                ("sparse_initializer", 15, _BYTES, True))
        message("CountedModel", ("graph", 7, "Counted", False), ("training_info", 20, _BYTES, True))
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        return tuple(message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
                     for name in ("Model", "CountedModel"))
    except Exception:  # noqa: BLE001 - another protobuf: callers read the general way
        return None
