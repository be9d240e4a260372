"""logfmt: ``key=value key2="quoted \\"value\\""`` lines (logrus, go-kit, slog, Temporal …).

The time comes from ``time``/``ts``/``timestamp``/``@timestamp``/``t`` (ISO-8601 with any
offset, Go's ``2022/09/11 16:31:21.198136`` and ``time.Time.String()`` forms, or an epoch
number), the level from ``level``/``lvl``/``loglevel``/``severity`` and the message from
``msg``/``message``; every other key goes to ``attrs`` as a string (quotes removed, escapes
decoded). ``namespace`` + ``pod`` keys name the entity ``pod/<ns>/<pod>``. Text on a line that
is not a ``key=value`` pair is kept in ``attrs["tk.rest"]``; a level word that maps onto no
severity is kept in ``attrs["level"]``.

A line without a time is rejected with the reason (``untimed="previous"`` gives it the time of
the line above instead, flagged ``attrs["tk.time"] = "previous"``). Lines that are JSON objects
(streams that mix logfmt and zap/JSON output) are read by the JSON-lines reader and keep
their own line numbers. Times without an offset are read in ``tz`` (default UTC, recorded in
the source's ``assumed``).

Vectorised: ``key=value`` tokens of every line are pulled out with one polars
``str.extract_all`` over the column, exploded to one row per token and put back together by
line; only quoted values holding a backslash go through DuckDB's JSON string decoder.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("app.log", format="logfmt")             # doctest: +SKIP
    >>> tl.events.select(["ts", "severity", "message", "attrs"])  # doctest: +SKIP
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..errors import OptionError, ParseError
from ..schema import EVENT_SCHEMA, REJECT_SCHEMA, conform, normalize_severity
from ._base import HEAD_BYTES, Input, Reader, ReadResult, make_rejects, register, split_lines

TIME_KEYS = ("time", "ts", "timestamp", "@timestamp", "t")
LEVEL_KEYS = ("level", "lvl", "loglevel", "severity")
MESSAGE_KEYS = ("msg", "message")
_EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "host": ("host", "hostname"),
    "pid": ("pid",),
    "tid": ("tid",),
    "trace_id": ("trace_id", "traceID", "traceId"),
    "span_id": ("span_id", "spanID", "spanId"),
    "category": ("logger", "component", "caller"),
}
_FIELD_COLUMNS = ("host", "pid", "tid", "trace_id", "span_id", "category", "name", "entity", "state")

#: one ``key=value`` token: a key at the start of the line or after white space, then a quoted
#: value (escapes allowed) or a bare one (possibly empty)
_KV = r'(?:^|\s)[^\s="]+=(?:"(?:[^"\\]|\\.)*"|\S*)'
_KV_PY = re.compile(r'(?:^|(?<=\s))[^\s="]+=(?:"(?:[^"\\]|\\.)*"|\S*)')
_START_PY = re.compile(r'\s*[^\s="]+=')
_INT_RE = r"^-?\d{1,18}$"


# --------------------------------------------------------------------------- sniff


def _sniff(head: bytes, name: str) -> float:
    """≥0.6 when most lines are ``key=value`` pairs and some carry a time and a level/msg key."""
    if b"\x00" in head[:4096]:
        return 0.0
    chunk = head.split(b"\n")
    if len(head) >= HEAD_BYTES and len(chunk) > 1:
        chunk = chunk[:-1]  # the head may cut the last line
    lines = [ln.decode("utf-8", "replace").strip() for ln in chunk[:40]]
    lines = [ln for ln in lines if ln]
    if not lines:
        return 0.0
    kv_lines = multi = timed = 0
    other = 0
    for ln in lines:
        if ln.startswith("{"):
            continue  # JSON lines mixed in are read too, but do not make a file logfmt
        other += 1
        if not _START_PY.match(ln):
            continue
        toks = _KV_PY.findall(ln)
        rest = _KV_PY.sub("", ln).strip()
        if not toks or len(rest) > 0.2 * len(ln):
            continue
        kv_lines += 1
        keys = {t.strip().split("=", 1)[0] for t in toks}
        if len(toks) >= 2:
            multi += 1
        if keys & set(TIME_KEYS) and keys & set(LEVEL_KEYS + MESSAGE_KEYS):
            timed += 1
    if other == 0:
        return 0.0
    frac = kv_lines / other
    if frac >= 0.8 and timed and multi >= 0.3 * other:
        return 0.6 + 0.1 * (timed / other)
    if frac >= 0.8 and multi >= 0.5 * other:
        return 0.4
    return 0.0


# --------------------------------------------------------------------------- read


def _read(
    inp: Input,
    time_field: str | None = None,
    level_field: str | None = None,
    message_field: str | None = None,
    time_unit: str | None = None,
    tz: str = "UTC",
    untimed: str = "reject",
    fields: dict[str, str] | None = None,
) -> ReadResult:
    if time_unit not in (None, "s", "ms", "us", "ns"):
        raise OptionError(f"{inp.path}: time_unit must be one of s, ms, us, ns, not {time_unit!r}")
    if untimed not in ("reject", "previous"):
        raise OptionError(f"{inp.path}: untimed must be 'reject' or 'previous', not {untimed!r}")
    fields = dict(fields or {})
    bad = set(fields) - set(_FIELD_COLUMNS)
    if bad:
        raise OptionError(f"{inp.path}: fields= maps columns {list(_FIELD_COLUMNS)} to keys; not {sorted(bad)}")
    _check_tz(tz, inp.path)

    lines = split_lines(_input_buffer(inp))
    keep = np.flatnonzero(~lines.blank())
    text = pc.utf8_rtrim(lines.text.take(pa.array(keep)), characters="\r\n") if len(keep) else pa.array([], pa.large_string())
    lno, offs = lines.line[keep], lines.offset[keep]
    n = len(keep)
    s = pl.Series("s", text) if n else pl.Series("s", [], pl.String)
    is_json = s.str.strip_chars_start().str.starts_with("{").to_numpy() if n else np.zeros(0, bool)
    is_json = np.asarray(is_json, dtype=bool)

    parts: list[pa.Table] = []
    rej_parts: list[pa.Table] = []
    meta: dict[str, Any] = {"clock": "realtime", "assumed": {}}
    emitted = 0

    li = np.flatnonzero(~is_json)
    if len(li):
        ev, rej, em, m = _read_logfmt(inp, s.gather(li), lno[li], offs[li], time_field, level_field,
                                      message_field, time_unit, tz, untimed, fields)
        emitted += em
        if ev is not None:
            parts.append(ev)
        if rej is not None:
            rej_parts.append(rej)
        meta["assumed"].update(m.get("assumed", {}))
        meta["fields"] = m.get("fields")
    ji = np.flatnonzero(is_json)
    if len(ji):
        ev, rej, em, note = _read_json_subset(inp, s.gather(ji), lno[ji], offs[ji], time_field,
                                              level_field, message_field, time_unit)
        emitted += em
        parts.append(ev)
        if rej is not None:
            rej_parts.append(rej)
        meta["json_lines"] = int(len(ji))
        if note:
            meta["assumed"]["tz (JSON lines)"] = note
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"

    if parts:
        events = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if len(parts) > 1:
            events = events.take(pc.sort_indices(events.column("line")))
    else:
        events = EVENT_SCHEMA.empty_table()
    rejects = None
    if rej_parts:
        rejects = pa.concat_tables(rej_parts)
        rejects = rejects.take(pc.sort_indices(rejects.column("line")))
    return ReadResult(events=events, records=n, emitted=emitted, rejects=rejects, meta=meta)


def _input_buffer(inp: Input) -> pa.Buffer:
    """The input's bytes; a stream that cannot be read or decompressed (a truncated or corrupt
    ``.gz``) is a :class:`ParseError` naming the file, not a reader crash."""
    try:
        return inp.buffer()
    except Exception as e:  # gzip.BadGzipFile, EOFError, zlib/lzma/zstd errors, OSError
        raise ParseError(f"cannot read the input: {type(e).__name__}: {e}", file=inp.path) from None


def _check_tz(tz: str, path: str) -> None:
    if tz in ("UTC", "Z"):
        return
    try:
        pl.Series([0], dtype=pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone(tz)
    except Exception as e:  # polars raises its own error types for unknown zones
        raise OptionError(f"{path}: tz={tz!r} is not a time zone (use 'UTC', '+02:00' or an IANA name): {e}") from None


def _tokens(s: pl.Series) -> pl.DataFrame:
    """One row per ``key=value`` token: line index ``i``, position ``p``, ``key``, ``value``."""
    df = pl.DataFrame({"i": np.arange(len(s), dtype=np.int64), "s": s})
    tok = (
        df.lazy()
        .select("i", pl.col("s").str.extract_all(_KV).alias("t"))
        .explode("t")
        .drop_nulls("t")
        .with_columns(pl.col("t").str.strip_chars_start())
        .with_row_index("p")
        .with_columns(pl.col("t").str.extract(r"^([^=]*)=", 1).alias("key"))
        .with_columns(pl.col("t").str.slice(pl.col("key").str.len_chars() + 1).alias("raw"))
    )
    raw = pl.col("raw")
    quoted = raw.str.starts_with('"') & raw.str.ends_with('"') & (raw.str.len_chars() >= 2)
    inner = raw.str.slice(1, raw.str.len_chars() - 2)
    # \" and \\ are decoded here; values with other escapes (\n, \t, \u…) go to DuckDB
    esc = quoted & raw.str.contains("\\", literal=True)
    other = esc & inner.str.contains(r'\\[^"\\]')
    tok = tok.with_columns(
        pl.when(esc).then(inner.str.replace_all(r'\\(["\\])', "$1"))
        .when(quoted).then(inner).otherwise(raw).alias("value"),
        other.alias("esc"),
    ).collect()
    if tok.height and tok["esc"].any():
        tok = _unescape(tok)
    return tok.select("i", "p", "key", "value")


def _unescape(tok: pl.DataFrame) -> pl.DataFrame:
    """Decode the escapes of quoted values that hold a backslash (JSON/Go string rules)."""
    import duckdb

    sub = tok.filter(pl.col("esc")).select("p", "raw")
    con = duckdb.connect()
    try:
        con.register("q", sub.to_arrow())
        dec = con.sql(
            "select p, CASE WHEN json_valid(raw) THEN json_extract_string(raw, '$')"
            " ELSE regexp_replace(substr(raw, 2, length(raw) - 2), '\\\\([\"\\\\])', '\\1', 'g') END AS dec"
            " from q"
        ).to_arrow_table()
    finally:
        con.close()
    d = pl.from_arrow(dec)
    assert isinstance(d, pl.DataFrame)
    return tok.join(d.with_columns(pl.col("p").cast(tok["p"].dtype)), on="p", how="left").with_columns(
        pl.coalesce("dec", "value").alias("value")
    ).sort("p")


def _pick(tok: pl.DataFrame, keys: tuple[str, ...], name: str, extra: pl.Expr | None = None) -> pl.DataFrame:
    """Per line, the first token whose key is the earliest of ``keys``: columns i, p_<name>, <name>."""
    rank = {k: r for r, k in enumerate(keys)}
    t = tok.filter(pl.col("key").is_in(list(keys)))
    if extra is not None:
        t = t.filter(extra)
    t = t.with_columns(pl.col("key").replace_strict(rank, default=None, return_dtype=pl.Int64).alias("r"))
    return (
        t.sort(["i", "r", "p"]).unique(subset="i", keep="first", maintain_order=True)
        .select("i", pl.col("p").alias(f"p_{name}"), pl.col("value").alias(name))
    )


def _read_logfmt(
    inp: Input,
    s: pl.Series,
    lno: np.ndarray,
    offs: np.ndarray,
    time_field: str | None,
    level_field: str | None,
    message_field: str | None,
    time_unit: str | None,
    tz: str,
    untimed: str,
    fields: dict[str, str],
) -> tuple[pa.Table | None, pa.Table | None, int, dict[str, Any]]:
    n = len(s)
    tok = _tokens(s)
    roles: dict[str, tuple[str, ...]] = {
        "time": (time_field,) if time_field else TIME_KEYS,
        "level": (level_field,) if level_field else LEVEL_KEYS,
        "message": (message_field,) if message_field else MESSAGE_KEYS,
    }
    for col, keys in _EXTRA_KEYS.items():
        roles[col] = keys
    for col, key in fields.items():
        roles[col] = (key,)
    lines_df = pl.DataFrame({"i": np.arange(n, dtype=np.int64)})
    used: list[pl.Series] = []
    for role, keys in roles.items():
        extra = pl.col("value").str.contains(_INT_RE) if role in ("pid", "tid") else None
        picked = _pick(tok, keys, role, extra)
        used.append(picked[f"p_{role}"])
        lines_df = lines_df.join(picked, on="i", how="left", maintain_order="left")
    ns_pick = _pick(tok, ("namespace",), "ns")
    pod_pick = _pick(tok, ("pod",), "pod")
    lines_df = lines_df.join(ns_pick, on="i", how="left", maintain_order="left").join(
        pod_pick, on="i", how="left", maintain_order="left")

    ntok = tok.group_by("i").len()
    lines_df = lines_df.join(ntok.rename({"len": "ntok"}), on="i", how="left", maintain_order="left")
    has_kv = lines_df["ntok"].is_not_null().to_numpy()
    rest = s.str.replace_all(_KV, "").str.strip_chars()

    # ---- time
    traw = lines_df["time"]
    ts, ok, prec, naive = _parse_times(traw, time_unit)
    if tz not in ("UTC", "Z") and naive.any():
        ts, ok = _localize(ts, ok, naive, tz)
    has_time = traw.is_not_null().to_numpy()
    inherited = np.zeros(n, dtype=bool)
    if untimed == "previous" and n:
        last = np.maximum.accumulate(np.where(ok & has_kv, np.arange(n), -1))
        inherited = has_kv & ~has_time & (last >= 0)
        src = last[inherited]
        ts, prec = ts.copy(), prec.copy()
        ts[inherited] = ts[src]
        prec[inherited] = prec[src]
        ok = ok | inherited
    good = ok & has_kv

    reasons = np.full(n, None, dtype=object)
    reasons[~has_kv] = "not logfmt (no key=value pair)"
    no_time = has_kv & ~has_time & ~good
    looked = ", ".join(roles["time"])
    reasons[no_time] = (f"no time key (looked for {looked}; set time_field=, or untimed='previous')"
                        if untimed == "reject" else f"no time key ({looked}) and no timed line above")
    reasons[has_kv & has_time & ~good] = "cannot read the time value (not ISO-8601, Go time or an epoch number)"
    bad_idx = np.flatnonzero(~good)
    rej = None
    if len(bad_idx):
        raw = s.gather(bad_idx).to_arrow()
        rej = make_rejects(inp.name, inp.path, lno[bad_idx], offs[bad_idx], list(reasons[bad_idx]), raw)

    meta: dict[str, Any] = {"assumed": {}, "fields": {r: list(k) for r, k in roles.items()}}
    if (naive & good).any():
        meta["assumed"]["tz"] = f"{tz} (times without an offset were read in {tz}; set tz=)"
    gi = np.flatnonzero(good)
    if not len(gi):
        return None, rej, 0, meta

    sel = lines_df[gi]
    level = sel["level"].to_arrow()
    sev = normalize_severity(level)
    msg = sel["message"].to_arrow()
    cols: dict[str, Any] = {
        "ts_src": ts[gi],
        "ts_prec": prec[gi],
        "kind": "log",
        "message": msg,
        "name": sel["name"].to_arrow() if "name" in fields else msg,
        "severity": sev,
        "line": lno[gi],
        "offset": offs[gi],
    }
    for c in ("host", "trace_id", "span_id", "category", "state"):
        if c in sel.columns:
            cols[c] = sel[c].to_arrow()
    for c in ("pid", "tid"):
        cols[c] = sel[c].cast(pl.Int64, strict=False).to_arrow()
    if "entity" in fields:
        cols["entity"] = sel["entity"].to_arrow()
    else:
        ent = pl.when(sel["ns"].is_not_null() & sel["pod"].is_not_null()).then(
            pl.concat_str([pl.lit("pod/"), sel["ns"], pl.lit("/"), sel["pod"]]))
        cols["entity"] = sel.select(ent.alias("e"))["e"].to_arrow()

    # ---- attrs: the unused tokens, then reader-made keys
    used_p = pl.concat([u.drop_nulls() for u in used]) if used else pl.Series([], dtype=pl.UInt32)
    pos = np.full(n, -1, dtype=np.int64)
    pos[gi] = np.arange(len(gi))
    at = tok.filter(~pl.col("p").is_in(used_p.implode()))
    unmapped = sev.is_null().to_numpy(zero_copy_only=False) & level.is_valid().to_numpy(zero_copy_only=False)
    extra_rows = []
    if unmapped.any():
        k = np.flatnonzero(unmapped)
        extra_rows.append(pl.DataFrame({"i": gi[k], "key": "level", "value": level.take(pa.array(k)).to_pylist()}))
    rest_g = rest.gather(gi)
    rmask = (rest_g.str.len_chars() > 0).to_numpy()
    if rmask.any():
        k = np.flatnonzero(rmask)
        extra_rows.append(pl.DataFrame({"i": gi[k], "key": "tk.rest", "value": rest_g.gather(k)}))
    if inherited.any():
        k = np.flatnonzero(inherited[gi])
        extra_rows.append(pl.DataFrame({"i": gi[k], "key": "tk.time", "value": ["previous"] * len(k)}))
    at = at.select("i", "key", "value").with_columns(pl.lit(0).alias("o"))
    if extra_rows:
        ex = pl.concat(extra_rows).with_columns(pl.lit(1).alias("o"))
        at = pl.concat([at, ex.select(at.columns).cast(at.schema)])
    at = at.with_columns(pl.Series("row", pos[at["i"].to_numpy()], dtype=pl.Int64))
    at = at.filter(pl.col("row") >= 0).with_row_index("q").sort(["row", "o", "q"])
    cols["attrs"] = _map_array(at["row"].to_numpy(), at["key"].to_arrow(), at["value"].to_arrow(), len(gi))
    return conform(cols), rej, len(gi), meta


def _map_array(rows: np.ndarray, keys: pa.Array, values: pa.Array, n: int) -> pa.Array:
    counts = np.bincount(rows, minlength=n) if len(rows) else np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    k = keys.cast(pa.string()).fill_null("") if len(keys) else pa.array([], pa.string())
    v = values.cast(pa.string()) if len(values) else pa.array([], pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), k, v)


def _parse_times(raw: pl.Series, unit: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time strings → (ns, ok, prec, naive). ISO-8601, Go layouts, epoch numbers."""
    norm = (
        raw.str.replace(r"^\s*(\d{4})/(\d{1,2})/(\d{1,2})", "$1-$2-$3")
        .str.replace(r"\s+m=[+-]\d+(?:\.\d+)?\s*$", "")  # Go monotonic reading
        .str.replace(r"\s+([+-]\d{2}:?\d{2})\s+[A-Z]{2,5}\s*$", "$1")  # +0000 UTC
        .str.replace(r"(\d)\s+([+-]\d{2}:?\d{2})\s*$", "$1$2")
    )
    iso = _time.parse_iso8601(norm)
    ep = _time.parse_epoch(raw, unit)
    use_ep = ~iso["ok"] & ep["ok"]
    ns = np.where(use_ep, ep["ns"], iso["ns"])
    ok = (iso["ok"] | ep["ok"]) & raw.is_not_null().to_numpy()
    prec = np.where(use_ep, ep["prec"], iso["prec"])
    naive = ok & ~use_ep & ~iso["tz"]
    return ns.astype(np.int64), np.asarray(ok, bool), prec.astype(np.int64), np.asarray(naive, bool)


