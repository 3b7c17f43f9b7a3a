"""Plain Python values out of ONNX protobuf messages: data type names, tensor
types and shapes, attribute values, small inline tensor values."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ...ir import Shape

DTYPES: dict[int, str] = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16", 17: "float8_e4m3fn", 18: "float8_e4m3fnuz",
    19: "float8_e5m2", 20: "float8_e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4_e2m1",
    24: "float8_e8m0", 25: "uint2", 26: "int2", 27: "float6_e2m3", 28: "float6_e3m2",
}


# -- helpers over protos -------------------------------------------------------------------
def dtype_name(code: int) -> str:
    return DTYPES.get(int(code), f"dtype{int(code)}")


def tensor_dims(tensor: Any) -> tuple[int, ...] | None:
    """The dims of a ``TensorProto`` (protobuf gives Python ints), ``None`` when one is negative."""
    dims = tuple(tensor.dims)
    return None if dims and min(dims) < 0 else dims


def type_info(tp: Any) -> tuple[str | None, Shape | None]:
    """(dtype, shape) of a TypeProto; shape ``None`` when unknown or not a tensor (an ``optional``
    tensor keeps its shape). Sequence, map and optional types print nested in full, e.g.
    ``seq(map(int64,float32))`` for an skl2onnx ZipMap output."""
    which = tp.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        t = getattr(tp, which)
        dtype = dtype_name(t.elem_type) if t.elem_type else None
        shape = tuple([_dim(d) for d in t.shape.dim]) if t.HasField("shape") else None
        return dtype, shape
    shape = None
    if which == "optional_type" and tp.optional_type.elem_type.WhichOneof("value") == "tensor_type":
        shape = type_info(tp.optional_type.elem_type)[1]
    return type_text(tp), shape


def type_infos(value_infos: Iterable[Any]) -> Iterator[tuple[str, tuple[str | None, Shape | None]]]:
    """(name, :func:`type_info`) of every ValueInfoProto; each distinct type is read once (a large graph
    repeats a few dozen types over 100,000s of tensors: the serialized type is the cache key)."""
    cache: dict[bytes, tuple[str | None, Shape | None]] = {}
    for vi in value_infos:
        tp = vi.type
        key = tp.SerializeToString()
        info = cache.get(key)
        if info is None:
            info = cache[key] = type_info(tp)
        yield vi.name, info


def holds_graph(node: Any) -> bool:
    """Does an attribute of ``node`` hold a graph (typed GRAPH or GRAPHS, or an untyped one with a graph
    set): an ``If``/``Loop``/``Scan`` body?"""
    return any_graph(node.attribute)


def any_graph(attributes: Iterable[Any]) -> bool:
    """:func:`holds_graph` of a node whose ``attributes`` were read already."""
    return any(a.type in (5, 10) or a.HasField("g") for a in attributes)


def base_types(value_infos: Iterable[Any]) -> dict[str, tuple[str | None, Shape | None]]:
    """The types a graph declares (inputs, outputs, ``value_info``, in that order): a later entry
    replaces an earlier one only when it knows a shape.  A graph's build starts from these types, and
    the overlapped build compares them before and after inference (:mod:`.retype`)."""
    types: dict[str, tuple[str | None, Shape | None]] = {}
    for name, info in type_infos(value_infos):
        if info[1] is not None or name not in types:
            types[name] = info
    return types


def declared(graph: Any) -> Iterable[Any]:
    """The value infos of ``graph`` in the order :func:`base_types` reads them."""
    return [*graph.input, *graph.output, *graph.value_info]


def type_text(tp: Any, depth: int = 0) -> str | None:
    """The element type of a TypeProto as text, nested types in full: ``float32``, ``seq(float32)``,
    ``map(int64,float32)``, ``seq(map(string,float32))``, ``optional(seq(int64))``; ``None`` when unknown."""
    which = tp.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        code = getattr(tp, which).elem_type
        return dtype_name(code) if code else None
    if depth >= _MAX_TYPE_DEPTH or which not in ("optional_type", "sequence_type", "map_type"):
        return None
    if which == "map_type":
        inner = type_text(tp.map_type.value_type, depth + 1)
        return f"map({dtype_name(tp.map_type.key_type)},{inner or '?'})"
    wrapper, elem = ("optional", tp.optional_type) if which == "optional_type" else ("seq", tp.sequence_type)
    return f"{wrapper}({type_text(elem.elem_type, depth + 1) or '?'})"


_MAX_TYPE_DEPTH = 64  # nested seq/map/optional types deeper than this print as '?'


def _dim(d: Any) -> int | str | None:
    if d.HasField("dim_value"):  # one C call for the common case
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param:
        return str(d.dim_param)
    return None


def float32_value(x: float) -> float:
    """A float32 attribute as the shortest decimal that round-trips (1e-4, not 9.99999974737875e-05)."""
    try:
        import numpy as np

        return float(str(np.float32(x)))
    except (ValueError, OverflowError):
        return float(x)


def decode_text(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


def small_value(t: Any) -> Any:
    """The values of a small inline ``TensorProto`` the builder evaluates (shape
    operands, fill values, attribute tensors), or ``None`` when they cannot be had.

    A tensor marked as external data is never read here: onnx would resolve its
    location against the working directory, not the model's folder."""
    if t.data_location == 1 or t.data_type == 8:
        return None
    try:
        plain = _plain_value(t)
        if plain is not None:
            return plain
        from onnx import numpy_helper

        return numpy_helper.to_array(t)
    except (ValueError, TypeError, KeyError, IndexError):  # inconsistent dims, data and dtype
        return None


