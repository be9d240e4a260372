"""``tk.load``: inputs → readers → one Timeline."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _inputs, _pages, _select
from ._pages import small_pages
from .errors import OptionError, ParseError, TracekitError, UnknownFormatError
from .readers import get_reader, known, sniff
from .readers._base import Input, Reader, ReadResult, empty_rejects
from .schema import CLOCKS, EVENT_SCHEMA, REJECT_SCHEMA, SOURCE_SCHEMA, conform
from .timeline import Timeline, apply_clock

__all__ = ["load"]


def _progress(items: list, enabled: bool | None, desc: str):
    if enabled is False or len(items) < 2:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, disable=(enabled is None and len(items) < 20), leave=False)


def plan_inputs(paths: Any, format: str | None, reader_options: Mapping[str, Any]) -> tuple[list, bool]:
    """What :func:`load` will read: ``(item, reader or None, reason)`` per input, and whether a
    single input was given (then a refusal raises instead of becoming a skipped source).

    Checks that every keyword option is taken by at least one chosen reader.
    """
    forced: Reader | None = get_reader(format) if format is not None else None
    items = _inputs.expand(paths)
    single = len(items) == 1
    plans: list[tuple[Any, Reader | None, str]] = []
    for item in items:
        if isinstance(item, _inputs.Skipped):
            plans.append((item, None, item.reason))
            continue
        if forced is not None:
            plans.append((item, forced, ""))
            continue
        try:
            reader, _score = sniff(item)
        except ParseError as e:
            if single:
                raise
            plans.append((_inputs.Skipped(item.name, item.path, str(e), item.size), None, ""))
            continue
        if reader is None:
            try:
                empty = len(item.head(1)) == 0
            except OSError as e:
                plans.append((_inputs.Skipped(item.name, item.path, f"cannot read: {e}"), None, ""))
                continue
            if empty:
                reason = "empty file"
            else:
                reason = f"unknown format (no reader recognised its content; known: {', '.join(known())})"
            if single:
                raise UnknownFormatError(f"{item.path}: {reason}; pass format= to force one")
            plans.append((_inputs.Skipped(item.name, item.path, reason, item.size), None, reason))
            continue
        plans.append((item, reader, ""))

    # options: every option must be taken by at least one chosen reader
    chosen = {r.name: r for _, r, _ in plans if r is not None}
    taken = set().union(*(r.options for r in chosen.values())) if chosen else set()
    stray = set(reader_options) - taken
    if stray:
        listing = "; ".join(f"{n}: {', '.join(sorted(r.options)) or 'none'}" for n, r in sorted(chosen.items()))
        raise OptionError(
            f"no chosen reader takes option(s) {sorted(stray)}; readers' options: {listing or 'no readers chosen'}"
        )
    return plans, single


def load(
    paths: Any,
    format: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool | None = None,
    host: str | Mapping[str, str] | None = None,
    **reader_options: Any,
) -> Timeline:
    """Read dumps into a :class:`~tracekit.Timeline`.

    ``paths`` is a file, a folder (read recursively), a ``.tar``/``.tar.gz``/``.zip`` archive
    (read as a folder) or a list of them; ``.gz`` (and ``.zst`` with ``zstandard``) files are
    decompressed. Each file's reader is chosen from its content unless ``format=`` forces one.
    Reader options are keyword arguments (``time_field="when"``) or per source selector
    (``options={"*.jsonl": {"time_field": "when"}}``); a selector's value beats a global one.
    ``host`` names the machine of sources whose reader found none: a name for all of them, a
    mapping selector → name (both override what a reader found), or ``"{dir}"`` for the first
    folder of each source's name where the reader found none (a per-node layout such as
    ``node-a/syslog``); it decides the sources' clock domains.

    Example::

        >>> import tracekit as tk
        >>> tl = tk.load("data/demo-incident")                    # doctest: +SKIP
        >>> tl.sources.select(["source", "format", "rows"])       # doctest: +SKIP
    """
    per_sel = dict(options or {})
    plans, single = plan_inputs(paths, format, reader_options)
    size = sum(getattr(item, "size", 0) or 0 for item, reader, _ in plans if reader is not None)
    with small_pages() if size > _pages.BIG else contextlib.nullcontext():
        return _load(plans, single, per_sel, progress, host, paths, format, reader_options)


def _load(plans: list, single: bool, per_sel: dict, progress: bool | None, host: Any, paths: Any,
          format: str | None, reader_options: Mapping[str, Any]) -> Timeline:
    tables: list[pa.Table] = []
    rejects: list[pa.Table] = []
    srows: list[dict[str, Any]] = []
    for item, reader, members in _progress(_join_rotated(plans), progress, "reading"):
        if reader is None:
            srows.append(_skipped_row(item))
            continue
        inp: Input = item  # type: ignore[assignment]
        opts = {k: v for k, v in reader_options.items() if k in reader.options}
        sel_opts = _select.resolve_options(inp.name, reader.name, {}, per_sel)
        reader.check_options(sel_opts, f"options for {inp.name}")
        opts.update(sel_opts)
        t0 = time.perf_counter()
        try:
            parts = [_read_one(m, reader, opts) for m in members]
            ev, rej, row = _combine(inp, reader, parts) if len(parts) > 1 else parts[0]
        except TracekitError as e:
            if single:
                raise
            srows.append(_failed_row(inp, reader, str(e)))
            continue
        except Exception as e:  # a reader bug: never a bare traceback from deep inside
            err = ParseError(f"reader {reader.name!r} failed: {type(e).__name__}: {e}", file=inp.path)
            if single:
                raise err from e
            srows.append(_failed_row(inp, reader, str(err)))
            continue
        finally:
            for m in members:
                m.release()
        row["seconds"] = time.perf_counter() - t0
        ev = _apply_host(ev, row, inp.name, reader.name, host)
        tables.append(ev)
        rejects.append(rej)
        srows.append(row)
        del parts, ev, rej  # assemble() consumes `tables`: no other reference may keep a file's table

    params = {"paths": str(paths), "format": format, "options": dict(per_sel), **reader_options}
    return assemble(tables, rejects, srows, params)


def assemble(tables: list[pa.Table], rejects: list[pa.Table], srows: list[dict], params: dict) -> Timeline:
    """Concatenate per-source tables, number rows in load order and sort by (ts, seq).

    Memory: the per-source tables are consumed (the list is emptied), the sort takes from the
    chunked concatenation directly, and the chunks are joined one column at a time, so at most
    about one copy of the events plus its biggest column (or two copies, when rows move) exist
    at once.
    """
    if tables:
        events = pa.concat_tables(tables).unify_dictionaries()
        tables.clear()
    else:
        events = EVENT_SCHEMA.empty_table()
    n = events.num_rows
    seq = pa.chunked_array([pa.array(np.arange(n, dtype=np.uint64))]) if n else pa.chunked_array([], pa.uint64())
    ts = events.column("ts").cast(pa.int64()).to_numpy() if n else np.zeros(0, np.int64)
    events = events.set_column(events.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"), seq)
    order = np.argsort(ts, kind="stable")
    del ts
    if n and not np.all(order[1:] > order[:-1]):
        events = events.take(pa.array(order))
    del order
    # joined column by column, biggest first, each column's chunks freed once joined: one copy
    # of the events plus one column at a time, not two copies
    schema, cols = events.schema, events.columns
    del events
    sizes = [c.nbytes for c in cols]
    for i in sorted(range(len(cols)), key=lambda i: -sizes[i]):
        if cols[i].num_chunks != 1:
            held = [cols[i]]
            cols[i] = None
            cols[i] = _join(held)
            pa.default_memory_pool().release_unused()  # the old chunks' pages, for the next column
    events = pa.Table.from_arrays(cols, schema=schema)
    del cols
    rej = pa.concat_tables(rejects).combine_chunks() if rejects else REJECT_SCHEMA.empty_table()
    meta = {r["source"]: r.pop("_meta") for r in srows if "_meta" in r}
    sources = pa.Table.from_pylist(srows, schema=SOURCE_SCHEMA) if srows else SOURCE_SCHEMA.empty_table()
    return Timeline(events, sources, rej, params, meta=meta)


def _join(held: list[pa.ChunkedArray]) -> pa.Array:
    """One array from the chunks of the column in ``held`` (taken out of it). A map column
    (attrs) is joined child by child, the old keys freed before the values are joined, so
    that it is never held twice at once."""
    col = held.pop()
    if not pa.types.is_map(col.type) or col.null_count or col.num_chunks == 0:
        return col.combine_chunks()
    offs, keys, items, base = [], [], [], 0
    for ch in col.chunks:
        o = np.asarray(ch.offsets, dtype=np.int64)  # of this slice (keys/items are not sliced)
        keys.append(ch.keys.slice(o[0], o[-1] - o[0]))
        items.append(ch.items.slice(o[0], o[-1] - o[0]))
        offs.append(o[1:] - o[0] + base)
        base += int(o[-1] - o[0])
    if base >= 2**31:
        return col.combine_chunks()
    typ = col.type
    del col, ch
    k = pa.concat_arrays(keys)
    del keys
    pa.default_memory_pool().release_unused()
    v = pa.concat_arrays(items)
    del items
    off = pa.array(np.concatenate([np.zeros(1, np.int64)] + offs).astype(np.int32))
    return pa.MapArray.from_arrays(off, k, v, type=typ)


def _stamp_host(ev: pa.Table, host: str) -> pa.Table:
    """Fill events' missing ``host`` and the ``?`` host in entity names (``proc/?/12@…``)."""
    i = ev.schema.get_field_index("host")
    ev = ev.set_column(i, EVENT_SCHEMA.field("host"), pc.fill_null(ev.column("host"), host))
    j = ev.schema.get_field_index("entity")
    ent = pc.replace_substring_regex(ev.column("entity"), r"^([a-z]+)/\?/", f"\\1/{_re_escape(host)}/")
    return ev.set_column(j, EVENT_SCHEMA.field("entity"), ent)


