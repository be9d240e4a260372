"""The Parquet store (tracekit.store): ingest, lazy reads, SQL views, Dask, memory bounds.

Two data sets: the demo incident (every reader, clocks to align, transitions to find) and a
synthetic Parquet workload big enough that a 1 GiB address-space cap or a Dask worker's
memory limit cannot hold it (3M events, ~900 MB in Arrow).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import tracekit as tk
from tracekit import store
from tracekit.demo import hosts_by_folder

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo-incident"
GEN = Path("/work/shared/bench/gen_workloads.py")
if not GEN.exists():
    GEN = ROOT.parent / "shared" / "bench" / "gen_workloads.py"

pytestmark = [
    # distributed's own resource/teardown warnings (sockets, event loops) are not tracekit's
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore:.*[Pp]ort.*is already in use.*:UserWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

SYNTH_OPTS = {"time": "time", "name": "name", "pid": "pid", "entity": "entity", "message": "message",
              "level": "level", "time_unit": "ns"}
T0 = 1710406800 * 10**9  # 2024-03-14T09:00:00Z


def _plain(t: pa.Table) -> pa.Table:
    """Dictionary columns as strings (chunking and dictionaries may differ, values must not)."""
    return pa.table([c.cast(pa.string()) if pa.types.is_dictionary(c.type) else c for c in t.columns],
                    names=t.column_names).combine_chunks()


def _same_events(a: pa.Table, b: pa.Table) -> None:
    a, b = _plain(a), _plain(b)
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        assert a.column(name).equals(b.column(name)), name


def _synth(path: Path, n: int, seed: int, hours: int = 4) -> None:
    """n events over ``hours`` hours: rare exec/exit (process transitions), the rest I/O logs."""
    rng = np.random.default_rng(seed)
    ts = np.sort(T0 + rng.integers(0, hours * 3600 * 10**9, n))
    names = np.array(["read", "write", "connect", "openat", "execve", "exit"])
    pick = np.minimum(rng.geometric(0.6, n) - 1, 3)
    rare = rng.random(n) < 0.002
    pick[rare] = rng.integers(4, 6, int(rare.sum()))
    pid = rng.integers(100, 400, n)
    ids = pa.array(np.arange(n)).cast(pa.string())
    msg = pc.binary_join_element_wise("request handled id=", ids, " status ok path /api/v1/items/",
                                      pa.array(pid).cast(pa.string()), "")
    pq.write_table(pa.table({
        "time": pa.array(ts, pa.int64()),
        "name": pa.array(names[pick]),
        "pid": pa.array(pid),
        "entity": pc.binary_join_element_wise("proc/h/", pa.array(pid).cast(pa.string()), ""),
        "level": pa.array(np.array(["info", "warn", "error"])[rng.integers(0, 3, n)]),
        "message": msg,
        # exec'd binaries: a process's command changes now and then (process transitions)
        "filename": pa.array(np.where(pick == 4, np.char.add("/usr/bin/job", (pid % 3 + rng.integers(0, 2, n))
                                                              .astype(str)), None)),
    }), path, row_group_size=256 * 1024)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo_mem() -> tk.Timeline:
    return tk.load(DEMO, host=hosts_by_folder(DEMO), progress=False)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "demo.tkstore"
    res = store.ingest(DEMO, out, jobs=2, host=hosts_by_folder(DEMO), progress=False)
    assert not res.errors
    return out


@pytest.fixture(scope="module")
def synth_store(tmp_path_factory) -> tuple[Path, Path]:
    src = tmp_path_factory.mktemp("synth-in")
    for i in range(3):
        _synth(src / f"node-{i}.parquet", 1_000_000, seed=i)
    out = tmp_path_factory.mktemp("synth") / "synth.tkstore"
    res = store.ingest(src, out, jobs=2, progress=False, **SYNTH_OPTS)
    assert not res.errors and res.events == 3_000_000
    return src, out


@pytest.fixture(scope="module")
def workloads(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    subprocess.run([sys.executable, str(GEN), "--n", "20000", "--out", str(out), "--otlp-files", "2"],
                   check=True, capture_output=True)
    (out / "manifest.json").unlink()
    return out


# --------------------------------------------------------------------------- equality with tk.load


def test_demo_store_equals_load(demo_store, demo_mem):
    st = store.open(demo_store)
    assert len(st) == len(demo_mem)
    _same_events(st.load().events, demo_mem.events)
    drop = ["seconds"]
    assert st.sources.drop(drop).equals(demo_mem.sources.drop(drop))
    assert _plain(st.rejects).equals(_plain(demo_mem.rejects))
    assert set(st.meta) == {r["source"] for r in demo_mem.sources.to_pylist() if r["status"] == "loaded"}
    # hour partitions per source, sorted by ts_src with row-group statistics
    f = pq.ParquetFile(st.files[0])
    assert f.metadata.row_group(0).column(1).statistics.has_min_max
    src = f.read(columns=["ts_src"]).column(0).to_numpy()
    assert np.all(np.diff(src) >= 0)
    assert all("/hour=" in p and "/sid=" in p for p in st.files)


def test_generated_workloads_equal_load(workloads, tmp_path):
    res = store.ingest(workloads, tmp_path / "w.tkstore", jobs=2, progress=False)
    mem = tk.load(workloads, progress=False)
    assert not res.errors and res.events == len(mem)
    st = res.open()
    _same_events(st.load().events, mem.events)
    q = "select source::VARCHAR s, kind::VARCHAR k, count(*) n, sum(seq) q from events group by all order by all"
    assert st.sql(q).equals(mem.sql(q))


# --------------------------------------------------------------------------- windows, SQL, clocks


def test_window_prunes_row_groups(synth_store):
    _, path = synth_store
    st = store.open(path)
    a, b = T0 + 90 * 60 * 10**9, T0 + 91 * 60 * 10**9  # one minute
    w = st.window(a, b)
    read = st.last_read
    assert read["files"] == 3 and read["files_total"] >= 12  # one hour file per source
    assert 0 < read["row_groups"] < read["row_groups_total"]
    ref = st.sql(f"select * from events where ts >= make_timestamp_ns({a})::TIMESTAMPTZ_NS "
                 f"and ts < make_timestamp_ns({b})::TIMESTAMPTZ_NS order by ts, seq")
    assert w.events.num_rows == ref.num_rows > 0
    assert w.events.column("seq").equals(ref.column("seq").cast(pa.uint64()))
    ts = w.events.column("ts").cast(pa.int64()).to_numpy()
    assert ts.min() >= a and ts.max() < b and np.all(np.diff(ts) >= 0)


def test_align_stored_as_clock_table(demo_store, demo_mem, tmp_path):
    path = tmp_path / "demo.tkstore"
    shutil.copytree(demo_store, path)
    before = {p: os.stat(p).st_mtime_ns for p in store.open(path).files}
    ref = "host:" + json.loads((DEMO / "TRUTH.json").read_text())["names"]["hosts"][0]
    al_mem = demo_mem.align(reference=ref)
    al = store.open(path).align(reference=ref)
    assert al.clocks.equals(al_mem.clocks)
    st = al.timeline
    assert isinstance(st, store.StoreTimeline)
    assert {p: os.stat(p).st_mtime_ns for p in st.files} == before  # events not rewritten
    assert st.sources.drop(["seconds"]).equals(al_mem.timeline.sources.drop(["seconds"]))
    _same_events(st.load().events, al_mem.timeline.events)
    lo, hi = al_mem.timeline.time_range()
    mid = (lo + hi) // 2
    _same_events(st.window(mid, mid + 120 * 10**9).events, al_mem.timeline.window(mid, mid + 120 * 10**9).events)
    tr_mem = al_mem.timeline.transitions()
    tr = st.transitions()
    assert tr.table.equals(tr_mem.table)
    il, il_mem = st.interleaving(tr[10], window="2s"), al_mem.timeline.interleaving(tr_mem[10], window="2s")
    assert il.to_pandas().equals(il_mem.to_pandas())
    assert _plain(il.state_at_start).equals(_plain(il_mem.state_at_start))
    assert store.open(path).clocks.column("offset").equals(al_mem.timeline.sources.column("offset"))


def test_sql_views(demo_store, demo_mem):
    st = store.open(demo_store)
    for q in ("select source::VARCHAR s, count(*) n, min(ts) a, max(ts) b from events group by 1 order by 1",
              "select source, format, rows from sources order by source",
              "select source, reason, count(*) n from rejects group by all order by all"):
        assert st.sql(q).equals(demo_mem.sql(q)), q
    assert st.sql("select count(*) from clocks").column(0)[0].as_py() == demo_mem.sources.num_rows
    df = st.sql("select rule, count(*) n from transitions group by 1 order by 1", output="pandas")
    exp = demo_mem.transitions().table.group_by("rule").aggregate([("rule", "count")]).sort_by("rule")
    assert df["n"].tolist() == exp.column("rule_count").to_pylist()
    assert (demo_store / "transitions.parquet").exists()


# --------------------------------------------------------------------------- incremental, atomic, errors


def _mtimes(path: Path) -> dict[str, int]:
    return {p: os.stat(p).st_mtime_ns for p in store.open(path).files}


def test_reingest_rewrites_only_changed(workloads, tmp_path):
    src = tmp_path / "in"
    shutil.copytree(workloads, src)
    out = tmp_path / "s.tkstore"
    store.ingest(src, out, jobs=1, progress=False)
    before = _mtimes(out)
    res = store.ingest(src, out, jobs=1, progress=False)
    assert res.written == [] and len(res.unchanged) == 6
    assert _mtimes(out) == before
    with (src / "syslog.log").open("a") as f:
        f.write("Mar 14 12:00:00 web-1 sshd[4242]: Accepted publickey for root from 10.0.0.9\n")
    res = store.ingest(src, out, jobs=1, progress=False)
    assert res.written == ["syslog.log"]
    after = _mtimes(out)
    syslog_dir = f"sid={store._sid('syslog.log')}"
    assert {p: t for p, t in after.items() if syslog_dir not in p} == \
        {p: t for p, t in before.items() if syslog_dir not in p}
    assert not any(p in before for p in after if syslog_dir in p)  # fresh names for the new hash
    assert all(Path(p).exists() for p in after) and not any(Path(p).exists() for p in before if syslog_dir in p)
    _same_events(store.open(out).load().events, tk.load(src, progress=False).events)
    (src / "app.jsonl").unlink()  # an input gone from the folder leaves the store
    store.ingest(src, out, jobs=1, progress=False)
    assert "app.jsonl" not in store.open(out).sources.column("source").to_pylist()


def test_interrupted_ingest_keeps_previous_store(workloads, tmp_path, monkeypatch):
    src = tmp_path / "in"
    shutil.copytree(workloads, src)
    out = tmp_path / "s.tkstore"
    store.ingest(src, out, jobs=1, progress=False)
    old = store.open(out).load().events
    with (src / "app.jsonl").open("a") as f:
        f.write('{"ts": "2024-03-14T12:00:00.000001+00:00", "level": "INFO", "msg": "late"}\n')

    def crash(*a, **k):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(store, "_commit", crash)
    with pytest.raises(KeyboardInterrupt):
        store.ingest(src, out, jobs=1, progress=False)
    monkeypatch.undo()
    (out / ".manifest.json.deadbeef.tmp").write_text('{"version": 1, "sour')  # a torn temp file
    st = store.open(out)
    _same_events(st.load().events, old)  # the new partitions are on disk but not committed
    assert st.sql("select count(*) from events").column(0)[0].as_py() == old.num_rows
    on_disk = {str(p) for p in (out / "events").rglob("*.parquet")}
    assert on_disk > set(st.files)
    res = store.ingest(src, out, jobs=1, progress=False)
    assert res.written == ["app.jsonl"]
    st = store.open(out)
    assert {str(p) for p in (out / "events").rglob("*.parquet")} == set(st.files)  # strays removed
    assert not list(out.glob(".*.tmp"))
    assert len(st) == old.num_rows + 1


def test_per_file_errors_collected(workloads, tmp_path, monkeypatch):
    import tracekit._load as load_mod

    real = load_mod._read_one

    def flaky(inp, reader, opts):
        if inp.name == "strace.txt":
            raise RuntimeError("disk on fire")
        return real(inp, reader, opts)

    monkeypatch.setattr(load_mod, "_read_one", flaky)
    res = store.ingest(workloads, tmp_path / "s.tkstore", jobs=1, progress=False)
    assert [n for n, _ in res.errors] == ["strace.txt"] and "disk on fire" in res.errors[0][1]
    assert len(res.written) == 5
    st = res.open()
    rows = {r["source"]: r for r in st.sources.to_pylist()}
    assert rows["strace.txt"]["status"] == "failed" and "disk on fire" in rows["strace.txt"]["note"]
    assert st.sql("select count(distinct source) from events").column(0)[0].as_py() == 5
    monkeypatch.undo()
    res = store.ingest(workloads, tmp_path / "s.tkstore", jobs=1, progress=False)  # retried next time
    assert res.written == ["strace.txt"] and not res.errors


def test_cli_ingest(tmp_path, capsys):
    from tracekit.cli import main

    assert main(["ingest", str(DEMO), "-o", str(tmp_path / "d.tkstore"), "--host-dirs", "-q", "--jobs", "2"]) == 0
    n = len(tk.load(DEMO, host=hosts_by_folder(DEMO)).events)
    assert f"{n:,} events" in capsys.readouterr().out
    assert len(store.open(tmp_path / "d.tkstore")) == n


# --------------------------------------------------------------------------- Dask


def test_dask_local_cluster(demo_store, demo_mem, synth_store, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, synth = synth_store
    st = store.open(synth)
    import dask

    arrow_bytes = 3_000_000 * 290  # ~ what the synthetic store takes in Arrow (measured: 294 B/row)
    limit = 700 * 2**20  # a worker holds ~350 MB after importing tracekit
    assert limit < arrow_bytes
    # no pausing at 80 %: a worker past 95 % of its limit is still killed (and the test fails)
    with dask.config.set({"distributed.worker.memory.pause": False}), distributed.LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=limit, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        # the sample that fits: the same tables as the in-memory path
        demo = store.open(demo_store)
        assert demo.transitions(client=client).table.equals(demo_mem.transitions().table)
        lo, _ = demo_mem.time_range()
        w = demo.window(lo + 60 * 10**9, lo + 900 * 10**9, client=client)
        _same_events(w.events, demo_mem.window(lo + 60 * 10**9, lo + 900 * 10**9).events)
        # a store larger than a worker's memory limit
        tr = st.transitions(rules=["process", "exit-status"], client=client)
        local = st.transitions(rules=["process", "exit-status"])
        assert len(tr) > 100 and tr.table.equals(local.table)
        a = T0 + 30 * 60 * 10**9
        _same_events(st.window(a, a + 60 * 10**9, client=client).events, st.window(a, a + 60 * 10**9).events)
        ddf = st.to_dask(columns=["ts", "source", "name", "seq"])
        counts = ddf.groupby("name").size().compute(scheduler=client).sort_index()
        ref = st.sql("select name, count(*) n from events group by 1 order by 1", output="pandas")
        assert counts.tolist() == ref["n"].tolist()
        assert ddf["seq"].max().compute(scheduler=client) == 3_000_000 - 1
        # ingest through the cluster's workers
        res = store.ingest(DEMO, tmp_path / "d.tkstore", scheduler=client, host=hosts_by_folder(DEMO),
                           progress=False)
        assert not res.errors
        _same_events(res.open().load().events, demo_mem.events)


# --------------------------------------------------------------------------- memory cap


_CAPPED = textwrap.dedent("""
    import json, resource, sys
    cap = int(sys.argv[2]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from tracekit import store
    st = store.open(sys.argv[1])
    out = {}
    if sys.argv[3] == "load":
        try:
            st.load()
            out["load"] = "ok"
        except MemoryError:
            out["load"] = "MemoryError"
    else:
        t0 = int(sys.argv[4])
        w = st.window(t0, t0 + 60 * 10**9)
        out["window"] = len(w)
        out["sql"] = st.sql("select count(*) n, count(distinct pid) p from events where name = 'execve'").to_pylist()
        out["transitions"] = len(st.transitions(rules=["process", "exit-status"]))
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    out["rss_mb"] = int(hwm) // 1024
    print(json.dumps(out))
""")


def _capped(path: Path, mode: str, cap_mb: int = 1024) -> subprocess.CompletedProcess:
    env = dict(os.environ, MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="1", POLARS_MAX_THREADS="1",
               ARROW_DEFAULT_MEMORY_POOL="system")
    return subprocess.run([sys.executable, "-c", _CAPPED, str(path), str(cap_mb), mode, str(T0 + 3600 * 10**9)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_memory_capped_process(synth_store):
    _, path = synth_store
    disk = sum(f.stat().st_size for f in path.rglob("*.parquet"))
    p = _capped(path, "load")
    assert p.returncode != 0 or json.loads(p.stdout)["load"] == "MemoryError", \
        "the store fits under the cap: the test proves nothing"
    p = _capped(path, "query")
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout)
    st = store.open(path)
    assert out["window"] == len(st.window(T0 + 3600 * 10**9, T0 + 3660 * 10**9)) > 0
    assert out["sql"] == st.sql("select count(*) n, count(distinct pid) p from events where name = 'execve'").to_pylist()
    assert out["transitions"] == len(st.transitions(rules=["process", "exit-status"])) > 0
    assert disk > 50 * 2**20 and out["rss_mb"] < 1024


# --------------------------------------------------------------------------- transitions in slices


def test_transitions_in_slices_equal_memory(demo_store, demo_mem):
    from tracekit.store import _candidate_where

    st = store.open(demo_store)
    ref = demo_mem.transitions().table
    assert {"span-status", "state-column", "cron"} <= set(ref.column("rule").to_pylist())
    # many small time slices: every entity's state is carried across slice boundaries
    assert len(st._slices(_candidate_where(st, ["state-column", "cron"]), 300)) > 8
    tr = st.transitions(slice_rows=300)
    assert tr.table.equals(ref)


def test_slice_merge_equals_whole(demo_mem):
    """Random flapping states cut into slices at random times: the reduced, merged slices give
    the transitions of all rows at once (span-status debounces runs of 3, state-column has
    explicit from-states on some rows)."""
    from tracekit.schema import SOURCE_SCHEMA, conform
    from tracekit.store import _rows_with, _run_rows, _SliceMerge
    from tracekit.timeline import Timeline
    from tracekit.transitions import find_transitions

    rng = np.random.default_rng(7)
    n = 4000
    ts = np.sort(T0 + rng.integers(0, 600 * 10**9, n))
    ts[100:120] = ts[100]  # ties in time
    ent = rng.integers(0, 6, n)
    flip = rng.random(n) < 0.3
    state = np.where(np.cumsum(flip) % 2 == 0, "ok", "error")
    state[rng.random(n) < 0.05] = "error"
    kind = np.where(rng.random(n) < 0.7, "span", "state")
    olds = np.where((kind == "state") & (rng.random(n) < 0.2), "was", None)
    ev = conform({"ts_src": ts, "ts": pa.array(ts).view(pa.timestamp("ns", tz="UTC")), "kind": kind,
                  "source": "s", "entity": pc.binary_join_element_wise("e", pa.array(ent).cast(pa.string()), ""),
                  "state": state, "attrs": pa.array([[("oldstate", o)] if o else [] for o in olds],
                                                   pa.map_(pa.string(), pa.string()))})
    ev = ev.set_column(ev.schema.get_field_index("seq"), "seq", pa.array(np.arange(n, dtype=np.uint64)))
    tl = Timeline(ev, SOURCE_SCHEMA.empty_table(), demo_mem.rejects.slice(0, 0))
    rules = ["span-status", "state-column"]
    whole = find_transitions(tl, rules=rules).table
    assert whole.num_rows > 50
    cuts = np.unique(rng.integers(0, n, 25))
    merge = _SliceMerge(rules, tl.sources, {}, {})
    kept_total = 0
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, n]):
        chunk = ev.slice(int(a), int(b - a))
        kept = [_run_rows(chunk, r, tl.sources)[0] for r in rules]
        kept_total += sum(len(k) for k in kept)
        merge.add(_rows_with(chunk, np.unique(np.concatenate(kept))), kept)
    got = pa.concat_tables(merge.tables)
    got = got.take(pc.sort_indices(got, [("ts", "ascending"), ("entity", "ascending"), ("rule", "ascending")]))
    assert kept_total < n  # the reduction dropped rows
    assert got.equals(whole)


def test_sort_events_merges_runs():
    from tracekit.schema import conform
    from tracekit.store import _sort_events

    def part(ts, seq):
        t = conform({"ts_src": ts, "ts": pa.array(ts, pa.int64()).view(pa.timestamp("ns", tz="UTC")), "kind": "log",
                     "source": "s"})
        return t.set_column(t.schema.get_field_index("seq"), "seq", pa.array(seq, pa.uint64()))

    def key(t):
        return list(zip(t.column("ts").cast(pa.int64()).to_pylist(), t.column("seq").to_pylist()))

    a, b = part([1, 5, 9], [0, 1, 2]), part([2, 5, 7], [3, 4, 5])
    for tables in ([a, b], [b, a]):  # files in seq order (a stable sort on ts), or not (both keys)
        out = _sort_events(tables, runs=True)
        assert key(out) == sorted(key(out)) and out.num_rows == 6
