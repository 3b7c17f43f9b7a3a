"""The summary's fast paths of issue 14 (a 162,000-node graph) give what the general paths give: rows made
without the general row builder, per-layer parameter counts taken in the totals' pass, ``scrub`` checking
long sequences a block at a time, classic lines written by one ``str.format``, indented JSON written
without ``json``'s generators, nested graphs found without walking every layer.  Each test runs both
paths on one small graph, plus a case that must take the general path.  No timed tests: the speed is
measured by ``bench/bench_extremes.py``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from inspector import textsafe
from inspector.analysis.macs import count_macs
from inspector.analysis.params import NONE, ParamCount, count_params, layer_params
from inspector.analysis.params import _count as general_count
from inspector.analysis.summary import SummaryRow, SummaryRows, _row, summarize
from inspector.ir import Inbound, Layer, ModelGraph, SecurityFact, Weight
from inspector.loaders import load
from inspector.reporters import classic, keras3, summary_json
from inspector.reporters.summary import render as summary_render
from inspector.trust import security_facts

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _decoder(tmp_path: Path) -> ModelGraph:
    spec = importlib.util.spec_from_file_location("make_decoder", BENCH / "make_decoder.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_decoder", module)
    spec.loader.exec_module(module)
    dspec = module.DecoderSpec(layers=2, hidden=16, ffn=40, vocab=64, heads=2, max_positions=32, data="inline")
    return load(module.write_decoder(tmp_path / "decoder.onnx", dspec))


def _mixed_graph() -> ModelGraph:
    """Layers for every path: no weight, one parameter, one constant, one quantization scale, two weights
    sharing storage, a shared layer called twice with different shapes, odd (list) shapes, a nested model."""
    kernel = Weight("k", "kernel", (3, 2), "float32")
    inner = ModelGraph("inner", "keras", layers=[Layer("d", "Dense", weights=[kernel])])
    layers = [
        Layer("in", "InputLayer", node_shapes=[[(None, 3)]]),
        Layer("plain", "Relu", inbound=[[Inbound("in")]], node_shapes=[[(None, 3)]]),
        Layer("one", "Dense", inbound=[[Inbound("plain")]], node_shapes=[[(None, 4)]], dtype="float32",
              weights=[Weight("w1", "kernel", (3, 4), "float32", trainable=False)], notes=["a note"]),
        Layer("const", "Add", inbound=[[Inbound("one"), Inbound("plain")]], node_shapes=[[(None, 4)]],
              weights=[Weight("c", "value", (), "float32", constant=True)]),
        Layer("quant", "DequantizeLinear", node_shapes=[[(None, 4)]],
              weights=[Weight("s", "scale", (4,), "float32", quantization=True)]),
        Layer("two", "Dense", node_shapes=[[(None, 4)]],
              weights=[Weight("w2", "kernel", (4, 4), "float16"), Weight("w2b", "bias", (4, 4), "float16", key="w2")]),
        Layer("shared", "Dense", inbound=[[Inbound("one")], [Inbound("two")]], node_shapes=[[(None, 4)], [(None, 5)]],
              weights=[Weight("w1", "kernel", (3, 4), "float32", trainable=False)]),
        Layer("odd", "Reshape", node_shapes=[[[None, 4]]]),  # type: ignore[list-item]  # a list, not a tuple
        Layer("nested", "Functional", subgraphs={"model": inner}, node_shapes=[[(None, 2)]]),
        Layer("noshape", "Identity"),
    ]
    return ModelGraph("mixed", "keras", layers=layers, kind="functional")


def test_fast_rows_equal_the_general_rows(tmp_path):
    for graph in (_decoder(tmp_path), _mixed_graph()):
        params = dict(count_params(graph).layers)
        summary = summarize(graph, macs=False)
        assert summary.rows == tuple(_row(lay, params[lay.name], None) for lay in graph.layers)


def test_fast_rows_share_equal_shapes_and_the_general_path_copies():
    summary = summarize(_mixed_graph(), macs=False)
    rows = {r.name: r for r in summary.rows}
    assert rows["plain"].output_shapes is rows["in"].output_shapes  # one object for equal shapes
    assert rows["plain"].last_call_shapes is rows["plain"].output_shapes
    # the general path: a shared layer with different shapes per call, odd shapes
    assert rows["shared"].multiple_shapes and rows["shared"].last_call_shapes == ((None, 5),)
    assert rows["shared"].connections == (Inbound("one"), Inbound("two"))
    assert rows["odd"].output_shapes == ([None, 4],) and rows["noshape"].output_shapes == ()


def test_per_layer_counts_equal_layer_params(tmp_path):
    for graph in (_decoder(tmp_path), _mixed_graph()):
        report = count_params(graph)
        assert report.layers == tuple((lay.name, layer_params(lay)) for lay in graph.layers)
    counts = dict(count_params(_mixed_graph()).layers)
    assert counts["plain"] is NONE and counts["const"] == counts["quant"] == NONE
    assert counts["one"] == ParamCount(12, 0, 12, 48)
    assert counts["two"] == ParamCount(16, 16, 0, 32)  # one storage, counted once (the general path)
    assert counts["nested"] == ParamCount(6, 6, 0, 24)


def test_totals_count_each_storage_once_across_layers():
    report = count_params(_mixed_graph())
    # w1 (12, frozen) once although two layers hold it, w2 (16) once, the nested kernel (6)
    assert (report.totals.params, report.totals.trainable, report.totals.bytes) == (34, 22, 48 + 32 + 24)
    assert (report.constants.params, report.quantization.params) == (1, 4)
    assert report.bytes_by_dtype == (("float32", 18, 72), ("float16", 16, 32))


# -- scrub: blocks checked at once, walked only where something must change --------------------------------


@dataclasses.dataclass(frozen=True)
class _Item:
    name: str
    shape: tuple[object, ...]
    extra: object = None


def _walked(items: tuple) -> tuple:
    """What the item-by-item walk (the general path) gives for the items of a scrubbed tuple."""
    changed = textsafe._walk_items(items, {}, 1)
    return items if changed is None else tuple(changed)


@pytest.mark.parametrize("where", [0, 255, 256, 700, 1299])
def test_scrub_block_with_a_hostile_name_equals_the_walk(where):
    items = tuple(_Item(f"layer_{i}", (None, i, "seq")) for i in range(1300))
    items = items[:where] + (_Item("evil\n::error::x\u202e", (None, "s\x1b[2J")),) + items[where + 1:]
    out = textsafe.scrub(items)
    assert out == _walked(items)
    assert out[where].name == "evil\\n::error::x\\u202e" and out[where].shape == (None, "s\\x1b[2J")
    block = where // textsafe.BLOCK
    for i, (a, b) in enumerate(zip(out, items, strict=True)):
        if i // textsafe.BLOCK != block:
            assert a is b  # clean blocks are not walked: the same objects


def test_scrub_clean_long_sequence_is_the_same_object():
    items = tuple(_Item(f"Ñandú_{i}", ((1, 2), (None, "batch")), extra=NONE) for i in range(1000))
    assert textsafe.scrub(items) is items
    rows = summarize(_mixed_graph(), macs=False)
    assert textsafe.scrub(rows) is rows


@pytest.mark.parametrize("extra", [["a\n"], {"k": "v\x1b"}, {"k\u2028": 1}, textsafe.TOO_DEEP + "\r"])
def test_scrub_block_falls_back_to_the_walk_for_lists_dicts_and_str_subclasses(extra):
    class Tag(str):
        pass

    value = Tag(extra) if isinstance(extra, str) else extra
    items = tuple(_Item(f"n{i}", (i,), extra=value if i == 600 else None) for i in range(900))
    out = textsafe.scrub(items)
    assert out == _walked(items) and out[600] is not items[600]
    clean = tuple(_Item(f"n{i}", (i,), extra=[1, {"k": "v"}] if i == 600 else Tag("ok")) for i in range(900))
    assert textsafe.scrub(clean) == clean


def test_scrub_block_keeps_the_depth_limit():
    deep: object = "x"
    for _ in range(textsafe.MAX_DEPTH):
        deep = (deep,)
    items = tuple(_Item(f"n{i}", (), extra=deep if i == 400 else (1,)) for i in range(600))
    out = textsafe.scrub(items)
    assert out == _walked(items) and textsafe.TOO_DEEP in repr(out[400])
    assert out[399] is items[399]


@pytest.mark.parametrize("text, clean", [("plain ascii / name:0", True), ("tab\there", False), ("del\x7f", False),
                                         ("Ñandú · 层 · \u00a0nbsp", True), ("bidi\u202e", False),
                                         ("sep\u2028", False), ("lone\ud800", False), ("bom\ufeff", False)])
def test_clean_text_agrees_with_the_unsafe_pattern(text, clean):
    assert textsafe._clean_text(text) is clean
    assert clean is (textsafe.UNSAFE.search(text) is None)


# -- classic lines -------------------------------------------------------------------------------------------


def _old_row(fields: list[str], stops: list[int]) -> str:
    """The listing's line as written before: field by field, cut, padded, last character made a space."""
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += field
        line = line[: stops[i]]
        line += " " * (stops[i] - len(line))
    return line


