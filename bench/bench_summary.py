"""Benchmark: ``inspector summary`` vs ``keras.saving.load_model`` + ``model.summary()``.

    python bench/bench_summary.py [--model ResNet50] [--repeat 3]

Builds the model once (``weights=None``), saves it as ``.keras`` and ``.h5`` in a
temporary folder, then runs each contender in a fresh subprocess, side by side,
``--repeat`` times, and reports the median wall time of the whole process
(interpreter start, imports, load, print) and its peak resident memory
(``ru_maxrss`` of the child).  Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

KERAS = """
import sys, keras
m = keras.saving.load_model(sys.argv[1], compile=False)
m.summary()
"""


def measure_isolated(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak MiB) of ``cmd`` run in its own wrapper process, so that
    ``RUSAGE_CHILDREN`` reports this child alone."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(p.returncode, dt, rss)\n"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=ENV, capture_output=True, text=True)
    code, dt, rss = out.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    return float(dt), float(rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ResNet50")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import keras

    tmp = Path(tempfile.mkdtemp(prefix="inspector-bench-"))
    model = getattr(keras.applications, args.model)(weights=None)
    files = {"keras": tmp / f"{args.model}.keras", "h5": tmp / f"{args.model}.h5"}
    for path in files.values():
        model.save(path)
    del model

    rows = []
    for fmt, path in files.items():
        ours = [sys.executable, "-m", "inspector", "summary", str(path)]
        theirs = [sys.executable, "-c", KERAS, str(path)]
        t_ours, t_theirs, m_ours, m_theirs = [], [], [], []
        for _ in range(args.repeat):  # alternate, so both see the same machine state
            dt, rss = measure_isolated(ours)
            t_ours.append(dt)
            m_ours.append(rss)
            dt, rss = measure_isolated(theirs)
            t_theirs.append(dt)
            m_theirs.append(rss)
        size = path.stat().st_size / 2**20
        rows.append((fmt, size, statistics.median(t_ours), max(m_ours),
                     statistics.median(t_theirs), max(m_theirs)))

    print(f"{args.model}, median of {args.repeat} runs, whole process (start-up, imports, load, print):\n")
    print("| file | size | inspector summary | peak RSS | keras load_model + summary | peak RSS | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for fmt, size, t1, m1, t2, m2 in rows:
        print(f"| .{fmt} | {size:.1f} MiB | {t1:.2f} s | {m1:.0f} MiB | {t2:.2f} s | {m2:.0f} MiB | {t2 / t1:.1f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
