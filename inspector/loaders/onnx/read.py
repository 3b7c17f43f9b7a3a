"""Reading an ONNX file: binary (through :mod:`.wire`, big tensors skipped) or text
format, into a ``ModelProto``; then :func:`load` builds the graph."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Mapping

from ... import limits
from ...errors import InspectorError, LimitExceeded, ModelLoadError, UnsupportedFormat
from ...ir import ModelGraph
from ...isolation import one_line
from ...limits import Limits, hint
from . import inference, lite, retype, wire
from .builder import Builder
from .external import check_reachable
from .wire import PROTOBUF_MAX_BYTES


# -- public entry point ------------------------------------------------------------------
def load(path: Path, *, infer_shapes: bool = True, dims: Mapping[str, int] | None = None,
         dims_found: set[str] | None = None) -> ModelGraph:
    """Read the ONNX model at ``path`` statically (nothing is executed); ``dims`` binds symbolic
    dims to numbers before shape inference (:mod:`inspector.loaders.bind`)."""
    path = Path(path)
    lim = limits.current()  # the limits in force for this whole file
    size, head = _size_and_head(path)
    import gc

    # Building creates many small objects and no garbage cycles: the cyclic
    # collector would only rescan the growing graph again and again.
    was_enabled = gc.isenabled()
    gc.disable()
    sent: inference.Pending | None = None
    try:
        if infer_shapes:
            inference.prepare()  # the helper is forked while this process holds no model yet
        model, stripped, sent = _read_model(path, head, size, lim, early=infer_shapes and not dims)
        if dims:
            from ..bind import bind_onnx

            bind_onnx(model, dims, found=dims_found)
            if stripped is not None:
                stripped.edited = True
        try:
            builder = Builder(path, model, stripped, size, lim, infer_shapes=infer_shapes)
            builder.sent = sent
            graph = builder.build()  # which lets the parsed bytes go (``stripped.settle``) once it is done with them
            clean = _text_arrived(stripped, graph)
        except InspectorError:
            raise
        except RecursionError:
            raise ModelLoadError("nests its structure too deeply to be read safely") from None
        except Exception as exc:  # noqa: BLE001 - retried below, then one actionable line
            if not _any_bytes(model):
                raise ModelLoadError(
                    f"could not be read ({type(exc).__name__}: {one_line(exc, 100)}); the file looks corrupt "
                    "(rerun with --debug to see where)") from exc
        else:
            if clean:
                check_reachable(graph, model, stripped, path, named=builder.named_locations)
                return graph
        if stripped is not None:
            stripped.data = b""  # the model is about to change: these bytes are no longer it
        # Protobuf returns bytes for a proto2 string that is not valid UTF-8: make
        # every such field text (lossy), then build again.
        _sanitize_strings(model)
        try:
            graph = Builder(path, model, stripped, size, lim, infer_shapes=infer_shapes).build()
        except InspectorError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(
                f"could not be read ({type(exc).__name__}: {one_line(exc, 100)}); the file looks corrupt "
                "(rerun with --debug to see where)") from exc
        check_reachable(graph, model, stripped, path)
        return graph
    finally:
        if sent is not None:
            inference.cancel(sent)  # nothing, unless an error came before the build took it back
        if was_enabled:
            gc.enable()


def _read_model(path: Path, head: bytes, size: int, lim: Limits, *,
                early: bool) -> tuple[Any, wire.StrippedModel | None, inference.Pending | None]:
    """The model in ``path`` (text or binary), the stripped bytes it was parsed from (binary), and the
    overlapped build's first request, sent as soon as the file is read when ``early`` (inference, no
    dims to bind) allows it (:func:`_send_early`; ``Builder.sent``)."""
    if _looks_like_text(head, path):
        return _load_text(path, size, lim), None, None
    return _load_binary(path, lim, early=early and retype.OVERLAP and inference.ISOLATE_INFERENCE)


def _size_and_head(path: Path) -> tuple[int, bytes]:
    """The file's size and first 64 bytes; an empty file or an ONNX Runtime ``.ort`` file is
    refused here with one actionable line."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelLoadError("is empty (0 bytes): not an ONNX model")
    with path.open("rb") as fh:
        head = fh.read(64)
    if head[4:8] == b"ORTM":
        raise UnsupportedFormat(
            "is an ONNX Runtime .ort (flatbuffer) model, not an ONNX protobuf: "
            "inspect the .onnx file it was converted from")
    return size, head