@pytest.mark.parametrize("stops", [[32, 53, 65], [1, 2, 3, 4], [3, 4, 30, 31, 98], [10, 20, 21, 22]])
def test_classic_line_format_equals_the_field_by_field_line(stops):
    cells = ["", "a", "ab", "abc", "x" * 9, "y" * 10, "z" * 11, "层层层层", "name (Type)", "(None, 4)"]
    for i in range(len(cells)):
        fields = [cells[(i + k) % len(cells)] for k in range(len(stops))]
        assert classic._row(fields, stops) == _old_row(fields, stops)


def _conn_graph() -> ModelGraph:
    """A functional graph whose layers take zero, one, two and three connections (the last two shared)."""
    layers = [
        Layer("a", "InputLayer", node_shapes=[[(None, 3)]]),
        Layer("b", "Relu", inbound=[[Inbound("a")]], node_shapes=[[(None, 3)]]),
        Layer("c", "Add", inbound=[[Inbound("a"), Inbound("b", 0, 1)]], node_shapes=[[(None, 3)]]),
        Layer("d", "Concat", inbound=[[Inbound("a"), Inbound("b"), Inbound("c", 2, 3)]], node_shapes=[[(None, 9)]],
              weights=[Weight("w", "kernel", (3, 3), "float32")]),
        Layer("e", "Relu", node_shapes=[[(None, 9)]], weights=[Weight("v", "kernel", (3, 3), "float32")]),
    ]
    return ModelGraph("conns", "onnx", layers=layers, kind="functional")


