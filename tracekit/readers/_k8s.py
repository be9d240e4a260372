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


def connect() -> Any:
    """A DuckDB connection for one read (no progress bar: a reader's query is not a user's)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


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
    lines = split_lines(inp)
    keep = ~lines.blank()
    text = json_safe_text(inp, lines).filter(pa.array(keep))
    lno, offs = lines.line[keep], lines.offset[keep]
    n = len(text)
    if n == 0:
        e = np.zeros(0, np.int64)
        return Records(pa.array([], pa.large_string()), e, e, e, e)
    con = connect()
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
    if raw.isascii():  # the usual case: a character is a byte
        nlpos = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == 10)
        cum = None
        has_bad = False
    else:  # byte offset of each character (invalid bytes are lone surrogates: 1 byte each)
        cp = np.frombuffer(s.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        surr = (cp >= 0xDC80) & (cp <= 0xDCFF)
        blen = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
        blen[surr] = 1
        cum = np.concatenate([[0], np.cumsum(blen)])
        nlpos = np.flatnonzero(cp == 10)
        has_bad = bool(surr.any())
        del cp, blen, surr

    def clean(a: int, b: int, handler: str = "tracekit.json_backslash") -> str:
        t = s[a:b]
        return t.encode("utf-8", "surrogateescape").decode("utf-8", handler) if has_bad else t

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
        line_of(st), line_of(np.maximum(en - 1, st)), st if cum is None else cum[st],
        np.array([k for _, _, k in spans], np.int64), mode="document",
        bad_utf8=int(has_bad),
    )
    for a, b, why in rej:
        rec.reject_line.append(int(line_of(np.array([a]))[0]))
        rec.reject_offset.append(int(a if cum is None else cum[a]))
        rec.reject_reason.append(why)
        rec.reject_raw.append(clean(a, b, "backslashreplace").rstrip())
    return rec


def _next_top(s: str, p: int, end_all: int) -> int:
    """Where the next value may start after a bad one: the next line opening with { or [."""
    m = _NEXT_TOP_RE.search(s, p + 1)
    return m.end() if m else end_all


def sql_lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Extract:
    """Builds one DuckDB pass that parses each JSON record once.

    Every path asked for goes into one list; ``json_extract_string(o, [paths])`` and
    ``json_extract(o, [paths])`` then read them all in a single parse each (DuckDB parses the
    document again for every separate call). :meth:`s` / :meth:`j` name a path's string / JSON
    value in the outer query; :meth:`attrs` builds the attrs map.

    Example::

        >>> x = Extract(["a", "b"])
        >>> x.s("$.c.d"), x.key("b"), x.j(json_path("a"))
        ('s[3]', 's[2]', 'j[1]')
    """

    def __init__(self, keys: list[str], src: str = "o") -> None:
        self.src = src
        self.keys = list(keys)
        self.paths = [json_path(k) for k in keys]

    def _idx(self, path: str) -> int:
        if path not in self.paths:
            self.paths.append(path)
        return self.paths.index(path) + 1

    def s(self, path: str) -> str:
        """The string value at ``path`` (objects and arrays as JSON text; null stays NULL)."""
        return f"s[{self._idx(path)}]"

    def j(self, path: str) -> str:
        """The JSON value at ``path`` (JSON ``null`` is the JSON text ``null``; missing → NULL)."""
        return f"j[{self._idx(path)}]"

    def key(self, key: str) -> str:
        return self.s(json_path(key))

    def cte(self, table: str, cols: str = "*") -> str:
        pl_ = "[" + ",".join(sql_lit(p) for p in self.paths) + "]::VARCHAR[]"
        return (f"select {cols}, json_extract_string({self.src}, {pl_}) AS s,"
                f" json_extract({self.src}, {pl_}) AS j from {table}")

    def attrs(self, extra: list[tuple[str, str]]) -> str:
        """The attrs map: the record's top-level ``keys`` given at construction (strings
        verbatim, other values as compact JSON), plus reader-made ``(key, sql expression)``
        pairs (null values left out)."""
        m = len(self.keys)
        parts = []
        if m:
            kl = "[" + ",".join(sql_lit(k) for k in self.keys) + "]"
            parts.append(
                f"list_transform(list_filter(list_zip({kl}, s[1:{m}], j[1:{m}]), lambda x: x[3] IS NOT NULL),"
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
    """Append reader-made keys (null values left out) to the attrs maps of the rows that have
    any (vectorised: one small DuckDB pass over those rows only, spliced back by ``take``)."""
    attrs = attrs.cast(pa.map_(pa.string(), pa.string()))
    if len(attrs) == 0 or not add:
        return attrs
    any_ = np.zeros(len(attrs), bool)
    for v in add.values():
        any_ |= pc.is_valid(v).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(any_)
    if rows.size == 0:
        return attrs
    sel = pa.array(rows)
    cols = {"a": attrs.take(sel), **{f"c{j}": v.take(sel) for j, v in enumerate(add.values())}}
    ex = ", ".join(f"struct_pack(key := {sql_lit(k)}, value := c{j})" for j, k in enumerate(add))
    con = connect()
    try:
        con.register("x", pa.table(cols))
        out = con.sql(
            f"select map_from_entries(list_concat(map_entries(a), list_filter([{ex}], lambda e: e.value IS NOT NULL)))"
            " from x").to_arrow_table().column(0).combine_chunks()
    finally:
        con.close()
    patched = out.cast(attrs.type)
    if rows.size == len(attrs):
        return patched
    where = np.arange(len(attrs), dtype=np.int64)
    where[rows] = len(attrs) + np.arange(rows.size)
    return pa.concat_arrays([attrs, patched]).take(pa.array(where))


def transform_spec(keys: list[str]) -> str | None:
    """The ``json_transform`` spec reading every top-level key as VARCHAR (strings raw, other
    values as compact JSON), or None when DuckDB cannot take these keys as struct fields (names
    equal but for case; too many) and :class:`Extract` must be used instead."""
    if not keys or len(keys) > 400 or len({k.lower() for k in keys}) < len(keys):
        return None
    return sql_lit(json.dumps({k: "VARCHAR" for k in keys}))


def build_attrs(key_lists: pa.Array, values: pa.Array, skip: set[str] | frozenset[str],
                extras: dict[str, pa.Array] | None = None) -> pa.Array:
    """Build the attrs maps in Arrow from DuckDB's ``json_keys(o)`` (each row's keys in the
    record's order) and ``json_transform(o, transform_spec(keys))`` (a struct of VARCHAR),
    leaving out ``skip``; a key present with JSON ``null`` gets ``"null"``. ``extras`` (reader-
    made keys → a column, null = absent) follow each row's own keys. No Python per row:
    one lexsort and two ``take`` calls over all entries.
    """
    n = len(key_lists)
    if isinstance(key_lists, pa.ChunkedArray):
        key_lists = key_lists.combine_chunks()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    key_lists = pc.fill_null(key_lists, pa.scalar([], key_lists.type))
    flat = pc.list_flatten(key_lists)
    ri = pc.list_parent_indices(key_lists).to_numpy().astype(np.int64)
    names = [values.type.field(j).name for j in range(values.type.num_fields)]
    ki = pc.fill_null(pc.index_in(flat, pa.array(names, pa.string())), -1).to_numpy(
        zero_copy_only=False).astype(np.int64)
    keep = ki >= 0
    if skip:
        keep &= ~np.isin(ki, [names.index(s) for s in skip if s in names])
    ri, ki = ri[keep], ki[keep]
    flat = flat.filter(pa.array(keep))
    # values, key by key (only the rows that have the key), then back to record order
    km = np.argsort(ki, kind="stable")  # key-major; rows ascending within a key
    ri_km, ki_km = ri[km], ki[km]
    uk = np.unique(ki_km)
    bounds = np.searchsorted(ki_km, np.append(uk, np.iinfo(np.int64).max))
    parts = []
    for j, k in enumerate(uk):
        rows = ri_km[bounds[j]:bounds[j + 1]]
        col = values.field(int(k)).take(pa.array(rows))
        parts.append(pc.fill_null(col.cast(pa.string()), "null"))
    vals_km = pa.concat_arrays(parts) if parts else pa.array([], pa.string())
    inv = np.empty(len(km), np.int64)
    inv[km] = np.arange(len(km))
    keys_all = [flat.cast(pa.string())]
    vals_all = [vals_km.take(pa.array(inv))]
    rows_all = [ri]
    rank_all = [np.arange(len(ri), dtype=np.int64)]
    base = len(ri)
    for j, (name, col) in enumerate((extras or {}).items()):
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(valid)
        keys_all.append(pa.repeat(pa.scalar(name, pa.string()), rows.size))
        vals_all.append(col.filter(pa.array(valid)).cast(pa.string()))
        rows_all.append(rows)
        rank_all.append(np.full(rows.size, base + j, np.int64))
    r = np.concatenate(rows_all)
    order = np.lexsort((np.concatenate(rank_all), r))
    kk = pa.concat_arrays(keys_all).take(pa.array(order))
    vv = pa.concat_arrays(vals_all).take(pa.array(order))
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(r, minlength=n), out=offsets[1:])
    return pa.MapArray.from_arrays(pa.array(offsets), kk, vv).cast(pa.map_(pa.string(), pa.string()))


class Attrs:
    """The attrs of JSON records in one DuckDB pass: :func:`build_attrs` over ``json_keys`` +
    ``json_transform`` when the keys allow it, else :meth:`Extract.attrs` (+ :func:`add_attrs`).

    Example::

        >>> a = Attrs(["a", "b"], skip={"b"})
        >>> "json_transform" in a.columns()
        True
    """

    def __init__(self, keys: list[str], skip: set[str] | frozenset[str] = frozenset(), src: str = "o") -> None:
        self.src = src
        self.spec = transform_spec(keys)
        self.skip = set(skip)
        self.x = Extract([] if self.spec else [k for k in keys if k not in self.skip], src)

    def columns(self) -> str:
        """SQL select-list items to add to the query (which must select from :meth:`Extract.cte`)."""
        if self.spec:
            obj = f"json_type({self.src}) = 'OBJECT'"
            return (f"CASE WHEN {obj} THEN json_keys({self.src}) END AS a_kl,"
                    f" CASE WHEN {obj} THEN json_transform({self.src}, {self.spec}) END AS a_tv")
        return f"{self.x.attrs([])} AS a_attrs"

    def build(self, res: pa.Table, extras: dict[str, pa.Array]) -> pa.Array:
        """The attrs column for the rows of ``res``, with reader-made ``extras`` appended."""
        if self.spec:
            return build_attrs(res.column("a_kl"), res.column("a_tv"), self.skip, extras)
        return add_attrs(res.column("a_attrs").combine_chunks(), extras)
