"""Benchmark: one interleaving figure rendered to PNG vs a bare broken_barh + scatter figure of
the same events.

Targets (issue 8): 20 lanes × 10,000 events in ≤ 1.5× the bare figure's time; 50,000 events
(40 lanes) under 3 s.

    MPLBACKEND=Agg .venv/bin/python benchmarks/plot_bench.py [--repeat 3]

Times are the best of ``--repeat`` runs. "render" starts from a computed Interleaving (what
``tk.browse`` and the small multiples redraw); "end to end" includes ``tl.interleaving()``
(ordering, clock intervals, ambiguity and race detection), which the bare figure does not do.
"""

from __future__ import annotations

import argparse
import io
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from tracekit import plot  # noqa: E402
from tracekit.plot._demo import T0, dense_timeline  # noqa: E402

FIGSIZE = (12, 8)
DPI = 100


def bare(tl) -> None:
    """The reference: per lane one broken_barh of its spans, one scatter of everything else."""
    ev = tl.events
    ts = ev.column("ts").cast(pa.int64()).to_numpy()
    dur = ev.column("dur").cast(pa.int64()).fill_null(-1).to_numpy()
    src = ev.column("source").cast(pa.string()).to_numpy(zero_copy_only=False)
    c = T0 + 5 * 10**9
    x = (ts - c) / 1e9
    lanes = sorted(set(src))
    y = np.searchsorted(np.array(lanes, object), src)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    sp = dur >= 0
    for i in range(len(lanes)):
        m = sp & (y == i)
        ax.broken_barh(list(zip(x[m], dur[m] / 1e9)), (i - 0.3, 0.6))
    ax.scatter(x[~sp], y[~sp], s=10)
    ax.set_yticks(range(len(lanes)), lanes)
    fig.savefig(io.BytesIO(), format="png", dpi=DPI)
    plt.close(fig)


def ours(tl, il=None, **kw) -> None:
    at = il if il is not None else T0 + 5 * 10**9
    ax = plot.interleaving(tl, at, window="5s", **kw)
    ax.figure.set_size_inches(*FIGSIZE)
    ax.figure.savefig(io.BytesIO(), format="png", dpi=DPI)
    plt.close(ax.figure)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    bare(dense_timeline(lanes=2, events=10))  # warm-up (fonts, caches)
    ours(dense_timeline(lanes=2, events=10))
    print(f"{'case':<28}{'bare':>9}{'render':>9}{'ratio':>8}{'end to end':>12}{'ratio':>8}")
    # default: lanes busier than one event per ~5 px are binned (what a reader sees);
    # "unbinned" forces every event to be drawn as its own bar/marker, for comparison
    for lanes, events, kw, tag in ((20, 10_000, {}, ""), (20, 10_000, {"dense": 10**9}, " unbinned"),
                                   (40, 50_000, {}, ""), (40, 50_000, {"dense": 10**9}, " unbinned")):
        tl = dense_timeline(lanes=lanes, events=events)
        il = tl.interleaving(T0 + 5 * 10**9, window="5s")
        tb = best(lambda tl=tl: bare(tl), a.repeat)
        tr = best(lambda tl=tl, il=il, kw=kw: ours(tl, il, **kw), a.repeat)
        te = best(lambda tl=tl, kw=kw: ours(tl, **kw), a.repeat)
        name = f"{lanes} × {events:,}{tag}"
        print(f"{name:<28}{tb:>8.2f}s{tr:>8.2f}s{tr / tb:>7.2f}×{te:>11.2f}s{te / tb:>7.2f}×")
    print("targets: 20 × 10,000 render ≤ 1.5× bare; 50,000 events < 3 s")


if __name__ == "__main__":
    main()
