"""How far today's ``inspector`` is from issues 11 and 12 on models exported by ``torch.onnx.export``.

    python bench/exporter_check.py                  # every model x 2 exporters, static + dynamic axes
    python bench/exporter_check.py --static-only    # static shapes only (about half the export time)
    python bench/exporter_check.py --models gpt2,llama --fresh

Builds tiny Hugging Face models from configs with random weights (``tests/helpers/exporters.py``; needs
``torch``, ``transformers`` and ``onnxscript``), exports each with the TorchScript and the dynamo exporter,
then runs the CURRENT ``inspector summary --format json`` and ``inspector lint --output-format json`` on every
file as subprocesses (this checkout first on ``PYTHONPATH``), two at a time while the next model exports.
Prints one row per export: PyTorch's parameters (trainable / BatchNorm running statistics) against the
inspector's, ``FlopCounterMode`` MACs against the inspector's MACs and ``macs_complete``, and the lint
findings by severity with their codes.  Models with BatchNorm (trained-like statistics) are also
exported with the exporter's optimisations off (``unfolded``: BatchNorm kept).  Dynamic-axes exports are
traced with 2 rows; their torch MACs are for those shapes, which the summary binds (``--dim batch=2 --dim seq=16``).
Exports are cached (see ``cache_folder``); ``--fresh`` exports again.  Exits 0: this is a measurement, not a gate.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import exporters  # noqa: E402 (after the path set-up above)


@dataclass(frozen=True)
class Check:
    """What the inspector's CLI says about one exported file."""

    params: int
    trainable: int
    non_trainable: int
    macs: int
    macs_complete: bool
    findings: dict[str, collections.Counter[str]]  # severity -> code -> count
    seconds: float
    error: str = ""


def _inspector(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m inspector ARGS`` with this checkout's package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True, env=env,
                          check=False)


def dims_of(model: exporters.ExportedModel) -> list[str]:
    """``--dim NAME=VALUE`` arguments binding a dynamic-axes export's symbols to its traced shapes."""
    bound = {name: model.input_shapes[inp][int(axis)]
             for inp, axes in model.dynamic_axes.items() for axis, name in axes.items()}
    return [arg for name, value in sorted(bound.items()) for arg in ("--dim", f"{name}={value}")]


def check(path: Path, dims: list[str] | None = None) -> Check:
    """``inspector summary --format json`` (``dims``: ``--dim`` arguments) and ``inspector lint
    --output-format json`` on ``path``."""
    start = time.perf_counter()
    summary = _inspector("summary", "--format", "json", *(dims or ()), str(path))
    lint = _inspector("lint", "--output-format", "json", "--fail-on", "never", str(path))
    seconds = time.perf_counter() - start
    try:
        totals: dict[str, Any] = json.loads(summary.stdout)["totals"]
        results = json.loads(lint.stdout)["results"]
    except (ValueError, KeyError) as error:
        message = (summary.stderr or lint.stderr or str(error)).strip().splitlines()[-1:]
        return Check(0, 0, 0, 0, False, {}, seconds, error=" ".join(message) or repr(error))
    findings: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for result in results:
        for finding in result["findings"]:
            findings[finding["severity"]][finding["code"]] += 1
    return Check(params=totals["params"], trainable=totals["trainable"], non_trainable=totals["non_trainable"],
                 macs=totals.get("macs") or 0, macs_complete=bool(totals.get("macs_complete")),
                 findings=dict(findings), seconds=seconds)


def _codes(counter: collections.Counter[str] | None) -> str:
    """``NUM001x3 INIT002`` for a code -> count counter, ``-`` when empty."""
    if not counter:
        return "-"
    return " ".join(code if n == 1 else f"{code}x{n}" for code, n in sorted(counter.items()))


def _ratio(ours: int, truth: int) -> str:
    """The inspector's number as a percentage of PyTorch's (``=`` when exact)."""
    if ours == truth:
        return "="
    return f"{100 * ours / truth:.1f}%" if truth else "n/a"


