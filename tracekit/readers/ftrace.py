"""ftrace text: ``trace_pipe`` / ``tracing/trace``, ``trace-cmd report``, atrace/systrace.

Layouts read (one regex over the column of lines, polars ``extract_groups``)::

    # tracer: nop                                             (header → metadata)
              sh-1642  [002]    76.211696: sched_wakeup:   comm=kworker/u12:1 pid=46 ...
          <idle>-0     [000] d..2  1136.097253: cpu_idle: state=0 cpu_id=0
           <...>-882   (  882) [003] .... 10852.771186: tracing_mark_write: B|882|name
          <idle>-0     (-----) [006] d.s4    21.123839: sched_blocked_reason: pid=2172 ...
    CPU:1 [LOST 123 EVENTS]                                    (→ a ``loss`` row, value 123)
    ##### CPU 2 buffer started ####                            (→ a ``loss`` row, no count)

* the task's pid is the thread id (``tid``); a tgid column gives ``pid`` (without one, a
  ``sched_process_exec`` row's ``pid`` is its payload's ``pid=``); ``cpu``, irq flags
  and the task name go to attrs; every ``key=value`` of the payload goes to attrs (a value
  keeps any further ``=``: ``my_field=foo=bar``), the payload itself is the message;
* times are ``seconds.micro(nano)seconds`` since boot, parsed from the digits (exact ns),
  clock ``boot`` unless the header's ``trace_clock`` or the ``clock=`` option says otherwise;
* ``sched_switch`` → kind ``state``, entity ``thread/<host>/<prev_pid>@<start>``, state =
  ``prev_state`` (numeric states of old kernels mapped to letters, raw value in attrs);
  ``sched_wakeup*`` → the woken thread, state ``R``; ``sched_process_exec/exit/fork`` →
  ``proc/<host>/<pid>@<start>``, state ``exec``/``exit``/``fork``. ``<start>`` is the
  ``ts_src`` (ns) of the thread's ``sched_process_fork`` in this trace, else ``?``;
* atrace markers in ``print``/``tracing_mark_write`` (``B|pid|name``, ``E|pid``,
  ``C|pid|name|value``): C → kind ``counter`` with the value; a B and the E that closes it
  (per thread, nested) → one ``span`` row with ``dur`` (the E merged, its line in attrs
  ``tk.end_line``); an unmatched B or E stays a ``marker`` (``tk.phase`` in attrs);
* ``[FAILED TO PARSE]`` events are kept (attrs ``tk.failed_to_parse``);
* a line that is no event, header or loss note, following an event, is a continuation of that
  event's payload (multi-line ``print``): merged into it (``line_end``, message joined by
  ``\\n``); one before any event, or one that looks like a broken event line, is rejected;
* containers: a systrace HTML page (the text inside ``<script class="trace-data">``; the page's
  other lines are metadata) and atrace text whose lines end with a literal ``\\n\\`` (unescaped).

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("trace.txt")                                # doctest: +SKIP
    >>> tl.events.filter(pc.field("name") == "sched_switch")     # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..schema import conform
from ._base import Input, Reader, ReadResult, make_rejects, register, split_lines
from ._kernel import attrs_from, colon_long, kv_get, kv_long, num, sched_fields, secs_ns, to_arrow
from .perf import exec_pid

EVENT_RE = (
    r"^\s*(?P<task>.+?)-(?P<tid>\d+)\s+(?:\(\s*(?P<tgid>[\d-]+)\s*\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s\[\]]{4,6})\s+)?(?P<secs>\d+)\.(?P<frac>\d+):\s+"
    r"(?P<event>[^\s:(]+)(?P<sep>:|\(|\s+->)\s*(?P<payload>.*)$"
)
_EVENT_START = r"^\s*.+-\d+\s+(?:\(\s*[\d-]+\s*\)\s+)?\[\d+\]"
LOST_RE = r"^\s*CPU:\s*(?P<lcpu>\d+)\s*\[(?:LOST\s+(?P<lost>\d+)\s+EVENTS|(?P<dropped>\d+)\s+EVENTS DROPPED)\]"
STARTED_RE = r"^#{3,}\s*CPU\s+(?P<scpu>\d+)\s+buffer started\s*#*\s*$"
HEADER_RE = r"^\s*(?:#|version\s*=\s*\d+\s*$|cpus\s*=\s*\d+\s*$|CPU\s*\d+\s+is empty|trace-cmd:|TRACE:\s*$)"
#: pre-3.x kernels: ``comm:pid [prio] S ==> comm:pid [prio]`` and ``comm:pid [prio] success=1 [cpu]``
OLD_SWITCH_RE = (r"^(?P<prev_comm>.+?):(?P<prev_pid>\d+) \[(?P<prev_prio>-?\d+)\] (?P<prev_state>\S+) ==> "
                 r"(?P<next_comm>.+?):(?P<next_pid>\d+) \[(?P<next_prio>-?\d+)\]")
OLD_WAKE_RE = r"^(?P<comm>.+?):(?P<pid>\d+) \[(?P<prio>-?\d+)\]"
MARK_RE = r"^(?P<ph>[BEC])(?:\s*$|\|(?P<mpid>\d*)(?:\|(?P<mname>[^|]*))?(?:\|(?P<mval>[^|]*))?)"

_RESERVED = ("cpu", "task", "flags", "tgid", "ip")
_CLOCKS = {"local": "boot", "global": "boot", "boot": "boot", "mono": "monotonic",
           "mono_raw": "monotonic", "uptime": "boot", "perf": "boot", "counter": "unknown",
           "x86-tsc": "unknown", "tai": "unknown"}


def _sniff(head: bytes, name: str) -> float:
    text = head[:32768].decode("utf-8", "replace")
    if '<script class="trace-data"' in text or "class='trace-data'" in text:
        return 0.9 if re.search(r"^\s*\S.*-\d+\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]", text, re.M) or \
            "# tracer:" in text else 0.0
    lines = text.replace("\\n\\\n", "\n").splitlines()[:60]
    if not lines:
        return 0.0
    ev = sum(1 for ln in lines if re.match(EVENT_RE, ln))
    if any(ln.startswith("# tracer:") for ln in lines[:5]):
        return 0.9
    if ev and ev >= 0.5 * sum(1 for ln in lines if ln.strip() and not ln.startswith("#")):
        return 0.85 if ev >= 2 or len(lines) <= 2 else 0.7
    return 0.0


def _read(inp: Input, host: str | None = None, clock: str | None = None) -> ReadResult:
    lines = split_lines(inp)
    n = len(lines)
    text = pl.Series("t", lines.stripped())
    meta: dict[str, Any] = {"clock": "boot", "host": host, "assumed": {}, "extra": {}}
    if n == 0:
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=0, emitted=0, meta=meta)

    # containers: systrace HTML and JS-escaped atrace text
    container = np.zeros(n, dtype=bool)
    is_open = text.str.contains(r"<script[^>]*class=[\"']trace-data").to_numpy()
    if is_open.any():
        is_close = text.str.contains(r"</script>").to_numpy() & ~is_open
        mark = np.where(is_open | is_close, np.arange(n), -1)
        last = np.maximum.accumulate(mark)
        inside = (last >= 0) & is_open[np.maximum(last, 0)] & ~is_open
        container = ~inside
        meta["extra"]["container"] = "systrace html"
    escaped = text.str.ends_with("\\n\\")
    if escaped.sum() > 0.5 * max(1, n - int(container.sum())):
        text = text.str.replace(r"\\n\\$", "")
        meta["extra"]["container"] = "atrace text with JS-escaped lines (\\n\\ unescaped)"

    blank = (text.str.strip_chars().str.len_chars() == 0).to_numpy()
    ev = text.str.extract_groups(EVENT_RE)
    is_ev = ev.struct.field("secs").is_not_null().to_numpy() & ~container
    lost = text.str.extract_groups(LOST_RE)
    started = text.str.extract_groups(STARTED_RE)
    is_lost = (lost.struct.field("lcpu").is_not_null().to_numpy() | started.struct.field("scpu").is_not_null().to_numpy()) \
        & ~container & ~is_ev
    is_head = text.str.contains(HEADER_RE).to_numpy() & ~is_ev & ~is_lost & ~container & ~blank
    rest = ~(is_ev | is_lost | is_head | container | blank)
    broken = text.str.contains(_EVENT_START).to_numpy() & rest
    # continuation: the nearest earlier non-blank line is an event or a continuation
    code = np.where(is_ev, 1, np.where(rest & ~broken, 2, 0)).astype(np.int8)
    nb = np.flatnonzero(~blank & ~container)
    prev_code = np.zeros(n, dtype=np.int8)
    cont = np.zeros(n, dtype=bool)
    if len(nb):
        # iterate continuation chains: a line is a continuation if prev non-blank is event or cont
        cands = rest & ~broken
        pc_ = np.zeros(len(nb), dtype=np.int8)
        pc_[1:] = code[nb[:-1]]
        prev_code[nb] = pc_
        # chains of candidates: a candidate continues if the last non-candidate before it is an event
        is_c = cands[nb]
        last_non = np.where(~is_c, np.arange(len(nb)), -1)
        last_non = np.maximum.accumulate(last_non)
        anchor_ok = (last_non >= 0) & (code[nb[np.maximum(last_non, 0)]] == 1)
        cont[nb] = is_c & anchor_ok
    rejected = rest & ~cont

    # header values
    hdr_idx = np.flatnonzero(is_head)[:500]
    hdr = [text[int(i)] for i in hdr_idx]
    _header_meta(hdr, meta)
    if clock is not None:
        meta["clock"] = clock
        meta["assumed"]["clock"] = f"{clock} (clock= option)"
    elif "trace_clock" in meta["extra"]:
        meta["clock"] = _CLOCKS.get(meta["extra"]["trace_clock"], "unknown")
    else:
        meta["assumed"]["clock"] = "boot (ftrace's default trace_clock 'local' counts from boot)"

    evi = np.flatnonzero(is_ev)
    e = ev.filter(pl.Series(is_ev)).struct.unnest()
    ts, prec = secs_ns(e["secs"], e["frac"])
    sep = e["sep"].str.strip_chars()
    raw_event = e["event"]
    payload = e["payload"].str.strip_chars_end()
    event = (
        pl.DataFrame({"e": raw_event, "s": sep})
        .select(
            pl.when(pl.col("s") == "(").then(pl.concat_str([pl.lit("sys_enter_"), pl.col("e").str.strip_prefix("sys_")]))
            .when(pl.col("s") == "->").then(pl.concat_str([pl.lit("sys_exit_"), pl.col("e").str.strip_prefix("sys_")]))
            .otherwise(pl.col("e"))
        ).to_series()
    )
    payload = pl.DataFrame({"p": payload, "s": sep}).select(
        pl.when(pl.col("s") == "(").then(pl.concat_str([pl.lit("("), pl.col("p")])).otherwise(pl.col("p"))
    ).to_series()

    # merged continuation lines
    line_end = lines.line[evi].copy()
    if cont.any():
        ci = np.flatnonzero(cont)
        owner = np.searchsorted(evi, ci, side="right") - 1  # index into events
        cdf = pl.DataFrame({"o": owner, "t": text.gather(ci), "ln": lines.line[ci]}).group_by("o", maintain_order=True).agg(
            pl.col("t").str.join("\n"), pl.col("ln").max()
        )
        extra_txt = pl.Series([None] * len(evi), dtype=pl.String).scatter(cdf["o"].to_numpy(), cdf["t"])
        payload = pl.DataFrame({"p": payload, "x": extra_txt}).select(
            pl.when(pl.col("x").is_not_null()).then(pl.concat_str([pl.col("p"), pl.lit("\n"), pl.col("x")])).otherwise(pl.col("p"))
        ).to_series()
        line_end[cdf["o"].to_numpy()] = cdf["ln"].to_numpy()

    # print / bputs: "0xffff00000819ff24s: text" → ip in attrs
    ipm = payload.str.extract_groups(r"^(?P<ip>0x[0-9a-f]+)s:\s*(?P<msg>(?s:.*))$")
    ip = ipm.struct.field("ip")
    msg = pl.DataFrame({"p": payload, "m": ipm.struct.field("msg")}).select(pl.coalesce("m", "p")).to_series()
    failed = msg.str.starts_with("[FAILED TO PARSE]")
    nev = len(msg)
    is_call = (sep == "(").to_numpy()
    if is_call.any():  # sys_openat(dfd: 0xffffff9c, filename: ...) → dfd, filename, ... attrs
        ci, ni = np.flatnonzero(is_call), np.flatnonzero(~is_call)
        cl = colon_long(msg.gather(ci), _RESERVED)
        cl = cl.with_columns(r=pl.Series(ci.astype(np.int64)).gather(cl["r"]))
        kl = kv_long(msg.gather(ni), _RESERVED)
        kl = kl.with_columns(r=pl.Series(ni.astype(np.int64)).gather(kl["r"]))
        kv = pl.concat([kl, cl]).sort("r", maintain_order=True)
    else:
        kv = kv_long(msg, _RESERVED)
    kv = _old_sched(event, msg, kv)
    mk = msg.str.extract_groups(MARK_RE)
    is_marker_ev = raw_event.is_in(["tracing_mark_write", "print", "0"]) & mk.struct.field("ph").is_not_null()
    phase = pl.DataFrame({"m": is_marker_ev, "p": mk.struct.field("ph")}).select(
        pl.when(pl.col("m")).then(pl.col("p")).otherwise(None)).to_series()

    tid = e["tid"].cast(pl.Int64)
    tgid = e["tgid"].cast(pl.Int64, strict=False)
    pid = exec_pid(tgid, event, kv)  # the tgid column, else an exec's payload pid (certain)
    host_ = meta.get("host")
    ent, state, is_state = sched_fields(event, kv, tid, tgid, ts, host_)
    df = pl.DataFrame({"st": is_state, "ph": phase})
    kind = df.select(
        pl.when(pl.col("st")).then(pl.lit("state"))
        .when(pl.col("ph") == "C").then(pl.lit("counter"))
        .when(pl.col("ph").is_in(["B", "E"])).then(pl.lit("marker"))
        .otherwise(pl.lit("instant"))
    ).to_series()
    name = pl.DataFrame({"ev": event, "ph": phase, "mn": mk.struct.field("mname")}).select(
        pl.when(pl.col("ph").is_in(["B", "C"]) & pl.col("mn").is_not_null()).then(pl.col("mn")).otherwise(pl.col("ev"))
    ).to_series()
    # values: sys_exit return codes, counters, cpu_idle/cpu_frequency states
    ret = pl.DataFrame({"p": payload, "s": sep}).select(
        pl.when(pl.col("s") == "->").then(pl.col("p")).otherwise(kv_get(kv, "ret", nev))).to_series()
    value = pl.DataFrame({
        "ret": num(ret, signed=True), "mv": num(mk.struct.field("mval")), "ph": phase,
        "st": num(kv_get(kv, "state", nev)), "ev": event,
    }).select(
        pl.when(pl.col("ph") == "C").then(pl.col("mv"))
        .when(pl.col("ev").str.starts_with("sys_exit")).then(pl.col("ret"))
        .when(pl.col("ev").is_in(["cpu_idle", "cpu_frequency"])).then(pl.col("st"))
        .otherwise(None)
    ).to_series()
    # atrace B/E markers → spans: an E closes the latest open B of the same thread
    dur, end_line, drop = _pair_markers(phase, tid, ts, lines.line[evi])
    if len(drop):
        kind = kind.scatter(np.flatnonzero(dur.is_not_null().to_numpy()), "span")
    attrs = attrs_from(
        [("cpu", e["cpu"]), ("task", e["task"].str.strip_chars()), ("flags", e["flags"]),
         ("tgid", pl.DataFrame({"g": e["tgid"], "t": tgid}).select(pl.when(pl.col("t").is_null()).then(pl.col("g")))
          .to_series()),
         ("ip", ip), ("tk.failed_to_parse", pl.DataFrame({"f": failed}).select(pl.when(pl.col("f")).then(pl.lit("true"))).to_series()),
         ("tk.phase", phase), ("tk.end_line", end_line), ("tk.event", pl.DataFrame({"a": raw_event, "b": event}).select(
             pl.when(pl.col("a") != pl.col("b")).then(pl.col("a"))).to_series())],
        kv,
    )
    cols: dict[str, Any] = {
        "ts_src": ts, "ts_prec": prec, "kind": to_arrow(kind), "name": to_arrow(name), "category": "ftrace",
        "value": to_arrow(value), "host": host_, "pid": to_arrow(pid), "tid": to_arrow(tid),
        "entity": to_arrow(ent), "state": to_arrow(state), "message": to_arrow(msg), "attrs": attrs,
        "line": lines.line[evi], "line_end": line_end, "offset": lines.offset[evi], "dur": to_arrow(dur),
    }
    events = conform(cols)
    if len(drop):
        keep = np.ones(len(evi), dtype=bool)
        keep[drop] = False
        events = events.filter(pa.array(keep))
    # loss rows: at the time of the next event (else the previous one)
    li = np.flatnonzero(is_lost)
    if len(li):
        pos = np.searchsorted(evi, li)
        has_next = pos < len(evi)
        tl = np.where(has_next, ts[np.minimum(pos, max(len(evi) - 1, 0))] if len(evi) else 0,
                      ts[np.maximum(pos - 1, 0)] if len(evi) else 0)
        lcpu = lost.struct.field("lcpu").gather(li)
        scpu = started.struct.field("scpu").gather(li)
        cnt = pl.DataFrame({"a": lost.struct.field("lost").gather(li), "b": lost.struct.field("dropped").gather(li)}).select(
            pl.coalesce("a", "b").cast(pl.Float64)).to_series()
        lcols = {
            "ts_src": tl.astype(np.int64), "kind": "loss",
            "name": pa.array(np.where(scpu.is_not_null().to_numpy(), "buffer started", "lost events")),
            "category": "ftrace", "value": to_arrow(cnt), "host": host_,
            "message": to_arrow(text.gather(li).str.strip_chars()),
            "attrs": attrs_from([("cpu", pl.DataFrame({"a": lcpu, "b": scpu}).select(pl.coalesce("a", "b")).to_series()),
                                 ("tk.time", pl.Series([("next event" if h else "previous event") for h in has_next]))]),
            "line": lines.line[li], "line_end": lines.line[li], "offset": lines.offset[li],
        }
        events = pa.concat_tables([events, conform(lcols)])
        order = np.argsort(np.concatenate([lines.line[evi], lines.line[li]]), kind="stable")
        events = events.take(pa.array(order))

    rej = None
    if rejected.any():
        ri = np.flatnonzero(rejected)
        reasons = np.where(broken[ri], "malformed ftrace event line (task-pid [cpu] seen, no time/event)",
                           "not an ftrace event, header or lost-events note (and no event before it to continue)")
        rej = make_rejects(inp.name, inp.path, lines.line[ri], lines.offset[ri], list(reasons),
                           to_arrow(text.gather(ri)))
    records = int((~blank).sum())
    metadata = int((is_head | (container & ~blank)).sum())
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    return ReadResult(events=events, records=records, emitted=int(len(evi) - len(drop) + len(li)),
                      merged=int(cont.sum()) + len(drop),
                      metadata=metadata, rejects=rej, meta=meta)


def _old_sched(event: pl.Series, msg: pl.Series, kv: pl.DataFrame) -> pl.DataFrame:
    """Add the fields of old-format ``sched_switch``/``sched_wakeup`` payloads to ``kv``."""
    add = []
    for names, pattern in ((["sched_switch"], OLD_SWITCH_RE), (["sched_wakeup", "sched_wakeup_new"], OLD_WAKE_RE)):
        rows = np.flatnonzero(event.is_in(names).to_numpy() & msg.str.contains(pattern).to_numpy())
        if not len(rows):
            continue
        g = msg.gather(rows).str.extract_groups(pattern).struct.unnest()
        for c in g.columns:
            add.append(pl.DataFrame({"r": rows.astype(np.int64), "k": c, "v": g[c]}))
    if not add:
        return kv
    return pl.concat([kv, *add], how="vertical_relaxed").sort("r", maintain_order=True)


def _pair_markers(phase: pl.Series, tid: pl.Series, ts: np.ndarray, line: np.ndarray
                  ) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Match atrace ``B``/``E`` markers per thread (a stack each, in time order).

    Returns the span duration for each matched B (null elsewhere), the matched E's line for
    it, and the indices of the matched E rows (merged into their B). Loops over the marker
    rows only.
    """
    n = len(phase)
    dur = np.full(n, -1, dtype=np.int64)
    endl = np.full(n, -1, dtype=np.int64)
    mi = np.flatnonzero(phase.is_in(["B", "E"]).fill_null(False).to_numpy())
    drop: list[int] = []
    if len(mi):
        order = mi[np.argsort(ts[mi], kind="stable")]
        ph = phase.to_numpy()
        tids = tid.fill_null(-1).to_numpy()
        stacks: dict[int, list[int]] = {}
        for i in order:
            st = stacks.setdefault(int(tids[i]), [])
            if ph[i] == "B":
                st.append(int(i))
            elif st:
                b = st.pop()
                dur[b] = ts[i] - ts[b]
                endl[b] = line[i]
                drop.append(int(i))
    d = pl.Series(dur).set(pl.Series(dur < 0), None)
    e = pl.Series(endl).set(pl.Series(endl < 0), None).cast(pl.String)
    return d, e, np.array(sorted(drop), dtype=np.int64)


