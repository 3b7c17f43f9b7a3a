"""What does the activation probe cost on top of a plain forward pass?

    python bench/bench_probe.py                  # ResNet50 (weights=None), batch 8, Keras and ONNX
    python bench/bench_probe.py --only keras     # one framework
    python bench/bench_probe.py --rounds 21 --batch-size 8

Target (issue 6): probing ResNet50 on a batch of 8 costs at most 1.5x a plain
forward pass of the same batch in the same framework, measured side by side.

What is compared, per framework, on the same model and the same batch:

* Keras/TensorFlow: ``tf.function(lambda x: model(x, training=False))`` versus
  the probe's traced forward function (the same model with the probe's taps and
  in-graph reductions: every activation layer's moments, per-channel maximum,
  non-finite check), both compiled once, results copied to numpy;
* ONNX/onnxruntime: an ``InferenceSession`` of the file versus one of the probe's
  in-memory copy (extra reduction nodes and outputs), same session options.

Each is warmed up first (tracing, session creation, first-run allocations), then
``--rounds`` rounds run plain and probe back to back, alternating which goes
first, and the medians are compared.  The ONNX file is made from the Keras model
with tf2onnx (opset 17).  The end-to-end ``inspector probe`` command time
(loading, tracing, one pass) is reported too, for information.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 1.5


def build(folder: Path) -> tuple[Path, Path]:
    keras_path, onnx_path = folder / "resnet50.keras", folder / "resnet50.onnx"
    if not keras_path.exists() or not onnx_path.exists():
        code = ("import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
                "import keras, tensorflow as tf, tf2onnx\n"
                "m = keras.applications.ResNet50(weights=None)\n"
                "m.save(sys.argv[1])\n"
                "spec = (tf.TensorSpec((None, 224, 224, 3), tf.float32, name='input'),)\n"
                "tf2onnx.convert.from_keras(m, input_signature=spec, opset=17, output_path=sys.argv[2])\n")
        subprocess.run([sys.executable, "-c", code, str(keras_path), str(onnx_path)], check=True,
                       capture_output=True)
    return keras_path, onnx_path


def side_by_side(plain, probe, rounds: int) -> tuple[float, float, list[float], list[float]]:
    for _ in range(2):  # warm-up
        plain()
        probe()
    a: list[float] = []
    b: list[float] = []
    for r in range(rounds):
        order = (plain, probe) if r % 2 == 0 else (probe, plain)
        for fn in order:
            start = time.perf_counter()
            fn()
            (a if fn is plain else b).append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b), a, b


def bench_keras(path: Path, batch: int, rounds: int) -> tuple[float, float, int]:
    import numpy as np
    import tensorflow as tf

    from inspector.analysis import probe_keras
    from inspector.loaders import load

    graph = load(path)
    graph.path = str(path)
    model = probe_keras.load(graph)
    forward, targets, _ = probe_keras.instrument(graph, model)
    x = tf.constant(np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32))
    plain_fn = tf.function(lambda t: model(t, training=False))

    def plain():
        plain_fn(x).numpy()

    def probe():
        records, outs = forward([x])
        tf.nest.map_structure(lambda t: t.numpy(), (records, outs))

    p, q, _, _ = side_by_side(plain, probe, rounds)
    return p, q, len(targets)


def bench_onnx(path: Path, batch: int, rounds: int) -> tuple[float, float, int]:
    import numpy as np

    from inspector.analysis import probe_onnx
    from inspector.loaders import load

    graph = load(path)
    graph.path = str(path)
    plain_sess = probe_onnx.session(probe_onnx.load(graph))
    inst = probe_onnx.instrument(graph, probe_onnx.load(graph))
    probe_sess = probe_onnx.session(inst.model)
    name = plain_sess.get_inputs()[0].name
    feed = {name: np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32)}
    fetch = inst.fetch

    def plain():
        plain_sess.run(None, feed)

    def probe():
        probe_sess.run(fetch, feed)

    p, q, _, _ = side_by_side(plain, probe, rounds)
    return p, q, len(inst.targets)


def end_to_end(path: Path, batch: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "inspector", "probe", str(path), "--batch-size", str(batch), "-f", "json"],
                   check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--only", choices=("keras", "onnx"))
    ap.add_argument("--folder", type=Path, default=None, help="where to keep resnet50.keras/.onnx between runs")
    args = ap.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="inspector-bench-probe-"))
    folder.mkdir(parents=True, exist_ok=True)
    keras_path, onnx_path = build(folder)
    ok = True
    rows = []
    if args.only in (None, "keras"):
        rows.append(("keras/tensorflow", keras_path, *bench_keras(keras_path, args.batch_size, args.rounds)))
    if args.only in (None, "onnx"):
        rows.append(("onnx/onnxruntime", onnx_path, *bench_onnx(onnx_path, args.batch_size, args.rounds)))
    print(f"ResNet50 (weights=None), batch {args.batch_size}, median of {args.rounds} side-by-side rounds "
          f"({os.cpu_count()} CPUs)")
    for name, path, plain, probe, layers in rows:
        ratio = probe / plain
        ok &= ratio <= TARGET
        e2e = end_to_end(path, args.batch_size)
        print(f"  {name:17s} plain {plain * 1000:7.1f} ms   probe {probe * 1000:7.1f} ms   ratio {ratio:4.2f} "
              f"(target <= {TARGET})   {layers} activations   `inspector probe` end to end {e2e:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
