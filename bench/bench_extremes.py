"""Benchmark inspector at the extremes of issue 14, side by side with the baselines, in one run.

    python bench/bench_extremes.py --quick                 # reduced sizes, a few minutes
    python bench/bench_extremes.py --repeat 3              # the issue's sizes (generates ~2 GiB of data once)
    python bench/bench_extremes.py --cases startup,nodes-162k --profile
    python bench/bench_extremes.py --inspector /path/to/other/checkout   # measure another inspector tree

Cases (``--cases``, comma-separated; default all):

* ``startup``: ``python -c pass``, ``import onnx``, ``import ml_dtypes`` and ``inspector summary`` of a small
  ONNX decoder;
* ``nodes-162k`` / ``nodes-999k``: ``inspector summary`` of a 162k / 999k-node decoder of small layers vs
  ``onnx.load`` + ``onnx.shape_inference.infer_shapes`` in a subprocess, and beside them the floor: onnx's C++
  shape inference alone on the file's bytes (the call inspector makes in its helper, without ``import onnx`` or
  a Python parse), which any ``summary`` that shows inferred shapes must spend;
* ``tensors-100k``: ``inspector summary`` and ``lint`` of a model stored as 100,000 external tensors, vs
  ``onnx.load`` (without external data) + ``infer_shapes``;
* ``dense-0.54b``: ``inspector lint`` of a 0.54 B-parameter model with 2.0 GiB of dense float32 external data
  vs a numpy pass over the data file in 64 MiB chunks (mean, std, min, max, non-finite count), page cache warm;
* ``llama2-7b``: ``inspector summary`` of a Llama-2-7B-shaped graph whose 25 GiB of external data is a sparse
  file (no disk used; no weight byte should be read) vs ``onnx.load`` without external data + ``infer_shapes``.

The models come from ``bench/make_decoder.py`` (run in a subprocess, so this process stays small) into
``--dir`` (default: a folder in the system temp directory) and are reused by later runs.  Every measurement
is a fresh subprocess started after ``--warmup`` unmeasured runs; time is wall-clock, memory is the peak
resident set of that process and the children it waited for (``os.wait4``; the helper process inspector
starts for ONNX shape inference is included); CPU time (user + system of the same processes) is shown beside
the wall time, as it varies less on a busy machine.  The median of ``--repeat`` runs is reported.  A run longer
than ``--timeout`` seconds is killed and reported as such; a run that ends with a one-line ``INSPECTOR_MAX_*``
limit error (exit 2, e.g. ``nodes-999k`` past ``INSPECTOR_MAX_ONNX_NODES``) is reported as a limit error.
The machine load (``os.getloadavg``) before and after, and the versions of the dependencies, are printed with
the table.  Every inspector run has ``INSPECTOR_NO_CACHE=1``: a measured run after the warm-up must not be a
result-cache hit.  Python bytecode is cached as for an installed package (pip compiles it at install): every
run gets ``PYTHONPYCACHEPREFIX`` (a private temporary folder, so no measured tree is written to) and no
``PYTHONDONTWRITEBYTECODE``, and the warm-up run compiles; ``--no-bytecode-cache`` keeps the environment's
setting (with ``PYTHONDONTWRITEBYTECODE=1`` every run compiles inspector's modules from source, ~0.1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAKE_DECODER = Path(__file__).resolve().with_name("make_decoder.py")
CASES = ("startup", "nodes-162k", "nodes-999k", "tensors-100k", "dense-0.54b", "llama2-7b")

ONNX_BASELINE = textwrap.dedent("""
    import sys, onnx, onnx.shape_inference
    model = onnx.load(sys.argv[1], load_external_data=sys.argv[2] == "1")
    onnx.shape_inference.infer_shapes(model)
""")

# The part of the baseline no design can skip: onnx's C++ shape inference (the call inspector's helper makes, on
# the file's bytes as they are), with neither ``import onnx`` nor a Python parse.  ``inspector summary`` needs
# every shape it infers, so this time plus reading the file and writing the listing bounds inspector from below.
INFERENCE_FLOOR = textwrap.dedent("""
    import sys
    from inspector.loaders.onnx import lite
    with open(sys.argv[1], "rb") as fh:
        data = fh.read()
    lite.infer_shapes_bytes(data, True)
