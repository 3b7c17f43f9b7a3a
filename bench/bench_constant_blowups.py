"""Peak memory and time of ``inspector`` on the two small hostile ONNX files of issue 13 item 5.

    python bench/bench_constant_blowups.py              # builds the files in a temporary folder, then measures
    python bench/bench_constant_blowups.py --inspector /path/to/other/checkout

* ``fill``: a 161-byte-class model whose ``ConstantOfShape`` generates a ``[2^28]`` float32 fill (1 GiB if
  materialised) fed to ``Add`` at a data position; measured with ``lint`` (weight statistics) and ``summary``.
* ``concat``: one 4,096-element int64 constant concatenated 65,536 times (about 197 KB of graph; 2 GiB if
  the constant evaluator computed it); measured with ``summary`` and ``lint``.
* ``fills``: 100,000 ``ConstantOfShape`` nodes of 4,096 elements each (3.8 MB; 1.6 GiB if every small fill
  were folded), concatenated: the per-file fold budget (``FOLD_ELEMENTS``) stops folding.

Each run is a fresh ``python -m inspector`` subprocess; memory is its peak resident set (``os.wait4``, the
shape-inference helper included), time is wall-clock.  The target of issue 13 is < 512 MiB and < 30 s.
Exits 0: this is a measurement, not a gate.
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



def write(function: str, path: Path) -> Path:
    """Build a file with ``tests.helpers.constant_blowups.FUNCTION`` in a subprocess: a child forked
    from a process that built a big graph would start with that process's resident set."""
    code = ("import sys; from pathlib import Path; from tests.helpers import constant_blowups as c; "
            f"c.{function}(Path(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, check=True)
    return path


def measure(checkout: Path, *args: str) -> tuple[float, float, int]:
    """(seconds, peak MiB, exit code) of ``python -m inspector ARGS`` with ``checkout`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "inspector", *args], env=env, cwd=tempfile.gettempdir(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # not cwd: it comes first
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inspector", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fill = write("write_fill_blowup", Path(tmp) / "fill.onnx")
        concat = write("write_concat_blowup", Path(tmp) / "concat.onnx")
        fills = write("write_many_fills", Path(tmp) / "fills.onnx")
        print(f"{'case':<10} {'bytes':>9} {'command':<8} {'seconds':>8} {'peak MiB':>9} {'exit':>5}")
        for name, path in (("fill", fill), ("concat", concat), ("fills", fills)):
            for command in ("lint", "summary"):
                seconds, peak, code = measure(args.inspector, command, str(path))
                print(f"{name:<10} {path.stat().st_size:>9,} {command:<8} {seconds:>8.1f} {peak:>9.0f} {code:>5}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