def _apply_host(ev: pa.Table, row: dict, name: str, fmt: str, host: str | Mapping[str, str] | None) -> pa.Table:
    """Give source ``name`` the machine ``tk.load(host=...)`` names for it (an explicit name
    wins over the reader's; ``"{dir}"`` only fills a missing one): its sources row (host,
    domain, note) is updated in place and its events stamped."""
    given = _host_for(name, fmt, host)
    if not given or (row.get("host") and host == "{dir}"):
        return ev
    old = row.get("host") or "?"
    row["host"] = given
    row["domain"] = row["domain"].replace(f"host={old};", f"host={given};", 1)
    note = f"host {given!r} from tk.load(host=...)"
    row["note"] = f"{row['note']}; {note}" if row["note"] else note
    return _stamp_host(ev, given)


def _re_escape(s: str) -> str:
    return s.replace("\\", "\\\\")


def _host_for(name: str, fmt: str, host: str | Mapping[str, str] | None) -> str | None:
    if host is None:
        return None
    if isinstance(host, str):
        if host == "{dir}":
            return name.split("/", 1)[0] if "/" in name else None
        return host
    for sel, h in host.items():
        if _select.matches(sel, name, fmt, None):
            return h
    return None


_ROTATED = re.compile(r"^(?P<base>.+?)(?:\.(?P<num>\d{1,3}))?(?P<comp>\.(?:gz|zst|bz2|xz))?$")


