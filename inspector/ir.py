"""The format-free model graph every loader builds and every analyser reads.

A loader turns a file into one :class:`ModelGraph`; nothing after the loader knows
which file format the graph came from except through ``ModelGraph.format`` and
``ModelGraph.metadata``.  This module imports neither keras nor onnx, and builds
its networkx view only when somebody asks for it.

Vocabulary
----------
* A :class:`Layer` is one Keras layer or one ONNX node (graph inputs are layers of
  type ``InputLayer`` in both worlds, so that "Connected to" reads the same).
* A layer may be *called* several times (a shared Keras layer); each call is a
  *node*.  ``Layer.inbound[i]`` lists the tensors node ``i`` consumed and
  ``Layer.node_shapes[i]`` the shapes node ``i`` produced.
* An :class:`Inbound` names one tensor: the producing layer, the producer's node
  index and the output index within that node (Keras ``keras_history``).
* A :class:`Weight` is a stored tensor.  Its ``key`` identifies the storage: two
  weights with the same key are the same tensor (shared weights count once).
  ``read()`` loads its values lazily; summaries never call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

if TYPE_CHECKING:  # pragma: no cover
    import networkx
    import numpy

Dim = Union[int, str, None]
"""One dimension: an int, ``None`` (unknown or batch) or a symbolic name (ONNX)."""

Shape = tuple[Dim, ...]

# Bytes per element for the dtypes model files use.  Sub-byte types are fractional.
DTYPE_BYTES: dict[str, float] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "float8_e4m3fn": 1, "float8_e4m3fnuz": 1, "float8_e5m2": 1, "float8_e5m2fnuz": 1,
    "float8_e8m0": 1, "float6_e2m3": 0.75, "float6_e3m2": 0.75, "float4_e2m1": 0.5,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "int4": 0.5, "int2": 0.25,
    "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "uint4": 0.5, "uint2": 0.25,
    "bool": 1, "complex64": 8, "complex128": 16, "string": 0,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (0 when unknown, e.g. strings)."""
    return DTYPE_BYTES.get(dtype, 0)


@dataclass(frozen=True, slots=True, init=False)
class ExternalData:
    """Where the bytes of a tensor stored outside the model file live (ONNX)."""

    location: str
    offset: int = 0
    length: int | None = None

    def __init__(self, location: str, offset: int = 0, length: int | None = None) -> None:
        # Through the slots, as Inbound does: a model may hold 100,000s of external tensors.
        _set_external_location(self, location)
        _set_external_offset(self, offset)
        _set_external_length(self, length)


@dataclass(slots=True, eq=False)
class Weight:
    """A stored tensor owned by a layer.

    ``name`` is the name the file gives it (``conv1_conv/kernel:0``, an ONNX
    initializer name); ``role`` what it is for the layer (``kernel``, ``bias``,
    ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``, ``embeddings``,
    ``recurrent_kernel``, ``scale``, ``zero_point`` …).  ``key`` identifies the
    storage: weights with equal keys are one tensor and count once.
    """

    name: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool = True
    key: str = ""
    external: ExternalData | None = None
    quantization: bool = False
    """True for quantization scales and zero points: reported apart from parameters."""
    constant: bool = False
    """True for a stored constant that is not a parameter (an ONNX 0-d scalar, a bool or
    integer tensor that is not a quantized weight): reported apart as a *constant*."""
    reader: Callable[[], numpy.ndarray] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name

    @property
    def size(self) -> int:
        return prod(map(int, self.shape))

    @property
    def nbytes(self) -> int:
        return int(self.size * dtype_bytes(self.dtype) + 0.999999)

    def read(self) -> numpy.ndarray:
        """Load this tensor's values (one tensor, on demand)."""
        if self.reader is None:
            from .errors import ModelLoadError

            raise ModelLoadError(f"the values of weight {self.name!r} are not stored in the file")
        return self.reader()


