#!/usr/bin/env python3
"""Speed of the analysis layer against the peers a user would otherwise write, side by side.

    .venv/bin/python benchmarks/analysis_bench.py [--scale 1.0]

Workloads are synthetic timelines built in memory (seeded), shaped like a fleet incident:
``align``: 5 sources × 1M events on 5 hosts with 10k shared exec/exit pairs (offsets, drift);
``around``: 1,000 ±2 s windows on 10M events (vs a pandas boolean mask);
``transitions``: the state-column rule, and all nine built-in rules, on 5M events with 200k
state rows of 2k entities (vs pandas filter, sort, groupby/shift/compare producing the same
rows: from/to state in time order); ``interleaving``: 1,000 transitions on 10M events (vs a
pandas boolean mask + sort per window), per call and with the pandas ``table`` built, on one
source and on five sources whose clocks are known to ±50 µs (there the pairwise ambiguity test
runs). align/around: median of 3 runs in this process; transitions (5 rounds) and interleaving
(3 rounds) run round-robin with their peers, each transitions call right after a run of its
peer. Nothing is cached between transitions() calls but the zero-copy views of the columns; a
row times each call on a new Timeline object (the same events, an empty cache) to show that.
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
from tracekit.timeline import Timeline  # noqa: E402

S = 10**9
T0 = 1_751_878_800 * S


def timed(fn, repeat: int = 3) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def rounds(fns: dict, repeat: int = 3) -> dict:
    """Median time of each function, run round-robin (each once per round) so that load from
    other work on the machine falls on all of them alike."""
    out: dict = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in out.items()}


def after_peer(fns: dict, peer, repeat: int = 5) -> dict:
    """Median time of each function and of ``peer`` (key ``"peer"``), each function run right
    after a run of the peer, round-robin: every call starts with the caches as the peer left
    them (a function run after another of ours would find the columns still cached)."""
    out: dict = {k: [] for k in [*fns, "peer"]}
    for _ in range(repeat):
        for k, fn in fns.items():
            for key, f in (("peer", peer), (k, fn)):
                t = time.perf_counter()
                f()
                out[key].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in out.items()}


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


def big_timeline(n: int, rng, n_ent: int = 2000, state_rows: int = 200_000, sources: int = 1):
    ts = T0 + np.sort(rng.integers(0, 3600 * S, n))
    ent = np.full(n, None, dtype=object)
    st = np.full(n, None, dtype=object)
    state_rows = min(state_rows, n)
    sel = np.sort(rng.choice(n, state_rows, replace=False))
    ent[sel] = np.array([f"pod/ns/p{i}" for i in range(n_ent)], dtype=object)[rng.integers(0, n_ent, state_rows)]
    st[sel] = np.array(["Pending", "Running", "Terminating", "Succeeded"], dtype=object)[rng.integers(0, 4, state_rows)]
    kinds = np.where(pd.isna(ent), "log", "state")
    if sources == 1:
        ev, row = src("big.log", "h", ts, kind=pa.array(kinds, pa.string()), entity=pa.array(ent, pa.string()),
                      state=pa.array(st, pa.string()),
                      name=pa.array(np.where(pd.isna(ent), "write", "phase"), pa.string()))
        return assemble([ev], [], [row], {})
    # events dealt to hosts h0..hk, each clock known to ±50 µs (as an alignment reports it)
    who = rng.integers(0, sources, n)
    evs, rows = [], []
    for h in range(sources):
        m = who == h
        ev, row = src(f"h{h}.log", f"h{h}", ts[m], kind=pa.array(kinds[m], pa.string()),
                      entity=pa.array(ent[m], pa.string()), state=pa.array(st[m], pa.string()),
                      name=pa.array(np.where(pd.isna(ent[m]), "write", "phase"), pa.string()),
                      pid=rng.integers(1, 50, int(m.sum())))
        row.update(offset_lo=-50_000 if h else 0, offset_hi=50_000 if h else 0)
        evs.append(ev)
        rows.append(row)
    return assemble(evs, [], rows, {})


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


def pandas_transitions(df: pd.DataFrame) -> pd.DataFrame:
    """The pandas a user would write for the state-column rule's output on this workload: state
    rows, sorted per entity, previous state by shift, kept where it differs; from/to state in
    time order (ties by entity), as transitions() returns them."""
    s = df[df["entity"].notna() & df["state"].notna()].sort_values(["entity", "ts", "seq"])
    prev = s.groupby("entity")["state"].shift(1)
    out = s[(s["state"] != prev) & prev.notna()].assign(from_state=prev)
    return out.sort_values(["ts", "entity"], kind="stable")


def bench_transitions(scale: float) -> list[dict]:
    rng = np.random.default_rng(3)
    n = int(5_000_000 * scale)
    tl = big_timeline(n, rng)
    df = tl.to_pandas()[["ts", "entity", "state", "seq"]]
    ours = tl.transitions(rules=["state-column"])
    want = pandas_transitions(df)  # the same rows, or the comparison means nothing
    assert ours.table.column("evidence").combine_chunks().values.to_pylist() == want["seq"].tolist()
    assert ours.table.column("from_state").to_pylist() == want["from_state"].tolist()
    def fresh() -> Timeline:  # the same events in a new Timeline object: nothing cached yet
        return Timeline(tl.events, tl.sources, tl.rejects, tl._params, tl._meta)

    r = after_peer({"ours": lambda: tl.transitions(rules=["state-column"]),
                    "fresh": lambda: fresh().transitions(rules=["state-column"]),
                    "all": lambda: tl.transitions()}, lambda: pandas_transitions(df), 5)
    t_ours, t_fresh, t_all, t_pd = r["ours"], r["fresh"], r["all"], r["peer"]
    peer = "pandas filter + sort + groupby/shift/compare, time-ordered"
    return [{"what": f"transitions(rules=['state-column']), {n:,} events ({len(ours):,} found)", "tracekit_s": t_ours,
             "peer": peer, "peer_s": t_pd, "ratio": t_pd / t_ours, "target": "≥ 5× faster"},
            {"what": "… the same, each call on a new Timeline object (first call: empty cache)",
             "tracekit_s": t_fresh, "peer": peer, "peer_s": t_pd, "ratio": t_pd / t_fresh, "target": "(same peer)"},
            {"what": f"transitions() all 9 built-in rules, {n:,} events", "tracekit_s": t_all,
             "peer": peer, "peer_s": t_pd, "ratio": t_pd / t_all, "target": "(same peer)"}]


def bench_interleaving(scale: float, sources: int = 1) -> list[dict]:
    rng = np.random.default_rng(4)
    n = int(10_000_000 * scale)
    tl = big_timeline(n, rng, sources=sources)
    tr = tl.transitions(rules=["state-column"])
    idx = rng.choice(len(tr), min(1000, len(tr)), replace=False)
    items = [tr[int(i)] for i in idx]
    df = tl.to_pandas()[["ts", "source", "name", "entity", "state"]]
    df["t"] = df["ts"].astype("int64")
    amb = []

    def ours():
        for t in items:
            il = tl.interleaving(t, window="100ms")
            amb.append(il._n_ambiguous)

    def ours_table():
        for t in items[:100]:
            len(tl.interleaving(t, window="100ms").table)

    def pandas_mask():
        for t in items[:30]:
            w = df[(df["t"] >= t.ts - S // 10) & (df["t"] <= t.ts + S // 10)]
            w.sort_values(["t"])

    r = rounds({"ours": ours, "table": ours_table, "pd": pandas_mask}, 3)
    t_ours, t_tab, t_pd = r["ours"] / len(items), r["table"] / 100, r["pd"] / 30
    what = (f"interleaving() per transition (±100 ms), {n:,} events, "
            + ("1 source" if sources == 1 else f"{sources} sources ±50 µs, {np.mean(amb):.0f} ambiguous events/window"))
    peer = "pandas boolean mask + sort"
    return [{"what": what, "tracekit_s": t_ours, "peer": peer, "peer_s": t_pd, "ratio": t_pd / t_ours,
             "target": "≥ 100× faster"},
            {"what": what + ", pandas `.table` built", "tracekit_s": t_tab, "peer": peer, "peer_s": t_pd,
             "ratio": t_pd / t_tab, "target": "(same peer)"}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size")
    ap.add_argument("--only", default="align,around,transitions,interleaving,interleaving5")
    a = ap.parse_args()
    fns = {"align": bench_align, "around": bench_around, "transitions": bench_transitions,
           "interleaving": bench_interleaving, "interleaving5": lambda sc: bench_interleaving(sc, sources=5)}
    print("| workload | tracekit | peer | peer time | ratio | target |")
    print("|---|---:|---|---:|---:|---|")
    for name in a.only.split(","):
        out = fns[name](a.scale)
        for r in out if isinstance(out, list) else [out]:
                print(f"| {r['what']} | {r['tracekit_s'] * 1e3:.2f} ms | {r['peer']} | {r['peer_s'] * 1e3:.2f} ms | "
                  f"{r['ratio']:.1f}× | {r['target']} |", flush=True)


if __name__ == "__main__":
    main()
