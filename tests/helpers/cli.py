"""Run the ``inspector`` command line in-process and capture what it prints.

The tests use it through the ``cli`` fixture (``tests/conftest.py``); harnesses that run
outside a test (the fuzzer's loop) call :func:`run_cli` directly.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

ROOT = Path(__file__).resolve().parents[2]


class CliResult(NamedTuple):
    """What one command line returned: exit code, standard output, standard error
    (a named tuple: ``code, out, err = cli(...)`` or ``cli(...).out``)."""

    code: int
    out: str
    err: str


def run_cli(*argv: object) -> CliResult:
    """``inspector.cli.main(argv)`` with stdout and stderr captured; arguments may be paths.

    An argparse exit (``SystemExit``: usage error, ``--help``, ``--version``) becomes its exit
    code, as a shell would see it."""
    from inspector.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return CliResult(code, out.getvalue(), err.getvalue())


class FreshRun(NamedTuple):
    """A command line run in a fresh interpreter: exit code, stdout, stderr, and which of the
    watched modules it imported (sorted)."""

    code: int
    out: str
    err: str
    imported: list[str]


_FRESH = """
import json, sys
from inspector.cli import main
watch = json.loads(sys.argv[1])
code = main(sys.argv[2:])
sys.stdout.flush()
print(json.dumps({"code": code, "imported": sorted(m for m in watch if m in sys.modules)}), file=sys.stderr)
"""


def run_fresh(*argv: object, watch: Iterable[str], cwd: Path, env: Mapping[str, str] | None = None) -> FreshRun:
    """``inspector ARGV`` in a new Python process (this checkout first on ``PYTHONPATH``, ``env``
    added to the environment): what a CI step or a ``--jobs`` worker pays for at start-up."""
    done = subprocess.run([sys.executable, "-c", _FRESH, json.dumps(list(watch)), *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    *lines, last = done.stderr.rstrip("\n").split("\n")
    report = json.loads(last)
    return FreshRun(report["code"], done.stdout, "\n".join(lines), report["imported"])


def one_error_line(err: str, path: object) -> str:
    """Assert that ``err`` is one ``inspector: error: <path>: …`` line and no traceback; return the line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"inspector: error: {path}: "), lines[0]
    assert "Traceback" not in err and "RecursionError" not in err
    return lines[0]