@dataclass(frozen=True, slots=True, init=False)
class Inbound:
    """One consumed tensor: output ``tensor_index`` of node ``node_index`` of ``layer``."""

    layer: str
    node_index: int = 0
    tensor_index: int = 0

    def __init__(self, layer: str, node_index: int = 0, tensor_index: int = 0) -> None:
        # What the generated __init__ of a frozen dataclass does (object.__setattr__ per field),
        # through the slots directly: a large ONNX graph makes one per tensor.
        _set_inbound_layer(self, layer)
        _set_inbound_node(self, node_index)
        _set_inbound_tensor(self, tensor_index)

    def __str__(self) -> str:
        return f"{self.layer}[{self.node_index}][{self.tensor_index}]"


@dataclass(frozen=True, slots=True, init=False)
class Operand:
    """One input of an ONNX node: what the node consumes at that position.

    ``name`` is the operator schema's name for the position (``X``, ``W``, ``B``;
    ``input_<i>`` when the schema is unknown), ``tensor`` the tensor's name in the
    file (empty when the optional input is left out).  ``kind`` is ``input`` (a
    tensor some layer produces), ``weight`` (a stored constant counted as a
    parameter), ``constant`` (a shape, index or other non-parameter constant) or
    ``absent``.  ``dtype`` and ``shape`` are known from the file or shape inference;
    ``value`` holds the values (nested lists) of a small constant, else ``None``."""

    name: str
    tensor: str
    kind: str
    dtype: str | None = None
    shape: Shape | None = None
    value: Any = None

    def __init__(self, name: str, tensor: str, kind: str, dtype: str | None = None, shape: Shape | None = None,
                 value: Any = None) -> None:
        # Through the slots, as Inbound does: a large ONNX graph makes one per node input.
        _set_operand_name(self, name)
        _set_operand_tensor(self, tensor)
        _set_operand_kind(self, kind)
        _set_operand_dtype(self, dtype)
        _set_operand_shape(self, shape)
        _set_operand_value(self, value)

    @property
    def present(self) -> bool:
        """True unless the optional input was left out."""
        return self.kind != "absent"

    def describe(self) -> dict[str, Any]:
        """This operand as a plain dict, as JSON outputs show it under ``"@inputs"``."""
        entry: dict[str, Any] = {"name": self.name, "tensor": self.tensor, "kind": self.kind}
        if self.kind == "absent":
            return entry
        entry["dtype"] = self.dtype
        entry["shape"] = list(self.shape) if self.shape is not None else None
        if self.value is not None:
            entry["value"] = self.value
        return entry


def _slot_setters(cls: type, names: str) -> tuple[Callable[[Any, Any], None], ...]:
    """The setters of ``cls``'s slots ``names`` (bypassing a frozen dataclass's ``__setattr__``)."""
    return tuple(getattr(cls, name).__set__ for name in names.split())


_set_external_location, _set_external_offset, _set_external_length = _slot_setters(ExternalData,
                                                                                  "location offset length")
_set_inbound_layer, _set_inbound_node, _set_inbound_tensor = _slot_setters(Inbound, "layer node_index tensor_index")
(_set_operand_name, _set_operand_tensor, _set_operand_kind, _set_operand_dtype, _set_operand_shape,
 _set_operand_value) = _slot_setters(Operand, "name tensor kind dtype shape value")


