"""How long does ``inspector report`` take on ResNet50?

    python bench/bench_report.py                  # builds ResNet50 (weights=None) once, then measures
    python bench/bench_report.py path/to/m.keras  # any model file
    python bench/bench_report.py --repeat 5

Target (issue 7): the HTML report of ResNet50 (without probe) is written in at
most 5 s.  Each measurement is the wall time of a fresh ``python -m inspector
report MODEL -o FILE`` subprocess (interpreter start, imports, loading, lint with
every weight read, matplotlib charts and writing included), after one unmeasured
warm-up run; the best and the median of ``--repeat`` runs are printed for:

* the HTML report (the target);
* the Markdown report with PNG charts beside it;
* the HTML report with ``--no-charts`` (what matplotlib costs, by difference);
* the HTML report with ``--no-lint`` (what reading and checking every weight costs).

``--browser`` also times headless Chromium opening the HTML report and drawing its first screen (a fresh
``chromium --headless --screenshot`` per run): what a reader waits for.  A graph of 162,000 layers, say
``python bench/bench_report.py /tmp/inspector-extremes/nodes-162k.onnx --repeat 1 --browser`` (the model
``bench_extremes.py`` writes), is where the page's size tells.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _models import build_resnet50  # noqa: E402  (bench/ is on sys.path when run as a script)

TARGET_S = 5.0


def wall(argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", INSPECTOR_NO_CACHE="1")  # no cache hit
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "inspector", *argv], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"inspector {' '.join(argv)} failed ({proc.returncode}): {proc.stderr}")
    return seconds


def browser_open(page: Path, repeat: int) -> None:
    """Print how long headless Chromium takes to open ``page`` and draw its first screen (median of ``repeat``)."""
    chromium = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                     if (found := shutil.which(name))), None)
    if chromium is None:
        print("  Chromium opening the HTML report: no Chromium on PATH")
        return
    times = []
    with tempfile.TemporaryDirectory(prefix="inspector-bench-chromium-") as profile:
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            f"--user-data-dir={profile}", f"--screenshot={Path(profile) / 'shot.png'}",
                            "--window-size=1280,900", page.resolve().as_uri()],
                           capture_output=True, check=True, timeout=1800)
            times.append(time.perf_counter() - start)
    print(f"  {'Chromium opens the HTML report':<34} best {min(times):6.2f} s   median "
          f"{statistics.median(times):6.2f} s   ({repeat} runs; {page.stat().st_size / 2**20:.1f} MiB page)")


def measure(label: str, argv: list[str], repeat: int) -> tuple[float, float]:
    wall(argv)  # warm-up: bytecode, page cache, matplotlib's font cache
    times = [wall(argv) for _ in range(repeat)]
    best, median = min(times), statistics.median(times)
    print(f"  {label:<34} best {best:6.2f} s   median {median:6.2f} s   ({repeat} runs)")
    return best, median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", help="model file (default: ResNet50 weights=None, built once)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time headless Chromium opening the HTML report")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="inspector-bench-report-"))
    try:
        if args.model:
            model = Path(args.model)
        else:
            print("building keras.applications.ResNet50(weights=None) …", file=sys.stderr)
            model = build_resnet50(work)
        html, md = work / "report.html", work / "report.md"
        print(f"model: {model} ({model.stat().st_size / 2**20:.1f} MiB)")
        best, median = measure("HTML report", ["report", str(model), "-o", str(html), "--isolated"], args.repeat)
        measure("Markdown report (+ PNG charts)", ["report", str(model), "-o", str(md), "--isolated"], args.repeat)
        measure("HTML report, --no-charts", ["report", str(model), "-o", str(html), "--isolated", "--no-charts"],
                args.repeat)
        measure("HTML report, --no-lint", ["report", str(model), "-o", str(html), "--isolated", "--no-lint"],
                args.repeat)
        wall(["report", str(model), "-o", str(html), "--isolated"])
        if args.browser:
            browser_open(html, args.repeat)
        charts = len(list((work / "report_files").glob("*.png")))
        print(f"  HTML size {html.stat().st_size / 1024:.0f} KiB; Markdown {md.stat().st_size / 1024:.0f} KiB "
              f"+ {charts} PNG charts")
        verdict = "meets" if median <= TARGET_S else "MISSES"
        print(f"target: HTML report in <= {TARGET_S:.0f} s: {verdict} it (median {median:.2f} s)")
        return 0 if median <= TARGET_S else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
