"""The strace reader: every corpus file, the project's own recording, and hostile input."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.errors import OptionError
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import single_source_row as _src

FIXTURES = Path(__file__).parent / "fixtures" / "strace"
NS = 10**9
US = 1000

# file: (records, emitted, merged, rejected, rows)
COUNTS = {
    "arastoob_f_multithread_cargo.log": (2105, 1881, 224, 0, 1881),
    "chrahunt_normalized_ttt_T_xx_yy_samples.txt": (154, 154, 0, 0, 154),
    "lnav_strace_f_tt_T_yy_firefox.log": (117, 114, 3, 0, 114),
    "lnav_strace_f_ttt_T_webserver.log": (66, 66, 0, 0, 66),
    "lnav_strace_tt_T_single.log": (9, 9, 0, 0, 9),
    "recorded_ff.2499": (66, 66, 0, 0, 66),
    "recorded_ff.2500": (32, 32, 0, 0, 32),
    "recorded_ff.2501": (2, 2, 0, 0, 2),
    # 4 resumed + 1 continuation merged; 1 "attached" spliced into a clone line → +1 row
    "recorded_pidbracket_t.txt": (68, 63, 5, 0, 64),
    # 169 resumed + 5 continuations merged; 4 spliced "attached" messages → +4 rows
    "recorded_pidbracket_tt.txt": (523, 349, 174, 0, 353),
    "recorded_relative_r.txt": (105, 101, 4, 0, 102),
    "tracecode_ff_ttt_y_make.2453402": (148, 148, 0, 0, 148),
    "tracecode_ff_ttt_y_make_child.2453403": (31, 31, 0, 0, 31),
    "tracecode_malformed_unsorted_restart.t.2461545": (6, 5, 0, 1, 5),
}


def _rows(tl: tk.Timeline) -> list[dict]:
    """Events as dicts in file order (line, then seq), attrs as a dict, times as int ns."""
    ev = tl.events
    order = np.lexsort((ev.column("seq").to_numpy(), ev.column("line").to_numpy()))
    out = []
    for r in ev.take(pa.array(order)).to_pylist():
        r["attrs"] = dict(r["attrs"] or [])
        out.append(r)
    return out


def _ts(r: dict) -> int:
    return r["ts_src"]


def _dur(r: dict) -> int | None:
    d = r["dur"]
    if d is None:
        return None
    return d.days * 86400 * NS + d.seconds * NS + d.microseconds * US


def _epoch(iso: str) -> int:
    return tk._time.to_time_ns(iso)


def _load(corpus: Path, name: str, **kw) -> tk.Timeline:
    tl = tk.load(corpus / "strace" / name, **kw)
    assert _src(tl)["format"] == "strace"
    assert_accounted(tl)
    return tl


# --------------------------------------------------------------------------- corpus counts


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_corpus_counts(corpus, name):
    tl = _load(corpus, name, date="2026-11-27")
    s = _src(tl)
    assert (s["records"], s["emitted"], s["merged"], s["rejected"], s["rows"]) == COUNTS[name]


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_corpus_detected_from_content(corpus, name, tmp_path):
    tl = load_neutral(corpus / "strace" / name, tmp_path, date="2026-11-27")
    assert_accounted(tl)
    s = _src(tl)
    assert s["format"] == "strace"
    assert (s["records"], s["emitted"], s["merged"], s["rejected"], s["rows"]) == COUNTS[name]


_TIME = re.compile(r"^(?:\[pid +\d+\] +|\d+ +)?(?:(\d\d):(\d\d):(\d\d)(?:\.(\d+))?|(\d{9,})\.(\d+)) ")


def _first_last_times(path: Path, day: str) -> tuple[int, int] | None:
    """The first and last absolute times written in a file, read independently of the reader."""
    base = _epoch(day + "T00:00:00Z")
    found = []
    for ln in path.read_bytes().decode("utf-8", "replace").splitlines():
        m = _TIME.match(ln)
        if m:
            if m[5]:
                found.append(int(m[5]) * NS + int(m[6].ljust(9, "0")))
            else:
                found.append(base + (int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])) * NS
                             + int((m[4] or "").ljust(9, "0")))
    return (found[0], found[-1]) if found else None


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_corpus_first_and_last_time(corpus, name):
    tl = _load(corpus, name, date="2026-11-27")
    rows = _rows(tl)
    want = _first_last_times(corpus / "strace" / name, "2026-11-27")
    if want is None:  # -r or no timestamps: a relative clock from 0
        assert _src(tl)["clock"] == "relative" and _ts(rows[0]) == 0
    else:
        assert _src(tl)["clock"] == "realtime"
        assert (_ts(rows[0]), _ts(rows[-1])) == want


def test_corpus_folder_all_strace(corpus):
    tl = tk.load(corpus / "strace", date="2026-11-27")
    assert_accounted(tl)
    src = {r["source"]: r for r in tl.sources.to_pylist()}
    assert set(src) == set(COUNTS)
    assert {r["format"] for r in src.values()} == {"strace"}


# --------------------------------------------------------------------------- corpus content


def test_firefox_tt_pid_prefix_fd_paths_and_pairs(corpus):
    tl = _load(corpus, "lnav_strace_f_tt_T_yy_firefox.log", date="2021-06-01", host="ws1")
    s = _src(tl)
    assert s["clock"] == "realtime" and dict(s["assumed"])["date"].startswith("2021-06-01")
    assert dict(s["assumed"])["tz"] == "UTC"
    rows = _rows(tl)
    first, last = rows[0], rows[-1]
    assert _ts(first) == _epoch("2021-06-01T12:21:46.284771Z")
    assert first["name"] == "execve" and first["state"] == "exec" and first["kind"] == "span"
    assert _dur(first) == 14202 * US
    assert first["ts_prec"] is not None
    assert first["pid"] == first["tid"] == 478760 and first["host"] == "ws1"
    assert first["entity"] == f"proc/ws1/478760@{_ts(first)}"
    assert _ts(last) == _epoch("2021-06-01T12:21:46.386913Z") and last["name"] == "faccessat"
    # -y: the fd's path is kept in the args and in the raw return value
    cache = next(r for r in rows if r["line"] == 6)
    assert cache["name"] == "openat" and cache["value"] == 3
    assert cache["attrs"]["retval"] == "3</etc/ld.so.cache>"
    assert cache["message"] == 'AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC'
    enoent = next(r for r in rows if r["line"] == 5)
    assert enoent["value"] == -1 and enoent["attrs"]["errno"] == "ENOENT"
    assert enoent["attrs"]["errno_text"] == "No such file or directory"
    # read( <unfinished ...> on line 50, resumed on line 107: one span, both lines
    rd = next(r for r in rows if r["line"] == 50)
    assert rd["name"] == "read" and rd["line_end"] == 107 and rd["value"] == 17
    assert rd["message"] == '3<pipe:[347379059]>, "/usr/bin/firefox\\n", 128'
    assert _dur(rd) == 24012 * US  # -T of the resumed line
    assert not any(r["line"] == 107 for r in rows)
    # exit_group(0 <unfinished ...> / <... exit_group resumed>) = ?: no value
    eg = next(r for r in rows if r["line"] == 108)
    assert eg["name"] == "exit_group" and eg["line_end"] == 110 and eg["value"] is None
    assert eg["attrs"]["retval"] == "?" and eg["pid"] == 478765
    # without -T on the resumed line, dur = resumed time - start
    assert _dur(eg) == (46386561 - 46386528) * US


def test_pidbracket_tt_pairs_splices_signals_kills(corpus):
    tl = _load(corpus, "recorded_pidbracket_tt.txt", date="2026-11-27")
    rows = _rows(tl)
    assert _ts(rows[0]) == _epoch("2026-11-27T22:46:14.879938Z")
    assert _ts(rows[-1]) == _epoch("2026-11-27T22:46:14.920440Z")
    # lines without [pid N] belong to the root process 2367
    assert rows[0]["pid"] == 2367 and rows[0]["attrs"]["tk.pid"] == "inferred"
    assert dict(_src(tl)["assumed"])["root_pid"].startswith("2367")
    # "clone(...SIGCHLDstrace: Process 2370 attached" + ", child_tidptr=...) = 2370" (line 58)
    cl = next(r for r in rows if r["line"] == 56 and r["name"] == "clone")
    assert cl["line_end"] == 58 and cl["value"] == 2370 and _dur(cl) == 64 * US
    assert cl["message"].endswith("|SIGCHLD, child_tidptr=0x7f048b114a10")
    markers = [r for r in rows if r["kind"] == "marker"]
    assert len(markers) == 6 and {r["name"] for r in markers} == {"attached"}
    assert {r["category"] for r in markers} == {"strace"}
    assert sorted(r["pid"] for r in markers) == [2368, 2369, 2370, 2371, 2372, 2373]
    spl = next(r for r in markers if r["pid"] == 2370)
    assert spl["line"] == 56 and spl["attrs"]["tk.spliced"] == "true"
    assert spl["ts_src"] == cl["ts_src"] and spl["attrs"]["tk.ts"] == "inherited"
    # "set_robust_list(..., 24strace: Process 2369 attached" / " <unfinished ...>" / resumed
    srl = next(r for r in rows if r["line"] == 59)
    assert srl["name"] == "set_robust_list" and srl["pid"] == 2370 and srl["line_end"] == 62
    # the program's own stderr split a write: 'write(2, "Killed\n", 7Killed' + ') = 7'
    wr = next(r for r in rows if r["line"] == 519)
    assert wr["line_end"] == 520 and wr["value"] == 7
    # killed inside a syscall: <... clock_nanosleep resumed> <unfinished ...>) = ?
    cn = next(r for r in rows if r["line_end"] == 438)
    assert cn["name"] == "clock_nanosleep" and cn["pid"] == 2369 and cn["value"] is None
    assert cn["message"] == "CLOCK_REALTIME, 0, {tv_sec=30, tv_nsec=0}, " and cn["line"] == 209
    # ERESTART_RESTARTBLOCK
    cn2 = next(r for r in rows if r["line_end"] == 439)
    assert cn2["attrs"]["errno"] == "ERESTART_RESTARTBLOCK" and cn2["pid"] == 2368
    kills = {(r["pid"], r["attrs"]["signal"]) for r in rows if r["name"] == "killed"}
    assert kills == {(2368, "SIGTERM"), (2369, "SIGKILL"), (2373, "SIGKILL")}
    assert all(r["state"] == "exit" for r in rows if r["name"] == "killed")
    chld = [r for r in rows if r["name"] == "SIGCHLD"]
    assert len(chld) == 6 and all(r["kind"] == "instant" and r["pid"] == 2367 for r in chld)
    assert "si_code=CLD_KILLED" in chld[-1]["message"]
    exits = [r for r in rows if r["name"] == "exit"]
    assert [(r["pid"], r["value"]) for r in exits] == [(2370, 0), (2371, 0), (2372, 0), (2367, 0)]
    assert all(r["state"] == "exit" for r in exits)
    # no row lost its unfinished partner
    assert not any("tk.unmatched" in r["attrs"] for r in rows)


def test_pidbracket_t_seconds_precision_and_date(corpus):
    tl = _load(corpus, "recorded_pidbracket_t.txt", date="2026-11-27")
    rows = _rows(tl)
    assert _ts(rows[0]) == _ts(rows[-1]) == _epoch("2026-11-27T22:46:26Z")
    prec = tl.events.column("ts_prec").drop_null().cast(pa.int64()).to_pylist()
    assert set(prec) == {NS}
    kill = next(r for r in rows if r["line"] == 50)
    assert kill["name"] == "kill" and kill["line_end"] == 53 and kill["value"] == 0
    assert kill["message"] == "2494, SIGTERM" and kill["pid"] == 2493
    k = next(r for r in rows if r["name"] == "killed")
    assert k["pid"] == 2494 and k["attrs"]["signal"] == "SIGTERM"


def test_ff_pid_from_file_name(corpus, tmp_path):
    tl = _load(corpus, "recorded_ff.2501", date="2026-11-27")
    rows = _rows(tl)
    assert [r["name"] for r in rows] == ["SIGTERM", "killed"]
    assert {r["pid"] for r in rows} == {2501}
    assert rows[0]["attrs"]["tk.pid"] == "file name"
    assert rows[0]["message"] == "{si_signo=SIGTERM, si_code=SI_USER, si_pid=2499, si_uid=0}"
    assert rows[1]["attrs"]["signal"] == "SIGTERM" and rows[1]["state"] == "exit"
    assert dict(_src(tl)["assumed"])["pid"].startswith("2501")
    assert rows[0]["entity"] == f"proc/?/2501@{_ts(rows[0])}" == rows[1]["entity"]
    # the same bytes under a neutral name: no pid to be had
    neutral = load_neutral(corpus / "strace" / "recorded_ff.2501", tmp_path, date="2026-11-27")
    assert neutral.events.column("pid").null_count == 2
    assert neutral.events.column("entity").null_count == 2
    # the same bytes under another -ff name
    dst = tmp_path / "mytrace.777"
    shutil.copyfile(corpus / "strace" / "recorded_ff.2501", dst)
    assert set(tk.load(dst, date="2026-11-27").events.column("pid").to_pylist()) == {777}


def test_ff_parent_signals_and_exit(corpus):
    tl = _load(corpus, "recorded_ff.2499", date="2026-11-27")
    rows = _rows(tl)
    assert _ts(rows[0]) == _epoch("2026-11-27T22:46:26.519722Z")
    kill = next(r for r in rows if r["name"] == "kill")
    assert kill["message"] == "2501, SIGTERM" and kill["value"] == 0 and _dur(kill) == 4 * US
    chld = [r["message"] for r in rows if r["name"] == "SIGCHLD"]
    assert any("CLD_KILLED" in m and "si_status=SIGTERM" in m for m in chld)
    assert rows[-1]["name"] == "exit" and rows[-1]["value"] == 0 and rows[-1]["pid"] == 2499
    sus = next(r for r in rows if r["name"] == "rt_sigsuspend")
    assert sus["value"] is None and sus["attrs"]["errno"] == "ERESTARTNOHAND"


def test_relative_r(corpus):
    tl = _load(corpus, "recorded_relative_r.txt")
    s = _src(tl)
    assert s["clock"] == "relative" and not s["aligned"]
    rows = _rows(tl)
    assert [_ts(r) for r in rows[:3]] == [0, 232 * US, 673 * US]
    lines = (corpus / "strace" / "recorded_relative_r.txt").read_text().splitlines()
    deltas = [int(m[1]) * NS + int(m[2]) * US if m else 0
              for m in (re.match(r"^(?:\[pid +\d+\] +)? *(\d+)\.(\d{6}) ", ln) for ln in lines)]
    assert _ts(rows[-1]) == sum(deltas)
    ws = next(r for r in rows if r["line"] == 55)
    assert ws["name"] == "rt_sigsuspend" and ws["line_end"] == 98 and ws["pid"] == 2506
    assert _dur(ws) == sum(deltas[55:98]) == 201557 * US  # no -T: resumed time - start


def test_webserver_epoch_and_unmatched(corpus):
    tl = _load(corpus, "lnav_strace_f_ttt_T_webserver.log")
    rows = _rows(tl)
    assert _ts(rows[0]) == 1697048351_000001000 and _ts(rows[-1]) == 1697048351_215691000
    assert tl.events.column("ts_prec").cast(pa.int64()).drop_null().unique().to_pylist() == [US]
    # accept4 unfinished in pid 10000 but "resumed" in pid 10003: not a pair
    u = next(r for r in rows if r["line"] == 24)
    assert u["attrs"]["tk.unmatched"] == "unfinished" and u["kind"] == "instant" and u["dur"] is None
    o = next(r for r in rows if r["line"] == 27)
    assert o["attrs"]["tk.unmatched"] == "resumed" and o["value"] == 4
    assert o["attrs"]["duration"] == "0.006157"
    assert [(r["tid"], r["value"]) for r in rows if r["state"] == "exit"] == [
        (10002, 0), (10003, 0), (10004, 0), (10001, 0), (10000, 0)]
    # 10001 is a thread of 10000 (clone(...CLONE_THREAD...) = 10001); 10002..10004 processes
    assert {r["pid"] for r in rows if r["tid"] == 10001} == {10000}
    assert {r["pid"] for r in rows} == {10000, 10002, 10003, 10004}
    # the exit(0) syscall shares the name; state/kind tell them apart
    assert [(r["line"], r["value"]) for r in rows if r["name"] == "exit" and r["state"] is None] == [(62, None)]


def test_no_timestamps_multithread(corpus):
    tl = _load(corpus, "arastoob_f_multithread_cargo.log")
    s = _src(tl)
    assert s["clock"] == "relative" and "ordinal" in s["note"]
    assert tl.events.column("ts_prec").null_count == tl.events.num_rows
    rows = _rows(tl)
    assert [_ts(r) for r in rows[:2]] == [0, 1]
    usr1 = next(r for r in rows if r["name"] == "SIGUSR1")
    assert usr1["tid"] == 909192 and usr1["pid"] == 909190  # a thread of 909190 (CLONE_THREAD)
    assert "SI_TKILL" in usr1["message"]
    assert len([r for r in rows if r["state"] == "exit"]) == 12
    assert tl.events.column("dur").null_count == tl.events.num_rows


def test_malformed_unsorted(corpus):
    tl = _load(corpus, "tracecode_malformed_unsorted_restart.t.2461545")
    rej = tl.rejects.to_pylist()
    assert [(r["line"], r["raw"], r["reason"]) for r in rej] == [
        (6, "THIS IS not a line at all", "not an strace line")]
    rows = _rows(tl)
    assert [_ts(r) // US for r in rows[:2]] == [1389268407589799, 1389268400403536]  # as written
    assert rows[2]["name"] == "vfork" and rows[2]["attrs"]["errno"] == "ERESTARTNOINTR"
    assert rows[3]["message"] == "5<pipe:[14005566]>, 0x7fff95659c3f, 1"


def test_corrupted_execve_kept(corpus):
    tl = _load(corpus, "tracecode_ff_ttt_y_make_child.2453403")
    rows = _rows(tl)
    assert rows[0]["name"] == "execve" and "]c[/* 25 vars */]" in rows[0]["message"]
    assert rows[-1]["name"] == "exit" and rows[-1]["pid"] == 2453403


def test_chrahunt_yy_and_hex(corpus):
    tl = _load(corpus, "chrahunt_normalized_ttt_T_xx_yy_samples.txt")
    rows = _rows(tl)
    brk = next(r for r in rows if r["name"] == "brk")
    assert brk["value"] == 0x012345 and brk["attrs"]["retval"] == "0x012345"
    assert brk["ts_src"] == 1577836800 * NS and _dur(brk) == 1 * US
    conn = next(r for r in rows if r["line"] == 12)
    assert conn["value"] == -123 and conn["attrs"]["errno"] == "ENOENT"


def test_single_tt_date_from_mtime(corpus, tmp_path):
    dst = tmp_path / "ls.strace"
    shutil.copyfile(corpus / "strace" / "lnav_strace_tt_T_single.log", dst)
    mtime = _epoch("2019-05-02T09:00:00Z") / NS
    os.utime(dst, (mtime, mtime))
    tl = tk.load(dst)
    assert dict(_src(tl)["assumed"])["date"] == "2019-05-02 (from the file's mtime)"
    assert _ts(_rows(tl)[0]) == _epoch("2019-05-02T08:09:33.814936Z")
    # mtime before the last line's time of day: the trace was the day before
    mtime = _epoch("2019-05-02T08:00:00Z") / NS
    os.utime(dst, (mtime, mtime))
    assert _ts(_rows(tk.load(dst))[0]) == _epoch("2019-05-01T08:09:33.814936Z")
    # tz
    tl = tk.load(dst, date="2019-05-02", tz="Europe/Berlin")
    assert _ts(_rows(tl)[0]) == _epoch("2019-05-02T08:09:33.814936+02:00")
    assert dict(_src(tl)["assumed"])["tz"] == "Europe/Berlin"
    tl = tk.load(dst, date="2019-05-02", tz="-05:00")
    assert _ts(_rows(tl)[0]) == _epoch("2019-05-02T08:09:33.814936-05:00")


# --------------------------------------------------------------------------- own recording


def test_recorded_thread_signal_exit3():
    tl = tk.load(FIXTURES / "py_thread_signal_exit3.txt", host="vm")
    assert_accounted(tl)
    s = _src(tl)
    assert s["format"] == "strace" and s["clock"] == "realtime"
    assert (s["records"], s["merged"], s["rejected"]) == (457, 13, 0)
    rows = _rows(tl)
    assert {r["pid"] for r in rows} == {29965}  # the thread is in the process's group
    assert {r["tid"] for r in rows} == {29965, 29966}
    assert {r["entity"] for r in rows} == {f"proc/vm/29965@{_ts(rows[0])}"}
    cl = next(r for r in rows if r["name"] == "clone3")
    assert cl["value"] == 29966 and "CLONE_THREAD" in cl["message"]
    kill = next(r for r in rows if r["name"] == "kill")
    assert kill["message"] == "29965, SIGUSR1" and kill["value"] == 0
    sig = next(r for r in rows if r["name"] == "SIGUSR1")
    assert sig["tid"] == 29965 and "si_code=SI_USER" in sig["message"]
    assert sig["attrs"]["signal"] == "SIGUSR1"
    exits = [(r["tid"], r["value"]) for r in rows if r["state"] == "exit"]
    assert exits == [(29966, 0), (29965, 3)]
    assert all(r["name"] == "exit" and r["kind"] == "instant" for r in rows if r["state"] == "exit")
    ex = next(r for r in rows if r["state"] == "exit" and r["tid"] == 29966)
    assert ex["entity"] == f"proc/vm/29965@{_ts(rows[0])}"
    pairs = [r for r in rows if r["line_end"] != r["line"]]
    assert len(pairs) == 13 and all(r["kind"] == "span" for r in pairs if r["value"] is not None)


# --------------------------------------------------------------------------- hostile input


def _write(tmp_path: Path, data: bytes, name: str = "trace.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


GOOD = (b'1234 1710406800.000001 openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3 <0.000010>\n'
        b"1234 1710406800.000020 close(3) = 0 <0.000002>\n")


def test_truncated_last_line(tmp_path):
    p = _write(tmp_path, GOOD + b'1234 1710406800.000030 read(3, "ab')
    tl = tk.load(p)
    assert_accounted(tl)
    assert tl.events.num_rows == 2
    rej = tl.rejects.to_pylist()
    assert [(r["line"], r["reason"].split(" (")[0]) for r in rej] == [(3, "incomplete syscall line")]


def test_garbage_lines_and_blank_lines(tmp_path):
    p = _write(tmp_path, GOOD + b"\n   \nhello world\n" + GOOD + b"{not: strace}\n")
    tl = tk.load(p, format="strace")
    assert_accounted(tl)
    s = _src(tl)
    assert (s["records"], s["emitted"], s["rejected"]) == (6, 4, 2)  # blank lines: no records
    assert [r["line"] for r in tl.rejects.to_pylist()] == [5, 8]


def test_invalid_utf8(tmp_path):
    p = _write(tmp_path, GOOD + b'1234 1710406800.000040 write(1, "\xff\xfe", 2) = 2 <0.000003>\n')
    tl = tk.load(p)
    assert_accounted(tl)
    w = [r for r in _rows(tl) if r["name"] == "write"]
    assert len(w) == 1 and "\\xff" in w[0]["message"] and w[0]["value"] == 2


def test_empty_file(tmp_path):
    p = _write(tmp_path, b"", "empty.txt")
    _write(tmp_path, GOOD)
    tl = tk.load(tmp_path)
    assert {r["source"]: r["status"] for r in tl.sources.to_pylist()} == {
        "empty.txt": "skipped", "trace.txt": "loaded"}
    tl = tk.load(p, format="strace")
    assert tl.events.num_rows == 0 and _src(tl)["records"] == 0


def test_huge_line(tmp_path):
    big = b"A" * 3_000_000
    p = _write(tmp_path, GOOD + b'1234 1710406800.000050 write(1, "' + big + b'", 3000000) = 3000000 <0.001>\n')
    tl = tk.load(p)
    assert_accounted(tl)
    w = [r for r in _rows(tl) if r["name"] == "write"][0]
    assert w["value"] == 3_000_000 and len(w["message"]) > 3_000_000 and _dur(w) == NS // 1000


def test_out_of_order_and_orphan_resumed(tmp_path):
    data = (b"7 1710406800.500000 close(4) = 0\n"
            b"7 1710406800.100000 <... read resumed>\"x\", 10) = 1 <0.000100>\n"
            b"7 1710406800.200000 read(5, <unfinished ...>\n")
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    rows = _rows(tl)
    assert [_ts(r) for r in rows] == [1710406800_500000000, 1710406800_100000000, 1710406800_200000000]
    assert rows[1]["attrs"]["tk.unmatched"] == "resumed" and rows[1]["value"] == 1
    assert rows[2]["attrs"]["tk.unmatched"] == "unfinished"
    assert _src(tl)["merged"] == 0


def test_pairing_per_pid_and_syscall(tmp_path):
    data = (b"1 1710406800.000001 read(3,  <unfinished ...>\n"
            b"2 1710406800.000002 read(4,  <unfinished ...>\n"
            b"1 1710406800.000003 futex(0x1, FUTEX_WAIT, 0, NULL <unfinished ...>\n"
            b"2 1710406800.000004 <... read resumed>\"b\", 9) = 1 <0.000002>\n"
            b"1 1710406800.000005 <... futex resumed>) = 0\n"
            b"1 1710406800.000006 <... read resumed>\"a\", 8) = 1\n")
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    rows = _rows(tl)
    assert [(r["pid"], r["name"], r["line"], r["line_end"], r["message"]) for r in rows] == [
        (1, "read", 1, 6, '3, "a", 8'),
        (2, "read", 2, 4, '4, "b", 9'),
        (1, "futex", 3, 5, "0x1, FUTEX_WAIT, 0, NULL"),
    ]
    assert [_dur(r) for r in rows] == [5 * US, 2 * US, 2 * US]
    assert all(r["kind"] == "span" for r in rows)


def test_midnight_rollover_and_killed_core(tmp_path):
    data = (b"[pid  9] 23:59:59.900000 close(3) = 0\n"
            b"[pid  9] 23:59:59.800000 close(4) = 0\n"
            b"[pid  9] 00:00:00.100000 close(5) = 0\n"
            b"[pid  9] 00:00:01.000000 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---\n"
            b"[pid  9] 00:00:01.000100 +++ killed by SIGSEGV (core dumped) +++\n")
    tl = tk.load(_write(tmp_path, data), date="2024-02-28")
    assert_accounted(tl)
    rows = _rows(tl)
    assert [_ts(r) for r in rows[:3]] == [_epoch("2024-02-28T23:59:59.9Z"), _epoch("2024-02-28T23:59:59.8Z"),
                                          _epoch("2024-02-29T00:00:00.1Z")]
    assert rows[4]["name"] == "killed" and rows[4]["attrs"] == {"signal": "SIGSEGV", "core_dumped": "true"}
    assert rows[3]["name"] == "SIGSEGV"


def test_unknown_syscall_unavailable_restart(tmp_path):
    data = (b"3 1710406800.000001 ????( <unfinished ...>\n"
            b"3 1710406800.000002 restart_syscall(<... resuming interrupted read ...>) = 0 <0.000001>\n"
            b"3 1710406800.000003 read(0, 0x7ffd, 1) = ? <unavailable>\n"
            b"strace: Process 3 detached\n"
            b"3 1710406800.000004 +++ superseded by execve in pid 4 +++\n")
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    rows = _rows(tl)
    assert [r["name"] for r in rows] == ["????", "restart_syscall", "read", "detached", "superseded"]
    assert rows[1]["message"] == "<... resuming interrupted read ...>"
    assert rows[2]["value"] is None and rows[2]["attrs"]["retval"] == "? <unavailable>"
    assert rows[3]["kind"] == "marker" and rows[3]["pid"] == 3 and rows[3]["ts_src"] == _ts(rows[2])
    assert rows[3]["ts_prec"] is None


def test_options(tmp_path):
    p = _write(tmp_path, b"12:00:00.000001 close(3) = 0\n")
    with pytest.raises(OptionError, match="YYYY-MM-DD"):
        tk.load(p, date="yesterday")
    with pytest.raises(OptionError, match="tz"):
        tk.load(p, date="2024-01-01", tz="Mars/Olympus")
    tl = tk.load(p, date="2024-01-01", pid=42)
    assert _rows(tl)[0]["pid"] == 42
    assert set(get_reader("strace").options) == {"date", "tz", "pid"}


@pytest.mark.parametrize("text", [
    b"Mar 14 09:00:00 web1 sshd[1234]: Accepted publickey for root from 10.0.0.1 port 22\n" * 5,
    b"# tracer: nop\n          <idle>-0     [001] d..1 12345.678901: sched_switch: prev_comm=swapper\n" * 3,
    b"bash  1234 12345.678901:     250000 cpu-clock:  ffffffff8100 do_syscall_64+0x1 ([kernel.kallsyms])\n" * 3,
    b'{"ts": 1, "msg": "open(x) = 3"}\n' * 3,
    b"     0.000 ( 0.003 ms): sleep/1234 brk(NULL) = 0x55d\n" * 3,
])
def test_sniff_rejects_other_formats(text):
    assert get_reader("strace").sniff(text, "x") < 0.5


def test_sniff_accepts_forms():
    sniff = get_reader("strace").sniff
    for head in (GOOD, b"close(3) = 0\nread(3, \"\", 10) = 0\n",
                 b"22:46:26.526392 --- SIGTERM {si_signo=SIGTERM} ---\n22:46:26.526541 +++ killed by SIGTERM +++\n",
                 b"     0.000000 execve(\"/bin/sh\", [\"sh\"], 0x7f /* 1 var */) = 0\n"):
        assert sniff(head, "x") >= 0.85


def test_chunked_parse_matches_single_chunk(corpus, monkeypatch):
    """Big inputs are regex-extracted in chunks on two threads: same result as one chunk."""
    from tracekit.readers import strace

    path = corpus / "strace" / "recorded_pidbracket_tt.txt"
    whole = tk.load(path, date="2026-11-27")
    monkeypatch.setattr(strace, "CHUNK", 7)
    parts = tk.load(path, date="2026-11-27")
    assert_accounted(parts)
    assert parts.events.equals(whole.events)
    assert parts.sources.drop_columns(["seconds"]).equals(whole.sources.drop_columns(["seconds"]))


def test_merged_args_joined_like_strace_prints_them(tmp_path):
    data = (b'1 1710406800.000001 read(3, <unfinished ...>\n'      # one space: the comma's own
            b'1 1710406800.000002 <... read resumed>"", 1) = 0\n'
            b'1 1710406800.000003 read(3,  <unfinished ...>\n'     # as strace writes it
            b'1 1710406800.000004 <... read resumed>"", 1) = 0\n'
            b'1 1710406800.000005 close(3 <unfinished ...>\n'
            b'1 1710406800.000006 <... close resumed>) = 0\n')
    tl = tk.load(_write(tmp_path, data))
    assert [r["message"] for r in _rows(tl)] == ['3, "", 1', '3, "", 1', "3"]


def test_category_and_rotated_suffix_not_a_pid(tmp_path):
    data = (b"1710406800.000001 close(3) = 0\n"
            b"1710406800.000002 --- SIGPIPE {si_signo=SIGPIPE, si_code=SI_USER} ---\n"
            b"1710406800.000003 +++ killed by SIGPIPE +++\n")
    tl = tk.load(_write(tmp_path, data, "trace.log.1"))
    rows = _rows(tl)
    assert [r["category"] for r in rows] == ["syscall", "signal", "process"]
    assert {r["pid"] for r in rows} == {None}
    tl = tk.load(_write(tmp_path, data, "trace.42"))
    assert {r["pid"] for r in _rows(tl)} == {42}


def test_detached_inside_a_call(tmp_path):
    data = (b"strace: Process 77 attached\n"
            b"77 1710406800.000001 read(0,  <detached ...>\n"
            b"strace: Process 77 detached\n")
    tl = tk.load(_write(tmp_path, data))
    assert_accounted(tl)
    rows = _rows(tl)
    assert [(r["name"], r["kind"]) for r in rows] == [
        ("attached", "marker"), ("read", "instant"), ("detached", "marker")]
    assert rows[1]["attrs"]["tk.unmatched"] == "detached" and rows[1]["message"] == "0, "


def test_summary_table_is_metadata():
    tl = tk.load(FIXTURES / "true_C_summary.txt")
    assert_accounted(tl)
    s = _src(tl)
    # 29 counted calls + exit_group (not counted by -c) + "+++ exited with 0 +++"; 20 table lines
    assert (s["records"], s["emitted"], s["metadata"], s["rejected"], s["rows"]) == (51, 31, 20, 0, 31)
    summary = tl.meta[s["source"]]["extra"]["summary"]
    assert summary.splitlines()[0].startswith("% time") and summary.splitlines()[-1].endswith(" total")
    rows = _rows(tl)
    assert rows[-1]["state"] == "exit" and rows[-1]["value"] == 0
    assert [r["attrs"].get("errno") for r in rows if r["name"] == "access"] == ["ENOENT"]
    # -c alone: the table only, recognised from its header
    tl = tk.load(FIXTURES / "true_c_only.txt")
    assert_accounted(tl)
    s = _src(tl)
    assert s["format"] == "strace" and (s["records"], s["metadata"], s["rows"]) == (20, 20, 0)


# --------------------------------------------------------------------------- the positional path

#: lines near the edges of the common-line shapes the reader reads by position (and lines just
#: outside them, which go to the line patterns): each must come out as the patterns read it
EDGE_LINES = [
    "1234 12:00:00 foo() = 0", "123:00:00.5 foo() = 0", "1 2:00:00 foo() = 0", "1234  5.5 foo(a) = 1 <0.5>",
    "   5.5 foo() = 1", "5.5 foo() = 1", "5 foo() = 1", "foo() = 1", "foo(a) = 0x", "foo(a) = 0x1F",
    "foo(a) = 0xg", "foo(a) = -0x5", "foo(a) = +5", "foo(a) = 5 <1.2>\r", "foo(a) =  5", "foo(a)  = 5",
    "foo(a) = ", "foo(a) =", "foo(a) = ? ERESTARTSYS (To be restarted)",
    "foo(a) = -1 ENOENT (No (such) file) <0.1>", "foo(a) = 1 (in [4]) <0.1>", "foo(a) = 5<0.1>",
    "foo(a) = 5  <0.1>", "foo(a) = 5 <0.1>x", "foo(a) = 5 <.1>", "<... foo resumed>) = 5",
    "<... foo resumed> <unfinished ...>) = ?", "<... foo resumed> <unfinished ...>", "<... foo(x) = 5",
    "foo resumed>) = 5", "foo(a <unfinished ...>", "foo(a, <detached ...>", "foo(a,  <detached ...>\r",
    "foo(<unfinished ...>", "foo(x) = 1 <unfinished ...>", 'foo(") = 5", <unfinished ...>',
    'foo(") = 5") = 3 <0.2>', 'foo(") = x") = 3 <0.2>', "foo(1) = 5 <0.1> <0.2>",
    "1.1234567891234 foo() = 0 <1.1234567891234>", "99999999999999999999 1.5 foo() = 0",
    "1 99999999999999999999.5 foo() = 0 <99999999999999999999.5>", "1.5 ????() = 0", "1.5 _x9?(a) = 0",
    "12:00:00.123 foo() = 0", "12:00:00 foo() = 0", "12:00 foo() = 0", "99:99:99 foo() = 0",
    "12] foo() = 0", "[pid 12] foo() = 0", "[pid  12] 1.5 foo() = 0", "[pid 12 1.5 foo() = 0",
    "[pid 12]foo() = 0", "[pid 1.5 foo() = 0", "[pid  7] 12:00:00.5 <... foo resumed>) = 0 <0.1>",
    "[pid 7] foo(a <unfinished ...>", "[pid] foo() = 0", "[pid 12]  1.5 foo() = 0", "[pid 12] 1:00:00 f() = 0",
    "1\t1.5 foo() = 0",
    "1 1.5\tfoo() = 0", "1 1.5 foo(\u00e9) = 0", "1 1.5 f\u00e9() = 0", "1 1.5 foo(a)\u00a0= 0",
    "0 0.0 a() = 0 <0.0>", " foo() = 0", "1  foo() = 0", "1 1.5  foo() = 0", "1.5 1 foo() = 0",
    "01 001.500 foo() = 00 <00.0100>", "1 1.5 <... foo resumed>, 3) = 3 <0.1>",
    "1 1.5 <...  foo resumed>) = 3", "1 1.5 <... foo  resumed>) = 3",
    "1 1.5 --- SIGCHLD {si_signo=SIGCHLD} ---", "1 1.5 +++ exited with 0 +++", "strace: Process 5 attached",
    "1 1.5 foo(a", ", b) = 5", "foo(a) = 5 = 6", "foo(a) = 5 ) = 6", "foo(a) = 5 (x) = 6", "foo(a\n) = 5",
    "",
]


def _by_patterns(lines: pa.Array) -> dict:
    """What the reader's extraction gives when every line goes through the line patterns."""
    import polars as pl

    from tracekit.readers import strace as st

    df = st._by_regex(pl.from_arrow(lines))
    return {c: (st._arrow_str(df[c]) if c in st._STR_COLS else
                df[c].fill_null(np.nan).to_numpy() if c == "value" else df[c].to_numpy()) for c in df.columns}


