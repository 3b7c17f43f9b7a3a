"""TensorFlow SavedModel folders, read without running or loading the model.

Nothing here calls ``tf.saved_model.load`` or ``keras.models.load_model``: those
build the model's functions and may run code (``py_function`` ops, Keras Lambda
layers).  Instead the folder's files are *parsed*:

* ``keras_metadata.pb`` (written by tf.keras 2.x ``model.save(dir)``) carries the
  Keras config of the model and of every layer as JSON.  It is decoded with a small
  protobuf wire-format reader in this module, and the graph is built from the
  config exactly as for a ``.h5`` file (:mod:`~inspector.loaders.keras_graph`).
* ``saved_model.pb`` is parsed with TensorFlow's protobuf classes (that is why the
  ``tensorflow`` extra is needed).  Its object graph lists every variable with
  its name, shape, dtype and trainable flag; its signatures give the inputs and
  outputs; its graph and function library are scanned for file-system and Python
  callback ops (SEC005).  A SavedModel without Keras metadata (``model.export()``,
  ``tf.saved_model.save`` of a ``tf.Module``) is shown as its inputs plus its
  variables grouped by owner, without wiring.

Weights are matched to layers by their variable names (``conv1/kernel``), as for
legacy HDF5; values are read lazily from ``variables/`` with TensorFlow's
checkpoint reader, one tensor per call.
"""

from __future__ import annotations

import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import isolation
from ..errors import LimitExceeded, MissingDependency, ModelLoadError, UnsafeModel
from ..fileio import read_capped
from ..ir import Inbound, Layer, ModelGraph, SecurityFact, Weight
from ..limits import DEFAULTS, current, hint
from ..pathsafety import lies_inside
from .keras_config import compile_config_from_training_config, parse_json
from .keras_graph import finish, graph_from_config
from .keras_security import scan_config
from .keras_weights import QUANTIZATION_ROLES, normalize_role, role_trainable

MAX_PROTO_BYTES = DEFAULTS.proto_bytes
"""Default largest ``saved_model.pb`` / ``keras_metadata.pb`` parsed (protobuf's own hard
limit is 2 GiB); the limit in force is :func:`inspector.limits.current`."""

RISKY_OPS: dict[str, str] = {
    **{op: "reads or writes files" for op in (
        "ReadFile", "WriteFile", "MatchingFiles", "DeleteFile", "Save", "SaveV2", "SaveSlices",
        "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints", "WholeFileReader",
        "WholeFileReaderV2", "TFRecordReader", "TFRecordReaderV2", "TextLineReader",
        "TextLineReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
        "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2", "ImmutableConst", "LoadAndRemapMatrix",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "CreateSummaryFileWriter",
        "SaveDataset", "SaveDatasetV2", "LoadDataset", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
        "RecordInput", "WriteSummary", "WriteScalarSummary", "WriteTextSummary", "WriteRawProtoSummary",
    )},
    **{op: "reads or writes files" for op in (
        "MatchingFilesDataset", "ExperimentalMatchingFilesDataset", "LMDBReader", "LMDBDataset",
        "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset", "CSVDataset", "CSVDatasetV2",
        "ExperimentalCSVDataset", "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader",
        "ExperimentalSaveDataset", "GenerateVocabRemapping", "CreateSummaryDbWriter", "ImportEvent",
        "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary",
        "FileSystemSetConfiguration",
    )},
    **{op: "calls back into Python" for op in ("PyFunc", "PyFuncStateless", "EagerPyFunc")},
    **{op: "talks to other processes over the network" for op in (
        "RpcClient", "RpcCall", "RpcServer", "RpcServerStart", "RpcServerRegister", "RpcCheckStatus",
        "RpcGetValue",
    )},
    **{op: "sends data out of the process" for op in (
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
        "DebugNumericSummaryV2", "CollectiveBcastSend", "CollectiveBcastSendV2",
    )},
}
"""TensorFlow ops that reach outside the computation (SEC005)."""

_SAVER_FUNCTION_PREFIXES = ("__inference__traced_save", "__inference__traced_restore")


