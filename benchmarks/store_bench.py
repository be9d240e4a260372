#!/usr/bin/env python3
"""Benchmark the Parquet store against issue 10's targets (standalone; writes only under /tmp).

1. ``ingest`` of the 1M-event workloads of every format vs the sum of ``tk.load`` times of the
   same files (target ≤ 1.25×), and peak memory (largest file, not the total).
2. A 20M-event store (five nodes × the four 1M single-file workloads): ``window()`` of one
   minute vs reading the whole store and filtering (target ≥ 50×, peak RSS < 1 GB); ``window``,
   ``sql`` and ``transitions`` in a process capped at 1 GiB of address space.
3. Transitions over the 20M store on a Dask ``LocalCluster`` (2 workers with a memory limit
   below the store's size), and the same table as the in-memory path on a sample that fits.

Every measurement runs in a fresh subprocess (peak RSS = that process and its children).

Usage::

    python benchmarks/store_bench.py [--data /tmp/tk-bench] [--skip-ingest] [--skip-20m]

A 1M-event set missing under DATA/1m is generated first with the shared gen_workloads.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

PY = sys.executable
GEN = Path("/work/shared/bench/gen_workloads.py")
FILES_1M = ["app.jsonl", "chrome.json", "syslog.log", "strace.txt", "otlp"]
NODES = 5
CAPPED_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1",
              "POLARS_MAX_THREADS": "1", "ARROW_DEFAULT_MEMORY_POOL": "system"}
BUILTIN_BUT_SPANS = "k8s-events,endpoints,process,exit-status,log-state,state-column,value-change,cron"

PRELUDE = textwrap.dedent("""
    import json, os, resource, sys, time
    def peak_mb():
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        return round(max(own, kids) / 1024)
    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    def done(**kw):
        kw["peak_rss_mb"] = peak_mb()
        print("RESULT " + json.dumps(kw))
""")


def run(code: str, *args: str, env: dict | None = None, timeout: int = 3600) -> dict:
    """Run ``code`` in a fresh interpreter; return the dict it printed with ``done()``."""
    e = dict(os.environ, **(env or {}))
    t = time.perf_counter()
    p = subprocess.run([PY, "-c", PRELUDE + textwrap.dedent(code), *args], capture_output=True, text=True,
                       env=e, timeout=timeout)
    wall = time.perf_counter() - t
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode != 0 or not lines:
        return {"error": (p.stderr or p.stdout)[-1500:], "returncode": p.returncode, "wall_s": wall}
    out = json.loads(lines[-1][7:])
    out["wall_s"] = round(wall, 2)
    return out


def ensure_1m(data: Path) -> Path:
    d = data / "1m"
    missing = [f for f in FILES_1M if not (d / f).exists()]
    if missing:
        subprocess.run([PY, str(GEN), "--n", "1000000", "--out", str(d)], check=True)
    return d


def link_tree(files: list[Path], dest: Path) -> None:
    for f in files:
        target = dest / f.name
        if f.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            link_tree(sorted(f.iterdir()), target)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, target)


LOAD = """
    import tracekit as tk
    t = time.perf_counter(); tl = tk.load(sys.argv[1], progress=False); s = time.perf_counter() - t
    done(seconds=s, events=len(tl))
"""

INGEST = """
    from tracekit import store
    kw = json.loads(sys.argv[3])
    t = time.perf_counter(); res = store.ingest(sys.argv[1], sys.argv[2], progress=False, **kw)
    done(seconds=time.perf_counter() - t, events=res.events, errors=res.errors, written=len(res.written),
         worker_peak_rss_mb=res.peak_rss_mb)
"""

WINDOW = """
    from tracekit import store
    t = time.perf_counter(); st = store.open(sys.argv[1]); t_open = time.perf_counter() - t
    a = int(sys.argv[2]); b = a + 60 * 10**9
    times, cpus = [], []
    for _ in range(3):
        c = cpu(); t = time.perf_counter(); w = st.window(a, b); times.append(time.perf_counter() - t)
        cpus.append(cpu() - c)
    done(open_s=t_open, window_s=times[0], window_best_s=min(times), window_cpu_best_s=min(cpus), rows=len(w),
         read=st.last_read, store_events=len(st))
