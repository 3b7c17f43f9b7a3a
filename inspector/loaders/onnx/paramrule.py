"""Which stored ONNX constants are parameters (docs/architecture.md, Parameter semantics).

A parameter is a stored constant of a floating dtype with rank ≥ 1 that reaches an
operator as data, or an integer/packed tensor that reaches a quantized operator
(:data:`~.ops.QUANT`) at a data position that is not a scale or zero point (the
weight of ``QLinearConv``, ``MatMulInteger``, ``MatMulNBits``, the input of a
``DequantizeLinear`` …).  Every other stored tensor that reaches an operator as data
(0-d scalars, bool masks, integer ids and labels) is a *constant*.  An integer table a ``Gather``
reads whose rows a ``DequantizeLinear`` then dequantizes is a quantized weight too
(:func:`gathered_table_keys`: onnxruntime's dynamically quantized embeddings, ``Gather(int8 table, ids) →
DequantizeLinear``, the same tensor its QDQ form feeds to ``DequantizeLinear`` first).  Any other such tensor
is a *constant*: ``Weight.constant``
is set and it is reported apart, like quantization scales.  Operands that are shapes,
axes, indices, ``Clip`` bounds or ``Pad`` values (:data:`~.ops.NON_DATA`) never become
weights at all.
"""

from __future__ import annotations

from typing import Iterable

from ...ir import ModelGraph, Weight
from .ops import NON_DATA, QUANT, quant_positions
from .scope import Const

_FLOAT_PREFIXES = ("float", "bfloat")


def is_floating(dtype: str) -> bool:
    """True for float16/32/64, bfloat16 and the float8/float4 types."""
    return dtype.startswith(_FLOAT_PREFIXES)


def quantized_weight_keys(op: str, n: int, inputs: Iterable[tuple[int, Const | None]]) -> list[str]:
    """Keys of the stored tensors that reach quantized operator ``op`` (called with ``n`` inputs) at a data
    position that is not a scale or zero point (its quantized weights)."""
    if op not in QUANT:
        return []
    quant = quant_positions(op, n)
    non_data = NON_DATA.get(op, frozenset())
    keys: list[str] = []
    for i, c in inputs:
        if c is None or i in quant or i in non_data:
            continue
        keys.extend(src.key for src, is_q in c.origins if not is_q)
    return keys


def is_integer_table(op: str, position: int, dtype: str | None) -> bool:
    """Whether a stored tensor of ``dtype`` at input ``position`` of ``op`` may be a quantized embedding table
    (:func:`gathered_table_keys` then decides, once the graph is built)."""
    return op == "Gather" and position == 0 and dtype is not None and dtype.startswith(("int", "uint"))


def gathered_table_keys(graph: ModelGraph) -> set[str]:
    """Keys of the integer tables a ``Gather`` of ``graph`` (nested graphs included) reads and a
    ``DequantizeLinear`` dequantizes the rows of: quantized weights, as the tensor ``DequantizeLinear``
    reads directly is (the builder calls this only when :func:`is_integer_table` met one)."""
    keys: set[str] = set()
    for g in graph.each_graph():
        tables: dict[str, list[str]] = {}
        for lay in g.layers:
            if lay.type == "Gather" and lay.weights:
                table = lay.operand(0)
                if table is not None and table.kind == "weight" and is_integer_table("Gather", 0, table.dtype):
                    for out in lay.config.get("@outputs", ()):
                        tables[out] = [w.key for w in lay.weights]
        if not tables:
            continue
        for lay in g.layers:
            rows = lay.operand(0) if lay.type == "DequantizeLinear" else None
            if rows is not None and rows.tensor in tables:
                keys.update(tables[rows.tensor])
    return keys


def is_parameter(w: Weight, quantized_weights: set[str]) -> bool:
    """The convention: floating with rank ≥ 1, or the weight of a quantized operator."""
    return (is_floating(w.dtype) and len(w.shape) >= 1) or w.key in quantized_weights


def may_be_constant(w: Weight) -> bool:
    """Whether ``w`` may be a constant: neither a quantization operand nor floating with rank ≥ 1 (those
    never are, whatever the quantized weights turn out to be, and a ``Weight`` is made not constant)."""
    return not w.quantization and not (is_floating(w.dtype) and len(w.shape) >= 1)


def mark_constants(weights: Iterable[Weight], quantized_weights: set[str]) -> None:
    """Set ``Weight.constant`` on ``weights``: every weight that :func:`may_be_constant` of a build, once its
    quantized weights are all known (any other is not a constant, as it was made)."""
    for w in weights:
        w.constant = not w.quantization and not is_parameter(w, quantized_weights)
