#!/usr/bin/env python3
"""Side-by-side benchmark: tracekit's readers against the tools a user would otherwise use.

Generates a workload with ``../shared/bench/gen_workloads.py`` (or reuses one whose
``manifest.json`` matches ``--n``), then for every format times tracekit and each peer,
**each parse in a fresh process** (a subprocess per measurement, median of ``--repeat``), and
reports events/s, MB/s, the child's peak RSS, the ratio tracekit/peer and, for tracekit, the
split between parsing (time inside ``reader.read``) and normalising (the rest of ``tk.load``:
conform, clock, assemble, sort).

Formats are pluggable: :data:`BENCHES` maps a format name to a :class:`FormatBench` holding the
tracekit callable and a list of peer callables. A callable takes the workload's paths and
returns the number of events it produced; it runs inside the child, after its ``imports``.

Examples::

    .venv/bin/python benchmarks/run.py --n 100000 --formats jsonl
    .venv/bin/python benchmarks/run.py --n 1000000 --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import importlib
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GEN = REPO.parent / "shared" / "bench" / "gen_workloads.py"
MARK = "<!-- bench:{fmt} -->"
END = "<!-- /bench:{fmt} -->"


# --------------------------------------------------------------------------- registry


@dataclass
class Bench:
    """One measured callable: ``func(paths) -> events``; ``imports`` are loaded before the clock."""

    name: str
    func: Callable[[list[str]], int]
    imports: tuple[str, ...] = ()
    prepare: Callable[[], Any] | None = None  # run before the clock, e.g. load the readers


@dataclass
class FormatBench:
    """A format's tracekit callable and its peers (what a user would use instead)."""

    tracekit: Bench | None
    peers: list[Bench] = field(default_factory=list)
    note: str = ""


def _tracekit(fmt: str) -> Bench:
    def run(paths: list[str]) -> int:
        return _tk_load(paths, fmt)["records"]

    def prepare() -> None:
        import tracekit as tk

        tk.formats()  # import every reader (and its engines) before the clock starts

    return Bench("tracekit", run, ("tracekit", "pyarrow", "duckdb", "polars", "numpy"), prepare)


_SPLIT: dict[str, float] = {}


def _tk_load(paths: list[str], fmt: str) -> dict[str, Any]:
    """``tk.load`` with the reader's own time measured (parse vs. normalise).

    The registry entry is wrapped for this process only; no core file changes.
    """
    import tracekit as tk
    from tracekit.readers import _base

    tk.formats()  # import every reader first, so the wrapper is not overwritten
    reader = _base._REGISTRY[fmt]
    spent = [0.0]

    def timed(inp: Any, **opts: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return reader.read(inp, **opts)
        finally:
            spent[0] += time.perf_counter() - t0

    _base._REGISTRY[fmt] = dataclasses.replace(reader, read=timed)
    try:
        t0 = time.perf_counter()
        tl = tk.load(paths if len(paths) > 1 else paths[0], format=fmt, progress=False)
        total = time.perf_counter() - t0
    finally:
        _base._REGISTRY[fmt] = reader
    src = tl.sources.to_pylist()
    _SPLIT.update(parse=spent[0], normalise=total - spent[0])
    return {"timeline": tl, "records": sum(r["records"] or 0 for r in src),
            "rows": tl.events.num_rows, "parse": spent[0], "total": total}


def tracekit_table(paths: list[str], fmt: str) -> Any:
    """The benchmark's tracekit code path, returning the Timeline (used by the tests)."""
    return _tk_load(paths, fmt)["timeline"]


def _lines_table(path: str) -> Any:
    """A file's lines as one Arrow string column (pyarrow CSV with an impossible delimiter)."""
    import pyarrow.csv as pcsv

    return pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(column_names=["line"], block_size=1 << 24),
        parse_options=pcsv.ParseOptions(delimiter="\x1f", quote_char=False, escape_char=False,
                                        newlines_in_values=False),
        convert_options=pcsv.ConvertOptions(column_types={"line": "string"}, strings_can_be_null=False),
    ).column("line")