""")

# The weight-statistics floor: one pass over the data file, 64 MiB at a time; sums in float64, the sum of squares
# per chunk by a float32 BLAS dot (a float64 copy would double the pass's time), accumulated in float64.
NUMPY_PASS = textwrap.dedent("""
    import sys, numpy as np
    chunk = 64 * 1024 * 1024
    buf = bytearray(chunk)
    view = memoryview(buf)
    count = total = squares = 0.0
    low, high, bad = np.inf, -np.inf, 0
    with open(sys.argv[1], "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            a = np.frombuffer(buf, np.float32, n // 4)
            finite = np.isfinite(a)
            bad += int(a.size - np.count_nonzero(finite))
            total += float(a.sum(dtype=np.float64))
            squares += float(np.dot(a, a))
            low, high = min(low, float(a.min())), max(high, float(a.max()))
            count += a.size
    mean = total / count
    print(mean, (squares / count - mean * mean) ** 0.5, low, high, bad)
""")

VERSIONS = textwrap.dedent("""
    import importlib.metadata as md, platform
    names = ["onnx", "ml_dtypes", "numpy", "protobuf", "onnxruntime"]
    found = {}
    for name in names:
        try:
            found[name] = md.version(name)
        except md.PackageNotFoundError:
            found[name] = "-"
    print(" ".join(["python " + platform.python_version()] + [f"{k} {v}" for k, v in found.items()]))
""")

# What issue 14 measured, and its target, per row (shown beside today's numbers).
ISSUE = {
    ("startup", "inspector summary"): ("~1.0 s before work starts", "<= 0.35 s"),
    ("nodes-162k", "inspector summary"): ("33.5 s, 1.4 GiB (baseline 3.3 s, 565 MiB)", "<= 1.0x baseline, <= 1 GiB"),
    ("nodes-999k", "inspector summary"): ("220 s, 4.1 GiB", "<= 1.0x baseline, or a limit error in seconds"),
    ("tensors-100k", "inspector summary"): ("28 s", "<= 2 s"),
    ("tensors-100k", "inspector lint"): ("76 s", "-"),
    ("dense-0.54b", "inspector lint"): ("5.6 s, 384 MiB (numpy 1.9 s)", "<= 1.5x numpy, <= 2x largest + 100 MiB"),
    ("llama2-7b", "inspector summary"): ("1.6 s, 68 MiB", "<= 3 s, <= 300 MiB, no weight read"),
}


@dataclass(frozen=True)
class Run:
    """One finished (or killed) subprocess."""

    seconds: float
    peak_mib: float
    code: int
    timed_out: bool
    cpu: float = 0.0
    """User + system CPU seconds of it and its waited-for children (steadier than wall time on a busy machine)."""
    limit: bool = False
    """It ended with one ``inspector: error:`` line naming an ``INSPECTOR_MAX_*`` limit (exit 2)."""


@dataclass(frozen=True)
class Row:
    """The median of several runs of one command in one case."""

    case: str
    label: str
    runs: tuple[Run, ...]
    baseline: str | None = None  # label of the row this one is compared with

    @property
    def seconds(self) -> float:
        """Median wall time."""
        return statistics.median(r.seconds for r in self.runs)

    @property
    def peak_mib(self) -> float:
        """Median peak RSS."""
        return statistics.median(r.peak_mib for r in self.runs)

    @property
    def timed_out(self) -> bool:
        """Whether any run was killed at the time limit."""
        return any(r.timed_out for r in self.runs)

    @property
    def cpu(self) -> float:
        """Median CPU time."""
        return statistics.median(r.cpu for r in self.runs)

    def text(self) -> str:
        """``12.3 s (cpu 10.1 s), 456 MiB`` (or the time limit that was hit, or the limit error)."""
        if self.timed_out:
            return f"> {max(r.seconds for r in self.runs):.0f} s (killed), {self.peak_mib:,.0f} MiB so far"
        limit = "limit error after " if any(r.limit for r in self.runs) else ""
        return f"{limit}{self.seconds:.2f} s (cpu {self.cpu:.2f} s), {self.peak_mib:,.0f} MiB"


def model_name(preset: str, *, quick: bool) -> str:
    """File stem of a generated preset in ``--dir``."""
    return f"{preset}-quick" if quick else preset


def run_once(argv: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float) -> Run:
    """Run ``argv`` in a new session; wall time and peak RSS of it and its waited-for children."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
        limit = proc.returncode == 2 and tail.startswith("inspector: error:") and "INSPECTOR_MAX_" in tail
        if proc.returncode not in (0, 1) and not killed.is_set() and not limit:  # lint exits 1 on findings
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, killed.is_set(),
               usage.ru_utime + usage.ru_stime, limit)


