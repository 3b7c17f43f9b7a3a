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
