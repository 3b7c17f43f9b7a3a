"""Time and peak memory of inspector on small hostile files of issue 13 (items 4 and 5).

    python bench/bench_hostile_logs.py            # every case, median of 3 runs
    python bench/bench_hostile_logs.py --repeat 1 --cases tensorboard-2^28

Cases:

* ``tensorboard-2^28``: ``inspector history`` of a 262-byte TensorBoard event file whose
  ``epoch_loss`` tensor declares ``[2**28]`` floats and stores one value (target: < 512 MiB, < 30 s;
  before the fix 1.6 GiB);
* ``tensorboard-2^31``: the same with ``[2**31]`` (8 GiB if it were expanded);
* ``onnxtxt-5000``: ``inspector summary`` of an ``.onnxtxt`` model whose ``If`` branches nest 5,000 deep
  next to a small valid one (before the fix: a segmentation fault, exit 139).

Every run is a fresh subprocess; time is wall-clock, memory the peak resident set of the process and the
children it waited for (``os.wait4``).  The files are built by ``tests/helpers/hostile.py`` in a temporary
folder.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import hostile as H  # noqa: E402 - the tests' builders of hostile files


def build(folder: Path) -> dict[str, list[str]]:
    """``case -> inspector arguments``, the files made in ``folder``."""
    cases = {}
    for power in (28, 31):
        events = H.tensorboard_events(folder / f"tb{power}" / "events.out.tfevents.1.host",
                                      [("epoch_loss", 0, [], [1.0]), ("epoch_loss", 1, [1 << power], [0.5])])
        cases[f"tensorboard-2^{power}"] = ["history", str(events)]
    deep, good = folder / "deep.onnxtxt", folder / "good.onnxtxt"
    deep.write_text(H.nested_onnxtxt(5000))
    good.write_text(H.nested_onnxtxt(3))
    cases["onnxtxt-5000"] = ["summary", str(deep), str(good)]
    return cases


def measure(args: list[str]) -> tuple[float, int, int]:
    """(seconds, peak RSS in bytes, exit code) of ``python -m inspector ARGS``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inspector", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss * 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="inspector-bench-hostile-") as tmp:
        cases = build(Path(tmp))
        chosen = [c for c in ns.cases.split(",") if c] or list(cases)
        print(f"{'case':<20} {'size':>10} {'seconds':>8} {'peak MiB':>9} {'exit':>5}")
        for name in chosen:
            runs = [measure(cases[name]) for _ in range(ns.repeat)]
            size = sum(Path(a).stat().st_size for a in cases[name][1:])
            print(f"{name:<20} {size:>10,} {statistics.median(r[0] for r in runs):>8.2f} "
                  f"{statistics.median(r[1] for r in runs) / 2**20:>9.0f} {runs[-1][2]:>5}")


if __name__ == "__main__":
    main()