# Data types numpy reads from ``raw_data`` as they are (little-endian), and the typed field that holds
# each of the common ones otherwise: these need no ``import onnx`` (whose helper imports ml_dtypes).
_RAW_NUMPY = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?", 10: "<f2", 11: "<f8",
              12: "<u4", 13: "<u8"}
_TYPED_FIELD = {1: ("float_data", "float32"), 6: ("int32_data", "int32"), 7: ("int64_data", "int64"),
                11: ("double_data", "float64")}


def _plain_value(t: Any) -> Any:
    """``numpy_helper.to_array(t)`` for the common data types (same values, dtype and shape), or ``None``
    for the others; raises ``ValueError`` when the data does not fit the dims, as onnx does."""
    import numpy as np

    code = int(t.data_type)
    dims = tuple(int(d) for d in t.dims)
    if t.HasField("raw_data"):
        dtype = _RAW_NUMPY.get(code)
        if dtype is None:
            return None
        return np.frombuffer(t.raw_data, dtype=dtype).reshape(dims).copy()
    typed = _TYPED_FIELD.get(code)
    if typed is None:
        return None
    return np.asarray(getattr(t, typed[0]), dtype=typed[1]).reshape(dims)


def _tensor_desc(t: Any) -> dict[str, Any]:
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
            value = small_value(t)  # a malformed tiny tensor only loses its value
            if value is not None:
                desc["value"] = value.tolist()
    return desc


def attribute_value(a: Any) -> Any:  # noqa: C901 - one branch per attribute type
    """An attribute as a plain Python value (graphs and tensors described, not inlined)."""
    t = a.type
    if a.ref_attr_name:
        return {"ref": a.ref_attr_name}
    if t == 0:  # UNDEFINED in old files: guess from the field that is set
        for name, guess in (("g", 5), ("t", 4), ("s", 3), ("graphs", 10), ("tensors", 9), ("strings", 8),
                            ("ints", 7), ("floats", 6)):
            v = getattr(a, name)
            if (name in ("g", "t") and a.HasField(name)) or (name == "s" and v) \
                    or (name not in ("g", "t", "s") and len(v)):
                t = guess
                break
        else:
            t = 2 if a.i else 1
    if t == 1:
        return float32_value(a.f)
    if t == 2:
        return int(a.i)
    if t == 3:
        return decode_text(a.s)
    if t == 4:
        return _tensor_desc(a.t)
    if t == 5:
        return {"graph": a.g.name, "nodes": len(a.g.node)}
    if t == 11:
        return {"sparse_tensor": _tensor_desc(a.sparse_tensor.values), "dims": list(a.sparse_tensor.dims)}
    if t == 13:
        return {"type": type_info(a.tp)[0]}
    if t == 6:
        return [float32_value(x) for x in a.floats]
    if t == 7:
        return a.ints[:]  # protobuf's ints, as a list, in one call (a 162,000-node decoder has 20,000 of these)
    if t == 8:
        return [decode_text(x) for x in a.strings]
    if t == 9:
        return [_tensor_desc(x) for x in a.tensors]
    if t == 10:
        return [{"graph": g.name, "nodes": len(g.node)} for g in a.graphs]
    if t == 12:
        return [{"sparse_tensor": _tensor_desc(x.values), "dims": list(x.dims)} for x in a.sparse_tensors]
    if t == 14:
        return [{"type": type_info(x)[0]} for x in a.type_protos]
    return None
