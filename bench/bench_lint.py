"""How fast and how lean is ``inspector lint`` on ResNet50 with every weight check on?

    python bench/bench_lint.py                 # builds ResNet50 (weights=None) once, then measures
    python bench/bench_lint.py path/to/m.keras # any model file

Targets (issue 4): at most 2 s wall time for ``inspector lint`` of ResNet50
``.keras``; every tensor read once; peak memory below twice the largest tensor
plus the baseline of the process.

What is measured, each in a fresh subprocess (``os.wait4`` gives that process's
own ``ru_maxrss``):

* ``lint``: ``python -m inspector lint MODEL`` with all rules (so every tensor is
  read and reduced), best wall time of ``--repeat`` runs;
* ``baseline``: the same command with only rules that read no tensor
  (``--select ACT,GRAPH``): interpreter, imports, the loaded graph;
* reads: in this process, every ``Weight.read`` is counted during one ``lint()``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _models import build_resnet50  # noqa: E402  (bench/ is on sys.path when run as a script)

sys.path.insert(0, str(ROOT))


def measure(argv: list[str]) -> tuple[float, int, int]:
    """(wall seconds, exit code, peak RSS in bytes) of one subprocess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), INSPECTOR_NO_CACHE="1")  # every run does the work
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inspector", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"inspector failed: {proc.stderr.read().decode()}")
    proc.stderr.close()
    return wall, proc.returncode, usage.ru_maxrss * 1024  # Linux reports KiB


def count_reads(path: Path) -> tuple[int, int, int, int]:
    """(tensors, reads, tensors read more than once, largest tensor bytes) of one lint()."""
    from inspector.loaders import load
    from inspector.rules import lint

    graph = load(path)
    reads: Counter = Counter()
    keys = set()
    largest = 0
    for w in graph.iter_weights():
        keys.add(w.key)
        largest = max(largest, w.nbytes)
        if w.reader is not None and not getattr(w.reader, "_counted", False):
            inner = w.reader

            def reader(inner=inner, key=w.key):
                reads[key] += 1
                return inner()

            reader._counted = True  # type: ignore[attr-defined]
            w.reader = reader
    lint(graph)
    return len(keys), sum(reads.values()), sum(1 for n in reads.values() if n > 1), largest


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="model file (default: ResNet50 built with weights=None)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    path = Path(args.model) if args.model else build_resnet50(Path(tempfile.gettempdir()))
    measure(["lint", str(path)])  # warm the page cache
    lint_runs = [measure(["lint", str(path)]) for _ in range(args.repeat)]
    base_runs = [measure(["lint", str(path), "--select", "ACT,GRAPH"]) for _ in range(args.repeat)]
    wall = min(r[0] for r in lint_runs)
    peak = max(r[2] for r in lint_runs)
    base = max(r[2] for r in base_runs)
    base_wall = min(r[0] for r in base_runs)
    tensors, reads, twice, largest = count_reads(path)
    mib = 1024 * 1024
    print(f"model:            {path} ({path.stat().st_size / mib:.1f} MiB)")
    print(f"lint wall time:   {wall:.2f} s best of {args.repeat} (target <= 2 s); without weight rules "
          f"{base_wall:.2f} s")
    print(f"tensor reads:     {reads} reads of {tensors} tensors, {twice} read more than once")
    print(f"largest tensor:   {largest / mib:.1f} MiB")
    print(f"peak RSS:         {peak / mib:.1f} MiB; baseline (no tensor read) {base / mib:.1f} MiB; "
          f"difference {(peak - base) / mib:.1f} MiB (target < 2 x largest = {2 * largest / mib:.1f} MiB)")
    ok = wall <= 2.0 and twice == 0 and peak - base < 2 * largest
    print("verdict:         ", "OK" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
