"""Kubernetes audit logs (``audit.k8s.io/v1``, ``v1beta1``; lines without ``apiVersion`` too).

One JSON ``Event`` per line as the log backend writes them; ``EventList`` batches (the webhook
backend's body) and pretty-printed documents are read too. Each audit event (one *stage* of one
request) is one row:

* ``name`` = ``"<verb> <resource>[/<subresource>]"`` (``create pods/exec``), or ``"<verb>
  <path>"`` for non-resource URLs (``get /healthz``, query left out); the bare verb stays in
  attrs ``verb``. Chosen over the bare verb so a timeline reads without opening attrs;
* ``entity``: ``objectRef`` named as events name it (``pods`` → ``pod/<ns>/<name>``,
  ``nodes`` → ``node/<name>``; see :mod:`._k8s`); for a ``create`` whose ``objectRef`` has no
  name, the name comes from ``responseObject``/``requestObject`` ``metadata.name`` (attrs
  ``tk.name_from`` says so); ``tk.subresource`` = ``exec`` …; ``category`` = the resource;
* ``trace_id`` = ``auditID``: the stages of one request (``RequestReceived``,
  ``ResponseStarted``, ``ResponseComplete``, ``Panic``) share it; ``stage`` stays in attrs
  (``state`` is left null: a request's stage is not its object's state);
* time: ``ts`` = ``requestReceivedTimestamp`` (1 µs) and ``dur`` = ``stageTimestamp`` −
  ``requestReceivedTimestamp``, so each row is the span from receipt to that stage
  (``kind`` = span); without ``requestReceivedTimestamp`` (``v1alpha1``) ``timestamp``
  (1 s) is used, then ``stageTimestamp``;
* ``value`` = ``responseStatus.code``; ``severity``: ≥ 500 error, ≥ 400 warning, else info;
  ``message`` = ``responseStatus.message``; attrs ``tk.user`` = ``user.username``;
* every top-level key stays in attrs verbatim, request/response bodies whole as compact JSON
  text (a ConfigMap's multi-line values keep their ``\\n``).

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("audit.log")                                   # doctest: +SKIP
    >>> tl.sql("select trace_id, name, entity, dur from events")    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from . import _k8s
from ._base import Input, Reader, ReadResult, make_rejects, register


def _sniff(head: bytes, name: str) -> float:
    h = head.lstrip()
    if not h.startswith((b"{", b"[")):
        return 0.0
    if b'"auditID"' in head and (b'"stage"' in head or b"audit.k8s.io" in head
                                 or b'"requestURI"' in head):
        return 0.9
    if b'"apiVersion":"audit.k8s.io/' in head or b'"apiVersion": "audit.k8s.io/' in head:
        return 0.85
    return 0.0


def _read(inp: Input) -> ReadResult:
    rec = _k8s.json_records(inp)
    n = len(rec.text)
    rl, ro = list(rec.reject_line), list(rec.reject_offset)
    rr, rw = list(rec.reject_reason), list(rec.reject_raw)
    meta: dict[str, Any] = {"clock": "realtime", "extra": {"layout": rec.mode}}
    if rec.bad_utf8:
        meta["note"] = "invalid UTF-8 in the input (kept, bytes escaped as \\xNN)"
    if n == 0:
        rej = make_rejects(inp.name, inp.path, rl, ro, rr, rw) if rl else None
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=rec.records,
                          emitted=0, rejects=rej, meta=meta)
    con = _k8s.connect()
    try:
        con.register("r", pa.table({"o": rec.text, "i": np.arange(n, dtype=np.int64)}))
        keys = [k for (k,) in con.sql(
            "select k from (select unnest(json_keys(o)) k, i from r where json_type(o) = 'OBJECT')"
            " group by k order by min(i), k").fetchall()]
        at = _k8s.Attrs(keys, skip={"auditID"})
        x = at.x

        def s(p: str) -> str:
            return x.s(p)

        sel = f"""i, json_type(o) AS o_type, {s('$.kind')} AS obj_kind,
            {s('$.auditID')} AS audit_id, {s('$.stage')} AS stage, {s('$.verb')} AS verb,
            {s('$.requestURI')} AS uri,
            {s('$.objectRef.resource')} AS resource, {s('$.objectRef.subresource')} AS subresource,
            {s('$.objectRef.namespace')} AS ns, {s('$.objectRef.name')} AS oname,
            coalesce({s('$.responseObject.metadata.name')}, {s('$.requestObject.metadata.name')}) AS body_name,
            CASE WHEN {s('$.responseObject.metadata.name')} IS NOT NULL THEN 'responseObject.metadata.name'
                 WHEN {s('$.requestObject.metadata.name')} IS NOT NULL THEN 'requestObject.metadata.name' END AS body_from,
            {s('$.responseStatus.code')} AS code, {s('$.responseStatus.message')} AS status_message,
            {s('$.requestReceivedTimestamp')} AS t_recv, {s('$.stageTimestamp')} AS t_stage,
            {s('$.timestamp')} AS t_old, {s('$.user.username')} AS username,
            {at.columns()}"""
        q = f"select {sel} from ({x.cte('r', 'i, o')}) order by i"
        res = con.sql(q).to_arrow_table()
    finally:
        con.close()

    def col(c: str) -> pa.Array:
        return res.column(c).combine_chunks()

    def mask(a: pa.Array) -> np.ndarray:
        return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)

    is_obj = mask(pc.equal(col("o_type"), "OBJECT"))
    is_audit = is_obj & (pc.is_valid(col("audit_id")).to_numpy(zero_copy_only=False)
                         | pc.is_valid(col("stage")).to_numpy(zero_copy_only=False))
    recv = _time.parse_iso8601(col("t_recv"))
    stage = _time.parse_iso8601(col("t_stage"))
    old = _time.parse_iso8601(col("t_old"))
    ts = np.where(recv["ok"], recv["ns"], np.where(old["ok"], old["ns"], stage["ns"]))
    prec = np.where(recv["ok"], recv["prec"], np.where(old["ok"], old["prec"], stage["prec"]))
    has_t = recv["ok"] | old["ok"] | stage["ok"]
    dur_ok = recv["ok"] & stage["ok"] & (stage["ns"] >= recv["ns"])
    backwards = recv["ok"] & stage["ok"] & (stage["ns"] < recv["ns"])
    good = is_audit & has_t
    for j in np.flatnonzero(~good):
        if not is_obj[j]:
            why = "not a JSON object"
        elif not is_audit[j]:
            why = f"not a Kubernetes audit Event (no auditID or stage; kind={res.column('obj_kind')[int(j)].as_py()})"
        else:
            why = "no time (requestReceivedTimestamp, timestamp, stageTimestamp all missing or unreadable)"
        rl.append(int(rec.line[j]))
        ro.append(int(rec.offset[j]))
        rr.append(why)
        rw.append(rec.text[int(j)].as_py())
    keep = pa.array(good)
    rows = np.flatnonzero(good)

    def f(c: str) -> pa.Array:
        return col(c).filter(keep)

    resource, sub = f("resource"), f("subresource")
    res_path = pc.coalesce(pc.binary_join_element_wise(resource, sub, "/"), resource)
    path = pc.replace_substring_regex(f("uri"), r"\?.*$", "")
    name = pc.binary_join_element_wise(f("verb"), pc.coalesce(res_path, path), " ")
    name = pc.coalesce(name, f("verb"))
    kind_l = _k8s.singular_kinds(resource)
    use_body = pc.and_(pc.is_null(f("oname")), pc.equal(f("verb"), "create"))
    use_body = pc.and_(pc.fill_null(use_body, False), pc.is_valid(f("body_name")))
    oname = pc.if_else(use_body, f("body_name"), f("oname"))
    entity = _k8s.entities(kind_l, f("ns"), oname)
    code = pc.cast(f("code"), pa.float64(), safe=False) if len(rows) else pa.array([], pa.float64())
    sev = pc.if_else(pc.greater_equal(code, 500), "error",
                     pc.if_else(pc.greater_equal(code, 400), "warning", "info"))
    sev = pc.if_else(pc.is_null(code), pa.scalar(None, pa.string()), sev)
    add = {
        "tk.user": f("username"),
        "tk.subresource": sub,
        "tk.name_from": pc.if_else(use_body, f("body_from"), pa.scalar(None, pa.string())),
        "tk.time_order": pa.array(np.where(backwards[rows], "stageTimestamp before requestReceivedTimestamp: dur left null", None), pa.string()),
        "tk.time_from": pa.array(np.where(recv["ok"][rows], None, np.where(old["ok"][rows], "timestamp", "stageTimestamp")), pa.string()),
        "tk.item": pa.array(np.where(rec.item[rows] >= 0, rec.item[rows].astype(str), None), pa.string()),
    }
    events = {
        "ts_src": ts[rows],
        "ts_prec": prec[rows],
        "dur": pa.array(np.where(dur_ok, stage["ns"] - recv["ns"], 0)[rows], pa.int64(), mask=~dur_ok[rows]),
        "kind": "span",
        "name": name,
        "category": resource,
        "severity": sev,
        "value": code,
        "entity": entity,
        "trace_id": f("audit_id"),
        "message": f("status_message"),
        "attrs": at.build(res.filter(keep), add),
        "line": rec.line[rows],
        "line_end": rec.line_end[rows],
        "offset": rec.offset[rows],
    }
    rej = make_rejects(inp.name, inp.path, rl, ro, rr, rw) if rl else None
    return ReadResult(events=events, records=rec.records, emitted=len(rows), rejects=rej, meta=meta)


register(
    Reader(
        name="k8s_audit",
        description="Kubernetes audit log (audit.k8s.io v1/v1beta1 Events, JSON lines or EventList)",
        sniff=_sniff,
        read=_read,
        extensions=(".jsonl", ".log", ".json"),
    )
)
