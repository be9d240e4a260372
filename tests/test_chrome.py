"""Chrome / Perfetto trace-event JSON reader: corpus counts, semantics, hostile input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.errors import ParseError, TracekitError
from tracekit.readers import chrome

from .helpers import assert_accounted, load_neutral
from .helpers import single_source_row as _src

# file: (records, emitted, merged, metadata, rejected, rows, clock)
EXPECTED = {
    # 11 S, 10 F (9 match; bf1 orphan), 7 T, 1 b, 3 B + 3 E
    "catapult_async_begin_end.json": (35, 23, 12, 0, 0, 23, "monotonic"),
    # 2 B/E pairs + 8 single-series C
    "catapult_instance_counters.json": (12, 10, 2, 0, 0, 10, "monotonic"),
    "catapult_instant_events.json": (5, 5, 0, 0, 0, 5, "monotonic"),
    # 1684 B vs 1680 E: 4 B never closed stay rows
    "catapult_main_thread_has_unclosed_slices.json": (3386, 1684, 1680, 22, 0, 1684, "monotonic"),
    "catapult_nanoseconds.json": (16, 8, 8, 0, 0, 8, "monotonic"),
    # 9 b + 1 e matched by name per id... 8 pairs, 1 unmatched b, 1 orphan e, 2 n
    "catapult_nestable_async.json": (20, 12, 8, 0, 0, 12, "monotonic"),
    "catapult_simple_trace.json": (37, 26, 8, 3, 0, 26, "monotonic"),
    "hta_pytorch_kineto_rocm_mi250.json": (220, 160, 0, 60, 0, 160, "relative"),
    "hta_pytorch_profiler_cpu_only.pt.trace.json.gz": (30, 18, 0, 12, 0, 18, "relative"),
    "perfetto_flow_events_v1_s_t_f.json": (10, 10, 0, 0, 0, 10, "monotonic"),
    "perfetto_flow_events_v2_bind_id.json": (8, 7, 1, 0, 0, 7, "monotonic"),
    # 234 b/e pairs (PROVENANCE)
    "speedscope_chrome116_devtools_trace_object.json": (3108, 2846, 234, 28, 0, 2846, "monotonic"),
    "speedscope_chrome141_metadata_only.json": (63, 12, 0, 51, 0, 12, "monotonic"),
    "speedscope_chrome69_devtools_trace_array.json": (1364, 1183, 143, 38, 0, 1183, "monotonic"),
    "speedscope_hermes_multiple_frames.json": (8, 4, 4, 0, 0, 4, "monotonic"),
    "speedscope_partial_trailing_comma.json": (6, 4, 2, 0, 0, 4, "monotonic"),
    "speedscope_partial_unterminated_array.json": (6, 4, 2, 0, 0, 4, "monotonic"),
    "speedscope_too_many_end_events.json": (6, 4, 2, 0, 0, 4, "monotonic"),
}


def _events(tl: tk.Timeline) -> list[dict]:
    return tl.events.to_pylist()


def _attrs(row: dict) -> dict:
    return dict(row["attrs"])


def _tolerant_load(path: Path) -> list:
    """The elements, read independently with the json module (truncated arrays closed)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    text = raw.decode().strip()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = json.loads(text.rstrip(",") + "]")
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def _oracle_be(events: list) -> tuple[int, int]:
    """(matched E, orphan E) with a per-thread Python stack in (ts, file order)."""
    order = sorted(range(len(events)), key=lambda i: (str(events[i].get("pid")), str(events[i].get("tid")),
                                                      events[i].get("ts", 0), i))
    stacks: dict = {}
    matched = orphan = 0
    for i in order:
        e = events[i]
        key = (e.get("pid"), e.get("tid"))
        if e.get("ph") == "B":
            stacks.setdefault(key, []).append(i)
        elif e.get("ph") == "E":
            if stacks.get(key):
                stacks[key].pop()
                matched += 1
            else:
                orphan += 1
    return matched, orphan


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_counts(corpus, tmp_path, name):
    path = corpus / "chrome_json" / name
    assert path.exists(), path
    tl = tk.load(path)
    assert_accounted(tl)
    r = _src(tl)
    rec, emi, mer, met, rej, rows, clock = EXPECTED[name]
    got = (r["records"], r["emitted"], r["merged"], r["metadata"], r["rejected"], r["rows"], r["clock"])
    assert got == (rec, emi, mer, met, rej, rows, clock)
    assert r["format"] == "chrome"
    # independent oracle: records, M count, and B/E matching
    events = _tolerant_load(path)
    assert len(events) == rec
    assert sum(1 for e in events if e.get("ph") == "M") == met
    be_matched, _ = _oracle_be(events)
    be_rows = [e for e in _events(tl) if _attrs(e).get("ph") == "B"]
    assert sum(1 for e in be_rows if e["dur"] is not None) == be_matched
    # neutral name: detected from content
    if not name.endswith(".gz"):
        tn = load_neutral(path, tmp_path)
        assert _src(tn)["format"] == "chrome" and _src(tn)["rows"] == rows


