"""Shared helpers for the span readers (OTLP JSON, Jaeger JSON, Zipkin v2 JSON).

Everything here works on whole Arrow columns: nested JSON is parsed by pyarrow's or DuckDB's
JSON readers into list/struct columns, flattened with ``list_flatten``/``list_parent_indices``,
and per-row ``attrs`` maps are assembled from several entry pools (a span's own attributes,
its resource's, its scope's, fields of the span) with one numpy gather, never a Python object
per span. Python only touches rare values (nested OTLP ``arrayValue``/``kvlistValue``, base64
ids, rejected records).

Example::

    >>> import pyarrow as pa
    >>> m = build_map(2, [Part(np.array([0, 1, 1]), pa.array(["k"]), pa.array(["v"]))])
    >>> m.to_pylist()
    [[], [('k', 'v')]]
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._pages import _PR_GET_THP_DISABLE, _PR_SET_THP_DISABLE, _PRCTL, small_pages  # noqa: F401 (re-exported)
from ..schema import ATTRS_TYPE, EVENT_SCHEMA, conform
from ._base import Input, make_rejects, split_lines

_DIGITS = r"^\s*-?\d{1,19}\s*$"


# --------------------------------------------------------------------------- column helpers


def arr(a: Any) -> pa.Array:
    """A ChunkedArray (or Array) as one Array."""
    if isinstance(a, pa.ChunkedArray):
        return a.chunk(0) if a.num_chunks == 1 else a.combine_chunks()
    return a


def field(a: pa.Array | pa.ChunkedArray, name: str, n: int | None = None) -> pa.Array | pa.ChunkedArray:
    """Child ``name`` of a struct array (nulls where the parent is null, or absent).

    Of a chunked parent (pieces parsed in parallel) the child stays chunked: the helpers here
    work on chunks, so the parsed columns are never copied just to join them."""
    if not pa.types.is_struct(a.type) or a.type.get_field_index(name) < 0:
        return pa.nulls(len(a) if n is None else n, pa.string())
    c = pc.struct_field(a, name)
    return c if isinstance(c, pa.ChunkedArray) and c.num_chunks > 1 else arr(c)


def as_str(a: pa.Array) -> pa.Array:
    """Numbers/booleans to their text, strings unchanged (``large_string`` → ``string``)."""
    if isinstance(a, pa.ChunkedArray) and a.num_chunks == 1:
        a = a.chunk(0)
    if pa.types.is_string(a.type):
        return a
    if pa.types.is_null(a.type):
        return a.cast(pa.string())
    if pa.types.is_dictionary(a.type):
        a = arr(a).dictionary_decode()
    return a.cast(pa.string())


def as_int(a: pa.Array) -> pa.Array:
    """Integers from ints or digit strings (null where not an integer that fits int64)."""
    if pa.types.is_integer(a.type):
        return a.cast(pa.int64())
    s = as_str(a)
    try:  # the common case: every value is a clean integer
        return s.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    ok = pc.fill_null(pc.match_substring_regex(s, _DIGITS), False)
    s = pc.if_else(ok, pc.utf8_trim_whitespace(s), pa.scalar(None, pa.string()))
    try:
        return s.cast(pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # 19 digits beyond int64
        vals = [int(v) if v is not None and -(2**63) <= int(v) < 2**63 else None for v in s.to_pylist()]
        return pa.array(vals, pa.int64())


def np_int(a: pa.Array, fill: int = 0) -> np.ndarray:
    """An int64 Arrow column as numpy, nulls → ``fill``."""
    return np.asarray(pc.fill_null(a, fill).to_numpy(zero_copy_only=False), dtype=np.int64)


def valid(a: pa.Array) -> np.ndarray:
    return np.asarray(pc.is_valid(a).to_numpy(zero_copy_only=False), dtype=bool)


def nonempty(a: pa.Array) -> np.ndarray:
    """Not null and not the empty string."""
    s = as_str(a)
    return np.asarray(pc.fill_null(pc.greater(pc.utf8_length(s), 0), False).to_numpy(zero_copy_only=False), dtype=bool)


def flatten(lists: pa.Array | pa.ChunkedArray) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """Flatten a list column: (the items, each item's parent row index). Chunked lists give
    chunked items (no copy)."""
    if isinstance(lists, pa.ChunkedArray) and lists.num_chunks > 1 and (
            pa.types.is_list(lists.type) or pa.types.is_large_list(lists.type)):
        items, parents, base = [], [], 0
        for c in lists.chunks:
            it, par = flatten(c)
            items.append(it)
            parents.append(par + base)
            base += len(c)
        return pa.chunked_array(items, lists.type.value_type), np.concatenate(parents)
    lists = arr(lists)
    t = lists.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t)):  # absent: all null
        return pa.array([], pa.null()), np.zeros(0, np.int64)
    if pa.types.is_map(lists.type):  # entries as struct<key, value>
        off = np.asarray(lists.offsets, dtype=np.int64)
        lo, hi = int(off[0]), int(off[-1])
        items = pa.StructArray.from_arrays([lists.keys.slice(lo, hi - lo), lists.items.slice(lo, hi - lo)],
                                           ["key", "value"])
        return items, np.repeat(np.arange(len(lists), dtype=np.int64), np.diff(off))
    items = arr(pc.list_flatten(lists))
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    return items, parents


def offsets_from_parents(parents: np.ndarray, n: int) -> np.ndarray:
    """Group offsets (len n+1) for items whose (sorted) parent index is ``parents``."""
    counts = np.bincount(parents, minlength=n) if len(parents) else np.zeros(n, np.int64)
    off = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=off[1:])
    return off


def null_where(a: pa.Array, mask: np.ndarray) -> pa.Array:
    """``a`` with nulls where ``mask`` is true."""
    if not mask.any():
        return a
    return pc.if_else(pa.array(mask), pa.scalar(None, a.type), a)


def choose(mask: np.ndarray, yes: str | None, no: str | None) -> pa.Array:
    """A string column: ``yes`` where ``mask`` is true, else ``no`` (None: null)."""
    return pc.if_else(pa.array(mask, pa.bool_()), pa.scalar(yes, pa.string()), pa.scalar(no, pa.string()))


def lower_ids(a: pa.Array) -> pa.Array:
    """Ids as given, lower-cased; the empty string is no id (null).

    One array, not chunked: the ids are taken again for a span's extra rows and for the time
    order, and a chunked column would be joined anew by every take. Ids are copied once (the
    join); ids that are lower case already (the usual hex) are not copied again to lower them,
    and empty ids become nulls through a new validity bitmap over the same bytes."""
    s = arr(as_str(a))
    if len(s) == 0:
        return s
    empty = pc.fill_null(pc.equal(pc.binary_length(s), 0), False)
    if pc.any(empty).as_py():
        s = _null_where_empty(s, empty)
    return pc.ascii_lower(s) if _has_upper(s) else s


def _null_where_empty(s: pa.Array, empty: pa.Array) -> pa.Array:
    """``s`` with nulls where ``empty`` (the empty strings): same offsets and bytes."""
    keep = pc.and_(pc.is_valid(s), pc.invert(empty))
    bufs = s.buffers()
    if s.offset or keep.offset or bufs[2] is None:
        return pc.if_else(empty, pa.scalar(None, pa.string()), s)
    return pa.StringArray.from_buffers(len(s), bufs[1], bufs[2], keep.buffers()[1])


_SCAN = 1 << 20  # bytes checked per step (a small scratch that stays in cache)


def _has_upper(s: pa.Array) -> bool:
    """Whether any string of ``s`` (a ``string`` array) holds an ASCII capital letter."""
    bufs = s.buffers()
    if bufs[2] is None:
        return False
    off = np.frombuffer(bufs[1], np.int32, len(s) + 1, s.offset * 4)
    lo, hi = int(off[0]), int(off[-1])
    data = np.frombuffer(bufs[2], np.uint8, hi - lo, lo)
    scratch = np.empty(min(_SCAN, len(data)), np.uint8)
    for a in range(0, len(data), _SCAN):
        part = data[a:a + _SCAN]
        d = scratch[:len(part)]
        np.subtract(part, 65, out=d)  # A..Z → 0..25, everything else wraps above
        if np.count_nonzero(d < 26):
            return True
    return False


_B64_ID = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def hex_ids(a: pa.Array) -> tuple[pa.Array, int]:
    """OTLP ids to lower-case hex. OTLP JSON writes hex, but some producers write the proto
    bytes as base64 (``AAAAAAAAAAEAAAAAAAAAAA==``): those are detected (base64 of 8 or 16
    bytes is 12 or 24 characters, never the 16 or 32 of hex) and converted. Returns the ids
    and how many were converted.
    """
    s = lower_ids(a)
    raw = as_str(a)
    ln = pc.utf8_length(raw)
    odd = pc.fill_null(pc.and_(pc.not_equal(ln, 16), pc.not_equal(ln, 32)), False)
    odd = pc.and_(odd, pc.greater(pc.fill_null(ln, 0), 0))
    idx = np.flatnonzero(np.asarray(odd.to_numpy(zero_copy_only=False), dtype=bool))
    if not len(idx):
        return s, 0
    vals = raw.take(pa.array(idx)).to_pylist()
    out: list[str | None] = []
    conv = 0
    for v in vals:
        h = None
        if v and _B64_ID.match(v) and not _HEX.match(v):
            try:
                b = base64.b64decode(v.replace("-", "+").replace("_", "/") + "=" * (-len(v) % 4), validate=True)
                if len(b) in (8, 16):
                    h = b.hex()
            except ValueError:
                h = None
        if h is None:
            out.append(v.lower() if v else None)
        else:
            conv += 1
            out.append(h)
    s = pc.replace_with_mask(s, pa.array(np.isin(np.arange(len(s)), idx)), pa.array(out, pa.string()))
    return s, conv


# --------------------------------------------------------------------------- attrs maps


@dataclass
class Part:
    """Entries for an attrs map: group ``g`` owns ``keys/vals[offsets[g]:offsets[g+1]]``;
    row ``i`` takes group ``rows[i]`` (``rows=None``: row i is group i; -1: none)."""

    offsets: np.ndarray
    keys: pa.Array | str  # a str: the one key of every entry (not materialised)
    vals: pa.Array
    rows: np.ndarray | None = None


def scalar_part(key: str, values: pa.Array, present: np.ndarray | None = None) -> Part:
    """One entry ``key → value`` per row, where ``present`` (default: value not null)."""
    values = as_str(values)
    if present is None:
        present = valid(values)
    idx = np.flatnonzero(present)
    off = np.zeros(len(values) + 1, np.int64)
    np.cumsum(present.astype(np.int64), out=off[1:])
    vals = values.take(pa.array(idx)) if len(idx) != len(values) else values
    vals = pc.fill_null(vals, "null")
    return Part(off, key, vals)


_PARALLEL_MIN = 1 << 16  # rows below which a second thread is not worth starting


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


@contextmanager
def _pool(rows: int = _PARALLEL_MIN) -> Iterator[ThreadPoolExecutor | None]:
    """Helper threads for work that can overlap (None: run it inline). The threads live on,
    so their memory is reused from one file to the next; a task never waits for another."""
    global _EXECUTOR
    if rows < _PARALLEL_MIN or (os.cpu_count() or 1) < 2:
        yield None
        return
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(2, thread_name_prefix="tracekit-spans")
    yield _EXECUTOR


def build_map(n: int, parts: list[Part]) -> pa.Array:
    """Assemble ``n`` attrs maps (``map<string,string>``) from entry pools, one gather."""
    if not parts:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()),
                                       pa.array([], pa.string())).cast(ATTRS_TYPE)
    parts = [p for p in parts if len(p.vals)] or parts[:1]
    total_pool = sum(len(p.vals) for p in parts)
    it = np.int32 if total_pool < 2**31 - 1 else np.int64
    starts = np.zeros((n, len(parts)), it)  # row-major: row i's segments, part by part
    lens = np.zeros((n, len(parts)), it)
    base = 0
    keys = []
    vals = []
    for j, p in enumerate(parts):
        off = p.offsets.astype(it, copy=False)
        if len(off) < 2 or n == 0:
            pass
        elif p.rows is None:
            np.add(off[:-1], base, out=starts[:, j])
            np.subtract(off[1:], off[:-1], out=lens[:, j])
        else:
            has = p.rows >= 0
            g = np.where(has, p.rows, 0)
            starts[:, j] = np.where(has, off[:-1][g] + base, 0)
            lens[:, j] = np.where(has, (off[1:] - off[:-1])[g], 0)
        base += len(p.vals)
        if isinstance(p.keys, str):
            keys.append((pa.array([p.keys], pa.string()), None))  # one key: index 0 for every entry
        else:
            k = as_str(p.keys)
            if k.null_count:  # a map key cannot be null: an attribute without a key gets the empty one
                k = pc.fill_null(k, "")
            keys.append(_encode(k))
        v = pc.fill_null(as_str(p.vals), "null")
        vals.extend(v.chunks if isinstance(v, pa.ChunkedArray) else [v])
    s = starts.ravel()
    ln = lens.ravel()
    row_tot = lens.sum(axis=1, dtype=np.int64)
    del lens
    total = int(row_tot.sum())
    ot = np.int32 if total < 2**31 - 1 else np.int64
    seg = np.zeros(len(ln), ot)
    if len(ln) > 1:
        np.cumsum(ln[:-1], out=seg[1:])
    np.subtract(s, seg, out=seg)
    del s, starts
    idx = _ranges(seg, ln, total)
    del seg, ln
    # keys repeat: gather small dictionary indices, then decode from the (tiny) dictionaries
    kdict = pa.concat_arrays([d for d, _ in keys])
    kidx = np.empty(base, np.int32)  # each pool entry's key, in the joined dictionary
    at = kb = 0
    for (d, i), m in zip(keys, (len(p.vals) for p in parts)):
        if i is None:
            kidx[at:at + m] = kb
        else:
            np.add(i, kb, out=kidx[at:at + m])
        at += m
        kb += len(d)
    pidx = pa.array(idx)
    del idx
    # the two gathers are independent and Arrow releases the GIL: keys on a second core
    with _pool(total) as ex:
        kfut = ex.submit(_gather_keys, kdict, kidx, pidx) if ex else None
        vtab = pa.concat_arrays(vals) if vals else pa.array([], pa.string())
        vout = vtab.take(pidx)
        del vtab
        ktab = kfut.result() if kfut else _gather_keys(kdict, kidx, pidx)
    del kidx, pidx
    moff = np.zeros(n + 1, np.int32)
    np.cumsum(row_tot, out=moff[1:])
    out = pa.MapArray.from_arrays(pa.array(moff), ktab, vout)
    return out if out.type.equals(ATTRS_TYPE) else out.cast(ATTRS_TYPE)


def _ranges(shift: np.ndarray, lens: np.ndarray, total: int) -> np.ndarray:
    """Entry ``e`` of segment ``k`` (segments of ``lens`` entries, one after another) → ``e +
    shift[k]``: ``np.repeat(shift, lens) + arange(total)``, the arange added in steps of
    :data:`_SCAN` (a small scratch, not a second array of ``total`` entries)."""
    out = np.repeat(shift, lens)
    step = np.arange(min(_SCAN, total), dtype=out.dtype)
    for a in range(0, total, _SCAN):
        part = out[a:a + _SCAN]
        part += step[:len(part)]
        part += a
    return out


def _encode(keys: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Keys as (dictionary, int32 index per key). Chunked keys (pieces parsed in parallel) are
    encoded chunk by chunk against one dictionary, not joined into one copy first."""
    enc = pc.dictionary_encode(keys)
    if isinstance(enc, pa.ChunkedArray):
        chunks = enc.chunks
        if not chunks:
            return pa.array([], pa.string()), np.zeros(0, np.int32)
        d = chunks[0].dictionary
        if all(c.dictionary is d or c.dictionary.equals(d) for c in chunks[1:]):
            return d, np.concatenate([np.asarray(c.indices.to_numpy(zero_copy_only=False), np.int32)
                                      for c in chunks])
        enc = pc.dictionary_encode(arr(keys))
    return enc.dictionary, np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int32)


