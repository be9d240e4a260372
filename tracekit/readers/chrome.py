"""Chrome / Perfetto trace-event JSON (``chrome://tracing``, Perfetto, PyTorch/Kineto, DevTools).

Both forms are read: the object form ``{"traceEvents": [...], ...}`` and the bare array
``[...]``, including an array cut short without ``]`` or ending in a trailing comma (the
format allows both). Every array element is a *record*::

    records == emitted + merged + metadata + rejected

Phases (``ph``) and what they become:

* ``X`` → ``span`` with ``dur``. ``B``/``E`` are matched per (pid, tid) in (ts, element
  order), last-in first-out, regardless of name → one ``span`` row at the ``B`` (the ``E`` is
  *merged*; ``line_end`` is the ``E``'s line; an ``E`` whose name differs from its ``B`` leaves
  it in attrs ``tk.end_name``; ``E`` args that differ from the ``B``'s, as JSON, in ``tk.end_args``). A ``B`` never closed is
  a ``span`` with null ``dur`` and ``tk.unmatched="B"``; an ``E`` with nothing open is an
  ``instant`` with ``tk.unmatched="E"`` — never dropped.
* ``b``/``e`` (nestable async) are matched the same way per (cat, id / id2, scope, name — plus
  pid for ``id2.local``); legacy ``S``/``F`` per (cat, name, id). Unmatched ones are kept as
  above (``tk.unmatched`` = ``b``/``e``/``S``/``F``). ``n``, ``T``, ``p`` (async instants and
  steps) are ``instant`` rows of their own, so each keeps its own time (not merged).
* ``i``/``I`` → ``instant`` (the scope ``s`` stays in attrs). ``R``, ``O``/``N``/``D``
  (object snapshots), ``(``/``)``, ``c``, ``V``/``v`` and unknown phases → ``marker``;
  ``P`` → ``sample``.
* ``C`` → ``counter``: one row per series (per key of ``args``), ``name`` = the counter name,
  the series key in attrs ``tk.series``, ``value`` as float (a non-numeric value stays as text
  in ``tk.value``). A ``C`` event with no series is one row with null ``value``.
* ``s``/``t``/``f`` → ``flow`` rows with ``flow_id`` = ``id`` and ``flow_dir`` out/step/in.
  Flow v2: any event with ``bind_id`` (or ``id``) and ``flow_in``/``flow_out`` gets
  ``flow_id``/``flow_dir`` (out, in, or step when both).
* ``M`` → *metadata*, no row: ``process_name`` / ``thread_name`` are applied to every row of
  that pid / (pid, tid) as attrs ``tk.process_name`` / ``tk.thread_name`` (reader-made keys);
  all names are also in ``meta["extra"]["processes"|"threads"]``.
* An element that is not a JSON object, has no ``ph``, or (except ``M``) no readable ``ts`` is a
  reject.

Columns: ``name``, ``category`` (``cat``), ``pid``/``tid`` (non-numeric ids stay in attrs
``pid``/``tid``), ``dur``, ``offset`` = the element's index in the array, ``line`` = the line
of its opening brace. ``attrs``: every other top-level key verbatim (``ph``, ``id``, ``s``,
``tts``, ``sf``, …, encoded as in :mod:`tracekit.schema`), and ``args`` flattened *one level*
with the prefix ``args.`` (``args.name``; nested values as compact JSON text). An ``args``
that is not an object stays as ``args``.

Times: ``ts``/``dur`` are µs whatever ``displayTimeUnit`` says (recorded in
``meta["extra"]``); they are read from the number's decimal text, so ``1.1`` µs is exactly
1100 ns and 19-digit values keep every digit. Clock (``meta["clock"]``): ``realtime`` when all
ts are plausible epoch µs (years 2000–2100); ``relative`` with ``anchor_ns`` when the file has
Kineto's ``baseTimeNanoseconds``; otherwise ``monotonic`` (counted from boot or process start:
unaligned). Top-level keys other than ``traceEvents`` (DevTools ``metadata.startTime``,
``otherData``, …) go to ``meta["extra"]`` (large ones only by size).

Vectorised: one chunked numpy pass finds the array's element boundaries outside strings,
counts each element's keys and notes the newlines, while DuckDB's JSON reader parses the whole
array on other threads (a big array as two halves, one thread each) into a struct of the usual
keys plus the ``args`` map, streamed out in Arrow batches; only the elements with other keys are
parsed again, as a map. When DuckDB refuses the array (an element
that is not an object, invalid JSON, invalid UTF-8, a trailing comma, a truncated array), the
elements — zero-copy slices of the input — are parsed one by one instead, so a bad element costs
only its own reject; their UTF-8 is checked only then (DuckDB checks every byte it reads).
Times are read exactly from their text with Arrow kernels (the digits without the dot as one
integer, scaled by the fraction's length). B/E, b/e and S/F are matched with a clamped-depth
trick in numpy; phases, kinds and flow directions are integer codes throughout; attrs keys are
integer codes into one small dictionary until the map is built. The rows come out sorted by
(``ts``, element order), a counter's series together, so ``tk.load`` keeps them in place (no
copy of the table) and ``seq`` numbers them in time order. The build uses the second core for
the independent parts (the dur parse, the rows' largest columns, the attrs keys).

Memory: the mapped input's pages are released as the scan passes them (the few bytes read
again later come back from the page cache), the scan keeps only int32 positions and int8
depths, DuckDB's batches are joined column by column, and the attrs map is gathered last, after
every intermediate is freed; freed memory is handed back to the system (Arrow's pool and the C
heap) between the phases.
"""

from __future__ import annotations

import codecs
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..errors import ParseError
from ._base import Input, Reader, ReadResult, _decode, make_rejects, register
from .jsonl import _PageDropper

_CHUNK = 1 << 22
_WS = b" \t\r\n"
_EPOCH_LO_US = 946684800 * 10**6  # 2000-01-01
_EPOCH_HI_US = 4102444800 * 10**6  # 2100-01-01
_EXTRA_MAX = 65536  # top-level values larger than this (as JSON) are recorded by size only

_DELTA = np.zeros(256, dtype=np.int8)
_DELTA[ord("{")] = _DELTA[ord("[")] = 1
_DELTA[ord("}")] = _DELTA[ord("]")] = -1

_NUM = r"(-?[0-9][0-9.eE+\-]*)"
#: top-level keys read into a struct; all others are found per element and kept in attrs
_FIELDS = ("ph", "name", "cat", "ts", "dur", "pid", "tid", "id", "id2", "s", "scope", "bind_id", "flow_in",
           "flow_out", "tts", "tdur", "sf", "esf", "bp", "cname")
#: of those, kept verbatim in attrs (the others become columns)
_VERBATIM = ("ph", "id", "id2", "s", "scope", "tts", "tdur", "sf", "esf", "bp", "cname")


# --------------------------------------------------------------------------- sniff


def _sniff(head: bytes, name: str) -> float:
    h = head.lstrip(b"\xef\xbb\xbf").lstrip(_WS)
    if h.startswith(b"["):
        rest = h[1:].lstrip(_WS)
        if rest.startswith(b"]"):
            return 0.5
        if rest.startswith(b"{") and re.search(rb'"ph"\s*:\s*"', h[:HEAD_SCAN]):
            return 0.95
        return 0.0
    if h.startswith(b"{"):
        if re.search(rb'"traceEvents"\s*:\s*\[', h):
            return 0.95
        first = h.split(b"\n", 1)[0]
        if re.match(rb'\{\s*"(displayTimeUnit|systemTraceEvents|otherData|schemaVersion)"', h) and not (
            first.rstrip().endswith(b"}") and len(first) < len(h)
        ):
            return 0.6
    return 0.0


HEAD_SCAN = 16384


# --------------------------------------------------------------------------- structure scan