@pytest.mark.parametrize("stops", [[32, 53, 65, 98], [3, 4, 30, 31], [10, 20, 21, 98]])
def test_classic_further_connections_equal_the_field_by_field_lines(stops):
    summary = summarize(_conn_graph(), macs=False)
    columns = classic._columns(summary.rows, False)
    texts, count = classic._body(summary.rows, columns, stops, wide=True)
    expected: list[str] = []
    for i, conns in enumerate(summary.rows.connections):  # the general way: every line written field by field
        lines = [_old_row([col[i] for col in columns] + [str(conns[0]) if conns else ""], stops)]
        lines.extend(_old_row(["", "", "", str(c)], stops) for c in conns[1:])
        expected.append("\n".join(lines))
    assert texts == expected
    assert count == 5 + 3  # five layers, three further connections (one of c, two of d)


@pytest.mark.parametrize("graph", [_conn_graph(), ModelGraph("empty", "onnx", kind="functional"),
                                   ModelGraph("one", "keras", kind="sequential", layers=[Layer("d", "Dense")])])
def test_classic_listing_counts_the_lines_it_writes(graph):
    summary = summarize(graph, macs=False)
    text, lines = classic.listing(summary)
    assert text.endswith("\n") and lines == text.count("\n") == len(text.splitlines())
    rules = [line for line in text.splitlines() if line and set(line) in ({"="}, {"_"})]
    assert len(rules) == 2 + 1 + max(len(graph.layers) - 1, 0) + 1  # the head's, the layers' =, between, the foot's