def load(path: Path) -> ModelGraph:
    """Read a SavedModel folder statically (needs the ``tensorflow`` extra)."""
    path = Path(path)
    sm = _read_saved_model(path)
    mg = sm.meta_graphs[0]
    security = _scan_meta_graphs(sm)
    meta_path = path / "keras_metadata.pb"
    nodes = read_keras_metadata(_read_capped(meta_path)) if meta_path.is_file() else []
    root = next((n for n in nodes if n.get("node_path") == "root"), None)
    graph = _keras_graph(root) if root is not None else None
    node_facts = []
    for node in nodes:  # layer metadata is scanned too: a Lambda hides there
        if node is not root and isinstance(node.get("metadata"), dict):
            metric = node.get("identifier") == "_tf_keras_metric"  # a compiled model's metrics: not layers
            node_facts.extend(scan_config(node["metadata"], compile_object=metric))
    variables = list(_variables(mg))
    reader = _checkpoint_reader(path)
    if graph is None:
        graph = _variables_graph(path.name or "saved_model", mg, variables, reader)
        graph.notes.append(
            "SavedModel without Keras metadata: inputs from the serving signature, variables grouped "
            "by owner; the wiring between them is not shown")
    else:
        _bind_variables(graph, variables, reader)
    graph.optimizer_weights = [
        _weight(v, v.path, "optimizer_state", trainable=False, reader=reader)
        for v in variables if v.kind == "optimizer"
    ]
    # The model config names nested layers by path, a node's metadata by name.
    known: set[tuple[str, str | None]] = {(f.code, (f.layer or "").rsplit("/", 1)[-1]) for f in graph.security}
    for fact in node_facts:
        if (fact.code, fact.layer) not in known:
            known.add((fact.code, fact.layer))
            graph.security.append(fact)
    graph.security.extend(security)
    info = mg.meta_info_def
    if info.tensorflow_version:
        graph.metadata["tensorflow_version"] = info.tensorflow_version
    graph.metadata["signatures"] = sorted(k for k in mg.signature_def if not k.startswith("__"))
    graph.metadata["saved_model_schema_version"] = int(sm.saved_model_schema_version)
    return finish(graph)


def _read_saved_model(path: Path) -> Any:
    """The parsed ``saved_model.pb`` of the folder (a ``SavedModel`` proto with at least
    one MetaGraph); :class:`ModelLoadError` when there is none or it does not parse."""
    pb_path = path / "saved_model.pb"
    if not pb_path.is_file():
        if (path / "saved_model.pbtxt").is_file():
            raise ModelLoadError("holds saved_model.pbtxt (text format), which inspector does not read")
        raise ModelLoadError("is a folder without saved_model.pb: not a SavedModel")
    saved_model_pb2 = _protos()
    raw = _read_capped(pb_path)
    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString(raw)
    except Exception as exc:  # google.protobuf.message.DecodeError, RecursionError …
        raise ModelLoadError(
            f"its saved_model.pb cannot be parsed ({type(exc).__name__}): the file is corrupt") from None
    del raw
    if not sm.meta_graphs:
        raise ModelLoadError("its saved_model.pb holds no MetaGraph: the SavedModel is empty or corrupt")
    return sm


def _scan_meta_graphs(sm: Any) -> list[SecurityFact]:
    """SEC facts about the ops of every MetaGraph (TensorFlow may load any of them by
    its tags); facts of a MetaGraph after the first say which one."""
    security = []
    for i, meta_graph in enumerate(sm.meta_graphs):
        for fact in scan_ops(meta_graph):
            if i:
                tags = ", ".join(meta_graph.meta_info_def.tags) or "no tags"
                fact = SecurityFact(fact.code, f"{fact.message} (MetaGraph {i}: {tags})", layer=fact.layer,
                                    detail=fact.detail, kind=fact.kind)
            security.append(fact)
    return security


def _keras_graph(root: dict[str, Any]) -> ModelGraph | None:
    """The graph of the model config in the Keras metadata of the root object, with
    its Keras version, backend and compile settings; None without a usable config."""
    meta = untuple(root.get("metadata"))
    model_config = meta.get("model_config") if isinstance(meta, dict) else None
    if not (isinstance(model_config, dict) and isinstance(model_config.get("config"), (dict, list))):
        model_config = {"class_name": meta.get("class_name"), "config": meta.get("config")} \
            if isinstance(meta, dict) else None
    if not (isinstance(model_config, dict) and isinstance(model_config.get("class_name"), str)
            and isinstance(model_config.get("config"), (dict, list))):
        return None
    graph = graph_from_config(model_config, fmt="savedmodel")
    if isinstance(meta.get("keras_version"), str):
        graph.metadata["keras_version"] = meta["keras_version"]
    if isinstance(meta.get("backend"), str):
        graph.metadata["backend"] = meta["backend"]
    training = meta.get("training_config")
    if isinstance(training, dict):
        graph.metadata["compile_config"] = compile_config_from_training_config(training)
        graph.security.extend(scan_config({"training_config": training}))
    return graph


