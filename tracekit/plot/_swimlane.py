"""The interleaving (swimlane) plot: one lane per source/host/pid/thread/entity around a moment.

Drawing uses one collection per artist family (spans, each kind's markers, whiskers, …), never
one artist per event, so 50,000 events cost about what a bare ``broken_barh`` + ``scatter``
does. Lanes holding more than ``dense`` events are drawn as per-lane density bins instead of a
smear. Every family carries a ``gid`` (``tk-spans``, ``tk-events:<kind>``, ``tk-whiskers``,
``tk-ambiguous``, ``tk-races``, ``tk-links``, ``tk-states``, ``tk-density``, ``tk-counter``,
``tk-transition``, ``tk-not-recording``) so tests and users can find them.

x data are **seconds relative to the moment** (floats); the tick labels pick ms/µs/s from the
visible range, so zooming (ipympl) keeps readable units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.ticker import Formatter, MaxNLocator

from . import _style
from ._style import AMBIGUOUS, RACE, TRANSITION, abbreviate, color_for, kind_color, kind_marker

_POINT_KINDS_ORDER = ("instant", "log", "state", "counter", "sample", "flow", "marker", "loss")


class RelTimeFormatter(Formatter):
    """Tick labels for x in seconds relative to a moment, in the unit that suits the view
    (``-1.5 s``, ``+250 ms``, ``+12.5 µs``)."""

    _locs: list = []

    def set_locs(self, locs: Any) -> None:
        self._locs = list(locs)

    def __call__(self, x: float, pos: int | None = None) -> str:
        lo, hi = self.axis.get_view_interval() if self.axis is not None else (-1.0, 1.0)
        reach_ns = max(abs(hi), abs(lo), abs(hi - lo) / 2) * 1e9
        name, f = _style.pick_unit(reach_ns * 2)
        locs = [v for v in self._locs if lo <= v <= hi]
        step = (abs(locs[1] - locs[0]) * 1e9 / f) if len(locs) > 1 else abs(hi - lo) * 1e9 / f / 5
        frac = f"{step:.6f}".rstrip("0").partition(".")[2] if step > 0 else ""
        digits = len(frac)  # as many decimals as the tick step needs (0.25 → 2)
        v = x * 1e9 / f
        if abs(v) < 0.5 * 10 ** (-digits):
            return "0"
        return f"{v:+.{digits}f} {name}".replace("-", "−")


@dataclass
class _Lanes:
    keys: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {k: i for i, k in enumerate(self.keys)}


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    return str(v)


def _lane_order(keys: Any, order: Any = None) -> list[str]:
    keys = [str(k) for k in pd.unique(pd.Series(keys, dtype=object))] if len(keys) else []
    if order is None:
        return sorted(keys, key=_style.natural_key)
    order = [str(k) for k in order]
    return order + [k for k in sorted(keys, key=_style.natural_key) if k not in set(order)]


def source_extents(tl: Any) -> dict[str, tuple[int, int]]:
    """Each source's first and last event time (epoch ns) over the whole timeline: outside it
    the source was not recording (or its dump does not reach)."""
    ev = tl.events
    if ev.num_rows == 0:
        return {}
    import pyarrow as pa

    t = pa.table({"source": ev.column("source").cast(pa.string()), "ts": ev.column("ts").cast(pa.int64())})
    g = t.group_by("source", use_threads=False).aggregate([("ts", "min"), ("ts", "max")])
    return {s: (int(a), int(b)) for s, a, b in zip(g.column("source").to_pylist(), g.column("ts_min").to_pylist(),
                                                   g.column("ts_max").to_pylist())}


def _extra_columns(tl: Any, il: Any, table: pd.DataFrame) -> pd.DataFrame:
    """value, flow_dir and severity by seq (the interleaving table does not carry them)."""
    need = table["kind"].isin(["counter", "flow"]).any() or table["flow_id"].notna().any()
    if tl is None or not need or not len(table):
        return pd.DataFrame({"seq": [], "value": [], "flow_dir": []})
    w = tl.around(il.center, before=il.center - il.start, after=il.end - il.center)
    ev = w.events.select(["seq", "value", "flow_dir"])
    df = ev.to_pandas()
    df["flow_dir"] = df["flow_dir"].astype(object)
    return df


def _levels(x0: np.ndarray, x1: np.ndarray, max_levels: int = 4) -> np.ndarray:
    """Stack overlapping intervals (given in start order): level of each, first free row."""
    ends: list[float] = []
    out = np.zeros(len(x0), np.int64)
    for i in range(len(x0)):
        for lv, e in enumerate(ends):
            if x0[i] >= e:
                ends[lv] = x1[i]
                out[i] = lv
                break
        else:
            if len(ends) < max_levels:
                ends.append(x1[i])
                out[i] = len(ends) - 1
            else:
                lv = int(np.argmin(ends))
                ends[lv] = max(ends[lv], x1[i])
                out[i] = lv
    return out


def _state_segments(il: Any, table: pd.DataFrame, lanes: _Lanes, transitions: Any, lane: str,
                    x_end: float) -> list[tuple[int, float, float, str, str]]:
    """(lane index, x0, x1, entity, state) bands: per lane, the state of its main entity.

    The main entity is the transition's entity when the lane carries it, else the lane's only
    entity whose state changes in the window. States come from the events' ``state`` column,
    from the transitions found in the window and from ``state_at_start``."""
    c = il.center
    changes: list[tuple[str, str, int, str]] = []  # (lane, entity, ts, state)
    st = table[table["state"].notna() & table["entity"].notna()]
    for ln, ent, rel, s in zip(st["lane"], st["entity"], st["rel"], st["state"]):
        changes.append((str(ln), str(ent), int(rel) + c, str(s)))
    tr_rows: list[dict] = []
    if transitions is not None and lane == "source":
        import pyarrow as pa
        import pyarrow.compute as pc

        t = transitions.table
        ts = t.column("ts").cast(pa.int64())
        m = pc.and_(pc.greater_equal(ts, il.start), pc.less_equal(ts, il.end))
        tr_rows = t.filter(m).select(["ts", "entity", "from_state", "to_state", "source"]).to_pylist()
        for r in tr_rows:
            changes.append((str(r["source"]), str(r["entity"]), int(pd.Timestamp(r["ts"]).value), str(r["to_state"])))
    start_state: dict[tuple[str, str], str] = {}
    sas = il.state_at_start
    if sas is not None and sas.num_rows and lane == "source":
        for r in sas.select(["entity", "state", "source"]).to_pylist():
            start_state[(str(r["source"]), str(r["entity"]))] = str(r["state"])
    for r in tr_rows:  # the from_state of the first transition is the state before it
        key = (str(r["source"]), str(r["entity"]))
        if r["from_state"] is not None and key not in start_state:
            start_state[key] = str(r["from_state"])
    if not changes:
        return []
    df = pd.DataFrame(changes, columns=["lane", "entity", "ts", "state"]).sort_values("ts", kind="stable")
    focus = str(il.transition.entity) if il.transition is not None else None
    out = []
    for ln, g in df.groupby("lane", sort=False):
        if ln not in lanes.index:
            continue
        real = {}
        for ent, ge in g.groupby("entity", sort=False):
            s = ge["state"].tolist()
            first = start_state.get((ln, ent))
            n_changes = sum(1 for a, b in zip([first] + s[:-1], s) if a != b and a is not None)
            real[ent] = n_changes
        if focus in real:
            ent = focus
        else:
            moving = [e for e, n in real.items() if n > 0]
            if len(moving) != 1:
                continue
            ent = moving[0]
        ge = g[g["entity"] == ent]
        xs = ((ge["ts"].to_numpy() - c) / 1e9).tolist()
        ss = ge["state"].tolist()
        first = start_state.get((ln, ent))
        x_start = (il.start - c) / 1e9
        cur_x, cur_s = x_start, first
        for x, s in zip(xs, ss):
            if s == cur_s:
                continue
            if cur_s is not None and x > cur_x:
                out.append((lanes.index[ln], cur_x, x, ent, cur_s))
            cur_x, cur_s = x, s
        if cur_s is not None:
            out.append((lanes.index[ln], cur_x, x_end, ent, cur_s))
    return out


def _event_label(kind: str, name: str, state: str, message: str, entity: str) -> str:
    if kind == "state" and state:
        return state
    if kind == "log":
        return message or name
    return name or message or state or entity


def draw(ax: Any, il: Any, tl: Any = None, *, transitions: Any = None, tz: Any = None, lanes: Any = None,
         color: str = "kind", dense: int | str = "auto", bins: int | str = "auto", labels: bool = True, max_labels: int = 80,
         legend: bool = True, title: bool = True, links: bool = True, max_links: int = 200,
         lane_fontsize: float | None = None, extents: dict | None = None, xticks: int = 9) -> dict:
    """Draw the interleaving ``il`` on ``ax``. Returns what it drew (for the small multiples'
    shared legend)."""
    table = il.table
    c = il.center
    lane_keys = _lane_order(table["lane"].astype(str) if len(table) else [], lanes)
    L = _Lanes(lane_keys)
    nl = max(len(lane_keys), 1)
    x_lo, x_hi = (il.start - c) / 1e9, (il.end - c) / 1e9
    drawn: dict[str, Any] = {"kinds": set(), "dense": False, "spans": False, "ambiguous": False,
                             "races": False, "states": False, "links": False, "not_recording": False,
                             "whiskers": False}
    n = len(table)
    lane_s = table["lane"].astype(str).to_numpy() if n else np.array([], object)
    y = np.array([L.index[k] for k in lane_s], np.float64)
    rel = table["rel"].to_numpy(np.int64) if n else np.zeros(0, np.int64)
    x = rel / 1e9
    kind = table["kind"].astype(str).to_numpy() if n else np.array([], object)
    dur = (pd.to_timedelta(table["dur"]).to_numpy("timedelta64[ns]").astype(np.int64) if n
           else np.zeros(0, np.int64))
    has_dur = (dur != np.iinfo(np.int64).min) & (kind == "span") if n else np.zeros(0, bool)
    dur = np.where(has_dur, dur, 0)
    amb = table["ambiguous"].to_numpy(bool) if n else np.zeros(0, bool)
    lo = ((table["ts_lo"].to_numpy(np.int64) - c) / 1e9) if n else np.zeros(0)
    hi = ((table["ts_hi"].to_numpy(np.int64) - c) / 1e9) if n else np.zeros(0)
    counts = np.bincount(y.astype(np.int64), minlength=nl) if n else np.zeros(nl, np.int64)
    if dense == "auto":  # more events than one per ~5 px of lane: markers would merge into a smear
        dense = max(100, int(_axes_px(ax) / 5))
    dense_lane = counts > int(dense)
    is_dense = dense_lane[y.astype(np.int64)] if n else np.zeros(0, bool)
    sparse = ~is_dense
    if color == "kind":
        colors_of = np.array([kind_color(k) for k in kind], object)
    else:
        vals = table[color].astype(str).to_numpy() if n else np.array([], object)
        cache: dict[str, str] = {}
        colors_of = np.array([cache.setdefault(v, color_for(v)) for v in vals], object)

    # --- lane furniture: separators, not-recording hatches
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(nl - 0.5, -0.5)
    ax.hlines(np.arange(nl - 1) + 0.5, x_lo, x_hi, colors="#DDDDDD", linewidths=0.6, zorder=0.5)
    if extents is not None and il.lane == "source":
        segs = []
        for k, i in L.index.items():
            if k not in extents:
                continue
            first, last = extents[k]
            if first > il.start:
                segs.append((i, x_lo, min((first - c) / 1e9, x_hi)))
            if last < il.end:
                segs.append((i, max((last - c) / 1e9, x_lo), x_hi))
        if segs:
            verts = [[(a, i - 0.5), (b, i - 0.5), (b, i + 0.5), (a, i + 0.5)] for i, a, b in segs if b > a]
            pc_ = PolyCollection(verts, facecolors=_style.NR_FACE, edgecolors=_style.NR_EDGE, hatch="///",
                                 linewidths=0, zorder=0.6, gid="tk-not-recording")
            ax.add_collection(pc_, autolim=False)
            drawn["not_recording"] = bool(verts)

    # --- state bands
    # (dense lanes get no band: their density says more)
    segs = _state_segments(il, table[sparse] if n else table, L, transitions, il.lane, x_hi) \
        if not dense_lane.all() else []
    segs = [sg for sg in segs if not dense_lane[sg[0]]]
    if segs:
        verts = [[(a, i - 0.5), (b, i - 0.5), (b, i + 0.5), (a, i + 0.5)] for i, a, b, _, _ in segs]
        cols = [_style.state_color(s) for *_, s in segs]
        ax.add_collection(PolyCollection(verts, facecolors=cols, alpha=0.16, edgecolors="none", zorder=0.7,
                                         gid="tk-states"), autolim=False)
        px = _axes_px(ax) / (x_hi - x_lo)
        wide = [sg for sg in segs if (min(sg[2], x_hi) - max(sg[1], x_lo)) * px >= 6 * min(len(sg[4]), 22) + 8]
        wide = sorted(wide, key=lambda sg: sg[1] - sg[2])[:24]  # the widest 24 bands get a label
        for i, a, _b, _ent, s in wide:
            ax.text(max(a, x_lo), i + 0.47, " " + abbreviate(s, 22), fontsize=6.5, color="#555555",
                    style="italic", va="bottom", ha="left", clip_on=True, zorder=0.8, gid="tk-state-label")
        drawn["states"] = True

    # --- dense lanes: per-lane density bins (stairs scaled to the lane's own peak)
    if is_dense.any():
        if bins == "auto":  # a few events per bin in a typical dense lane, so the outline is a profile, not a barcode
            bins = int(np.clip(np.median(counts[dense_lane]) / 5, 40, 240))
        edges = np.linspace(x_lo, x_hi, int(bins) + 1)
        polys = []
        for i in np.flatnonzero(dense_lane):
            sel = y == i
            h, _ = np.histogram(x[sel], bins=edges)
            peak = max(int(h.max()), 1)
            base = i + 0.42
            top = base - 0.84 * h / peak
            xs = np.repeat(edges, 2)[1:-1]
            polys.append(np.concatenate([[[edges[0], base]], np.stack([xs, np.repeat(top, 2)], 1),
                                         [[edges[-1], base]]]))
        cols = [color_for(lane_keys[i]) for i in np.flatnonzero(dense_lane)] if color == "lane" else "#4C72B0"
        ax.add_collection(PolyCollection(polys, facecolors=cols, edgecolors="none", alpha=0.75, zorder=2,
                                         gid="tk-density"), autolim=False)
        drawn["dense"] = True

    # --- spans (sparse lanes): bars stacked by overlap within a lane
    sp = np.flatnonzero(sparse & has_dur)
    ypos = y.copy()
    px = _axes_px(ax) / (x_hi - x_lo)
    if len(sp):
        # stack overlapping spans within a lane (levels), then one PolyCollection for all bars
        order = sp[np.lexsort((x[sp], y[sp]))]
        lv = np.zeros(len(order), np.int64)
        nlev = np.ones(len(order), np.int64)
        ys = y[order]
        bounds = np.flatnonzero(np.diff(ys)) + 1
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(order)]):
            x0 = x[order[a:b]]
            lv[a:b] = _levels(x0, x0 + dur[order[a:b]] / 1e9)
            nlev[a:b] = lv[a:b].max() + 1
        h = 0.62 / nlev
        y0 = ys - 0.31 + lv * h
        x0 = x[order]
        x1 = x0 + dur[order] / 1e9
        verts = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x1, y0 + h * 0.9], 1),
                          np.stack([x0, y0 + h * 0.9], 1)], 1)
        fcs = kind_color("span") if color == "kind" else list(colors_of[order])
        if amb[order].any():
            from matplotlib.colors import to_rgba_array

            ecs = to_rgba_array([AMBIGUOUS, "none"])[np.where(amb[order], 0, 1)]
        else:
            ecs = "none"
        bars = PolyCollection(verts, facecolors=fcs, edgecolors=ecs, linewidths=1.2, alpha=0.85, zorder=3,
                              gid="tk-spans")
        ax.add_collection(bars, autolim=False)
        ypos[order] = y0 + h * 0.45
        # spans too short to see at this scale: a square at their start so they do not vanish
        thin = order[(x1 - x0) * px < 3]
        if len(thin):
            ax.scatter(x[thin], ypos[thin], s=14, marker="s",
                       c=kind_color("span") if color == "kind" else list(colors_of[thin]),
                       edgecolors="none", zorder=3.5, gid="tk-span-starts")
        drawn["spans"] = True
        drawn["kinds"].add("span")

    # --- counters (sparse lanes): step lines scaled to the lane
    ctr = np.flatnonzero(sparse & (kind == "counter"))
    extra = _extra_columns(tl, il, table) if len(ctr) or (links and n) else None
    vmap = dict(zip(extra["seq"], extra["value"])) if extra is not None and len(extra) else {}
    if len(ctr) and vmap:
        seqs = table["seq"].to_numpy()
        names = table["name"].astype(str).to_numpy()
        for i in np.unique(y[ctr]).astype(int):
            idx = ctr[y[ctr] == i]
            for nm in dict.fromkeys(names[idx]):
                jj = idx[names[idx] == nm]
                v = np.array([vmap.get(s, np.nan) for s in seqs[jj]], float)
                ok = ~np.isnan(v)
                if not ok.any():
                    continue
                xs, vs = x[jj][ok], v[ok]
                vmin, vmax = float(vs.min()), float(vs.max())
                yy = i + 0.38 - 0.76 * ((vs - vmin) / (vmax - vmin) if vmax > vmin else np.full(len(vs), 0.5))
                xs = np.append(xs, min(x_hi, float(x[y == i].max())))
                yy = np.append(yy, yy[-1])
                ax.step(xs, yy, where="post", color=color_for(f"counter:{nm}"), lw=1.2, zorder=4, gid="tk-counter")
                ax.text(x_hi, i + 0.46, f"{abbreviate(nm, 18)} {vmin:g}…{vmax:g} ", fontsize=6, ha="right",
                        va="bottom", color="#333333", clip_on=True)
        drawn["kinds"].add("counter")

    # --- clock-interval whiskers (sparse lanes; ambiguous ones everywhere)
    # (sub-pixel intervals are not drawn: at this scale they are points; zoom in to see them)
    wsel = np.flatnonzero(sparse & ((hi - lo) * px >= 1.5))
    if len(wsel):
        yy = ypos[wsel]
        d = 0.1
        segs_w = [np.stack([np.stack([lo[wsel], yy], 1), np.stack([hi[wsel], yy], 1)], 1)]
        from matplotlib.colors import to_rgba_array

        wc = to_rgba_array([AMBIGUOUS, "#666666"])[np.where(amb[wsel], 0, 1)]  # RGBA rows: no per-segment parsing
        cols_w = [wc]
        capped = (hi[wsel] - lo[wsel]) * px >= 6
        if capped.any():
            cw = wsel[capped]
            segs_w += [np.stack([np.stack([lo[cw], ypos[cw] - d], 1), np.stack([lo[cw], ypos[cw] + d], 1)], 1),
                       np.stack([np.stack([hi[cw], ypos[cw] - d], 1), np.stack([hi[cw], ypos[cw] + d], 1)], 1)]
            cols_w += [wc[capped], wc[capped]]
        ax.add_collection(LineCollection(np.concatenate(segs_w), colors=np.concatenate(cols_w), linewidths=1.0,
                                         zorder=4.5, gid="tk-whiskers"), autolim=False)
        drawn["whiskers"] = True

    # --- instants, logs, states … : one scatter per kind (sparse lanes)
    pts = sparse & ~has_dur
    for k in sorted(set(kind[pts]), key=lambda s: (_POINT_KINDS_ORDER + (s,)).index(s)):
        sel = pts & (kind == k)
        if k == "counter" and vmap:
            continue
        ax.scatter(x[sel], ypos[sel], s=22, marker=kind_marker(k),
                   c=kind_color(k) if color == "kind" else list(colors_of[sel]), edgecolors="white",
                   linewidths=0.4, zorder=5, gid=f"tk-events:{k}")
        drawn["kinds"].add(k)

    # --- ambiguous: an orange ring; race candidates: a red dashed link
    asel = np.flatnonzero(amb & (sparse | (amb.sum() <= 500)))
    if len(asel):
        ax.scatter(x[asel], ypos[asel], s=55, marker="o", facecolors="none", edgecolors=AMBIGUOUS, linewidths=0.9,
                   zorder=5.5, gid="tk-ambiguous")
        drawn["ambiguous"] = True
    rsel = np.flatnonzero(table["race_with"].map(len).to_numpy() > 0) if n else np.zeros(0, np.int64)
    if len(rsel):
        ax.scatter(x[rsel], ypos[rsel], s=150, marker="o", facecolors="none", edgecolors=RACE, linewidths=2.0,
                   zorder=5.6, gid="tk-race-events")
    if len(il.races):
        pos = {int(s): k for k, s in enumerate(table["seq"])}
        segs_r = [[(x[pos[a]], ypos[pos[a]]), (x[pos[b]], ypos[pos[b]])] for a, b in
                  zip(il.races["seq_a"], il.races["seq_b"]) if a in pos and b in pos]
        ax.add_collection(LineCollection(segs_r, colors=RACE, linewidths=1.8, linestyles="--", zorder=6,
                                         gid="tk-races"), autolim=False)
        drawn["races"] = True

    # --- flow and parent/child links across lanes
    if links and n:
        arrows = _links(table, x, ypos, extra)
        if is_dense.any():  # a binned lane shows no single event to point at
            arrows = [a for a in arrows if not (dense_lane[int(round(a[0][1]))] or dense_lane[int(round(a[1][1]))])]
        if len(arrows) > max_links:
            arrows = sorted(arrows, key=lambda a: abs(a[0][0]))[:max_links]
        if len(arrows) > 40 or is_dense.any():  # many links: one LineCollection and a dot at each target (arrow patches are slow)
            ax.add_collection(LineCollection([[a, b] for a, b, _ in arrows], colors="#555555", linewidths=0.7,
                                             alpha=0.6, zorder=4.8, gid="tk-links"), autolim=False)
            ax.scatter([b[0] for _, b, _ in arrows], [b[1] for _, b, _ in arrows], s=8, marker="o",
                       color="#555555", alpha=0.7, zorder=4.8, gid="tk-link-ends")
            arrows_patches: list = []
        else:
            arrows_patches = arrows
        for (x0, y0), (x1, y1), style in arrows_patches:
            ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=7,
                                         color="#444444" if style == "flow" else "#7A7A7A", alpha=0.7, lw=0.8,
                                         linestyle="-" if style == "flow" else ":", zorder=4.8, gid="tk-links",
                                         shrinkA=1, shrinkB=1))
        drawn["links"] = bool(arrows)

    # --- the moment
    tr = il.transition
    if tr is not None and tr.ts_hi > tr.ts_lo:
        ax.axvspan((tr.ts_lo - c) / 1e9, (tr.ts_hi - c) / 1e9, color=TRANSITION, alpha=0.08, lw=0, zorder=0.9)
    ax.axvline(0, color=TRANSITION, lw=1.4, zorder=7, gid="tk-transition")
    what = f"{abbreviate(tr.entity, 60)}: {abbreviate(tr.from_state, 40) or '∅'} → {abbreviate(tr.to_state, 40)}" \
        if tr is not None else ""

    # --- event labels that do not collide
    if labels and n:
        _labels(ax, table, x, ypos, kind, amb, sparse, L, max_labels, il)

    # --- axes
    fs = lane_fontsize or (9 if nl <= 12 else max(6.0, 9 - (nl - 12) / 10))
    width = 30 if nl <= 20 else 24
    # a dense lane's label carries its event count (its density outline is scaled to its own peak)
    ax.set_yticks(range(len(lane_keys)), [abbreviate(k, width) + (f" ({counts[i]:,})" if dense_lane[i] else "")
                                          for i, k in enumerate(lane_keys)], fontsize=fs)
    ax.tick_params(axis="y", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=xticks, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(RelTimeFormatter())
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel(f"time relative to the {'transition' if tr is not None else 'moment'}", fontsize=8)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    if title:
        bits = [f"{len(table):,} events", f"{len(lane_keys)} lanes"]
        if amb.any():
            bits.append(f"{int(amb.sum())} ambiguous")
        if len(il.races):
            bits.append(f"{len(il.races)} race candidate{'s' if len(il.races) > 1 else ''}")
        rule = f" [{tr.rule}]" if tr is not None else ""
        head = f"{_style.fmt_abs(c, tz)}{rule}" + (f"  {what}" if what else "")
        ax.set_title(head + "\n" + " · ".join(bits), fontsize=9, loc="left")
    if legend:
        add_legend(ax, drawn)
    return drawn


def _links(table: pd.DataFrame, x: np.ndarray, ypos: np.ndarray, extra: pd.DataFrame | None) -> list:
    out = []
    lane = table["lane"].astype(str).to_numpy()
    # parent → child spans on another lane: an arrow at the child's start
    sid = table["span_id"].to_numpy(object)
    pid = table["parent_id"].to_numpy(object)
    where = {}
    for j, s in enumerate(sid):
        if isinstance(s, str) and s:
            where.setdefault(s, j)
    for j, p in enumerate(pid):
        if isinstance(p, str) and p in where:
            k = where[p]
            if lane[k] != lane[j] and table["kind"].iat[j] == "span":
                out.append(((x[j], ypos[k]), (x[j], ypos[j]), "parent"))
    # flows: consecutive events of one flow id
    fid = table["flow_id"].to_numpy(object)
    has = np.array([isinstance(f, str) and f != "" for f in fid], bool)
    if has.any():
        idx = np.flatnonzero(has)
        df = pd.DataFrame({"f": fid[idx], "j": idx, "x": x[idx]}).sort_values(["f", "x"], kind="stable")
        for _, g in df.groupby("f", sort=False):
            js = g["j"].tolist()
            for a, b in zip(js, js[1:]):
                if lane[a] != lane[b]:
                    out.append(((x[a], ypos[a]), (x[b], ypos[b]), "flow"))
    return out


def _axes_px(ax: Any) -> float:
    fig = ax.figure
    bbox = ax.get_window_extent() if fig.canvas is not None else None
    return bbox.width if bbox is not None and bbox.width > 10 else fig.get_figwidth() * fig.dpi * 0.75


def _labels(ax: Any, table: pd.DataFrame, x: np.ndarray, ypos: np.ndarray, kind: np.ndarray, amb: np.ndarray,
            sparse: np.ndarray, L: _Lanes, max_labels: int, il: Any) -> None:
    """Place a short label right of each event, greedily by priority, skipping any that would
    overlap one already placed on its lane (estimated from the axes' size in pixels)."""
    fig = ax.figure
    width_px = _axes_px(ax)
    x_lo, x_hi = ax.get_xlim()
    px_per_x = width_px / (x_hi - x_lo)
    fs = 6.5
    char_px = fs * 0.55 * fig.dpi / 72
    race = table["race_with"].map(len).to_numpy() > 0
    evid = set(il.transition.evidence) if il.transition is not None else set()
    seqs = table["seq"].to_numpy()
    cand = np.flatnonzero(sparse)
    prio = np.abs(x[cand]) / max(x_hi - x_lo, 1e-12)
    prio -= 3 * race[cand] + 2 * np.isin(seqs[cand], list(evid)) + 1 * amb[cand]
    cand = cand[np.argsort(prio, kind="stable")]
    placed: dict[int, list[tuple[float, float]]] = {}
    names, states, msgs, ents = (table[c].to_numpy(object) for c in ("name", "state", "message", "entity"))
    n_placed = 0
    from matplotlib.transforms import offset_copy

    off_l = offset_copy(ax.transData, fig=fig, x=3, y=3.5, units="points")
    off_r = offset_copy(ax.transData, fig=fig, x=-3, y=3.5, units="points")
    for j in cand:
        if n_placed >= max_labels:
            break
        text = _event_label(kind[j], _text(names[j]), _text(states[j]), _text(msgs[j]), _text(ents[j]))
        if not text:
            continue
        text = abbreviate(text, 26)
        x0 = (x[j] - x_lo) * px_per_x + 3
        x1 = x0 + len(text) * char_px
        if x1 > width_px:  # would run off the right edge: put it on the left of the event
            x1 = x0 - 6
            x0 = x1 - len(text) * char_px
            ha = "right"
        else:
            ha = "left"
        if x0 < 0:
            continue
        row = int(round(ypos[j] * 4))  # bars stacked within a lane get their own rows
        busy = placed.setdefault(row, [])
        if any(not (x1 + 8 < a or x0 > b + 8) for a, b in busy):
            continue
        busy.append((x0, x1))
        ax.text(x[j], ypos[j], text, transform=off_l if ha == "left" else off_r, fontsize=fs, ha=ha, va="bottom",
                color=RACE if race[j] else "#222222", fontweight="bold" if race[j] else "normal", zorder=9,
                clip_on=True, gid="tk-label")
        n_placed += 1


def legend_handles(drawn: dict) -> list:
    hs: list = []
    if drawn.get("spans"):
        hs.append(Patch(facecolor=kind_color("span"), alpha=0.85, label="span (bar = duration)"))
    for k in _POINT_KINDS_ORDER:
        if k in drawn.get("kinds", ()):
            hs.append(Line2D([], [], ls="none", marker=kind_marker(k), color=kind_color(k), markersize=6, label=k))
    for k in sorted(set(drawn.get("kinds", ())) - set(_POINT_KINDS_ORDER) - {"span"}):
        hs.append(Line2D([], [], ls="none", marker=kind_marker(k), color=kind_color(k), markersize=6, label=k))
    if drawn.get("whiskers"):
        hs.append(Line2D([], [], color="#666666", lw=1, marker="|", markersize=6, label="clock interval"))
    if drawn.get("ambiguous"):
        hs.append(Line2D([], [], ls="none", marker="o", markerfacecolor="none", markeredgecolor=AMBIGUOUS,
                         markeredgewidth=1.6, markersize=9, label="order ambiguous"))
    if drawn.get("races"):
        hs.append(Line2D([], [], color=RACE, lw=1.8, ls="--", marker="o", markerfacecolor="none", markersize=9,
                         label="race candidate"))
    if drawn.get("links"):
        hs.append(Line2D([], [], color="#444444", lw=0.8, marker=">", markersize=4, label="flow / parent→child"))
    if drawn.get("states"):
        hs.append(Patch(facecolor="#999999", alpha=0.25, label="state (band)"))
    if drawn.get("dense"):
        hs.append(Patch(facecolor="#4C72B0", alpha=0.75, label="events per bin (scaled to\nthe lane's peak; n in label)"))
    if drawn.get("not_recording"):
        hs.append(Patch(facecolor=_style.NR_FACE, edgecolor=_style.NR_EDGE, hatch="///", label="not recording"))
    hs.append(Line2D([], [], color=TRANSITION, lw=1.4, label="transition"))
    return hs


def add_legend(ax: Any, drawn: dict) -> Any:
    return ax.legend(handles=legend_handles(drawn), loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7,
                     frameon=False, borderaxespad=0.0)
