"""Remote storage (``inspector/remote.py``): models in an S3-compatible bucket (moto's
server, started here on 127.0.0.1) and on a local HTTP server with Range support are
read by byte ranges; metadata-only reads fetch a small part of the file; member and
external-data paths never leave the model's prefix."""

from __future__ import annotations

import http.server
import os
import socket
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from moto import server as moto_server  # moto[server] and s3fs are part of the test extra

from helpers.cli import one_error_line
from helpers.keras_models import saved_model
from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info

BUCKET = "models"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """A moto S3 server on 127.0.0.1 and an s3fs filesystem talking to it."""
    import s3fs

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _upload(fs: Any, local: Path, key: str) -> str:
    fs.put_file(str(local), f"{BUCKET}/{key}")
    return f"s3://{BUCKET}/{key}"


def _big_onnx(path: Path) -> Path:
    """A MatMul chain with 2 x 512 KiB weights: the payload dominates the file."""
    from onnx import helper

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    inits = [tensor("w1", rng.standard_normal((64, 2048)).astype(np.float32)),
             tensor("w2", rng.standard_normal((2048, 64)).astype(np.float32))]
    model = onnx_model(nodes, [value_info("x", ["N", 64])], [value_info("y", ["N", 64])], inits)
    return save_onnx(model, path)


def _last_fetch() -> Any:
    from inspector import remote

    return remote.LAST_FETCH[-1]


def _wide_keras(fmt: str, folder: Path) -> Path:
    """Three 512-unit Dense layers (~3 MiB of weights): metadata is a small part of the file."""
    import keras

    model = keras.Sequential([keras.Input((512,))] + [keras.layers.Dense(512, name=f"d{i}") for i in range(3)])
    path = folder / f"wide.{fmt}"
    model.save(path)
    return path


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_remote_keras_summary_equals_local(s3, cli, fmt, tmp_path):
    for local in (saved_model("layer_zoo", fmt), _wide_keras(fmt, tmp_path)):
        url = _upload(s3, local, f"zoo/{local.name}")
        want, got = cli("summary", str(local)), cli("summary", url)
        assert got.code == 0, got.err
        assert got.out == want.out
        staged = _last_fetch()
        assert staged.metadata_only and staged.size == local.stat().st_size
        assert 0 < staged.fetched <= staged.size
    assert staged.fetched <= 0.05 * staged.size, (staged.fetched, staged.size)  # the wide model: metadata only


def test_remote_onnx_summary_fetches_a_small_fraction(s3, cli, tmp_path):
    local = _big_onnx(tmp_path / "mm.onnx")
    url = _upload(s3, local, "onnx/mm.onnx")
    want, got = cli("summary", str(local)), cli("summary", url)
    assert got.code == 0, got.err
    assert got.out == want.out and "MatMul" in got.out
    staged = _last_fetch()
    assert staged.fetched <= 0.15 * staged.size, (staged.fetched, staged.size)


def test_remote_json_summary_fetches_the_rest_when_tensors_are_read(s3, cli, tmp_path):
    local = _big_onnx(tmp_path / "mm.onnx")
    url = _upload(s3, local, "json/mm.onnx")
    want, got = cli("summary", "-f", "json", str(local)), cli("summary", "-f", "json", url)
    assert got.code == 0, got.err
    assert got.out.replace(url, "P") == want.out.replace(str(local), "P")
    assert '"duplicate_params": []' in got.out.replace(" ", "").replace('":[]', '": []')
    staged = _last_fetch()
    assert staged.metadata_only and staged.fetch.complete  # the duplicate check read the tensors
    assert staged.size < staged.fetched < 1.2 * staged.size


def test_remote_text_summary_reads_no_tensor(s3, cli, tmp_path):
    local = _big_onnx(tmp_path / "mm.onnx")
    url = _upload(s3, local, "text/mm.onnx")
    assert cli("summary", url).code == 0
    assert not _last_fetch().fetch.complete


def test_remote_lint_equals_local(s3, cli):
    local = saved_model("layer_zoo", "keras")
    url = _upload(s3, local, "lint/zoo.keras")
    want, got = cli("lint", "-f", "json", str(local)), cli("lint", "-f", "json", url)
    assert got.code == want.code
    assert got.out.replace(url, "P") == want.out.replace(str(local), "P")


