"""Helpers for the lint tests: build small models as real files, lint them, read findings.

Keras models are built with Keras (the oracle) and saved into the session's model
folder (``keras_models.model_dir()``), once per key; ONNX models are built with
``onnx.helper``.  Every test goes through ``inspector.loaders.load`` on the saved
file, exactly as ``inspector lint`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_models import model_dir  # noqa: E402

_FILES: dict[str, Path] = {}


def keras_file(key: str, build: Callable[[], Any], *, fmt: str = "keras") -> Path:
    """Save the model ``build()`` returns as ``<key>.keras`` (or ``.h5``), once per session."""
    k = f"{key}.{fmt}"
    if k not in _FILES:
        import warnings

        import keras

        keras.utils.set_random_seed(0)
        model = build()
        path = model_dir() / f"lint_{key}.{fmt}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.save(path)
        _FILES[k] = path
    return _FILES[k]


def onnx_file(key: str, build: Callable[[], Any]) -> Path:
    """Save the ``onnx.ModelProto`` ``build()`` returns (checked by onnx.checker), once."""
    k = f"{key}.onnx"
    if k not in _FILES:
        import onnx

        model = build()
        onnx.checker.check_model(model)
        path = model_dir() / f"lint_{key}.onnx"
        onnx.save(model, path)
        _FILES[k] = path
    return _FILES[k]


def lint_path(path: Path, **kwargs: Any):
    from inspector.loaders import load
    from inspector.rules import lint

    graph = load(path)
    graph.path = str(path)
    return lint(graph, **kwargs)


def hits(findings: Iterable, code: str) -> list:
    """The findings with ``code``."""
    return [f for f in findings if f.code == code]


def layers_of(findings: Iterable, code: str) -> list[str | None]:
    return [f.layer for f in findings if f.code == code]


def problems(findings: Iterable) -> list:
    """Findings at warning or error level."""
    return [f for f in findings if f.severity.value in ("warning", "error")]


# -- ONNX building blocks ----------------------------------------------------------------------

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
