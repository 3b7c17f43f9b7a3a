"""Polynomials in a model's symbolic dims, for MACs reported as a formula.

A :class:`Poly` is a sum of monomials, each an integer coefficient times a product of
symbol powers (``4096·seq + 32·seq²``).  MACs of layers whose shapes hold symbolic dims
(ONNX ``dim_param`` names such as ``seq``) are such polynomials: products of dims and
sums over layers.  :func:`parse_dim` reads a symbolic dim (``seq``, or an exporter's
expression such as ``batch*seq`` or ``past_seq + 1``); a dim it cannot read (onnx's fresh
``unk__N``, an unknown ``None``) is anonymous and has no formula.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Mapping, Union

__all__ = ["Monomial", "Poly", "parse_dim"]

Monomial = tuple[tuple[str, int], ...]
"""Symbol powers, sorted by symbol: ``(("batch", 1), ("seq", 2))``; ``()`` is the constant term."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_EXACT_BELOW = 1_000_000
"""Coefficients below this print in full; larger ones with three significant digits (``2.1e9``)."""


def _mul_monomials(a: Monomial, b: Monomial) -> Monomial:
    powers = dict(a)
    for name, p in b:
        powers[name] = powers.get(name, 0) + p
    return tuple(sorted(powers.items()))


@dataclass(frozen=True, slots=True)
class Poly:
    """An integer polynomial in named symbols; immutable, with ``+`` and ``*`` (also with ints)."""

    terms: tuple[tuple[Monomial, int], ...] = ()
    """(monomial, coefficient) pairs in :meth:`order`, no zero coefficients."""

    @staticmethod
    def _make(acc: Mapping[Monomial, int]) -> Poly:
        return Poly(tuple(sorted(((m, c) for m, c in acc.items() if c), key=lambda t: Poly.order(t[0]))))

    @staticmethod
    def order(monomial: Monomial) -> tuple[int, Monomial]:
        """The sort key of a monomial: total degree, then symbols and powers (stable)."""
        return sum(p for _, p in monomial), monomial

    @staticmethod
    def of(value: int | Poly) -> Poly:
        """``value`` as a polynomial."""
        return value if isinstance(value, Poly) else Poly._make({(): int(value)})

    @staticmethod
    def symbol(name: str) -> Poly:
        """The polynomial ``name``."""
        return Poly(((((name, 1),), 1),))

    def __add__(self, other: int | Poly) -> Poly:
        if isinstance(other, int) and not other:
            return self
        acc = dict(self.terms)
        for m, c in Poly.of(other).terms:
            acc[m] = acc.get(m, 0) + c
        return Poly._make(acc)

    __radd__ = __add__

    def __mul__(self, other: int | Poly) -> Poly:
        if isinstance(other, int):  # the order of the monomials stays
            return Poly(tuple((m, c * other) for m, c in self.terms)) if other else Poly()
        acc: dict[Monomial, int] = {}
        for ma, ca in self.terms:
            for mb, cb in Poly.of(other).terms:
                m = _mul_monomials(ma, mb)
                acc[m] = acc.get(m, 0) + ca * cb
        return Poly._make(acc)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols the polynomial uses, sorted."""
        return tuple(sorted({name for m, _ in self.terms for name, _ in m}))

    @property
    def is_constant(self) -> bool:
        return all(not m for m, _ in self.terms)

    def constant(self) -> int:
        """The value of a constant polynomial (``ValueError`` when it has symbols)."""
        if not self.is_constant:
            raise ValueError(f"not a constant: {self.text()}")
        return self.terms[0][1] if self.terms else 0

    def substitute(self, values: Mapping[str, int]) -> Poly:
        """The polynomial with the symbols in ``values`` replaced by those numbers."""
        acc: dict[Monomial, int] = {}
        for m, c in self.terms:
            rest = []
            for name, p in m:
                if name in values:
                    c *= values[name] ** p
                else:
                    rest.append((name, p))
            acc[tuple(rest)] = acc.get(tuple(rest), 0) + c
        return Poly._make(acc)

    def evaluate(self, values: Mapping[str, int]) -> int:
        """The number for these symbol values (``ValueError`` naming a symbol left unbound)."""
        return self.substitute(values).constant()

    def text(self) -> str:
        """``4096·seq + 32·seq²`` (large coefficients as ``2.1e9``)."""
        if not self.terms:
            return "0"
        parts = []
        for m, c in self.terms:
            factors = [name + (str(p).translate(_SUPERSCRIPT) if p > 1 else "") for name, p in m]
            if c != 1 or not factors:
                factors.insert(0, _coefficient(c))
            parts.append("·".join(factors))
        return " + ".join(parts).replace("+ -", "- ")

    def as_dict(self) -> dict[str, Any]:
        """``{"monomials": [{"coefficient": int, "powers": {symbol: power}}, …], "text": …}``."""
        return {"monomials": [{"coefficient": c, "powers": dict(m)} for m, c in self.terms], "text": self.text()}


def _coefficient(c: int) -> str:
    if abs(c) < _EXACT_BELOW:
        return str(c)
    mantissa, _, exponent = f"{c:.3g}".partition("e")
    return f"{mantissa}e{int(exponent)}"


Value = Union[int, Poly]
"""A MAC count: a number, or a polynomial in symbolic dims."""


@functools.lru_cache(maxsize=4096)
def _parse(dim: str) -> Poly | None:
    total: Poly = Poly()
    for term in dim.split("+"):
        product: Poly = Poly.of(1)
        for factor in term.split("*"):
            factor = factor.strip()
            if factor.isascii() and factor.isdigit():
                product = product * int(factor)
            elif _NAME.match(factor):
                product = product * Poly.symbol(factor)
            else:
                return None
        total = total + product
    return total


def parse_dim(dim: object) -> Poly | None:
    """A symbolic dim as a polynomial: a name (``seq``) or a sum of products of names and
    whole numbers (``batch*seq``, ``past_seq + 1``); ``None`` for anything else, and for
    onnx's anonymous ``unk__N`` symbols."""
    if not isinstance(dim, str) or not dim or len(dim) > 200 or dim.startswith("unk__"):
        return None
    return _parse(dim)
