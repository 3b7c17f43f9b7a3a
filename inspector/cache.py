"""A cache of per-file results, like ``.ruff_cache``: unchanged models are not read again.

An entry is keyed by the SHA-256 of: the model's content (:func:`content_digest`: the
file's bytes; for a SavedModel or unzipped ``.keras`` folder, its files' relative paths
and bytes; for ONNX, also the bytes of the external data files it names), the path as
given, the inspector version, the ``INSPECTOR_MAX_*`` limits and the effective
configuration the caller passes (rules selected, options, dims, trust …).  It holds the
computed result as JSON (never a pickle), with a schema tag and a checksum: an entry
that is corrupt, truncated or for another key is ignored and rewritten, never trusted.
Writes are atomic.  Only results are stored; a file that failed is read again next time.
A file's digest is remembered under ``files/`` by its size, modification time, inode and
device, as git's index does, so an unchanged file is not hashed again on the same machine
(not for files modified within two seconds of being hashed, nor ONNX files with external
data); a fresh checkout (new times) is hashed once.

The folder is ``.inspector_cache/`` in the working folder (``INSPECTOR_CACHE_DIR``
moves it), with a ``CACHEDIR.TAG`` and a ``.gitignore`` of ``*``; ``--no-cache`` or
``INSPECTOR_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any, Mapping

SCHEMA = "inspector.cache/1"
DEFAULT_DIR = ".inspector_cache"
TAG = ("Signature: 8a477f597d28d172789f06886806bc55\n"
       "# This file is a cache directory tag created by inspector.\n"
       "# For information about cache directory tags see https://bford.info/cachedir/\n")
_CHUNK = 1 << 20
_NOT_ONNX = {".keras", ".h5", ".hdf5", ".zip"}
# ONNX external data: a StringStringEntryProto ``key: "location"`` then ``value`` (field 2), in the
# binary wire format, or ``key: "location" value: "…"`` in the text format.
_LOCATION_BIN = re.compile(rb"\x0a\x08location\x12([\x01-\x7f])")
_LOCATION_TXT = re.compile(rb'key:\s*"location"\s*value:\s*"([^"\n]{1,4096})"')


def cache_folder(*, enabled: bool = True) -> Path | None:
    """Where results are cached (``None``: caching is off by ``enabled`` or ``INSPECTOR_NO_CACHE``)."""
    if not enabled or os.environ.get("INSPECTOR_NO_CACHE", "") not in ("", "0"):
        return None
    return Path(os.environ.get("INSPECTOR_CACHE_DIR") or DEFAULT_DIR)


def limits_fingerprint() -> dict[str, str]:
    """The ``INSPECTOR_MAX_*`` variables set: they change what a file yields."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith("INSPECTOR_MAX_")}


def _hash_file(digest: Any, path: Path, *, scan: bool) -> list[str]:
    """Add ``path``'s bytes to ``digest``; with ``scan``, return the ONNX external data it names."""
    names: set[str] = set()
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            if scan and (b"location" in chunk or b"location" in tail + chunk[:16]):
                window = tail + chunk
                for m in _LOCATION_BIN.finditer(window):
                    start = m.end()
                    names.add(window[start:start + m.group(1)[0]].decode("utf-8", "replace"))
                names.update(m.group(1).decode("utf-8", "replace") for m in _LOCATION_TXT.finditer(window))
            tail = chunk[-4200:] if scan else b""
    return sorted(names)


def content_digest(path: str | os.PathLike[str]) -> str | None:
    """A SHA-256 over what the model at ``path`` consists of (see the module docstring); ``None``
    when it cannot be read (the caller then runs without the cache)."""
    from .pathsafety import lies_inside

    p = Path(path)
    digest = hashlib.sha256()
    try:
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    fp = Path(root, name)
                    if not stat.S_ISREG(os.lstat(fp).st_mode) or not lies_inside(p, fp):
                        continue
                    digest.update(b"\0F" + fp.relative_to(p).as_posix().encode("utf-8", "surrogateescape") + b"\0")
                    _hash_file(digest, fp, scan=False)
            return digest.hexdigest()
        if not stat.S_ISREG(os.stat(p).st_mode):
            return None
        return _file_digest(p)[0]
    except OSError:
        return None


