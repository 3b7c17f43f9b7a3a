"""Path safety: which files a model may make inspector open.

A model file names other files — ONNX external data locations, HDF5 external links,
external storage and virtual datasets, the variables a SavedModel folder holds.  A
hostile file uses those names to read anything on the machine.  Inspector opens a
referenced file only when it lies inside the model's folder, without going through
a symbolic link out of it; everything else is refused here and reported by the
loader as a security fact (``SEC003`` for ONNX, ``SEC004`` for HDF5).

* :func:`resolve_inside` — a relative location (ONNX external data) → its real path
  inside the folder, or why it is refused (a hard-linked file too: its bytes may be
  a file outside the folder under a second name);
* :func:`onnx_tensors` — every ``TensorProto`` an ONNX model reaches (initializers,
  sparse values and indices, node attributes, sub-graphs, functions), which onnx and
  ONNX Runtime would resolve external data for;
* :func:`lies_inside` — is a file the loader found in a folder really inside it
  (no symbolic link, real path below the folder)?
* :func:`hdf5_storage_outside` — does an HDF5 dataset keep its bytes in other files?
* :func:`hdf5_link_fact` — what an HDF5 link that is not a hard link reaches.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator


def resolve_inside(base: Path, location: str, *, hard_links: bool = False) -> tuple[Path | None, str | None]:
    """The real path of ``location`` inside ``base``, or ``None`` and the reason it is refused.

    A regular file with more than one name (``st_nlink > 1``) is refused unless
    ``hard_links`` (the caller checked ``--trust``): a hard link inside the folder
    can be a file anywhere else on the same file system."""
    if not location:
        return None, "it is empty"
    if "\x00" in location:
        return None, "it contains a NUL byte"
    parts = re.split(r"[\\/]+", location)
    if location.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", location) or os.path.isabs(location):
        return None, "it is an absolute path"
    if ".." in parts:
        return None, "it contains '..'"
    if location.startswith("~"):
        return None, "it starts with '~'"
    base_real = os.path.realpath(base)
    real = os.path.realpath(os.path.join(base_real, *[p for p in parts if p not in ("", ".")]))
    try:
        inside = os.path.commonpath([real, base_real]) == base_real
    except ValueError:
        inside = False
    if not inside:
        return None, "it resolves (through a symbolic link) outside the model's folder"
    if not hard_links:
        links = hard_link_count(Path(real))
        if links > 1:
            return None, f"it is a hard link: the file has {links} names, and another may lie anywhere"
    return Path(real), None


def hard_link_count(path: Path) -> int:
    """How many names the regular file ``path`` has (``st_nlink``); 1 for anything else
    (folders, devices, missing files: other checks report those)."""
    try:
        st = os.stat(path)
    except OSError:
        return 1
    return int(st.st_nlink) if stat.S_ISREG(st.st_mode) else 1


def onnx_tensors(model: Any) -> Iterator[tuple[str, str | None, Any]]:
    """``(tensor name, node name or None, TensorProto)`` for every tensor the ONNX
    ``model`` reaches: graph initializers, sparse initializers (values and indices),
    node attributes (``value``, ``sparse_value``, tensor lists, sparse tensor lists),
    sub-graphs at any depth, model-local functions and training graphs."""
    graphs: list[Any] = [model.graph] if model.HasField("graph") else []
    for info in model.training_info:
        graphs.extend(g for g in (info.initialization, info.algorithm) if g.ByteSize())
    return graph_tensors([*graphs, *model.functions])


def graph_tensors(graphs: list[Any], *, initializers: bool = True) -> Iterator[tuple[str, str | None, Any]]:
    """What :func:`onnx_tensors` yields for ``graphs`` (``GraphProto`` or ``FunctionProto``
    messages) and their sub-graphs; without the dense ``initializer`` lists of ``graphs``
    themselves (those of their sub-graphs are still yielded) when ``initializers`` is
    false.  Iterative, so nesting depth cannot overflow the stack."""
    stack = [(g, initializers) for g in graphs]
    while stack:
        g, with_initializers = stack.pop()
        for t in getattr(g, "initializer", ()) if with_initializers else ():
            yield t.name, None, t
        for st in getattr(g, "sparse_initializer", ()):
            yield from _sparse_parts(st, None)
        attrs = [(a, None) for a in getattr(g, "attribute_proto", ())]  # a function's attribute defaults
        attrs.extend((a, n.name or n.op_type) for n in g.node for a in n.attribute)
        for a, node in attrs:
            label = f"{node or 'function'} attribute {a.name}"
            if a.HasField("t"):
                yield a.t.name or label, node, a.t
            for t in a.tensors:
                yield t.name or label, node, t
            if a.HasField("sparse_tensor"):
                yield from _sparse_parts(a.sparse_tensor, node, label)
            for st in a.sparse_tensors:
                yield from _sparse_parts(st, node, label)
            if a.HasField("g"):
                stack.append((a.g, True))
            stack.extend((sub, True) for sub in a.graphs)


def _sparse_parts(st: Any, node: str | None, label: str = "") -> Iterator[tuple[str, str | None, Any]]:
    """The values and indices tensors of the ``SparseTensorProto`` ``st``."""
    name = st.values.name or label or "sparse tensor"
    yield f"{name} (sparse values)", node, st.values
    yield f"{name} (sparse indices)", node, st.indices


def lies_inside(base: Path, candidate: Path) -> bool:
    """True when ``candidate`` is not a symbolic link and its real path lies below ``base``'s."""
    return not candidate.is_symlink() and os.path.realpath(candidate).startswith(os.path.realpath(base) + os.sep)


def hdf5_storage_outside(dcpl: Any) -> tuple[str, str] | None:
    """(kind, explanation) when the dataset with creation property list ``dcpl`` keeps
    its bytes in other files, else None.

    A virtual dataset maps regions of other files; a dataset with external storage
    keeps its bytes in raw files named in the HDF5 file; both make HDF5 open the
    files they name."""
    import h5py

    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        return "virtual-dataset", "is a virtual dataset that maps data from other files; they were not opened"
    if dcpl.get_external_count() > 0:
        name = dcpl.get_external(0)[0]
        target = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        return "external-storage", (f"keeps its bytes in the external file {target!r}; "
                                    "it was not opened")
    return None


def hdf5_link_fact(ltype: int, path: str, target: str) -> tuple[str, str]:
    """(kind, message) for the HDF5 link at ``path`` of link type ``ltype`` (not a hard
    link) pointing at ``target``: none of them is followed."""
    import h5py

    if ltype == h5py.h5l.TYPE_EXTERNAL:
        return "external-link", (f"HDF5 external link {path!r} points into another file ({target}); "
                                 "h5py and Keras would open that file, inspector did not")
    if ltype == h5py.h5l.TYPE_SOFT:
        return "soft-link", f"HDF5 soft link {path!r} -> {target!r}: Keras writes none; it was not followed"
    return "user-link", (f"HDF5 user-defined link {path!r} (link class {ltype}): its target is "
                         "resolved by a plugin; it was not followed")
