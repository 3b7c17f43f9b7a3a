"""Names from a model file made safe to print: the one place control characters are neutralised.

A model file chooses its layer, tensor, model and metadata names.  Printed raw, a name
holding a newline starts a line of its own (which GitHub Actions runs as a workflow
command when it starts with ``::``), an ESC or OSC sequence recolours the terminal or
plants a hyperlink, a carriage return overwrites what came before, and a bidi override
(U+202E) shows text in another order than it is stored.  :func:`visible` makes every such
character visible as an escape (``\\x1b``, ``\\n``, ``\\u202e``); :func:`scrub` applies it to
every string of a frozen result (a ``Summary``, lint reports, a model card …) at the
boundary where results enter a text reporter, so single renderers need no care.
:func:`xml_text` keeps what XML 1.0 can hold, :func:`csv_cell` defuses spreadsheet formulas.
"""

from __future__ import annotations

import dataclasses
import re
from itertools import chain
from operator import attrgetter
from typing import Any, Sequence, TypeVar

from .units import is_number

T = TypeVar("T")

UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
                    "\ufffe\uffff\ud800-\udfff]")
"""C0 and C1 controls, DEL, line/paragraph separators, the bidi marks, embeddings, overrides
and isolates (U+061C, U+200E/F, U+202A–202E, U+2066–2069), the BOM, the non-characters
U+FFFE/FFFF and lone surrogates (which no UTF-8 output can hold)."""
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
"""Cell starts a spreadsheet reads as a formula (OWASP's CSV injection list)."""


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, keep: str = "") -> str:
    """``text`` with every control, bidi and line-breaking character shown as an escape; other
    text (including non-Latin scripts) unchanged.  ``keep``: characters left as they are (a
    multi-line block keeps ``"\\n\\t"``).  Returns ``text`` itself when it is clean."""
    if not UNSAFE.search(text):
        return text
    if keep:
        return UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m), text)
    return UNSAFE.sub(_escape, text)


