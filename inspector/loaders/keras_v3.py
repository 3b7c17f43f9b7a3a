"""The ``.keras`` format (Keras 3, and tf_keras ≥ 2.13): a zip of ``config.json``,
``metadata.json`` and ``model.weights.h5``, read with zipfile, json and h5py only.

How the weights file is laid out, and why it takes care to read: Keras walks the
model and writes each layer's variables to ``<path>/vars/0``, ``vars/1`` … where
``<path>`` names the layer by its *class* (``layers/dense``, ``layers/dense_1``, in
``model.layers`` order), not by its name, and sub-objects by attribute name
(``layers/lstm/cell``, ``layers/bidirectional/forward_layer``,
``layers/multi_head_attention/query_dense``).  Recent Keras 3 releases also
write the object's real name as an attribute of each ``vars`` group; older files
(and tf_keras ones) do not, so Keras's class-name counters are replayed where the
attribute is missing.
Variables have no names in the file: their roles come from each class's creation
order (:func:`~inspector.loaders.keras_weights.ordered_roles`).

The weights member is opened in place through a read-only window on the archive
(:class:`~inspector.loaders.h5index.ZipMemberFile`): a summary reads the zip
directory, the config and HDF5 metadata — no tensor bytes.  A weights member that
was recompressed by some other tool is extracted once to a temporary file, which
is deleted when the last weight referring to it is gone.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import weakref
import zipfile
import zlib
from pathlib import Path

try:
    from lzma import LZMAError
except ImportError:  # pragma: no cover - Python built without lzma
    LZMAError = zlib.error  # type: ignore[misc,assignment]
from typing import Any, Callable

from ..errors import LimitExceeded, ModelLoadError
from ..fileio import read_capped
from ..ir import Layer, ModelGraph, Weight
from ..limits import DEFAULTS, current, hint
from ..pathsafety import lies_inside
from .h5index import H5Index, ZipMemberFile, dataset_reader, index_h5, join, stored_member_span
from .keras_config import parse_json, snake_case
from .keras_graph import container_layers, finish, graph_from_config
from .keras_security import KERAS_LAYER_CLASSES
from .keras_weights import QUANTIZATION_ROLES, container_item, ordered_roles, role_trainable, subobject

MAX_ZIP_MEMBERS = DEFAULTS.zip_members
"""Default most entries a ``.keras`` archive may list (see :mod:`inspector.limits`)."""

MAX_METADATA_BYTES = 1024 * 1024
"""Largest ``metadata.json`` read."""

MAX_COMPRESSION_RATIO = DEFAULTS.compression_ratio
"""Default: a compressed member expanding more than this (and past
:data:`COMPRESSION_CHECK_FLOOR` bytes) is treated as a zip bomb."""

COMPRESSION_CHECK_FLOOR = 256 * 1024 * 1024

CENTRAL_DIRECTORY_BYTES_PER_MEMBER = 1024
"""Central-directory bytes allowed per permitted member (names of Keras members are short)."""

MAX_SUBOBJECT_DEPTH = 32
"""How deep sub-objects (cell of a layer of a wrapper …) are followed in the weights file."""

CONFIG_NAME = "config.json"
METADATA_NAME = "metadata.json"
WEIGHTS_H5 = "model.weights.h5"
WEIGHTS_NPZ = "model.weights.npz"

_TOP_LEVEL_NON_MODEL = ("optimizer", "metrics", "compile_metrics", "loss", "vars", "_tracker")


def load(path: Path) -> ModelGraph:
    """Read a ``.keras`` archive (or an unzipped Keras model folder) statically."""
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    lim = current()
    _check_central_directory(path, lim.zip_members)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, struct.error):
        raise ModelLoadError(
            "is not a valid .keras archive (damaged or truncated zip file): the file is corrupt or truncated"
        ) from None
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > lim.zip_members:
            raise LimitExceeded(f"the archive lists {len(infos):,} entries, more than the limit of "
                                f"{lim.zip_members:,} ({hint('zip_members')})")
        members = {i.filename: i for i in infos}
        if CONFIG_NAME not in members:
            extra = ""
            if any(n.endswith(".h5") for n in members):
                extra = " (it holds HDF5 weights only)"
            raise ModelLoadError(
                f"is a zip archive without config.json{extra}: not a Keras model saved with model.save()"
            )
        raw = _read_member(zf, members[CONFIG_NAME], lim.json_bytes, limit_name="json_bytes")
        meta_raw = _read_member(zf, members[METADATA_NAME], MAX_METADATA_BYTES) \
            if METADATA_NAME in members else b""
        weights_info = members.get(WEIGHTS_H5)
        npz_info = members.get(WEIGHTS_NPZ)
        assets = sorted(n for n in members if n.startswith("assets/") and not n.endswith("/"))
        if weights_info is not None:
            _check_bomb(weights_info, stored_bound=_compressed_bound(path, zf, weights_info))

    cfg = parse_json(raw, what="config.json")
    graph = graph_from_config(cfg, fmt="keras")
    _metadata(graph, cfg, meta_raw)
    if assets:
        graph.metadata["assets"] = assets
    if weights_info is not None:
        opener, keepalive = _weights_opener(path, weights_info)
        index = _index(opener)
        bind_v3_weights(graph, index, opener, keepalive=keepalive)
        graph.metadata["weights_format"] = "h5"
    elif npz_info is not None:
        graph.notes.append(
            "the weights are stored in model.weights.npz as pickled NumPy objects, which inspector "
            "never unpickles: parameter counts are unavailable"
        )
        graph.metadata["weights_format"] = "npz"
    else:
        graph.notes.append("the archive holds no model.weights.h5: the model has no saved weights")
    return finish(graph)


def load_folder(path: Path) -> ModelGraph:
    """An unzipped ``.keras`` folder (also what a SavedModel folder's ``config.json`` would load as)."""
    return _load_folder(path)


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, *, limit_name: str | None = None) -> bytes:
    """One member of an open archive, at most ``limit`` bytes expanded."""
    return _read_member(zf, info, limit, limit_name=limit_name)


