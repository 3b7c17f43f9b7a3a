"""The activation probe for Keras models, through TensorFlow (the ``tensorflow`` extra).

How (see :mod:`inspector.analysis.probe` for what is measured):

1. The model is loaded with ``keras.saving.load_model(path, safe_mode=True,
   compile=False)``; :func:`inspector.analysis.probe.probe` has already refused
   files the static safety scan flagged (unless ``--trust``).
2. Every layer to measure gets a *tap*: an activation layer's ``call`` is
   wrapped so its input is seen before the layer runs; a layer with a fused
   activation (``Dense(…, activation="sigmoid")``) gets its ``activation``
   attribute wrapped, so the tap sees the layer's linear output — the exact
   pre-activation, computed once, by the layer itself.  Nested models and
   shared layers are covered: a layer called twice is tapped twice and both
   calls are counted.
3. The model is traced once as a ``tf.function``: while tracing, each tap adds
   in-graph reductions of its tensor (moments; per-unit maximum for the ReLU
   family or per-unit saturated count for sigmoid-like functions; a non-finite
   count inside a ``tf.cond`` that only runs when the moments are not finite).
   One forward pass computes the model and every statistic, and only a few
   numbers per layer are copied out of TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InspectorError, MissingDependency, ModelLoadError, UsageError
from ..graphquery import activation_of, is_activation_layer, producers
from ..ir import Layer, ModelGraph
from .probe import Aggregator, ProbeReport, Progress, RawStats, Target, finish, make_target, output_layers, timer
from .probe_inputs import InputSpec, make_batch


def _frameworks() -> tuple[Any, Any]:
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependency("probing a Keras model", extra="tensorflow", package="tensorflow") from None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise UsageError(f"the probe runs Keras models on the TensorFlow backend; KERAS_BACKEND is "
                         f"{keras.backend.backend()!r}: set KERAS_BACKEND=tensorflow")
    return tf, keras


def _load(keras: Any, path: Path) -> Any:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except InspectorError:
        raise
    except Exception as exc:  # noqa: BLE001 - Keras raises anything; the user gets one line
        text = " ".join(str(exc).split())[:160]
        raise ModelLoadError(f"Keras could not load the model to probe it ({type(exc).__name__}: {text})") from None


def _live_layers(keras: Any, model: Any) -> dict[str, Any]:
    """Every live layer by its path (``outer/inner/dense``), nested models included."""
    out: dict[str, Any] = {}
    stack: list[tuple[str, Any, int]] = [("", model, 0)]
    while stack:
        prefix, m, depth = stack.pop()
        for lay in getattr(m, "layers", []):
            path = prefix + lay.name
            out[path] = lay
            if isinstance(lay, keras.Model) and depth < 64:
                stack.append((path + "/", lay, depth + 1))
    return out


def _graphs(graph: ModelGraph) -> Iterator[tuple[str, ModelGraph]]:
    """``(prefix, graph)`` for the graph and every nested Keras model."""
    stack: list[tuple[str, ModelGraph, int]] = [("", graph, 0)]
    while stack:
        prefix, g, depth = stack.pop()
        yield prefix, g
        for lay in g.layers:
            sub = lay.subgraph
            if sub is not None and depth < 64:
                stack.append((f"{prefix}{lay.name}/", sub, depth + 1))


def _unit_axis(g: ModelGraph, layer: Layer) -> int:
    """-1 (channels_last) unless the layer, or the nearest producer that has a
    ``data_format``, is ``channels_first``."""
    cur: Layer | None = layer
    for _ in range(32):
        if cur is None:
            break
        fmt = (cur.config or {}).get("data_format")
        if isinstance(fmt, str):
            return 1 if fmt == "channels_first" else -1
        prods = producers(g, cur)
        cur = prods[0] if prods else None
    return -1


def plan(graph: ModelGraph, live: dict[str, Any]) -> tuple[list[Target], list[str]]:
    """The layers to tap, in graph order, and notes about layers that cannot be."""
    targets: list[Target] = []
    notes: list[str] = []
    for prefix, g in _graphs(graph):
        for lay in g.layers:
            act = activation_of(lay)
            if act is None or act == "linear":
                continue
            path = prefix + lay.name
            fused = not is_activation_layer(lay)
            target = make_target(path, lay, act, unit_axis=_unit_axis(g, lay), fused=fused)
            if target is None:
                continue
            obj = live.get(path)
            if obj is None or (fused and not callable(getattr(obj, "activation", None))):
                notes.append(f"layer {path!r} ({act}) could not be tapped and is not measured")
                continue
            targets.append(target)
    order = {p: i for i, (p, _) in enumerate(graph.walk())}
    targets.sort(key=lambda t: order.get(t.path, len(order)))
    return targets, notes


def _install(live: dict[str, Any], targets: list[Target], state: dict[str, Any]) -> None:
    """Wrap each target's ``call`` (activation layers) or ``activation`` (fused)."""
    for t in targets:
        obj = live[t.path]

        def record(x: Any, _path: str = t.path) -> None:
            rec = state.get("rec")
            if rec is not None:
                rec(_path, x)

        if t.fused:
            original_act = obj.activation

            def activation(x: Any, *args: Any, _orig: Callable[..., Any] = original_act,
                           _rec: Callable[[Any], None] = record, **kw: Any) -> Any:
                _rec(x)
                return _orig(x, *args, **kw)

            obj.activation = activation
        else:
            original_call = obj.call

            def call(*args: Any, _orig: Callable[..., Any] = original_call, _rec: Callable[[Any], None] = record,
                     **kw: Any) -> Any:
                x = args[0] if args else kw.get("inputs")
                if x is not None:
                    _rec(x)
                return _orig(*args, **kw)

            obj.call = call


