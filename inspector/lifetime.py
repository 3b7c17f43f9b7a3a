"""What the program lets go only when it ends, or when the next model is loaded.

The program (``inspector …``, not a library call of :func:`inspector.cli.main`) ends with a hard exit once its
output is flushed (:func:`inspector.cli._end_program`): a large model is millions of objects, and freeing them
one by one when they are dropped costs time for nothing (the graph of a 162,000-node summary 0.17 s, the ONNX
builder's working tables 0.04 s).  :func:`keep_for_the_run` switches that on for the program; from then on
:func:`hold` keeps objects alive until :func:`let_go`, which :func:`inspector.batch.load_graph` calls before each
model is read, so a run over many files holds one model's worth at most, as before.  In library use nothing is
switched on: :func:`hold` keeps nothing and everything is freed as soon as it is dropped.
"""

from __future__ import annotations

_held: list[object] | None = None
"""What is kept until the next :func:`let_go` (``None``: nothing is kept, as in library use)."""


def keep_for_the_run() -> None:
    """From now on, keep what :func:`hold` is given until :func:`let_go` (the program, which ends itself)."""
    global _held
    if _held is None:
        _held = []


def hold(*objects: object) -> None:
    """Keep ``objects`` alive until the next :func:`let_go`, when the program keeps things for the run."""
    if _held is not None:
        _held.extend(objects)


def let_go() -> None:
    """Drop what :func:`hold` kept (before the next model is loaded)."""
    if _held is not None:
        _held.clear()


def held() -> list[object] | None:
    """What is kept now (``None`` when nothing is kept for the run)."""
    return _held