def _real_quotes(buf: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Drop quotes escaped by an odd run of backslashes (positions are global)."""
    if not len(q):
        return q
    prev = q - 1
    cand = np.flatnonzero((prev >= 0) & (buf[np.maximum(prev, 0)] == 92))
    if not len(cand):
        return q
    run = np.zeros(len(cand), dtype=np.int64)
    active = np.arange(len(cand))
    k = 1
    while len(active):
        p = q[cand[active]] - k
        hit = (p >= 0) & (buf[np.maximum(p, 0)] == 92)
        run[active[hit]] += 1
        active = active[hit]
        k += 1
    escaped = cand[(run % 2) == 1]
    keep = np.ones(len(q), dtype=bool)
    keep[escaped] = False
    return q[keep]


def _scan(buf: np.ndarray, max_depth: int = 2, newlines: list[np.ndarray] | None = None,
          done: Any = None, count_colons: bool = False
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, bool, np.ndarray | None]:
    """Structural characters outside strings whose nesting depth before them is ≤ max_depth,
    and the colons one level deeper (one per key of each element).

    String state is the parity of the unescaped quotes before a character: among the structural
    characters, its index minus its index among the non-quotes. Depth is a cumsum over the
    structural characters only. Chunked: memory stays small. Returns (positions, chars,
    depth_before, final depth, ends inside a string, colons_before); positions are int32 below
    2 GiB, depths int8 (clamped at -128: only depths up to max_depth + 1 are kept). With
    ``count_colons`` the deeper colons are counted instead of kept: ``colons_before[i]`` is the
    number of them before character ``i`` (one more entry at the end: all of them); else None.
    The positions of b'\\n' are appended to ``newlines`` chunk by chunk (while the chunk is in
    cache), and ``done(lo, hi)`` is called once bytes ``lo:hi`` are scanned (the mapped input's
    pages may go then).
    """
    n = len(buf)
    pdt = np.int32 if n < 2**31 else np.int64
    parity = 0
    depth = 0
    ncol = 0
    pos_l, ch_l, dep_l, col_l = [], [], [], []
    for s in range(0, n, _CHUNK):
        if done is not None and s:
            done(s - _CHUNK, s)
        b = buf[s : s + _CHUNK]
        if newlines is not None:
            newlines.append(np.flatnonzero(b == 10) + s)
        im = (b == 34) | (b == 44) | (b == 123) | (b == 125) | (b == 91) | (b == 93) | (b == 58)
        ip = np.flatnonzero(im)
        if not len(ip):
            continue
        c = b[ip]
        isq = c == 34
        escaped = False
        # rare: quotes escaped by an odd run of backslashes are not quotes (the run may start
        # in the chunk before)
        if (b == 92).any() or (s and buf[s - 1] == 92):
            qi = np.flatnonzero(isq)
            real = _real_quotes(buf, ip[qi] + s) - s
            if len(real) != len(qi):
                escaped = True
                isq = np.zeros(len(ip), dtype=bool)
                isq[np.searchsorted(ip, real)] = True
                c = np.where((c == 34) & ~isq, 0, c).astype(np.uint8)
        # the real quotes before the k-th other character at index j are j - k: its parity says
        # whether it is outside a string (no running sum over every character)
        nonq = np.flatnonzero(~isq)
        qb = nonq - np.arange(len(nonq), dtype=np.int64)
        qb += parity
        outside = (qb & 1) == 0
        if escaped:
            outside &= c[nonq] != 0
        parity = (parity + len(c) - len(nonq)) & 1
        sel = nonq[outside]
        if not len(sel):
            continue
        ch = c[sel]
        delta = _DELTA[ch]
        cum = np.cumsum(delta, dtype=np.int32)
        cum += depth
        before = cum - delta
        depth = int(cum[-1])
        deeper = (ch == 58) & (before == max_depth + 1)  # the elements' key colons
        if count_colons:
            keep = before <= max_depth
            cb = np.cumsum(deeper, dtype=np.int64)
            cb += ncol
            ncol = int(cb[-1])
            col_l.append(cb[keep])  # a kept character is no colon: the count is of those before it
        else:
            keep = (before <= max_depth) | deeper
        kept = sel[keep]
        p = ip[kept]
        p += s
        pos_l.append(p.astype(pdt))
        ch_l.append(ch[keep])
        dep_l.append(np.maximum(before[keep], -128).astype(np.int8))
    if done is not None and n:
        done((n - 1) // _CHUNK * _CHUNK, n)
    colons = np.concatenate([*col_l, np.array([ncol], np.int64)]) if count_colons else None
    if not pos_l:
        return np.zeros(0, pdt), np.zeros(0, np.uint8), np.zeros(0, np.int8), depth, bool(parity), colons
    return (np.concatenate(pos_l), np.concatenate(ch_l), np.concatenate(dep_l), depth, bool(parity),
            colons)


# --------------------------------------------------------------------------- matching


def _match(group: np.ndarray, ts: np.ndarray, idx: np.ndarray, begin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LIFO-match begins and ends per group in (ts, element order).

    Returns (partner, orphan): ``partner[k]`` is the position of the end matching begin ``k``
    (-1 when never closed; -1 for ends too), ``orphan[k]`` is True for an end that closes
    nothing. Vectorised: clamped depth = cumsum − running minimum, then pairs alternate within
    each (group, level).
    """
    m = len(group)
    partner = np.full(m, -1, dtype=np.int64)
    orphan = np.zeros(m, dtype=bool)
    if not m:
        return partner, orphan
    order = np.lexsort((idx, ts, group))
    g = group[order]
    b = begin[order]
    delta = np.where(b, 1, -1).astype(np.int64)
    cs = np.cumsum(delta)
    gstart = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    glen = np.diff(np.r_[gstart, m])
    base = np.repeat(cs[gstart] - delta[gstart], glen)
    s_local = cs - base
    gid = np.repeat(np.arange(len(gstart), dtype=np.int64), glen)
    big = 2 * (m + 1)
    shift = (len(gstart) - gid) * big
    runmin = np.minimum.accumulate(s_local + shift) - shift
    d_after = s_local - np.minimum(runmin, 0)
    # an end is an orphan when the clamped depth before it was 0
    d_before = np.where(b, d_after - 1, d_after + 1)
    prev_after = np.r_[0, d_after[:-1]]
    prev_after[gstart] = 0
    orph = ~b & (prev_after == 0)
    level = np.where(b, d_after, d_before)
    live = np.flatnonzero(~orph)
    o2 = live[np.lexsort((live, level[live], g[live]))]
    same = np.r_[(g[o2[1:]] == g[o2[:-1]]) & (level[o2[1:]] == level[o2[:-1]]), False]
    nxt_end = np.r_[~b[o2[1:]], False]
    pair = b[o2] & same & nxt_end
    bi = o2[pair]
    ei = o2[np.flatnonzero(pair) + 1]
    partner[order[bi]] = order[ei]
    orphan[order[orph]] = True
    return partner, orphan


# --------------------------------------------------------------------------- attrs helpers


Parts = tuple[np.ndarray, "str | pa.Array", pa.Array]  # per-row entry counts, keys (one key or one per entry), values


def _map_parts(m: pa.MapArray) -> Parts:
    """A map column as (entries per row, flat keys, flat values); null maps have no entries."""
    off = m.offsets.to_numpy().astype(np.int64)
    lens = np.diff(off)
    if m.null_count:
        lens[_np(m.is_null()).astype(bool)] = 0
    total = int(lens.sum())
    first = np.cumsum(lens) - lens
    idx = np.repeat(off[:-1] - first, lens) + np.arange(total, dtype=np.int64)
    child = m.values
    tk = pa.array(idx)
    return lens, child.field(0).take(tk), child.field(1).take(tk)


def _kv_parts(key: str, values: pa.Array | pa.ChunkedArray) -> Parts:
    """One (key, value) entry for each row whose value is not null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):  # no entries (the part is dropped)
        return np.zeros(0, dtype=np.uint8), key, pa.array([], pa.string())
    values = values.cast(pa.string())
    if values.null_count == 0:
        return np.ones(len(values), dtype=np.uint8), key, values
    valid = _np(values.is_valid()).astype(bool)
    return valid.view(np.uint8), key, (values, np.flatnonzero(valid))  # taken from in place, not copied


def _sparse_parts(key: str, n: int, rows: np.ndarray, values: pa.Array) -> Parts:
    """One (key, values[j]) entry for row rows[j] (rows ascending) where values[j] is not null."""
    valid = _np(values.is_valid()).astype(bool) if values.null_count else np.ones(len(values), dtype=bool)
    lens = np.zeros(n, dtype=np.uint8)
    lens[rows[valid]] = 1
    return lens, key, (values.cast(pa.string()), np.flatnonzero(valid))


def _dict_parts(key: str, dictionary: pa.Array, indices: pa.Array) -> Parts:
    """One (key, dictionary[index]) entry per row whose index and value are not null; the values
    stay in the (small) dictionary, gathered once by :func:`_concat_maps` (no per-row copy)."""
    idx = _np(pc.fill_null(indices, -1)).astype(np.int64)
    ok = np.r_[_np(dictionary.is_valid()).astype(bool), False][idx]  # index -1 (null): no entry
    return ok.view(np.uint8), key, (dictionary.cast(pa.string()), idx[ok])


def _concat_maps(n: int, parts: list[Parts]) -> pa.MapArray:
    """Row-wise concatenation of several maps' entries, in the order given (vectorised).

    A part's keys are one key for all its entries, an array, or (codes, dictionary); its values
    an array or (source array, index into it). Keys are gathered as integer codes into one small
    dictionary and decoded once; values are gathered from their sources with one ``take``.
    The list ``parts`` is consumed (emptied): each part is freed once it is placed."""

    def size(p: Parts) -> int:
        return len(p[2][1]) if isinstance(p[2], tuple) else len(p[2])

    parts[:] = [p for p in parts if size(p)]  # the list is consumed: each part is freed once placed
    off = np.zeros(n + 1, dtype=np.int64)
    if not parts:
        return pa.MapArray.from_arrays(pa.array(off, pa.int32()), pa.array([], pa.string()), pa.array([], pa.string()))
    per_row = np.zeros(n, dtype=np.int64)
    for p in parts:
        per_row += p[0]
    np.cumsum(per_row, out=off[1:])
    del per_row
    total = int(off[-1])
    if total >= 2**31:
        raise ParseError("too many attrs entries for one table")
    nsrc = sum(len(p[2][0]) if isinstance(p[2], tuple) else len(p[2]) for p in parts)
    gather = np.empty(total, dtype=np.int32 if nsrc < 2**31 else np.int64)
    codes = np.empty(total, dtype=np.int32)
    words: list[pa.Array] = []
    srcs: list[pa.Array] = []
    nwords = 0
    used = off[:-1].copy()
    base = 0
    while parts:
        lens, keys, vals = parts.pop(0)
        src, vi = vals if isinstance(vals, tuple) else (vals, None)
        L = len(vi) if vi is not None else len(src)
        if isinstance(keys, str):
            kc: np.ndarray | int = nwords
            words.append(pa.array([keys], pa.string()))
            nwords += 1
        else:
            kcodes, kdict = keys if isinstance(keys, tuple) else _codes(keys)
            kc = kcodes + nwords
            words.append(kdict)
            nwords += len(kdict)
        if L == n and lens.max() == 1:  # one entry per row
            dest = used.copy()
            used += 1
        elif lens.max() <= 1:  # at most one
            rows = np.flatnonzero(lens)
            dest = used[rows]
            used[rows] += 1
        else:
            lens = lens.astype(np.int64, copy=False)
            rows = np.repeat(np.arange(n, dtype=np.int64), lens)
            within = np.arange(L, dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
            dest = used[rows] + within
            used += lens
        gather[dest] = base + (vi.astype(np.int64, copy=False) if vi is not None else np.arange(L, dtype=np.int64))
        codes[dest] = kc
        srcs.append(src.cast(pa.string()))
        base += len(src)
        del lens, keys, vals, src, vi, dest, kc
    del used
    keys_side = _Side(lambda c, w: pa.DictionaryArray.from_arrays(pa.array(c), pa.concat_arrays(w)).cast(pa.string()),
                      codes, words)  # the keys decoded on the other core
    del codes
    # one take from the sources as chunks (no concatenated copy of them)
    vals_out = pa.chunked_array(srcs, pa.string()).take(pa.array(gather))
    del srcs, gather
    vals_out = vals_out.chunk(0) if vals_out.num_chunks == 1 else vals_out.combine_chunks()
    keys_out = keys_side.result()
    return pa.MapArray.from_arrays(pa.array(off, pa.int32()), keys_out, vals_out)


def _codes(keys: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Strings as (int32 codes, dictionary)."""
    d = pc.dictionary_encode(keys.cast(pa.string()))
    return _np(d.indices).astype(np.int32), d.dictionary


# --------------------------------------------------------------------------- read


def _json_escape_errors(err: UnicodeDecodeError) -> tuple[str, int]:
    """Invalid UTF-8 bytes as JSON text for a literal backslash-x-hex, so the element still parses."""
    return "".join(f"\\\\x{b:02x}" for b in err.object[err.start : err.end]), err.end


codecs.register_error("tracekit_json_escape", _json_escape_errors)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _col(t: pa.Table, name: str) -> pa.Array:
    c = t.column(name)
    if isinstance(c, pa.ChunkedArray):
        return c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()
    return c


def _np(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return a.to_numpy(zero_copy_only=False)


class _Side:
    """``fn(*args)`` run on a thread of its own while the caller goes on (numpy and Arrow
    kernels release the GIL, so the other core works); :meth:`result` waits for it."""

    def __init__(self, fn: Any, *args: Any) -> None:
        self._out: Any = None
        self._err: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn: Any, args: tuple) -> None:
        try:
            self._out = fn(*args)
        except BaseException as e:  # handed to the caller by result()
            self._err = e

    def result(self) -> Any:
        self._thread.join()
        if self._err is not None:
            raise self._err
        out, self._out = self._out, None
        return out


_TRIM_FN: list[Any] = []


def _give_back() -> None:
    """Hand freed memory back to the system: Arrow's pool's unused pages, and the C heap's free
    pages (numpy's temporaries; glibc keeps them otherwise, as the peak of a later phase)."""
    pa.default_memory_pool().release_unused()
    if not _TRIM_FN:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                fn = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):
                fn = None
        _TRIM_FN.append(fn)
    if _TRIM_FN[0] is not None:
        _TRIM_FN[0](0)


