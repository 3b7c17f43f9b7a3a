"""ONNX shape inference, isolated.

ONNX shape inference is C++ that trusts the model: a one-element shape operand
holding 10**8, or a 1-D tensor declared (or inferred) 10**8 long, makes it build
shapes of that rank or length — gigabytes in seconds, ``std::bad_alloc``, and a
later call in the same process can crash it.  On Linux it therefore runs in a
helper process (:class:`inspector.isolation.Helper`) forked once (before the first
model is parsed, so it holds little memory) and reused: each request gets a memory
and a time budget; a helper that ran out of memory, crashed or timed out is
replaced.  Elsewhere, or with ``ISOLATE_INFERENCE = False``, inference runs
in-process.
"""

from __future__ import annotations

from typing import Any

from ... import isolation
from .wire import PROTOBUF_MAX_BYTES

INFER_SECONDS = 30
"""Wall-clock budget of one shape-inference run, plus one second per MiB of graph structure."""
INFER_MEMORY = 1 << 30
"""Memory (address space) one shape-inference run may add, plus 16 bytes per byte of graph structure."""
_INFER_GROWTH = 8
"""An inferred model more than this many times the input (plus 16 MiB) is refused:
shapes of absurd rank, not information."""
INFER_TIMEOUT = "stopped after"
"""How the reason of a shape inference that ran out of time starts."""
ISOLATE_INFERENCE = isolation.ISOLATE
"""Run shape inference in a forked helper process (set ``False`` in a program that must not fork)."""


def _prepare() -> isolation.Serve:
    """In the parent, before the helper is forked: onnx's schema registry initialized,
    and the function the helper serves (model bytes, data propagation → inferred model bytes)."""
    from . import lite  # onnx's C++ extension without ``import onnx`` (ml_dtypes): see lite.py

    lite.get_schema("Relu", 1, "")  # onnx's schema registry is initialized before the fork

    def serve_c(data: bytes, prop: int) -> bytes:
        return lite.infer_shapes_bytes(data, bool(prop))

    return serve_c


_HELPER = isolation.Helper(_prepare)


def prepare() -> None:
    """Fork the helper now, while this process holds no model yet (when isolation is on)."""
    if ISOLATE_INFERENCE:
        _HELPER.start()


def run_shape_inference(model: Any, *, data_prop: bool) -> Any:
    """``onnx.shape_inference.infer_shapes(model)``, or why it failed (a string)."""
    from . import lite

    if ISOLATE_INFERENCE:
        size = model.ByteSize()
        outcome = _HELPER.call(model.SerializeToString(), flag=int(data_prop),
                               seconds=INFER_SECONDS + size // (1 << 20), memory=INFER_MEMORY + 16 * size)
        if isinstance(outcome, isolation.Failure):
            return _reason(outcome)
        if len(outcome) > min(_INFER_GROWTH * size + (16 << 20), PROTOBUF_MAX_BYTES):
            return (f"it produced {len(outcome):,} bytes of shapes for a {size:,}-byte graph, "
                    "which declares tensors of absurd rank")
        inferred = lite.model_proto()
        inferred.ParseFromString(outcome)
        return inferred
    from onnx import shape_inference

    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=data_prop)
    except MemoryError:
        return "it ran out of memory"
    except Exception as exc:  # noqa: BLE001 - onnx raises InferenceError, ValueError, RuntimeError …
        return isolation.one_line(exc)


def _reason(failure: isolation.Failure) -> str:
    """Why the helper gave no inferred model, as the note and metadata say it."""
    if failure.kind == "out-of-memory":
        return "it ran out of memory"
    if failure.kind == "timeout":
        return f"{INFER_TIMEOUT} {failure.seconds} s"
    if failure.kind == "crash":
        return f"onnx's shape inference crashed (signal {failure.signal_name})"
    if failure.kind == "error":
        return failure.message
    return "onnx's shape inference ended without an answer"
