"""Process isolation: run native code that a hostile file can crash, hang or blow up
in a forked child process, with a time (and memory) budget.

Two native libraries inspector drives trust the files they read: ONNX shape
inference (C++ that a crafted graph makes allocate gigabytes, or crash) and the
HDF5 C library (which loops forever or crashes on some damaged files).  Neither can
be interrupted from Python, so both run in a child process and the parent reports
what happened in one sentence.  One mechanism, two shapes:

* :func:`call_in_child` — one call in a fresh child with a wall-clock limit; its
  result, or the :class:`~inspector.errors.InspectorError` it raised, comes back
  pickled through a pipe (the HDF5 metadata walk, :mod:`inspector.loaders.h5index`).
* :class:`Helper` — a child forked once and reused, serving byte requests one at a
  time, each with its own address-space and time budget; a child that ran out of
  memory, crashed or timed out is replaced on the next request (ONNX shape
  inference, :mod:`inspector.loaders.onnx.inference`).  A request can be sent and
  its answer read later (:meth:`Helper.send`, :meth:`Helper.receive`), so the
  parent works while the helper does.

Both return a :class:`Failure` when the child gave no answer; the caller turns it
into its own sentence.  Isolation needs ``fork`` and ``/proc`` (Linux):
:data:`ISOLATE` says whether it is available, and callers run the same code
in-process elsewhere.
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .errors import InspectorError

ISOLATE: bool = sys.platform.startswith("linux") and hasattr(os, "fork")
"""Whether this platform can run code in a forked child process."""

_CHUNK = 1 << 24
"""Largest single read or write on a pipe."""
_PIPE_BYTES = 1 << 20
"""Capacity asked for the helper's pipes (Linux's default is 64 KiB): a 50 MB answer then crosses in
fifty writes, not eight hundred, each a switch between the two processes."""
_SHARED_BYTES = 1 << 20
"""A request at least this long goes through the helper's shared file (:meth:`Helper.send`), not the pipe."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why an isolated call gave no answer.

    ``kind`` is ``"timeout"`` (killed after ``seconds``), ``"out-of-memory"`` (its
    memory budget ran out), ``"crash"`` (ended by ``signal``), ``"silent"`` (ended
    without an answer) or ``"error"`` (the served code raised; ``message`` says what)."""

    kind: str
    seconds: float = 0
    signal: int | None = None
    message: str = ""

    @property
    def signal_name(self) -> str:
        """The name of the signal that ended the child (``SIGKILL``)."""
        return signal.Signals(self.signal).name if self.signal is not None else ""


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as one line of at most ``limit`` characters (its type when it has no text)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fork(child: Callable[[], int]) -> int:
    """Fork; the child runs ``child()`` and leaves with its status (1 when it raised)
    without returning or running the parent's cleanup.  Returns the child's pid."""
    import warnings

    with warnings.catch_warnings():
        # "multi-threaded, use of fork() may lead to deadlocks": the child only runs the native library
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = child()
        except BaseException:  # noqa: BLE001 - the child never returns into the parent's code
            status = 1
        finally:
            os._exit(status)
    return pid


def _end_of(wait_status: int, *, alarm_seconds: float | None = None) -> Failure:
    """The failure a child's wait status tells of, when it said nothing (``SIGALRM``
    is a timeout when the child ran under an alarm of ``alarm_seconds``)."""
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if sig == signal.SIGALRM and alarm_seconds is not None:
            seconds = alarm_seconds
            return Failure("timeout", seconds=seconds, signal=sig)
        return Failure("crash", signal=sig)
    return Failure("silent")


# -- one call in a fresh child -----------------------------------------------------------
def call_in_child(fn: Callable[[], Any], *, seconds: float, what: str, memory: int | None = None) -> Any:
    """``fn()`` run in a forked child that is killed after ``seconds`` (and, with
    ``memory``, may grow its address space by at most that many bytes: an allocation
    past it fails in the child, as ``MemoryError`` or the native library's error).

    Returns what ``fn`` returned (it must pickle), or a :class:`Failure` when the
    child timed out, crashed or said nothing.  An :class:`InspectorError` raised in
    the child is raised here; any other exception is a ``RuntimeError`` naming
    ``what`` the child was doing (a bug, not a property of the file)."""
    import pickle
    import time

    read_fd, write_fd = os.pipe()

    def child() -> int:
        import faulthandler

        faulthandler.disable()  # a crash of the native library is reported by the parent, in one line
        os.close(read_fd)
        if memory is not None:
            import resource

            limit_address_space(memory, inherited=resource.getrlimit(resource.RLIMIT_AS))
        try:
            result: tuple[str, Any] = ("ok", fn())
        except InspectorError as exc:
            result = ("error", exc)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a bug
            result = ("bug", f"{type(exc).__name__}: {exc}")
        write_all(write_fd, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return 0

    pid = fork(child)
    os.close(write_fd)
    deadline = time.monotonic() + seconds
    chunks, timed_out, wait_status = _collect(read_fd, pid, deadline)
    if timed_out:
        return Failure("timeout", seconds=seconds)
    if not chunks:
        return _end_of(wait_status)
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "ok":
        return value
    if kind == "error":
        raise value
    raise RuntimeError(f"{what} failed in the worker process: {value}")


def _collect(read_fd: int, pid: int, deadline: float) -> tuple[list[bytes], bool, int]:
    """Everything the child ``pid`` writes to ``read_fd`` until it closes it or the
    deadline passes; then the child is reaped (killed first unless it finished).
    Returns (chunks, timed out, wait status)."""
    import select
    import time

    chunks: list[bytes] = []
    timed_out = False
    kill = True  # until the child has said everything (also on KeyboardInterrupt)
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                kill = False
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # pragma: no cover - it just finished
                pass
        _, wait_status = os.waitpid(pid, 0)
    return chunks, timed_out, wait_status


# -- a reusable helper process -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Served:
    """An answer in ``parts`` (written one after the other) and what it was made of (``held``), which the
    helper frees only once the answer is written: freeing half a million objects first delays it."""

    parts: tuple[bytes, ...]
    held: Any = None


Serve = Callable[[bytes, int], "bytes | tuple[bytes, ...] | Served"]
"""What a helper runs per request: (request bytes, flag) → answer bytes (or its parts, in order:
written one after the other, never joined into one copy; or :class:`Served`)."""


class Request:
    """A request :meth:`Helper.send` handed to the helper, whose answer is not read yet."""

    __slots__ = ("seconds", "broken", "done")

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        """The request's time budget (the helper's alarm)."""
        self.broken = False
        """The helper was gone before it took the whole request."""
        self.done = False
        """Its answer was read, or it was dropped."""


class Helper:
    """A forked process that serves requests one at a time, each under a memory and
    time budget.

    ``prepare()`` runs in the parent just before each fork (import and initialize the
    native library there, so the child inherits it warm) and returns the function
    the child serves.  The helper is forked early (:meth:`start`, while the parent
    holds little memory) and reused; one that ran out of memory, crashed or timed
    out is replaced by the next request.  :meth:`call` waits for the answer; :meth:`send` returns
    at once and :meth:`receive` waits later, so the caller works while the helper does.

    Request: ``<Q size><B flag><Q memory><I seconds><? shared>`` and the data (unless ``shared``:
    then the data is in the helper's shared file); answer: ``<Q length>`` and a tag byte (``K`` ok
    + answer bytes, ``E`` error + message, ``M`` out of memory, after which the helper exits).

    A large request (a model of tens of MB) is written to a memory file both processes hold open
    (``memfd_create``, made before the fork) rather than through the pipe: one copy the parent makes
    at memory speed, where the pipe took a switch between the processes per MiB (0.08 s for 38 MB
    on a loaded machine) and held back both the parent's next step and the helper's start.  The
    helper reads it and empties the file; without ``memfd_create`` (or when writing it fails) the
    request goes through the pipe."""

    _REQUEST = struct.Struct("<QBQI?")
    _LENGTH = struct.Struct("<Q")

    def __init__(self, prepare: Callable[[], Serve]) -> None:
        self.prepare = prepare
        self.pid = 0
        self.owner = 0
        self.to_helper = -1
        self.from_helper = -1
        self.shared = -1
        """The memory file large requests are written to (-1: none, they go through the pipe)."""
        self.lock = threading.Lock()

    def start(self) -> None:
        """Fork the helper now (cheap when it already runs)."""
        with self.lock:
            self._ensure()

    def running(self) -> bool:
        """Does this process's helper run (a request now needs no fork)?"""
        if not self.pid or self.owner != os.getpid():
            return False
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] == 0
        except ChildProcessError:  # reaped by someone else
            return False

    def call(self, data: bytes, *, flag: int, seconds: int, memory: int) -> bytearray | Failure:
        """Serve ``data`` in the helper within ``memory`` more bytes of address space and ``seconds``
        (:meth:`send`, then :meth:`receive`)."""
        return self.receive(self.send(data, flag=flag, seconds=seconds, memory=memory))

    def send(self, data: bytes | bytearray, *, flag: int, seconds: int, memory: int) -> Request:
        """Hand ``data`` to the helper and return at once, while it works: the answer is read by
        :meth:`receive` (or dropped by :meth:`cancel`).  The helper serves one request at a time:
        until then, other threads' requests wait."""
        self.lock.acquire()
        request = Request(max(1, seconds))  # alarm(0) would mean no time limit
        try:
            self._ensure()
        except BaseException:
            self.lock.release()
            raise
        try:
            shared = len(data) >= _SHARED_BYTES and self._share(data)
            write_all(self.to_helper, self._REQUEST.pack(len(data), flag, memory, request.seconds, shared))
            if not shared:
                write_all(self.to_helper, data)
        except BrokenPipeError:
            request.broken = True
        except BaseException:  # interrupted mid-request: the helper's state is unknown
            self._stop(kill=True)
            self.lock.release()
            raise
        return request

    def _share(self, data: bytes | bytearray) -> bool:
        """Write ``data`` to the shared file for the helper (which empties it once read); ``False`` when
        there is none or it could not be written (then the pipe carries the data)."""
        if self.shared < 0:
            return False
        try:
            pwrite_all(self.shared, data)
            return True
        except OSError:  # out of memory for the file: the pipe still works
            try:
                os.ftruncate(self.shared, 0)
            except OSError:
                pass
            return False

    def receive(self, request: Request) -> bytearray | Failure:
        """Wait for the answer to ``request``: the helper's answer bytes, or why there is none (the
        helper's own alarm bounds the wait by the request's time budget)."""
        if request.done:
            raise RuntimeError("the answer to this request was already read or dropped")
        request.done = True
        try:
            answer: bytearray | None = None
            try:
                if not request.broken:
                    head = read_exact(self.from_helper, self._LENGTH.size)
                    if head is not None:
                        answer = read_buffer(self.from_helper, self._LENGTH.unpack(head)[0])
            except BrokenPipeError:
                answer = None
            except BaseException:  # interrupted mid-request: the helper's state is unknown
                self._stop(kill=True)
                raise
            if answer is None or answer[:1] == b"M":
                status = self._stop(kill=answer is None)
                if answer is not None:
                    return Failure("out-of-memory")
                return _end_of(status, alarm_seconds=request.seconds)
            if answer[:1] == b"K":
                del answer[:1]  # in place, no copy (CPython moves a bytearray's start)
                return answer
            return Failure("error", message=answer[1:].decode("utf-8", "replace"))
        finally:
            self.lock.release()

    def cancel(self, request: Request) -> None:
        """Drop ``request`` unanswered: the helper is stopped (the next request forks a new one)."""
        if request.done:
            return
        request.done = True
        try:
            self._stop(kill=True)
        finally:
            self.lock.release()

    def _ensure(self) -> None:
        if self.pid and self.owner == os.getpid():
            try:
                alive = os.waitpid(self.pid, os.WNOHANG)[0] == 0
            except ChildProcessError:  # reaped by someone else
                alive = False
            if alive:
                return
        if self.pid or self.owner:  # a helper that ended, or one inherited through a fork (not ours)
            self.pid = 0
            self._close()
        serve = self.prepare()
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        widen_pipe(req_w)
        widen_pipe(ans_w)
        shared = memory_file()

        def child() -> int:  # the helper
            close_fds_except(2, req_r, ans_w, shared)  # hold no file, pipe or socket of the parent open
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 0)
            os.dup2(null, 1)  # nothing may reach the parent's standard output
            _serve(serve, req_r, ans_w, shared)
            return 0

        try:
            pid = fork(child)
        except BaseException:
            if shared >= 0:
                os.close(shared)
            raise
        os.close(req_r)
        os.close(ans_w)
        self.pid, self.owner, self.to_helper, self.from_helper = pid, os.getpid(), req_w, ans_r
        self.shared = shared

    def _close(self) -> None:
        for fd in (self.to_helper, self.from_helper, self.shared):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.to_helper = self.from_helper = self.shared = -1

    def _stop(self, *, kill: bool) -> int:
        """End the helper; its wait status."""
        pid, self.pid = self.pid, 0
        self._close()
        if not pid:
            return 0
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:  # pragma: no cover - reaped elsewhere
            return 0


