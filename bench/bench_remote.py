"""Bytes fetched by ``inspector summary`` of a model in S3 (a local moto server).

    python bench/bench_remote.py                  # ResNet-50 .keras, .h5 and .onnx
    python bench/bench_remote.py --source tf2onnx # the .onnx exported by tf2onnx instead

Builds ``keras.applications.ResNet50(weights=None)`` as ``.keras`` and ``.h5`` and an
ONNX ResNet-50 (``bench_onnx.py``'s ``light`` model with its ~102 MB of weights, or a
tf2onnx export), starts moto's S3 server on 127.0.0.1, uploads them, and runs
``inspector summary s3://…`` on each: the output must equal the local file's, and the
table shows the bytes fetched by range requests against the file size (target: at
most 2 %).  Needs the ``remote`` extra and ``moto[server]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _models import build_resnet50  # noqa: E402


def build_onnx(folder: Path, source: str) -> Path:
    import bench_onnx

    path = folder / f"resnet50_{source}.onnx"
    if not path.exists():
        (bench_onnx.build_tf2onnx if source == "tf2onnx" else bench_onnx.build_light)(path)
    return path


def _summary(path: str) -> str:
    from inspector.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["summary", path])
    if code != 0:
        raise SystemExit(f"summary of {path} failed ({code})")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("light", "tf2onnx"), default="light")
    ap.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "inspector-bench")
    args = ap.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    models = [build_resnet50(args.folder), build_resnet50(args.folder, ".h5"), build_onnx(args.folder, args.source)]

    import s3fs
    from moto.server import ThreadedMotoServer

    from inspector import remote

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    try:
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        print(f"{'model':<28} {'size':>14} {'fetched':>12} {'share':>7} {'requests':>9} {'seconds':>8}  same output")
        for path in models:
            fs.put_file(str(path), f"bench/{path.name}")
            url = f"s3://bench/{path.name}"
            start = time.perf_counter()
            got = _summary(url)
            seconds = time.perf_counter() - start
            staged = remote.LAST_FETCH[-1]
            same = got == _summary(str(path))
            print(f"{path.name:<28} {staged.size:>14,} {staged.fetched:>12,} {staged.fetched / staged.size:>7.2%} "
                  f"{staged.requests:>9,} {seconds:>8.2f}  {'yes' if same else 'NO'}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
