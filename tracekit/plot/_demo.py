"""Seeded synthetic timelines for the plot tests, the benchmark and the docs images."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..schema import SOURCE_SCHEMA, conform
from ..timeline import Timeline

T0 = 1_751_879_520_000_000_000  # 2025-07-07T09:12:00Z


def dense_timeline(lanes: int = 40, events: int = 50_000, seconds: float = 10.0, seed: int = 0,
                   hosts: int = 5, uncertainty_ns: int = 50_000) -> Timeline:
    """``events`` events on ``lanes`` sources (spread over ``hosts`` hosts) in ``seconds``
    from :data:`T0`: spans (nested and overlapping), logs, state changes, counters and flows
    across lanes; each host's clock is known to ±``uncertainty_ns`` (so orders near each other
    across hosts are ambiguous). Deterministic for a given ``seed``.

    Example::

        >>> tl = dense_timeline(lanes=4, events=100)
        >>> len(tl)
        100
    """
    rng = np.random.default_rng(seed)
    span_ns = int(seconds * 1e9)
    # busier lanes first (a Zipf-ish share), so some lanes are dense and others sparse
    w = 1.0 / np.arange(1, lanes + 1) ** 0.8
    lane = rng.choice(lanes, size=events, p=w / w.sum())
    ts = T0 + np.sort(rng.integers(0, span_ns, events))
    rng.shuffle(lane)
    kinds = rng.choice(["span", "log", "state", "counter", "instant"], size=events, p=[0.35, 0.35, 0.1, 0.1, 0.1])
    dur = np.where(kinds == "span", rng.lognormal(np.log(2e6), 1.2, events).astype(np.int64), 0)
    src = np.array([f"host-{i % hosts}/svc-{i:02d}.jsonl" for i in range(lanes)], object)
    host = np.array([f"host-{i % hosts}" for i in range(lanes)], object)
    states = np.array(["ready", "busy", "draining", "ready", "degraded"], object)
    names = np.array(["GET /api/checkout", "db.query", "cache.get", "render", "publish", "retry"], object)
    st = np.where(kinds == "state", states[rng.integers(0, len(states), events)], None)
    ent = np.where(kinds == "state", np.array([f"svc/{i:02d}" for i in range(lanes)], object)[lane], None)
    name = np.where(kinds == "counter", "queue_depth", names[rng.integers(0, len(names), events)])
    msg = np.where(kinds == "log", np.array([f"handled request {k}" for k in range(events)], object), None)
    value = np.where(kinds == "counter", rng.integers(0, 100, events).astype(float), np.nan)
    flow = np.full(events, None, object)
    fl = np.flatnonzero(kinds == "span")[::50]
    for k, j in enumerate(fl):  # each of these spans starts a flow answered on another lane ~1 ms later
        flow[j] = f"f{k}"
    cols = {
        "ts": pa.array(ts, pa.timestamp("ns", tz="UTC")),
        "ts_src": ts,
        "ts_prec": pa.array(np.full(events, 1000, np.int64), pa.duration("ns")),
        "seq": np.arange(events, dtype=np.uint64),
        "dur": pa.array(np.where(kinds == "span", dur, 0), pa.duration("ns"),
                        mask=kinds != "span"),
        "source": src[lane].tolist(),
        "kind": kinds.tolist(),
        "name": name.tolist(),
        "host": host[lane].tolist(),
        "entity": ent.tolist(),
        "state": st.tolist(),
        "message": msg.tolist(),
        "value": pa.array(value, mask=np.isnan(value)),
        "flow_id": flow.tolist(),
    }
    ev = conform(cols, events)
    # the flows' other ends: an instant on the next lane, 1 ms later
    if len(fl):
        other = conform({
            "ts": pa.array(ts[fl] + 1_000_000, pa.timestamp("ns", tz="UTC")), "ts_src": ts[fl] + 1_000_000,
            "seq": np.zeros(len(fl), np.uint64), "source": src[(lane[fl] + 1) % lanes].tolist(),
            "kind": ["flow"] * len(fl), "name": ["reply"] * len(fl), "host": host[(lane[fl] + 1) % lanes].tolist(),
            "flow_id": flow[fl].tolist(),
        }, len(fl))
        ev = pa.concat_tables([ev, other]).sort_by([("ts", "ascending")])
        ev = ev.set_column(ev.schema.get_field_index("seq"), "seq", pa.array(np.arange(ev.num_rows, dtype=np.uint64)))
        ev = ev.slice(0, events)
    rows = []
    for i in range(lanes):
        sel = src[lane] == src[i]
        lo_ts = int(ts[sel].min()) if sel.any() else T0
        hi_ts = int(ts[sel].max()) if sel.any() else T0
        u = 0 if i % hosts == 0 else uncertainty_ns
        rows.append({"source": src[i], "file": src[i], "format": "jsonl", "status": "loaded", "host": host[i],
                     "clock": "realtime", "domain": f"host={host[i]};clock=realtime", "offset": 0, "drift_ppm": 0.0,
                     "t0": 0, "offset_lo": -u, "offset_hi": u, "aligned": True, "rows": int(sel.sum()),
                     "ts_min": lo_ts, "ts_max": hi_ts})
    sources = pa.Table.from_pylist(rows, schema=SOURCE_SCHEMA)
    from ..schema import REJECT_SCHEMA

    return Timeline(ev, sources, REJECT_SCHEMA.empty_table())