# -- nested graphs of the security facts ---------------------------------------------------------------------


def test_security_facts_keep_the_walk_order():
    def fact(code: str, where: str) -> SecurityFact:
        return SecurityFact(code, f"in {where}", layer=where)

    deepest = ModelGraph("deepest", "onnx", security=[fact("SEC001", "deepest")])
    inner = ModelGraph("inner", "onnx", security=[fact("SEC002", "inner")],
                       layers=[Layer("plain", "Relu"), Layer("loop", "Loop", subgraphs={"body": deepest})])
    other = ModelGraph("other", "onnx", security=[fact("SEC003", "other")])
    scan_body = ModelGraph("s", "onnx", security=[fact("SEC005", "s")])
    graph = ModelGraph("top", "onnx", security=[fact("SEC004", "top")], layers=[
        Layer("a", "Relu"), Layer("if", "If", subgraphs={"then_branch": inner, "else_branch": other}),
        Layer("b", "Relu"), Layer("scan", "Scan", subgraphs={"body": scan_body}),
    ])
    walked = [graph] + [sub for _, lay in graph.walk() for sub in lay.subgraphs.values()]
    expected = [f for g in walked for f in g.security]
    assert security_facts(graph) == expected
    assert [f.layer for f in expected] == ["top", "inner", "other", "deepest", "s"]


def test_summary_rows_type_is_still_a_frozen_dataclass():
    assert dataclasses.is_dataclass(SummaryRow) and SummaryRow.__dataclass_params__.frozen  # type: ignore[attr-defined]


# -- the indented JSON summary ---------------------------------------------------------------------------------


def test_json_summary_of_both_row_paths_equals_json_dumps(tmp_path):
    for graph in (_decoder(tmp_path), _mixed_graph()):
        summary = summarize(graph, macs=True, duplicates=True)
        doc = summary_json.as_dict(summary)
        assert summary_json.render(summary) == json.dumps(doc, indent=2) + "\n"
        assert summary_json.render(summary, indent=None) == json.dumps(doc) + "\n"


# -- keras3 cells ----------------------------------------------------------------------------------------------


def test_keras3_wrap_of_a_fitting_cell_equals_the_word_wrap():
    texts = ["", " ", "   ", "a", "abc", " abc", "abc ", " a b ", "a  b", "a\tb", "\u3000x\u3000", "x\x1cy",
             "(None, 4)", "name (Type)", "层层 层", "a" * 10, "a" * 11, "ab cd ef gh", "abcdefghij klm"]
    for width in (1, 3, 5, 10, 11, 40):
        for text in texts:
            assert keras3._wrap(text, width) == keras3._wrap_words(text, width), (text, width)
    assert keras3._wrap("a b", 3) == ["a b"] and keras3._wrap("a bc", 3) == ["a ", "bc"]


# -- rows kept column by column ----------------------------------------------------------------------------------


def _sequential_graph() -> ModelGraph:
    layers = [Layer("in", "InputLayer", node_shapes=[[(None, 3)]], notes=["input note"]),
              Layer("d", "Dense", inbound=[[Inbound("in")]], node_shapes=[[(None, 4)]],
                    weights=[Weight("k", "kernel", (3, 4), "float32")]),
              Layer("e", "Dense", inbound=[[Inbound("d")]], node_shapes=[[(None, 2)]],
                    weights=[Weight("k2", "kernel", (4, 2), "float32"), Weight("b2", "bias", (2,), "float32")])]
    return ModelGraph("seq", "keras", layers=layers, kind="sequential")


