"""syslog reader: corpus files (exact counts), CRON events, RFC 5424 SD, framing, years, zones,
boot anchors and hostile input."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.errors import OptionError
from tracekit.readers import get_reader
from tracekit.readers._base import Input

from .helpers import assert_accounted, load_neutral
from .helpers import only_source_row as _src

NS = 10**9

# file → (records, rows, merged, rejected)
CORPUS = {
    "lnav_macos_asl_multiline.log": (17, 7, 10, 0),
    "lnav_macos_mixed_times.log": (13, 13, 0, 0),
    "lnav_rfc3164_automount_sudo.log": (4, 4, 0, 0),
    "lnav_rfc3164_bad_line.log": (4, 4, 0, 0),
    "lnav_ubuntu_syslog_cron.log": (13, 13, 0, 0),
    "recorded_rsyslog_fileformat_rfc3339.log": (32, 32, 0, 0),
    "recorded_rsyslog_rfc5424.log": (32, 32, 0, 0),
    "recorded_wire_rfc3164_logger.txt": (6, 6, 0, 0),
    "recorded_wire_rfc3164_rsyslog_fwd.txt": (32, 32, 0, 0),
    "recorded_wire_rfc5424_logger.txt": (8, 7, 0, 1),
    "recorded_wire_tcp_lf_framed.txt": (3, 3, 0, 0),
    "recorded_wire_tcp_octet_counted.txt": (4, 4, 0, 0),
}


def _ns(s: str) -> int:
    return tk._time.to_time_ns(s)


def _rows(tl: tk.Timeline) -> list[dict]:
    """Events in load (file) order."""
    ev = tl.events.sort_by("seq")
    return ev.to_pylist()


def _read(path: Path, **opts):
    """Call the reader directly (to see its meta)."""
    inp = Input(name=path.name, path=str(path), opener=lambda: open(path, "rb"),
                size=path.stat().st_size, mtime=path.stat().st_mtime, fs_path=str(path))
    return get_reader("syslog").read(inp, **opts)


def _write(tmp_path: Path, text: str | bytes, name: str = "input.bin", mtime: str | None = None) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    if mtime is not None:
        t = _ns(mtime) / NS
        os.utime(p, (t, t))
    return p


def _fixed_mtime(src: Path, tmp_path: Path) -> Path:
    """A neutral-named copy with the corpus recording date as mtime (year inference)."""
    return _write(tmp_path, src.read_bytes(), mtime="2026-11-27T23:00:00Z")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_counts_and_detection(corpus, tmp_path, name):
    records, rows, merged, rejected = CORPUS[name]
    tl = load_neutral(corpus / "syslog" / name, tmp_path)
    assert_accounted(tl)
    s = _src(tl)
    assert s["format"] == "syslog"
    assert (s["records"], s["rows"], s["merged"], s["rejected"]) == (records, rows, merged, rejected)
    assert s["clock"] == "realtime" and s["aligned"]


def test_rsyslog_file_format_and_cron(corpus, tmp_path):
    tl = load_neutral(corpus / "syslog" / "recorded_rsyslog_fileformat_rfc3339.log", tmp_path)
    ev = _rows(tl)
    assert ev[0]["ts_src"] == _ns("2026-11-27T22:45:20.039525Z")
    assert ev[-1]["ts_src"] == _ns("2026-11-27T22:46:02.723935Z")
    assert ev[0]["name"] == "rsyslogd" and ev[0]["host"] == "vm" and ev[0]["pid"] is None
    # a 5424-origin line written without the tag's colon; one without a fraction (1 s precision)
    e = next(r for r in ev if r["message"] == "two SD elements plus timeQuality")
    assert (e["name"], e["pid"]) == ("myapp", 4242)
    e = next(r for r in ev if r["name"] == "legacyapp")
    assert e["ts_prec"] == dt.timedelta(seconds=1) and e["pid"] == 2308
    assert next(r for r in ev if r["message"].startswith("nohost"))["host"] is None
    cmds = [r for r in ev if r["name"] == "cron.cmd"]
    assert [dict(r["attrs"])["cron.command"] for r in cmds] == [
        "/usr/bin/env LC_ALL=C date -u >/dev/null 2>&1", "true", "/bin/sh -c 'sleep 1; exit 3'"]
    assert [dict(r["attrs"])["cron.user"] for r in cmds] == ["nobody", "root", "root"]
    assert cmds[2]["entity"] == "cron/vm//bin/sh -c 'sleep 1; exit 3'"
    assert cmds[2]["kind"] == "state" and cmds[2]["state"] == "started" and cmds[2]["pid"] == 2346
    assert dict(cmds[2]["attrs"])["cron.child_pid"] == "2349"
    # the failed grandchild is linked to its CMD: same entity, exit status in value
    err = next(r for r in ev if r["name"] == "cron.error")
    assert err["entity"] == cmds[2]["entity"] and err["state"] == "failed" and err["value"] == 3.0
    ends = [r for r in ev if r["name"] == "cron.end"]
    assert {r["entity"] for r in ends} == {r["entity"] for r in cmds}
    assert all(r["state"] == "finished" for r in ends)
    names = [r["name"] for r in ev]
    assert names.count("cron.session_opened") == 3 and names.count("cron.session_closed") == 3
    assert names.count("cron.info") == 2
    assert dict(next(r for r in ev if r["name"] == "cron.cmd")["attrs"])["syslog.tag"] == "CRON"
    # pam_limits lines keep the tag as name
    assert names.count("CRON") == 6
    # firings of the same command group on one entity
    tl2 = tl.sql("select entity, count(*) n from events where name='cron.cmd' group by entity")
    assert tl2.num_rows == 3


def test_rfc5424_sd_pri_and_nil(corpus, tmp_path):
    tl = load_neutral(corpus / "syslog" / "recorded_rsyslog_rfc5424.log", tmp_path)
    ev = _rows(tl)
    first = ev[0]
    assert first["name"] == "rsyslogd" and first["category"] == "syslog" and first["severity"] == "info"
    assert first["message"].startswith('[origin software="rsyslogd"')  # two spaces: SD nil + MSG
    e = next(r for r in ev if r["message"] == "An application event log entry...")
    a = dict(e["attrs"])
    assert a["sd.exampleSDID@32473.eventID"] == "1011" and a["sd.timeQuality.tzKnown"] == "1"
    assert a["syslog.msgid"] == "ID47" and e["category"] == "local4" and e["severity"] == "notice"
    e = next(r for r in ev if r["message"].startswith("SD param value"))
    assert dict(e["attrs"])["sd.exampleSDID@32473.note"] == 'a "quoted" ] value'
    assert "syslog.msgid" not in dict(e["attrs"])  # nil MSGID
    e = next(r for r in ev if r["message"].startswith("[not-sd]"))
    assert dict(e["attrs"]) == {} and e["severity"] == "error" and e["category"] == "user"
    e = next(r for r in ev if r["message"].startswith("two SD"))
    assert dict(e["attrs"])["sd.examplePriority@32473.class"] == "high" and e["pid"] == 4242
    e = next(r for r in ev if r["message"].startswith("UTF-8"))
    assert e["message"] == "UTF-8 text: café 日本語 ✓" and e["severity"] == "debug"
    assert [r["category"] for r in ev if r["name"] == "cron.session_opened"] == ["authpriv"] * 3


def test_wire_forms(corpus, tmp_path):
    tl = load_neutral(corpus / "syslog" / "recorded_wire_rfc5424_logger.txt", tmp_path)
    rej = tl.rejects.to_pylist()
    assert len(rej) == 1 and rej[0]["line"] == 6 and "nil" in rej[0]["reason"]
    assert rej[0]["raw"].startswith("<19>1 - vm myapp")
    ev = _rows(tl)
    assert ev[-1]["name"] == "root" and ev[-1]["category"] == "user" and ev[-1]["severity"] == "critical"

    tl = load_neutral(corpus / "syslog" / "recorded_wire_rfc3164_logger.txt", _sub(tmp_path, "a"), year=2026)
    ev = _rows(tl)
    assert ev[0]["ts_src"] == _ns("2026-11-27T22:45:53Z") and ev[0]["pid"] is None
    assert (ev[1]["pid"], ev[2]["pid"], ev[2]["severity"], ev[2]["category"]) == (2312, 77, "critical", "auth")
    assert ev[4]["name"] == "very-long-tag-name-that-goes-on-and-on-beyond-32-chars"
    assert ev[5]["name"] == "root" and ev[5]["severity"] == "critical" and ev[5]["category"] == "user"

    tl = load_neutral(corpus / "syslog" / "recorded_wire_tcp_octet_counted.txt", _sub(tmp_path, "b"), year=2026)
    ev = _rows(tl)
    assert [r["message"] for r in ev] == [
        "first message on the connection", "second message, UTF-8 café", "third message",
        "rfc3164 payload with octet counting"]
    assert [r["line"] for r in ev] == [1, 2, 3, 4]  # frame numbers
    assert [r["offset"] for r in ev] == [0, 157, 310, 449]  # each frame's "LEN " starts here
    assert ev[3]["pid"] == 4198 and ev[3]["ts_src"] == _ns("2026-11-27T22:49:38Z")
    assert dict(ev[0]["attrs"])["sd.exampleSDID@32473.iut"] == "3"

    tl = load_neutral(corpus / "syslog" / "recorded_wire_tcp_lf_framed.txt", _sub(tmp_path, "c"), year=2026)
    ev = _rows(tl)
    assert [r["pid"] for r in ev] == [None, None, 4201]
    assert ev[1]["message"] == "second message"

    tl = load_neutral(corpus / "syslog" / "recorded_wire_rfc3164_rsyslog_fwd.txt", _sub(tmp_path, "d"), year=2026)
    ev = _rows(tl)
    assert ev[3]["name"] == "myapp" and ev[3]["message"] == "An application event log entry..."
    assert ev[7]["host"] is None  # host "-" kept by rsyslog: nil
    assert sum(r["name"] == "cron.cmd" for r in ev) == 3


def _sub(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    return d


def test_lnav_files(corpus, tmp_path):
    tl = tk.load(_fixed_mtime(corpus / "syslog" / "lnav_macos_asl_multiline.log", tmp_path))
    ev = _rows(tl)
    assert ev[2]["message"] == ('Configuration Notice:\n\tASL Module "com.apple.cdscheduler" claims selected '
                                "messages.\n\tThose messages may not appear in standard system log files or in "
                                "the ASL database.")
    assert (ev[2]["line"], ev[2]["line_end"]) == (3, 5) and (ev[-1]["line"], ev[-1]["line_end"]) == (15, 17)
    assert ev[0]["ts_src"] == _ns("2026-08-16T00:10:45Z")

    p = _fixed_mtime(corpus / "syslog" / "lnav_ubuntu_syslog_cron.log", _sub(tmp_path, "u"))
    tl = tk.load(p)
    ev = _rows(tl)
    # December is later than the file's mtime (Nov 27, 2026): the previous year
    assert ev[0]["ts_src"] == _ns("2025-12-06T13:01:34Z")
    assert dict(_src(tl)["assumed"])["year"].startswith("2025 (inferred from file mtime 2026-11-27")
    cron = ev[-1]
    assert cron["name"] == "cron.cmd" and cron["pid"] == 3883
    assert dict(cron["attrs"])["cron.command"] == "command -v debian-sa1 > /dev/null && debian-sa1 1 1"
    assert cron["entity"] == "cron/ubu-mac/command -v debian-sa1 > /dev/null && debian-sa1 1 1"
    assert ev[5]["name"] == "dnsmasq-dhcp" and ev[5]["pid"] == 1840

    tl = tk.load(_fixed_mtime(corpus / "syslog" / "lnav_rfc3164_bad_line.log", _sub(tmp_path, "b")))
    ev = _rows(tl)
    # no "tag:" — the first word is read as the tag (as for rsyslog's colon-less tags)
    assert ev[2]["name"] == "lookup" and ev[2]["message"] == "for opt failed"
    assert ev[3]["name"] == "sudo" and ev[3]["pid"] is None and ev[3]["message"].startswith("timstack : TTY")

    tl = tk.load(_fixed_mtime(corpus / "syslog" / "lnav_macos_mixed_times.log", _sub(tmp_path, "m")))
    ev = _rows(tl)
    ts = [r["ts_src"] for r in ev]
    assert ts[5] < ts[4]  # out of order in the file: kept as written, no year bump
    assert ts[5] == _ns("2026-09-13T01:25:39Z") and ev[0]["pid"] == 0
    assert {r["host"] for r in ev} == {"Tim-Stacks-iMac", "Tim-Stacks-iMac.local"}


def test_year_option_and_rollover(tmp_path):
    text = ("Dec 31 23:59:58 h app[1]: a\n"
            "Dec 31 23:59:59 h app[1]: b\n"
            "Jan  1 00:00:01 h app[1]: c\n"
            "Jan  1 00:00:00 h app[1]: d (a second out of order)\n")
    p = _write(tmp_path, text, mtime="2026-01-01T08:00:00Z")
    tl = tk.load(p)
    ts = [r["ts_src"] for r in _rows(tl)]
    assert ts == [_ns("2025-12-31T23:59:58Z"), _ns("2025-12-31T23:59:59Z"),
                  _ns("2026-01-01T00:00:01Z"), _ns("2026-01-01T00:00:00Z")]
    assert dict(_src(tl)["assumed"])["year"].startswith("2025–2026 (inferred from file mtime 2026-01-01")
    tl = tk.load(p, year=2019)
    ts = [r["ts_src"] for r in _rows(tl)]
    assert ts[0] == _ns("2019-12-31T23:59:58Z") and ts[2] == _ns("2020-01-01T00:00:01Z")
    assert dict(_src(tl)["assumed"])["year"] == "2019 (given; 1 Dec→Jan roll-over(s))"
    # two year boundaries in one file
    p2 = _write(tmp_path, text + "Dec  1 00:00:00 h app: e\nJan  2 00:00:00 h app: f\n", name="two.bin")
    ts = [r["ts_src"] for r in _rows(tk.load(p2, year=2020))]
    assert ts[-1] == _ns("2022-01-02T00:00:00Z") and ts[-2] == _ns("2021-12-01T00:00:00Z")


def test_tz_repeated_dst_hour(tmp_path):
    # Europe/Berlin, 2025-10-26: 03:00 CEST → 02:00 CET, so 02:00–02:59 happens twice
    text = ("Oct 26 01:59:00 h app: before\n"
            "Oct 26 02:30:00 h app: first pass (CEST)\n"
            "Oct 26 02:59:59 h app: first pass end\n"
            "Oct 26 02:00:05 h app: clock went back (CET)\n"
            "Oct 26 02:30:00 h app: second pass (CET)\n"
            "Oct 26 03:10:00 h app: after\n")
    p = _write(tmp_path, text)
    tl = tk.load(p, year=2025, tz="Europe/Berlin")
    ts = [r["ts_src"] for r in _rows(tl)]
    assert ts == [_ns("2025-10-25T23:59:00Z"), _ns("2025-10-26T00:30:00Z"), _ns("2025-10-26T00:59:59Z"),
                  _ns("2025-10-26T01:00:05Z"), _ns("2025-10-26T01:30:00Z"), _ns("2025-10-26T02:10:00Z")]
    assert np.all(np.diff(ts) > 0)
    a = dict(_src(tl)["assumed"])
    assert a["tz"].startswith("Europe/Berlin") and "4 in the repeated DST hour" in a["tz"]
    # RFC 3339 times carry their offset: tz= does not touch them
    p2 = _write(tmp_path, "2025-10-26T02:30:00+02:00 h app: x\n", name="iso.bin")
    assert _rows(tk.load(p2, tz="Europe/Berlin"))[0]["ts_src"] == _ns("2025-10-26T00:30:00Z")
    with pytest.raises(OptionError, match="unknown time zone"):
        tk.load(p, tz="Mars/Olympus")


def test_boot_anchor_from_kernel_lines(tmp_path):
    text = ("Mar 14 09:00:00 web-02 kernel: [  100.250000] eth0: Link is Up\n"
            "Mar 14 09:00:10 web-02 kernel: [  110.500000] EXT4-fs (vda1): re-mounted\n"
            "Mar 14 09:00:11 web-03 kernel: [    5.000000] booted\n"
            "Mar 14 09:00:12 web-02 sshd[5]: hello [1.0]\n"
            "Mar 14 09:05:00 web-02 kernel: [    2.000000] rebooted\n")
    p = _write(tmp_path, text)
    res = _read(p, year=2024)
    anchors = res.meta["extra"]["boot_anchors"]
    assert set(anchors) == {"web-02", "web-03", "web-02#2"}
    assert anchors["web-02#2"]["anchor_ns"] == _ns("2024-03-14T09:04:58.5Z")
    assert anchors["web-02#2"]["boot"] == 2 and anchors["web-02#2"]["host"] == "web-02"
    a = anchors["web-02"]
    assert a["n"] == 2 and a["prec_ns"] == NS and a["spread_ns"] == 0
    assert a["anchor_ns"] == a["min_ns"] + NS // 2
    assert a["min_ns"] == _ns("2024-03-14T09:00:10Z") - 110_500_000_000
    assert a["max_ns"] == _ns("2024-03-14T09:00:00Z") - 100_250_000_000
    assert anchors["web-03"]["boot_ns"] == _ns("2024-03-14T09:00:06.5Z")
    tl = tk.load(p, year=2024)
    ev = _rows(tl)
    assert ev[0]["message"] == "eth0: Link is Up" and dict(ev[0]["attrs"])["kernel.uptime"] == "100.250000"
    assert dict(ev[3]["attrs"]) == {} and ev[3]["message"] == "hello [1.0]"


def test_hostile_input(tmp_path):
    good = "Nov  3 09:23:38 host app[1]: ok\n"
    # garbage before the first record: rejected; garbage after one: continuation (merged)
    text = ("\x00\x01 binary junk\n" + good + "not a header line\n" + "\n"
            + "Nov 99 99:99:99 host app: bad date\n" + "  its continuation\n"
            + "<999>Nov  3 09:23:39 host app: PRI too big\n"
            + "Nov  3 09:23:40 host app: invalid utf-8 \xff\n" + good + "Nov  3 09:2")
    raw = text.encode("latin-1")
    p = _write(tmp_path, raw)
    tl = tk.load(p, year=2024)
    assert_accounted(tl)
    s = _src(tl)
    assert (s["records"], s["rows"], s["merged"], s["rejected"]) == (9, 3, 1, 5)
    reasons = [(r["line"], r["reason"].split(" (")[0]) for r in tl.rejects.to_pylist()]
    assert reasons == [
        (1, "continuation line with no syslog record before it"),
        (5, "invalid date or time in the header"),
        (6, "continuation of a rejected line"),
        (7, "PRI over 191"),
        (10, "malformed syslog header"),
    ]
    ev = _rows(tl)
    assert ev[0]["message"] == "ok\nnot a header line" and ev[0]["line_end"] == 3
    assert ev[1]["message"] == "invalid utf-8 \\xff" and "invalid UTF-8" in s["note"]
    # empty input: the loader skips it; the reader itself returns nothing
    e = _write(tmp_path, b"", name="empty.log")
    res = _read(e)
    assert res.records == 0 and res.emitted == 0
    # huge line (4 MB message)
    big = "Nov  3 09:23:38 host app: " + "x" * (4 << 20) + "\n" + good
    tl = tk.load(_write(tmp_path, big, name="big.bin"), year=2024)
    assert tl.events.num_rows == 2 and max(len(m) for m in tl.events.column("message").to_pylist()) == 4 << 20
    # CRLF line ends
    tl = tk.load(_write(tmp_path, good.replace("\n", "\r\n") * 2, name="crlf.bin"), year=2024)
    assert [r["message"] for r in _rows(tl)] == ["ok", "ok"]


def test_rejects_detail(tmp_path):
    text = "\x00junk\n" + "Nov  3 09:23:38 host app[1]: ok\n" + "<999>Nov  3 09:23:39 host app: x\n" + "Nov  3 09:2"
    tl = tk.load(_write(tmp_path, text), year=2024)
    rej = tl.rejects.to_pylist()
    assert [r["line"] for r in rej] == [1, 3, 4]
    assert rej[1]["reason"].startswith("PRI over 191") and rej[2]["raw"] == "Nov  3 09:2"
    assert rej[2]["offset"] == len(text) - len("Nov  3 09:2")


def test_rotated_flag_and_concatenated_input(tmp_path):
    assert get_reader("syslog").rotated
    # a rotated set joined oldest first reads as one source with increasing times
    old = "Dec 31 23:00:00 h app: old\n"
    new = "Jan  1 01:00:00 h app: new\n"
    p = _write(tmp_path, old + new, mtime="2026-01-01T02:00:00Z")
    ts = [r["ts_src"] for r in _rows(tk.load(p))]
    assert ts == [_ns("2025-12-31T23:00:00Z"), _ns("2026-01-01T01:00:00Z")]


def test_bench_workload_sample(tmp_path):
    gen = Path(os.environ.get("TRACEKIT_CORPUS", "../shared/corpus")).parent / "bench" / "gen_workloads.py"
    if not gen.is_file():
        pytest.skip(f"{gen} not found")
    subprocess.run([sys.executable, str(gen), "--n", "3000", "--out", str(tmp_path), "--formats", "syslog"],
                   check=True, capture_output=True)
    p = tmp_path / "syslog.log"
    res = _read(p, year=2024)
    assert res.records == res.emitted == 3000 and res.rejects is None
    tl = tk.load(p, year=2024)
    ev = tl.events
    assert ev.column("ts").cast(pa.int64())[0].as_py() == _ns("2024-03-14T09:00:00Z")
    cmds = tl.sql("select attrs['cron.command'] c from events where name = 'cron.cmd'").column("c").to_pylist()
    assert len(cmds) > 100 and "/usr/bin/certbot -q renew" in cmds
    assert set(res.meta["extra"]["boot_anchors"]) >= {"web-01", "web-02"}


FIX = Path(__file__).parent / "fixtures" / "syslog"
TRAD = FIX / "debian_rsyslog_traditional_berlin.log"
FFMT = FIX / "debian_rsyslog_fileformat_berlin.log"


def test_recorded_rsyslog_local_time_matches_rfc3339():
    """The same 55 messages written by rsyslogd (TZ=Europe/Berlin) in the RFC 3164 traditional
    format and the RFC 3339 file format: tz= must turn the first into the second's UTC times."""
    trad = tk.load(TRAD, year=2026, tz="Europe/Berlin")
    ff = tk.load(FFMT)
    for tl in (trad, ff):
        assert_accounted(tl)
        s = _src(tl)
        assert (s["records"], s["rows"], s["merged"], s["rejected"], s["host"]) == (55, 55, 0, 0, "vm")
    a, b = _rows(trad), _rows(ff)
    assert [r["ts_src"] for r in a] == [r["ts_src"] - r["ts_src"] % NS for r in b]
    assert a[0]["ts_src"] == _ns("2026-11-27T23:31:23Z")  # "Nov 28 00:31:23" in Berlin
    assert [r["message"] for r in a] == [r["message"] for r in b]
    assert any(r["message"] == "two lines in one message#012second line of it" for r in a)
    assert [(r["name"], r["pid"]) for r in a][:4] == [("kernel", None), ("kernel", None), ("rsyslogd", None),
                                                      ("cron.info", 25768)]


