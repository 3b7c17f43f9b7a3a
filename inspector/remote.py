"""Models in remote storage (``s3://``, ``gs://``, ``https://``), read by byte ranges.

A remote model is *staged*: :func:`stage` creates a private local file of the
object's size and fills in only the byte ranges that reading the model's metadata
touches, fetched through fsspec (the ``remote`` extra: fsspec, s3fs, gcsfs,
aiohttp) in small blocks (:class:`RangeFile`).  The unfetched rest of the file is a
hole (a sparse file: no disk space, reads as zeros).  The ordinary local loaders
then read the staged file, so the security checks, limits and exit codes are
exactly those of a local file.

What is fetched when a model is loaded (the metadata):

* ``.keras`` zip: the end-of-central-directory record, the central directory,
  ``config.json``, ``metadata.json`` and the HDF5 metadata of a stored
  ``model.weights.h5`` member (never its tensors);
* ``.h5``: the HDF5 metadata (groups, attributes, dataset headers);
* ONNX: the protobuf with tensor payloads skipped by their length prefixes
  (:func:`inspector.loaders.onnx.wire.strip_stream`); external data stays unread.

The first tensor read (``lint``, the duplicate check of ``info`` and JSON summaries,
``report``) fetches the rest of the object into the staged file (in ranges of
:data:`CHUNK` bytes), plus an ONNX model's external-data files, each confined to the
model's own prefix
(:func:`confine`; a name outside the prefix is never fetched, and the loader
reports it as it does for a local file).  SavedModel folders are not read remotely (one clear error).
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import MissingDependency, ModelLoadError, UnsafeModel, UnsupportedFormat
from .fileio import SeekableReader

BLOCK = 4 * 1024
"""Bytes fetched by one range request while reading metadata (a block cache of this size)."""

CHUNK = 8 << 20
"""Bytes fetched by one range request when a whole object is staged."""

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx")
"""Suffixes of the model files found under a remote prefix."""


def _filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path inside it."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise MissingDependency("reading remote models", extra="remote", package="fsspec") from None
    try:
        return url_to_fs(url)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise MissingDependency(f"reading {url.split('://', 1)[0]}:// URLs", extra="remote",
                                package=f"its fsspec backend ({exc})") from None
    except ValueError as exc:
        raise UnsupportedFormat(f"is not a storage URL inspector can read ({exc})") from None


def _missing(exc: BaseException) -> ModelLoadError:
    if isinstance(exc, FileNotFoundError):
        return ModelLoadError("no such remote object")
    if isinstance(exc, PermissionError):
        return ModelLoadError("access to the remote object is denied (check the storage credentials)")
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelLoadError(f"cannot be read from remote storage ({reason[:160]})")


class RangeFile(SeekableReader):
    """A read-only, seekable file object over a remote object: every read is served
    from aligned blocks of ``block`` bytes, each fetched once by a range request.

    ``fetched`` counts the bytes transferred, ``requests`` the range requests;
    :meth:`blocks` lists the fetched blocks (to stage them locally)."""

    def __init__(self, fs: Any, path: str, size: int, *, block: int = BLOCK) -> None:
        super().__init__()
        self._fs = fs
        self._path = path
        self.size = size
        self._block = block
        self._cache: dict[int, bytes] = {}
        self._pos = 0
        self._lock = threading.Lock()
        self.fetched = 0
        self.requests = 0
        self.error: ModelLoadError | None = None
        """The first failed range request (readers such as h5py turn it into their own error)."""

    def _get(self, index: int) -> bytes:
        data = self._cache.get(index)
        if data is None:
            start = index * self._block
            end = min(self.size, start + self._block)
            try:
                data = bytes(self._fs.cat_file(self._path, start=start, end=end))
            except Exception as exc:  # noqa: BLE001 - any transport error is one line
                self.error = _missing(exc)
                raise self.error from None
            if len(data) != end - start:
                raise ModelLoadError(f"changed in remote storage while being read (bytes {start}-{end})")
            self._cache[index] = data
            self.fetched += len(data)
            self.requests += 1
        return data

    def pread(self, n: int, pos: int) -> bytes:
        """Up to ``n`` bytes at ``pos`` (fewer at the end of the object)."""
        end = min(self.size, pos + max(n, 0))
        if pos >= end:
            return b""
        with self._lock:
            parts = [self._get(i) for i in range(pos // self._block, (end - 1) // self._block + 1)]
        first = (pos // self._block) * self._block
        return b"".join(parts)[pos - first:end - first]

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        data = self.pread(len(view), self._pos)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """The fetched blocks as (offset, bytes)."""
        for index, data in sorted(self._cache.items()):
            yield index * self._block, data


class _Window(SeekableReader):
    """A seekable window ``[offset, offset + size)`` on a :class:`RangeFile` (a stored zip member)."""

    def __init__(self, base: RangeFile, offset: int, size: int) -> None:
        super().__init__()
        self._base, self._offset, self.size, self._pos = base, offset, size, 0

    def readinto(self, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        n = min(len(view), max(0, self.size - self._pos))
        data = self._base.pread(n, self._offset + self._pos)
        view[:len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass
class Fetch:
    """The running tally of one staged model: bytes and range requests so far, and
    whether the whole object (and its external data) is on disk yet."""

    fetched: int = 0
    requests: int = 0
    complete: bool = False


@dataclass(frozen=True)
class Staged:
    """A remote model staged locally: ``path`` (inside the private folder ``folder``),
    the object's ``size``, and what fetching it took so far (``fetch``)."""

    url: str
    path: Path
    folder: Path
    size: int
    fetch: Fetch
    metadata_only: bool

    @property
    def fetched(self) -> int:
        return self.fetch.fetched

    @property
    def requests(self) -> int:
        return self.fetch.requests

    def complete(self) -> None:
        """Fetch the rest of the object (and an ONNX model's external data) into the staged
        file, in place: readers opened on it see the whole file from now on."""
        if self.fetch.complete:
            return
        fs, path, size = _open(self.url)
        if size != self.size:
            raise ModelLoadError("changed in remote storage while being read")
        got, calls = _download(fs, path, size, self.path, mode="r+b")
        self.fetch.fetched += got
        self.fetch.requests += calls
        if self.path.name.lower().endswith(".onnx"):
            got, calls = _external_data(self.url, self.path, self.folder)
            self.fetch.fetched += got
            self.fetch.requests += calls
        self.fetch.complete = True


