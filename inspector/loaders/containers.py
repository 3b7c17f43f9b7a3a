"""Every container a Keras loader could find in one file or folder (polyglot detection).

A file can be two things at once: an HDF5 model with a ``.keras`` zip appended
(zip readers find the archive from its *end*), a zip in an HDF5 file's user block
(HDF5 looks for its superblock at byte 0, 512, 1024, 2048 …), a SavedModel folder
that also holds a Keras ``config.json``.  :func:`detect` picks one format from the
first bytes; a framework may pick the other (Keras chooses by suffix), so the
security scan must see every one of them.  This module only *finds* them:

* :func:`zip_spans` — zip archives a reader could open: an end-of-central-directory
  record in the last 64 KiB + 22 bytes (the zip comment's largest size), or in the
  user block before an HDF5 superblock (data prepended to an HDF5 file), whose
  central directory is where the record says (archives with prepended data
  included, as ``zipfile`` reads them);
* :func:`hdf5_offsets` — every offset ``0, 512, 1024, 2048 …`` below the file size
  holding the HDF5 superblock signature.

:mod:`inspector.loaders.polyglot` scans what is found.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
EOCD = b"PK\x05\x06"
CENTRAL_HEADER = b"PK\x01\x02"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_EOCD = b"PK\x06\x06"
EOCD_SIZE = 22
MAX_COMMENT = 0xFFFF


@dataclass(frozen=True, slots=True)
class ZipSpan:
    """One zip archive inside a file: bytes ``[start, end)`` hold it."""

    start: int
    """Where its first byte would be (the central directory offsets count from here)."""
    end: int
    """The end of its end-of-central-directory record and comment."""
    eocd: int
    """Offset of its end-of-central-directory record."""
    directory: int
    """Offset of its central directory."""
    entries: int
    """How many entries its directory lists."""


def hdf5_offsets(path: Path, *, limit: int | None = None) -> list[int]:
    """Offsets ``0, 512, 1024, 2048 …`` (up to the file size, or ``limit``) holding the HDF5 signature."""
    out: list[int] = []
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            offset = 0
            while offset + len(HDF5_SIGNATURE) <= size and (limit is None or offset <= limit):
                fh.seek(offset)
                if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                    out.append(offset)
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return out
    return out


def zip_spans(path: Path, *, regions: list[tuple[int, int]] | None = None) -> list[ZipSpan]:
    """Zip archives in ``path`` a reader could open: end records in the file's tail
    (the last 64 KiB + 22 bytes) and in ``regions`` (``(start, end)`` byte ranges,
    such as an HDF5 user block), each checked against its central directory."""
    spans: list[ZipSpan] = []
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            tail = min(size, EOCD_SIZE + MAX_COMMENT)
            areas = [(size - tail, size)] + [(max(0, a), min(b, size)) for a, b in regions or []]
            seen: set[int] = set()
            for start, end in areas:
                if end - start > 64 * 1024 * 1024:  # a user block is small; never read a big file twice
                    continue
                fh.seek(start)
                data = fh.read(end - start)
                pos = data.rfind(EOCD)
                while pos >= 0:
                    at = start + pos
                    if at not in seen:
                        seen.add(at)
                        span = _span_at(fh, at, size)
                        if span is not None:
                            spans.append(span)
                    pos = data.rfind(EOCD, 0, pos)
    except OSError:
        return spans
    return sorted(spans, key=lambda s: s.eocd)


def _span_at(fh: object, at: int, size: int) -> ZipSpan | None:
    """The archive whose end record sits at ``at``, if its central directory checks out."""
    import io

    assert isinstance(fh, io.BufferedIOBase)
    fh.seek(at)
    rec = fh.read(EOCD_SIZE)
    if len(rec) < EOCD_SIZE:
        return None
    disk, cd_disk, n_here, n_total, cd_size, cd_offset, comment = struct.unpack("<HHHHIIH", rec[4:])
    if disk != 0 or cd_disk != 0 or n_here != n_total or at + EOCD_SIZE + comment > size:
        return None
    cd_end = at
    if (n_total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF) and at >= 20:
        fh.seek(at - 20)
        loc = fh.read(20)
        if loc[:4] == ZIP64_LOCATOR:
            fh.seek(at - 20 - 56)
            rec64 = fh.read(56)
            if rec64[:4] != ZIP64_EOCD:
                return None
            n_total, cd_size, cd_offset = struct.unpack("<QQQ", rec64[32:56])
            cd_end = at - 20 - 56
    if n_total == 0 or cd_size > cd_end:
        return None
    cd_start = cd_end - cd_size
    fh.seek(cd_start)
    if fh.read(4) != CENTRAL_HEADER:
        return None
    start = cd_start - cd_offset  # > 0 when data was prepended to the archive
    if start < 0:
        return None
    return ZipSpan(start=start, end=at + EOCD_SIZE + comment, eocd=at, directory=cd_start, entries=n_total)