def test_recorded_cron_firings():
    ev = _rows(tk.load(TRAD, year=2026, tz="Europe/Berlin"))
    job = "cron/vm//bin/sh -c 'echo reindex output; exit 2'"
    fir = [(r["name"], r["state"], r["value"]) for r in ev if r["entity"] == job and r["kind"] == "state"]
    assert fir == [("cron.cmd", "started", None), ("cron.error", "failed", 2.0), ("cron.end", "finished", None)] * 2
    logs = [r["name"] for r in ev if r["entity"] == job and r["kind"] == "log"]
    assert logs == ["cron.info", "cron.session_closed"] * 2
    starts = [r["ts_src"] for r in ev if r["entity"] == job and r["name"] == "cron.cmd"]
    assert starts == [_ns("2026-11-27T23:32:01Z"), _ns("2026-11-27T23:33:01Z")]
    err = next(r for r in ev if r["name"] == "cron.error")
    assert dict(err["attrs"])["cron.child_pid"] == "29857" and dict(err["attrs"])["cron.command"].startswith("/bin/sh")
    nomta = [r for r in ev if r["message"] == "(CRON) info (No MTA installed, discarding output)"]
    assert len(nomta) == 2 and all(r["name"] == "cron.info" and r["entity"] == job for r in nomta)
    assert all(r["kind"] == "log" and r["state"] is None for r in nomta)
    closed = [r for r in ev if r["name"] == "cron.session_closed"]
    assert len(closed) == 6 and all(r["entity"] is not None for r in closed)
    opened = [r for r in ev if r["name"] == "cron.session_opened"]
    assert all(r["entity"] is None for r in opened)  # before the CMD: not yet known
    entities = {r["entity"] for r in ev if r["name"] == "cron.cmd"}
    assert entities == {job, "cron/vm/true", "cron/vm//usr/bin/env LC_ALL=C date -u >/dev/null 2>&1"}


