"""Constant folding: the value and shape of a constant-only node's outputs, for the
shape-arithmetic ops the builder (and :mod:`.shapefold`) evaluates.

Work and memory are bounded twice: a node is evaluated only when the size of its
result, computed from its inputs' shapes *before* anything is computed, is at most
``SMALL_VALUE`` elements (a ``Concat`` of 65,536 small constants is refused, not
built), and one load folds at most ``FOLD_ELEMENTS`` elements in all
(:class:`FoldBudget`).  A refused node is simply "not folded": its shape still
comes from shape inference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ...ir import Shape
from .ops import SMALL_VALUE
from .protos import attribute_value, decode_text
from .scope import Const

FOLD_ELEMENTS = 1 << 22
"""Elements one load may fold in all (32 MiB of int64): many small folds cannot add up to gigabytes."""


@dataclass(slots=True)
class FoldBudget:
    """What is left of ``FOLD_ELEMENTS`` for one load; :meth:`take` refuses once it is spent."""

    remaining: int = FOLD_ELEMENTS

    def take(self, elements: int) -> bool:
        if elements > self.remaining:
            self.remaining = 0
            return False
        self.remaining -= elements
        return True


# -- values ------------------------------------------------------------------------------
def is_static(shape: Shape | None) -> bool:
    """True when every dimension of ``shape`` is a known non-negative int."""
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def num_elements(shape: tuple[Any, ...]) -> int:
    """The number of elements of a static ``shape``."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


def np_dtype(dtype: str) -> Any:
    import numpy as np

    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(np.float32)


def simple_constant_value(a: Any) -> Any:
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
        return np.array(decode_text(a.s), dtype=object)
    return np.array([decode_text(s) for s in a.strings], dtype=object)


def propagate_shape(op: str, node: Any, inputs: list[Const | None]) -> Shape | None:
    """Shape of a folded node's output when inference did not give one (simple ops only)."""
    first = inputs[0] if inputs else None
    if first is None or first.shape is None:
        return None
    if op in ("Identity", "Cast", "CastLike", "DequantizeLinear", "QuantizeLinear", "Neg", "Abs", "Relu",
              "Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid", "Tanh", "Floor", "Ceil", "Round", "Dropout"):
        return first.shape
    if op == "Transpose" and is_static(first.shape):
        perm = None
        for a in node.attribute:
            if a.name == "perm":
                perm = list(a.ints)
        if perm is None:
            return tuple(reversed(first.shape))
        if sorted(perm) == list(range(len(first.shape))):
            return tuple(first.shape[p] for p in perm)
    if op == "Concat":
        return _concat_shape(node, inputs)
    return None


def _concat_shape(node: Any, inputs: list[Const | None]) -> Shape | None:
    """A ``Concat`` of static shapes that agree but on ``axis`` (given by the node: opset 1's default
    is not assumed): the sum along it, as shape inference gives."""
    axis = next((a.i for a in node.attribute if a.name == "axis"), None)
    shapes = [c.shape for c in inputs if c is not None and c.shape is not None and is_static(c.shape)]
    if axis is None or not shapes or len(shapes) != len(inputs):
        return None
    first, rank = shapes[0], len(shapes[0])
    if not -rank <= axis < rank or any(len(s) != rank for s in shapes):
        return None
    axis %= rank
    if any(s[:axis] != first[:axis] or s[axis + 1:] != first[axis + 1:] for s in shapes):
        return None
    along = [d for s in shapes for d in (s[axis],) if isinstance(d, int)]
    return (*first[:axis], sum(along), *first[axis + 1:])


def evaluate(node: Any, inputs: list[Const | None], value_of: Callable[[Const], Any], *,
             budget: FoldBudget | None = None) -> Any:
    """Values of a folded node's outputs for the shape-arithmetic ops, or ``None``.

    Only small tensors are evaluated: this exists to find the shapes that
    ``ConstantOfShape`` generators produce and the values of shape operands.  The
    result's size is bounded from the inputs' shapes before it is computed, and
    taken from ``budget`` when one is given."""
    op = node.op_type
    if op not in _EVALUATORS:
        return None
    vals: list[Any] = []
    for c in inputs:
        if c is None:
            vals.append(None)
            continue
        if op == "Shape" or op == "Size":
            vals.append(c)
            continue
        if c.shape is None or not is_static(c.shape) or num_elements(c.shape) > SMALL_VALUE:
            return None
        v = value_of(c)
        if v is None:
            return None
        vals.append(v)
    attrs = {a.name: attribute_value(a) for a in node.attribute}
    try:
        bound = result_bound(op, vals, attrs)
        if bound > SMALL_VALUE or (budget is not None and not budget.take(bound)):
            return None
        out = _EVALUATORS[op](vals, attrs)
    except Exception:  # noqa: BLE001 - anything odd: no value, shapes still come from inference
        return None
    if out is None:
        return None
    outs = out if isinstance(out, list) else [out]
    if any(o.size > SMALL_VALUE for o in outs):
        return None
    return outs


