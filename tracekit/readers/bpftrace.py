"""bpftrace output: ``-f json`` records and the default text output.

JSON (one object per line, or pretty-printed objects one after another)::

    {"type": "attached_probes", "data": {"probes": 3}}                 → metadata
    {"type": "printf", "data": "cat /etc/ld.so.cache\\n"}              → a log row (message)
    {"type": "map", "data": {"@opens": {"ls": 102, "cat": 195}}}        → a counter row per key
    {"type": "hist", "data": {"@ret": [{"max": -1, "count": 129}, …]}} → a row per bucket
    {"type": "stats", "data": {"@s": {"count": 2, "average": 1, "total": 2}}} → a row per stat
    {"type": "tseries", "data": {"@a": {"k": [{"interval_start": …, "value": 5}]}}}
    {"type": "lost_events", "data": {"events": 12}}                     → a ``loss`` row

Text: ``Attaching N probes...`` / ``Attached N probes`` (metadata), printf lines (the lines right
after it), lines whose first column is a ``HH:MM:SS[.us]`` time (execsnoop; an upper-case
column header row before them is metadata and names the columns: ``PID`` → pid), histograms
(``@usecs:`` then ``[lo, hi)  count |@@@|`` buckets → a row per bucket, value = count, attrs
``min``/``max``), map lines ``@name[key]: value``, multi-line stack keys (``@x[`` … ``]:``,
the frames joined by ``;`` in attrs ``key``), ``Lost N events`` (→ ``loss``). Other lines
(prose of the docs' example files, shell prompts) are rejected with a reason.

Times: bpftrace prints none on most records. A file without any time gets ``ts_src`` = 0 on
every row and clock ``relative`` (attrs ``tk.time`` says why: ``none`` for printf records,
``at exit`` for maps/histograms printed when the program ended). When some rows carry a
wall time (``HH:MM:SS`` printf columns, ``time`` records, tseries intervals) the clock is
``realtime`` (the date, when not printed, is the ``date=`` option, default the file's
modification date, UTC; recorded in ``assumed``), untimed printf rows take the previous
timed row's time and exit-time maps the last time (``tk.time`` records which).

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("bpf.ndjson")                 # doctest: +SKIP
    >>> tl.events.filter(pc.field("kind") == "counter")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

import numpy as np
import orjson
import polars as pl

from ..errors import OptionError
from ..schema import conform
from ._base import Input, Reader, ReadResult, make_rejects, register, split_lines
from ._kernel import lists_to_map

_TYPES = ("attached_probes", "printf", "map", "hist", "lhist", "stats", "tseries", "time",
          "lost_events", "join", "syscall", "value", "helper_error", "cat", "system")
_JSON_SNIFF = re.compile(rb'^\s*\{\s*"type"\s*:\s*"(' + "|".join(_TYPES).encode() + rb')"', re.M)
_ATTACH = r"^Attach(?:ing|ed) \d+ probes?(?:\.\.\.)?\s*$"
_TIME_COL = r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?(?:\s+(?P<rest>.*))?$"
_BUCKET = r"^(?P<b>[\[(][^\])]*[\])])\s+(?P<cnt>\d+)\s+\|[@ ]*\|\s*$"
_MAPLINE = r"^(?P<name>@[\w.]*)(?:\[(?P<key>.*)\])?:\s+(?P<val>\S.*?)\s*$"
_MAPHEAD = r"^(?P<name>@[\w.]*)(?:\[(?P<key>.*)\])?:\s*$"
_COLHEAD = r"^[A-Z][A-Z0-9_%()/-]*(?:\s+[A-Z][A-Z0-9_%()/-]*)+\s*$"
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}


def _sniff(head: bytes, name: str) -> float:
    if _JSON_SNIFF.search(head[:4096]):
        return 0.9
    text = head[:32768].decode("utf-8", "replace")
    if re.search(_ATTACH, text, re.M):
        return 0.8
    if re.search(r"^@[\w.]*(\[.*\])?:\s*$", text, re.M) and re.search(_BUCKET, text, re.M):
        return 0.7
    return 0.0


# --------------------------------------------------------------------------- rows


class _Rows:
    """Column lists for the (few) structured rows; printf rows are added as whole columns."""

    def __init__(self) -> None:
        self.c: dict[str, list[Any]] = {k: [] for k in (
            "ts", "kind", "name", "value", "message", "line", "line_end", "offset", "pid", "keys", "vals")}

    def add(self, kind: str, name: str | None, value: Any, line: int, line_end: int, offset: int,
            attrs: dict[str, str], message: str | None = None, ts: int | None = None, pid: int | None = None) -> None:
        c = self.c
        c["ts"].append(ts)
        c["kind"].append(kind)
        c["name"].append(name)
        c["value"].append(float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None)
        c["message"].append(message)
        c["line"].append(line)
        c["line_end"].append(line_end)
        c["offset"].append(offset)
        c["pid"].append(pid)
        c["keys"].append(list(attrs))
        c["vals"].append([str(v) for v in attrs.values()])

    def frame(self) -> pl.DataFrame:
        c = self.c
        return pl.DataFrame({
            "ts": pl.Series(c["ts"], dtype=pl.Int64), "kind": pl.Series(c["kind"], dtype=pl.String),
            "name": pl.Series(c["name"], dtype=pl.String), "value": pl.Series(c["value"], dtype=pl.Float64),
            "message": pl.Series(c["message"], dtype=pl.String), "line": pl.Series(c["line"], dtype=pl.Int64),
            "line_end": pl.Series(c["line_end"], dtype=pl.Int64), "offset": pl.Series(c["offset"], dtype=pl.Int64),
            "pid": pl.Series(c["pid"], dtype=pl.Int64),
            "keys": pl.Series(c["keys"], dtype=pl.List(pl.String)), "vals": pl.Series(c["vals"], dtype=pl.List(pl.String)),
        })


def _jtxt(v: Any) -> str:
    return v if isinstance(v, str) else orjson.dumps(v).decode()


def _bucket_attrs(b: dict[str, Any]) -> dict[str, str]:
    a = {k: _jtxt(v) for k, v in b.items() if k != "count"}
    if "min" not in b:
        a["tk.min"] = "unbounded (bucket below the lowest; no min printed)"
    return a


def _emit_json(obj: Any, line: int, line_end: int, offset: int, rows: _Rows, meta: dict[str, Any]) -> str:
    """Rows for one JSON record; returns its accounting class (emitted/metadata/reject:<why>)."""
    if not isinstance(obj, dict) or "type" not in obj:
        return "reject:not a bpftrace JSON record (no \"type\")"
    typ, data = obj.get("type"), obj.get("data")
    loc = (line, line_end, offset)
    if typ == "attached_probes":
        meta["extra"]["attached_probes"] = (data or {}).get("probes") if isinstance(data, dict) else data
        return "metadata"
    if typ in ("printf", "time", "cat", "system", "join", "syscall"):
        txt = data if isinstance(data, str) else _jtxt(data)
        rows.add("log" if typ != "time" else "marker", typ, None, *loc,
                 {"tk.time": "none (bpftrace prints no time on this record)"}, message=txt.rstrip("\n"))
        return "emitted"
    if typ == "lost_events":
        n = data.get("events") if isinstance(data, dict) else data
        rows.add("loss", "lost_events", n, *loc, {"tk.time": "at the point it was printed (no time)"},
                 message=f"lost {n} events")
        return "emitted"
    if typ in ("map", "hist", "lhist", "stats", "tseries", "value") and isinstance(data, dict):
        for mname, mval in data.items():
            _emit_map(typ, mname, mval, loc, rows)
        if not data:
            return "metadata"
        return "emitted"
    rows.add("log", str(typ), None, *loc, {"tk.time": "none", "data": _jtxt(data)}, message=_jtxt(data))
    return "emitted"


def _emit_map(typ: str, mname: str, mval: Any, loc: tuple[int, int, int], rows: _Rows, key: str | None = None) -> None:
    exit_ = {"tk.time": "at exit"}
    kattr = {"key": key} if key is not None else {}
    if typ in ("hist", "lhist"):
        if isinstance(mval, dict):
            for k, v in mval.items():
                _emit_map(typ, mname, v, loc, rows, k)
            return
        for b in mval or []:
            rows.add("counter", mname, b.get("count"), *loc, {**kattr, "tk.type": typ, **_bucket_attrs(b), **exit_})
        return
    if typ == "stats":
        if isinstance(mval, dict) and mval and all(isinstance(v, dict) for v in mval.values()):
            for k, v in mval.items():
                _emit_map(typ, mname, v, loc, rows, k)
            return
        for stat in ("count", "average", "total"):
            if isinstance(mval, dict) and stat in mval:
                rows.add("counter", mname, mval[stat], *loc, {**kattr, "stat": stat, "tk.type": "stats", **exit_})
        return
    if typ == "tseries":
        if isinstance(mval, dict):
            for k, v in mval.items():
                _emit_map(typ, mname, v, loc, rows, k)
            return
        for p in mval or []:
            st = p.get("interval_start")
            rows.add("counter", mname, p.get("value"), *loc,
                     {**kattr, "interval_start": _jtxt(st), "tk.type": "tseries"}, ts=_parse_wall(st))
        return
    if isinstance(mval, dict):
        for k, v in mval.items():
            rows.add("counter", mname, v, *loc, {"key": k, "tk.type": typ, **({} if _isnum(v) else {"value": _jtxt(v)}), **exit_})
        return
    rows.add("counter", mname, mval, *loc, {**kattr, "tk.type": typ, **({} if _isnum(mval) else {"value": _jtxt(mval)}), **exit_})


def _isnum(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_wall(s: Any) -> int | None:
    """``1970-01-01 00:00:00.100000000`` (read as UTC) → epoch ns."""
    if not isinstance(s, str):
        return None
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$", s.strip())
    if not m:
        return None
    d = _dt.datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]), tzinfo=_dt.timezone.utc)
    return int(d.timestamp()) * 1_000_000_000 + int((m[7] or "").ljust(9, "0"))


def _day_ns(inp: Input, meta: dict[str, Any]) -> int:
    """Epoch ns of the day that ``HH:MM:SS`` times belong to (``date=``, else the file's
    modification date, UTC); the choice is recorded in ``meta["assumed"]``."""
    d0 = meta.get("_date")
    if d0 is None:
        mtime = inp.mtime
        d0 = _dt.datetime.fromtimestamp(mtime, _dt.timezone.utc).date() if mtime else _dt.date(1970, 1, 1)
        meta["assumed"]["date"] = f"{d0.isoformat()} (the file's modification date; HH:MM:SS times carry none; set date=)"
    meta["assumed"]["tz"] = "UTC (HH:MM:SS times read as UTC)"
    return int(_dt.datetime(d0.year, d0.month, d0.day, tzinfo=_dt.timezone.utc).timestamp()) * 1_000_000_000


# --------------------------------------------------------------------------- JSON


def _read_json(inp: Input, lines: Any, text: pl.Series, blank: np.ndarray, meta: dict[str, Any]):
    rows = _Rows()
    counts = {"emitted": 0, "metadata": 0}
    rejects: list[tuple[int, int, str, str]] = []
    nb = np.flatnonzero(~blank)
    first = text[int(nb[0])] if len(nb) else ""
    try:
        orjson.loads(first)
        ndjson = True
    except orjson.JSONDecodeError:
        ndjson = False
    if ndjson:
        sub = text.gather(nb)
        typ = sub.str.extract(r'^\s*\{\s*"type"\s*:\s*"(\w+)"', 1)
        is_pf = (typ == "printf").fill_null(False) & sub.str.contains(r"\}\s*$")
        data = sub.str.json_path_match("$.data")
        pf = (is_pf & data.is_not_null()).to_numpy()
        # printf records: whole columns
        pidx = nb[pf]
        printf_df = pl.DataFrame({
            "message": data.filter(pl.Series(pf)).str.strip_suffix("\n"),
            "line": lines.line[pidx], "offset": lines.offset[pidx],
        })
        counts["emitted"] += len(pidx)
        for j in np.flatnonzero(~pf):  # the few other records
            i = int(nb[j])
            ln, off = int(lines.line[i]), int(lines.offset[i])
            try:
                obj = orjson.loads(text[i])
            except orjson.JSONDecodeError:
                rejects.append((ln, off, "not valid JSON (truncated or garbage line)", text[i]))
                continue
            cls = _emit_json(obj, ln, ln, off, rows, meta)
            if cls.startswith("reject:"):
                rejects.append((ln, off, cls[7:], text[i]))
            else:
                counts[cls] += 1
        records = len(nb)
    else:
        printf_df = None
        full = "\n".join(text.to_list())
        # line starts in the joined text (the joined text has one "\n" per line)
        lens = text.str.len_chars().to_numpy().astype(np.int64) + 1
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        dec = json.JSONDecoder()
        pos, records = 0, 0
        while True:
            while pos < len(full) and full[pos].isspace():
                pos += 1
            if pos >= len(full):
                break
            li = int(np.searchsorted(starts, pos, side="right") - 1)
            try:
                obj, end = dec.raw_decode(full, pos)
            except json.JSONDecodeError as err:
                # the rest of the file cannot be read: one reject per remaining non-blank line
                for k in range(li, len(text)):
                    if not blank[k]:
                        rejects.append((int(lines.line[k]), int(lines.offset[k]), f"invalid JSON: {err.msg}", text[k]))
                        records += 1
                break
            le = int(np.searchsorted(starts, max(end - 1, pos), side="right") - 1)
            records += 1
            cls = _emit_json(obj, int(lines.line[li]), int(lines.line[le]), int(lines.offset[li]), rows, meta)
            if cls.startswith("reject:"):
                rejects.append((int(lines.line[li]), int(lines.offset[li]), cls[7:], text[li]))
            else:
                counts[cls] += 1
            pos = end
    return rows, printf_df, counts, rejects, records


# --------------------------------------------------------------------------- text


def _scale(s: str) -> float | None:
    m = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s*([KMGTPE]?)\s*$", s)
    return float(m[1]) * _SUFFIX[m[2]] if m else None


def _read_text(inp: Input, lines: Any, text: pl.Series, blank: np.ndarray, meta: dict[str, Any]):
    n = len(text)
    rows = _Rows()
    counts = {"emitted": 0, "metadata": 0, "merged": 0}
    rejects: list[tuple[int, int, str, str]] = []
    idx = np.arange(n)
    attach = text.str.contains(_ATTACH).to_numpy()
    tracing = text.str.contains(r"^Tracing .*(?:Ctrl-C|\.\.\.)").to_numpy()
    ctrlc = (text.str.strip_chars() == "^C").to_numpy()
    lost = text.str.extract(r"^Lost (\d+) events\s*$", 1)
    is_lost = lost.is_not_null().to_numpy()
    bucket = text.str.extract_groups(_BUCKET)
    is_bucket = bucket.struct.field("cnt").is_not_null().to_numpy()
    maphead = text.str.contains(_MAPHEAD).to_numpy() & ~is_bucket
    mapline = text.str.extract_groups(_MAPLINE)
    is_map = mapline.struct.field("val").is_not_null().to_numpy() & ~maphead & ~is_bucket
    st_open = text.str.contains(r"^@[\w.]*\[\s*$").to_numpy()
    st_close = text.str.extract(r"^\]:\s*(.*?)\s*$", 1)
    is_close = st_close.is_not_null().to_numpy()
    mark = np.where(st_open | is_close, idx, -1)
    last = np.maximum.accumulate(mark) if n else mark
    in_stack = (last >= 0) & st_open[np.maximum(last, 0)] & ~st_open & ~blank
    colhead = text.str.contains(_COLHEAD).to_numpy()
    tcol = text.str.extract_groups(_TIME_COL)
    timed = tcol.struct.field("h").is_not_null().to_numpy()
    meta_line = attach | tracing | ctrlc
    structural = meta_line | is_lost | is_bucket | maphead | is_map | st_open | is_close | in_stack | timed
    # printf output: the non-blank lines right after an Attach line (no blank line between)
    la = np.maximum.accumulate(np.where(attach, idx, -1)) if n else idx
    lb = np.maximum.accumulate(np.where(blank, idx, -1)) if n else idx
    in_block = (la >= 0) & (la > lb) & ~blank
    colhead = colhead & ~structural & in_block
    printf = in_block & ~structural & ~colhead
    prose = ~blank & ~structural & ~colhead & ~printf

    # column names from the last header row before each timed row
    hdr_names: dict[int, list[str]] = {int(i): text[int(i)].split() for i in np.flatnonzero(colhead)}
    day_ns = _day_ns(inp, meta) if timed.any() else 0

    # structured lines: histograms, maps, stacks (few lines: a loop is fine)
    cur_name, cur_key, frames = None, None, []
    struct_idx = np.flatnonzero(maphead | is_map | st_open | is_close | in_stack | is_bucket | is_lost | meta_line)
    for i in struct_idx:
        i = int(i)
        t = text[i]
        ln, off = int(lines.line[i]), int(lines.offset[i])
        if meta_line[i]:
            counts["metadata"] += 1
            if attach[i]:
                meta["extra"]["attached_probes"] = int(re.search(r"\d+", t)[0])
        elif st_open[i]:
            cur_name, frames = t.strip()[:-1], []
            counts["metadata"] += 1
        elif in_stack[i]:
            frames.append(t.strip())
            counts["metadata"] += 1
        elif is_close[i]:
            cur_key = ";".join(frames)
            counts["metadata"] += 1
            val = st_close[i]
            if val:
                counts["metadata"] -= 1
                counts["emitted"] += 1
                rows.add("counter", cur_name, _scale(val), ln, ln, off,
                         {"key": cur_key, "tk.time": "at exit", **({} if _scale(val) is not None else {"value": val})},
                         message=val)
        elif maphead[i]:
            m = re.match(_MAPHEAD, t)
            cur_name, cur_key = m["name"], m["key"]
            counts["metadata"] += 1
        elif is_map[i]:
            m = re.match(_MAPLINE, t)
            v = _scale(m["val"])
            rows.add("counter", m["name"], v, ln, ln, off,
                     {**({"key": m["key"]} if m["key"] is not None else {}), "tk.time": "at exit",
                      **({} if v is not None else {"value": m["val"]})}, message=t.strip())
            counts["emitted"] += 1
        elif is_bucket[i]:
            b = bucket[i]["b"]
            cnt = int(bucket[i]["cnt"])
            a: dict[str, str] = {}
            if cur_key is not None:
                a["key"] = cur_key
            inner = b[1:-1]
            parts = [p.strip() for p in inner.split(",")]
            lo = _scale(parts[0]) if parts and parts[0] not in ("", "...") else None
            hi = _scale(parts[1]) if len(parts) > 1 and parts[1] not in ("", "...") else None
            if len(parts) == 1 and lo is not None:
                hi = lo
            if lo is not None:
                a["min"] = f"{lo:g}" if lo != int(lo) else str(int(lo))
            if hi is not None:
                a["max"] = str(int(hi) - (1 if len(parts) > 1 and b.endswith(")") else 0)) if hi == int(hi) else f"{hi:g}"
            a["bucket"] = b
            a["tk.time"] = "at exit"
            rows.add("counter", cur_name, cnt, ln, ln, off, a, message=t.strip())
            counts["emitted"] += 1
        elif is_lost[i]:
            rows.add("loss", "lost events", int(lost[i]), ln, ln, off, {"tk.time": "at the point it was printed"},
                     message=t.strip())
            counts["emitted"] += 1
    counts["metadata"] += int(colhead.sum())

    # timed and printf lines: whole columns
    ti = np.flatnonzero(timed)
    tc = tcol.filter(pl.Series(timed)).struct.unnest()
    tod = ((tc["h"].cast(pl.Int64) * 3600 + tc["m"].cast(pl.Int64) * 60 + tc["s"].cast(pl.Int64)) * 1_000_000_000
           + tc["f"].fill_null("").str.pad_end(9, "0").cast(pl.Int64, strict=False).fill_null(0)).to_numpy()
    prec = (10 ** np.clip(9 - tc["f"].fill_null("").str.len_chars().to_numpy().astype(np.int64), 0, 9)).astype(np.int64)
    # header names: PID column → pid
    hidx = np.array(sorted(hdr_names), dtype=np.int64)
    pid = [None] * len(ti)
    keys: list[list[str]] = [[] for _ in ti]
    vals: list[list[str]] = [[] for _ in ti]
    if len(hidx):
        owner = np.searchsorted(hidx, ti, side="right") - 1
        rest = tc["rest"].fill_null("").to_list()
        for j, o in enumerate(owner):  # columns of a printf table (execsnoop-sized)
            if o < 0:
                continue
            names = hdr_names[int(hidx[o])][1:]
            cells = rest[j].split(None, max(len(names) - 1, 0)) if names else []
            for nm, cell in zip(names, cells):
                keys[j].append(nm.lower())
                vals[j].append(cell)
                if nm == "PID" and cell.lstrip("-").isdigit():
                    pid[j] = int(cell)
    timed_df = pl.DataFrame({
        "ts": day_ns + tod, "prec": prec, "message": text.filter(pl.Series(timed)),
        "line": lines.line[ti], "offset": lines.offset[ti], "pid": pl.Series(pid, dtype=pl.Int64),
        "keys": pl.Series(keys, dtype=pl.List(pl.String)), "vals": pl.Series(vals, dtype=pl.List(pl.String)),
    })
    counts["emitted"] += len(ti)
    pi = np.flatnonzero(printf)
    printf_df = pl.DataFrame({"message": text.filter(pl.Series(printf)), "line": lines.line[pi], "offset": lines.offset[pi]})
    counts["emitted"] += len(pi)
    for i in np.flatnonzero(prose):
        i = int(i)
        t = text[i]
        why = ("shell command line (documentation, not bpftrace output)" if t.lstrip().startswith("# ")
               else "prose or unrecognised line (not bpftrace output: no probe attach line before it, not a map, histogram or timed row)")
        rejects.append((int(lines.line[i]), int(lines.offset[i]), why, t))
    records = int((~blank).sum())
    return rows, printf_df, timed_df, counts, rejects, records


# --------------------------------------------------------------------------- read


def _read(inp: Input, date: str | None = None) -> ReadResult:
    meta: dict[str, Any] = {"clock": "relative", "host": None, "assumed": {}, "extra": {}}
    if date is not None:
        try:
            meta["_date"] = _dt.date.fromisoformat(date)
        except ValueError:
            raise OptionError(f"{inp.path}: date must be YYYY-MM-DD, not {date!r}") from None
    lines = split_lines(inp)
    text = pl.Series("t", lines.stripped())
    blank = (text.str.strip_chars().str.len_chars() == 0).to_numpy() if len(text) else np.zeros(0, bool)
    head = inp.head(4096)
    timed_df = None
    if _JSON_SNIFF.search(head) or head.lstrip().startswith(b"{"):
        meta["extra"]["output"] = "json"
        json_mode = True
        if lines.bad_utf8.size:  # the decoder's \xNN escapes are not JSON escapes: make them literal
            bi = lines.bad_utf8 - 1
            text = text.scatter(bi, text.gather(bi).str.replace_all(r"\\x([0-9a-f]{2})", r"\\x${1}"))
        rows, printf_df, counts, rejects, records = _read_json(inp, lines, text, blank, meta)
        counts.setdefault("merged", 0)
    else:
        json_mode = False
        meta["extra"]["output"] = "text"
        rows, printf_df, timed_df, counts, rejects, records = _read_text(inp, lines, text, blank, meta)

    parts = []
    sdf = rows.frame().with_columns(prec=pl.lit(None, dtype=pl.Int64))
    parts.append(sdf)
    if printf_df is not None and printf_df.height:
        parts.append(printf_df.with_columns(
            ts=pl.lit(None, dtype=pl.Int64), kind=pl.lit("log"), name=pl.lit("printf"), value=pl.lit(None, dtype=pl.Float64),
            line_end=pl.col("line"), pid=pl.lit(None, dtype=pl.Int64), prec=pl.lit(None, dtype=pl.Int64),
            keys=pl.lit(["tk.time"], dtype=pl.List(pl.String)),
            vals=pl.lit(["none (bpftrace prints no time on this record)"], dtype=pl.List(pl.String)),
        ).select(sdf.columns))
    if timed_df is not None and timed_df.height:
        parts.append(timed_df.with_columns(
            kind=pl.lit("log"), name=pl.lit("printf"), value=pl.lit(None, dtype=pl.Float64), line_end=pl.col("line"),
        ).select(sdf.columns))
    df = pl.concat(parts, how="vertical_relaxed").sort("line", maintain_order=True)
    if json_mode and df.height:  # printf/time records whose first column is a HH:MM:SS time
        tm = df["message"].str.extract_groups(_TIME_COL)
        hit = (tm.struct.field("h").is_not_null() & df["name"].is_in(["printf", "time"])).fill_null(False)
        if hit.any():
            t = tm.struct.unnest()
            tod = ((t["h"].cast(pl.Int64) * 3600 + t["m"].cast(pl.Int64) * 60 + t["s"].cast(pl.Int64)) * 1_000_000_000
                   + t["f"].fill_null("").str.pad_end(9, "0").cast(pl.Int64, strict=False).fill_null(0))
            prec = pl.Series(10 ** np.clip(9 - t["f"].fill_null("").str.len_chars().to_numpy().astype(np.int64), 0, 9))
            day = _day_ns(inp, meta)
            df = df.with_columns(
                ts=pl.when(hit).then(tod + day).otherwise(pl.col("ts")),
                prec=pl.when(hit).then(prec).otherwise(pl.col("prec")),
                vals=pl.when(hit).then(pl.col("vals").list.eval(
                    pl.when(pl.element().str.starts_with("none")).then(pl.lit("first column")).otherwise(pl.element())))
                .otherwise(pl.col("vals")),
            )
    meta.pop("_date", None)
    has_t = df["ts"].is_not_null()
    if has_t.any():
        meta["clock"] = "realtime"
        last = df["ts"].max()
        df = df.with_columns(
            tfill=pl.col("ts").forward_fill().fill_null(pl.col("ts").drop_nulls().first()),
            exit_=pl.col("vals").list.contains("at exit"),
        ).with_columns(
            ts=pl.when(pl.col("ts").is_not_null()).then(pl.col("ts"))
            .when(pl.col("exit_")).then(pl.lit(last)).otherwise(pl.col("tfill")),
            vals=pl.when(pl.col("ts").is_null()).then(pl.col("vals").list.eval(
                pl.when(pl.element() == "at exit").then(pl.lit("at exit (placed at the last printed time)"))
                .when(pl.element().str.starts_with("none")).then(pl.lit("none (placed at the previous printed time)"))
                .otherwise(pl.element()))).otherwise(pl.col("vals")),
        )
    else:
        df = df.with_columns(ts=pl.lit(0, dtype=pl.Int64))
        meta["assumed"]["clock"] = "relative: no record carries a time; every row has ts_src 0 (attrs tk.time)"
    cols = {
        "ts_src": df["ts"].to_numpy(), "ts_prec": df["prec"].to_arrow(), "kind": df["kind"].to_arrow(),
        "name": df["name"].to_arrow(), "category": "bpftrace", "value": df["value"].to_arrow(),
        "pid": df["pid"].to_arrow(), "message": df["message"].to_arrow(),
        "attrs": lists_to_map(df["keys"], df["vals"]),
        "line": df["line"].to_numpy(), "line_end": df["line_end"].to_numpy(), "offset": df["offset"].to_numpy(),
    }
    rej = None
    if rejects:
        rejects.sort()
        rej = make_rejects(inp.name, inp.path, [r[0] for r in rejects], [r[1] for r in rejects],
                           [r[2] for r in rejects], [r[3] for r in rejects])
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    return ReadResult(events=conform(cols, n=df.height), records=records, emitted=counts["emitted"],
                      merged=counts.get("merged", 0), metadata=counts["metadata"], rejects=rej, meta=meta)


register(
    Reader(
        name="bpftrace",
        description="bpftrace output: -f json records (printf, map, hist, stats, tseries, lost) and text output",
        sniff=_sniff,
        read=_read,
        options={"date": "YYYY-MM-DD for HH:MM:SS printf times; default: the file's modification date (UTC)"},
        extensions=(".bt.txt", ".bt.json"),
    )
)