def test_recorded_boot_anchor_puts_dmesg_on_utc():
    """Kernel lines in syslog give the boot time; applied to the same kernel records read from
    dmesg (uptime), it reproduces their syslog wall times. rsyslog replayed two boot-log lines
    half an hour late: the anchor (min, not median) is not fooled by them."""
    a1 = _read(TRAD, year=2026, tz="Europe/Berlin").meta["extra"]["boot_anchors"]["vm"]
    a2 = _read(FFMT).meta["extra"]["boot_anchors"]["vm"]
    assert a1["n"] == a2["n"] == 6 and a1["prec_ns"] == NS and a2["prec_ns"] == 1000
    assert a2["max_ns"] - a2["min_ns"] > 30 * 60 * NS  # the replayed lines
    assert abs(a1["anchor_ns"] - a2["anchor_ns"]) <= a1["prec_ns"] // 2
    dm = _rows(tk.load(Path(__file__).parent / "fixtures" / "dmesg" / "session_raw.txt"))
    ff = [r for r in _rows(tk.load(FFMT)) if r["name"] == "kernel" and r["message"].startswith(("python3", "Code"))]
    seg = [r for r in dm if r["message"].startswith(("python3", "Code"))]
    assert len(seg) == len(ff) == 4 and [r["message"] for r in seg] == [r["message"] for r in ff]
    for r, w in zip(seg, ff):
        assert abs(w["ts_src"] - (a2["anchor_ns"] + r["ts_src"])) < 2_000_000  # µs stamps: < 2 ms apart
        assert abs(w["ts_src"] - (a1["anchor_ns"] + r["ts_src"])) < NS