"""

FULLSCAN = """
    # the baseline: read every file of the store whole, apply the clock, filter by ts
    import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
    from tracekit import store
    from tracekit.store import _prepare
    st = store.open(sys.argv[1])
    a = int(sys.argv[2]); b = a + 60 * 10**9
    c = cpu(); t = time.perf_counter(); n = 0
    for part in st._parts:
        tab = _prepare(pq.read_table(part.path), part)
        ts = tab.column("ts").cast(pa.int64())
        n += tab.filter(pc.and_(pc.greater_equal(ts, a), pc.less(ts, b))).num_rows
    done(seconds=time.perf_counter() - t, cpu_s=cpu() - c, rows=n)
"""

CAPPED = """
    # one operation per capped process: each must complete under the cap on its own
    cap = int(sys.argv[2]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from tracekit import store
    st = store.open(sys.argv[1])
    a = int(sys.argv[3]); op = sys.argv[4]; out = {"op": op}
    t = time.perf_counter()
    try:
        if op == "window":
            out["rows"] = len(st.window(a, a + 60 * 10**9))
        elif op == "sql":
            q = st.sql("select source, kind, count(*) n, count(distinct name) names from events group by all")
            out["rows"] = q.num_rows
        elif op == "transitions":
            out["rows"] = len(st.transitions(rules=sys.argv[5].split(",") if len(sys.argv) > 5 else None))
        elif op == "load":
            out["rows"] = len(st.load())
        out["ok"] = True
    except Exception as e:  # MemoryError, or DuckDB's OutOfMemoryException
        out["ok"] = False
        out["error"] = f"{type(e).__name__}: {str(e)[:120]}"
    out["seconds"] = time.perf_counter() - t
    done(**out)
"""

DASK = """
    import dask
    from distributed import Client, LocalCluster
    from tracekit import store
    st = store.open(sys.argv[1]); limit = int(sys.argv[2]) * 2**20
    with dask.config.set({"distributed.worker.memory.pause": False}), \\
            LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=limit, dashboard_address=None,
                         silence_logs=50) as cl, Client(cl) as c:
        t = time.perf_counter(); tr = st.transitions(client=c); s = time.perf_counter() - t
        worker_peak = c.run(lambda: __import__("resource").getrusage(0).ru_maxrss // 1024)
        ddf = st.to_dask(columns=["source", "name"])
        t = time.perf_counter(); counts = ddf.groupby("source").size().compute(); s2 = time.perf_counter() - t
    done(transitions_s=s, transitions=len(tr), worker_peak_mb=worker_peak, worker_limit_mb=limit // 2**20,
         groupby_s=s2, groupby_total=int(counts.sum()))
"""

SAMPLE = """
    # the same table as the in-memory path, on a sample that fits: one node's 1M workloads
    # (ingested afresh: a store written by older readers may number rows differently)
    import shutil
    import tracekit as tk
    from distributed import Client, LocalCluster
    from tracekit import store
    if __name__ == "__main__":
        shutil.rmtree(sys.argv[2], ignore_errors=True)
        store.ingest(sys.argv[1], sys.argv[2], jobs=2, progress=False, year=2024)
        t = time.perf_counter(); mem = tk.load(sys.argv[1], progress=False, year=2024).transitions().table
        s_mem = time.perf_counter() - t
        st = store.open(sys.argv[2])
        t = time.perf_counter(); loc = st.transitions(rules=list(tk.transitions.RULES)).table
        s_loc = time.perf_counter() - t
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=50) as cl, \\
                Client(cl) as c:
            t = time.perf_counter(); tr = st.transitions(client=c).table
            s = time.perf_counter() - t
        done(equal=tr.equals(mem), equal_local=loc.equals(mem), rows=tr.num_rows, memory_s=s_mem, local_s=s_loc,
             dask_s=s)
