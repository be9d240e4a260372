"""bpftrace reader: JSON and text output, exact counts, content, hostile input."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

import tracekit as tk

from .helpers import assert_accounted, load_neutral
from .helpers import counts_all as _counts

# name: (format, records, rows, merged, metadata, rejected)
CORPUS = {
    "bpftrace_runtime_expected_hist_2args.json": ("bpftrace", 1, 64, 0, 0, 0),
    "bpftrace_runtime_expected_multiple_maps.ndjson": ("bpftrace", 2, 2, 0, 0, 0),
    "bpftrace_runtime_expected_stats_multiple.json": ("bpftrace", 1, 6, 0, 0, 0),
    "bpftrace_runtime_expected_tseries_multiple.json": ("bpftrace", 1, 10, 0, 0, 0),
    "bpftrace_tools_biostacks_example.txt": ("bpftrace", 56, 7, 0, 39, 10),
    "bpftrace_tools_execsnoop_example.txt": ("bpftrace", 29, 17, 0, 2, 10),
    "bpftrace_tools_runqlat_example.txt": ("bpftrace", 129, 84, 0, 16, 29),
    "recorded_maps_json.ndjson": ("bpftrace", 4, 9, 0, 1, 0),
    "recorded_openat_json.ndjson": ("bpftrace", 187, 186, 0, 1, 0),
    "recorded_openat_plain.txt": ("bpftrace", 292, 291, 0, 1, 0),
}


def _rows(tl: tk.Timeline, **eq) -> list[dict]:
    t = tl.events
    for k, v in eq.items():
        t = t.filter(pc.field(k) == v)
    return sorted(t.to_pylist(), key=lambda r: (r["line"], r["seq"]))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_counts(corpus, tmp_path, name):
    tl = load_neutral(corpus / "bpftrace" / name, tmp_path)
    assert _counts(tl) == CORPUS[name]
    assert_accounted(tl)


def test_hist_buckets_with_negative_bucket(corpus):
    tl = tk.load(corpus / "bpftrace" / "recorded_maps_json.ndjson")
    assert tl.sources.column("clock")[0].as_py() == "relative"
    ret = _rows(tl, name="@ret")
    assert [r["value"] for r in ret] == [129.0, 0.0, 0.0, 168.0]
    neg = dict(ret[0]["attrs"])
    assert neg["max"] == "-1" and "min" not in neg and neg["tk.min"].startswith("unbounded")
    assert (dict(ret[3]["attrs"])["min"], dict(ret[3]["attrs"])["max"]) == ("2", "3")
    assert all(r["ts_src"] == 0 and dict(r["attrs"])["tk.time"] == "at exit" for r in ret)
    opens = {dict(r["attrs"])["key"]: r["value"] for r in _rows(tl, name="@opens")}
    assert opens == {"ls": 102.0, "cat": 195.0}
    stats = {dict(r["attrs"])["stat"]: r["value"] for r in _rows(tl, name="@ret_stats")}
    assert stats == {"count": 297.0, "average": 0.0, "total": 246.0}


def test_printf_records_and_empty_filename(corpus):
    tl = tk.load(corpus / "bpftrace" / "recorded_openat_json.ndjson")
    pf = _rows(tl, name="printf")
    assert len(pf) == 186 and all(r["kind"] == "log" for r in pf)
    assert pf[1]["message"] == "cat /etc/ld.so.cache" and pf[1]["line"] == 3
    assert pf[3]["message"] == "cat "  # the empty filename, kept
    assert dict(pf[0]["attrs"])["tk.time"].startswith("none")
    tl = tk.load(corpus / "bpftrace" / "recorded_openat_plain.txt")
    pf = _rows(tl, name="printf")
    assert len(pf) == 291 and pf[0]["message"] == "bash /dev/null"
    assert [r["message"] for r in pf if r["line"] == 102] == ["cat "]


def test_json_test_suite_outputs(corpus):
    tl = tk.load(corpus / "bpftrace" / "bpftrace_runtime_expected_hist_2args.json")
    rows = _rows(tl)
    assert len(rows) == 64 and sum(r["value"] for r in rows) == 1024
    assert (dict(rows[16]["attrs"])["min"], dict(rows[16]["attrs"])["max"], rows[16]["value"]) == ("16", "17", 2.0)
    tl = tk.load(corpus / "bpftrace" / "bpftrace_runtime_expected_multiple_maps.ndjson")
    assert [(r["name"], dict(r["attrs"])["key"], r["value"]) for r in _rows(tl)] == [("@map1", "key1", 2.0), ("@map2", "key2", 3.0)]
    tl = tk.load(corpus / "bpftrace" / "bpftrace_runtime_expected_stats_multiple.json")
    zsh = {dict(r["attrs"])["stat"]: r["value"] for r in _rows(tl) if dict(r["attrs"])["key"] == "zsh"}
    assert zsh == {"count": 1.0, "average": 10.0, "total": 10.0}
    assert {r["line_end"] for r in _rows(tl)} == {5}
    tl = tk.load(corpus / "bpftrace" / "bpftrace_runtime_expected_tseries_multiple.json")
    assert tl.sources.column("clock")[0].as_py() == "realtime"
    two = [r for r in _rows(tl) if dict(r["attrs"])["key"] == "two"]
    assert [r["ts_src"] for r in two] == [500_000_000 + i * 100_000_000 for i in range(5)]
    assert {r["value"] for r in two} == {4.0}


def test_text_histogram(corpus):
    tl = tk.load(corpus / "bpftrace" / "bpftrace_tools_runqlat_example.txt")
    us = _rows(tl, name="@usecs")
    assert len(us) == 84
    first = dict(us[0]["attrs"])
    assert (first["bucket"], first["min"], first["max"], us[0]["value"]) == ("[0]", "0", "0", 1.0)
    b = [r for r in us if dict(r["attrs"])["bucket"] == "[512K, 1M)"][0]
    assert (dict(b["attrs"])["min"], dict(b["attrs"])["max"]) == ("524288", "1048575")
    reasons = set(tl.rejects.column("reason").to_pylist())
    assert any(r.startswith("shell command line") for r in reasons) and any(r.startswith("prose") for r in reasons)


def test_text_stack_keys(corpus):
    tl = tk.load(corpus / "bpftrace" / "bpftrace_tools_biostacks_example.txt")
    rows = _rows(tl)
    assert len(rows) == 7
    assert dict(rows[0]["attrs"])["key"].split(";")[0] == "blk_account_io_start+1"
    assert dict(rows[0]["attrs"])["key"].endswith("ret_from_fork+53") and rows[0]["value"] == 1.0
    assert "[...]" in tl.rejects.column("raw").to_pylist()


def test_text_timed_printf_columns(corpus, tmp_path):
    tl = load_neutral(corpus / "bpftrace" / "bpftrace_tools_execsnoop_example.txt", tmp_path, date="2020-05-01")
    src = tl.sources.to_pylist()[0]
    assert src["clock"] == "realtime" and dict(src["assumed"])["tz"].startswith("UTC")
    rows = _rows(tl)
    assert rows[0]["ts_src"] == 1588323472_430193_000 and rows[0]["ts_prec"].value == 1000
    assert rows[0]["pid"] == 3187374
    a = dict(rows[0]["attrs"])
    assert a["ppid"] == "1971701" and a["args"].startswith("ls --color")
    tl = tk.load(corpus / "bpftrace" / "bpftrace_tools_execsnoop_example.txt")
    assert "modification date" in dict(tl.sources.to_pylist()[0]["assumed"])["date"]
    with pytest.raises(tk.errors.OptionError):
        tk.load(corpus / "bpftrace" / "bpftrace_tools_execsnoop_example.txt", date="May 1")


def test_lost_events_and_mixed_times(tmp_path):
    p = tmp_path / "input.bin"
    p.write_text('{"type": "attached_probes", "data": {"probes": 1}}\n'
                 '{"type": "printf", "data": "a\\n"}\n'
                 '{"type": "lost_events", "data": {"events": 12}}\n'
                 '{"type": "tseries", "data": {"@t": [{"interval_start": "2024-01-01 00:00:01", "value": 3}]}}\n'
                 '{"type": "map", "data": {"@m": 5}}\n')
    tl = tk.load(p)
    assert_accounted(tl)
    assert _counts(tl) == ("bpftrace", 5, 4, 0, 1, 0)
    (loss,) = _rows(tl, kind="loss")
    assert loss["value"] == 12.0
    m = _rows(tl, name="@m")[0]
    assert m["ts_src"] == 1704067201_000_000_000 and "last printed time" in dict(m["attrs"])["tk.time"]
    p.write_text("Attaching 1 probe...\nx 1\nLost 7 events\n\n@c[a]: 3\n@d: 1K\n")
    tl = tk.load(p)
    assert_accounted(tl)
    assert [(r["kind"], r["value"]) for r in _rows(tl)] == [("log", None), ("loss", 7.0), ("counter", 3.0), ("counter", 1024.0)]


# --------------------------------------------------------------------------- hostile input


def test_hostile_json(tmp_path, corpus):
    good = (corpus / "bpftrace" / "recorded_openat_json.ndjson").read_bytes()
    p = tmp_path / "input.bin"
    p.write_bytes(good[: good.index(b"cat /etc/ld.so.cache") + 5])  # truncated mid-record
    tl = tk.load(p)
    assert_accounted(tl)
    assert _counts(tl) == ("bpftrace", 3, 1, 0, 1, 1)
    p.write_bytes(good.replace(b"cat /etc/ld.so.cache", b"cat /etc/\xff\xfe", 1) + b"garbage\n" + b"x" * 500_000 + b"\n")
    tl = tk.load(p)
    assert_accounted(tl)
    assert _counts(tl) == ("bpftrace", 189, 186, 0, 1, 2)
    assert "invalid UTF-8" in tl.sources.column("note")[0].as_py()
    assert _rows(tl, name="printf")[1]["message"] == "cat /etc/\\xff\\xfe"
    # pretty-printed JSON that breaks off
    p.write_bytes(b'{"type": "map",\n "data": {"@a": 1}}\n{"type": "map",\n "data": {')
    tl = tk.load(p)
    assert_accounted(tl)
    assert _counts(tl) == ("bpftrace", 3, 1, 0, 0, 2)


def test_hostile_text_and_empty(tmp_path):
    p = tmp_path / "input.bin"
    p.write_bytes(b"Attaching 2 probes...\n\xff\xfe\n" + b"y" * 1_000_000 + b"\n\nprose here\n@h:\n[1, 2) 5 |@@|\n[2, 4) 3")
    tl = tk.load(p)
    assert_accounted(tl)
    assert _counts(tl) == ("bpftrace", 7, 3, 0, 2, 2)
    p.write_bytes(b"")
    tl = tk.load(p, format="bpftrace")
    assert tl.events.num_rows == 0


def test_json_printf_first_column_time(tmp_path):
    p = tmp_path / "input.bin"
    p.write_text('{"type": "attached_probes", "data": {"probes": 1}}\n'
                 '{"type": "printf", "data": "TIME     PID\\n"}\n'
                 '{"type": "printf", "data": "08:57:52.430193 42\\n"}\n'
                 '{"type": "time", "data": "08:57:53\\n"}\n'
                 '{"type": "map", "data": {"@n": {"a": 1}}}\n')
    tl = tk.load(p, date="2020-05-01")
    assert_accounted(tl)
    src = tl.sources.to_pylist()[0]
    assert src["clock"] == "realtime" and "date" not in dict(src["assumed"])  # given, not assumed
    rows = _rows(tl)
    day = 1588291200_000_000_000
    assert [r["ts_src"] - day for r in rows] == [32272_430193_000, 32272_430193_000, 32273_000_000_000,
                                                 32273_000_000_000]
    assert dict(rows[1]["attrs"])["tk.time"] == "first column" and rows[1]["ts_prec"].value == 1000
    assert dict(rows[0]["attrs"])["tk.time"].startswith("none (placed at the previous")  # the header row
    assert dict(rows[3]["attrs"])["tk.time"].startswith("at exit (placed at the last")