def test_logrotate_set_through_the_loader(tmp_path):
    """syslog.2.gz, syslog.1, syslog read as one source, oldest first, across New Year: each
    member's year comes from its own mtime, so the times increase."""
    import gzip

    d = tmp_path / "node"
    d.mkdir()
    (d / "syslog.2.gz").write_bytes(gzip.compress(b"Dec 30 10:00:00 h app: oldest\n"))
    (d / "syslog.1").write_text("Dec 31 23:59:00 h app: older\nJan  1 00:00:30 h app: rolled\n")
    (d / "syslog").write_text("Jan  1 06:00:00 h CRON[7]: (root) CMD (backup.sh)\n  continued\n")
    for name, when in (("syslog.2.gz", "2025-12-30T10:00:01Z"), ("syslog.1", "2026-01-01T00:00:31Z"),
                       ("syslog", "2026-01-01T06:00:01Z")):
        t = _ns(when) / NS
        os.utime(d / name, (t, t))
    tl = tk.load(tmp_path)
    assert_accounted(tl)
    s = _src(tl)
    assert s["source"] == "node/syslog" and (s["records"], s["rows"], s["merged"]) == (5, 4, 1)
    ev = _rows(tl)
    assert [r["ts_src"] for r in ev] == [_ns("2025-12-30T10:00:00Z"), _ns("2025-12-31T23:59:00Z"),
                                         _ns("2026-01-01T00:00:30Z"), _ns("2026-01-01T06:00:00Z")]
    assert [Path(r["file"]).name for r in ev] == ["syslog.2.gz", "syslog.1", "syslog.1", "syslog"]
    assert (ev[3]["line"], ev[3]["line_end"]) == (1, 2) and ev[3]["message"] == "(root) CMD (backup.sh)\n  continued"
    assert dict(ev[3]["attrs"])["cron.command"] == "backup.sh"


