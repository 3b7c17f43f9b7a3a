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


def _link_symbolic(target, link) -> None:
    link.symlink_to(target)


def _link_hard(target, link) -> None:
    os.link(target, link)


@pytest.mark.parametrize(("make_link", "refusal", "match"), [
    (_link_symbolic, (ModelLoadError, UnsafeModel), None),  # O_NOFOLLOW, or the check after the open
    (_link_hard, UnsafeModel, "hard link|changed while"),
])
def test_a_link_swapped_in_before_the_open_is_refused(tmp_path, monkeypatch, make_link, refusal, match):
    folder = tmp_path / "m"
    [w] = _weights(_model(folder, ["w.bin"]))
    secret = tmp_path / "secret.bin"
    np.full(VALUES, 7.0, np.float32).tofile(secret)

    def swap() -> None:
        (folder / "w.bin").unlink()
        make_link(secret, folder / "w.bin")

    _swap_during_check(monkeypatch, swap)
    with pytest.raises(refusal, match=match):
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


# -- lint statistics of many small tensors: read ahead, reduced in batches ----------------------------------


def _report_text(report: Any) -> list[str]:
    """A weight report as comparable text (NaN statistics compare equal as text)."""
    return [repr(report.tensors[k]) for k in sorted(report.tensors)] + [repr(report.layers), repr(report.unreadable),
                                                                         repr(report.largest_bytes),
                                                                         repr(sorted(report.samples.items()))]


def _varied_rows(rng: np.random.Generator, dtype: Any, n: int, size: int) -> list[np.ndarray]:
    rows = [(rng.standard_normal(size) * 3).astype(dtype) for _ in range(n)]
    if np.dtype(dtype).kind == "f":
        rows[0][1] = np.nan  # not finite: left to the one-at-a-time path
        rows[1][:] = 0
        rows[2][3] = 1e-30 if dtype != np.float16 else 1e-7  # below float16's smallest
        if dtype != np.float16:
            rows[3][2] = 1e6  # above float16's largest
        rows[4][:] = 2.5  # constant
    return rows


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8, np.int64, np.uint16])
def test_batched_moments_are_the_moments_of_each_tensor_alone(dtype):
    from inspector.analysis import weights as W

    rng = np.random.default_rng(7)
    rows = _varied_rows(rng, dtype, 9, 37)
    found = W.batch_moments(dict(enumerate(rows)))
    is_float = np.dtype(dtype).kind == "f"
    assert (0 not in found) == is_float  # a NaN row is reduced alone
    assert len(found) >= 8
    for i, moments in found.items():
        assert repr(moments) == repr(W._moments(rows[i].reshape(-1), is_float))


def test_few_or_large_or_odd_tensors_are_not_batched():
    from inspector.analysis import weights as W

    rng = np.random.default_rng(3)
    few = {i: rng.standard_normal(16).astype(np.float32) for i in range(W.BATCH_MIN - 1)}
    large = {10 + i: np.zeros(W.CHUNK + 1, np.float32) for i in range(W.BATCH_MIN)}
    odd = {20 + i: np.zeros(4, np.bool_) for i in range(W.BATCH_MIN)}
    assert W.batch_moments({**few, **large, **odd}) == {}


def _many_small(folder: Path, *, missing: bool = False) -> Path:
    """A model of 40 small tensors in two data files (sizes repeat: batches form), plus one larger
    tensor read one at a time; with ``missing`` one data file is absent (unreadable tensors)."""
    from onnx import TensorProto, helper

    folder.mkdir()
    rng = np.random.default_rng(11)
    inits, nodes, prev, offsets = [], [], "x", {"a.bin": 0, "b.bin": 0}
    blobs: dict[str, list[bytes]] = {"a.bin": [], "b.bin": []}
    shapes = [(4, 8), (8,), (4, 8), (2, 3)] * 10 + [(64, 128)]
    for i, shape in enumerate(shapes):
        values = rng.standard_normal(shape).astype(np.float32)
        if i % 7 == 0:
            values[...] = 1.0  # constant, and duplicated units
        location = "a.bin" if i % 2 else "b.bin"
        t = TensorProto(name=f"w{i}", data_type=TensorProto.FLOAT, dims=list(shape))
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offsets[location])),
                           ("length", str(values.nbytes))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        offsets[location] += values.nbytes
        blobs[location].append(values.tobytes())
        inits.append(t)
        op = "MatMul" if len(shape) == 2 else "Add"
        nodes.append(helper.make_node(op, [f"x{i}", f"w{i}"], [f"y{i}"], name=f"n{i}"))
    inputs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, None) for i in range(len(shapes))]
    outputs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, None) for i in range(len(shapes))]
    del prev
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    for location, parts in blobs.items():
        if not (missing and location == "a.bin"):
            (folder / location).write_bytes(b"".join(parts))
    path = folder / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("missing", [False, True])
def test_read_ahead_gives_the_report_of_one_tensor_at_a_time(tmp_path, monkeypatch, missing):
    from inspector.analysis import weights as W

    graph = inspector.load(_many_small(tmp_path / "m", missing=missing))
    batched: list[int] = []
    real = W.batch_moments
    monkeypatch.setattr(W, "batch_moments", lambda arrays: batched.append(len(arrays)) or real(arrays))
    monkeypatch.setattr(W, "WINDOW_WEIGHTS", 16)  # several windows
    fast = W.analyze(graph)
    assert sum(batched) == (20 if missing else 40)  # the small tensors read (b.bin's only when a.bin is missing)
    assert len(fast.tensors) == (21 if missing else 41) and len(fast.unreadable) == (20 if missing else 0)
    monkeypatch.setattr(W, "SMALL_BYTES", 0)  # the general path: every tensor read when its layer comes
    batched.clear()
    alone = W.analyze(graph)
    assert batched == [0] * len(batched)
    assert _report_text(fast) == _report_text(alone)


@needs_proc
def test_loads_kept_alive_share_one_bound_on_open_files(tmp_path, monkeypatch):
    monkeypatch.setattr(tensors.DataFiles, "KEEP_OPEN_ALL", 3)
    first = _weights(_model(tmp_path / "a", ["w0.bin", "w1.bin"]))
    second = _weights(_model(tmp_path / "b", ["w0.bin", "w1.bin"]))
    assert [w.read()[0] for w in first + second] == [0.0, 100.0, 0.0, 100.0]
    opened = [t for t in _fd_targets() if t.startswith(str(tmp_path.resolve()))]
    assert len(opened) == 3 and str((tmp_path / "a" / "w0.bin").resolve()) not in opened  # the oldest closed
    assert first[0].read()[0] == 0.0  # checked and opened again


def test_a_read_in_progress_survives_its_file_being_closed(tmp_path):
    folder = tmp_path / "m"
    _model(folder, ["w.bin"] * 2)
    files = tensors.DataFiles(folder)
    mine = files.open("w.bin", "w1")  # held: what a reader in another thread holds
    files.close()  # closed to make room meanwhile: not yet, it is being read
    again = files.open("w.bin", "w0")  # opened and checked again
    assert again.fd != mine.fd
    assert mine.read(4 * VALUES, 4 * VALUES, "w1").view(np.float32).tolist()[0] == 100.0
    assert again.read(0, 4 * VALUES, "w0").view(np.float32).tolist()[0] == 0.0
    files.release(mine)  # the last read of a retired file closes it
    with pytest.raises(OSError):
        os.fstat(mine.fd)
    files.release(again)
    os.fstat(again.fd)  # still open: kept for the next read
