"""Timeline time operations: window, around (with state at start), at, shift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tracekit as tk

BASE = 1710406800_000000000  # 2024-03-14T09:00:00Z


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def tl(tmp_path):
    rows = []
    states = ["Pending", "Running", "Terminating", "Succeeded"]
    for i in range(40):
        r = {"ts": BASE // 10**9 * 10**3 + i * 500, "msg": f"m{i}", "pod": f"pod/default/api-{i % 2}"}
        if i % 5 == 0:
            r["phase"] = states[(i // 5) % 4]
        rows.append(r)
    _write(tmp_path / "a.jsonl", rows)
    _write(tmp_path / "b.jsonl", [{"ts": (BASE + 250_000_000 + i * 10**9) / 1e9, "msg": f"b{i}"} for i in range(20)])
    return tk.load(tmp_path, fields={"entity": "pod", "state": "phase"})


def iso(ns):
    return pd.Timestamp(ns, tz="UTC").isoformat()


def test_window_is_half_open_and_uses_sorted_ts(tl):
    w = tl.window(iso(BASE + 2 * 10**9), iso(BASE + 4 * 10**9))
    ts = w.events.column("ts").cast(pa.int64()).to_numpy()
    assert ts.min() >= BASE + 2 * 10**9 and ts.max() < BASE + 4 * 10**9
    all_ts = tl.events.column("ts").cast(pa.int64()).to_numpy()
    assert len(w) == int(((all_ts >= BASE + 2 * 10**9) & (all_ts < BASE + 4 * 10**9)).sum()) == 6
    with pytest.raises(tk.TimeError, match="naive"):
        tl.window("2024-03-14T09:00:00", "2024-03-14T09:00:01Z")


def test_around_carries_state_at_window_start(tl):
    w = tl.around(BASE + 10 * 10**9, before="1s", after="1s")
    ts = w.events.column("ts").cast(pa.int64()).to_numpy()
    assert ts.min() >= BASE + 9 * 10**9 and ts.max() <= BASE + 11 * 10**9
    st = {r["entity"]: r["state"] for r in w.state_at_start.to_pylist()}
    # phases at t=0 s (api-0 Pending), 2.5 s (api-1 Running), 5 s (api-0 Terminating),
    # 7.5 s (api-1 Succeeded); the window opens at 9 s
    assert st == {"pod/default/api-0": "Terminating", "pod/default/api-1": "Succeeded"}


def test_at_gives_last_state_per_entity(tl):
    st = tl.at(BASE + 2_600_000_000)
    assert {r["entity"]: r["state"] for r in st.to_pylist()} == {
        "pod/default/api-0": "Pending", "pod/default/api-1": "Running"}


def test_shift_moves_only_selected_source_and_records_it(tl):
    before = tl.events.filter(pa.compute.equal(tl.events.column("source").cast(pa.string()), "b.jsonl"))
    t2 = tl.shift("b.jsonl", offset="-2.75s")
    after = t2.events.filter(pa.compute.equal(t2.events.column("source").cast(pa.string()), "b.jsonl"))
    d = after.column("ts").cast(pa.int64()).to_numpy() - before.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(d == -2_750_000_000)
    assert after.column("ts_src").equals(before.column("ts_src"))  # evidence untouched
    row = {r["source"]: r for r in t2.sources.to_pylist()}["b.jsonl"]
    assert pd.Timedelta(row["offset"]).value == -2_750_000_000 and "shifted by hand" in row["note"]
    ts = t2.events.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(ts) >= 0)
    assert len(tl.shift("*.jsonl", offset=0)) == len(tl)  # timelines are immutable
    with pytest.raises(tk.TimeError, match="selects no loaded source"):
        tl.shift("nope.log", offset="1s")


def test_shift_drift_in_ppm(tl):
    t2 = tl.shift("b.jsonl", drift_ppm=100, t0=BASE)
    b = t2.events.filter(pa.compute.equal(t2.events.column("source").cast(pa.string()), "b.jsonl"))
    src = b.column("ts_src").to_numpy()
    ts = b.column("ts").cast(pa.int64()).to_numpy()
    np.testing.assert_array_equal(ts - src, np.rint((src - BASE) * 1e-4).astype(np.int64))
