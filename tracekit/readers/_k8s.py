"""Shared by the Kubernetes readers: JSON record splitting and entity names.

Records: both Kubernetes formats come as JSON lines (audit log files, watch streams), as whole
documents (``kubectl get events -o json`` lists, a single pretty-printed object, pretty objects
written one after another by ``kubectl get -w -o json``), or as ``List``/``EventList``
envelopes (one line each, e.g. an audit webhook batch). :func:`json_records` turns any of these
into one JSON object text per *record* (a list's items are records, the envelope is not), with
its lines and byte offset, so that the readers extract fields with DuckDB over one column.

Entity names (DESIGN "Names"): ``<kind lower-cased singular>/<namespace>/<name>`` for
namespaced objects, ``<kind>/<name>`` for cluster-scoped ones (``node/n1``). Audit
``objectRef.resource`` plurals map onto the same kinds (``pods`` → ``pod``, ``endpoints`` →
``endpoints``, as the kind ``Endpoints`` lower-cased).

Example::

    >>> singular_kinds(pa.array(["pods", "endpoints", "networkpolicies", None])).to_pylist()
    ['pod', 'endpoints', 'networkpolicy', None]
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._base import Input, Lines, split_lines


def _json_escape_bytes(err: UnicodeError) -> tuple[str, int]:
    bad = err.object[err.start:err.end]  # type: ignore[attr-defined]
    return "".join(f"\\\\x{b:02x}" for b in bad), err.end  # type: ignore[attr-defined]


codecs.register_error("tracekit.json_backslash", _json_escape_bytes)


def json_safe_text(inp: Input | bytes, lines: Lines) -> pa.Array:
    """The lines' text, with the lines that are not UTF-8 decoded so that each invalid byte
    becomes the JSON escape ``\\\\xNN`` (the text ``\\xNN`` once parsed) rather than an
    invalid JSON escape: such a line stays readable JSON."""
    text = lines.text
    if not lines.bad_utf8.size:
        return text
    buf = inp.buffer() if isinstance(inp, Input) else inp
    fixed = text.to_pylist()
    for ln in lines.bad_utf8:
        j = int(ln) - 1
        start = int(lines.offset[j])
        stop = int(lines.offset[j + 1]) if j + 1 < len(lines) else lines.nbytes
        fixed[j] = bytes(buf[start:stop]).decode("utf-8", "tracekit.json_backslash")
    return pa.array(fixed, pa.large_string())

#: resource (plural, as in audit ``objectRef.resource``) → kind lower-cased (as in events).
RESOURCE_KINDS = {
    "pods": "pod", "nodes": "node", "services": "service", "endpoints": "endpoints",
    "endpointslices": "endpointslice", "deployments": "deployment", "replicasets": "replicaset",
    "statefulsets": "statefulset", "daemonsets": "daemonset", "jobs": "job", "cronjobs": "cronjob",
    "configmaps": "configmap", "secrets": "secret", "namespaces": "namespace",
    "serviceaccounts": "serviceaccount", "persistentvolumes": "persistentvolume",
    "persistentvolumeclaims": "persistentvolumeclaim", "ingresses": "ingress",
    "ingressclasses": "ingressclass", "networkpolicies": "networkpolicy", "events": "event",
    "leases": "lease", "roles": "role", "rolebindings": "rolebinding",
    "clusterroles": "clusterrole", "clusterrolebindings": "clusterrolebinding",
    "storageclasses": "storageclass", "horizontalpodautoscalers": "horizontalpodautoscaler",
    "poddisruptionbudgets": "poddisruptionbudget", "customresourcedefinitions": "customresourcedefinition",
    "replicationcontrollers": "replicationcontroller", "limitranges": "limitrange",
    "resourcequotas": "resourcequota", "priorityclasses": "priorityclass",
    "podtemplates": "podtemplate", "controllerrevisions": "controllerrevision",
    "mutatingwebhookconfigurations": "mutatingwebhookconfiguration",
    "validatingwebhookconfigurations": "validatingwebhookconfiguration",
    "apiservices": "apiservice", "certificatesigningrequests": "certificatesigningrequest",
    "tokenreviews": "tokenreview", "subjectaccessreviews": "subjectaccessreview",
    "selfsubjectaccessreviews": "selfsubjectaccessreview", "csinodes": "csinode",
    "volumeattachments": "volumeattachment", "runtimeclasses": "runtimeclass",
}

#: kinds (lower-cased) whose objects have no namespace: entity ``<kind>/<name>``.
CLUSTER_SCOPED = frozenset({
    "node", "namespace", "persistentvolume", "clusterrole", "clusterrolebinding", "storageclass",
    "customresourcedefinition", "priorityclass", "mutatingwebhookconfiguration",
    "validatingwebhookconfiguration", "apiservice", "certificatesigningrequest", "csinode",
    "volumeattachment", "runtimeclass", "ingressclass", "componentstatus",
})


def _singular(resource: str) -> str:
    r = resource.lower()
    if r in RESOURCE_KINDS:
        return RESOURCE_KINDS[r]
    if r.endswith("ies"):
        return r[:-3] + "y"
    if r.endswith(("sses", "xes", "ches", "shes")):
        return r[:-2]
    if r.endswith("s") and not r.endswith("ss"):
        return r[:-1]
    return r


def _map_distinct(values: pa.Array | pa.ChunkedArray, fn) -> pa.Array:
    """Apply ``fn`` to the distinct non-null strings of a column only (vectorised take)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) == 0:
        return pa.array([], pa.string())
    enc = pc.dictionary_encode(values.cast(pa.string()))
    mapped = [None if w is None else fn(w) for w in enc.dictionary.to_pylist()]
    return pc.take(pa.array(mapped, pa.string()), enc.indices)


