"""dmesg reader: the five recorded forms (exact counts), clocks, -x/-r prefixes, continuation
lines, local time with the repeated DST hour, hostile input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tracekit as tk
from tracekit.errors import OptionError
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import only_source_row as _src

NS = 10**9
FILES = ("recorded_dmesg_T.txt", "recorded_dmesg_iso.txt", "recorded_dmesg_r.txt",
         "recorded_dmesg_raw.txt", "recorded_dmesg_x.txt")
CLOCK = {"recorded_dmesg_T.txt": "realtime", "recorded_dmesg_iso.txt": "realtime",
         "recorded_dmesg_r.txt": "boot", "recorded_dmesg_raw.txt": "boot", "recorded_dmesg_x.txt": "boot"}


def _ns(s: str) -> int:
    return tk._time.to_time_ns(s)


def _rows(tl: tk.Timeline) -> list[dict]:
    return tl.events.sort_by("seq").to_pylist()


def _write(tmp_path: Path, text: str | bytes, name: str = "input.bin") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


@pytest.mark.parametrize("name", FILES)
def test_corpus_counts_and_detection(corpus, tmp_path, name):
    tl = load_neutral(corpus / "dmesg" / name, tmp_path)
    assert_accounted(tl)
    s = _src(tl)
    assert s["format"] == "dmesg"
    assert (s["records"], s["rows"], s["merged"], s["rejected"]) == (11, 11, 0, 0)
    assert s["clock"] == CLOCK[name]
    ev = _rows(tl)
    assert ev[1]["name"] == "systemd-journald" and ev[1]["pid"] == 3047
    assert ev[6]["message"] == "rec-corpus: UTF-8 café and a\ttab"
    assert ev[9]["name"] == "python3" and ev[9]["pid"] == 4001 and ev[9]["message"].startswith("python3[4001]: segfault")
    assert ev[10]["message"].startswith("Code: e1 ff ff ff")
    assert ev[8]["message"] == "second line of the same record"


def test_uptime_forms(corpus, tmp_path):
    tl = load_neutral(corpus / "dmesg" / "recorded_dmesg_raw.txt", tmp_path)
    ev = _rows(tl)
    assert ev[0]["ts_src"] == 3367_910110_000 and ev[-1]["ts_src"] == 3523_546307_000
    assert ev[0]["ts_prec"].microseconds == 1 and ev[0]["severity"] is None
    s = _src(tl)
    assert not s["aligned"] and "boot" in s["note"]
    raw = [r["ts_src"] for r in ev]
    for other in ("recorded_dmesg_r.txt", "recorded_dmesg_x.txt"):
        d = tmp_path / other
        d.mkdir()
        assert [r["ts_src"] for r in _rows(load_neutral(corpus / "dmesg" / other, d))] == raw


def test_x_prefix_severity_and_facility(corpus, tmp_path):
    ev = _rows(load_neutral(corpus / "dmesg" / "recorded_dmesg_x.txt", tmp_path))
    assert [(r["category"], r["severity"]) for r in ev[:5]] == [
        ("kern", "warning"), ("syslog", "info"), ("user", "info"), ("user", "error"), ("user", "warning")]
    assert ev[5]["category"] is None and ev[5]["severity"] is None  # local7.debug: no prefix
    assert (ev[7]["severity"], ev[8]["severity"]) == ("notice", "warning")  # the split write
    assert ev[0]["name"] == "NOTICE"


def test_r_prefix_is_not_a_pri(corpus, tmp_path):
    ev = _rows(load_neutral(corpus / "dmesg" / "recorded_dmesg_r.txt", tmp_path))
    assert [dict(r["attrs"])["dmesg.raw_prefix"] for r in ev] == ["4", "7", "7", "3", "5", "-1", "5", "5", "5",
                                                                  "6", "6"]
    assert all(r["severity"] is None for r in ev)  # facility|level: ambiguous, so not read by default
    d = tmp_path / "lvl"
    d.mkdir()
    ev = _rows(load_neutral(corpus / "dmesg" / "recorded_dmesg_r.txt", d, raw_prefix="level"))
    assert [r["severity"] for r in ev[:4]] == ["warning", "debug", "debug", "error"]
    assert ev[5]["severity"] is None


def test_wall_clock_forms(corpus, tmp_path):
    ev = _rows(load_neutral(corpus / "dmesg" / "recorded_dmesg_iso.txt", tmp_path))
    assert ev[0]["ts_src"] == _ns("2026-11-27T22:46:37.910110Z")
    assert ev[-1]["ts_src"] == _ns("2026-11-27T22:49:13.546307Z")
    d = tmp_path / "T"
    d.mkdir()
    tl = load_neutral(corpus / "dmesg" / "recorded_dmesg_T.txt", d)
    ev = _rows(tl)
    assert ev[0]["ts_src"] == _ns("2026-11-27T22:46:37Z") and ev[0]["ts_prec"].seconds == 1
    assert dict(_src(tl)["assumed"])["tz"].startswith("UTC")
    # the -T times are the iso times truncated to the second
    iso = [r["ts_src"] for r in _rows(load_neutral(corpus / "dmesg" / "recorded_dmesg_iso.txt", tmp_path))]
    assert [r["ts_src"] for r in ev] == [t - t % NS for t in iso]


def test_T_local_time_repeated_hour(tmp_path):
    text = ("[Sun Oct 26 02:30:00 2025] first pass\n"
            "[Sun Oct 26 02:10:00 2025] after the clock went back\n"
            "[Sun Oct 26 03:00:00 2025] later\n")
    tl = tk.load(_write(tmp_path, text), tz="Europe/Berlin")
    assert [r["ts_src"] for r in _rows(tl)] == [
        _ns("2025-10-26T00:30:00Z"), _ns("2025-10-26T01:10:00Z"), _ns("2025-10-26T02:00:00Z")]
    assert dict(_src(tl)["assumed"])["tz"].startswith("Europe/Berlin")
    with pytest.raises(OptionError):
        tk.load(_write(tmp_path, text, "b.bin"), tz="Nowhere/Null")


def test_continuations_and_hostile(tmp_path):
    text = ("    orphan line before any stamp\n"
            "[   1.000000] BUG: something\n"
            "  continuation one\n"
            "\n"
            "[   2.500000] next \xff record\n"
            "[Fri Nov 27 22:49:13 2026] a -T line in an uptime file\n"
            "[   3.0")
    tl = tk.load(_write(tmp_path, text.encode("latin-1")), host="node-1")
    assert_accounted(tl)
    s = _src(tl)
    assert (s["records"], s["rows"], s["merged"], s["rejected"]) == (6, 2, 1, 3)
    ev = _rows(tl)
    assert ev[0]["message"] == "BUG: something\n  continuation one" and (ev[0]["line"], ev[0]["line_end"]) == (2, 3)
    assert ev[1]["message"] == "next \\xff record" and ev[1]["ts_src"] == 2_500_000_000
    assert s["host"] == "node-1" and s["domain"].startswith("host=node-1;clock=boot")  # tk.load(host=)
    assert [r["line"] for r in tl.rejects.to_pylist()] == [1, 6, 7]
    # empty input
    inp_res = get_reader("dmesg").read(_input(_write(tmp_path, b"", "e.bin")))
    assert inp_res.records == 0


def _input(p: Path):
    from tracekit.readers._base import Input

    return Input(name=p.name, path=str(p), opener=lambda: open(p, "rb"), size=os.path.getsize(p), fs_path=str(p))


def test_sniff_keeps_formats_apart(corpus):
    syslog = get_reader("syslog").sniff
    dmesg = get_reader("dmesg").sniff
    for f in FILES:
        head = (corpus / "dmesg" / f).read_bytes()
        assert dmesg(head, "x") >= 0.8 and syslog(head, "x") == 0.0
    for f in (corpus / "syslog").iterdir():
        head = f.read_bytes()
        assert dmesg(head, "x") == 0.0 and syslog(head, "x") >= 0.8
    for d in ("strace", "ftrace", "perf_script", "jsonl", "logfmt", "chrome_json", "journald", "bpftrace"):
        if not (corpus / d).is_dir():
            continue
        for f in (corpus / d).iterdir():
            head = f.read_bytes()[:65536]
            assert syslog(head, "x") < 0.5 and dmesg(head, "x") < 0.5, f


def test_recorded_session_x():
    """dmesg -x of a session recorded for tracekit (tests/fixtures/syslog/README.md)."""
    fx = Path(__file__).parent / "fixtures" / "dmesg"
    tl = tk.load(fx / "session_x.txt")
    assert_accounted(tl)
    ev = _rows(tl)
    assert [(r["category"], r["severity"]) for r in ev[:3]] == [("user", "info"), ("user", "warning"),
                                                               ("user", "error")]
    assert [r["name"] for r in ev] == ["tk-fixture"] * 3 + ["python3", "Code"] * 2
    raw = _rows(tk.load(fx / "session_raw.txt"))
    assert [r["ts_src"] for r in raw] == [r["ts_src"] for r in ev]
    assert raw[3]["ts_src"] == 1995_135115_000 and raw[3]["pid"] == 28373


def test_delta_form(tmp_path):
    text = "[    1.000000 <    0.000000>] first\n[    1.500250 <    0.500250>] second\n"
    ev = _rows(tk.load(_write(tmp_path, text)))
    assert [r["ts_src"] for r in ev] == [1_000_000_000, 1_500_250_000]
    assert dict(ev[1]["attrs"])["dmesg.delta_ns"] == "500250000" and ev[1]["message"] == "second"