def _gather_keys(kdict: pa.Array, kidx: np.ndarray, idx: pa.Array) -> pa.Array:
    return kdict.take(pa.array(kidx[idx.to_numpy()]))


@dataclass
class Kind:
    """Rows of one kind for :func:`build_rows`: canonical columns over ``n`` records (numpy or
    Arrow columns of length ``n``, or scalars; ``ts_src`` required, no ``attrs``), the attrs
    ``parts`` keyed by record, and the records that become rows (``keep``; None: all)."""

    cols: dict[str, Any]
    n: int
    parts: list[Part]
    keep: np.ndarray | None = None


def build_rows(kinds: list[Kind]) -> pa.Table:
    """The rows of several kinds as one canonical table in ``ts_src`` order.

    The order is that of a stable sort of the kinds' rows one kind after another — the order
    ``tk.load`` sorts them into anyway, so the loader finds the rows sorted and need not move
    them (a file in time order stays in time order). The attrs maps, by far the biggest
    column, are gathered once, straight into that order.
    """
    tabs, tss, ms = [], [], []
    for k in kinds:
        cols = {c: v for c, v in k.cols.items() if c != "attrs"}
        if k.keep is not None:
            cols = take_rows(cols, k.keep, k.n)
        m = k.n if k.keep is None else len(k.keep)
        ts = cols["ts_src"]
        tss.append(ts.astype(np.int64, copy=False) if isinstance(ts, np.ndarray) else np_int(ts))
        tabs.append(conform(cols, m))
        ms.append(m)
    ts = np.concatenate(tss) if tss else np.zeros(0, np.int64)
    total = len(ts)
    order = None if total < 2 or bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")
    del ts, tss
    if len(kinds) == 1 and order is None:  # one kind in its own order: parts as they are
        k = kinds[0]
        parts = k.parts if k.keep is None else [_compose(p, k.keep) for p in k.parts]
    else:
        kind_id = np.repeat(np.arange(len(kinds), dtype=np.int32), ms)
        local = np.concatenate([np.arange(m, dtype=np.int64) for m in ms]) if ms else np.zeros(0, np.int64)
        if order is not None:
            kind_id, local = kind_id[order], local[order]
        parts = []
        for j, k in enumerate(kinds):
            if not k.parts:
                continue
            mine = kind_id == j
            loc = np.where(mine, local, 0)
            rec = np.where(mine, loc if k.keep is None else (k.keep[loc] if len(k.keep) else loc), -1)
            parts.extend(_compose(p, rec) for p in k.parts)
    with _pool(total) as ex:  # the other columns move on another core while the attrs maps are built
        fut = ex.submit(_ordered, tabs, order) if ex else None
        attrs = build_map(total, parts)
        table = fut.result() if fut else _ordered(tabs, order)
    del tabs
    i = EVENT_SCHEMA.get_field_index("attrs")
    return table.set_column(i, EVENT_SCHEMA.field("attrs"), attrs)