def singular_kinds(resources: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Audit ``objectRef.resource`` plurals → the lower-cased kind events use."""
    return _map_distinct(resources, _singular)


def entities(kind_lower: Any, namespace: Any, name: Any) -> pa.Array:
    """``kind/ns/name`` (namespaced) or ``kind/name`` (cluster-scoped or no namespace);
    null when the kind or the name is missing."""
    kind_lower = pa.array(kind_lower) if not isinstance(kind_lower, (pa.Array, pa.ChunkedArray)) else kind_lower
    ns = pc.if_else(pc.is_in(kind_lower, pa.array(sorted(CLUSTER_SCOPED))), pa.scalar(None, pa.string()),
                    pc.if_else(pc.equal(namespace, ""), pa.scalar(None, pa.string()), namespace))
    with_ns = pc.binary_join_element_wise(kind_lower, ns, name, "/")
    without = pc.binary_join_element_wise(kind_lower, name, "/")
    out = pc.coalesce(with_ns, without)
    return pc.if_else(pc.equal(name, ""), pa.scalar(None, pa.string()), out)


# --------------------------------------------------------------------------- records


@dataclass
class Records:
    """One JSON text per record, and the records that could not be read."""

    text: pa.Array  # large_string: one JSON value per record
    line: np.ndarray
    line_end: np.ndarray
    offset: np.ndarray  # byte offset of the record (of its List item, in document mode)
    item: np.ndarray  # element index inside a List/array envelope, -1 otherwise
    reject_line: list[int] = field(default_factory=list)
    reject_offset: list[int] = field(default_factory=list)
    reject_reason: list[str] = field(default_factory=list)
    reject_raw: list[str] = field(default_factory=list)
    mode: str = "lines"
    bad_utf8: int = 0

    @property
    def records(self) -> int:
        return len(self.text) + len(self.reject_line)


_ITEMS_RE = re.compile(r'"items"\s*:\s*\[')
_WS_RE = re.compile(r"\s*")
_NEXT_TOP_RE = re.compile(r"\n(?=[{\[])")


def json_records(inp: Input | bytes, expand_lists: bool = True) -> Records:
    """Split JSON lines or JSON documents into records (see the module docstring).

    Line mode (the first non-blank line is a whole JSON value): each non-blank line is a
    record; lines that are not JSON are rejected; one-line ``List`` envelopes are expanded in
    DuckDB. Document mode otherwise: concatenated values are scanned with the stdlib decoder,
    a ``List``'s items are records with their own lines, and a value that cannot be read
    (truncated, garbage) is one reject up to the next line starting a value.
    """
    import duckdb

    lines = split_lines(inp)
    keep = ~lines.blank()
    text = json_safe_text(inp, lines).filter(pa.array(keep))
    lno, offs = lines.line[keep], lines.offset[keep]
    n = len(text)
    if n == 0:
        e = np.zeros(0, np.int64)
        return Records(pa.array([], pa.large_string()), e, e, e, e)
    con = duckdb.connect()
    try:
        con.register("t", pa.table({"line": text, "i": np.arange(n, dtype=np.int64)}))
        valid = np.asarray(con.sql("select json_valid(line) from t order by i").to_arrow_table()
                           .column(0).to_numpy(zero_copy_only=False), dtype=bool)
        if not valid[0]:
            con.close()
            return _document_records(inp if isinstance(inp, Input) else None,
                                     inp if isinstance(inp, bytes) else None, expand_lists)
        ok = np.flatnonzero(valid)
        rec = Records(pa.array([], pa.large_string()), lno[ok], lno[ok], offs[ok],
                      np.full(len(ok), -1, np.int64), bad_utf8=int(lines.bad_utf8.size))
        for j in np.flatnonzero(~valid):
            rec.reject_line.append(int(lno[j]))
            rec.reject_offset.append(int(offs[j]))
            rec.reject_reason.append("not JSON (invalid or truncated)")
            rec.reject_raw.append(text[int(j)].as_py().rstrip("\r\n"))
        lst = "json_type(line, '$.items') = 'ARRAY'" if expand_lists else "false"
        q = (f"select i, -1::BIGINT k, line::VARCHAR obj from t where json_valid(line) and not coalesce({lst}, false)"
             f" union all select i, unnest(range(json_array_length(line, '$.items')::BIGINT)) k,"
             f" unnest(json_extract(line, '$.items[*]'))::VARCHAR obj from t where json_valid(line) and coalesce({lst}, false)"
             " order by i, k")
        res = con.sql(q).to_arrow_table()
    finally:
        con.close()
    idx = res.column("i").to_numpy()
    rec.text = res.column("obj").combine_chunks().cast(pa.large_string())
    rec.line, rec.line_end, rec.offset = lno[idx], lno[idx], offs[idx]
    rec.item = res.column("k").to_numpy()
    return rec


def _document_records(inp: Input | None, data: bytes | None, expand_lists: bool) -> Records:
    raw = bytes(inp.buffer()) if inp is not None else data
    assert raw is not None
    s = raw.decode("utf-8", errors="surrogateescape")
    cp = np.frombuffer(s.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
    surr = (cp >= 0xDC80) & (cp <= 0xDCFF)
    blen = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
    blen[surr] = 1
    cum = np.concatenate([[0], np.cumsum(blen)])
    nlpos = np.flatnonzero(cp == 10)
    has_bad = bool(surr.any())

    def clean(a: int, b: int) -> str:
        t = s[a:b]
        return t.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") if has_bad else t

    spans: list[tuple[int, int, int]] = []  # start, end, item index
    rej: list[tuple[int, int, str]] = []
    dec = json.JSONDecoder()
    pos, end_all = 0, len(s)

    def scan_array(lb: int) -> tuple[list[tuple[int, int, int]], int | None]:
        """Items of the array whose '[' is at ``lb``: spans, and where reading failed."""
        out: list[tuple[int, int, int]] = []
        p = lb + 1
        while True:
            p = _WS_RE.match(s, p).end()
            if p >= end_all:
                return out, p
            if s[p] == "]":
                return out, None
            try:
                _, e = dec.raw_decode(s, p)
            except json.JSONDecodeError:
                return out, p
            out.append((p, e, len(out)))
            p = _WS_RE.match(s, e).end()
            if p < end_all and s[p] == ",":
                p += 1

    while True:
        pos = _WS_RE.match(s, pos).end()
        if pos >= end_all:
            break
        try:
            obj, end = dec.raw_decode(s, pos)
        except json.JSONDecodeError:
            obj, end = None, None
        if end is not None and not (
            expand_lists and (isinstance(obj, list) or (isinstance(obj, dict) and isinstance(obj.get("items"), list)))
        ):
            spans.append((pos, end, -1))
            pos = end
            continue
        # a List envelope / top-level array (read item by item), or a value that failed
        lb = None
        if s[pos] == "[" and expand_lists:
            lb = pos
        elif s[pos] == "{" and expand_lists:
            m = _ITEMS_RE.search(s, pos, end if end is not None else end_all)
            lb = m.end() - 1 if m else None
        if lb is not None:
            items, fail = scan_array(lb)
            spans.extend(items)
            if end is not None:
                pos = end
                continue
            if fail is not None:
                stop = _next_top(s, fail, end_all)
                what = f"truncated or invalid JSON in List item {len(items)}"
                rej.append((fail, stop, what))
                pos = stop
                continue
        stop = _next_top(s, pos, end_all)
        rej.append((pos, stop, "not JSON (invalid or truncated)"))
        pos = stop

    def line_of(p: np.ndarray) -> np.ndarray:
        return np.searchsorted(nlpos, p, side="left").astype(np.int64) + 1

    st = np.array([a for a, _, _ in spans], np.int64)
    en = np.array([b for _, b, _ in spans], np.int64)
    rec = Records(
        pa.array([clean(a, b) for a, b, _ in spans], pa.large_string()),
        line_of(st), line_of(np.maximum(en - 1, st)), cum[st],
        np.array([k for _, _, k in spans], np.int64), mode="document",
        bad_utf8=int(has_bad),
    )
    for a, b, why in rej:
        rec.reject_line.append(int(line_of(np.array([a]))[0]))
        rec.reject_offset.append(int(cum[a]))
        rec.reject_reason.append(why)
        rec.reject_raw.append(clean(a, b).rstrip())
    return rec


def _next_top(s: str, p: int, end_all: int) -> int:
    """Where the next value may start after a bad one: the next line opening with { or [."""
    m = _NEXT_TOP_RE.search(s, p + 1)
    return m.end() if m else end_all


def sql_lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def attrs_sql(keys: list[str], src: str, extra: list[tuple[str, str]]) -> str:
    """DuckDB expression for an attrs map: the record's top-level ``keys`` (strings verbatim,
    other values as compact JSON), plus reader-made ``(key, sql expression)`` pairs (null
    values left out)."""
    parts = []
    if keys:
        kl = "[" + ",".join(sql_lit(k) for k in keys) + "]"
        pl_ = "[" + ",".join(sql_lit(json_path(k)) for k in keys) + "]"
        parts.append(
            f"list_transform(list_filter(list_zip({kl}, json_extract_string({src}, {pl_}),"
            f" json_extract({src}, {pl_})), lambda x: x[3] IS NOT NULL),"
            " lambda x: struct_pack(k := x[1], v := coalesce(x[2], 'null')))"
        )
    if extra:
        ex = ", ".join(f"struct_pack(k := {sql_lit(k)}, v := ({e})::VARCHAR)" for k, e in extra)
        parts.append(f"list_filter([{ex}], lambda x: x.v IS NOT NULL)")
    if not parts:
        return "map_from_entries([]::STRUCT(k VARCHAR, v VARCHAR)[])"
    expr = parts[0] if len(parts) == 1 else f"list_concat({parts[0]}, {parts[1]})"
    return f"map_from_entries({expr})"


def add_attrs(attrs: pa.Array, add: dict[str, pa.Array]) -> pa.Array:
    """Append reader-made keys (null values left out) to each row's attrs map (vectorised:
    one small DuckDB pass)."""
    import duckdb

    if len(attrs) == 0:
        return attrs
    cols = {"a": attrs, **{f"c{j}": v for j, v in enumerate(add.values())}}
    ex = ", ".join(f"struct_pack(key := {sql_lit(k)}, value := c{j})" for j, k in enumerate(add))
    con = duckdb.connect()
    try:
        con.register("x", pa.table(cols))
        out = con.sql(
            f"select map_from_entries(list_concat(map_entries(a), list_filter([{ex}], lambda e: e.value IS NOT NULL)))"
            " from x").to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()
    return out.cast(pa.map_(pa.string(), pa.string()))