def _pydict_from_objects(objs: list[dict]) -> Any:
    """``pa.Table.from_pydict`` over the union of keys (``from_pylist`` drops later keys)."""
    import pyarrow as pa

    keys: dict[str, None] = {}
    for o in objs:
        keys.update(dict.fromkeys(o))
    cols = {}
    for k in keys:
        vals = [o.get(k) for o in objs]
        try:
            cols[k] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep their text
            cols[k] = pa.array([None if v is None else str(v) for v in vals])
    return pa.Table.from_pydict(cols)


# --- jsonl peers


def jsonl_pyarrow(paths: list[str]) -> int:
    import pyarrow.json as pj

    return sum(pj.read_json(p).num_rows for p in paths)


def jsonl_duckdb(paths: list[str]) -> int:
    import duckdb

    con = duckdb.connect()
    return sum(con.sql(f"select * from read_ndjson('{p}')").to_arrow_table().num_rows for p in paths)


def jsonl_polars(paths: list[str]) -> int:
    import polars as pl

    return sum(pl.read_ndjson(p).to_arrow().num_rows for p in paths)


def jsonl_pandas(paths: list[str]) -> int:
    import pandas as pd

    return sum(len(pd.read_json(p, lines=True)) for p in paths)


def jsonl_orjson(paths: list[str]) -> int:
    import orjson

    n = 0
    for p in paths:
        with open(p, "rb") as f:
            objs = [orjson.loads(ln) for ln in f if ln.strip()]
        n += _pydict_from_objects(objs).num_rows
    return n


# --- chrome peers


def _chrome_events(obj: Any) -> list:
    return obj["traceEvents"] if isinstance(obj, dict) else obj


def chrome_pyarrow(paths: list[str]) -> int:
    import pyarrow as pa
    import pyarrow.json as pj

    n = 0
    for p in paths:
        t = pj.read_json(p, read_options=pj.ReadOptions(block_size=os.path.getsize(p) + 1))
        col = t.column("traceEvents").combine_chunks().flatten()
        n += pa.Table.from_struct_array(col).num_rows
    return n


def chrome_pandas(paths: list[str]) -> int:
    import pandas as pd

    n = 0
    for p in paths:
        with open(p) as f:
            n += len(pd.DataFrame(_chrome_events(json.load(f))))
    return n


def chrome_orjson(paths: list[str]) -> int:
    import orjson

    n = 0
    for p in paths:
        with open(p, "rb") as f:
            n += _pydict_from_objects(_chrome_events(orjson.loads(f.read()))).num_rows
    return n


def chrome_polars(paths: list[str]) -> int:
    import polars as pl

    n = 0
    for p in paths:
        df = pl.read_json(p)
        n += df.select(pl.col("traceEvents").explode()).unnest("traceEvents").height
    return n


# --- text formats: regex peers

SYSLOG_RE = r"^(\w{3}) +(\d{1,2}) (\d\d:\d\d:\d\d) (\S+) ([^:\[ ]+)(?:\[(\d+)\])?: ?(.*)$"
STRACE_RE = r"^(\d+) +(\d+\.\d+) (?:(\w+)\((.*)\) += (-?\w+)(?: [^<]*)?(?: <(\d+\.\d+)>)?|(.*))$"


def _regex_polars(paths: list[str], pattern: str) -> int:
    import polars as pl

    n = 0
    for p in paths:
        s = pl.from_arrow(_lines_table(p).combine_chunks())
        n += len(s.str.extract_groups(pattern))
    return n


def _regex_python(paths: list[str], pattern: str) -> int:
    rx = re.compile(pattern)
    n = 0
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as f:
            rows = [m.groups() if (m := rx.match(ln.rstrip("\n"))) else None for ln in f]
        n += len(rows)
    return n


def _regex_pyarrow(paths: list[str], pattern: str) -> int:
    import pyarrow.compute as pc

    pat = re.sub(r"\(\?:", "(?:", pattern)
    names = iter(f"g{i}" for i in range(100))
    pat = re.sub(r"\((?!\?)", lambda m: f"(?P<{next(names)}>", pat)
    n = 0
    for p in paths:
        n += len(pc.extract_regex(_lines_table(p), pat))
    return n


