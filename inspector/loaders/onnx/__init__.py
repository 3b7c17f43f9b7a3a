"""ONNX loader: a ``.onnx`` protobuf into a :class:`~inspector.ir.ModelGraph`.

What the graph holds
--------------------
* Every graph input that is not an initializer becomes a layer of type
  ``InputLayer`` (files with IR version < 4 list every weight as an input too;
  those are weights, not inputs).
* Every operator node becomes a layer whose ``type`` is the op type (qualified
  as ``domain.OpType`` outside the default domain) and whose ``config`` holds
  the attributes as plain Python values (tensors as dtype/shape descriptions,
  graphs by name and size) plus ``"@outputs"``, the output tensor names.
  ``Layer.operands`` holds one :class:`~inspector.ir.Operand` per input: its
  schema name, tensor name, kind (``input``, ``weight``, ``constant`` or
  ``absent``), dtype, shape and, for small shape-like constants, the value
  (JSON outputs show them as the config's ``"@inputs"``).  Unnamed nodes are
  called ``OpType_<index>`` (index in the file's node list).
* ``inbound`` is one call whose :class:`~inspector.ir.Inbound` list names the
  producers of the node's non-constant operands (``producer[0][k]``, k = the
  producer's output index); ``node_shapes`` holds one shape per output, from
  ONNX shape inference with data propagation: ``int`` dims, ``str`` for
  symbolic ones (``batch``), ``None`` where unknown.
* ``If``/``Loop``/``Scan`` bodies become nested graphs (``Layer.subgraphs`` keyed
  by attribute name); a call of a model-local function gets the function body as
  ``subgraphs["function"]`` (one shared graph per function).

Parameters (docs/architecture.md, Parameter semantics)
------------------------------------------------------
A parameter is a stored constant — an initializer, a ``Constant`` node's value,
or the output of a ``ConstantOfShape`` generator — that reaches an operator as
*data*, possibly through constant-only nodes (``Cast``, ``Reshape``,
``Transpose``, ``DequantizeLinear`` …), and is of a floating dtype with rank ≥ 1
or is the weight of a quantized op (an integer embedding table whose gathered
rows are dequantized included; :mod:`inspector.loaders.onnx.paramrule`);
other such tensors (0-d scalars, bool masks, integer ids and labels) carry
``Weight.constant=True`` and are reported apart as constants.  Those constant-only nodes are folded:
they are not layers; the stored tensors they transform become weights of the
operator that consumes the result.  Shape, axes, index and similar operands
(``Reshape``'s shape, ``Resize``'s scales, ``Slice``'s starts, ``Gather``'s
indices …) are not parameters.  A weight's ``key`` is the stored tensor's name
(qualified by the sub-graph or function that defines it), so a tensor used by
several nodes counts once; ``BatchNormalization`` mean and variance are
non-trainable; quantization scales and zero points carry
``Weight.quantization=True`` and are reported apart.

Safety and memory
-----------------
The file is read in small positioned reads and its big tensors are stripped
before protobuf parses it (:mod:`inspector.loaders.onnx.wire`), so loading costs
memory in proportion to the graph's structure, not to its weights.  ONNX shape
inference, C++ that a crafted graph can make allocate gigabytes or crash, runs in
a forked helper process with a memory and time budget (Linux); when it fails the
shapes come from the file's ``value_info`` and a note says why.  External
data is recorded by reference (file, offset, length) and read only by
``Weight.read()``; a location that is absolute, contains ``..`` or resolves
outside the model's folder (or is a hard link) is never opened and becomes a
``SEC003`` security fact — for every tensor the model reaches, sparse and
attribute tensors included (:mod:`.external`).  A text model's bracket nesting is
checked against ``proto_depth`` before onnx's recursive parser sees it.
Sub-graphs are built with an explicit work queue, not recursion.

The limits of :mod:`inspector.limits` in force when :func:`load` starts bound the
graph structure's size (``proto_bytes``) and protobuf nesting (``proto_depth``),
the node count (``onnx_nodes``), sub-graph nesting (``onnx_graph_depth``) and the
layers of a full walk (``onnx_expanded_layers``); ``Weight.read()`` refuses a
tensor whose declared size is over ``tensor_bytes`` (the limit in force when it is
called) before allocating anything.  Every limit error names the environment
variable that raises it.  A stored tensor that cannot be decoded (its bytes do
not match its shape and data type) is a :class:`~inspector.errors.ModelLoadError`
from ``Weight.read()``, never a numpy or protobuf exception.

Layout
------
* :mod:`.read` — :func:`load`: the file (binary or text format) into a ``ModelProto``;
* :mod:`.wire` — positioned reads of the protobuf wire format, big tensors skipped;
* :mod:`.inference` — shape inference in an isolated helper process;
* :mod:`.builder` — the ``ModelProto`` into a :class:`~inspector.ir.ModelGraph`;
* :mod:`.fold` — values and shapes of folded constant-only nodes;
* :mod:`.tensors` — lazy readers of stored tensors (``Weight.read()``);
* :mod:`.external` — external data of every reachable tensor (sparse, attributes): ``info``, SEC003;
* :mod:`.protos` — plain values out of protobuf messages (dtypes, types, attributes);
* :mod:`.ops` — tables about operators (shape operands, quantization operands, folding).
"""

from __future__ import annotations

from .read import load

__all__ = ["load"]