def test_other_rsyslog_templates(tmp_path):
    # RSYSLOG_ForwardFormat: <PRI> + RFC 3339 time; a BOM-prefixed RFC 5424 MSG; RFC 3339 without
    # an offset is local time (tz=)
    text = ("<86>2026-11-27T22:46:01.715960+00:00 vm CRON[2345]: pam_unix(cron:session): session closed for user x\n"
            "<165>1 2026-11-27T22:45:53.1Z vm app 12 - - \ufeffBOM message\n"
            "2026-07-01T12:00:00 vm app: naive\n"
            "Jul  1 2019 12:00:00 vm app: a year in the stamp\n")
    tl = tk.load(_write(tmp_path, text), tz="Europe/Berlin")
    ev = _rows(tl)
    assert (ev[0]["name"], ev[0]["category"], ev[0]["severity"]) == ("cron.session_closed", "authpriv", "info")
    assert ev[1]["message"] == "BOM message" and ev[1]["pid"] == 12 and ev[1]["ts_prec"].microseconds == 100000
    assert ev[2]["ts_src"] == _ns("2026-07-01T10:00:00Z")  # CEST
    assert ev[3]["ts_src"] == _ns("2019-07-01T10:00:00Z") and ev[3]["message"] == "a year in the stamp"
    assert "tz" in dict(_src(tl)["assumed"]) and "year" not in dict(_src(tl)["assumed"])


