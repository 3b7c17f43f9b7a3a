"""Legacy Keras HDF5 models (``model.save("m.h5")``), read with h5py only.

Written by Keras 2 (tf.keras 2.x, ``tf_keras``) and still by Keras 3.  The file's
root carries the architecture as a JSON string attribute ``model_config`` (and the
compile settings in ``training_config``); the weights sit in
``model_weights/<layer name>/``, listed in order by that group's ``weight_names``
attribute — Keras 2 names them like ``conv1/kernel:0``, Keras 3 by variable path
(``conv1/kernel``, or ``sequential/conv1/kernel``).  For each layer Keras writes its
trainable weights first, then the non-trainable ones.

The weights of a nested model are listed flat under the nested model's group; they
are handed to its inner layers by matching the layer names inside the weight
names.  Optimizer state lives in ``optimizer_weights`` and is reported apart.

A file with ``model_weights`` but no ``model_config`` holds weights only
(``save_weights``): there is no architecture to show, and the error says so.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from .. import limits
from ..errors import ModelLoadError
from ..ir import Layer, ModelGraph, Weight
from .h5index import DatasetInfo, H5Index, dataset_reader, index_h5, join
from .keras_config import compile_config_from_training_config, parse_json
from .keras_graph import container_layers, finish, graph_from_config
from .keras_security import scan_config
from .keras_weights import QUANTIZATION_ROLES, normalize_role, role_trainable

ROOT_ATTRS = ("model_config", "training_config", "keras_version", "backend", "layer_names")

_SUFFIX = re.compile(r":\d+$")


def _want_attrs(group_path: str) -> tuple[str, ...]:
    if group_path == "model_weights":
        return ("layer_names", "keras_version", "backend")
    if group_path == "optimizer_weights":
        return ("weight_names",)
    if group_path.startswith("model_weights/"):
        # A layer's group, at any depth: a Keras 2 layer named ``block/depthwise`` has the group
        # ``model_weights/block/depthwise``, and a layer ``block/depthwise/BatchNorm`` nests inside it.
        return ("weight_names",)
    return ()


def load(path: Path) -> ModelGraph:
    """Read a legacy Keras ``.h5`` model statically."""
    path = Path(path)
    index, root = index_h5(path, want_attrs=_want_attrs, root_attrs=ROOT_ATTRS)
    model_config = root.get("model_config")
    if model_config is None:
        raise ModelLoadError(_no_config_reason(index, root))
    if isinstance(model_config, list):  # an array attribute: not what Keras writes
        raise ModelLoadError("its model_config attribute is not a JSON string: the file is not a Keras model")
    cfg = parse_json(model_config, what="the model_config attribute")
    graph = graph_from_config(cfg, fmt="keras-h5")
    mw_attrs = index.attrs.get("model_weights", {})
    for key in ("keras_version", "backend"):
        value = root.get(key, mw_attrs.get(key))
        if isinstance(value, (str, int, float)):
            graph.metadata[key] = value
    training = root.get("training_config")
    if isinstance(training, str):
        try:
            compile_config = compile_config_from_training_config(
                parse_json(training, what="the training_config attribute"))
        except ModelLoadError:
            compile_config = None
            graph.notes.append("the training_config attribute is unreadable; ignored")
        if compile_config:
            graph.metadata["compile_config"] = compile_config
            graph.security.extend(scan_config({"compile_config": compile_config}))
    graph.metadata["weights_format"] = "h5"

    src = str(path)

    def opener() -> Any:
        return src

    if index.is_group("model_weights"):
        _Binder(index, opener).bind(graph)
    else:
        graph.notes.append("the file has no model_weights group: the model has no saved weights")
    graph.optimizer_weights = [
        Weight(name=_rel(ds.path, "optimizer_weights"), role="optimizer_state", shape=ds.shape,
               dtype=ds.dtype, trainable=False, key=ds.path, reader=dataset_reader(opener, ds.path))
        for ds in index.datasets_under("optimizer_weights")
    ]
    top = {lay.name for lay in container_layers(graph)}

    def owner_of(h5_path: str) -> str | None:
        parts = h5_path.split("/")
        return parts[1] if len(parts) > 1 and parts[0] == "model_weights" and parts[1] in top else None

    graph.security.extend(index.attributed_security(owner_of))
    return finish(graph)


def _no_config_reason(index: H5Index, root: dict[str, Any]) -> str:
    if (index.is_group("model_weights") or "layer_names" in root
            or (index.is_group("layers") and index.is_group("vars"))):
        return ("holds weights only, no model config (it was written by save_weights()): "
                "inspector needs a full model saved with model.save()")
    return "is an HDF5 file without a Keras model_config attribute: not a Keras model"


def _rel(path: str, prefix: str) -> str:
    return path[len(prefix) + 1:] if path.startswith(prefix + "/") else path


class _Binder:
    def __init__(self, index: H5Index, opener: Callable[[], Any]) -> None:
        self.index = index
        self.opener = opener
        self.seen: dict[tuple[str, str, str, tuple[int, ...]], str] = {}
        """(class, layer, weight name, shape) → key of a nested layer's weight already
        bound: the same layer inside two nested models is saved twice but is one tensor."""

    def bind(self, graph: ModelGraph) -> None:
        idx = self.index
        for lay in container_layers(graph):
            gpath = join("model_weights", lay.name)
            if not idx.is_group(gpath):
                continue
            entries = self._entries(gpath, lay)
            if lay.subgraph is not None:
                self._distribute(lay, entries)
            else:
                lay.weights = [self._weight(ds, self._relative(wn, lay.name), lay, owner_cls=lay.type)
                               for wn, ds in entries]
        top = "model_weights/top_level_model_weights"
        if idx.is_group(top) and idx.datasets_under(top):
            graph.notes.append("the file stores model-level weights outside any layer; they are not shown")

    def _entries(self, gpath: str, lay: Layer) -> list[tuple[str, DatasetInfo]]:
        """(weight name, dataset) of one layer group, in the order Keras listed them."""
        idx = self.index
        names = idx.attrs.get(gpath, {}).get("weight_names")
        out: list[tuple[str, DatasetInfo]] = []
        if isinstance(names, list):
            for wn in names:
                if not isinstance(wn, str):
                    continue
                ds = idx.datasets.get(join(gpath, wn))
                if ds is None:
                    lay.notes.append(f"weight {wn!r} is listed but missing from the file")
                    continue
                out.append((wn, ds))
            return out
        return [(_rel(ds.path, gpath), ds) for ds in idx.datasets_under(gpath)]

    @staticmethod
    def _relative(weight_name: str, owner: str) -> str:
        """The weight's name inside its layer: what follows the layer's name (which may hold ``/``)."""
        comps = _SUFFIX.sub("", weight_name).split("/")
        own = owner.split("/")
        at = next((i for i in range(len(comps) - len(own)) if comps[i:i + len(own)] == own), None)
        if at is not None:
            comps = comps[at + len(own):]
        elif len(comps) > 1:
            comps = comps[1:]
        return "/".join(comps)

    def _weight(self, ds: DatasetInfo, name: str, owner: Layer, *, owner_cls: str) -> Weight:
        role = normalize_role(owner_cls, name.rsplit("/", 1)[-1])
        return Weight(
            name=name, role=role, shape=ds.shape, dtype=ds.dtype,
            trainable=owner.trainable and role_trainable(owner_cls, role, owner.config),
            key=self.index.key(ds.path), quantization=role in QUANTIZATION_ROLES,
            reader=dataset_reader(self.opener, ds.path),
        )

    def _distribute(self, model_layer: Layer, entries: list[tuple[str, DatasetInfo]]) -> None:
        """Hand a nested model's flat weight list to its inner layers by name."""
        unmatched: list[tuple[str, DatasetInfo]] = []
        for wn, ds in entries:
            comps = _SUFFIX.sub("", wn).split("/")
            owner, rest = _find_owner(model_layer, comps)
            if owner is None:
                unmatched.append((wn, ds))
                continue
            name = "/".join(rest) if rest else comps[-1]
            weight = self._weight(ds, name, owner, owner_cls=owner.type)
            ident = (owner.type, owner.name, name, weight.shape)
            weight.key = self.seen.setdefault(ident, weight.key)
            owner.weights.append(weight)
        if unmatched:
            model_layer.notes.append(
                f"{len(unmatched)} weight(s) of nested model {model_layer.name!r} could not be matched "
                "to its inner layers; they are counted on the model's row")
            model_layer.weights.extend(
                self._weight(ds, self._relative(wn, model_layer.name), model_layer, owner_cls=model_layer.type)
                for wn, ds in unmatched)