def test_missing_object_is_one_line(s3, cli):
    url = f"s3://{BUCKET}/nowhere/missing.onnx"
    res = cli("summary", url)
    assert res.code == 2
    assert "no such remote object" in one_error_line(res.err, url)


def test_remote_folder_is_refused_clearly(s3, cli):
    s3.pipe(f"{BUCKET}/sm/saved_model.pb", b"\x08\x01")
    res = cli("summary", f"s3://{BUCKET}/sm")
    assert res.code == 2
    assert "remote folder" in one_error_line(res.err, f"s3://{BUCKET}/sm")


def _external_onnx(folder: Path, location: str) -> Path:
    import onnx
    from onnx import helper

    w = tensor("w", np.ones((64, 64), np.float32))
    model = onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [value_info("x", ["N", 64])],
                       [value_info("y", ["N", 64])], [w])
    onnx.external_data_helper.convert_model_to_external_data(model, location="w.bin", size_threshold=0)
    path = folder / "ext.onnx"
    onnx.save(model, path)  # writes w.bin next to it
    if location != "w.bin":
        raw = path.read_bytes().replace(b"w.bin", location.encode().ljust(5)[:len(location)])
        path.write_bytes(raw)
    return path


def test_external_data_inside_the_prefix_is_read(s3, cli, tmp_path):
    local = _external_onnx(tmp_path, "w.bin")
    _upload(s3, tmp_path / "w.bin", "ext/w.bin")
    url = _upload(s3, local, "ext/ext.onnx")
    want, got = cli("lint", "-f", "json", str(local)), cli("lint", "-f", "json", url)
    assert got.code == want.code, got.err
    assert got.out.replace(url, "P") == want.out.replace(str(local), "P")
    staged = _last_fetch()
    assert (staged.folder / "w.bin").read_bytes() == (tmp_path / "w.bin").read_bytes()
    assert staged.fetch.complete and (staged.folder / "w.bin").stat().st_size == 64 * 64 * 4