def _stats_ops(tf: Any, x: Any, t: Target) -> dict[str, Any]:
    """In-graph reductions of one pre-activation tensor."""
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    rank = x.shape.rank or 0
    size = tf.size(x, out_type=tf.int64)
    all_axes = list(range(rank))
    mean, var = tf.nn.moments(x, axes=all_axes) if rank else (x, tf.zeros_like(x))
    ok = tf.logical_and(tf.math.is_finite(mean), tf.math.is_finite(var))
    n = tf.cast(size, tf.float64)

    def clean() -> tuple[Any, Any, Any]:
        return tf.cast(mean, tf.float64), tf.cast(var, tf.float64) * n, tf.constant(0, tf.int64)

    def dirty() -> tuple[Any, Any, Any]:
        finite = tf.math.is_finite(x)
        bad = tf.reduce_sum(tf.cast(tf.logical_not(finite), tf.int64))
        xd = tf.cast(tf.where(finite, x, tf.zeros_like(x)), tf.float64)
        count = tf.maximum(tf.reduce_sum(tf.cast(finite, tf.float64)), 1.0)
        m = tf.reduce_sum(xd) / count
        m2 = tf.reduce_sum(tf.where(finite, tf.square(xd - m), tf.zeros_like(xd)))
        return m, m2, bad

    m, m2, bad = tf.cond(ok, clean, dirty)
    out = {"size": size, "mean": m, "m2": m2, "nonfinite": bad}
    if rank <= 1:
        reduce_axes = all_axes
        out["units"] = tf.constant(1, tf.int64)
    else:
        unit = t.unit_axis % rank
        reduce_axes = [i for i in all_axes if i != unit]
        out["units"] = tf.cast(tf.shape(x)[unit], tf.int64)
    if t.family == "rectifier":
        out["unit_max"] = tf.reshape(tf.reduce_max(x, axis=reduce_axes), [-1])
    elif t.family == "saturating":
        if t.inclusive:
            sat = tf.logical_or(x <= t.lo, x >= t.hi)
        else:
            sat = tf.logical_or(x < t.lo, x > t.hi)
        out["unit_saturated"] = tf.reshape(tf.reduce_sum(tf.cast(sat, tf.int32), axis=reduce_axes), [-1])
    return out


Records = dict[str, list[dict[str, Any]]]
"""Per layer path, one dict of in-graph statistics (TensorFlow tensors) per call."""
Forward = Callable[[list[Any]], tuple[Records, list[tuple[Any, Any]]]]
"""The traced forward pass: input tensors -> (records, ``(size, non-finite count)`` per output)."""