def _file_digest(p: Path) -> tuple[str, int]:
    """The digest of the model file ``p`` with the external data it names, and how many it names."""
    from .pathsafety import lies_inside, resolve_inside

    digest = hashlib.sha256()
    names = _hash_file(digest, p, scan=p.suffix.lower() not in _NOT_ONNX)
    for name in names:
        digest.update(b"\0X" + name.encode("utf-8", "surrogateescape") + b"\0")
        data, _refused = resolve_inside(p.parent, name)  # refused: the loader reports it; the name is keyed
        if data is not None and data.is_file() and lies_inside(p.parent, data):
            _hash_file(digest, data, scan=False)
    return digest.hexdigest(), len(names)


class ResultCache:
    """Results of one kind (``namespace``: ``lint``, ``scan`` …) under one configuration."""

    def __init__(self, folder: Path, *, namespace: str, fingerprint: Mapping[str, Any]) -> None:
        from . import __version__

        self.folder = folder
        self.namespace = namespace
        self._prefix = json.dumps({"schema": SCHEMA, "version": __version__, "namespace": namespace,
                                   "limits": limits_fingerprint(), "config": fingerprint},
                                  sort_keys=True, default=str)

    def key(self, path: str) -> str | None:
        """The entry's key for the model at ``path`` (``None``: not cacheable now)."""
        content = self._digest(path)
        if content is None:
            return None
        text = json.dumps([self._prefix, path, content])
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

    def config_key(self) -> str:
        """The key of an entry that depends on the version, limits and configuration alone (no model)."""
        return hashlib.sha256(self._prefix.encode("utf-8", "surrogateescape")).hexdigest()

    def _digest(self, path: str) -> str | None:
        """:func:`content_digest`, remembered per file by its size, modification time, inode and device
        (as git's index does), so an unchanged file is not hashed again; only for files that name no
        external data and were last modified over two seconds before they were hashed."""
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode):
                return content_digest(path)
            signature = [os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]
            name = hashlib.sha256(json.dumps(signature).encode("utf-8", "surrogateescape")).hexdigest()
            entry = self.folder / "files" / name[:2] / f"{name}.json"
            known = _load(entry, name)
            if known is not None and known.get("stat") == signature and isinstance(known.get("digest"), str):
                return str(known["digest"])
            hashed_at = time.time_ns()
            digest, external = _file_digest(Path(path))
        except OSError:
            return None
        if not external and st.st_mtime_ns < hashed_at - 2_000_000_000:
            self._store(entry, name, {"stat": signature, "digest": digest})
        return digest

    def _entry(self, key: str) -> Path:
        return self.folder / self.namespace / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored result for ``key``, or ``None`` when absent, unreadable or not valid."""
        return _load(self._entry(key), key)

    def put(self, key: str, result: Mapping[str, Any]) -> None:
        """Store ``result`` (JSON-able) for ``key``; a cache that cannot be written is skipped."""
        self._store(self._entry(key), key, result)

    def _store(self, entry: Path, key: str, result: Mapping[str, Any]) -> None:
        from .errors import UsageError
        from .fileio import write_atomic

        doc = {"schema": SCHEMA, "key": key, "checksum": _checksum(result), "result": result}
        try:
            self._prepare()
            entry.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(entry, json.dumps(doc, sort_keys=True))
        except (OSError, UsageError):
            pass

    def _prepare(self) -> None:
        if (self.folder / "CACHEDIR.TAG").is_file():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / ".gitignore").write_text("# Created by inspector.\n*\n", encoding="utf-8")
        (self.folder / "CACHEDIR.TAG").write_text(TAG, encoding="utf-8")


def _load(entry: Path, key: str) -> dict[str, Any] | None:
    """The result stored in ``entry`` for ``key``, or ``None`` when absent, unreadable or not valid."""
    try:
        with entry.open("rb") as fh:
            raw = fh.read(64 << 20)
        doc = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or doc.get("key") != key:
        return None
    result = doc.get("result")
    if not isinstance(result, dict) or doc.get("checksum") != _checksum(result):
        return None
    return result


def _checksum(result: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode("utf-8")).hexdigest()