def _assert_same_extraction(lines: list[str]) -> int:
    """The positional path and the line patterns give the same columns; returns how many
    lines the positional path read."""
    import polars as pl

    from tracekit.readers import strace as st

    arr = pa.array(lines, pa.large_string())
    got, want = st._extract(arr), _by_patterns(arr)
    assert set(got) == set(want)
    for c in want:
        if isinstance(want[c], np.ndarray):
            assert got[c].dtype == want[c].dtype, c
            np.testing.assert_array_equal(got[c], want[c], err_msg=c)
        else:
            assert got[c].to_pylist() == want[c].to_pylist(), c
    return int(st._fast(pl.from_arrow(arr))["fast"].sum())


def test_positional_path_reads_as_the_patterns_edge_lines():
    lines = [ln + "\n" for ln in EDGE_LINES] + EDGE_LINES
    n_fast = _assert_same_extraction(lines)
    assert 0 < n_fast < len(lines)  # both paths are exercised


def test_positional_path_reads_as_the_patterns_corpus_and_mutations(corpus):
    import random

    lines: list[str] = []
    for p in sorted((corpus / "strace").iterdir()):
        lines += p.read_bytes().decode("utf-8", "backslashreplace").splitlines(keepends=True)
    assert _assert_same_extraction(lines) > len(lines) // 2
    rnd = random.Random(4)
    pieces = [" <unfinished ...>", "<... read resumed>", " = ", ") = ", " <0.000123>", "--- ", "+++ ", "[pid ",
              "12:00:00", ".123", " ENOENT (No such file)", "0x1f", "?", " = ?", "=", "<", ")", "(", " ", "\r", "9"]
    mutated = []
    for _ in range(6000):
        s = rnd.choice(lines)
        for _ in range(rnd.randint(1, 3)):
            p = rnd.randint(0, len(s))
            op = rnd.random()
            if op < 0.6:
                s = s[:p] + rnd.choice(pieces) + s[p:]
            elif op < 0.8:
                s = s[:p] + s[rnd.randint(p, len(s)):]
            else:
                s = s[:p]
        mutated.append(s)
    assert _assert_same_extraction(mutated) > 1000


def test_stable_order_equals_argsort():
    """The radix order of the pids' ranks is numpy's stable argsort, and with syscall codes the
    pairing's lexsort (few or many distinct values, unknown pids -1, short columns)."""
    from tracekit.readers.strace import _stable_order

    rng = np.random.default_rng(2)
    for n, hi in ((60000, 50), (80000, 70000), (1000, 5), (60000, 2)):
        v = rng.integers(-1, hi, n)
        assert (_stable_order(v) == np.argsort(v, kind="stable")).all()
        minor = rng.integers(0, 40, n)
        assert (_stable_order(v, minor) == np.lexsort((np.arange(n), minor, v))).all()