def test_gzipped_kineto_anchor(corpus):
    tl = tk.load(corpus / "chrome_json" / "hta_pytorch_profiler_cpu_only.pt.trace.json.gz")
    r = _src(tl)
    assert r["clock"] == "relative" and r["aligned"]
    assert r["offset"].value == 1719853884000000000
    ev = tl.events
    ts = ev.column("ts").cast(pa.int64()).to_numpy()
    src = ev.column("ts_src").to_numpy()
    assert np.all(ts - src == 1719853884000000000)


def test_kineto_rocm_base_time_and_flows(corpus):
    tl = tk.load(corpus / "chrome_json" / "hta_pytorch_kineto_rocm_mi250.json")
    r = _src(tl)
    assert r["clock"] == "relative" and "baseTimeNanoseconds" in r["anchor"]
    rows = _events(tl)
    step = next(e for e in rows if e["name"] == "ProfilerStep#1")
    # "ts": 4203669603187.439, "dur": 9288.291 → exact ns
    assert step["ts_src"] == 4203669603187439
    assert step["dur"].value == 9288291
    assert step["ts"].value == 1735632360000000000 + 4203669603187439
    assert _attrs(step)["tk.process_name"] == "python3"
    flows = [e for e in rows if e["kind"] == "flow"]
    assert len(flows) == 45  # 20 s + 25 f
    assert {e["flow_dir"] for e in flows} == {"out", "in"}
    # non-numeric pid/tid stay in attrs
    span = next(e for e in rows if e["name"] == "PyTorch Profiler (0)")
    assert span["pid"] is None and _attrs(span)["pid"] == "Spans"


def test_unclosed_slices_kept(corpus):
    tl = tk.load(corpus / "chrome_json" / "catapult_main_thread_has_unclosed_slices.json")
    rows = _events(tl)
    unclosed = [e for e in rows if _attrs(e).get("tk.unmatched") == "B"]
    assert len(unclosed) == 4
    assert all(e["dur"] is None and e["kind"] == "span" for e in unclosed)
    assert not [e for e in rows if _attrs(e).get("tk.unmatched") == "E"]


def test_too_many_end_events(corpus):
    tl = tk.load(corpus / "chrome_json" / "speedscope_too_many_end_events.json")
    rows = sorted(_events(tl), key=lambda e: e["offset"])
    # in (ts, order): B alpha 0, B beta 1, E gamma 5, E delta 5 close beta then alpha (LIFO)
    assert [(e["name"], e["kind"], _attrs(e).get("tk.unmatched")) for e in rows] == [
        ("alpha", "span", None), ("beta", "span", None), ("beta", "instant", "E"), ("alpha", "instant", "E")]
    assert rows[0]["dur"].value == 5000 and _attrs(rows[0])["tk.end_name"] == "delta"
    assert rows[1]["dur"].value == 4000 and _attrs(rows[1])["tk.end_name"] == "gamma"