MAX_DEPTH = 100
"""Nesting :func:`scrub` walks; a deeper part (a hostile config's) is replaced by :data:`TOO_DEEP`."""
TOO_DEEP = "(nested too deeply to show)"
_LEAVES = frozenset({int, float, bool, type(None), bytes, complex})
_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _frozen_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of a frozen dataclass whose fields are all ``__init__`` parameters (else ``None``)."""
    if cls not in _FIELDS:
        params = getattr(cls, "__dataclass_params__", None)
        names: tuple[str, ...] | None = None
        if params is not None and params.frozen:
            fs = dataclasses.fields(cls)
            names = tuple(f.name for f in fs) if all(f.init for f in fs) else None
        _FIELDS[cls] = names
    return _FIELDS[cls]


def _walk_items(items: Sequence[Any], memo: dict[int, Any], depth: int) -> list[Any] | None:
    """The scrubbed items of a sequence, item by item, or ``None`` when none changed."""
    out: list[Any] | None = None
    search = UNSAFE.search
    for i, v in enumerate(items):
        cls = type(v)
        if cls is str:  # the common case inline: most strings are clean and come back as they are
            clean = v if not search(v) else visible(v)
        else:
            clean = v if cls in _LEAVES else _scrub(v, memo, depth)
        if clean is not v and out is None:
            out = list(items[:i])
        if out is not None:
            out.append(clean)
    return out


BLOCK = 256
"""Items of a long sequence :func:`scrub` checks at once (:func:`_all_clean`) before walking them."""


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))
_DROP_PRINTABLE = dict.fromkeys(_PRINTABLE_ASCII)
"""A ``str.translate`` table deleting printable ASCII."""


def _clean_text(text: str) -> bool:
    """Does ``text`` hold no :data:`UNSAFE` character?  (ASCII and printable text need no regex.)"""
    if text.isascii():  # then only C0 controls and DEL can be unsafe: delete the rest, nothing may remain
        return not text.encode("ascii").translate(None, _PRINTABLE_ASCII)
    return text.isprintable() or not UNSAFE.search(text)  # every UNSAFE character is unprintable


def clean_lines(text: str, lines: int) -> bool:
    """Does ``text``, ``lines`` lines each ending in a line break, hold no :data:`UNSAFE` character but those
    line breaks (a line break inside a line included)?  A text format that shows each name whole or cut to a
    prefix writes the same text with every name :func:`visible` when this holds: escaping changes a name only
    from its first unsafe character on, which would then show.  Checked on the text as written, not line by
    line: a listing of 162,000 layers is 373,000 lines."""
    if text.isascii():  # only C0 controls and DEL can be unsafe: delete the rest, only the line breaks may remain
        rest = text.translate(_DROP_PRINTABLE)  # (ASCII to ASCII: no copy of the text encoded, as bytes would be)
        return len(rest) == lines == rest.count("\n")
    return text.count("\n") == lines and _clean_text(text.replace("\n", ""))


def _gather(values: Sequence[Any], depth: int, texts: list[str]) -> bool:
    """Collect into ``texts`` every string :func:`_scrub` would look at in ``values`` (at ``depth``), a
    column at a time: tuples flattened (each object once), frozen dataclasses one column per field.
    ``False`` when the walk could change something other than a string, or might (too deep; lists and
    dicts, where the walk's memo of shared and cyclic objects decides)."""
    kinds = set(map(type, values))
    for cls in kinds:
        if cls in _LEAVES:
            continue
        group: Sequence[Any] = values if len(kinds) == 1 else [v for v in values if type(v) is cls]
        if cls is str or (issubclass(cls, str) and depth + 1 <= MAX_DEPTH):  # or a str subclass (an enum)
            texts.extend(group)
        elif depth + 1 > MAX_DEPTH or cls is list or cls is dict:
            return False
        elif cls is tuple:
            unique = dict(zip(map(id, group), group, strict=True)).values()  # shared shapes looked at once
            if not _gather(list(chain.from_iterable(unique)), depth + 1, texts):
                return False
        else:
            names = _frozen_fields(cls)
            for name in names or ():
                if not _gather(list(map(attrgetter(name), group)), depth + 1, texts):
                    return False
    return True


def _all_clean(values: Sequence[Any], depth: int) -> bool:
    """Would :func:`_scrub` return every one of ``values`` (at ``depth``) as it is?  A ``True`` is exact;
    a ``False`` (something to escape, or unsure) only costs the item-by-item walk."""
    texts: list[str] = []
    return _gather(values, depth, texts) and _clean_text("".join(texts))


def _scrub_items(items: Sequence[Any], memo: dict[int, Any], depth: int) -> list[Any] | None:
    """The scrubbed items of a sequence, or ``None`` when none changed.  A long sequence (a summary's
    rows) is checked :data:`BLOCK` items at once; only a block holding something to escape is walked."""
    if len(items) <= BLOCK:
        return _walk_items(items, memo, depth)
    out: list[Any] | None = None
    for start in range(0, len(items), BLOCK):
        block = items[start:start + BLOCK]
        changed = None if _all_clean(block, depth) else _walk_items(block, memo, depth)
        if changed is not None and out is None:
            out = list(items[:start])
        if out is not None:
            out.extend(block if changed is None else changed)
    return out


def _scrub_fields(obj: Any, memo: dict[int, Any], depth: int) -> Any:
    """A frozen dataclass with its fields scrubbed (a copy only if one changed); anything else as it is."""
    names = _frozen_fields(type(obj))
    if names is None:
        return obj
    changes = {}
    for name in names:
        value = getattr(obj, name)
        cls = type(value)
        if cls in _LEAVES or (cls is str and not UNSAFE.search(value)):
            continue
        clean = _scrub(value, memo, depth)
        if clean is not value:
            changes[name] = clean
    return dataclasses.replace(obj, **changes) if changes else obj


def _scrub(obj: Any, memo: dict[int, Any], depth: int) -> Any:
    cls = type(obj)
    if cls is str:
        return visible(obj)
    if cls in _LEAVES:
        return obj
    depth += 1
    if depth > MAX_DEPTH:  # only a hostile config nests this deep: not walked, not shown
        return TOO_DEEP
    if cls is tuple:  # immutable: no cycle runs through a tuple alone, so no bookkeeping
        items = _scrub_items(obj, memo, depth)
        return obj if items is None else tuple(items)
    key = id(obj)
    if key in memo:
        return memo[key]
    memo[key] = obj  # a cycle resolves to the original object
    result: Any = obj
    if cls is list:
        items = _scrub_items(obj, memo, depth)
        if items is not None:
            result = cls(items)
    elif cls is dict:
        pairs = [(_scrub(k, memo, depth), _scrub(v, memo, depth)) for k, v in obj.items()]
        if any(a is not k or b is not v for (a, b), (k, v) in zip(pairs, obj.items(), strict=True)):
            result = dict(pairs)
    elif isinstance(obj, str):  # a str subclass (an enum such as Severity): changed only if unsafe
        result = obj if not UNSAFE.search(obj) else visible(str(obj))
    else:
        result = _scrub_fields(obj, memo, depth)
    memo[key] = result
    return result


def scrub(obj: T) -> T:
    """``obj`` with :func:`visible` applied to every string inside it: through tuples, lists,
    dicts and frozen dataclasses (copied only where something changed, so a clean result comes
    back as the same object).  Mutable objects (a ``ModelGraph``, a ``Layer``) are left as they are."""
    result: T = _scrub(obj, {}, 0)
    return result


def json_text(text: str) -> str:
    """A JSON document written with ``ensure_ascii=False`` with the :data:`UNSAFE` characters
    (which can only stand inside its strings) as ``\\uXXXX`` escapes: the same data, nothing raw."""
    if not UNSAFE.search(text):
        return text
    # Raw line breaks and tabs can only be the layout (json.dumps escapes them inside strings).
    return UNSAFE.sub(lambda m: m.group() if m.group() in "\n\t\r" else f"\\u{ord(m.group()):04x}", text)


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")


def xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold (and C1 controls, DEL) shown as escapes."""
    return _XML_BAD.sub(_escape, text) if _XML_BAD.search(text) else text


def csv_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab
    or a line break gets a leading ``'`` (OWASP), unless it is a plain number such as ``-1.5``."""
    if text.startswith(_FORMULA_START) and not is_number(text):
        return "'" + text
    return text


def csv_row(cells: Sequence[object]) -> list[object]:
    """A CSV row with :func:`csv_cell` applied to its text cells (numbers stay numbers)."""
    return [csv_cell(c) if isinstance(c, str) else c for c in cells]