def _ordered(tabs: list[pa.Table], order: np.ndarray | None) -> pa.Table:
    table = pa.concat_tables(tabs) if tabs else conform({"ts_src": np.zeros(0, np.int64)})
    return table if order is None else table.take(pa.array(order))


def _compose(p: Part, rec: np.ndarray) -> Part:
    """``p`` for rows that each take record ``rec[i]`` (-1: none)."""
    if p.rows is None:
        return Part(p.offsets, p.keys, p.vals, rec)
    return Part(p.offsets, p.keys, p.vals, np.where(rec >= 0, p.rows[np.maximum(rec, 0)], -1) if len(rec) else rec)


def typed_kv(lists: pa.Array, prefix: str = "") -> tuple[Part, np.ndarray]:
    """Jaeger-style typed tag lists (``[{key, type, value}]``, value already text) → a Part
    keyed by list row, and the parent row of each entry."""
    items, parents = flatten(lists)
    off = offsets_from_parents(parents, len(lists))
    keys = as_str(field(items, "key", len(items)))
    if prefix:
        keys = pc.binary_join_element_wise(pa.scalar(prefix), pc.fill_null(keys, ""), "")
    vals = as_str(field(items, "value", len(items)))
    return Part(off, keys, vals), parents


def lookup(part: Part, key: str, groups: int) -> pa.Array:
    """The value of ``key`` in each group of ``part`` (last one wins; null if absent)."""
    if isinstance(part.keys, str):
        part = Part(part.offsets, pa.repeat(pa.scalar(part.keys), len(part.vals)).cast(pa.string()), part.vals)
    k = as_str(part.keys)
    hit = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(k, key), False).to_numpy(zero_copy_only=False), dtype=bool))
    pos = np.full(groups, -1, np.int64)
    if len(hit):
        owner = np.searchsorted(part.offsets, hit, side="right") - 1
        pos[owner] = hit
    return as_str(part.vals).take(pa.array(pos, mask=pos < 0))


