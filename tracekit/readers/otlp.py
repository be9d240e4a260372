"""OpenTelemetry OTLP/JSON: traces (``resourceSpans``) and logs (``resourceLogs``).

A file holds one ``Export…ServiceRequest`` document (pretty-printed or not), or several, one
per line, as the collector's file exporter writes them.

**Records.** A record is a span or a log record; ``records`` counts them, plus one for each
document (line) that is not valid JSON (its spans cannot be counted). A span makes one
``span`` row, and extra rows of the same record: one ``instant`` per span event, one
``flow`` per link, one ``loss`` per non-zero ``dropped{Attributes,Events,Links}Count``
(``value`` = the count). ``emitted`` counts records, ``rows`` counts rows. A span with no
start time (or a log record with neither ``timeUnixNano`` nor ``observedTimeUnixNano``) is
rejected with its JSON.

**Columns.** ``ts_src`` = ``startTimeUnixNano`` (exact int64 ns), ``dur`` = end − start,
``name`` = span name (logs: ``eventName``, else the body), ``trace_id``/``span_id``/
``parent_id`` lower-case hex (ids written as base64 by some producers are detected and
converted; ``parentSpanId: ""`` is no parent), ``category`` = the resource's
``service.name``, ``host`` = ``host.name``, ``pid`` = ``process.pid``. ``severity`` is
``error`` for spans with status ERROR (and for ``exception`` span events); for logs it comes
from ``severityNumber`` (1–4 trace, 5–8 debug, 9–12 info, 13–16 warning, 17–20 error,
21–24 critical), else from ``severityText``. ``message`` = status message / log body.

**Entity and state.** ``entity`` is ``service/<service.name>`` and span rows carry
``state`` ``error`` (status ERROR) or ``ok`` (OK or UNSET — UNSET is the "no error" default
every OTel backend reads as success; the raw code is kept in ``attrs['otel.status_code']``).
DESIGN's ``span/<trace>/<span>`` would name a thing that has exactly one state, so it can
never show a transition, and the ids are already in ``trace_id``/``span_id``; the service
is what goes from OK to failing after a deploy, so that is what transitions are found for.

**attrs.** Span/log/event/link attributes under their own keys; resource attributes as
``resource.<key>``, scope attributes as ``scope.<key>``; ``otel.scope.name``,
``otel.scope.version``, ``otel.status_code`` (UNSET/OK/ERROR) and ``span.kind``
(internal/server/client/producer/consumer) as the OpenTelemetry spec names them for
non-OTLP exporters; other span fields under their OTLP/JSON names (``traceState``,
``flags``, ``droppedAttributesCount``…). AnyValues become strings as :mod:`tracekit.schema`
says: ``stringValue`` itself, ``intValue``/``doubleValue``/``boolValue`` as JSON text, arrays
and kvlists as compact plain JSON (``["many","values"]``, ``{"k":"v"}``), ``bytesValue``
as the base64 text. Links: ``flow_id`` = the linked span id, ``flow_dir`` = ``in``, linked
trace id in ``attrs['link.trace_id']``. Fields of a span or log record outside the OTLP
schema are kept in its attrs under their own names; unknown fields elsewhere (resource,
scope, event, link) are named in the source note, not kept.

**Provenance.** ``line`` is the line the record's request starts on (each request of a JSON
lines file has its own; a single document is line 1); ``offset`` is the record's JSON element
index in the file (spans first, then log records), shared by the extra rows of that record.

**Speed.** The whole file goes through ``pyarrow.json`` (types inferred; the explicit OTLP
schema if inference trips): one pass, no Python object per span. A big file is parsed in
pieces on every core: JSON lines in blocks, and one big request cut between the items of its
resource list (each piece must parse as one object with that one key, else the document is
parsed whole). Nested lists are flattened with Arrow compute (chunk by chunk, no joined
copy), and the rows of all kinds (spans, events, links, losses) are built in time order with
the attrs maps gathered once straight into that order, so ``tk.load`` finds a file in time
order already sorted (``seq`` then numbers the rows in time order). The rows are built once
the parsed documents are freed, and a big file is read with transparent huge pages off
(``_spans.small_pages``: its scratch is allocated and freed several times, and huge
pages are zeroed 2 MiB at a time). The pre-1.0 names
(``instrumentationLibrarySpans``…) are read too. Files pyarrow refuses (numbers written as
strings or the other way round, enum names such as ``SPAN_KIND_SERVER``, a bad line, invalid
UTF-8, nesting deeper than Arrow's kernels should recurse) go through DuckDB's lenient
``json_transform`` per document instead (about 3× slower; unknown fields are not seen
there); bad lines become rejects. Limitation: pyarrow's parser itself recurses, so a file
nesting JSON some 15,000 levels deep can crash it — no real exporter writes such a file.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("trace.json", format="otlp")            # doctest: +SKIP
    >>> tl.events.filter(pc.equal(tl.events["kind"], "span"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..schema import conform, normalize_severity
from ._base import Input, Reader, ReadResult, register, split_lines
from ._spans import (
    Kind,
    Part,
    arr,
    as_int,
    as_str,
    build_rows,
    choose,
    concat_rejects,
    duck_transform,
    field,
    flatten,
    hex_ids,
    lookup,
    np_int,
    null_where,
    offsets_from_parents,
    rejects_for,
    release_memory,
    scalar_part,
    small_pages,
    split_documents,
    valid,
)
from ._spans import take_rows as _take

# --------------------------------------------------------------------------- schema

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
_SCALARS = [("stringValue", _S), ("intValue", _S), ("doubleValue", _F), ("boolValue", _B), ("bytesValue", _S)]
_ANY = pa.struct(_SCALARS + [
    ("arrayValue", pa.struct([("values", pa.list_(pa.struct(_SCALARS)))])),
    ("kvlistValue", pa.struct([("values", pa.list_(pa.struct([("key", _S), ("value", pa.struct(_SCALARS))])))])),
])
_ATTRS = pa.list_(pa.struct([("key", _S), ("value", _ANY)]))
_RESOURCE = pa.struct([("attributes", _ATTRS), ("droppedAttributesCount", _I)])
_SCOPE = pa.struct([("name", _S), ("version", _S), ("attributes", _ATTRS), ("droppedAttributesCount", _I)])
_EVENT = pa.struct([("timeUnixNano", _S), ("name", _S), ("attributes", _ATTRS), ("droppedAttributesCount", _I)])
_LINK = pa.struct([("traceId", _S), ("spanId", _S), ("traceState", _S), ("attributes", _ATTRS),
                   ("droppedAttributesCount", _I), ("flags", _I)])
_SPAN = pa.struct([
    ("traceId", _S), ("spanId", _S), ("traceState", _S), ("parentSpanId", _S), ("flags", _I), ("name", _S),
    ("kind", _I), ("startTimeUnixNano", _S), ("endTimeUnixNano", _S), ("attributes", _ATTRS),
    ("droppedAttributesCount", _I), ("events", pa.list_(_EVENT)), ("droppedEventsCount", _I),
    ("links", pa.list_(_LINK)), ("droppedLinksCount", _I), ("status", pa.struct([("code", _I), ("message", _S)])),
])
_LOG = pa.struct([
    ("timeUnixNano", _S), ("observedTimeUnixNano", _S), ("severityNumber", _I), ("severityText", _S),
    ("body", _ANY), ("attributes", _ATTRS), ("droppedAttributesCount", _I), ("flags", _I), ("traceId", _S),
    ("spanId", _S), ("eventName", _S),
])
SCHEMA = pa.schema([
    ("resourceSpans", pa.list_(pa.struct([
        ("resource", _RESOURCE), ("schemaUrl", _S),
        ("scopeSpans", pa.list_(pa.struct([("scope", _SCOPE), ("schemaUrl", _S), ("spans", pa.list_(_SPAN))]))),
        ("instrumentationLibrarySpans", pa.list_(pa.struct([
            ("instrumentationLibrary", _SCOPE), ("schemaUrl", _S), ("spans", pa.list_(_SPAN))]))),
    ]))),
    ("resourceLogs", pa.list_(pa.struct([
        ("resource", _RESOURCE), ("schemaUrl", _S),
        ("scopeLogs", pa.list_(pa.struct([("scope", _SCOPE), ("schemaUrl", _S), ("logRecords", pa.list_(_LOG))]))),
        ("instrumentationLibraryLogs", pa.list_(pa.struct([
            ("instrumentationLibrary", _SCOPE), ("schemaUrl", _S), ("logRecords", pa.list_(_LOG))]))),
    ]))),
])


def _duck_structure(t: pa.DataType) -> str:
    """The same shape for DuckDB's lenient ``json_transform``: scalars as text, nested
    AnyValues as raw JSON."""
    if pa.types.is_list(t):
        return "[" + _duck_structure(t.value_type) + "]"
    if pa.types.is_struct(t):
        names = [t.field(i).name for i in range(t.num_fields)]
        if "arrayValue" in names:  # AnyValue
            inner = [f'"{k}":"VARCHAR"' for k, _ in _SCALARS] + ['"arrayValue":"JSON"', '"kvlistValue":"JSON"']
            return "{" + ",".join(inner) + "}"
        return "{" + ",".join(f'"{t.field(i).name}":{_duck_structure(t.field(i).type)}' for i in range(t.num_fields)) + "}"
    return '"VARCHAR"'


_STRUCTURE = "{" + ",".join(f'"{f.name}":{_duck_structure(f.type)}' for f in SCHEMA) + "}"

_KINDS = {"0": "unspecified", "1": "internal", "2": "server", "3": "client", "4": "producer", "5": "consumer"}
_STATUS = {"0": "UNSET", "1": "OK", "2": "ERROR"}


def _enum(values: pa.Array, table: dict[str, str], prefix: str, upper: bool) -> pa.Array:
    """Enum numbers or names (``2``, ``"SPAN_KIND_SERVER"``) to words, over distinct values."""
    values = arr(values)
    if pa.types.is_integer(values.type):  # the common case: decode through a dictionary
        v = np_int(values, -1)
        words = [table.get(str(i)) for i in range(len(table))] + [None]
        idx = np.where((v >= 0) & (v < len(table)), v, len(table)).astype(np.int32)
        out = pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(words, pa.string())).dictionary_decode()
        odd = np.flatnonzero(valid(values) & ((v < 0) | (v >= len(table))))
        if len(odd):  # numbers the spec does not name: keep them as written
            out = pc.replace_with_mask(out, pa.array(np.isin(np.arange(len(v)), odd)),
                                       pa.array([str(x) for x in v[odd]], pa.string()))
        return null_where(out, ~valid(values))
    s = as_str(values)
    if len(s) == 0:
        return s
    enc = pc.dictionary_encode(s)
    words = []
    for w in enc.dictionary.to_pylist():
        v = table.get(w.strip()) if w is not None else None
        if v is None and w:
            v = w.strip().upper().removeprefix(prefix)
            v = v.upper() if upper else v.lower()
        words.append(v)
    return pc.take(pa.array(words, pa.string()), enc.indices)


# --------------------------------------------------------------------------- AnyValue


def _plain(av: Any) -> Any:
    """An OTLP AnyValue (dict) as a plain JSON value."""
    if not isinstance(av, dict):
        return av
    if av.get("stringValue") is not None:
        return av["stringValue"]
    if av.get("boolValue") is not None:
        b = av["boolValue"]
        return b if isinstance(b, bool) else str(b).lower() == "true"
    if av.get("intValue") is not None:
        try:
            return int(av["intValue"])
        except (TypeError, ValueError):
            return av["intValue"]
    if av.get("doubleValue") is not None:
        try:
            return float(av["doubleValue"])
        except (TypeError, ValueError):
            return av["doubleValue"]
    if av.get("bytesValue") is not None:
        return av["bytesValue"]
    for k in ("arrayValue", "kvlistValue"):
        v = av.get(k)
        if v is None:
            continue
        if isinstance(v, str):
            v = orjson.loads(v)
        vals = (v or {}).get("values") or []
        if k == "arrayValue":
            return [_plain(x) for x in vals]
        return {kv.get("key"): _plain(kv.get("value")) for kv in vals}
    return None


def _plain_text(av: Any) -> str:
    """Compact plain JSON of an AnyValue; one nested too deep for that keeps its raw text."""
    try:
        return orjson.dumps(_plain(av)).decode()
    except (RecursionError, orjson.JSONDecodeError, orjson.JSONEncodeError):
        for k in ("arrayValue", "kvlistValue"):
            if isinstance(av, dict) and isinstance(av.get(k), str):
                return '{"' + k + '":' + av[k] + "}"
        return str(av)


def _anyvalue_str(v: pa.Array) -> pa.Array:
    """AnyValue structs → attrs strings (schema.py encoding); absent → null."""
    n = len(v)
    if pa.types.is_null(v.type) or n == 0:
        return pa.nulls(n, pa.string())
    cols = [as_str(field(v, k, n)) for k, _ in _SCALARS if v.type.get_field_index(k) >= 0]
    out = pc.coalesce(*cols) if cols else pa.nulls(n, pa.string())
    need = np.zeros(n, bool)
    for k in ("arrayValue", "kvlistValue"):
        if v.type.get_field_index(k) >= 0:
            need |= valid(field(v, k))
    need &= ~valid(out)
    if need.any():
        idx = np.flatnonzero(need)
        texts = [_plain_text(x) for x in v.take(pa.array(idx)).to_pylist()]
        out = pc.replace_with_mask(out, pa.array(need), pa.array(texts, pa.string()))
    # doubles pyarrow printed as "72.5" stay; an AnyValue with nothing set is JSON null
    return out


def _kv(lists: pa.Array, prefix: str = "") -> Part:
    """OTLP ``[{key, value: AnyValue}]`` lists → a Part keyed by list row."""
    items, parents = flatten(lists)
    n = len(items)
    keys = as_str(field(items, "key", n)) if n else pa.array([], pa.string())
    keys = pc.fill_null(keys, "")
    if prefix:
        keys = pc.binary_join_element_wise(pa.scalar(prefix), keys, "")
    vals = _anyvalue_str(field(items, "value", n)) if n else pa.array([], pa.string())
    return Part(offsets_from_parents(parents, len(lists)), keys, pc.fill_null(vals, "null"))


def _rows(part: Part, rows: np.ndarray) -> Part:
    return Part(part.offsets, part.keys, part.vals, rows)


# --------------------------------------------------------------------------- parsing


def _parse(inp: Input) -> tuple[pa.Array, np.ndarray | None, np.ndarray | None, pa.Table | None, list[str]]:
    """Documents as one struct per request, with each one's first line and byte offset."""
    notes: list[str] = []
    buf = inp.buffer()
    first = _first_nonspace(buf)
    if first < 0:
        return pa.array([], pa.struct([])), None, None, None, notes
    parsed = None
    if inp.fs_path is not None and len(buf) > 2 * _BLOCK:  # reads its own mapping: buf stays untouched
        parsed = _items_in_place(inp.fs_path, buf, first)
    if parsed is None:
        parsed = _parse_pyarrow(buf, first) if _utf8_ok(buf) else None  # pyarrow passes bad UTF-8 on
    if parsed is not None:
        docs, extra, one = parsed
        if extra:
            notes.append("fields outside the OTLP schema were not kept: " + ", ".join(extra[:20]))
        if one or len(docs) == 1:  # one request (maybe parsed in pieces: each piece a row)
            nl = int(np.count_nonzero(np.frombuffer(buf, dtype=np.uint8, count=first) == 10))
            return docs, np.full(len(docs), nl + 1), np.full(len(docs), first), None, notes
        ls = split_lines(buf)
        keep = ~ls.blank()
        if int(keep.sum()) == len(docs):
            return docs, ls.line[keep], ls.offset[keep], None, notes
        return docs, None, None, None, notes
    d = split_documents(inp, ("OBJECT",))
    if d.note:
        notes.append(d.note)
    notes.append("read with DuckDB's lenient JSON reader (the file does not fit pyarrow's strict OTLP schema)")
    docs = duck_transform(d.text, "doc", _STRUCTURE) if len(d.text) else pa.array([], pa.struct([]))
    return docs, d.line, d.offset, d.rejects, notes