def _join_rotated(plans: list) -> list[tuple[Any, Reader | None, list[Input]]]:
    """Group logrotate sets (``syslog``, ``syslog.1``, ``syslog.2.gz``) of readers that ask for
    it into one source named after the newest file; members are read oldest first."""
    out: list[tuple[Any, Reader | None, list[Input]]] = []
    groups: dict[tuple[str, str], list[tuple[int, Input]]] = {}
    order: list[tuple[str, str] | int] = []
    for i, (item, reader, _) in enumerate(plans):
        m = _ROTATED.match(item.name) if reader is not None and reader.rotated else None
        if m is None:
            order.append(i)
            continue
        key = (m.group("base"), reader.name)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((int(m.group("num") or 0), item))
    for k in order:
        if isinstance(k, int):
            item, reader, _ = plans[k]
            out.append((item, reader, [item] if reader is not None else []))
            continue
        members = [inp for _, inp in sorted(groups[k], key=lambda t: -t[0])]  # oldest first
        newest = members[-1]
        reader = next(r for it, r, _ in plans if it is newest)
        if len(members) == 1:
            out.append((newest, reader, members))
            continue
        head = Input(name=k[0], path=newest.path, opener=newest.opener, size=sum(m.size or 0 for m in members),
                     mtime=newest.mtime, fs_path=newest.fs_path)
        out.append((head, reader, members))
    return out


def _read_one(inp: Input, reader: Reader, opts: dict[str, Any]) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    res = reader.read(inp, **opts)
    if not isinstance(res, ReadResult):
        raise TypeError(f"reader {reader.name} returned {type(res).__name__}")
    return _finish(inp, reader, res)


def _combine(head: Input, reader: Reader, parts: list) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """One source from the members of a rotated set (each keeps its own file/line provenance)."""
    evs = [p[0] for p in parts]
    rejs = [p[1] for p in parts]
    rows = [p[2] for p in parts]
    n = sum(e.num_rows for e in evs)
    ev = pa.concat_tables(evs).unify_dictionaries().combine_chunks() if evs else EVENT_SCHEMA.empty_table()
    src = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([head.name]))
    ev = ev.set_column(ev.schema.get_field_index("source"), EVENT_SCHEMA.field("source"), src)
    rej = pa.concat_tables(rejs)
    if rej.num_rows:
        rej = rej.set_column(0, REJECT_SCHEMA.field("source"), pa.repeat(pa.scalar(head.name), rej.num_rows))
    row = dict(rows[-1])
    row["_meta"] = dict(rows[-1]["_meta"], members=[r["_meta"] for r in rows])
    row["source"] = head.name
    row["file"] = ", ".join(r["file"] for r in rows)
    for c in ("records", "emitted", "merged", "metadata", "rejected", "rows", "bytes"):
        row[c] = sum(r[c] or 0 for r in rows)
    mins = [r["ts_min"] for r in rows if r["ts_min"] is not None]
    maxs = [r["ts_max"] for r in rows if r["ts_max"] is not None]
    row["ts_min"] = min(mins) if mins else None
    row["ts_max"] = max(maxs) if maxs else None
    row["note"] = "; ".join(filter(None, [f"rotated set of {len(rows)} files, read oldest first"] +
                                   [r["note"] for r in rows]))
    return ev, rej, row