def _text_arrived(stripped: wire.StrippedModel | None, graph: ModelGraph) -> bool:
    """Did every text of the file reach ``graph`` as text?  Yes when all of the parsed bytes' text is UTF-8
    (checked here unless the build or the inference helper did: :meth:`.wire.StrippedModel.settle`), else
    when no text of the graph is bytes."""
    if stripped is not None:
        stripped.settle()
    return (stripped is not None and stripped.all_utf8) or not _graph_has_bytes(graph)


def _graph_has_bytes(graph: ModelGraph) -> bool:
    """Did some text reach the graph as bytes (invalid UTF-8 in the file)?  A
    cheap scan of the Python objects the builder made, sub-graphs included."""
    items: list[Any] = []
    add, extend = items.append, items.extend
    for g in graph.each_graph():
        add(g.name)
        for lay in g.layers:
            add(lay.name)
            add(lay.type)
            config = lay.config
            extend(config)
            for operand in lay.operands:
                add(operand.tensor)
                if operand.shape:
                    extend(operand.shape)
            extend(config.get("@outputs", ()))
            for shapes in lay.node_shapes:
                for shape in shapes:
                    if shape:
                        extend(shape)
            for w in lay.weights:
                add(w.name)
                if w.external is not None:
                    add(w.external.location)
    extend(_metadata_items(graph.metadata))
    return bytes in set(map(type, items))


def _metadata_items(metadata: dict[str, Any]) -> list[Any]:
    """The values of the graph's metadata, with the keys and values of dicts in it (and
    lists in those) unpacked."""
    items: list[Any] = []
    add, extend = items.append, items.extend
    for value in metadata.values():
        if isinstance(value, dict):
            extend(value)
            extend(value.values())
        elif isinstance(value, list):
            for v in value:
                if isinstance(v, dict):
                    extend(v.values())
                    for x in v.values():
                        if isinstance(x, list):
                            extend(x)
                else:
                    add(v)
        else:
            add(value)
    return items


def _string_fields(message: Any) -> Iterator[tuple[Any, Any, Any]]:
    """(message, field descriptor, value) of every string field set anywhere in
    ``message``, nested messages included (iterative, depth first)."""
    from google.protobuf.descriptor import FieldDescriptor

    stack = [message]
    while stack:
        msg = stack.pop()
        for fd, value in msg.ListFields():
            if fd.type == FieldDescriptor.TYPE_STRING:
                yield msg, fd, value
            elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                stack.extend(value if _is_repeated(fd) else [value])


def _any_bytes(message: Any) -> bool:
    """Any string field anywhere in ``message`` that decoded as bytes (iterative)."""
    for _, fd, value in _string_fields(message):
        values = value if _is_repeated(fd) else [value]
        if any(type(v) is bytes for v in values):
            return True
    return False


def _is_repeated(fd: Any) -> bool:
    label = getattr(fd, "label", None)
    if label is not None:
        return bool(label == fd.LABEL_REPEATED)
    return bool(getattr(fd, "is_repeated", False))  # pragma: no cover - newer protobuf


def _sanitize_strings(message: Any) -> None:
    """Replace every string field that decoded as bytes by its UTF-8 text (lossy)."""
    for msg, fd, value in _string_fields(message):
        if _is_repeated(fd):
            for i, v in enumerate(value):
                if type(v) is bytes:
                    value[i] = v.decode("utf-8", errors="replace")
        elif type(value) is bytes:
            setattr(msg, fd.name, value.decode("utf-8", errors="replace"))


