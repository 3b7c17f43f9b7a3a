"""Lint a folder of many small models: ``--jobs 1`` against ``--jobs N``, and the cache cold against warm.

    python bench/bench_folder.py [--models 64] [--jobs 2] [--folder bench/out/folder]

Builds the folder once (small models of 0.5-5 MiB: Keras CNNs saved as ``.keras``/``.h5`` by Keras in
a subprocess, and ONNX MLPs made with ``onnx.helper``), then times ``inspector lint FOLDER -f json`` as a
user runs it (a new process each time; wall time and, for the single-process runs, CPU time; medians of
``--repeat``, ``--jobs 1`` and ``--jobs N`` interleaved) and checks that every run prints the same JSON.
The load average and a pure-Python burn in the same run (how much faster N loops run in N processes than
one after the other) say how many cores were really free.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def _lint(folder: Path, *args: str, env: dict[str, str]) -> tuple[float, float, str]:
    """One ``inspector lint FOLDER -f json ARGS`` in a new process: wall time, the CPU time of it and of every
    process it started (workers too: see :func:`_subreaper`), the JSON."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "inspector", "lint", str(folder), "-f", "json", *args],
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    _reap()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"inspector failed ({done.returncode}): {done.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu, done.stdout


def _subreaper() -> None:
    """Become the reaper of orphaned descendants (Linux), so the fork server and its workers, which outlive
    the ``inspector`` process by a moment, are waited for here and their CPU time counted."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _reap(deadline: float = 30.0) -> None:
    """Wait for the processes left over by the run (at most ``deadline`` seconds)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                time.sleep(0.01)
        except ChildProcessError:
            return


def _burn(_: int) -> float:
    start = time.process_time()
    total = 0
    for i in range(8_000_000):
        total += i * i
    return time.process_time() - start


def free_cores(jobs: int) -> float:
    """How many times faster ``jobs`` copies of a pure-Python loop run in ``jobs`` processes than one after
    the other: the cores really free now (``jobs`` on a quiet machine, less when other work runs).  Measured
    in a process of its own, which leaves nothing running here."""
    done = subprocess.run([sys.executable, __file__, "--burn", str(jobs)], capture_output=True, text=True,
                          check=True)
    _reap()
    return float(done.stdout)


def _free_cores_here(jobs: int) -> float:
    import multiprocessing

    start = time.perf_counter()
    for i in range(jobs):
        _burn(i)
    serial = time.perf_counter() - start
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        pool.map(_burn, [0] * jobs)  # (the workers start outside the timing)
        start = time.perf_counter()
        pool.map(_burn, range(jobs))
        pooled = time.perf_counter() - start
    return serial / pooled


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


# long: one measurement protocol, printed as it goes
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--folder", type=Path, default=ROOT / "bench" / "out" / "folder")
    ap.add_argument("--burn", type=int, help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.burn:
        print(_free_cores_here(opts.burn))
        return
    folder = build(opts.folder, opts.models)
    _subreaper()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "INSPECTOR_JOBS": "", "INSPECTOR_NO_CACHE": ""}
    models = sum(1 for p in folder.rglob("*") if p.suffix in (".keras", ".h5", ".onnx"))
    print(f"{models} models, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"free cores (pure-Python burn, {opts.jobs} processes): {free_cores(opts.jobs):.2f}")
    serial: list[tuple[float, float]] = []
    pooled: list[tuple[float, float]] = []
    outputs: set[str] = set()
    for _ in range(opts.repeat):  # interleaved, so that a change of load hits both alike
        *times, out = _lint(folder, "--jobs", "1", "--no-cache", env=env)
        serial.append((times[0], times[1]))
        outputs.add(out)
        *times, out = _lint(folder, "--jobs", str(opts.jobs), "--no-cache", env=env)
        pooled.append((times[0], times[1]))
        outputs.add(out)
    assert len(outputs) == 1, "--jobs (or a repeat) changed the JSON"
    ratios = sorted(p[0] / s[0] for p, s in zip(pooled, serial, strict=True))
    print(f"  --jobs 1: {_median([w for w, _ in serial]):6.2f} s wall {_median([c for _, c in serial]):5.2f} s CPU"
          f"    --jobs {opts.jobs}: {_median([w for w, _ in pooled]):6.2f} s wall "
          f"{_median([c for _, c in pooled]):5.2f} s CPU (all processes; medians)"
          f"    wall ratio per pair {', '.join(f'{r:.2f}' for r in ratios)}")
    cold: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    for _ in range(opts.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cache_env = {**env, "INSPECTOR_CACHE_DIR": tmp}
            *times, out = _lint(folder, "--jobs", "1", env=cache_env)
            cold.append((times[0], times[1]))
            outputs.add(out)
            *times, out = _lint(folder, "--jobs", "1", env=cache_env)
            warm.append((times[0], times[1]))
            outputs.add(out)
    assert len(outputs) == 1, "the cache changed the JSON"
    cold_wall, cold_cpu = _median([w for w, _ in cold]), _median([c for _, c in cold])
    warm_wall, warm_cpu = _median([w for w, _ in warm]), _median([c for _, c in warm])
    print(f"  cache (--jobs 1) cold: {cold_wall:6.2f} s wall {cold_cpu:5.2f} s CPU    warm: {warm_wall:6.2f} s wall "
          f"{warm_cpu:5.2f} s CPU    {cold_wall / warm_wall:.1f}x faster (wall), {cold_cpu / warm_cpu:.1f}x (CPU)")
    print(f"  load average at the end {os.getloadavg()[0]:.1f}, free cores {free_cores(opts.jobs):.2f}")


if __name__ == "__main__":
    main()
