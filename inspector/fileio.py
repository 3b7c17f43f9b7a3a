"""Writing result files so that nobody ever sees half of one; reading files with a size cap."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable

from .errors import UsageError
from .pathsafety import lies_inside


def write_atomic(path: str | os.PathLike[str], text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` through a temporary file in the same folder and a
    rename: readers see the old file or the whole new one, never a partial write,
    and a failure leaves the old file untouched."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{target}: cannot write: folder {str(folder)!r} does not exist")
    import tempfile  # here, not at import: a summary starts without it

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        # UTF-8 without newline translation: the same bytes a text-mode ``newline=""`` write gives.
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = os.stat(target).st_mode & 0o777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UsageError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_capped(path: Path, limit: int, *, too_big: Callable[[int | None], Exception],
                unreadable: Callable[[OSError], Exception]) -> bytes:
    """The bytes of ``path``, never more than ``limit`` of them in memory.

    A file larger than ``limit`` raises ``too_big(size)`` before it is read, or
    ``too_big(None)`` when it grew past the limit while it was read; a file that cannot
    be read raises ``unreadable(exc)``.  The callers word the messages."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise too_big(size)
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise unreadable(exc) from None
    if len(data) > limit:
        raise too_big(None)
    return data


def size_on_disk(path: str) -> int | None:
    """Bytes on disk: the file, or every file of a SavedModel folder that lies inside it
    (no symbolic links: :func:`inspector.pathsafety.lies_inside`)."""
    p = Path(path)
    try:
        if p.is_file():
            return p.stat().st_size
        total = 0
        for root, _dirs, files in os.walk(p, followlinks=False):
            for name in files:
                fp = Path(root, name)
                if fp.is_file() and lies_inside(p, fp):
                    total += fp.stat().st_size
        return total
    except OSError:
        return None


class SeekableReader(io.RawIOBase):
    """A read-only, seekable file object of ``self.size`` bytes at position ``self._pos``;
    subclasses implement ``readinto`` (a window on a zip member read in place, a range-read
    remote object)."""

    size = 0
    _pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        if whence not in (io.SEEK_SET, io.SEEK_CUR, io.SEEK_END):
            raise ValueError(f"bad whence {whence}")
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + pos < 0:
            raise OSError("negative seek position")
        self._pos = base + pos
        return self._pos


REMOTE_SCHEMES = ("s3", "gs", "gcs", "http", "https")
"""URL schemes read as remote storage (:mod:`inspector.remote`)."""


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a URL of remote storage (``s3://…``, ``gs://…``, ``https://…``); here, not in
    :mod:`inspector.remote`, so that telling a path from a URL costs no import on every command's start."""
    text = os.fspath(path)
    if not isinstance(text, str) or "://" not in text:
        return False
    return text.split("://", 1)[0].lower() in REMOTE_SCHEMES
