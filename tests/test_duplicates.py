"""Stored tensors that copy another one (issue 11, item 6): analysis/duplicates.py and its reports
(``info``, ``summary --format json``; the lint rule GRAPH003 is tested in test_rules_graph.py)."""

from __future__ import annotations

import json

import numpy as np
from onnx import helper

from helpers.lint import load_graph
from helpers.onnx_models import DIM, VOCAB, onnx_file, onnx_model, tensor, tied_model, value_info
from inspector.analysis.duplicates import MIN_ELEMENTS, DuplicatePair, find_duplicates


def test_transposed_and_identical_copies_are_found():
    graph = load_graph(onnx_file("dup_copies", lambda: tied_model(copies=True)))
    report = find_duplicates(graph)
    assert report.pairs == (DuplicatePair("W", "W2", False, DIM * DIM * 4),
                            DuplicatePair("E", "E_T", True, VOCAB * DIM * 4))
    assert report.wasted_bytes == (DIM * DIM + VOCAB * DIM) * 4


def test_different_tensors_and_tiny_coincidences_are_not_copies():
    """Same shapes, other values: nothing.  The equal biases (32 elements) and the equal [1] tensors are
    under the 1,024-element threshold: ignored."""
    assert MIN_ELEMENTS == 1024
    graph = load_graph(onnx_file("dup_distinct", lambda: tied_model(copies=False)))
    assert find_duplicates(graph).pairs == ()


def test_a_sample_match_is_confirmed_in_full():
    """Two tensors equal at every sampled position but one differ elsewhere: not copies."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((DIM, DIM)).astype(np.float32)
    b = a.copy()
    b[0, 1] += 1.0  # position 1 is not among the 64 sampled of 1,024

    def build() -> object:
        nodes = [helper.make_node("MatMul", ["x", "A"], ["h"], name="mm1"),
                 helper.make_node("MatMul", ["h", "B"], ["y"], name="mm2")]
        return onnx_model(nodes, [value_info("x", [1, DIM])], [value_info("y", [1, DIM])],
                          [tensor("A", a), tensor("B", b)])

    assert find_duplicates(load_graph(onnx_file("dup_near", build))).pairs == ()


def test_info_names_both_tensors_and_the_wasted_bytes(cli):
    path = onnx_file("dup_copies", lambda: tied_model(copies=True))
    code, out, _ = cli("info", path)
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("Duplicate tensor")]
    assert lines == ["Duplicate tensor  W2 is an identical copy of W (4.00 KB wasted)",
                     "Duplicate tensor  E_T is a transposed copy of E (8.00 KB wasted)"], out
    doc = json.loads(cli("info", path, "--format", "json").out)
    assert doc["duplicate_params"][1] == {"original": "E", "copy": "E_T", "transposed": True, "wasted_bytes": 8192}
    clean = onnx_file("dup_distinct", lambda: tied_model(copies=False))
    assert "Duplicate tensor" not in cli("info", clean).out
    assert json.loads(cli("info", clean, "--format", "json").out)["duplicate_params"] == []


def test_summary_json_reports_duplicate_params(cli):
    doc = json.loads(cli("summary", onnx_file("dup_copies", lambda: tied_model(copies=True)), "--format", "json").out)
    assert doc["schema"] == "inspector.summary/1"
    assert [(p["copy"], p["original"], p["transposed"]) for p in doc["duplicate_params"]] == [
        ("W2", "W", False), ("E_T", "E", True)]
    clean = json.loads(cli("summary", onnx_file("dup_distinct", lambda: tied_model(copies=False)),
                           "--format", "json").out)
    assert clean["duplicate_params"] == []


def test_summary_and_info_read_no_weight_past_their_budget(cli, monkeypatch):
    # A summary reads no weight byte of a model whose same-shaped tensors are large (an LLM):
    # past the budget the check is skipped and says so; lint (GRAPH003) still checks.
    import inspector.analysis.duplicates as dup
    from inspector.ir import Weight

    path = onnx_file("dup_copies", lambda: tied_model(copies=True))
    monkeypatch.setattr(dup, "SUMMARY_READ_BYTES", 0)
    def refuse(self: Weight) -> None:
        raise AssertionError(f"read {self.name}")

    monkeypatch.setattr(Weight, "read", refuse)
    doc = json.loads(cli("summary", path, "--format", "json").out)
    assert doc["duplicate_params"] is None
    info = json.loads(cli("info", path, "--format", "json").out)
    assert info["duplicate_params"] is None and info["duplicate_params_skipped_bytes"] > 0
    assert "Duplicate tensors  not checked:" in cli("info", path).out
    report = find_duplicates(load_graph(path), max_read_bytes=0)
    assert report.pairs == () and report.skipped_bytes > 0


def _counting_reads(graph) -> list[str]:
    """Wrap every stored tensor's reader of ``graph`` to log its name when called."""
    reads: list[str] = []
    for _, lay in graph.walk():
        for w in lay.weights:
            if w.reader is not None and not getattr(w.reader, "counted", False):
                def read(_real=w.reader, _name=w.name):
                    reads.append(_name)
                    return _real()

                read.counted = True
                w.reader = read
    return reads


def test_lint_takes_the_copy_samples_from_the_weight_statistics():
    """The samples the weight statistics keep give the same pairs as reading every candidate, and the
    copy search then reads only the tensors whose samples agree (the copies and their originals)."""
    from inspector.analysis.weights import analyze

    for copies, expected in ((True, ["E", "E_T", "W", "W2"]), (False, [])):
        graph = load_graph(onnx_file("dup_copies" if copies else "dup_distinct",
                                     lambda copies=copies: tied_model(copies=copies)))
        plain = find_duplicates(graph)
        reads = _counting_reads(graph)
        report = analyze(graph)
        read_by_statistics = sorted(reads)
        assert len(read_by_statistics) == len(set(read_by_statistics))  # once each
        reads.clear()
        assert find_duplicates(graph, taken=report.samples) == plain
        assert sorted(reads) == expected
        reads.clear()
        assert find_duplicates(graph) == plain and len(reads) > len(expected)  # without them: every candidate


def test_an_original_with_many_copies_is_read_once_to_confirm_them():
    """Four equal tensors (the zero biases of an untrained model): three pairs with the first, which is
    read once for all three comparisons; a fifth tensor of the same shape but other values is no copy."""
    zeros = np.zeros((DIM, DIM), np.float32)
    other = np.arange(DIM * DIM, dtype=np.float32).reshape(DIM, DIM)
    names = ["A", "B", "C", "D", "E"]

    def build() -> object:
        nodes, prev = [], "x"
        for i, n in enumerate(names):
            nodes.append(helper.make_node("MatMul", [prev, n], [f"h{i}"], name=f"mm{i}"))
            prev = f"h{i}"
        return onnx_model(nodes, [value_info("x", [1, DIM])], [value_info(prev, [1, DIM])],
                          [tensor(n, other if n == "E" else zeros) for n in names])

    graph = load_graph(onnx_file("dup_many", build))
    reads = _counting_reads(graph)
    report = find_duplicates(graph)
    assert [(p.original, p.copy) for p in report.pairs] == [("A", "B"), ("A", "C"), ("A", "D")]
    assert sorted(reads) == ["A", "A", "B", "B", "C", "C", "D", "D", "E"]  # sampled once each; A compared once
