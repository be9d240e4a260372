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

__all__ = ["Timeline", "apply_clock"]

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

    def __init__(self, events: pa.Table, sources: pa.Table, rejects: pa.Table, params: dict | None = None):
        self._events = events
        self._sources = sources
        self._rejects = rejects
        self._params = dict(params or {})

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