_STRACE_PAIR_RE = re.compile(
    r"^(\d+) +(\d+\.\d+) (?:<\.\.\. (\w+) resumed>(.*)\) += (\S+)(?: [^<]*)?(?: <(\d+\.\d+)>)?"
    r"|(\w+)\((.*?) ?<unfinished \.\.\.>|(\w+)\((.*)\) += (\S+)(?: [^<]*)?(?: <(\d+\.\d+)>)?"
    r"|--- (\w+) .*---|\+\+\+ (.*) \+\+\+)$")


def strace_python_pairs(paths: list[str]) -> int:
    """What a user writes by hand: ``re`` per line, unfinished calls held per (pid, syscall)
    until their ``<... X resumed>`` line, which completes them (args joined, result, duration);
    signals and exits as rows. Returns the number of rows."""
    n = 0
    for p in paths:
        rows: list[tuple] = []
        pending: dict[tuple[str, str], int] = {}
        with open(p, encoding="utf-8", errors="replace") as f:
            for ln in f:
                m = _STRACE_PAIR_RE.match(ln.rstrip("\n"))
                if m is None:
                    rows.append(("?", ln))
                    continue
                pid, ts = m.group(1), float(m.group(2))
                if m.group(3):  # resumed
                    i = pending.pop((pid, m.group(3)), None)
                    if i is None:
                        rows.append((pid, ts, m.group(3), m.group(4), m.group(5), m.group(6)))
                    else:
                        r = rows[i]
                        rows[i] = (pid, r[1], r[2], r[3] + m.group(4), m.group(5),
                                   m.group(6) or ts - r[1])
                elif m.group(7):  # unfinished
                    pending[(pid, m.group(7))] = len(rows)
                    rows.append((pid, ts, m.group(7), m.group(8), None, None))
                elif m.group(9):
                    rows.append((pid, ts, m.group(9), m.group(10), m.group(11), m.group(12)))
                else:
                    rows.append((pid, ts, m.group(13) or "exit", m.group(14), None, None))
        n += len(rows)
    return n


def syslog_lnav(paths: list[str]) -> int:
    """lnav (0.11) headless: its syslog format parses every line; SQL counts rows and tags."""
    import shutil
    import tempfile

    exe = shutil.which("lnav")
    if exe is None:
        raise RuntimeError("lnav not installed (apt-get install lnav)")
    with tempfile.TemporaryDirectory() as home:  # no user config, no session state
        cp = subprocess.run([exe, "-n", "-c", ";SELECT count(*), count(log_procname) FROM syslog_log", *paths],
                            capture_output=True, text=True, env=dict(os.environ, HOME=home), check=True)
    return int(cp.stdout.split()[-2])


def _text_peers(pattern: str) -> list[Bench]:
    return [
        Bench("polars lines + str.extract_groups", lambda ps: _regex_polars(ps, pattern), ("polars", "pyarrow.csv")),
        Bench("Python re loop", lambda ps: _regex_python(ps, pattern)),
        Bench("pyarrow extract_regex", lambda ps: _regex_pyarrow(ps, pattern), ("pyarrow.compute", "pyarrow.csv")),
    ]


# --- otlp peers


def _otlp_spans(t: Any) -> Any:
    """resourceSpans → scopeSpans → spans of a pyarrow.json table, as one struct array."""
    import pyarrow.compute as pc

    rs = pc.list_flatten(t.column("resourceSpans"))
    ss = pc.list_flatten(pc.struct_field(rs, "scopeSpans"))
    return pc.list_flatten(pc.struct_field(ss, "spans"))


def otlp_pyarrow(paths: list[str]) -> int:
    import pyarrow as pa
    import pyarrow.json as pj

    n = 0
    for p in paths:
        t = pj.read_json(p, read_options=pj.ReadOptions(block_size=os.path.getsize(p) + 1))
        n += pa.Table.from_struct_array(_otlp_spans(t)).num_rows
    return n


def _otlp_text(av: dict) -> str | None:
    """An OTLP AnyValue as tracekit's attrs text (scalars; nested values as compact JSON)."""
    import orjson

    for k, v in av.items():
        if k == "stringValue":
            return v
        if k == "boolValue":
            return "true" if v else "false"
        if k in ("intValue", "doubleValue", "bytesValue"):
            return str(v)
        return orjson.dumps(v).decode()
    return None


