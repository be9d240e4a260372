"""Turn what the user passed to ``tk.load`` into a list of :class:`~tracekit.readers.Input`.

A file, a folder (recursive), a list of them, or a ``.tar``/``.tar.gz``/``.tgz``/``.zip``
archive (opened as a folder). Compression is recognised by content (gzip, bzip2, xz; zstd when
``zstandard`` is installed), whatever the file is called.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ParseError, TracekitError
from .readers._base import Input

_GZ = b"\x1f\x8b"
_ZST = b"\x28\xb5\x2f\xfd"
_BZ2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"


@dataclass
class Skipped:
    """An input that will not be read, and why (listed in ``tl.sources``)."""

    name: str
    path: str
    reason: str
    size: int | None = None


def _magic(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(8)


def _zstd_open(raw: io.BufferedIOBase):
    import zstandard  # noqa: PLC0415  (optional dependency)

    return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)


def _closing(make, open_raw):
    """Wrap a decompressor so closing it also closes the raw stream under it."""

    def opener():
        raw = open_raw()
        f = make(raw)
        inner = f.close

        def close():
            try:
                inner()
            finally:
                raw.close()

        f.close = close
        return f

    return opener


def _decompressing_opener(open_raw, magic: bytes):
    """An opener that decompresses by magic bytes; None when the codec is unavailable."""
    if magic.startswith(_GZ):
        return _closing(lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"), open_raw)
    if magic.startswith(_BZ2) and len(magic) >= 4 and magic[3:4].isdigit():
        return _closing(lambda raw: bz2.BZ2File(raw, mode="rb"), open_raw)
    if magic.startswith(_XZ):
        return _closing(lambda raw: lzma.LZMAFile(raw, mode="rb"), open_raw)
    if magic.startswith(_ZST):
        try:
            import zstandard  # noqa: F401, PLC0415
        except ImportError:
            return None
        return lambda: _zstd_open(open_raw())
    return open_raw


def _strip_comp(name: str) -> str:
    for ext in (".gz", ".zst", ".bz2", ".xz"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def _is_archive(path: str, magic: bytes) -> str | None:
    low = path.lower()
    if magic.startswith(b"PK\x03\x04") or low.endswith(".zip"):
        return "zip" if zipfile.is_zipfile(path) else None
    if low.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar.zst")):
        return "tar"
    if magic.startswith(_GZ) or not magic:
        return None
    # an uncompressed tar has "ustar" at byte 257
    try:
        with open(path, "rb") as f:
            f.seek(257)
            if f.read(5) == b"ustar":
                return "tar"
    except OSError:
        return None
    return None


def _file_input(path: str, name: str) -> Input | Skipped:
    try:
        st = os.stat(path)
        magic = _magic(path)
    except OSError as e:
        return Skipped(name, path, f"cannot read: {e.strerror}")
    opener = _decompressing_opener(lambda: open(path, "rb"), magic)
    if opener is None:
        return Skipped(name, path, "zstd-compressed; install the 'zstandard' package to read it", st.st_size)
    plain = opener is not None and magic[:4] not in (_ZST,) and not magic.startswith((_GZ, _XZ)) and not (
        magic.startswith(_BZ2) and magic[3:4].isdigit()
    )
    return Input(
        name=name,
        path=path,
        opener=opener,
        size=st.st_size,
        mtime=st.st_mtime,
        fs_path=path if plain else None,
    )


def _tar_inputs(path: str, prefix: str) -> list[Input | Skipped]:
    out: list[Input | Skipped] = []
    try:
        with tarfile.open(path, "r:*") as tf:
            members = [m for m in tf.getmembers() if m.isfile()]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ParseError(f"not a readable tar archive ({e})", file=path) from None
    for m in sorted(members, key=lambda m: m.name):
        mname = m.name.lstrip("./")
        name = f"{prefix}{mname}"

        def raw_open(member=m.name):
            tf = tarfile.open(path, "r:*")
            f = tf.extractfile(member)
            data = f.read() if f is not None else b""
            tf.close()
            return io.BytesIO(data)

        with raw_open() as f:
            magic = f.read(8)
        opener = _decompressing_opener(raw_open, magic)
        if opener is None:
            out.append(Skipped(name, f"{path}!{m.name}", "zstd-compressed; install 'zstandard'", m.size))
            continue
        out.append(Input(name=name, path=f"{path}!{m.name}", opener=opener, size=m.size, mtime=m.mtime))
    return out


def _zip_inputs(path: str, prefix: str) -> list[Input | Skipped]:
    out: list[Input | Skipped] = []
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        raise ParseError(f"not a readable zip archive ({e})", file=path) from None
    import datetime as _dt

    for info in sorted(infos, key=lambda i: i.filename):
        name = f"{prefix}{info.filename}"

        def raw_open(member=info.filename):
            with zipfile.ZipFile(path) as zf:
                return io.BytesIO(zf.read(member))

        with raw_open() as f:
            magic = f.read(8)
        opener = _decompressing_opener(raw_open, magic)
        if opener is None:
            out.append(Skipped(name, f"{path}!{info.filename}", "zstd-compressed; install 'zstandard'", info.file_size))
            continue
        mtime = _dt.datetime(*info.date_time).timestamp()
        out.append(Input(name=name, path=f"{path}!{info.filename}", opener=opener,
                         size=info.compress_size, mtime=mtime))
    return out


def _expand_path(path: Path, name: str, top: bool) -> list[Input | Skipped]:
    p = str(path)
    if path.is_dir():
        out: list[Input | Skipped] = []
        for root, dirs, files in os.walk(p):
            dirs.sort()
            for fn in sorted(files):
                full = Path(root) / fn
                rel = full.relative_to(path).as_posix()
                out.extend(_expand_path(full, f"{name}/{rel}" if name else rel, top=False))
        return out
    if not path.exists():
        raise TracekitError(f"{p}: no such file or folder")
    try:
        magic = _magic(p)
    except OSError as e:
        return [Skipped(name or path.name, p, f"cannot read: {e.strerror}")]
    kind = _is_archive(p, magic)
    if kind is not None:
        prefix = "" if top else f"{name}/"
        return _tar_inputs(p, prefix) if kind == "tar" else _zip_inputs(p, prefix)
    return [_file_input(p, name or path.name)]


def expand(paths: Any) -> list[Input | Skipped]:
    """Inputs for a path, a folder, an archive, or a list of them (names per DESIGN.md)."""
    if isinstance(paths, (str, os.PathLike)):
        items = [Path(paths)]
    elif isinstance(paths, Iterable):
        items = [Path(p) for p in paths]
    else:
        raise TracekitError(f"tk.load takes a path, a folder, an archive or a list of them, not {type(paths).__name__}")
    if not items:
        raise TracekitError("tk.load was given an empty list of paths")
    out: list[Input | Skipped] = []
    if len(items) == 1:
        p = items[0]
        out = _expand_path(p, "" if p.is_dir() else p.name, top=True)
    else:
        parents = [str(p.resolve().parent if not p.is_dir() else p.resolve()) for p in items]
        common = Path(os.path.commonpath(parents)) if parents else Path(".")
        for p in items:
            rel = p.resolve().relative_to(common).as_posix() if p.resolve() != common else p.name
            out.extend(_expand_path(p, rel, top=False) if p.is_dir() else _expand_path(p, rel, top=True) if _is_archive(str(p), _magic(str(p))) else [_file_input(str(p), rel)])
    seen: dict[str, int] = {}
    for inp in out:  # keep names unique: a/b.log twice (two archives) becomes b.log, b.log#2
        k = inp.name
        seen[k] = seen.get(k, 0) + 1
        if seen[k] > 1:
            inp.name = f"{k}#{seen[k]}"
    return out


def display_name(name: str) -> str:
    return _strip_comp(name)