def test_rows_read_as_a_tuple_of_rows(tmp_path):
    for graph in (_decoder(tmp_path), _mixed_graph(), _sequential_graph()):
        rows = summarize(graph, macs=True).rows
        params = dict(count_params(graph).layers)
        report = count_macs(graph)
        macs, formulas = dict(report.layers), dict(report.layer_formulas)
        kept = [lay for lay in graph.layers if graph.kind != "sequential" or lay.type != "InputLayer"]
        expected = tuple(_row(lay, params[lay.name], macs.get(lay.name), formulas.get(lay.name)) for lay in kept)
        assert rows == expected and expected == rows
        try:
            digest = hash(expected)
        except TypeError:  # a list shape (the mixed graph's "odd"), as in a tuple of the rows
            with pytest.raises(TypeError):
                hash(rows)
        else:
            assert hash(rows) == digest
        assert len(rows) == len(expected) and list(rows) == list(expected)
        assert rows[0] == expected[0] and rows[-1] == expected[-1] and rows[1:3] == expected[1:3]
        assert rows == SummaryRows(**{f.name: getattr(rows, f.name) for f in dataclasses.fields(rows)})
        assert rows != expected[:-1] and rows != list(expected)
        for i, row in enumerate(rows):  # each column holds the rows' field
            assert (rows.names[i], rows.types[i], rows.params[i], rows.connections[i]) == (
                row.name, row.type, row.params, row.connections)
    assert [r.name for r in summarize(_sequential_graph(), macs=False).rows] == ["d", "e"]
    assert summarize(_sequential_graph(), macs=False).notes == ("in: input note",)


def test_scrub_of_rows_escapes_each_column():
    graph = _mixed_graph()
    graph.layers[1].name = "plain\x1b[2J"
    graph.layers[2].inbound = [[Inbound("plain\n::error::x")]]
    graph.layers[3].notes = ["note\u202e"]
    clean = textsafe.scrub(summarize(graph, macs=False))
    rows = {r.name: r for r in clean.rows}
    assert "plain\\x1b[2J" in rows and str(rows["one"].connections[0]) == "plain\\n::error::x[0][0]"
    assert rows["const"].notes == ("note\\u202e",) and clean.rows.names[1] == "plain\\x1b[2J"
    assert all(textsafe.UNSAFE.search(n) is None for n in clean.rows.names)


# -- the classic listing checked after it is written ---------------------------------------------------------


def _scrubbed_classic(graph: ModelGraph, **options: object) -> str:
    """The general path: the summary scrubbed, then written."""
    summary = textsafe.scrub(summarize(graph, macs=bool(options.get("macs"))))
    return classic.render(summary, **options)  # type: ignore[arg-type]


def _classic_and_scrubs(graph: ModelGraph, monkeypatch: pytest.MonkeyPatch, **options: object) -> tuple[str, int]:
    calls = []
    real = textsafe.scrub
    monkeypatch.setattr(textsafe, "scrub", lambda obj: calls.append(1) or real(obj))
    text = summary_render(graph, fmt="classic", **options)  # type: ignore[arg-type]
    monkeypatch.setattr(textsafe, "scrub", real)
    return text, len(calls)