# --------------------------------------------------------------------------- document splitting


@dataclass
class Docs:
    """The JSON documents of an input: one per line (JSON lines), or one for the whole file."""

    text: pa.Array  # string, one per document
    line: np.ndarray  # first line of each document
    offset: np.ndarray  # byte offset of each document
    rejects: pa.Table | None  # documents (lines) that are not valid JSON
    note: str | None = None


def split_documents(inp: Input, kinds: tuple[str, ...] = ("OBJECT", "ARRAY")) -> Docs:
    """Find the JSON documents of an input: the whole file if it is one JSON value (pretty
    printed or not), else one per non-blank line (the collector's file exporter writes one
    request per line). A line that is not valid JSON is a reject; a file that is neither is
    one reject (the whole document) with the parser's message and position.
    """
    import duckdb

    buf = inp.buffer()
    lines = split_lines(buf)
    note = None
    if lines.bad_utf8.size:
        fixed = buf.to_pybytes().decode("utf-8", errors="replace").encode()
        lines = split_lines(fixed)
        buf = pa.py_buffer(fixed)
        note = f"{len(split_lines(inp).bad_utf8)} lines with invalid UTF-8 (bytes replaced by U+FFFD)"
    blank = lines.blank()
    keep = np.flatnonzero(~blank)
    empty = pa.array([], pa.string())
    if not len(keep):
        return Docs(empty, np.zeros(0, np.int64), np.zeros(0, np.int64), None, note)
    text = lines.stripped().take(pa.array(keep)).cast(pa.string())
    kinds_sql = ", ".join(f"'{k}'" for k in kinds)
    con = duckdb.connect()
    try:
        con.register("l", pa.table({"t": text}))
        ok = np.asarray(
            con.sql(f"select CASE WHEN json_valid(t) THEN json_type(t) in ({kinds_sql}) ELSE false END from l")
            .to_arrow_table().column(0).to_numpy(zero_copy_only=False), dtype=bool)
        if ok.all():
            return Docs(text, lines.line[keep], lines.offset[keep], None, note)
        whole = pa.array([buf.to_pybytes().decode("utf-8")], pa.string())
        con.register("w", pa.table({"t": whole}))
        wok = con.sql(f"select CASE WHEN json_valid(t) THEN json_type(t) in ({kinds_sql}) ELSE false END from w").fetchall()[0][0]
    finally:
        con.close()
    if wok:
        if len(buf) <= _STRICT_MAX:  # DuckDB's parser forgives trailing commas: say so
            reason, _ = _json_error(buf.to_pybytes())
            if reason.startswith("invalid JSON"):
                note = "; ".join(x for x in (note, f"read leniently: {reason}") if x)
        return Docs(whole, lines.line[keep[:1]], lines.offset[keep[:1]], None, note)
    if ok[0] and len(keep) > 1:
        bad = np.flatnonzero(~ok)
        rej = make_rejects(inp.name, inp.path, lines.line[keep[bad]], lines.offset[keep[bad]],
                           "not a JSON document (invalid or truncated JSON line)", text.take(pa.array(bad)))
        good = np.flatnonzero(ok)
        return Docs(text.take(pa.array(good)), lines.line[keep[good]], lines.offset[keep[good]], rej, note)
    reason, line = _json_error(buf.to_pybytes())
    rej = make_rejects(inp.name, inp.path, line, lines.offset[keep[0]] if line is None else _line_offset(lines, line),
                       reason, buf.to_pybytes()[:2000].decode("utf-8", errors="replace"))
    return Docs(empty, np.zeros(0, np.int64), np.zeros(0, np.int64), rej, note)


