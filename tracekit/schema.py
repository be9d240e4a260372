"""The canonical tables, defined once: events, rejects, sources.

Every reader fills (a subset of) :data:`EVENT_SCHEMA`; :func:`conform` adds the missing columns
as nulls and casts the rest, so a reader only writes what its format carries.

Times are int64 nanoseconds end to end. ``ts_src`` is the time exactly as the source wrote it,
in the source's own clock domain (epoch ns for wall clocks, ns since boot for a boot clock, ns
since the trace's start for a relative clock); ``ts`` is the aligned UTC time that the
:class:`~tracekit.Timeline` derives from it (``ts = ts_src + offset + drift * (ts_src - t0)``).

``attrs`` encoding (``map<string, string>``): everything a record carries that has no column.

* keys are the record's own top-level keys, verbatim (a literal ``"http.method"`` key stays
  ``"http.method"``);
* a string value is stored as the string itself;
* any other value (number, boolean, ``null``, object, array) is stored as its compact JSON text:
  ``42``, ``true``, ``null``, ``{"method":"GET"}``. Nested objects are *not* flattened, so a
  literal ``"http.method"`` key and a nested ``{"http": {"method": ...}}`` cannot collide: they
  are the two keys ``http.method`` and ``http``;
* formats whose attributes are typed key/value lists (OTLP, Jaeger tags) store each attribute
  under its own key with a prefix naming where it came from (``resource.``, ``scope.``);
* reader-made keys (not from the record) start with ``tk.`` (e.g. ``tk.unmatched``).

Example::

    >>> import tracekit as tk
    >>> tk.schema.EVENT_SCHEMA.field("ts").type
    TimestampType(timestamp[ns, tz=UTC])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "EVENT_SCHEMA",
    "REJECT_SCHEMA",
    "SOURCE_SCHEMA",
    "KINDS",
    "SEVERITIES",
    "FLOW_DIRS",
    "CLOCKS",
    "conform",
    "empty_events",
    "normalize_severity",
]

_DICT = pa.dictionary(pa.int32(), pa.string())
ATTRS_TYPE = pa.map_(pa.string(), pa.string())

#: The canonical event table. See DESIGN.md for the meaning of each column.
EVENT_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("ts_src", pa.int64(), nullable=False),
        pa.field("ts_prec", pa.duration("ns")),
        pa.field("seq", pa.uint64(), nullable=False),
        pa.field("dur", pa.duration("ns")),
        pa.field("source", _DICT, nullable=False),
        pa.field("kind", _DICT, nullable=False),
        pa.field("name", pa.string()),
        pa.field("category", pa.string()),
        pa.field("severity", _DICT),
        pa.field("value", pa.float64()),
        pa.field("host", pa.string()),
        pa.field("pid", pa.int64()),
        pa.field("tid", pa.int64()),
        pa.field("entity", pa.string()),
        pa.field("state", pa.string()),
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("parent_id", pa.string()),
        pa.field("flow_id", pa.string()),
        pa.field("flow_dir", _DICT),
        pa.field("message", pa.string()),
        pa.field("attrs", ATTRS_TYPE),
        pa.field("file", _DICT),
        pa.field("line", pa.int64()),
        pa.field("line_end", pa.int64()),
        pa.field("offset", pa.int64()),
    ]
)

#: ``kind`` vocabulary.
KINDS = ("span", "instant", "log", "counter", "state", "sample", "flow", "marker", "loss")
#: ``severity`` vocabulary, least to most severe.
SEVERITIES = ("trace", "debug", "info", "notice", "warning", "error", "critical")
#: ``flow_dir`` vocabulary.
FLOW_DIRS = ("out", "in", "step")
#: clock kinds a source's ``ts_src`` may be counted in.
CLOCKS = ("realtime", "monotonic", "boot", "relative", "unknown")

#: One row per input record that could not be read.
REJECT_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("offset", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("raw", pa.string()),
    ]
)

#: One row per input (file, archive member, or a skipped file).
SOURCE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("file", pa.string()),
        pa.field("format", pa.string()),
        pa.field("status", pa.string()),  # loaded | skipped | failed
        pa.field("note", pa.string()),  # why skipped/failed, or reader remarks
        pa.field("host", pa.string()),
        pa.field("clock", pa.string()),  # one of CLOCKS
        pa.field("domain", pa.string()),  # clock domain key: host × clock × boot
        pa.field("assumed", ATTRS_TYPE),  # every value the reader assumed (year, tz, date, ...)
        pa.field("anchor", pa.string()),  # how ts_src was put on UTC at load time, if it was
        pa.field("offset", pa.duration("ns")),  # applied: ts = ts_src + offset + drift*(ts_src-t0)
        pa.field("drift_ppm", pa.float64()),
        pa.field("t0", pa.int64()),
        # the interval of `offset` (from alignment; equal to it when exact or unknown): an
        # event's true time lies in [ts + offset_lo - offset, ts + offset_hi - offset + ts_prec]
        pa.field("offset_lo", pa.duration("ns")),
        pa.field("offset_hi", pa.duration("ns")),
        pa.field("aligned", pa.bool_()),  # True when ts is on UTC (anchor or alignment)
        pa.field("records", pa.int64()),
        pa.field("emitted", pa.int64()),
        pa.field("merged", pa.int64()),
        pa.field("metadata", pa.int64()),
        pa.field("rejected", pa.int64()),
        pa.field("rows", pa.int64()),
        pa.field("ts_min", pa.timestamp("ns", tz="UTC")),
        pa.field("ts_max", pa.timestamp("ns", tz="UTC")),
        pa.field("bytes", pa.int64()),
        pa.field("seconds", pa.float64()),
    ]
)


def _null_column(field: pa.Field, n: int) -> pa.Array:
    return pa.nulls(n, type=field.type)


def _as_array(values: Any, typ: pa.DataType, n: int, name: str) -> pa.Array | pa.ChunkedArray:
    """Turn a reader's column (Arrow array, numpy array, list or scalar) into ``typ``."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values
    elif isinstance(values, np.ndarray):
        arr = pa.array(values)
    elif isinstance(values, (str, int, float)) or values is None:
        if pa.types.is_dictionary(typ):
            return pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, dtype=np.int32)), pa.array([values], pa.string())
            ).cast(typ)
        return _cast(pa.repeat(pa.scalar(values, type=_plain(typ)), n), typ, name)
    else:
        arr = pa.array(values, type=_plain(typ) if not pa.types.is_map(typ) else typ)
    if len(arr) != n:
        raise ValueError(f"column {name!r} has {len(arr)} values, expected {n}")
    return _cast(arr, typ, name)


