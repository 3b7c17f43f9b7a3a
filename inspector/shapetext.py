"""How shapes read in every text format: ``(None, 112, 112, 64)`` as Python prints a tuple,
with symbolic ONNX dimensions shown by name and unknown shapes as ``?``.  Shared by the reporters and
the analyses that describe shapes (diagram, graph facts, model card, diff)."""

from __future__ import annotations

from typing import Sequence

from .ir import Shape


def format_shape(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    dims = ["None" if d is None else str(d) for d in shape]
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(dims) + ")"


def format_output(shapes: Sequence[Shape | None], *, as_list: bool = False, multiple: bool = False) -> str:
    """One cell of the Output Shape column.

    A single output prints as its tuple; several outputs (or an input layer, which
    Keras 2 prints as a list of one tuple) as a list; calls of a shared layer with
    different shapes as ``multiple``; no known output as ``?``.
    """
    if multiple:
        return "multiple"
    if not shapes:
        return "?"
    if len(shapes) == 1 and not as_list:
        return format_shape(shapes[0])
    return "[" + ", ".join(format_shape(s) for s in shapes) + "]"


def shape_json(shape: Shape | None) -> list[int | str | None] | None:
    return None if shape is None else list(shape)
