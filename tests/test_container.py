"""Container logs: CRI files (P/F merging, pod from the path) and kubectl --timestamps output.

The corpus has no container logs; the fixtures under tests/fixtures/container/ were written by
the project from the kubelet's CRI log format (see the README there).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import source_row as _src

FIX = Path(__file__).parent / "fixtures" / "container"
POD_DIR = "var/log/pods/shop_checkout-6f7d9c5b8-x2x5q_4b1f0f59-1d6e-4a61-9f65-3a0f9f2d7c11/checkout"
CRI = FIX / POD_DIR / "0.log"
LINKED = next((FIX / "var/log/containers").glob("*.log"))
DOCKER = next((FIX / "docker/var/log/containers").glob("*.log"))
POD = "pod/shop/checkout-6f7d9c5b8-x2x5q"


def _rows(tl: tk.Timeline) -> list[dict]:
    return sorted(tl.events.to_pylist(), key=lambda r: r["line"])


def test_cri_merges_partial_lines_of_one_stream():
    tl = tk.load(CRI)
    assert_accounted(tl)
    row = _src(tl)
    assert row["format"] == "container"
    assert (row["records"], row["emitted"], row["merged"], row["rejected"]) == (9, 7, 2, 0)
    ev = _rows(tl)
    assert all(e["entity"] == POD for e in ev)
    assert all(dict(e["attrs"])["container"] == "checkout" for e in ev)
    panic = ev[2]
    assert (panic["line"], panic["line_end"]) == (3, 6)
    assert panic["message"] == (
        "panic: runtime error: index out of range [3] with length 3 (the first 16 KiB of this line "
        "were written as P pieces; this is the second piece, and the F piece closes the line)")
    assert dict(panic["attrs"])["stream"] == "stderr"
    assert panic["ts_src"] == 1710406801_500000000  # the first piece's time
    # the stdout line between the stderr pieces stays its own record
    assert ev[3]["line"] == 4 and ev[3]["line_end"] is None
    assert dict(ev[3]["attrs"])["stream"] == "stdout"
    # JSON and logfmt messages are kept verbatim
    assert ev[1]["message"].startswith('{"level":"info"')
    assert ev[3]["message"] == 'time=2024-03-14T09:00:01.5Z level=warn msg="retrying payment" attempt=2'
    assert ev[4]["message"] == ""  # an empty line of output
    assert ev[5]["ts_src"] == 1710406803_000000000  # CRI-O's +00:00
    assert ev[6]["message"] == "a tag may carry more after a colon"
    assert ev[0]["ts_src"] == 1710406800_000000001
    assert ev[1]["ts_src"] == 1710406800_100000010  # trailing zeros dropped by RFC3339Nano
    assert {e["ts_prec"].value for e in ev} == {1}


def test_containers_symlink_name_and_partial_at_eof():
    tl = tk.load(LINKED)
    assert_accounted(tl)
    ev = _rows(tl)
    assert [e["entity"] for e in ev] == [POD, POD]
    assert dict(ev[1]["attrs"]) == {"container": "checkout", "stream": "stdout", "tk.partial": "true"}
    assert ev[1]["message"] == "a line cut by a crash: P with no F"
    assert "partial" in _src(tl)["note"]


def test_docker_json_file():
    tl = tk.load(DOCKER)
    assert_accounted(tl)
    row = _src(tl)
    assert (row["format"], row["records"], row["emitted"], row["merged"]) == ("container", 5, 4, 1)
    ev = _rows(tl)
    assert {e["entity"] for e in ev} == {POD}
    assert ev[0]["message"] == "starting checkout v2.3.1" and ev[0]["ts_src"] == 1710406800_000000001
    assert (ev[1]["line"], ev[1]["line_end"]) == (2, 4)
    assert ev[1]["message"] == ("panic: runtime error: index out of range [3] with length 3 (the first "
                                "piece, written by docker's 16 KiB split)")
    assert dict(ev[2]["attrs"]) == {"container": "checkout", "stream": "stdout",
                                    "io.kubernetes.pod.name": "checkout-6f7d9c5b8-x2x5q"}
    assert ev[2]["message"] == '{"level":"warn","msg":"retrying payment","attempt":2}'
    assert ev[3]["message"] == ""
    assert get_reader("container").sniff(DOCKER.read_bytes(), "x") > get_reader("jsonl").sniff(DOCKER.read_bytes(), "x")
    tl = _cri_like(DOCKER.read_bytes() + b'{"log": 5, "stream": "stdout", "time": "2024-03-14T09:00:03Z"}\n'
                   b'{"log": "x\\n", "stream": "stdin", "time": "2024-03-14T09:00:03Z"}\n{"trunc')
    assert _src(tl)["rejected"] == 3 and _src(tl)["emitted"] == 4


def _cri_like(data: bytes) -> tk.Timeline:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "0.log"
        p.write_bytes(data)
        tl = tk.load(p, format="container")
    assert_accounted(tl)
    return tl


def test_kubectl_timestamps_and_options():
    tl = tk.load(FIX / "kubectl_timestamps.log")
    assert_accounted(tl)
    row = _src(tl)
    assert (row["format"], row["records"], row["emitted"]) == ("container", 5, 5)
    ev = _rows(tl)
    assert ev[0]["entity"] is None and ev[3]["message"] == ""
    tl = tk.load(FIX / "kubectl_timestamps.log", pod="checkout-1", namespace="shop", container="app")
    ev = _rows(tl)
    assert {e["entity"] for e in ev} == {"pod/shop/checkout-1"}
    assert dict(ev[0]["attrs"]) == {"container": "app"}


def test_kubectl_prefix_gives_pod_and_container():
    tl = tk.load(FIX / "kubectl_prefix_timestamps.log")
    assert_accounted(tl)
    ev = _rows(tl)
    assert [dict(e["attrs"])["container"] for e in ev] == ["checkout", "istio-proxy", "checkout"]
    assert {e["entity"] for e in ev} == {"pod/default/checkout-6f7d9c5b8-x2x5q"}
    assert dict(_src(tl)["assumed"])["namespace"].startswith("default")
    assert ev[1]["message"] == "2024-03-14T09:00:00.200Z\tinfo\tEnvoy proxy is ready"


def test_detection_from_content_and_folder(tmp_path):
    for f, fmt in ((CRI, "container"), (FIX / "kubectl_timestamps.log", "container")):
        tl = load_neutral(f, tmp_path)
        assert _src(tl)["format"] == fmt
    sniff = get_reader("container").sniff
    assert sniff(CRI.read_bytes(), "x") >= 0.8
    assert 0.5 <= sniff((FIX / "kubectl_timestamps.log").read_bytes(), "x") <= 0.6
    tl = tk.load(FIX)
    assert_accounted(tl)
    fmts = {r["source"]: r["format"] for r in tl.sources.to_pylist()}
    assert fmts[f"{POD_DIR}/0.log"] == "container"


@pytest.mark.corpus
def test_sniff_leaves_other_formats_alone(corpus):
    sniff = get_reader("container").sniff
    for d in ("syslog", "dmesg", "strace", "ftrace", "logfmt", "jsonl", "journald"):
        for p in sorted((corpus / d).iterdir()):
            if p.suffix != ".gz":
                assert sniff(p.read_bytes()[:65536], "input.bin") < 0.5, p


def _cri(tmp_path: Path, data: bytes, **kw) -> tk.Timeline:
    d = tmp_path / "var/log/pods/ns1_web-0_uid-1/web"
    d.mkdir(parents=True, exist_ok=True)
    p = d / "0.log"
    p.write_bytes(data)
    tl = tk.load(p, format="container", **kw)
    assert_accounted(tl)
    return tl


def test_hostile_cri(tmp_path):
    data = (
        b"2024-03-14T09:00:05Z stdout F out of order: later first\n"
        b"2024-03-14T09:00:01Z stdout F earlier\n"
        b"garbage \x00\xff\xfe line\n"
        b"2024-03-14T09:00:02Z stdout F bad \xff utf8\n"
        b"2024-03-14T09:00:03Z stdoot F flipped stream name\n"
        b"\n"
        b"2024-03-14T09:00:04Z stderr F " + b"y" * 400_000 + b"\n"
        b"2024-03-14T09:00:06Z stdout P left open\n"
        b"2024-03-14T09:00:0"  # truncated mid-time
    )
    tl = _cri(tmp_path, data)
    row = _src(tl)
    assert row["records"] == 8 and row["rejected"] == 3 and row["emitted"] == 5
    reasons = {r["line"]: r["reason"] for r in tl.rejects.to_pylist()}
    assert set(reasons) == {3, 5, 9} and all("CRI" in r for r in reasons.values())
    ev = _rows(tl)
    assert "\\xff" in ev[2]["message"]
    assert len(ev[3]["message"]) == 400_000
    assert dict(ev[4]["attrs"])["tk.partial"] == "true"
    assert {e["entity"] for e in ev} == {"pod/ns1/web-0"}
    ts = tl.events.column("ts").cast(pa.int64()).to_pylist()
    assert ts == sorted(ts)


def test_empty_and_garbage_only(tmp_path):
    tl = _cri(tmp_path, b"")
    assert tl.events.num_rows == 0
    tl = _cri(tmp_path, b"\x00\x01\x02 nothing\n\xff\n")
    assert _src(tl)["rejected"] == 2 and tl.events.num_rows == 0


def test_many_interleaved_partials(tmp_path):
    lines = []
    for i in range(1000):
        lines.append(f"2024-03-14T09:00:00.{i:09d}Z stdout P a{i}-")
        lines.append(f"2024-03-14T09:00:00.{i:09d}Z stderr F e{i}")
        lines.append(f"2024-03-14T09:00:00.{i:09d}Z stdout F b{i}")
    tl = _cri(tmp_path, ("\n".join(lines) + "\n").encode())
    row = _src(tl)
    assert (row["records"], row["emitted"], row["merged"]) == (3000, 2000, 1000)
    msgs = set(tl.events.column("message").to_pylist())
    assert "a999-b999" in msgs and "e0" in msgs


def test_parse_message_fields(tmp_path):
    tl = tk.load(CRI, parse_message=True)
    ev = _rows(tl)
    assert ev[1]["severity"] == "info" and ev[1]["message"].startswith('{"level"')
    assert dict(ev[1]["attrs"]) == {"container": "checkout", "stream": "stdout", "level": "info",
                                    "ts": "2024-03-14T09:00:00.1Z", "msg": "listening", "port": "8080"}
    assert ev[3]["severity"] == "warning"
    assert dict(ev[3]["attrs"])["msg"] == "retrying payment"
    assert ev[0]["severity"] is None and dict(ev[0]["attrs"]) == {"container": "checkout", "stream": "stdout"}
    data = (b'2024-03-14T09:00:00Z stdout F {"truncated": \n'
            b"2024-03-14T09:00:01Z stdout F {}\n"
            b'2024-03-14T09:00:02Z stdout F {"level": 50, "nested": {"a": [1, null]}, "n": null}\n'
            b"2024-03-14T09:00:03Z stdout F a=1 b=\"unterminated \xff\n"
            b"2024-03-14T09:00:04Z stdout F not=logfmt-only-one-pair\n")
    tl = _cri(tmp_path, data, parse_message=True)
    ev = _rows(tl)
    assert len(ev) == 5 and dict(ev[0]["attrs"]) == {"container": "web", "stream": "stdout"}
    a2 = dict(ev[2]["attrs"])
    assert a2["nested"] == '{"a":[1,null]}' and a2["n"] == "null" and ev[2]["severity"] == "error"
    assert dict(ev[3]["attrs"])["a"] == "1"
    assert "not" not in dict(ev[4]["attrs"])


def test_bad_option(tmp_path):
    with pytest.raises(tk.TracekitError, match="form"):
        _cri(tmp_path, b"2024-03-14T09:00:00Z stdout F x\n", form="bogus")


def test_archive_member_path(tmp_path):
    import tarfile

    root = tmp_path / "bundle"
    shutil.copytree(FIX / "var", root / "var")
    tar = tmp_path / "node.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.add(root / "var", arcname="var")
    tl = tk.load(tar)
    assert_accounted(tl)
    ents = {e for e in tl.events.column("entity").to_pylist()}
    assert ents == {POD}
