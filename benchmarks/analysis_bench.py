#!/usr/bin/env python3
"""Speed of the analysis layer against the peers a user would otherwise write, side by side.

    .venv/bin/python benchmarks/analysis_bench.py [--scale 1.0]

Workloads are synthetic timelines built in memory (seeded), shaped like a fleet incident:
``align``: 5 sources × 1M events on 5 hosts with 10k shared exec/exit pairs (offsets, drift);
``around``: 1,000 ±2 s windows on 10M events (vs a pandas boolean mask);
``transitions``: the built-in rules on 5M events with 200k state changes of 2k entities
(vs pandas groupby/shift/compare); ``interleaving``: 1,000 transitions on 10M events (vs a
pandas boolean mask per window). Each figure is the median of 3 runs in this process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tracekit._load import assemble  # noqa: E402
from tracekit.schema import conform  # noqa: E402

S = 10**9
T0 = 1_751_878_800 * S


def timed(fn, repeat: int = 3) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def src(source_name, host, ts, **cols):
    n = len(ts)
    ev = conform({"ts_src": ts, "kind": cols.pop("kind", "log"), **cols})
    ev = ev.set_column(ev.schema.get_field_index("source"), ev.schema.field("source"),
                       pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([source_name])))
    row = {"source": source_name, "file": source_name, "format": "bench", "status": "loaded", "host": host, "clock": "realtime",
           "domain": f"host={host};clock=realtime", "assumed": [], "offset": 0, "drift_ppm": 0.0, "t0": 0,
           "offset_lo": 0, "offset_hi": 0, "aligned": True, "records": n, "emitted": n, "merged": 0,
           "metadata": 0, "rejected": 0, "rows": n, "_meta": {}}
    return ev, row


def bench_align(scale: float) -> dict:
    rng = np.random.default_rng(1)
    n = int(1_000_000 * scale)
    pairs = int(10_000 * scale)
    pids = rng.choice(np.arange(1000, 10_000_000), pairs, replace=False)
    true_pair = T0 + np.sort(rng.integers(0, 3600 * S, pairs))
    parts = []
    for h in range(5):
        off, drift = int(rng.integers(-5 * S, 5 * S)) if h else 0, float(rng.normal(0, 30)) if h else 0.0
        ts = T0 + np.sort(rng.integers(0, 3600 * S, n))
        names = np.full(n, "write", dtype=object)
        pid = rng.integers(1, 100, n)
        sel = np.sort(rng.choice(n, pairs, replace=False))
        stamps = true_pair - off - ((true_pair - T0) * drift * 1e-6).astype(np.int64) + rng.integers(0, 50_000, pairs)
        ts[sel] = stamps
        names[sel] = "execve"
        pid[sel] = pids
        order = np.argsort(ts, kind="stable")
        parts.append(src(f"h{h}.strace", f"h{h}", ts[order], name=pa.array(names[order], pa.string()), pid=pid[order]))
    tl = assemble([p[0] for p in parts], [], [p[1] for p in parts], {})
    t_align = timed(lambda: tl.align(reference="host:h0"))
    t_sort = timed(lambda: pc.sort_indices(tl.events.column("ts")))
    return {"what": f"align() 5 sources × {n:,} events, {pairs:,} pairs", "tracekit_s": t_align,
            "peer": "pyarrow.compute.sort_indices(ts)", "peer_s": t_sort, "ratio": t_align / t_sort,
            "target": "≤ 3× the sort"}


def big_timeline(n: int, rng, n_ent: int = 2000, state_rows: int = 200_000):
    ts = T0 + np.sort(rng.integers(0, 3600 * S, n))
    ent = np.full(n, None, dtype=object)
    st = np.full(n, None, dtype=object)
    sel = np.sort(rng.choice(n, state_rows, replace=False))
    ent[sel] = np.array([f"pod/ns/p{i}" for i in range(n_ent)], dtype=object)[rng.integers(0, n_ent, state_rows)]
    st[sel] = np.array(["Pending", "Running", "Terminating", "Succeeded"], dtype=object)[rng.integers(0, 4, state_rows)]
    kinds = np.where(pd.isna(ent), "log", "state")
    ev, row = src("big.log", "h", ts, kind=pa.array(kinds, pa.string()), entity=pa.array(ent, pa.string()),
                  state=pa.array(st, pa.string()), name=pa.array(np.where(pd.isna(ent), "write", "phase"), pa.string()))
    return assemble([ev], [], [row], {})


def bench_around(scale: float) -> dict:
    rng = np.random.default_rng(2)
    n = int(10_000_000 * scale)
    tl = big_timeline(n, rng)
    centers = T0 + rng.integers(0, 3600 * S, 1000)
    df = pd.DataFrame({"ts": tl.events.column("ts").cast(pa.int64()).to_numpy()})

    def ours():
        for c in centers:
            tl.around(int(c), before="2s", after="2s")

    def pandas_mask():
        for c in centers[:50]:
            df[(df["ts"] >= c - 2 * S) & (df["ts"] <= c + 2 * S)]

    t_ours = timed(ours, 1) / 1000
    t_pd = timed(pandas_mask, 1) / 50
    return {"what": f"around() per window, {n:,} events", "tracekit_s": t_ours, "peer": "pandas boolean mask",
            "peer_s": t_pd, "ratio": t_pd / t_ours, "target": "≥ 100× faster"}


def bench_transitions(scale: float) -> dict:
    rng = np.random.default_rng(3)
    n = int(5_000_000 * scale)
    tl = big_timeline(n, rng)
    df = tl.to_pandas()[["ts", "entity", "state", "seq"]]

    def pandas_eq():
        s = df[df["entity"].notna() & df["state"].notna()].sort_values(["entity", "ts", "seq"])
        prev = s.groupby("entity")["state"].shift(1)
        return s[(s["state"] != prev) & prev.notna()]

    t_ours = timed(lambda: tl.transitions(rules=["state-column"]))
    t_pd = timed(pandas_eq)
    n_ours = len(tl.transitions(rules=["state-column"]))
    return {"what": f"transitions() state changes, {n:,} events ({n_ours:,} found)", "tracekit_s": t_ours,
            "peer": "pandas filter + groupby/shift/compare", "peer_s": t_pd, "ratio": t_pd / t_ours,
            "target": "≥ 5× faster"}


def bench_interleaving(scale: float) -> dict:
    rng = np.random.default_rng(4)
    n = int(10_000_000 * scale)
    tl = big_timeline(n, rng)
    tr = tl.transitions(rules=["state-column"])
    idx = rng.choice(len(tr), 1000, replace=False)
    items = [tr[int(i)] for i in idx]
    df = tl.to_pandas()[["ts", "source", "name", "entity", "state"]]
    df["t"] = df["ts"].astype("int64")

    def ours():
        for t in items:
            tl.interleaving(t, window="100ms")

    def pandas_mask():
        for t in items[:30]:
            w = df[(df["t"] >= t.ts - S // 10) & (df["t"] <= t.ts + S // 10)]
            w.sort_values(["t"])

    t_ours = timed(ours, 1) / len(items)
    t_pd = timed(pandas_mask, 1) / 30
    return {"what": f"interleaving() per transition (±100 ms), {n:,} events", "tracekit_s": t_ours,
            "peer": "pandas boolean mask + sort", "peer_s": t_pd, "ratio": t_pd / t_ours, "target": "≥ 100× faster"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size")
    ap.add_argument("--only", default="align,around,transitions,interleaving")
    a = ap.parse_args()
    fns = {"align": bench_align, "around": bench_around, "transitions": bench_transitions,
           "interleaving": bench_interleaving}
    print("| workload | tracekit | peer | peer time | ratio | target |")
    print("|---|---:|---|---:|---:|---|")
    for name in a.only.split(","):
        r = fns[name](a.scale)
        print(f"| {r['what']} | {r['tracekit_s'] * 1e3:.2f} ms | {r['peer']} | {r['peer_s'] * 1e3:.2f} ms | "
              f"{r['ratio']:.1f}× | {r['target']} |", flush=True)


if __name__ == "__main__":
    main()
