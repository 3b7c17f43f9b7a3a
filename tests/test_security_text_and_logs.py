"""Crashes and blow-ups from small files (issue 13 items 4 and 5):

* deeply nested ONNX text (``.onnxtxt``, or a ``.onnx`` file that starts with
  ``<``) is refused before onnx's recursive C++ parser sees it — one error line,
  and the other files on the command line are still reported;
* a TensorBoard event declaring a huge tensor with one stored value is skipped
  unread instead of being expanded to its declared size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import hostile as H
from helpers.cli import one_error_line
from inspector.analysis.history_logs import read_history
from inspector.errors import LimitExceeded
from inspector.loaders.onnx.read import _check_text_nesting

HEADER = H.ONNXTXT_HEADER
_nested_onnxtxt = H.nested_onnxtxt


def test_deeply_nested_text_is_one_error_and_the_other_files_are_reported(cli, tmp_path):
    deep_text = tmp_path / "deep.onnxtxt"
    deep_text.write_text(_nested_onnxtxt(5000))
    deep_binary = tmp_path / "deep.onnx"  # a ".onnx" file that is text (starts with "<")
    deep_binary.write_text(_nested_onnxtxt(5000))
    good = tmp_path / "good.onnxtxt"
    good.write_text(_nested_onnxtxt(3))
    code, out, err = cli("summary", deep_text, good, deep_binary)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in err, err
    for path, line in zip((deep_text, deep_binary), lines, strict=True):
        one_error_line(line, path)
        assert "proto_depth" in line and "INSPECTOR_MAX_PROTO_DEPTH" in line
    assert 'Model: "g"' in out and "If" in out


def test_nesting_under_the_limit_parses(cli, tmp_path, monkeypatch):
    path = tmp_path / "m.onnxtxt"
    path.write_text(_nested_onnxtxt(30))  # 2 brackets a level: about 60 deep
    assert cli("summary", path).code == 0
    monkeypatch.setenv("INSPECTOR_MAX_PROTO_DEPTH", "40")
    code, _, err = cli("summary", path)
    assert code == 2 and "proto_depth" in one_error_line(err, path)


def test_brackets_in_strings_and_comments_do_not_count(cli, tmp_path):
    path = tmp_path / "m.onnxtxt"
    brackets = "{<([" * 100
    text = _nested_onnxtxt(2).replace(HEADER, HEADER.replace(">", f', doc_string: "{brackets}">'))
    path.write_text(f"# {brackets}\n{text}")
    assert cli("summary", path).code == 0
    with pytest.raises(LimitExceeded):
        _check_text_nesting(brackets.encode(), 200)
    _check_text_nesting(f'"{brackets}" # {brackets}\n\'{brackets}\' => > ) ]'.encode(), 200)
    _check_text_nesting(b'"a\\"' + b"{" * 300 + b'"', 200)  # an escaped quote does not end the string
    with pytest.raises(LimitExceeded):
        _check_text_nesting(b'"a\\\\"' + b"{" * 201, 200)  # an escaped backslash does not escape the quote
    with pytest.raises(LimitExceeded):
        _check_text_nesting(b'"' + b"}" * 300 + b'"' + b"{" * 201, 200)  # closers in a string hide nothing


def test_the_arrow_is_not_a_closing_bracket():
    _check_text_nesting(b"{ " * 150 + b"=> " * 100 + b"}" * 150, 200)
    with pytest.raises(LimitExceeded):
        _check_text_nesting(b"{ " * 150 + b"=> " * 100 + b"{ " * 51, 200)


def _run(tmp_path: Path, events: list[tuple[str, int, list[int], list[float]]]) -> Path:
    return H.tensorboard_events(tmp_path / "logs" / "events.out.tfevents.1.host", events)


def test_a_huge_declared_tensorboard_tensor_is_never_materialised(tmp_path):
    pytest.importorskip("tensorboard")
    import tracemalloc

    path = _run(tmp_path, [("epoch_loss", 0, [], [1.0]), ("epoch_loss", 1, [1 << 28], [0.5]),
                           ("epoch_loss", 2, [1], [0.25]), ("epoch_loss", 3, [1, 1], [0.125])])
    assert path.stat().st_size < 512
    tracemalloc.start()
    try:
        history = read_history(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak  # numpy's allocations are traced: 2**28 floats would be 1 GiB
    assert history.epochs == (0, 2, 3) and history.series("loss") == ([0, 2, 3], [1.0, 0.25, 0.125])


def test_one_element_tensors_of_any_rank_are_read(tmp_path):
    pytest.importorskip("tensorboard")
    path = _run(tmp_path, [("epoch_loss", 0, [1, 1, 1], [2.0]), ("epoch_loss", 1, [], [1.0]),
                           ("epoch_loss", 2, [0], [])])
    history = read_history(path)
    assert history.series("loss") == ([0, 1], [2.0, 1.0])


def test_only_one_element_tensors_reach_the_decoder():
    """Both readers (tensorboard's and TensorFlow's ``make_ndarray``) go through this check."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import tensor_pb2, tensor_shape_pb2

    from inspector.analysis.history_logs import _tensor_scalar

    decoded = []

    def make_ndarray(proto):
        decoded.append(proto)
        return [float(proto.float_val[0])]

    def tensor(shape, values=(1.5,), content=b""):
        dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        return tensor_pb2.TensorProto(dtype=1, float_val=values, tensor_content=content,
                                      tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims))

    for skipped in (tensor([1 << 28]), tensor([1 << 31, 1 << 31]), tensor([-1]), tensor([-1, -1]), tensor([0]),
                    tensor([1], content=b"\0" * 64)):
        assert _tensor_scalar(skipped, make_ndarray) is None
    assert decoded == []
    assert _tensor_scalar(tensor([]), make_ndarray) == 1.5
    assert _tensor_scalar(tensor([1, 1]), make_ndarray) == 1.5
    assert len(decoded) == 2