_STRICT_MAX = 32 << 20  # documents up to this size are also checked with a strict parser


def _line_offset(lines: Any, line: int) -> int:
    i = min(max(line - 1, 0), len(lines.offset) - 1)
    return int(lines.offset[i])


def _json_error(data: bytes) -> tuple[str, int]:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as e:
        msg = str(e)
        line = int(getattr(e, "lineno", 1) or 1)
        return f"invalid JSON: {msg}", line
    return "not a JSON object or array of the expected shape", 1


def rejects_for(inp: Input, where: np.ndarray, line: np.ndarray, offset: np.ndarray,
                reason: str, records: pa.Array) -> pa.Table:
    """Reject rows for records (struct values) at positions ``where``; raw = their JSON."""
    raw = []
    for v in records.take(pa.array(where)).to_pylist():
        v = _drop_nulls(v)
        try:
            raw.append(orjson.dumps(v).decode())
        except TypeError:
            raw.append(str(v))
    return make_rejects(inp.name, inp.path, line[where], offset[where], reason, raw)


def _drop_nulls(v: Any) -> Any:
    """Fields the parser filled with null because the record lacks them, removed (raw text)."""
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


def concat_rejects(parts: list[pa.Table | None]) -> pa.Table | None:
    ps = [p for p in parts if p is not None and p.num_rows]
    if not ps:
        return None
    return pa.concat_tables(ps)


