"""Lint a folder of many small models: ``--jobs 1`` against ``--jobs N``, and the cache cold against warm.

    python bench/bench_folder.py [--models 64] [--jobs 2] [--folder bench/out/folder]

Builds the folder once (small models of 0.5-5 MiB: Keras CNNs saved as ``.keras``/``.h5`` by Keras in
a subprocess, and ONNX MLPs made with ``onnx.helper``), then times ``inspector lint FOLDER -f json`` as a
user runs it (a new process each time, wall time, best of ``--repeat``) and checks that every
run prints the same JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_KERAS = r"""
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
from keras import layers
folder, count = sys.argv[1], int(sys.argv[2])
keras.utils.set_random_seed(0)
for i in range(count):
    width = 32 + 16 * (i % 4)
    inp = keras.Input((64, 64, 3))
    x = layers.Conv2D(width, 3, activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    for k in range(3):
        x = layers.Conv2D(width * 2, 3, strides=2, activation="relu")(x)
        x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    out = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inp, out, name=f"cnn{i}")
    suffix = "h5" if i % 4 == 3 else "keras"
    os.makedirs(os.path.join(folder, f"team{i % 3}"), exist_ok=True)
    model.save(os.path.join(folder, f"team{i % 3}", f"cnn{i:02d}.{suffix}"))
"""


def _onnx_models(folder: Path, count: int) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width = 128 + 64 * (i % 4)
        nodes, inits, prev = [], [], "x"
        for k in range(6):
            w = rng.standard_normal((width, width)).astype(np.float32) / np.sqrt(width)
            inits += [numpy_helper.from_array(w, f"w{k}"),
                      numpy_helper.from_array(np.zeros(width, np.float32), f"b{k}")]
            nodes += [helper.make_node("MatMul", [prev, f"w{k}"], [f"m{k}"]),
                      helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"]),
                      helper.make_node("Relu", [f"a{k}"], [f"r{k}"])]
            prev = f"r{k}"
        graph = helper.make_graph(nodes, f"mlp{i}", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   ["N", width])],
                                  [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", width])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, folder / "onnx" / f"mlp{i:02d}.onnx")


def build(folder: Path, count: int) -> Path:
    """``folder`` with ``count`` models (half Keras, half ONNX), unless already built."""
    marker = folder / f".built-{count}-v2"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    keras_count = count // 2
    subprocess.run([sys.executable, "-c", _KERAS, str(folder), str(keras_count)], check=True)
    _onnx_models(folder, count - keras_count)
    marker.write_text("")
    return folder


def _lint(folder: Path, *args: str, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "inspector", "lint", str(folder), "-f", "json", *args],
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"inspector failed ({done.returncode}): {done.stderr}")
    return elapsed, done.stdout


def _best(folder: Path, *args: str, env: dict[str, str], repeat: int) -> tuple[float, str]:
    runs = [_lint(folder, *args, env=env) for _ in range(repeat)]
    outputs = {out for _, out in runs}
    assert len(outputs) == 1, "the same command printed different JSON"
    return min(t for t, _ in runs), runs[0][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--folder", type=Path, default=ROOT / "bench" / "out" / "folder")
    opts = ap.parse_args()
    folder = build(opts.folder, opts.models)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_JOBS": "", "INSPECTOR_NO_CACHE": ""}
    models = sum(1 for p in folder.rglob("*") if p.suffix in (".keras", ".h5", ".onnx"))
    serial, out1 = _best(folder, "--jobs", "1", "--no-cache", env=env, repeat=opts.repeat)
    pooled, out2 = _best(folder, "--jobs", str(opts.jobs), "--no-cache", env=env, repeat=opts.repeat)
    assert out1 == out2, "--jobs changed the JSON"
    print(f"{models} models, {os.cpu_count()} CPUs")
    print(f"  --jobs 1: {serial:6.2f} s    --jobs {opts.jobs}: {pooled:6.2f} s    ratio {pooled / serial:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        cache_env = {**env, "INSPECTOR_CACHE_DIR": tmp}
        cold, out3 = _lint(folder, "--jobs", str(opts.jobs), env=cache_env)
        warm, out4 = _best(folder, "--jobs", str(opts.jobs), env=cache_env, repeat=opts.repeat)
    assert out3 == out4 == out1, "the cache changed the JSON"
    print(f"  cache cold: {cold:6.2f} s    warm: {warm:6.2f} s    {cold / warm:.1f}x faster"
          f"    (warm vs --jobs 1 without cache: {serial / warm:.1f}x)")


if __name__ == "__main__":
    main()