def _header_meta(hdr: list[str], meta: dict[str, Any]) -> None:
    x = meta["extra"]
    for h in hdr:
        s = h.strip()
        if m := re.match(r"#\s*tracer:\s*(\S+)", s):
            x["tracer"] = m.group(1)
        elif m := re.match(r"#\s*entries-in-buffer/entries-written:\s*(\d+)/(\d+)(?:\s+#P:(\d+))?", s):
            x["entries_in_buffer"], x["entries_written"] = int(m.group(1)), int(m.group(2))
            if m.group(3):
                x["cpus"] = int(m.group(3))
        elif m := re.match(r"version\s*=\s*(\d+)", s):
            x["version"] = int(m.group(1))
        elif m := re.match(r"cpus\s*=\s*(\d+)", s):
            x["cpus"] = int(m.group(1))
        elif m := re.search(r"trace_clock\s*[:=]\s*(?:.*\[(\w[\w-]*)\]|(\w[\w-]*))", s):
            x["trace_clock"] = m.group(1) or m.group(2)
        elif m := re.match(r"#\s*enabled events:\s*(.*)", s):
            x["enabled_events"] = m.group(1)


register(
    Reader(
        name="ftrace",
        description="ftrace text (trace_pipe, tracing/trace, trace-cmd report, atrace/systrace text and HTML)",
        sniff=_sniff,
        read=_read,
        options={
            "host": "host name for entities and the host column; default: none (ftrace text has none)",
            "clock": "clock of the timestamps (boot, monotonic, …); default: from the header's trace_clock, else boot",
        },
        extensions=(".trace", ".systrace", ".ftrace"),
    )
)
