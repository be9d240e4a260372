"""Zipkin v2 JSON reader: corpus files (exact counts), a documentation fixture, hostile input."""

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

FIX = Path(__file__).parent / "fixtures" / "zipkin"

# file → (records, emitted, rejected, rows)
CORPUS = {
    "zipkin-lens_envoy.json": (1, 1, 0, 1),
    "zipkin-lens_messaging-kafka.json": (28, 28, 0, 28),
    "zipkin-lens_skew.json": (4, 4, 0, 4),
    "zipkin-lens_smartthings-oauth-authorization.json": (175, 175, 0, 184),  # + 9 annotations
    "zipkin-lens_yelp.json": (16, 16, 0, 17),  # + 1 annotation
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_counts(corpus, name):
    tl = tk.load(corpus / "zipkin_json" / name)
    assert _src(tl)["format"] == "zipkin"
    assert _counts(tl) == CORPUS[name]
    assert_accounted(tl)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_detected_from_content(corpus, name, tmp_path):
    tl = load_neutral(corpus / "zipkin_json" / name, tmp_path)
    assert _src(tl)["format"] == "zipkin"
    assert _counts(tl) == CORPUS[name]


def test_skew_shared_span_halves_kept_apart(corpus):
    tl = tk.load(corpus / "zipkin_json" / "zipkin-lens_skew.json")
    halves = _rows(tl, span_id="74280ae0c10d8062")
    assert len(halves) == 2
    by_kind = {dict(r["attrs"])["span.kind"]: r for r in halves}
    server, client = by_kind["server"], by_kind["client"]
    assert dict(server["attrs"])["shared"] == "true" and "shared" not in dict(client["attrs"])
    assert server["category"] == "serviceb" and client["category"] == "servicea"
    assert server["host"] == "192.0.0.0" and client["host"] == "127.0.0.0"
    # clock skew is data: the server half starts before the client half that called it
    assert server["ts_src"] < client["ts_src"]
    assert server["dur"].value == 93_577_000 and client["parent_id"] == "bf396325699c84bf"
    ts = tl.events.column("ts_src").to_pylist()
    assert ts[0] == 1470150004008761000 and ts[-1] == 1470150004074202000


def test_envoy_tags_and_no_service_name(corpus):
    tl = tk.load(corpus / "zipkin_json" / "zipkin-lens_envoy.json")
    (r,) = tl.events.to_pylist()
    a = dict(r["attrs"])
    assert a["guid:x-request-id"] == "d709b78f-583e-988e-b581-25b72c63852d" and a["http.status_code"] == "200"
    assert a["localEndpoint.ipv4"] == "169.254.65.45" and r["host"] == "169.254.65.45"
    assert r["category"] is None and r["entity"] is None
    assert r["trace_id"] == r["span_id"] == "978883983d506fa5" and r["parent_id"] is None
    assert _src(tl)["host"] == "169.254.65.45"


def test_messaging_kinds_and_remote_endpoint(corpus):
    tl = tk.load(corpus / "zipkin_json" / "zipkin-lens_messaging-kafka.json")
    kinds = [dict(r["attrs"]).get("span.kind") for r in tl.events.to_pylist()]
    assert kinds.count("producer") > 0 and kinds.count("consumer") > 0
    (poll,) = _rows(tl, span_id="0562809467078eab")
    assert poll["dur"].value == 26_000 and poll["name"] == "poll"
    assert dict(poll["attrs"])["remoteEndpoint.serviceName"] == "kafka"
    assert dict(poll["attrs"])["kafka.topic"] == "messages"


def test_annotations_and_missing_duration(corpus):
    tl = tk.load(corpus / "zipkin_json" / "zipkin-lens_smartthings-oauth-authorization.json")
    ann = _rows(tl, kind="instant")
    assert len(ann) == 9 and "Headers Received" in {r["name"] for r in ann}
    body = [r for r in ann if r["name"] == "Body Part Received"]
    assert 1543334725567000000 in {r["ts_src"] for r in body} and all(r["span_id"] for r in body)
    spans = _rows(tl, kind="span")
    assert sum(r["dur"] is None for r in spans) == 19
    ids = [r["span_id"] for r in spans]
    assert len(ids) - len(set(ids)) == 45  # shared ids all kept


def test_yelp_error_free_and_ports(corpus):
    tl = tk.load(corpus / "zipkin_json" / "zipkin-lens_yelp.json")
    assert all(r["state"] == "ok" for r in _rows(tl, kind="span"))
    (ann,) = _rows(tl, kind="instant")
    assert ann["name"] == "py_zipkin.logging_end"
    r = _rows(tl, span_id="15fc03927f0f68df")[0]
    assert dict(r["attrs"])["remoteEndpoint.port"] == "31882"


def test_fixture_list_of_traces(tmp_path):
    tl = load_neutral(FIX / "traces.json", tmp_path)
    assert _src(tl)["format"] == "zipkin"
    assert _counts(tl) == (4, 3, 1, 5)
    assert_accounted(tl)
    client = next(r for r in _rows(tl, kind="span") if dict(r["attrs"])["span.kind"] == "client")
    assert client["trace_id"] == "463ac35c9f6413ad48485a3953bb6124"  # upper-case hex lower-cased
    assert client["severity"] == "error" and client["state"] == "error" and client["host"] == "2001:db8::c001"
    assert dict(client["attrs"])["debug"] == "true"
    assert [r["name"] for r in _rows(tl, kind="instant")] == ["ws", "wr"]
    (rej,) = tl.rejects.to_pylist()
    assert "timestamp" in rej["reason"] and '"late half"' in rej["raw"] and "null" not in rej["raw"]


def test_fixture_v1_spans(tmp_path):
    tl = load_neutral(FIX / "v1_spans.json", tmp_path)
    assert _src(tl)["format"] == "zipkin" and _counts(tl) == (2, 2, 0, 5)
    assert "v1" in _src(tl)["note"]
    (root,) = _rows(tl, kind="span", span_id="352bff9a74ca9ad2")
    assert root["category"] == "frontend" and root["host"] == "10.0.0.1" and root["severity"] == "error"
    assert dict(root["attrs"]) == {"http.path": "/api", "error": "timeout"}
    (sr,) = _rows(tl, kind="instant", name="sr")
    assert sr["category"] == "backend" and sr["span_id"] == "452bff9a74ca9ad3"


# --------------------------------------------------------------------------- hostile input


def _span(i: int, ts: int, **kw) -> dict:
    return {"traceId": "00000000000000aa", "id": f"{i:016x}", "name": "op", "timestamp": ts, "duration": 5,
            "localEndpoint": {"serviceName": "svc"}, **kw}


def test_truncated_garbage_empty(tmp_path, corpus):
    data = (corpus / "zipkin_json" / "zipkin-lens_yelp.json").read_bytes()
    p = tmp_path / "cut.json"
    p.write_bytes(data[:3000])
    tl = tk.load(p)
    assert _src(tl)["format"] == "zipkin" and _counts(tl) == (1, 0, 1, 0)
    g = tmp_path / "g.json"
    g.write_bytes(b"<<<< not json\x00\x01")
    assert _counts(tk.load(g, format="zipkin")) == (1, 0, 1, 0)
    e = tmp_path / "e.json"
    e.write_bytes(b"   \n")
    assert _counts(tk.load(e, format="zipkin")) == (0, 0, 0, 0)


def test_invalid_utf8_huge_tag_out_of_order(tmp_path):
    big = "z" * 2_000_000
    spans = [_span(i, 1_700_000_000_000_000 - i * 7) for i in range(5)]
    spans[1]["tags"] = {"big": big}
    spans[3]["name"] = "caf\u00e9"
    p = tmp_path / "t.json"
    p.write_bytes(json.dumps(spans, ensure_ascii=False).encode().replace("caf\u00e9".encode(), b"caf\xff"))
    tl = tk.load(p)
    assert _counts(tl) == (5, 5, 0, 5)
    assert_accounted(tl)
    ts = tl.events.column("ts_src").to_pylist()
    assert ts == sorted(ts)
    assert dict(_rows(tl, span_id=f"{1:016x}")[0]["attrs"])["big"] == big
    assert _rows(tl, span_id=f"{3:016x}")[0]["name"] == "caf\ufffd"
    assert "UTF-8" in _src(tl)["note"]


def test_sniff_does_not_claim_other_json():
    sniff = get_reader("zipkin").sniff
    assert sniff(b'[{"name":"a","ph":"X","ts":1,"pid":1,"tid":1}]', "t.json") == 0.0
    assert sniff(b'{"traceEvents":[]}', "t.json") == 0.0
    assert sniff(b'{"ts":"2024-01-01T00:00:00Z","traceId":"abcdefabcdefabcd","id":"1"}\n', "a.log") == 0.0
    assert sniff(b'[{"traceID":"ab","spanID":"cd","startTime":1}]', "j.json") == 0.0  # jaeger
    assert sniff(b'[[{"traceId":"463ac35c9f6413ad","id":"a2fb4a1d1a96d312","timestamp":1}]]', "x") >= 0.8