def test_nanoseconds_exact(corpus):
    tl = tk.load(corpus / "chrome_json" / "catapult_nanoseconds.json")
    got = {e["name"]: (e["ts_src"], e["dur"].value) for e in _events(tl)}
    assert got["us1"] == (0, 1100)
    assert got["us2"] == (1100, 200)
    assert got["ns1"] == (3000, 11)
    assert got["ns4"] == (3017, 4)
    extra = tl.sources.to_pylist()[0]
    assert extra["clock"] == "monotonic" and not extra["aligned"]


def test_nesting_and_simple_trace(corpus):
    tl = tk.load(corpus / "chrome_json" / "catapult_simple_trace.json")
    rows = _events(tl)
    by = {e["name"]: e for e in rows}
    outer = by["A long name that doesnt fit but is exceedingly informative"]
    assert outer["ts_src"] == 826000 and outer["dur"].value == 7000  # closed by the nameless E at 833
    assert _attrs(outer)["args.name_false"] == "false"
    inner = by["Asub with a name that wont fit"]
    assert inner["dur"].value == 1000 and _attrs(inner)["tk.end_name"] == "Asub"
    assert by["Long X type"]["dur"].value == 15000 and _attrs(by["Long X type"])["sf"] == "7"
    counters = [e for e in rows if e["kind"] == "counter"]
    assert [c["value"] for c in sorted(counters, key=lambda e: e["ts_src"])] == [10.0, 1.0, 5.0, 1.0, 10.0]
    assert all(_attrs(c)["tk.series"] == "value" for c in counters)
    assert by["GlobalEvent1"]["kind"] == "instant" and _attrs(by["GlobalEvent1"])["s"] == "g"
    assert by["SampleA"]["kind"] == "sample"
    assert _attrs(by["A"])["tk.thread_name"] == "threadB"


def test_async_nestable_matched_by_name_and_id(corpus):
    tl = tk.load(corpus / "chrome_json" / "catapult_nestable_async.json")
    rows = _events(tl)
    bar = next(e for e in rows if e["name"] == "REQUEST_BAR")
    assert (bar["ts_src"], bar["dur"].value, bar["kind"]) == (10000, 90000, "span")
    assert bar["line"] == 3 and bar["line_end"] == 12
    ub = next(e for e in rows if e["name"] == "URL_REQUEST_DELEGATE_UNMATCHED_BEGIN")
    assert ub["dur"] is None and _attrs(ub)["tk.unmatched"] == "b"
    ue = next(e for e in rows if e["name"] == "URL_REQUEST_DELEGATE_UNMATCHED_END")
    assert ue["kind"] == "instant" and _attrs(ue)["tk.unmatched"] == "e"
    foo = next(e for e in rows if e["name"] == "REQUEST_FOO")
    assert foo["dur"].value == 90000
    job = next(e for e in rows if e["name"] == "URL_REQUEST_START_JOB" and e["category"] == "bar")
    assert json.loads(_attrs(job)["args.params"])["method"] == "GET"


def test_legacy_async_s_t_f(corpus):
    tl = tk.load(corpus / "chrome_json" / "catapult_async_begin_end.json")
    rows = _events(tl)
    cross = [e for e in rows if e["name"] == "E" and e["kind"] == "span"]
    # S in pid 2 finished by F in pid 3 (async ids are global)
    assert sorted((e["ts_src"], e["dur"].value) for e in cross) == [(500000, 200000), (600000, 200000)]
    steps = [e for e in rows if _attrs(e).get("ph") == "T"]
    assert len(steps) == 7 and all(e["kind"] == "instant" for e in steps)
    assert {_attrs(e)["args.step"] for e in steps} == {"T", "X", "Y", "G", "H", "I"}
    orphan_f = [e for e in rows if _attrs(e).get("tk.unmatched") == "F"]
    assert [e["name"] for e in orphan_f] == ["D"]