def _plain(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _cast(arr: pa.Array | pa.ChunkedArray, typ: pa.DataType, name: str):
    if arr.type.equals(typ):
        return arr
    if pa.types.is_dictionary(typ):
        if pa.types.is_dictionary(arr.type):
            return arr.cast(typ)
        return pc.dictionary_encode(arr.cast(pa.string()))
    if pa.types.is_duration(typ) and pa.types.is_integer(arr.type):
        return arr.cast(pa.int64()).view(typ) if isinstance(arr, pa.Array) else arr.cast(typ)
    if pa.types.is_string(typ) and pa.types.is_large_string(arr.type):
        return arr.cast(typ)
    return arr.cast(typ)


def conform(columns: Mapping[str, Any] | pa.Table, n: int | None = None) -> pa.Table:
    """Return a table in :data:`EVENT_SCHEMA` from a reader's columns.

    Missing columns become nulls; ``ts`` defaults to ``ts_src`` read from the epoch; ``seq``
    is filled with 0 (the Timeline numbers rows in load order). Unknown column names raise.

    Example::

        >>> t = conform({"ts_src": [1, 2], "kind": "log", "name": ["a", "b"]})
        >>> t.num_rows, t.schema.names[:3]
        (2, ['ts', 'ts_src', 'ts_prec'])
    """
    if isinstance(columns, pa.Table):
        columns = {name: columns.column(name) for name in columns.column_names}
    unknown = set(columns) - set(EVENT_SCHEMA.names)
    if unknown:
        raise ValueError(f"not canonical columns: {sorted(unknown)}")
    if n is None:
        if "ts_src" not in columns:
            raise ValueError("conform() needs ts_src or n")
        n = len(columns["ts_src"])
    arrays = []
    for field in EVENT_SCHEMA:
        name = field.name
        if name in columns and columns[name] is not None:
            arrays.append(_as_array(columns[name], field.type, n, name))
        elif name == "ts":
            src = _as_array(columns["ts_src"], pa.int64(), n, "ts_src")
            arrays.append(src.cast(pa.int64()).view(field.type) if isinstance(src, pa.Array)
                          else src.cast(field.type))
        elif name == "seq":
            arrays.append(pa.array(np.zeros(n, dtype=np.uint64)))
        elif name == "attrs":
            arrays.append(_empty_maps(n))
        else:
            arrays.append(_null_column(field, n))
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)


