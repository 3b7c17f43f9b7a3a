"""Seeded mutation fuzzing of the loaders and commands.

Small valid models (the shipped samples: a Keras-written ``.keras`` and ``.h5``, an
ONNX export) are damaged in many ways — byte flips, truncation, random splices,
zip members corrupted, emptied, swapped or replaced by structurally mutated JSON,
HDF5 datasets replaced by ones of the wrong shape, dtype or kind — and every damaged
file goes through ``inspector summary``, ``info`` and ``lint`` in-process.

Whatever the damage, inspector must answer with exit code 0, 1 or 2; never a
traceback or any exception other than ``SystemExit`` with those codes; a
refused file is one line ``inspector: error: FILE: …``; and no lint rule may crash
(a rule crash is reported as "a bug in inspector").

The normal suite runs ``DEFAULT_CASES`` cases (a few seconds).  For a longer local
run::

    INSPECTOR_FUZZ_CASES=20000 INSPECTOR_FUZZ_SEED=7 pytest tests/test_fuzz.py

A failure names the case; ``INSPECTOR_FUZZ_KEEP=DIR`` keeps every failing file there.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from helpers.cli import CliResult, run_cli
from helpers.hostile import SEED_H5, SEED_KERAS, SEED_ONNX

DEFAULT_CASES = 300
CASES = int(os.environ.get("INSPECTOR_FUZZ_CASES", DEFAULT_CASES))
BASE_SEED = int(os.environ.get("INSPECTOR_FUZZ_SEED", 20240527))
COMMANDS = ("summary", "info", "lint")
SEEDS: dict[str, bytes] = {}


def seed_bytes(suffix: str) -> bytes:
    if not SEEDS:
        SEEDS.update({".keras": SEED_KERAS.read_bytes(), ".h5": SEED_H5.read_bytes(), ".onnx": SEED_ONNX.read_bytes()})
    return SEEDS[suffix]


# -- mutations ---------------------------------------------------------------------------------------

def flip_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    n = rng.choice([1, 2, 4, 16, 128])
    b = bytearray(data)
    for _ in range(n):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b), f"flip {n} byte(s)"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    return data[:at], f"truncate at {at}"


def splice(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    i = rng.randrange(len(data))
    j = min(len(data), i + rng.randint(1, 2048))
    filler = rng.choice([b"\0" * (j - i), b"\xff" * (j - i), rng.randbytes(j - i)])
    return data[:i] + filler + data[j:], f"overwrite {i}:{j}"


def insert(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    i = rng.randrange(len(data))
    n = rng.randint(1, 4096)
    return data[:i] + rng.randbytes(n) + data[i:], f"insert {n} bytes at {i}"


_ODD_VALUES: list[Any] = [None, 0, -1, 2 ** 40, -(2 ** 31), 1.5, float("inf"), "", "x", "Functional", [], {}, [None],
                          [["ghost", 0, 0]], {"class_name": "Dense"}, {"class_name": "__lambda__"}, True,
                          "A" * 300, [[[[]]]]]


def mutate_json(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    """Replace or delete a few values anywhere in a JSON document."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw, "json (unparsable, kept)"
    containers: list[Any] = []
    stack = [doc]
    while stack:
        x = stack.pop()
        containers.append(x)
        values = x.values() if isinstance(x, dict) else x
        stack.extend(v for v in values if isinstance(v, (dict, list)))
    edits = []
    for _ in range(rng.randint(1, 4)):
        x = rng.choice(containers)
        if not x:
            continue
        key = rng.choice(sorted(x, key=str)) if isinstance(x, dict) else rng.randrange(len(x))
        if rng.random() < 0.3:
            del x[key]
            edits.append(f"del {key!r}")
        else:
            x[key] = rng.choice(_ODD_VALUES)
            edits.append(f"set {key!r}")
    return json.dumps(doc).encode(), "json " + ", ".join(edits)