def confine(base_url: str, name: str) -> str:
    """The URL of ``name`` (a path a model refers to, e.g. ONNX external data) next to
    ``base_url``; refuses anything that would leave the model's own prefix: absolute
    names, ``..``, ``~``, another scheme or bucket (:class:`UnsafeModel`)."""
    bad = (not name or name.startswith(("/", "\\", "~")) or "://" in name or ":" in name.split("/", 1)[0]
           or any(part == ".." for part in name.replace("\\", "/").split("/")))
    if bad:
        raise UnsafeModel(f"refers to {name!r}, outside its own prefix in remote storage: refusing to read it")
    scheme, rest = base_url.split("://", 1)
    folder = posixpath.dirname(rest)
    joined = posixpath.normpath(posixpath.join(folder, name))
    if not joined.startswith(folder.rstrip("/") + "/"):
        raise UnsafeModel(f"refers to {name!r}, outside its own prefix in remote storage: refusing to read it")
    return f"{scheme}://{joined}"


def _open(url: str) -> tuple[Any, str, int]:
    fs, path = _filesystem(url)
    try:
        info = fs.info(path)
    except Exception as exc:  # noqa: BLE001
        raise _missing(exc) from None
    if info.get("type") == "directory":
        raise UnsupportedFormat(
            "is a remote folder: SavedModel folders are not read from remote storage (copy it locally); "
            "for a folder of model files use `inspector scan`")
    size = info.get("size")
    if size is None:
        raise ModelLoadError("has no known size in remote storage (byte ranges need one)")
    if int(size) == 0:
        raise ModelLoadError("is empty (0 bytes): not a model file")
    return fs, path, int(size)