def _empty_maps(n: int) -> pa.Array:
    """``n`` empty attrs maps (not nulls: an event always has a map, possibly empty)."""
    offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
    return pa.MapArray.from_arrays(offsets, pa.array([], pa.string()), pa.array([], pa.string()))


def empty_events() -> pa.Table:
    """An empty table in :data:`EVENT_SCHEMA`."""
    return EVENT_SCHEMA.empty_table()


_SEVERITY_WORDS = {
    # syslog numeric levels (RFC 5424) 0..7
    "0": "critical", "1": "critical", "2": "critical", "3": "error", "4": "warning",
    "5": "notice", "6": "info", "7": "debug",
    "emerg": "critical", "emergency": "critical", "panic": "critical", "alert": "critical",
    "crit": "critical", "critical": "critical", "fatal": "critical", "dpanic": "critical",
    "err": "error", "error": "error", "eror": "error", "severe": "error",
    "warn": "warning", "warning": "warning", "wrn": "warning",
    "notice": "notice", "info": "info", "information": "info", "informational": "info",
    "inf": "info", "debug": "debug", "dbug": "debug", "dbg": "debug", "trace": "trace",
    "trc": "trace", "verbose": "trace", "fine": "debug", "finer": "trace", "finest": "trace",
    # bunyan / pino numeric levels
    "10": "trace", "20": "debug", "30": "info", "40": "warning", "50": "error", "60": "critical",
    # OpenTelemetry severityNumber ranges are mapped by the OTLP reader itself
}


def normalize_severity(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Map a column of level words/numbers onto :data:`SEVERITIES` (unknown → null).

    Vectorised: the mapping runs over the column's distinct values only.

    Example::

        >>> normalize_severity(pa.array(["WARN", "info", "30", None, "DEBUG3"])).to_pylist()
        ['warning', 'info', 'info', None, 'debug']
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if len(values) == 0:
        return pa.array([], _DICT)
    enc = pc.dictionary_encode(values.cast(pa.string()))
    words = enc.dictionary.to_pylist()
    mapped = [_SEVERITY_WORDS.get(str(w).strip().lower()) if w is not None else None for w in words]
    # unknown words: try prefix ("warning:" / "INFO "), then without trailing digits (lnav DEBUG2)
    for i, (w, m) in enumerate(zip(words, mapped)):
        if m is None and w:
            head = str(w).strip().lower().rstrip(":").split()[0] if str(w).strip() else ""
            mapped[i] = _SEVERITY_WORDS.get(head) or _SEVERITY_WORDS.get(head.rstrip("0123456789"))
    idx = pc.take(pa.array(mapped, pa.string()), enc.indices)
    return pc.dictionary_encode(idx)
