"""Folders given to the model commands: discovery (include/exclude, .gitignore, model folders,
symbolic links, FIFOs), sorted order, and the commands that take folders."""

from __future__ import annotations

import json
import os

import pytest

from helpers.cli import one_error_line
from helpers.folders import mlp_onnx, model_folder
from inspector.discover import Discovery, expand_paths, is_model_folder, walk_folder

EXPECTED = ["a.onnx", "b.onnx", "broken.onnx", "team/deep/c.onnx", "team/z.onnx", "zz/last.onnx"]


def _rel(paths, root):
    return [os.path.relpath(p, root).replace(os.sep, "/") for p in paths]


def test_walk_finds_models_sorted_and_skips_other_files(tmp_path):
    folder = model_folder(tmp_path)
    assert _rel(walk_folder(str(folder), settings=Discovery()), folder) == EXPECTED


def test_explicit_files_keep_their_order_and_folders_expand_in_place(tmp_path):
    folder = model_folder(tmp_path)
    extra = mlp_onnx(tmp_path / "extra.onnx", seed=9)
    got = expand_paths([str(extra), str(folder / "team"), str(folder / "a.onnx")])
    assert _rel(got, tmp_path) == ["extra.onnx", "models/team/deep/c.onnx", "models/team/z.onnx", "models/a.onnx"]
    # a model found twice (named, then inside a folder) is listed once
    assert _rel(expand_paths([str(folder / "zz" / "last.onnx"), str(folder / "zz")]), tmp_path) == \
        ["models/zz/last.onnx"]


def test_default_excludes_and_gitignore(tmp_path):
    folder = model_folder(tmp_path)
    for hidden in (".git", ".venv", "__pycache__", "node_modules", ".inspector_cache"):
        mlp_onnx(folder / hidden / "x.onnx", seed=7)
    (folder / ".gitignore").write_text("zz/\n*.h5\n")
    mlp_onnx(folder / "legacy.h5", seed=8)  # (content does not matter: ignored by name)
    (folder / "team" / ".gitignore").write_text("z.onnx\n")
    got = _rel(walk_folder(str(folder), settings=Discovery()), folder)
    assert got == ["a.onnx", "b.onnx", "broken.onnx", "team/deep/c.onnx"]
    # without .gitignore, the ignored ones come back (the default excludes stay)
    got = _rel(walk_folder(str(folder), settings=Discovery(respect_gitignore=False)), folder)
    assert got == ["a.onnx", "b.onnx", "broken.onnx", "legacy.h5", "team/deep/c.onnx", "team/z.onnx",
                   "zz/last.onnx"]


def test_include_exclude_and_extend_exclude_from_the_configuration(tmp_path, cli):
    folder = model_folder(tmp_path)
    config = tmp_path / "inspector.toml"
    config.write_text('[tool.inspector]\nextend-exclude = ["team/deep/"]\ninclude = ["*.onnx"]\n')
    result = cli("lint", folder, "--config", config, "-f", "json")
    paths = [r["model"]["path"] for r in json.loads(result.out)["results"]]
    assert _rel(paths, folder) == ["a.onnx", "b.onnx", "broken.onnx", "team/z.onnx", "zz/last.onnx"]
    config.write_text('[tool.inspector]\nexclude = ["zz"]\n')  # replaces the defaults
    mlp_onnx(folder / ".git" / "x.onnx", seed=7)
    result = cli("lint", folder, "--config", config, "-f", "json")
    paths = [r["model"]["path"] for r in json.loads(result.out)["results"]]
    assert ".git/x.onnx" in _rel(paths, folder) and "zz/last.onnx" not in _rel(paths, folder)


def test_bad_discovery_option_is_a_usage_error(tmp_path, cli):
    config = tmp_path / "inspector.toml"
    config.write_text('[tool.inspector]\nextend-exclude = [1]\n')
    result = cli("lint", model_folder(tmp_path), "--config", config)
    assert result.code == 2 and "extend-exclude must be a list of path patterns" in result.err


