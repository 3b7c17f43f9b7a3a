"""A run answered by the cache stays lean: it prints the same results without importing numpy, the model
loaders, the rule families or the process pool, and still checks the selection it is given."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.cli import run_fresh
from helpers.folders import mlp_onnx

HEAVY = ("numpy", "onnx", "h5py", "networkx", "inspector.rules.init", "inspector.loaders.onnx",
         "concurrent.futures.process")
def _lint(tmp_path: Path, *args: str) -> tuple[int, str, list[str], str]:
    """``inspector lint ARGS`` in a fresh interpreter: exit code, stdout, heavy modules imported, stderr."""
    env = {"INSPECTOR_CACHE_DIR": str(tmp_path / "cache"), "INSPECTOR_NO_CACHE": "", "INSPECTOR_JOBS": ""}
    run = run_fresh("lint", *args, watch=HEAVY, cwd=tmp_path, env=env)
    return run.code, run.out, run.imported, run.err


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    for i in range(3):
        mlp_onnx(folder / f"m{i}.onnx", seed=i)
    return folder


def test_a_warm_run_prints_the_same_without_the_heavy_imports(tmp_path, models):
    cold = _lint(tmp_path, str(models), "-f", "json", "--jobs", "1")
    assert cold[0] in (0, 1) and {"numpy", "inspector.loaders.onnx", "inspector.rules.init"} <= set(cold[2])
    warm = _lint(tmp_path, str(models), "-f", "json", "--jobs", "1")
    assert warm[:2] == cold[:2] and warm[3] == cold[3]
    assert warm[2] == []
    assert len(json.loads(warm[1])["results"]) == 3


def test_without_the_cache_every_run_loads_what_it_needs(tmp_path, models):
    for _ in range(2):
        code, _out, heavy, _err = _lint(tmp_path, str(models), "-f", "json", "--jobs", "1", "--no-cache")
        assert code in (0, 1) and {"numpy", "inspector.loaders.onnx", "inspector.rules.init"} <= set(heavy)


def test_sarif_from_a_warm_run_still_describes_the_rules(tmp_path, models):
    cold = _lint(tmp_path, str(models), "-f", "sarif", "--select", "INIT,GRAPH")
    warm = _lint(tmp_path, str(models), "-f", "sarif", "--select", "INIT,GRAPH")
    assert warm[:2] == cold[:2]
    rules = json.loads(warm[1])["runs"][0]["tool"]["driver"]["rules"]
    assert rules and all(r["id"].startswith(("INIT", "GRAPH")) for r in rules)
    assert "inspector.rules.init" in warm[2]  # SARIF lists the rules: the catalog is loaded for it


def test_a_bad_selector_fails_even_when_the_models_are_cached(tmp_path, models):
    assert _lint(tmp_path, str(models), "-f", "json", "--select", "INIT")[0] in (0, 1)
    code, out, _heavy, err = _lint(tmp_path, str(models), "-f", "json", "--select", "INIT,NOPE999")
    assert code == 2 and out == "" and "inspector: error:" in err and "NOPE999" in err
    again = _lint(tmp_path, str(models), "-f", "json", "--select", "INIT")
    assert again[0] in (0, 1) and again[2] == []


def test_a_damaged_selection_entry_is_checked_again(tmp_path, models):
    first = _lint(tmp_path, str(models), "-f", "json")
    entries = sorted((tmp_path / "cache" / "lint-selection").glob("*/*.json"))
    assert len(entries) == 1
    doc = json.loads(entries[0].read_text())
    doc["result"]["enabled"] = ["INIT001"]  # the checksum no longer matches: ignored, rewritten
    entries[0].write_text(json.dumps(doc))
    second = _lint(tmp_path, str(models), "-f", "json")
    assert second[:2] == first[:2] and "inspector.rules.init" in second[2]
    assert json.loads(entries[0].read_text())["result"] != doc["result"]


def test_workers_start_while_hashing_only_when_enough_files_miss(tmp_path, models, monkeypatch):
    import inspector.parallel as parallel
    from inspector.batch import Cached, run_files
    from inspector.cache import ResultCache

    started: list[int] = []
    real_warm_up = parallel.warm_up
    monkeypatch.setattr(parallel, "warm_up", lambda jobs: started.append(jobs) or real_warm_up(jobs))
    cache = ResultCache(tmp_path / "c", namespace="t", fingerprint={})
    cached: Cached[str] = Cached(cache, lambda r: {"r": r}, lambda path, doc: str(doc["r"]))
    paths = sorted(str(p) for p in models.iterdir())
    assert list(run_files(_upper, paths, None, jobs=1, crashed=_crash, cached=cached)) == [p.upper() for p in paths]
    assert started == [1]  # (one job: the pool is not used, warm_up returns at once)
    started.clear()
    assert list(run_files(_upper, paths, None, jobs=2, crashed=_crash, cached=cached)) == [p.upper() for p in paths]
    assert started == []  # every file found in the cache: no workers
    events: list[str] = []
    monkeypatch.setattr(parallel, "warm_up", lambda jobs: events.append(f"warm {jobs}") or real_warm_up(jobs))
    cache2 = ResultCache(tmp_path / "c2", namespace="t", fingerprint={})
    real_key = cache2.key
    monkeypatch.setattr(cache2, "key", lambda path: events.append("hash") or real_key(path))
    many = [*paths, *paths]
    got = list(run_files(_upper, many, None, jobs=2, crashed=_crash, cached=Cached(cache2, cached.encode,
                                                                                   cached.decode)))
    assert got == [p.upper() for p in many]
    assert events[:5] == ["hash"] * 4 + ["warm 2"]  # the fourth miss starts the workers; two files still to hash
    assert events[5:7] == ["hash", "hash"]


def _upper(path: str, _options: None) -> str:
    return path.upper()


def _crash(path: str, why: str) -> str:
    return why


def test_workers_run_blas_on_one_thread_unless_told_otherwise(monkeypatch):

    from inspector.parallel import ONE_THREAD, run_ordered

    for name in ONE_THREAD:  # (other libraries in this process, e.g. dask's nanny, may have set them)
        monkeypatch.delenv(name, raising=False)
    got = list(run_ordered(_blas_threads, ["a", "b", "c", "d"], None, jobs=2, crashed=_crash))
    assert got == ["1"] * 4
    assert "OPENBLAS_NUM_THREADS" not in os.environ  # set for the workers only
    assert list(run_ordered(_blas_threads, ["a"], None, jobs=2, crashed=_crash)) == [None]  # in this process


def _blas_threads(_item: str, _options: None) -> str | None:

    return os.environ.get("OPENBLAS_NUM_THREADS")