def _top_level(data: bytes, where: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _read(inp: Input) -> ReadResult:

    pbuf = inp.buffer()
    buf = np.frombuffer(pbuf, dtype=np.uint8)
    n = len(buf)
    # first non-space byte (a UTF-8 BOM is skipped)
    i0 = 3 if n >= 3 and bytes(buf[:3]) == b"\xef\xbb\xbf" else 0
    ws = np.isin(buf[i0 : i0 + 4096], np.frombuffer(_WS, np.uint8))
    nz = np.flatnonzero(~ws)
    if not len(nz):
        if n - i0 <= 4096:
            raise ParseError("empty file (no JSON array or object)", file=inp.path)
        raise ParseError("not a Chrome trace (only white space at the start)", file=inp.path)
    first = i0 + int(nz[0])
    c0 = int(buf[first])
    if c0 not in (ord("["), ord("{")):
        raise ParseError(
            f"not a Chrome trace: expected '[' or '{{' but the content starts with {bytes(buf[first:first + 20])!r}",
            file=inp.path,
        )
    # DuckDB reads the array where it probably is while the structure scan runs; the scan
    # then says whether that was the array (else DuckDB reads it again, or the elements are
    # parsed one by one)
    guess = _guess_array(buf, first, c0)
    if guess is not None:
        guess = (*guess, _guess_split(buf, *guess))
    ex = ThreadPoolExecutor(1)
    # the parsed table is handed over in a box, not as the future's result: the future lives
    # until the read ends and would hold the table (the whole parse) that long
    box: list[pa.Table | None] = []
    job = ex.submit(lambda: box.append(_read_array(inp, pbuf, *guess))) if guess is not None else None
    try:
        return _read_scanned(inp, pbuf, buf, first, c0, guess, job, box)
    finally:
        if job is not None:
            job.cancel()
        ex.shutdown(wait=True)


def _read_scanned(inp: Input, pbuf: pa.Buffer, buf: np.ndarray, first: int, c0: int,
                  guess: tuple[int, int, int | None] | None, job: Any, box: list) -> ReadResult:
    n = len(buf)
    # elements sit at depth 1 (array form) or 2 (object form): nothing deeper is kept. The
    # mapped input's pages go as soon as they are scanned (the few bytes read again later, and
    # all of them if the elements are parsed one by one, come back from the page cache)
    whole = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, n], np.int64)), pbuf])
    drop = _PageDropper(inp, whole)
    nl_l: list[np.ndarray] = []
    pos, ch, dep, end_depth, in_str, colons = _scan(buf, max_depth=1 if c0 == ord("[") else 2, newlines=nl_l,
                                                    done=drop, count_colons=True)
    del whole
    meta_extra: dict[str, Any] = {}
    top: dict[str, Any] = {}
    notes: list[str] = []
    if c0 == ord("["):
        form = "array"
        open_pos = first
        level = 1
    else:
        form = "object"
        cand = pos[(ch == ord("[")) & (dep == 1)]
        open_pos = -1
        for p in cand[:64].tolist():
            before = bytes(buf[max(0, p - 200) : p]).rstrip(_WS)
            if before.endswith(b":") and before[:-1].rstrip(_WS).endswith(b'"traceEvents"'):
                open_pos = p
                break
        if open_pos < 0:
            raise ParseError("JSON object without a \"traceEvents\" array: not a Chrome trace", file=inp.path)
        level = 2
    sel = (pos > open_pos) & (dep == level)
    closes = pos[sel & (ch == ord("]"))]
    close_pos = int(closes[0]) if len(closes) else n
    inreg = (pos > open_pos) & (pos < close_pos)
    is_sep = sel & (ch == ord(",")) & inreg
    seps = pos[is_sep]
    eid = np.cumsum(is_sep, dtype=pos.dtype)  # element index of every position in the array (seps before it)
    if close_pos == n:
        notes.append("array not closed (truncated trace; allowed by the format)")
    if form == "object":
        rest = b"".join([bytes(buf[first:open_pos]), b"[]", bytes(buf[close_pos + 1 :]) if close_pos < n else b"}"])
        top = _top_level(rest, inp.path)
        if not top:
            notes.append("the keys beside traceEvents could not be read (invalid JSON there)")
        for k, v in top.items():
            if k == "traceEvents":
                continue
            txt = orjson.dumps(v)
            meta_extra[k] = v if len(txt) <= _EXTRA_MAX else f"<{len(txt)} bytes of JSON, not kept in meta>"
    starts = np.r_[open_pos + 1, seps + 1].astype(np.int64)
    ends = np.r_[seps, close_pos].astype(np.int64)
    offs = np.r_[starts, close_pos].astype(np.int64)
    count = len(starts)
    # the elements' text, zero-copy and not yet checked: DuckDB's whole-array pass checks the
    # UTF-8 of every byte it reads (a string with invalid UTF-8 makes it refuse the array), so
    # the text is checked (and bad bytes escaped) only when the elements are parsed one by one
    text = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offs), pbuf)
    note_at = len(notes)
    # element → opening-brace position (for line numbers); elements with no '{' use their start
    obr_m = (ch == ord("{")) & (dep == level) & inreg
    obr = pos[obr_m]
    eidx = eid[obr_m]
    del obr_m
    # top-level keys per element (one colon each), to tell which elements have keys beyond
    # _FIELDS: the colons counted between the element's bounds (the array's '[', its separators,
    # its ']' or the end)
    bounds = np.flatnonzero(is_sep)
    cb = colons[np.r_[np.searchsorted(pos, open_pos), bounds, np.searchsorted(pos, close_pos) if close_pos < n
                      else len(pos)]]
    ncolon = np.diff(cb)
    del bounds, cb, colons
    # the guessed split must be an element separator; else split at the middle one
    split = int(seps[len(seps) // 2]) if len(seps) >= _SPLIT_MIN else None
    if guess is not None and guess[:2] == (open_pos, close_pos):
        g = guess[2]
        if g is None or (len(seps) and seps[min(np.searchsorted(seps, g), len(seps) - 1)] == g):
            split = g
    del pos, ch, dep, seps, eid, inreg, is_sep, sel  # the structure scan's arrays: all used
    anchor = starts.copy()
    firsto = np.r_[True, eidx[1:] != eidx[:-1]] if len(eidx) else np.zeros(0, bool)
    anchor[eidx[firsto]] = obr[firsto]
    has_obj = np.zeros(count, dtype=bool)
    has_obj[eidx] = True
    del obr, eidx, firsto
    line = np.searchsorted(np.concatenate(nl_l) if nl_l else np.zeros(0, np.int64), anchor) + 1
    del nl_l
    del anchor
    # white-space-only elements (a trailing comma, '[]') are not records
    short = np.flatnonzero(~has_obj & ((ends - starts) < 64))
    blank = np.zeros(count, dtype=bool)
    for k in short.tolist():  # only elements that are not objects and are short
        if not bytes(buf[starts[k] : ends[k]]).strip(_WS):
            blank[k] = True
    if blank[:-1].any():
        notes.append(f"{int(blank[:-1].sum())} empty array elements (',,') ignored")
    if blank[-1:].any() and count > 1:
        notes.append("trailing comma after the last element")
    del short
    _give_back()  # the scan's scratch, before DuckDB's result joins it
    fast = None
    if close_pos < n and count and bool(has_obj.all()) and not blank.any():
        max_el = int((ends - starts).max())
        if job is not None and guess == (open_pos, close_pos, split):
            job.result()
            got = box.pop()
            if got is None and max_el >= _DUCK_OBJ:  # refused for an element larger than its buffer
                got = _read_array(inp, pbuf, open_pos, close_pos, split, max_el)
        else:
            if job is not None:
                job.cancel()
            got = _read_array(inp, pbuf, open_pos, close_pos, split, max_el)
        if got is not None and got.num_rows == count:
            fast = _finish_array(got, text, ncolon, count)
        del got
    del starts, ends
    if fast is not None:
        res, extra = fast
    else:
        raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offs), pbuf])
        text, bad = _decode(raw, 0, errors="tracekit_json_escape")
        del raw
        if len(bad):
            notes.insert(note_at, f"{len(bad)} elements with invalid UTF-8 (bytes kept as \\xNN escapes)")
        res, extra = _parse_elements(inp, text, count, ncolon)
    del ncolon
    res = res.set_column(res.schema.get_field_index("ok"), "ok",
                         pc.and_(pc.fill_null(res.column("ok"), False), pa.array(has_obj)))
    if fast is not None:  # parsed from the file: the mapped input's pages may go (only rejects re-read some)
        _PageDropper(inp, text)(0, 1 << 62)
    del has_obj
    held = [res]
    del res, fast
    return _build(inp, held, extra, text, line, blank, form, top, meta_extra, notes)


