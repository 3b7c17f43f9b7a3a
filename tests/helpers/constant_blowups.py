"""Small hostile ONNX files whose constants would be huge if evaluated (issue 13 item 5).

Used by ``tests/test_security.py`` and ``bench/bench_constant_blowups.py``."""

from __future__ import annotations

from pathlib import Path

FILL_ELEMENTS = 1 << 28
"""Elements of the ``ConstantOfShape`` fill: 1 GiB of float32 if materialised."""
CONCAT_PIECE = 4096
CONCAT_REPEATS = 65536
"""One 4,096-element constant concatenated this many times: 2 GiB of int64 if computed."""


def write_fill_blowup(path: Path, *, elements: int = FILL_ELEMENTS, fill: float = 0.5) -> Path:
    """A model ``y = x + ConstantOfShape([elements], fill)``: a few hundred bytes."""
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [elements])
    value = helper.make_tensor("value", TensorProto.FLOAT, [1], [fill])
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["fill"], value=value),
        helper.make_node("Add", ["x", "fill"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "fill", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [elements])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elements])], [shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def write_concat_blowup(path: Path, *, piece: int = CONCAT_PIECE, repeats: int = CONCAT_REPEATS) -> Path:
    """A model whose ``Concat`` repeats one ``piece``-element int64 ``Constant`` (``value_ints``: its
    values are at hand) ``repeats`` times, then ``Reshape``s ``x`` by a slice of it (the result feeds a shape)."""
    import onnx
    from onnx import TensorProto, helper

    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("Constant", [], ["c"], value_ints=[1] * piece),
        helper.make_node("Concat", ["c"] * repeats, ["big"], axis=0),
        helper.make_node("Slice", ["big", "starts", "ends"], ["target"]),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "concat", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [starts, ends])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def write_many_fills(path: Path, *, count: int = 100_000, elements: int = 4096) -> Path:
    """``count`` small ``ConstantOfShape`` fills (each foldable on its own) concatenated and added to ``x``:
    about 38 bytes a node, ``count * elements`` float32 values if every fill were built (1.6 GiB)."""
    import onnx
    from onnx import TensorProto, helper

    shape = helper.make_tensor("s", TensorProto.INT64, [1], [elements])
    nodes = [helper.make_node("ConstantOfShape", ["s"], [f"f{i}"]) for i in range(count)]
    nodes += [helper.make_node("Concat", [f"f{i}" for i in range(count)], ["all"], axis=0),
              helper.make_node("Add", ["x", "all"], ["y"])]
    graph = helper.make_graph(nodes, "fills", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path
