"""journald: ``journalctl -o json``, ``-o json-pretty`` and ``-o export``.

The layout is told from the content: one JSON object per line (``json``), TAB-indented objects
one after another (``json-pretty``), or the Journal Export Format (``export``: ``KEY=value``
lines, records separated by an empty line, binary-safe fields as ``KEY\\n`` + 64-bit
little-endian length + raw bytes + ``\\n``). Each journal entry is one ``log`` row:

* ``ts_src`` = ``__REALTIME_TIMESTAMP`` (µs, realtime clock; ``_SOURCE_REALTIME_TIMESTAMP``
  when it is missing, attrs ``tk.time_from``); ``ts_prec`` = 1 µs;
* ``message`` = ``MESSAGE``: a string; a byte array (``journalctl`` prints non-UTF-8 or
  control-character text so) decoded as UTF-8, invalid bytes escaped ``\\xNN`` and the array
  kept verbatim in attrs ``MESSAGE`` with ``tk.note``; ``null`` (a field over 4096 bytes that
  ``journalctl`` left out without ``--all``) keeps the row, message null, ``tk.note`` says so;
* ``severity`` from ``PRIORITY`` (0–2 critical, 3 error, 4 warning, 5 notice, 6 info,
  7 debug); ``name`` = ``SYSLOG_IDENTIFIER`` (else ``_COMM``); ``category`` = ``_TRANSPORT``;
  ``pid`` = ``_PID``; ``host`` = ``_HOSTNAME``;
* ``entity`` = ``unit/<host>/<unit>`` for the unit the entry speaks of: ``UNIT`` (systemd's
  own messages about a unit), ``USER_UNIT``, ``_SYSTEMD_USER_UNIT``, then ``_SYSTEMD_UNIT``
  (``?`` stands for a missing host);
* both clocks: ``__MONOTONIC_TIMESTAMP`` goes to attrs ``tk.monotonic_ns`` (ns since boot) and
  ``_BOOT_ID`` stays in attrs; ``meta["boot_id"]`` is the boot when there is one, and
  ``meta["extra"]["boot_anchors"]`` gives per boot id the median of realtime − monotonic (ns):
  the UTC time of that boot's monotonic zero, for putting boot-clock sources on UTC;
* every other field stays in attrs verbatim (byte arrays and multi-valued fields as JSON).

Vectorised: the JSON layouts go through DuckDB's JSON functions over one column of records;
byte arrays become Arrow binary in one step. The export layout (rare, small) is split by a
tight loop over its bytes and then read the same way.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("journal.json")                                # doctest: +SKIP
    >>> tl.events.select(["ts", "entity", "severity", "message"])  # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..schema import normalize_severity
from . import _k8s
from ._base import Input, Reader, ReadResult, make_rejects, register, split_lines

_CONSUMED = ("__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "_PID", "_HOSTNAME", "MESSAGE")
_KEY_RE = re.compile(rb"^[A-Za-z0-9_]+$")
_CTRL_RE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


def _is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sniff(head: bytes, name: str) -> float:
    h = head.lstrip(b"\xef\xbb\xbf")
    first = h.split(b"\n", 1)[0]
    marks = (b'"__REALTIME_TIMESTAMP"', b'"__CURSOR"', b'"__MONOTONIC_TIMESTAMP"')
    if h.startswith(b"{") and any(m in head for m in marks):
        return 0.9
    if re.match(rb"^(__CURSOR|__REALTIME_TIMESTAMP|__MONOTONIC_TIMESTAMP|_BOOT_ID|__SEQNUM)=", first):
        return 0.9
    if re.match(rb"^[A-Z_][A-Z0-9_]*=", first) and b"\n__REALTIME_TIMESTAMP=" in head:
        return 0.85
    return 0.0


def _layout(head: bytes) -> str:
    h = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not h.startswith(b"{"):
        return "export"
    first = h.split(b"\n", 1)[0].strip()
    return "json-pretty" if first == b"{" else "json"


class _Recs:
    """JSON object texts, one per record, with provenance, and the rejects."""

    def __init__(self) -> None:
        self.text: pa.Array = pa.array([], pa.large_string())
        self.line = self.line_end = self.offset = np.zeros(0, np.int64)
        self.bad = np.zeros(0, bool)  # record had invalid UTF-8 (escaped)
        self.rej: list[tuple[int, int, str, str]] = []

    @property
    def records(self) -> int:
        return len(self.text) + len(self.rej)


def _json_lines(inp: Input) -> _Recs:
    lines = split_lines(inp)
    keep = ~lines.blank()
    text = _k8s.json_safe_text(inp, lines)
    badmask = np.zeros(len(lines), bool)
    badmask[lines.bad_utf8 - 1] = True
    text = text.filter(pa.array(keep))
    r = _Recs()
    con = _k8s.connect()
    try:
        con.register("t", pa.table({"line": text}))
        valid = np.asarray(pc.fill_null(con.sql(
            "select CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END from t").to_arrow_table().column(0), False)
            .to_numpy(zero_copy_only=False), dtype=bool)
    finally:
        con.close()
    lno, offs = lines.line[keep], lines.offset[keep]
    r.text = text.filter(pa.array(valid))
    r.line = r.line_end = lno[valid]
    r.offset = offs[valid]
    r.bad = badmask[keep][valid]
    for j in np.flatnonzero(~valid):
        r.rej.append((int(lno[j]), int(offs[j]), "not a JSON object (invalid or truncated JSON)",
                      text[int(j)].as_py().rstrip("\r\n")))
    return r


def _json_pretty(inp: Input) -> _Recs:
    lines = split_lines(inp)
    st = pc.utf8_rtrim(_k8s.json_safe_text(inp, lines), characters="\r\n")
    trimmed = pc.utf8_trim_whitespace(st)
    is_start = np.asarray(pc.equal(trimmed, "{").to_numpy(zero_copy_only=False), bool)
    is_end = np.asarray(pc.equal(trimmed, "}").to_numpy(zero_copy_only=False), bool)
    blank = lines.blank()
    n = len(lines)
    gid = np.cumsum(is_start)
    ng = int(gid[-1]) if n else 0
    idx = np.arange(n)
    end_of = np.full(ng + 1, n, np.int64)  # first '}' line per group (n: none → truncated)
    ends = np.flatnonzero(is_end & (gid > 0))
    if ends.size:
        g, first = np.unique(gid[ends], return_index=True)
        end_of[g] = ends[first]
    in_obj = (gid > 0) & (idx <= end_of[gid])
    garbage = ~in_obj & ~blank
    r = _Recs()
    con = _k8s.connect()
    try:
        sel = np.flatnonzero(in_obj)
        con.register("t", pa.table({"g": gid[sel], "i": sel, "s": st.take(pa.array(sel))}))
        res = con.sql("select g, min(i) a, max(i) b, string_agg(s, '' order by i) o,"
                      " json_valid(string_agg(s, '' order by i)) ok from t group by g order by g").to_arrow_table()
    finally:
        con.close()
    a = res.column("a").to_numpy()
    b = res.column("b").to_numpy()
    ok = np.asarray(pc.fill_null(res.column("ok"), False).to_numpy(zero_copy_only=False), bool)
    obj = res.column("o").combine_chunks()
    bad_lines = np.zeros(n, bool)
    bad_lines[lines.bad_utf8 - 1] = True
    r.text = obj.filter(pa.array(ok)).cast(pa.large_string())
    r.line, r.line_end, r.offset = lines.line[a[ok]], lines.line[b[ok]], lines.offset[a[ok]]
    cs = np.concatenate([[0], np.cumsum(bad_lines)])
    r.bad = (cs[b[ok] + 1] - cs[a[ok]]) > 0
    for j in np.flatnonzero(~ok):
        why = "truncated JSON object (no closing brace)" if end_of[res.column("g")[int(j)].as_py()] == n \
            else "invalid JSON object"
        r.rej.append((int(lines.line[a[j]]), int(lines.offset[a[j]]), why, obj[int(j)].as_py()))
    for j in np.flatnonzero(garbage):
        r.rej.append((int(lines.line[j]), int(lines.offset[j]), "text outside a JSON object", st[int(j)].as_py()))
    return r


def _export(inp: Input) -> _Recs:
    """The Journal Export Format, split by a tight loop over its bytes (records → JSON)."""
    buf = bytes(inp.buffer())
    n = len(buf)
    nlpos = np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)
    texts: list[str] = []
    starts: list[int] = []
    stops: list[int] = []
    bad: list[bool] = []
    rej: list[tuple[int, int, str]] = []  # start, stop, reason
    pos = 0
    while pos < n:
        if buf[pos] == 10:  # blank lines between records
            pos += 1
            continue
        start, rec, err = pos, {}, None
        while pos < n and buf[pos] != 10:
            nl = buf.find(b"\n", pos)
            nl = n if nl < 0 else nl
            eq = buf.find(b"=", pos, nl)
            if eq >= 0:
                key, val, pos = buf[pos:eq], buf[eq + 1:nl], nl + 1
            else:
                key = buf[pos:nl]
                if not _KEY_RE.match(key):
                    err = f"not a journal field name: {key[:40]!r}"
                    break
                if nl + 9 > n:
                    err = f"truncated binary field {key[:40]!r}"
                    break
                size = int.from_bytes(buf[nl + 1:nl + 9], "little")
                end = nl + 9 + size
                if end > n or (end < n and buf[end] != 10):
                    err = f"binary field {key[:40]!r}: length {size} runs past the record"
                    break
                val, pos = buf[nl + 9:end], end + 1
            if not _KEY_RE.match(key):
                err = f"not a journal field name: {key[:40]!r}"
                break
            # as journalctl -o json does: text that is not UTF-8 or not printable → byte array
            v: Any = list(val) if _CTRL_RE.search(val) or not _is_utf8(val) else val.decode("utf-8")
            k = key.decode("ascii")
            if k in rec:  # a field given several times: journalctl -o json makes an array
                prev = rec[k]
                if isinstance(prev, _Multi):
                    prev.append(v)
                else:
                    rec[k] = _Multi([prev, v])
            else:
                rec[k] = v
        if err is not None:
            m = buf.find(b"\n\n", pos)
            stop = n if m < 0 else m + 1
            rej.append((start, stop, err))
            pos = stop
            continue
        texts.append(orjson.dumps({k: (list(v) if isinstance(v, _Multi) else v) for k, v in rec.items()}).decode())
        starts.append(start)
        stops.append(min(pos, n))
        bad.append(False)
    r = _Recs()

    def line_of(p: np.ndarray) -> np.ndarray:
        return np.searchsorted(nlpos, p, side="left").astype(np.int64) + 1

    s_arr, e_arr = np.array(starts, np.int64), np.array(stops, np.int64)
    r.text = pa.array(texts, pa.large_string())
    r.line = line_of(s_arr)
    r.line_end = line_of(np.maximum(e_arr - 1, s_arr))
    r.offset = s_arr
    r.bad = np.array(bad, bool)
    for a, b, why in rej:
        r.rej.append((int(line_of(np.array([a]))[0]), a, why,
                      buf[a:min(b, a + 4000)].decode("utf-8", "backslashreplace").rstrip("\n")))
    return r


class _Multi(list):
    """Values of a field given more than once in one export record."""


def _read(inp: Input, layout: str | None = None) -> ReadResult:
    if layout not in (None, "json", "json-pretty", "export"):
        from ..errors import OptionError

        raise OptionError(f"{inp.path}: layout must be json, json-pretty or export, not {layout!r}")
    lay = layout or _layout(inp.head())
    rec = {"json": _json_lines, "json-pretty": _json_pretty, "export": _export}[lay](inp)
    meta: dict[str, Any] = {"clock": "realtime", "extra": {"layout": lay}}
    n = len(rec.text)
    rl, ro, rr, rw = ([x[i] for x in rec.rej] for i in range(4)) if rec.rej else ([], [], [], [])
    if n == 0:
        rej = make_rejects(inp.name, inp.path, rl, ro, rr, rw) if rl else None
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=rec.records, emitted=0,
                          rejects=rej, meta=meta)
    con = _k8s.connect()
    try:
        con.register("r", pa.table({"o": rec.text, "i": np.arange(n, dtype=np.int64)}))
        keys = [k for (k,) in con.sql(
            "select k from (select unnest(json_keys(o)) k, i from r) group by k order by min(i), k").fetchall()]
        akeys = [k for k in keys if k not in _CONSUMED]

        x = _k8s.Extract(akeys if _k8s.transform_spec(keys) is None else [])
        s = x.key

        def jt(k: str) -> str:
            return f"json_type({x.j(_k8s.json_path(k))})"

        mt, m0t, mj = jt("MESSAGE"), f"json_type({x.j('$.MESSAGE[0]')})", x.j(_k8s.json_path("MESSAGE"))
        extra = [
            ("tk.monotonic_ns", f"CAST(TRY_CAST({s('__MONOTONIC_TIMESTAMP')} AS BIGINT) * 1000 AS VARCHAR)"),
            ("MESSAGE", f"CASE WHEN {mt} = 'NULL' OR ({mt} = 'ARRAY' AND {m0t} <> 'UBIGINT')"
                        f" THEN {mj}::VARCHAR END"),
            ("tk.note", f"CASE WHEN {mt} = 'NULL' THEN 'MESSAGE was null: journalctl leaves out fields over"
                        " 4096 bytes unless given --all' END"),
        ]
        for k in ("__MONOTONIC_TIMESTAMP", "_PID", "_HOSTNAME"):  # keep them when not plain strings
            extra.append((k, f"CASE WHEN {jt(k)} <> 'VARCHAR' THEN {x.j(_k8s.json_path(k))}::VARCHAR END"))
        spec = _k8s.transform_spec(keys)
        if spec is not None:  # attrs built in Arrow from json_keys + json_transform (one parse)
            attrs = f"json_keys(o) AS kl, json_transform(o, {spec}) AS tv"
        else:
            attrs = f"{x.attrs([])} AS attrs"
        xcols = ", ".join(f"({e})::VARCHAR AS x{j}" for j, (_k, e) in enumerate(extra))
        sel = f"""i, {s('__REALTIME_TIMESTAMP')} AS rt, {s('_SOURCE_REALTIME_TIMESTAMP')} AS srt,
            {s('__MONOTONIC_TIMESTAMP')} AS mono, {s('_BOOT_ID')} AS boot,
            CASE WHEN {jt('_PID')} = 'VARCHAR' THEN {s('_PID')} END AS pid, {s('PRIORITY')} AS prio,
            coalesce({s('SYSLOG_IDENTIFIER')}, {s('_COMM')}) AS ident, {s('_TRANSPORT')} AS transport,
            coalesce({s('UNIT')}, {s('USER_UNIT')}, {s('_SYSTEMD_USER_UNIT')}, {s('_SYSTEMD_UNIT')}) AS unit,
            CASE WHEN {jt('_HOSTNAME')} = 'VARCHAR' THEN {s('_HOSTNAME')} END AS host,
            CASE WHEN {mt} = 'VARCHAR' THEN {s('MESSAGE')}
                 WHEN {mt} = 'ARRAY' AND {m0t} = 'VARCHAR' THEN {x.s('$.MESSAGE[0]')}
                 END AS msg,
            CASE WHEN {mt} = 'ARRAY' AND {m0t} = 'UBIGINT' THEN TRY_CAST({mj} AS UTINYINT[]) END AS msg_bytes,
            {mj}::VARCHAR AS msg_json, {xcols},
            {attrs}"""
        q = f"select {sel} from ({x.cte('r', 'i, o')}) order by i"
        res = con.sql(q).to_arrow_table()
    finally:
        con.close()

    def col(c: str) -> pa.Array:
        return res.column(c).combine_chunks()

    rt = _time.parse_epoch(col("rt"), "us")
    srt = _time.parse_epoch(col("srt"), "us")
    ts = np.where(rt["ok"], rt["ns"], srt["ns"])
    good = rt["ok"] | srt["ok"]
    for j in np.flatnonzero(~good):
        rl.append(int(rec.line[j]))
        ro.append(int(rec.offset[j]))
        rr.append("no __REALTIME_TIMESTAMP (or it is not a number of microseconds)")
        rw.append(rec.text[int(j)].as_py())
    # MESSAGE byte arrays → text, invalid UTF-8 escaped
    msg, bad_msg = _bytes_messages(col("msg_bytes"))
    message = pc.coalesce(col("msg"), msg)
    extras = {k: col(f"x{j}") for j, (k, _e) in enumerate(extra)}
    extras["tk.time_from"] = pa.array(np.where(rt["ok"], None, "_SOURCE_REALTIME_TIMESTAMP"), pa.string())
    extras["MESSAGE"] = pc.coalesce(extras["MESSAGE"], pc.if_else(pa.array(bad_msg), col("msg_json"),
                                                                   pa.scalar(None, pa.string())))
    note = pa.array(np.where(bad_msg, "MESSAGE is not valid UTF-8: bytes escaped as \\xNN (the byte array is in MESSAGE)",
                             np.where(rec.bad, "invalid UTF-8 in the input: bytes escaped as \\xNN", None)), pa.string())
    extras["tk.note"] = pc.coalesce(extras["tk.note"], note)
    keep = pa.array(good)
    rows = np.flatnonzero(good)
    if spec is not None:
        attrs = _k8s.build_attrs(col("kl"), col("tv"), set(_CONSUMED), extras)
    else:
        attrs = _k8s.add_attrs(col("attrs"), extras)
    attrs = attrs.filter(keep)
    host = col("host").filter(keep)
    unit = col("unit").filter(keep)
    entity = pc.binary_join_element_wise("unit", pc.coalesce(host, "?"), unit, "/")
    pid_txt = col("pid").filter(keep)
    pid = _time.parse_epoch(pid_txt, "ns")
    events = {
        "ts_src": ts[rows],
        "ts_prec": 1000,
        "kind": "log",
        "name": col("ident").filter(keep),
        "category": col("transport").filter(keep),
        "severity": normalize_severity(col("prio").filter(keep)),
        "host": host,
        "pid": pa.array(pid["ns"], pa.int64(), mask=~pid["ok"]),
        "entity": entity,
        "message": message.filter(keep),
        "attrs": attrs,
        "line": rec.line[rows],
        "line_end": rec.line_end[rows],
        "offset": rec.offset[rows],
    }
    # both clocks: the realtime of each boot's monotonic zero, median over its records
    mono = _time.parse_epoch(col("mono"), "us")
    boots = col("boot").to_pylist()
    both = good & rt["ok"] & mono["ok"]
    anchors: dict[str, dict[str, Any]] = {}
    barr = np.array([b if b is not None else "" for b in boots], dtype=object)
    for b in sorted({x for x, ok in zip(boots, both) if ok and x}):
        sel = both & (barr == b)
        diff = rt["ns"][sel] - mono["ns"][sel]
        srt_d = np.sort(diff)  # the median in int64: a float would lose the ns at epoch scale
        lo, hi = srt_d[(diff.size - 1) // 2], srt_d[diff.size // 2]
        med = int(lo + (hi - lo) // 2)
        anchors[b] = {"anchor_ns": med, "anchor": _time.fmt_ns(med), "records": int(sel.sum()),
                      "spread_ns": int(diff.max() - diff.min())}
    meta["extra"]["boot_anchors"] = anchors
    uboots = {b for b, g in zip(boots, good) if g and b}
    if len(uboots) == 1:
        meta["boot_id"] = next(iter(uboots))
    hosts = pc.unique(pc.drop_null(host)).to_pylist()
    if len(hosts) == 1:
        meta["host"] = hosts[0]
    notes = []
    if rec.bad.any():
        notes.append(f"{int(rec.bad.sum())} records with invalid UTF-8 in the input (bytes escaped as \\xNN)")
    if bad_msg.any():
        notes.append(f"{int(bad_msg.sum())} MESSAGE byte arrays not valid UTF-8 (escaped \\xNN)")
    nnull = int(pc.sum(pc.equal(col("msg_json"), "null")).as_py() or 0)
    if nnull:
        notes.append(f"{nnull} MESSAGE null (over 4096 bytes; journalctl --all keeps them)")
    if notes:
        meta["note"] = "; ".join(notes)
    rej = make_rejects(inp.name, inp.path, rl, ro, rr, rw) if rl else None
    return ReadResult(events=events, records=rec.records, emitted=len(rows), rejects=rej, meta=meta)


def _bytes_messages(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """list<uint8> → string (null stays null); the mask of values that were not UTF-8."""
    n = len(lists)
    bad = np.zeros(n, bool)
    if n == 0 or lists.null_count == n:
        return pa.nulls(n, pa.string()), bad
    lists = lists.cast(pa.large_list(pa.uint8()))
    if lists.offset:
        lists = pa.concat_arrays([lists])
    offs = lists.offsets.to_numpy().astype(np.int64)
    vals = lists.values.to_numpy(zero_copy_only=False).astype(np.uint8)
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [lists.buffers()[0], pa.py_buffer(offs), pa.py_buffer(vals)])
    try:
        return raw.cast(pa.large_string()).cast(pa.string()), bad
    except pa.ArrowInvalid:
        pass
    vals = raw.to_pylist()  # rare: only arrays that are not UTF-8 take this path
    out: list[str | None] = []
    for j, v in enumerate(vals):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(v.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(v.decode("utf-8", "backslashreplace"))
            bad[j] = True
    return pa.array(out, pa.string()), bad


register(
    Reader(
        name="journald",
        description="systemd journal: journalctl -o json, -o json-pretty, -o export",
        sniff=_sniff,
        read=_read,
        options={"layout": "json, json-pretty or export; default: told from the content"},
        extensions=(".json", ".export", ".journal.json"),
    )
)