_SPEC = "{" + ",".join(f'"{k}":"VARCHAR"' for k in _FIELDS) + ',"args":"MAP(VARCHAR, VARCHAR)"}'
_TRIM = "rtrim(el, ', ' || chr(9) || chr(10) || chr(13))"
_NEED = " + ".join(f"(s.{k} IS NOT NULL)::INT" for k in (*_FIELDS, "args"))


def _exact_num(col: str, src: str) -> str:
    """SQL: the number's own digits (regex on the element text ``el``) where DuckDB's VARCHAR of
    a long number (16+ characters) may have been rounded through a double."""
    rx = f"regexp_extract(el, '\"{col}\"\\s*:\\s*{_NUM}', 1)"
    return (f"CASE WHEN length({src}) >= 16 AND try_cast({rx} AS DOUBLE) = try_cast({src} AS DOUBLE) "
            f"THEN {rx} ELSE {src} END")


def _extra_maps(con: Any, table: str) -> pa.Table:
    """The keys outside the struct (and a non-object ``args``) of the elements in ``table``
    (columns ``i``, ``el``), as one map per element, in ``i`` order."""
    kn = "[" + ",".join(_lit(k) for k in _FIELDS) + "]"
    return con.sql(f"""
      SELECT i, map_from_entries(list_transform(list_filter(map_entries(
          try(json_transform({_TRIM}, '"MAP(VARCHAR, VARCHAR)"'))),
          lambda e: NOT list_contains({kn}, e.key) AND
                    (e.key <> 'args' OR try(json_transform(e.value, '"MAP(VARCHAR, VARCHAR)"')) IS NULL)),
          lambda e: struct_pack(k := e.key, v := coalesce(e.value, 'null')))) AS m
      FROM {table} ORDER BY i""").to_arrow_table().combine_chunks()


