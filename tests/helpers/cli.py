"""Run the ``inspector`` command line in-process and capture what it prints.

The tests use it through the ``cli`` fixture (``tests/conftest.py``); harnesses that run
outside a test (the fuzzer's loop) call :func:`run_cli` directly.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from typing import NamedTuple


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


def one_error_line(err: str, path: object) -> str:
    """Assert that ``err`` is one ``inspector: error: <path>: …`` line and no traceback; return the line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"inspector: error: {path}: "), lines[0]
    assert "Traceback" not in err and "RecursionError" not in err
    return lines[0]