def _serve(serve: Serve, requests: int, answers: int, shared: int = -1) -> None:
    """The helper's loop: one request at a time until the parent closes the pipe (a large request's
    data in the ``shared`` memory file, emptied once read)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    import resource

    inherited = resource.getrlimit(resource.RLIMIT_AS)  # every budget counts from these limits
    while True:
        head = read_exact(requests, Helper._REQUEST.size)
        if head is None:
            return
        size, flag, memory, seconds, in_file = Helper._REQUEST.unpack(head)
        data = _take_shared(shared, size) if in_file else read_exact(requests, size)
        if data is None:
            return
        limit_address_space(memory, inherited=inherited)
        signal.alarm(seconds)
        kind = b"K"
        served: bytes | tuple[bytes, ...] | Served = b""
        parts: tuple[bytes, ...]
        try:
            served = serve(data, flag)  # not copied behind its one-byte kind: written after it
            parts = served.parts if isinstance(served, Served) else served if isinstance(served, tuple) else (served,)
        except MemoryError:
            kind, parts = b"M", ()
        except Exception as exc:  # noqa: BLE001 - reported to the parent as text
            kind, parts = b"E", (one_line(exc).encode("utf-8", "replace"),)
        signal.alarm(0)
        del data
        write_all(answers, Helper._LENGTH.pack(1 + sum(len(part) for part in parts)) + kind)
        for part in parts:
            write_all(answers, part)
        if kind == b"M":
            return  # after std::bad_alloc the library's state is not trusted: the parent forks a new helper
        del served, parts  # (with what a Served answer held)
        _release_memory()  # the helper waits holding nothing while the parent works on


def _take_shared(fd: int, n: int) -> bytes | None:
    """The ``n`` bytes of the shared memory file ``fd``, which is emptied (``None``: fewer bytes there,
    or no file: the helper ends, as at the end of the pipe)."""
    if fd < 0:
        return None
    try:
        data = os.pread(fd, n, 0)  # one call reads it whole, short of Linux's 2 GiB per read
        if len(data) < n:
            parts = [data]
            while (got := sum(map(len, parts))) < n:
                part = os.pread(fd, n - got, got)
                if not part:
                    return None
                parts.append(part)
            data = b"".join(parts)
        os.ftruncate(fd, 0)  # its memory is the system's again
    except OSError:
        return None
    return data


def memory_file() -> int:
    """A new anonymous memory file (``memfd_create``) a forked helper shares, or -1 where there is none."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return -1
    try:
        fd: int = create("inspector-request", getattr(os, "MFD_CLOEXEC", 0))
    except OSError:
        return -1
    return fd