def _parse_elements(inp: Input, text: pa.Array, count: int, ncolon: np.ndarray) -> tuple[pa.Table, pa.Table | None]:
    """Each element parsed on its own (any input: bad elements become NULL structs)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", pa.table({"el": text, "i": np.arange(count, dtype=np.int64), "nc": ncolon}))
        q = f"""
        SELECT i, s IS NOT NULL AS ok,
          {", ".join(f"s.{k} AS {k}" for k in _FIELDS if k not in ("ts", "dur"))},
          {_exact_num("ts", "s.ts")} AS ts, {_exact_num("dur", "s.dur")} AS dur,
          s.args AS a, nc <> ({_NEED}) AS need
        FROM (SELECT i, el, nc, try(json_transform({_TRIM}, '{_SPEC}')) AS s FROM t)
        """
        res = con.sql(q).to_arrow_table().combine_chunks()
        # elements with keys the struct does not cover (or a non-object args): full map, once
        need = _np(pc.fill_null(_col(res, "need"), False)).astype(bool)
        extra = None
        if need.any():
            con.register("u", pa.table({"i": np.flatnonzero(need)}))
            extra = _extra_maps(con, "(SELECT t.i, t.el FROM t JOIN u ON t.i = u.i)")
    except duckdb.Error as e:
        raise ParseError(f"cannot parse the trace events: {e}", file=inp.path) from e
    finally:
        con.close()
    if not bool(np.all(_np(res.column("i")) == np.arange(count))):
        res = res.sort_by("i")
    return res, extra


def _guess_array(buf: np.ndarray, first: int, c0: int) -> tuple[int, int] | None:
    """Where the events array probably is (its ``[`` and ``]``), from the head and tail only:
    the array form's first and last bytes, or ``{"traceEvents": [`` first and the last ``]``
    after which the rest of the object parses. None when unsure; the scan checks the guess."""
    n = len(buf)
    if c0 == ord("["):
        open_pos = first
    else:
        m = re.match(rb'\{\s*"traceEvents"\s*:\s*\[', bytes(buf[first : first + 256]))
        if not m:
            return None
        open_pos = first + m.end() - 1
    lo = max(open_pos + 1, n - (1 << 16))
    tail = bytes(buf[lo:])
    if c0 == ord("["):
        t = tail.rstrip(_WS)
        return (open_pos, lo + len(t) - 1) if t.endswith(b"]") else None
    at = len(tail)
    for _ in range(16):
        at = tail.rfind(b"]", 0, at)
        if at < 0:
            return None
        try:
            if isinstance(orjson.loads(b'{"e":[]' + tail[at + 1 :]), dict):
                return open_pos, lo + at
        except orjson.JSONDecodeError:
            pass
    return None


_SPLIT_MIN = 20000  # elements from which the array is parsed as two halves, one per thread
_SPLIT_BYTES = 1 << 20  # and bytes


def _guess_split(buf: np.ndarray, open_pos: int, close_pos: int) -> int | None:
    """A ``,`` near the middle of the array that probably separates two elements (``}`` before
    it, ``{`` after it, white space aside); the scan checks it."""
    if close_pos - open_pos < _SPLIT_BYTES:
        return None
    mid = (open_pos + close_pos) // 2
    win = bytes(buf[mid : min(mid + _SPLIT_BYTES, close_pos)])
    for m in re.finditer(rb"\}\s*(,)\s*\{", win):
        return mid + m.start(1)
    return None


_BATCH = 1 << 17  # rows per Arrow batch streamed out of DuckDB
_DUCK_OBJ = (1 << 24) - 64  # elements up to DuckDB's default maximum_object_size (larger: its buffers grow)


def _read_array(inp: Input, pbuf: pa.Buffer, open_pos: int, close_pos: int,
                split: int | None = None, max_el: int = 0) -> pa.Table | None:
    """The events array ``buf[open_pos:close_pos + 1]`` parsed by DuckDB's JSON reader in one
    pass (both cores, no per-element string column): one row per element, the struct's keys
    as text and ``args`` as a map. None when DuckDB refuses it (any element not an object of
    that shape): the caller then parses element by element."""
    import duckdb

    cols = "{" + ",".join(f"'{k}':'VARCHAR'" for k in _FIELDS) + ",'args':'MAP(VARCHAR, VARCHAR)'}"
    sel = ", ".join(f"{k}" for k in _FIELDS) + ", args AS a"
    mos = f", maximum_object_size={max_el + 64}" if max_el >= _DUCK_OBJ else ""
    tmps: list[str] = []

    def part(path: str) -> pa.Table:
        con = duckdb.connect()
        try:
            # streamed into Arrow batches: DuckDB does not hold the whole result besides them
            return con.sql(f"SELECT {sel} FROM read_json({_lit(path)}, format='array', "
                           f"columns={cols}{mos})").to_arrow_reader(_BATCH).read_all()
        finally:
            con.close()

    def write(*pieces: Any) -> str:  # the bytes as a file of their own (in memory where the system has one)
        import tempfile

        d = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        fd, tmp = tempfile.mkstemp(prefix="tracekit-chrome-", suffix=".json", dir=d)
        tmps.append(tmp)
        with os.fdopen(fd, "wb") as f:
            for p in pieces:
                f.write(p)
        return tmp

    mv = memoryview(pbuf)
    try:
        if split is not None:  # DuckDB reads one array on one thread: two halves, two threads
            halves = [(mv[open_pos:split], b"]"), (b"[", mv[split + 1 : close_pos + 1])]
            with ThreadPoolExecutor(2) as ex:  # each half written and parsed on its own thread
                res = pa.concat_tables(list(ex.map(lambda half: part(write(*half)), halves)))
            del halves
        elif inp.fs_path is not None and open_pos == 0 and not bytes(mv[close_pos + 1 :]).strip(_WS):
            res = part(inp.fs_path)  # the file is the array
        else:
            res = part(write(mv[open_pos : close_pos + 1]))
        # one array per column, joined column by column (each column's batches freed once
        # joined): never two copies of the parse at once
        # (a key no element has — most of the rarer ones — becomes one shared array of nulls)
        names, joined = res.column_names, res.columns
        del res
        nulls = None
        for i in range(len(joined)):
            c = joined[i]
            if len(c) and c.null_count == len(c) and c.type == pa.string():
                nulls = pa.nulls(len(c), pa.string()) if nulls is None else nulls
                joined[i] = nulls
            else:
                joined[i] = c.combine_chunks()
            del c
        return pa.Table.from_arrays(joined, names=names)
    except (duckdb.Error, OSError):
        return None
    finally:
        del mv
        for t in tmps:
            os.unlink(t)


def _finish_array(res: pa.Table, text: pa.Array, ncolon: np.ndarray, count: int) -> tuple[pa.Table, pa.Table | None]:
    """The columns of :func:`_parse_elements` from :func:`_read_array`'s table: long numbers'
    own digits, and the keys outside the struct of the elements that have some."""
    import duckdb

    con = duckdb.connect()
    try:
        for k in ("ts", "dur"):
            c = res.column(k).chunk(0)
            long_ = np.flatnonzero(_np(pc.fill_null(pc.greater_equal(pc.utf8_length(c), 16), False)).astype(bool))
            if len(long_):
                con.register("lg", pa.table({"el": text.take(pa.array(long_)), "v": c.take(pa.array(long_))}))
                fixed = con.sql(f"SELECT {_exact_num(k, 'v')} AS v FROM lg").to_arrow_table().column("v").combine_chunks()
                con.unregister("lg")
                idx = np.arange(len(c), dtype=np.int64)
                idx[long_] = len(c) + np.arange(len(long_))
                res = res.set_column(res.schema.get_field_index(k), k,
                                     pa.concat_arrays([c, fixed.cast(pa.string())]).take(pa.array(idx)))
        nn = np.zeros(count, dtype=np.int64)
        for c in res.columns:
            if c.null_count == 0:
                nn += 1
            elif c.null_count < len(c):
                nn += _np(c.is_valid())
        need = ncolon != nn
        extra = None
        if need.any():
            ni = np.flatnonzero(need)
            con.register("u", pa.table({"i": ni, "el": text.take(pa.array(ni))}))
            extra = _extra_maps(con, "u")
    finally:
        con.close()
    res = res.append_column("i", pa.array(np.arange(count, dtype=np.int64)))
    res = res.append_column("ok", pa.array(np.ones(count, dtype=bool)))
    res = res.append_column("need", pa.array(need))
    return res, extra


_PLAIN = r"^-?[0-9]{1,15}(\.[0-9]{1,9})?$"  # the numbers read by the fast path
_P10 = 10 ** np.arange(19, dtype=np.int64)


def _epoch_us(values: pa.Array | pa.ChunkedArray) -> dict[str, np.ndarray]:
    """:func:`tracekit._time.parse_epoch` with ``unit="us"``, same results; plain decimals
    (``-?\\d{1,15}(\\.\\d{1,9})?`` with at most 18 digits) are read by Arrow kernels: the digits
    without the dot as one int64, scaled by the fraction's length; anything else goes to
    ``parse_epoch``."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    n = len(values)
    out = {"ns": np.zeros(n, dtype=np.int64), "ok": np.zeros(n, dtype=bool), "prec": np.full(n, 1000, dtype=np.int64)}
    if n == 0 or values.null_count == n:
        return out
    values = values.cast(pa.string()) if values.type != pa.string() else values
    if not values.null_count:
        _epoch_dense(values, out, slice(None))
    else:  # the values without their nulls (a null is not ok, 0 ns, precision 1 µs)
        _epoch_dense(pc.drop_null(values), out, np.flatnonzero(_np(values.is_valid())))
    return out