def stage(url: str, *, metadata_only: bool) -> Staged:
    """Stage the remote model ``url`` in a private temporary folder (see the module
    docstring); the caller removes ``Staged.folder`` when done (:func:`release`)."""
    fs, path, size = _open(url)
    folder = Path(tempfile.mkdtemp(prefix="inspector-remote-"))
    try:
        name = posixpath.basename(path.rstrip("/")) or "model"
        local = folder / name
        rf = RangeFile(fs, path, size)
        _touch_metadata(rf)
        if rf.error is not None:  # a transport failure, not a damaged file
            raise rf.error
        _write_sparse(local, rf)
        staged = Staged(url, local, folder, size, Fetch(rf.fetched, rf.requests), metadata_only)
        if not metadata_only:
            staged.complete()
        return staged
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def release(staged: Staged) -> None:
    """Remove a staged model's private folder."""
    shutil.rmtree(staged.folder, ignore_errors=True)


def _write_sparse(local: Path, rf: RangeFile) -> None:
    with open(local, "wb") as out:
        out.truncate(rf.size)
        for offset, data in rf.blocks():
            out.seek(offset)
            out.write(data)


def _download(fs: Any, path: str, size: int, local: Path, *, mode: str = "wb") -> tuple[int, int]:
    fetched = requests = 0
    with open(local, mode) as out:
        for start in range(0, size, CHUNK):
            end = min(size, start + CHUNK)
            try:
                data = fs.cat_file(path, start=start, end=end)
            except Exception as exc:  # noqa: BLE001
                raise _missing(exc) from None
            if len(data) != end - start:
                raise ModelLoadError("changed in remote storage while being read")
            out.write(data)
            fetched += len(data)
            requests += 1
    return fetched, requests


def _touch_metadata(rf: RangeFile) -> None:
    """Read, through ``rf``, every byte the local loader reads for a summary."""
    head = rf.pread(16, 0)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        _touch_zip(rf)
    elif head.startswith(b"\x89HDF\r\n\x1a\n"):
        _touch_h5(rf)
    else:
        _touch_onnx(rf)


def _touch_zip(rf: RangeFile) -> None:
    try:
        with zipfile.ZipFile(rf) as zf:
            for info in zf.infolist():
                # the loader reads every local header (its bomb and span checks) …
                rf.pread(30 + len(info.filename.encode()) + 256, info.header_offset)
                if info.filename in ("config.json", "metadata.json"):
                    with zf.open(info) as member:
                        while member.read(1 << 20):
                            pass
                elif info.filename == "model.weights.h5" and info.compress_type == zipfile.ZIP_STORED:
                    local = rf.pread(30, info.header_offset)
                    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") \
                        + int.from_bytes(local[28:30], "little")
                    _touch_h5_file(_Window(rf, start, info.compress_size))
                elif info.filename == "model.weights.h5":  # compressed: the loader extracts it
                    with zf.open(info) as member:
                        while member.read(1 << 20):
                            pass
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, OSError):
        return  # the local loader reports the damage from the same bytes


def _touch_h5(rf: RangeFile) -> None:
    _touch_h5_file(rf)


