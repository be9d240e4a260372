"""The JSON-lines reader: real dumps with exact counts, content, hostile input, options."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.readers import jsonl

from .helpers import assert_accounted, load_neutral
from .helpers import only_source_row as _src

NS = 1_000_000_000
T0 = 1710406800 * NS  # 2024-03-14T09:00:00Z

# file → (records, rows, rejects as [(line, reason prefix)])
CORPUS = {
    "humanlog_invlogger_cloudevents.jsonl": (26, 14, [(i, "no time field") for i in range(14, 26)]),
    "lnav_bunyan_renovate.jsonl": (10, 10, []),
    "lnav_ecs_python.jsonl": (5, 5, []),
    "lnav_invalid_json_truncated_line.jsonl": (5, 4, [(3, "not a JSON object")]),
    "lnav_json_bad_ts_ansi.jsonl": (14, 13, [(6, "cannot read the time field")]),
}


def _write(tmp_path, text: str | bytes, name: str = "app.jsonl"):
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text)
    else:
        p.write_bytes(text)
    return p


def _by_line(tl: tk.Timeline) -> dict[int, dict]:
    return {r["line"]: r for r in tl.events.to_pylist()}


# --------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_exact_counts_and_detection(corpus, tmp_path, name):
    records, rows, rejects = CORPUS[name]
    tl = load_neutral(corpus / "jsonl" / name, tmp_path)
    src = _src(tl)
    assert src["format"] == "jsonl"  # detected from content alone (neutral name)
    assert (src["records"], src["rows"], src["rejected"]) == (records, rows, len(rejects))
    got = [(r["line"], r["reason"]) for r in tl.rejects.to_pylist()]
    assert [g[0] for g in got] == [r[0] for r in rejects]
    assert all(g[1].startswith(r[1]) for g, r in zip(got, rejects))
    assert_accounted(tl)
    ts = tl.events.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(ts) >= 0)


def test_corpus_bunyan_content(corpus):
    tl = tk.load(corpus / "jsonl" / "lnav_bunyan_renovate.jsonl")
    ev = _by_line(tl)
    first = ev[1]
    assert first["ts_src"] == 1679667976243 * 10**6  # 2023-03-24T14:26:16.243Z
    assert first["ts_prec"] == pa.scalar(10**6, pa.duration("ns")).as_py()
    assert first["severity"] == "debug"  # bunyan 20
    assert first["message"] == "Found gitlabci-include package files"
    assert first["category"] == "renovate" and first["pid"] == 7
    assert first["host"] == "renovate-gitlab-67c4bcb5-9ggbv"
    attrs = dict(first["attrs"])
    assert attrs == {"logContext": "qjifsaDDI", "repository": "webgui/custom-icons-transformer", "v": "0"}
    src = dict(ev[3]["attrs"])["src"]  # nested object kept whole, as compact JSON
    assert json.loads(src) == {"file": "/Users/trentm/tm/node-bunyan/examples/src.js", "line": 20,
                               "func": "Wuzzle.woos"}
    assert ev[4]["severity"] == "info"  # bunyan 30
    assert tl.events.column("line").to_pylist()[-1] == 10


def test_corpus_ecs_literal_dotted_key_beside_nested_object(corpus):
    tl = tk.load(corpus / "jsonl" / "lnav_ecs_python.jsonl")
    ev = tl.events.to_pylist()
    assert [e["severity"] for e in ev] == ["debug", "info", "warning", "error", "critical"]
    assert ev[0]["message"] == "this is a debug message num=39"
    assert ev[0]["ts_src"] == 1736762293631 * 10**6
    attrs = dict(ev[0]["attrs"])
    assert attrs["ecs.version"] == "1.6.0"
    assert "log.level" not in attrs  # it fed severity
    assert json.loads(attrs["log"])["logger"] == "app"  # the nested "log" object is kept apart
    assert json.loads(attrs["process"])["thread"]["id"] == 140631176265728


def test_corpus_lnav_nested_fields_and_truncated_line(corpus):
    tl = tk.load(corpus / "jsonl" / "lnav_invalid_json_truncated_line.jsonl")
    ev = _by_line(tl)
    assert sorted(ev) == [1, 2, 4, 5]
    assert ev[1]["severity"] == "trace" and ev[1]["message"] == "trace test"  # from @fields
    assert ev[2]["severity"] == "info" and ev[2]["message"] == "Starting up service"
    assert ev[5]["message"] == "Details..." and ev[5]["ts_src"] == 1378504859222222000
    assert dict(ev[1]["attrs"]) == {"@fields": '{"lvl":"TRACE","msg":"trace test"}'}
    rej = tl.rejects.to_pylist()[0]
    assert rej["raw"].startswith('{"ts": "2013-09-06T22:00:49.124817Z"') and rej["offset"] > 0


def test_corpus_bad_ts_ansi_multiline_values(corpus):
    tl = tk.load(corpus / "jsonl" / "lnav_json_bad_ts_ansi.jsonl")
    ev = _by_line(tl)
    assert ev[1]["ts_src"] == 1378497648124817000 and ev[1]["ts_prec"] == pa.scalar(1000, pa.duration("ns")).as_py()
    assert ev[1]["category"] == "com.example.foo.bar.bazzer"
    assert ev[2]["category"] == "com.example.demoµs"
    assert ev[2]["message"] == "Starting up \x1b[0;32mservice\x1b[0m"  # ANSI escapes kept
    assert ev[4]["message"] == "D\bDetails...\n"
    assert ev[9]["ts_src"] == 1378504860 * NS  # "2013-09-06 22:01:00Z"
    assert dict(ev[13]["attrs"])["extra-multi"] == "a\nb\nc\nd\n"
    a14 = dict(ev[14]["attrs"])
    assert a14 == {"obj": '{"field1":"hi","field2":2}', "arr": '["hi",{"sub1":true}]'}
    assert ev[14]["severity"] == "critical"
    assert dict(ev[3]["attrs"]) == {"user": "steve@example.com"}


def test_corpus_invlogger_mixed_time_keys(corpus):
    tl = tk.load(corpus / "jsonl" / "humanlog_invlogger_cloudevents.jsonl")
    ev = _by_line(tl)
    # lines 9–13 each use another time key: time, time, ts, timestamp, @timestamp (-05:00)
    for i in (9, 10, 11, 12, 13):
        assert ev[i]["ts_src"] == 1628705710290034000, i
        assert ev[i]["message"] == "hello"
    assert ev[26]["severity"] == "debug"
    assert ev[26]["ts_src"] == 1730187954384776000  # +09:00 honoured
    assert json.loads(dict(ev[1]["attrs"])["data"])["short"] == "service-startup"


# --------------------------------------------------------------------------- hostile input


def test_truncated_last_line_and_garbage(tmp_path):
    lines = [
        '{"ts":"2024-03-14T09:00:00Z","msg":"a"}',
        "hello world",
        "[1, 2]",
        "42",
        '"just a string"',
        "{bad json}",
        '{"ts":"2024-03-14T09:00:01Z","msg":"b"}{"x":1}',
        "null",
        '{"ts":"2024-03-14T09:00:02Z","msg":"c"}',
        '{"ts":"2024-03-14T09:00:03Z","msg":"cut off',
    ]
    p = _write(tmp_path, "\n".join(lines))  # no final newline: the last line is truncated
    tl = tk.load(p, format="jsonl")
    assert_accounted(tl)
    assert tl.events.column("line").to_pylist() == [1, 9]
    rej = tl.rejects.to_pylist()
    assert [r["line"] for r in rej] == [2, 3, 4, 5, 6, 7, 8, 10]
    assert {r["reason"] for r in rej} == {jsonl._REASON_JSON}
    assert rej[-1]["raw"] == lines[-1]
    assert rej[0]["offset"] == len(lines[0]) + 1


def test_nul_bytes(tmp_path):
    data = (b'{"ts":"2024-03-14T09:00:00Z","msg":"esc\\u0000aped"}\n'
            b'{"ts":"2024-03-14T09:00:01Z","msg":"raw\x00byte"}\n'
            b'\x00\x00\x00\n')
    tl = tk.load(_write(tmp_path, data), format="jsonl")
    assert_accounted(tl)
    assert tl.events.column("message").to_pylist() == ["esc\x00aped"]
    assert [r["line"] for r in tl.rejects.to_pylist()] == [2, 3]


def test_invalid_utf8_kept_escaped(tmp_path):
    data = (b'{"ts":"2024-03-14T09:00:00Z","msg":"caf\xe9"}\n'
            b'{"ts":"2024-03-14T09:00:01Z","msg":"ok \xc3\xa9"}\n')
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    assert tl.events.column("message").to_pylist() == ["caf\\xe9", "ok é"]
    assert "invalid UTF-8" in _src(tl)["note"]


def test_empty_and_blank_only(tmp_path):
    tl = tk.load(_write(tmp_path, b""), format="jsonl")
    assert len(tl) == 0 and _src(tl)["records"] == 0
    tl = tk.load(_write(tmp_path, "\n  \n\t\r\n", "blank.jsonl"), format="jsonl")
    assert len(tl) == 0 and _src(tl)["records"] == 0 and tl.rejects.num_rows == 0


def test_blank_lines_crlf_and_line_numbers(tmp_path):
    text = ('{"ts":"2024-03-14T09:00:00Z","msg":"a"}\r\n\r\n   \r\n'
            '  {"ts":"2024-03-14T09:00:01Z","msg":"b"}  \r\n\n'
            '{"ts":"2024-03-14T09:00:02Z","msg":"c"}\r\n')
    tl = tk.load(_write(tmp_path, text.encode()))
    assert_accounted(tl)
    assert _src(tl)["records"] == 3
    assert tl.events.column("line").to_pylist() == [1, 4, 6]
    assert tl.events.column("message").to_pylist() == ["a", "b", "c"]
    assert tl.events.column("offset").to_pylist()[1] == text.encode().index(b"  {")


def test_50mb_single_line(tmp_path):
    big = "x" * (50 * 1024 * 1024)
    p = tmp_path / "big.jsonl"
    with open(p, "w") as f:
        f.write('{"ts":"2024-03-14T09:00:00Z","msg":"big","blob":"')
        f.write(big)
        f.write('"}\n{"ts":"2024-03-14T09:00:01Z","msg":"after"}\n')
    del big
    tl = tk.load(p)
    assert_accounted(tl)
    assert len(tl) == 2
    blob = dict(tl.events.column("attrs")[0].as_py())["blob"]
    assert len(blob) == 50 * 1024 * 1024 and blob[:3] == "xxx"
    assert tl.events.column("line").to_pylist() == [1, 2]


def test_out_of_order_sorted_ts_src_untouched(tmp_path):
    secs = [5, 1, 3, 2, 4]
    text = "".join(f'{{"ts":{1710406800 + s},"msg":"m{s}"}}\n' for s in secs)
    tl = tk.load(_write(tmp_path, text))
    assert_accounted(tl)
    ev = tl.events
    assert ev.column("ts").cast(pa.int64()).to_pylist() == [T0 + s * NS for s in sorted(secs)]
    # each row keeps its own ts_src and line: the file order is still there
    assert ev.column("line").to_pylist() == [2, 4, 3, 5, 1]
    assert ev.column("ts_src").to_pylist() == [T0 + s * NS for s in sorted(secs)]
    assert ev.column("seq").to_pylist() == [1, 3, 2, 4, 0]


def test_mixed_time_formats_exact(tmp_path):
    vals = [
        ('1710406800', T0, NS),
        ('1710406800123', T0 + 123 * 10**6, 10**6),
        ('1710406800123456', T0 + 123456 * 1000, 1000),
        ('1710406800123456789', T0 + 123456789, 1),
        ('"1710406800"', T0, NS),
        ('"1710406800.25"', T0 + 250 * 10**6, 10**7),
        ('1710406800.5', T0 + 500 * 10**6, 10**8),
        ('"1710406800123456789"', T0 + 123456789, 1),
        ('"2024-03-14T09:00:00.123456789Z"', T0 + 123456789, 1),
        ('"2024-03-14T10:00:00+01:00"', T0, NS),
        ('"2024-03-14T04:30:00.5-04:30"', T0 + 5 * 10**8, 10**8),
        ('"2024-03-14T09:00:00.000001+0000"', T0 + 1000, 1000),
        ('"2024-03-14 09:00:00"', T0, NS),  # naive: read as UTC, and recorded
        ('"2024-03-14T09:00Z"', T0, 60 * NS),
        ('"2024-03-14t09:00:00z"', None, None),  # not ISO-8601 as we read it: a reject
        ('"2024-03-14T09:00:00,25Z"', T0 + 25 * 10**7, 10**7),
        ('"2024-03-14T09:00:00 UTC"', T0, NS),
    ]
    text = "".join(f'{{"time":{v},"msg":"{i}"}}\n' for i, (v, _, _) in enumerate(vals))
    tl = tk.load(_write(tmp_path, text))
    assert_accounted(tl)
    ev = _by_line(tl)
    for i, (v, ns, prec) in enumerate(vals):
        if ns is None:
            assert i + 1 not in ev, v
            continue
        assert ev[i + 1]["ts_src"] == ns, v
        assert ev[i + 1]["ts_prec"] == pa.scalar(prec, pa.duration("ns")).as_py(), v
    assert "tz" in dict(_src(tl)["assumed"])


def test_fast_iso_agrees_with_general_parser():
    from tracekit import _time

    rng = np.random.default_rng(7)
    secs = rng.integers(-(10**9), 4 * 10**9, 2000)
    fr = rng.integers(0, 10**9, 2000)
    out = []
    for i, (s, f) in enumerate(zip(secs.tolist(), fr.tolist())):
        base = np.datetime64(s, "s").astype(str)
        digits = i % 10
        frac = ("." + str(f).zfill(9)[:digits]) if digits else ""
        tz = ["Z", "+05:30", "-0800", "", "+00:00"][i % 5]
        out.append(base.replace("T", " " if i % 7 == 0 else "T") + frac + tz)
    out += ["2024-02-30T00:00:00Z", "2024-00-10T00:00:00Z", "2024-01-01T25:00:00Z", "2024-01-01T00:60:00Z",
            "2024-01-01T00:00:61Z", "2024-01-01T00:00:60Z", "2024-01-01X00:00:00Z", "2024-01-01T00:00:00.Z"]
    arr = pa.array(out)
    got = jsonl._parse_times(arr, None)
    ref = _time.parse_iso8601(arr)
    np.testing.assert_array_equal(got["ok"], ref["ok"])
    np.testing.assert_array_equal(got["ns"][ref["ok"]], ref["ns"][ref["ok"]])
    np.testing.assert_array_equal(got["prec"][ref["ok"]], ref["prec"][ref["ok"]])
    np.testing.assert_array_equal(got["tz"][ref["ok"]], ref["tz"][ref["ok"]])


def test_fast_iso_one_length_in_runs_agrees_with_general_parser():
    """One byte length for every row (read in place, in runs of rows), with a bad row, a
    null and another length mixed in: the same as the general parser either way."""
    from tracekit import _time

    rng = np.random.default_rng(11)
    n = jsonl._ISO_RUN * 2 + 123
    secs = rng.integers(-(10**9), 4 * 10**9, n)
    fr = rng.integers(0, 10**6, n)
    zones = ["+00:00", "-07:30", "+14:00", "+05:45"]
    out = [np.datetime64(s, "s").astype(str) + "." + str(f).zfill(6) + zones[i % 4]
           for i, (s, f) in enumerate(zip(secs.tolist(), fr.tolist()))]
    assert {len(v) for v in out} == {32}
    for vals, bad in ((out, 0), (out[:5] + ["2024-13-01T00:00:00.000000+00:00"] + out[6:], 1),
                      (out[:7] + [None, "2024-03-14T09:00:00Z"] + out[9:], 1)):
        arr = pa.array(vals, pa.string())
        got = jsonl._parse_times(arr, None)
        ref = _time.parse_iso8601(arr)
        np.testing.assert_array_equal(got["ok"], ref["ok"])
        np.testing.assert_array_equal(got["ns"][ref["ok"]], ref["ns"][ref["ok"]])
        np.testing.assert_array_equal(got["prec"][ref["ok"]], ref["prec"][ref["ok"]])
        np.testing.assert_array_equal(got["tz"][ref["ok"]], ref["tz"][ref["ok"]])
        assert got["ok"].sum() == len(vals) - bad
        assert got["prec"][0] == 1000


def test_time_unit_option(tmp_path):
    p = _write(tmp_path, '{"ts":1710406800123,"msg":"a"}\n')
    assert tk.load(p, time_unit="ms").events.column("ts_src").to_pylist() == [T0 + 123 * 10**6]
    assert tk.load(p, time_unit="us").events.column("ts_src").to_pylist() == [1710406800123 * 1000]
    with pytest.raises(tk.OptionError, match="time_unit"):
        tk.load(p, time_unit="hours")


def test_time_field_nested_path_and_fields_option(tmp_path):
    lines = [
        {"meta": {"when": "2024-03-14T09:00:00Z"}, "ts": "garbage", "machine": "db-1", "proc": 42,
         "obj": "pod/a", "phase": "Running", "n": "2.5", "sev": "WARN", "text": "hello"},
        {"meta": {"when": "2024-03-14T09:00:01Z"}, "machine": "db-2", "proc": 43, "sev": "error",
         "text": "bye", "n": 3},
    ]
    p = _write(tmp_path, "".join(json.dumps(x) + "\n" for x in lines))
    tl = tk.load(p, time_field="meta.when", level_field="sev", message_field="text",
                 fields={"host": "machine", "pid": "proc", "entity": "obj", "state": "phase", "value": "n"})
    assert_accounted(tl)
    ev = tl.events.to_pylist()
    assert [e["ts_src"] for e in ev] == [T0, T0 + NS]
    assert [e["host"] for e in ev] == ["db-1", "db-2"]
    assert [e["pid"] for e in ev] == [42, 43]
    assert ev[0]["entity"] == "pod/a" and ev[0]["state"] == "Running"
    assert [e["value"] for e in ev] == [2.5, 3.0]
    assert [e["severity"] for e in ev] == ["warning", "error"]
    assert [e["message"] for e in ev] == ["hello", "bye"]
    a0 = dict(ev[0]["attrs"])
    assert a0["ts"] == "garbage"  # not the chosen time field: kept
    assert json.loads(a0["meta"]) == {"when": "2024-03-14T09:00:00Z"}
    assert "machine" not in a0 and "proc" not in a0 and "sev" not in a0
    with pytest.raises(tk.OptionError, match="fields="):
        tk.load(p, fields={"bogus": "x"})


def test_attrs_encoding(tmp_path):
    rec = {"ts": "2024-03-14T09:00:00Z", "msg": "m", "s": "text", "i": 42, "f": 1.5, "b": True,
           "z": None, "o": {"http": {"method": "GET"}}, "a": [1, "x"], "http.method": "POST",
           "http": {"method": "GET"}, "e": "", "u": "é\"q"}
    tl = tk.load(_write(tmp_path, json.dumps(rec) + "\n"))
    attrs = dict(tl.events.column("attrs")[0].as_py())
    assert attrs == {"s": "text", "i": "42", "f": "1.5", "b": "true", "z": "null",
                     "o": '{"http":{"method":"GET"}}', "a": '[1,"x"]', "http.method": "POST",
                     "http": '{"method":"GET"}', "e": "", "u": 'é"q'}


@pytest.mark.parametrize("block", [None, 1000])
def test_keys_missed_by_the_sample_are_kept(tmp_path, monkeypatch, block):
    """A key first seen after the sampled lines (or only as null, or twice in a line) still
    reaches attrs; a role key first seen late still feeds its column (also when it turns up
    in a later block than the first)."""
    if block:
        monkeypatch.setattr(jsonl, "_BLOCK", block)
    n = 20_000
    rows = [{"ts": f"2024-03-14T09:00:{i % 60:02d}Z", "msg": "m", "k": i} for i in range(n)]
    rows[12_345]["late"] = "here"
    rows[15_001]["level"] = "error"  # a role key only seen late
    rows[16_000]["nul"] = None
    rows[n - 1]["Ts"] = "case"  # differs from "ts" only by case
    text = "".join(json.dumps(r) + "\n" for r in rows)
    text = text.replace('"k": 17000}', '"k": 17000, "k": 17001}')  # a duplicate key
    tl = tk.load(_write(tmp_path, text))
    assert_accounted(tl)
    assert len(tl) == n
    ev = {r["line"]: r for r in tl.events.select(["line", "attrs", "severity"]).to_pylist()}
    assert dict(ev[12_346]["attrs"]) == {"k": "12345", "late": "here"}
    assert ev[15_002]["severity"] == "error" and "level" not in dict(ev[15_002]["attrs"])
    assert dict(ev[16_001]["attrs"])["nul"] == "null"
    assert dict(ev[n]["attrs"])["Ts"] == "case"
    assert ev[17_001]["attrs"] == [("k", "17000"), ("k", "17001")]
    assert dict(ev[1]["attrs"]) == {"k": "0"}
    assert tl.events.column("severity").null_count == n - 1


def test_non_integer_pid_stays_in_attrs(tmp_path):
    text = ('{"ts":"2024-03-14T09:00:00Z","msg":"a","pid":"worker-1"}\n'
            '{"ts":"2024-03-14T09:00:01Z","msg":"b","pid":7}\n')
    tl = tk.load(_write(tmp_path, text))
    assert tl.events.column("pid").to_pylist() == [None, 7]
    assert [dict(a).get("pid") for a in tl.events.column("attrs").to_pylist()] == ["worker-1", None]


def test_no_time_field_rejects_say_so(tmp_path):
    tl = tk.load(_write(tmp_path, '{"when":"2024-03-14T09:00:00Z","msg":"x"}\n'), format="jsonl")
    assert_accounted(tl)
    assert "set time_field=" in tl.rejects.column("reason")[0].as_py()


def test_sniff_rejects_other_text():
    assert jsonl._sniff(b"Mar 14 09:00:00 host cron[1]: hi\n", "x") == 0.0
    assert jsonl._sniff(b'{"ts":1,"msg":"a"}\n{"ts":2', "x") >= 0.5


def test_blocks_give_the_same_table(tmp_path, monkeypatch):
    """Reading in many small blocks (with rejects, blanks, nulls, late keys spread over them)
    gives exactly the table of one block."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(5000):
        r = rng.random()
        if r < 0.01:
            out.append("not json")
        elif r < 0.02:
            out.append("")
        else:
            rec = {"ts": T0 // NS + i, "msg": f"m{i}" if r > 0.1 else None, "k": int(rng.integers(0, 9)),
                   "level": ["info", "warn", "error", "debug"][i // 1500], "pid": i if r > 0.3 else "w"}
            if r > 0.9:
                rec["extra"] = {"i": i}
            if i > 4000 and r > 0.5:
                rec["late"] = "x" * int(rng.integers(0, 5))
            out.append(json.dumps(rec))
    p = _write(tmp_path, "\n".join(out) + "\n")
    one = tk.load(p)
    monkeypatch.setattr(jsonl, "_BLOCK", 777)
    many = tk.load(p)
    assert_accounted(many)
    assert many.events.equals(one.events)
    assert many.rejects.equals(one.rejects)
    assert many.events.column("severity").unique().to_pylist() == ["info", "warning", "error", "debug"]


def test_sink_joins_blocks_like_concat():
    """Output columns built block by block (reserved buffers that must grow here, nulls,
    sliced and chunked parts, maps) equal a plain concatenation of the parts."""
    parts = [pa.array(["a", None, "ccc"]), pa.array(["dddd", "", None, "é"]).slice(1, 3),
             pa.chunked_array([pa.array(["x" * 50]), pa.array([None, "yz"])]), pa.array([], pa.string())]
    sink = jsonl._Sink(1, 1)
    for p in parts:
        sink.append(p)
    want = pa.concat_arrays([c for p in parts for c in (p.chunks if isinstance(p, pa.ChunkedArray) else [p])])
    got = sink.finish()
    assert got.equals(want) and got.null_count == 3
    mt = pa.map_(pa.string(), pa.string())
    maps = [pa.array([[("k", "v"), ("k2", None)], [], [("a", "b" * 40)]], mt),
            pa.array([[("p", "q")], [("r", "s"), ("t", "u")]], mt).slice(1, 1)]
    msink = jsonl._Sink(1, 1, entries=True)
    for m in maps:
        msink.append(m)
    assert msink.finish().equals(pa.concat_arrays(maps))
