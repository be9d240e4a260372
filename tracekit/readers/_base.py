"""The reader contract: what a reader is given, and what it must return.

A reader is one module in ``tracekit/readers/`` that calls :func:`register` with a
:class:`Reader`: a name, a one-line description, a ``sniff(head, name)`` function returning a
confidence in [0, 1] from the first bytes of the (decompressed) content, a
``read(inp, **options)`` function returning a :class:`ReadResult`, and the options it takes.
Nothing else needs to change to add a format: the registry imports every module here.

Accounting rule (DESIGN.md): every input record is counted once::

    records == emitted + merged + metadata + rejected

``emitted`` counts *records* that became a row (one record may make several rows, e.g. a
Chrome ``C`` event with two series; ``rows`` counts those). The loader checks the sum.

Example of a minimal reader::

    from tracekit.readers._base import Reader, ReadResult, register, split_lines

    def _sniff(head: bytes, name: str) -> float:
        return 0.9 if head.startswith(b"HELLO ") else 0.0

    def _read(inp, **opts):
        lines = split_lines(inp)
        ...
        return ReadResult(events=table, records=len(lines), emitted=len(lines))

    register(Reader("hello", "HELLO lines", _sniff, _read))
"""

from __future__ import annotations

import io
import lzma
import mmap
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import OptionError, ParseError
from ..schema import REJECT_SCHEMA

# what a decompressor raises on corrupt input (gzip.BadGzipFile is an OSError; zstd raises
# zstandard.ZstdError, an Exception subclass, so it is caught by name below)
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)
try:
    import zstandard as _zstd

    _DECOMPRESS_ERRORS += (_zstd.ZstdError,)
except ImportError:  # optional
    pass

RAW_MAX = 1000  # characters of a rejected record kept in the rejects table
HEAD_BYTES = 65536


@dataclass
class Input:
    """One input to read: a file, or a member of an archive, decompressed on the fly.

    ``name`` is the source name (path relative to what was given to ``tk.load``); ``path`` is
    what messages show (``bundle.tar.gz!var/log/syslog`` for archive members).
    """

    name: str
    path: str
    opener: Callable[[], BinaryIO]
    size: int | None = None  # bytes on disk (compressed size for .gz)
    mtime: float | None = None
    fs_path: str | None = None  # a plain, uncompressed file on disk (can be memory-mapped)
    _buffer: pa.Buffer | None = field(default=None, repr=False)
    _head: bytes | None = field(default=None, repr=False)

    def open(self) -> BinaryIO:
        """A fresh binary stream of the decompressed content."""
        return self.opener()

    def head(self, n: int = HEAD_BYTES) -> bytes:
        """The first ``n`` decompressed bytes (for sniffing)."""
        if self._head is None or len(self._head) < n:
            try:
                with self.open() as f:
                    self._head = f.read(n)
            except _DECOMPRESS_ERRORS as e:
                raise ParseError(f"cannot read (corrupt or truncated compressed data: {e})", file=self.path) from None
        return self._head[:n]

    def buffer(self) -> pa.Buffer:
        """The whole decompressed content as an Arrow buffer (memory-mapped for plain files)."""
        if self._buffer is None:
            try:
                if self.fs_path is not None and os.path.getsize(self.fs_path) > 0:
                    with open(self.fs_path, "rb") as f:
                        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                    self._buffer = pa.py_buffer(mm)
                else:
                    with self.open() as f:
                        self._buffer = pa.py_buffer(f.read())
            except _DECOMPRESS_ERRORS as e:
                raise ParseError(f"cannot read (corrupt or truncated compressed data: {e})", file=self.path) from None
        return self._buffer

    def release(self) -> None:
        self._buffer = None


