"""Chrome trace-event JSON export: read back with tracekit's own reader, and checked against the
format's rules independently (X slices nest per thread, flows have both ends, M names)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.demo import hosts_by_folder
from tracekit.export import to_chrome_json
from tracekit.plot._demo import T0, dense_timeline
from tracekit.schema import REJECT_SCHEMA, SOURCE_SCHEMA, conform

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo-incident"


@pytest.fixture(scope="module")
def demo():
    tl = tk.load(DEMO, host=hosts_by_folder(DEMO))
    return tl.align(reference="host:node-a").timeline


def ns_of(us) -> int:
    """Chrome ts/dur (µs, as written) → exact int ns."""
    return int(Decimal(str(us)) * 1000)


def check_rules(events: list[dict]) -> None:
    """The format's rules, checked without tracekit: per (pid, tid) X slices nest; every b has
    its e; every flow id has exactly one s and one f; every pid/tid used is named by M events."""
    xs = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            xs[(e["pid"], e["tid"])].append((ns_of(e["ts"]), ns_of(e["ts"]) + ns_of(e["dur"])))
    for sl in xs.values():
        sl.sort(key=lambda se: (se[0], -(se[1] - se[0])))
        stack: list[int] = []
        for s, e in sl:
            while stack and stack[-1] <= s:
                stack.pop()
            assert not stack or e <= stack[-1], "X slices overlap without nesting"
            stack.append(e)
    b = Counter((e["cat"], e["id"]) for e in events if e["ph"] == "b")
    en = Counter((e["cat"], e["id"]) for e in events if e["ph"] == "e")
    assert b == en
    flows = defaultdict(Counter)
    for e in events:
        if e["ph"] in "stf" and e.get("cat") == "tk.flow":
            flows[e["id"]][e["ph"]] += 1
    for fid, c in flows.items():
        assert c["s"] == 1 and c["f"] == 1, (fid, c)
    named_p = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    named_t = {(e["pid"], e["tid"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    for e in events:
        if e["ph"] != "M":
            assert e["pid"] in named_p and (e["pid"], e["tid"]) in named_t


def test_demo_round_trip(demo, tmp_path):
    path = to_chrome_json(demo, tmp_path / "demo.json")
    doc = json.loads(path.read_text())
    events = doc["traceEvents"]
    check_rules(events)
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    loaded = {r["source"] for r in demo.sources.to_pylist() if r["status"] == "loaded"}
    assert names == loaded
    back = tk.load(path)
    assert back.events.num_rows == demo.events.num_rows
    a = np.sort(demo.events.column("ts").cast(pa.int64()).to_numpy())
    b = np.sort(back.events.column("ts").cast(pa.int64()).to_numpy())
    assert np.array_equal(a, b)  # every nanosecond survives
    k0 = Counter(demo.events.column("kind").cast(pa.string()).to_pylist())
    k1 = Counter(back.events.column("kind").cast(pa.string()).to_pylist())
    assert k1["span"] == k0["span"]
    # the original kind and source travel in args
    attrs = back.events.column("attrs").to_pylist()
    kinds = Counter(dict(a)["args.kind"] for a in attrs)
    assert kinds == k0
    assert back.sources.to_pylist()[0]["clock"] == "realtime"


def test_window(demo, tmp_path):
    d = pd.Timestamp(json.loads((DEMO / "TRUTH.json").read_text())["deploy"]["time"])
    start, end = d + pd.Timedelta("9s"), d + pd.Timedelta("10s")  # the endpoint change and the race
    path = to_chrome_json(demo, tmp_path / "w.json", start=start, end=end)
    back = tk.load(path)
    want = demo.window(start, end)
    assert back.events.num_rows == want.events.num_rows > 0


def _timeline(rows: list[dict]) -> tk.Timeline:
    cols: dict[str, list] = defaultdict(list)
    keys = {k for r in rows for k in r}
    for r in sorted(rows, key=lambda r: r["ts"]):
        for k in keys:
            cols[k].append(r.get(k))
    n = len(rows)
    ev = conform({**{k: v for k, v in cols.items() if k not in ("ts", "dur")},
                  "ts": pa.array(cols["ts"], pa.timestamp("ns", tz="UTC")), "ts_src": cols["ts"],
                  "dur": pa.array(cols.get("dur", [None] * n), pa.duration("ns")),
                  "seq": np.arange(n, dtype=np.uint64)}, n)
    srcs = sorted({r["source"] for r in rows})
    sources = pa.Table.from_pylist([{"source": s, "status": "loaded", "host": "h", "clock": "realtime"} for s in srcs],
                                   schema=SOURCE_SCHEMA)
    return tk.Timeline(ev, sources, REJECT_SCHEMA.empty_table())


def test_overlapping_spans_become_async_and_flows_have_two_ends(tmp_path):
    ms = 1_000_000
    tl = _timeline([
        {"ts": T0, "dur": 10 * ms, "source": "a", "kind": "span", "name": "outer", "host": "h"},
        {"ts": T0 + 1 * ms, "dur": 2 * ms, "source": "a", "kind": "span", "name": "nested", "host": "h"},
        {"ts": T0 + 5 * ms, "dur": 10 * ms, "source": "a", "kind": "span", "name": "crossing", "host": "h",
         "flow_id": "f1"},
        {"ts": T0 + 20 * ms, "source": "b", "kind": "flow", "name": "reply", "host": "h", "flow_id": "f1"},
        {"ts": T0 + 21 * ms, "source": "b", "kind": "counter", "name": "depth", "host": "h", "value": 7.0},
        {"ts": T0 + 22 * ms, "source": "b", "kind": "log", "name": "lonely", "host": "h", "flow_id": "f2"},
    ])
    path = to_chrome_json(tl, tmp_path / "s.json")
    events = json.loads(path.read_text())["traceEvents"]
    check_rules(events)
    ph = {(e["ph"], e.get("name")) for e in events}
    assert ("X", "outer") in ph and ("X", "nested") in ph
    assert ("b", "crossing") in ph and ("e", "crossing") in ph and ("X", "crossing") not in ph
    assert ("C", "depth") in ph and ("i", "lonely") in ph
    assert [e["ph"] for e in events if e.get("cat") == "tk.flow"] == ["s", "f"]
    back = tk.load(path).events.to_pandas()
    spans = back[back["kind"] == "span"].set_index("name")
    assert int(spans.loc["crossing", "dur"].value) == 10 * ms
    assert back.loc[back["kind"] == "counter", "value"].tolist() == [7.0]
    flows = back[back["flow_id"].notna() & (back["kind"] == "flow")]
    assert sorted(flows["flow_dir"].astype(str)) == ["in", "out"]


def test_dense_export_reads_back(tmp_path):
    tl = dense_timeline(lanes=12, events=5000)
    path = to_chrome_json(tl, tmp_path / "d.json", progress=False)
    check_rules(json.loads(path.read_text())["traceEvents"])
    back = tk.load(path)
    # a non-flow event carrying a flow id gets a flow event beside it (s/t/f): one extra row each
    df = tl.events.select(["kind", "flow_id"]).to_pandas()
    sizes = df["flow_id"].value_counts()
    paired = df["flow_id"].map(sizes).fillna(0) >= 2
    extra = int((paired & (df["kind"].astype(str) != "flow")).sum())
    assert extra > 0
    assert back.events.num_rows == 5000 + extra
    assert back.events.filter(pa.compute.equal(back.events.column("kind").cast(pa.string()), "flow")).num_rows \
        == int(paired.sum())
    assert Counter(back.events.column("kind").cast(pa.string()).to_pylist())["span"] == \
        Counter(tl.events.column("kind").cast(pa.string()).to_pylist())["span"]
