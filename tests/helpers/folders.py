"""Folders of small models for the folder, ``--jobs``, cache and ``scan`` tests, and a per-file
function that kills its worker (importable by worker processes).

    from helpers.folders import mlp_onnx, model_folder
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info


def mlp_onnx(path: Path, *, seed: int, width: int = 8, zero_bias: bool = False) -> Path:
    """A small ONNX MatMul + Add + Relu model with weights drawn from ``seed`` (same seed: same bytes)."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((16, width)).astype(np.float32)
    b = np.zeros(width, np.float32) if zero_bias else rng.standard_normal(width).astype(np.float32)
    model = onnx_model([helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["a"]),
                        helper.make_node("Relu", ["a"], ["y"])],
                       [value_info("x", ["N", 16])], [value_info("y", ["N", width])],
                       [tensor("W", w), tensor("B", b)])
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_onnx(model, path)


def model_folder(root: Path) -> Path:
    """``root/models``: five ONNX models in three folders, a broken ``.onnx``, and files that are not
    models (skipped when the folder is walked)."""
    folder = root / "models"
    mlp_onnx(folder / "b.onnx", seed=1)
    mlp_onnx(folder / "a.onnx", seed=2, width=4)
    mlp_onnx(folder / "team" / "z.onnx", seed=3, zero_bias=True)
    mlp_onnx(folder / "team" / "deep" / "c.onnx", seed=4)
    mlp_onnx(folder / "zz" / "last.onnx", seed=5)
    (folder / "broken.onnx").write_bytes(b"")  # empty: one stable error
    (folder / "notes.txt").write_text("not a model\n")
    (folder / "train.py").write_text("print('not a model')\n")
    (folder / "team" / "weights.npy").write_bytes(b"\x93NUMPY")
    return folder


def upper_or_die(item: str, options: object) -> str:
    """A per-file function for the pool tests: ``item`` upper-cased; the worker dies on ``"die"``."""
    if item == "die":
        os._exit(3)
    return item.upper()


def pid_of(item: str, options: object) -> int:
    """A per-file function for the pool tests: the id of the process that ran it."""
    return os.getpid()