def _quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up chatter off stderr (it carries inspector's errors)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at ``/dev/null`` meanwhile: TensorFlow's native start-up lines
    (oneDNN, CUDA, absl) reach stderr whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and inspector's
    errors must stay one line."""
    import os
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr: nothing to protect
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):  # pragma: no cover
            pass
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _protos() -> Any:
    _quiet_tensorflow()
    try:
        with _stderr_silenced():
            from tensorflow.core.protobuf import saved_model_pb2
    except ImportError:
        raise MissingDependency("reading a SavedModel", extra="tensorflow", package="tensorflow") from None
    return saved_model_pb2


def _read_capped(path: Path) -> bytes:
    if not lies_inside(path.parent, path):  # a direct child of the folder: inside unless a link
        raise ModelLoadError(f"its {path.name} is a symbolic link: inspector only reads files inside the model folder")
    limit = current().proto_bytes

    def too_big(size: int | None) -> LimitExceeded:
        how_big = f"{size:,} bytes, more than" if size is not None else "more than"
        return LimitExceeded(f"{path.name} is {how_big} the {limit:,}-byte limit ({hint('proto_bytes')})")

    def unreadable(exc: OSError) -> ModelLoadError:
        return ModelLoadError(f"its {path.name} cannot be read: {exc.strerror or exc}")

    return read_capped(path, limit, too_big=too_big, unreadable=unreadable)


# -- keras_metadata.pb: a tiny protobuf wire-format reader ---------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ModelLoadError("its keras_metadata.pb is truncated or corrupt")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message, not recursive."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise ModelLoadError("its keras_metadata.pb is truncated or corrupt")
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ModelLoadError("its keras_metadata.pb is not a Keras metadata file")
        yield field, wire, value


def read_keras_metadata(raw: bytes) -> list[dict[str, Any]]:
    """Decode ``SavedMetadata {repeated SavedObject nodes = 1}`` where
    ``SavedObject {int32 node_id = 2; string node_path = 3; string identifier = 4;
    string metadata = 5}``; ``metadata`` is parsed as JSON (with the config limits)."""
    out: list[dict[str, Any]] = []
    for field, wire, value in _fields(raw):
        if field != 1 or wire != 2:
            continue
        node: dict[str, Any] = {}
        for f, w, v in _fields(value):
            if f == 2 and w == 0:
                node["node_id"] = v
            elif f == 3 and w == 2:
                node["node_path"] = v.decode("utf-8", "replace")
            elif f == 4 and w == 2:
                node["identifier"] = v.decode("utf-8", "replace")
            elif f == 5 and w == 2:
                node["metadata"] = parse_json(v, what="a keras_metadata.pb entry") if v else {}
        out.append(node)
    return out


def untuple(obj: Any) -> Any:
    """Replace tf.keras's ``{"class_name": "__tuple__", "items": [...]}`` by plain lists
    (the SavedModel metadata spells tuples that way; configs elsewhere use lists)."""

    def conv(x: Any) -> Any:
        if isinstance(x, dict) and x.get("class_name") == "__tuple__" and isinstance(x.get("items"), list):
            return list(x["items"])
        return x

    root = [conv(obj)]
    stack: list[Any] = [root[0]]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            for k, v in x.items():
                v2 = conv(v)
                if v2 is not v:
                    x[k] = v2
                if isinstance(v2, (dict, list)):
                    stack.append(v2)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                v2 = conv(v)
                if v2 is not v:
                    x[i] = v2
                if isinstance(v2, (dict, list)):
                    stack.append(v2)
    return root[0]


# -- saved_model.pb ------------------------------------------------------------------------

class _Var:
    __slots__ = ("node_id", "name", "shape", "dtype", "trainable", "path", "kind")

    def __init__(self, node_id: int, name: str, shape: tuple[int, ...], dtype: str, trainable: bool,
                 path: str, kind: str) -> None:
        self.node_id, self.name, self.shape, self.dtype = node_id, name, shape, dtype
        self.trainable, self.path, self.kind = trainable, path, kind


def _dtype_name(enum_value: int) -> str:
    try:
        from tensorflow.core.framework import types_pb2

        name = str(types_pb2.DataType.Name(enum_value))
    except Exception:
        return "unknown"
    name = name[3:].lower() if name.startswith("DT_") else name.lower()
    return {"float": "float32", "double": "float64", "half": "float16", "resource": "resource"}.get(name, name)


def _variables(mg: Any) -> Iterator[_Var]:
    """Every variable of the object graph once, with its first (breadth-first) path;
    ``kind`` is ``model``, ``optimizer`` or ``metric``."""
    og = mg.object_graph_def
    n = len(og.nodes)
    if n == 0:
        return
    paths: dict[int, str] = {0: ""}
    queue = [0]
    head = 0
    while head < len(queue):
        node_id = queue[head]
        head += 1
        for child in og.nodes[node_id].children:
            cid = child.node_id
            if 0 <= cid < n and cid not in paths:
                parent = paths[node_id]
                paths[cid] = f"{parent}/{child.local_name}" if parent else child.local_name
                queue.append(cid)
    # model.export() (Keras 3) lists the model's variables under these two names:
    # they know which ones Keras trains (a frozen layer's tf.Variable says trainable).
    listed: dict[str, set[int]] = {"trainable_variables": set(), "non_trainable_variables": set()}
    for child in og.nodes[0].children:
        if child.local_name in listed and 0 <= child.node_id < n:
            listed[child.local_name] = {c.node_id for c in og.nodes[child.node_id].children}
    keras_lists = bool(listed["trainable_variables"] or listed["non_trainable_variables"])
    frozen_ids = {_ident(og, i) for i in listed["non_trainable_variables"] if 0 <= i < n}
    for node_id, node in enumerate(og.nodes):
        if node.WhichOneof("kind") != "variable" or node_id not in paths:
            continue
        var = node.variable
        path = paths[node_id]
        shape = tuple(max(0, int(d.size)) for d in var.shape.dim) if not var.shape.unknown_rank else ()
        first = path.split("/", 1)[0]
        kind = "optimizer" if first == "optimizer" else "metric" if first == "keras_api" else "model"
        trainable = bool(var.trainable)
        if keras_lists:
            trainable = node_id in listed["trainable_variables"] or (
                trainable and _ident(og, node_id) not in frozen_ids)
        yield _Var(node_id, var.name or path, shape, _dtype_name(var.dtype), trainable, path, kind)


def _ident(og: Any, node_id: int) -> tuple[Any, ...]:
    """What makes two variable nodes one Keras variable (export tracks it in several
    lists): its name and shape; unnamed variables are only ever themselves."""
    var = og.nodes[node_id].variable
    if not var.name:
        return ("node", node_id)
    return (var.name, tuple(d.size for d in var.shape.dim))


def _checkpoint_files_inside(path: Path) -> None:
    """Refuse to let TensorFlow read variables unless every file it may open is safe:
    ``variables/`` and each entry in it (the index, the data shards, a TF1
    ``variables/variables``, whatever a glob of the prefix matches) must be a regular file
    inside the folder, not a symbolic link (TensorFlow's checkpoint reader would follow it
    anywhere) and not a FIFO or device (TensorFlow would block on it forever); the index
    is a protobuf table, bounded like ``saved_model.pb``."""
    folder = path / "variables"
    if not lies_inside(path, folder):
        raise UnsafeModel("the SavedModel's variables is a symbolic link or lies outside its folder: "
                          "inspector does not read variables from there")
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError as exc:
        raise ModelLoadError(f"the SavedModel's variables folder cannot be listed: {exc.strerror or exc}") from None
    limit = current().proto_bytes
    for entry in entries:
        where = entry.relative_to(path)
        if not lies_inside(path, entry):
            raise UnsafeModel(f"the SavedModel's {where} is a symbolic link or lies outside its folder: "
                              "inspector does not read variables from there")
        try:
            st = entry.lstat()
        except OSError as exc:
            raise ModelLoadError(f"the SavedModel's {where} cannot be read: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                continue  # TensorFlow opens no folder below variables/
            raise UnsafeModel(f"the SavedModel's {where} is not a regular file (a FIFO, device or socket): "
                              "TensorFlow would block or read endlessly on it; its variables are not read")
        if entry.name.endswith(".index") and st.st_size > limit:
            raise LimitExceeded(f"the SavedModel's {where} is {st.st_size:,} bytes, more than the {limit:,}-byte "
                                f"limit ({hint('proto_bytes')})")


def _checkpoint_reader(path: Path) -> Callable[[str], Callable[[], Any]]:
    prefix = str(path / "variables" / "variables")
    opened: list[bool] = []
    """Whether TensorFlow has read this folder's checkpoint once, in a time-limited child."""

    def make(ckpt_path: str) -> Callable[[], Any]:
        key = f"{ckpt_path}/.ATTRIBUTES/VARIABLE_VALUE"

        def tf_read() -> Any:
            with _stderr_silenced():
                import tensorflow as tf

                try:
                    return tf.train.load_checkpoint(prefix).get_tensor(key)
                except Exception as exc:
                    raise ModelLoadError(f"cannot read variable {ckpt_path!r} from the SavedModel: "
                                         f"{isolation.one_line(exc)}") from None

        def read() -> Any:
            _checkpoint_files_inside(path)
            _quiet_tensorflow()
            if opened or not isolation.ISOLATE:
                return tf_read()
            with _stderr_silenced():
                import tensorflow as tf  # imported before the fork, so the child does not pay for it
            assert tf
            seconds = current().hdf5_seconds
            outcome = isolation.call_in_child(tf_read, seconds=seconds, what="reading the SavedModel's variables")
            if isinstance(outcome, isolation.Failure):
                if outcome.kind == "timeout":
                    raise LimitExceeded(f"TensorFlow could not read the SavedModel's variables in {seconds:g} s: "
                                        f"the checkpoint is damaged or crafted to hang its reader "
                                        f"({hint('hdf5_seconds')})")
                raise ModelLoadError(f"TensorFlow's checkpoint reader failed on the SavedModel's variables "
                                     f"({outcome.kind}): the checkpoint is corrupt or crafted")
            opened.append(True)
            return outcome

        return read

    return make


_EXPORT_LISTS = frozenset({"variables", "trainable_variables", "non_trainable_variables", "_all_variables"})
"""Lists through which ``model.export()`` (Keras 3) tracks each variable several times."""


def _key(v: _Var) -> str:
    if v.path.split("/", 1)[0] in _EXPORT_LISTS and "/" in v.name:
        return f"savedmodel-var-{v.name}-{v.shape}-{v.dtype}"
    return f"savedmodel-node-{v.node_id}"


def _weight(v: _Var, name: str, role: str, *, trainable: bool,
            reader: Callable[[str], Callable[[], Any]]) -> Weight:
    return Weight(name=name, role=role, shape=v.shape, dtype=v.dtype, trainable=trainable,
                  key=_key(v), quantization=role in QUANTIZATION_ROLES,
                  reader=reader(v.path))


def _bind_variables(graph: ModelGraph, variables: list[_Var], reader: Callable[[str], Callable[[], Any]]) -> None:
    from .keras_h5 import _find_owner

    top = Layer(name="", type="Functional", subgraphs={"model": graph})
    unmatched = 0
    for v in variables:
        if v.kind != "model":
            continue
        comps = [c for c in v.name.split(":")[0].split("/") if c]
        owner, rest = _find_owner(top, comps)
        if owner is None or owner is top:
            unmatched += 1
            continue
        name = "/".join(rest) if rest else comps[-1]
        role = normalize_role(owner.type, name.rsplit("/", 1)[-1])
        owner.weights.append(_weight(
            v, name, role, reader=reader,
            trainable=v.trainable and owner.trainable and role_trainable(owner.type, role, owner.config)))
    if unmatched:
        graph.notes.append(f"{unmatched} variable(s) could not be matched to a layer by name; they are not shown")


def _variables_graph(name: str, mg: Any, variables: list[_Var],
                     reader: Callable[[str], Callable[[], Any]]) -> ModelGraph:
    graph = ModelGraph(name=name, format="savedmodel", kind="subclassed")
    sig = mg.signature_def.get("serving_default")
    if sig is None:
        sig = next((s for k, s in sorted(mg.signature_def.items()) if not k.startswith("__")), None)
    if sig is not None:
        for key in sorted(sig.inputs):
            info = sig.inputs[key]
            shape = None if info.tensor_shape.unknown_rank else tuple(
                None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim)
            lay = Layer(name=key, type="InputLayer", inbound=[[]], node_shapes=[[shape]],
                        dtype=_dtype_name(info.dtype), config={"name": key})
            graph.layers.append(lay)
            graph.inputs.append(Inbound(key))
    groups: dict[str, list[_Var]] = {}
    for v in variables:
        if v.kind == "model":
            owner = v.name.split(":")[0].rsplit("/", 1)[0] if "/" in v.name else "(variables)"
            groups.setdefault(owner, []).append(v)
    seen: set[str] = set()
    for owner in groups:
        weights = []
        for v in groups[owner]:
            if _key(v) in seen:
                continue
            seen.add(_key(v))
            role = v.name.split(":")[0].rsplit("/", 1)[-1]
            weights.append(_weight(v, role, role, trainable=v.trainable, reader=reader))
        if weights:
            graph.layers.append(Layer(name=owner, type="Variables", weights=weights))
    graph.invalidate()
    return graph


# -- SEC005 ------------------------------------------------------------------------------

CHECKPOINT_OPS = frozenset({"Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice",
                            "MergeV2Checkpoints"})
"""Ops every SavedModel's own saver uses to write and read its variables: allowed
inside the saver (TF2 ``__inference__traced_save``/``_restore`` functions, the TF1
saver's name scope), reported anywhere else."""


def scan_ops(mg: Any) -> list[SecurityFact]:
    """File-system, network, Python-callback and debug ops in the graph or its
    functions (SEC005).  The checkpoint ops of the SavedModel's own saver are not
    reported; any other risky op is, even inside a function named like a saver."""
    library = {f.signature.name: f for f in mg.graph_def.library.function}
    saver_roots = {name for name in library if name.startswith(_SAVER_FUNCTION_PREFIXES)}
    # A function the signatures call is serving code, whatever its name says.
    saver_functions = _reachable(saver_roots, library) - _reachable(set(_signature_calls(mg, library)), library)
    restore_op = mg.saver_def.restore_op_name if mg.HasField("saver_def") else ""
    saver_scope = restore_op.rpartition("/")[0] + "/" if "/" in restore_op else None
    facts: list[SecurityFact] = []
    seen: set[tuple[str, str]] = set()
    serving = {f"function {name}" for name in _reachable(set(_signature_calls(mg, library)), library)}

    def check(nodes: Any, where: str, *, in_saver: bool) -> None:
        for node in nodes:
            reason = _risk(node)
            if reason is None:
                continue
            if node.op in CHECKPOINT_OPS and (in_saver or (saver_scope and node.name.startswith(saver_scope))):
                continue
            if (node.op, where) not in seen:
                seen.add((node.op, where))
                if where in serving:
                    where += " (called by a signature)"
                facts.append(SecurityFact("SEC005", f"{node.op} op {node.name!r} in {where} {reason}",
                                          detail=node.name, kind=node.op))

    check(mg.graph_def.node, "the main graph", in_saver=False)
    for fname in sorted(library):
        check(library[fname].node_def, f"function {fname}", in_saver=fname in saver_functions)
    return facts


def _reachable(roots: set[str], library: dict[str, Any]) -> set[str]:
    """The functions of ``library`` that ``roots`` are or call, directly or not."""
    found: set[str] = set()
    stack = list(roots)
    while stack:
        fname = stack.pop()
        if fname in found or fname not in library:
            continue
        found.add(fname)
        stack.extend(_called_functions(library[fname].node_def, library))
    return found


def _signature_calls(mg: Any, library: dict[str, Any]) -> Iterator[str]:
    """Functions called by the main-graph nodes that produce the signatures' outputs."""
    names = {t.name.split(":")[0].lstrip("^") for sig in mg.signature_def.values()
             for t in list(sig.outputs.values()) + list(sig.inputs.values())}
    yield from _called_functions([n for n in mg.graph_def.node if n.name in names], library)


def _risk(node: Any) -> str | None:
    reason = RISKY_OPS.get(node.op)
    if reason is not None:
        if node.op == "MergeV2Checkpoints" and "delete_old_dirs" in node.attr and node.attr["delete_old_dirs"].b:
            return f"{reason} and deletes the checkpoint folders it merges (delete_old_dirs)"
        return reason
    if node.op in ("PrintV2", "Print"):
        attr = node.attr.get("output_stream")
        stream = attr.s.decode("utf-8", "replace") if attr is not None and attr.s else ""
        if stream.startswith("file://"):
            return f"writes to the file {stream[7:]!r}"
    return None


def _called_functions(nodes: Any, library: dict[str, Any]) -> Iterator[str]:
    for node in nodes:
        if node.op in library:
            yield node.op
        for attr in node.attr.values():
            if attr.HasField("func") and attr.func.name:
                yield attr.func.name
            if attr.HasField("list"):
                for f in attr.list.func:
                    yield f.name
