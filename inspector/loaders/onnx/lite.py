"""onnx's protobuf classes and its C++ extension (operator schemas, shape inference) without running
``onnx/__init__.py``, which imports ``onnx.helper`` and through it ``ml_dtypes`` (0.9 s with ml_dtypes 0.7).

The generated ``onnx_ml_pb2`` module and the ``onnx_cpp2py_export`` extension are loaded from the installed
onnx package's folder under their own module names, so a later ``import onnx`` (text models, tensor readers
for exotic dtypes, the probe) finds and reuses them: there is one ``ModelProto`` class either way.  When the
package looks different (another layout, a build without the ML proto), this falls back to ``import onnx``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

_PB2 = "onnx.onnx_ml_pb2"
_EXT = "onnx.onnx_cpp2py_export"


def _load(name: str, spec: importlib.machinery.ModuleSpec | None) -> ModuleType:
    if spec is None or spec.loader is None:
        raise ImportError(name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@lru_cache(maxsize=None)
def _modules() -> tuple[ModuleType, ModuleType]:
    """(``onnx.onnx_ml_pb2``, ``onnx.onnx_cpp2py_export``), loaded once."""
    pb2, ext = sys.modules.get(_PB2), sys.modules.get(_EXT)
    if pb2 is not None and ext is not None:
        return pb2, ext
    try:
        spec = importlib.util.find_spec("onnx")
        if spec is None or not spec.submodule_search_locations or "onnx" in sys.modules:
            raise ImportError("onnx")
        folder = Path(next(iter(spec.submodule_search_locations)))
        if ext is None:  # the file the import system would pick: the first extension suffix found (no glob)
            so = next((p for suffix in importlib.machinery.EXTENSION_SUFFIXES
                       if (p := folder / f"onnx_cpp2py_export{suffix}").is_file()), None)
            if so is None:
                raise ImportError(_EXT)
            loader = importlib.machinery.ExtensionFileLoader(_EXT, str(so))
            ext = _load(_EXT, importlib.util.spec_from_loader(_EXT, loader))
        if not getattr(ext, "ONNX_ML", False):
            raise ImportError("onnx built without ONNX_ML")
        if pb2 is None:
            pb2 = _load(_PB2, importlib.util.spec_from_file_location(_PB2, folder / "onnx_ml_pb2.py"))
        return pb2, ext
    except (ImportError, OSError, ValueError, AttributeError):
        import onnx
        import onnx.onnx_cpp2py_export as cpp

        return onnx.onnx_ml_pb2, cpp


def model_proto() -> Any:
    """A new, empty ``onnx.ModelProto``."""
    return _modules()[0].ModelProto()


def get_schema(op: str, version: int, domain: str) -> Any:
    """``onnx.defs.get_schema``: the operator schema (raises for an unknown operator)."""
    return _modules()[1].defs.get_schema(op, version, domain)


def infer_shapes_bytes(data: bytes, data_prop: bool) -> bytes:
    """onnx's C++ shape inference on a serialized model (no type check, not strict)."""
    answer: bytes = _modules()[1].shape_inference.infer_shapes(data, False, False, data_prop)
    return answer


_TWIN = "inspector_utf8_twin"
"""The package of :func:`_utf8_twin`'s messages (a private descriptor pool: onnx's own is untouched)."""


@lru_cache(maxsize=None)
def _utf8_twin() -> Any:
    """A ``ModelProto`` class of onnx's schema declared ``proto3``, whose parser refuses a string
    field that is not valid UTF-8 (onnx's is ``proto2``: protobuf hands such a field over as bytes);
    ``None`` when it cannot be made."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    try:
        proto = descriptor_pb2.FileDescriptorProto()
        _modules()[0].DESCRIPTOR.CopyToProto(proto)
        if proto.package != "onnx" or proto.dependency:
            return None
        proto.name, proto.package, proto.syntax = f"{_TWIN}.proto", _TWIN, "proto3"
        stack = list(proto.message_type)
        while stack:
            message = stack.pop()
            stack.extend(message.nested_type)
            for f in message.field:
                f.ClearField("default_value")  # proto3 has no defaults, no required fields
                if f.label == f.LABEL_REQUIRED:
                    f.label = f.LABEL_OPTIONAL
                if f.type_name.startswith(".onnx."):
                    f.type_name = f".{_TWIN}.{f.type_name[6:]}"
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_TWIN}.ModelProto"))
    except Exception:  # noqa: BLE001 - another protobuf or onnx: callers look the slow way
        return None


def all_text_utf8(data: bytes | memoryview) -> bool:
    """Is every string field of the serialized ``ModelProto`` ``data`` valid UTF-8 (so none parses
    as bytes)?  ``False`` also when that cannot be told cheaply: callers then look at what they built."""
    twin = _utf8_twin()
    if twin is None:
        return False
    try:
        twin().ParseFromString(data)
    except Exception:  # noqa: BLE001 - DecodeError (bad UTF-8, or anything the twin refuses): not known
        return False
    return True