def _epoch_dense(values: pa.Array, out: dict[str, np.ndarray], at: slice | np.ndarray) -> None:
    """:func:`_epoch_us` of string ``values`` without nulls, written to ``out[k][at]``."""
    lens = _np(pc.binary_length(values)).astype(np.int64)
    dot = _np(pc.find_substring(values, ".")).astype(np.int64)
    flen = np.where(dot >= 0, lens - dot - 1, 0)
    plain = _np(pc.match_substring_regex(values, _PLAIN))
    neg = _np(pc.starts_with(values, "-"))
    plain &= (lens - neg - (dot >= 0)) <= 18  # digits: the int64 below cannot overflow
    every = bool(plain.all())
    done = slice(None) if every else np.flatnonzero(plain)
    if every or len(done):
        sub = values if every else values.take(pa.array(done))
        v = _np(pc.cast(pc.replace_substring(sub, ".", "", max_replacements=1), pa.int64()))
        f = flen[done].astype(np.intp)
        a = np.abs(v)
        p = _P10.take(f)
        # |ns| = integer part · 1000 + the fraction truncated to ns; the sign is the integer
        # part's (as parse_epoch: "-0.5" gives +500)
        if int(f.max()) <= 3:
            mag = a * _P10.take(3 - f)
        else:
            mag = np.where(f <= 3, a * _P10.take(np.maximum(3 - f, 0)), a // _P10.take(np.maximum(f - 3, 0)))
        ng = neg[done]
        if ng.any():
            mag = np.where(ng & (a >= p), -mag, mag)
        prec = np.where(f > 0, np.maximum(1000 // p, 1), 1000)
        if every and isinstance(at, slice):
            out["ns"][:] = mag
            out["ok"][:] = True
            out["prec"][:] = prec
        else:
            rows = np.arange(len(values))[done] if isinstance(at, slice) else at[done]
            out["ns"][rows] = mag
            out["ok"][rows] = True
            out["prec"][rows] = prec
    if not every:
        rest = np.flatnonzero(~plain)
        r = _time.parse_epoch(values.take(pa.array(rest)), unit="us")
        rows = rest if isinstance(at, slice) else at[rest]
        for k in out:
            out[k][rows] = r[k]


def _rows_of(t: pa.Table, rows: pa.Array, names: list[str]) -> dict[str, pa.Array]:
    """Columns ``names`` of ``t`` at ``rows`` (a mask: filtered; else indices: taken)."""
    sub = t.select(names)
    sub = sub.filter(rows) if rows.type == pa.bool_() else sub.take(rows)
    return {name: _col(sub, name) for name in names}


def _build(inp: Input, held: list[pa.Table], extra: pa.Table | None, text: pa.Array, line: np.ndarray,
           blank: np.ndarray, form: str, top: dict[str, Any], meta_extra: dict[str, Any],
           notes: list[str]) -> ReadResult:
    res = held.pop()  # this frame holds the parsed table alone: released once its columns are taken
    count = res.num_rows
    col = {name: _col(res, name) for name in res.column_names}
    ok = _np(pc.fill_null(col["ok"], False)).astype(bool)
    # phases as small integer codes (no Python string per event)
    phd = pc.dictionary_encode(pc.fill_null(col["ph"], "")) if count else pa.array([], pa.dictionary(pa.int32(), pa.string()))
    ph_names = phd.dictionary.to_pylist()
    ph_code = _np(phd.indices).astype(np.int32)

    def is_ph(codes: np.ndarray, *names: str) -> np.ndarray:
        lut = np.zeros(len(ph_names), dtype=bool)
        for k, nm in enumerate(ph_names):
            lut[k] = nm in names
        return lut[codes] if len(lut) else np.zeros(len(codes), dtype=bool)

    has_ph = ~is_ph(ph_code, "")
    is_m = is_ph(ph_code, "M")
    dur_side = _Side(_epoch_us, col["dur"])  # every element's dur, read beside ts
    tsr = _epoch_us(col["ts"])
    ts_ok = tsr["ok"] & _np(col["ts"].is_valid()).astype(bool)
    bad_ts = ~ts_ok & _np(col["ts"].is_valid()).astype(bool)
    if bad_ts.any():  # exponent notation (1.5e3): exact enough through a float
        f = _to_float(col["ts"])
        fv = _np(pc.fill_null(f, np.nan)).astype(float)
        fix = bad_ts & np.isfinite(fv) & (np.abs(fv) < 9e15)
        tsr["ns"] = np.where(fix, np.round(fv * 1000.0), tsr["ns"]).astype(np.int64)
        ts_ok = ts_ok | fix
    ts_ns = tsr["ns"]
    _give_back()
    rec = ~blank
    reason = np.zeros(count, dtype=np.int8)
    reason[rec & ~ok] = 1
    reason[rec & ok & ~has_ph] = 2
    reason[rec & ok & has_ph & ~is_m & ~ts_ok] = 3
    rej_mask = reason > 0
    good = rec & ~rej_mask
    meta_rows = good & is_m
    ev = good & ~is_m
    a_map = col["a"]

    # ---- metadata (M): process / thread names
    processes: dict[str, str] = {}
    threads: dict[str, str] = {}
    if meta_rows.any():
        mi = pa.array(np.flatnonzero(meta_rows))
        for nm, am, p, t in zip(col["name"].take(mi).to_pylist(), a_map.take(mi).to_pylist(),
                                col["pid"].take(mi).to_pylist(), col["tid"].take(mi).to_pylist()):
            val = dict(am or []).get("name")
            if val is None:
                continue
            if nm == "process_name":
                processes[str(p)] = val
            elif nm == "thread_name":
                threads[f"{p}/{t}"] = val

    # ---- matching B/E, b/e, S/F
    partner = np.full(count, -1, dtype=np.int64)
    merged_mask = np.zeros(count, dtype=bool)
    unmatched = np.zeros(count, dtype=np.int8)  # index into _UNM
    local = _np(pc.fill_null(pc.match_substring(col["id2"], '"local"'), False)).astype(bool)
    for bph, eph, keys in _FAMILIES:
        sel = ev & is_ph(ph_code, bph, eph)
        if not sel.any():
            continue
        si = np.flatnonzero(sel)
        take = pa.array(si)
        parts = [pc.fill_null(col[k].take(take), "\x00") for k in keys]
        if bph == "b":
            parts.append(pc.if_else(pa.array(local[si]), pc.fill_null(col["pid"].take(take), "\x00"), ""))
        gkey = pc.binary_join_element_wise(*parts, "\x1f") if len(parts) > 1 else parts[0]
        gid = _np(pc.dictionary_encode(gkey).indices).astype(np.int64)
        beg = is_ph(ph_code[si], bph)
        part, orph = _match(gid, ts_ns[si], si, beg)
        hasp = part >= 0
        partner[si[hasp]] = si[part[hasp]]
        merged_mask[si[~beg & ~orph]] = True
        unmatched[si[beg & ~hasp]] = _UNM.index(bph)
        unmatched[si[orph]] = _UNM.index(eph)

    # ---- output rows: one per emitted element, C elements one per series
    rows_mask = ev & ~merged_mask
    ri = np.flatnonzero(rows_mask)
    is_c = is_ph(ph_code[ri], "C")
    # args entries straight from the map's children (no copy): element k's are a_first[k] + j
    a_off = a_map.offsets.to_numpy().astype(np.int64)
    a_lens = np.diff(a_off)
    if a_map.null_count:
        a_lens[_np(a_map.is_null()).astype(bool)] = 0
    a_keys, a_vals = a_map.values.field(0), a_map.values.field(1)
    a_first = a_off[:-1]
    reps = np.where(is_c, np.maximum(a_lens[ri], 1), 1)
    el = np.repeat(ri, reps)  # element index of each output row
    nrows = len(el)
    within = np.arange(nrows, dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)  # series of a C
    # rows in (ts, element order): tk.load then finds them sorted and does not copy the table
    order = np.argsort(ts_ns[el], kind="stable")
    moved = not bool(np.all(order[1:] > order[:-1]))
    if moved:
        el = el[order]
        within = within[order]
    del order
    # the rows' columns: one table filter when the rows are the elements in order, else a take
    need_cols = [c for c in res.column_names if c in _FIELDS and c not in ("ts", "dur")]
    rows_sel = pa.array(rows_mask) if nrows == len(ri) and not moved else pa.array(el)
    big = [c for c in ("name", "cat") if c in need_cols]  # the largest, on the other core
    side = _Side(_rows_of, res, rows_sel, big)
    R = _rows_of(res, rows_sel, [c for c in need_cols if c not in big])
    R.update(side.result())
    del side, rows_sel, res
    col = {k: col[k] for k in ("name",)}  # the rest of the parsed columns are no longer needed
    rph = ph_code[el]
    c_row = is_ph(rph, "C")
    has_series = c_row & (a_lens[el] > 0)
    none = pa.scalar(None, pa.string())
    # counter series: key, value and its float taken for the series rows only, then placed
    srows = np.flatnonzero(has_series)
    sgi = pa.array((a_first[el] + within)[srows])
    series_k, series_v = a_keys.take(sgi), a_vals.take(sgi)
    value_s = _to_float(series_v)
    notnum = pc.and_(pc.is_valid(series_v), pc.is_null(value_s))
    v_ok = _np(value_s.is_valid()).astype(bool)
    v_np = np.zeros(nrows, dtype=np.float64)
    v_np[srows[v_ok]] = _np(pc.fill_null(value_s, 0.0))[v_ok]
    v_null = np.ones(nrows, dtype=bool)
    v_null[srows[v_ok]] = False
    value = pa.array(v_np, pa.float64(), mask=v_null)

    kind = np.full(nrows, _KINDS.index("marker"), dtype=np.int32)
    kind[is_ph(rph, "X", "B", "b", "S")] = _KINDS.index("span")
    kind[is_ph(rph, "i", "I", "n", "T", "p", "E", "e", "F")] = _KINDS.index("instant")
    kind[is_ph(rph, "s", "t", "f")] = _KINDS.index("flow")
    kind[c_row] = _KINDS.index("counter")
    kind[is_ph(rph, "P")] = _KINDS.index("sample")

    ts_rows = ts_ns[el]
    dur_all = dur_side.result()
    dur_r = {k: dur_all[k][el] for k in ("ns", "ok")}
    del dur_all, dur_side
    dur_valid = dur_r["ok"]  # ok only for a non-null, readable dur
    rp = partner[el]
    has_partner = rp >= 0
    pidx = np.maximum(rp, 0)
    dur_np = np.where(has_partner, ts_ns[pidx] - ts_rows, np.where(dur_valid, dur_r["ns"], 0))
    dur_valid = dur_valid | has_partner
    line_end = pa.array(np.where(has_partner, line[pidx], 0), pa.int64(), mask=~has_partner)
    _give_back()

    # pid / tid: few distinct values, so each is decided once per value (dictionary) and taken
    enc = {k: pc.dictionary_encode(R[k]) for k in ("pid", "tid")}

    def ids(d: pa.DictionaryArray) -> tuple[pa.Array, pa.Array]:
        v = d.dictionary
        numeric = pc.fill_null(pc.match_substring_regex(v, r"^-?\d{1,18}$"), False)
        ints, other = pc.cast(pc.if_else(numeric, v, none), pa.int64()), pc.if_else(numeric, none, v)
        return ints.take(d.indices), other.take(d.indices)

    pid_i, pid_o = ids(enc["pid"])
    tid_i, tid_o = ids(enc["tid"])

    # flows: v1 phases; v2 bind_id (or id) with flow_in / flow_out
    fdir = np.full(nrows, -1, dtype=np.int32)  # index into _DIRS, -1 = none
    fdir[is_ph(rph, "s")] = _DIRS.index("out")
    fdir[is_ph(rph, "t")] = _DIRS.index("step")
    fdir[is_ph(rph, "f")] = _DIRS.index("in")
    fid = R["id"]
    fin = _np(pc.fill_null(pc.equal(R["flow_in"], "true"), False)).astype(bool)
    fout = _np(pc.fill_null(pc.equal(R["flow_out"], "true"), False)).astype(bool)
    v1 = is_ph(rph, "s", "t", "f")
    v2 = ~v1 & (fin | fout)
    fdir[v2 & fout & ~fin] = _DIRS.index("out")
    fdir[v2 & fin & ~fout] = _DIRS.index("in")
    fdir[v2 & fin & fout] = _DIRS.index("step")
    flow_id = pc.if_else(pa.array(v1), fid,
                         pc.if_else(pa.array(v2), pc.coalesce(R["bind_id"], fid), none))
    v2a = pa.array(v2)

    # E / e / F merged into their begin: a differing name and their own attrs are kept
    name_rows = R["name"]
    end_name: Parts | None = None
    end_attrs = None
    if has_partner.any():
        prow = np.flatnonzero(has_partner)  # the end's name is looked at for merged rows only
        en = col["name"].take(pa.array(pidx[prow]))
        differs = pc.and_(pc.not_equal(pc.fill_null(en, ""), ""),
                          pc.fill_null(pc.not_equal(en, pc.fill_null(name_rows.take(pa.array(prow)), "")), True))
        end_name = _sparse_parts("tk.end_name", nrows, prow, pc.if_else(differs, en, none))
        where = np.full(nrows, -1, dtype=np.int64)
        texts: list[str] = []
        for r in np.flatnonzero(has_partner & (a_lens[pidx] > 0)).tolist():  # only ends with args
            e_args = dict(a_map[int(pidx[r])].as_py())
            if e_args != dict(a_map[int(el[r])].as_py() or []):
                where[r] = len(texts)
                texts.append(orjson.dumps(e_args).decode())
        end_attrs = pa.array(texts, pa.string()).take(pa.array(np.maximum(where, 0), mask=where < 0)) \
            if texts else pa.nulls(nrows, pa.string())

    # attrs: verbatim keys, args.*, keys outside the struct, then reader-made tk.* keys
    _give_back()
    parts: list[Parts] = [_kv_parts(k, R[k]) for k in _VERBATIM]
    for k in ("bind_id", "flow_in", "flow_out"):
        parts.append(_kv_parts(k, pc.if_else(v2a, none, R[k])))
    parts += [_kv_parts("pid", pid_o), _kv_parts("tid", tid_o)]
    # args.* for every row but counters (their args are the series)
    not_c = ~c_row
    lens_r = np.where(not_c, a_lens[el], 0)
    first_r = a_first[el]
    start_r = np.cumsum(lens_r)
    start_r -= lens_r
    np.subtract(first_r, start_r, out=start_r)
    idt = np.int32 if len(a_keys) < 2**31 else np.int64  # entry indices: half the memory
    gidx = np.repeat(start_r.astype(idt), lens_r)
    gidx += np.arange(len(gidx), dtype=idt)
    del start_r
    if len(gidx):
        akc, akd = _codes(a_keys)
        parts.append((lens_r, (akc[gidx], pc.binary_join_element_wise("args.", akd, "")),
                      (pc.fill_null(a_vals, "null"), gidx)))
    if extra is not None and extra.num_rows:
        e_lens, e_keys, e_vals = _map_parts(_col(extra, "m"))
        full = np.zeros(count, dtype=np.int64)
        full[_np(_col(extra, "i")).astype(np.int64)] = e_lens
        ef = np.cumsum(full) - full
        l2 = full[el]
        gi = np.repeat(ef[el] - (np.cumsum(l2) - l2), l2) + np.arange(int(l2.sum()), dtype=np.int64)
        parts.append((l2, e_keys.take(pa.array(gi)), e_vals.take(pa.array(gi))))
    ucode = unmatched[el].astype(np.int32)
    unm = pa.DictionaryArray.from_arrays(pa.array(ucode, mask=ucode == 0), pa.array(_UNM)).cast(pa.string())
    parts.append(_kv_parts("tk.unmatched", unm))
    if end_name is not None:
        parts += [end_name, _kv_parts("tk.end_args", end_attrs)]
    parts += [_sparse_parts("tk.series", nrows, srows, series_k),
              _sparse_parts("tk.value", nrows, srows, pc.if_else(notnum, series_v, none))]
    if processes:  # looked up per distinct pid, then taken per row
        d = enc["pid"]
        pos = pc.index_in(d.dictionary, value_set=pa.array(list(processes)))
        parts.append(_dict_parts("tk.process_name", pa.array(list(processes.values())).take(pos), d.indices))
    if threads:  # per distinct (pid, tid) pair: "pid/tid", a missing one spelled None
        pd_, td = enc["pid"], enc["tid"]
        npid, ntid = len(pd_.dictionary), len(td.dictionary)
        pcode = _np(pc.fill_null(pd_.indices, npid)).astype(np.int64)
        tcode = _np(pc.fill_null(td.indices, ntid)).astype(np.int64)
        pairs = pc.dictionary_encode(pa.array(pcode * (ntid + 1) + tcode))
        pnames = pd_.dictionary.to_pylist() + ["None"]
        tnames = td.dictionary.to_pylist() + ["None"]
        keys = [f"{pnames[c // (ntid + 1)]}/{tnames[c % (ntid + 1)]}" for c in pairs.dictionary.to_pylist()]
        names = pa.array([threads.get(k) for k in keys], pa.string())
        parts.append(_dict_parts("tk.thread_name", names, pairs.indices))

    cols: dict[str, Any] = {
        "ts_src": ts_rows,
        "ts_prec": tsr["prec"][el],
        "dur": pa.array(dur_np, pa.int64(), mask=~dur_valid).cast(pa.duration("ns")),
        "kind": pa.DictionaryArray.from_arrays(pa.array(kind), pa.array(_KINDS)),
        "name": name_rows,
        "category": R["cat"],
        "value": value,
        "pid": pid_i,
        "tid": tid_i,
        "flow_id": flow_id,
        "flow_dir": pa.DictionaryArray.from_arrays(pa.array(np.maximum(fdir, 0), mask=fdir < 0), pa.array(_DIRS)),
        "attrs": None,  # built last, below
        "line": line[el],
        "line_end": line_end,
        "offset": el,
    }

    rej = None
    rj = np.flatnonzero(rej_mask)
    if len(rj):
        rtxt = pc.utf8_trim(text.take(pa.array(rj)), characters=", \t\r\n")
        rej = make_rejects(inp.name, inp.path, line[rj], rj, [_REASONS[k] for k in reason[rj].tolist()], rtxt)

    meta: dict[str, Any] = {"extra": meta_extra}
    meta_extra["form"] = form
    if processes:
        meta_extra["processes"] = processes
    if threads:
        meta_extra["threads"] = threads
    base = top.get("baseTimeNanoseconds")
    ets = ts_ns[ev]
    if isinstance(base, int) and not isinstance(base, bool):
        meta["clock"] = "relative"
        meta["anchor_ns"] = base
        meta["anchor"] = f"baseTimeNanoseconds={base} in the file (ts counted from it)"
    elif len(ets) and ets.min() >= _EPOCH_LO_US * 1000 and ets.max() < _EPOCH_HI_US * 1000:
        meta["clock"] = "realtime"
    else:
        meta["clock"] = "monotonic"
        notes.append("ts is not epoch time (counted from boot or process start): unaligned")
    meta["assumed"] = {"ts_unit": "us (displayTimeUnit is a display hint only)"}
    if notes:
        meta["note"] = "; ".join(notes)
    counts = {"records": int(rec.sum()), "emitted": int(rows_mask.sum()), "merged": int(merged_mask.sum()),
              "metadata": int(meta_rows.sum())}
    # the attrs map is built last, once everything else is freed: only its parts (and the
    # output columns) are held while it is gathered
    del (ok, phd, ph_code, has_ph, is_m, tsr, ts_ok, bad_ts, ts_ns, rec, reason, rej_mask, good, meta_rows, ev,
         a_map, partner, merged_mask, unmatched, local, rows_mask, ri, is_c, a_off, a_lens, a_first, reps, within,
         R, col, rph, c_row, has_series, srows, sgi, series_k, series_v, value_s, notnum, v_ok, v_np, v_null,
         value, kind, ts_rows, dur_r, dur_valid, rp, has_partner, pidx, dur_np, line_end, enc, pid_i,
         pid_o, tid_i, tid_o, fdir, fid, fin, fout, v1, v2, flow_id, v2a, name_rows, end_name, end_attrs, not_c,
         lens_r, first_r, gidx, ucode, unm, ets, rj, a_keys, a_vals, line, text, extra)
    _give_back()
    cols["attrs"] = _concat_maps(nrows, parts)
    _give_back()  # the map's scratch, before tk.load conforms the columns
    return ReadResult(events=cols, rejects=rej, meta=meta, **counts)


_UNM = ("", "B", "E", "b", "e", "S", "F")
_KINDS = ("span", "instant", "counter", "flow", "sample", "marker")
_DIRS = ("out", "in", "step")
_FAMILIES = (("B", "E", ("pid", "tid")), ("b", "e", ("cat", "scope", "id", "id2", "name")),
             ("S", "F", ("cat", "name", "id")))
_REASONS = ("", "not a JSON object (invalid or truncated JSON)", "no \"ph\" (phase) key", "no readable \"ts\"")

def _to_float(s: pa.Array) -> pa.Array:
    ok = pc.fill_null(pc.match_substring_regex(s, r"^\s*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"), False)
    return pc.cast(pc.if_else(ok, s, pa.scalar(None, pa.string())), pa.float64())


register(
    Reader(
        name="chrome",
        description="Chrome / Perfetto trace-event JSON (object or array form; Kineto, DevTools, catapult)",
        sniff=_sniff,
        read=_read,
        options={},
        extensions=(".json", ".json.gz", ".pt.trace.json", ".trace.json"),
    )
)
