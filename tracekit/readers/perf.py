"""``perf script`` text (and ``perf trace`` text, registered as ``perf_trace``).

``perf script`` lines (one regex over the column of lines, polars ``extract_groups``)::

    # hostname : vm                                   (--header lines → metadata)
               sleep  3482 [000]  3456.549768: sched:sched_process_exec: filename=/usr/bin/sleep ...
    simple-terminat     9/9     198791.127353: cpu-clock:
    swapper     0 [001] 202513.231817:    1001001 cpu-clock:
    \\t    ffffffffad135f6f [unknown] ([kernel.kallsyms])     (callchain line of the sample above)
                  dd  3589 [000]  3482.273422: PERF_RECORD_LOST lost 2   (→ a ``loss`` row)

* one number before the time is the thread id (perf's default ``tid`` field); ``pid/tid``
  gives both (without it, a ``sched_process_exec`` row's ``pid`` is its payload's ``pid=``:
  the exec'ing task leads its thread group); ``[cpu]``, the period, the event modifier (``:ppp``) go to attrs;
* ``subsystem:event`` tracepoints → category/name, their ``key=value`` fields → attrs; the
  scheduler/process tracepoints get entities and states as in :mod:`.ftrace`
  (``thread/<host>/<tid>@<start>``), ``sock:inet_sock_set_state`` → state ``newstate``;
  sampling events (cpu-clock, cycles, …) → kind ``sample``;
* callchain lines are merged into their sample (counted ``merged``; ``line``..``line_end``),
  the chain in attrs ``callchain`` (leaf first, symbols joined by ``;``) and ``callchain_dso``;
* times are seconds since boot (perf clock) → clock ``boot``. ``--header`` values go to
  ``meta["extra"]`` (hostname → host); a ``# reference time: <date> = <s.us> (TOD) = <s.ns>
  (<clock>)`` line pairs wall and sample time, and is applied as a certain anchor
  (``anchor_ns = TOD − clock time``, clock named by it).

``perf trace`` lines (``0.046 ( 0.016 ms): sh/4988 brk() = 0x5622f4e2f000``): ms since the
trace began → clock ``relative``; ``dur`` from the duration; the return value → ``value``.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("perf.txt")            # doctest: +SKIP
    >>> tl.sources["format"][0].as_py()     # doctest: +SKIP
    'perf_script'
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..schema import conform
from ._base import Input, Reader, ReadResult, make_rejects, register, split_lines
from ._kernel import attrs_from, kv_get, kv_long, num, sched_fields, secs_ns, to_arrow

SAMPLE_RE = (
    r"^\s*(?P<comm>\S.*?)\s+(?:(?P<pid>-?\d+)/)?(?P<tid>-?\d+)\s+(?:\[(?P<cpu>\d+)\]\s+)?"
    r"(?P<secs>\d+)\.(?P<frac>\d+):\s+(?:(?P<period>\d+)\s+)?"
    r"(?:(?P<rec>PERF_RECORD_\w+)|(?P<event>\S+?):)(?:\s+|$)(?P<rest>.*?)\s*$"
)
CHAIN_RE = r"^\s+(?P<ip>[0-9a-fA-F]+)\s+(?P<sym>.*?)\s*\((?P<dso>[^()]*)\)\s*$"
LEAF_RE = r"^(?P<ip>[0-9a-fA-F]+)\s+(?P<sym>.*?)\s*\((?P<dso>[^()]*)\)$"
_SAMPLING = ("cpu-clock", "task-clock", "cycles", "instructions", "cache-misses", "cache-references",
             "branch-misses", "branches", "page-faults", "faults", "context-switches", "cs",
             "cpu-migrations", "migrations", "ref-cycles", "bus-cycles", "minor-faults", "major-faults")
_RESERVED = ("cpu", "period", "modifier", "ip", "sym", "dso", "callchain", "callchain_dso", "comm")
REF_RE = re.compile(r"#\s*reference time\s*:\s*(?P<date>.*?)\s*=\s*(?P<tods>\d+)\.(?P<todf>\d+)\s*\(TOD\)\s*="
                    r"\s*(?P<cs>\d+)\.(?P<cf>\d+)\s*\((?P<clk>[\w-]+)\)")

_SNIFF_SAMPLE = re.compile(SAMPLE_RE)


def _sniff(head: bytes, name: str) -> float:
    text = head[:32768].decode("utf-8", "replace")
    lines = text.splitlines()[:80]
    if not lines:
        return 0.0
    if any(re.match(r"#\s*(perf version|captured on|cmdline)\s*:", ln) for ln in lines[:60]):
        return 0.9
    body = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    samples = sum(1 for ln in body if _SNIFF_SAMPLE.match(ln))
    chain = sum(1 for ln in body if re.match(CHAIN_RE, ln))
    if samples and samples + chain >= 0.8 * len(body):
        # ftrace lines look alike but carry "-pid" and a bracketed cpu right after the task
        ft = sum(1 for ln in body if re.match(r"^\s*.+-\d+\s+(?:\(\s*[\d-]+\s*\)\s+)?\[\d+\]", ln))
        if ft >= samples:
            return 0.0
        return 0.85 if samples >= 2 or chain else 0.75
    return 0.0


def _header(hdr: list[str]) -> dict[str, Any]:
    x: dict[str, Any] = {}
    for h in hdr:
        m = re.match(r"#\s*([^:=]+?)\s*:\s*(.*?)\s*$", h)
        if not m or m.group(1).startswith("="):
            continue
        k, v = m.group(1).strip().lower().replace(" ", "_"), m.group(2)
        if k == "event":
            x.setdefault("events", []).append(v)
        elif k not in x:
            x[k] = v
    return x


def _read(inp: Input, host: str | None = None) -> ReadResult:
    lines = split_lines(inp)
    n = len(lines)
    text = pl.Series("t", lines.stripped())
    meta: dict[str, Any] = {"clock": "boot", "host": host, "assumed": {}, "extra": {}}
    if n == 0:
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=0, emitted=0, meta=meta)
    blank = (text.str.strip_chars().str.len_chars() == 0).to_numpy()
    is_head = text.str.starts_with("#").to_numpy()
    s = text.str.extract_groups(SAMPLE_RE)
    is_s = s.struct.field("secs").is_not_null().to_numpy() & ~is_head
    ch = text.str.extract_groups(CHAIN_RE)
    is_ch = ch.struct.field("ip").is_not_null().to_numpy() & ~is_s & ~is_head
    gid = np.cumsum(is_s)
    merged = is_ch & (gid > 0)
    rejected = ~(blank | is_head | is_s | merged)

    hdr = [text[int(i)] for i in np.flatnonzero(is_head)[:2000]]
    x = _header(hdr)
    meta["extra"] = x
    if host is None and x.get("hostname"):
        meta["host"] = x["hostname"]
    for h in hdr:
        if m := REF_RE.match(h.strip()):
            tod = int(m["tods"]) * 1_000_000_000 + int(m["todf"].ljust(9, "0")[:9])
            cns = int(m["cs"]) * 1_000_000_000 + int(m["cf"].ljust(9, "0")[:9])
            clk = m["clk"].lower()
            meta["clock"] = {"monotonic": "monotonic", "monotonic_raw": "monotonic", "boottime": "boot",
                             "realtime": "realtime", "tai": "unknown"}.get(clk, "unknown")
            x["reference_time"] = {"date": m["date"], "tod_ns": tod, "clock_ns": cns, "clockid": clk}
            if meta["clock"] == "realtime":
                pass
            elif meta["clock"] != "unknown":
                meta["anchor_ns"] = tod - cns
                meta["anchor"] = f"perf --header reference time: {m['date']} (TOD) = {m['cs']}.{m['cf']} ({clk})"
            break
    else:
        meta["assumed"]["clock"] = "boot (perf's default clock counts from boot; no reference time in the header)"
    host_ = meta.get("host")

    si = np.flatnonzero(is_s)
    e = s.filter(pl.Series(is_s)).struct.unnest()
    ts, prec = secs_ns(e["secs"], e["frac"])
    ev = e["event"]
    mod = ev.str.extract(r":([ukhHGpPSDIWe]+)$", 1)
    base = pl.DataFrame({"e": ev, "m": mod}).select(
        pl.when(pl.col("m").is_not_null()).then(pl.col("e").str.replace(r":[ukhHGpPSDIWe]+$", "")).otherwise(pl.col("e"))
    ).to_series()
    cat = base.str.extract(r"^(.*):[^:]+$", 1)
    name = pl.DataFrame({"b": base, "r": e["rec"]}).select(
        pl.coalesce(pl.col("r"), pl.col("b").str.extract(r"([^:]+)$", 1))).to_series()
    rest = e["rest"]
    kv = kv_long(rest, _RESERVED)
    tid = e["tid"].cast(pl.Int64)
    pid = exec_pid(e["pid"].cast(pl.Int64, strict=False), name, kv)
    ent, state, is_state = sched_fields(name, kv, tid, pid, ts, host_)
    leaf = rest.str.extract_groups(LEAF_RE)
    is_lost = (e["rec"] == "PERF_RECORD_LOST").fill_null(False)
    lostn = rest.str.extract(r"lost\s+(\d+)", 1).cast(pl.Float64, strict=False)
    nr = rest.str.extract(r"^NR\s+(-?\d+)", 1)
    kind = pl.DataFrame({"st": is_state, "l": is_lost, "n": name, "c": cat, "r": e["rec"]}).select(
        pl.when(pl.col("l")).then(pl.lit("loss"))
        .when(pl.col("st")).then(pl.lit("state"))
        .when(pl.col("r").is_not_null()).then(pl.lit("marker"))
        .when(pl.col("n").is_in(list(_SAMPLING)) | pl.col("c").is_null()).then(pl.lit("sample"))
        .otherwise(pl.lit("instant"))
    ).to_series()
    value = pl.DataFrame({"l": is_lost, "n": lostn, "nm": name, "ret": num(rest.str.extract(r"^NR\s+-?\d+\s*=\s*(\S+)", 1))}).select(
        pl.when(pl.col("l")).then(pl.col("n"))
        .when(pl.col("nm") == "sys_exit").then(pl.col("ret"))
        .otherwise(None)).to_series()

    # callchains
    line_end = lines.line[si].copy()
    chain = pl.Series([None] * len(si), dtype=pl.String)
    chain_dso = pl.Series([None] * len(si), dtype=pl.String)
    if merged.any():
        mi = np.flatnonzero(merged)
        cdf = pl.DataFrame({
            "o": gid[mi] - 1, "sym": ch.struct.field("sym").gather(mi), "dso": ch.struct.field("dso").gather(mi),
            "ln": lines.line[mi],
        }).group_by("o", maintain_order=True).agg(pl.col("sym").str.join(";"), pl.col("dso").str.join(";"), pl.col("ln").max())
        o = cdf["o"].to_numpy()
        chain = chain.scatter(o, cdf["sym"])
        chain_dso = chain_dso.scatter(o, cdf["dso"])
        line_end[o] = cdf["ln"].to_numpy()
    attrs = attrs_from(
        [("comm", e["comm"]), ("cpu", e["cpu"]), ("period", e["period"]), ("modifier", mod),
         ("ip", leaf.struct.field("ip")), ("sym", leaf.struct.field("sym")), ("dso", leaf.struct.field("dso")),
         ("nr", nr), ("callchain", chain), ("callchain_dso", chain_dso)],
        kv,
    )
    msg = pl.DataFrame({"r": rest}).select(pl.when(pl.col("r") != "").then(pl.col("r"))).to_series()
    cols: dict[str, Any] = {
        "ts_src": ts, "ts_prec": prec, "kind": to_arrow(kind), "name": to_arrow(name), "category": to_arrow(cat),
        "value": to_arrow(value), "host": host_, "pid": to_arrow(pid), "tid": to_arrow(tid),
        "entity": to_arrow(ent), "state": to_arrow(state), "message": to_arrow(msg), "attrs": attrs,
        "line": lines.line[si], "line_end": line_end, "offset": lines.offset[si],
    }
    events = conform(cols)
    rej = None
    if rejected.any():
        ri = np.flatnonzero(rejected)
        reasons = np.where(is_ch[ri], "callchain line before any sample",
                           "not a perf script sample, callchain or header line")
        rej = make_rejects(inp.name, inp.path, lines.line[ri], lines.offset[ri], list(reasons), to_arrow(text.gather(ri)))
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    return ReadResult(events=events, records=int((~blank).sum()), emitted=len(si), merged=int(merged.sum()),
                      metadata=int((is_head & ~blank).sum()), rejects=rej, meta=meta)


# --------------------------------------------------------------------------- perf trace

TRACE_RE = (
    r"^\s*(?:(?P<ms>\d+)\.(?P<frac>\d+)|\?)\s+\(\s*(?:(?P<dur>\d+\.\d+)\s*ms)?\s*\):\s+"
    r"(?P<comm>.+?)/(?P<tid>\d+)\s+(?P<cont>\.\.\.\s+\[continued\]:\s+)?(?P<call>(?P<sc>[\w]+)\((?P<args>.*?)\)\)?)"
    r"\s+=\s+(?P<ret>.*?)\s*$"
)


def _sniff_trace(head: bytes, name: str) -> float:
    lines = [ln for ln in head[:32768].decode("utf-8", "replace").splitlines()[:40] if ln.strip()]
    if not lines:
        return 0.0
    hits = sum(1 for ln in lines if re.match(TRACE_RE, ln))
    return 0.85 if hits >= 0.8 * len(lines) and hits >= 1 else 0.0


def _read_trace(inp: Input, host: str | None = None) -> ReadResult:
    lines = split_lines(inp)
    text = pl.Series("t", lines.stripped())
    meta: dict[str, Any] = {"clock": "relative", "host": host, "extra": {},
                            "assumed": {"clock": "relative (perf trace prints ms since the trace began)"}}
    blank = (text.str.strip_chars().str.len_chars() == 0).to_numpy()
    g = text.str.extract_groups(TRACE_RE)
    ok = g.struct.field("sc").is_not_null().to_numpy()
    idx = np.flatnonzero(ok)
    e = g.filter(pl.Series(ok)).struct.unnest()
    ts, _ = secs_ns(e["ms"], e["frac"])
    has_t = e["ms"].is_not_null().to_numpy()
    ts = ts // 1000  # the digits were ms.frac: secs_ns read them as s.frac → divide by 1000
    dms, _ = secs_ns(e["dur"].str.extract(r"^(\d+)", 1), e["dur"].str.extract(r"\.(\d+)$", 1))
    dur = pl.Series(dms // 1000).to_frame("d").with_columns(has=e["dur"].is_not_null()).select(
        pl.when(pl.col("has")).then(pl.col("d"))).to_series()
    ret = e["ret"]
    value = num(ret.str.extract(r"^(-?\w+)", 1))
    attrs = attrs_from([("comm", e["comm"]), ("args", e["args"]), ("return", ret),
                        ("tk.continued", pl.Series(np.where(e["cont"].is_not_null().to_numpy(), "true", None))),
                        ("tk.time", pl.Series(np.where(has_t, None, "not printed (\"?\"): placed at 0")))])
    cols = {
        "ts_src": np.where(has_t, ts, 0), "ts_prec": np.full(len(idx), 1000, dtype=np.int64), "kind": "span",
        "dur": to_arrow(dur), "name": to_arrow(e["sc"]), "category": "syscall", "value": to_arrow(value),
        "host": host, "tid": to_arrow(e["tid"].cast(pl.Int64)), "message": to_arrow(e["call"]), "attrs": attrs,
        "line": lines.line[idx], "line_end": lines.line[idx], "offset": lines.offset[idx],
    }
    rejected = ~ok & ~blank
    rej = None
    if rejected.any():
        ri = np.flatnonzero(rejected)
        rej = make_rejects(inp.name, inp.path, lines.line[ri], lines.offset[ri],
                           "not a perf trace syscall line", to_arrow(text.gather(ri)))
    return ReadResult(events=conform(cols), records=int((~blank).sum()), emitted=len(idx), rejects=rej, meta=meta)


register(
    Reader(
        name="perf_script",
        description="perf script text (samples, tracepoints with fields, callchains, --header, lost records)",
        sniff=_sniff,
        read=_read,
        options={"host": "host name; default: the --header hostname, else none"},
        extensions=(".perf", ".perf-script.txt", ".perf-script"),
    )
)
register(
    Reader(
        name="perf_trace",
        description="perf trace text (strace-like: ms since start, duration, syscall(args) = ret)",
        sniff=_sniff_trace,
        read=_read_trace,
        options={"host": "host name; default: none"},
    )
)


def exec_pid(pid: pl.Series, event: pl.Series, kv: pl.DataFrame) -> pl.Series:
    """``pid`` with the gaps of ``sched_process_exec`` rows filled from the payload's ``pid=``.

    After exec the task is its thread group's leader (the kernel's de_thread), so the
    tracepoint's ``pid`` is the process id with certainty even when the text printed only the
    thread id (``perf script`` without ``-F +pid``, ftrace without ``record-tgid``). Other
    events' ``pid=`` is a thread id and is not used.
    """
    fp = kv_get(kv, "pid", len(event)).cast(pl.Int64, strict=False)
    return pl.DataFrame({"p": pid, "x": fp, "e": (event == "sched_process_exec").fill_null(False)}).select(
        pl.when(pl.col("p").is_null() & pl.col("e")).then(pl.col("x")).otherwise(pl.col("p"))).to_series()
