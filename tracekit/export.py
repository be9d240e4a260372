"""Export the aligned timeline as Chrome trace-event JSON (opens in ui.perfetto.dev and
chrome://tracing) for zooming through millions of events.

Layout: one *process* per host (``pid`` 1, 2, … in host order; events without a host get the
process ``(no host)``) and one *thread* per source inside it, both named with ``M`` events
(``process_name``, ``thread_name``, and sort indices so the order is the lanes' order).

* ``span`` with a duration → ``X`` (complete) event. Viewers drop ``X`` slices that overlap on
  one thread without nesting, so spans that would cross an enclosing slice's end are written as
  nestable async ``b``/``e`` pairs (``cat`` ``tk.async``, one ``id`` per span) instead;
* ``span`` without a duration, ``instant``, ``log``, ``state``, ``marker``, ``sample``,
  ``loss`` → ``i`` (thread-scoped instant);
* ``counter`` → ``C`` with the series (attrs ``tk.series``, default ``value``) as the arg;
* events sharing a ``flow_id`` → a flow: ``s`` at the first, ``t`` at the middle ones, ``f``
  (``bp: "e"``) at the last, all with the same ``id`` (``cat`` ``tk.flow``). Events of kind
  ``flow`` are written only as these flow events; any other event carrying a flow id is written
  as itself plus the flow event beside it (so reading the file back gives one extra ``flow``
  row for it). A flow id seen once has no second end: no flow event is written for it.

Times are absolute epoch µs written as decimal text with three decimals (``…100285.445``), so
the nanoseconds survive (tracekit's reader parses the text exactly; viewers read doubles, good
to ~0.25 µs). Each event's ``args`` carry ``seq``, ``kind``, ``source`` and, when present,
``entity``, ``state``, ``message``, ``severity`` and ``category``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from . import _time

__all__ = ["to_chrome_json"]

_INSTANT_KINDS = {"instant", "log", "state", "marker", "sample", "loss", "span"}


def _us(ns: int) -> str:
    """int ns → exact decimal µs text."""
    ns = int(ns)
    sign = "-" if ns < 0 else ""
    q, r = divmod(abs(ns), 1000)
    return f"{sign}{q}.{r:03d}" if r else f"{sign}{q}"


def _event(ph: str, ts: int, rest: dict, dur: int | None = None) -> bytes:
    head = f'{{"ph":"{ph}","ts":{_us(ts)}' + (f',"dur":{_us(dur)}' if dur is not None else "")
    body = orjson.dumps(rest, option=orjson.OPT_NON_STR_KEYS)
    return (head + ("," if len(body) > 2 else "")).encode() + body[1:]


def _nesting_ok(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """For spans of one thread: True where the span nests in the X slices kept so far (sorted by
    start, longer first); False where it would cross an enclosing slice's end (→ async)."""
    order = np.lexsort((-(end - start), start))
    ok = np.ones(len(start), bool)
    stack: list[int] = []  # ends of the open X slices
    for i in order:
        s, e = start[i], end[i]
        while stack and stack[-1] <= s:
            stack.pop()
        if stack and e > stack[-1]:
            ok[i] = False
            continue
        stack.append(e)
    return ok


