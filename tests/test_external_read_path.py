"""The read path of ONNX external data (issue 14, many external tensors): each data file is checked and
opened once per load (``loaders/onnx/tensors.DataFiles``), tied to its checks, and read with positioned
reads; ``limits.held`` looks at the environment once per lint.  Files are swapped here by calling the
path check the reader uses, so every race is played deterministically."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inspector
from inspector import limits
from inspector.errors import LimitExceeded, ModelLoadError, UnsafeModel
from inspector.loaders.onnx import tensors

VALUES = 8


def _model(folder: Path, locations: list[str]) -> Path:
    """``folder/m.onnx``: one Add per location, its second operand 8 float32 values stored at offset
    ``4 * VALUES * i`` of that location (the data files are written with every tensor's values)."""
    from onnx import TensorProto, helper

    folder.mkdir(exist_ok=True)
    chunks: dict[str, list[np.ndarray]] = {}
    inits, nodes, prev = [], [], "x"
    for i, location in enumerate(locations):
        values = np.arange(VALUES, dtype=np.float32) + 100 * i
        at = sum(a.nbytes for a in chunks.get(location, []))
        chunks.setdefault(location, []).append(values)
        t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[VALUES])
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(at)), ("length", str(values.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        inits.append(t)
        nodes.append(helper.make_node("Add", [prev, f"w{i}"], [f"y{i}"], name=f"add{i}"))
        prev = f"y{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [VALUES])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [VALUES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for location, parts in chunks.items():
        np.concatenate(parts).tofile(folder / location)
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _weights(path: Path) -> list[Any]:
    graph = inspector.load(path)
    return sorted((w for lay in graph.layers for w in lay.weights), key=lambda w: int(w.name[1:]))


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _fd_targets() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")


def test_every_tensor_of_one_file_reads_its_own_values(tmp_path):
    ws = _weights(_model(tmp_path / "m", ["w.bin"] * 5))
    for i, w in enumerate(ws):
        assert w.read().tolist() == (np.arange(VALUES, dtype=np.float32) + 100 * i).tolist()


@needs_proc
def test_a_data_file_is_opened_once_and_closed_with_the_graph(tmp_path):
    path = _model(tmp_path / "m", ["w.bin"] * 6)
    data = str((tmp_path / "m" / "w.bin").resolve())
    ws = _weights(path)
    assert [w.read()[0] for w in ws] == [100.0 * i for i in range(6)]
    assert _fd_targets().count(data) == 1  # one descriptor for six tensors
    del ws
    gc.collect()
    assert data not in _fd_targets()  # the readers are gone: so is the descriptor


@needs_proc
def test_open_files_are_bounded_and_an_evicted_file_is_checked_again(tmp_path, monkeypatch):
    monkeypatch.setattr(tensors.DataFiles, "KEEP_OPEN", 2)
    locations = [f"w{i}.bin" for i in range(5)]
    ws = _weights(_model(tmp_path / "m", locations))
    folder = str((tmp_path / "m").resolve())
    checks: list[str] = []
    real = tensors.resolve_inside
    monkeypatch.setattr(tensors, "resolve_inside", lambda base, loc: checks.append(loc) or real(base, loc))
    for w in ws:
        w.read()
    assert sum(t.startswith(folder) for t in _fd_targets()) == 2
    assert ws[0].read().tolist()[0] == 0.0  # evicted: opened and checked again
    assert checks.count("w0.bin") == 4  # before and after each of its two opens
    assert checks.count("w4.bin") == 2  # still open: read without a check


def test_a_file_swapped_after_the_open_is_never_read(tmp_path):
    """The data file is replaced by a symbolic link out of the folder after the first read: the
    later reads still read the file that was checked (by its descriptor), never the link's target."""
    folder = tmp_path / "m"
    ws = _weights(_model(folder, ["w.bin"] * 3))
    assert ws[0].read()[0] == 0.0
    secret = tmp_path / "secret.bin"
    np.full(3 * VALUES, 7.0, np.float32).tofile(secret)
    (folder / "w.bin").unlink()
    (folder / "w.bin").symlink_to(secret)
    assert ws[2].read().tolist() == (np.arange(VALUES, dtype=np.float32) + 200).tolist()
    # a fresh load checks again, and refuses the link
    with pytest.raises(UnsafeModel, match="outside the model's folder"):
        _weights(folder / "m.onnx")[0].read()


def _swap_during_check(monkeypatch, action) -> None:
    """Run ``action`` right after the first path check of a read (between the check and the open)."""
    real = tensors.resolve_inside
    calls = []

    def check(base: Path, location: str) -> Any:
        result = real(base, location)
        calls.append(location)
        if len(calls) == 1:
            action()
        return result

    monkeypatch.setattr(tensors, "resolve_inside", check)


def test_a_symlink_swapped_in_before_the_open_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    [w] = _weights(_model(folder, ["w.bin"]))
    secret = tmp_path / "secret.bin"
    np.full(VALUES, 7.0, np.float32).tofile(secret)

    def swap() -> None:
        (folder / "w.bin").unlink()
        (folder / "w.bin").symlink_to(secret)

    _swap_during_check(monkeypatch, swap)
    with pytest.raises((ModelLoadError, UnsafeModel)):  # O_NOFOLLOW, or the check after the open
        w.read()


def test_a_hard_link_swapped_in_before_the_open_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    [w] = _weights(_model(folder, ["w.bin"]))
    secret = tmp_path / "secret.bin"
    np.full(VALUES, 7.0, np.float32).tofile(secret)

    def swap() -> None:
        (folder / "w.bin").unlink()
        os.link(secret, folder / "w.bin")

    _swap_during_check(monkeypatch, swap)
    with pytest.raises(UnsafeModel, match="hard link|changed while"):
        w.read()


def test_a_file_swapped_in_and_back_around_the_open_is_refused(tmp_path, monkeypatch):
    """Another file is opened, then the checked one is put back before the check after the open: the
    descriptor is not the file the path names, so nothing is read."""
    folder = tmp_path / "m"
    [w] = _weights(_model(folder, ["w.bin"]))
    original = folder / "w.bin"
    kept = tmp_path / "kept.bin"
    other = folder / "other.bin"
    np.full(VALUES, 7.0, np.float32).tofile(other)
    real_open = os.open

    def opening(path: Any, flags: int, *args: Any) -> int:
        if Path(path) == original.resolve():
            os.rename(original, kept)
            os.rename(other, original)  # the open gets the other file
            fd = real_open(path, flags, *args)
            os.rename(original, other)
            os.rename(kept, original)  # and the checked one is back
            return fd
        return real_open(path, flags, *args)

    monkeypatch.setattr(tensors.os, "open", opening)
    with pytest.raises(UnsafeModel, match="changed while it was checked"):
        w.read()


def test_a_file_that_did_not_move_is_read_after_both_checks(tmp_path, monkeypatch):
    folder = tmp_path / "m"
    [w] = _weights(_model(folder, ["w.bin"]))
    _swap_during_check(monkeypatch, lambda: None)
    assert w.read().tolist() == list(range(VALUES))


def test_a_missing_or_refused_file_keeps_its_messages_on_every_read(tmp_path):
    folder = tmp_path / "m"
    ws = _weights(_model(folder, ["w.bin", "w.bin"]))
    (folder / "w.bin").unlink()
    for w in ws:  # a refusal is not remembered: each read says which tensor failed
        with pytest.raises(ModelLoadError, match=f"external data file 'w.bin' of '{w.name}' is missing"):
            w.read()
    np.arange(2 * VALUES, dtype=np.float32).tofile(folder / "w.bin")
    assert ws[1].read().tolist()[0] == VALUES  # there again: read


def test_a_file_truncated_after_the_open_is_cut_short(tmp_path):
    folder = tmp_path / "m"
    ws = _weights(_model(folder, ["w.bin"] * 2))
    ws[0].read()
    with open(folder / "w.bin", "r+b") as fh:
        fh.truncate(4 * VALUES)
    with pytest.raises(ModelLoadError, match="cut short"):
        ws[1].read()


def test_held_limits_ignore_the_environment_until_the_block_ends(monkeypatch):
    monkeypatch.delenv("INSPECTOR_MAX_TENSOR_BYTES", raising=False)
    with limits.held() as fixed:
        monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", "16")
        assert limits.current() is fixed and fixed.tensor_bytes == limits.DEFAULTS.tensor_bytes
    assert limits.current().tensor_bytes == 16


def test_a_lint_applies_the_tensor_limit_set_before_it(tmp_path, monkeypatch):
    ws = _weights(_model(tmp_path / "m", ["w.bin"]))
    monkeypatch.setenv("INSPECTOR_MAX_TENSOR_BYTES", "16")
    with pytest.raises(LimitExceeded, match="tensor_bytes"):
        ws[0].read()
    from inspector.analysis.weights import analyze

    report = analyze(inspector.load(tmp_path / "m" / "m.onnx"))
    assert [name for name, _ in report.unreadable] == ["w0"] and "tensor_bytes" in report.unreadable[0][1]