@dataclass(slots=True, eq=False)
class Layer:
    """One layer (Keras) or node (ONNX) of a graph."""

    name: str
    type: str
    config: dict[str, Any] = field(default_factory=dict)
    inbound: list[list[Inbound]] = field(default_factory=list)
    """Per call (node) of the layer, the tensors that call consumed, in argument order."""
    node_shapes: list[list[Shape | None]] = field(default_factory=list)
    """Per call (node), the shape of each output; ``None`` where no rule knows it."""
    weights: list[Weight] = field(default_factory=list)
    subgraphs: dict[str, ModelGraph] = field(default_factory=dict)
    """Nested graphs: a Keras model used as a layer (key ``"model"``), ONNX
    ``If``/``Loop``/``Scan`` bodies (key = attribute name) or a model-local function."""
    trainable: bool = True
    module: str | None = None
    """The Python module the file names for this layer's class (Keras), if any."""
    dtype: str | None = None
    """Compute dtype policy (Keras) or output element type (ONNX)."""
    notes: list[str] = field(default_factory=list)
    operands: list[Operand] = field(default_factory=list)
    """Per input of an ONNX node, what it consumes there (empty for Keras layers)."""

    @property
    def output_shapes(self) -> list[Shape | None]:
        """Output shapes of the layer's first call (Keras ``output_shape`` when unambiguous)."""
        return self.node_shapes[0] if self.node_shapes else []

    @property
    def has_multiple_shapes(self) -> bool:
        """True when calls of a shared layer produce different shapes (Keras prints ``multiple``)."""
        shapes = self.node_shapes
        return len(shapes) > 1 and len({tuple(s) for s in shapes}) > 1

    @property
    def subgraph(self) -> ModelGraph | None:
        """The nested Keras model, if this layer is one."""
        return self.subgraphs.get("model")

    def iter_weights(self) -> Iterator[Weight]:
        """This layer's own weights, then those of every nested graph (depth first,
        without recursion, so hostile nesting depth cannot overflow the stack)."""
        if not self.subgraphs:
            return iter(self.weights)
        return self._iter_nested_weights()

    def _iter_nested_weights(self) -> Iterator[Weight]:
        stack: list[Layer] = [self]
        while stack:
            lay = stack.pop()
            yield from lay.weights
            nested = [inner for sub in lay.subgraphs.values() for inner in sub.layers]
            stack.extend(reversed(nested))

    def inbound_flat(self) -> list[Inbound]:
        return [t for node in self.inbound for t in node]

    def operand(self, index: int) -> Operand | None:
        """The ``index``-th operand of an ONNX node, or ``None`` past the last one."""
        return self.operands[index] if 0 <= index < len(self.operands) else None

    def described_config(self) -> dict[str, Any]:
        """``config`` as outputs (graph JSON, diffs) show it: for an ONNX node (whose
        config names its ``"@outputs"``) the operands described under ``"@inputs"``,
        just before ``"@outputs"``."""
        if "@outputs" not in self.config:
            return self.config
        out: dict[str, Any] = {}
        for key, value in self.config.items():
            if key == "@outputs":
                out["@inputs"] = [op.describe() for op in self.operands]
            out[key] = value
        return out


holds_graphs = attrgetter("subgraphs")
"""A layer's nested graphs (truthy when it holds one), read from C: filtering 162,000 layers with it, most of which
hold none, costs a fraction of a Python test per layer."""


@dataclass(frozen=True, slots=True)
class SecurityFact:
    """Something in the file that cannot be trusted (read by the SEC rules)."""

    code: str
    """The SEC rule this fact is for, e.g. ``SEC001``."""
    message: str
    layer: str | None = None
    detail: str | None = None
    kind: str = ""
    """What exactly was found, as a stable tag the SEC rules grade (e.g. ``lambda``,
    ``custom-module``, ``external-link``, ``virtual-dataset``); empty when unspecified."""


