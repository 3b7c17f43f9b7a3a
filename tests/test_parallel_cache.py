"""``--jobs`` (worker processes, results in order, a dying worker costs one file) and the result
cache (hits, misses on a changed file/configuration/version, corrupt entries, ``--no-cache``)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

import inspector
import inspector.lint_run as lint_run
from helpers.folders import mlp_onnx, model_folder, pid_of, upper_or_die
from inspector.cache import SCHEMA, content_digest
from inspector.parallel import CRASH_MESSAGE, default_jobs, run_ordered


def test_jobs_2_prints_the_same_json_as_jobs_1(tmp_path, cli):
    folder = model_folder(tmp_path)
    one = cli("lint", folder, "-f", "json", "--jobs", "1")
    two = cli("lint", folder, "-f", "json", "--jobs", "2")
    assert (two.code, two.out, two.err) == (one.code, one.out, one.err)
    assert one.code == 2 and len(json.loads(one.out)["results"]) == 6


def test_pool_keeps_order_and_a_dying_worker_costs_only_its_item():
    items = ["a", "b", "die", "c", "d", "e"]
    got = list(run_ordered(upper_or_die, items, None, jobs=2, crashed=lambda item, why: f"{item}: {why}"))
    assert got == ["A", "B", f"die: {CRASH_MESSAGE}", "C", "D", "E"]
    assert list(run_ordered(upper_or_die, ["x", "y"], None, jobs=1, crashed=lambda i, w: "?")) == ["X", "Y"]


def test_a_few_files_run_in_this_process_many_in_workers():
    import os

    ours = os.getpid()
    assert set(run_ordered(pid_of, ["a", "b", "c"], None, jobs=2, crashed=lambda i, w: 0)) == {ours}
    assert ours not in set(run_ordered(pid_of, ["a", "b", "c", "d"], None, jobs=2, crashed=lambda i, w: 0))


def test_the_per_file_functions_and_their_options_pickle(tmp_path):
    from inspector.config import LintConfig
    from inspector.inventory import ScanOptions, scan_model

    task = lint_run.LintTask(config=LintConfig(), select=["INIT"])
    assert pickle.loads(pickle.dumps((lint_run.lint_model, task))) == (lint_run.lint_model, task)
    row = scan_model(str(mlp_onnx(tmp_path / "m.onnx", seed=1)), ScanOptions(config=LintConfig()))
    assert pickle.loads(pickle.dumps((scan_model, row)))[1] == row


def test_jobs_option_and_variable(monkeypatch, cli, tmp_path):
    monkeypatch.setenv("INSPECTOR_JOBS", "3")
    assert default_jobs() == 3
    monkeypatch.delenv("INSPECTOR_JOBS")
    assert default_jobs() >= 1
    result = cli("lint", mlp_onnx(tmp_path / "m.onnx", seed=1), "--jobs", "0")
    assert result.code == 2 and "--jobs: must be at least 1" in result.err


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.delenv("INSPECTOR_NO_CACHE", raising=False)
    monkeypatch.setenv("INSPECTOR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def loads(monkeypatch):
    """The paths ``lint_run`` loads (a cache hit loads nothing)."""
    seen: list[str] = []
    real = lint_run.load_graph

    def counting(path):
        seen.append(path)
        return real(path)

    monkeypatch.setattr(lint_run, "load_graph", counting)
    return seen


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("lint/*/*.json"))


def test_cache_hit_gives_identical_output_without_reading_the_models(tmp_path, cache_dir, loads, cli):
    folder = model_folder(tmp_path)
    first = cli("lint", folder, "-f", "json")
    assert len(loads) == 6
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (cache_dir / ".gitignore").read_text().splitlines()[-1] == "*"
    assert len(_entries(cache_dir)) == 5  # the broken file is not cached
    loads.clear()
    second = cli("lint", folder, "-f", "json")
    assert (second.code, second.out, second.err) == (first.code, first.out, first.err)
    assert loads == [str(folder / "broken.onnx")]


def test_changed_file_configuration_or_version_misses(tmp_path, cache_dir, loads, cli, monkeypatch):
    model = mlp_onnx(tmp_path / "m.onnx", seed=1)
    cli("lint", model, "-f", "json")
    cli("lint", model)
    assert loads == [str(model)]
    mlp_onnx(model, seed=1, zero_bias=True)  # same name, new bytes
    cli("lint", model, "-f", "json")
    assert len(loads) == 2
    cli("lint", model, "--select", "INIT")
    assert len(loads) == 3
    monkeypatch.setattr(inspector, "__version__", "999.0")
    cli("lint", model)
    assert len(loads) == 4
    monkeypatch.setenv("INSPECTOR_MAX_NODES", "123456")
    cli("lint", model)
    assert len(loads) == 5


@pytest.mark.parametrize("damage", ["truncate", "garbage", "checksum", "other-key"])
def test_corrupt_entry_is_ignored_and_rewritten(tmp_path, cache_dir, loads, cli, damage):
    model = mlp_onnx(tmp_path / "m.onnx", seed=1)
    clean = cli("lint", model, "-f", "json")
    [entry] = _entries(cache_dir)
    doc = json.loads(entry.read_text())
    if damage == "truncate":
        entry.write_bytes(entry.read_bytes()[:40])
    elif damage == "garbage":
        entry.write_bytes(b"\x00\xff" * 10)
    elif damage == "checksum":  # a forged result whose checksum no longer matches
        doc["result"]["findings"] = []
        entry.write_text(json.dumps(doc))
    else:
        doc["key"] = "0" * 64
        entry.write_text(json.dumps(doc))
    again = cli("lint", model, "-f", "json")
    assert again.out == clean.out and len(loads) == 2
    rewritten = json.loads(entry.read_text())
    assert rewritten["schema"] == SCHEMA and rewritten["key"] == entry.stem
    cli("lint", model)
    assert len(loads) == 2  # the rewritten entry is trusted again


def test_no_cache_bypasses_it(tmp_path, cache_dir, loads, cli, monkeypatch):
    model = mlp_onnx(tmp_path / "m.onnx", seed=1)
    cli("lint", model, "--no-cache")
    cli("lint", model, "--no-cache")
    assert len(loads) == 2 and not cache_dir.exists()
    monkeypatch.setenv("INSPECTOR_NO_CACHE", "1")
    cli("lint", model)
    assert len(loads) == 3 and not cache_dir.exists()


def test_probe_runs_are_not_cached(tmp_path, cache_dir):
    from inspector.config import LintConfig
    from inspector.probe_run import ProbeOptions

    assert lint_run.lint_cache(lint_run.LintTask(config=LintConfig())) is not None
    assert lint_run.lint_cache(lint_run.LintTask(config=LintConfig(), probe=ProbeOptions())) is None


def test_content_digest_covers_folders_and_onnx_external_data(tmp_path):
    from onnx import external_data_helper, load_model, save_model

    model = mlp_onnx(tmp_path / "ext" / "m.onnx", seed=1)
    proto = load_model(model)
    external_data_helper.convert_model_to_external_data(proto, all_tensors_to_one_file=True, location="m.data",
                                                        size_threshold=0)
    save_model(proto, model)
    first = content_digest(model)
    data = tmp_path / "ext" / "m.data"
    blob = bytearray(data.read_bytes())
    blob[0] ^= 0xFF
    data.write_bytes(bytes(blob))
    assert content_digest(model) != first  # the external data is part of the model
    (tmp_path / "ext" / "unrelated.bin").write_bytes(b"x")
    second = content_digest(model)
    assert content_digest(model) == second  # other files beside it are not
    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    (folder / "variables" / "v.index").write_bytes(b"1")
    d1 = content_digest(folder)
    (folder / "variables" / "v.index").rename(folder / "variables" / "w.index")
    assert content_digest(folder) != d1  # relative paths count, not only bytes


def test_unchanged_files_are_not_hashed_again(tmp_path, cache_dir, monkeypatch):
    import os

    import inspector.cache as cache_mod

    hashed: list[str] = []
    real = cache_mod._file_digest
    monkeypatch.setattr(cache_mod, "_file_digest", lambda p: (hashed.append(p.name), real(p))[1])
    cache = cache_mod.ResultCache(cache_dir, namespace="lint", fingerprint={})
    old = mlp_onnx(tmp_path / "old.onnx", seed=1)
    os.utime(old, ns=(10**18, 10**18))  # modified long before it is hashed
    new = mlp_onnx(tmp_path / "new.onnx", seed=2)  # modified just now: not remembered (racy)
    first = [cache.key(str(old)), cache.key(str(new))]
    assert [cache.key(str(old)), cache.key(str(new))] == first
    assert hashed == ["old.onnx", "new.onnx", "new.onnx"]
    mlp_onnx(old, seed=1, zero_bias=True)  # same size, new bytes, new time
    os.utime(old, ns=(10**18 + 1, 10**18 + 1))
    assert cache.key(str(old)) != first[0] and hashed[-1] == "old.onnx"
    assert len(list((cache_dir / "files").glob("*/*.json"))) == 2  # the two versions of old.onnx