_TEXT_STARTS = (b"ir_version", b"producer_name", b"producer_version", b"opset_import", b"graph", b"domain",
                b"model_version", b"doc_string", b"metadata_props", b"functions", b"<")


def _looks_like_text(head: bytes, path: Path) -> bool:
    """A text-format model (protobuf text or the ``onnxtxt`` syntax)?"""
    if path.suffix.lower() in (".onnxtxt", ".textproto", ".pbtxt"):
        return True
    text = head.lstrip()
    while text.startswith(b"#"):  # comment lines
        text = text.partition(b"\n")[2].lstrip()
    return text.startswith(_TEXT_STARTS) and all(32 <= b < 127 or b in (9, 10, 13) for b in head)


def _load_text(path: Path, size: int, lim: Limits) -> Any:
    import warnings

    import onnx

    if size > lim.proto_bytes:  # text protobuf has no way to skip weights: the whole file is structure
        raise LimitExceeded(
            f"is a {size:,}-byte text-format model, more than the proto_bytes limit of {lim.proto_bytes:,} bytes; "
            f"{hint('proto_bytes')}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    _check_text_nesting(data, lim.proto_depth)  # onnx's C++ text parsers recurse: deep nesting crashes them
    head = data[:64].lstrip()
    del data
    try:
        fmt = "onnxtxt" if path.suffix.lower() == ".onnxtxt" or head.startswith(b"<") else "textproto"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "The onnxtxt format is experimental"
            try:
                return onnx.load_model(str(path), format=fmt, load_external_data=False)
            except Exception:  # noqa: BLE001 - try the other text syntax before giving up
                other = "textproto" if fmt == "onnxtxt" else "onnxtxt"
                return onnx.load_model(str(path), format=other, load_external_data=False)
    except Exception as exc:  # the text parsers raise several unrelated types
        msg = exc.decode("utf-8", "replace") if isinstance(exc, bytes) else one_line(exc)
        if isinstance(exc.args[0] if exc.args else None, bytes):
            msg = one_line(exc.args[0].decode("utf-8", "replace"))
        raise ModelLoadError(
            f"looks like a text-format ONNX model but does not parse ({msg}); "
            "fix the text or save the model in binary .onnx form") from None


_TEXT_ESCAPE = re.compile(rb"\\.", re.S)
_TEXT_SKIPPED = re.compile(rb'"[^"\n]*"|\'[^\'\n]*\'|#[^\n]*')
"""Strings and comments, once escapes are gone and only quotes, ``#``, newlines and brackets are left."""
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"\"'#\n{}<>()[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}<>()[]")
_TEXT_CHUNK = 1 << 23
"""Brackets measured at a time (an int64 array of this many elements: 64 MiB)."""


def _check_text_nesting(data: bytes, limit: int) -> None:
    """Refuse a text-format model whose brackets (``{ < ( [``, outside strings and
    comments) nest deeper than ``limit`` (the ``proto_depth`` limit): onnx parses text
    with recursive C++ that a few thousand levels crash.  A file with fewer opening
    brackets than the limit is not scanned; otherwise the depth is a running sum
    (numpy, in chunks) over the brackets left once strings and comments are removed,
    never below zero (a stray closing bracket does not hide deeper nesting)."""
    if sum(data.count(c) for c in (b"{", b"<", b"(", b"[")) <= limit:
        return
    import numpy as np

    if b"\\" in data:
        data = _TEXT_ESCAPE.sub(b"", data)  # an escaped quote ends no string
    structure = data.replace(b"=>", b"").translate(None, _NOT_STRUCTURE)  # onnxtxt's arrow is no bracket
    brackets = _TEXT_SKIPPED.sub(b"", structure).translate(None, _NOT_BRACKETS)
    del structure
    step = np.zeros(256, dtype=np.int64)
    step[list(b"{<([")] = 1
    step[list(b"}>)]")] = -1
    level, lowest = 0, 0  # the running sum so far and its minimum (never above 0)
    for at in range(0, len(brackets), _TEXT_CHUNK):
        sums = np.cumsum(step[np.frombuffer(brackets, dtype=np.uint8, count=min(_TEXT_CHUNK, len(brackets) - at),
                                            offset=at)]) + level
        floor = np.minimum.accumulate(np.minimum(sums, lowest))
        if int((sums - floor).max()) > limit:
            raise LimitExceeded(
                f"nests its text more than {limit} levels deep (brackets), past the proto_depth limit; "
                f"{hint('proto_depth')}")
        level, lowest = int(sums[-1]), int(floor[-1])


