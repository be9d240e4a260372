"""Notebook plots (matplotlib): interleavings around transitions, small multiples, the whole
incident, and the clock alignment.

Conventions (as seaborn): axes-level functions (:func:`interleaving`, :func:`overview`,
:func:`clocks`) take ``ax=None`` and return the Axes; the figure-level :func:`transitions`
returns the Figure and refuses ``ax=``. Nothing calls ``show()``. A lane's or kind's colour is
a pure function of its key (:func:`color_for`). Times show in UTC unless ``tz=`` is given.

Example::

    >>> import tracekit as tk
    >>> from tracekit import plot
    >>> ax = plot.interleaving(tl, tr[3], window="5s")        # doctest: +SKIP
    >>> ax.figure.savefig("t3.png")                              # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._clocks import clocks
from ._overview import overview
from ._style import PALETTE, abbreviate, color_for, fmt_abs, kind_color
from ._swimlane import RelTimeFormatter, draw, legend_handles, source_extents
from .browse import browse

__all__ = ["interleaving", "transitions", "overview", "clocks", "browse", "color_for", "kind_color", "PALETTE",
           "RelTimeFormatter"]


def _progress(iterable: Any, progress: bool, total: int | None = None, desc: str = "") -> Any:
    if not progress:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no bar without it
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


def _interleaving_of(tl: Any, at: Any, window: Any, lane: str, transitions: Any) -> Any:
    from ..interleave import Interleaving

    if isinstance(at, Interleaving):
        return at
    return tl.interleaving(at, window=window, lane=lane, transitions=transitions)


def interleaving(tl: Any, at: Any, window: Any = "5s", lane: str = "source", ax: Any = None, tz: Any = None,
                 transitions: Any = None, *, color: str = "kind", lanes: Any = None, dense: int | str = "auto",
                 bins: int | str = "auto", labels: bool = True, max_labels: int = 50, legend: bool = True,
                 links: bool = True, zoom: bool = True) -> Any:
    """Swimlanes around ``at`` (a Transition, a time, or an already computed Interleaving).

    One lane per ``lane`` key (``source``, ``host``, ``pid``, ``tid``, ``entity``, ``kind``);
    spans as bars, other events as markers (one shape per kind), counters as step lines, the
    lane's state as a shaded band, each event's clock interval as a whisker, ambiguous events
    ringed in orange and race candidates linked in red; flows and parent→child spans as arrows;
    the transition as a red line at 0. Lanes with more than ``dense`` events (``"auto"``: one per
    ~5 px of the axes' width) are drawn as density bins. When there are race candidates and no ``ax`` is given, a second panel
    (``zoom=True``) shows their lanes a few clock intervals around the moment. x data are seconds
    relative to the moment. ``lanes`` fixes the lane order
    (default: natural sort of the keys). ``color`` is ``"kind"`` or a column (``"lane"``, …).

    Example::

        >>> ax = tk.plot.interleaving(tl, tr[3], window="2s", transitions=tr)   # doctest: +SKIP
    """
    il = _interleaving_of(tl, at, window, lane, transitions)
    nl = max(len(set(il.table["lane"].astype(str))) if len(il.table) else 1, len(lanes or ()), 1)
    sub = _race_zoom(il) if ax is None and zoom and len(il.races) else None
    if ax is None:
        import matplotlib.pyplot as plt

        h = min(max(3.2, 0.34 * nl + 1.8), 16)
        # fixed margins instead of constrained layout: a layout pass re-measures every label,
        # which costs as much as the drawing itself on a busy figure
        longest = max([len(_style_abbrev(k, 30 if nl <= 20 else 24)) for k in set(il.table["lane"].astype(str))]
                      or [8]) + (9 if len(il.table) > 100 * nl else 0)  # room for a dense lane's count
        fs = 9 if nl <= 12 else max(6.0, 9 - (nl - 12) / 10)
        left = (longest * fs * 0.62 / 72 + 0.25) / 12
        if sub is None:
            fig, ax = plt.subplots(figsize=(12, h))
            fig.subplots_adjust(left=left, right=1 - 2.0 / 12, top=1 - 0.62 / h, bottom=0.55 / h)
        else:
            nz = len(set(sub.table["lane"]))
            hz = h + 0.45 * nz + 1.4
            fig, (ax, zax) = plt.subplots(2, 1, figsize=(12, hz), height_ratios=[max(nl, 2) + 1.5, nz + 1.8])
            fig.subplots_adjust(left=left, right=1 - 2.0 / 12, top=1 - 0.62 / hz, bottom=0.55 / hz,
                                hspace=1.4 / (hz / 2))
    ext = source_extents(tl) if tl is not None and il.lane == "source" else None
    draw(ax, il, tl, transitions=transitions, tz=tz, lanes=lanes, color=color, dense=dense, bins=bins,
         labels=labels, max_labels=max_labels, legend=legend, links=links, extents=ext)
    if sub is not None:
        draw(zax, sub, tl, transitions=transitions, tz=tz, color=color, dense=dense, bins=bins, labels=labels,
             legend=False, links=links, extents=ext, title=False)
        zax.set_title(f"zoom ±{_fmt_ns((sub.end - sub.start) // 2)} on the race candidates: the whiskers "
                      "(clock intervals) overlap, so the dumps cannot order these events", fontsize=8.5,
                      loc="left", color="#A00000")
    return ax


def _style_abbrev(k: str, width: int) -> str:
    return abbreviate(k, width)


def _fmt_ns(ns: int) -> str:
    from ._style import pick_unit

    name, f = pick_unit(ns)
    return f"{ns / f:g} {name}"


def _race_zoom(il: Any) -> Any:
    """The interleaving cut to the race candidates' lanes, ±3× their spread (clock intervals
    included), when that is much narrower than the window; else None."""
    from ..interleave import Interleaving

    t = il.table
    seqs = set(il.races["seq_a"]).union(il.races["seq_b"])
    r = t[t["seq"].isin(seqs)]
    if r.empty:
        return None
    c = il.center
    reach = int(max(np.abs(r["ts_lo"].to_numpy(np.int64) - c).max(), np.abs(r["ts_hi"].to_numpy(np.int64) - c).max()))
    z = int(_nice(max(reach * 1.5, 1000)))
    if 2 * z * 20 > il.end - il.start:
        return None
    keep = set(r["lane"].astype(str))
    if il.transition is not None:
        src = il.transition.source
        keep |= set(t.loc[t["source"].astype(str) == str(src), "lane"].astype(str))
    m = t["lane"].astype(str).isin(keep) & (t["ts_hi"] >= c - z) & (t["ts_lo"] <= c + z)
    races = il.races[il.races["seq_a"].isin(t.loc[m, "seq"]) & il.races["seq_b"].isin(t.loc[m, "seq"])]
    return Interleaving(t[m].reset_index(drop=True), races.reset_index(drop=True), c, c - z, c + z, il.lane,
                        il.transition, il.state_at_start)


def _nice(v: float) -> float:
    e = 10 ** np.floor(np.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= v:
            return m * e
    return 10 * e


def transitions(tl: Any, tr: Any, window: Any = "5s", cols: int = 3, *, lane: str = "source", tz: Any = None,
                max_panels: int = 24, progress: bool = True, ax: Any = None, **kw: Any) -> Any:
    """Small multiples: one interleaving panel per transition of ``tr`` (first ``max_panels``),
    sharing lane order (the union of the panels' lanes) and colours, one legend. Returns the
    Figure; refuses ``ax=`` (use :func:`interleaving` for one panel).

    Example::

        >>> fig = tk.plot.transitions(tl, tr.filter(rule="endpoints"), window="2s")   # doctest: +SKIP
    """
    if ax is not None:
        raise TypeError("plot.transitions draws a grid of panels and returns the Figure; it takes no ax=. "
                        "Use tk.plot.interleaving(tl, tr[i], ax=ax) to draw one panel on your own Axes.")
    import matplotlib.pyplot as plt

    items = list(tr)[:max_panels]
    if not items:
        raise ValueError("no transitions to plot")
    ils = [_interleaving_of(tl, t, window, lane, tr)
           for t in _progress(items, progress, len(items), "interleavings")]
    keys: list[str] = []
    for il in ils:
        keys.extend(il.table["lane"].astype(str).tolist() if len(il.table) else [])
    from ._swimlane import _lane_order

    order = _lane_order(keys, kw.pop("lanes", None))
    ncols = max(1, min(cols, len(ils)))
    nrows = -(-len(ils) // ncols)
    h = min(max(2.6, 0.2 * len(order) + 1.4), 9)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols + 1.6, h * nrows), sharey=True,
                             layout="constrained", squeeze=False)
    ext = source_extents(tl) if lane == "source" else None
    drawn: dict[str, Any] = {"kinds": set()}
    max_labels = kw.pop("max_labels", 25)
    for k, (a, il) in enumerate(zip(axes.flat, _progress(ils, progress, len(ils), "panels"))):
        d = draw(a, il, tl, transitions=tr, tz=tz, lanes=order, legend=False, max_labels=max_labels,
                 extents=ext, lane_fontsize=7, xticks=5, **kw)
        for key, v in d.items():
            drawn[key] = drawn.get(key, set()) | v if key == "kinds" else (drawn.get(key, False) or v)
        t = il.transition
        what = f"{abbreviate(t.entity, 40)}\n{abbreviate(t.from_state, 16) or '∅'} → {abbreviate(t.to_state, 16)}" \
            if t is not None else ""
        a.set_title(f"#{k} {fmt_abs(il.center, tz, digits=3, date=False)}  {what}", fontsize=7.5, loc="left")
        if k % ncols:
            a.tick_params(axis="y", labelleft=False)
    for a in list(axes.flat)[len(ils):]:
        a.set_visible(False)
    fig.legend(handles=legend_handles(drawn), loc="outside right upper", fontsize=7, frameon=False)
    first = ils[0].center
    fig.suptitle(f"{len(ils)} transition{'s' if len(ils) > 1 else ''} from {fmt_abs(first, tz)} "
                 f"(±{_fmt_window(ils[0])} each)", fontsize=10, x=0.01, ha="left")
    return fig


def _fmt_window(il: Any) -> str:
    from ._style import pick_unit

    half = (il.end - il.start) / 2
    name, f = pick_unit(2 * half)
    return f"{half / f:g} {name}"