@dataclass(slots=True, eq=False)
class ModelGraph:
    """A whole model (or a nested one): ordered layers plus the wiring between them."""

    name: str
    format: str
    """``keras`` (.keras zip), ``keras-h5``, ``savedmodel`` or ``onnx``."""
    layers: list[Layer] = field(default_factory=list)
    inputs: list[Inbound] = field(default_factory=list)
    outputs: list[Inbound] = field(default_factory=list)
    kind: str = "functional"
    """``sequential`` (a Keras Sequential), ``functional``, ``subclassed`` or ``onnx``."""
    path: str | None = None
    trainable: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    """Format facts: producer and versions, opsets, compile config, file size …"""
    security: list[SecurityFact] = field(default_factory=list)
    optimizer_weights: list[Weight] = field(default_factory=list)
    """Optimizer state found in the file: not model parameters, reported apart."""
    notes: list[str] = field(default_factory=list)
    _index: dict[str, Layer] | None = field(default=None, repr=False)
    _nx: Any = field(default=None, repr=False)

    # -- lookup -----------------------------------------------------------------
    def layer(self, name: str) -> Layer:
        if self._index is None or len(self._index) != len(self.layers):
            self._index = {lay.name: lay for lay in self.layers}
        return self._index[name]

    def __contains__(self, name: object) -> bool:
        try:
            self.layer(name)  # type: ignore[arg-type]
        except (KeyError, TypeError):
            return False
        return True

    def iter_weights(self) -> Iterator[Weight]:
        for lay in self.layers:
            yield from lay.iter_weights()

    def walk(self, *, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """Every layer with its path (``outer/inner/dense``), nested graphs included."""
        stack: list[tuple[str, Layer]] = [(prefix, lay) for lay in reversed(self.layers)]
        while stack:  # no recursion: nesting depth comes from the file
            pre, lay = stack.pop()
            path = f"{pre}{lay.name}"
            yield path, lay
            for key, sub in reversed(list(lay.subgraphs.items())):
                sub_prefix = f"{path}/" if key == "model" else f"{path}/{key}/"
                stack.extend((sub_prefix, inner) for inner in reversed(sub.layers))

    def nested_graphs(self) -> list[ModelGraph]:
        """Every graph nested in this one, in the order :meth:`walk` meets them (without making a path
        for each layer, most of which hold none: an ONNX decoder has 162,000)."""
        out: list[ModelGraph] = []
        stack = list(filter(holds_graphs, reversed(self.layers)))  # picked from C: 162,000 layers, most hold none
        while stack:  # no recursion: nesting depth comes from the file
            lay = stack.pop()
            subs = list(lay.subgraphs.values())
            out.extend(subs)
            stack.extend(inner for sub in reversed(subs) for inner in reversed(sub.layers) if inner.subgraphs)
        return out

    def each_graph(self) -> Iterator[ModelGraph]:
        """This graph and every graph nested in it, each once (a body many layers share, an ONNX
        function's, is one graph), in no set order: for passes that look at every graph's layers."""
        seen: set[int] = set()
        stack: list[ModelGraph] = [self]
        while stack:  # no recursion: nesting depth comes from the file
            g = stack.pop()
            if id(g) in seen:
                continue
            seen.add(id(g))
            yield g
            stack.extend(sub for lay in filter(holds_graphs, g.layers) for sub in lay.subgraphs.values())

    def shape_of(self, ref: Inbound) -> Shape | None:
        """The shape of the tensor ``ref`` names, if known."""
        try:
            producer = self.layer(ref.layer)
        except KeyError:
            return None
        if ref.node_index < len(producer.node_shapes):
            shapes = producer.node_shapes[ref.node_index]
            if ref.tensor_index < len(shapes):
                return shapes[ref.tensor_index]
        return None

    def input_shapes(self, layer: Layer, node_index: int = 0) -> list[Shape | None]:
        """Shapes of the tensors call ``node_index`` of ``layer`` consumed."""
        if node_index >= len(layer.inbound):
            return []
        return [self.shape_of(ref) for ref in layer.inbound[node_index]]

    def consumers(self, name: str) -> list[Layer]:
        """Layers that consume an output of layer ``name``, in graph order."""
        return [self.layer(n) for n in self.nx.successors(name)] if name in self else []

    # -- networkx view ------------------------------------------------------------
    @property
    def nx(self) -> networkx.DiGraph:
        """A ``networkx.DiGraph``: node = layer name (attribute ``layer``), edge =
        tensor(s) from producer to consumer (attribute ``tensors``: a list of
        ``{"node_index", "tensor_index", "consumer_node"}``; the first one is also
        spread as ``node_index``/``tensor_index``).  Built once, on first use."""
        if self._nx is None:
            import networkx as nx

            g = nx.DiGraph(name=self.name)
            for lay in self.layers:
                g.add_node(lay.name, layer=lay, type=lay.type)
            for lay in self.layers:
                for call, refs in enumerate(lay.inbound):
                    for ref in refs:
                        if ref.layer not in g:
                            continue
                        info = {"node_index": ref.node_index, "tensor_index": ref.tensor_index,
                                "consumer_node": call}
                        if g.has_edge(ref.layer, lay.name):
                            g.edges[ref.layer, lay.name]["tensors"].append(info)
                        else:
                            g.add_edge(ref.layer, lay.name, tensors=[info],
                                       node_index=ref.node_index, tensor_index=ref.tensor_index)
            self._nx = g
        return self._nx

    def invalidate(self) -> None:
        """Forget cached views after a loader changed the layer list."""
        self._index = None
        self._nx = None