def _named_span(parts: list[str], names: dict[str, Layer], *, skip: str | None) -> tuple[int, int] | None:
    """``(start, end)``: the leftmost run of ``parts`` that names a layer, the longest at that
    start, the weight's own name (the last part) left out.  A run, not one part: Keras 2 layer
    names may hold ``/`` (DenseNet's ``conv1/bn``), and its weight ``conv1/bn/gamma`` must not
    go to a layer named ``bn``.  ``skip``: a name not to match (the model's own)."""
    last = len(parts) - 1
    for start in range(last):
        for end in range(last, start, -1):
            name = "/".join(parts[start:end])
            if name in names and name != skip:
                return start, end
    return None


def _nested_owner(sub: ModelGraph, parts: list[str]) -> tuple[Layer, list[str]] | None:
    """The layer of a model nested in ``sub`` that ``parts`` names, with the rest of the name."""
    for inner in container_layers(sub):
        if inner.subgraph is not None:
            owner, rest = _find_owner(inner, parts)
            if owner is not None and owner is not inner:
                return owner, rest
    return None


def _find_owner(model_layer: Layer, comps: list[str]) -> tuple[Layer | None, list[str]]:
    """The innermost layer of ``model_layer``'s nested graph named in ``comps`` (the
    weight name's path), searching leftmost first, nested models included."""
    stack: list[tuple[Layer, list[str], int]] = [(model_layer, comps, 0)]
    while stack:
        current, parts, depth = stack.pop()
        sub = current.subgraph
        if sub is None or depth > limits.current().model_nesting:
            return current, parts
        names = {lay.name: lay for lay in container_layers(sub)}
        span = _named_span(parts, names, skip=sub.name) or _named_span(parts, names, skip=None)
        if span is None or (span[0] > 0 and parts[:span[0]] != [sub.name]):
            # Keras 2 names an inner-inner weight without the intermediate model's name; a
            # prefix no layer here has (``blk/bn/gamma`` beside a layer ``bn``) is a nested layer's.
            found = _nested_owner(sub, parts)
            if found is not None:
                return found
        if span is not None:
            start, end = span
            stack.append((names["/".join(parts[start:end])], parts[end:], depth + 1))
            continue
        return (None, parts) if depth == 0 else (current, parts)
    return None, comps
