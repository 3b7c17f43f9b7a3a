"""Reading a Keras model config: the JSON, its two dialects, shapes and dtype policies.

A Keras model file carries two things: a JSON *config* (the architecture: layers,
their settings and how they are wired) and the *weights*.  This module holds what
every step after parsing needs to read a config; :mod:`~inspector.loaders.keras_graph`
builds the graph from it, :mod:`~inspector.loaders.keras_weights` names the weights and
:mod:`~inspector.loaders.keras_security` scans it for code.

Two config dialects exist and both are read:

* **Keras 3** (``.keras`` from Keras 3, and ``.h5`` written by Keras 3): every layer
  entry has ``module``/``registered_name``; a call (an *inbound node*) is
  ``{"args": [...], "kwargs": {...}}`` where tensors are
  ``{"class_name": "__keras_tensor__", "config": {"shape": ..., "keras_history":
  [layer, node, tensor]}}`` — so the shape of every consumed tensor is recorded.
* **Keras 2** (tf.keras 2.x / ``tf_keras``): a call is ``[["layer", node, tensor,
  {kwargs}], ...]``; tensors inside kwargs are ``["layer", node, tensor]`` lists,
  and no shapes are recorded.

What the Keras loaders put in ``ModelGraph.metadata``: ``config_style``
(``keras3``/``keras2``), ``keras_version``, ``backend``, ``date_saved`` (``.keras``),
``compile_config`` (Keras 3's ``compile_config``, or the legacy ``training_config``
with ``optimizer_config`` renamed ``optimizer``: :func:`compile_config_from_training_config`),
``weights_format`` (``h5``/``npz``), ``assets`` (``.keras`` members under ``assets/``);
SavedModels add ``tensorflow_version``, ``signatures`` and ``saved_model_schema_version``.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeGuard

from ..errors import LimitExceeded, ModelLoadError
from ..ir import Inbound, Shape
from ..limits import current, hint

MODEL_CLASSES = frozenset({"Functional", "Model", "Sequential"})
"""Class names of a layer entry that is itself a model."""


# -- JSON --------------------------------------------------------------------------------

def parse_json(raw: bytes | str, *, what: str) -> Any:
    """Parse a config with size and depth limits; errors become :class:`ModelLoadError`."""
    lim = current()
    if len(raw) > lim.json_bytes:
        raise LimitExceeded(
            f"{what} is {len(raw):,} bytes, more than the {lim.json_bytes:,}-byte limit for a model config "
            f"({hint('json_bytes')})"
        )
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise LimitExceeded(f"{what} is nested too deeply to be a model config (JSON depth limit)") from None
    except UnicodeDecodeError:
        raise ModelLoadError(f"{what} is not UTF-8 text: the file is corrupt or not a Keras model") from None
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        line = getattr(exc, "lineno", None)
        where = f" at line {line}" if line else ""
        raise ModelLoadError(f"{what} is not valid JSON ({msg}{where}): the file is corrupt or truncated") from None
    depth = json_depth(obj, stop=lim.json_depth + 1)
    if depth > lim.json_depth:
        raise LimitExceeded(
            f"{what} is nested more than {lim.json_depth} levels deep, past the limit ({hint('json_depth')})"
        )
    return obj


def json_depth(obj: Any, *, stop: int | None = None) -> int:
    """Nesting depth of a parsed JSON value (``[]`` is 1), level by level without
    recursion; stops counting at ``stop``."""
    depth = 0
    level = [obj] if type(obj) in (dict, list) else []
    while level and (stop is None or depth < stop):
        depth += 1
        nxt: list[Any] = []
        for value in level:
            items = value.values() if type(value) is dict else value
            nxt += [v for v in items if type(v) is dict or type(v) is list]
        level = nxt
    return depth


# -- small helpers -----------------------------------------------------------------------

def snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case`` (names weight groups in ``.keras`` files)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def policy_name(dtype: Any) -> str | None:
    """The dtype policy's name: ``"float32"``, ``"mixed_float16"``, ``"int8_from_float32"``."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, dict):
        conf = dtype.get("config")
        if isinstance(conf, dict) and isinstance(conf.get("name"), str):
            return str(conf["name"])
        if isinstance(conf, dict) and isinstance(conf.get("mode"), str):
            # Keras 3 QuantizedDTypePolicy: {"mode": "int8", "source_name": "float32"}
            source = conf.get("source_name")
            return f"{conf['mode']}_from_{source}" if isinstance(source, str) else str(conf["mode"])
        if isinstance(conf, str):
            return conf
    return None


def quantization_mode(config: dict[str, Any]) -> str | None:
    """``int8``, ``int4``, ``float8``, ``gptq`` … for a quantized layer, else None."""
    name = policy_name(config.get("dtype")) or ""
    if "_from_" in name:
        return name.split("_from_", 1)[0]
    qc = config.get("quantization_config")
    if isinstance(qc, dict):
        inner = qc.get("config")
        mode = qc.get("mode") or (inner.get("mode") if isinstance(inner, dict) else None)
        if isinstance(mode, str):
            return mode
    return None