def test_flows_v1(corpus):
    tl = tk.load(corpus / "chrome_json" / "perfetto_flow_events_v1_s_t_f.json")
    flows = sorted((e for e in _events(tl) if e["kind"] == "flow"), key=lambda e: e["offset"])
    assert [(e["flow_id"], e["flow_dir"]) for e in flows] == [
        ("0x402", "out"), ("0x403", "out"), ("0x403", "in"), ("0x402", "step"), ("0x402", "in")]
    assert _attrs(flows[0])["sf"] == "7" and _attrs(flows[3])["sf"] == "8"


def test_flows_v2_bind_id(corpus):
    tl = tk.load(corpus / "chrome_json" / "perfetto_flow_events_v2_bind_id.json")
    got = {e["name"]: (e["flow_id"], e["flow_dir"]) for e in _events(tl)}
    assert got["SenderA"] == ("0x402", "out")
    assert got["SenderB"] == ("0x403", "out")
    assert got["Blergh"] == ("0x403", "in")
    assert got["OtherSlice"] == ("0x402", "step")
    assert got["SomeOtherSlice"] == ("0x402", "in")  # a B/E span carrying the binding
    assert got["SomeOtherSliceInstant"] == (None, None)
    other = next(e for e in _events(tl) if e["name"] == "SomeOtherSlice")
    assert other["dur"].value == 997000
    assert "bind_id" not in _attrs(other) and _attrs(other)["tts"] == "3335"


def test_devtools_meta_and_display_unit(corpus):
    tl = tk.load(corpus / "chrome_json" / "speedscope_chrome116_devtools_trace_object.json")
    kinds = dict(zip(*np.unique(np.array(tl.events.column("kind").to_pylist()), return_counts=True)))
    assert kinds["span"] > 0 and kinds["sample"] > 0 and kinds["marker"] > 0
    res = chrome._read(_input(corpus / "chrome_json" / "speedscope_chrome116_devtools_trace_object.json"))
    assert "startTime" in res.meta["extra"]["metadata"]
    res2 = chrome._read(_input(corpus / "chrome_json" / "catapult_nanoseconds.json"))
    assert res2.meta["extra"]["displayTimeUnit"] == "ns"


def test_partial_arrays(corpus):
    for name in ("speedscope_partial_trailing_comma.json", "speedscope_partial_unterminated_array.json"):
        tl = tk.load(corpus / "chrome_json" / name)
        by = {e["name"]: e for e in _events(tl)}
        assert by["alpha"]["dur"].value == 14000 and by["beta"]["dur"].value == 12000
        assert _attrs(by["gamma"])["args.detail"] == "foobar"
        assert by["epsilon"]["dur"] is None and _attrs(by["epsilon"])["tdur"] == "4"
        assert "not closed" in _src(tl)["note"]


# --------------------------------------------------------------------------- own fixtures


def _input(path: Path):
    from tracekit import _inputs

    return _inputs.expand(path)[0]


def _write(tmp_path: Path, data: bytes, name: str = "trace.json") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_epoch_ts_exact_and_realtime(tmp_path):
    evs = [{"ph": "X", "ts": 0, "dur": 1, "name": "z", "pid": 1, "tid": 1}]
    text = json.dumps(evs).replace('"ts": 0', '"ts": 1710406800123456.789').encode()
    tl = tk.load(_write(tmp_path, text))
    r = _src(tl)
    assert r["clock"] == "realtime" and r["aligned"]
    e = _events(tl)[0]
    assert e["ts_src"] == 1710406800123456789  # 19 digits: no float rounding
    assert e["ts_prec"].value == 1


