"""JSON lines (structured app logs): one JSON object per line.

The time, level and message fields are found from the usual names (``ts``, ``time``,
``timestamp``, ``@timestamp``, ``level``, ``severity``, ``msg``, ``message``, …), nested paths
(ECS ``{"log": {"level": ...}}``, lnav ``{"@fields": {"lvl": ..., "msg": ...}}``) included, or
named with options. Times are ISO-8601 with any offset, or epoch s/ms/µs/ns (numbers or
strings; the unit is guessed from the magnitude unless ``time_unit=`` says). Every other key
goes to ``attrs`` (encoding in :mod:`tracekit.schema`).

How it is fast (one parse, both cores, no Python object per line):

* the lines are one Arrow column; DuckDB's ``from_json`` turns every line into a struct of
  all its top-level keys as text (strings as-is, other values as compact JSON) in one
  parallel pass — ``try()`` makes a bad line a NULL, so one bad line costs nothing but its
  own reject;
* the keys are found on a sample; the same pass counts each line's keys, so a line holding a
  key the sample missed (or a ``null`` value, or a duplicate key) is seen and re-read alone as
  a ``MAP`` — exactness never depends on the sample;
* ``attrs`` is assembled from the typed columns with one vectorised gather, and common ISO
  times are parsed from fixed byte positions (other layouts go to :mod:`tracekit._time`).

Blank lines are not records.
"""

from __future__ import annotations

import json
import re
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
_SAMPLE = 2000  # lines whose keys are listed up front (head + evenly spaced)
_REASON_JSON = "not a JSON object (invalid or truncated JSON)"
_FIRST_KEY = re.compile(rb'^\{\s*"([^"\\]{1,40})"\s*:')
_LOG_FIRST_KEYS = set(TIME_KEYS + LEVEL_KEYS + MESSAGE_KEYS)
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

    lines = split_lines(inp)
    text = lines.text
    if lines.bad_utf8.size:
        text = _escape_bad_utf8(text, lines.bad_utf8 - 1)
    blank = _blank(text)
    keep = ~blank
    if blank.any():
        text = text.filter(pa.array(keep))
    lno = lines.line[keep]
    offs = lines.offset[keep]
    n = len(text)

    con = duckdb.connect()
    try:
        con.register("t", pa.table({"line": text}))
        parsed = _parse(con, n, forced)
    finally:
        con.close()
    ok_json, roles, cols = parsed["ok"], parsed["roles"], parsed["cols"]
    reject_parts: list[tuple[np.ndarray, str]] = []
    if not ok_json.all():
        reject_parts.append((np.flatnonzero(~ok_json), _REASON_JSON))

    # times (on a second thread) while attrs are gathered
    tcol = cols["r_time"] if cols["r_time"] is not None else pa.nulls(n, pa.string())
    with ThreadPoolExecutor(1) as ex:
        fut = ex.submit(_parse_times, tcol, time_unit)
        # pid/tid must be integers to be columns; otherwise they stay in attrs
        for c in ("pid", "tid"):
            v = cols.get(f"r_{c}")
            if v is not None and roles[c] and not _all_ints(v.filter(pa.array(ok_json))):
                parsed["used"].discard(roles[c][0])
                cols[f"r_{c}"] = None
        attrs = _attrs(parsed, n)
        tres = fut.result()
    tvalid = pc.is_valid(tcol).to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    ok = tres["ok"] & tvalid & ok_json
    bad_t = ok_json & ~ok
    if bad_t.any():
        missing = bad_t & ~tvalid
        unread = bad_t & tvalid
        looked = ", ".join(roles["time"][:6]) or "ts, time, timestamp"
        if missing.any():
            reject_parts.append((np.flatnonzero(missing), f"no time field (looked for {looked}…; set time_field=)"))
        if unread.any():
            reject_parts.append((np.flatnonzero(unread), "cannot read the time field (not ISO-8601 or an epoch number)"))
    all_ok = bool(ok.all())
    sel = None if all_ok else pa.array(ok)

    def take(a: pa.Array | None) -> pa.Array | None:
        if a is None:
            return None
        return a if sel is None else a.filter(sel)

    rows = np.flatnonzero(ok) if not all_ok else None
    msg = take(cols["r_message"])
    name = take(cols["r_name"])
    out: dict[str, Any] = {
        "ts_src": tres["ns"] if all_ok else tres["ns"][ok],
        "ts_prec": tres["prec"] if all_ok else tres["prec"][ok],
        "kind": "log",
        "message": msg,
        "severity": normalize_severity(take(cols["r_level"])) if cols["r_level"] is not None else None,
        "name": msg if name is None else pc.coalesce(name, msg),
        "line": lno if all_ok else lno[rows],
        "offset": offs if all_ok else offs[rows],
        "attrs": take(attrs),
    }
    for c in ("host", "trace_id", "span_id", "category", "entity", "state", "parent_id", "flow_id"):
        out[c] = take(cols.get(f"r_{c}"))
    for c in ("pid", "tid"):
        v = take(cols.get(f"r_{c}"))
        out[c] = None if v is None else pc.cast(v, pa.int64())
    if cols.get("r_value") is not None:
        out["value"] = _to_float(take(cols["r_value"]))

    meta: dict[str, Any] = {"clock": "realtime"}
    assumed = {}
    if (ok & ~tres["tz"]).any():
        assumed["tz"] = "UTC (times without an offset were read as UTC)"
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    if not ok_json.any() and n:
        meta["note"] = "no valid JSON object lines"
    meta["assumed"] = assumed
    meta["fields"] = {r: v for r, v in roles.items() if v}
    rej = _rejects(inp, lno, offs, text, reject_parts)
    return ReadResult(events=out, records=n, emitted=int(ok.sum()), rejects=rej, meta=meta)