def to_chrome_json(tl: Any, path: str | os.PathLike, start: Any = None, end: Any = None,
                   progress: bool = True) -> Path:
    """Write ``tl`` (or the events with ``start <= ts < end``) as Chrome trace-event JSON.

    Returns the path written. Open it at https://ui.perfetto.dev (or chrome://tracing); read it
    back with ``tk.load(path)``.

    Example::

        >>> from tracekit.export import to_chrome_json
        >>> to_chrome_json(tl, "incident.json", start="2025-07-07T09:12:00Z", end="2025-07-07T09:12:30Z")  # doctest: +SKIP
    """
    path = Path(path)
    if start is not None or end is not None:
        lo, hi = tl.time_range()
        s = _time.to_time_ns(start) if start is not None else (lo or 0)
        e = _time.to_time_ns(end) if end is not None else (hi or 0) + 1
        tl = tl.window(s, e)
    ev = tl.events
    n = ev.num_rows
    cols = ["ts", "dur", "seq", "source", "kind", "name", "host", "entity", "state", "message", "severity",
            "category", "flow_id"]
    t = ev.select(cols)
    ts = t.column("ts").cast(pa.int64()).to_numpy() if n else np.zeros(0, np.int64)
    dur_col = t.column("dur").cast(pa.int64())
    has_dur = pc.is_valid(dur_col).to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    dur = pc.fill_null(dur_col, 0).to_numpy() if n else np.zeros(0, np.int64)

    def strs(name: str) -> list:
        return t.column(name).cast(pa.string()).to_pylist()

    source, kind, name, host = strs("source"), strs("kind"), strs("name"), strs("host")
    entity, state, message = strs("entity"), strs("state"), strs("message")
    severity, category, flow_id = strs("severity"), strs("category"), strs("flow_id")
    seq = t.column("seq").to_pylist()
    value = ev.column("value").to_pylist()
    series: list[Any] = [None] * n
    is_counter = np.array([k == "counter" for k in kind], bool)
    if is_counter.any():
        idx = np.flatnonzero(is_counter)
        attrs = ev.column("attrs").take(pa.array(idx)).to_pylist()
        for j, a in zip(idx, attrs):
            series[j] = dict(a or {}).get("tk.series")

    # --- lanes: process per host, thread per source
    src_host = {r["source"]: r["host"] for r in tl.sources.to_pylist() if r.get("source")}
    lane_host = [h or src_host.get(s) or "(no host)" for h, s in zip(host, source)]
    hosts = sorted(set(lane_host))
    pid_of = {h: i + 1 for i, h in enumerate(hosts)}
    srcs = sorted({(lh, s) for lh, s in zip(lane_host, source)})
    tid_of = {k: i + 1 for i, k in enumerate(srcs)}
    out: list[bytes] = []
    for h in hosts:
        out.append(_event("M", 0, {"name": "process_name", "pid": pid_of[h], "tid": 0, "args": {"name": h}}))
        out.append(_event("M", 0, {"name": "process_sort_index", "pid": pid_of[h], "tid": 0,
                                   "args": {"sort_index": pid_of[h]}}))
    for (h, s), tid in tid_of.items():
        out.append(_event("M", 0, {"name": "thread_name", "pid": pid_of[h], "tid": tid, "args": {"name": s}}))
        out.append(_event("M", 0, {"name": "thread_sort_index", "pid": pid_of[h], "tid": tid,
                                   "args": {"sort_index": tid}}))
    pid = np.array([pid_of[h] for h in lane_host], np.int64) if n else np.zeros(0, np.int64)
    tid = np.array([tid_of[(h, s)] for h, s in zip(lane_host, source)], np.int64) if n else np.zeros(0, np.int64)

    # --- which spans are X and which async
    is_span = np.array([k == "span" for k in kind], bool) & has_dur
    as_x = is_span.copy()
    for lane_tid in np.unique(tid[is_span]) if is_span.any() else []:
        idx = np.flatnonzero(is_span & (tid == lane_tid))
        ok = _nesting_ok(ts[idx], ts[idx] + dur[idx])
        as_x[idx[~ok]] = False

    # --- flows
    flow_role: dict[int, tuple[str, int]] = {}
    groups: dict[str, list[int]] = {}
    for j, f in enumerate(flow_id):
        if f:
            groups.setdefault(f, []).append(j)
    for k, (_f, js) in enumerate(groups.items()):
        if len(js) < 2:
            continue
        js = sorted(js, key=lambda j: (ts[j], seq[j]))
        flow_role[js[0]] = ("s", k + 1)
        for j in js[1:-1]:
            flow_role[j] = ("t", k + 1)
        flow_role[js[-1]] = ("f", k + 1)

    rng = range(n)
    if progress and n > 200_000:
        try:
            from tqdm.auto import tqdm

            rng = tqdm(rng, desc="chrome json", leave=False)
        except ImportError:
            pass
    async_id = 0
    for j in rng:
        args: dict[str, Any] = {"seq": seq[j], "kind": kind[j], "source": source[j]}
        for key, v in (("entity", entity[j]), ("state", state[j]), ("message", message[j]),
                       ("severity", severity[j]), ("category", category[j]), ("flow_id", flow_id[j])):
            if v is not None:
                args[key] = v
        base = {"name": name[j] or message[j] or kind[j], "pid": int(pid[j]), "tid": int(tid[j])}
        if category[j]:
            base["cat"] = category[j]
        k = kind[j]
        role = flow_role.get(j)
        if k == "flow" and role is not None:
            ph, fid = role
            rec = {**base, "cat": "tk.flow", "id": fid, "args": args}
            if ph == "f":
                rec["bp"] = "e"
            out.append(_event(ph, ts[j], rec))
            continue
        if is_span[j] and as_x[j]:
            out.append(_event("X", ts[j], {**base, "args": args}, dur=int(dur[j])))
        elif is_span[j]:
            async_id += 1
            rec = {**base, "cat": "tk.async", "id": f"0x{async_id:x}"}
            out.append(_event("b", ts[j], {**rec, "args": args}))
            out.append(_event("e", ts[j] + int(dur[j]), rec))
        elif k == "counter":
            key = series[j] or "value"
            v = value[j]
            # a counter sample without a value stays without one (no series), rather than a made-up 0
            out.append(_event("C", ts[j], {**base, "args": {key: v} if v is not None else {}}))
        else:
            out.append(_event("i", ts[j], {**base, "s": "t", "args": args}))
        if role is not None:  # a non-flow event carrying a flow id: flow event beside it
            ph, fid = role
            rec = {"name": "flow", "cat": "tk.flow", "id": fid, "pid": int(pid[j]), "tid": int(tid[j])}
            if ph == "f":
                rec["bp"] = "e"
            out.append(_event(ph, ts[j], rec))
    meta = {"exporter": "tracekit", "events": n, "note": "ts are epoch microseconds (UTC, aligned)"}
    with open(path, "wb") as fh:
        fh.write(b'{"displayTimeUnit":"ns","otherData":' + orjson.dumps(meta) + b',"traceEvents":[\n')
        fh.write(b",\n".join(out))
        fh.write(b"\n]}\n")
    return path