def test_fraction_ts_and_out_of_order(tmp_path):
    data = (b'{"traceEvents":[{"ph":"E","ts":10.25,"pid":1,"tid":2},'
            b'{"ph":"B","ts":1.5,"pid":1,"tid":2,"name":"late-listed"},'
            b'{"ph":"i","ts":1.000001,"pid":1,"tid":2,"name":"p","s":"p"}],"displayTimeUnit":"ms"}')
    tl = tk.load(_write(tmp_path, data))
    r = _src(tl)
    assert (r["records"], r["emitted"], r["merged"]) == (3, 2, 1)
    by = {e["name"]: e for e in _events(tl)}
    assert by["late-listed"]["ts_src"] == 1500 and by["late-listed"]["dur"].value == 8750
    assert by["p"]["ts_src"] == 1000  # 1.000001 µs = 1000.001 ns → truncated to the ns


def test_strings_with_brackets_and_escapes(tmp_path):
    evs = [{"ph": "i", "ts": 1, "name": 'a"],{[\\', "pid": 1, "tid": 1, "args": {"q": "x\\\"}]"}},
           {"ph": "i", "ts": 2, "name": "b", "pid": 1, "tid": 1}]
    tl = tk.load(_write(tmp_path, json.dumps(evs, indent=2).encode()))
    assert_accounted(tl)
    rows = sorted(_events(tl), key=lambda e: e["offset"])
    assert [e["name"] for e in rows] == ['a"],{[\\', "b"]
    assert _attrs(rows[0])["args.q"] == 'x\\"}]'
    assert rows[1]["line"] > rows[0]["line"]


def test_counter_multi_series_and_metadata(tmp_path):
    data = json.dumps([
        {"ph": "M", "name": "process_name", "pid": 7, "args": {"name": "renderer"}},
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 8, "args": {"name": "main"}},
        {"ph": "C", "ts": 5, "name": "mem", "pid": 7, "tid": 8, "args": {"heap": 10, "rss": 2.5, "note": "x"}},
        {"ph": "C", "ts": 6, "name": "empty", "pid": 7, "args": {}},
        {"ph": "R", "ts": 7, "name": "mark", "pid": 7, "tid": 8},
        {"ph": "O", "ts": 8, "name": "obj", "pid": 7, "tid": 8, "id": "0x1", "args": {"snapshot": {"a": 1}}},
        {"ph": "Q", "ts": 9, "name": "unknown-phase", "pid": 7, "tid": 8, "custom": [1, 2]},
    ]).encode()
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    r = _src(tl)
    assert (r["records"], r["emitted"], r["metadata"], r["rows"]) == (7, 5, 2, 7)
    rows = sorted(_events(tl), key=lambda e: (e["offset"], _attrs(e).get("tk.series") or ""))
    mem = [e for e in rows if e["name"] == "mem"]
    assert [(_attrs(e)["tk.series"], e["value"]) for e in mem] == [("heap", 10.0), ("note", None), ("rss", 2.5)]
    assert _attrs(mem[1])["tk.value"] == "x"
    assert all(_attrs(e)["tk.thread_name"] == "main" and _attrs(e)["tk.process_name"] == "renderer" for e in mem)
    empty = next(e for e in rows if e["name"] == "empty")
    assert empty["value"] is None and empty["kind"] == "counter"
    kinds = {e["name"]: e["kind"] for e in rows}
    assert kinds["mark"] == "marker" and kinds["obj"] == "marker" and kinds["unknown-phase"] == "marker"
    assert _attrs(next(e for e in rows if e["name"] == "unknown-phase"))["custom"] == "[1,2]"
    assert _attrs(next(e for e in rows if e["name"] == "obj"))["args.snapshot"] == '{"a":1}'


def test_truncated_mid_object(tmp_path):
    data = b'[{"ph":"X","ts":1,"dur":2,"pid":1,"tid":1,"name":"a"},\n{"ph":"X","ts":3,"na'
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    r = _src(tl)
    assert (r["records"], r["emitted"], r["rejected"]) == (2, 1, 1)
    rej = tl.rejects.to_pylist()[0]
    assert rej["line"] == 2 and rej["offset"] == 1 and "invalid or truncated" in rej["reason"]
    assert rej["raw"].startswith('{"ph":"X","ts":3')


