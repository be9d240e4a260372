"""The overview: the whole incident as event density per lane over time, transitions as ticks,
and where each source was not recording."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from matplotlib.collections import PolyCollection
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import _time
from ._style import NR_EDGE, NR_FACE, _tzinfo, abbreviate, fmt_abs, natural_key, rule_color

_DAY = 86400e9
_NR_FACE, _NR_EDGE = NR_FACE, NR_EDGE


def _mdate(ns: Any) -> Any:
    """epoch ns → matplotlib date numbers (days since 1970-01-01, the default epoch)."""
    return np.asarray(ns, np.float64) / _DAY


def overview(tl: Any, transitions: Any = None, ax: Any = None, *, lane: str = "source", start: Any = None,
             end: Any = None, bins: int = 300, tz: Any = None, lanes: Any = None, cmap: str = "Greys") -> Any:
    """Event density per lane over the whole timeline (or ``start``..``end``): one heat strip
    per lane (white = recording but no events, i.e. no breadcrumbs), grey hatching where the
    source was not recording (before its first / after its last event, and around ``loss``
    events), and the transitions as ticks on their source's lane, coloured by rule. The x axis
    is absolute time in UTC (or ``tz``) and zooms with ipympl.

    Example::

        >>> ax = tk.plot.overview(tl, transitions=tr)                                    # doctest: +SKIP
        >>> ax = tk.plot.overview(tl, tr, start="2025-07-07T09:11:30Z", end="2025-07-07T09:13Z")  # doctest: +SKIP
    """
    ev = tl.events
    if lane not in ("source", "host", "kind", "entity", "pid", "tid"):
        raise ValueError(f"lane must be a column such as 'source' or 'host', not {lane!r}")
    ts_all = ev.column("ts").cast(pa.int64()).to_numpy() if ev.num_rows else np.zeros(0, np.int64)
    lane_all = ev.column(lane).cast(pa.string()).fill_null("(none)").to_numpy(zero_copy_only=False) \
        if ev.num_rows else np.array([], object)
    kind_all = ev.column("kind").cast(pa.string()).to_numpy(zero_copy_only=False) if ev.num_rows else np.array([])
    t0 = _time.to_time_ns(start) if start is not None else (int(ts_all.min()) if len(ts_all) else 0)
    t1 = _time.to_time_ns(end) if end is not None else (int(ts_all.max()) + 1 if len(ts_all) else 1)
    keys = sorted(set(lane_all.tolist()), key=natural_key)
    if lanes is not None:
        keys = [str(k) for k in lanes] + [k for k in keys if k not in set(map(str, lanes))]
    idx = {k: i for i, k in enumerate(keys)}
    nl = max(len(keys), 1)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(12, min(max(2.6, 0.3 * nl + 1.6), 14)), layout="constrained")
    lane_i = np.array([idx[k] for k in lane_all], np.int64) if len(lane_all) else np.zeros(0, np.int64)
    edges = np.linspace(t0, t1, bins + 1)
    h = np.zeros((nl, bins))
    if len(ts_all):
        m = (ts_all >= t0) & (ts_all < t1)
        h, _, _ = np.histogram2d(lane_i[m], ts_all[m].astype(np.float64), bins=[np.arange(nl + 1) - 0.5, edges])
    # first/last event per lane: outside it the lane is not recording
    first = np.full(nl, np.iinfo(np.int64).max)
    last = np.full(nl, np.iinfo(np.int64).min)
    if len(ts_all):
        np.minimum.at(first, lane_i, ts_all)
        np.maximum.at(last, lane_i, ts_all)
    xe = _mdate(edges)
    data = np.ma.masked_equal(h, 0)
    vmax = max(float(h.max()), 2.0)
    mesh = ax.pcolormesh(xe, np.arange(nl + 1) - 0.5, data, cmap=cmap, norm=LogNorm(vmin=1, vmax=vmax),
                         shading="flat", zorder=1, gid="tk-density", rasterized=True)
    # not recording: before first, after last, and ±1 bin around loss events
    verts = []
    for i in range(nl):
        if first[i] > t0:
            verts.append((i, t0, min(first[i], t1)))
        if last[i] < t1:
            verts.append((i, max(last[i], t0), t1))
    loss = np.flatnonzero(kind_all == "loss") if len(kind_all) else np.zeros(0, np.int64)
    bw = (t1 - t0) / bins
    for j in loss:
        verts.append((int(lane_i[j]), int(ts_all[j] - bw / 2), int(ts_all[j] + bw / 2)))
    polys = [[(_mdate(a), i - 0.5), (_mdate(b), i - 0.5), (_mdate(b), i + 0.5), (_mdate(a), i + 0.5)]
             for i, a, b in verts if b > a]
    if polys:
        ax.add_collection(PolyCollection(polys, facecolors=_NR_FACE, edgecolors=_NR_EDGE, hatch="///",
                                         linewidths=0, zorder=0.9, gid="tk-not-recording"), autolim=False)
    # transitions: a tick on their source's lane (or a strip on top when the lane is unknown)
    rules_seen: dict[str, str] = {}
    if transitions is not None and len(transitions):
        t = transitions.table
        tts = t.column("ts").cast(pa.int64()).to_numpy()
        srcs = t.column("source").cast(pa.string()).to_pylist()
        rules = t.column("rule").cast(pa.string()).to_pylist()
        src_lane = {}
        if lane != "source":
            s_ev = ev.column("source").cast(pa.string()).to_numpy(zero_copy_only=False)
            for s, k in zip(s_ev, lane_all):
                src_lane.setdefault(s, k)
        xs, ys, cs = [], [], []
        for tt, s, r in zip(tts, srcs, rules):
            if not t0 <= tt < t1:
                continue
            k = s if lane == "source" else src_lane.get(s)
            yy = idx.get(k, -0.75)
            xs.append(_mdate(tt))
            ys.append(yy)
            cs.append(rules_seen.setdefault(r, rule_color(r)))
        if xs:
            ax.scatter(xs, ys, marker="|", s=160, c=cs, linewidths=1.6, zorder=4, gid="tk-transitions")
    ax.set_xlim(_mdate(t0), _mdate(t1))
    ax.set_ylim(nl - 0.5, -0.5)
    fs = 9 if nl <= 12 else max(6.0, 9 - (nl - 12) / 10)
    ax.set_yticks(range(len(keys)), [abbreviate(k, 30) for k in keys], fontsize=fs)
    ax.tick_params(axis="y", length=0)
    import matplotlib.dates as mdates

    tzi = _tzinfo(tz)
    loc = mdates.AutoDateLocator(tz=tzi, minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=tzi))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(f"time ({'UTC' if tz is None else tz})", fontsize=8)
    ax.hlines(np.arange(nl - 1) + 0.5, _mdate(t0), _mdate(t1), colors="#DDDDDD", linewidths=0.6, zorder=3)
    ntr = len(transitions) if transitions is not None else 0
    ax.set_title(f"{fmt_abs(t0, tz, digits=3)} → {fmt_abs(t1, tz, digits=3, date=False)} · {len(ts_all):,} events · "
                 f"{len(keys)} lanes" + (f" · {ntr} transitions" if ntr else ""), fontsize=9, loc="left")
    cb = ax.figure.colorbar(mesh, ax=ax, pad=0.01, fraction=0.025, aspect=30)
    cb.set_label(f"events per {_fmt_bin(bw)}", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    hs = [Patch(facecolor="white", edgecolor="#999999", label="recording, no events"),
          Patch(facecolor=_NR_FACE, edgecolor=_NR_EDGE, hatch="///", label="not recording")]
    hs += [Line2D([], [], ls="none", marker="|", markersize=9, markeredgewidth=1.6, color=c, label=f"transition: {r}")
           for r, c in sorted(rules_seen.items())]
    from matplotlib.transforms import offset_copy

    ax.legend(handles=hs, loc="upper left", bbox_to_anchor=(0.0, 0.0), ncol=min(len(hs), 5), fontsize=7,
              frameon=False, bbox_transform=offset_copy(ax.transAxes, fig=ax.figure, y=-30, units="points"))
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    return ax


def _fmt_bin(ns: float) -> str:
    from ._style import pick_unit

    name, f = pick_unit(ns)
    return f"{ns / f:.3g} {name}"
