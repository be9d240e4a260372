"""JSON lines (structured app logs): one JSON object per line.

The time, level and message fields are found from the usual names (``ts``, ``time``,
``timestamp``, ``@timestamp``, ``level``, ``severity``, ``msg``, ``message``, …), nested paths
(ECS ``{"log": {"level": ...}}``, lnav ``{"@fields": {"lvl": ..., "msg": ...}}``) included, or
named with options. Times are ISO-8601 with any offset, or epoch s/ms/µs/ns (numbers or
strings; the unit is guessed from the magnitude unless ``time_unit=`` says). Every other key
goes to ``attrs`` (encoding in :mod:`tracekit.schema`). Per role the first candidate key present
in the file is the one that leaves ``attrs``; later candidates (used on lines lacking the
first) stay there too, so nothing is lost; a ``pid``/``tid`` value that is not an integer stays
in ``attrs`` on its row.

How it is fast (one parse, both cores, no Python object per line):

* the lines are one Arrow column (zero-copy over the memory-mapped file); DuckDB's
  ``from_json`` turns each line into a struct of every top-level key as text (strings as-is,
  other values as compact JSON) — ``try()`` makes a bad line a NULL, so a bad line costs
  nothing but its own reject, never the fast path of the rest;
* the keys are listed from a sample; the same pass counts each line's keys, so a line holding
  a key the sample missed (or a ``null`` value, or a duplicate key) is seen and re-read alone
  as a ``MAP`` — exactness never depends on the sample;
* ``attrs`` is gathered from the key columns row-major into one MapArray (numpy index
  arithmetic + one Arrow ``take``); common ISO-8601 layouts are parsed from fixed byte
  positions (other layouts go to :mod:`tracekit._time`) on a second thread meanwhile;
* the file is read in blocks of lines: DuckDB parses block *i+1* on a worker thread while
  block *i* is finished, the parsed input's pages are released, and each finished block's
  string and attrs columns are copied straight into the output columns' buffers (reserved up
  front, their pages touched only as written), so no join of the blocks is left for the end —
  peak memory stays under ~3× the input.

Blank lines are not records.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..errors import OptionError
from ..schema import normalize_severity
from ._base import Input, Reader, ReadResult, make_rejects, register, split_lines

TIME_KEYS = ("ts", "time", "timestamp", "@timestamp", "t", "datetime", "date", "eventTime",
             "event_time", "_time", "asctime", "logtime", "log.timestamp", "Timestamp", "TIMESTAMP")
LEVEL_KEYS = ("level", "lvl", "severity", "loglevel", "log.level", "log_level", "levelname",
              "severity_text", "LEVEL", "Level", "Severity")
MESSAGE_KEYS = ("msg", "message", "MESSAGE", "log", "text", "Message", "event_message", "@message")
NAME_KEYS = ("event", "event.action", "event_name")
HOST_KEYS = ("host", "hostname", "host.name", "node", "HOSTNAME")
PID_KEYS = ("pid", "process.pid", "_PID")
TID_KEYS = ("tid", "thread_id", "process.thread.id")
TRACE_KEYS = ("trace_id", "traceId", "trace.id", "traceID", "dd.trace_id", "trace")
SPAN_KEYS = ("span_id", "spanId", "span.id", "spanID", "dd.span_id")
CATEGORY_KEYS = ("logger", "logger_name", "log.logger", "component", "module", "caller", "name")
#: objects whose members may hold the level/message/time when the top level has none
#: (lnav/logstash ``@fields``); tried after every top-level candidate.
NEST_KEYS = ("@fields", "fields")

_CANONICAL = ("entity", "state", "host", "pid", "tid", "trace_id", "span_id", "parent_id",
              "category", "name", "flow_id", "value")
_ROLE_KEYS = {"time": TIME_KEYS, "level": LEVEL_KEYS, "message": MESSAGE_KEYS, "name": NAME_KEYS,
              "host": HOST_KEYS, "pid": PID_KEYS, "tid": TID_KEYS, "trace_id": TRACE_KEYS,
              "span_id": SPAN_KEYS, "category": CATEGORY_KEYS}
_NESTABLE = ("time", "level", "message")  # roles whose candidates may be nested paths
_MAX_KEYS = 300  # more distinct keys than this: every line is read as a MAP instead
_BLOCK = 1 << 17  # lines per DuckDB pass: bounds the memory of the intermediates
_SAMPLE = 2000  # lines whose keys are listed up front (head + evenly spaced)
_REASON_JSON = "not a JSON object (invalid or truncated JSON)"
_FIRST_KEY = re.compile(rb'^\{\s*"([^"\\]{1,40})"\s*:')
_LOG_FIRST_KEYS = set(TIME_KEYS + LEVEL_KEYS + MESSAGE_KEYS)
_ISO_W = 35  # the longest ISO layout read by the fast path (9 fraction digits, ±HH:MM)
_ISO_RUN = 8192  # rows per step of the fast ISO path
#: ns precision by the length of an ISO fraction with its separator ('.123' -> 4 -> 1 ms); 0: seconds
_FRAC_PREC = np.array([10**9, 10**9] + [10 ** (9 - d) for d in range(1, 10)], dtype=np.int64)
_WS = np.array([0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C], dtype=np.uint8)


def _sniff(head: bytes, name: str) -> float:
    lines = [ln.strip() for ln in head.split(b"\n")[:20] if ln.strip()]
    if not lines:
        return 0.0
    objs = 0
    timeish = 0
    for i, ln in enumerate(lines[:10]):
        if not ln.startswith(b"{"):
            return 0.0 if i == 0 else 0.3 * objs / (i + 1)
        try:
            obj = orjson.loads(ln)
        except orjson.JSONDecodeError:
            # the head may cut a long last line: a log record if its first key is a log key
            m = _FIRST_KEY.match(ln) if i == len(lines) - 1 and not head.endswith(b"\n") else None
            if m and m.group(1).decode("utf-8", "replace") in _LOG_FIRST_KEYS:
                objs += 1
                timeish += 1
            continue  # otherwise a bad line is a reject, not a veto
        if isinstance(obj, dict):
            objs += 1
            if any(k in obj for k in TIME_KEYS) or "log" in obj or "@timestamp" in obj:
                timeish += 1
    if objs == 0:
        return 0.0
    return 0.6 if timeish else 0.5


# --------------------------------------------------------------------------- SQL helpers


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _jpath(parts: list[str]) -> str:
    return "$." + ".".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


# --------------------------------------------------------------------------- the reader


def _read(
    inp: Input,
    time_field: str | None = None,
    level_field: str | None = None,
    message_field: str | None = None,
    time_unit: str | None = None,
    fields: dict[str, str] | None = None,
) -> ReadResult:
    import duckdb

    if time_unit not in (None, "s", "ms", "us", "ns"):
        raise OptionError(f"{inp.path}: time_unit must be one of s, ms, us, ns, not {time_unit!r}")
    fields = dict(fields or {})
    bad = set(fields) - set(_CANONICAL)
    if bad:
        raise OptionError(f"{inp.path}: fields= maps canonical columns {sorted(_CANONICAL)}; not {sorted(bad)}")
    forced = {"time": time_field, "level": level_field, "message": message_field}
    forced.update(fields)

    # DuckDB's connection (~20 ms) is opened on a side thread while the lines are split
    with ThreadPoolExecutor(1) as ex:
        con_fut = ex.submit(duckdb.connect)
        try:
            lines = split_lines(inp)
            text = lines.text
            if lines.bad_utf8.size:
                text = _escape_bad_utf8(text, lines.bad_utf8 - 1)
            blank, objstart = _blank(text)
        except BaseException:
            con_fut.result().close()
            raise
        con = con_fut.result()
    keep = np.flatnonzero(~blank)
    objstart = objstart[keep]
    n = len(keep)
    every = n == len(text)
    lno = lines.line if every else lines.line[keep]
    offs = lines.offset if every else lines.offset[keep]
    drop = _PageDropper(inp, text)

    try:
        keys = _sample_keys(con, text, keep) if n else []
        plan = _Plan(keys, forced)
        # a small first block, so the pipeline below fills quickly
        starts = [0] + list(range(min(_BLOCK // 8, n), n, _BLOCK)) if n else []
        ends = starts[1:] + [n]

        def parse(i: int, plan: _Plan) -> dict[str, Any]:
            b0, b1 = starts[i], ends[i]
            sl = text.slice(b0, b1 - b0) if every else text.take(pa.array(keep[b0:b1]))
            return _parse_block(con, sl, plan, objstart[b0:b1])

        # DuckDB parses block i+1 on a worker thread while block i is finished here
        with ThreadPoolExecutor(1) as ex:
            for _attempt in range(2):
                blocks = []
                sinks: dict[str, _Sink] = {}
                restart = False
                nxt = ex.submit(parse, 0, plan) if starts else None
                for i, b0 in enumerate(starts):
                    parsed = nxt.result()
                    if _attempt == 0 and parsed["extra_roles"]:
                        plan = _Plan(keys + [k for k in parsed["extra"] if k not in keys], forced)
                        restart = True
                        break
                    nxt = ex.submit(parse, i + 1, plan) if i + 1 < len(starts) else None
                    if every:  # the block's input bytes are parsed: let the kernel drop its pages
                        last = ends[i] - 1
                        drop(int(offs[b0]), int(offs[last]) + 1 if last + 1 >= n else int(offs[last + 1]))
                    blocks.append(_finish_block(parsed, plan, time_unit))
                    del parsed
                    _to_sinks(blocks[-1]["cols"], sinks, n, int(lines.nbytes))
                if not restart:
                    break
    finally:
        con.close()

    roles = plan.roles
    ok = np.concatenate([b["ok"] for b in blocks]) if blocks else np.zeros(0, dtype=bool)
    ok_json = np.concatenate([b["ok_json"] for b in blocks]) if blocks else ok
    tvalid = np.concatenate([b["tvalid"] for b in blocks]) if blocks else ok
    reject_parts: list[tuple[np.ndarray, str]] = []
    if not ok_json.all():
        reject_parts.append((np.flatnonzero(~ok_json), _REASON_JSON))
    bad_t = ok_json & ~ok
    if bad_t.any():
        missing = bad_t & ~tvalid
        unread = bad_t & tvalid
        looked = ", ".join(roles["time"][:6]) or "ts, time, timestamp"
        if missing.any():
            reject_parts.append((np.flatnonzero(missing), f"no time field (looked for {looked}…; set time_field=)"))
        if unread.any():
            reject_parts.append((np.flatnonzero(unread), "cannot read the time field (not ISO-8601 or an epoch number)"))

    def cat(name: str) -> Any:
        if name in sinks:
            return sinks.pop(name).finish()
        parts = [b["cols"].pop(name) for b in blocks if b["cols"].get(name) is not None]
        if not parts:
            return None
        if isinstance(parts[0], np.ndarray):
            return np.concatenate(parts)
        return _concat_release(parts)

    # no name key: "name" is the message column itself, joined once
    same = bool(blocks) and all(b["cols"]["same_name"] for b in blocks)
    names = [c for c in _OUT_COLS if not (same and c == "name")]
    with ThreadPoolExecutor(2) as ex:  # attrs (the largest) beside the other columns
        out: dict[str, Any] = dict(zip(names, ex.map(cat, names)))
    if same:
        out["name"] = out["message"]
    if out["ts_src"] is None:
        out["ts_src"] = np.zeros(0, dtype=np.int64)
    out["kind"] = "log"
    out["line"] = lno[ok]
    out["offset"] = offs[ok]
    meta: dict[str, Any] = {"clock": "realtime"}
    assumed = {}
    if any(b["naive"] for b in blocks):
        assumed["tz"] = "UTC (times without an offset were read as UTC)"
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    if n and not ok_json.any():
        meta["note"] = "no valid JSON object lines"
    meta["assumed"] = assumed
    meta["fields"] = {r: v for r, v in roles.items() if v}
    rej = _rejects(inp, lno, offs, text, keep, reject_parts)
    return ReadResult(events=out, records=n, emitted=int(ok.sum()), rejects=rej, meta=meta)


_OUT_COLS = ("attrs", "ts_src", "ts_prec", "message", "severity", "name", "host", "trace_id", "span_id",
             "category", "entity", "state", "parent_id", "flow_id", "pid", "tid", "value")


class _PageDropper:
    """Tell the kernel it may drop the pages of input bytes already parsed (``MADV_DONTNEED``),
    so a large memory-mapped input does not stay resident beside its table. Only for a
    read-only mapping of the input's own file, checked in ``/proc/self/maps``; anywhere else
    (compressed input, bytes in memory, not Linux) it does nothing. Dropped pages are read
    back from the page cache if touched again (rejects' raw text)."""

    def __init__(self, inp: Input, text: pa.Array) -> None:
        self.base = 0
        self.size = 0
        if not sys.platform.startswith("linux") or inp.fs_path is None or len(text) == 0:
            return
        try:
            buf = text.buffers()[2]
            addr = buf.address
            real = os.path.realpath(inp.fs_path)
            with open("/proc/self/maps") as f:
                for ln in f:
                    parts = ln.split(None, 5)
                    lo, hi = (int(x, 16) for x in parts[0].split("-"))
                    if lo == addr and len(parts) == 6 and parts[5].strip() == real and "w" not in parts[1]:
                        import ctypes

                        self._madvise = ctypes.CDLL(None, use_errno=True).madvise
                        self.base, self.size = addr, min(hi - lo, buf.size)
                        break
        except (OSError, ValueError, AttributeError):
            self.base = 0

    def __call__(self, lo: int, hi: int) -> None:
        if not self.base:
            return
        page = mmap.PAGESIZE
        a = -(-lo // page) * page
        b = min(hi, self.size) // page * page
        if b > a:
            import ctypes

            self._madvise(ctypes.c_void_p(self.base + a), ctypes.c_size_t(b - a), 4)  # MADV_DONTNEED


def _to_sinks(cols: dict[str, Any], sinks: dict[str, _Sink], rows: int, nbytes: int) -> None:
    """Move a finished block's string and attrs columns into the output columns (``sinks``),
    so each block's arrays are freed as it finishes and no join is left for the end. Other
    columns stay in ``cols`` (joined at the end)."""
    same = cols["name"] is cols["message"]
    if same:
        del cols["name"]  # "name" is the message column: joined once, at the end
    for name in list(cols):
        v = cols[name]
        if not isinstance(v, (pa.Array, pa.ChunkedArray)):
            continue
        if name not in sinks:
            if v.type == pa.string():
                sinks[name] = _Sink(rows, nbytes)
            elif isinstance(v.type, pa.MapType) and v.type.key_type == pa.string() and v.type.item_type == pa.string():
                sinks[name] = _Sink(rows, nbytes, entries=True)
            else:
                continue
        sinks[name].append(cols.pop(name))
    cols["same_name"] = same


class _Sink:
    """One output column built block by block: strings (or a ``map<string, string>``: its
    offsets plus a key and a value sink) copied into buffers reserved up front (``np.empty``:
    pages are only touched as they are written) and grown when a block does not fit. A string
    column reaching 2 GiB goes back to joining its parts at the end (as ``large_string``)."""

    def __init__(self, rows: int, nbytes: int, entries: bool = False) -> None:
        self.n = 0
        self.offs = np.empty(rows + 1, dtype=np.int32)
        self.offs[0] = 0
        self.valid: np.ndarray | None = None
        self.parts: list[pa.Array] | None = None  # past 2 GiB: joined at the end
        if entries:
            # entries: each takes at least 5 input bytes; reserved generously, grown rarely
            self.keys: _Sink | None = _Sink(min(rows * 32, nbytes // 4 + 1), nbytes)
            self.items: _Sink | None = _Sink(min(rows * 32, nbytes // 4 + 1), nbytes)
            self.data = np.empty(0, dtype=np.uint8)
        else:
            self.keys = self.items = None
            self.data = np.empty(max(nbytes, 1), dtype=np.uint8)
        self.pos = 0

    def _room(self, rows: int, size: int) -> None:
        if self.n + rows + 1 > len(self.offs):
            grown = np.empty(max(2 * len(self.offs), self.n + rows + 1), dtype=np.int32)
            grown[: self.n + 1] = self.offs[: self.n + 1]
            self.offs = grown
        if self.valid is not None and len(self.valid) < len(self.offs):
            v = np.ones(len(self.offs), dtype=bool)
            v[: self.n] = self.valid[: self.n]
            self.valid = v
        if self.pos + size > len(self.data):
            grown_d = np.empty(max(2 * len(self.data), self.pos + size), dtype=np.uint8)
            grown_d[: self.pos] = self.data[: self.pos]
            self.data = grown_d

    def append(self, a: pa.Array | pa.ChunkedArray) -> None:
        for p in a.chunks if isinstance(a, pa.ChunkedArray) else [a]:
            if self.parts is not None:
                self.parts.append(p)
                continue
            k = len(p)
            if self.keys is not None:  # a map: its offsets here, keys and values in their sinks
                o = np.frombuffer(p.offsets.buffers()[1], dtype=np.int32)[p.offsets.offset :][: k + 1]
                self._room(k, 0)
                self.offs[self.n + 1 : self.n + k + 1] = o[1:] - o[0] + self.offs[self.n]
                self.keys.append(p.keys.slice(o[0], o[-1] - o[0]))
                self.items.append(p.items.slice(o[0], o[-1] - o[0]))
                self.n += k
                continue
            o = np.frombuffer(p.buffers()[1], dtype=np.int32)[p.offset : p.offset + k + 1]
            size = int(o[-1] - o[0])
            if self.pos + size >= 2**31:
                self.parts = [self.finish(), p]
                continue
            self._room(k, size)
            if size:
                self.data[self.pos : self.pos + size] = np.frombuffer(p.buffers()[2], dtype=np.uint8)[o[0] : o[-1]]
            self.offs[self.n + 1 : self.n + k + 1] = o[1:] - o[0] + self.pos
            if p.null_count:
                if self.valid is None:
                    self.valid = np.ones(len(self.offs), dtype=bool)
                self.valid[self.n : self.n + k] = p.is_valid().to_numpy(zero_copy_only=False)
            self.n += k
            self.pos += size

    def finish(self) -> pa.Array:
        if self.parts is not None:
            return _concat_strings(self.parts)
        offs = pa.py_buffer(self.offs[: self.n + 1])
        if self.keys is not None:
            return pa.MapArray.from_arrays(pa.Array.from_buffers(pa.int32(), self.n + 1, [None, offs]),
                                           self.keys.finish(), self.items.finish())
        bitmap, nulls = None, 0
        if self.valid is not None:
            valid = self.valid[: self.n]
            nulls = self.n - int(valid.sum())
            bitmap = pa.array(valid).buffers()[1] if nulls else None
        return pa.StringArray.from_buffers(self.n, offs, pa.py_buffer(self.data[: self.pos]), bitmap, nulls)


def _concat_release(parts: list[pa.Array]) -> pa.Array:
    """One array from the blocks' arrays, each block's memory handed back as soon as it is
    copied (so the peak is the result plus one block, not twice the result, as
    ``combine_chunks`` would need later). Strings and string maps are copied buffer by buffer
    into fresh memory; other types use ``concat_arrays``."""
    if len(parts) == 1:
        return parts.pop()
    typ = parts[0].type
    if typ == pa.string():
        return _concat_strings(parts)
    if isinstance(typ, pa.MapType) and typ.key_type == pa.string() and typ.item_type == pa.string():
        n = sum(len(p) for p in parts)
        offs = np.empty(n + 1, dtype=np.int32)
        offs[0] = 0
        keys: list[pa.Array] = []
        items: list[pa.Array] = []
        at = 0
        while parts:
            m = parts.pop(0)
            o = np.frombuffer(m.offsets.buffers()[1], dtype=np.int32)[m.offsets.offset :][: len(m) + 1]
            offs[at + 1 : at + len(m) + 1] = o[1:] - o[0] + offs[at]
            keys.append(m.keys.slice(o[0], o[-1] - o[0]))
            items.append(m.items.slice(o[0], o[-1] - o[0]))
            at += len(m)
            del m
        return pa.MapArray.from_arrays(pa.array(offs), _concat_strings(keys), _concat_strings(items))
    out = pa.concat_arrays(parts)
    parts.clear()
    return out


def _concat_strings(parts: list[pa.Array]) -> pa.Array:
    """Concatenate string arrays into fresh buffers, releasing each part once copied."""
    n = sum(len(p) for p in parts)
    total = 0
    for p in parts:
        o = np.frombuffer(p.buffers()[1], dtype=np.int32)[p.offset : p.offset + len(p) + 1]
        total += int(o[-1] - o[0])
    if total >= 2**31:
        out = pa.concat_arrays([p.cast(pa.large_string()) for p in parts])
        parts.clear()
        return out
    offs = np.empty(n + 1, dtype=np.int32)
    offs[0] = 0
    data = np.empty(max(total, 1), dtype=np.uint8)
    valid = np.ones(n, dtype=bool)
    has_nulls = False
    at = pos = 0
    pool = pa.default_memory_pool()
    while parts:
        p = parts.pop(0)
        k = len(p)
        o = np.frombuffer(p.buffers()[1], dtype=np.int32)[p.offset : p.offset + k + 1]
        size = int(o[-1] - o[0])
        if size:
            data[pos : pos + size] = np.frombuffer(p.buffers()[2], dtype=np.uint8)[o[0] : o[-1]]
        offs[at + 1 : at + k + 1] = o[1:] - o[0] + pos
        if p.null_count:
            has_nulls = True
            valid[at : at + k] = p.is_valid().to_numpy(zero_copy_only=False)
        at += k
        pos += size
        del p, o
        pool.release_unused()
    bitmap = pa.array(valid).buffers()[1] if has_nulls else None
    return pa.StringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(data), bitmap,
                                       n - int(valid.sum()) if has_nulls else 0)


def _escape_bad_utf8(text: pa.Array, idx: np.ndarray) -> pa.Array:
    """Lines that were not UTF-8 carry ``\\xNN`` escapes (see split_lines); make them JSON
    ``\\\\xNN`` so such a line still parses, its bad bytes kept as text."""
    vals = text.to_pylist()
    for i in idx.tolist():
        vals[i] = vals[i].replace("\\x", "\\\\x")
    return pa.array(vals, text.type)


def _blank(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Lines holding only white space, and lines whose first non-space byte is ``{`` (the
    only ones that can be objects); checked exactly only where the first byte is a space."""
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    offs = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    lens = np.diff(offs)
    first = np.full(n, 0x20, dtype=np.uint8)
    nz = lens > 0
    first[nz] = data[offs[:-1][nz]]
    obj = first == 0x7B
    cand = np.flatnonzero(np.isin(first, _WS))
    blank = np.zeros(n, dtype=bool)
    if cand.size:
        sub = pc.utf8_trim_whitespace(text.take(pa.array(cand)))
        blank[cand] = np.asarray(pc.equal(pc.utf8_length(sub), 0).to_numpy(zero_copy_only=False), dtype=bool)
        obj[cand] = np.asarray(pc.starts_with(sub, "{").to_numpy(zero_copy_only=False), dtype=bool)
    return blank, obj


def _sample_keys(con: Any, text: pa.Array, keep: np.ndarray) -> list[str]:
    """Top-level keys of a sample of the (non-blank) lines, first-seen order: all lines of a
    small input, else the first lines and lines evenly spaced through the file."""
    n = len(keep)
    if n <= 4 * _SAMPLE:
        idx = keep
    else:
        idx = np.union1d(keep[:_SAMPLE], keep[:: max(n // _SAMPLE, 1)])
    con.register("sample", pa.table({"line": text.take(pa.array(idx)), "i": np.arange(len(idx))}))
    try:
        q = ("select k from (select unnest(try(json_keys(line))) k, i from sample) "
             "group by k order by min(i), k")
        return [r[0] for r in con.sql(q).fetchall()]
    finally:
        con.unregister("sample")


def _pick_roles(keys: list[str], forced: dict[str, str | None]) -> dict[str, list[str]]:
    """Candidate keys per role, in priority order (first present wins, per line)."""
    present = set(keys)
    roles: dict[str, list[str]] = {}
    for role, cands in _ROLE_KEYS.items():
        opt = forced.get(role)
        if opt is not None:
            roles[role] = [opt]
            continue
        got = [c for c in cands if c in present]
        if role in _NESTABLE:
            got += [c for c in cands if "." in c and c.split(".")[0] in present and c not in present]
            got += [f"{p}.{c}" for p in NEST_KEYS if p in present for c in cands if "." not in c]
        roles[role] = got
    for col in ("entity", "state", "parent_id", "flow_id", "value"):
        opt = forced.get(col)
        roles[col] = [opt] if opt is not None else []
    return roles


def _role_exprs(cand: str, present: set[str]) -> list[str]:
    """SQL for one candidate: the literal key's column, then a nested path into its parent."""
    out = [f"s.{_ident(cand)}"] if cand in present else []
    if "." in cand:
        parts = cand.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            parent = ".".join(parts[:cut])
            if parent in present:
                out.append(f"try(json_extract_string(s.{_ident(parent)}, {_lit(_jpath(parts[cut:]))}))")
                break
    return out


class _Plan:
    """What to ask DuckDB for, given the keys known so far: roles, the struct, the SQL."""

    def __init__(self, keys: list[str], forced: dict[str, str | None]) -> None:
        # keys equal but for case cannot share a struct: the later ones are read as MAP
        seen: set[str] = set()
        skeys = []
        for k in keys + [v for v in forced.values() if v is not None and v not in keys]:
            if k.lower() not in seen:
                seen.add(k.lower())
                skeys.append(k)
        self.as_map = len(skeys) > _MAX_KEYS
        if self.as_map:
            skeys = [k for k in skeys if k in {v for v in forced.values() if v} or
                     any(k in c for c in _ROLE_KEYS.values()) or k in NEST_KEYS]
        self.skeys = skeys
        present = set(skeys)
        self.roles = roles = _pick_roles(skeys, forced)
        exprs = []
        for role, cands in roles.items():
            parts = [e for c in cands for e in _role_exprs(c, present)]
            if parts:
                exprs.append(f"coalesce({', '.join(parts)}) AS r_{role}" if len(parts) > 1 else f"{parts[0]} AS r_{role}")
        # the first present literal candidate of a role leaves attrs; other candidates stay
        self.used = {next(c for c in cands if c in present) for cands in roles.values()
                     if any(c in present for c in cands)}
        # pid/tid: a row whose value is not an integer keeps it in attrs
        self.idkeys = {roles[c][0]: c for c in ("pid", "tid") if roles[c] and roles[c][0] in present}
        self.akeys = [k for k in skeys if k not in self.used]
        idcols = [f"s.{_ident(k)} AS {_ident('a_' + k)}" for k in self.idkeys if k in self.used]
        if not skeys:
            self.sql = ("select try(json_type(line)) = 'OBJECT' AS ok, "
                        "coalesce(len(try(json_keys(line))), 0) AS miss from t")
            self.sql_fast = self.sql
        else:
            struct = "{" + ",".join(json.dumps(k) + ':"VARCHAR"' for k in skeys) + "}"
            nn = " + ".join(f"(s.{_ident(k)} IS NOT NULL)::INTEGER" for k in skeys)
            okx = "s IS NOT NULL"  # and the line starts with '{' (checked on the bytes)
            body = ", ".join(exprs + [f"s.{_ident(k)} AS {_ident('a_' + k)}" for k in self.akeys] + idcols)
            self.sql = (f"select {okx} AS ok, CASE WHEN {okx} THEN len(json_keys(line)) - ({nn}) END AS miss"
                        f"{', ' + body if body else ''} from (select line, try(from_json(line, {_lit(struct)})) s from t)")
            # every line valid (the usual case): no try() and no CASE; a bad line makes this
            # fail and only its block is parsed again with the lenient query above
            self.sql_fast = (f"select {okx} AS ok, len(json_keys(line)) - ({nn}) AS miss"
                             f"{', ' + body if body else ''} from (select line, from_json(line, {_lit(struct)}) s from t)")
        cands = {c for cs in _ROLE_KEYS.values() for c in cs} | set(NEST_KEYS)
        self.role_cands = cands | {c.split(".")[0] for c in cands} | {v for v in forced.values() if v}


_INT_RE = r"^-?\d{1,18}$"


def _parse_block(con: Any, text: pa.Array, plan: _Plan, objstart: np.ndarray) -> dict[str, Any]:
    """The DuckDB part of a block: the struct pass, then the MAP re-read of lines it could
    not fully account for."""
    import duckdb

    # DuckDB scans an Arrow table one record batch per thread: hand it several
    step = max(-(-len(text) // 8), 1)
    batches = [pa.record_batch([text.slice(i, step)], names=["line"]) for i in range(0, len(text), step)]
    con.register("t", pa.Table.from_batches(batches, schema=pa.schema([("line", text.type)])))
    try:
        try:
            res = con.sql(plan.sql_fast).to_arrow_table()
        except duckdb.Error:
            res = con.sql(plan.sql).to_arrow_table()
        ok_json = np.asarray(pc.fill_null(res.column("ok"), False).to_numpy(zero_copy_only=False), dtype=bool)
        ok_json &= objstart
        miss = pc.fill_null(res.column("miss"), 0).to_numpy(zero_copy_only=False)
        careful = np.flatnonzero(ok_json & (miss != 0)) if not plan.as_map else np.flatnonzero(ok_json)
        cmap, extra = _read_maps(con, careful, set(plan.skeys)) if careful.size else (None, [])
    finally:
        con.unregister("t")
    return {"n": len(text), "res": res, "ok_json": ok_json, "careful": careful, "cmap": cmap, "extra": extra,
            "extra_roles": [k for k in extra if k in plan.role_cands]}


def _finish_block(parsed: dict[str, Any], plan: _Plan, time_unit: str | None) -> dict[str, Any]:
    """The Arrow/numpy part of a block: times, ids, attrs and the output columns."""
    n, res, ok_json = parsed["n"], parsed.pop("res"), parsed["ok_json"]
    careful, cmap = parsed["careful"], parsed.pop("cmap")
    blk: dict[str, Any] = {}

    def col(name: str) -> pa.Array | None:
        # a copy in fresh buffers: an array still pointing into DuckDB's result would keep
        # that whole result (every column of the block) alive until the end
        if name not in res.column_names:
            return None
        return pa.concat_arrays(res.column(name).chunks + [pa.array([], res.schema.field(name).type)])

    # the times are parsed from DuckDB's result chunks as they are (no copy: nothing of them is kept)
    tparts = res.column("r_time").chunks if "r_time" in res.column_names else []
    if sum(len(c) for c in tparts) != n or not tparts:
        tparts = [pa.nulls(n, pa.string())]
    # integer ids become columns; other ids stay in attrs (per row)
    ids: dict[str, tuple[pa.Array, np.ndarray]] = {}
    for key, role in plan.idkeys.items():
        v = col(f"a_{key}")
        if v is not None and key in plan.used:
            isint = pc.fill_null(pc.match_substring_regex(v, _INT_RE), False)
            ids[role] = (v, np.asarray(isint.to_numpy(zero_copy_only=False), dtype=bool))
    with ThreadPoolExecutor(1) as ex:  # times on a second thread while attrs are gathered
        fut = ex.submit(_parse_time_parts, tparts, time_unit)
        attrs = _attrs(res, plan, ids, careful, cmap, n)
        tres = fut.result()
    tvalid = np.concatenate([np.asarray(pc.is_valid(c).to_numpy(zero_copy_only=False), dtype=bool) for c in tparts])
    ok = tres["ok"] & tvalid & ok_json
    all_ok = bool(ok.all())
    sel = None if all_ok else pa.array(ok)

    def take(a: pa.Array | None) -> pa.Array | None:
        if a is None:
            return None
        return a if sel is None else a.filter(sel)

    def text(name: str) -> pa.ChunkedArray | None:
        # DuckDB's own chunks, not copied: the caller copies these string columns into the
        # output (_to_sinks) as soon as the block is finished, and DuckDB's result goes then
        if name not in res.column_names:
            return None
        return res.column(name) if res.schema.field(name).type == pa.string() else col(name)

    msg = take(text("r_message"))
    name = take(text("r_name"))
    lvl = take(col("r_level"))
    cols: dict[str, Any] = {
        "ts_src": tres["ns"][ok],
        "ts_prec": tres["prec"][ok],
        "message": msg,
        "severity": normalize_severity(lvl) if lvl is not None else None,
        "name": msg if name is None else pc.coalesce(name, msg),
        "attrs": take(attrs),
    }
    for c in ("host", "trace_id", "span_id", "category", "entity", "state", "parent_id", "flow_id"):
        cols[c] = take(text(f"r_{c}"))
    for c in ("pid", "tid"):
        if c in ids:
            v, isint = ids[c]
            cols[c] = take(pc.cast(pc.if_else(pa.array(isint), v, pa.scalar(None, v.type)), pa.int64()))
    if col("r_value") is not None:
        cols["value"] = _to_float(take(col("r_value")))
    blk.update(ok=ok, ok_json=ok_json, tvalid=tvalid, cols=cols, naive=bool((ok & ~tres["tz"]).any()))
    return blk


def _read_maps(con: Any, rows: np.ndarray, known: set[str]) -> tuple[pa.Array, list[str]]:
    """Re-read some lines as ``MAP(VARCHAR, VARCHAR)`` (every key, null values kept)."""
    con.register("sel", pa.table({"i": rows.astype(np.int64)}))
    try:
        q = ("select try(from_json(t.line, '\"MAP(VARCHAR, VARCHAR)\"')) m, t.line line from "
             "(select line, row_number() over () - 1 i from t) t join sel using (i) order by i")
        res = con.sql(q).to_arrow_table()
    finally:
        con.unregister("sel")
    maps = res.column("m").combine_chunks()
    if maps.null_count:  # duplicate keys make DuckDB's MAP null: keep every pair (rare)
        vals = maps.to_pylist()
        for j, line in enumerate(res.column("line").to_pylist()):
            if vals[j] is None:
                pairs = json.loads(line, object_pairs_hook=list)
                vals[j] = [(k, v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), ensure_ascii=False))
                           for k, v in pairs]
        maps = pa.array(vals, pa.map_(pa.string(), pa.string()))
    if len(maps):
        mkeys = pc.unique(maps.keys).to_pylist()
    else:
        mkeys = []
    extra = [k for k in mkeys if k not in known]
    return maps, extra


def _attrs(res: pa.Table, plan: _Plan, ids: dict[str, tuple[pa.Array, np.ndarray]],
           careful: np.ndarray, cmap: pa.Array | None, n: int) -> pa.Array:
    """``attrs`` for every line of a block: the key columns gathered row-major into one
    MapArray; lines re-read as MAP contribute their own entries (minus the role keys)."""
    names = list(plan.akeys)
    chunks: list[pa.Array] = []
    valid = np.zeros((len(names) + len(ids), n), dtype=bool)
    for j, k in enumerate(names):
        c = res.column(f"a_{k}")
        chunks.extend(c.chunks)
        valid[j] = c.is_valid().to_numpy(zero_copy_only=False)
    for j, (role, (v, isint)) in enumerate(ids.items()):  # ids that are not integers stay
        names.append(plan.roles[role][0])
        chunks.append(v)
        valid[len(plan.akeys) + j] = v.is_valid().to_numpy(zero_copy_only=False) & ~isint
    K = len(names)
    if careful.size:
        valid[:, careful] = False
    counts = valid.sum(axis=0, dtype=np.int64) if K else np.zeros(n, dtype=np.int64)
    cm_keys = cm_vals = None
    if careful.size and cmap is not None:
        drop = pa.array(sorted(plan.used - set(plan.idkeys)), pa.string())
        flat_keys = cmap.keys
        flat_vals = pc.fill_null(cmap.items, "null")
        idk = pa.array(sorted(k for k, r in plan.idkeys.items() if r in ids), pa.string())
        dropid = pc.and_(pc.is_in(flat_keys, value_set=idk),
                         pc.fill_null(pc.match_substring_regex(flat_vals, _INT_RE), False))
        m_off = np.frombuffer(cmap.offsets.buffers()[1], dtype=np.int32)[cmap.offsets.offset:][: len(cmap) + 1].astype(np.int64)
        m_off = m_off - m_off[0]
        keepe = ~np.asarray(pc.or_(pc.is_in(flat_keys, value_set=drop), dropid).to_numpy(zero_copy_only=False),
                            dtype=bool)
        row_of = np.repeat(np.arange(len(cmap)), np.diff(m_off))
        ccount = np.bincount(row_of[keepe], minlength=len(cmap))
        counts[careful] = ccount
        cm_keys = flat_keys.filter(pa.array(keepe))
        cm_vals = flat_vals.filter(pa.array(keepe))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    nsrc = K * n + (len(cm_keys) if cm_keys is not None else 0)  # values the index points into
    vidx = np.empty(total, dtype=np.int32 if nsrc < 2**31 else np.int64)
    kidx = np.empty(total, dtype=np.int32)
    pos = offsets[:-1].copy()
    base = 0
    for j in range(K):
        r = np.flatnonzero(valid[j])
        p = pos[r]
        vidx[p] = base + r
        kidx[p] = j
        pos[r] += 1
        base += n
    if cm_keys is not None and len(cm_keys):
        ccount = counts[careful]
        start = offsets[careful]
        within = np.arange(len(cm_keys)) - np.repeat(np.cumsum(ccount) - ccount, ccount)
        p = np.repeat(start, ccount) + within
        vidx[p] = base + np.arange(len(cm_keys))
        kidx[p] = -1
        chunks.append(cm_vals)
    if total == 0:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()),
                                       pa.array([], pa.string()))
    vals_src = pa.concat_arrays([c if c.type == pa.string() else c.cast(pa.string()) for c in chunks])
    vals = _take_parallel(vals_src, vidx)
    spliced = cm_keys is not None and len(cm_keys) > 0
    kd = pa.DictionaryArray.from_arrays(pa.array(np.maximum(kidx, 0) if spliced else kidx),
                                        pa.array(names or [""], pa.string()))
    keys = kd.cast(pa.string())
    if spliced:
        cpos = np.flatnonzero(kidx < 0)
        keys = _splice(keys, cpos, cm_keys)
    if total >= 2**31:
        raise OverflowError("attrs too large for one map column")
    return pa.MapArray.from_arrays(pa.array(offsets.astype(np.int32)), keys, vals)


def _splice(keys: pa.Array, pos: np.ndarray, repl: pa.Array) -> pa.Array:
    """``keys`` with the entries at ``pos`` replaced by ``repl`` (in order)."""
    n = len(keys)
    src = pa.concat_arrays([keys, repl.cast(pa.string())])
    idx = np.arange(n, dtype=np.int64)
    idx[pos] = n + np.arange(len(pos))
    return src.take(pa.array(idx))


def _take_parallel(arr: pa.Array, idx: np.ndarray) -> pa.Array:
    """``arr.take(idx)`` in two halves on two threads (Arrow releases the GIL)."""
    if len(idx) < 1_000_000:
        return arr.take(pa.array(idx))
    h = len(idx) // 2
    with ThreadPoolExecutor(2) as ex:
        a, b = ex.map(lambda s: arr.take(pa.array(s)), (idx[:h], idx[h:]))
    return pa.concat_arrays([a, b])


# --------------------------------------------------------------------------- times


def _parse_time_parts(cols: list[pa.Array], unit: str | None) -> dict[str, np.ndarray]:
    """:func:`_parse_times` over consecutive pieces of a column, as one result."""
    parts = [_parse_times(c, unit) for c in cols]
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _parse_times(col: pa.Array | None, unit: str | None) -> dict[str, np.ndarray]:
    """ISO-8601 (fast fixed-position path, general parser for the rest) or epoch numbers."""
    if col is None:
        return {"ns": np.zeros(0, np.int64), "ok": np.zeros(0, bool), "tz": np.zeros(0, bool),
                "prec": np.zeros(0, np.int64)}
    n = len(col)
    col = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
    ns = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    tz = np.zeros(n, dtype=bool)
    prec = np.zeros(n, dtype=np.int64)
    done = _fast_iso(col, ns, ok, tz, prec)
    rest = np.flatnonzero(~done & pc.is_valid(col).to_numpy(zero_copy_only=False))
    if rest.size:
        sub = col.take(pa.array(rest))
        iso = _time.parse_iso8601(sub)
        ep = _time.parse_epoch(sub, unit)
        use_ep = ~iso["ok"] & ep["ok"]
        ns[rest] = np.where(use_ep, ep["ns"], iso["ns"])
        ok[rest] = np.where(use_ep, ep["ok"], iso["ok"])
        prec[rest] = np.where(use_ep, ep["prec"], iso["prec"])
        tz[rest] = use_ep | iso["tz"]
    return {"ns": ns, "ok": ok, "tz": tz, "prec": prec}


def _fast_iso(col: pa.Array, ns: np.ndarray, ok: np.ndarray, tz: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH:MM|±HHMM]`` read from byte positions.

    The candidate strings are grouped by byte length (logs usually have one or two), so each
    group's bytes form a 2-D array with every field, the zone included, at a fixed column: no
    index arrays, no padding, and no copy at all when every row has the same length. Fills the
    outputs where it matched and returns that mask; the rest goes to the general parser (same
    rules: mo 1–12, d 1–31, hh ≤ 24, mm ≤ 59, ss ≤ 60).
    """
    n = len(col)
    done = np.zeros(n, dtype=bool)
    if n == 0 or col.null_count == n:
        return done
    lens = pc.fill_null(pc.binary_length(col), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    fits = (lens >= 19) & (lens <= _ISO_W)
    if not fits.any():
        return done
    ascii_ = np.asarray(pc.fill_null(pc.string_is_ascii(col), False).to_numpy(zero_copy_only=False), dtype=bool)
    fits &= ascii_
    widths = np.flatnonzero(np.bincount(lens[fits], minlength=_ISO_W + 1)).tolist()
    every = len(widths) == 1 and bool(fits.all())  # every row fits, all of one length
    for width in widths:
        rows = None if every else np.flatnonzero(fits & (lens == width))
        sub = col if rows is None else col.take(pa.array(rows))
        offs = np.frombuffer(sub.buffers()[1], dtype=np.int32)[sub.offset : sub.offset + len(sub) + 1]
        m = np.frombuffer(sub.buffers()[2], dtype=np.uint8)[offs[0] : offs[-1]].reshape(len(sub), width)
        # in runs of rows whose temporaries stay in the cache and in malloc's heap (at a block's
        # full length each int64 temporary is a fresh mmap: page faults cost as much as the math)
        parts = [_iso_fixed(m[i : i + _ISO_RUN], width) for i in range(0, len(m), _ISO_RUN)]
        g, val, zoned, fl = (np.concatenate(x) for x in zip(*parts)) if len(parts) > 1 else parts[0]
        # precision from the fraction's length (separator included; 0: none, whole seconds)
        p = _FRAC_PREC[np.clip(fl, 0, 10)]
        if rows is None and g.all():  # the usual case: every row read, no index arrays
            ns[:], ok[:], tz[:], prec[:], done[:] = val, True, zoned, p, True
            continue
        if rows is None:
            rows = np.flatnonzero(g)
        else:
            rows = rows[g]
        ns[rows] = val[g]
        ok[rows] = True
        tz[rows] = zoned[g]
        prec[rows] = p[g]
        done[rows] = True
    return done


def _iso_fixed(m: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ISO layouts of :func:`_fast_iso` over rows of ``L`` bytes each (``m``: rows × L):
    (matched, ns, has a zone, fraction length incl. the separator)."""
    k = len(m)

    def num(*pos: int) -> tuple[np.ndarray, np.ndarray]:
        v = np.zeros(k, dtype=np.int64)
        g = np.ones(k, dtype=bool)
        for p in pos:
            c = m[:, p].astype(np.int64) - 48
            g &= (c >= 0) & (c <= 9)
            v = v * 10 + c
        return v, g

    g = (m[:, 4] == 45) & (m[:, 7] == 45) & ((m[:, 10] == 84) | (m[:, 10] == 32)) & (m[:, 13] == 58) & (m[:, 16] == 58)
    y, g1 = num(0, 1, 2, 3)
    mo, g2 = num(5, 6)
    day, g3 = num(8, 9)
    hh, g4 = num(11, 12)
    mi, g5 = num(14, 15)
    ss, g6 = num(17, 18)
    g &= g1 & g2 & g3 & g4 & g5 & g6
    g &= (mo >= 1) & (mo <= 12) & (day >= 1) & (day <= 31) & (hh <= 24) & (mi <= 59) & (ss <= 60)
    # the zone: 'Z' (1), '±HH:MM' (6), '±HHMM' (5) or none (0); its bytes end the row
    at = lambda j: m[:, L - j]  # noqa: E731
    tzlen = np.where(at(1) == 90, 1, 0)
    s6, s5 = at(6), at(5)
    if L >= 25:
        tzlen = np.where(((s6 == 43) | (s6 == 45)) & (at(3) == 58), 6, tzlen)
    if L >= 24:
        tzlen = np.where((tzlen == 0) & ((s5 == 43) | (s5 == 45)), 5, tzlen)
    off_min = np.zeros(k, dtype=np.int64)
    hasoff = tzlen >= 5
    if hasoff.any():
        m1, m2 = (at(j).astype(np.int64) - 48 for j in (2, 1))
        # ±HH:MM: hours at L-5, L-4; ±HHMM: hours at L-4, L-3
        h1 = np.where(tzlen == 6, at(5).astype(np.int64) - 48, at(4).astype(np.int64) - 48)
        h2 = np.where(tzlen == 6, at(4).astype(np.int64) - 48, at(3).astype(np.int64) - 48)
        dg = np.all([(x >= 0) & (x <= 9) for x in (h1, h2, m1, m2)], axis=0)
        g &= ~hasoff | dg
        sign = np.where(np.where(tzlen == 6, s6, s5) == 45, -1, 1)
        off_min = np.where(hasoff, sign * ((h1 * 10 + h2) * 60 + m1 * 10 + m2), 0)
    # the fraction: '.' or ',' then 1–9 digits, between the seconds and the zone
    fl = L - 19 - tzlen
    if L > 19:
        g &= (fl == 0) | ((fl >= 2) & (fl <= 10) & ((m[:, 19] == 46) | (m[:, 19] == 44)))
    else:
        g &= fl == 0
    frac = np.zeros(k, dtype=np.int64)
    for j in range(min(9, L - 20)):
        inside = j < fl - 1
        c = m[:, 20 + j].astype(np.int64) - 48
        g &= ~inside | ((c >= 0) & (c <= 9))
        frac = frac * 10 + np.where(inside, c, 0)
    # fewer than 9 columns read: scale to ns as the padded columns (zeros) would have
    frac = frac * 10 ** max(9 - max(L - 20, 0), 0)
    days = _time.days_from_civil(y, np.clip(mo, 1, 12), day)
    val = (days * 86400 + hh * 3600 + mi * 60 + ss - off_min * 60) * _time.NS + frac
    return g, val, tzlen > 0, fl


# --------------------------------------------------------------------------- small helpers


def _to_float(v: pa.Array) -> pa.Array:
    import polars as pl

    return pl.from_arrow(v).cast(pl.Float64, strict=False).to_arrow()


def _rejects(inp: Input, lno: np.ndarray, offs: np.ndarray, text: pa.Array, keep: np.ndarray,
             parts: list[tuple[np.ndarray, str]]) -> pa.Table | None:
    if not parts:
        return None
    idx = np.concatenate([p[0] for p in parts])
    reasons = np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in parts])
    order = np.argsort(idx, kind="stable")
    idx, reasons = idx[order], reasons[order]
    raw = pc.utf8_rtrim(text.take(pa.array(keep[idx])), characters="\r\n")
    return make_rejects(inp.name, inp.path, lno[idx], offs[idx], list(reasons), raw)


register(
    Reader(
        name="jsonl",
        description="JSON lines structured logs (one object per line: time, level, message, fields)",
        sniff=_sniff,
        read=_read,
        options={
            "time_field": "key (or dotted path) holding the time; default: first of ts, time, timestamp, @timestamp, …",
            "level_field": "key holding the level; default: level, lvl, severity, log.level, …",
            "message_field": "key holding the message; default: msg, message, log, …",
            "time_unit": "unit of epoch-number times: s, ms, us or ns; default: guessed from magnitude",
            "fields": "dict mapping canonical columns (entity, state, host, pid, trace_id, …) to keys",
        },
        extensions=(".jsonl", ".ndjson", ".json", ".log"),
    )
)