def instrument(graph: ModelGraph, model: Any) -> tuple[Forward, list[Target], list[str]]:
    """Tap ``model`` (a live Keras model loaded from ``graph``'s file) and return the
    traced forward function ``forward(list_of_input_tensors) -> (records, outputs)``,
    the measured targets, and notes.  ``records`` maps a layer path to one dict of
    statistics per call; ``outputs`` holds ``(size, non-finite count)`` per model output."""
    tf, keras = _frameworks()
    live = _live_layers(keras, model)
    targets, notes = plan(graph, live)
    state: dict[str, Any] = {"rec": None}
    _install(live, targets, state)
    by_path = {t.path: t for t in targets}

    def forward(feeds: list[Any]) -> tuple[Records, list[tuple[Any, Any]]]:
        records: Records = {}
        state["rec"] = lambda path, x: records.setdefault(path, []).append(_stats_ops(tf, x, by_path[path]))
        try:
            outputs = model(feeds[0] if len(feeds) == 1 else list(feeds), training=False)
        finally:
            state["rec"] = None
        outs: list[tuple[Any, Any]] = []
        for o in tf.nest.flatten(outputs):
            o = tf.convert_to_tensor(o)
            bad = (tf.reduce_sum(tf.cast(tf.logical_not(tf.math.is_finite(o)), tf.int64))
                   if o.dtype.is_floating else tf.constant(0, tf.int64))
            outs.append((tf.size(o, out_type=tf.int64), bad))
        return records, outs

    traced: Forward = tf.function(reduce_retracing=True)(forward)
    return traced, targets, notes


def run(graph: ModelGraph, *, inputs: str | Path | None, batch_size: int, seed: int,
        progress: Progress | None = None) -> ProbeReport:
    tf, keras = _frameworks()
    tf.get_logger().setLevel("ERROR")  # no "triggered tf.function retracing" chatter when probing several models
    report = progress or (lambda stage, done, total: None)
    report("loading the model", 0, 1)
    model = load(graph)
    specs = []
    for i, kt in enumerate(model.inputs):
        name = getattr(kt, "name", None) or f"input_{i}"
        dtype = kt.dtype if isinstance(kt.dtype, str) else getattr(kt.dtype, "name", "float32")
        specs.append(InputSpec(name=name, shape=tuple(kt.shape), dtype=str(dtype), layer=name))
    batch = make_batch(graph, specs, inputs=inputs, batch_size=batch_size, seed=seed)
    forward, targets, notes = instrument(graph, model)
    agg = Aggregator(targets)
    elapsed = timer()
    total = batch.count
    for i, chunk in enumerate(batch.chunks()):
        report("running the model", i, total)
        feeds = [tf.constant(a) for a in chunk]
        try:
            records, outs = forward(feeds)
        except InspectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model that fails on the batch: one line
            text = " ".join(str(exc).split())[:200]
            raise ModelLoadError(f"the model failed on the probe batch ({type(exc).__name__}: {text})") from None
        for path, calls in records.items():
            agg.add(path, [_raw(c) for c in calls])
        for j, (size, bad) in enumerate(outs):
            agg.add_output(j, int(size), int(bad))
    report("running the model", total, total)
    seconds = elapsed()
    framework = f"tensorflow {tf.__version__} (keras {keras.__version__})"
    names = [ref.layer for ref in graph.outputs]
    return finish(graph, framework=framework, batch=batch, agg=agg, seconds=seconds, output_names=names,
                  output_layers=output_layers(graph), notes=notes)


def load(graph: ModelGraph) -> Any:
    """The live Keras model for ``graph`` (the caller has checked trust)."""
    _, keras = _frameworks()
    return _load(keras, Path(str(graph.path)))


def _raw(c: dict[str, Any]) -> RawStats:
    return RawStats(size=int(c["size"]), nonfinite=int(c["nonfinite"]), mean=float(c["mean"]),
                    m2=float(c["m2"]), units=int(c["units"]),
                    unit_max=c["unit_max"].numpy() if "unit_max" in c else None,
                    unit_saturated=c["unit_saturated"].numpy() if "unit_saturated" in c else None)