@pytest.mark.parametrize("location", ["../w.bin", "/etc/passwd"])
def test_external_data_outside_the_prefix_is_never_fetched(s3, cli, tmp_path, location):
    import onnx

    from inspector import remote

    local = _external_onnx(tmp_path, "w.bin")
    model = onnx.load(str(local), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = location
    onnx.save(model, str(tmp_path / "evil.onnx"))
    s3.pipe(f"{BUCKET}/w.bin", b"\0" * 64 * 64 * 4)  # would be fetched if `..` were followed
    url = _upload(s3, tmp_path / "evil.onnx", "evil/evil.onnx")
    want, got = cli("lint", str(tmp_path / "evil.onnx")), cli("lint", url)
    assert got.code == want.code == 1, got.err  # the SEC finding, as for the local file
    assert got.out.replace(url, "P") == want.out.replace(str(tmp_path / "evil.onnx"), "P")
    assert "SEC" in got.out
    staged = _last_fetch()
    assert staged.fetch.complete and staged.fetched <= 2 * staged.size  # the model only: w.bin never fetched
    assert sorted(p.name for p in staged.folder.rglob("*")) == ["evil.onnx"]
    with pytest.raises(remote.UnsafeModel):
        remote.confine(url, location)


def test_confine_refuses_every_escape():
    from inspector.errors import UnsafeModel
    from inspector.remote import confine

    assert confine("s3://b/models/m.onnx", "w.bin") == "s3://b/models/w.bin"
    assert confine("s3://b/models/m.onnx", "data/w.bin") == "s3://b/models/data/w.bin"
    for bad in ("../w.bin", "a/../../w.bin", "/w.bin", "s3://other/w.bin", "gs://b/models/w.bin", "~/w", "",
                "c:/w.bin", "a\\..\\..\\w"):
        with pytest.raises(UnsafeModel):
            confine("s3://b/models/m.onnx", bad)


def test_list_models_walks_a_prefix(s3):
    from inspector.remote import list_models

    for key in ("walk/a.onnx", "walk/sub/b.keras", "walk/notes.txt", "walk/c.h5"):
        s3.pipe(f"{BUCKET}/{key}", b"x")
    assert list_models(f"s3://{BUCKET}/walk/") == [
        f"s3://{BUCKET}/walk/a.onnx", f"s3://{BUCKET}/walk/c.h5", f"s3://{BUCKET}/walk/sub/b.keras"]


def test_is_remote():
    from inspector.fileio import is_remote

    assert is_remote("s3://b/k.onnx") and is_remote("https://h/m.keras") and is_remote("gs://b/m.h5")
    assert not is_remote("model.onnx") and not is_remote("file:///m.onnx") and not is_remote("C:\\m.onnx")


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus single ``Range: bytes=a-b`` requests."""

    def log_message(self, *args: Any) -> None:
        pass

    def send_head(self) -> Any:  # noqa: C901 - a test server
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().send_head()
        start_s, end_s = rng.split("=", 1)[1].split("-")
        size = path.stat().st_size
        start = int(start_s) if start_s else size - int(end_s)
        end = min(int(end_s), size - 1) if end_s and start_s else size - 1
        fh = open(path, "rb")
        fh.seek(start)
        body = fh.read(end - start + 1)
        fh.close()
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        import io

        return io.BytesIO(body)


def test_https_style_range_server(cli, tmp_path):
    pytest.importorskip("aiohttp")
    local = _big_onnx(tmp_path / "mm.onnx")

    def handler(*args: Any, **kwargs: Any) -> Any:
        return _RangeHandler(*args, directory=str(tmp_path), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/mm.onnx"
        want, got = cli("summary", str(local)), cli("summary", url)
        assert got.code == 0, got.err
        assert got.out == want.out
        assert _last_fetch().fetched <= 0.15 * local.stat().st_size
    finally:
        server.shutdown()
        server.server_close()


def test_python_api_reads_remote_models(s3):
    from inspector import api

    local = saved_model("layer_zoo", "keras")
    url = _upload(s3, local, "api/zoo.keras")
    here, there = api.summary(str(local)).to_dict(), api.summary(url).to_dict()
    assert there["model"]["path"] == url
    here["model"]["path"] = url
    assert there == here


def test_local_copy_is_the_whole_object(s3, tmp_path):
    from inspector import remote
    from inspector.errors import ModelLoadError

    local = _big_onnx(tmp_path / "mm.onnx")
    url = _upload(s3, local, "copy/mm.onnx")
    remote.load(url)
    assert not _last_fetch().fetch.complete
    assert remote.local_copy(url).read_bytes() == local.read_bytes()
    with pytest.raises(ModelLoadError):
        remote.local_copy(f"s3://{BUCKET}/copy/other.onnx")


def test_a_failed_range_request_is_reported_as_such(s3, tmp_path, monkeypatch):
    """A transport error while reading metadata is not mistaken for a damaged file."""
    from inspector import remote
    from inspector.errors import ModelLoadError

    local = saved_model("layer_zoo", "h5")
    url = _upload(s3, local, "flaky/zoo.h5")
    fs = remote._filesystem(url)[0]  # fsspec caches the instance: the loader gets this one
    real = fs.cat_file
    calls = []

    def flaky(path: str, start: Any = None, end: Any = None, **kw: Any) -> Any:
        calls.append(start)
        if len(calls) > 2:
            raise ConnectionError("connection reset by peer")
        return real(path, start=start, end=end, **kw)

    monkeypatch.setattr(fs, "cat_file", flaky)
    with pytest.raises(ModelLoadError, match="cannot be read from remote storage .connection reset by peer"):
        remote.load(url)


def test_scan_lists_a_remote_prefix_and_equals_local(s3, cli, tmp_path):
    import json

    local_onnx = _big_onnx(tmp_path / "a.onnx")
    local_keras = saved_model("layer_zoo", "keras")
    _upload(s3, local_onnx, "inv/a.onnx")
    _upload(s3, local_keras, "inv/sub/z.keras")
    s3.pipe(f"{BUCKET}/inv/notes.txt", b"not a model")
    remote = cli("scan", f"s3://{BUCKET}/inv/", "--isolated")
    assert remote.code == 0, remote.err
    rows = [json.loads(line) for line in remote.out.splitlines()]
    assert [r["path"] for r in rows] == [f"s3://{BUCKET}/inv/a.onnx", f"s3://{BUCKET}/inv/sub/z.keras"]
    for row, local in zip(rows, (local_onnx, local_keras), strict=True):
        here = json.loads(cli("scan", str(local), "--isolated", "--no-cache", "--jobs", "1").out)
        for key in ("format", "params", "macs", "sha256", "file_size", "findings_by_code", "inputs"):
            assert row[key] == here[key], key