def otlp_orjson(paths: list[str]) -> int:
    """orjson + Python loops building the canonical columns tracekit builds (span and
    instant rows; ids, service/host from the resource, status, attrs map with resource and
    scope entries), then one Arrow table."""
    import orjson
    import pyarrow as pa

    kinds = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
    codes = {0: "UNSET", 1: "OK", 2: "ERROR"}
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            doc = orjson.loads(f.read())
        names = ("ts_src", "dur", "kind", "name", "category", "host", "entity", "state", "severity",
                 "trace_id", "span_id", "parent_id", "message", "attrs", "offset")
        cols: dict[str, list] = {k: [] for k in names}
        elem = 0
        for rs in doc.get("resourceSpans") or []:
            rattrs = [(kv["key"], _otlp_text(kv.get("value") or {})) for kv in
                      (rs.get("resource") or {}).get("attributes") or []]
            rmap = dict(rattrs)
            svc, host = rmap.get("service.name"), rmap.get("host.name")
            res_entries = [("resource." + k, v) for k, v in rattrs]
            for ss in rs.get("scopeSpans") or []:
                sc = ss.get("scope") or {}
                sc_entries = [(k, sc[f]) for k, f in (("otel.scope.name", "name"), ("otel.scope.version", "version"))
                              if sc.get(f)]
                for sp in ss.get("spans") or []:
                    start = int(sp["startTimeUnixNano"])
                    end = sp.get("endTimeUnixNano")
                    status = sp.get("status") or {}
                    code = codes.get(status.get("code", 0), "UNSET")
                    err = code == "ERROR"
                    tid, sid = sp.get("traceId", "").lower() or None, sp.get("spanId", "").lower() or None
                    attrs = [(kv["key"], _otlp_text(kv.get("value") or {})) for kv in sp.get("attributes") or []]
                    attrs += [("span.kind", kinds.get(sp.get("kind"), "unspecified")), ("otel.status_code", code)]
                    row = {"ts_src": start, "dur": int(end) - start if end else None, "kind": "span",
                           "name": sp.get("name"), "category": svc, "host": host, "entity": f"service/{svc}",
                           "state": "error" if err else "ok", "severity": "error" if err else None,
                           "trace_id": tid, "span_id": sid, "parent_id": sp.get("parentSpanId", "").lower() or None,
                           "message": status.get("message") or None, "attrs": attrs + sc_entries + res_entries,
                           "offset": elem}
                    for k in names:
                        cols[k].append(row[k])
                    for ev in sp.get("events") or []:
                        ev_attrs = [(kv["key"], _otlp_text(kv.get("value") or {})) for kv in ev.get("attributes") or []]
                        row = {"ts_src": int(ev.get("timeUnixNano") or start), "dur": None, "kind": "instant",
                               "name": ev.get("name"), "category": svc, "host": host, "entity": f"service/{svc}",
                               "state": None, "severity": "error" if ev.get("name") == "exception" else None,
                               "trace_id": tid, "span_id": sid, "parent_id": None, "message": None,
                               "attrs": ev_attrs, "offset": elem}
                        for k in names:
                            cols[k].append(row[k])
                    elem += 1
        types = {"ts_src": pa.int64(), "dur": pa.int64(), "offset": pa.int64(),
                 "attrs": pa.map_(pa.string(), pa.string())}
        n += pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()}).num_rows
    return n


