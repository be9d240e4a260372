"""JSON lines (structured app logs): one JSON object per line.

The time, level and message fields are found from the usual names (``ts``, ``time``,
``timestamp``, ``@timestamp``, ``level``, ``severity``, ``msg``, ``message``, …), nested paths
(ECS ``{"log": {"level": ...}}``) included, or named with options. Times are ISO-8601 with any
offset, or epoch s/ms/µs/ns (numbers or strings; the unit is guessed from the magnitude unless
``time_unit=`` says). Every other key goes to ``attrs`` (encoding in :mod:`tracekit.schema`).

Vectorised: the lines are one Arrow column; DuckDB's JSON functions extract every key of every
line in one pass over both cores; a bad line is a reject found by ``json_valid`` and costs
nothing extra. Blank lines are not records.
"""

from __future__ import annotations

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

_CANONICAL = ("entity", "state", "host", "pid", "tid", "trace_id", "span_id", "parent_id",
              "category", "name", "flow_id", "value")
_MAX_KEYS = 400  # beyond this many distinct keys, attrs are built with a MAP cast instead

_TIME_SNIFF = {k.encode() for k in TIME_KEYS}


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
            if i == len(lines) - 1 or i == len(lines[:10]) - 1:
                continue  # the head may cut the last line
            continue
        if isinstance(obj, dict):
            objs += 1
            if any(k in obj for k in TIME_KEYS) or "log" in obj or "@timestamp" in obj:
                timeish += 1
    if objs == 0:
        return 0.0
    return 0.6 if timeish else 0.5


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _nested_path(key: str) -> str | None:
    if "." not in key:
        return None
    return "$." + ".".join('"' + p.replace('"', '\\"') + '"' for p in key.split("."))


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

    lines = split_lines(inp)
    blank = lines.blank()
    keep = ~blank
    text = lines.text.filter(pa.array(keep)) if blank.any() else lines.text
    lno = lines.line[keep]
    offs = lines.offset[keep]
    n = len(text)
    con = duckdb.connect()
    try:
        con.register("t", pa.table({"line": text, "i": np.arange(n, dtype=np.int64)}))
        valid = np.asarray(
            con.sql("select CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END from t").to_arrow_table()
            .column(0).to_numpy(zero_copy_only=False), dtype=bool,
        )
        if n and not valid.all():
            con.unregister("t")
            con.register("t", pa.table({"line": text.filter(pa.array(valid)), "i": np.flatnonzero(valid)}))
        keys = [r[0] for r in con.sql(
            "select k from (select unnest(json_keys(line)) k, i from t) group by k order by min(i), k"
        ).fetchall()] if valid.any() else []

        # which keys feed which canonical column (first candidate present wins, per line)
        def pick(option: str | None, candidates: tuple[str, ...]) -> list[str]:
            if option is not None:
                return [option]
            return [c for c in candidates if c in keys or _nested_path(c)]

        roles = {
            "time": pick(time_field, TIME_KEYS),
            "level": pick(level_field, LEVEL_KEYS),
            "message": pick(message_field, MESSAGE_KEYS),
            "name": [fields["name"]] if "name" in fields else [k for k in NAME_KEYS if k in keys],
            "host": [fields["host"]] if "host" in fields else [k for k in HOST_KEYS if k in keys],
            "pid": [fields["pid"]] if "pid" in fields else [k for k in PID_KEYS if k in keys],
            "tid": [fields["tid"]] if "tid" in fields else [k for k in TID_KEYS if k in keys],
            "trace_id": [fields["trace_id"]] if "trace_id" in fields else [k for k in TRACE_KEYS if k in keys],
            "span_id": [fields["span_id"]] if "span_id" in fields else [k for k in SPAN_KEYS if k in keys],
            "category": [fields["category"]] if "category" in fields else [k for k in CATEGORY_KEYS if k in keys],
        }
        for col in ("entity", "state", "parent_id", "flow_id", "value"):
            if col in fields:
                roles[col] = [fields[col]]
        # role expressions: literal key path first, then nested path for dotted names
        exprs = []
        for role, cands in roles.items():
            paths = []
            for c in cands:
                if c in keys or role not in ("time", "level", "message"):
                    paths.append(_path(c))
                npth = _nested_path(c)
                if npth is not None:
                    paths.append(npth)
            if not paths:
                exprs.append(f"NULL::VARCHAR AS r_{role}")
                if role == "time":
                    exprs.append("NULL::VARCHAR AS r_time_type")
                continue
            co = ", ".join(f"json_extract_string(line, {_lit(p)})" for p in paths)
            exprs.append(f"coalesce({co}) AS r_{role}" if len(paths) > 1 else f"{co} AS r_{role}")
            if role == "time":
                ty = ", ".join(f"json_type(line, {_lit(p)})" for p in paths)
                exprs.append(f"coalesce({ty}) AS r_time_type" if len(paths) > 1 else f"{ty} AS r_time_type")
        used = {c for role in ("time", "level", "message") for c in roles[role] if c in keys}
        used |= {c for role, cs in roles.items() if role not in ("time", "level", "message") for c in cs if c in keys}
        akeys = [k for k in keys if k not in used]
        if akeys and len(akeys) <= _MAX_KEYS:
            kl = "[" + ",".join(_lit(k) for k in akeys) + "]"
            pl_ = "[" + ",".join(_lit(_path(k)) for k in akeys) + "]"
            exprs.append(
                f"map_from_entries(list_transform(list_filter(list_zip({kl}, json_extract_string(line, {pl_}),"
                f" json_extract(line, {pl_})), lambda x: x[3] IS NOT NULL),"
                f" lambda x: struct_pack(k := x[1], v := coalesce(x[2], 'null')))) AS r_attrs"
            )
        elif akeys:
            skip = "[" + ",".join(_lit(k) for k in used) + "]" if used else "[]::VARCHAR[]"
            exprs.append(
                "map_from_entries(list_transform(list_filter(map_entries(CAST(line::JSON AS MAP(VARCHAR, JSON))),"
                f" lambda e: NOT list_contains({skip}, e.key)),"
                " lambda e: struct_pack(k := e.key, v := coalesce(json_extract_string(e.value, '$'), 'null')))) AS r_attrs"
            )
        res = con.sql("select " + ", ".join(exprs) + " from t order by i").to_arrow_table() if valid.any() else None
    finally:
        con.close()

    vidx = np.flatnonzero(valid)
    reject_parts = []
    if (~valid).any():
        inv = np.flatnonzero(~valid)
        reject_parts.append((inv, "not a JSON object (invalid or truncated JSON)"))
    if res is None:
        rej = _rejects(inp, lno, offs, text, reject_parts)
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=n, emitted=0,
                          rejects=rej, meta={"clock": "realtime", "note": "no valid JSON object lines"})

    tcol = res.column("r_time").combine_chunks()
    ttype = res.column("r_time_type").combine_chunks()
    numeric = pc.fill_null(pc.is_in(ttype, pa.array(["UBIGINT", "BIGINT", "DOUBLE"])), False).to_numpy(zero_copy_only=False)
    iso = _time.parse_iso8601(tcol)
    ep = _time.parse_epoch(tcol, time_unit)
    # strings that look like plain numbers are epochs too
    use_epoch = numeric | (~iso["ok"] & ep["ok"])
    ts = np.where(use_epoch, ep["ns"], iso["ns"])
    ok = np.where(use_epoch, ep["ok"], iso["ok"]) & pc.is_valid(tcol).to_numpy(zero_copy_only=False)
    prec = np.where(use_epoch, ep["prec"], iso["prec"])
    naive = ~use_epoch & ok & ~iso["tz"]
    if (~ok).any():
        badt = np.flatnonzero(~ok)
        missing = ~pc.is_valid(tcol).to_numpy(zero_copy_only=False)[badt]
        if missing.any():
            reject_parts.append((vidx[badt[missing]], f"no time field (looked for {', '.join(roles['time'][:6])}…; set time_field=)"))
        if (~missing).any():
            reject_parts.append((vidx[badt[~missing]], "cannot read the time field (not ISO-8601 or an epoch number)"))
    keep_rows = pa.array(ok)
    out = res.filter(keep_rows)
    rows = vidx[ok]
    cols: dict[str, Any] = {
        "ts_src": ts[ok],
        "ts_prec": prec[ok],
        "kind": "log",
        "message": out.column("r_message"),
        "severity": normalize_severity(out.column("r_level")),
        "line": lno[rows],
        "offset": offs[rows],
    }
    name = out.column("r_name")
    cols["name"] = pc.coalesce(name, out.column("r_message")) if name.null_count < len(name) else out.column("r_message")
    for c in ("host", "trace_id", "span_id", "category", "entity", "state", "parent_id", "flow_id"):
        if f"r_{c}" in out.column_names:
            cols[c] = out.column(f"r_{c}")
    for c in ("pid", "tid"):
        v = out.column(f"r_{c}")
        cols[c] = pc.cast(v, pa.int64(), safe=False) if _all_ints(v) else None
    if "r_value" in out.column_names:
        cols["value"] = pc.cast(out.column("r_value"), pa.float64(), safe=False)
    if "r_attrs" in out.column_names:
        attrs = out.column("r_attrs").combine_chunks()
        if attrs.null_count:
            attrs = pc.fill_null(attrs, pa.scalar([], attrs.type))
        cols["attrs"] = attrs
    meta: dict[str, Any] = {"clock": "realtime"}
    assumed = {}
    if naive.any():
        assumed["tz"] = "UTC (times without an offset were read as UTC)"
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    meta["assumed"] = assumed
    meta["fields"] = {r: v for r, v in roles.items() if v}
    rej = _rejects(inp, lno, offs, text, reject_parts)
    return ReadResult(events=cols, records=n, emitted=int(ok.sum()), rejects=rej, meta=meta)


def _all_ints(v: pa.ChunkedArray) -> bool:
    if v.null_count == len(v):
        return False
    nn = pc.drop_null(v)
    return bool(pc.all(pc.match_substring_regex(nn, r"^-?\d{1,18}$")).as_py())


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
