"""The total-MACs line of the summary tables: a number, or a formula in the model's symbolic dims."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..analysis.summary import Summary, SummaryRow
from ..units import number

if TYPE_CHECKING:  # pragma: no cover
    from ..analysis.symbolic import Poly

__all__ = ["FORMULA_NOTE", "formula_note", "layer_macs", "macs_cell", "total_macs"]

FORMULA_NOTE = "formula per sample; bind with --dim"
"""What follows a MACs formula: per sample (batch dims count 1), and how to get a number."""


def total_macs(summary: Summary) -> str:
    """What follows ``Total MACs:``: the number (``(lower bound: …)`` when layers are unknown), or,
    when symbolic dims leave layers unknown, the formula in those dims."""
    formula = summary.macs_formula
    if formula is None:
        suffix = "" if summary.macs_complete else " (lower bound: some layers unknown)"
        return f"{number(summary.macs_total)}{suffix}"
    return f"{formula.text()} ({formula_note(summary)})"


def formula_note(summary: Summary) -> str:
    """What a MACs formula is: per sample, bind with --dim, and a lower bound when layers are unknown."""
    return FORMULA_NOTE if summary.macs_formula_complete else f"lower bound: some layers unknown; {FORMULA_NOTE}"


def layer_macs(row: SummaryRow, show: Callable[[int], str] = number) -> str:
    """A layer's MACs cell: the number (``show`` writes it), the formula when symbolic dims make
    the layer's MACs one (``32768·seq + 128·seq²``), else ``?``."""
    return macs_cell(row.macs, row.macs_formula, show)


def macs_cell(macs: int | None, formula: Poly | None, show: Callable[[int], str] = number) -> str:
    """:func:`layer_macs` of a row's two MACs fields (for a reporter reading a summary's columns)."""
    if macs is not None:
        return show(macs)
    return "?" if formula is None else formula.text()