BENCHES: dict[str, FormatBench] = {
    "jsonl": FormatBench(_tracekit("jsonl"), [
        Bench("pyarrow.json.read_json", jsonl_pyarrow, ("pyarrow.json",)),
        Bench("duckdb read_ndjson → Arrow", jsonl_duckdb, ("duckdb", "pyarrow")),
        Bench("polars.read_ndjson", jsonl_polars, ("polars", "pyarrow")),
        Bench("pandas.read_json(lines=True)", jsonl_pandas, ("pandas",)),
        Bench("orjson + pa.Table.from_pydict", jsonl_orjson, ("orjson", "pyarrow")),
    ], "peers parse only; tracekit also normalises (canonical schema, times to ns, attrs map, sort)"),
    "chrome": FormatBench(_tracekit("chrome"), [
        Bench("pyarrow.json whole file + flatten", chrome_pyarrow, ("pyarrow.json",)),
        Bench("json.load + pandas.DataFrame", chrome_pandas, ("pandas",)),
        Bench("orjson + pa.Table.from_pydict", chrome_orjson, ("orjson", "pyarrow")),
        Bench("polars.read_json + explode/unnest", chrome_polars, ("polars",)),
    ], "peers do not pair B/E, consume M metadata or map flows"),
    "syslog": FormatBench(_tracekit("syslog"), _text_peers(SYSLOG_RE) + [
        Bench("lnav -n (SQL over syslog_log)", syslog_lnav)],
        "regex peers extract fields only (no year/timezone, CRON events or severity); lnav's time "
        "includes its start-up and its SQL count"),
    "strace": FormatBench(_tracekit("strace"), _text_peers(STRACE_RE) + [
        Bench("Python re parser with pairing", strace_python_pairs)],
        "regex peers extract fields only (no unfinished/resumed pairing); the Python parser pairs "
        "unfinished/resumed lines per (pid, syscall) but makes no entities, thread groups or attrs"),
    "otlp": FormatBench(_tracekit("otlp"), [
        Bench("pyarrow.json whole file + flatten", otlp_pyarrow, ("pyarrow.json", "pyarrow.compute")),
        Bench("orjson + Python loops building the same columns", otlp_orjson, ("orjson", "pyarrow")),
    ], "pyarrow flattens resourceSpans/scopeSpans/spans and normalises nothing; the orjson loop builds "
       "span and instant rows with the canonical columns (ids, service, status, attrs map), but no "
       "links, dropped counts or sort"),
}


# --------------------------------------------------------------------------- child


def child_main(fmt: str, which: str, paths: list[str]) -> None:
    """Run one callable and print one JSON line (in a fresh process)."""
    fb = BENCHES[fmt]
    bench = fb.tracekit if which == "tracekit" else next(b for b in fb.peers if b.name == which)
    assert bench is not None
    for mod in bench.imports:
        importlib.import_module(mod)
    if bench.prepare is not None:
        bench.prepare()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    events = bench.func(paths)
    secs = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    # a peer that runs a program (lnav): that program's peak
    rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
    out = {"seconds": secs, "events": events, "rss": rss, "rss0": rss0}
    if which == "tracekit":
        out.update(_SPLIT)
    print("RESULT " + json.dumps(out), flush=True)


@dataclass
class Measurement:
    """The medians of ``repeat`` fresh-process runs of one callable."""

    name: str
    seconds: float | None = None
    events: int | None = None
    rss: int | None = None
    rss0: int | None = None  # peak RSS before the parse (interpreter + imports)
    parse: float | None = None
    normalise: float | None = None
    error: str | None = None
    runs: list[float] = field(default_factory=list)


