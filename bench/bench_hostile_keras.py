"""Peak memory and time of ``inspector`` on the small hostile HDF5 and zip files of issue 13 item 5.

    python bench/bench_hostile_keras.py                  # every case, once each
    python bench/bench_hostile_keras.py --inspector /path/to/other/checkout

Cases (built in a temporary folder by the builders of ``tests/helpers/hostile.py``):

* ``vlen-layer-names``: a 1.2 MB legacy ``.h5`` whose ``layer_names`` lists 1,500 variable-length
  strings that all point at one 1 MiB string — ``inspector summary``;
* ``string-kernel``: the seed ``.h5`` whose first kernel is a variable-length string dataset with a
  1 MiB fill value — ``inspector lint``;
* ``lying-compress-size``: a 300 KB ``.keras`` whose deflated weights member expands 300 MiB while the
  directory claims 6 MiB — ``inspector summary``; the temporary folder is checked to stay empty.

Each command is a fresh subprocess; time is wall-clock, memory the peak resident set of the process
and the children it waited for (``os.wait4``: the HDF5 metadata child is included).  The targets are
< 512 MiB and < 30 s each.
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
sys.path.insert(0, str(ROOT / "tests"))

from helpers import hostile as H  # noqa: E402 - the test builders, found through the path above


def measure(argv: list[str], *, env: dict[str, str]) -> tuple[float, float, int, str]:
    """(seconds, peak MiB, exit code, last stderr line) of one command."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), (lines or [""])[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inspector", type=Path, default=ROOT, help="the inspector checkout to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scratch = folder / "scratch"
        scratch.mkdir()
        env = dict(os.environ, PYTHONPATH=str(args.inspector), TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(scratch))
        cases = {
            "vlen-layer-names": ("summary", H.h5_with_shared_vlen_strings(folder / "names.h5")),
            "string-kernel": ("lint", H.h5_with_string_kernel(folder / "strings.h5")),
            "lying-compress-size": ("summary", H.keras_with_lying_compress_size(folder / "bomb.keras")),
        }
        print(f"{'case':<22} {'command':<8} {'file':>10} {'seconds':>8} {'peak MiB':>9} {'exit':>4}  last stderr line")
        for name, (command, path) in cases.items():
            seconds, peak, code, line = measure([sys.executable, "-m", "inspector", command, str(path)], env=env)
            left = sum(1 for _ in scratch.rglob("*"))
            print(f"{name:<22} {command:<8} {path.stat().st_size:>10,} {seconds:>8.1f} {peak:>9.0f} {code:>4}  "
                  f"{line[:110]}" + (f"  [{left} temporary file(s) left]" if left else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