def _ev_reshape(v: Any, a: Any) -> Any:
    import numpy as np

    data, shape = v[0], [int(x) for x in v[1].reshape(-1)]
    if not a.get("allowzero", 0):
        shape = [data.shape[i] if s == 0 and i < data.ndim else s for i, s in enumerate(shape)]
    return np.reshape(data, shape)


def _axes(v: Any, a: Any) -> Any:
    if len(v) > 1 and v[1] is not None:
        return [int(x) for x in v[1].reshape(-1)]
    return a.get("axes")


def _ev_unsqueeze(v: Any, a: Any) -> Any:
    import numpy as np

    x = v[0]
    axes = sorted(ax % (x.ndim + len(_axes(v, a))) for ax in _axes(v, a))
    for ax in axes:
        x = np.expand_dims(x, ax)
    return x


def _ev_squeeze(v: Any, a: Any) -> Any:
    import numpy as np

    axes = _axes(v, a)
    return np.squeeze(v[0], axis=tuple(axes) if axes else None)


def _ev_gather(v: Any, a: Any) -> Any:
    import numpy as np

    return np.take(v[0], v[1].astype(np.int64), axis=a.get("axis", 0))


def _ev_slice(v: Any, a: Any) -> Any:
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
    for s, e, ax, st in zip(starts, ends, axes, steps, strict=False):
        index[ax] = slice(s, e, st)
    return np.asarray(x[tuple(index)])


def _ev_cast(v: Any, a: Any) -> Any:
    from onnx import helper

    return v[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))


def _ev_div(v: Any, a: Any) -> Any:
    import numpy as np

    x, y = v
    if np.issubdtype(x.dtype, np.integer):
        return np.trunc(x / y).astype(x.dtype)
    return x / y


def _ev_range(v: Any, a: Any) -> Any:
    import math

    import numpy as np

    start, limit, delta = (x.reshape(-1)[0] for x in v)
    if delta == 0 or math.ceil((limit - start) / delta) > SMALL_VALUE:
        raise ValueError("range too long to evaluate")
    return np.arange(start, limit, delta, dtype=v[0].dtype)


def _broadcast(fn: Any) -> Any:
    """An element-wise evaluator that refuses outputs bigger than SMALL_VALUE."""

    def ev(v: Any, a: Any) -> Any:
        import numpy as np

        shape = np.broadcast_shapes(v[0].shape, v[1].shape)
        if num_elements(shape) > SMALL_VALUE:
            raise ValueError("result too large to evaluate")
        return fn(v[0], v[1])

    return ev


def _ev_concat(v: Any, a: Any) -> Any:
    import numpy as np

    return np.concatenate([x for x in v if x is not None], axis=a.get("axis", 0))


def _ev_shape(v: Any, a: Any) -> Any:
    import numpy as np

    c = v[0]
    if c.shape is None or not is_static(c.shape):
        raise ValueError("shape unknown")
    dims = list(c.shape)
    start, end = a.get("start", 0), a.get("end", len(dims))
    return np.array(dims[start:end], dtype=np.int64)


def _ev_size(v: Any, a: Any) -> Any:
    import numpy as np

    c = v[0]
    if c.shape is None or not is_static(c.shape):
        raise ValueError("shape unknown")
    return np.array(num_elements(c.shape), dtype=np.int64)


def _ev_constant_of_shape(v: Any, a: Any) -> Any:
    import numpy as np

    desc = a.get("value")
    dtype, fill = "float32", 0
    if isinstance(desc, dict):
        dtype = desc.get("dtype", dtype)
        values = desc.get("value")
        if values is None:
            raise ValueError("fill value unknown")
        fill = np.asarray(values).reshape(-1)[0].item()
    return np.full(tuple(int(d) for d in v[0].reshape(-1)), fill, dtype=np_dtype(dtype))