def test_non_objects_and_missing_keys_rejected(tmp_path):
    data = b'[1, "x", null, [1], {"ts": 1}, {"ph": "X"}, {"ph": "X", "ts": "soon"}, {"ph":"i","ts":4}]'
    tl = tk.load(_write(tmp_path, data), format="chrome")
    assert_accounted(tl)
    r = _src(tl)
    assert (r["records"], r["emitted"], r["rejected"]) == (8, 1, 7)
    reasons = [x["reason"] for x in tl.rejects.to_pylist()]
    assert reasons.count("not a JSON object (invalid or truncated JSON)") == 4
    assert sum("ph" in x for x in reasons) == 1 and sum('"ts"' in x for x in reasons) == 2


def test_invalid_utf8_kept(tmp_path):
    data = b'[{"ph":"i","ts":1,"name":"caf\xe9","pid":1,"tid":1},{"ph":"i","ts":2,"name":"ok"}]'
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    names = sorted(e["name"] for e in _events(tl))
    assert names == ["caf\\xe9", "ok"]
    assert "invalid UTF-8" in _src(tl)["note"]


@pytest.mark.parametrize("data", [b"", b"   \n", b"\x00\xffgarbage\x01", b"hello world"])
def test_garbage_and_empty_errors_name_the_file(tmp_path, data):
    p = _write(tmp_path, data, "bad.json")
    with pytest.raises(TracekitError, match="bad.json"):
        tk.load(p)
    with pytest.raises(TracekitError, match="bad.json"):
        tk.load(p, format="chrome")


def test_object_without_trace_events(tmp_path):
    p = _write(tmp_path, b'{"nodes": [], "samples": []}', "cpuprofile.json")
    with pytest.raises(ParseError, match="cpuprofile.json.*traceEvents"):
        tk.load(p, format="chrome")


def test_huge_args_string(tmp_path):
    blob = "a" * (40 * 1024 * 1024)  # larger than DuckDB's default JSON object buffer
    data = b'[{"ph":"X","ts":1,"dur":1,"name":"big","pid":1,"tid":1,"args":{"blob":"' + blob.encode() + b'"}},' \
           b'{"ph":"i","ts":2,"name":"after"}]'
    calls = []
    real = chrome._read_array

    def spy(*a):
        got = real(*a)
        calls.append((a[-1], got is not None))
        return got

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chrome, "_read_array", spy)
        tl = tk.load(_write(tmp_path, data))
    rows = sorted(_events(tl), key=lambda e: e["offset"])
    assert [e["name"] for e in rows] == ["big", "after"]
    assert len(_attrs(rows[0])["args.blob"]) == len(blob)
    # DuckDB's default buffer refuses the element; it is read again with one that fits it
    assert [ok for _, ok in calls] == [False, True] and calls[-1][0] > len(blob)


def test_sniff():
    assert chrome._sniff(b'[\n{"ph":"B","ts":0}', "x") >= 0.9
    assert chrome._sniff(b'{"traceEvents":[{"ph":"X"', "x") >= 0.9
    assert chrome._sniff(b'{ "displayTimeUnit": "ns", "traceEvents": [', "x") >= 0.9
    # JSON lines, Jaeger and OTLP are not Chrome traces
    assert chrome._sniff(b'{"ph":"X","ts":1}\n{"ph":"X","ts":2}\n', "x") == 0.0
    assert chrome._sniff(b'{"data":[{"traceID":"a","spans":[]}]}', "x") == 0.0
    assert chrome._sniff(b'{"resourceSpans":[{"resource":{}}]}', "x") == 0.0
    assert chrome._sniff(b'[{"traceId":"a","id":"b","name":"get"}]', "x") == 0.0


