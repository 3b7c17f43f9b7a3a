"""The fast paths of issue 14 and the early limits of issue 13 item 11 keep behaviour: the same totals as
a reference count, limits that trip before the expensive work, path checks once per external data file,
and no cyclic garbage (the CLI runs without the cyclic collector).  No timed tests: the speed itself is
measured by ``bench/bench_extremes.py``."""

from __future__ import annotations

import gc
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_fresh
from helpers.onnx_models import onnx_model, value_info
from inspector.analysis.params import count_params
from inspector.errors import LimitExceeded, ModelLoadError
from inspector.loaders import load

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _make_decoder():
    spec = importlib.util.spec_from_file_location("make_decoder", BENCH / "make_decoder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_decoder", module)
    spec.loader.exec_module(module)
    return module


def _reference_totals(graph) -> tuple[int, int, int]:
    """Parameters, trainable parameters and bytes, counted the slow, obvious way (every layer of every
    nested graph, each stored tensor once)."""
    seen: set[str] = set()
    params = trainable = nbytes = 0
    for _, layer in graph.walk():
        for w in layer.weights:
            if w.key in seen or w.quantization or w.constant:
                continue
            seen.add(w.key)
            size = int(np.prod([int(d) for d in w.shape], dtype=object)) if w.shape else 1
            params += size
            nbytes += w.nbytes
            trainable += size if w.trainable else 0
    return params, trainable, nbytes


@pytest.mark.parametrize("data", ["inline", "dense"])
def test_generated_decoder_totals_match_a_reference_count(tmp_path, data):
    md = _make_decoder()
    spec = md.DecoderSpec(layers=3, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32, data=data,
                          split_tensors=60 if data == "dense" else 0)
    path = md.write_decoder(tmp_path / "decoder.onnx", spec)
    graph = load(path)
    report = count_params(graph)
    assert (report.totals.params, report.totals.trainable, report.totals.bytes) == _reference_totals(graph)
    assert report.totals.params >= md.count_params(spec)  # the weights, plus small stored scalars
    assert report.totals.params - md.count_params(spec) < 16
    assert sum(c.params for _, c in report.layers) >= report.totals.params  # per layer: shared tensors repeat


def test_external_data_path_checks_run_once_per_data_file(tmp_path, monkeypatch):
    from inspector.loaders.onnx import builder

    md = _make_decoder()
    spec = md.DecoderSpec(layers=2, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32, data="dense",
                          split_tensors=80)
    path = md.write_decoder(tmp_path / "decoder.onnx", spec)
    calls: list[str] = []
    real = builder.resolve_inside

    def counting(base, location):
        calls.append(location)
        return real(base, location)

    monkeypatch.setattr(builder, "resolve_inside", counting)
    graph = load(path)
    [ext] = graph.metadata["external_data"]
    assert ext["tensors"] >= 80 and ext["status"] == "ok"
    assert calls == ["decoder.onnx.data"]


def test_external_data_refused_for_every_tensor_of_a_refused_file(tmp_path):
    """The per-file cache keeps the verdict: each tensor of an outside file stays unreadable."""
    from onnx import TensorProto, helper

    from inspector.errors import UnsafeModel

    weights = []
    for i in range(3):
        t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[4, 4])
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", "../outside.bin"), ("offset", str(64 * i)), ("length", "64")):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        weights.append(t)
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"y{i - 1}", f"w{i}"], [f"y{i}"]) for i in range(3)]
    model = onnx_model(nodes, [value_info("x", [1, 4])], [value_info("y2", [1, 4])], weights)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    graph = load(path)
    readers = [w for _, lay in graph.walk() for w in lay.weights]
    assert len(readers) == 3
    for w in readers:
        with pytest.raises(UnsafeModel):
            w.read()
    assert [f.code for f in graph.security] == ["SEC003"]


def _fan_out_model(levels: int, calls: int):
    """Functions f0..f{levels-1}: f0 is one Relu, f{i} calls f{i-1} ``calls`` times; the graph calls the last."""
    from onnx import helper

    functions = [helper.make_function("local", "f0", ["x"], ["y"], [helper.make_node("Relu", ["x"], ["y"])],
                                      [helper.make_opsetid("", 17)])]
    for level in range(1, levels):
        nodes = [helper.make_node(f"f{level - 1}", ["x" if i == 0 else f"t{i - 1}"],
                                  [f"t{i}" if i < calls - 1 else "y"], domain="local") for i in range(calls)]
        functions.append(helper.make_function("local", f"f{level}", ["x"], ["y"], nodes,
                                              [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]))
    graph = helper.make_graph([helper.make_node(f"f{levels - 1}", ["x"], ["y"], domain="local")], "g",
                              [value_info("x", [1, 4])], [value_info("y", [1, 4])])
    model = helper.make_model(graph, functions=functions,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)])
    model.ir_version = 8
    return model


def test_function_fan_out_is_refused_before_shape_inference(tmp_path, monkeypatch):
    from inspector.loaders.onnx import inference

    path = tmp_path / "fan.onnx"
    path.write_bytes(_fan_out_model(levels=12, calls=8).SerializeToString())  # 8**11 Relu nodes once expanded

    def never(*args, **kwargs):
        raise AssertionError("shape inference ran on a model past the expansion limit")

    monkeypatch.setattr(inference, "run_shape_inference", never)
    with pytest.raises(LimitExceeded, match="onnx_expanded_layers") as err:
        load(path)
    assert "INSPECTOR_MAX_ONNX_EXPANDED_LAYERS" in str(err.value)


