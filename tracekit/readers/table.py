"""CSV and Parquet tables, with a column mapping onto the canonical fields.

Options name the column for each canonical field: ``time``, ``level``, ``message``, ``name``,
``entity``, ``state``, ``host_column`` (``host=`` is the loader's own option), ``pid``, ``tid``, ``trace_id``, ``span_id``, ``value``,
``dur``; ``time_unit`` (epoch numbers: s, ms, us, ns; default guessed from magnitude),
``dur_unit`` (numbers in ``dur``: default ns; ``"250ms"`` strings carry their own),
``tz`` (times written without an offset; default UTC) and, for CSV, ``delimiter`` (default:
guessed from the header among ``,`` tab ``;`` ``|``). Without ``time=``, the first column
named like a time (``time``, ``timestamp``, ``ts``, ``@timestamp``, ``date``, ``*_time``,
``*_at`` …) is used; ``level``/``message`` default to the usual names too. Every other
column goes to ``attrs`` as text (numbers and booleans as their JSON text, nested Parquet
values as JSON); empty cells are left out.

``kind`` per row: ``span`` when ``dur`` is set, else ``state`` when ``state`` is, else
``counter`` when ``value`` is, else ``log`` when there is a message, else ``instant``.

CSV rows keep their physical line numbers (a quoted value may span lines); the header counts
as one metadata record; a row with the wrong number of fields or an unreadable time is a
reject. Parquet rows have no line; ``offset`` is the row index.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("deploys.csv", format="csv", time="when", entity="pod")   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import OptionError, ParseError
from ..schema import conform, normalize_severity
from ._base import HEAD_BYTES, Input, Reader, ReadResult, make_rejects, register, split_lines
from .logfmt import _check_tz, _input_buffer, _localize, _parse_times

FIELDS = ("time", "level", "message", "name", "entity", "state", "host", "pid", "tid",
          "trace_id", "span_id", "value", "dur")
TIME_NAMES = ("time", "timestamp", "ts", "@timestamp", "datetime", "date", "_time", "t",
              "eventtime", "event_time", "time_utc", "timestamp_utc", "when")
_TIME_SUFFIX = re.compile(r"(?:^|[_ .-])(?:time|timestamp|ts|at)$|(?<=[a-z])(?:Time|Timestamp|At)$")
LEVEL_NAMES = ("level", "severity", "lvl", "loglevel", "log_level", "levelname")
MESSAGE_NAMES = ("message", "msg", "log", "text")
_DELIMS = (",", "\t", ";", "|")
_HEADER_FIELD = re.compile(r'^\s*"?[A-Za-z_@][\w .@/:()-]{0,63}"?\s*$')
_DUR_RE = r"^\s*(-?\d+)(?:\.(\d{1,9})\d*)?\s*(ns|us|µs|ms|s|m|min|h)?\s*$"
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
            "min": 60 * 10**9, "h": 3600 * 10**9}


def _is_time_name(name: str) -> bool:
    return name.strip().lower() in TIME_NAMES or bool(_TIME_SUFFIX.search(name.strip()))


# --------------------------------------------------------------------------- sniff


def _sniff_parquet(head: bytes, name: str) -> float:
    """0.95 for the Parquet magic ``PAR1``."""
    return 0.95 if head[:4] == b"PAR1" else 0.0


def _sniff_csv(head: bytes, name: str) -> float:
    """0.55 for a delimited header row naming a time column, followed by rows of the same width."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n")[:30]]
    if len(head) >= HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 2:
        return 0.0
    delim = _guess_delimiter(lines[0])
    if delim is None:
        return 0.0
    try:
        rows = list(csv.reader(lines, delimiter=delim))
    except csv.Error:
        return 0.0
    header = rows[0]
    if len(header) < 2 or not all(_HEADER_FIELD.match(h) for h in header):
        return 0.0
    if len({h.strip() for h in header}) != len(header) or not any(_is_time_name(h) for h in header):
        return 0.0
    body = rows[1:]
    same = sum(1 for r in body if len(r) == len(header))
    return 0.55 if same >= 0.8 * len(body) else 0.0


