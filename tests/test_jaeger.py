"""Jaeger JSON reader: corpus files (exact counts), a documentation fixture, hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tracekit as tk
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import counts_records_emitted_rejected_rows as _counts
from .helpers import rows_matching as _rows
from .helpers import source_row as _src

FIX = Path(__file__).parent / "fixtures" / "jaeger"

# file → (records, emitted, rejected, rows)
CORPUS = {
    "jaeger-ui_overlapping_children_longer_than_parent.json": (4, 4, 0, 4),
    "jaeger-ui_tracegraph_testTrace.json": (11, 11, 0, 11),
    "jaeger_anonymizer_malformed_trailing_comma.json": (1, 0, 1, 0),
    "jaeger_anonymizer_span_array.json": (2, 2, 0, 2),
    "jaeger_uimodel_ui_01.json": (5, 5, 0, 9),  # 5 spans + 2 logs + 2 non-parent references
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_counts(corpus, name):
    tl = tk.load(corpus / "jaeger_json" / name)
    assert _src(tl)["format"] == "jaeger"
    assert _counts(tl) == CORPUS[name]
    assert_accounted(tl)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_detected_from_content(corpus, name, tmp_path):
    tl = load_neutral(corpus / "jaeger_json" / name, tmp_path)
    assert _src(tl)["format"] == "jaeger"
    assert _counts(tl) == CORPUS[name]


def test_trace_object_processes_and_references(corpus):
    tl = tk.load(corpus / "jaeger_json" / "jaeger-ui_tracegraph_testTrace.json")
    ts = tl.events.column("ts_src").to_pylist()
    assert ts[0] == 1542666452979000000 and ts[-1] == 1542666453779000000
    (s2,) = _rows(tl, span_id="span-2")
    assert s2["parent_id"] == "span-1" and s2["dur"].value == 33_000_000
    assert s2["severity"] == "error" and s2["state"] == "error"  # error=true tag ("true" as a string)
    assert s2["category"] == "service1" and s2["host"] == "foobar.org" and s2["entity"] == "service/service1"
    assert dict(s2["attrs"])["process.hostname"] == "foobar.org"
    (s7,) = _rows(tl, span_id="span-7")
    assert s7["parent_id"] == "span-6"  # only a FOLLOWS_FROM in the same trace: Jaeger takes it as parent
    assert s7["ts_prec"].value == 1000


def test_duplicate_span_id_logs_warnings_references(corpus):
    tl = tk.load(corpus / "jaeger_json" / "jaeger_uimodel_ui_01.json")
    dup = _rows(tl, kind="span", span_id="0000000000000002")
    assert sorted(r["name"] for r in dup) == ["some-operation", "test-general-conversion"]  # kept apart
    typed = dict(next(r for r in dup if r["name"] == "some-operation")["attrs"])
    assert typed["peer.ipv4"] == "23456" and typed["error"] == "true" and typed["temperature"] == "72.5"
    assert typed["javascript_limit"] == "9223372036854775222" and typed["blob"] == "AAAwOQ=="
    logs = _rows(tl, kind="instant")
    assert [r["name"] for r in logs] == ["some-event", None]
    assert dict(logs[1]["attrs"]) == {"x": "y"} and logs[0]["span_id"] == "0000000000000002"
    (ref,) = _rows(tl, kind="span", span_id="0000000000000004")
    assert ref["parent_id"] == "0000000000000002"
    assert dict(ref["attrs"])["warnings"] == '["some span warning"]'
    flows = _rows(tl, kind="flow")
    assert sorted((r["name"], r["flow_id"]) for r in flows) == [
        ("CHILD_OF", "00000000000000ff"), ("FOLLOWS_FROM", "0000000000000002")]
    assert all(r["flow_dir"] == "in" and r["span_id"] == "0000000000000004" for r in flows)
    assert "some trace warning" in _src(tl)["note"]


def test_span_array_with_embedded_process(corpus):
    tl = tk.load(corpus / "jaeger_json" / "jaeger_anonymizer_span_array.json")
    a, b = tl.events.to_pylist()
    assert a["category"] == "16af988c443cff37" and b["category"] == "3c220036602f839e"
    assert b["parent_id"] == "7606ddfe69932d34" and b["dur"].value == 32_782_000
    assert a["ts_src"] == 1605223981761425000


def test_malformed_trailing_comma_is_a_reject(corpus):
    tl = tk.load(corpus / "jaeger_json" / "jaeger_anonymizer_malformed_trailing_comma.json")
    assert "trailing comma" in _src(tl)["note"]
    (rej,) = tl.rejects.to_pylist()
    assert "startTime" in rej["reason"] and '"7606ddfe69932d34"' in rej["raw"]


def test_overlapping_children_kept(corpus):
    tl = tk.load(corpus / "jaeger_json" / "jaeger-ui_overlapping_children_longer_than_parent.json")
    spans = {r["name"]: r for r in tl.events.to_pylist()}
    parent, child = spans["send"], spans["async task 1"]
    assert child["parent_id"] == parent["span_id"]
    assert child["ts_src"] + child["dur"].value > parent["ts_src"] + parent["dur"].value
    assert parent["ts_src"] == 100_000  # µs since the epoch, as written


def test_fixture_ui_download(tmp_path):
    tl = load_neutral(FIX / "ui_download.json", tmp_path)
    assert _src(tl)["format"] == "jaeger"
    assert _counts(tl) == (4, 3, 1, 6)
    assert_accounted(tl)
    (db,) = _rows(tl, kind="span", span_id="00f067aa0ba902b8")
    assert db["parent_id"] == "00f067aa0ba902b7" and db["severity"] == "error" and db["host"] == "db-1"
    (miss,) = _rows(tl, name="cache-miss")
    assert miss["severity"] == "warning" and miss["message"] == "cart not cached" and miss["host"] == "web-1"
    (err,) = _rows(tl, kind="instant", name="error")
    assert err["severity"] == "error"
    (flow,) = _rows(tl, kind="flow")
    assert flow["flow_id"] == "00f067aa0ba902b7" and dict(flow["attrs"])["ref.traceID"].startswith("4bf9")
    (consumer,) = _rows(tl, kind="span", span_id="10f067aa0ba902b7")
    assert consumer["parent_id"] is None and consumer["category"] == "worker"
    (rej,) = tl.rejects.to_pylist()
    assert '"lost"' in rej["raw"]


# --------------------------------------------------------------------------- hostile input


def _trace(spans: list[dict]) -> dict:
    return {"traceID": "t1", "spans": spans, "processes": {"p1": {"serviceName": "svc", "tags": []}}}


def _span(i: int, start: int, **kw) -> dict:
    return {"traceID": "t1", "spanID": f"s{i}", "operationName": "op", "references": [], "startTime": start,
            "duration": 10, "tags": [], "logs": [], "processID": "p1", **kw}


def test_truncated_garbage_empty(tmp_path, corpus):
    data = (corpus / "jaeger_json" / "jaeger-ui_tracegraph_testTrace.json").read_bytes()
    p = tmp_path / "cut.json"
    p.write_bytes(data[:1000])
    tl = tk.load(p)
    assert _src(tl)["format"] == "jaeger" and _counts(tl) == (1, 0, 1, 0)
    assert "invalid JSON" in tl.rejects.column("reason")[0].as_py()
    g = tmp_path / "g.json"
    g.write_bytes(b"\xfe\xff garbage ]]")
    assert _counts(tk.load(g, format="jaeger")) == (1, 0, 1, 0)
    e = tmp_path / "e.json"
    e.write_bytes(b"")
    assert _counts(tk.load(e, format="jaeger")) == (0, 0, 0, 0)


def test_invalid_utf8_huge_tag_out_of_order(tmp_path):
    big = "y" * 2_000_000
    spans = [_span(i, 1_700_000_000_000_000 - i, tags=[{"key": "big", "type": "string", "value": big}] if i == 1 else [])
             for i in range(4)]
    spans[2]["operationName"] = "caf\u00e9"
    p = tmp_path / "t.json"
    p.write_bytes(json.dumps(_trace(spans), ensure_ascii=False).encode().replace("caf\u00e9".encode(), b"caf\xff"))
    tl = tk.load(p)
    assert _counts(tl) == (4, 4, 0, 4)
    assert_accounted(tl)
    ts = tl.events.column("ts_src").to_pylist()
    assert ts == sorted(ts)
    assert dict(_rows(tl, span_id="s1")[0]["attrs"])["big"] == big
    assert _rows(tl, span_id="s2")[0]["name"].startswith("caf")
    assert "UTF-8" in _src(tl)["note"]


def test_json_lines_of_traces(tmp_path):
    p = tmp_path / "traces.jsonl"
    p.write_text(json.dumps(_trace([_span(1, 1_700_000_000_000_000)])) + "\n"
                 + json.dumps(_trace([_span(2, 1_700_000_000_000_001)])) + "\n" + '{"traceID": "t1", "sp\n')
    tl = tk.load(p)
    assert _counts(tl) == (3, 2, 1, 2)
    assert tl.rejects.column("line").to_pylist() == [3]
    assert sorted(tl.events.column("line").to_pylist()) == [1, 2]


def test_sniff_does_not_claim_other_json():
    sniff = get_reader("jaeger").sniff
    assert sniff(b'{"traceEvents":[{"name":"a","ph":"X","ts":1}]}', "t.json") == 0.0
    assert sniff(b'{"ts":"2024-01-01T00:00:00Z","traceID":"a","spanID":"b","msg":"x"}\n', "a.log") == 0.0
    assert sniff(b'{"kind":"Event","apiVersion":"v1"}', "e.json") == 0.0
    assert sniff(b'[{"traceId":"ab","id":"cd","timestamp":1}]', "z.json") == 0.0  # zipkin
    assert sniff(b'{"resourceSpans":[]}', "o.json") == 0.0


def test_tag_without_key_kept_under_the_empty_key(tmp_path):
    # a hostile tag list: one tag has no "key" (a null key), the others are normal
    spans = [_span(1, 1_700_000_000_000_000, tags=[{"type": "string", "value": "orphan"},
                                                    {"key": "http.method", "type": "string", "value": "GET"}]),
             _span(2, 1_700_000_000_000_001, tags=[{"key": "ok", "type": "bool", "value": True}])]
    p = tmp_path / "t.json"
    p.write_text(json.dumps(_trace(spans)))
    tl = tk.load(p)
    assert _counts(tl) == (2, 2, 0, 2)
    assert_accounted(tl)
    a1 = dict(_rows(tl, span_id="s1")[0]["attrs"])
    assert a1[""] == "orphan" and a1["http.method"] == "GET"
    assert dict(_rows(tl, span_id="s2")[0]["attrs"])["ok"] == "true"
