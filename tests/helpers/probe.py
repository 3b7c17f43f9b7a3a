"""Small models for the activation-probe tests, built once per session.

Each builder makes a Keras model with Keras (saved as ``.keras``) and the *same*
network as ONNX with ``onnx.helper`` from the Keras weights, so one fixture
checks both runners.  The oracle is numpy: :func:`pre_activation` recomputes the
first hidden layer's pre-activation ``x @ W + b`` from the saved weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from helpers.keras_models import model_dir  # noqa: E402
from helpers.lint import load_graph  # noqa: E402
from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info  # noqa: E402

IN_DIM = 64
HIDDEN = 96
OUT = 4


@dataclass(frozen=True)
class Pair:
    """One network as ``.keras`` and ``.onnx`` plus its first layer's weights."""

    keras: Path
    onnx: Path
    kernel: np.ndarray
    bias: np.ndarray
    activation: str


_CACHE: dict[str, Pair] = {}


def mlp(key: str, *, activation: str, kernel_std: float | None = None, initializer: str | None = None,
        bias: float | np.ndarray = 0.0, kernel_scale: float | None = None, hidden: int = HIDDEN) -> Pair:
    """``Input(64) -> Dense(hidden, activation) -> Dense(4)``; the first layer's kernel
    is drawn N(0, kernel_std) (or from ``initializer``), or set to the constant
    ``kernel_scale``; its bias is ``bias`` (a number or one value per unit)."""
    if key in _CACHE:
        return _CACHE[key]
    import keras

    keras.utils.set_random_seed(0)
    if kernel_std is not None:
        init: Any = keras.initializers.RandomNormal(stddev=kernel_std, seed=1)
    else:
        init = initializer or "glorot_uniform"
    model = keras.Sequential([
        keras.Input((IN_DIM,), name="features"),
        keras.layers.Dense(hidden, activation=activation, kernel_initializer=init,
                           name="hidden"),
        keras.layers.Dense(OUT, name="head"),
    ], name=key)
    w, _ = model.layers[0].get_weights()
    if kernel_scale is not None:
        w = np.full_like(w, kernel_scale)
    model.layers[0].set_weights([w, np.broadcast_to(np.asarray(bias, np.float32), (hidden,)).copy()])
    kpath = model_dir() / f"probe_{key}.keras"
    model.save(kpath)
    (w1, b1), (w2, b2) = model.layers[0].get_weights(), model.layers[1].get_weights()
    opath = model_dir() / f"probe_{key}.onnx"
    save_onnx(dense_onnx([(w1, b1, activation), (w2, b2, None)]), opath)
    _CACHE[key] = Pair(kpath, opath, w1, b1, activation)
    return _CACHE[key]


ONNX_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign"}


def dense_onnx(layers: list[tuple[np.ndarray, np.ndarray, str | None]], *, batch: Any = "N"):
    """MatMul + Add (+ activation node) per layer, as ``onnx.helper`` builds it."""
    from onnx import helper

    nodes, inits = [], []
    x = "features"
    for i, (w, b, act) in enumerate(layers):
        inits += [tensor(f"W{i}", w.astype(np.float32)), tensor(f"B{i}", b.astype(np.float32))]
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"mm{i}"], name=f"matmul_{i}"))
        out = f"pre{i}" if act else f"y{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"B{i}"], [out], name=f"add_{i}"))
        if act:
            nodes.append(helper.make_node(ONNX_OPS[act], [out], [f"act{i}"], name=f"{act}_{i}"))
            out = f"act{i}"
        x = out
    return onnx_model(nodes, [value_info("features", [batch, layers[0][0].shape[0]])],
                      [value_info(x, [batch, layers[-1][0].shape[1]])], inits)


def batch_file(name: str = "normal", *, samples: int = 64, seed: int = 1, dim: int = IN_DIM) -> Path:
    """A standard-normal batch saved as .npy (shared by the probe and the oracle)."""
    path = model_dir() / f"probe_batch_{name}_{samples}_{seed}_{dim}.npy"
    if not path.exists():
        np.save(path, np.random.default_rng(seed).standard_normal((samples, dim)).astype(np.float32))
    return path


def pre_activation(pair: Pair, x: np.ndarray) -> np.ndarray:
    """The oracle: the hidden layer's pre-activation, in float64."""
    return x.astype(np.float64) @ pair.kernel.astype(np.float64) + pair.bias.astype(np.float64)


def probe_path(path: Path, **kwargs: Any):
    """Load ``path`` with inspector and probe it."""
    from inspector.analysis.probe import probe

    return probe(load_graph(path), **kwargs)


def lint_probe(path: Path, *, select: tuple[str, ...] = ("ACT003", "ACT004", "NUM005"), config: Any = None,
               **kwargs: Any):
    """Probe and lint ``path`` with the probe rules (what ``lint --probe`` does)."""
    from inspector.analysis.probe import probe
    from inspector.rules import lint

    graph = load_graph(path)
    report = probe(graph, **kwargs)
    return lint(graph, select=select, probe=report, config=config), report