def test_match_against_python_stack():
    rng = np.random.default_rng(7)
    n = 2000
    group = rng.integers(0, 5, n)
    ts = rng.integers(0, 50, n)
    idx = np.arange(n)
    begin = rng.random(n) < 0.55
    partner, orphan = chrome._match(group, ts, idx, begin)
    exp_partner = np.full(n, -1)
    exp_orphan = np.zeros(n, bool)
    stacks: dict = {}
    for i in sorted(range(n), key=lambda i: (group[i], ts[i], i)):
        st = stacks.setdefault(group[i], [])
        if begin[i]:
            st.append(i)
        elif st:
            exp_partner[st.pop()] = i
        else:
            exp_orphan[i] = True
    assert np.array_equal(partner, exp_partner)
    assert np.array_equal(orphan, exp_orphan)


def test_keys_outside_the_struct_and_non_object_args(tmp_path):
    data = json.dumps([
        {"ph": "i", "ts": 1, "name": "a", "args": "plain text", "weird key": {"x": None}},
        {"ph": "X", "ts": 2, "dur": 3, "name": "b", "args": [1, 2], "tts": 5},
        {"ph": "i", "ts": 3, "name": "c", "args": {"n": None, "t": True}},
    ]).encode()
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    by = {e["name"]: _attrs(e) for e in _events(tl)}
    assert by["a"]["args"] == "plain text" and by["a"]["weird key"] == '{"x":null}'
    assert by["b"]["args"] == "[1,2]" and by["b"]["tts"] == "5"
    assert by["c"] == {"ph": "i", "args.n": "null", "args.t": "true"}


def test_object_form_truncated_and_bom(tmp_path):
    data = (b'\xef\xbb\xbf{"otherData":{"v":"1"},"traceEvents":[\n{"ph":"X","ts":1,"dur":1,"name":"a","pid":1,"tid":1},\n'
            b'{"ph":"B","ts":2,"name":"open","pid":1,"tid":1},\n{"ph":"E","ts":')
    p = _write(tmp_path, data)
    tl = tk.load(p)
    assert_accounted(tl)
    r = _src(tl)
    assert (r["records"], r["emitted"], r["merged"], r["rejected"]) == (3, 2, 0, 1)
    opened = next(e for e in _events(tl) if e["name"] == "open")
    assert opened["dur"] is None and _attrs(opened)["tk.unmatched"] == "B"
    assert chrome._read(_input(p)).meta["extra"]["otherData"] == {"v": "1"}


_READ_ARRAY = chrome._read_array


def _both_paths(monkeypatch, path: Path) -> tuple[tk.Timeline, tk.Timeline, int]:
    """The file loaded as usual and with DuckDB's whole-array pass refused (every element
    parsed on its own); and how many times the whole-array pass was used."""
    used = []
    real = _READ_ARRAY

    def spy(*a):
        got = real(*a)
        used.append(got is not None)
        return got

    monkeypatch.setattr(chrome, "_read_array", spy)
    fast = tk.load(path, format="chrome")
    monkeypatch.setattr(chrome, "_read_array", lambda *a: None)
    slow = tk.load(path, format="chrome")
    return fast, slow, sum(used)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_whole_array_pass_equals_per_element_parse(corpus, monkeypatch, name):
    fast, slow, _ = _both_paths(monkeypatch, corpus / "chrome_json" / name)
    assert fast.events.equals(slow.events)
    assert fast.rejects.equals(slow.rejects)
    assert fast.sources.drop_columns(["seconds"]).equals(slow.sources.drop_columns(["seconds"]))


