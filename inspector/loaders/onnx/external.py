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
from pathlib import Path
from typing import Any

from ...ir import ModelGraph, SecurityFact
from ...pathsafety import onnx_tensors, resolve_inside
from .wire import StrippedModel


def check_reachable(graph: ModelGraph, model: Any, stripped: StrippedModel | None, path: Path) -> None:
    """Add the external data of ``model``'s tensors the builder did not record to
    ``graph.metadata["external_data"]``, and a ``SEC003`` fact for each refused location
    not reported yet."""
    known = {str(e.get("location")): e for e in graph.metadata.get("external_data") or [] if isinstance(e, dict)}
    reported = {f.detail for f in graph.security if f.code == "SEC003"}
    inline = stripped.inline if stripped is not None else {}
    added: dict[str, dict[str, Any]] = {}
    for name, node, t in onnx_tensors(model):
        if t.data_location != 1:
            continue
        entries = {e.key: e.value for e in t.external_data}
        location = entries.get("location", "")
        if isinstance(location, bytes):  # not valid UTF-8 in the file
            location = location.decode("utf-8", "replace")
        if location in inline:  # a big inline tensor the wire reader described by a private token
            continue
        if location in known:
            continue
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
        length = entries.get("length", "")
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