@dataclass
class ReadResult:
    """What a reader returns. ``events`` may hold a subset of the canonical columns."""

    events: pa.Table | dict[str, Any]
    records: int
    emitted: int
    merged: int = 0
    metadata: int = 0
    rejects: pa.Table | None = None
    #: source metadata: ``clock`` (one of schema.CLOCKS), ``host``, ``assumed`` (dict of every
    #: value the reader assumed, e.g. year/tz/date), ``anchor_ns`` + ``anchor`` (a certain base
    #: time applied at load), ``boot_id``, ``note``, and anything format-specific (``extra``).
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reader:
    """A registered format. ``options`` maps option name → one-line doc (with the default)."""

    name: str
    description: str
    sniff: Callable[[bytes, str], float]
    read: Callable[..., ReadResult]
    options: dict[str, str] = field(default_factory=dict)
    extensions: tuple[str, ...] = ()
    #: True when logrotate sets (``syslog``, ``syslog.1``, ``syslog.2.gz``) of this format are
    #: read as one source, oldest first (the loader joins them into one Input).
    rotated: bool = False

    def check_options(self, opts: dict[str, Any], where: str) -> None:
        unknown = set(opts) - set(self.options)
        if unknown:
            takes = ", ".join(sorted(self.options)) or "no options"
            raise OptionError(
                f"{where}: reader {self.name!r} does not take {sorted(unknown)}; it takes: {takes}"
            )


_REGISTRY: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
    """Add a reader to the registry (a later registration of the same name replaces it)."""
    _REGISTRY[reader.name] = reader
    return reader


# --------------------------------------------------------------------------- lines


@dataclass
class Lines:
    """The lines of a text input as Arrow columns (no Python object per line).

    ``text`` keeps each line's terminator (``\\n``, ``\\r\\n``; the last line may have
    none): slicing it off would copy the whole input, and JSON parsers and anchored regexes
    (``...\\r?\\n?$``) do not mind it. :meth:`stripped` gives the lines without it.
    ``line`` is 1-based; ``offset`` is the byte offset of the line's start. Lines that are not
    valid UTF-8 are decoded with backslash escapes (``\\xff``) so no byte is lost; their
    numbers are in ``bad_utf8``.
    """

    text: pa.Array  # large_string, terminators kept
    line: np.ndarray  # int64, 1-based
    offset: np.ndarray  # int64
    bad_utf8: np.ndarray  # int64 line numbers
    nbytes: int

    def __len__(self) -> int:
        return len(self.text)

    def stripped(self) -> pa.Array:
        """The lines without their ``\\r\\n`` / ``\\n`` terminator."""
        return pc.utf8_rtrim(self.text, characters="\r\n")

    def blank(self) -> np.ndarray:
        """Boolean mask of lines that hold only white space."""
        return np.asarray(
            pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(self.text)), 0).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )


def _newlines(buf: np.ndarray) -> np.ndarray:
    """Positions of b'\\n' in a uint8 array, scanned in cache-sized chunks."""
    step = 1 << 22
    if len(buf) <= step:
        return np.flatnonzero(buf == 10)
    parts = [np.flatnonzero(buf[i : i + step] == 10) + i for i in range(0, len(buf), step)]
    return np.concatenate(parts)


