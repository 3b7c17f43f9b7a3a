"""ONNX external data of every tensor a model reaches (issue 13 items 2, 8 and 9):

* sparse initializers and ``Constant.sparse_value`` (values or indices) and a
  ``ConstantOfShape`` fill tensor in external data get the same path rules as
  initializers: SEC003, listed by ``info``, never opened;
* ``probe`` hands onnxruntime a model that names no external file, so a location
  is never resolved against the working directory;
* hard-linked external data is reported (SEC003) and never read without ``--trust``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import inspector
from helpers import hostile as H
from helpers.cli import one_error_line
from inspector.errors import UnsafeModel

BUILDERS = {
    "sparse-initializer-values": lambda p, loc: H.onnx_sparse_external(p, loc),
    "sparse-initializer-indices": lambda p, loc: H.onnx_sparse_external(p, loc, part="indices"),
    "constant-sparse-values": lambda p, loc: H.onnx_sparse_external(p, loc, where="constant"),
    "constant-sparse-indices": lambda p, loc: H.onnx_sparse_external(p, loc, where="constant", part="indices"),
    "constant-of-shape-value": H.onnx_constant_of_shape_external,
}


@pytest.fixture
def outside(tmp_path):
    """A model folder and, next to it, a FIFO called ``secret`` that records any open."""
    return H.outside_folder(tmp_path)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_every_reachable_tensor_gets_the_path_rules(cli, outside, kind):
    folder, secret, watch = outside
    locations = ["../secret", str(secret)]
    models = [BUILDERS[kind](folder / f"m{i}.onnx", loc) for i, loc in enumerate(locations)]
    with watch.active():
        for path, location in zip(models, locations, strict=True):
            code, out, err = cli("lint", "--select", "SEC", path)
            assert code == 1 and "Traceback" not in err, err
            [line] = [x for x in out.splitlines() if "SEC003" in x]
            assert repr(location) in line and "did not open it" in line
            code, out, err = cli("info", path)
            assert code == 0, err
            assert location in out and "refused:" in out
            assert cli("summary", path).code == 0
    assert watch.opened == []


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_reachable_tensors_inside_the_folder_are_fine(cli, tmp_path, kind):
    np.zeros(8, np.float32).tofile(tmp_path / "w.bin")
    path = BUILDERS[kind](tmp_path / "m.onnx", "w.bin")
    code, out, err = cli("lint", "--select", "SEC", path)
    assert code == 0 and "SEC003" not in out, out + err
    info = cli("info", path).out
    assert "w.bin" in info and "refused" not in info


def test_a_constant_of_shape_fill_with_an_absolute_path_is_sec003(tmp_path):
    graph = inspector.load(H.onnx_constant_of_shape_external(tmp_path / "c.onnx", "/etc/hostname"))
    [fact] = [f for f in graph.security if f.code == "SEC003"]
    assert fact.detail == "/etc/hostname" and "absolute path" in fact.message
    [entry] = graph.metadata["external_data"]
    assert entry["location"] == "/etc/hostname" and entry["tensors"] == 1 and entry["status"].startswith("refused")


def test_probe_never_resolves_external_data_against_the_working_directory(cli, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    model = H.onnx_sparse_external((tmp_path / "a").mkdir() or tmp_path / "a" / "m.onnx", "w.bin")
    np.array([3.0, 4.0], np.float32).tofile(tmp_path / "w.bin")  # only in the working directory
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("probe", model)
    assert code == 2 and "'w.bin'" in one_error_line(err, model) and "missing" in err
    # The same model with its data next to it is probed (the sparse values are read).
    os.replace(tmp_path / "w.bin", tmp_path / "a" / "w.bin")
    code, out, err = cli("probe", model)
    assert code == 0, err


def _hard_linked(tmp_path: Path) -> tuple[Path, Path, Path]:
    folder = tmp_path / "model"
    folder.mkdir()
    outside = tmp_path / "outside.bin"
    np.arange(8, dtype=np.float32).tofile(outside)
    os.link(outside, folder / "weights.bin")
    return folder / "weights.bin", outside, H.onnx_with_external(folder / "m.onnx", "weights.bin")


def test_hard_linked_external_data_is_reported_and_never_read(cli, tmp_path):
    inside, outside, model = _hard_linked(tmp_path)
    assert os.stat(inside).st_nlink == 2
    watch = H.OpenWatch([inside], tmp_path / "opened.txt")
    with watch.active():
        code, out, err = cli("lint", model)
        graph = inspector.load(model)
        [weight] = [w for lay in graph.layers for w in lay.weights]
        with pytest.raises(UnsafeModel, match="hard link"):
            weight.read()
    assert watch.opened == []
    assert code == 1 and "Traceback" not in err, err
    [line] = [x for x in out.splitlines() if "SEC003" in x]
    assert "'weights.bin'" in line and "hard link" in line
    assert "hard link" in cli("info", model).out


def test_probe_reads_hard_linked_data_only_with_trust(cli, tmp_path):
    pytest.importorskip("onnxruntime")
    _, _, model = _hard_linked(tmp_path)
    code, _, err = cli("probe", model)
    assert code == 2 and "--trust" in one_error_line(err, model)
    assert cli("probe", "--trust", model).code == 0


def test_a_file_with_one_name_is_read(cli, tmp_path):
    inside, outside, model = _hard_linked(tmp_path)
    outside.unlink()
    assert os.stat(inside).st_nlink == 1
    code, out, _ = cli("lint", "--select", "SEC", model)
    assert code == 0 and "SEC003" not in out
    [weight] = [w for lay in inspector.load(model).layers for w in lay.weights]
    assert weight.read().reshape(-1).tolist() == list(range(8))


def test_an_initializer_with_negative_dims_still_gets_the_path_rules(tmp_path):
    import onnx

    path = H.onnx_with_external(tmp_path / "m.onnx", "/etc/passwd")
    model = onnx.load(str(path), load_external_data=False)
    model.graph.initializer[0].dims[0] = -4
    path.write_bytes(model.SerializeToString())
    graph = inspector.load(path)
    assert [f.detail for f in graph.security if f.code == "SEC003"] == ["/etc/passwd"]


def test_a_sparse_location_is_checked_next_to_a_known_one(tmp_path):
    """The builder already checked the dense initializer's location; the sparse
    tensor names another, which is walked and refused."""
    import onnx

    np.zeros(8, np.float32).tofile(tmp_path / "w.bin")
    dense = onnx.load(str(H.onnx_with_external(tmp_path / "d.onnx", "w.bin")), load_external_data=False)
    sparse = onnx.load(str(H.onnx_sparse_external(tmp_path / "s.onnx", "/etc/passwd")), load_external_data=False)
    dense.graph.sparse_initializer.extend(sparse.graph.sparse_initializer)
    path = tmp_path / "both.onnx"
    path.write_bytes(dense.SerializeToString())
    graph = inspector.load(path)
    assert [f.detail for f in graph.security if f.code == "SEC003"] == ["/etc/passwd"]
    assert sorted(e["location"] for e in graph.metadata["external_data"]) == ["/etc/passwd", "w.bin"]