def to_shape(value: Any) -> Shape | None:
    """A recorded shape (list of int/None) → tuple; anything else → None."""
    if isinstance(value, dict) and value.get("class_name") == "__tuple__":
        value = (value.get("config") or {}).get("value")
    if not isinstance(value, (list, tuple)):
        return None
    dims: list[Any] = []
    for d in value:
        if d is None or (isinstance(d, int) and not isinstance(d, bool)):
            dims.append(d if d is None or d >= 0 else None)
        elif isinstance(d, str):
            dims.append(d)
        else:
            return None
    return tuple(dims)


def single_shape(value: Any) -> Shape | None:
    """A ``build_config.input_shape``: one shape, or a list holding exactly one."""
    shape = to_shape(value)
    if shape is not None:
        return shape
    if isinstance(value, list) and len(value) == 1:
        return to_shape(value[0])
    return None


def input_layer_shape(config: dict[str, Any]) -> Shape | None:
    """The batch shape an InputLayer config declares (Keras 3 or Keras 2 keys)."""
    for key in ("batch_shape", "batch_input_shape"):
        shape = to_shape(config.get(key))
        if shape is not None:
            return shape
    shape = to_shape(config.get("shape") or config.get("input_shape"))
    if shape is not None:
        return (None, *shape)
    return None


def is_ref(x: Any) -> TypeGuard[list[Any]]:
    """A ``[layer, node, tensor, ...]`` reference to a layer's output."""
    return (isinstance(x, list) and len(x) >= 3 and isinstance(x[0], str)
            and isinstance(x[1], int) and not isinstance(x[1], bool)
            and isinstance(x[2], int) and not isinstance(x[2], bool))


def flat_refs(value: Any) -> list[Inbound]:
    """Every ``[layer, node, tensor]`` triple in ``input_layers``/``output_layers``."""
    out: list[Inbound] = []
    stack = [value]
    while stack:
        x = stack.pop()
        if is_ref(x):
            out.append(Inbound(x[0], max(0, x[1]), max(0, x[2])))
        elif isinstance(x, list):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
    return out


_KWARG_FIRST = ("inputs", "x", "query", "value", "key")


def _kwarg_order(kwargs: dict[str, Any]) -> list[str]:
    """Call-signature order for tensors passed by keyword (attention layers take
    ``query, value, key``), then the rest sorted like Keras's tree.flatten."""
    first = [k for k in _KWARG_FIRST if k in kwargs]
    return first + sorted((k for k in kwargs if k not in _KWARG_FIRST), key=str)


# -- inbound nodes -----------------------------------------------------------------------

def keras3_node(node: dict[str, Any]) -> list[tuple[Inbound, Shape | None]]:
    """Tensors of one Keras 3 call, in argument order, with their recorded shapes."""
    out: list[tuple[Inbound, Shape | None]] = []
    kwargs = node.get("kwargs")
    roots: list[Any] = [node.get("args", [])]
    if isinstance(kwargs, dict):
        roots.extend(kwargs[k] for k in _kwarg_order(kwargs))
    stack = list(reversed(roots))
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if x.get("class_name") == "__keras_tensor__":
                conf = x.get("config")
                hist = conf.get("keras_history") if isinstance(conf, dict) else None
                if is_ref(hist) and isinstance(conf, dict):
                    out.append((Inbound(hist[0], max(0, hist[1]), max(0, hist[2])), to_shape(conf.get("shape"))))
                continue
            stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
        elif isinstance(x, list):
            stack.extend(reversed(x))
    return out


def keras2_node(node: Any, names: set[str]) -> list[Inbound]:
    """Tensors of one Keras 2 call: first-argument entries, then tensors in kwargs."""
    out: list[Inbound] = []
    kwargs: dict[str, Any] | None = None
    stack = [node]
    while stack:
        x = stack.pop()
        if is_ref(x):
            if x[0] != "_CONSTANT_VALUE" and x[1] >= 0:
                out.append(Inbound(x[0], x[1], x[2]))
            if kwargs is None and len(x) > 3 and isinstance(x[3], dict):
                kwargs = x[3]
        elif isinstance(x, list):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
    if kwargs:
        stack = [kwargs[k] for k in reversed(_kwarg_order(kwargs))]
        while stack:
            x = stack.pop()
            if is_ref(x) and len(x) == 3 and x[0] in names:
                out.append(Inbound(x[0], x[1], x[2]))
            elif isinstance(x, list):
                stack.extend(reversed(x))
            elif isinstance(x, dict):
                stack.extend(x[k] for k in sorted(x, key=str, reverse=True))
    return out


def is_model_entry(entry: Any) -> bool:
    """True for a layer entry that is itself a Functional/Sequential model."""
    if not isinstance(entry, dict):
        return False
    conf = entry.get("config")
    if isinstance(conf, list):  # Keras 2.0-era Sequential: config is the layer list
        return entry.get("class_name") in MODEL_CLASSES
    if not isinstance(conf, dict) or not isinstance(conf.get("layers"), list):
        return False
    if entry.get("class_name") in MODEL_CLASSES or "input_layers" in conf:
        return True
    layers = conf["layers"]
    return bool(layers) and all(isinstance(e, dict) and isinstance(e.get("class_name"), str) for e in layers)


def compile_config_from_training_config(training: Any) -> dict[str, Any] | None:
    """Keras 2/3 ``training_config`` (legacy h5) in the shape of Keras 3's ``compile_config``."""
    if not isinstance(training, dict):
        return None
    out = dict(training)
    if "optimizer_config" in out and "optimizer" not in out:
        out["optimizer"] = out.pop("optimizer_config")
    return out
