"""Where the time of one ``inspector summary`` goes: a wall-clock timeline of both processes.

    python bench/trace_summary.py MODEL.onnx                  # /tmp/inspector-extremes/nodes-162k.onnx, say
    python bench/trace_summary.py MODEL.onnx --inspector TREE  # another checkout, side by side
    python bench/trace_summary.py MODEL.onnx --runs 3          # the last of 3 runs (the first ones warm the caches)

The command runs as the program does (``inspector.cli.main()``, which ends with a hard exit), in a fresh process,
with a stamp written to standard error on entry to and exit from each step named in :data:`STEPS`: seconds since
the process started, which process (``main``, or ``helper``: the forked shape-inference helper, whose steps are
stamped too, on the same clock), and that process's CPU time and minor page faults so far.  The listing itself
goes to ``/dev/null``.  The README's "where the time goes" paragraph is read off this timeline; a step that a
later version renames or removes is left out and named at the end, so the script keeps working.

The stamps cost a few microseconds each (a few dozen per run): the totals are those of an untraced run within
noise, but compare trees with ``bench_extremes.py``, which measures untraced runs side by side.

Below the timeline, the two lanes are read off it (:func:`lanes`): when the helper's answer was ready, when the
main process's build was, and the work after both, which needs the inferred types (giving them to the graph, the
summary, the listing).  The run cannot end before the answer plus that work, however fast the build is.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STEPS: tuple[tuple[str, str], ...] = (
    ("inspector.isolation", "Helper._ensure"),
    ("inspector.isolation", "Helper.send"),
    ("inspector.isolation", "_take_shared"),
    ("inspector.loaders.onnx.read", "_load_binary"),
    ("inspector.loaders.onnx.wire", "strip_file"),
    ("inspector.loaders.onnx.lite", "skeleton"),
    ("inspector.loaders.onnx.lite", "infer_shapes_bytes"),
    ("inspector.loaders.onnx.inference", "_declared_answer"),
    ("inspector.loaders.onnx.inference", "start_shape_inference"),
    ("inspector.loaders.onnx.inference", "data_prop_hazard"),
    ("inspector.loaders.onnx.inference", "finish"),
    ("inspector.loaders.onnx.builder", "Builder.build"),
    ("inspector.loaders.onnx.builder", "Builder._construct"),
    ("inspector.loaders.onnx.builder", "Builder._stored_constants"),
    ("inspector.loaders.onnx.builder", "Builder._node_layers"),
    ("inspector.loaders.onnx.retype", "inferred_types"),
    ("inspector.loaders.onnx.retype", "apply"),
    ("inspector.analysis.summary", "summarize"),
    ("inspector.reporters.summary", "render"),
    ("inspector.commands._options", "write_output"),
    ("inspector.cli", "_end_program"),
)
"""(module, function or ``Class.method``) of each step stamped."""

# Runs in the traced process: wraps each step, then runs the command as the program.
_TRACED = r'''
import functools, importlib, os, resource, sys, time
T0 = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in the forked helper
MAIN = os.getpid()
def stamp(text):
    use = resource.getrusage(resource.RUSAGE_SELF)
    who = "main" if os.getpid() == MAIN else "helper"
    os.write(2, (f"@ {time.perf_counter() - T0:7.3f} {who:6} cpu {use.ru_utime + use.ru_stime:6.2f} s "
                 f"faults {use.ru_minflt:7d}  {text}\n").encode())
missing = []
for module, name in STEPS:
    try:
        owner = importlib.import_module(module)
        *outer, attr = name.split(".")
        for part in outer:
            owner = getattr(owner, part)
        original = getattr(owner, attr)
    except (ImportError, AttributeError):
        missing.append(f"{module}:{name}")
        continue
    def wrapped(*args, __f=original, __n=name, **kwargs):
        stamp(f"> {__n}")
        try:
            return __f(*args, **kwargs)
        finally:
            stamp(f"< {__n}")
    setattr(owner, attr, functools.wraps(original)(wrapped))
if missing:
    os.write(2, ("@ missing " + " ".join(missing) + "\n").encode())
from inspector.cli import main
sys.argv = ["inspector", "summary", MODEL]
stamp("start of the command")
main()
'''


def trace(model: Path, tree: Path) -> list[str]:
    """The stamps of one traced ``inspector summary model`` run with the checkout ``tree``."""
    code = f"STEPS = {STEPS!r}\nMODEL = {str(model)!r}\n{_TRACED}"
    env = {**os.environ, "PYTHONPATH": str(tree), "INSPECTOR_NO_CACHE": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "inspector-trace-pycache"))
    with open(os.devnull, "w") as sink:
        done = subprocess.run([sys.executable, "-c", code], stdout=sink, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=600)
    lines = [line[2:] for line in done.stderr.splitlines() if line.startswith("@ ")]
    if done.returncode != 0:
        lines.append(f"(exit code {done.returncode}: {done.stderr.strip().splitlines()[-1:] or ''})")
    return sorted(lines, key=_seconds)


def _first(lines: list[str], who: str, text: str) -> float | None:
    """When ``who`` (``main`` or ``helper``) first wrote the stamp ``text``."""
    for line in lines:
        parts = line.split(maxsplit=7)
        if len(parts) == 8 and parts[1] == who and parts[7] == text:
            return float(parts[0])
    return None


def lanes(lines: list[str]) -> list[str]:
    """The two lanes of a traced run: the helper's answer, the main process's build, and the work after both
    (empty when the run had no helper answer, e.g. inference ran in the main process)."""
    answer = _first(lines, "helper", "< _declared_answer")
    built = _first(lines, "main", "< Builder._construct")
    end = _first(lines, "main", "> _end_program")
    if answer is None or built is None or end is None:
        return []
    after = end - max(answer, built)
    return [f"lanes: the helper's answer ready at {answer:.3f} s, the main process's build at {built:.3f} s "
            f"({'the build' if built > answer else 'the answer'} is later, by {abs(built - answer):.3f} s)",
            f"after both: {after:.3f} s of work that needs the inferred types, to the end at {end:.3f} s",
            f"so with a build that took no time the run would still end at {answer + after:.3f} s"]


def _seconds(line: str) -> float:
    """When a stamp was written (lines that are not stamps go last)."""
    try:
        return float(line.split()[0])
    except (IndexError, ValueError):
        return float("inf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--inspector", type=Path, default=ROOT, help="the checkout to trace (default: this one)")
    ap.add_argument("--runs", type=int, default=2, help="runs; the last one is printed (default 2)")
    args = ap.parse_args()
    lines: list[str] = []
    for _ in range(max(1, args.runs)):
        lines = trace(args.model.resolve(), args.inspector.resolve())
    print(f"inspector summary {args.model} ({args.inspector}); load average {os.getloadavg()[0]:.2f}")
    print("\n".join(lines + lanes(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