def _localize(ns: np.ndarray, ok: np.ndarray, naive: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Read the naive times (wall clock as if UTC) in ``tz``; times that do not exist there fail."""
    idx = np.flatnonzero(naive)
    wall = pl.Series(ns[idx], dtype=pl.Int64).cast(pl.Datetime("ns"))
    utc = wall.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    valid = utc.is_not_null().to_numpy()
    ns = ns.copy()
    ok = ok.copy()
    ns[idx] = utc.cast(pl.Int64).fill_null(0).to_numpy()
    ok[idx[~valid]] = False
    return ns, ok


def _read_json_subset(
    inp: Input,
    s: pl.Series,
    lno: np.ndarray,
    offs: np.ndarray,
    time_field: str | None,
    level_field: str | None,
    message_field: str | None,
    time_unit: str | None,
) -> tuple[pa.Table, pa.Table | None, int, str | None]:
    """Hand the JSON-object lines to the JSON-lines reader; map its line numbers back.

    Lines that are not valid JSON objects are rejected here (DuckDB ``json_valid``), and if the
    JSON-lines reader fails on the rest, they are rejected with its error rather than lost.
    """
    import duckdb

    from . import get_reader

    con = duckdb.connect()
    try:
        con.register("j", pa.table({"line": s.to_arrow()}))
        valid = con.sql("select coalesce(CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT'"
                        " ELSE false END, false) from j").to_arrow_table().column(0).to_numpy(zero_copy_only=False)
    finally:
        con.close()
    valid = np.asarray(valid, dtype=bool)
    rej_parts = []
    if (~valid).any():
        bi = np.flatnonzero(~valid)
        rej_parts.append(make_rejects(inp.name, inp.path, lno[bi], offs[bi],
                                      "not a JSON object (invalid or truncated JSON)", s.gather(bi).to_arrow()))
    vi = np.flatnonzero(valid)
    if not len(vi):
        return EVENT_SCHEMA.empty_table(), pa.concat_tables(rej_parts), 0, None
    s, lno, offs = s.gather(vi), lno[vi], offs[vi]
    data = ("\n".join(s.to_list()) + "\n").encode("utf-8", "surrogatepass")
    sub = Input(name=inp.name, path=inp.path, opener=lambda: io.BytesIO(data), size=len(data))
    opts: dict[str, Any] = {"time_unit": time_unit}
    for k, v in (("time_field", time_field), ("level_field", level_field), ("message_field", message_field)):
        if v is not None:
            opts[k] = v
    try:
        res = get_reader("jsonl").read(sub, **opts)
    except Exception as e:  # the JSON reader's failure must not lose the logfmt lines
        rej_parts.append(make_rejects(inp.name, inp.path, lno, offs,
                                      f"JSON line not read (json reader failed: {type(e).__name__}: {e})"[:300],
                                      s.to_arrow()))
        return EVENT_SCHEMA.empty_table(), pa.concat_tables(rej_parts), 0, None
    ev = res.events if isinstance(res.events, pa.Table) and res.events.schema.equals(EVENT_SCHEMA) else conform(res.events)
    sub_line = ev.column("line").to_numpy(zero_copy_only=False).astype(np.int64) - 1
    ev = ev.set_column(ev.schema.get_field_index("line"), EVENT_SCHEMA.field("line"), pa.array(lno[sub_line]))
    ev = ev.set_column(ev.schema.get_field_index("offset"), EVENT_SCHEMA.field("offset"), pa.array(offs[sub_line]))
    rej = res.rejects
    if rej is not None and rej.num_rows:
        rl = rej.column("line").to_numpy(zero_copy_only=False).astype(np.int64) - 1
        rej = rej.set_column(rej.schema.get_field_index("line"), rej.schema.field("line"), pa.array(lno[rl]))
        rej = rej.set_column(rej.schema.get_field_index("offset"), rej.schema.field("offset"), pa.array(offs[rl]))
        rej_parts.append(rej.select(REJECT_SCHEMA.names).cast(REJECT_SCHEMA))
    rej = pa.concat_tables(rej_parts) if rej_parts else None
    return ev, rej, res.emitted, (res.meta.get("assumed") or {}).get("tz")


register(
    Reader(
        name="logfmt",
        description="logfmt key=value lines (logrus, go-kit, slog…); JSON lines mixed in are read too",
        sniff=_sniff,
        read=_read,
        options={
            "time_field": "key holding the time; default: first of time, ts, timestamp, @timestamp, t",
            "level_field": "key holding the level; default: level, lvl, loglevel, severity",
            "message_field": "key holding the message; default: msg, message",
            "time_unit": "unit of epoch-number times: s, ms, us or ns; default: guessed from magnitude",
            "tz": "zone of times written without an offset: 'UTC' (default), '+02:00' or an IANA name",
            "untimed": "lines without a time: 'reject' (default) or 'previous' (take the time of the line above)",
            "fields": "dict mapping columns (host, pid, tid, trace_id, span_id, category, name, entity, state) to keys",
        },
        extensions=(".logfmt",),
    )
)
