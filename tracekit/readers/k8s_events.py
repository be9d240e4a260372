"""Kubernetes events: ``kubectl get events -o json``, single Events, watch streams.

Reads core/v1 ``Event`` objects and ``events.k8s.io/v1`` ones (``regarding``/``note``/
``deprecated*``/``series``), alone, in a ``List``/``EventList`` (``kubectl get events -o json``),
pretty objects one after another (``kubectl get events -w -o json``) or one per line, bare or
wrapped as watch events (``{"type": "ADDED", "object": {...}}``; ``BOOKMARK`` events count as
metadata). Each Event is one row:

* ``name`` = ``reason``; ``message`` = ``message`` (``note``); ``severity``: ``Normal`` → info,
  ``Warning`` → warning; ``category`` = the involved object's kind (``Pod``); ``kind`` = ``log``;
* ``entity`` = ``pod/<ns>/<name>``, ``node/<name>`` … (see :mod:`._k8s`); a ``fieldPath`` such
  as ``spec.containers{app}`` goes to attrs ``tk.field_path`` (and ``tk.container`` = ``app``);
* ``host`` = ``source.host``, else ``reportingInstance``;
* time: ``eventTime`` (MicroTime, 1 µs) when set, else ``firstTimestamp`` (1 s: ``ts_prec`` =
  1 s), else ``lastTimestamp``, else ``metadata.creationTimestamp`` (attrs ``tk.time_from``
  says which was used when it is not the first two);
* a repeated event (``count`` > 1, or ``series``) stays **one row** at its first time, with
  ``dur`` = last − first and attrs ``tk.count`` (the count) and ``tk.last`` (the last time as
  written): nothing is invented for the occurrences in between, which Kubernetes did not
  record. A last time before the first one leaves ``dur`` null (attrs ``tk.time_order``);
* ``state``: a provisional reading of a few container/node lifecycle reasons (``Started`` →
  running, ``Killing`` → terminating, ``BackOff`` → backoff, ``NodeNotReady`` → notready …);
* every other top-level key stays in attrs verbatim (objects as compact JSON).

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("events.json")                      # doctest: +SKIP
    >>> tl.events.select(["ts", "entity", "name", "dur"])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..schema import normalize_severity
from . import _k8s
from ._base import Input, Reader, ReadResult, make_rejects, register

#: reasons that say which state the involved object is in (provisional; transitions refine it)
REASON_STATES = {
    "Scheduled": "scheduled", "Pulling": "pulling", "Pulled": "pulled", "Created": "created",
    "Started": "running", "Killing": "terminating", "BackOff": "backoff", "Failed": "failed",
    "FailedScheduling": "pending", "Unhealthy": "unhealthy", "Evicted": "evicted",
    "Preempted": "preempted", "OOMKilling": "oomkilled", "NodeReady": "ready",
    "NodeNotReady": "notready", "NodeNotSchedulable": "unschedulable",
    "NodeSchedulable": "schedulable", "Rebooted": "rebooted", "Completed": "completed",
}
_CONSUMED = ("reason", "message", "note", "type")
_WATCH = ("ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR")


def _sniff(head: bytes, name: str) -> float:
    h = head.lstrip()
    if not h.startswith((b"{", b"[")):
        return 0.0
    if b'"auditID"' in head or b"audit.k8s.io" in head:
        return 0.0
    has_obj = b'"involvedObject"' in head or b'"regarding"' in head
    has_reason = b'"reason"' in head
    is_event = (b'"kind":"Event' in head or b'"kind": "Event' in head
                or b"events.k8s.io" in head)
    if has_obj and has_reason and is_event:
        return 0.9
    if has_obj and has_reason:
        return 0.8
    if is_event and (b'"EventList"' in head or b'"items"' in head):
        return 0.7
    return 0.0


def _read(inp: Input) -> ReadResult:
    rec = _k8s.json_records(inp)
    n = len(rec.text)
    rej_line, rej_off = list(rec.reject_line), list(rec.reject_offset)
    rej_reason, rej_raw = list(rec.reject_reason), list(rec.reject_raw)
    meta: dict[str, Any] = {"clock": "realtime", "extra": {"layout": rec.mode}}
    if n == 0:
        return _result(inp, rec, None, rej_line, rej_off, rej_reason, rej_raw, 0, meta)
    con = _k8s.connect()
    try:
        con.register("r", pa.table({"obj": rec.text, "i": np.arange(n, dtype=np.int64)}))
        wrapped = ("json_type(obj, '$.object') = 'OBJECT' AND json_extract_string(obj, '$.type') IN ("
                   + ",".join(_k8s.sql_lit(w) for w in _WATCH) + ")")
        con.sql(f"""create temp view u as select i, obj,
            CASE WHEN json_type(obj) <> 'OBJECT' THEN NULL
                 WHEN {wrapped} THEN json_extract(obj, '$.object')::VARCHAR ELSE obj END AS o,
            CASE WHEN json_type(obj) = 'OBJECT' AND {wrapped} THEN json_extract_string(obj, '$.type') END AS watch_type
            from r""")
        keys = [k for (k,) in con.sql(
            "select k from (select unnest(json_keys(o)) k, i from u where o is not null)"
            " group by k order by min(i), k").fetchall()]
        at = _k8s.Attrs(keys, skip=set(_CONSUMED))
        x = at.x
        s = x.s

        def inv(f: str) -> str:
            return f"coalesce({s('$.involvedObject.' + f)}, {s('$.regarding.' + f)})"

        has_inv = f"coalesce({x.j('$.involvedObject')}, {x.j('$.regarding')}) IS NOT NULL"
        sel = f"""i, watch_type,
            json_type(o) AS o_type, {s('$.kind')} AS obj_kind,
            {s('$.reason')} AS reason, coalesce({s('$.message')}, {s('$.note')}) AS message,
            {s('$.type')} AS etype,
            {inv('kind')} AS inv_kind, {inv('namespace')} AS inv_ns, {inv('name')} AS inv_name,
            {inv('fieldPath')} AS field_path,
            nullif(regexp_extract({inv('fieldPath')}, '\\{{([^}}]*)\\}}', 1), '') AS container,
            {s('$.eventTime')} AS event_time,
            coalesce({s('$.firstTimestamp')}, {s('$.deprecatedFirstTimestamp')}) AS first_ts,
            coalesce({s('$.lastTimestamp')}, {s('$.deprecatedLastTimestamp')}) AS last_ts,
            {s('$.metadata.creationTimestamp')} AS created_ts,
            coalesce({s('$.count')}, {s('$.deprecatedCount')}) AS cnt,
            {s('$.series.count')} AS series_count,
            {s('$.series.lastObservedTime')} AS series_last,
            coalesce(nullif({s('$.source.host')}, ''), nullif({s('$.reportingInstance')}, ''),
                     nullif({s('$.deprecatedSource.host')}, '')) AS host,
            ({has_inv} OR {s('$.reason')} IS NOT NULL) AS looks_event,
            {at.columns()}"""
        q = f"select {sel} from ({x.cte('u', 'i, o, watch_type')}) order by i"
        res = con.sql(q).to_arrow_table()
    finally:
        con.close()

    def col(name: str) -> pa.Array:
        return res.column(name).combine_chunks()

    def np_col(name: str) -> np.ndarray:
        return np.asarray(pc.fill_null(col(name), False).to_numpy(zero_copy_only=False), dtype=bool) \
            if pa.types.is_boolean(res.column(name).type) else col(name).to_numpy(zero_copy_only=False)

    watch = col("watch_type")
    otype = col("o_type")
    is_obj = pc.fill_null(pc.equal(otype, "OBJECT"), False).to_numpy(zero_copy_only=False)
    bookmark = pc.fill_null(pc.equal(watch, "BOOKMARK"), False).to_numpy(zero_copy_only=False)
    werror = pc.fill_null(pc.equal(watch, "ERROR"), False).to_numpy(zero_copy_only=False)
    okind = col("obj_kind")
    looks = np_col("looks_event")
    is_event = is_obj & ~bookmark & ~werror & (
        pc.fill_null(pc.equal(okind, "Event"), False).to_numpy(zero_copy_only=False) | looks)

    et = _time.parse_iso8601(col("event_time"))
    fi = _time.parse_iso8601(col("first_ts"))
    la = _time.parse_iso8601(col("last_ts"))
    cr = _time.parse_iso8601(col("created_ts"))
    sl = _time.parse_iso8601(col("series_last"))
    use_et = et["ok"]
    ts = np.where(use_et, et["ns"], np.where(fi["ok"], fi["ns"], np.where(la["ok"], la["ns"], cr["ns"])))
    prec = np.where(use_et, et["prec"], np.where(fi["ok"], fi["prec"], np.where(la["ok"], la["prec"], cr["prec"])))
    has_t = use_et | fi["ok"] | la["ok"] | cr["ok"]
    time_from = np.where(use_et | fi["ok"], None,
                         np.where(la["ok"], "lastTimestamp", np.where(cr["ok"], "metadata.creationTimestamp", None)))
    # last time and count of a repeated event
    series = pc.is_valid(col("series_count")).to_numpy(zero_copy_only=False) | sl["ok"]
    last_ok = np.where(series, sl["ok"], la["ok"] & (use_et | fi["ok"]))
    last_ns = np.where(series, sl["ns"], la["ns"])
    last_txt = pc.if_else(pa.array(series), col("series_last"), col("last_ts"))
    cnt_txt = pc.coalesce(pc.if_else(pa.array(series), col("series_count"), pa.scalar(None, pa.string())),
                          col("cnt"))
    cnt = _time.parse_epoch(cnt_txt, "ns")  # an integer parser: ns unit = no scaling
    repeated = last_ok & ((cnt["ok"] & (cnt["ns"] > 1)) | series | (last_ns != ts))
    dur_ok = repeated & (last_ns >= ts)
    backwards = repeated & (last_ns < ts)

    good = is_event & has_t
    for j in np.flatnonzero(~good):
        raw = rec.text[int(j)].as_py()
        if not is_obj[j]:
            why = "not a JSON object"
        elif bookmark[j]:
            continue
        elif werror[j]:
            why = f"watch ERROR event: {res.column('message')[int(j)].as_py() or 'no message'}"
        elif not is_event[j]:
            why = f"not a Kubernetes Event (kind={okind[int(j)].as_py()})"
        else:
            why = "no time (eventTime, firstTimestamp, lastTimestamp, metadata.creationTimestamp all missing or unreadable)"
        rej_line.append(int(rec.line[j]))
        rej_off.append(int(rec.offset[j]))
        rej_reason.append(why)
        rej_raw.append(raw)
    nmeta = int(bookmark.sum())

    keep = pa.array(good)
    rows = np.flatnonzero(good)
    kind_l = pc.utf8_lower(col("inv_kind").filter(keep))
    entity = _k8s.entities(kind_l, col("inv_ns").filter(keep), col("inv_name").filter(keep))
    etype = col("etype").filter(keep)
    sev = normalize_severity(pc.replace_substring_regex(
        etype, "^(?i:normal)$", "info"))
    reason = col("reason").filter(keep)
    state = pc.take(pa.array([None] + list(REASON_STATES.values()), pa.string()),
                    pc.fill_null(pc.add(pc.index_in(reason, pa.array(list(REASON_STATES))), 1), 0))
    # reader-made attrs: tk.count, tk.last, tk.time_from, tk.time_order, tk.item
    add: dict[str, pa.Array] = {
        "tk.watch_type": col("watch_type").filter(keep),
        "tk.field_path": col("field_path").filter(keep),
        "tk.container": col("container").filter(keep),
        "tk.count": pc.if_else(pa.array(repeated[rows] | cnt["ok"][rows] & (cnt["ns"][rows] > 1)),
                               cnt_txt.filter(keep), pa.scalar(None, pa.string())),
        "tk.last": pc.if_else(pa.array(repeated[rows]), last_txt.filter(keep), pa.scalar(None, pa.string())),
        "tk.time_from": pa.array(time_from[rows], pa.string()),
        "tk.time_order": pa.array(np.where(backwards[rows], "lastTimestamp before first time: dur left null", None),
                                  pa.string()),
        "tk.item": pa.array(np.where(rec.item[rows] >= 0, rec.item[rows].astype(str), None), pa.string()),
    }
    attrs = at.build(res.filter(keep), add)
    dur = np.where(dur_ok, last_ns - ts, 0)[rows]
    events = {
        "ts_src": ts[rows],
        "ts_prec": prec[rows],
        "dur": pa.array(dur, pa.int64(), mask=~dur_ok[rows]),
        "kind": "log",
        "name": reason,
        "category": col("inv_kind").filter(keep),
        "severity": sev,
        "host": col("host").filter(keep),
        "entity": entity,
        "state": state,
        "message": col("message").filter(keep),
        "attrs": attrs,
        "line": rec.line[rows],
        "line_end": rec.line_end[rows],
        "offset": rec.offset[rows],
    }
    hosts = pc.unique(pc.drop_null(events["host"])).to_pylist()
    if len(hosts) == 1:
        meta["host"] = hosts[0]
    return _result(inp, rec, events, rej_line, rej_off, rej_reason, rej_raw, nmeta, meta,
                   emitted=len(rows))


def _result(inp: Input, rec: _k8s.Records, events: dict | None, rl: list, ro: list, rr: list,
            rw: list, nmeta: int, meta: dict, emitted: int = 0) -> ReadResult:
    rej = make_rejects(inp.name, inp.path, rl, ro, rr, rw) if rl else None
    if rec.bad_utf8:
        meta["note"] = "invalid UTF-8 in the input (kept, bytes escaped as \\xNN)"
    if events is None:
        events = {"ts_src": pa.array([], pa.int64())}
    return ReadResult(events=events, records=rec.records, emitted=emitted, metadata=nmeta,
                      rejects=rej, meta=meta)


register(
    Reader(
        name="k8s_events",
        description="Kubernetes events (kubectl get events -o json lists, core/v1 and events.k8s.io/v1 Events, watch streams)",
        sniff=_sniff,
        read=_read,
        extensions=(".json", ".jsonl"),
    )
)
