"""Zipkin v2 JSON: a list of spans (the ``/api/v2/spans`` POST body, ``/api/v2/trace/{id}``),
or a list of traces (a list of lists, ``/api/v2/traces``). One document per file, or one per
line.

**Records.** A record is a span; ``records`` counts spans, plus one for each document that
is not valid JSON. A span makes one ``span`` row and one ``instant`` row per annotation;
``emitted`` counts spans, ``rows`` rows. A span without a ``timestamp`` is rejected (Zipkin
allows it for a half reported late; it has no place on a timeline) with its JSON.

**Columns.** ``ts_src`` = ``timestamp`` (µs → ns, ``ts_prec`` 1 µs), ``dur`` =
``duration`` (null when absent), ``name``, ``trace_id``/``span_id``/``parent_id`` from
``traceId``/``id``/``parentId`` (lower-case hex). ``category`` = ``localEndpoint.serviceName``
and ``host`` = ``localEndpoint.ipv4`` (else ``ipv6``): the address is the only name Zipkin
gives the machine, and the clock whose skew matters is that endpoint's. ``entity`` is
``service/<serviceName>``; ``state``/``severity`` are ``error`` when the span has an ``error``
tag (Zipkin's convention), else ``ok`` (as in :mod:`tracekit.readers.otlp`).

**attrs.** Tags under their own keys; ``span.kind`` = client/server/producer/consumer (the
lower-cased ``kind``, the key the OTLP and Jaeger readers use); ``shared`` and ``debug``;
``localEndpoint.<field>`` / ``remoteEndpoint.<field>`` (``serviceName``, ``ipv4``, ``ipv6``,
``port``). The client and server halves of one RPC share a span id: both rows are kept, told
apart by ``span.kind`` (and ``shared: true`` on the server half).

Zipkin v1 JSON is read too (a note says so): ``binaryAnnotations`` are the tags, and the
service and host come from the first annotation (then binary annotation) ``endpoint``;
each annotation row takes its own endpoint's service as ``category``.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("trace.json", format="zipkin")     # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schema import conform
from ._base import Input, Reader, ReadResult, register
from ._spans import (
    Kind,
    Part,
    as_str,
    build_rows,
    choose,
    concat_rejects,
    duck_transform,
    field,
    flatten,
    lower_ids,
    nonempty,
    ns_from_us,
    null_where,
    offsets_from_parents,
    rejects_for,
    scalar_part,
    split_documents,
    valid,
)
from ._spans import take_rows as _take

_V = "VARCHAR"
_EP = {"serviceName": _V, "ipv4": _V, "ipv6": _V, "port": _V}
_EP_FIELDS = tuple(_EP)
_SPAN = {
    "traceId": _V, "id": _V, "parentId": _V, "kind": _V, "name": _V, "timestamp": _V, "duration": _V,
    "localEndpoint": _EP, "remoteEndpoint": _EP, "annotations": [{"timestamp": _V, "value": _V, "endpoint": _EP}],
    "tags": "MAP(VARCHAR, VARCHAR)", "debug": _V, "shared": _V,
    "binaryAnnotations": [{"key": _V, "value": _V, "endpoint": _EP}],  # Zipkin v1
}
_STRUCTURE = json.dumps([[_SPAN]])
#: each document as a list of traces (lists of spans)
_NORMALISE = """CASE
  WHEN json_type(doc) = 'OBJECT' THEN ('[[' || doc || ']]')::JSON
  WHEN json_type(doc, '$[0]') = 'ARRAY' THEN doc::JSON
  ELSE ('[' || doc || ']')::JSON END"""


def _read(inp: Input) -> ReadResult:
    d = split_documents(inp)
    notes = [d.note] if d.note else []
    records = d.rejects.num_rows if d.rejects is not None else 0
    empty = conform({"ts_src": pa.array([], pa.int64())})
    meta: dict[str, Any] = {"clock": "realtime", "assumed": {}}
    if not len(d.text):
        meta["note"] = "; ".join(notes) or None
        return ReadResult(events=empty, records=records, emitted=0, rejects=d.rejects, meta=meta)
    docs = duck_transform(d.text, _NORMALISE, _STRUCTURE)
    tr, tr_doc = flatten(docs)
    sp, sp_tr = flatten(tr)
    n = len(sp)
    if n == 0:
        meta["note"] = "; ".join(notes) or None
        return ReadResult(events=empty, records=records, emitted=0, rejects=d.rejects, meta=meta)
    line = d.line[tr_doc[sp_tr]]
    off = d.offset[tr_doc[sp_tr]]
    ts, ok = ns_from_us(field(sp, "timestamp", n))
    dns, dok = ns_from_us(field(sp, "duration", n))
    le = field(sp, "localEndpoint")
    re_ = field(sp, "remoteEndpoint")
    svc = as_str(field(le, "serviceName", n))
    svc = null_where(svc, ~nonempty(svc))
    host = pc.coalesce(*[null_where(as_str(field(le, k, n)), ~nonempty(field(le, k, n))) for k in ("ipv4", "ipv6")])
    an, an_sp = flatten(field(sp, "annotations"))
    ban, ban_sp = flatten(field(sp, "binaryAnnotations"))
    if len(ban) or (len(an) and valid(field(an, "endpoint")).any()):
        # Zipkin v1: binary annotations are tags; the service is the first endpoint named
        notes.append("Zipkin v1 spans: binaryAnnotations read as tags, the service and host from the first "
                     "annotation endpoint")
        for items, owner in ((an, an_sp), (ban, ban_sp)):
            ep = field(items, "endpoint")
            svc = pc.coalesce(svc, _first(as_str(field(ep, "serviceName", len(items))), owner, n))
            host = pc.coalesce(host, _first(as_str(field(ep, "ipv4", len(items))), owner, n),
                               _first(as_str(field(ep, "ipv6", len(items))), owner, n))
    tags, tag_sp = flatten(field(sp, "tags"))
    if len(ban):
        tags = pa.StructArray.from_arrays([field(ban, "key", len(ban)), field(ban, "value", len(ban))], ["key", "value"])
        tag_sp = ban_sp
        if len(flatten(field(sp, "tags"))[0]):
            notes.append("spans mix v2 tags and v1 binaryAnnotations: only the binaryAnnotations were read")
    tkeys = as_str(field(tags, "key", len(tags))) if len(tags) else pa.array([], pa.string())
    tag_part = Part(offsets_from_parents(tag_sp, n), tkeys,
                    as_str(field(tags, "value", len(tags))) if len(tags) else pa.array([], pa.string()))
    err = np.zeros(n, bool)
    if len(tags):
        hit = np.asarray(pc.fill_null(pc.equal(tkeys, "error"), False).to_numpy(zero_copy_only=False), dtype=bool)
        err[tag_sp[hit]] = True
    kind_w = pc.utf8_lower(as_str(field(sp, "kind", n)))
    parts = [tag_part, scalar_part("span.kind", kind_w), scalar_part("shared", as_str(field(sp, "shared", n))),
             scalar_part("debug", as_str(field(sp, "debug", n)))]
    for name, ep in (("localEndpoint", le), ("remoteEndpoint", re_)):
        for k in _EP_FIELDS:
            v = as_str(field(ep, k, n))
            parts.append(scalar_part(f"{name}.{k}", v, valid(v) & nonempty(v)))
    trace_id = lower_ids(field(sp, "traceId", n))
    span_id = lower_ids(field(sp, "id", n))
    entity = pc.binary_join_element_wise(pa.scalar("service/"), svc, "")
    elem = np.arange(n, dtype=np.int64)
    shared = {"category": svc, "host": host, "entity": entity, "trace_id": trace_id, "span_id": span_id,
              "line": line, "offset": elem}
    cols = dict(shared)
    cols.update({
        "ts_src": ts, "ts_prec": np.full(n, 1000, np.int64), "dur": pa.array(dns, mask=~dok), "kind": "span",
        "name": as_str(field(sp, "name", n)), "parent_id": lower_ids(field(sp, "parentId", n)),
        "severity": choose(err, "error", None),
        "state": choose(err, "error", "ok"),
    })
    keep = np.flatnonzero(ok)
    kinds = [Kind(cols, n, parts, None if len(keep) == n else keep)]
    n_an = 0
    if len(an):
        k = len(an)
        ats, aok = ns_from_us(field(an, "timestamp", k))
        acols = _take(shared, an_sp)
        aep = field(an, "endpoint")
        asvc = as_str(field(aep, "serviceName", k))
        acols["category"] = pc.coalesce(null_where(asvc, ~nonempty(asvc)), acols["category"])
        acols.update({
            "ts_src": np.where(aok, ats, ts[an_sp]), "ts_prec": np.full(k, 1000, np.int64), "kind": "instant",
            "name": as_str(field(an, "value", k)),
        })
        sel = np.flatnonzero(ok[an_sp])
        n_an = len(sel)
        kinds.append(Kind(acols, k, [scalar_part("tk.time", choose(aok, None, "missing: the span's timestamp"))],
                          None if n_an == k else sel))
    bad = np.flatnonzero(~ok)
    rej = rejects_for(inp, bad, line, off, "span without a timestamp", sp) if len(bad) else None
    meta["extra"] = {"spans": len(keep), "annotations": n_an}
    hosts = {h for h in pc.unique(host).to_pylist() if h}
    if len(hosts) == 1:
        meta["host"] = next(iter(hosts))
    if notes:
        meta["note"] = "; ".join(notes)
    return ReadResult(events=build_rows(kinds), records=records + n, emitted=len(keep),
                      rejects=concat_rejects([d.rejects, rej]), meta=meta)


def _first(values: pa.Array, owner: np.ndarray, n: int) -> pa.Array:
    """Per span, the first non-empty value among its items (null if none)."""
    ok = np.flatnonzero(nonempty(values))
    pos = np.full(n, -1, np.int64)
    if len(ok):
        owners, first = np.unique(owner[ok], return_index=True)
        pos[owners] = ok[first]
    return values.take(pa.array(pos, mask=pos < 0))


_START = re.compile(rb"^\s*\[\s*(\[\s*)?\{")
_ID = re.compile(rb'"traceId"\s*:\s*"[0-9a-fA-F]{16,32}"')
_KEYS = (b'"localEndpoint"', b'"remoteEndpoint"', b'"timestamp"', b'"annotations"', b'"kind"')


def _sniff(head: bytes, name: str) -> float:
    """Zipkin v2: a JSON array of span objects with ``traceId``, ``id`` and Zipkin fields."""
    if not _START.match(head):
        return 0.0
    if _ID.search(head) and re.search(rb'"id"\s*:', head) and any(k in head for k in _KEYS):
        return 0.85
    return 0.0


register(
    Reader(
        name="zipkin",
        description="Zipkin v2 JSON spans (a list of spans, or a list of traces)",
        sniff=_sniff,
        read=_read,
        extensions=(".json",),
    )
)