def test_small_function_fan_out_loads_and_counts_per_call(tmp_path, monkeypatch):
    path = tmp_path / "fan.onnx"
    path.write_bytes(_fan_out_model(levels=3, calls=3).SerializeToString())  # 9 Relu nodes once expanded
    graph = load(path)
    relus = [lay for _, lay in graph.walk() if lay.type == "Relu"]
    assert len(relus) == 9
    monkeypatch.setenv("INSPECTOR_MAX_ONNX_EXPANDED_LAYERS", "8")
    with pytest.raises(LimitExceeded, match="onnx_expanded_layers"):
        load(path)


def test_node_limit_trips_in_the_wire_pass_before_protobuf_parses(tmp_path, monkeypatch):
    import onnx
    from onnx import helper

    nodes = [helper.make_node("Relu", ["x" if i == 0 else f"t{i - 1}"], [f"t{i}"], name=f"relu_{i}")
             for i in range(300)]
    model = onnx_model(nodes, [value_info("x", [1, 4])], [value_info("t299", [1, 4])])
    path = tmp_path / "many.onnx"
    path.write_bytes(model.SerializeToString())
    assert len(load(path).layers) == 301
    monkeypatch.setenv("INSPECTOR_MAX_ONNX_NODES", "200")

    def never(self, data):
        raise AssertionError("protobuf parsed a model past the node limit")

    monkeypatch.setattr(onnx.ModelProto, "ParseFromString", never)
    with pytest.raises(LimitExceeded, match="more than 200 nodes") as err:
        load(path)
    assert "INSPECTOR_MAX_ONNX_NODES" in str(err.value)


def test_loading_summarizing_and_linting_leave_no_cyclic_garbage(tmp_path):
    """The CLI switches the cyclic collector off (inspector/cli.py): that is only sound while reading a
    model creates no reference cycles, which reference counting could not free."""
    from inspector.analysis.summary import summarize

    md = _make_decoder()
    path = md.write_decoder(tmp_path / "decoder.onnx",
                            md.DecoderSpec(layers=2, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32))
    load(path)  # imports and first-use caches
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        graph = load(path)
        summarize(graph)
        del graph
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()


def test_cli_runs_without_the_cyclic_collector_and_restores_it(cli, tmp_path, monkeypatch):
    from inspector import loaders

    md = _make_decoder()
    path = md.write_decoder(tmp_path / "decoder.onnx",
                            md.DecoderSpec(layers=1, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32))
    seen: list[bool] = []
    real = loaders.load

    def recording(p, **options):
        seen.append(gc.isenabled())
        return real(p, **options)

    monkeypatch.setattr(loaders, "load", recording)
    assert gc.isenabled()
    result = cli("summary", str(path))
    assert result.code == 0 and "Total params" in result.out
    assert seen == [False] and gc.isenabled()


def test_onnx_summary_does_not_import_onnx_or_ml_dtypes(tmp_path):
    """Startup (issue 14): a fresh process reads, infers shapes of and summarizes an ONNX file through
    onnx's protobuf classes and C++ extension only; ``import onnx`` (and ml_dtypes, ~1 s) is left out."""

    md = _make_decoder()
    path = md.write_decoder(tmp_path / "decoder.onnx",
                            md.DecoderSpec(layers=1, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32))
    run = run_fresh("summary", path, watch=("onnx", "ml_dtypes", "onnx.onnx_ml_pb2"), cwd=tmp_path)
    assert run.code == 0 and "Total params" in run.out
    assert run.imported == ["onnx.onnx_ml_pb2"]


def test_lite_proto_class_is_the_one_onnx_uses():
    """After ``import onnx`` the lite loader hands out onnx's own classes (no second ModelProto)."""
    import onnx

    from inspector.loaders.onnx import lite

    assert type(lite.model_proto()) is onnx.ModelProto
    assert lite.get_schema("Conv", 17, "").inputs[1].name == "W"


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8", "uint8", "int32", "int64", "bool"])
def test_inline_raw_tensors_decode_as_numpy_helper_does(dtype):
    """Inline ``raw_data`` of a type numpy knows is decoded without onnx, to the same array."""
    from onnx import numpy_helper

    from inspector.loaders.onnx.tensors import proto_reader

    values = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    t = numpy_helper.from_array(values, "w")
    assert t.raw_data  # the fast path's input
    got = proto_reader(t, "w")()
    assert got.dtype == values.dtype and got.shape == values.shape
    np.testing.assert_array_equal(got, numpy_helper.to_array(t))
    t.raw_data = t.raw_data[:-1]  # one byte short: one sentence, not a numpy error
    with pytest.raises(ModelLoadError, match="the file is corrupt"):
        proto_reader(t, "w")()


def test_onnx_lint_of_inline_weights_does_not_import_onnx(tmp_path):
    """A fresh process (a ``--jobs`` worker, a CI step) lints an ONNX file with inline weights without
    ``import onnx`` and its ml_dtypes (~1 s)."""

    path = tmp_path / "mlp.onnx"
    path.write_bytes((Path(__file__).resolve().parents[1] / "samples" / "lint_deep_sigmoid.onnx").read_bytes())
    run = run_fresh("lint", "--no-cache", "--jobs", "1", path, watch=("onnx", "ml_dtypes"), cwd=tmp_path)
    assert "ACT" in run.out, run.out
    assert run.imported == []