def _cron_mutations(count: int, seed: int) -> list[str]:
    """Cron messages with parentheses, spaces (ASCII and Unicode), line breaks and other
    characters inserted, deleted or appended at random."""
    import random

    rng = random.Random(seed)
    base = ["(root) CMD ([123] /bin/sh -c 'x')", "(CRON) info (No MTA installed, discarding output)",
            "(root) END (run-parts /etc/cron.hourly)", "(CRON) error (grandchild #2349 failed with exit status 1)",
            "pam_unix(cron:session): session opened for user root by (uid=0)",
            "pam_unix(cron:session): session closed for user röot", "pam_unix(cron:session): session opened for user root(uid=0)",
            "(*system*) RELOAD (/etc/crontab)", "(root)  (x)", "(root) CMD (a ) \t "]
    alpha = ["(", ")", " ", "\n", "\t", "\u2003", "\u00a0", "é", "x", "[", "]", "1", "\r", "  "]
    out = []
    for _ in range(count):
        m = rng.choice(base)
        for _ in range(rng.randint(0, 3)):
            k = rng.randint(0, len(m))
            op = rng.random()
            if op < 0.6:
                m = m[:k] + rng.choice(alpha) + m[k:]
            elif op < 0.9:
                m = m[:k] + m[k + 1:]
            else:
                m = m + rng.choice([" ", "\t", "\u2003", ") ", "\n"])
        out.append(m)
    return out


