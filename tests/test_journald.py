"""journald reader: journalctl -o json / json-pretty / export, corpus and hostile input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

import tracekit as tk
from tracekit.readers import get_reader
from tracekit.readers._base import Input

from .helpers import assert_accounted, load_neutral
from .helpers import events_with_attr_dicts as _rows
from .helpers import the_source_row as _src

FIX = Path(__file__).parent / "fixtures" / "journald"

#: corpus file → (layout, records, rows, rejected)
CORPUS = {
    "journald/lnav_journalctl_o_json.json": ("json", 2, 2, 0),
    "journald/recorded_journal_bytes_message.json": ("json", 9, 9, 0),
    "journald/recorded_journal_o_export.export": ("export", 9, 9, 0),
    "journald/recorded_journal_o_json_pretty.json": ("json-pretty", 9, 9, 0),
}
RECORDED = ["journald/recorded_journal_bytes_message.json", "journald/recorded_journal_o_json_pretty.json",
            "journald/recorded_journal_o_export.export"]
BOOT = "06dbe425507d4a80bbabbc6e28507a83"


def _check(tl: tk.Timeline, records: int, rows: int, rejected: int) -> None:
    s = _src(tl)
    assert (s["format"], s["records"], s["rows"], s["emitted"], s["merged"], s["metadata"], s["rejected"]) == (
        "journald", records, rows, rows, 0, 0, rejected)
    assert_accounted(tl)


def _read(path: Path, **opts):
    """The reader's own result (meta["extra"] included)."""
    inp = Input(path.name, str(path), lambda: open(path, "rb"), fs_path=str(path))
    return get_reader("journald").read(inp, **opts)


@pytest.mark.corpus
def test_every_corpus_file_is_listed(corpus):
    assert {str(p.relative_to(corpus)) for p in (corpus / "journald").iterdir()} == set(CORPUS)


@pytest.mark.corpus
@pytest.mark.parametrize("rel", sorted(CORPUS))
def test_corpus_counts_layout_and_neutral_detection(corpus, tmp_path, rel):
    layout, records, rows, rejected = CORPUS[rel]
    _check(tk.load(corpus / rel), records, rows, rejected)
    _check(load_neutral(corpus / rel, tmp_path), records, rows, rejected)
    assert _read(corpus / rel).meta["extra"]["layout"] == layout
    head = (corpus / rel).read_bytes()[:65536]
    assert get_reader("journald").sniff(head, "input.bin") >= 0.8
    assert get_reader("journald").sniff(head, "x") > get_reader("jsonl").sniff(head, "x")