def _load_folder(path: Path) -> ModelGraph:
    """An unzipped ``.keras`` (``model.save(..., zipped=False)``): the same three files."""
    cfg_path = path / CONFIG_NAME
    if not cfg_path.is_file():
        raise ModelLoadError("is a folder without config.json or saved_model.pb: not a Keras model")
    lim = current()
    cfg = parse_json(_read_folder_file(cfg_path, lim.json_bytes, limit_name="json_bytes"), what="config.json")
    graph = graph_from_config(cfg, fmt="keras")
    meta_path = path / METADATA_NAME
    meta_raw = _read_folder_file(meta_path, MAX_METADATA_BYTES) if meta_path.is_file() else b""
    _metadata(graph, cfg, meta_raw)
    weights = path / WEIGHTS_H5
    if weights.is_file() and lies_inside(path, weights):

        def opener() -> Any:
            return str(weights)

        bind_v3_weights(graph, _index(opener), opener, keepalive=None)
        graph.metadata["weights_format"] = "h5"
    else:
        graph.notes.append("the folder holds no model.weights.h5: the model has no saved weights")
    return finish(graph)


def _read_folder_file(path: Path, limit: int, *, limit_name: str | None = None) -> bytes:
    """A file of an unzipped Keras model folder: a regular file, not a link, at most ``limit`` bytes."""
    if not lies_inside(path.parent, path):  # a direct child of the folder: inside unless a link
        raise ModelLoadError(
            f"has a {path.name} that is a symbolic link: inspector only reads files inside the model folder")

    def too_big(size: int | None) -> LimitExceeded:
        if size is None:
            return LimitExceeded(f"{path.name} grew past the {limit:,}-byte limit while it was read")
        how = f" ({hint(limit_name)})" if limit_name else ""
        return LimitExceeded(f"{path.name} is {size:,} bytes, more than the {limit:,}-byte limit{how}")

    def unreadable(exc: OSError) -> ModelLoadError:
        return ModelLoadError(f"{path.name} cannot be read: {exc.strerror or exc}")

    return read_capped(path, limit, too_big=too_big, unreadable=unreadable)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, *, limit_name: str | None = None) -> bytes:
    how = f" ({hint(limit_name)})" if limit_name else ""
    if info.file_size > limit:
        raise LimitExceeded(
            f"{info.filename} declares {info.file_size:,} bytes, more than the {limit:,}-byte limit{how}"
        )
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, LZMAError, EOFError, OSError) as exc:
        raise ModelLoadError(f"{info.filename} cannot be read from the archive ({exc}): the file is corrupt") from None
    except (NotImplementedError, RuntimeError) as exc:
        raise ModelLoadError(f"{info.filename} cannot be read from the archive ({exc})") from None
    if len(data) > limit:
        raise LimitExceeded(f"{info.filename} expands past the {limit:,}-byte limit{how}")
    return data