def test_cron_split_equals_patterns():
    """The cron lines are split by position where the cron patterns match: the same groups as
    the patterns' own, on the usual lines and on 6000 mutations of them."""
    import polars as pl

    from tracekit.readers import syslog as sl

    s = pl.Series(_cron_mutations(6000, 11))
    want = s.str.extract_groups(sl._CRON_EV).struct.unnest()
    assert 1000 < want["verb"].null_count() < 5000  # both kinds are there
    assert sl._cron_ev(s).equals(want)
    want = s.str.extract_groups(sl._CRON_PAM).struct.unnest()
    assert 500 < want["act"].null_count() < 5500
    assert sl._cron_pam(s).equals(want)
    none = pl.Series(["x", "(y"])
    assert sl._cron_ev(none).equals(none.str.extract_groups(sl._CRON_EV).struct.unnest())
    assert sl._cron_pam(none).equals(none.str.extract_groups(sl._CRON_PAM).struct.unnest())


def test_civil_days_table_equals_formula():
    """The month table gives the days of the formula, for narrow and wide spans of years,
    and 0 on the rows not valid."""
    from tracekit._time import days_from_civil
    from tracekit.readers._syslogish import civil_days

    rng = np.random.default_rng(3)
    for lo, hi in ((2023, 2026), (1, 9999), (1999, 2001)):
        y = rng.integers(lo, hi + 1, 5000)
        m = rng.integers(1, 13, 5000).astype(np.int8)
        d = rng.integers(1, 29, 5000).astype(np.int8)
        ok = rng.random(5000) < 0.9
        got = civil_days(y, m, d, ok)
        assert (got[ok] == days_from_civil(y[ok], m[ok], d[ok])).all()
        assert (got[~ok] == 0).all()


