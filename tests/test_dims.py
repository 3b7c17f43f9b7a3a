"""``--dim NAME=VALUE`` and MACs as a formula in a model's symbolic dims (issue 11, item 2).

The models are built here with ``onnx.helper``: a Llama-shaped decoder whose inputs are
``[batch, seq]``; its MACs per sample are ``seq·(L·(4·D² + 2·D·F) + D·V) + seq²·(2·L·D)``
(the four attention projections and the MLP per token, the LM head, and the two attention
products, which grow with seq²).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import inspector
from helpers.cli import one_error_line
from helpers.golden import check_golden
from helpers.onnx_models import onnx_file, onnx_model, tensor, value_info
from inspector.analysis.macs import count_macs
from inspector.analysis.symbolic import Poly, parse_dim
from inspector.errors import UsageError
from inspector.loaders import load
from inspector.loaders.bind import bind_onnx, onnx_symbols

LAYERS, D, HEADS, F, V = 2, 16, 2, 32, 50
SEQ_COEF = LAYERS * (4 * D * D + 2 * D * F) + D * V  # 4,896
SEQ2_COEF = 2 * LAYERS * D  # 64
MONOMIALS = [{"coefficient": SEQ_COEF, "powers": {"seq": 1}}, {"coefficient": SEQ2_COEF, "powers": {"seq": 2}}]


def _formula(seq: int) -> int:
    return SEQ_COEF * seq + SEQ2_COEF * seq * seq


def _decoder(*, extra_anonymous: bool = False) -> onnx.ModelProto:
    """A 2-layer decoder on ``input_ids: [batch, seq]``; ``extra_anonymous`` adds a branch on an
    input whose middle dim has no name (its MatMul's cost stays unknown)."""
    rng = np.random.default_rng(0)
    inits = [tensor("embed", rng.standard_normal((V, D)).astype(np.float32)),
             tensor("heads_shape", np.array([0, 0, HEADS, D // HEADS], np.int64)),
             tensor("merge_shape", np.array([0, 0, D], np.int64)),
             tensor("lm_head", rng.standard_normal((D, V)).astype(np.float32))]
    nodes = [helper.make_node("Gather", ["embed", "input_ids"], ["h0"], name="embed")]
    x = "h0"
    for i in range(LAYERS):
        def w(name: str, shape: tuple[int, ...], i: int = i) -> str:
            inits.append(tensor(f"l{i}.w_{name}", rng.standard_normal(shape).astype(np.float32)))
            return f"l{i}.w_{name}"

        p = f"l{i}."
        for proj in "qkv":
            nodes += [helper.make_node("MatMul", [x, w(proj, (D, D))], [p + proj], name=p + proj + "_proj"),
                      helper.make_node("Reshape", [p + proj, "heads_shape"], [p + proj + "4"],
                                       name=p + proj + "_split")]
        nodes += [
            helper.make_node("Transpose", [p + "q4"], [p + "qt"], perm=[0, 2, 1, 3], name=p + "q_t"),
            helper.make_node("Transpose", [p + "k4"], [p + "kt"], perm=[0, 2, 3, 1], name=p + "k_t"),
            helper.make_node("Transpose", [p + "v4"], [p + "vt"], perm=[0, 2, 1, 3], name=p + "v_t"),
            helper.make_node("MatMul", [p + "qt", p + "kt"], [p + "scores"], name=p + "scores"),
            helper.make_node("Softmax", [p + "scores"], [p + "probs"], axis=-1, name=p + "softmax"),
            helper.make_node("MatMul", [p + "probs", p + "vt"], [p + "ctx"], name=p + "context"),
            helper.make_node("Transpose", [p + "ctx"], [p + "ctx_t"], perm=[0, 2, 1, 3], name=p + "ctx_t"),
            helper.make_node("Reshape", [p + "ctx_t", "merge_shape"], [p + "merged"], name=p + "merge"),
            helper.make_node("MatMul", [p + "merged", w("o", (D, D))], [p + "o"], name=p + "o_proj"),
            helper.make_node("Add", [x, p + "o"], [p + "res"], name=p + "residual"),
            helper.make_node("MatMul", [p + "res", w("up", (D, F))], [p + "up"], name=p + "up_proj"),
            helper.make_node("Relu", [p + "up"], [p + "act"], name=p + "act"),
            helper.make_node("MatMul", [p + "act", w("down", (F, D))], [p + "down"], name=p + "down_proj"),
            helper.make_node("Add", [p + "res", p + "down"], [p + "out"], name=p + "mlp_residual"),
        ]
        x = p + "out"
    nodes.append(helper.make_node("MatMul", [x, "lm_head"], ["logits"], name="lm_head"))
    inputs = [value_info("input_ids", ["batch", "seq"], TensorProto.INT64)]
    outputs = [value_info("logits", ["batch", "seq", V])]
    if extra_anonymous:
        inits.append(tensor("extra_w", rng.standard_normal((D, 4)).astype(np.float32)))
        nodes.append(helper.make_node("MatMul", ["extra", "extra_w"], ["extra_out"], name="extra_proj"))
        inputs.append(value_info("extra", ["batch", None, D]))
        outputs.append(value_info("extra_out", ["batch", None, 4]))
    return onnx_model(nodes, inputs, outputs, inits)


@pytest.fixture(scope="module")
def decoder():
    return onnx_file("dims_decoder", _decoder)


@pytest.fixture(scope="module")
def decoder_anonymous():
    return onnx_file("dims_decoder_anonymous", lambda: _decoder(extra_anonymous=True))


# -- the polynomial type ---------------------------------------------------------------------
def test_poly_arithmetic_text_and_parse():
    seq, batch = Poly.symbol("seq"), Poly.symbol("batch")
    p = 32 * batch * seq * seq + 4096 * batch * seq + 7
    assert p.text() == "7 + 4096·batch·seq + 32·batch·seq²"
    assert p.symbols == ("batch", "seq")
    assert p.evaluate({"batch": 2, "seq": 3}) == 7 + 4096 * 6 + 32 * 18
    assert p.substitute({"batch": 1}).text() == "7 + 4096·seq + 32·seq²"
    assert (2_100_000_000 * batch * seq).text() == "2.1e9·batch·seq"
    assert (4_194_304 * seq).text() == "4.19e6·seq"
    assert Poly.of(5).is_constant and Poly.of(5).constant() == 5 and not (seq * 0)
    with pytest.raises(ValueError):
        p.evaluate({"seq": 3})
    assert parse_dim("batch*seq + 1") == batch * seq + 1
    assert parse_dim("2*seq") == 2 * seq
    for anonymous in ("unk__12", None, 3, "", "seq-1", "f(x)"):
        assert parse_dim(anonymous) is None


# -- MACs as a formula ------------------------------------------------------------------------
def test_formula_of_symbolic_decoder(decoder):
    report = count_macs(load(decoder))
    assert report.formula is not None and report.formula_complete
    assert report.formula.as_dict() == {
        "monomials": MONOMIALS, "text": f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq²"}
    # the numbers are unchanged: every MatMul depends on seq, so it is unknown and the total a lower bound
    assert report.total == 0 and not report.complete
    assert len(report.symbolic) == len(report.unknown) == LAYERS * 8 + 1


def test_formula_with_anonymous_dims_is_a_lower_bound(decoder_anonymous):
    report = count_macs(load(decoder_anonymous))
    assert report.formula is not None and not report.formula_complete
    assert report.unknown == (*report.symbolic, "extra_proj")
    assert report.formula.text() == f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq²"


@pytest.mark.parametrize("seq", [1, 7, 33])
def test_binding_gives_the_formula_evaluated(decoder, seq):
    formula = count_macs(load(decoder)).formula
    assert formula is not None
    bound = count_macs(load(decoder, dims={"seq": seq}))
    assert bound.complete and bound.formula is None
    assert bound.total == formula.evaluate({"seq": seq}) == _formula(seq)
    # per sample: binding the batch too multiplies by it
    both = count_macs(load(decoder, dims={"seq": seq, "batch": 3}))
    assert both.complete and both.total == 3 * _formula(seq)


def test_binding_makes_shapes_concrete(decoder, cli):
    graph = load(decoder, dims={"batch": 2, "seq": 5})
    assert graph.layer("l0.scores").output_shapes == [(2, HEADS, 5, 5)]
    assert graph.layer("lm_head").output_shapes == [(2, 5, V)]
    out = cli("summary", decoder, "--dim", "batch=2", "--dim", "seq=5").out
    assert "(2, 2, 5, 5)" in out and "seq" not in out


def test_static_model_has_no_formula(cli):
    path = onnx_file("dims_static", lambda: onnx_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [value_info("x", ["N", 4, 8])], [value_info("y", ["N", 4, 3])],
        [tensor("w", np.ones((8, 3), np.float32))]))
    report = count_macs(load(path))
    assert report.complete and report.total == 96 and report.formula is None
    doc = json.loads(cli("summary", path, "-f", "json").out)
    assert "macs_formula" not in doc["totals"] and doc["totals"]["macs"] == 96


# -- binding in ONNX protos ------------------------------------------------------------------
def test_bind_onnx_evaluates_expressions_and_names_symbols():
    model = onnx_model([helper.make_node("Identity", ["x"], ["y"])],
                       [value_info("x", ["batch", "seq + past", "2*seq"])],
                       [value_info("y", ["batch", None, "unk__3"])])
    assert onnx_symbols(model) == {"batch", "seq", "past"}
    bind_onnx(model, {"seq": 3, "past": 5})
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [(d.dim_param, d.dim_value) for d in dims] == [("batch", 0), ("", 8), ("", 6)]
    with pytest.raises(UsageError, match=r"no symbolic dim named 'len' in this model \(its symbols: batch\)"):
        bind_onnx(model, {"len": 3})


# -- the command line -----------------------------------------------------------------------
def test_summary_formula_line_golden(decoder, cli):
    result = cli("summary", decoder, "--macs")
    assert result.code == 0
    assert f"Total MACs: {SEQ_COEF}·seq + {SEQ2_COEF}·seq² (formula per sample; bind with --dim)" in result.out
    check_golden("summary_dims_formula.txt", result.out)


def test_summary_formula_lower_bound_line(decoder_anonymous, cli):
    out = cli("summary", decoder_anonymous, "--macs", "-f", "github").out
    assert (f"Total MACs: {SEQ_COEF}·seq + {SEQ2_COEF}·seq² (lower bound: some layers unknown; "
            "formula per sample; bind with --dim)") in out


def test_summary_json_formula_and_bound(decoder, cli):
    doc = json.loads(cli("summary", decoder, "-f", "json").out)
    assert doc["totals"]["macs_formula"] == {
        "monomials": MONOMIALS, "text": f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq²", "complete": True}
    assert doc["totals"]["macs_complete"] is False
    bound = json.loads(cli("summary", decoder, "-f", "json", "--dim", "seq=9").out)
    assert "macs_formula" not in bound["totals"]
    assert bound["totals"]["macs"] == _formula(9) and bound["totals"]["macs_complete"] is True


def test_info_formula_and_bound(decoder, cli):
    out = cli("info", decoder, "--macs").out
    assert f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq² (formula per sample; bind with --dim)" in out
    bound = cli("info", decoder, "--macs", "--dim", "seq=9", "--dim", "batch=1").out
    assert f"({_formula(9):,})" in bound and "formula" not in bound
    doc = json.loads(cli("info", decoder, "--macs", "-f", "json").out)
    assert doc["macs"]["formula"]["text"] == f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq²"


def test_report_binds_dims(decoder, cli):
    unbound = cli("report", decoder, "-f", "markdown", "--no-charts", "--no-lint").out
    assert f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq² (formula per sample; bind with --dim)" in unbound
    html = cli("report", decoder, "-f", "html", "--no-charts", "--no-lint").out
    assert f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq²" in html
    result = cli("report", decoder, "-f", "markdown", "--no-charts", "--no-lint", "--dim", "seq=9")
    assert result.code == 0 and f"{_formula(9):,}" in result.out


def test_diff_binds_dims(decoder, decoder_anonymous, cli):
    result = cli("diff", decoder, decoder_anonymous, "-f", "json", "--no-lint", "--dim", "seq=9")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    macs = doc["totals"]["macs"]
    assert macs["a"] == _formula(9) and macs["b"] == _formula(9)  # b's extra branch stays unknown
    error = cli("diff", decoder, decoder_anonymous, "--no-lint", "--dim", "len=9")
    assert error.code == 2 and error.err.strip() == "inspector: error: no symbolic dim named 'len' in either model"


def test_scan_reports_the_formula_and_binds_dims(decoder, cli):
    row = json.loads(cli("scan", decoder, "--isolated", "--no-cache", "--jobs", "1").out)
    assert row["macs_formula"] == f"{SEQ_COEF}·seq + {SEQ2_COEF}·seq²" and row["macs_complete"] is False
    bound = json.loads(cli("scan", decoder, "--isolated", "--no-cache", "--jobs", "1", "--dim", "seq=9").out)
    assert bound["macs"] == _formula(9) and bound["macs_complete"] is True and bound["macs_formula"] is None


@pytest.mark.parametrize("command", ["summary", "info", "report"])
def test_unknown_symbol_is_one_line_error(decoder, cli, command):
    extra = ["-f", "markdown", "--no-charts", "--no-lint"] if command == "report" else []
    result = cli(command, decoder, *extra, "--dim", "seq=4", "--dim", "len=3")
    assert result.code == 2
    line = one_error_line(result.err, decoder)
    assert line.endswith("no symbolic dim named 'len' in this model (its symbols: batch, seq)")


@pytest.mark.parametrize("value", ["seq", "seq=", "=3", "seq=abc", "seq=0", "seq=-2", "seq=1.5", "9x=2",
                                   "seq=2147483648", "seq=99999999999999999999999"])
def test_bad_dim_syntax_is_one_line_error(decoder, cli, value):
    result = cli("summary", decoder, "--dim", value)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("inspector: error: argument --dim: "), result.err


def test_dim_bound_twice_is_an_error(decoder, cli):
    result = cli("summary", decoder, "--dim", "seq=2", "--dim", "seq=3")
    assert result.code == 2 and result.err.strip() == "inspector: error: --dim seq: bound twice (2 and 3)"
    assert cli("summary", decoder, "--dim", "seq=2", "--dim", "seq=2").code == 0


# -- Keras: the leading None is ``batch`` -------------------------------------------------------
def _keras_dense():
    import keras

    inp = keras.Input((8,))
    return keras.Model(inp, keras.layers.Dense(3, name="head")(inp))


def test_keras_batch_binding(cli):
    from helpers.keras_models import keras_file

    path = keras_file("dims_dense", _keras_dense)
    per_sample = count_macs(load(path))
    assert per_sample.total == 24 and per_sample.formula is None
    graph = load(path, dims={"batch": 4})
    assert graph.layer("head").output_shapes == [(4, 3)]
    assert count_macs(graph).total == 4 * 24
    result = cli("summary", path, "--dim", "seq=3")
    assert result.code == 2
    assert one_error_line(result.err, path).endswith("no symbolic dim named 'seq' in this model (its symbols: batch)")


# -- the Python API ---------------------------------------------------------------------------
def test_api_dims(decoder):
    assert inspector.count_macs(decoder, dims={"seq": 9}).total == _formula(9)
    formula = inspector.count_macs(decoder).formula
    assert formula is not None and formula.evaluate({"seq": 9}) == _formula(9)
    assert f"MACs: {SEQ_COEF}·seq + {SEQ2_COEF}·seq² (formula per sample" in inspector.summary(decoder)._repr_html_()
    doc = inspector.summary(decoder, dims={"seq": 9, "batch": 2}).to_dict()
    assert doc["totals"]["macs"] == 2 * _formula(9) and doc["totals"]["macs_complete"] is True
    assert inspector.load(decoder, dims={"seq": 3}).layer("lm_head").output_shapes == [("batch", 3, V)]
    model = onnx.load(decoder)
    assert inspector.count_macs(model, dims={"seq": 2}).total == _formula(2)  # an in-memory ModelProto
    with pytest.raises(UsageError, match="no symbolic dim named 'len'"):
        inspector.count_macs(decoder, dims={"len": 2})
    with pytest.raises(UsageError, match="whole number from 1 to"):
        inspector.count_macs(decoder, dims={"seq": 0})
    with pytest.raises(UsageError, match="whole number from 1 to"):
        inspector.count_macs(decoder, dims={"seq": 2**31})
    with pytest.raises(UsageError, match="dims are bound while a model is read"):
        inspector.count_macs(inspector.load(decoder), dims={"seq": 2})


def test_exporter_named_dims_stay_anonymous(cli):
    """A TorchScript export names intermediate dims (``MatMul5_dim_0``): not a symbol of the model, so
    the layer's cost stays unknown (no formula in it) and ``--dim`` refuses the name."""
    def build():
        model = onnx_model(
            [helper.make_node("Reshape", ["x", "flat"], ["x2"], name="flatten"),
             helper.make_node("MatMul", ["x2", "w"], ["y"], name="proj"),
             helper.make_node("MatMul", ["x", "w"], ["z"], name="proj3d")],
            [value_info("x", ["batch", "seq", 8])], [value_info("y", ["MatMul5_dim_0", 4]),
                                                     value_info("z", ["batch", "seq", 4])],
            [tensor("flat", np.array([-1, 8], np.int64)), tensor("w", np.ones((8, 4), np.float32))])
        model.graph.value_info.append(value_info("x2", ["MatMul5_dim_0", 8]))
        return model

    path = onnx_file("dims_exporter_named", build)
    report = count_macs(load(path))
    assert report.unknown == ("proj", "proj3d") and report.symbolic == ("proj3d",)
    assert report.formula is not None and report.formula.text() == "32·seq" and not report.formula_complete
    result = cli("summary", path, "--dim", "MatMul5_dim_0=3")
    assert result.code == 2 and one_error_line(result.err, path).endswith("(its symbols: batch, seq)")


def test_matmul_with_exporter_named_output_counts_from_operands():
    """TorchScript declares an LM head's output as ``[MatMul652_dim_0, MatMul652_dim_1, V]`` although
    its operands are ``[batch, seq, D] x [D, V]``: the cost follows from the operands."""
    def build():
        return onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="lm_head")],
                          [value_info("x", ["batch", "seq", 8])],
                          [value_info("y", ["MatMul6_dim_0", "MatMul6_dim_1", 5])],
                          [tensor("w", np.ones((8, 5), np.float32))])

    path = onnx_file("dims_lm_head_named_output", build)
    report = count_macs(load(path))
    assert report.formula is not None and report.formula.text() == "40·seq" and report.formula_complete
    assert count_macs(load(path, dims={"seq": 3})).total == 120
