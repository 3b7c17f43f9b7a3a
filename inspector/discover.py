"""Finding the models in the paths a command is given: files as named, folders walked.

A path that names a file, a SavedModel folder (``saved_model.pb``/``saved_model.pbtxt``)
or an unzipped ``.keras`` folder (``config.json`` beside ``model.weights.h5`` or
``metadata.json``) is one model, exactly as given.  Any other folder is walked
recursively, in sorted order, for files whose name matches ``include`` (default
:data:`DEFAULT_INCLUDE`) and for model folders (taken as one model, never walked into).
Skipped while walking, silently: names matching ``exclude`` (default
:data:`DEFAULT_EXCLUDE`) or ``extend-exclude``, paths a ``.gitignore`` inside the walked
folder ignores, symbolic links (never followed: the walk never leaves its folder), and
anything that is not a regular file or folder (FIFOs, devices, sockets).  Patterns are
gitignore-style (``pathspec``), matched against the path relative to the walked folder.

    >>> expand_paths(["models/", "extra.onnx"], settings=Discovery())
    ['models/a/b.keras', 'models/c.onnx', 'models/saved/', 'extra.onnx']
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from pathspec import PathSpec

DEFAULT_INCLUDE: tuple[str, ...] = ("*.keras", "*.h5", "*.hdf5", "*.onnx", "*.onnxtxt")
"""Files a folder walk takes as models (model folders are found by their content)."""
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", "node_modules",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".inspector_cache", "site-packages",
)
"""Names a folder walk never enters or takes (``exclude`` replaces them, ``extend-exclude`` adds)."""

_SAVEDMODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_KERAS_DIR_FILES = ("model.weights.h5", "metadata.json")


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a folder walk takes (``[tool.inspector]`` ``include``, ``exclude``, ``extend-exclude``)."""

    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True


def is_model_folder(path: str | os.PathLike[str]) -> bool:
    """A SavedModel folder or an unzipped ``.keras`` folder: one model, never walked into."""
    p = Path(path)
    if any(_regular(p / name) for name in _SAVEDMODEL_FILES):
        return True
    return _regular(p / "config.json") and any(_regular(p / name) for name in _KERAS_DIR_FILES)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _spec(patterns: Iterable[str]) -> PathSpec[Any]:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(list(patterns))


def expand_paths(paths: Sequence[str], *, settings: Discovery | None = None) -> list[str]:
    """``paths`` with every plain folder replaced by the models found in it (sorted); files and
    model folders stay as given, in the order given (a model found twice is listed once).  A folder
    with no model in it stays as named, so reading it reports why it is not a model."""
    out: list[str] = []
    seen: set[str] = set()
    for path in paths:
        if not os.path.isdir(path) or is_model_folder(path):
            out.append(path)  # as today: a file (or a missing path) is read, or reported, as named
            seen.add(os.path.normpath(path))
            continue
        found_here = walk_folder(path, settings=settings or Discovery())
        if not found_here:  # no model inside: the folder is reported as named (as before folders were walked)
            out.append(path)
            continue
        for found in found_here:
            key = os.path.normpath(found)
            if key not in seen:
                seen.add(key)
                out.append(found)
    return out


def walk_folder(root: str, *, settings: Discovery) -> list[str]:
    """The models under the folder ``root``, sorted by path (see the module docstring)."""
    include = _spec(settings.include)
    exclude = _spec((*settings.exclude, *settings.extend_exclude))
    ignores: list[tuple[str, PathSpec[Any]]] = []  # (folder relative to root, its .gitignore)
    found: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        folder = os.path.join(root, rel) if rel else root
        if settings.respect_gitignore:
            spec = _gitignore(folder)
            if spec is not None:
                ignores.append((rel, spec))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subfolders = []
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            is_dir = stat.S_ISDIR(mode)
            if not (is_dir or stat.S_ISREG(mode)):
                continue  # symbolic links, FIFOs, devices, sockets: never followed or read
            probe = child + "/" if is_dir else child
            if exclude.match_file(probe) or _ignored(ignores, probe):
                continue
            if is_dir:
                if is_model_folder(entry.path):
                    found.append(os.path.join(root, child))
                else:
                    subfolders.append(child)
            elif include.match_file(child):
                found.append(os.path.join(root, child))
        stack.extend(reversed(subfolders))
    return sorted(found)


def _gitignore(folder: str) -> PathSpec[Any] | None:
    path = os.path.join(folder, ".gitignore")
    if not _regular(Path(path)):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return _spec(fh.read(1 << 20).splitlines())
    except OSError:
        return None


def _ignored(ignores: list[tuple[str, PathSpec[Any]]], child: str) -> bool:
    """Whether a ``.gitignore`` of a folder above ``child`` (relative paths) ignores it."""
    for base, spec in ignores:
        if base and not child.startswith(base + "/"):
            continue
        if spec.match_file(child[len(base) + 1:] if base else child):
            return True
    return False