_BLOCK = 16 << 20  # JSON lines bigger than two blocks are parsed in parallel blocks of this size


def _parse_pyarrow(buf: pa.Buffer, first: int) -> tuple[pa.ChunkedArray | pa.Array, list[str], bool] | None:
    """Every request in the buffer as one struct, by ``pyarrow.json``: types inferred (the
    fastest), else the explicit OTLP schema; None when neither fits (mixed value types).
    The flag says the rows are pieces of one request (see :func:`_split_document`).

    A big file of one request per line (the collector's file exporter) is parsed in blocks on
    every core, and so is one big request whose resource list can be cut into pieces; other
    documents (or lines longer than a block) in one block."""
    tries: list[tuple[Any, pj.ReadOptions, bool, bool]] = []
    if len(buf) > 2 * _BLOCK:
        tries.append((buf, pj.ReadOptions(block_size=_BLOCK), False, False))
        split = _split_document(buf, first)
        if split is not None:
            tries.append(split)
    whole = pj.ReadOptions(block_size=len(buf) + 64)
    tries += [(buf, whole, True, False), (buf, whole, True, True)]
    for data, ropts, multiline, explicit in tries:
        popts = pj.ParseOptions(newlines_in_values=multiline) if not explicit else pj.ParseOptions(
            explicit_schema=SCHEMA, unexpected_field_behavior="infer", newlines_in_values=multiline)
        try:
            src = data.data if isinstance(data, _Split) else data
            tab = pj.read_json(pa.BufferReader(src), read_options=ropts, parse_options=popts)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
        if data is not buf:  # pieces of one document: each must have been one row, the only key
            if tab.num_rows != data.pieces or tab.column_names != [data.key]:
                continue
        if tab.num_columns == 0:
            return pa.array([{}] * tab.num_rows, pa.struct([])), [], False
        if _too_deep(tab.schema):  # Arrow's nested kernels recurse: leave such files to DuckDB
            return None
        return tab.to_struct_array(), _extra_fields(tab.schema), data is not buf
    return None


