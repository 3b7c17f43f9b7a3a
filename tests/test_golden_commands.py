"""Golden files for the command outputs that are not pinned elsewhere: ``info`` (Keras and
ONNX), ``diff`` (text, Markdown, JSON), ``graph`` (DOT, Mermaid, GraphML, node-link JSON)
and the ``probe`` table.  They run on the shipped ``samples/`` models from the repository
root, so every path in the output is relative and stable.

Regenerate after an intended output change: see ``tests/helpers/golden.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.golden import check_golden

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root: the outputs name ``samples/...`` whatever the checkout."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("model,golden", [("samples/seed_cnn.keras", "info_seed_cnn.txt"),
                                          ("samples/lint_deep_sigmoid.onnx", "info_deep_sigmoid_onnx.txt")])
def test_info_golden(cli, at_root, model, golden):
    result = cli("info", model, "--macs")
    assert result.code == 0 and result.err == ""
    check_golden(golden, result.out)


DIFF_PAIRS = {"cnn": ("samples/seed_cnn.keras", "samples/lint_bn_cnn.keras"),
              "export": ("samples/lint_deep_sigmoid.keras", "samples/lint_deep_sigmoid.onnx")}


@pytest.mark.parametrize("pair", sorted(DIFF_PAIRS))
@pytest.mark.parametrize("fmt,suffix", [("text", "txt"), ("markdown", "md"), ("json", "json")])
def test_diff_golden(cli, at_root, pair, fmt, suffix):
    a, b = DIFF_PAIRS[pair]
    result = cli("diff", a, b, "--format", fmt, "--isolated")
    assert result.code == 0 and result.err == ""
    check_golden(f"diff_{pair}.{suffix}", result.out)


@pytest.mark.parametrize("fmt,suffix", [("dot", "dot"), ("mermaid", "mmd"), ("graphml", "graphml"),
                                        ("json", "json")])
def test_graph_golden(cli, at_root, fmt, suffix):
    result = cli("graph", "samples/seed_cnn.keras", "--format", fmt)
    assert result.code == 0 and result.err == ""
    check_golden(f"graph_seed_cnn.{suffix}", result.out)


def test_graph_mermaid_collapsed_golden(cli, at_root):
    result = cli("graph", "samples/lint_deep_sigmoid.onnx", "--format", "mermaid", "--max-nodes", "4")
    assert result.code == 0 and result.err == ""
    check_golden("graph_deep_sigmoid_onnx_max4.mmd", result.out)


def normalize_probe(text: str) -> str:
    """Blank what differs from machine to machine: framework versions and the time taken.
    The measured numbers stay (a seeded batch: identical from run to run)."""
    text = re.sub(r"run with .*", "run with <runtime>", text)
    return re.sub(r" in \d+\.\d+ s$", " in <time> s", text, flags=re.M)


@pytest.mark.parametrize("model,golden", [("samples/lint_deep_sigmoid.onnx", "probe_deep_sigmoid_onnx.txt"),
                                          ("samples/lint_deep_sigmoid.keras", "probe_deep_sigmoid_keras.txt"),
                                          ("samples/seed_cnn.keras", "probe_seed_cnn.txt")])
def test_probe_table_golden(cli, at_root, model, golden):
    result = cli("probe", model, "--seed", "0")
    assert result.code == 0 and result.err == ""
    check_golden(golden, normalize_probe(result.out))
