"""The helper's pipes (issue 14): answers in parts, written without joining, read into one buffer
without a second copy, through pipes widened past Linux's 64 KiB where the system allows."""

from __future__ import annotations

import os

import pytest

from inspector import isolation

pytestmark = pytest.mark.skipif(not isolation.ISOLATE, reason="helpers are forked processes")
fcntl = pytest.importorskip("fcntl")
_GET = getattr(fcntl, "F_GETPIPE_SZ", None)


def _serve_parts(data: bytes, flag: int) -> bytes | tuple[bytes, ...]:
    if flag == 1:
        return (b"head:", data, b":" + data[::-1])
    if flag == 2:
        raise ValueError("bad\nrequest")
    return b"one:" + data


def test_an_answer_in_parts_arrives_as_the_parts_joined() -> None:
    helper = isolation.Helper(lambda: _serve_parts)
    big = bytes(range(256)) * (3 << 12)  # 3 MiB: many times any pipe's capacity
    try:
        answer = helper.call(big, flag=1, seconds=30, memory=1 << 28)
        assert answer == b"head:" + big + b":" + big[::-1]
        assert isinstance(answer, bytearray)
        assert helper.call(b"xy", flag=0, seconds=30, memory=1 << 28) == b"one:xy"  # one part: as before
        failure = helper.call(b"xy", flag=2, seconds=30, memory=1 << 28)
        assert isinstance(failure, isolation.Failure) and failure.kind == "error"
        assert "\n" not in failure.message and failure.message.startswith("bad")
        assert helper.call(b"", flag=1, seconds=30, memory=1 << 28) == b"head::"
    finally:
        helper._stop(kill=True)


@pytest.mark.skipif(_GET is None, reason="no F_GETPIPE_SZ")
def test_a_pipe_is_widened_when_allowed_and_left_as_it_was_when_not() -> None:
    read, write = os.pipe()
    try:
        before = fcntl.fcntl(write, _GET)
        isolation.widen_pipe(write, 1 << 40)  # no C int (the kernel would read a cut, smaller size)
        isolation.widen_pipe(write, 4096)  # narrower: never shrunk
        isolation.widen_pipe(write, 0)
        assert fcntl.fcntl(write, _GET) == before
        isolation.widen_pipe(write, 4 * before)
        assert fcntl.fcntl(write, _GET) >= 4 * before
    finally:
        os.close(read)
        os.close(write)


@pytest.mark.skipif(_GET is None, reason="no F_GETPIPE_SZ")
def test_the_helpers_pipes_are_widened() -> None:
    helper = isolation.Helper(lambda: _serve_parts)
    try:
        helper.start()
        with open("/proc/sys/fs/pipe-max-size") as fh:
            wide = min(isolation._PIPE_BYTES, int(fh.read()))
        assert fcntl.fcntl(helper.to_helper, _GET) >= wide
        assert fcntl.fcntl(helper.from_helper, _GET) >= wide
    finally:
        helper._stop(kill=True)


def test_read_buffer_reads_across_writes_and_tells_the_end() -> None:
    read, write = os.pipe()
    try:
        os.write(write, b"abc")
        os.write(write, b"def")
        buffer = isolation.read_buffer(read, 5)
        assert buffer == bytearray(b"abcde") and isinstance(buffer, bytearray)
        assert isolation.read_exact(read, 1) == b"f"
        os.close(write)
        write = -1
        assert isolation.read_buffer(read, 1) is None
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