_HEAD = re.compile(rb"\s*\{\s*\"(resourceSpans|resourceLogs)\"\s*:\s*\[\s*")
_TAIL = re.compile(rb"\]\s*\}\s*$")
_NEXT = re.compile(rb"\}\s*,\s*(?=\{\s*\"resource\"\s*:)")  # between two resource{Spans,Logs} items
_ITEM = np.frombuffer(b'{"resource"', np.uint8)


def _request_items(buf: pa.Buffer, first: int) -> tuple[bytes, int, int, int] | None:
    """Where the resource list of a single request ``{"resourceSpans": [ … ]}`` lies: its key,
    the list's first and end byte, and the length of the closing ``]}`` (with what follows it);
    None when the document does not start and end like that."""
    mv = memoryview(buf)
    head = _HEAD.match(mv[first:first + 4096])
    if head is None:
        return None
    start = first + head.end()
    tail_from = max(start, len(buf) - 4096)
    tail = _TAIL.search(mv[tail_from:])
    if tail is None:
        return None
    return head.group(1), start, tail_from + tail.start(), tail.end() - tail.start()


def _piece_step(nbytes: int) -> int:
    """Bytes per piece: about :data:`_BLOCK`, as many pieces as a multiple of the cores (no
    core idle at the end)."""
    cores = max(os.cpu_count() or 1, 1)
    pieces = -(-nbytes // _BLOCK)
    return max(nbytes // (-(-pieces // cores) * cores), 1)


def _items_in_place(path: str, buf: pa.Buffer, first: int) -> tuple[pa.ChunkedArray, list[str], bool] | None:
    """One big request written one resource item per line (``{"resourceSpans":[item,⏎item,⏎…
    item]}``, as ``gen_workloads.py`` and line-oriented exporters write it) parsed as JSON lines
    of items, in blocks on every core, without copying the file: a private copy-on-write
    mapping has the request's head and tail and the comma ending each line blanked (only
    those pages are copied); it is also where the bytes are scanned and checked to be UTF-8. Taken only when every line break in the list comes right after
    a comma and right before an item, and only kept when every line parsed as exactly one
    object; else None (the other ways are tried). Returns one row per block: a request
    holding that block's items."""
    import mmap

    found = _request_items(buf, first)
    if found is None:
        return None
    key, start, end, tail_len = found
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    if len(mm) != len(buf):
        return None
    src = np.frombuffer(mm, np.uint8)  # buf's pages are never read: one mapping in memory, not two
    nls, scratch = [], np.empty(min(_BLOCK, end - start), bool)
    for a in range(start, end, len(scratch)):
        b = min(a + len(scratch), end)
        np.equal(src[a:b], 10, out=scratch[:b - a])
        nl = np.flatnonzero(scratch[:b - a]) + a
        if len(nl):
            if a == start and (src[nl[0] - 1] != 44 or not _starts_item(src, nl[:1])):
                return None  # not one item per line: leave it to the other ways, fast
            nls.append(nl)
    del scratch
    nl = np.concatenate(nls) if nls else np.zeros(0, np.int64)
    cores = max(os.cpu_count() or 1, 1)
    if len(nl) < 2 * cores:
        return None
    cr = src[nl - 1] == 13  # CRLF
    comma = nl - 1 - cr
    if not ((src[comma] == 44).all() and _starts_item(src, nl)):
        return None
    bounds = np.concatenate([[first], nl, [len(buf)]])
    longest = int(np.diff(bounds).max())
    src[first:start] = 32  # {"resourceSpans":[
    src[end:end + tail_len] = 32  # ]} (and what follows it)
    src[comma] = 32
    del src
    if not _utf8_ok(pa.py_buffer(mm)):  # blanking ASCII keeps UTF-8 as valid as it was
        return None
    step = _piece_step(end - start)
    try:
        tab = pj.read_json(pa.BufferReader(pa.py_buffer(mm)),
                           read_options=pj.ReadOptions(block_size=max(step, longest + 64)),
                           parse_options=pj.ParseOptions(newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if tab.num_rows != len(nl) + 1 or tab.num_columns == 0:
        return None
    key = key.decode()
    items = tab.to_struct_array()
    del tab
    schema = pa.schema([pa.field(key, pa.list_(items.type))])
    if _too_deep(schema):
        return None
    docs = pa.chunked_array([pa.StructArray.from_arrays(
        [pa.ListArray.from_arrays(pa.array([0, len(c)], pa.int32()), c)], [key]) for c in items.chunks],
        pa.struct([pa.field(key, pa.list_(items.type))]))
    return docs, _extra_fields(schema), True


def _starts_item(src: np.ndarray, nl: np.ndarray) -> bool:
    """Whether each line break in ``nl`` is followed by ``{"resource"`` (a new item)."""
    after = np.minimum(nl[:, None] + 1 + np.arange(len(_ITEM)), len(src) - 1)
    return bool((src[after] == _ITEM).all())


class _Split:
    """One big request rewritten as JSON lines, one line per piece of its resource list."""

    def __init__(self, data: pa.Buffer, pieces: int, key: str) -> None:
        self.data, self.pieces, self.key = data, pieces, key


def _split_document(buf: pa.Buffer, first: int) -> tuple[Any, pj.ReadOptions, bool, bool] | None:
    """A big single request ``{"resourceSpans": [item, item, …]}`` cut between items into
    pieces of about :data:`_BLOCK` bytes, each written as its own one-line request
    ``{"resourceSpans": [items…]}``, so that ``pyarrow.json`` parses the pieces in parallel.

    Cuts are put only before ``{"resource":`` following ``},`` (where a new item of the
    resource list starts); a cut anywhere else (deeper in the document, or in a string) leaves
    a piece that is not one JSON object with that one key, which the caller checks, falling
    back to the whole document. The pieces are copied with their line breaks as spaces, which
    is safe only where a break is white space between items: so only files whose line breaks
    all come right before an item (one item per line, or no breaks at all) are split.
    """
    found = _request_items(buf, first)
    if found is None:
        return None
    key, start, end, tail_len = found
    mv = memoryview(buf)
    src = np.frombuffer(buf, np.uint8)
    ranges = []
    a = start
    step = _piece_step(end - start)
    pos = start + step
    while pos < end:
        m = _NEXT.search(mv, pos, end)
        if m is None:
            break
        ranges.append((a, m.start() + 1))
        a = m.end()
        pos = a + step
    ranges.append((a, end))
    if len(ranges) < 2:
        return None
    pre, suf = b'{"' + key + b'":[', b"]}\n"
    total = sum(b - a for a, b in ranges) + len(ranges) * (len(pre) + len(suf))
    dest = pa.allocate_buffer(total)  # from Arrow's pool: pages the previous file freed are reused
    out = np.frombuffer(dest, np.uint8)
    x = 0
    npre, nsuf = np.frombuffer(pre, np.uint8), np.frombuffer(suf, np.uint8)
    for a, b in ranges:
        out[x:x + len(pre)] = npre
        x += len(pre)
        seg = out[x:x + b - a]
        np.copyto(seg, src[a:b])
        nl = np.flatnonzero(seg == 10)
        if len(nl):  # line breaks: only right before an item
            if not _starts_item(src, nl + a):
                return None
            seg[nl] = 32
        x += b - a
        out[x:x + len(suf)] = nsuf
        x += len(suf)
    longest = max(b - a for a, b in ranges) + len(pre) + len(suf)
    data = _Split(dest, len(ranges), key.decode())
    return data, pj.ReadOptions(block_size=longest + 64), False, False


_MAX_DEPTH = 48  # nesting of the OTLP schema itself is 12; AnyValues nest further


def _too_deep(schema: pa.Schema) -> bool:
    """Whether any column type nests deeper than :data:`_MAX_DEPTH` (checked without recursion)."""
    stack = [(f.type, 1) for f in schema]
    while stack:
        t, d = stack.pop()
        if d > _MAX_DEPTH:
            return True
        stack.extend((t.field(i).type, d + 1) for i in range(t.num_fields))
    return False


def _utf8_ok(buf: pa.Buffer) -> bool:
    """Whether the whole buffer is valid UTF-8 (Arrow's vectorised validation, no copy)."""
    offs = pa.py_buffer(np.array([0, len(buf)], dtype=np.int64))
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, offs, buf])
    try:
        raw.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _first_nonspace(buf: pa.Buffer) -> int:
    """Offset of the first non-white-space byte (-1: none)."""
    step = 65536
    for start in range(0, len(buf), step):
        chunk = buf.slice(start, min(step, len(buf) - start)).to_pybytes()
        stripped = chunk.lstrip(b" \t\r\n")
        if stripped:
            return start + len(chunk) - len(stripped)
    return -1


def _extra_fields(schema: pa.Schema) -> list[str]:
    out: list[str] = []

    def walk(t: pa.DataType, ref: pa.DataType, path: str) -> None:
        if pa.types.is_list(t) and pa.types.is_list(ref):
            walk(t.value_type, ref.value_type, path)
        elif pa.types.is_struct(t) and pa.types.is_struct(ref):
            for i in range(t.num_fields):
                f = t.field(i)
                j = ref.get_field_index(f.name)
                if j < 0:
                    out.append(f"{path}{f.name}")
                else:
                    walk(f.type, ref.field(j).type, f"{path}{f.name}.")

    for f in schema:
        if SCHEMA.get_field_index(f.name) < 0:
            out.append(f.name)
        else:
            walk(f.type, SCHEMA.field(f.name).type, f"{f.name}.")
    # nested AnyValues (arrays of arrays, kvlists in arrays) are expected, not extra; unknown
    # fields of a span or log record itself are kept in its attrs (see _unknown_part)
    return [p for p in out if "Value." not in p and not p.endswith(("arrayValue", "kvlistValue"))
            and not re.search(r"\.(spans|logRecords)\.[^.]+$", p)]


def _unknown_part(recs: pa.Array, known: pa.DataType) -> list[Part]:
    """Fields of a span/log record outside the OTLP schema: attrs under their own key (scalars
    as text, objects and arrays as compact JSON)."""
    if not pa.types.is_struct(recs.type):
        return []
    parts = []
    for i in range(recs.type.num_fields):
        f = recs.type.field(i)
        if known.get_field_index(f.name) >= 0:
            continue
        col = field(recs, f.name)
        if pa.types.is_nested(f.type):
            has = valid(col)
            idx = np.flatnonzero(has)
            texts = [orjson.dumps(v).decode() for v in col.take(pa.array(idx)).to_pylist()]
            vals = pa.nulls(len(col), pa.string())
            if len(idx):
                vals = pc.replace_with_mask(vals, pa.array(has), pa.array(texts, pa.string()))
            parts.append(scalar_part(f.name, vals, has))
        else:
            parts.append(scalar_part(f.name, as_str(col)))
    return parts


def _sev_number(num: pa.Array) -> pa.Array:
    v = np_int(num)
    ok = valid(num) & (v >= 1) & (v <= 24)
    words = np.array([None, "trace", "debug", "info", "warning", "error", "critical"], dtype=object)
    idx = np.where(ok, (np.clip(v, 1, 24) - 1) // 4 + 1, 0)
    return pa.array(words[idx], pa.string())


# --------------------------------------------------------------------------- reading


def _read(inp: Input) -> ReadResult:
    if (inp.size or 0) > 2 * _BLOCK:  # a big file: its scratch in small pages (see small_pages)
        with small_pages():
            return _read_all(inp)
    return _read_all(inp)


def _read_all(inp: Input) -> ReadResult:
    docs, dline, doff, rej_docs, notes = _parse(inp)
    # the bytes are parsed: unmap them. The parser's scratch stays with the allocator until the
    # file is built (release_memory below): handing it back here made the build and the next
    # file's parse fault ~30k fresh pages again on the 1M-span workload, at the same peak RSS
    inp.release()
    nd = len(docs)
    dline = dline if dline is not None else np.full(nd, -1, np.int64)
    doff = doff if doff is not None else np.full(nd, -1, np.int64)
    pending: list[list[Kind]] = []
    rejects = [rej_docs]
    meta_extra: dict[str, Any] = {}
    hosts: set[str] = set()
    b64 = 0
    emitted = 0
    records = n_bad_docs = rej_docs.num_rows if rej_docs is not None else 0
    for kind, mid, scope in _VARIANTS:
        res = _read_kind(inp, docs, dline, doff, kind, mid, scope, records - n_bad_docs)
        if res is None:
            continue
        kinds, rej, n_rec, n_ok, info = res
        if mid.startswith("instrumentationLibrary") and n_rec:
            notes.append(f"pre-1.0 OTLP ({mid}/{scope}) read as scopes")
        pending.extend(kinds)
        rejects.append(rej)
        records += n_rec
        emitted += n_ok
        b64 += info.pop("base64_ids", 0)
        hosts |= info.pop("hosts", set())
        meta_extra.update(info)
    if b64:
        notes.append(f"{b64} ids were base64 (converted to hex)")
    # the rows are built once the parsed documents are gone: what the rows still need of them
    # (names, attribute keys) is referenced, the rest (raw ids, times, values…) is freed first
    del docs, res
    kinds = None
    tables = []
    while pending:
        tables.append(build_rows(pending.pop(0)))
    events = pa.concat_tables(tables) if tables else conform({"ts_src": pa.array([], pa.int64())})
    meta: dict[str, Any] = {"clock": "realtime", "assumed": {}, "extra": meta_extra}
    if len(hosts) == 1:
        meta["host"] = next(iter(hosts))
    if notes:
        meta["note"] = "; ".join(notes)
    if records >= 1 << 16:  # a big file: its parsed documents and the build's scratch are freed
        release_memory()
    return ReadResult(events=events, records=records, emitted=emitted, rejects=concat_rejects(rejects), meta=meta)


#: what _spans/_logs return: the rows to build (one list of kinds per table), rejects, records,
#: emitted, counts for the source metadata
_KindResult = tuple[list[list[Kind]], "pa.Table | None", int, int, dict[str, Any]]


#: (records, scope list, scope key): OTLP 1.0 names, and the pre-1.0 ``instrumentationLibrary``
#: names older collectors and SDKs wrote
_VARIANTS = (("spans", "scopeSpans", "scope"), ("logs", "scopeLogs", "scope"),
             ("spans", "instrumentationLibrarySpans", "instrumentationLibrary"),
             ("logs", "instrumentationLibraryLogs", "instrumentationLibrary"))


def _read_kind(inp: Input, docs: pa.Array, dline: np.ndarray, doff: np.ndarray, kind: str, mid: str,
               scope: str, first_elem: int) -> _KindResult | None:
    """The spans (or log records) of every request, with their resource and scope."""
    top, leaf = ("resourceSpans", "spans") if kind == "spans" else ("resourceLogs", "logRecords")
    if not len(docs) or docs.type.get_field_index(top) < 0:
        return None
    rs, rs_doc = flatten(field(docs, top))
    if not len(rs) or rs.type.get_field_index(mid) < 0:
        return None
    res = field(rs, "resource")
    res_part = _kv(field(res, "attributes"))
    nrs = len(rs)
    service = lookup(res_part, "service.name", nrs)
    host = lookup(res_part, "host.name", nrs)
    pid = as_int(lookup(res_part, "process.pid", nrs))
    res_part = Part(res_part.offsets, pc.binary_join_element_wise(pa.scalar("resource."), res_part.keys, ""),
                    res_part.vals)
    ss, ss_rs = flatten(field(rs, mid))
    sc = field(ss, scope)
    sc_parts = [
        scalar_part("otel.scope.name", null_where(as_str(field(sc, "name", len(ss))), ~_nonempty(field(sc, "name", len(ss))))),
        scalar_part("otel.scope.version", null_where(as_str(field(sc, "version", len(ss))),
                                                     ~_nonempty(field(sc, "version", len(ss))))),
        _kv(field(sc, "attributes"), "scope."),
    ]
    recs, r_ss = flatten(field(ss, leaf))
    n = len(recs)
    if n == 0:
        return [], None, 0, 0, {}
    r_rs = ss_rs[r_ss]
    r_doc = rs_doc[r_rs]
    line = dline[r_doc]
    line_col = pa.array(line, mask=line < 0)
    elem = np.arange(first_elem, first_elem + n, dtype=np.int64)  # JSON element index in the file
    common_parts = [_rows(p, r_ss) for p in sc_parts] + [_rows(res_part, r_rs)]
    svc = service.take(pa.array(r_rs))
    rec_host = host.take(pa.array(r_rs))
    rec_pid = pid.take(pa.array(r_rs))
    entity = pc.binary_join_element_wise(pa.scalar("service/"), svc, "")
    hosts = {h for h in pc.unique(rec_host).to_pylist() if h}
    base = {"category": svc, "host": rec_host, "pid": rec_pid, "entity": entity, "line": line_col, "offset": elem}
    if kind == "spans":
        return _spans(inp, recs, n, base, common_parts, line, doff[r_doc], hosts)
    return _logs(inp, recs, n, base, common_parts, line, doff[r_doc], hosts)


def _nonempty(a: pa.Array) -> np.ndarray:
    s = as_str(a)
    return np.asarray(pc.fill_null(pc.greater(pc.utf8_length(s), 0), False).to_numpy(zero_copy_only=False), dtype=bool)


def _spans(inp: Input, sp: pa.Array, n: int, base: dict[str, Any], common_parts: list[Part],
           line: np.ndarray, off: np.ndarray, hosts: set[str]) -> _KindResult:
    """Span rows, plus instants (events), flows (links) and loss rows (dropped counts)."""
    trace_id, c1 = hex_ids(field(sp, "traceId", n))
    span_id, c2 = hex_ids(field(sp, "spanId", n))
    parent_id, c3 = hex_ids(field(sp, "parentSpanId", n))
    start = as_int(field(sp, "startTimeUnixNano", n))
    end = as_int(field(sp, "endTimeUnixNano", n))
    s_np, e_np = np_int(start), np_int(end)
    ok = valid(start) & (s_np > 0)
    dur = pa.array(e_np - s_np, mask=~(valid(end) & (e_np > 0)))
    status = field(sp, "status")
    code = _enum(field(status, "code", n), _STATUS, "STATUS_CODE_", True)
    code = pc.fill_null(code, "UNSET")
    err = np.asarray(pc.equal(code, "ERROR").to_numpy(zero_copy_only=False), dtype=bool)
    smsg = as_str(field(status, "message", n))
    smsg = null_where(smsg, ~_nonempty(smsg))
    kind_w = _enum(field(sp, "kind", n), _KINDS, "SPAN_KIND_", False)
    dropped = {k: as_int(field(sp, k, n)) for k in ("droppedAttributesCount", "droppedEventsCount", "droppedLinksCount")}
    ts_state = as_str(field(sp, "traceState", n))
    parts = [
        _kv(field(sp, "attributes")),
        scalar_part("span.kind", kind_w),
        scalar_part("otel.status_code", code),
        scalar_part("traceState", null_where(ts_state, ~_nonempty(ts_state))),
        scalar_part("flags", as_str(field(sp, "flags", n))),
    ] + [scalar_part(k, v, valid(v) & (np_int(v) > 0)) for k, v in dropped.items()] + _unknown_part(sp, _SPAN) \
        + common_parts
    cols = dict(base)
    cols.update({
        "ts_src": s_np, "ts_prec": 1, "dur": dur, "kind": "span",
        "name": as_str(field(sp, "name", n)), "severity": choose(err, "error", None),
        "state": choose(err, "error", "ok"), "trace_id": trace_id, "span_id": span_id,
        "parent_id": parent_id, "message": smsg,
    })
    keep = np.flatnonzero(ok)
    kinds = [Kind(cols, n, parts, None if len(keep) == n else keep)]
    shared = {k: cols[k] for k in ("category", "host", "pid", "entity", "line", "offset", "trace_id", "span_id")}
    # span events → instants
    ev, ev_sp = flatten(field(sp, "events"))
    n_ev = 0
    if len(ev):
        sel = ok[ev_sp]
        ev_parts = [_kv(field(ev, "attributes"))]
        da = as_int(field(ev, "droppedAttributesCount", len(ev)))
        ev_parts.append(scalar_part("droppedAttributesCount", da, valid(da) & (np_int(da) > 0)))
        t = as_int(field(ev, "timeUnixNano", len(ev)))
        t_np = np_int(t)
        tok = valid(t) & (t_np > 0)
        ev_parts.append(scalar_part("tk.time", choose(tok, None, "missing: the span's start")))
        name = as_str(field(ev, "name", len(ev)))
        name = null_where(name, ~_nonempty(name))
        ecols = _take(shared, ev_sp)
        ecols.update({
            "ts_src": np.where(tok, t_np, s_np[ev_sp]), "ts_prec": 1, "kind": "instant", "name": name,
            "severity": choose(np.asarray(pc.fill_null(pc.equal(name, "exception"), False)), "error", None),
        })
        keep_ev = np.flatnonzero(sel)
        n_ev = len(keep_ev)
        kinds.append(Kind(ecols, len(ev), ev_parts, None if n_ev == len(ev) else keep_ev))
    # links → flows
    lk, lk_sp = flatten(field(sp, "links"))
    n_lk = 0
    if len(lk):
        m = len(lk)
        ltid, c4 = hex_ids(field(lk, "traceId", m))
        lsid, c5 = hex_ids(field(lk, "spanId", m))
        lts = as_str(field(lk, "traceState", m))
        lparts = [_kv(field(lk, "attributes")), scalar_part("link.trace_id", ltid),
                  scalar_part("traceState", null_where(lts, ~_nonempty(lts))),
                  scalar_part("flags", as_str(field(lk, "flags", m)))]
        da = as_int(field(lk, "droppedAttributesCount", m))
        lparts.append(scalar_part("droppedAttributesCount", da, valid(da) & (np_int(da) > 0)))
        lcols = _take(shared, lk_sp)
        lcols.update({"ts_src": s_np[lk_sp], "ts_prec": 1, "kind": "flow", "name": "link",
                      "flow_id": lsid, "flow_dir": "in"})
        keep_lk = np.flatnonzero(ok[lk_sp])
        n_lk = len(keep_lk)
        kinds.append(Kind(lcols, m, lparts, None if n_lk == m else keep_lk))
        c2 += c4 + c5
    # dropped counts → loss rows
    n_loss = 0
    for k, v in dropped.items():
        vv = np_int(v)
        sel = np.flatnonzero(ok & valid(v) & (vv > 0))
        if not len(sel):
            continue
        what = k.removeprefix("dropped").removesuffix("Count").lower()
        lc = _take(shared, sel)
        lc.update({"ts_src": s_np[sel], "ts_prec": 1, "kind": "loss",
                   "name": f"dropped {what}", "value": vv[sel].astype(np.float64),
                   "message": pa.array([f"the producer dropped {c} {what}" for c in vv[sel]], pa.string())})
        n_loss += len(sel)
        kinds.append(Kind(lc, len(sel), []))
    bad = np.flatnonzero(~ok)
    rej = rejects_for(inp, bad, np.where(line < 0, 0, line), off, "span without a start time (startTimeUnixNano)",
                      sp) if len(bad) else None
    info = {"spans": int(len(keep)), "span_events": n_ev, "links": n_lk, "loss_rows": n_loss,
            "base64_ids": c1 + c2 + c3, "hosts": hosts}
    return [kinds], rej, n, int(len(keep)), info


def _logs(inp: Input, lr: pa.Array, n: int, base: dict[str, Any], common_parts: list[Part],
          line: np.ndarray, off: np.ndarray, hosts: set[str]) -> _KindResult:
    """Log rows, plus loss rows for dropped attribute counts."""
    t = as_int(field(lr, "timeUnixNano", n))
    o = as_int(field(lr, "observedTimeUnixNano", n))
    t_np, o_np = np_int(t), np_int(o)
    has_t = valid(t) & (t_np > 0)
    has_o = valid(o) & (o_np > 0)
    ok = has_t | has_o
    ts = np.where(has_t, t_np, o_np)
    trace_id, c1 = hex_ids(field(lr, "traceId", n))
    span_id, c2 = hex_ids(field(lr, "spanId", n))
    num_raw = as_str(field(lr, "severityNumber", n))
    num = as_int(num_raw)
    text = as_str(field(lr, "severityText", n))
    # enum names (SEVERITY_NUMBER_WARN2) as some encoders write them: the word is the level
    word = pc.replace_substring_regex(num_raw, r"^SEVERITY_NUMBER_([A-Za-z]+)\d*$", r"\1")
    sev = pc.coalesce(_sev_number(num), *([normalize_severity(w).cast(pa.string()) for w in (word, text)] if n else []))
    body = _anyvalue_str(field(lr, "body"))
    ev_name = as_str(field(lr, "eventName", n))
    ev_name = null_where(ev_name, ~_nonempty(ev_name))
    da = as_int(field(lr, "droppedAttributesCount", n))
    parts = [
        _kv(field(lr, "attributes")),
        scalar_part("severityText", null_where(text, ~_nonempty(text))),
        scalar_part("severityNumber", num_raw),
        scalar_part("observedTimeUnixNano", as_str(o), has_o),
        scalar_part("tk.time", choose(has_t, None, "observedTimeUnixNano (timeUnixNano unset)")),
        scalar_part("flags", as_str(field(lr, "flags", n))),
        scalar_part("droppedAttributesCount", da, valid(da) & (np_int(da) > 0)),
    ] + _unknown_part(lr, _LOG) + common_parts
    cols = dict(base)
    cols.update({
        "ts_src": ts, "ts_prec": 1, "kind": "log", "name": pc.coalesce(ev_name, body),
        "message": body, "severity": sev, "trace_id": trace_id, "span_id": span_id,
    })
    keep = np.flatnonzero(ok)
    kinds = [Kind(cols, n, parts, None if len(keep) == n else keep)]
    sel = np.flatnonzero(ok & valid(da) & (np_int(da) > 0))
    if len(sel):
        shared = {k: cols[k] for k in ("category", "host", "pid", "entity", "line", "offset", "trace_id", "span_id")}
        lc = _take(shared, sel)
        dv = np_int(da)[sel]
        lc.update({"ts_src": ts[sel], "ts_prec": 1, "kind": "loss",
                   "name": "dropped attributes", "value": dv.astype(np.float64),
                   "message": pa.array([f"the producer dropped {c} attributes" for c in dv], pa.string())})
        kinds.append(Kind(lc, len(sel), []))
    bad = np.flatnonzero(~ok)
    rej = rejects_for(inp, bad, np.where(line < 0, 0, line), off,
                      "log record without timeUnixNano or observedTimeUnixNano", lr) if len(bad) else None
    return [kinds], rej, n, int(len(keep)), {"logs": int(len(keep)), "base64_ids": c1 + c2, "hosts": hosts}


# --------------------------------------------------------------------------- sniffing

_FIRST_KEY = re.compile(rb'^\s*\{\s*"resource(Spans|Logs)"\s*:\s*\[')
_ANY_KEY = re.compile(rb'"resource(Spans|Logs)"\s*:\s*\[')
_SCOPE_KEY = re.compile(rb'"scope(Spans|Logs)"\s*:|"instrumentationLibrary(Spans|Logs)"\s*:')


def _sniff(head: bytes, name: str) -> float:
    """OTLP/JSON: a JSON object whose key is ``resourceSpans``/``resourceLogs``."""
    if not head.lstrip().startswith(b"{"):
        return 0.0
    if _FIRST_KEY.match(head):
        return 0.95
    if _ANY_KEY.search(head) and _SCOPE_KEY.search(head):
        return 0.85
    return 0.0


register(
    Reader(
        name="otlp",
        description="OpenTelemetry OTLP/JSON traces and logs (export requests; file exporter JSON lines)",
        sniff=_sniff,
        read=_read,
        extensions=(".json", ".jsonl"),
    )
)