class Bench:
    """Generates the models and measures the commands of the selected cases."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.folder: Path = args.dir
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, PYTHONPATH=str(args.inspector), TF_CPP_MIN_LOG_LEVEL="3",
                        INSPECTOR_NO_CACHE="1")  # every run does the work (no result cache hit)
        if args.bytecode_cache:  # as an installed package: bytecode compiled once, not on every run
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="inspector-bench-pycache-")
        self.rows: list[Row] = []

    def model(self, preset: str) -> Path:
        """The preset's model in ``--dir``, generated in a subprocess unless an identical one is there."""
        argv = ["--preset", preset, *(["--quick"] if self.args.quick else [])]
        path = self.folder / f"{model_name(preset, quick=self.args.quick)}.onnx"
        stamp = path.with_name(path.name + ".argv")
        if not (path.exists() and stamp.exists() and json.loads(stamp.read_text()) == argv):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, str(MAKE_DECODER), str(path), *argv], check=True,
                                 capture_output=True, text=True).stdout.strip()
            stamp.write_text(json.dumps(argv))
            print(f"generated in {time.perf_counter() - start:.1f} s: {out}", file=sys.stderr)
        return path

    def measure(self, case: str, label: str, argv: Sequence[str], *, baseline: str | None = None) -> Row:
        """Warm up, then time ``--repeat`` fresh runs of ``argv``; a timeout ends the repetitions."""
        runs: list[Run] = []
        for i in range(self.args.warmup + self.args.repeat):
            run = run_once(argv, env=self.env, cwd=self.folder, timeout=self.args.timeout)
            if i >= self.args.warmup or run.timed_out:
                runs.append(run)
            if run.timed_out:
                break
        row = Row(case, label, tuple(runs), baseline)
        self.rows.append(row)
        print(f"  {case:13} {label:38} {row.text()}", file=sys.stderr)
        return row

    def inspector(self, case: str, command: str, model: Path, *, baseline: str | None = None) -> Row:
        """``python -m inspector COMMAND MODEL`` with the measured tree first on ``PYTHONPATH``."""
        return self.measure(case, f"inspector {command}", [sys.executable, "-m", "inspector", command, str(model)],
                            baseline=baseline)

    def onnx_baseline(self, case: str, model: Path, *, external: bool) -> str:
        """``onnx.load`` (with or without external data) + ``infer_shapes``; returns the row label."""
        label = "onnx.load + infer_shapes" + ("" if external else " (no external data)")
        self.measure(case, label, [sys.executable, "-c", ONNX_BASELINE, str(model), "1" if external else "0"])
        return label

    def case(self, name: str) -> None:
        """Measure every row of case ``name``."""
        py = sys.executable
        if name == "startup":
            small = self.model("small")
            self.measure(name, "python -c pass", [py, "-c", "pass"])
            self.measure(name, "python -c 'import onnx'", [py, "-c", "import onnx"])
            self.measure(name, "python -c 'import ml_dtypes'", [py, "-c", "import ml_dtypes"])
            self.inspector(name, "summary", small, baseline="python -c 'import onnx'")
        elif name in ("nodes-162k", "nodes-999k"):
            model = self.model(name)
            base = self.onnx_baseline(name, model, external=False)
            self.measure(name, "floor: C++ infer_shapes of the file's bytes", [py, "-c", INFERENCE_FLOOR, str(model)],
                         baseline=base)
            self.inspector(name, "summary", model, baseline=base)
        elif name == "tensors-100k":
            model = self.model(name)
            base = self.onnx_baseline(name, model, external=False)
            self.inspector(name, "summary", model, baseline=base)
            self.inspector(name, "lint", model, baseline=base)
        elif name == "dense-0.54b":
            model = self.model(name)
            data = model.with_name(model.name + ".data")
            label = "numpy 64 MiB-chunk pass over the data"
            self.measure(name, label, [py, "-c", NUMPY_PASS, str(data)])
            self.inspector(name, "lint", model, baseline=label)
        elif name == "llama2-7b":
            model = self.model(name)
            base = self.onnx_baseline(name, model, external=False)
            self.inspector(name, "summary", model, baseline=base)

    def profile(self, preset: str) -> str:
        """cProfile of ``inspector summary`` of ``preset``: the top 15 entries by cumulative and by own time."""
        model, out = self.model(preset), self.folder / f"{model_name(preset, quick=self.args.quick)}.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "inspector", "summary", str(model)],
                       env=self.env, cwd=self.folder, check=True, stdout=subprocess.DEVNULL)
        code = ("import pstats, sys; stats = pstats.Stats(sys.argv[1], stream=sys.stdout)\n"
                "for order in ('cumulative', 'tottime'): stats.sort_stats(order).print_stats(15)")
        return subprocess.run([sys.executable, "-c", code, str(out)], check=True, capture_output=True,
                              text=True).stdout


