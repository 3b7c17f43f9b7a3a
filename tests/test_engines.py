"""The engines (``inspector/engines.py``): the same per-file function here and as tasks
on a Dask cluster (a ``distributed.LocalCluster`` started here) gives the same
inventory; a failing task is that file's error row; Parquet partitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import distributed  # part of the test extra (dask[distributed])
import numpy as np
import pytest

from helpers.inventory_rows import Options, Row, failed, parquet, row
from helpers.keras_models import saved_model
from helpers.onnx_models import onnx_model, save_onnx, tensor, value_info


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Two in-process workers (threads): starts in about a second."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[str]:
    from onnx import helper

    folder = tmp_path_factory.mktemp("fleet")
    onnx_path = save_onnx(onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [value_info("x", ["N", 8])],
                                     [value_info("y", ["N", 4])], [tensor("w", np.ones((8, 4), np.float32))]),
                          folder / "mm.onnx")
    notes = folder / "notes.onnx"
    notes.write_text("not a model\n")
    boom = folder / "boom.onnx"
    boom.write_bytes(onnx_path.read_bytes())
    return sorted([str(saved_model("layer_zoo", "keras")), str(saved_model("layer_zoo", "h5")), str(onnx_path),
                   str(notes), str(boom)])


def test_dask_inventory_equals_local(client, models):
    from inspector.engines import gather_in_order, run_tasks

    here = run_tasks(row, models, Options(), engine="local", failed=failed)
    there = gather_in_order(client, row, models, Options(), failed=failed)
    assert there == here
    assert [r.path for r in there] == models
    by_name = {Path(r.path).name: r for r in there}
    assert by_name["mm.onnx"] == Row(by_name["mm.onnx"].path, "onnx", 32)
    assert by_name["layer_zoo.keras"].params and by_name["layer_zoo.keras"].error is None
    assert by_name["notes.onnx"].error and by_name["notes.onnx"].params is None


def test_a_failing_task_is_its_files_error_row(client, models):
    from inspector.engines import gather_in_order, run_tasks

    for rows in (run_tasks(row, models, Options(), failed=failed),
                 gather_in_order(client, row, models, Options(), failed=failed)):
        [bad] = [r for r in rows if r.path.endswith("boom.onnx")]
        assert bad.error == f"the task failed (RuntimeError: task for {bad.path} blew up)"
        assert sum(r.error is None for r in rows) == 3  # the others are unaffected
    ok = run_tasks(row, models, Options(fail_on="nothing-matches"), failed=failed)
    assert not [r for r in ok if r.path.endswith("boom.onnx") and r.error]


def test_engine_dask_with_a_scheduler_address(client, models):
    from inspector.engines import run_tasks

    there = run_tasks(row, models, Options(), engine="dask", scheduler=client.scheduler.address, failed=failed)
    assert there == run_tasks(row, models, Options(), failed=failed)


def test_engine_and_scheduler_errors(monkeypatch):
    from inspector import engines
    from inspector.engines import run_tasks
    from inspector.errors import UsageError

    with pytest.raises(UsageError, match="unknown engine 'ray'"):
        run_tasks(row, [], Options(), engine="ray", failed=failed)
    with pytest.raises(UsageError, match="--scheduler needs --engine dask"):
        run_tasks(row, [], Options(), scheduler="tcp://127.0.0.1:1", failed=failed)
    monkeypatch.setattr(engines, "CONNECT_SECONDS", 1.0)
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        run_tasks(row, ["x"], Options(), engine="dask", scheduler="tcp://127.0.0.1:9", failed=failed)


def test_parquet_partitions(tmp_path, models):
    import pyarrow.parquet as pq

    from inspector.engines import run_tasks, write_partitions

    rows = run_tasks(row, models, Options(), failed=failed)
    target = tmp_path / "inventory.parquet"
    parts = write_partitions(rows, target, encode=parquet, rows_per_part=2)
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sorted(p.name for p in target.iterdir()) == [p.name for p in parts]
    back = pq.read_table(target).to_pylist()
    assert [Row(**r) for r in back] == rows
    write_partitions(rows[:1], target, encode=parquet)  # replaces the old folder, no stale parts
    assert [p.name for p in target.iterdir()] == ["part-00000.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_parquet_partitions_refuse_to_replace_a_file(tmp_path):
    from inspector.engines import write_partitions
    from inspector.errors import UsageError

    target = tmp_path / "inventory.parquet"
    target.write_text("keep me")
    with pytest.raises(UsageError, match="not a folder"):
        write_partitions([Row("a")], target, encode=parquet)
    assert target.read_text() == "keep me"


def test_run_inventory_lists_remote_prefixes(monkeypatch, models):
    from inspector import engines, remote

    listed = {"s3://b/m/": ["s3://b/m/x.onnx", "s3://b/m/a.keras"]}
    monkeypatch.setattr(remote, "list_models", lambda prefix: listed[prefix])
    seen: list[str] = []

    def fake(path: str, options: Options) -> Row:
        seen.append(path)
        return Row(path)

    rows = engines.run_inventory(["s3://b/m/", models[0]], Options(), func=fake, failed=failed)
    assert [r.path for r in rows] == sorted(["s3://b/m/x.onnx", "s3://b/m/a.keras", models[0]])
    assert seen == [r.path for r in rows]


def test_engine_options():
    import argparse

    from inspector.commands._options import add_engine_options

    p = argparse.ArgumentParser()
    add_engine_options(p)
    assert vars(p.parse_args([])) == {"engine": "local", "scheduler": None}
    args = p.parse_args(["--engine", "dask", "--scheduler", "tcp://h:8786"])
    assert (args.engine, args.scheduler) == ("dask", "tcp://h:8786")
    with pytest.raises(SystemExit):
        p.parse_args(["--engine", "ray"])


def test_engine_dask_starts_a_local_cluster_of_processes(models):
    """No --scheduler: a LocalCluster of worker processes (the function and options are pickled)."""
    from inspector.engines import run_tasks

    there = run_tasks(row, models, Options(), engine="dask", failed=failed)
    assert there == run_tasks(row, models, Options(), failed=failed)


# -- inspector scan --engine dask ----------------------------------------------------------------

def test_scan_engine_dask_writes_the_local_inventory_as_partitions(cli, models, tmp_path):
    import json

    import pyarrow.parquet as pq

    readable = [m for m in models if not m.endswith(("notes.onnx", "boom.onnx"))]
    local = cli("scan", *readable, "--isolated", "--no-cache", "--jobs", "1")
    assert local.code == 0, local.err
    rows = [json.loads(line) for line in local.out.splitlines()]
    there = cli("scan", *readable, "--isolated", "--engine", "dask", "-f", "jsonl")
    assert there.code == 0, there.err
    assert [json.loads(line) for line in there.out.splitlines()] == rows
    out = tmp_path / "inventory.parquet"
    parts = cli("scan", *readable, "--isolated", "--engine", "dask", "-o", out)
    assert parts.code == 0, parts.err
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    table = pq.read_table(out / "part-00000.parquet").to_pylist()
    assert [r["path"] for r in table] == [r["path"] for r in rows]
    assert [r["params"] for r in table] == [r["params"] for r in rows]