def _ev_expand(v: Any, a: Any) -> Any:
    import numpy as np

    shape = np.broadcast_shapes(v[0].shape, tuple(int(d) for d in v[1].reshape(-1)))
    return np.array(np.broadcast_to(v[0], shape))


def _reduce_axes(v: Any, a: Any) -> tuple[int, ...] | None:
    if len(v) > 1 and v[1] is not None and v[1].size:
        return tuple(int(x) for x in v[1].reshape(-1))
    axes = a.get("axes")
    if axes:
        return tuple(int(x) for x in axes)
    if a.get("noop_with_empty_axes", 0):
        raise ValueError("no reduction")
    return None


def _reduce(fn: Callable[..., Any]) -> Callable[[list[Any], dict[str, Any]], Any]:
    def ev(v: Any, a: Any) -> Any:
        return fn(v[0], axis=_reduce_axes(v, a), keepdims=bool(a.get("keepdims", 1)))

    return ev


def _variadic(fn: Callable[[Any, Any], Any]) -> Callable[[list[Any], dict[str, Any]], Any]:
    def ev(v: Any, a: Any) -> Any:
        out = v[0]
        for x in v[1:]:
            out = fn(out, x)
        return out

    return ev


def result_bound(op: str, vals: list[Any], attrs: dict[str, Any]) -> int:
    """Elements of ``op``'s result, worked out from its inputs' shapes before anything is computed
    (an upper bound where the exact size needs the values).  Raises ``ValueError`` on nonsense."""
    import numpy as np

    arrays = [x for x in vals if x is not None]
    if op == "Shape":
        return len(arrays[0].shape) if arrays and arrays[0].shape is not None else 0
    if op == "Size":
        return 1
    if op == "Concat":
        return sum(int(x.size) for x in arrays)
    if op == "ConstantOfShape":
        return num_elements(tuple(max(int(d), 0) for d in arrays[0].reshape(-1)))
    if op == "Expand":
        target = tuple(max(int(d), 0) for d in arrays[1].reshape(-1))
        return num_elements(np.broadcast_shapes(arrays[0].shape, target))
    if op == "Range":
        start, limit, delta = (float(x.reshape(-1)[0]) for x in arrays)
        if delta == 0:
            raise ValueError("range with a zero step")
        return max(int(np.ceil((limit - start) / delta)), 0)
    if op == "Gather":
        data, index = arrays[0], arrays[1]
        axis = int(attrs.get("axis", 0)) % max(data.ndim, 1)
        return int(index.size) * (int(data.size) // max(int(data.shape[axis]) if data.ndim else 1, 1))
    if op in _BROADCAST_OPS:
        return num_elements(np.broadcast_shapes(*(x.shape for x in arrays)))
    return max((int(x.size) for x in arrays), default=0)


_BROADCAST_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "LessOrEqual",
                            "GreaterOrEqual", "And", "Or", "Xor", "Where", "Min", "Max"})


def _np() -> Any:
    import numpy

    return numpy


_EVALUATORS: dict[str, Callable[[list[Any], dict[str, Any]], Any]] = {
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
    "ConstantOfShape": _ev_constant_of_shape,
    "Expand": _ev_expand,
    "Equal": _broadcast(lambda x, y: x == y),
    "Less": _broadcast(lambda x, y: x < y),
    "Greater": _broadcast(lambda x, y: x > y),
    "LessOrEqual": _broadcast(lambda x, y: x <= y),
    "GreaterOrEqual": _broadcast(lambda x, y: x >= y),
    "And": _broadcast(lambda x, y: x & y),
    "Or": _broadcast(lambda x, y: x | y),
    "Xor": _broadcast(lambda x, y: x ^ y),
    "Not": lambda v, a: ~v[0],
    "Abs": lambda v, a: abs(v[0]),
    "Where": lambda v, a: _np().where(v[0], v[1], v[2]),
    "Min": _variadic(lambda x, y: _np().minimum(x, y)),
    "Max": _variadic(lambda x, y: _np().maximum(x, y)),
    "ReduceProd": _reduce(lambda x, **k: _np().prod(x, **k)),
    "ReduceSum": _reduce(lambda x, **k: _np().sum(x, **k)),
    "ReduceMin": _reduce(lambda x, **k: _np().min(x, **k)),
    "ReduceMax": _reduce(lambda x, **k: _np().max(x, **k)),
}

EVALUATED = frozenset(_EVALUATORS)
"""The ops :func:`evaluate` can fold."""
