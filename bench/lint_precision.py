"""Precision check: lint every keras.applications model, every ONNX "light" model and the exporter models.

    python bench/lint_precision.py                 # everything (builds ~40 models, minutes)
    python bench/lint_precision.py ResNet50 VGG16  # some keras.applications models
    python bench/lint_precision.py --onnx          # only the onnx package's light models
    python bench/lint_precision.py --exporters     # only the torch.onnx.export models

The exporter models are the tiny Hugging Face models of ``tests/helpers/exporters.py`` (BERT, GPT-2,
Llama, T5, Whisper, ViT, ResNet, ResNet with a zero-initialised residual, ConvNeXt, EfficientNet,
MobileNetV2, and trained-like variants of BERT, Llama, ResNet and EfficientNet whose weights are moved
away from their initialisation), exported by the TorchScript and the dynamo exporter with static shapes
and with dynamic axes (cached exports are reused; needs torch, transformers and onnxscript, skipped with
a note when they are missing).

A linter that cries wolf gets switched off: healthy architectures must raise no
warning and no error (infos are allowed).  Each Keras model is built with
``weights=None`` in a subprocess (TensorFlow's memory goes away with it), saved
as ``.keras`` into a scratch folder, linted through the CLI's code path, and
deleted again.  Prints one line per model, then a table (model, errors,
warnings, codes) and exits 1 if any model has a warning or an error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
getattr(keras.applications, sys.argv[1])(weights=None).save(sys.argv[2])
"""


def application_names() -> list[str]:
    code = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import keras; "
            "print(' '.join(n for n in dir(keras.applications) if n[0].isupper()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def lint_file(path: Path) -> list:
    from inspector.loaders import load
    from inspector.rules import lint

    graph = load(path)
    graph.path = str(path)
    return lint(graph)


ROWS: list[tuple[str, int, int, str]] = []
"""(model, errors, warnings, codes) of every model linted, for the closing table."""


def report(name: str, findings: list, seconds: float) -> bool:
    bad = [f for f in findings if f.severity.value in ("error", "warning")]
    errors = sum(f.severity.value == "error" for f in findings)
    codes = ", ".join(f"{c} ({s})" for c, s in sorted({(f.code, f.severity.value) for f in findings}))
    ROWS.append((name, errors, len(bad) - errors, codes or "-"))
    infos = sorted({f.code for f in findings if f.severity.value == "info"})
    status = "FAIL" if bad else "ok"
    print(f"{status:4} {name:28} {seconds:6.1f}s  infos: {', '.join(infos) or '-'}", flush=True)
    for f in bad:
        print(f"       {f.layer}: {f.code} [{f.severity.value}] {f.message}", flush=True)
    return not bad


def table() -> None:
    """The closing table (Markdown): model, errors, warnings, codes (with their severity)."""
    print("\n| model | errors | warnings | codes |\n|---|---:|---:|---|")
    for name, errors, warnings, codes in ROWS:
        print(f"| {name} | {errors} | {warnings} | {codes} |")


def lint_exporters() -> bool:
    """Lint every exporter model (both exporters, static and dynamic axes)."""
    from tests.helpers import exporters

    if not exporters.available():
        print("skip exporter models: torch, transformers or onnxscript is missing", flush=True)
        return True
    ok = True
    for dynamic in (False, True):
        for exported in exporters.export_all(dynamic=dynamic):
            t = time.perf_counter()
            ok &= report(exported.label, lint_file(exported.path), time.perf_counter() - t)
    return ok


def main(argv: list[str]) -> int:
    ok = run(argv)
    table()
    return 0 if ok else 1


def run(argv: list[str]) -> bool:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="keras.applications model names (default: all)")
    ap.add_argument("--onnx", action="store_true", help="only the ONNX light models")
    ap.add_argument("--exporters", action="store_true", help="only the torch.onnx.export models")
    ap.add_argument("--keep", metavar="DIR", help="keep the .keras files in DIR (and reuse them)")
    args = ap.parse_args(argv)
    ok = True
    if args.exporters:
        return lint_exporters()
    if not args.names:
        import onnx

        light = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
        for f in sorted(light.glob("*.onnx")):
            t = time.perf_counter()
            ok &= report(f.name, lint_file(f), time.perf_counter() - t)
    if args.onnx:
        return ok
    if not args.names:
        ok &= lint_exporters()
    names = args.names or application_names()
    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="inspector-precision-"))
    scratch.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for name in names:
        path = scratch / f"{name}.keras"
        if not path.exists():
            built = subprocess.run([sys.executable, "-c", BUILD, name, str(path)], env=env,
                                   capture_output=True, text=True)
            if built.returncode != 0:
                print(f"skip {name}: could not build ({built.stderr.strip().splitlines()[-1:]})", flush=True)
                continue
        t = time.perf_counter()
        ok &= report(name, lint_file(path), time.perf_counter() - t)
        if not args.keep:
            path.unlink()
    return ok


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
