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


def _echo(data: bytes, flag: int) -> bytes:
    return data[::-1] if flag else data


@pytest.mark.parametrize("way", ["shared file", "no memory file", "file not written"])
def test_a_large_request_crosses_through_the_shared_file_or_else_the_pipe(way, monkeypatch) -> None:
    """A request of at least ``_SHARED_BYTES`` is written to the memory file the helper shares (and
    empties once read); without one, or when writing it fails, the pipe carries it: the same answers."""
    if way == "no memory file":
        monkeypatch.setattr(isolation, "memory_file", lambda: -1)
    shared: list[int] = []
    real = isolation.pwrite_all

    def spied(fd: int, data: bytes) -> None:
        shared.append(len(data))
        if way == "file not written":
            raise OSError(28, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(isolation, "pwrite_all", spied)
    helper = isolation.Helper(lambda: _echo)
    big = bytes(range(256)) * (isolation._SHARED_BYTES // 256 + 3)
    small = big[:isolation._SHARED_BYTES - 1]
    try:
        for data in (big, small, big[:isolation._SHARED_BYTES], big[1:]):
            assert helper.call(data, flag=1, seconds=30, memory=1 << 28) == data[::-1]
        assert helper.call(b"", flag=0, seconds=30, memory=1 << 28) == b""
        if way == "no memory file":
            assert helper.shared == -1 and shared == []
        else:
            assert shared == [len(big), isolation._SHARED_BYTES, len(big) - 1]  # the small one: the pipe
            assert os.fstat(helper.shared).st_size == 0  # emptied: by the helper once read, or after a failure
    finally:
        helper._stop(kill=True)
    assert helper.shared == -1  # closed with the helper


def test_a_helper_forked_again_shares_a_new_file() -> None:
    helper = isolation.Helper(lambda: _echo)
    big = b"x" * isolation._SHARED_BYTES
    try:
        assert helper.call(big, flag=0, seconds=30, memory=1 << 28) == big
        first = os.fstat(helper.shared).st_ino
        helper._stop(kill=True)
        assert helper.call(big + b"y", flag=0, seconds=30, memory=1 << 28) == big + b"y"
        assert os.fstat(helper.shared).st_ino != first
    finally:
        helper._stop(kill=True)


def test_the_shared_file_is_read_whole_and_emptied() -> None:
    fd = isolation.memory_file()
    if fd < 0:
        pytest.skip("no memfd_create")
    try:
        isolation.pwrite_all(fd, b"abcdef")
        assert isolation._take_shared(fd, 6) == b"abcdef" and os.fstat(fd).st_size == 0
        isolation.pwrite_all(fd, b"abc")
        assert isolation._take_shared(fd, 6) is None  # fewer bytes than told: the helper ends
        assert isolation._take_shared(-1, 1) is None
    finally:
        os.close(fd)


class _Marks:
    """Appends a line to ``path`` when freed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __del__(self) -> None:
        with open(self.path, "a") as fh:
            fh.write("freed\n")


def test_what_a_served_answer_held_is_freed_once_it_is_written(tmp_path) -> None:
    marks = str(tmp_path / "marks")

    def serve(data: bytes, flag: int) -> isolation.Served:
        if flag:  # what was freed so far, read in the helper after the first answer was written
            with open(marks) as fh:
                return isolation.Served((fh.read().encode(),))
        return isolation.Served((b"head:", data), held=[_Marks(marks)])

    helper = isolation.Helper(lambda: serve)
    try:
        assert helper.call(b"xy", flag=0, seconds=30, memory=1 << 28) == b"head:xy"
        assert helper.call(b"", flag=1, seconds=30, memory=1 << 28) == b"freed\n"
    finally:
        helper._stop(kill=True)