def pwrite_all(fd: int, data: bytes | bytearray) -> None:
    """Make the file ``fd`` hold ``data`` from its start (it is empty: the helper empties it)."""
    view = memoryview(data)
    at = 0
    while at < len(view):
        at += os.pwrite(fd, view[at:at + (1 << 30)], at)


def _release_memory() -> None:
    """Hand the memory the C library keeps after a request back to the system (glibc's
    ``malloc_trim``; nothing where there is none)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def limit_address_space(memory: int, *, inherited: tuple[int, int]) -> None:
    """Let this process grow by at most ``memory`` bytes of address space from now,
    within the (soft, hard) limits it ``inherited``."""
    import resource

    soft, hard = inherited
    used = address_space()
    if not used:
        return
    limit = used + memory if hard == resource.RLIM_INFINITY else min(used + memory, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit if soft == resource.RLIM_INFINITY
                                                else min(limit, soft), hard))
    except (OSError, ValueError):  # pragma: no cover - the time budget still holds
        pass


def close_fds_except(*keep: int) -> None:
    """Close every file descriptor of this process but ``keep``."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except (OSError, ValueError):  # pragma: no cover - no /proc
        return
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or ``None`` at end of file (:func:`read_buffer` made ``bytes``)."""
    buffer = read_buffer(fd, n)
    return None if buffer is None else bytes(buffer)


def read_buffer(fd: int, n: int) -> bytearray | None:
    """``n`` bytes from ``fd`` in one buffer, not copied again, or ``None`` at end of file.  Read into
    it: a pipe gives at most its capacity per read, and ``os.read(fd, 16 MiB)`` would allocate 16 MiB
    each time."""
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        count = os.readv(fd, [view[got:got + _CHUNK]])
        if not count:
            return None
        got += count
    view.release()
    return buffer


def widen_pipe(fd: int, size: int = _PIPE_BYTES) -> None:
    """Ask for a pipe of ``size`` bytes (Linux's ``F_SETPIPE_SZ``) when that widens it; it stays as it
    was where that is not allowed (above ``/proc/sys/fs/pipe-max-size`` for an unprivileged user), where
    there is no such call, and for a size that would not widen it or is no C ``int`` (which the kernel
    would read cut short: a smaller pipe)."""
    import fcntl

    setter, getter = getattr(fcntl, "F_SETPIPE_SZ", None), getattr(fcntl, "F_GETPIPE_SZ", None)
    if setter is None or getter is None or not 0 < size < 1 << 31:
        return
    try:
        if fcntl.fcntl(fd, getter) < size:
            fcntl.fcntl(fd, setter, size)
    except OSError:  # over the system's limit, or out of pipe memory for this user: the default holds
        pass


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:_CHUNK]):]


def address_space() -> int:
    """This process's virtual memory size in bytes (0 when unknown)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
