"""Kubernetes events and audit log readers: corpus files, fixtures written from the docs,
hostile input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.readers import get_reader
from tracekit.readers._k8s import singular_kinds

from .helpers import assert_accounted, load_neutral
from .helpers import events_with_attr_dicts as _rows
from .helpers import the_source_row as _src

FIX = Path(__file__).parent / "fixtures" / "k8s"

#: corpus file → (format, records, rows, metadata, rejected)
CORPUS = {
    "k8s_events/k9s_core_v1_event_gke_pulled.json": ("k8s_events", 1, 1, 0, 0),
    "k8s_audit/falco_attach_cluster_admin_role.jsonl": ("k8s_audit", 1, 1, 0, 0),
    "k8s_audit/falco_create_configmap_sensitive_values.jsonl": ("k8s_audit", 6, 6, 0, 0),
    "k8s_audit/falco_create_nginx_pod_privileged.jsonl": ("k8s_audit", 1, 1, 0, 0),
    "k8s_audit/falco_exec_pod.jsonl": ("k8s_audit", 1, 1, 0, 0),
}
#: fixture → (format, records, rows, metadata, rejected)
FIXTURES = {
    "kubectl_get_events.json": ("k8s_events", 4, 4, 0, 0),
    "events_k8s_io_v1.json": ("k8s_events", 1, 1, 0, 0),
    "watch_stream.jsonl": ("k8s_events", 5, 3, 1, 1),
    "audit_v1_stages.jsonl": ("k8s_audit", 7, 7, 0, 0),
    "audit_webhook_eventlist.json": ("k8s_audit", 2, 2, 0, 0),
}


def _check(tl: tk.Timeline, fmt: str, records: int, rows: int, metadata: int, rejected: int) -> None:
    s = _src(tl)
    assert (s["format"], s["records"], s["rows"], s["emitted"], s["metadata"], s["rejected"]) == (
        fmt, records, rows, rows, metadata, rejected)
    assert_accounted(tl)


@pytest.mark.corpus
def test_every_corpus_file_is_listed(corpus):
    found = {str(p.relative_to(corpus)) for d in ("k8s_events", "k8s_audit") for p in (corpus / d).iterdir()}
    assert found == set(CORPUS)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", sorted(CORPUS))
def test_corpus_counts_and_neutral_detection(corpus, tmp_path, rel):
    _check(tk.load(corpus / rel), *CORPUS[rel])
    _check(load_neutral(corpus / rel, tmp_path), *CORPUS[rel])


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_counts_and_neutral_detection(tmp_path, name):
    _check(tk.load(FIX / name), *FIXTURES[name])
    _check(load_neutral(FIX / name, tmp_path), *FIXTURES[name])


# --------------------------------------------------------------------------- events


@pytest.mark.corpus
def test_core_v1_event_from_gke(corpus):
    (r,) = _rows(tk.load(corpus / "k8s_events/k9s_core_v1_event_gke_pulled.json"))
    assert r["entity"] == "pod/default/hello-1567197780-mn4mv"
    assert r["name"] == "Pulled" and r["category"] == "Pod" and r["severity"] == "info"
    assert r["message"] == 'Successfully pulled image "blang/busybox-bash"'
    assert r["host"] == "gke-k9s-default-pool-0fa2fb89-qnkc"
    assert r["ts_src"] == 1567197785 * 10**9
    assert r["ts_prec"].value == 10**9  # firstTimestamp: whole seconds
    assert r["dur"] is None  # count 1: not a repeated event
    assert r["attrs"]["tk.field_path"] == "spec.containers{c1}" and r["attrs"]["tk.container"] == "c1"
    assert json.loads(r["attrs"]["involvedObject"])["uid"] == "c31fdeb8-cb66-11e9-990f-42010a800218"
    assert r["attrs"]["eventTime"] == "null"
    assert (r["line"], r["line_end"], r["offset"]) == (1, 34, 0)
    assert "reason" not in r["attrs"] and "message" not in r["attrs"]


def test_kubectl_event_list():
    rows = _rows(tk.load(FIX / "kubectl_get_events.json"))
    by = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows] == ["Scheduled", "BackOff", "NodeNotReady", "EnsuringLoadBalancer"]
    back = by["BackOff"]
    assert back["entity"] == "pod/default/api-7d9" and back["severity"] == "warning"
    assert back["host"] == "node-a" and back["state"] == "backoff"
    # repeated: one row at firstTimestamp, dur to lastTimestamp, the count kept, nothing invented
    assert back["ts_src"] == tk._time.to_time_ns("2024-03-14T09:00:10Z")
    assert back["dur"].value == 240 * 10**9
    assert back["attrs"]["tk.count"] == "5" and back["attrs"]["tk.last"] == "2024-03-14T09:04:10Z"
    assert back["attrs"]["count"] == "5"
    assert back["attrs"]["tk.item"] == "1" and (back["line"], back["line_end"]) == (35, 67)
    node = by["NodeNotReady"]
    assert node["entity"] == "node/node-b" and node["state"] == "notready" and node["category"] == "Node"
    assert by["Scheduled"]["state"] == "scheduled" and by["Scheduled"]["host"] is None
    lb = by["EnsuringLoadBalancer"]
    assert lb["entity"] == "service/default/api"
    assert lb["ts_prec"].value == 1000  # eventTime is a MicroTime
    assert lb["ts_src"] == tk._time.to_time_ns("2024-03-14T09:03:00.123456Z")
    assert lb["dur"].value == 30_530_865_000  # series.lastObservedTime − eventTime
    assert lb["attrs"]["tk.count"] == "3" and lb["host"] == "service-controller-node-a"


def test_events_k8s_io_v1():
    (r,) = _rows(tk.load(FIX / "events_k8s_io_v1.json"))
    assert r["entity"] == "pod/shop/web-0" and r["name"] == "Killing"
    assert r["message"] == "Stopping container nginx" and r["state"] == "terminating"
    assert r["host"] == "node-c" and r["attrs"]["tk.container"] == "nginx"
    assert r["ts_src"] == tk._time.to_time_ns("2024-03-14T09:10:00.25Z") and r["ts_prec"].value == 1000
    assert r["dur"].value == 120_500_000_000 and r["attrs"]["tk.count"] == "4"
    assert json.loads(r["attrs"]["regarding"])["name"] == "web-0"
    assert r["attrs"]["deprecatedCount"] == "4" and "note" not in r["attrs"]


def test_watch_stream():
    tl = tk.load(FIX / "watch_stream.jsonl")
    rows = _rows(tl)
    assert [r["attrs"].get("tk.watch_type") for r in rows] == ["ADDED", "MODIFIED", None]
    assert rows[1]["dur"].value == 60 * 10**9 and rows[1]["attrs"]["tk.count"] == "2"
    assert rows[2]["entity"] == "endpoints/default/api" and rows[2]["severity"] == "warning"
    (rej,) = tl.rejects.to_pylist()
    assert rej["line"] == 5 and "too old resource version" in rej["reason"]


def test_watch_pretty_objects_one_after_another(tmp_path):
    """``kubectl get events -w -o json`` prints pretty objects one after another."""
    items = json.loads((FIX / "kubectl_get_events.json").read_text())["items"]
    text = "".join(json.dumps(it, indent=4) + "\n" for it in items)
    (tmp_path / "w.json").write_text(text)
    tl = tk.load(tmp_path / "w.json")
    _check(tl, "k8s_events", 4, 4, 0, 0)
    rows = _rows(tl)
    assert rows[0]["line"] == 1 and rows[1]["line"] == rows[0]["line_end"] + 1
    assert all("tk.item" not in r["attrs"] for r in rows)


def test_one_line_list_is_expanded(tmp_path):
    doc = json.loads((FIX / "kubectl_get_events.json").read_text())
    (tmp_path / "l.json").write_text(json.dumps(doc) + "\n")
    tl = tk.load(tmp_path / "l.json")
    _check(tl, "k8s_events", 4, 4, 0, 0)
    assert [r["attrs"]["tk.item"] for r in _rows(tl)] == ["0", "1", "2", "3"]


# --------------------------------------------------------------------------- audit


@pytest.mark.corpus
def test_audit_exec_subresource(corpus):
    (r,) = _rows(tk.load(corpus / "k8s_audit/falco_exec_pod.jsonl"))
    assert r["name"] == "create pods/exec" and r["kind"] == "span"
    assert r["entity"] == "pod/default/nginx-deployment-7998647bdf-phvq7"
    assert r["attrs"]["tk.subresource"] == "exec" and r["attrs"]["stage"] == "ResponseStarted"
    assert r["attrs"]["tk.user"] == "minikube-user"
    assert json.loads(r["attrs"]["user"])["groups"] == ["system:masters", "system:authenticated"]
    assert r["value"] == 101.0 and r["trace_id"] == "ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"
    assert r["ts_src"] == tk._time.to_time_ns("2018-10-26T13:38:34.867116Z") and r["ts_prec"].value == 1000
    assert r["dur"].value == 35_798_000  # stageTimestamp − requestReceivedTimestamp
    assert "apiVersion" not in r["attrs"]  # this capture has none


@pytest.mark.corpus
def test_audit_configmap_body_whole(corpus):
    tl = tk.load(corpus / "k8s_audit/falco_create_configmap_sensitive_values.jsonl")
    rows = _rows(tl)
    assert len({r["trace_id"] for r in rows}) == 6
    assert {r["entity"] for r in rows} == {"configmap/default/my-config"}
    body = json.loads(rows[0]["attrs"]["requestObject"])
    assert body["data"]["access.properties"] == "aws_access_key_id = MY-ID\naws_secret_access_key = MY-KEY\n"
    assert body["data"]["ui.properties"] == "color.good=purple\ncolor.bad=yellow\nallow.textmode=true\n"
    assert json.loads(rows[0]["attrs"]["responseObject"])["metadata"]["resourceVersion"] == "259736"


@pytest.mark.corpus
def test_audit_create_names_from_body_and_cluster_scope(corpus):
    (pod,) = _rows(tk.load(corpus / "k8s_audit/falco_create_nginx_pod_privileged.jsonl"))
    assert pod["entity"].startswith("pod/default/nginx-deployment-5cdcc99dbf-")
    assert pod["attrs"]["tk.name_from"] == "responseObject.metadata.name"
    assert pod["attrs"]["apiVersion"] == "audit.k8s.io/v1beta1"
    (crb,) = _rows(tk.load(corpus / "k8s_audit/falco_attach_cluster_admin_role.jsonl"))
    assert crb["entity"] == "clusterrolebinding/some-reader-binding"
    assert crb["name"] == "create clusterrolebindings" and crb["category"] == "clusterrolebindings"


def test_audit_stages_of_one_request():
    rows = _rows(tk.load(FIX / "audit_v1_stages.jsonl"))
    exe = [r for r in rows if r["trace_id"] == "5e4b3a29-1c1d-4f0e-9a53-7a1f2f6d0001"]
    assert [r["attrs"]["stage"] for r in exe] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert {r["ts_src"] for r in exe} == {tk._time.to_time_ns("2024-03-14T09:30:00.1Z")}
    assert [r["dur"].value for r in exe] == [0, 40_000_000, 312_400_000_000]
    assert {r["entity"] for r in exe} == {"pod/default/api-7d9"}
    assert exe[0]["value"] is None and exe[0]["severity"] is None
    by = {r["name"]: r for r in rows}
    assert by["get nodes"]["entity"] == "node/node-b"
    forb = by["get secrets"]
    assert forb["severity"] == "warning" and forb["value"] == 403.0 and "forbidden" in forb["message"]
    assert by["update endpoints"]["entity"] == "endpoints/default/api"
    assert json.loads(by["update endpoints"]["attrs"]["requestObject"])["subsets"][0]["addresses"][0]["ip"] == "10.1.0.21"
    assert by["get /healthz"]["entity"] is None and by["get /healthz"]["attrs"]["verb"] == "get"


def test_audit_webhook_event_list():
    rows = _rows(tk.load(FIX / "audit_webhook_eventlist.json"))
    assert [r["entity"] for r in rows] == ["deployment/default/api", "endpointslice/default/api-x7k2p"]


def test_resource_plurals_map_onto_event_kinds():
    got = singular_kinds(pa.array(["pods", "endpoints", "endpointslices", "services", "deployments",
                                   "configmaps", "nodes", "ingresses", "widgets", None])).to_pylist()
    assert got == ["pod", "endpoints", "endpointslice", "service", "deployment", "configmap", "node",
                   "ingress", "widget", None]


@pytest.mark.corpus
def test_sniff_beats_jsonl(corpus):
    jsonl = get_reader("jsonl")
    for rel, (fmt, *_rest) in CORPUS.items():
        head = (corpus / rel).read_bytes()[:65536]
        mine = get_reader(fmt).sniff(head, "input.bin")
        assert mine >= 0.8 and mine > jsonl.sniff(head, "input.bin"), rel
        other = "k8s_audit" if fmt == "k8s_events" else "k8s_events"
        assert get_reader(other).sniff(head, "input.bin") < mine


# --------------------------------------------------------------------------- hostile input


def test_truncated_list_keeps_the_whole_items(tmp_path):
    raw = (FIX / "kubectl_get_events.json").read_bytes()
    cut = raw.index(b'"NodeNotReady"')
    (tmp_path / "t.json").write_bytes(raw[:cut])
    tl = tk.load(tmp_path / "t.json", format="k8s_events")
    _check(tl, "k8s_events", 3, 2, 0, 1)
    assert [r["name"] for r in _rows(tl)] == ["Scheduled", "BackOff"]
    (rej,) = tl.rejects.to_pylist()
    assert "truncated" in rej["reason"] and rej["line"] == 68


def test_garbage_truncated_and_invalid_utf8_lines(tmp_path):
    lines = (FIX / "watch_stream.jsonl").read_bytes().splitlines(keepends=True)
    bad = lines[0].replace(b"Pulling image", b"Pulling \xff\xfe image")
    data = bad + b"garbage here\n" + lines[1] + b"\n" + lines[3] + lines[1][:57]
    (tmp_path / "w.jsonl").write_bytes(data)
    tl = tk.load(tmp_path / "w.jsonl")
    _check(tl, "k8s_events", 5, 3, 0, 2)
    rows = _rows(tl)
    assert "Pulling \\xff\\xfe image" in rows[0]["message"]
    assert _src(tl)["note"].startswith("invalid UTF-8")
    rej = tl.rejects.to_pylist()
    assert [r["line"] for r in rej] == [2, 6]
    assert rej[0]["raw"] == "garbage here"


def test_empty_and_forced_blank_file(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "empty.json").write_bytes(b"")
    (tmp_path / "d" / "w.jsonl").write_bytes((FIX / "watch_stream.jsonl").read_bytes())
    tl = tk.load(tmp_path / "d")
    src = {r["source"]: r for r in tl.sources.to_pylist()}
    assert src["empty.json"]["status"] == "skipped" and src["empty.json"]["note"] == "empty file"
    assert src["w.jsonl"]["rows"] == 3
    with pytest.raises(tk.errors.UnknownFormatError, match="empty file"):
        tk.load(tmp_path / "d" / "empty.json")
    (tmp_path / "blank.json").write_bytes(b"\n  \n")
    for fmt in ("k8s_events", "k8s_audit"):
        tl = tk.load(tmp_path / "blank.json", format=fmt)
        assert _src(tl)["records"] == 0 and len(tl) == 0


def test_huge_field_and_out_of_order_times(tmp_path):
    items = json.loads((FIX / "kubectl_get_events.json").read_text())["items"]
    big = "x" * 2_000_000
    items[0]["message"] = big
    items[1]["lastTimestamp"] = "2024-03-14T08:00:00Z"  # before firstTimestamp
    items.reverse()  # newest first
    items.append({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "not-an-event"}})
    items.append({"kind": "Event", "reason": "NoTime", "involvedObject": {"kind": "Pod", "name": "p"}})
    (tmp_path / "h.json").write_text(json.dumps({"kind": "List", "apiVersion": "v1", "items": items}, indent=2))
    tl = tk.load(tmp_path / "h.json")
    _check(tl, "k8s_events", 6, 4, 0, 2)
    rows = _rows(tl)
    ts = [r["ts_src"] for r in rows]
    assert ts == sorted(ts) and rows[0]["name"] == "Scheduled" and rows[0]["seq"] == 3
    assert rows[0]["message"] == big
    back = [r for r in rows if r["name"] == "BackOff"][0]
    assert back["dur"] is None and "before" in back["attrs"]["tk.time_order"]
    reasons = sorted(r["reason"] for r in tl.rejects.to_pylist())
    assert reasons[0].startswith("no time") and reasons[1] == "not a Kubernetes Event (kind=Pod)"


def test_audit_hostile_lines(tmp_path):
    lines = (FIX / "audit_v1_stages.jsonl").read_bytes().splitlines(keepends=True)
    backwards = json.loads(lines[3])
    backwards["stageTimestamp"] = "2024-03-14T09:29:00Z"
    huge = json.loads(lines[5])
    huge["requestObject"]["metadata"]["annotations"] = {"blob": "y" * 1_000_000}
    notime = json.loads(lines[6])
    del notime["requestReceivedTimestamp"], notime["stageTimestamp"]
    data = (lines[0].replace(b"alice@example.com", b"al\xffice", 1) + b"[1, 2]\n" + b"\x00\x01garbage\n"
            + (json.dumps(backwards) + "\n").encode() + (json.dumps(huge) + "\n").encode()
            + (json.dumps(notime) + "\n").encode() + lines[1][:300])
    (tmp_path / "a.log").write_bytes(data)
    tl = tk.load(tmp_path / "a.log")
    _check(tl, "k8s_audit", 7, 3, 0, 4)
    rows = _rows(tl)
    assert rows[0]["attrs"]["tk.user"] == "al\\xffice"
    bw = [r for r in rows if r["name"] == "get nodes"][0]
    assert bw["dur"] is None and "before" in bw["attrs"]["tk.time_order"]
    big = [r for r in rows if r["name"] == "update endpoints"][0]
    assert len(json.loads(big["attrs"]["requestObject"])["metadata"]["annotations"]["blob"]) == 1_000_000
    assert sorted(r["line"] for r in tl.rejects.to_pylist()) == [2, 3, 6, 7]


def test_document_with_invalid_utf8_and_non_ascii(tmp_path):
    raw = (FIX / "kubectl_get_events.json").read_bytes()
    raw = raw.replace(b"Successfully assigned", b"Caf\xc3\xa9 \xff assigned", 1)  # é, then a bad byte
    (tmp_path / "u.json").write_bytes(raw)
    tl = tk.load(tmp_path / "u.json")
    _check(tl, "k8s_events", 4, 4, 0, 0)
    rows = _rows(tl)
    assert rows[0]["message"].startswith("Café \\xff assigned")
    # byte offsets stay byte offsets after a multi-byte character and a bad byte
    back = raw.index(b'        {\n            "apiVersion": "v1",\n            "count": 5')
    assert rows[1]["offset"] == back + 8 and raw[rows[1]["offset"]:rows[1]["offset"] + 1] == b"{"
    assert _src(tl)["note"].startswith("invalid UTF-8")


def test_garbage_between_pretty_objects(tmp_path):
    items = json.loads((FIX / "kubectl_get_events.json").read_text())["items"]
    parts = [json.dumps(it, indent=4) + "\n" for it in items]
    text = parts[0] + "W1114 09:00:00 some kubectl warning\nand its second line\n" + parts[1] + parts[2][:200]
    (tmp_path / "g.json").write_text(text)
    tl = tk.load(tmp_path / "g.json", format="k8s_events")
    _check(tl, "k8s_events", 4, 2, 0, 2)
    rej = tl.rejects.to_pylist()
    first = parts[0].count("\n")
    assert [r["line"] for r in rej] == [first + 1, first + 3 + parts[1].count("\n")]
    assert rej[0]["raw"] == "W1114 09:00:00 some kubectl warning\nand its second line"