def _load_binary(path: Path, lim: Limits, *,
                 early: bool = False) -> tuple[Any, wire.StrippedModel, inference.Pending | None]:
    """The model parsed from the stripped bytes of ``path``, those bytes, and the overlapped build's first
    request when ``early`` allows it (:func:`_send_early`, sent before the bytes are parsed)."""
    try:
        stripped = wire.strip_file(path, max_depth=lim.proto_depth,
                                   max_bytes=min(lim.proto_bytes, PROTOBUF_MAX_BYTES), max_nodes=lim.onnx_nodes)
    except wire.StructureTooLarge as exc:
        if exc.limit >= PROTOBUF_MAX_BYTES:
            raise ModelLoadError(
                "has more than 2 GiB of graph structure outside its weights, which protobuf cannot parse") from None
        raise LimitExceeded(
            f"has more than {lim.proto_bytes:,} bytes of graph structure outside its weights, past the proto_bytes "
            f"limit; {hint('proto_bytes')}") from None
    except wire.WireError as exc:
        raise ModelLoadError(str(exc)) from None
    except OSError as exc:
        raise ModelLoadError(f"cannot be read: {exc.strerror or exc}") from None
    sent = _send_early(stripped) if early else None
    try:
        return _parse(stripped), stripped, sent
    except BaseException:
        if sent is not None:
            inference.cancel(sent)  # not a model: the helper that started on it is stopped
        raise


def _parse(stripped: wire.StrippedModel) -> Any:
    """The ``ModelProto`` parsed from the stripped bytes, refused with one line when it is none."""
    from google.protobuf.message import DecodeError

    model = lite.model_proto()  # not ``import onnx``: see lite.py
    try:
        model.ParseFromString(stripped.data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        if "depth" in str(exc).lower() or "recursion" in str(exc).lower():
            raise ModelLoadError(
                "nests sub-graphs deeper than protobuf's parser allows (about 30 levels); it cannot be read") from None
        raise ModelLoadError(
            f"is not a valid ONNX protobuf ({one_line(exc)}); the file is corrupt, truncated or not an ONNX model"
        ) from None
    if not model.HasField("graph") and not model.functions:
        raise ModelLoadError(
            "does not contain an ONNX graph (no ModelProto.graph); the file is corrupt or not an ONNX model")
    if not model.ir_version and not model.opset_import and not model.graph.node:
        raise ModelLoadError("does not look like an ONNX model (no IR version, opsets or nodes)")
    return model


def _send_early(stripped: wire.StrippedModel) -> inference.Pending | None:
    """The request ``Builder._build_overlapped`` sends first (:func:`.inference.send_early`), sent before
    the bytes are parsed, the skeleton read and the checks made (0.18 s on 160,000 nodes), so the helper
    starts on it meanwhile; ``None`` unless the overlapped build will send these bytes as they are: not
    too big to be sent so, and no model-local functions (their calls are inlined for inference: a build
    after it).  A check that refuses the model, or a data-propagation hazard, drops it (the helper is
    stopped) and all goes on as without it."""
    if not stripped.data or stripped.file_size > PROTOBUF_MAX_BYTES // 16:
        return None
    fields = wire.top_fields(stripped.data)
    if fields is None or wire.MODEL_FUNCTIONS in fields:
        return None
    return inference.send_early(stripped.data)