def table(rows: Sequence[Row]) -> str:
    """Markdown: one line per command, its baseline's figures beside it, and the issue's numbers."""
    by_label = {(r.case, r.label): r for r in rows}
    header = ("| case | command | median wall (cpu) time, peak RSS | baseline | baseline time, peak RSS | time ratio "
              "| issue 14 measured | target |")
    lines = [header, "|---|---|---:|---|---:|---:|---|---|"]
    for row in rows:
        base = by_label.get((row.case, row.baseline)) if row.baseline else None
        if row.baseline is None and any(r.baseline == row.label and r.case == row.case for r in rows):
            continue  # shown beside the rows that compare with it
        ratio = (f"{row.seconds / base.seconds:.2f}x (cpu {row.cpu / base.cpu:.2f}x)"
                 if base and not row.timed_out and base.cpu else "-")
        then, target = ISSUE.get((row.case, row.label), ("-", "-"))
        lines.append(f"| {row.case} | `{row.label}` | {row.text()} | {f'`{base.label}`' if base else '-'} | "
                     f"{base.text() if base else '-'} | {ratio} | {then} | {target} |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    parser.add_argument("--quick", action="store_true", help="reduced sizes (see make_decoder.PRESETS)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per command (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs before them")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is killed")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "inspector-extremes")
    parser.add_argument("--inspector", type=Path, default=ROOT, help="the inspector tree to measure")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                        help="keep PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as the environment sets them "
                             "(default: bytecode cached in a private temporary folder, as for an installed package)")
    parser.add_argument("--profile", action="store_true",
                        help="also print cProfile's top 15 cumulative entries of summary on nodes-162k")
    args = parser.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, measure, print the table with load and versions."""
    args = parse_args(argv)
    bench = Bench(args)
    load_before = os.getloadavg()
    for name in CASES:
        if name in args.cases.split(","):
            print(f"{name}:", file=sys.stderr)
            bench.case(name)
    load_after = os.getloadavg()
    versions = subprocess.run([sys.executable, "-c", VERSIONS], check=True, capture_output=True,
                              text=True).stdout.strip()
    print(table(bench.rows))
    print(f"\n{'quick sizes' if args.quick else 'full sizes'}, median of {args.repeat} after {args.warmup} warm-up "
          f"run(s); {os.cpu_count()} CPUs; load average before {load_before[0]:.2f}/{load_before[1]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f} (1/5 min)")
    print(f"inspector measured: {args.inspector}; {versions}")
    print("bytecode: " + (f"cached in {bench.env['PYTHONPYCACHEPREFIX']} (compiled by the warm-up run)"
                          if args.bytecode_cache else "as the environment sets it (PYTHONDONTWRITEBYTECODE="
                          f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})"))
    if args.bytecode_cache:
        shutil.rmtree(bench.env["PYTHONPYCACHEPREFIX"], ignore_errors=True)
    if args.profile:
        print("\ncProfile of `inspector summary` on nodes-162k" + (" (quick)" if args.quick else "") + ":\n")
        print(bench.profile("nodes-162k"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
