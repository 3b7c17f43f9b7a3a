"""Every summary format: tabulate tables, CSV and the JSON contract.

The graphs here are built by hand in the IR, so these tests pin the reporters
alone; the loaders are tested against Keras elsewhere.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from tabulate import tabulate_formats

from inspector.analysis.params import count_params
from inspector.analysis.summary import is_sequential_like, summarize
from inspector.ir import Inbound, Layer, ModelGraph, Weight
from inspector.reporters import classic
from inspector.reporters.summary import formats, render

LONG = "a_really_long_layer_name_that_keras_would_cut_in_its_listing"


def w(name, shape, *, trainable=True, role="kernel", key=None, dtype="float32"):
    return Weight(name=name, role=role, shape=shape, dtype=dtype, trainable=trainable, key=key or name)


def branching_graph() -> ModelGraph:
    """input → dense(shared, called twice) → add(both calls) → bn → out, plus fp16 weights."""
    layers = [
        Layer("inp", "InputLayer", inbound=[[]], node_shapes=[[(None, 8)]]),
        Layer(LONG, "Dense", inbound=[[Inbound("inp")], [Inbound(LONG, 0, 0)]],
              node_shapes=[[(None, 8)], [(None, 8)]],
              weights=[w("d/kernel", (8, 8)), w("d/bias", (8,), role="bias")]),
        Layer("add", "Add", inbound=[[Inbound(LONG, 0, 0), Inbound(LONG, 1, 0)]], node_shapes=[[(None, 8)]]),
        Layer("bn", "BatchNormalization", inbound=[[Inbound("add")]], node_shapes=[[(None, 8)]],
              weights=[w("bn/gamma", (8,), role="gamma"), w("bn/beta", (8,), role="beta"),
                       w("bn/moving_mean", (8,), role="moving_mean", trainable=False),
                       w("bn/moving_variance", (8,), role="moving_variance", trainable=False)]),
        Layer("half", "Dense", inbound=[[Inbound("bn")]], node_shapes=[[(None, 2)]],
              weights=[w("h/kernel", (8, 2), dtype="float16")]),
    ]
    return ModelGraph(name="branchy", format="keras", layers=layers, inputs=[Inbound("inp")],
                      outputs=[Inbound("half")], kind="functional")


def chain_graph() -> ModelGraph:
    layers = [
        Layer("x", "InputLayer", inbound=[[]], node_shapes=[[(None, 4)]]),
        Layer("d1", "Dense", inbound=[[Inbound("x")]], node_shapes=[[(None, 3)]],
              weights=[w("d1/kernel", (4, 3))]),
        Layer("d2", "Dense", inbound=[[Inbound("d1")]], node_shapes=[[(None, 1)]],
              weights=[w("d2/kernel", (3, 1))]),
    ]
    return ModelGraph(name="chain", format="keras", layers=layers, inputs=[Inbound("x")],
                      outputs=[Inbound("d2")], kind="functional")


def test_sequential_like_follows_keras_rule():
    assert is_sequential_like(chain_graph())
    assert not is_sequential_like(branching_graph())
    g = chain_graph()
    g.outputs.append(Inbound("d1"))  # d1 is deeper than d2 all the same: still a chain
    assert is_sequential_like(g)
    g.layers.append(Layer("d3", "Dense", inbound=[[Inbound("x")]], node_shapes=[[(None, 1)]]))
    g.outputs.append(Inbound("d3"))  # a second branch: d2 and d3 share depth 0
    g.invalidate()
    assert not is_sequential_like(g)


def test_counts_shared_and_frozen_weights_once():
    report = count_params(branching_graph())
    assert report.totals.params == 64 + 8 + 32 + 16
    assert report.totals.non_trainable == 16
    assert dict((d, n) for d, n, _ in report.bytes_by_dtype) == {"float32": 104, "float16": 16}
    assert report.totals.bytes == 104 * 4 + 16 * 2


def test_classic_wide_listing_rows_and_cuts():
    text = render(branching_graph())
    lines = text.splitlines()
    assert lines[0] == 'Model: "branchy"'
    table = [ln for ln in lines[1:] if not ln.startswith(("Total", "Trainable", "Non-trainable"))]
    assert all(len(ln) == 98 for ln in table)
    # the long name is cut to 31 characters plus a space
    assert any(ln.startswith(LONG[:31] + " ") for ln in lines)
    # the shared layer's second call prints its connection on a row of its own
    add_row = lines.index(next(ln for ln in lines if ln.startswith("add (Add)")))
    assert lines[add_row][65:].rstrip() == f"{LONG}[0][0]"[:33]
    assert lines[add_row + 1].strip() == f"{LONG}[1][0]"[:33]
    assert lines[add_row + 1][:65].strip() == ""
    assert "Total params: 120" in lines and "Non-trainable params: 16" in lines


def test_classic_shared_layer_with_different_shapes_prints_multiple():
    g = branching_graph()
    g.layers[1].node_shapes[1] = [(None, 9)]
    row = next(ln for ln in render(g).splitlines() if ln.startswith("a_really"))
    assert row[32:53].strip() == "multiple"


def test_classic_bad_positions_are_usage_errors():
    from inspector.errors import UsageError

    with pytest.raises(UsageError):
        render(chain_graph(), positions=[0.5, 1.0])
    with pytest.raises(UsageError):
        render(chain_graph(), positions=[0.8, 0.5, 1.0])


@pytest.mark.parametrize("fmt", sorted(tabulate_formats))
def test_every_tabulate_format_prints_full_names_and_memory(fmt):
    text = render(branching_graph(), fmt=fmt)
    # LaTeX formats escape underscores, except latex_raw
    escaped = LONG.replace("_", r"\_") if fmt.startswith("latex") and fmt != "latex_raw" else LONG
    assert escaped in text  # never cut
    assert "Parameter memory by dtype" in text
    assert "float16" in text and "float32" in text
    assert "Total params: 120" in text


def test_format_list_and_unknown_format():
    from inspector.errors import UsageError

    assert {"classic", "json", "csv", "github", "grid", "simple"} <= set(formats())
    with pytest.raises(UsageError, match="unknown format"):
        render(chain_graph(), fmt="nope")


def test_csv_is_rectangular_and_adds_up():
    rows = list(csv.reader(io.StringIO(render(branching_graph(), fmt="csv"))))
    header, body = rows[0], rows[1:]
    assert all(len(r) == len(header) for r in body)
    layers = [r for r in body if not r[0].startswith("(")]
    assert [r[0] for r in layers] == ["inp", LONG, "add", "bn", "half"]
    total = next(r for r in body if r[0] == "(total)")
    assert int(total[3]) == sum(int(r[3]) for r in layers)
    dtypes = {r[0]: int(r[6]) for r in body if r[0].startswith("(dtype")}
    assert dtypes == {"(dtype float32)": 416, "(dtype float16)": 32}


def test_json_contract():
    doc = json.loads(render(branching_graph(), fmt="json"))
    assert doc["schema"] == "inspector.summary/1"
    assert doc["model"] == {"name": "branchy", "format": "keras", "path": None}
    by_name = {lay["name"]: lay for lay in doc["layers"]}
    bn = by_name["bn"]
    assert bn["output_shapes"] == [[None, 8]]
    assert (bn["params"], bn["trainable_params"], bn["non_trainable_params"]) == (32, 16, 16)
    assert bn["inbound"] == ["add[0][0]"]
    assert [x["role"] for x in bn["weights"]] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert by_name["add"]["inbound"] == [f"{LONG}[0][0]", f"{LONG}[1][0]"]
    assert "macs" in bn
    totals = doc["totals"]
    assert (totals["params"], totals["trainable"], totals["non_trainable"]) == (120, 104, 16)
    assert totals["bytes"] == 448
    assert totals["bytes_by_dtype"] == {"float32": 416, "float16": 32}


def test_summary_rows_skip_sequential_input_layer():
    g = chain_graph()
    g.kind = "sequential"
    names = [r.name for r in summarize(g, macs=False).rows]
    assert names == ["d1", "d2"]
    assert classic.render(summarize(g, macs=False)).splitlines()[1] == "_" * 65