def split_lines(inp: Input | bytes | pa.Buffer, start_line: int = 1, base_offset: int = 0,
                bom: bool = True) -> Lines:
    """Split an input's bytes into a :class:`Lines` column set (vectorised, zero-copy).

    Example::

        >>> ls = split_lines(b"a\\nb\\r\\n\\xffc")
        >>> ls.stripped().to_pylist(), ls.line.tolist(), ls.bad_utf8.tolist()
        (['a', 'b', '\\\\xffc'], [1, 2, 3], [3])
    """
    if isinstance(inp, Input):
        buf = inp.buffer()
    elif isinstance(inp, bytes):
        buf = pa.py_buffer(inp)  # zero-copy: the Arrow buffer keeps the bytes alive
    elif isinstance(inp, (bytearray, memoryview)):
        buf = pa.py_buffer(bytes(inp))
    else:
        buf = inp
    data = np.frombuffer(buf, dtype=np.uint8)
    n = len(data)
    nl = _newlines(data)
    starts = np.empty(len(nl) + 1, dtype=np.int64)
    # a UTF-8 byte-order mark is not part of the first line
    # (``bom=False`` for a block that does not start the file)
    starts[0] = 3 if bom and n >= 3 and data[0] == 0xEF and data[1] == 0xBB and data[2] == 0xBF else 0
    starts[1:] = nl + 1
    if starts[-1] >= n:  # ends with a newline (or empty): no partial last line
        starts = starts[:-1]
    count = len(starts)
    offs = np.empty(count + 1, dtype=np.int64)
    offs[:count] = starts
    offs[count] = n
    raw = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), count, [None, pa.py_buffer(offs), buf]
    )
    text, bad = _decode(raw, start_line)
    return Lines(
        text=text,
        line=np.arange(start_line, start_line + count, dtype=np.int64),
        offset=starts + base_offset,
        bad_utf8=bad,
        nbytes=n,
    )


def _decode(raw: pa.Array, start_line: int, errors: str = "backslashreplace") -> tuple[pa.Array, np.ndarray]:
    """Binary → string; blocks with invalid UTF-8 are decoded value by value with ``errors``
    (a codecs error handler: backslash escapes by default); returns the text and the numbers
    (``start_line`` + index) of the values that needed it."""
    try:
        return raw.cast(pa.large_string()), np.zeros(0, dtype=np.int64)
    except pa.ArrowInvalid:
        pass
    block = 65536
    out = []
    bad: list[int] = []
    for b0 in range(0, len(raw), block):
        chunk = raw.slice(b0, block)
        try:
            out.append(chunk.cast(pa.large_string()))
        except pa.ArrowInvalid:
            vals = []
            for i, v in enumerate(chunk.to_pylist()):
                if v is None:
                    vals.append(None)
                    continue
                try:
                    vals.append(v.decode("utf-8"))
                except UnicodeDecodeError:
                    vals.append(v.decode("utf-8", errors=errors))
                    bad.append(start_line + b0 + i)
            out.append(pa.array(vals, pa.large_string()))
    arr = pa.concat_arrays(out) if out else pa.array([], pa.large_string())
    return arr, np.array(bad, dtype=np.int64)


# --------------------------------------------------------------------------- rejects


def make_rejects(
    source: str,
    file: str,
    line: Any,
    offset: Any,
    reason: Any,
    raw: Any,
) -> pa.Table:
    """Build a rejects table; ``raw`` is truncated to :data:`RAW_MAX` characters.

    Every argument may be a scalar (broadcast) or a column of the same length as ``line``.
    """
    n = len(line) if not np.isscalar(line) else 1

    def col(v: Any, typ: pa.DataType) -> pa.Array:
        if isinstance(v, (pa.Array, pa.ChunkedArray)):
            return v.cast(typ)
        if isinstance(v, np.ndarray):
            return pa.array(v, typ)
        if isinstance(v, list):
            return pa.array(v, typ)
        return pa.repeat(pa.scalar(v, typ), n)

    raw_col = col(raw, pa.string()) if not isinstance(raw, pa.Array) else raw.cast(pa.large_string())
    raw_col = pc.utf8_slice_codeunits(raw_col, 0, RAW_MAX).cast(pa.string())
    return pa.Table.from_arrays(
        [
            col(source, pa.string()),
            col(file, pa.string()),
            col(line, pa.int64()),
            col(offset, pa.int64()),
            col(reason, pa.string()),
            raw_col,
        ],
        schema=REJECT_SCHEMA,
    )


def empty_rejects() -> pa.Table:
    return REJECT_SCHEMA.empty_table()


def text_stream(inp: Input) -> io.TextIOBase:
    """A text stream over the input (for small, header-like reads only)."""
    return io.TextIOWrapper(inp.open(), encoding="utf-8", errors="backslashreplace")