def run_once(fmt: str, which: str, paths: Sequence[str], timeout: float = 900) -> dict[str, Any]:
    """One fresh-process run of ``which``: its JSON result, or ``{"error": ...}``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", fmt, which, *map(str, paths)]
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {timeout:.0f} s"}
    line = next((ln for ln in cp.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if cp.returncode != 0 or line is None:
        err = (cp.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed: {err[:200]}"}
    return json.loads(line[7:])


def summarise(which: str, results: list[dict[str, Any]]) -> Measurement:
    """Medians over the runs of one tool (the first error, if any run failed)."""
    m = Measurement(which)
    bad = next((r["error"] for r in results if "error" in r), None)
    if bad or not results:
        m.error = bad or "not run"
        return m
    m.runs = [r["seconds"] for r in results]
    m.seconds = statistics.median(m.runs)
    m.events = results[0]["events"]
    m.rss = int(statistics.median(r["rss"] for r in results))
    m.rss0 = int(statistics.median(r["rss0"] for r in results))
    if "parse" in results[0]:
        m.parse = statistics.median(r["parse"] for r in results)
        m.normalise = statistics.median(r["normalise"] for r in results)
    return m


def measure(fmt: str, which: str, paths: Sequence[str], repeat: int = 3, timeout: float = 900) -> Measurement:
    """Time ``which`` (``"tracekit"`` or a peer's name) on ``paths``, one subprocess per run."""
    results: list[dict[str, Any]] = []
    for _ in range(repeat):
        results.append(run_once(fmt, which, paths, timeout))
        if "error" in results[-1]:
            break
    return summarise(which, results)


def measure_side_by_side(fmt: str, tools: Sequence[str], paths: Sequence[str], repeat: int = 3,
                         timeout: float = 900) -> list[Measurement]:
    """Every tool once per round, ``repeat`` rounds (round-robin, so a machine shared with
    other work slows every tool alike rather than whichever happened to run then)."""
    results: dict[str, list[dict[str, Any]]] = {t: [] for t in tools}
    for rnd in range(repeat):
        for t in tools:
            if results[t] and "error" in results[t][-1]:
                continue
            print(f"[{fmt}] round {rnd + 1}/{repeat}: {t} …", file=sys.stderr, flush=True)
            results[t].append(run_once(fmt, t, paths, timeout))
    return [summarise(t, results[t]) for t in tools]


# --------------------------------------------------------------------------- workloads


def ensure_workload(n: int, data: Path, formats: Sequence[str], gen: Path) -> dict[str, Any]:
    """Generate the missing formats of an ``n``-event workload in ``data``; return the manifest."""
    man_path = data / "manifest.json"
    man = json.loads(man_path.read_text()) if man_path.exists() else {}
    have = set(man.get("files", {})) if man.get("n") == n else set()
    have = {f for f in have if all(Path(p).exists() for p in man["files"][f]["paths"])}
    missing = [f for f in formats if f not in have]
    if missing:
        if not gen.exists():
            raise SystemExit(f"generator not found: {gen} (pass --gen)")
        print(f"generating {n} events of {','.join(missing)} into {data} …", file=sys.stderr, flush=True)
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(gen), "--n", str(n), "--out", str(data),
                        "--formats", ",".join(missing)], check=True)
        new = json.loads(man_path.read_text())
        if man.get("n") == n:
            man["files"].update(new["files"])
        else:
            man = new
        man_path.write_text(json.dumps(man, indent=1))
    return man


# --------------------------------------------------------------------------- report


def _fmt_rate(v: float | None, unit: str = "") -> str:
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M{unit}"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k{unit}"
    return f"{v:.0f}{unit}"