@pytest.mark.parametrize("where, options, scrubs", [
    ("none", {}, 0),
    ("weight", {}, 0),  # a weight's name is not printed by the listing
    ("past the cut", {}, 0),  # the name's cut cell shows no unsafe character: the same line
    ("in the cut", {}, 1),
    ("connection", {}, 0),  # the narrow listing (the graph is sequential-like) shows no connections
    ("wide connection", {}, 1),
    ("note", {}, 1),
    ("past the cut", {"macs": True}, 1),  # with MACs no cell is cut: the name shows whole
    ("past the cut", {"line_length": 60, "positions": [10, 30, 60]}, 0),
    ("in the cut", {"line_length": 60, "positions": [10, 30, 60]}, 1),
])
def test_classic_checked_after_writing_equals_the_scrubbed_listing(monkeypatch, where, options, scrubs):
    graph = _mixed_graph()
    long_name = "n" * 40
    if where == "weight":
        graph.layers[2].weights = [Weight("w1\x1b[2J", "kernel", (3, 4), "float32", trainable=False)]
    elif where == "past the cut":
        graph.layers[5].name = long_name + "\x1b[2J\n::error::x"  # (a layer without notes, which show it whole)
    elif where == "in the cut":
        graph.layers[2].name = "one\u202e"
    elif where.endswith("connection"):
        graph.layers[3].inbound = [[Inbound("one\r")]]
        graph.kind = "onnx" if where == "wide connection" else graph.kind
    elif where == "note":
        graph.layers[2].notes = ["a\nb"]
    text, calls = _classic_and_scrubs(graph, monkeypatch, **options)
    assert text == _scrubbed_classic(graph, **options)
    assert calls == scrubs
    assert textsafe.clean_lines(text, len(text.splitlines()))


@pytest.mark.parametrize("lines, clean", [([], True), (["a", "b", ""], True), (["Ñandú", "层 · ²"], True),
                                          (["a", "b\n"], False), (["Ñ\n", "b"], False), (["a\rb"], False),
                                          (["a\tb"], False), (["x\x1b"], False), (["Ñ", "\x1b"], False),
                                          (["Ñ\u202e"], False), (["a\u2028b"], False), (["a\x85b"], False),
                                          (["Ñ\ud800"], False)])
def test_clean_lines_allows_no_line_break_inside_a_line(lines, clean):
    text = "".join(line + "\n" for line in lines)
    assert textsafe.clean_lines(text, len(lines)) is clean
    assert clean is all(textsafe.UNSAFE.search(line) is None for line in lines)


@pytest.mark.parametrize("text", ["a\nb\n", "Ñ\nb\n"])
def test_clean_lines_counts_the_line_breaks(text):
    assert textsafe.clean_lines(text, 2)
    assert not textsafe.clean_lines(text, 1) and not textsafe.clean_lines(text, 3)
    assert not textsafe.clean_lines(text[:-1], 2)  # the last line without its line break


# -- counts remembered per (shape, dtype, trainable); rows read in one pass ------------------------------------


def _repeated_weights_graph() -> ModelGraph:
    """Weights repeating a (shape, dtype, trainable) under other keys, one storage shared by two layers, a
    list shape (not remembered), trainable given as 1 and 0, and the categories counted apart."""
    def dense(name: str, weight: Weight) -> Layer:
        return Layer(name, "Dense", node_shapes=[[(None, 4)]], weights=[weight])

    return ModelGraph("repeated", "onnx", kind="onnx", layers=[
        dense("a", Weight("wa", "kernel", (3, 4), "float32")),
        dense("b", Weight("wb", "kernel", (3, 4), "float32")),  # same kind, another storage: counted
        dense("c", Weight("wa2", "kernel", (3, 4), "float32", key="wa")),  # the storage of a: not counted again
        dense("d", Weight("wd", "kernel", (3, 4), "float32", trainable=False)),
        dense("e", Weight("we", "kernel", (3, 4), "float16", trainable=1)),  # type: ignore[arg-type]
        dense("f", Weight("wf", "kernel", [3, 4], "float32", trainable=0)),  # type: ignore[arg-type]
        dense("g", Weight("wg", "kernel", (3, 4), "float32", quantization=True)),
        dense("h", Weight("wh", "kernel", (3, 4), "float32", constant=True)),
        dense("i", Weight("wa", "kernel", (3, 4), "float32", constant=True)),  # a's key as a constant: apart
        dense("j", Weight("wj", "kernel", (3, 4), "float32", quantization=True, constant=True)),  # counted nowhere
        dense("k", Weight("wk", "kernel", (5,), "int4")),
    ])