def test_savedmodel_and_keras_folders_are_one_model_not_walked(tmp_path):
    root = tmp_path / "zoo"
    sm = root / "exported"
    (sm / "variables").mkdir(parents=True)
    (sm / "saved_model.pb").write_bytes(b"\x08\x01")
    mlp_onnx(sm / "variables" / "inner.onnx", seed=1)  # inside the model folder: not a model of its own
    unzipped = root / "unzipped"
    unzipped.mkdir()
    (unzipped / "config.json").write_text("{}")
    (unzipped / "model.weights.h5").write_bytes(b"")
    plain = root / "plain"
    plain.mkdir()
    (plain / "config.json").write_text("{}")  # a config.json alone is not a Keras folder
    assert is_model_folder(sm) and is_model_folder(unzipped) and not is_model_folder(plain)
    assert _rel(walk_folder(str(root), settings=Discovery()), root) == ["exported", "unzipped"]
    assert expand_paths([str(sm)]) == [str(sm)]  # named directly: the model itself


@pytest.mark.skipif(not hasattr(os, "symlink") or not hasattr(os, "mkfifo"), reason="needs symlinks and FIFOs")
def test_walk_never_follows_symlinks_out_of_the_folder_nor_reads_fifos(tmp_path, cli):
    outside = tmp_path / "outside"
    mlp_onnx(outside / "secret.onnx", seed=1)
    folder = tmp_path / "repo"
    mlp_onnx(folder / "own.onnx", seed=2)
    os.symlink(outside / "secret.onnx", folder / "link.onnx")
    os.symlink(outside, folder / "linked_dir")
    os.mkfifo(folder / "pipe.onnx")
    assert _rel(walk_folder(str(folder), settings=Discovery()), folder) == ["own.onnx"]
    result = cli("lint", folder, "-f", "json")  # returns: the FIFO is never opened
    assert [r["model"]["path"] for r in json.loads(result.out)["results"]] == [str(folder / "own.onnx")]
    assert "secret" not in result.out + result.err


def test_folder_without_models_and_named_non_model_file_are_one_error(tmp_path, cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("# nothing\n")
    result = cli("lint", empty)
    assert result.code == 2
    one_error_line(result.err, empty)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    result = cli("summary", notes)
    assert result.code == 2 and "not a model file" in one_error_line(result.err, notes)


def test_lint_folder_reports_every_model_and_the_broken_one(tmp_path, cli):
    folder = model_folder(tmp_path)
    result = cli("lint", folder, "-f", "json")
    assert result.code == 2
    doc = json.loads(result.out)
    assert _rel([r["model"]["path"] for r in doc["results"]], folder) == EXPECTED
    assert [r["model"]["path"] for r in doc["results"] if r.get("error")] == [str(folder / "broken.onnx")]
    assert one_error_line(result.err, folder / "broken.onnx")


def test_summary_and_info_take_folders(tmp_path, cli):
    folder = model_folder(tmp_path)
    (folder / "broken.onnx").unlink()
    result = cli("summary", folder, "-f", "json")
    assert result.code == 0
    docs = [json.loads(line) for line in result.out.splitlines()]
    assert len(docs) == 5
    result = cli("info", folder / "team", "-f", "json")
    assert result.code == 0 and [m["model"]["path"] for m in json.loads(result.out)["models"]] == \
        [str(folder / "team" / "deep" / "c.onnx"), str(folder / "team" / "z.onnx")]


def test_report_takes_a_folder_holding_one_model(tmp_path, cli):
    folder = model_folder(tmp_path)
    one = folder / "zz"
    result = cli("report", one, "-f", "markdown", "--no-charts")
    assert result.code == 0 and "last.onnx" in result.out
    result = cli("report", folder / "team", "-f", "markdown", "--no-charts")
    assert result.code == 2 and "a report is about one model, and this folder holds 2" in result.err