def test_whole_array_pass_is_used_and_checked(tmp_path, monkeypatch):
    # extra keys, nulls, long exact numbers, a nested "ts", and after the array another "]"
    # (the guessed array end is wrong: the scan's end is used)
    ev = ('{"ph":"X","ts":1710406800123456.789,"dur":1234567890123.456,"name":"a","pid":1,"tid":2,'
          '"args":{"ts":5,"deep":{"k":[1,{"x":"]"}]}},"zz":{"q":1}},\n'
          '{"ph":"B","ts":2.5,"name":"b","pid":1,"tid":2,"cat":null},\n'
          '{"ph":"E","ts":3,"name":"b","pid":1,"tid":2,"args":{"r":"}{\\"]"}},\n'
          '{"ph":"C","ts":4,"name":"c","pid":1,"args":{"v1":1,"v2":"x"}},\n'
          '{"ph":"M","ts":0,"name":"thread_name","pid":1,"tid":2,"args":{"name":"main"}}')
    data = ('{"traceEvents":[\n' + ev + '\n],"otherData":{"list":[1,2]}}').encode()
    p = _write(tmp_path, data)
    fast, slow, used = _both_paths(monkeypatch, p)
    assert used == 1
    assert fast.events.equals(slow.events)
    assert_accounted(fast)
    t = fast.events
    at = {nm: i for i, nm in enumerate(t.column("name").to_pylist())}
    ts_src, dur = t.column("ts_src").to_pylist(), t.column("dur").cast(pa.int64()).to_pylist()
    assert ts_src[at["a"]] == 1710406800123456789 and dur[at["a"]] == 1234567890123456
    assert dur[at["b"]] == 500
    a_attrs = dict(t.column("attrs")[at["a"]].as_py())
    assert a_attrs["zz"] == '{"q":1}' and a_attrs["tk.thread_name"] == "main"
    # the array form, the file itself read by DuckDB
    p2 = _write(tmp_path, ("[\n" + ev + "\n]\n").encode(), "array.json")
    fast, slow, used = _both_paths(monkeypatch, p2)
    assert used == 1 and fast.events.equals(slow.events)


@pytest.mark.parametrize("trap", [False, True])
def test_whole_array_pass_in_two_halves(tmp_path, monkeypatch, trap):
    """Large arrays are parsed as two halves on two threads, split at a separator guessed near
    the middle; a guess inside a string (trap) is caught by the scan and the middle separator
    used instead. Same rows as the per-element parse, in order."""
    monkeypatch.setattr(chrome, "_SPLIT_MIN", 10)
    monkeypatch.setattr(chrome, "_SPLIT_BYTES", 2000)
    evs = []
    for i in range(400):
        e = {"ph": "Xi"[i % 2], "ts": i * 1.5, "name": f"n{i}", "pid": 1, "tid": i % 3, "args": {"i": i}}
        if trap and i == 200:
            e["args"]["s"] = "x}, {y" * 4000  # looks like a separator, inside a string (and the middle)
        evs.append(e)
    text = '{"traceEvents":[' + ",".join(json.dumps(e) for e in evs) + "]}"
    p = _write(tmp_path, text.encode())
    if trap:
        mid = len(text) // 2
        assert text.index("}, {", mid) < text.index('},{"ph"', mid)
    calls = []
    real = chrome._read_array
    monkeypatch.setattr(chrome, "_read_array", lambda *a: calls.append(a[4]) or real(*a))
    fast = tk.load(p, format="chrome")
    monkeypatch.setattr(chrome, "_read_array", lambda *a: None)
    slow = tk.load(p, format="chrome")
    assert fast.events.equals(slow.events) and len(fast) == 400
    assert calls[-1] is not None  # the halves were used
    assert len(calls) == (2 if trap else 1)  # a wrong guess costs one more DuckDB pass


def test_dict_parts_skip_null_indices_and_null_values():
    # rows 0..4 index a 3-entry dictionary whose middle value is null; row 2's index is null
    dictionary = pa.array(["a", None, "c"])
    indices = pa.array([2, 1, None, 0, 2], pa.int32())
    lens, key, vals = chrome._dict_parts("k", dictionary, indices)
    assert key == "k" and lens.tolist() == [1, 0, 0, 1, 1]
    m = chrome._concat_maps(5, [(np.ones(5, dtype=np.int64), "x", pa.array(list("vwxyz"))), (lens, key, vals)])
    assert m.to_pylist() == [[("x", "v"), ("k", "c")], [("x", "w")], [("x", "x")],
                             [("x", "y"), ("k", "a")], [("x", "z"), ("k", "c")]]