def format_table(fmt: str, info: dict[str, Any], ms: list[Measurement]) -> str:
    """A markdown table for one format (tracekit first, then peers)."""
    nbytes = info["bytes"]
    n = info["events"]
    tk_m = ms[0] if ms and ms[0].name == "tracekit" else None
    tk_rate = n / tk_m.seconds if tk_m and tk_m.seconds else None
    rows = [f"**{fmt}** — {n:,} events, {nbytes / 1e6:.0f} MB",
            "",
            "| tool | median s | events/s | MB/s | peak RSS | RSS / input | RSS − imports | tracekit ÷ tool (events/s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m in ms:
        if m.seconds is None:
            rows.append(f"| {m.name} | {m.error} | | | | | | |")
            continue
        rate = n / m.seconds
        ratio = "—" if m is tk_m else (f"{tk_rate / rate:.2f}×" if tk_rate else "–")
        rss = f"{m.rss / 1e6:.0f} MB" if m.rss else "–"
        rr = f"{m.rss / nbytes:.2f}×" if m.rss else "–"
        grew = f"{(m.rss - (m.rss0 or 0)) / 1e6:.0f} MB" if m.rss else "–"
        name = m.name
        if m.parse is not None:
            name += f" (reader {m.parse:.2f} s + normalise {m.normalise:.2f} s)"
        if m.events != n and m is tk_m:
            name += f" ⚠ {m.events} records"
        rows.append(f"| {name} | {m.seconds:.2f} | {_fmt_rate(rate)} | {nbytes / 1e6 / m.seconds:.0f} "
                    f"| {rss} | {rr} | {grew} | {ratio} |")
    return "\n".join(rows)


def update_results(path: Path, command: str, sections: dict[str, str], header: str) -> None:
    """Write or update ``path``: each format's section is replaced between its markers."""
    text = path.read_text() if path.exists() else (
        "# Benchmark results\n\n" + header + "\n\n<!-- bench:command -->\n<!-- /bench:command -->\n")
    now = _dt.datetime.now(_dt.timezone.utc)
    cmd_block = (f"<!-- bench:command -->\nLast run ({now:%Y-%m-%d %H:%M} UTC; {header}):\n\n"
                 f"    {command}\n<!-- /bench:command -->")
    text = re.sub(r"<!-- bench:command -->.*?<!-- /bench:command -->", lambda _: cmd_block, text, flags=re.S)
    for fmt, body in sections.items():
        block = f"{MARK.format(fmt=fmt)}\n{body}\n{END.format(fmt=fmt)}"
        pat = re.escape(MARK.format(fmt=fmt)) + r".*?" + re.escape(END.format(fmt=fmt))
        if re.search(pat, text, flags=re.S):
            text = re.sub(pat, lambda _, b=block: b, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def machine() -> str:
    import duckdb
    import pandas
    import polars
    import pyarrow

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"pyarrow {pyarrow.__version__}, duckdb {duckdb.__version__}, polars {polars.__version__}, "
            f"pandas {pandas.__version__}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="events per format (default 1,000,000)")
    ap.add_argument("--formats", default=",".join(BENCHES), help=f"comma list of {', '.join(BENCHES)}")
    ap.add_argument("--repeat", type=int, default=3, help="fresh-process runs per tool (median; default 3)")
    ap.add_argument("--out", type=Path, help="write/update this markdown file (e.g. benchmarks/RESULTS.md)")
    ap.add_argument("--data", type=Path, help="workload folder (default /tmp/tk-bench/<n>)")
    ap.add_argument("--gen", type=Path, default=DEFAULT_GEN, help="gen_workloads.py (default ../shared/bench/)")
    ap.add_argument("--peers", default=None, help="only peers whose name contains one of these (comma list)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per run")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child_main(a.child[0], a.child[1], a.child[2:])
        return 0

    fmts = [f.strip() for f in a.formats.split(",") if f.strip()]
    unknown = [f for f in fmts if f not in BENCHES]
    if unknown:
        ap.error(f"no benchmark for {unknown}; known: {', '.join(BENCHES)}")
    import tracekit as tk

    have = set(tk.formats().column("name").to_pylist())
    data = a.data or Path("/tmp/tk-bench") / _label(a.n)
    man = ensure_workload(a.n, data, fmts, a.gen)
    sections: dict[str, str] = {}
    for fmt in fmts:
        fb = BENCHES[fmt]
        info = man["files"][fmt]
        paths = info["paths"]
        tools: list[str] = []
        skipped: Measurement | None = None
        if fb.tracekit is not None and fmt in have:
            tools.append("tracekit")
        else:
            print(f"[{fmt}] skipping tracekit: tk.formats() has no {fmt!r} reader yet", file=sys.stderr)
            skipped = Measurement("tracekit", error=f"skipped: no {fmt!r} reader in tk.formats() yet")
        tools += [p.name for p in fb.peers
                  if not a.peers or any(s.strip() in p.name for s in a.peers.split(","))]
        ms = measure_side_by_side(fmt, tools, paths, a.repeat, a.timeout)
        if skipped is not None:
            ms.insert(0, skipped)
        body = format_table(fmt, info, ms)
        if fb.note:
            body += f"\n\n_{fb.note}._"
        body += (f"\n\nMeasured {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
                 f"{os.getloadavg()[0]:.1f}, with: `{_command(argv)}`")
        sections[fmt] = body
        print(body + "\n", flush=True)
    if a.out:
        command = _command(argv)
        header = f"{machine()}, load average {os.getloadavg()[0]:.1f} at the end"
        update_results(a.out, command, sections, header)
    return 0


def _command(argv: Sequence[str] | None) -> str:
    return "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else (f"{n // 1000}k" if n % 1000 == 0 else str(n))


if __name__ == "__main__":
    sys.exit(main())