"""


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/tk-bench")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-20m", action="store_true")
    ap.add_argument("--steps", default="window,capped,dask,sample", help="20M steps to run")
    ap.add_argument("--cap-mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3, help="window/full-scan rounds (round-robin)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    data = Path(args.data)
    results: dict = {"cpus": os.cpu_count(), "jobs": args.jobs}
    src1m = ensure_1m(data)

    if not args.skip_ingest:
        # 1. ingest vs tk.load, file by file
        inp = data / "ingest-in"
        link_tree([src1m / f for f in FILES_1M], inp)
        loads = {}
        for f in FILES_1M:
            r = run(LOAD, str(inp / f))
            loads[f] = r
            print(f"load {f}: {r}", flush=True)
        out = data / "ingest-1m.tkstore"
        shutil.rmtree(out, ignore_errors=True)
        ing = run(INGEST, str(inp), str(out), json.dumps({"jobs": args.jobs}))
        print(f"ingest: {ing}", flush=True)
        total = sum(r.get("seconds", 0) for r in loads.values())
        results["ingest"] = {"loads": loads, "sum_load_s": total, "ingest": ing,
                             "ratio": ing.get("seconds", 0) / total if total else None,
                             "max_load_rss_mb": max(r.get("peak_rss_mb", 0) for r in loads.values()),
                             "sum_load_rss_mb": sum(r.get("peak_rss_mb", 0) for r in loads.values()),
                             "store_mb": dir_size(out) / 2**20}

    if not args.skip_20m:
        # 2. the 20M store
        inp = data / "20m-in"
        for i in range(NODES):
            link_tree([src1m / f for f in FILES_1M], inp / f"node-{i:02d}")
        out = data / "20m.tkstore"
        if not (out / "manifest.json").exists():
            ing = run(INGEST, str(inp), str(out), json.dumps({"jobs": args.jobs, "host": "{dir}", "year": 2024}))
            print(f"ingest 20M: {ing}", flush=True)
            results["ingest_20m"] = ing
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tracekit import store

        st = store.open(out)
        a = (1710406800 + 1800) * 10**9  # 2024-03-14T09:30:00Z: the workloads span 09:00-10:00
        import pyarrow.parquet as pq

        raw = sum(md.row_group(i).total_byte_size for f in st.files
                  for md in [pq.ParquetFile(f).metadata] for i in range(md.num_row_groups))
        results["store_20m"] = {"events": len(st), "files": len(st.files), "disk_mb": dir_size(out) / 2**20,
                                "uncompressed_mb": raw / 2**20}
        print(f"store: {results['store_20m']}", flush=True)
        steps = set(args.steps.split(","))
        if "window" in steps:
            # round-robin (window process, full-scan process, ...): the ratio of the best of each
            # is measured under the same load
            wins, fulls = [], []
            for _ in range(args.rounds):
                wins.append(run(WINDOW, str(out), str(a)))
                print(f"window: {wins[-1]}", flush=True)
                fulls.append(run(FULLSCAN, str(out), str(a)))
                print(f"full scan: {fulls[-1]}", flush=True)
            best_w = min(w.get("window_best_s", float("inf")) for w in wins)
            best_f = min(f.get("seconds", float("inf")) for f in fulls)
            cpu_w = min(w.get("window_cpu_best_s", float("inf")) for w in wins)
            cpu_f = min(f.get("cpu_s", float("inf")) for f in fulls)
            results["window"] = {"window": wins, "full_scan": fulls, "window_best_s": best_w,
                                 "full_scan_best_s": best_f, "speedup": best_f / best_w,
                                 "cpu_s": {"window": cpu_w, "full_scan": cpu_f, "ratio": cpu_f / cpu_w},
                                 "load_avg": os.getloadavg(),
                                 "speedup_per_round": [f.get("seconds", 0) / w["window_best_s"]
                                                       for w, f in zip(wins, fulls) if w.get("window_best_s")]}
        if "capped" in steps:
            capped = {}
            (out / "transitions.parquet").unlink(missing_ok=True)  # no cached result
            for op, extra in (("window", []), ("sql", []), ("transitions", [BUILTIN_BUT_SPANS]),
                              ("transitions", []), ("load", [])):
                key = f"{op}{'-no-span-status' if extra else ''}"
                for cap in (args.cap_mb, 2 * args.cap_mb, 4 * args.cap_mb):
                    r = run(CAPPED, str(out), str(cap), str(a), op, *extra, env=CAPPED_ENV)
                    r["cap_mb"] = cap
                    capped.setdefault(key, []).append(r)
                    print(f"capped {key} {cap} MiB: {r}", flush=True)
                    if r.get("ok") or op == "load":
                        break
            results["capped"] = capped
        # 3. Dask
        if "dask" in steps:
            (out / "transitions.parquet").unlink(missing_ok=True)
            dk = run(DASK, str(out), "1536")
            print(f"dask: {dk}", flush=True)
            results["dask"] = dk
        node = inp / "node-00"
        sample = data / "node00.tkstore"
        if "sample" in steps:
            smp = run(SAMPLE, str(node), str(sample))
            print(f"sample: {smp}", flush=True)
            results["sample"] = smp
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