def _guess_delimiter(header: str) -> str | None:
    counts = {d: header.count(d) for d in _DELIMS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


# --------------------------------------------------------------------------- read


def _mapping(names: list[str], opts: dict[str, str | None], path: str) -> dict[str, int]:
    """Canonical field → column index, from options or the usual names."""
    idx: dict[str, int] = {}
    for f in FIELDS:
        col = opts.get(f)
        if col is None:
            continue
        if col not in names:
            raise OptionError(f"{path}: {f}={col!r} is not a column; columns: {', '.join(names)}")
        idx[f] = names.index(col)
    low = [n.strip().lower() for n in names]
    if "time" not in idx:
        for cand in TIME_NAMES:
            if cand in low:
                idx["time"] = low.index(cand)
                break
        else:
            for i, n in enumerate(names):
                if _is_time_name(n):
                    idx["time"] = i
                    break
    for f, cands in (("level", LEVEL_NAMES), ("message", MESSAGE_NAMES)):
        if f not in idx:
            for cand in cands:
                if cand in low and low.index(cand) not in idx.values():
                    idx[f] = low.index(cand)
                    break
    if "time" not in idx:
        raise ParseError(f"no time column (looked for {', '.join(TIME_NAMES[:6])}, *_time, *_at …); "
                         f"name it with time=; columns: {', '.join(names)}", file=path)
    return idx


def _read_csv(inp: Input, delimiter: str | None = None, **opts: Any) -> ReadResult:
    import pyarrow.csv as pacsv

    buf = _input_buffer(inp)
    lines = split_lines(buf)
    starts = lines.offset
    if lines.bad_utf8.size:
        # pyarrow cannot hand a bad row with invalid UTF-8 to the handler: parse the lines as
        # split_lines decoded them (bytes escaped as \xNN; line numbers are unchanged)
        offs = lines.text.cast(pa.large_string()).buffers()[1]
        o = np.frombuffer(offs, dtype=np.int64)[lines.text.offset:lines.text.offset + len(lines) + 1]
        buf = lines.text.buffers()[2][int(o[0]):int(o[-1])]
        starts = o[:-1] - o[0]
    if len(lines) == 0 or lines.blank().all():
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=0, emitted=0,
                          meta={"clock": "realtime", "note": "empty table"})
    first = int(np.flatnonzero(~lines.blank())[0])
    header_line = lines.stripped()[first].as_py().lstrip("\ufeff")
    if delimiter is None:
        delimiter = _guess_delimiter(header_line) or ","
    if len(delimiter) != 1:
        raise OptionError(f"{inp.path}: delimiter must be one character, not {delimiter!r}")
    try:
        names = next(csv.reader([header_line], delimiter=delimiter))
    except (csv.Error, StopIteration) as e:
        raise ParseError(f"cannot read the CSV header: {e}", file=inp.path, line=first + 1) from None
    names = [n.strip() for n in names]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ParseError(f"duplicate column names in the header: {dup}", file=inp.path, line=first + 1)
    idx = _mapping(names, opts, inp.path)

    bad: list[tuple[int | None, str]] = []

    def on_bad(row: Any) -> str:
        try:
            text = row.text
        except Exception:  # undecodable bytes: keep what we can say
            text = "<undecodable row>"
        bad.append((row.number, text))
        return "skip"

    data = buf[int(starts[first]):] if first else buf
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                             ignore_empty_lines=False, invalid_row_handler=on_bad),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.large_binary() for n in names},
                                                 strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as e:
        raise ParseError(f"cannot read as CSV: {e}", file=inp.path) from None
    cols = [_decode(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    nvalid = table.num_rows

    # physical lines: rows are numbered from 1 (the header) in file order, valid and bad alike
    total = 1 + nvalid + len(bad)
    bad_nums = np.array([b[0] if b[0] is not None else -1 for b in bad], dtype=np.int64)
    is_bad = np.zeros(total + 1, dtype=bool)
    known = bad_nums[(bad_nums >= 1) & (bad_nums <= total)]
    is_bad[known] = True
    valid_nums = np.flatnonzero(~is_bad[2:]) + 2
    valid_nums = valid_nums[:nvalid]
    span = np.ones(total + 1, dtype=np.int64)
    if nvalid:
        nl = np.zeros(nvalid, dtype=np.int64)
        for c in cols:
            nl += pc.fill_null(pc.count_substring(c, "\n"), 0).to_numpy(zero_copy_only=False)
        span[valid_nums] = 1 + nl
    for num, text in bad:
        if num is not None and 1 <= num <= total:
            span[num] = 1 + text.count("\n")
    starts = np.zeros(total + 1, dtype=np.int64)
    starts[1:] = first + 1 + np.concatenate([[0], np.cumsum(span[1:-1])])
    nlines = len(lines)
    blank = lines.blank()

    def line_of(nums: np.ndarray) -> np.ndarray:
        return np.minimum(starts[nums], nlines)

    vline = line_of(valid_nums)
    allnull = np.ones(nvalid, dtype=bool)
    for c in cols:
        allnull &= c.is_null().to_numpy(zero_copy_only=False)
    blank_rows = allnull & blank[vline - 1] if nvalid else allnull
    bad_line = [int(line_of(np.array([n]))[0]) if n is not None and 1 <= n <= total else None for n, _ in bad]
    bad_blank = [ln is not None and bool(blank[ln - 1]) and not t.strip() for ln, (_, t) in zip(bad_line, bad)]

    keep = ~blank_rows
    rows = np.flatnonzero(keep)
    cols = [c.filter(pa.array(keep)) for c in cols] if not keep.all() else cols
    vspan = span[valid_nums][rows]
    vline = vline[rows]
    offsets = lines.offset[vline - 1]

    ev, ok, reasons, meta = _build(inp, names, cols, idx, opts)
    rej_lines: list[Any] = [bad_line[i] for i in range(len(bad)) if not bad_blank[i]]
    rej_raw: list[str] = [bad[i][1] for i in range(len(bad)) if not bad_blank[i]]
    rej_reason: list[str] = [f"wrong number of fields (expected {len(names)}, delimiter {delimiter!r})"] * len(rej_raw)
    bi = np.flatnonzero(~ok)
    if len(bi):
        rej_lines += vline[bi].tolist()
        raws = lines.stripped().take(pa.array(vline[bi] - 1)).to_pylist()
        rej_raw += raws
        rej_reason += list(reasons[bi])
    rejects = None
    if rej_lines:
        offs = [int(lines.offset[ln - 1]) if ln is not None else None for ln in rej_lines]
        rejects = make_rejects(inp.name, inp.path, rej_lines, offs, rej_reason, rej_raw)
        rejects = rejects.take(pc.sort_indices(rejects.column("line")))
    gi = np.flatnonzero(ok)
    if ev is not None:
        ev["line"] = vline[gi]
        ev["line_end"] = pa.array(np.minimum(vline[gi] + vspan[gi] - 1, nlines), mask=vspan[gi] <= 1)
        ev["offset"] = offsets[gi]
        events: Any = conform(ev)
    else:
        events = {"ts_src": pa.array([], pa.int64())}
    meta["delimiter"] = delimiter
    nbad = len(rej_raw) - len(bi)  # rows with the wrong number of fields (blank lines are not records)
    return ReadResult(events=events, records=1 + len(rows) + nbad, emitted=len(gi),
                      metadata=1, rejects=rejects, meta=meta)


def _decode(col: pa.Array) -> pa.Array:
    """Binary cells → strings; invalid UTF-8 cells are kept with ``\\xNN`` escapes."""
    try:
        return col.cast(pa.large_string())
    except pa.ArrowInvalid:
        vals = [v if v is None else v.decode("utf-8", "backslashreplace") for v in col.to_pylist()]
        return pa.array(vals, pa.large_string())


def _read_parquet(inp: Input, **opts: Any) -> ReadResult:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(_input_buffer(inp)))
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ParseError(f"cannot read as Parquet: {e}", file=inp.path) from None
    names = table.column_names
    if len(set(names)) != len(names):
        raise ParseError("duplicate column names", file=inp.path)
    idx = _mapping(names, opts, inp.path)
    cols = [table.column(i).combine_chunks() for i in range(table.num_columns)]
    ev, ok, reasons, meta = _build(inp, names, cols, idx, opts)
    n = table.num_rows
    bi = np.flatnonzero(~ok)
    rejects = None
    if len(bi):
        raw = _row_json(table.take(pa.array(bi)))
        rejects = make_rejects(inp.name, inp.path, [None] * len(bi), bi, list(reasons[bi]), raw)
    gi = np.flatnonzero(ok)
    if ev is not None:
        ev["offset"] = gi
        events: Any = conform(ev)
    else:
        events = {"ts_src": pa.array([], pa.int64())}
    return ReadResult(events=events, records=n, emitted=len(gi), rejects=rejects, meta=meta)


def _row_json(t: pa.Table) -> list[str]:
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", t)
        return [r[0] for r in con.sql("select to_json(t)::VARCHAR from t").fetchall()]
    finally:
        con.close()


def _as_text(col: pa.Array) -> pa.Array:
    """Any Arrow column → strings (JSON text for nested values)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.dictionary_decode()
        t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col.cast(pa.large_string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _decode(col.cast(pa.large_binary()))
    if pa.types.is_nested(t):
        import duckdb

        con = duckdb.connect()
        try:
            con.register("t", pa.table({"c": col}))
            return con.sql("select to_json(c)::VARCHAR from t").to_arrow_table().column(0).combine_chunks().cast(pa.large_string())
        finally:
            con.close()
    try:
        return col.cast(pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.large_string())


def _times(col: pa.Array, unit: str | None, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time column → (ns, ok, prec, naive) for timestamp, number or text columns."""
    t = col.type
    n = len(col)
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(t):
        ns = col.cast(pa.timestamp("ns", tz=t.tz)).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        prec = np.full(n, {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit], dtype=np.int64)
        naive = valid & (t.tz is None)
        return ns.astype(np.int64), valid, prec, np.asarray(naive, bool)
    if pa.types.is_date(t):
        ns = col.cast(pa.timestamp("ns")).cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return ns.astype(np.int64), valid, np.full(n, 86400 * 10**9, np.int64), valid.copy()
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        from .. import _time

        r = _time.parse_epoch(col, unit)
        return r["ns"], r["ok"] & valid, r["prec"], np.zeros(n, bool)
    s = pl.Series(_as_text(col))
    return _parse_times(s, unit)


def _durations(col: pa.Array, unit: str) -> pa.Array:
    """Duration column → int64 ns (null where unreadable); text may carry a unit (``250ms``)."""
    t = col.type
    if pa.types.is_duration(t):
        return col.cast(pa.duration("ns")).cast(pa.int64())
    s = pl.Series(_as_text(col)) if not (pa.types.is_integer(t) or pa.types.is_floating(t)) else pl.Series(col.cast(pa.string()))
    g = s.str.extract_groups(_DUR_RE)
    ip = g.struct.field("1").cast(pl.Int64, strict=False)
    fr = g.struct.field("2").fill_null("").str.pad_end(9, "0").cast(pl.Int64, strict=False).fill_null(0)
    u = g.struct.field("3").fill_null(unit).replace_strict(_UNIT_NS, return_dtype=pl.Int64)
    ns = ip * u + (fr * u) // 10**9
    return ns.to_arrow()


def _build(inp: Input, names: list[str], cols: list[pa.Array], idx: dict[str, int],
           opts: dict[str, Any]) -> tuple[dict[str, Any] | None, np.ndarray, np.ndarray, dict[str, Any]]:
    """Canonical columns from a table's columns; returns (columns, ok rows, reasons, meta)."""
    unit, tz = opts.get("time_unit"), opts.get("tz") or "UTC"
    n = len(cols[0]) if cols else 0
    tcol = cols[idx["time"]]
    ns, ok, prec, naive = _times(tcol, unit, tz)
    if tz not in ("UTC", "Z") and naive.any():
        ns, ok = _localize(ns, ok, naive, tz)
    present = tcol.is_valid().to_numpy(zero_copy_only=False)
    reasons = np.full(n, None, dtype=object)
    reasons[~present] = f"empty time cell (column {names[idx['time']]!r})"
    reasons[present & ~ok] = f"cannot read the time in column {names[idx['time']]!r} (not ISO-8601, Go time or an epoch number)"
    meta: dict[str, Any] = {"clock": "realtime", "assumed": {},
                            "columns": {f: names[i] for f, i in idx.items()}}
    if (naive & ok).any():
        meta["assumed"]["tz"] = f"{tz} (times without an offset were read in {tz}; set tz=)"
    gi = np.flatnonzero(ok)
    if not len(gi):
        return None, ok, reasons, meta
    take = pa.array(gi)
    sel = [c.take(take) for c in cols]
    m = len(gi)
    out: dict[str, Any] = {"ts_src": ns[gi], "ts_prec": prec[gi]}
    keep_attr = [np.ones(m, dtype=bool) if i not in idx.values() else np.zeros(m, dtype=bool)
                 for i in range(len(cols))]
    for f in ("message", "name", "entity", "state", "host", "trace_id", "span_id"):
        if f in idx:
            out[f] = _as_text(sel[idx[f]]).cast(pa.string())
    if "name" not in out and "message" in out:
        out["name"] = out["message"]
    if "level" in idx:
        lv = _as_text(sel[idx["level"]])
        sev = normalize_severity(lv)
        out["severity"] = sev
        keep_attr[idx["level"]] = (sev.is_null().to_numpy(zero_copy_only=False)
                                   & lv.is_valid().to_numpy(zero_copy_only=False))
    for f in ("pid", "tid", "value"):
        if f in idx:
            c = sel[idx[f]]
            typ = pa.float64() if f == "value" else pa.int64()
            s = pl.Series(c.cast(pa.string()) if not pa.types.is_floating(c.type) else c)
            v = s.cast(pl.Float64 if f == "value" else pl.Int64, strict=False).to_arrow().cast(typ)
            out[f] = v
            keep_attr[idx[f]] = v.is_null().to_numpy(zero_copy_only=False) & c.is_valid().to_numpy(zero_copy_only=False)
    if "dur" in idx:
        c = sel[idx["dur"]]
        d = _durations(c, opts.get("dur_unit") or "ns").cast(pa.int64())
        out["dur"] = d
        keep_attr[idx["dur"]] = d.is_null().to_numpy(zero_copy_only=False) & c.is_valid().to_numpy(zero_copy_only=False)
    # kind per row
    has = {f: (out[f].is_valid().to_numpy(zero_copy_only=False) if f in out else np.zeros(m, bool))
           for f in ("dur", "state", "value", "message")}
    kind = np.select([has["dur"], has["state"], has["value"], has["message"]],
                     ["span", "state", "counter", "log"], "instant")
    out["kind"] = pa.array(kind.astype(object), pa.string())
    out["attrs"] = _attrs([names[i] for i in range(len(cols))], sel, keep_attr, m)
    return out, ok, reasons, meta


def _attrs(names: list[str], cols: list[pa.Array], keep: list[np.ndarray], m: int) -> pa.Array:
    """Row-major map of the columns' non-empty cells (where ``keep``)."""
    kc = len(cols)
    if kc == 0 or m == 0:
        return pa.MapArray.from_arrays(pa.array(np.zeros(m + 1, np.int32)), pa.array([], pa.string()),
                                       pa.array([], pa.string()))
    texts = [_as_text(c).cast(pa.large_string()) for c in cols]
    vals = pa.concat_arrays(texts)
    keys = np.repeat(np.array(names, dtype=object), m)
    valid = np.concatenate([t.is_valid().to_numpy(zero_copy_only=False) & k for t, k in zip(texts, keep)])
    order = np.arange(kc * m, dtype=np.int64).reshape(kc, m).T.ravel()  # row-major
    order = order[valid[order]]
    counts = valid.reshape(kc, m).sum(axis=0)
    offsets = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    k = pa.array(keys[order], pa.string())
    v = vals.take(pa.array(order)).cast(pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), k, v)


