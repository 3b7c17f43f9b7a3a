"""External data of every tensor an ONNX model reaches, checked with the path rules.

The builder records the external data of the tensors it turns into weights
(initializers, ``Constant`` values).  onnx and ONNX Runtime resolve external data
for more tensors than that: sparse initializers and ``sparse_value`` attributes
(values and indices), ``ConstantOfShape`` fill values and every other tensor
attribute, in sub-graphs and model-local functions too.  :func:`check_reachable`
walks all of them (:func:`inspector.pathsafety.onnx_tensors`) after the build:
each location the builder did not see is listed in the graph's ``external_data``
metadata (so ``info`` shows it), and each refused location — absolute, ``..``,
``~``, through a symbolic link, hard-linked, or not a regular file — becomes a
``SEC003`` security fact.  Nothing is opened: the checks only ``stat`` the path.
"""

from __future__ import annotations

import os
import stat
from itertools import chain
from pathlib import Path
from typing import Any

from ...ir import ModelGraph, SecurityFact
from ...pathsafety import graph_tensors, resolve_inside
from .wire import StrippedModel


def check_reachable(graph: ModelGraph, model: Any, stripped: StrippedModel | None, path: Path, *,
                    named: tuple[set[str] | None] | None = None) -> None:
    """Add the external data of ``model``'s tensors the builder did not record to
    ``graph.metadata["external_data"]``, and a ``SEC003`` fact for each refused location
    not reported yet.  ``named``: :func:`named_locations` of ``model``'s serialization, when the
    caller has it (else ``model`` is serialized here)."""
    known = {str(e.get("location")): e for e in graph.metadata.get("external_data") or [] if isinstance(e, dict)}
    inline = stripped.inline if stripped is not None else {}
    named_here = named[0] if named is not None else named_locations(model.SerializeToString())
    if named_here is not None and all(loc in known or loc in inline for loc in named_here):
        return  # every location in the file was checked by the builder: nothing to walk
    reported = {f.detail for f in graph.security if f.code == "SEC003"}
    added: dict[str, dict[str, Any]] = {}
    # The builder records the dense initializers of the main graph (the bulk of a big
    # model); everything else is walked here: sub-graphs, functions, training graphs.
    built = graph_tensors([model.graph, *model.functions], initializers=False)
    training = graph_tensors([g for info in model.training_info for g in (info.initialization, info.algorithm)])
    for name, node, t in chain(built, training):
        if t.data_location != 1:
            continue
        entries = t.external_data
        location = next((e.value for e in reversed(entries) if e.key == "location"), "")
        if location in known or location in inline:  # checked by the builder; a big inline tensor's private token
            continue
        if isinstance(location, bytes):  # not valid UTF-8 in the file
            location = location.decode("utf-8", "replace")
        info = added.get(location)
        if info is None:
            info = added[location] = _describe(path.parent, location)
            reason = info.pop("reason")
            if reason is not None and location not in reported:
                reported.add(location)
                graph.security.append(SecurityFact(
                    code="SEC003", layer=node, detail=location, kind="external-data",
                    message=(f"external data location {location!r} of tensor {name!r} {reason}; "
                             "inspector did not open it")))
        info["tensors"] += 1
        length = next((e.value for e in reversed(entries) if e.key == "length"), "")
        if isinstance(length, str) and length.isdigit():
            info["bytes"] += int(length)
    if added:
        listed = list(known.values()) + list(added.values())
        graph.metadata["external_data"] = sorted(listed, key=lambda e: str(e.get("location")))


def _describe(base: Path, location: str) -> dict[str, Any]:
    """The metadata entry of ``location`` (as the builder writes them) plus ``reason``:
    why a framework reading it would be unsafe, or ``None``."""
    info: dict[str, Any] = {"location": location, "tensors": 0, "bytes": 0, "size": None, "status": "ok",
                            "reason": None}
    resolved, why = resolve_inside(base, location)
    if resolved is None:
        info["status"] = f"refused: {why}"
        info["reason"] = f"is outside the model's folder ({why})"
        return info
    try:
        st = os.stat(resolved)
    except OSError:
        info["status"] = "missing"
        return info
    if not stat.S_ISREG(st.st_mode):
        info["status"] = "not a regular file"
        info["reason"] = "is not a regular file (a device, FIFO or folder); reading it could block or read endlessly"
    else:
        info["size"] = st.st_size
    return info


_LOCATION_KEY = b"\n\x08location"
"""A ``StringStringEntryProto`` whose key is ``location``, as protobuf serializes it."""


def stripped_locations(stripped: StrippedModel) -> set[str] | None:
    """:func:`named_locations` of the model parsed from ``stripped.data`` (not edited since) as far as
    :func:`check_reachable` tells them apart, read without serializing the model: when the bytes hold
    ``location`` nowhere but in the entries :mod:`.wire` wrote for the tensors it stripped (one each),
    the model names no other location, and those are the private tokens of ``stripped.inline``.
    ``None`` when that cannot be told so (the caller serializes the model)."""
    data = stripped.data
    if stripped.edited or not data or data.count(b"location") != len(stripped.inline):
        return None  # another ``location`` (a string, a doc, a key), or bytes that are no longer the model
    return set(stripped.inline)


def named_locations(data: bytes | bytearray) -> set[str] | None:
    """Every value of a ``location`` entry anywhere in the model whose canonical serialization
    (``model.SerializeToString()``, never a file's own bytes) is ``data`` (external data, and any
    metadata entry so named), or ``None`` when one cannot be read off.

    The walk over every node attribute costs seconds on a graph of a million nodes;
    the model's own serialization (canonical: the key before the value, minimal
    lengths) names every location in microseconds per megabyte.  An over-long
    match only adds candidates, which sends the caller to the full walk."""
    found: set[str] = set()
    at = data.find(_LOCATION_KEY)
    while at >= 0:
        pos = at + len(_LOCATION_KEY)
        if data[pos:pos + 1] != b"\x12":
            return None  # an empty location: let the walk report it
        length, shift, pos = 0, 0, pos + 1
        while pos < len(data) and data[pos] & 0x80 and shift < 35:
            length |= (data[pos] & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
        if pos >= len(data):
            return None
        length |= data[pos] << shift
        found.add(data[pos + 1:pos + 1 + length].decode("utf-8", "replace"))
        at = data.find(_LOCATION_KEY, pos + 1)
    return found