def _escape_bad_utf8(text: pa.Array, idx: np.ndarray) -> pa.Array:
    """Lines that were not UTF-8 carry ``\\xNN`` escapes (see split_lines); make them JSON
    ``\\\\xNN`` so such a line still parses, its bad bytes kept as text."""
    vals = text.to_pylist()
    for i in idx.tolist():
        vals[i] = vals[i].replace("\\x", "\\\\x")
    return pa.array(vals, text.type)


def _blank(text: pa.Array) -> np.ndarray:
    """Lines holding only white space, checked exactly only where the first byte is one."""
    n = len(text)
    if n == 0:
        return np.zeros(0, dtype=bool)
    offs = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset : text.offset + n + 1]
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8)
    lens = np.diff(offs)
    first = np.full(n, 0x20, dtype=np.uint8)
    nz = lens > 0
    first[nz] = data[offs[:-1][nz]]
    cand = np.flatnonzero(np.isin(first, _WS))
    out = np.zeros(n, dtype=bool)
    if cand.size:
        sub = text.take(pa.array(cand))
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(sub)), 0).to_numpy(zero_copy_only=False)
        out[cand[np.asarray(empty, dtype=bool)]] = True
    return out


def _sample_keys(con: Any, n: int) -> list[str]:
    """Top-level keys of a sample of lines (all lines for small inputs), first-seen order."""
    if n <= 4 * _SAMPLE:
        where = ""
    else:
        step = max(n // _SAMPLE, 1)
        where = f"where i < {_SAMPLE} or i % {step} = 0"
    q = (
        "select k from (select unnest(try(json_keys(line))) k, i from "
        f"(select line, row_number() over () - 1 i from t) {where}) group by k order by min(i), k"
    )
    return [r[0] for r in con.sql(q).fetchall()]


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


def _parse(con: Any, n: int, forced: dict[str, str | None]) -> dict[str, Any]:
    """One DuckDB pass: role columns, every key as text, and the lines to re-read as a MAP."""
    keys = _sample_keys(con, n) if n else []
    for _attempt in range(2):
        # keys equal but for case cannot share a struct; the later ones are read as MAP
        seen: set[str] = set()
        skeys = []
        for k in keys + [v for v in forced.values() if v is not None and v not in keys]:
            if k.lower() not in seen:
                seen.add(k.lower())
                skeys.append(k)
        as_map = len(skeys) > _MAX_KEYS
        if as_map:
            skeys = [k for k in skeys if k in {v for v in forced.values() if v} or
                     any(k in c for c in _ROLE_KEYS.values()) or k in NEST_KEYS]
        present = set(skeys)
        roles = _pick_roles(skeys, forced)
        exprs = []
        for role, cands in roles.items():
            parts = [e for c in cands for e in _role_exprs(c, present)]
            if parts:
                exprs.append(f"coalesce({', '.join(parts)}) AS r_{role}" if len(parts) > 1 else f"{parts[0]} AS r_{role}")
        # the first present literal candidate of a role leaves attrs; other candidates stay
        used = {next(c for c in cands if c in present) for cands in roles.values()
                if any(c in present for c in cands)}
        # pid/tid keys stay columns only if every value is an integer: keep their text too
        idkeys = {roles[c][0] for c in ("pid", "tid") if roles[c] and roles[c][0] in present}
        akeys = [k for k in skeys if k not in used or k in idkeys]
        struct = "{" + ",".join(json.dumps(k) + ':"VARCHAR"' for k in skeys) + "}" if skeys else None
        if struct is None:
            q = ("select try(json_type(line)) = 'OBJECT' AS ok, "
                 "coalesce(len(try(json_keys(line))), 0) AS miss from t")
        else:
            nn = " + ".join(f"(s.{_ident(k)} IS NOT NULL)::INTEGER" for k in skeys)
            okx = "s IS NOT NULL AND (starts_with(line, '{') OR try(json_type(line)) = 'OBJECT')"
            body = ", ".join(exprs + [f"s.{_ident(k)} AS {_ident('a_' + k)}" for k in akeys])
            q = (f"select {okx} AS ok, CASE WHEN {okx} THEN len(try(json_keys(line))) - ({nn}) END AS miss"
                 f"{', ' + body if body else ''} from (select line, try(from_json(line, {_lit(struct)})) s from t)")
        res = con.sql(q).to_arrow_table()
        ok = np.asarray(pc.fill_null(res.column("ok"), False).to_numpy(zero_copy_only=False), dtype=bool)
        miss = pc.fill_null(res.column("miss"), 0).to_numpy(zero_copy_only=False)
        careful = np.flatnonzero(ok & (miss != 0)) if not as_map else np.flatnonzero(ok)
        extra: list[str] = []
        cmap = None
        if careful.size:
            cmap, extra = _read_maps(con, careful, set(skeys))
        role_cands = {c for cs in _ROLE_KEYS.values() for c in cs} | set(NEST_KEYS)
        role_cands |= {c.split(".")[0] for c in role_cands}
        if _attempt == 0 and not as_map and any(k in role_cands for k in extra):
            keys = keys + [k for k in extra if k not in keys]
            continue
        break
    cols: dict[str, Any] = {}
    for role in roles:
        name = f"r_{role}"
        cols[name] = res.column(name).combine_chunks() if name in res.column_names else None
    return {"ok": ok, "roles": roles, "cols": cols, "careful": careful, "cmap": cmap,
            "used": used, "akeys": akeys, "res": res}


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


def _attrs(parsed: dict[str, Any], n: int) -> pa.Array:
    """``attrs`` for every line: the typed key columns gathered row-major into one MapArray;
    lines re-read as MAP contribute their own entries (minus the role keys)."""
    res: pa.Table = parsed["res"]
    names = [k for k in parsed["akeys"] if k not in parsed["used"]]
    chunks: list[pa.Array] = []
    for k in names:
        chunks.extend(res.column(f"a_{k}").chunks)
    careful = parsed["careful"]
    cmap: pa.Array | None = parsed["cmap"]
    valid = np.zeros((len(names), n), dtype=bool)
    for j, k in enumerate(names):
        valid[j] = res.column(f"a_{k}").is_valid().to_numpy(zero_copy_only=False)
    K = len(names)
    if careful.size:
        valid[:, careful] = False
    counts = valid.sum(axis=0, dtype=np.int64) if K else np.zeros(n, dtype=np.int64)
    cm_keys = cm_vals = None
    if careful.size and cmap is not None:
        drop = pa.array(sorted(parsed["used"]), pa.string())
        flat_keys = cmap.keys
        flat_vals = pc.fill_null(cmap.items, "null")
        m_off = np.frombuffer(cmap.offsets.buffers()[1], dtype=np.int32)[cmap.offsets.offset:][: len(cmap) + 1].astype(np.int64)
        m_off = m_off - m_off[0]
        keepe = ~np.asarray(pc.is_in(flat_keys, value_set=drop).to_numpy(zero_copy_only=False), dtype=bool)
        row_of = np.repeat(np.arange(len(cmap)), np.diff(m_off))
        ccount = np.bincount(row_of[keepe], minlength=len(cmap))
        counts[careful] = ccount
        cm_keys = flat_keys.filter(pa.array(keepe))
        cm_vals = flat_vals.filter(pa.array(keepe))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    vidx = np.empty(total, dtype=np.int64)
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
    kd = pa.DictionaryArray.from_arrays(pa.array(np.maximum(kidx, 0)), pa.array(names or [""], pa.string()))
    keys = kd.cast(pa.string())
    if cm_keys is not None and len(cm_keys):
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
    """``YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH:MM|±HHMM]`` read from byte positions, grouped
    by length. Fills the outputs where it matched and returns that mask; the rest is left to
    the general parser (same rules: mo 1–12, d 1–31, hh ≤ 24, mm ≤ 59, ss ≤ 60)."""
    n = len(col)
    done = np.zeros(n, dtype=bool)
    if n == 0 or col.null_count == n:
        return done
    offs = np.frombuffer(col.buffers()[1], dtype=np.int32)[col.offset : col.offset + n + 1].astype(np.int64)
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)
    lens = np.diff(offs)
    if col.null_count:
        lens = np.where(col.is_valid().to_numpy(zero_copy_only=False), lens, 0)
    for L in np.unique(lens[(lens >= 19) & (lens <= 35)]).tolist():
        rows = np.flatnonzero(lens == L)
        start = offs[rows]

        def at(p: int, start: np.ndarray = start) -> np.ndarray:
            return data[start + p]

        sep = (at(4) == 45) & (at(7) == 45) & np.isin(at(10), (84, 32)) & (at(13) == 58) & (at(16) == 58)
        if not sep.any():
            continue
        last = at(L - 1)
        # tz kinds: 0 none, 1 'Z', 6 '±HH:MM', 5 '±HHMM'
        tzlen = np.where(last == 90, 1, 0)
        if L >= 25:
            tzlen[np.isin(at(L - 6), (43, 45)) & (at(L - 3) == 58)] = 6
        if L >= 24:
            tzlen[(tzlen == 0) & np.isin(at(L - 5), (43, 45))] = 5
        for tl in np.unique(tzlen[sep]).tolist():
            fl = L - 19 - tl  # '.' + digits, or 0
            if fl == 1 or fl > 10 or fl < 0:
                continue
            sel = np.flatnonzero(sep & (tzlen == tl))
            st = start[sel]
            # every digit position at once: date/time (14), fraction (fl-1), offset (4)
            pos = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18] + list(range(20, 19 + fl))
            if tl in (5, 6):
                pos += [L - tl + 1, L - tl + 2, L - 2, L - 1]
            d = data[st[:, None] + np.array(pos)].astype(np.int16) - 48
            g = np.all((d >= 0) & (d <= 9), axis=1)
            d = d.astype(np.int64)
            y = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
            mo, day = d[:, 4] * 10 + d[:, 5], d[:, 6] * 10 + d[:, 7]
            hh, mi, ss = d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11], d[:, 12] * 10 + d[:, 13]
            frac = np.zeros(len(st), dtype=np.int64)
            if fl:
                g &= np.isin(data[st + 19], (46, 44))
                frac = d[:, 14 : 14 + fl - 1] @ (10 ** np.arange(9 - 1, 9 - fl, -1, dtype=np.int64))
            off_min = np.zeros(len(st), dtype=np.int64)
            if tl in (5, 6):
                o = d[:, -4:]
                sign = np.where(data[st + L - tl] == 45, -1, 1)
                off_min = sign * ((o[:, 0] * 10 + o[:, 1]) * 60 + o[:, 2] * 10 + o[:, 3])
            g &= (mo >= 1) & (mo <= 12) & (day >= 1) & (day <= 31) & (hh <= 24) & (mi <= 59) & (ss <= 60)
            days = _time.days_from_civil(y, mo, day)
            val = (days * 86400 + hh * 3600 + mi * 60 + ss - off_min * 60) * _time.NS + frac
            r = rows[sel[g]]
            ns[r] = val[g]
            ok[r] = True
            tz[r] = tl > 0
            prec[r] = 10 ** (9 - (fl - 1)) if fl else _time.NS
            done[r] = True
    return done


# --------------------------------------------------------------------------- small helpers


def _all_ints(v: pa.Array) -> bool:
    if v.null_count == len(v):
        return False
    nn = pc.drop_null(v)
    return bool(pc.all(pc.match_substring_regex(nn, r"^-?\d{1,18}$")).as_py())


def _to_float(v: pa.Array) -> pa.Array:
    import polars as pl

    return pl.from_arrow(v).cast(pl.Float64, strict=False).to_arrow()


def _rejects(inp: Input, lno: np.ndarray, offs: np.ndarray, text: pa.Array,
             parts: list[tuple[np.ndarray, str]]) -> pa.Table | None:
    if not parts:
        return None
    idx = np.concatenate([p[0] for p in parts])
    reasons = np.concatenate([np.full(len(p[0]), p[1], dtype=object) for p in parts])
    order = np.argsort(idx, kind="stable")
    idx, reasons = idx[order], reasons[order]
    raw = pc.utf8_rtrim(text.take(pa.array(idx)), characters="\r\n")
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