def test_kernel_stamp_split_equals_pattern():
    """Kernel uptime stamps split by position where the pattern matches: the pattern's groups,
    the stamp as written and the message after it, on 6000 mutations of stamped lines."""
    import random

    import polars as pl

    from tracekit.readers import syslog as sl

    rng = random.Random(5)
    base = ["[  12.345678] eth0: link up", "[177686.771693] EXT4-fs (vda1): re-mounted.", "[0.5]x",
            "[ 1.1234567891] y", "[\u20031.25]  two spaces", "[12.]z", "no stamp [1.2] here"]
    alpha = ["[", "]", " ", ".", "1", "٣", "\t", "\u2003", "x", "\n"]
    msgs = []
    for _ in range(6000):
        m = rng.choice(base)
        for _ in range(rng.randint(0, 2)):
            k = rng.randint(0, len(m))
            m = m[:k] + rng.choice(alpha) + m[k:] if rng.random() < 0.7 else m[:k] + m[k + 1:]
        msgs.append(m)
    s = pl.Series(msgs)
    want = s.str.extract_groups(sl._KUPTIME).struct.unnest()
    ok, got = sl._kernel_stamps(s)
    assert (ok == want["us"].is_not_null().to_numpy()).all()
    assert 1000 < ok.sum() < 5900
    w = want.filter(pl.Series(ok))
    assert got["us"].equals(w["us"]) and got["uf"].equals(w["uf"])
    assert got["stamp"].equals(w["us"] + "." + w["uf"])
    rest = pl.DataFrame({"m": s.filter(pl.Series(ok)), "h": w["h"]}).select(
        pl.col("m").str.slice(pl.col("h").str.len_chars())).to_series()
    assert got["rest"].equals(rest)


def test_spread_arrow_places_values():
    """Subset values spread over all rows: at their rows, null elsewhere (strings share bytes)."""
    import polars as pl

    from tracekit.readers.syslog import _spread_arrow

    pos = np.array([1, 4, 5])
    got = _spread_arrow(pl.Series(["a", None, "ccc"]), pos, 7)
    assert got.to_pylist() == [None, "a", None, None, None, "ccc", None]
    assert _spread_arrow(pl.Series([1.5, None, 2.0]), pos, 7).to_pylist() == [None, 1.5, None, None, None, 2.0, None]
    assert _spread_arrow(pl.Series([None, None, None], dtype=pl.String), pos, 7).null_count == 7
    assert _spread_arrow(pl.Series([], dtype=pl.String), np.array([], dtype=np.int64), 3).to_pylist() == [None] * 3
    sub = pl.Series(["x", "yy", "zzz", "w"]).slice(1, 3)  # a slice: offsets not from 0
    assert _spread_arrow(sub, pos, 6).to_pylist() == [None, "yy", None, None, "zzz", "w"]


def test_infer_years_all_valid_equals_subset():
    """Years counted over all rows (no gathers) equal those counted over a valid subset, at the
    valid rows; a Dec → Jan fall starts the next year, a year given is the first record's."""
    from tracekit.readers._syslogish import infer_years

    mon = np.array([11, 12, 12, 1, 3, 12, 1, 2], dtype=np.int8)
    day = np.full(8, 5, dtype=np.int8)
    ok = np.ones(8, dtype=bool)
    y_all, note = infer_years(mon, day, ok, 2020, None, None)
    assert y_all.tolist() == [2020, 2020, 2020, 2021, 2021, 2021, 2022, 2022] and "2 Dec→Jan" in note
    some = ok.copy()
    some[[2, 6]] = False
    y_some, _ = infer_years(mon, day, some, 2020, None, None)
    assert y_some[some].tolist() == [2020, 2020, 2021, 2021, 2021, 2022] and (y_some[~some] == 0).all()
    mtime = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc).timestamp()
    y_m, note = infer_years(mon, day, ok, None, mtime, None)
    assert y_m[-1] == 2024 and y_m[0] == 2022 and "2022–2024" in note