def _finish(inp: Input, reader: Reader, res: ReadResult) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """Check the accounting, conform the events, stamp source/file, apply a load-time anchor."""
    rej = res.rejects if res.rejects is not None else empty_rejects()
    nrej = rej.num_rows
    if res.records != res.emitted + res.merged + res.metadata + nrej:
        raise ParseError(
            f"accounting mismatch in reader {reader.name!r}: records={res.records} but emitted="
            f"{res.emitted} + merged={res.merged} + metadata={res.metadata} + rejected={nrej} "
            "(a tracekit bug: please report it)",
            file=inp.path,
        )
    ev = res.events if isinstance(res.events, pa.Table) and res.events.schema.equals(EVENT_SCHEMA) else conform(res.events)
    n = ev.num_rows
    meta = dict(res.meta)
    clock = meta.get("clock", "realtime")
    if clock not in CLOCKS:
        raise ParseError(f"reader {reader.name!r} gave unknown clock {clock!r}", file=inp.path)
    anchor_ns = meta.get("anchor_ns")
    offset = int(anchor_ns) if anchor_ns is not None else 0
    src_ts = ev.column("ts_src").combine_chunks()
    ts_np = apply_clock(src_ts.to_numpy(), offset, 0.0, 0)
    ev = ev.set_column(0, EVENT_SCHEMA.field("ts"), pa.array(ts_np).view(pa.timestamp("ns", tz="UTC")))
    src_dict = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([inp.name]))
    ev = ev.set_column(ev.schema.get_field_index("source"), EVENT_SCHEMA.field("source"), src_dict)
    if ev.column("file").null_count == n:
        fdict = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([inp.path]))
        ev = ev.set_column(ev.schema.get_field_index("file"), EVENT_SCHEMA.field("file"), fdict)
    if nrej:
        rej = rej.set_column(0, REJECT_SCHEMA.field("source"), pa.repeat(pa.scalar(inp.name), nrej))
        files = rej.column("file")
        if files.null_count:
            rej = rej.set_column(1, REJECT_SCHEMA.field("file"), pa.repeat(pa.scalar(inp.path), nrej))
    host = meta.get("host")
    aligned = clock == "realtime" or anchor_ns is not None
    if n:
        ts_col = ev.column("ts")
        mm = pc.min_max(ts_col)
        ts_min, ts_max = mm["min"].as_py(), mm["max"].as_py()
    else:
        ts_min = ts_max = None
    boot = meta.get("boot_id")
    domain = f"host={host or '?'};clock={clock}" + (f";boot={boot}" if boot else "")
    if clock == "relative":
        domain += f";source={inp.name}"
    assumed = {str(k): str(v) for k, v in (meta.get("assumed") or {}).items()}
    row = {
        "source": inp.name,
        "file": inp.path,
        "format": reader.name,
        "status": "loaded",
        "note": meta.get("note"),
        "host": host,
        "clock": clock,
        "domain": domain,
        "assumed": list(assumed.items()),
        "anchor": meta.get("anchor"),
        "offset": offset,
        "drift_ppm": 0.0,
        "t0": 0,
        "offset_lo": offset,
        "offset_hi": offset,
        "aligned": aligned,
        "records": res.records,
        "emitted": res.emitted,
        "merged": res.merged,
        "metadata": res.metadata,
        "rejected": nrej,
        "rows": n,
        "ts_min": ts_min,
        "ts_max": ts_max,
        "bytes": inp.size,
        "_meta": meta,
    }
    return ev, rej, row


def _skipped_row(item: _inputs.Skipped) -> dict[str, Any]:
    return {"source": item.name, "file": item.path, "status": "skipped", "note": item.reason,
            "assumed": [], "bytes": item.size, "records": 0, "emitted": 0, "merged": 0,
            "metadata": 0, "rejected": 0, "rows": 0}


def _failed_row(inp: Input, reader: Reader, message: str) -> dict[str, Any]:
    return {"source": inp.name, "file": inp.path, "format": reader.name, "status": "failed",
            "note": message, "assumed": [], "bytes": inp.size, "records": 0, "emitted": 0,
            "merged": 0, "metadata": 0, "rejected": 0, "rows": 0}