def _touch_h5_file(fh: Any) -> None:
    """Walk every object, link and attribute of an HDF5 file (metadata only: no dataset is read)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        return
    try:
        with h5py.File(fh, "r", locking=False) as f:
            seen: list[Any] = [f]

            def visit(_name: str, obj: Any) -> None:
                seen.append(obj)

            f.visititems(visit)
            for obj in seen:
                for key in list(obj.attrs):
                    try:
                        obj.attrs[key]
                    except Exception:  # noqa: BLE001 - the loader reports unreadable attributes
                        pass
                if isinstance(obj, h5py.Dataset):
                    _ = (obj.shape, obj.dtype, obj.chunks, obj.compression, obj.external, obj.is_virtual)
                    obj.id.get_offset()
                    obj.id.get_storage_size()
                if isinstance(obj, h5py.Group):
                    for key in obj:
                        obj.get(key, getlink=True)
    except Exception:  # noqa: BLE001 - the local loader reports the damage from the same bytes
        return


def _touch_onnx(rf: RangeFile) -> None:
    from .loaders.onnx import wire

    rf.pread(64, 0)
    try:
        wire.strip_stream(rf.pread, rf.size)
    except Exception:  # noqa: BLE001 - the local loader reports the damage from the same bytes
        return


def _external_data(url: str, local: Path, folder: Path) -> tuple[int, int]:
    """Stage the external-data files an ONNX model names, each confined to its prefix."""
    from .loaders.onnx import wire

    try:
        stripped = wire.strip_file(local)
        import onnx

        model = onnx.ModelProto()
        model.ParseFromString(stripped.data)
    except Exception:  # noqa: BLE001 - the loader reports it
        return 0, 0
    fetched = requests = 0
    for location in sorted(_locations(model)):
        try:
            fs, path, size = _open(confine(url, location))
        except (UnsafeModel, ModelLoadError):
            continue  # never fetched: the loader reports it exactly as for a local file
        dest = folder / location
        dest.parent.mkdir(parents=True, exist_ok=True)
        got, calls = _download(fs, path, size, dest)
        fetched, requests = fetched + got, requests + calls
    return fetched, requests


def _locations(model: Any) -> set[str]:
    found: set[str] = set()
    graphs: list[Any] = [model.graph]
    bodies: list[Any] = [f.node for f in model.functions]
    while graphs or bodies:
        if graphs:
            graph = graphs.pop()
            for tensor in graph.initializer:
                for entry in tensor.external_data:
                    if entry.key == "location":
                        found.add(entry.value)
            nodes = graph.node
        else:
            nodes = bodies.pop()
        for node in nodes:
            for attr in node.attribute:
                if attr.HasField("t"):
                    for entry in attr.t.external_data:
                        if entry.key == "location":
                            found.add(entry.value)
                if attr.HasField("g"):
                    graphs.append(attr.g)
                graphs.extend(attr.graphs)
    return found


def list_models(prefix: str) -> list[str]:
    """The model files under the remote folder ``prefix``, by suffix, sorted (like a local folder walk)."""
    fs, path = _filesystem(prefix)
    scheme = prefix.split("://", 1)[0]
    try:
        found = fs.find(path.rstrip("/"))
    except Exception as exc:  # noqa: BLE001
        raise _missing(exc) from None
    names = sorted(p for p in found if p.lower().endswith(MODEL_SUFFIXES))
    return [p if "://" in p else f"{scheme}://{p}" for p in names]


def load(url: str, *, metadata_only: bool = True, dims: Mapping[str, int] | None = None,
         dims_found: set[str] | None = None) -> Any:
    """Load the remote model ``url`` into a ``ModelGraph`` (staged, then read by the
    local loaders).  With ``metadata_only`` only the metadata is fetched now; the first
    tensor read (``Weight.read()``: lint, duplicates, statistics) fetches the rest of
    the object first (:meth:`Staged.complete`).  Tensors come from the staged copy, so
    it is kept while the :data:`KEEP` most recent remote models may still be in use, and
    removed at exit."""
    from .loaders import load as load_local

    staged = stage(url, metadata_only=metadata_only)
    try:
        graph = load_local(staged.path, dims=dims, dims_found=dims_found)
    except BaseException:
        release(staged)
        raise
    graph.path = url
    if not staged.fetch.complete:
        for weight in [*graph.iter_weights(), *graph.optimizer_weights]:
            if weight.reader is not None:
                weight.reader = _completing(weight.reader, staged)
    _remember(staged)
    return graph


def _completing(reader: Any, staged: Staged) -> Any:
    def read() -> Any:
        staged.complete()
        return reader()

    return read


KEEP = 8
"""How many staged remote models stay on disk (older ones are removed as new ones load)."""

LAST_FETCH: list[Staged] = []
"""The staged models still on disk, oldest first (``LAST_FETCH[-1]``: bytes fetched by the last load)."""


def _remember(staged: Staged) -> None:
    if not LAST_FETCH:
        import atexit

        atexit.register(_release_all)
    LAST_FETCH.append(staged)
    while len(LAST_FETCH) > KEEP:
        release(LAST_FETCH.pop(0))


def _release_all() -> None:
    while LAST_FETCH:
        release(LAST_FETCH.pop())


def local_copy(url: str) -> Path:
    """The complete local copy of the remote model ``url`` loaded most recently (its rest
    fetched now if needed; ``inspector scan`` hashes it and takes its size); a
    :class:`ModelLoadError` when ``url`` was not loaded by :func:`load` lately."""
    for staged in reversed(LAST_FETCH):
        if staged.url == url:
            staged.complete()
            return staged.path
    raise ModelLoadError("has not been loaded: load it before asking for its local copy")