@pytest.mark.corpus
def test_lnav_json_columns(corpus):
    rows = _rows(tk.load(corpus / "journald/lnav_journalctl_o_json.json"))
    r = rows[0]
    assert r["entity"] == "unit/imx6ul-medusa/medusa-GpsLocator.service"
    assert (r["host"], r["pid"], r["name"], r["category"]) == ("imx6ul-medusa", 184, "python", "stdout")
    assert r["severity"] == "critical" and rows[1]["severity"] == "info"  # PRIORITY 1 and 6
    assert r["ts_src"] == 1534860261221373000 and r["ts_prec"].value == 1000
    assert r["message"] == "GPS Reference longitude: 7.358143333"
    assert r["attrs"]["tk.monotonic_ns"] == "38708007000"
    assert r["attrs"]["_BOOT_ID"] == "0dc874d3fbd44bdbb6fbcfaa27481492"
    assert r["attrs"]["__CURSOR"].startswith("s=e991dd57")
    for k in ("__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "_PID", "_HOSTNAME", "MESSAGE"):
        assert k not in r["attrs"]
    assert _src(tk.load(corpus / "journald/lnav_journalctl_o_json.json"))["domain"].endswith(
        "boot=0dc874d3fbd44bdbb6fbcfaa27481492")


@pytest.mark.corpus
def test_byte_array_and_null_messages(corpus):
    rows = _rows(tk.load(corpus / "journald/recorded_journal_bytes_message.json"))
    msgs = [r["message"] for r in rows]
    assert msgs[2] == "systemd-cat: valid UTF-8 café 日本"
    assert msgs[3] == "systemd-cat: invalid UTF-8 \\xff\\xfe bytes"
    assert msgs[4] == "systemd-cat: latin-1 caf\\xe9"
    assert msgs[5] == "systemd-cat: ANSI \x1b[31mred\x1b[0m escape"  # valid UTF-8 given as bytes
    assert "MESSAGE" not in rows[5]["attrs"]
    # not UTF-8: the bytes stay in attrs, and a note says so
    assert json.loads(rows[4]["attrs"]["MESSAGE"])[-1] == 0xE9 and "not valid UTF-8" in rows[4]["attrs"]["tk.note"]
    # the null MESSAGE (over 4096 bytes) keeps its row
    null = rows[6]
    assert null["message"] is None and null["attrs"]["MESSAGE"] == "null" and "4096" in null["attrs"]["tk.note"]
    assert null["severity"] == "debug" and null["pid"] == 3070
    assert rows[7]["attrs"]["REC_BINARY_FIELD"] == "[1,2,32,99,116,108,32,98,121,116,101,115]"
    assert rows[7]["attrs"]["REC_CUSTOM_FIELD"] == "custom value"


@pytest.mark.corpus
def test_three_layouts_agree(corpus):
    tls = [tk.load(corpus / rel) for rel in RECORDED]
    rows = [_rows(tl) for tl in tls]
    for other in rows[1:]:
        assert [r["ts_src"] for r in other] == [r["ts_src"] for r in rows[0]]
        assert [r["severity"] for r in other] == [r["severity"] for r in rows[0]]
        for a, b in zip(rows[0], other):
            assert a["attrs"]["tk.monotonic_ns"] == b["attrs"]["tk.monotonic_ns"]
            assert a["attrs"].get("REC_BINARY_FIELD") == b["attrs"].get("REC_BINARY_FIELD")
    pretty, export = rows[1], rows[2]
    assert [r["message"] for r in pretty] == [r["message"] for r in rows[0]]
    # the export keeps the 5000-byte message that json left out
    assert export[6]["message"] == "systemd-cat: 5000-byte line " + "x" * 4972
    assert [r["message"] for i, r in enumerate(export) if i != 6] == [r["message"] for i, r in enumerate(rows[0]) if i != 6]
    assert (pretty[0]["line"], pretty[0]["line_end"]) == (1, 22)
    assert (export[1]["line"], export[1]["offset"]) == (22, 624)
    assert (pretty[1]["line"], pretty[1]["offset"]) == (23, 786)


@pytest.mark.corpus
def test_both_clocks_and_boot_anchor(corpus):
    for rel in RECORDED:
        res = _read(corpus / rel)
        assert res.meta["boot_id"] == BOOT and res.meta["host"] == "vm" and res.meta["clock"] == "realtime"
        anchor = res.meta["extra"]["boot_anchors"][BOOT]
        lines = (corpus / RECORDED[0]).read_text().splitlines()
        diffs = sorted(int(o["__REALTIME_TIMESTAMP"]) - int(o["__MONOTONIC_TIMESTAMP"]) for o in map(json.loads, lines))
        assert anchor["anchor_ns"] == diffs[len(diffs) // 2] * 1000 and anchor["records"] == 9
        assert anchor["spread_ns"] == (diffs[-1] - diffs[0]) * 1000


def test_two_boots_units_and_order(tmp_path):
    tl = tk.load(FIX / "two_boots.json")
    _check(tl, 5, 5, 0)
    rows = _rows(tl)
    ts = [r["ts_src"] for r in rows]
    assert ts == sorted(ts) and [r["seq"] for r in rows[:3]] == [0, 2, 1]
    stop = [r for r in rows if r["name"] == "systemd"][0]
    assert stop["entity"] == "unit/web-1/api.service"  # UNIT= beats _SYSTEMD_UNIT=init.scope
    assert stop["attrs"]["_SYSTEMD_UNIT"] == "init.scope" and stop["attrs"]["JOB_TYPE"] == "stop"
    assert rows[-1]["entity"] == "unit/web-1/cron.service"
    res = _read(FIX / "two_boots.json")
    anchors = res.meta["extra"]["boot_anchors"]
    assert anchors["1b0e5d3c2a194f7e8d6c5b4a39281706"]["anchor_ns"] == 1710406795_000000_000
    assert anchors["1b0e5d3c2a194f7e8d6c5b4a39281706"]["spread_ns"] == 2000
    assert anchors["2c1f6e4d3b2a405f9e7d6c5b4a392817"]["anchor_ns"] == 1710406997_000000_000
    assert "boot_id" not in res.meta  # two boots: the per-record _BOOT_ID attrs say which
    assert tl.meta["two_boots.json"]["extra"]["boot_anchors"] == anchors  # reachable from the Timeline
    assert load_neutral(FIX / "two_boots.json", tmp_path).sources.column("format")[0].as_py() == "journald"


# --------------------------------------------------------------------------- hostile input


def _line(**kw) -> bytes:
    base = {"__REALTIME_TIMESTAMP": "1710406800000000", "__MONOTONIC_TIMESTAMP": "1000", "_BOOT_ID": "b",
            "_HOSTNAME": "h", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "app", "MESSAGE": "ok"}
    base.update(kw)
    return (json.dumps({k: v for k, v in base.items() if v is not ...}) + "\n").encode()


def test_json_hostile_lines(tmp_path):
    data = (_line(MESSAGE="first")
            + b'{"__REALTIME_TIMESTAMP":"1710406799000000","MESSAGE":"bad \xff\xfe bytes","_PID":"7"}\n'
            + b"not json at all\n"
            + _line(__REALTIME_TIMESTAMP=..., MESSAGE="no realtime")
            + _line(__REALTIME_TIMESTAMP=..., _SOURCE_REALTIME_TIMESTAMP="1710406801000000", MESSAGE="source time")
            + _line(MESSAGE="y" * 3_000_000)
            + b"\n"
            + _line(MESSAGE="truncated")[:40])
    (tmp_path / "j.json").write_bytes(data)
    tl = tk.load(tmp_path / "j.json")
    _check(tl, 7, 4, 3)
    rows = _rows(tl)
    assert rows[0]["message"] == "bad \\xff\\xfe bytes" and "invalid UTF-8" in rows[0]["attrs"]["tk.note"]
    assert rows[0]["pid"] == 7
    assert len(rows[2]["message"]) == 3_000_000
    src = [r for r in rows if r["message"] == "source time"][0]
    assert src["attrs"]["tk.time_from"] == "_SOURCE_REALTIME_TIMESTAMP"
    rej = sorted(tl.rejects.to_pylist(), key=lambda r: r["line"])
    assert [r["line"] for r in rej] == [3, 4, 8]
    assert rej[1]["reason"].startswith("no __REALTIME_TIMESTAMP")


def test_json_pretty_hostile(tmp_path):
    objs = [json.loads(_line(MESSAGE=f"m{i}")) for i in range(3)]
    objs[1]["BYTES"] = [1, 2, 3]

    def pretty(o: dict) -> str:
        return "{\n" + ",\n".join(f'\t"{k}" : {json.dumps(v)}' for k, v in o.items()) + "\n}\n"

    text = pretty(objs[0]) + "stray line\n" + pretty(objs[1]) + pretty(objs[2])[:-20]
    (tmp_path / "p.json").write_bytes(text.encode().replace(b"m0", b"m\xff0"))
    tl = tk.load(tmp_path / "p.json")
    _check(tl, 4, 2, 2)
    assert [r["message"] for r in _rows(tl)] == ["m\\xff0", "m1"]
    assert "invalid UTF-8" in _rows(tl)[0]["attrs"]["tk.note"] and "tk.note" not in _rows(tl)[1]["attrs"]
    assert _rows(tl)[1]["attrs"]["BYTES"] == "[1,2,3]"
    reasons = sorted(r["reason"] for r in tl.rejects.to_pylist())
    assert reasons == ["text outside a JSON object", "truncated JSON object (no closing brace)"]


def _export_record(fields: list[tuple[str, bytes]], binary: set[str] = frozenset()) -> bytes:
    out = b""
    for k, v in fields:
        if k in binary:
            out += k.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n"
        else:
            out += k.encode() + b"=" + v + b"\n"
    return out + b"\n"


def test_export_hostile(tmp_path):
    base = [("__CURSOR", b"s=1"), ("__REALTIME_TIMESTAMP", b"1710406800000000"),
            ("__MONOTONIC_TIMESTAMP", b"5000"), ("_BOOT_ID", b"b1"), ("_HOSTNAME", b"h")]
    good = _export_record(base + [("MESSAGE", b"line one\nline two"), ("TAG", b"a"), ("TAG", b"b")], {"MESSAGE"})
    latin = _export_record(base + [("MESSAGE", b"caf\xe9")], {"MESSAGE"})
    overrun = b"__CURSOR=s=2\nMESSAGE\n" + struct.pack("<Q", 10_000) + b"short\n\n"
    garbage = b"this is not a field\n\n"
    truncated = b"__CURSOR=s=3\n__REALTIME_TIMESTAMP=1710406802000000\nMESSAGE\n\x05\x00"
    (tmp_path / "x.export").write_bytes(good + latin + overrun + garbage + truncated)
    tl = tk.load(tmp_path / "x.export")
    _check(tl, 5, 2, 3)
    rows = _rows(tl)
    assert rows[0]["message"] == "line one\nline two" and rows[0]["attrs"]["TAG"] == '["a","b"]'
    assert rows[1]["message"] == "caf\\xe9" and json.loads(rows[1]["attrs"]["MESSAGE"]) == [99, 97, 102, 0xE9]
    reasons = [r["reason"] for r in sorted(tl.rejects.to_pylist(), key=lambda r: r["offset"])]
    assert "runs past the record" in reasons[0]
    assert "not a journal field name" in reasons[1]
    assert "truncated binary field" in reasons[2]
    assert rows[0]["line"] == 1 and rows[1]["line"] == rows[0]["line_end"] + 2


def test_empty_and_layout_option(tmp_path):
    (tmp_path / "e.json").write_bytes(b"")
    with pytest.raises(tk.errors.UnknownFormatError, match="empty file"):
        tk.load(tmp_path / "e.json")
    tl = tk.load(tmp_path / "e.json", format="journald")
    assert _src(tl)["records"] == 0
    (tmp_path / "one.json").write_bytes(_line())
    assert len(tk.load(tmp_path / "one.json", layout="json")) == 1
    with pytest.raises(tk.errors.OptionError, match="layout"):
        tk.load(tmp_path / "one.json", layout="xml")


def test_multi_valued_message_in_json(tmp_path):
    (tmp_path / "m.json").write_bytes(_line(MESSAGE=["first value", "second value"]) + _line(MESSAGE=[[104, 105], "x"]))
    tl = tk.load(tmp_path / "m.json")
    _check(tl, 2, 2, 0)
    rows = _rows(tl)
    assert rows[0]["message"] == "first value"
    assert json.loads(rows[0]["attrs"]["MESSAGE"]) == ["first value", "second value"]
    assert rows[1]["message"] is None and rows[1]["attrs"]["MESSAGE"] == '[[104,105],"x"]'
