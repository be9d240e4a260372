"""OTLP/JSON reader: corpus files (exact counts), documentation fixtures, hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import tracekit as tk
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import counts_records_emitted_rejected_rows as _counts
from .helpers import rows_matching as _rows
from .helpers import source_row as _src

FIX = Path(__file__).parent / "fixtures" / "otlp"

# file → (records, emitted, rejected, rows)
CORPUS = {
    "jaeger-ui_otlp_multi_line.jsonl": (4, 4, 0, 4),
    "jaeger_memstore_otel_traces_01.json": (4, 4, 0, 20),  # 4 spans + 8 events + 8 links
    "lnav_otlp_logs_lines.jsonl": (11, 11, 0, 11),
    "otel-proto_example_logs.json": (1, 1, 0, 1),
    "otel-proto_example_trace.json": (1, 1, 0, 1),
}
FIXTURES = {
    "logs_severity.jsonl": (16, 16, 0, 17),  # + 1 loss row
    "trace_base64_ids.json": (2, 2, 0, 2),
    "trace_enum_names.json": (2, 1, 1, 4),  # span + 2 loss + 1 event; 1 span without start
    "trace_legacy_instrumentation_library.json": (2, 2, 0, 2),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_counts(corpus, name):
    tl = tk.load(corpus / "otlp_json" / name)
    assert _src(tl)["format"] == "otlp"
    assert _counts(tl) == CORPUS[name]
    assert_accounted(tl)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_detected_from_content(corpus, name, tmp_path):
    tl = load_neutral(corpus / "otlp_json" / name, tmp_path)
    assert _src(tl)["format"] == "otlp"
    assert _counts(tl) == CORPUS[name]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_counts(name, tmp_path):
    tl = load_neutral(FIX / name, tmp_path)
    assert _src(tl)["format"] == "otlp"
    assert _counts(tl) == FIXTURES[name]
    assert_accounted(tl)


def test_multi_line_requests(corpus):
    tl = tk.load(corpus / "otlp_json" / "jaeger-ui_otlp_multi_line.jsonl")
    ev = tl.events
    assert ev.column("ts_src").to_pylist()[0] == 1711138246940000000  # sorted: "main" first
    assert ev.column("ts_src").to_pylist()[-1] == 1711138247025000000
    (main,) = _rows(tl, span_id="eff3153be6b1fb93")
    assert main["name"] == "main" and main["parent_id"] is None  # parentSpanId "" is no parent
    assert main["dur"].value == 176321958
    assert main["trace_id"] == "c620759e5d60fafb8ee0922b30e06bc6"
    assert main["line"] == 4 and main["category"] == "example-trace"
    attrs = dict(main["attrs"])
    assert attrs["otel.scope.name"] == "widgets" and attrs["otel.scope.version"] == "1.2.3"
    assert attrs["resource.telemetry.sdk.version"] == "1.22.0"
    assert attrs["span.kind"] == "internal" and attrs["otel.status_code"] == "UNSET"
    assert main["state"] == "ok" and main["severity"] is None and main["entity"] == "service/example-trace"
    (child,) = _rows(tl, span_id="26f5ef9dbb885479")
    assert child["parent_id"] == "49b8e9efa1e8a3b1" and child["line"] == 1


def test_events_links_status_and_typed_attrs(corpus):
    tl = tk.load(corpus / "otlp_json" / "jaeger_memstore_otel_traces_01.json")
    spans = _rows(tl, kind="span")
    assert len(spans) == 4
    s2 = next(r for r in spans if r["name"] == "test-general-conversion-2")
    assert s2["severity"] == "error" and s2["state"] == "error"
    assert s2["span_id"] == "0000000000000002" and s2["parent_id"] == "0000000000000003"
    assert s2["dur"].value == 5000
    a = dict(s2["attrs"])
    assert a["peer.ipv4"] == "23456" and a["temperature"] == "72.5" and a["blob"] == "AAAwOQ=="
    assert a["traceState"] == "state.2" and a["flags"] == "1" and a["span.kind"] == "server"
    assert a["scope.scope.attributes.2"] == "attribute-y" and a["resource.service.name"] == "service-x"
    kinds = {r["name"]: dict(r["attrs"])["span.kind"] for r in spans}
    assert kinds["test-general-conversion-5"] == "consumer"
    events = _rows(tl, kind="instant", span_id="0000000000000002")
    assert [e["name"] for e in events] == ["testing-event", None]
    assert dict(events[0]["attrs"]) == {"event-x": "event-y"}
    assert events[0]["trace_id"] == "00000000000000010000000000000000"
    links = _rows(tl, kind="flow", span_id="0000000000000002")
    assert sorted(r["flow_id"] for r in links) == ["0000000000000004", "00000000000000ff"]
    assert all(r["flow_dir"] == "in" for r in links)
    other = next(r for r in links if r["flow_id"] == "00000000000000ff")
    assert dict(other["attrs"])["link.trace_id"] == "00000000000000ff0000000000000000"
    assert dict(other["attrs"])["opentracing.ref_type"] == "child_of"


def test_logs_any_value_types(corpus):
    tl = tk.load(corpus / "otlp_json" / "otel-proto_example_logs.json")
    (r,) = tl.events.to_pylist()
    assert r["kind"] == "log" and r["severity"] == "info" and r["message"] == "Example log record"
    assert r["trace_id"] == "5b8efff798038103d269b633813fc60c"  # upper-case hex lower-cased
    assert r["span_id"] == "eee19b7ec3c1b174"
    a = dict(r["attrs"])
    assert a["boolean.attribute"] == "true" and a["int.attribute"] == "10"
    assert a["double.attribute"] == "637.704"
    assert json.loads(a["array.attribute"]) == ["many", "values"]
    assert json.loads(a["map.attribute"]) == {"some.map.key": "some value"}
    assert a["scope.my.scope.attribute"] == "some scope attribute"


def test_logs_severity_and_hosts(corpus):
    tl = tk.load(corpus / "otlp_json" / "lnav_otlp_logs_lines.jsonl")
    sev = tl.events.column("severity").to_pylist()
    assert sev == ["info", "warning", "info", "error", "info", "trace", "debug", "critical", "info", None, "info"]
    hosts = tl.events.column("host").to_pylist()
    assert hosts[:3] == ["prod-01"] * 3 and hosts[8] is None
    last = tl.events.to_pylist()[-1]
    assert dict(last["attrs"])["observedTimeUnixNano"] == "1700000010100000000"


def test_fixture_severity_ranges_and_observed_time():
    tl = tk.load(FIX / "logs_severity.jsonl")
    logs = _rows(tl, kind="log")
    by = {r["message"]: r for r in logs}
    want = {"n1": "trace", "n4": "trace", "n5": "debug", "n8": "debug", "n9": "info", "n12": "info",
            "n13": "warning", "n16": "warning", "n17": "error", "n20": "error", "n21": "critical",
            "n24": "critical", "text only": "warning"}
    assert {k: by[k]["severity"] for k in want} == want
    assert by["n1"]["pid"] == 4242 and by["n1"]["host"] == "node-a"
    obs = by["observed only"]
    assert obs["ts_src"] == 1700000000000000014 and dict(obs["attrs"])["tk.time"].startswith("observed")
    ev = _rows(tl, name="order.placed")[0]
    assert json.loads(ev["message"]) == {"order": 7, "items": ["a", True]}
    (loss,) = _rows(tl, kind="loss")
    assert loss["value"] == 3 and loss["ts_src"] == 1700000000000000016


def test_fixture_base64_ids():
    tl = tk.load(FIX / "trace_base64_ids.json")
    child = _rows(tl, name="child")[0]
    assert child["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert child["span_id"] == "eee19b7ec3c1b175" and child["parent_id"] == "eee19b7ec3c1b174"
    assert "base64" in _src(tl)["note"]


def test_fixture_enum_names_dropped_counts_and_reject():
    tl = tk.load(FIX / "trace_enum_names.json")
    (span,) = _rows(tl, kind="span")
    assert span["severity"] == "error" and span["message"] == "upstream timed out" and span["pid"] == 77
    a = dict(span["attrs"])
    assert a["span.kind"] == "server" and a["otel.status_code"] == "ERROR" and a["retries"] == "3"
    assert json.loads(a["tags"]) == ["x", [1, 2.5]]
    loss = {r["name"]: r["value"] for r in _rows(tl, kind="loss")}
    assert loss == {"dropped attributes": 2, "dropped events": 1}
    (exc,) = _rows(tl, kind="instant")
    assert exc["severity"] == "error" and exc["ts_src"] == 1700000100100000000
    (rej,) = tl.rejects.to_pylist()
    assert "start time" in rej["reason"] and '"no-start"' in rej["raw"]


def test_fixture_pre_1_0_names():
    tl = tk.load(FIX / "trace_legacy_instrumentation_library.json")
    span, log = tl.events.to_pylist()
    assert span["kind"] == "span" and dict(span["attrs"])["otel.scope.name"] == "io.opentelemetry.legacy"
    assert dict(span["attrs"])["otel.status_code"] == "OK" and dict(span["attrs"])["span.kind"] == "client"
    assert log["kind"] == "log" and log["severity"] == "warning" and log["offset"] == 1
    assert "pre-1.0" in _src(tl)["note"]


# --------------------------------------------------------------------------- hostile input

REQ = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                          "scopeSpans": [{"scope": {"name": "s"}, "spans": []}]}]}


def _span(i: int, start: int, name: str = "op", **extra) -> dict:
    return {"traceId": "ab" * 16, "spanId": f"{i:016x}", "name": name, "kind": 1,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1000), **extra}


def _request(spans: list[dict]) -> dict:
    req = json.loads(json.dumps(REQ))
    req["resourceSpans"][0]["scopeSpans"][0]["spans"] = spans
    return req


def test_truncated_document_is_one_reject(corpus, tmp_path):
    data = (corpus / "otlp_json" / "jaeger_memstore_otel_traces_01.json").read_bytes()
    p = tmp_path / "cut.json"
    p.write_bytes(data[: len(data) // 2])
    tl = tk.load(p)
    assert _src(tl)["format"] == "otlp"
    assert _counts(tl) == (1, 0, 1, 0)
    assert "invalid JSON" in tl.rejects.column("reason")[0].as_py()
    assert_accounted(tl)


def test_truncated_last_line_of_jsonl(tmp_path):
    lines = [json.dumps(_request([_span(i, 1_700_000_000_000_000_000 + i)])) for i in range(3)]
    p = tmp_path / "otel.jsonl"
    p.write_text("\n".join(lines) + "\n" + lines[0][:57] + "\n")
    tl = tk.load(p)
    assert _counts(tl) == (4, 3, 1, 3)
    (rej,) = tl.rejects.to_pylist()
    assert rej["line"] == 4 and rej["offset"] == sum(len(x) + 1 for x in lines)
    assert_accounted(tl)


def test_block_parsing_of_big_json_lines(tmp_path, monkeypatch):
    import tracekit.readers.otlp as otlp

    monkeypatch.setattr(otlp, "_BLOCK", 2048)  # so small files take the parallel-block path
    lines = [json.dumps(_request([_span(i * 10 + j, 1_700_000_000_000_000_000 + i * 10 + j) for j in range(5)]))
             for i in range(40)]
    p = tmp_path / "big.jsonl"
    p.write_text("\n".join(lines) + "\n")
    assert p.stat().st_size > 2 * 2048
    tl = tk.load(p)
    assert _counts(tl) == (200, 200, 0, 200)
    assert sorted(set(tl.events.column("line").to_pylist())) == list(range(1, 41))
    pretty = tmp_path / "pretty.json"  # one document over many blocks: parsed whole
    pretty.write_text(json.dumps(_request([_span(i, 1_700_000_000_000_000_000 + i) for i in range(60)]), indent=2))
    assert pretty.stat().st_size > 2 * 2048
    assert _counts(tk.load(pretty)) == (60, 60, 0, 60)


def _big_request(n_res: int) -> dict:
    """A request of ``n_res`` resources (one scope each), spans with events, a link and a
    dropped count, so that span, instant, flow and loss rows interleave in time."""
    req = {"resourceSpans": []}
    t0 = 1_700_000_000_000_000_000
    for r in range(n_res):
        spans = []
        for j in range(6):
            i = r * 6 + j
            sp = _span(i, t0 + i * 1000 + (j % 3) * 10, name=f"op{j}",
                       attributes=[{"key": "k", "value": {"intValue": str(i)}}])
            if j == 2:  # an event later than the next spans' starts; a tie with a span start
                sp["events"] = [{"timeUnixNano": str(t0 + i * 1000 + 2500), "name": "exception"},
                                {"timeUnixNano": str(t0 + (i + 1) * 1000), "name": "tie"}]
            if j == 4:
                sp["links"] = [{"traceId": "cd" * 16, "spanId": f"{i + 1:016x}"}]
                sp["droppedAttributesCount"] = 3
            if i == 7:
                del sp["startTimeUnixNano"]  # rejected
            spans.append(sp)
        req["resourceSpans"].append({"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": f"svc{r % 3}"}}]},
            "scopeSpans": [{"scope": {"name": "s", "version": str(r)}, "spans": spans}]})
    return req


def test_one_big_request_parsed_in_pieces(tmp_path, monkeypatch):
    import tracekit.readers.otlp as otlp

    req = _big_request(60)
    items = [json.dumps(rs, separators=(",", ":")) for rs in req["resourceSpans"]]
    per_line = tmp_path / "per_line.json"  # the layout of gen_workloads.py: one resource per line
    per_line.write_text('{"resourceSpans":[' + ",\n".join(items) + "]}\n")
    compact = tmp_path / "compact.json"
    compact.write_text(json.dumps(req, separators=(",", ":")))
    pretty = tmp_path / "pretty.json"  # line breaks inside the items: never cut
    pretty.write_text(json.dumps(req, indent=1))
    mixed = dict(req, resourceLogs=[{"resource": {}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1700000000000000001", "body": {"stringValue": "x"}}]}]}])
    both = tmp_path / "both.json"  # a second key after the spans: the pieces would misread it
    both.write_text(json.dumps(mixed, separators=(",", ":")))
    both_lines = tmp_path / "both_lines.json"  # the same, one item per line
    both_lines.write_text('{"resourceSpans":[' + ",\n".join(items) + '],"resourceLogs":'
                          + json.dumps(mixed["resourceLogs"]) + "}\n")
    files = (per_line, compact, pretty, both, both_lines)
    whole = {p.name: tk.load(p) for p in files}
    monkeypatch.setattr(otlp, "_BLOCK", 1024)
    for p in files:
        assert p.stat().st_size > 4 * 1024
        buf = pa.py_buffer(p.read_bytes())
        split = otlp._split_document(buf, 0)
        assert (split is None) == (p is pretty), p.name
        if split is not None:
            assert split[0].pieces > 3
        in_place = otlp._items_in_place(str(p), buf, 0)  # one item per line: parsed without a copy
        assert (in_place is not None) == (p is per_line), p.name
        tl = tk.load(p)
        assert tl.events.equals(whole[p.name].events), p.name
        assert tl.rejects.equals(whole[p.name].rejects)
        rows = 359 + 120 + 60 + 60  # spans (one rejected), events, links, dropped counts
        two_keys = p in (both, both_lines)
        assert _counts(tl) == ((361, 360, 1, rows + 1) if two_keys else (360, 359, 1, rows)), p.name
        assert_accounted(tl)
        assert set(tl.events.column("line").to_pylist()) == {1}
        offs = _rows(tl, kind="span")
        assert sorted(r["offset"] for r in offs) == [i for i in range(360) if i != 7]
    ev = tk.load(per_line).events
    ts = ev.column("ts_src").to_pylist()
    assert ts == sorted(ts)
    kinds = ev.column("kind").to_pylist()
    tie = ts.index(1_700_000_000_000_000_000 + 3 * 1000)  # a span start and an event at the same ns
    assert kinds[tie:tie + 2] == ["span", "instant"]  # ties: spans first, as the loader orders them
    assert ev.column("seq").to_pylist() == list(range(len(ev)))  # rows were emitted in time order


def test_garbage_and_empty(tmp_path):
    g = tmp_path / "garbage.bin"
    g.write_bytes(b"\x00\x01 not json at all {{{\n")
    assert get_reader("otlp").sniff(g.read_bytes(), "garbage.bin") == 0.0
    tl = tk.load(g, format="otlp")
    assert _counts(tl) == (1, 0, 1, 0)
    e = tmp_path / "empty.json"
    e.write_bytes(b"")
    tl = tk.load(e, format="otlp")
    assert _counts(tl) == (0, 0, 0, 0)
    w = tmp_path / "blank.json"
    w.write_bytes(b"\n  \n")
    assert _counts(tk.load(w, format="otlp")) == (0, 0, 0, 0)


def test_invalid_utf8_kept(tmp_path):
    body = json.dumps(_request([_span(1, 1_700_000_000_000_000_000, name="caf\u00e9")]), ensure_ascii=False).encode()
    p = tmp_path / "bad.json"
    p.write_bytes(body.replace("caf\u00e9".encode(), b"caf\xff"))
    tl = tk.load(p)
    assert _counts(tl) == (1, 1, 0, 1)
    assert tl.events.column("name")[0].as_py() == "caf\ufffd"
    assert "UTF-8" in _src(tl)["note"]
    assert_accounted(tl)


def test_huge_attribute_value_and_out_of_order(tmp_path):
    big = "x" * 3_000_000
    spans = [_span(i, 1_700_000_000_000_000_000 - i * 1000) for i in range(5)]
    spans[2]["attributes"] = [{"key": "big", "value": {"stringValue": big}}]
    p = tmp_path / "t.json"
    p.write_text(json.dumps(_request(spans)))
    tl = tk.load(p)
    assert _counts(tl) == (5, 5, 0, 5)
    ts = tl.events.column("ts_src").to_pylist()
    assert ts == sorted(ts) and len(set(ts)) == 5
    big_row = _rows(tl, span_id=f"{2:016x}")[0]
    assert dict(big_row["attrs"])["big"] == big
    # offsets keep the file order of the records
    assert pc.max(tl.events.column("offset")).as_py() == 4


def test_deeply_nested_any_value(tmp_path):
    depth = 400  # beyond what Arrow's nested kernels should recurse through: read by DuckDB
    leaf = '{"stringValue":"leaf"}'
    deep = '{"arrayValue":{"values":[' * depth + leaf + "]}}" * depth
    span = json.dumps(_span(1, 1_700_000_000_000_000_000)).replace('"kind": 1', '"kind": 1, "attributes": '
                                                                   '[{"key": "deep", "value": ' + deep + "}]")
    p = tmp_path / "deep.json"
    p.write_text(json.dumps(_request([])).replace('"spans": []', '"spans": [' + span + "]"))
    tl = tk.load(p)
    assert _counts(tl) == (1, 1, 0, 1)
    v = dict(tl.events.column("attrs")[0].as_py())["deep"]
    assert "leaf" in v and v.count("[") == depth  # too deep for compact JSON: the raw AnyValue text


def test_unknown_fields_kept_or_named(tmp_path):
    spans = [_span(1, 1_700_000_000_000_000_000, customField="hello", customObj={"a": [1, 2]})]
    req = _request(spans)
    req["resourceSpans"][0]["resource"]["extraRes"] = 1
    p = tmp_path / "x.json"
    p.write_text(json.dumps(req))
    tl = tk.load(p)
    a = dict(tl.events.column("attrs")[0].as_py())
    assert a["customField"] == "hello" and a["customObj"] == '{"a":[1,2]}'
    assert "resourceSpans.resource.extraRes" in _src(tl)["note"]


def test_sniff_does_not_claim_other_json():
    sniff = get_reader("otlp").sniff
    assert sniff(b'{"traceEvents":[{"name":"a","ph":"X","ts":1}]}', "t.json") == 0.0
    assert sniff(b'{"ts":"2024-01-01T00:00:00Z","msg":"resourceSpans exported"}\n', "a.log") == 0.0
    assert sniff(b'[{"name":"a","ph":"B","ts":1}]', "t.json") == 0.0
    assert sniff(b'{"kind":"Event","apiVersion":"v1"}', "e.json") == 0.0
    assert sniff(b'{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1"}', "j.json") == 0.0
    assert sniff(b'{"resourceLogs":[{"resource":{}', "x") >= 0.8


def test_schema_conformant_and_dictionary_columns(corpus):
    tl = tk.load(corpus / "otlp_json" / "jaeger_memstore_otel_traces_01.json")
    assert tl.events.schema.equals(tk.schema.EVENT_SCHEMA)
    assert set(tl.events.column("kind").to_pylist()) == {"span", "instant", "flow"}
    assert tl.events.column("attrs").type == pa.map_(pa.string(), pa.string())
