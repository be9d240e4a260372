"""The clock plot: each domain's estimated offset with its interval, and the evidence pairs it
rests on as residuals against the fit (a forest plot, one row per clock domain)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from ._style import abbreviate, pick_unit

_EV_STYLE = {  # type → (marker, colour, label)
    "lower": (">", "#0072B2", "lower bound (offset ≥)"),
    "upper": ("<", "#D55E00", "upper bound (offset ≤)"),
    "equality": ("o", "#444444", "equality (residual)"),
}


def _ns(v: Any) -> int:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
        return 0
    return int(pd.Timedelta(v).value) if not isinstance(v, (int, np.integer)) else int(v)


def _fmt_dur(ns: float, signed: bool = True) -> str:
    name, f = pick_unit(abs(ns) if ns else 0)
    digits = {"s": 6, "ms": 3, "µs": 1}.get(name, 0)
    return f"{ns / f:{'+' if signed else ''}.{digits}f} {name}".replace("-", "−")


def _us(x: float, pos: int | None = None) -> str:
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1e6:
        return f"{x / 1e6:+g} s".replace("-", "−")
    if a >= 1e3:
        return f"{x / 1e3:+g} ms".replace("-", "−")
    return f"{x:+g} µs".replace("-", "−")


def clocks(al: Any, ax: Any = None, *, max_points: int = 2000, seed: int = 0) -> Any:
    """Each clock domain's offset interval (bar) around its estimate (0), with the evidence
    pairs (causal lower/upper bounds, equalities) as residuals against the fitted offset — on a
    symmetric-log µs axis so a 100 µs interval and a 1 s outlier both read. The text on each row
    gives the offset, interval, drift, method and how much evidence it rests on.

    Example::

        >>> al = tl.align(reference="host:node-a")     # doctest: +SKIP
        >>> ax = tk.plot.clocks(al)                      # doctest: +SKIP
    """
    ck = al.clocks.to_pandas()
    ev = al.evidence.to_pandas()
    n = max(len(ck), 1)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(12, 1.0 + 0.75 * n), layout="constrained")
    corr = {r["domain"]: (_ns(r["offset"]), float(r["drift_ppm"] or 0.0), int(r["t0"] or 0)) for _, r in ck.iterrows()}

    def c(dom: str, t: np.ndarray) -> np.ndarray:
        o, dr, t0 = corr.get(dom, (0, 0.0, 0))
        return o + dr * 1e-6 * (t.astype(np.float64) - t0)

    rng = np.random.default_rng(seed)
    verts, cols = [], []
    seen: set[str] = set()
    widest = 1.0
    for i, r in enumerate(ck.itertuples()):
        off = _ns(r.offset)
        lo, hi = _ns(r.offset_lo) - off, _ns(r.offset_hi) - off
        widest = max(widest, abs(lo) / 1e3, abs(hi) / 1e3)
        if hi > lo:
            verts.append([(lo / 1e3, i - 0.2), (hi / 1e3, i - 0.2), (hi / 1e3, i + 0.2), (lo / 1e3, i + 0.2)])
            cols.append("#9ECAE1" if r.status != "unaligned" else "#DDDDDD")
        ax.plot([0], [i], marker="D", color="#08306B", ms=6, zorder=5, gid="tk-clock-estimate")
        g = ev[(ev["domain_b"] == r.domain) & (ev["domain_a"] == r.via)] if len(ev) else ev
        g2 = ev[(ev["domain_a"] == r.domain) & (ev["domain_b"] == r.via)] if len(ev) else ev
        for gg, sign in ((g, 1), (g2, -1)):
            if gg is None or not len(gg):
                continue
            if len(gg) > max_points:
                gg = gg.sample(max_points, random_state=seed)
            a_dom, b_dom = (r.via, r.domain) if sign == 1 else (r.domain, r.via)
            t = gg["t"].to_numpy(np.int64)
            u = t + c(b_dom, t)
            o_a = corr.get(a_dom, (0, 0.0, 0))[0]
            t_a = u - c(a_dom, u - o_a)
            pred = c(b_dom, t) - c(a_dom, t_a)
            res = (gg["d"].to_numpy(np.float64) - pred) * sign / 1e3  # µs, as an error of this domain
            typ = gg["type"].astype(str).to_numpy()
            if sign == -1:  # a bound on the other side's offset flips
                typ = np.where(typ == "lower", "upper", np.where(typ == "upper", "lower", typ))
            inl = gg["inlier"].to_numpy(bool)
            jit = i - 0.05 + rng.uniform(-0.22, 0.22, len(res))
            for k, (m, col, _label) in _EV_STYLE.items():
                sel = typ == k
                if not sel.any():
                    continue
                ax.scatter(res[sel & inl], jit[sel & inl], marker=m, s=9, color=col, alpha=0.35, linewidths=0,
                           zorder=3, gid=f"tk-evidence:{k}")
                if (sel & ~inl).any():
                    ax.scatter(res[sel & ~inl], jit[sel & ~inl], marker="x", s=14, color="#D62728", alpha=0.7,
                               linewidths=0.8, zorder=3, gid="tk-evidence:outlier")
                    seen.add("outlier")
                seen.add(k)
        drift = f" · drift {r.drift_ppm:+.2f} ppm" if r.drift_ppm else ""
        via = f" via {abbreviate(r.via, 30)}" if isinstance(r.via, str) and r.via else ""
        what = "reference" if r.status == "reference" else (
            f"offset {_fmt_dur(off)}  [{_fmt_dur(lo)}, {_fmt_dur(hi)}]{drift} · {r.method} · "
            f"{int(r.evidence or 0):,} pairs{via}")
        ax.annotate(what, (0.0, i + 0.48), xycoords=("axes fraction", "data"), xytext=(4, 1),
                    textcoords="offset points", ha="left", va="bottom", fontsize=7, color="#222222",
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 0.3})
    ax.add_collection(PolyCollection(verts, facecolors=cols, edgecolors="#3182BD", linewidths=0.8, zorder=2,
                                     gid="tk-clock-interval"), autolim=False)
    lim = max(widest * 4, 10.0)
    data_lim = [abs(x) for coll in ax.collections for x in np.asarray(coll.get_offsets())[:, 0]] \
        if ax.collections else []
    if data_lim:
        lim = max(lim, float(np.nanmax(data_lim)) * 1.3)
    ax.set_xscale("symlog", linthresh=max(1.0, widest / 4), linscale=1.5)
    ax.set_xlim(-lim, lim)
    ax.xaxis.set_major_formatter(FuncFormatter(_us))
    ax.axvline(0, color="#08306B", lw=0.8, zorder=1)
    ax.set_ylim(n - 0.5, -0.6)
    ax.set_yticks(range(len(ck)), [abbreviate(d, 36) for d in ck["domain"]], fontsize=8)
    ax.hlines(np.arange(n - 1) + 0.5, -lim, lim, colors="#DDDDDD", linewidths=0.6, zorder=0)
    ax.tick_params(axis="x", labelsize=7.5)
    ax.set_xlabel("error of the evidence against the fitted offset (symmetric log scale)", fontsize=8)
    ax.set_title(f"Clock alignment, reference {getattr(al, 'reference', '')}: each domain's offset interval "
                 "(bar) and the evidence it rests on", fontsize=9, loc="left")
    hs = [Patch(facecolor="#9ECAE1", edgecolor="#3182BD", label="offset interval"),
          Line2D([], [], ls="none", marker="D", color="#08306B", label="estimate")]
    hs += [Line2D([], [], ls="none", marker=m, color=col, label=label) for k, (m, col, label) in _EV_STYLE.items()
           if k in seen]
    if "outlier" in seen:
        hs.append(Line2D([], [], ls="none", marker="x", color="#D62728", label="outlier (not used)"))
    ax.legend(handles=hs, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    return ax