def mutate_h5_structure(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Replace a few datasets by ones of another shape, dtype or kind; sometimes
    mutate the ``model_config`` attribute too."""
    import h5py

    fd, name = tempfile.mkstemp(suffix=".h5")
    os.close(fd)
    path = Path(name)
    try:
        path.write_bytes(data)
        edits = []
        with h5py.File(path, "a") as f:
            datasets: list[str] = []
            f.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
            for _ in range(rng.randint(1, 3)):
                if not datasets:
                    break
                target = datasets.pop(rng.randrange(len(datasets)))
                shape = f[target].shape
                del f[target]
                kind = rng.randrange(9)
                if kind == 0:
                    f[target] = np.zeros((0,), "float32")
                elif kind == 1:
                    f[target] = np.float32(3.0)
                elif kind == 2:
                    f[target] = np.array([b"abc", b"de"])
                elif kind == 3:
                    f[target] = np.full(shape, np.nan, "float32")
                elif kind == 4:
                    f[target] = np.ones(shape, rng.choice(["int8", "float16", "complex64", "bool"]))
                elif kind == 5:
                    f[target] = np.ones((3, 0, 2), "float32")
                elif kind == 6:
                    f.create_group(target)
                elif kind == 7:
                    f[target] = np.ones(tuple(reversed(shape)) + (2,), "float32")
                else:
                    f[target] = h5py.SoftLink("/nowhere")
                edits.append(f"{target}: kind {kind}")
            if "model_config" in f.attrs and rng.random() < 0.4:
                raw = f.attrs["model_config"]
                raw = raw.encode() if isinstance(raw, str) else bytes(raw)
                mutated, how = mutate_json(rng, raw)
                f.attrs["model_config"] = mutated.decode()
                edits.append(f"model_config {how}")
        return path.read_bytes(), "h5 " + "; ".join(edits)
    finally:
        path.unlink(missing_ok=True)


def mutate_zip_member(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Corrupt, empty, swap or replace one member of a .keras archive and re-zip it."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    name = rng.choice(sorted(members))
    op = rng.choice(["flip", "truncate", "random", "empty", "swap", "drop", "structure", "structure"])
    body = members[name]
    if op == "flip":
        body, _ = flip_bytes(rng, body) if body else (body, "")
    elif op == "truncate":
        body = body[: rng.randrange(len(body) + 1)]
    elif op == "random":
        body = rng.randbytes(rng.randint(1, 4096))
    elif op == "empty":
        body = b""
    elif op == "swap":
        body = members[rng.choice(sorted(members))]
    elif op == "drop":
        del members[name]
    elif name.endswith(".json"):
        body, op = mutate_json(rng, body)
    elif name.endswith(".h5"):
        body, op = mutate_h5_structure(rng, body)
    if op != "drop":
        members[name] = body
    out = io.BytesIO()
    compression = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with zipfile.ZipFile(out, "w", compression) as zf:
        for member, content in members.items():
            zf.writestr(member, content)
    return out.getvalue(), f"zip member {name}: {op}"


BYTE_MUTATIONS: list[Callable[[random.Random, bytes], tuple[bytes, str]]] = [flip_bytes, truncate, splice, insert]


def mutate(rng: random.Random, suffix: str) -> tuple[bytes, str]:
    data = seed_bytes(suffix)
    roll = rng.random()
    if suffix == ".keras" and roll < 0.5:
        return mutate_zip_member(rng, data)
    if suffix == ".h5" and roll < 0.35:
        return mutate_h5_structure(rng, data)
    return rng.choice(BYTE_MUTATIONS)(rng, data)


# -- running ----------------------------------------------------------------------------------------------

@dataclass
class Failure:
    case: str
    command: str
    problem: str


def check(command: str, path: Path, code: int, err: str) -> str | None:
    if code not in (0, 1, 2):
        return f"exit code {code}"
    if "Traceback" in err or "RecursionError" in err:
        return f"traceback: {err[-500:]}"
    if "a bug in inspector" in err:
        return f"crash reported as a bug: {err.strip()[-500:]}"
    if code == 2:
        lines = err.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith(f"inspector: error: {path}: "):
            return f"exit 2 without one error line: {err[-500:]!r}"
    return None


def try_command(case: str, command: str, path: Path, failures: list[Failure]) -> CliResult | None:
    """``inspector COMMAND PATH``; an exception escaping ``main`` or a result :func:`check` rejects
    is added to ``failures``.  The result, or ``None`` when ``main`` raised."""
    try:
        result = run_cli(command, path)
    except BaseException as exc:  # noqa: BLE001 - anything escaping main is the bug we look for
        failures.append(Failure(case, command, f"{type(exc).__name__}: {exc}"))
        return None
    problem = check(command, path, result.code, result.err)
    if problem:
        failures.append(Failure(case, command, problem))
    return result


def assert_no_failures(failures: list[Failure]) -> None:
    """One assertion listing the first 20 failures."""
    report = "\n".join(f"{f.case}: inspector {f.command}: {f.problem}" for f in failures[:20])
    assert not failures, f"{len(failures)} failure(s):\n{report}"


def fuzz(cases: int, folder: Path, *, seed: int = BASE_SEED) -> tuple[list[Failure], dict[int, int]]:
    failures: list[Failure] = []
    codes = {0: 0, 1: 0, 2: 0}
    suffixes = (".keras", ".h5", ".onnx")
    keep = os.environ.get("INSPECTOR_FUZZ_KEEP")
    for i in range(cases):
        suffix = suffixes[i % 3]
        rng = random.Random(seed * 1_000_003 + i)
        data, how = mutate(rng, suffix)
        path = folder / f"case{i}{suffix}"
        path.write_bytes(data)
        case = f"seed {seed} case {i} ({suffix}, {how})"
        for command in COMMANDS:
            result = try_command(case, command, path, failures)
            if result is not None:
                codes[result.code] = codes.get(result.code, 0) + 1
        if keep and any(f.case == case for f in failures):
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        path.unlink()
    return failures, codes


def test_mutated_models_never_crash(tmp_path, monkeypatch):
    # A damaged HDF5 file can hang the HDF5 C library; inspector stops waiting after
    # INSPECTOR_MAX_HDF5_SECONDS (60 s by default: 5 s is plenty for these small seeds).
    monkeypatch.setenv("INSPECTOR_MAX_HDF5_SECONDS", os.environ.get("INSPECTOR_MAX_HDF5_SECONDS", "5"))
    failures, codes = fuzz(CASES, tmp_path)
    assert_no_failures(failures)
    # the mutations reach past the first check: some damaged files still load (0/1), most do not (2)
    assert codes[2] > 0 and codes[0] + codes[1] > 0, codes


def test_the_fuzzer_would_notice_a_crash(tmp_path, monkeypatch):
    """A loader bug that escapes as a plain exception is caught by the harness."""
    import inspector.loaders.keras_h5 as keras_h5

    def broken_load(path):
        raise KeyError("simulated loader bug")

    monkeypatch.setattr(keras_h5, "load", broken_load)
    failures, _ = fuzz(3, tmp_path)
    assert any("KeyError" in f.problem and ".h5" in f.case for f in failures)


@pytest.mark.parametrize("mutation", [flip_bytes, truncate, splice, insert, mutate_json, mutate_zip_member,
                                      mutate_h5_structure])
def test_mutations_change_the_file(mutation):
    source = {mutate_json: json.dumps({"a": [1, 2, {"b": 3}]}).encode(), mutate_zip_member: seed_bytes(".keras"),
              mutate_h5_structure: seed_bytes(".h5")}.get(mutation, seed_bytes(".onnx"))
    changed = sum(mutation(random.Random(k), source)[0] != source for k in range(10))
    assert changed >= 8  # a mutation that rarely mutates would fuzz nothing


# -- more seeds (issue 13): ONNX sparse tensors, ONNX text, TensorBoard events ---------------------------

EXTRA_CASES = max(CASES // 5, 12)


def extra_seeds(folder: Path) -> dict[str, tuple[bytes, tuple[str, ...]]]:
    """``file name -> (valid bytes, commands)``: a model with a sparse initializer whose
    values are external data next to it, the ONNX seed as ``onnxtxt`` text, and a
    TensorBoard event file with scalar and tensor summaries."""
    import onnx

    from helpers import hostile as H

    np.zeros(2, np.float32).tofile(folder / "w.bin")
    sparse = H.onnx_sparse_external(folder / "seed-sparse.onnx", "w.bin").read_bytes()
    text = onnx.printer.to_text(onnx.load_model_from_string(seed_bytes(".onnx"))).encode()
    events = H.tensorboard_events(folder / "seed" / "events.out.tfevents.1.host", [
        ("epoch_loss", 0, [], [1.0]), ("epoch_loss", 1, [1], [0.5]), ("epoch_accuracy", 0, [], [0.25]),
        ("epoch_accuracy", 1, [1 << 20], [0.75])]).read_bytes()
    return {"sparse.onnx": (sparse, COMMANDS), "text.onnxtxt": (text, COMMANDS),
            "events.out.tfevents.2.host": (events, ("history",))}


def test_mutated_extra_seeds_never_crash(tmp_path):
    failures: list[Failure] = []
    codes = {0: 0, 1: 0, 2: 0}
    for n, (name, (data, commands)) in enumerate(sorted(extra_seeds(tmp_path).items())):
        for i in range(EXTRA_CASES):
            rng = random.Random(BASE_SEED * 1_000_003 + 7919 * n + i)
            mutated, how = rng.choice(BYTE_MUTATIONS)(rng, data)
            path = tmp_path / f"case{i}-{name}"
            path.write_bytes(mutated)
            for command in commands:
                result = try_command(f"{name} case {i} ({how})", command, path, failures)
                if result is not None:
                    codes[result.code] = codes.get(result.code, 0) + 1
            path.unlink()
    assert_no_failures(failures)
    assert codes[2] > 0 and codes[0] + codes[1] > 0, codes


def test_the_extra_seeds_are_valid(tmp_path):
    for name, (data, commands) in extra_seeds(tmp_path).items():
        path = tmp_path / name
        path.write_bytes(data)
        for command in commands:
            code, out, err = run_cli(command, path)
            assert code in (0, 1), (name, command, err)


# -- polyglot seeds (issue 13): one file, two containers ------------------------------------------------

POLYGLOT_CASES = max(20, CASES // 10)


def polyglot(rng: random.Random) -> tuple[bytes, str, str]:
    """The ``.h5`` seed with the ``.keras`` seed appended, or the ``.keras`` seed in front of
    the ``.h5`` seed at a user-block offset (512, 1024 … bytes, where HDF5 looks), then a
    byte mutation half the time; the suffix says which loader Keras would pick."""
    h5, keras = seed_bytes(".h5"), seed_bytes(".keras")
    if rng.random() < 0.5:
        data, how = h5 + keras, "h5 + keras appended"
    else:
        block = 512
        while block < len(keras):
            block *= 2
        data, how = keras + bytes(block - len(keras)) + h5, f"keras in a {block}-byte user block + h5"
    if rng.random() < 0.5:
        data, mutation = rng.choice(BYTE_MUTATIONS)(rng, data)
        how += f", {mutation}"
    return data, how, rng.choice([".h5", ".keras"])


def test_mutated_polyglots_never_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_MAX_HDF5_SECONDS", os.environ.get("INSPECTOR_MAX_HDF5_SECONDS", "5"))
    failures: list[Failure] = []
    flagged = 0
    for i in range(POLYGLOT_CASES):
        rng = random.Random(BASE_SEED * 7 + i)
        data, how, suffix = polyglot(rng)
        path = tmp_path / f"poly{i}{suffix}"
        path.write_bytes(data)
        for command in COMMANDS:
            result = try_command(f"polyglot {i} ({how})", command, path, failures)
            flagged += result is not None and command == "lint" and "SEC006" in result.out
        path.unlink()
    assert_no_failures(failures)
    assert flagged > 0  # the unmutated polyglots are reported as such
