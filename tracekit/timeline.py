"""The Timeline: every source's events in one canonical Arrow table, sorted by (ts, seq).

Timelines are immutable: methods that change times return a new Timeline.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _time
from .schema import EVENT_SCHEMA, REJECT_SCHEMA, SOURCE_SCHEMA

__all__ = ["Timeline", "Window", "apply_clock"]

_HTML_ROWS = 50


def apply_clock(ts_src: np.ndarray, offset_ns: int, drift_ppm: float, t0: int) -> np.ndarray:
    """``ts = ts_src + offset + drift · (ts_src − t0)`` in int64; only the small difference
    ``ts_src − t0`` meets a float.

    Example::

        >>> apply_clock(np.array([10**9]), -5, 0.0, 0).tolist()
        [999999995]
    """
    ts = ts_src + np.int64(offset_ns)
    if drift_ppm:
        ts = ts + np.rint((ts_src - np.int64(t0)).astype(np.float64) * (drift_ppm * 1e-6)).astype(np.int64)
    return ts


def _to_arrow(rel: Any) -> pa.Table:
    for meth in ("to_arrow_table", "fetch_arrow_table"):
        if hasattr(rel, meth):
            return getattr(rel, meth)()
    return rel.arrow()


class Timeline:
    """Events from every source, in the canonical schema, sorted by ``(ts, seq)``.

    Build one with :func:`tracekit.load`. Example::

        >>> import tracekit as tk
        >>> tl = tk.load("data/demo-incident")          # doctest: +SKIP
        >>> tl.sql("select kind, count(*) n from events group by 1")   # doctest: +SKIP
    """

    def __init__(self, events: pa.Table, sources: pa.Table, rejects: pa.Table, params: dict | None = None,
                 meta: dict[str, dict] | None = None):
        self._events = events
        self._sources = sources
        self._rejects = rejects
        self._params = dict(params or {})
        self._meta = dict(meta or {})
        self._cache: dict[str, Any] = {}  # derived, recomputable (domains, per-source rows)

    def _source_rows(self) -> dict[str, np.ndarray]:
        """source → row positions in ``events`` (from the dictionary indices, no string compare)."""
        if "source_rows" not in self._cache:
            col = (pa.table({"s": self._events.column("source")}).unify_dictionaries().column("s").combine_chunks()
                   if self._events.num_rows else None)
            out: dict[str, np.ndarray] = {}
            if col is not None:
                if not pa.types.is_dictionary(col.type):
                    col = pc.dictionary_encode(col)
                idx = col.indices.to_numpy(zero_copy_only=False)
                order = np.argsort(idx, kind="stable")
                bounds = np.searchsorted(idx[order], np.arange(len(col.dictionary) + 1))
                for k, name in enumerate(col.dictionary.to_pylist()):
                    rows = order[bounds[k]:bounds[k + 1]]
                    if len(rows):
                        out[name] = np.sort(np.concatenate([out[name], rows])) if name in out else rows
            self._cache["source_rows"] = out
        return self._cache["source_rows"]

    @property
    def meta(self) -> dict[str, dict]:
        """Per source, what its reader reported beyond the sources table (clock anchors,
        header fields, field mapping)."""
        return self._meta

    # ------------------------------------------------------------------ tables
    @property
    def events(self) -> pa.Table:
        """The canonical event table (:data:`tracekit.schema.EVENT_SCHEMA`), sorted by (ts, seq)."""
        return self._events

    @property
    def sources(self) -> pa.Table:
        """One row per input: format, clock, assumed values, the four accounting counts, time range."""
        return self._sources

    @property
    def rejects(self) -> pa.Table:
        """One row per record that could not be read: file, line, offset, reason, raw text."""
        return self._rejects

    def __len__(self) -> int:
        return self._events.num_rows

    def to_pandas(self, table: str = "events") -> pd.DataFrame:
        """``events`` (or ``sources``/``rejects``) as pandas with ArrowDtype columns.

        Example::

            >>> tl.to_pandas().dtypes["ts"]          # doctest: +SKIP
            timestamp[ns, tz=UTC][pyarrow]
        """
        t = {"events": self._events, "sources": self._sources, "rejects": self._rejects}[table]
        return t.to_pandas(types_mapper=pd.ArrowDtype)

    def sql(self, query: str, **tables: pa.Table) -> pa.Table:
        """Run DuckDB SQL over ``events``, ``sources`` and ``rejects`` (and extra tables); Arrow out.

        Example::

            >>> tl.sql("select name, count(*) n from events group by 1 order by n desc")  # doctest: +SKIP
        """
        import duckdb

        con = duckdb.connect()
        try:
            con.register("events", self._events)
            con.register("sources", self._sources)
            con.register("rejects", self._rejects)
            for name, t in tables.items():
                con.register(name, t)
            return _to_arrow(con.sql(query))
        finally:
            con.close()

    # ------------------------------------------------------------------ time range
    def time_range(self) -> tuple[int | None, int | None]:
        """(first ts, last ts) as epoch ns, or (None, None) when empty."""
        if self._events.num_rows == 0:
            return None, None
        ts = self._events.column("ts")
        return ts[0].value, ts[-1].value

    # ------------------------------------------------------------------ time
    def _ts_ns(self) -> np.ndarray:
        """The sorted ``ts`` column as int64 ns (zero-copy for one chunk; cached)."""
        if "ts_ns" not in self._cache:
            col = self._events.column("ts")
            if self._events.num_rows == 0:
                arr = np.zeros(0, dtype=np.int64)
            elif col.num_chunks == 1:
                arr = col.chunk(0).view(pa.int64()).to_numpy()
            else:
                arr = col.combine_chunks().view(pa.int64()).to_numpy()
            self._cache["ts_ns"] = arr
        return self._cache["ts_ns"]

    def _slice(self, lo: int, hi: int) -> pa.Table:
        return self._events.slice(lo, max(hi - lo, 0))

    def window(self, start: Any, end: Any) -> Timeline:
        """Events with ``start <= ts < end`` (binary search on the sorted ``ts``; no scan).

        Example::

            >>> tl.window("2024-03-14T09:14:00Z", "2024-03-14T09:15:00Z")   # doctest: +SKIP
        """
        t0, t1 = _time.to_time_ns(start), _time.to_time_ns(end)
        if t1 < t0:
            raise _time.TimeError(f"window end {end!r} is before its start {start!r}")
        ts = self._ts_ns()
        lo, hi = np.searchsorted(ts, [t0, t1], side="left")
        return Timeline(self._slice(int(lo), int(hi)), self._sources, self._rejects, self._params, self._meta)

    def around(self, at: Any, before: Any = "2s", after: Any = "2s") -> Window:
        """Events in ``[at - before, at + after]`` from every source, with each entity's state when
        the window opens (``.state_at_start``). ``window="5s"`` style arguments mean ±5 s.

        Example::

            >>> w = tl.around("2024-03-14T09:14:30Z", before="2s", after="2s")   # doctest: +SKIP
            >>> w.state_at_start                                                  # doctest: +SKIP
        """
        c = _time.to_time_ns(at)
        b, a = _time.to_duration_ns(before), _time.to_duration_ns(after)
        ts = self._ts_ns()
        lo = int(np.searchsorted(ts, c - b, side="left"))
        hi = int(np.searchsorted(ts, c + a, side="right"))
        return Window(self._slice(lo, hi), self._sources, self._rejects, self._params, self._meta,
                      center=c, start=c - b, end=c + a, state_at_start=lambda: self._states_before(lo))

    def at(self, when: Any) -> pa.Table:
        """Each entity's last known state at ``when``: entity, state, ts, source, seq.

        Example::

            >>> tl.at("2024-03-14T09:14:30Z").to_pandas()    # doctest: +SKIP
        """
        t = _time.to_time_ns(when)
        idx = int(np.searchsorted(self._ts_ns(), t, side="right"))
        return self._states_before(idx)

    def _states_before(self, idx: int) -> pa.Table:
        head = self._events.slice(0, idx).select(["entity", "state", "ts", "source", "seq"])
        mask = pc.and_(pc.is_valid(head.column("entity")), pc.is_valid(head.column("state")))
        head = head.filter(mask)
        if head.num_rows == 0:
            return head.cast(pa.schema([f.remove_metadata() for f in head.schema]))
        # last row per entity: rows are in (ts, seq) order, so keep the max position
        pos = pa.array(np.arange(head.num_rows, dtype=np.int64))
        g = pa.table({"entity": head.column("entity"), "pos": pos}).group_by("entity", use_threads=False)
        last = g.aggregate([("pos", "max")]).column("pos_max")
        out = head.take(last)
        return out.sort_by([("entity", "ascending")])

    def shift(self, selector: str, offset: Any = 0, drift_ppm: float = 0.0, t0: Any = None) -> Timeline:
        """A new Timeline with the selected sources' clocks corrected by hand.

        ``offset`` is added to the sources' time (a clock 2.75 s ahead takes ``"-2.75s"``), on
        top of any correction already applied; ``drift_ppm`` adds drift around ``t0`` (default:
        the median of the source's ``ts_src``). Recorded in ``sources`` (``offset``,
        ``drift_ppm``, ``t0``, ``note``) and ``params["corrections"]``. Selectors: a source
        name, a glob, ``format:NAME`` or ``host:NAME``.

        Example::

            >>> tl2 = tl.shift("app.jsonl", offset="-2.75s", drift_ppm=0)   # doctest: +SKIP
        """
        from . import _select

        off = _time.to_duration_ns(offset)
        rows = self._sources.to_pylist()
        hit = [r for r in rows if r["status"] == "loaded" and _select.matches(selector, r["source"], r["format"], r["host"])]
        if not hit:
            names = ", ".join(r["source"] for r in rows if r["status"] == "loaded")
            raise _time.TimeError(f"shift: {selector!r} selects no loaded source; sources: {names}")
        corr = {}
        ts_src = self._events.column("ts_src").combine_chunks().to_numpy()
        rows_of = self._source_rows()
        for r in hit:
            idx = rows_of.get(r["source"], np.zeros(0, np.int64))
            r_t0 = _time.to_time_ns(t0) if t0 is not None else (int(np.median(ts_src[idx])) if len(idx) else 0)
            new_off = int(pd.Timedelta(r["offset"] or 0).value) + off
            new_drift = float(r["drift_ppm"] or 0.0) + float(drift_ppm)
            corr[r["source"]] = (idx, new_off, new_drift, r_t0)
            r["offset"], r["drift_ppm"], r["t0"] = new_off, new_drift, r_t0
            lo0 = int(pd.Timedelta(r["offset_lo"]).value) if r.get("offset_lo") is not None else new_off - off
            hi0 = int(pd.Timedelta(r["offset_hi"]).value) if r.get("offset_hi") is not None else new_off - off
            r["offset_lo"], r["offset_hi"] = lo0 + off, hi0 + off  # a manual shift moves the interval
            note = f"shifted by hand: offset {_time.fmt_duration(off)}, drift {drift_ppm:+g} ppm"
            r["note"] = f"{r['note']}; {note}" if r["note"] else note
            r["aligned"] = True
        return self._with_clocks(corr, rows, {"selector": selector, "offset_ns": off, "drift_ppm": drift_ppm})

    def align(self, reference: str | None = None, pin: dict | None = None, keys: Any = (), **kw: Any):
        """Estimate every clock domain's correction from the evidence the sources share.

        Returns an :class:`~tracekit.clocks.Alignment` (``.clocks``, ``.evidence``,
        ``.timeline``). See :mod:`tracekit.clocks`.

        Example::

            >>> al = tl.align()                 # doctest: +SKIP
            >>> al.clocks                       # doctest: +SKIP
        """
        from .clocks import align

        return align(self, reference=reference, pin=pin, keys=keys, **kw)

    def transitions(self, entity: Any = None, rules: Any = None, exclude: Any = (), extra: Any = ()):
        """Which entity changed state when: see :mod:`tracekit.transitions`.

        Example::

            >>> tr = tl.transitions(entity="pod/default/api-*")   # doctest: +SKIP
        """
        from .transitions import find_transitions

        return find_transitions(self, rules=rules, exclude=exclude, entity=entity, extra=extra)

    def interleaving(self, at: Any, window: Any = "5s", lane: str = "source", transitions: Any = None, **kw: Any):
        """Events of every lane around ``at`` (a Transition or a time) with ambiguous orders
        and race candidates marked: see :mod:`tracekit.interleave`.

        Example::

            >>> il = tl.interleaving(tr[3], window="5s")   # doctest: +SKIP
        """
        from .interleave import interleaving

        return interleaving(self, at, window=window, lane=lane, transitions=transitions, **kw)

    def diff(self, at: Any, before: Any = None, after: Any = None, **kw: Any):
        """What started, stopped, persisted or changed rate at ``at`` (see :func:`tracekit.interleave.diff`).

        Example::

            >>> tl.diff(at="2025-07-07T09:12:00Z")     # doctest: +SKIP
        """
        from .interleave import diff

        return diff(self, at, before=before, after=after, **kw)

    def periodic(self, **kw: Any):
        """Recurring series with period and jitter (see :func:`tracekit.interleave.periodic`).

        Example::

            >>> tl.periodic(after="2025-07-07T09:12:00Z")   # doctest: +SKIP
        """
        from .interleave import periodic

        return periodic(self, **kw)

    def to_chrome_json(self, path: Any, start: Any = None, end: Any = None, **kw: Any):
        """Write the (aligned) timeline, or a window of it, as Chrome trace-event JSON to open in
        ui.perfetto.dev or chrome://tracing (see :func:`tracekit.export.to_chrome_json`).

        Example::

            >>> tl.to_chrome_json("incident.json")     # doctest: +SKIP
        """
        from .export import to_chrome_json

        return to_chrome_json(self, path, start=start, end=end, **kw)

    def _with_clocks(self, corr: dict, rows: list[dict], record: dict) -> Timeline:
        """Rewrite ``ts`` for the given rows from ``ts_src`` and re-sort; ``ts_src`` untouched."""
        ts = self._ts_ns().copy()
        ts_src = self._events.column("ts_src").combine_chunks().to_numpy()
        for idx, off, drift, t0 in corr.values():
            ts[idx] = apply_clock(ts_src[idx], off, drift, t0)
        ev = self._events.set_column(0, EVENT_SCHEMA.field("ts"), pa.array(ts).view(pa.timestamp("ns", tz="UTC")))
        seq = ev.column("seq").combine_chunks().to_numpy()
        order = np.lexsort((seq, ts))
        ev = ev.take(pa.array(order))
        params = dict(self._params)
        params["corrections"] = list(params.get("corrections", [])) + [record]
        sources = pa.Table.from_pylist(rows, schema=SOURCE_SCHEMA)
        return Timeline(ev, sources, self._rejects, params, self._meta)

    # ------------------------------------------------------------------ display
    def _summary(self) -> dict[str, Any]:
        s = self._sources
        def total(col: str) -> int:
            return int(pc.sum(s.column(col)).as_py() or 0) if s.num_rows else 0
        lo, hi = self.time_range()
        status = s.column("status").to_pylist() if s.num_rows else []
        return {
            "events": self._events.num_rows,
            "sources": status.count("loaded"),
            "skipped": status.count("skipped"),
            "failed": status.count("failed"),
            "records": total("records"),
            "rejected": total("rejected"),
            "first": _time.fmt_ns(lo),
            "last": _time.fmt_ns(hi),
        }

    def __repr__(self) -> str:
        m = self._summary()
        lines = [
            f"Timeline: {m['events']:,} events from {m['sources']} sources"
            f" ({m['skipped']} skipped, {m['failed']} failed), {m['rejected']:,} rejects",
            f"  {m['first']} … {m['last']}",
        ]
        for r in self._sources.to_pylist()[:_HTML_ROWS]:
            lines.append(
                f"  {r['source']:<40.40} {r['format'] or '-':<10} {r['status']:<8} "
                f"{(r['rows'] or 0):>10,} rows {(r['rejected'] or 0):>6,} rej  {r['clock'] or ''}"
                + (f"  {r['note']}" if r["note"] else "")
            )
        if self._sources.num_rows > _HTML_ROWS:
            lines.append(f"  … {self._sources.num_rows - _HTML_ROWS} more sources")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        m = self._summary()
        esc = html.escape
        head = (
            f"<b>Timeline</b>: {m['events']:,} events from {m['sources']} sources"
            f" ({m['skipped']} skipped, {m['failed']} failed), {m['rejected']:,} rejects"
            f"<br><code>{esc(m['first'])}</code> … <code>{esc(m['last'])}</code>"
        )
        cols = ["source", "format", "status", "clock", "records", "rows", "rejected", "ts_min", "ts_max", "note"]
        rows = []
        for r in self._sources.select(cols).to_pylist()[:_HTML_ROWS]:
            cells = []
            for c in cols:
                v = r[c]
                if c in ("ts_min", "ts_max") and v is not None:
                    v = _time.fmt_ns(int(pd.Timestamp(v).value))
                cells.append(f"<td>{esc('' if v is None else f'{v:,}' if isinstance(v, int) else str(v))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        more = ""
        if self._sources.num_rows > _HTML_ROWS:
            more = f"<p>… {self._sources.num_rows - _HTML_ROWS} more sources</p>"
        th = "".join(f"<th>{c}</th>" for c in cols)
        return (
            f"<div class='tracekit-timeline'>{head}<table><thead><tr>{th}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{more}</div>"
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def _empty(cls) -> Timeline:
        return cls(EVENT_SCHEMA.empty_table(), SOURCE_SCHEMA.empty_table(), REJECT_SCHEMA.empty_table())


class Window(Timeline):
    """A Timeline cut around a moment: ``center``, ``start``, ``end`` (epoch ns) and
    ``state_at_start`` (each entity's last state before the window opened)."""

    def __init__(self, events, sources, rejects, params, meta, *, center: int, start: int, end: int,
                 state_at_start: pa.Table | Any):
        super().__init__(events, sources, rejects, params, meta)
        self.center, self.start, self.end = center, start, end
        self._state_at_start = state_at_start

    @property
    def state_at_start(self) -> pa.Table:
        """Each entity's last state before the window opened (computed on first use)."""
        if callable(self._state_at_start):
            self._state_at_start = self._state_at_start()
        return self._state_at_start

    def __repr__(self) -> str:
        return (f"Window {_time.fmt_ns(self.start)} … {_time.fmt_ns(self.end)}: {len(self):,} events, "
                f"{self.state_at_start.num_rows} entity states at start")
