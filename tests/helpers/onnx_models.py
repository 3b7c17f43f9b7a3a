"""ONNX models for tests, built with ``onnx.helper``: the building blocks and saving.

    from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from helpers.keras_models import model_dir

_FILES: dict[str, Path] = {}


def tensor(name: str, array: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(array), name=name)


def onnx_model(nodes: list, inputs: list, outputs: list, initializers: list = (), *, opset: int = 17):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="inspector-tests")
    model.ir_version = 8
    return model


def value_info(name: str, shape: list, dtype: int | None = None):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, dtype or TensorProto.FLOAT, shape)


def save_onnx(model: Any, path: Path) -> Path:
    """Check ``model`` with ``onnx.checker`` and save it at ``path``."""
    import onnx

    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def onnx_file(key: str, build: Callable[[], Any]) -> Path:
    """Save the ``onnx.ModelProto`` ``build()`` returns (checked by onnx.checker), once per session."""
    if key not in _FILES:
        _FILES[key] = save_onnx(build(), model_dir() / f"lint_{key}.onnx")
    return _FILES[key]


VOCAB, DIM = 64, 32  # the embedding has 2,048 elements, the square weights 1,024: both >= MIN_ELEMENTS


def tied_model(*, copies: bool) -> Any:
    """GPT-2's shape in small: a token embedding ``E`` (Gather) and an LM head ``E_T`` (MatMul), two square
    weights ``W`` and ``W2`` and two tiny biases with equal values.  ``copies``: ``E_T`` is ``E``
    transposed and ``W2`` equals ``W``; else all four are different random tensors of those shapes."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((VOCAB, DIM)).astype(np.float32)
    w = rng.standard_normal((DIM, DIM)).astype(np.float32)
    head = emb.T.copy() if copies else rng.standard_normal((DIM, VOCAB)).astype(np.float32)
    w2 = w.copy() if copies else rng.standard_normal((DIM, DIM)).astype(np.float32)
    bias = np.full((DIM,), 0.5, np.float32)
    nodes = [helper.make_node("Gather", ["E", "ids"], ["h0"], name="embed"),
             helper.make_node("MatMul", ["h0", "W"], ["h1"], name="mm1"),
             helper.make_node("Add", ["h1", "b1"], ["h2"], name="add1"),
             helper.make_node("MatMul", ["h2", "W2"], ["h3"], name="mm2"),
             helper.make_node("Add", ["h3", "b2"], ["h4"], name="add2"),
             helper.make_node("Mul", ["h4", "one_a"], ["h5"], name="scale_a"),
             helper.make_node("Mul", ["h5", "one_b"], ["h6"], name="scale_b"),
             helper.make_node("MatMul", ["h6", "E_T"], ["logits"], name="lm_head")]
    inits = [tensor("E", emb), tensor("W", w), tensor("b1", bias), tensor("W2", w2), tensor("b2", bias.copy()),
             tensor("one_a", np.ones((1,), np.float32)), tensor("one_b", np.ones((1,), np.float32)),
             tensor("E_T", head)]
    return onnx_model(nodes, [value_info("ids", [1, 4], TensorProto.INT64)], [value_info("logits", [1, 4, VOCAB])],
                      inits)