HEADER = ("model", "exporter", "axes", "export s", "torch params (tr/bn)", "inspector params (tr/non)", "params",
          "torch MACs", "inspector MACs", "MACs", "complete", "errors", "warnings", "infos")


def row(model: exporters.ExportedModel, result: Check) -> tuple[str, ...]:
    """One table row comparing ``model``'s ground truth with the inspector's ``result``."""
    truth = model.truth
    axes = model.axes if model.fold else f"{model.axes}, unfolded"
    head = (model.name, model.exporter, axes, f"{model.export_seconds:.1f}",
            f"{truth.trainable:,}/{truth.non_trainable:,}")
    if result.error:
        return (*head, f"FAILED: {result.error}", *[""] * (len(HEADER) - len(head) - 1))
    torch_total = truth.trainable + truth.non_trainable
    return (*head, f"{result.trainable:,}/{result.non_trainable:,}", _ratio(result.params, torch_total),
            f"{truth.macs:,}", f"{result.macs:,}", _ratio(result.macs, truth.macs),
            "yes" if result.macs_complete else "no", _codes(result.findings.get("error")),
            _codes(result.findings.get("warning")), _codes(result.findings.get("info")))


def print_table(rows: list[tuple[str, ...]]) -> None:
    """A GitHub-flavoured Markdown table (pastes into issues and reports as it is)."""
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" for _ in HEADER) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |", flush=True)


def _export(name: str, exporter: str, *, dynamic: bool, fold: bool, folder: Path) -> exporters.ExportedModel:
    """:func:`exporters.export`, with a progress line on standard error."""
    model = exporters.export(name, exporter, dynamic=dynamic, fold=fold, folder=folder)
    print(f"exported {model.label} ({model.export_seconds:.1f} s)", file=sys.stderr, flush=True)
    return model


def main(argv: list[str] | None = None) -> int:
    """Export, check and print; returns the exit code (0, or 2 when the exporters are not installed)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(exporters.MODEL_NAMES),
                        help=f"comma-separated subset of {', '.join(exporters.MODEL_NAMES)}")
    parser.add_argument("--exporters", default=",".join(exporters.EXPORTERS), help="torchscript, dynamo or both")
    parser.add_argument("--static-only", action="store_true", help="skip the dynamic-axes exports")
    parser.add_argument("--fresh", action="store_true", help="delete the export cache first")
    args = parser.parse_args(argv)
    if not exporters.available():
        print("needs torch, transformers and onnxscript (pip install torch transformers onnxscript)")
        return 2
    logging.getLogger("torch").setLevel(logging.ERROR)  # "torchvision is not installed" and friends
    folder = exporters.cache_folder()
    if args.fresh:
        shutil.rmtree(folder)
        folder = exporters.cache_folder()
    print(f"exports cached in {folder}", flush=True)
    variants = [False] if args.static_only else [False, True]
    start = time.perf_counter()
    jobs: list[tuple[exporters.ExportedModel, Future[Check]]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:  # the CLI runs while the next model exports
        for name in args.models.split(","):
            for exporter in args.exporters.split(","):
                for dynamic in variants:
                    model = _export(name, exporter, dynamic=dynamic, fold=True, folder=folder)
                    jobs.append((model, pool.submit(check, model.path, dims_of(model))))
                    if model.truth.non_trainable and not dynamic:  # BatchNorm: also exported unfolded
                        model = _export(name, exporter, dynamic=False, fold=False, folder=folder)
                        jobs.append((model, pool.submit(check, model.path, dims_of(model))))
        rows = [row(model, future.result()) for model, future in jobs]
    print_table(rows)
    inspector_seconds = sum(future.result().seconds for _, future in jobs)
    print(f"\n{len(rows)} exports; wall {time.perf_counter() - start:.0f} s; inspector CLI {inspector_seconds:.0f} s "
          f"(summary + lint, summed); torch params: tr = sum(p.numel()), bn = BatchNorm running mean/var; "
          "torch MACs = FlopCounterMode FLOPs / 2 at the traced shapes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