_OPTIONS = {f: f"column holding {f}" + (" (default: a column named like a time)" if f == "time" else
                                         " (default: level/severity…)" if f == "level" else
                                         " (default: message/msg…)" if f == "message" else "")
            for f in FIELDS}
del _OPTIONS["host"]  # tk.load's own host= names the machine of a source
_OPTIONS["host_column"] = "column holding the host of each row (tk.load's host= names the whole source's)"
_OPTIONS.update({
    "time_unit": "unit of epoch-number times: s, ms, us or ns; default: guessed from magnitude",
    "dur_unit": "unit of plain numbers in the dur column: ns (default), us, ms, s",
    "tz": "zone of times written without an offset: 'UTC' (default), '+02:00' or an IANA name",
})


def _check(opts: dict[str, Any], path: str) -> None:
    if "host_column" in opts:  # tk.load(host=) names the source's machine, so the column is host_column=
        opts["host"] = opts.pop("host_column")
    if opts.get("time_unit") not in (None, "s", "ms", "us", "ns"):
        raise OptionError(f"{path}: time_unit must be one of s, ms, us, ns, not {opts['time_unit']!r}")
    if opts.get("dur_unit") not in (None, "ns", "us", "ms", "s"):
        raise OptionError(f"{path}: dur_unit must be one of ns, us, ms, s, not {opts['dur_unit']!r}")
    for f in FIELDS:
        if opts.get(f) is not None and not isinstance(opts[f], str):
            raise OptionError(f"{path}: {f}= names a column (a string), not {opts[f]!r}")
    _check_tz(opts.get("tz") or "UTC", path)


def _csv(inp: Input, **opts: Any) -> ReadResult:
    _check(opts, inp.path)
    return _read_csv(inp, **opts)


def _parquet(inp: Input, **opts: Any) -> ReadResult:
    _check(opts, inp.path)
    return _read_parquet(inp, **opts)


register(Reader(
    name="csv",
    description="CSV / TSV with a header row; options map columns onto canonical fields",
    sniff=_sniff_csv,
    read=_csv,
    options={**_OPTIONS, "delimiter": "field delimiter; default: guessed from the header (, tab ; |)"},
    extensions=(".csv", ".tsv"),
))
register(Reader(
    name="parquet",
    description="Parquet tables; options map columns onto canonical fields",
    sniff=_sniff_parquet,
    read=_parquet,
    options=dict(_OPTIONS),
    extensions=(".parquet", ".pq"),
))