def duck_transform(docs: pa.Array, expr: str, structure: str) -> pa.Array:
    """Parse each document with DuckDB's ``json_transform(expr, structure)`` (``expr`` may
    refer to the document as ``doc``); returns one struct per document."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("d", pa.table({"doc": docs, "i": np.arange(len(docs), dtype=np.int64)}))
        s = structure.replace("'", "''")
        t = con.sql(f"select json_transform({expr}, '{s}') as j from d order by i").to_arrow_table()
    finally:
        con.close()
    return arr(t.column("j"))


def ns_from_us(a: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Whole microseconds (ints or digit strings) → (int64 ns, ok mask).

    Example::

        >>> ns, ok = ns_from_us(pa.array(["5", None]))
        >>> ns.tolist(), ok.tolist()
        ([5000, 0], [True, False])
    """
    i = as_int(a)
    ok = valid(i)
    v = np_int(i)
    ok &= np.abs(v) < 2**63 // 1000
    return np.where(ok, v * 1000, 0), ok


def json_text(v: Any) -> str:
    """Compact JSON text of a Python value (for attrs)."""
    return orjson.dumps(v).decode()






def release_memory() -> None:
    """Hand freed memory back to the OS after a big read (Arrow's pool), so that the next
    file, or the loader's concatenation, does not stack on top of pages nobody uses any more.

    The C heap numpy's temporaries come from is not trimmed: the next file reuses those pages
    (trimming them made it fault ~30k fresh pages again on the 1M-span workload, while the
    peak RSS stayed the same)."""
    pa.default_memory_pool().release_unused()


def take_rows(cols: dict[str, Any], idx: np.ndarray, n: int = -1) -> dict[str, Any]:
    """Rows ``idx`` of every column (``n``: the row count; all rows in order → no copy).

    Numpy and Arrow columns are taken; scalars (broadcast by ``conform``) pass through.
    """
    if len(idx) == n:
        return cols
    ix = pa.array(idx)
    out = {}
    for k, v in cols.items():
        if isinstance(v, np.ndarray):
            out[k] = v[idx]
        elif isinstance(v, (pa.Array, pa.ChunkedArray)):
            out[k] = v.take(ix)
        else:
            out[k] = v
    return out