def test_remembered_counts_equal_each_weights_own_count():
    graph = _repeated_weights_graph()
    report = count_params(graph)
    assert report.layers == tuple((lay.name, layer_params(lay)) for lay in graph.layers)
    counts = dict(report.layers)
    assert counts["a"] is counts["b"] is counts["c"] and counts["a"] == ParamCount(12, 12, 0, 48)
    assert counts["d"] == ParamCount(12, 0, 12, 48) and counts["e"] == ParamCount(12, 12, 0, 24)
    assert counts["f"] == ParamCount(12, 0, 12, 48) and counts["k"] == ParamCount(5, 5, 0, 3)
    assert counts["g"] is counts["h"] is counts["i"] is counts["j"] is NONE


def test_remembered_counts_keep_the_totals_of_counting_each_storage_once():
    graph = _repeated_weights_graph()
    report = count_params(graph)
    weights = list(graph.iter_weights())
    plain = general_count(weights)  # each storage once, the first weight of a key counted
    assert report.totals == plain == ParamCount(12 * 5 + 5, 12 * 3 + 5, 24, 48 * 4 + 24 + 3)
    assert report.quantization == ParamCount(12, 0, 12, 48)
    assert report.constants == ParamCount(24, 0, 24, 96)
    assert report.bytes_by_dtype == (("float32", 48, 192), ("float16", 12, 24), ("int4", 5, 3))


def test_sequential_rows_of_both_paths_skip_the_input_and_keep_its_note():
    """A Sequential model whose InputLayer is not first: rows of the general path (a shared layer, a list
    shape) after the dropped input still get their own layer's fields; every layer's notes in graph order."""
    layers = [Layer("d", "Dense", node_shapes=[[(None, 4)]], notes=["first"]),
              Layer("in", "InputLayer", node_shapes=[[(None, 3)]], notes=["input note"]),
              Layer("shared", "Dense", inbound=[[Inbound("d")], [Inbound("d")]], node_shapes=[[(None, 4)], [(None, 5)]],
                    weights=[Weight("k", "kernel", (4, 4), "float32")]),
              Layer("odd", "Reshape", node_shapes=[[[None, 4]]], notes=["x", "y"]),  # type: ignore[list-item]
              Layer("e", "Dense", inbound=[[Inbound("odd")]], node_shapes=[[(None, 4)]])]
    graph = ModelGraph("seq", "keras", layers=layers, kind="sequential")
    summary = summarize(graph, macs=False)
    params = dict(count_params(graph).layers)
    assert summary.rows == tuple(_row(lay, params[lay.name], None) for lay in layers if lay.type != "InputLayer")
    assert summary.notes == ("d: first", "in: input note", "odd: x", "odd: y")
    assert summary.rows.output_shapes[0] is summary.rows.output_shapes[3]  # equal shapes shared


def test_summary_tallies_the_totals_count_params_reports(tmp_path):
    """The summary counts parameters in its own pass over the rows: the same totals as ``count_params``,
    a dropped InputLayer's weight (a Sequential model) and the optimizer state included."""
    sequential = _sequential_graph()
    sequential.layers[0].weights = [Weight("in_w", "kernel", (2,), "float64")]
    momentum = Weight("m", "momentum", (3, 4), "float32")
    sequential.optimizer_weights = [momentum, momentum]  # one storage: counted once
    for graph in (_decoder(tmp_path), _mixed_graph(), _repeated_weights_graph(), sequential):
        report, summary = count_params(graph), summarize(graph, macs=False)
        assert (summary.totals, summary.bytes_by_dtype, summary.optimizer, summary.quantization, summary.constants) == (
            report.totals, report.bytes_by_dtype, report.optimizer, report.quantization, report.constants)
        counts = dict(report.layers)
        assert summary.rows.params == tuple(counts[name] for name in summary.rows.names)
    assert summarize(sequential, macs=False).totals.params == 2 + 12 + 8 + 2
    assert summarize(sequential, macs=False).optimizer == ParamCount(12, 0, 12, 48)