def _compressed_bound(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> int:
    """The most compressed bytes ``info`` can really have: from its data to the next
    member's header or the central directory (its declared ``compress_size`` may lie)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            header = fh.read(30)
    except OSError:
        return info.compress_size
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return info.compress_size
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    data_start = int(info.header_offset) + 30 + int(name_len) + int(extra_len)
    following = [int(i.header_offset) for i in zf.infolist() if i.header_offset > info.header_offset]
    end = min([*following, int(zf.start_dir)])  # zipfile counts both from the file's start
    return max(0, min(int(info.compress_size), end - data_start))


def _check_bomb(info: zipfile.ZipInfo, *, stored_bound: int | None = None) -> None:
    """Refuse a compressed member that would expand past the ratio or size limits;
    ``stored_bound`` is the most compressed bytes it can really have."""
    if info.compress_type == zipfile.ZIP_STORED:
        return
    lim = current()
    stored = info.compress_size if stored_bound is None else min(info.compress_size, stored_bound)
    if info.file_size > COMPRESSION_CHECK_FLOOR \
            and info.file_size > lim.compression_ratio * max(1, stored):
        raise LimitExceeded(
            f"{info.filename} expands {stored:,} stored bytes to {info.file_size:,}: "
            f"refusing a likely zip bomb ({hint('compression_ratio')})"
        )
    if info.file_size > lim.zip_member_bytes:
        raise LimitExceeded(
            f"{info.filename} is compressed and expands to {info.file_size:,} bytes, more than the "
            f"{lim.zip_member_bytes:,}-byte limit ({hint('zip_member_bytes')})"
        )


_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


def _check_central_directory(path: Path, max_members: int) -> None:
    """Refuse an archive whose central directory lists too many entries *before*
    ``zipfile`` parses it (``ZipFile()`` builds an object per entry, however many
    the file claims).  Anything unreadable here is left for ``zipfile`` to report."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            tail_len = min(size, 22 + 0xFFFF)
            fh.seek(size - tail_len)
            tail = fh.read(tail_len)
            i = tail.rfind(_EOCD)
            if i < 0 or len(tail) < i + 22:
                return
            entries, cd_size = struct.unpack("<HI", tail[i + 10:i + 16])
            if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and i >= 20 \
                    and tail[i - 20:i - 16] == _ZIP64_LOCATOR:
                (eocd64_offset,) = struct.unpack("<Q", tail[i - 12:i - 4])
                if 0 <= eocd64_offset <= size - 56:
                    fh.seek(eocd64_offset)
                    rec = fh.read(56)
                    if rec[:4] == _ZIP64_EOCD:
                        entries, cd_size = struct.unpack("<QQ", rec[32:48])
    except (OSError, struct.error):
        return
    if entries > max_members or cd_size > max_members * CENTRAL_DIRECTORY_BYTES_PER_MEMBER:
        raise LimitExceeded(
            f"the archive's directory lists {entries:,} entries in {cd_size:,} bytes, more than the limit of "
            f"{max_members:,} entries ({hint('zip_members')})")


def _metadata(graph: ModelGraph, cfg: dict[str, Any], meta_raw: bytes) -> None:
    meta: Any = {}
    if meta_raw:
        try:
            meta = parse_json(meta_raw, what="metadata.json")
        except ModelLoadError:
            graph.notes.append("metadata.json is unreadable; ignored")
            meta = {}
    if isinstance(meta, dict):
        for key in ("keras_version", "date_saved", "backend"):
            if isinstance(meta.get(key), (str, int, float)):
                graph.metadata[key] = meta[key]
    compile_config = cfg.get("compile_config")
    if isinstance(compile_config, dict) and compile_config:
        graph.metadata["compile_config"] = compile_config  # scanned with the config (graph_from_config)


class _TempCopy:
    """A temporary extraction of a compressed weights member; deleted with its last user."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, os.path.dirname(path), True)


def _weights_opener(path: Path, info: zipfile.ZipInfo) -> tuple[Callable[[], Any], Any]:
    """A callable returning a fresh file object (or path) for the weights HDF5 member,
    and an object to keep alive as long as weights may be read."""
    if info.compress_type == zipfile.ZIP_STORED:
        offset, size = stored_member_span(path, info)
        src = str(path)
        return (lambda: ZipMemberFile(src, offset, size)), None
    tmpdir = tempfile.mkdtemp(prefix="inspector-")
    target = os.path.join(tmpdir, WEIGHTS_H5)
    try:
        with zipfile.ZipFile(path) as zf, zf.open(info) as src_fh, open(target, "wb") as out:
            # checked while streaming too: the expansion so far against what the member can really hold
            most = current().compression_ratio * max(1, _compressed_bound(path, zf, info))
            written = 0
            while True:
                chunk = src_fh.read(1 << 20)
                if not chunk:
                    break
                written += len(chunk)
                if written > info.file_size or written > COMPRESSION_CHECK_FLOOR and written > most:
                    raise LimitExceeded(f"{info.filename} expands past its declared size or the compression "
                                        f"ratio: refusing a zip bomb ({hint('compression_ratio')})")
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, LZMAError, EOFError, OSError) as exc:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise ModelLoadError(f"{info.filename} cannot be extracted ({exc}): the archive is corrupt") from None
    except (NotImplementedError, RuntimeError) as exc:  # unsupported compression, encryption
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise ModelLoadError(f"{info.filename} cannot be extracted ({exc})") from None
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    holder = _TempCopy(target)
    return (lambda: holder.path), holder


def _want_attrs(group_path: str) -> tuple[str, ...]:
    return ("name",) if group_path == "vars" or group_path.endswith("/vars") else ()


def _index(opener: Callable[[], Any]) -> H5Index:
    src = opener()
    try:
        index, _ = index_h5(src, want_attrs=_want_attrs, subject="its model.weights.h5 is", what="the archive")
    finally:
        if hasattr(src, "close"):
            src.close()
    return index


# -- binding weights to layers ----------------------------------------------------------------

def _reader_factory(opener: Callable[[], Any], keepalive: Any) -> Callable[[str], Callable[[], Any]]:
    def make(ds_path: str) -> Callable[[], Any]:
        read = dataset_reader(opener, ds_path)
        if keepalive is None:
            return read

        def read_keep() -> Any:
            _ = keepalive  # hold the temporary extraction while readers exist
            return read()

        return read_keep

    return make


def bind_v3_weights(graph: ModelGraph, index: H5Index, opener: Callable[[], Any], *, keepalive: Any) -> None:
    """Attach the weights of a Keras 3 layout (``layers/<class>/vars/<i>``) to ``graph``."""
    binder = _Binder(index, _reader_factory(opener, keepalive))
    if graph.kind == "subclassed":
        binder.bind_subclassed(graph)
    else:
        binder.bind_model(graph, "", depth=0, prefix="")
    graph.optimizer_weights = binder.optimizer()
    extra = [c for c in index.children("") if c not in ("layers", "_layer_checkpoint_dependencies")
             and c not in _TOP_LEVEL_NON_MODEL and index.is_group(c) and index.datasets_under(c)]
    if extra and graph.kind != "subclassed":
        graph.notes.append(f"weights file groups not attributed to any layer: {', '.join(sorted(extra)[:5])}")
    graph.security.extend(index.attributed_security(binder.owner_of))


class _Binder:
    def __init__(self, index: H5Index, make_reader: Callable[[str], Callable[[], Any]]) -> None:
        self.index = index
        self.make_reader = make_reader
        self.bound: dict[tuple[str, str], list[Weight]] = {}
        self.owners: dict[str, str] = {}
        """Weights-file group → path of the layer it belongs to (``outer/inner``)."""

    # models
    def owner_of(self, h5_path: str) -> str | None:
        """The layer whose group holds ``h5_path`` (the innermost one), if any."""
        probe = h5_path
        while probe:
            if probe in self.owners:
                return self.owners[probe]
            probe = probe.rpartition("/")[0]
        return None

    def bind_model(self, graph: ModelGraph, gpath: str, *, depth: int, prefix: str) -> None:
        idx = self.index
        container = join(gpath, "layers")
        if not idx.is_group(container) and idx.is_group(join(gpath, "_layer_checkpoint_dependencies")):
            container = join(gpath, "_layer_checkpoint_dependencies")  # tf_keras 2.13 files
        children = set(idx.children(container))
        by_attr: dict[str, str] = {}
        for member in idx.children(container):
            name = idx.attrs.get(join(join(container, member), "vars"), {}).get("name")
            if isinstance(name, str) and name not in by_attr:
                by_attr[name] = member
        used: dict[str, int] = {}
        for lay in container_layers(graph):
            computed = _unique(snake_case(lay.type), used)
            child = by_attr.get(lay.name)
            if child is None and computed in children and computed not in by_attr.values():
                child = computed
            key = (lay.type, lay.name)
            if child is None:
                if key in self.bound:
                    lay.weights = list(self.bound[key])  # a layer shared with another nested model
                continue
            lpath = join(container, child)
            self.owners.setdefault(lpath, prefix + lay.name)
            if lay.subgraph is not None:
                if depth >= current().model_nesting:
                    lay.notes.append("nested too deeply: weights not read")
                    continue
                self.bind_model(lay.subgraph, lpath, depth=depth + 1, prefix=f"{prefix}{lay.name}/")
                lay.weights = self.collect(join(lpath, "vars"), None, {}, lay.trainable, "", lay, own_only=True)
            else:
                lay.weights = self.collect(lpath, lay.type, lay.config, lay.trainable, "", lay)
            self.bound.setdefault(key, lay.weights)

    def bind_subclassed(self, graph: ModelGraph) -> None:
        """A subclassed model: one row per weight-bearing sub-object the file stores."""
        idx = self.index
        known = {snake_case(c): c for c in KERAS_LAYER_CLASSES}
        rows: list[tuple[str, str]] = []
        for child in idx.children(""):
            path = child
            if child in _TOP_LEVEL_NON_MODEL or not idx.is_group(path):
                continue
            if child in ("layers", "_layer_checkpoint_dependencies"):
                rows.extend((item, join(path, item)) for item in idx.children(path))
            else:
                rows.append((child, path))
        own = self.collect("vars", None, {}, graph.trainable, "", None, own_only=True)
        seen: set[str] = set()
        for child, path in rows:
            weights = self.collect(path, None, {}, graph.trainable, "", None, probe_class=True)
            keys = {w.key for w in weights}
            if not weights or keys <= seen:
                continue
            seen |= keys
            name = idx.attrs.get(join(path, "vars"), {}).get("name") or child
            cls = "Layer"
            for candidate in (str(name), child):  # "dense_2" → Dense, "batch_normalization" → …
                base = candidate.rsplit("_", 1)[0] if candidate.rsplit("_", 1)[-1].isdigit() else candidate
                if base in known:
                    cls = known[base]
                    break
            if cls != "Layer":
                weights = self.collect(path, cls, {}, graph.trainable, "", None)
            lay = Layer(name=str(name), type=cls, trainable=graph.trainable, weights=weights,
                        inbound=[[]], node_shapes=[[None]])
            graph.layers.append(lay)
        if own:
            graph.layers.append(Layer(name=graph.name, type="(model variables)", weights=own,
                                      inbound=[[]], node_shapes=[[None]]))
        graph.invalidate()

    # layers and sub-objects
    def collect(self, gpath: str, cls: str | None, cfg: dict[str, Any], trainable: bool, prefix: str,
                layer: Layer | None, *, own_only: bool = False, probe_class: bool = False,
                depth: int = 0) -> list[Weight]:
        idx = self.index
        out: list[Weight] = []
        vars_path = gpath if own_only else join(gpath, "vars")
        names = [n for n in idx.children(vars_path) if join(vars_path, n) in idx.datasets]
        numbered = sorted((int(n), n) for n in names if n.isdigit())
        named = [n for n in names if not n.isdigit()]
        roles = ordered_roles(cls, cfg, len(numbered)) if cls else None
        if roles is None and numbered:
            roles = [f"var_{i}" for i, _ in numbered]
            if layer is not None and not probe_class:
                layer.notes.append(
                    f"weights of {cls or 'a sub-object'}{' ' + prefix.rstrip('/') if prefix else ''}: "
                    "roles unknown, shown as var_N")
        for (_, n), role in zip(numbered, roles or [], strict=False):
            out.append(self._weight(join(vars_path, n), prefix + role, role, cls, cfg, trainable))
        for n in named:
            out.append(self._weight(join(vars_path, n), prefix + n, n, cls, cfg, trainable))
        if own_only:
            return out
        if depth >= MAX_SUBOBJECT_DEPTH:
            if layer is not None:
                layer.notes.append("sub-objects nested too deeply in the weights file: not all weights read")
            return out
        for child in idx.children(gpath):
            cpath = join(gpath, child)
            if child == "vars" or not idx.is_group(cpath):
                continue
            sub = subobject(cls, cfg, child) if cls else None
            if sub is None and not idx.is_group(join(cpath, "vars")):
                out.extend(self._container(cpath, cfg, trainable, prefix, layer, depth + 1))
                continue
            sub_cls, sub_cfg = sub if sub is not None else (None, {})
            sub_train = trainable and sub_cfg.get("trainable", True) is not False
            label = idx.attrs.get(join(cpath, "vars"), {}).get("name") or child
            out.extend(self.collect(cpath, sub_cls, sub_cfg, sub_train, f"{prefix}{label}/", layer,
                                    probe_class=probe_class, depth=depth + 1))
        return out

    def _container(self, cpath: str, cfg: dict[str, Any], trainable: bool, prefix: str,
                   layer: Layer | None, depth: int) -> list[Weight]:
        """A list attribute (StackedRNNCells ``cells``): items named by class + counter."""
        idx = self.index
        entries: list[tuple[str, dict[str, Any]]] = []
        i = 0
        while True:
            item = container_item(cfg, "", i)
            if item is None:
                break
            entries.append(item)
            i += 1
        used: dict[str, int] = {}
        expected = {_unique(snake_case(c), used): (c, conf) for c, conf in entries}
        out: list[Weight] = []
        for child in idx.children(cpath):
            ipath = join(cpath, child)
            if not idx.is_group(ipath):
                continue
            sub_cls, sub_cfg = expected.get(child, (None, {}))
            sub_train = trainable and sub_cfg.get("trainable", True) is not False
            label = idx.attrs.get(join(ipath, "vars"), {}).get("name") or child
            out.extend(self.collect(ipath, sub_cls, sub_cfg, sub_train, f"{prefix}{label}/", layer,
                                    depth=depth + 1))
        return out

    def _weight(self, ds_path: str, name: str, role: str, cls: str | None, cfg: dict[str, Any],
                trainable: bool) -> Weight:
        ds = self.index.datasets[ds_path]
        return Weight(
            name=name, role=role, shape=ds.shape, dtype=ds.dtype,
            trainable=trainable and (role_trainable(cls, role, cfg) if cls else True),
            key=self.index.key(ds_path), quantization=role in QUANTIZATION_ROLES,
            reader=self.make_reader(ds_path),
        )

    def optimizer(self) -> list[Weight]:
        out = []
        for ds in self.index.datasets_under("optimizer"):
            out.append(Weight(name=ds.path, role="optimizer_state", shape=ds.shape, dtype=ds.dtype,
                              trainable=False, key=ds.path, reader=self.make_reader(ds.path)))
        return out


def _unique(name: str, used: dict[str, int]) -> str:
    """Keras's ``_get_unique_name``: ``dense``, ``dense_1``, ``dense_2`` …"""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name
