"""Jaeger JSON: the UI's download (``{"data": [trace, ...]}``), one trace object
(``{traceID, spans, processes, warnings}``), or a bare array of spans that embed their
``process`` (the anonymizer's output). One document per file, or one per line.

**Records.** A record is a span; ``records`` counts spans, plus one for each document that
is not valid JSON (the malformed trailing-comma file is one reject with the parser's message).
A span makes one ``span`` row, one ``instant`` row per span log, and one ``flow`` row per
reference other than the one chosen as parent. ``emitted`` counts spans, ``rows`` rows.
Spans sharing an id are kept apart (never merged). A span without a readable ``startTime``
is rejected with its JSON.

**Columns.** ``ts_src`` = ``startTime`` (µs → ns, ``ts_prec`` 1 µs), ``dur`` = ``duration``,
``name`` = ``operationName``, ``trace_id``/``span_id`` as written (lower-cased),
``parent_id`` = the first ``CHILD_OF`` reference in the same trace, else the first
``FOLLOWS_FROM`` in the same trace (Jaeger's own rule), else ``parentSpanID``. The other
references are ``flow`` rows (``flow_id`` = referenced span, ``flow_dir`` = ``in``,
``attrs['refType']``, ``attrs['ref.traceID']``). The process (``processID`` resolved
through ``processes``, or the embedded ``process``) gives ``category`` = ``serviceName``,
``host`` = its ``hostname``/``host.name`` tag, ``pid`` = ``process.pid``; ``entity`` is
``service/<serviceName>`` and ``state`` is ``error`` (tag ``error=true`` or
``otel.status_code=ERROR``, also ``severity`` error) or ``ok`` — the same choice as the OTLP
reader (see :mod:`tracekit.readers.otlp`).

**attrs.** Span tags under their own keys (typed values as text: ``true``, ``72.5``,
binary as its base64), process tags as ``process.<key>``, ``flags``, ``processID``, and the
span's ``warnings`` as JSON text. Trace warnings go to the source note. Span logs are
instants: fields under their own keys, ``name`` = the ``event`` field (else ``message``),
``message`` = the ``message`` field, ``severity`` from a ``level`` field or ``event=error``.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("trace.json", format="jaeger")     # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import conform, normalize_severity
from ._base import Input, Reader, ReadResult, register
from ._spans import (
    Kind,
    Part,
    arr,
    as_str,
    build_rows,
    choose,
    concat_rejects,
    duck_transform,
    field,
    flatten,
    lookup,
    lower_ids,
    nonempty,
    np_int,
    ns_from_us,
    null_where,
    rejects_for,
    scalar_part,
    split_documents,
    typed_kv,
    valid,
)
from ._spans import take_rows as _take

_V = "VARCHAR"
_TAG = [{"key": _V, "type": _V, "value": _V}]
_PROC = {"serviceName": _V, "tags": _TAG}
_PROC_SQL = "STRUCT(serviceName VARCHAR, tags STRUCT(key VARCHAR, type VARCHAR, value VARCHAR)[])"
_SPAN = {
    "traceID": _V, "spanID": _V, "parentSpanID": _V, "flags": _V, "operationName": _V,
    "references": [{"refType": _V, "traceID": _V, "spanID": _V}], "startTime": _V, "duration": _V,
    "tags": _TAG, "logs": [{"timestamp": _V, "fields": _TAG}], "processID": _V, "process": _PROC, "warnings": "JSON",
}
_STRUCTURE = json.dumps([{"traceID": _V, "spans": [_SPAN], "processes": f"MAP(VARCHAR, {_PROC_SQL})",
                          "warnings": "JSON"}])

#: each document as a JSON array of traces
_NORMALISE = """CASE
  WHEN json_type(doc) = 'OBJECT' AND json_exists(doc, '$.data') THEN json_extract(doc, '$.data')
  WHEN json_type(doc) = 'OBJECT' AND json_exists(doc, '$.spans') THEN ('[' || doc || ']')::JSON
  WHEN json_type(doc) = 'OBJECT' THEN ('[{"spans":[' || doc || ']}]')::JSON
  WHEN json_type(doc, '$[0]') = 'OBJECT' AND json_exists(doc, '$[0].spans') THEN doc::JSON
  ELSE ('[{"spans":' || doc || '}]')::JSON END"""


def _read(inp: Input) -> ReadResult:
    d = split_documents(inp)
    notes = [d.note] if d.note else []
    records = d.rejects.num_rows if d.rejects is not None else 0
    empty = conform({"ts_src": pa.array([], pa.int64())})
    if not len(d.text):
        return ReadResult(events=empty, records=records, emitted=0, rejects=d.rejects,
                          meta={"clock": "realtime", "note": "; ".join(notes) or None})
    docs = duck_transform(d.text, _NORMALISE, _STRUCTURE)
    tr, tr_doc = flatten(docs)
    sp, sp_tr = flatten(field(tr, "spans"))
    n = len(sp)
    warn = [w for w in as_str(field(tr, "warnings", len(tr))).to_pylist() if w not in (None, "null", "[]")]
    if warn:
        notes.append("trace warnings: " + "; ".join(warn))
    if n == 0:
        return ReadResult(events=empty, records=records, emitted=0, rejects=d.rejects,
                          meta={"clock": "realtime", "note": "; ".join(notes) or None})
    line = d.line[tr_doc[sp_tr]]
    off = d.offset[tr_doc[sp_tr]]

    # processes: processID through the trace's map, else the embedded process
    procs = field(tr, "processes")
    entries, ent_tr = flatten(procs) if not pa.types.is_null(procs.type) else (pa.array([]), np.zeros(0, np.int64))
    pid_ref = as_str(field(sp, "processID", n))
    emb = field(sp, "process")
    if len(entries):
        ekey = pc.binary_join_element_wise(pa.array(ent_tr.astype(str)), as_str(field(entries, "key")), "\x00")
        skey = pc.binary_join_element_wise(pa.array(sp_tr.astype(str)), pid_ref, "\x00")
        pos = np_int(pc.index_in(skey, value_set=ekey), -1)
        pool = pa.concat_arrays([arr(field(entries, "value")), emb])
    else:
        pos = np.full(n, -1, np.int64)
        pool = emb
    use_emb = (pos < 0) & valid(emb)
    pidx = np.where(pos >= 0, pos, np.where(use_emb, len(entries) + np.arange(n), -1))
    ptags, _ = typed_kv(field(pool, "tags"), "process.")
    service = as_str(field(pool, "serviceName", len(pool)))
    host = pc.coalesce(lookup(ptags, "process.hostname", len(pool)), lookup(ptags, "process.host.name", len(pool)))
    ppid = lookup(ptags, "process.process.pid", len(pool))
    take = pa.array(pidx, mask=pidx < 0)
    svc = service.take(take)
    s_host = host.take(take)
    s_pid = _int_or_null(ppid.take(take))

    trace_id = lower_ids(field(sp, "traceID", n))
    span_id = lower_ids(field(sp, "spanID", n))
    ts, ok = ns_from_us(field(sp, "startTime", n))
    dns, dok = ns_from_us(field(sp, "duration", n))
    tags, _ = typed_kv(field(sp, "tags"))
    err_tag = pc.fill_null(pc.equal(pc.utf8_lower(lookup(tags, "error", n)), "true"), False)
    err_otel = pc.fill_null(pc.equal(lookup(tags, "otel.status_code", n), "ERROR"), False)
    err = np.asarray(pc.or_(err_tag, err_otel).to_numpy(zero_copy_only=False), dtype=bool)

    # references: parent = first same-trace CHILD_OF, else first same-trace FOLLOWS_FROM
    refs, ref_sp = flatten(field(sp, "references"))
    m = len(refs)
    parent = lower_ids(field(sp, "parentSpanID", n))
    chosen = np.zeros(m, bool)
    if m:
        rtype = pc.utf8_upper(as_str(field(refs, "refType", m)))
        rtid = lower_ids(field(refs, "traceID", m))
        rsid = lower_ids(field(refs, "spanID", m))
        same = np.asarray(pc.fill_null(pc.equal(rtid, trace_id.take(pa.array(ref_sp))), False), dtype=bool)
        best = np.full(n, -1, np.int64)
        for t in ("FOLLOWS_FROM", "CHILD_OF"):  # CHILD_OF last: it wins
            cand = np.flatnonzero(same & np.asarray(pc.fill_null(pc.equal(rtype, t), False), dtype=bool))
            if len(cand):
                owners, first = np.unique(ref_sp[cand], return_index=True)
                best[owners] = cand[first]
        has = best >= 0
        chosen[best[has]] = True
        parent = pc.if_else(pa.array(has), rsid.take(pa.array(np.where(has, best, 0))), parent)

    warnings = as_str(field(sp, "warnings", n))
    wpresent = valid(warnings) & ~np.isin(np.asarray(pc.fill_null(warnings, "null"), dtype=object), ["null", "[]"])
    parts = [
        tags,
        scalar_part("flags", as_str(field(sp, "flags", n))),
        scalar_part("processID", null_where(pid_ref, ~nonempty(pid_ref))),
        scalar_part("warnings", warnings, wpresent),
        Part(ptags.offsets, ptags.keys, ptags.vals, pidx),
    ]
    entity = pc.binary_join_element_wise(pa.scalar("service/"), svc, "")
    elem = np.arange(n, dtype=np.int64)
    shared = {"category": svc, "host": s_host, "pid": s_pid, "entity": entity, "trace_id": trace_id,
              "span_id": span_id, "line": line, "offset": elem}
    cols = dict(shared)
    cols.update({
        "ts_src": ts, "ts_prec": np.full(n, 1000, np.int64), "dur": pa.array(dns, mask=~dok), "kind": "span",
        "name": as_str(field(sp, "operationName", n)), "parent_id": parent,
        "severity": choose(err, "error", None),
        "state": choose(err, "error", "ok"),
    })
    keep = np.flatnonzero(ok)
    kinds = [Kind(cols, n, parts, None if len(keep) == n else keep)]

    # span logs → instants
    lg, lg_sp = flatten(field(sp, "logs"))
    n_log = 0
    if len(lg):
        k = len(lg)
        fields, _ = typed_kv(field(lg, "fields"))
        lts, lok = ns_from_us(field(lg, "timestamp", k))
        event = lookup(fields, "event", k)
        msg = lookup(fields, "message", k)
        level = lookup(fields, "level", k)
        sev = normalize_severity(level).cast(pa.string()) if k else level
        sev = pc.coalesce(sev, pc.if_else(pc.equal(event, "error"), pa.scalar("error"), pa.scalar(None, pa.string())))
        lcols = _take(shared, lg_sp)
        lcols.update({
            "ts_src": np.where(lok, lts, ts[lg_sp]), "ts_prec": np.full(k, 1000, np.int64), "kind": "instant",
            "name": pc.coalesce(event, msg), "message": msg, "severity": sev,
        })
        sel = np.flatnonzero(ok[lg_sp])
        n_log = len(sel)
        kinds.append(Kind(lcols, k, [fields, scalar_part("tk.time", choose(lok, None, "missing: the span's start"))],
                          None if n_log == k else sel))

    # other references → flows
    n_flow = 0
    fsel = np.flatnonzero(~chosen & ok[ref_sp]) if m else np.zeros(0, np.int64)
    if len(fsel):
        fcols = _take(shared, ref_sp[fsel])
        fcols.update({
            "ts_src": ts[ref_sp[fsel]], "ts_prec": np.full(len(fsel), 1000, np.int64), "kind": "flow",
            "name": rtype.take(pa.array(fsel)), "flow_id": rsid.take(pa.array(fsel)), "flow_dir": "in",
        })
        n_flow = len(fsel)
        kinds.append(Kind(fcols, n_flow, [scalar_part("refType", field(refs, "refType", m).take(pa.array(fsel))),
                                          scalar_part("ref.traceID", rtid.take(pa.array(fsel)))]))

    bad = np.flatnonzero(~ok)
    rej = rejects_for(inp, bad, line, off, "span without a readable startTime", sp) if len(bad) else None
    meta: dict[str, Any] = {"clock": "realtime", "assumed": {},
                            "extra": {"spans": len(keep), "span_logs": n_log, "references": n_flow}}
    hosts = {h for h in pc.unique(s_host).to_pylist() if h}
    if len(hosts) == 1:
        meta["host"] = next(iter(hosts))
    if notes:
        meta["note"] = "; ".join(notes)
    return ReadResult(events=build_rows(kinds), records=records + n, emitted=len(keep),
                      rejects=concat_rejects([d.rejects, rej]), meta=meta)


def _int_or_null(a: pa.Array) -> pa.Array:
    s = as_str(a)
    good = pc.fill_null(pc.match_substring_regex(s, r"^-?\d{1,18}$"), False)
    return pc.if_else(good, s, pa.scalar(None, pa.string())).cast(pa.int64())


_START = re.compile(rb'^\s*(\[|\{\s*"(data|traceID|spans)"\s*:)')
_KEYS = (b'"operationName"', b'"startTime"', b'"duration"', b'"references"', b'"processID"')


def _sniff(head: bytes, name: str) -> float:
    """Jaeger JSON: spans keyed ``traceID``/``spanID`` (capital ``ID``) with Jaeger fields."""
    if not _START.match(head):
        return 0.0
    if b'"traceID"' in head and b'"spanID"' in head and any(k in head for k in _KEYS):
        return 0.85
    return 0.0


register(
    Reader(
        name="jaeger",
        description="Jaeger JSON traces (UI download {data:[...]}, one trace object, or a span array)",
        sniff=_sniff,
        read=_read,
        extensions=(".json",),
    )
)
