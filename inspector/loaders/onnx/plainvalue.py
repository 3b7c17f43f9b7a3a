"""The values of tiny stored tensors as plain Python values, without numpy.

``Operand.value`` shows a constant operand's values (a ``Reshape`` shape, ``Unsqueeze`` axes,
``Slice`` starts …) as ``small_value(t).tolist()`` (:mod:`.protos`), which imports numpy: 0.1 s of
CPU (numpy and OpenBLAS start) in a command that otherwise needs none of it.  :func:`plain_list`
gives the same value for the tensors such operands almost always are — scalars and 1-D tensors of
numpy's plain dtypes, stored as ``raw_data`` or in the typed field ``_plain_value`` reads — and
:data:`UNDECODED` for every other tensor, which then takes the numpy path.
"""

from __future__ import annotations

import struct
from typing import Any

UNDECODED: Any = object()
"""What :func:`plain_list` returns for a tensor it leaves to numpy."""

_RAW_FORMAT = {1: "f", 2: "B", 3: "b", 4: "H", 5: "h", 6: "i", 7: "q", 9: "?", 10: "e", 11: "d", 12: "I", 13: "Q"}
"""``struct`` letters of the data types ``protos._RAW_NUMPY`` reads from ``raw_data`` (little-endian)."""
_TYPED_FIELD = {1: "float_data", 6: "int32_data", 7: "int64_data", 11: "double_data"}
"""The typed field ``protos._TYPED_FIELD`` reads for a tensor without ``raw_data``."""


def plain_list(t: Any, *, limit: int) -> Any:
    """``small_value(t).tolist()`` when ``t`` (a ``TensorProto``) has at most ``limit`` elements, else
    ``None`` — as the numpy path gives it, ``None`` for a tensor whose data does not fit its dims too;
    :data:`UNDECODED` when this cannot be told without numpy (rank above 1, a negative dim, another
    data type)."""
    if t.data_location == 1 or t.data_type == 8:
        return None  # never read here, as in small_value
    dims = t.dims
    if len(dims) > 1 or any(d < 0 for d in dims):
        return UNDECODED
    count = int(dims[0]) if dims else 1
    if count > limit:
        return None
    code = int(t.data_type)
    if t.HasField("raw_data"):
        letter = _RAW_FORMAT.get(code)
        if letter is None:
            return UNDECODED
        raw = t.raw_data
        if len(raw) != count * struct.calcsize(letter):
            return None  # numpy: a buffer not a multiple of the item size, or a reshape that does not fit
        values = list(struct.unpack(f"<{count}{letter}", raw))
    else:
        typed = _TYPED_FIELD.get(code)
        if typed is None:
            return UNDECODED
        stored = getattr(t, typed)
        if len(stored) != count:
            return None  # numpy: a reshape that does not fit
        values = list(stored)  # float_data holds float32 values already: tolist() gives the same floats
    return values if dims else values[0]
