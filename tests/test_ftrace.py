"""ftrace text reader: every corpus file and recorded fixture, exact counts, content, hostile input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import tracekit as tk
from tracekit import _inputs
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import counts_all as _counts

FIXTURES = Path(__file__).parent / "fixtures" / "ftrace"

# name: (format, records, rows, merged, metadata, rejected)
CORPUS = {
    "catapult_android_systrace.txt": ("ftrace", 95, 91, 0, 4, 0),
    "lisa_trace-cmd_report_sched.txt": ("ftrace", 2943, 2941, 0, 2, 0),
    "perfetto_bad_print_multiline.systrace": ("ftrace", 5, 2, 3, 0, 0),
    "perfetto_sched_blocked_tgid_column.systrace": ("ftrace", 6, 6, 0, 0, 0),
    "trappy_trace_equals.txt": ("ftrace", 7, 7, 0, 0, 0),
    "trappy_trace_failed_to_parse.txt": ("ftrace", 11, 11, 0, 0, 0),
    "trappy_trace_idle_unsorted.txt": ("ftrace", 17, 15, 0, 2, 0),
    "trappy_trace_no_trailing_line.txt": ("ftrace", 10, 10, 0, 0, 0),
    "trappy_trace_systrace.html": ("ftrace", 39, 10, 0, 29, 0),
}
RECORDED = {
    "ftrace_instance_overrun.txt": ("ftrace", 131, 119, 0, 12, 0),
    "ftrace_instance_small.txt": ("ftrace", 120, 107, 1, 12, 0),
    "ftrace_trace_pipe_lost.txt": ("ftrace", 225, 225, 0, 0, 0),
}


def _rows(tl: tk.Timeline, **eq) -> list[dict]:
    t = tl.events
    for k, v in eq.items():
        t = t.filter(pc.field(k) == v)
    return t.to_pylist()


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_counts(corpus, tmp_path, name):
    tl = load_neutral(corpus / "ftrace" / name, tmp_path)
    assert _counts(tl) == CORPUS[name]
    assert_accounted(tl)
    assert tl.sources.column("clock")[0].as_py() == "boot"


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_fixture_counts(tmp_path, name):
    tl = load_neutral(FIXTURES / name, tmp_path)
    assert _counts(tl) == RECORDED[name]
    assert_accounted(tl)


def test_sched_switch_fields_arrow_format(corpus):
    tl = tk.load(corpus / "ftrace" / "trappy_trace_no_trailing_line.txt")
    (r,) = _rows(tl, name="sched_switch")
    assert r["ts_src"] == 1136_097350_000 and r["ts_prec"].value == 1000
    assert (r["kind"], r["tid"], r["pid"], r["state"]) == ("state", 2804, None, "S")
    assert r["entity"] == "thread/?/2804@?"
    a = dict(r["attrs"])
    assert a["cpu"] == "003" and a["flags"] == "d..3" and a["task"] == "chrome"
    assert (a["prev_prio"], a["next_comm"], a["next_pid"], a["next_prio"]) == ("112", "swapper/3", "0", "120")
    # the last line has no trailing newline and is read
    assert max(tl.events.column("line").to_pylist()) == 10


def test_trace_cmd_numeric_prev_state_and_header(corpus):
    tl = tk.load(corpus / "ftrace" / "lisa_trace-cmd_report_sched.txt")
    sw = tl.events.filter(pc.field("name") == "sched_switch")
    assert sw.num_rows == 1856
    states = dict(zip(*np.unique(sw.column("state").to_numpy(zero_copy_only=False), return_counts=True)))
    assert states == {"R": 438, "S": 929, "D": 134 + 3, "R+": 335, "X": 17}
    first = sw.to_pylist()[0]
    assert dict(first["attrs"])["prev_state"] == "64" and first["tid"] == 1701
    assert dict(first["attrs"])["task"] == "<...>"
    wake = _rows(tl, name="sched_wakeup")
    assert len(wake) == 1068 and wake[0]["state"] == "R" and wake[0]["entity"] == "thread/?/1642@?"
    prints = _rows(tl, name="print")
    assert len(prints) == 14 and prints[0]["message"] == "TRACE_MARKER_START"
    assert dict(prints[0]["attrs"])["ip"] == "0xffff00000819ff24"
    res = get_reader("ftrace").read(_inputs.expand(corpus / "ftrace" / "lisa_trace-cmd_report_sched.txt")[0])
    assert res.meta["extra"]["version"] == 6 and res.meta["extra"]["cpus"] == 6


def test_tgid_column_forms(corpus):
    tl = tk.load(corpus / "ftrace" / "perfetto_sched_blocked_tgid_column.systrace")
    r = tl.events.to_pylist()
    assert all(x["pid"] is None for x in r)  # "(-----)": tgid unknown
    assert dict(r[0]["attrs"])["tgid"] == "-----"
    blocked = _rows(tl, name="sched_blocked_reason")
    assert [dict(b["attrs"])["caller"] for b in blocked] == ["worker_thread+0x534/0x820",
                                                             "__filemap_fdatawait_range+0x134/0x150"]
    assert dict(blocked[1]["attrs"])["flags"] == "d.s4"
    tl = tk.load(corpus / "ftrace" / "trappy_trace_systrace.html")
    binder = [x for x in tl.events.to_pylist() if dict(x["attrs"]).get("task") == "Binder_4"]
    assert binder and binder[0]["pid"] == 184 and binder[0]["tid"] == 280


def test_multiline_print_merged_and_markers(corpus):
    tl = tk.load(corpus / "ftrace" / "perfetto_bad_print_multiline.systrace")
    first = tl.events.to_pylist()[0]
    assert (first["pid"], first["tid"], first["line"], first["line_end"]) == (882, 882, 1, 3)
    assert first["message"].split("\n") == ["event: abc xyz =0x34 clk id = 019", "some = 000, other = 0x4",
                                            "xyz = 0x0 abc = 0x0"]
    (span,) = tl.events.to_pylist()[1:]  # B|598|some event ... E|598 → one span, the E merged
    assert (span["kind"], span["name"], span["tid"], span["dur"].value) == ("span", "some event", 598, 3000)
    assert dict(span["attrs"])["tk.end_line"] == "5"


def test_values_with_equals_kept_whole(corpus):
    tl = tk.load(corpus / "ftrace" / "trappy_trace_equals.txt")
    vals = [dict(r["attrs"])["my_field"] for r in tl.events.to_pylist()]
    assert vals == ["foo", "foo=bar", "foo=bar=baz", "1", "1=2", "1=foo", "1foo=2"]
    assert tl.events.column("name").unique().to_pylist() == ["bputs"]


def test_failed_to_parse_kept(corpus):
    tl = tk.load(corpus / "ftrace" / "trappy_trace_failed_to_parse.txt")
    failed = [r for r in tl.events.to_pylist() if dict(r["attrs"]).get("tk.failed_to_parse") == "true"]
    assert len(failed) == 3
    a = dict(failed[0]["attrs"])
    assert a["cpumask"] == "ARRAY[0f, 00, 00, 00, 00, 00, 00, 00]" and a["freq"] == "0x82208"
    assert failed[0]["message"].startswith("[FAILED TO PARSE]")


def test_unsorted_timestamps_sorted_in_events_src_untouched(corpus):
    path = corpus / "ftrace" / "trappy_trace_idle_unsorted.txt"
    tl = tk.load(path)
    ts = tl.events.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(ts) >= 0)
    by_line = sorted(tl.events.to_pylist(), key=lambda r: r["line"])
    src = [r["ts_src"] for r in by_line]
    assert src[6:8] == [7115_449811_000, 7115_449809_000]  # as written: backwards
    assert (tl.events.column("ts").cast(pa.int64()).to_numpy() == tl.events.column("ts_src").to_numpy()).all()
    idle = _rows(tl, name="cpu_idle")
    assert {r["value"] for r in idle} == {0.0, 1.0, 2.0, 4294967295.0}
    assert dict(by_line[0]["attrs"])["task"] == "<...>"  # TAB-indented task field


def test_atrace_escaped_lines_unescaped(corpus):
    tl = tk.load(corpus / "ftrace" / "catapult_android_systrace.txt")
    msgs = tl.events.column("message").to_pylist()
    assert not any(m.endswith("\\n\\") or m.endswith("\\n") for m in msgs)
    first = min(tl.events.to_pylist(), key=lambda r: r["line"])
    assert (first["name"], first["tid"], first["state"]) == ("sched_switch", 14662, "S")
    assert dict(first["attrs"])["next_comm"] == "kworker/0:0"


def test_html_container(corpus):
    tl = tk.load(corpus / "ftrace" / "trappy_trace_systrace.html")
    assert min(tl.events.column("line").to_pylist()) == 26
    res = get_reader("ftrace").read(_inputs.expand(corpus / "ftrace" / "trappy_trace_systrace.html")[0])
    assert res.meta["extra"]["container"] == "systrace html"
    assert res.meta["extra"]["entries_in_buffer"] == 71906 and res.meta["extra"]["cpus"] == 6


def test_recorded_lost_events_row():
    tl = tk.load(FIXTURES / "ftrace_trace_pipe_lost.txt")
    (loss,) = _rows(tl, kind="loss")
    assert loss["value"] == 408 and loss["line"] == 119 and dict(loss["attrs"])["cpu"] == "1"
    nxt = [r for r in tl.events.to_pylist() if r["line"] == 120][0]
    assert loss["ts_src"] == nxt["ts_src"]  # placed at the next event's time
    assert dict(loss["attrs"])["tk.time"] == "next event"


def test_recorded_syscalls_signals_markers_and_fork_start():
    tl = tk.load(FIXTURES / "ftrace_instance_small.txt")
    enter = _rows(tl, name="sys_enter_openat")
    a = dict(enter[0]["attrs"])
    assert a["dfd"] == "0xffffff9c" and a["flags"] == "....." and "arg.flags" in a
    rets = {r["value"] for r in _rows(tl, name="sys_exit_openat")}
    assert -2.0 in rets and 3.0 in rets  # 0xfffffffffffffffe is -ENOENT
    (counter,) = _rows(tl, kind="counter")
    assert (counter["name"], counter["value"], counter["tid"]) == ("queue", 5.0, 13678)
    (span,) = _rows(tl, kind="span")
    assert (span["name"], span["tid"], span["dur"].value) == ("tk-work", 13678, 1_054_000)
    assert _rows(tl, kind="marker") == []
    sig = _rows(tl, name="signal_generate")
    assert dict(sig[0]["attrs"])["sig"] == "17"
    (fork,) = [r for r in _rows(tl, name="sched_process_fork") if dict(r["attrs"])["child_pid"] == "13678"]
    (ex,) = [r for r in _rows(tl, name="sched_process_exec") if r["tid"] == 13678]
    assert fork["entity"] == ex["entity"] == f"proc/?/13678@{fork['ts_src']}"
    assert ex["state"] == "exec"
    res = get_reader("ftrace").read(_inputs.expand(FIXTURES / "ftrace_instance_small.txt")[0])
    assert res.meta["extra"]["tracer"] == "nop" and res.meta["extra"]["entries_written"] == 108


def test_host_option_names_entities(corpus):
    # the reader's own host option (tk.load(host=...) is the loader's: it names the source only)
    tl = tk.load(corpus / "ftrace" / "trappy_trace_no_trailing_line.txt", options={"format:ftrace": {"host": "phone"}})
    (r,) = _rows(tl, name="sched_switch")
    assert r["entity"] == "thread/phone/2804@?" and r["host"] == "phone"


# --------------------------------------------------------------------------- hostile input

GOOD = (FIXTURES / "ftrace_instance_small.txt").read_bytes()


def _load_bytes(tmp_path: Path, data: bytes, **kw) -> tk.Timeline:
    p = tmp_path / "input.bin"
    p.write_bytes(data)
    return tk.load(p, **kw)


def test_truncated_file(tmp_path):
    # cut inside the payload: the event is kept with what it has
    cut = GOOD[: GOOD.index(b"sched_switch: prev_comm=ftrace_rec.sh") + 27]
    tl = _load_bytes(tmp_path, cut)
    assert_accounted(tl)
    assert _counts(tl) == ("ftrace", 14, 2, 0, 12, 0)
    assert dict(_rows(tl, name="sched_switch")[0]["attrs"])["prev_comm"] == "ftr"
    # cut inside the time: a malformed line, rejected with its reason
    cut = GOOD[: GOOD.index(b"1149.256473") + 6]
    tl = _load_bytes(tmp_path, cut)
    assert_accounted(tl)
    assert _counts(tl) == ("ftrace", 14, 1, 0, 12, 1)
    assert "malformed" in tl.rejects.column("reason")[0].as_py()


def test_garbage_lines(tmp_path):
    data = b"%%% garbage\n\x00\x01binary\n" + GOOD + b"\n   more garbage after\n"
    tl = _load_bytes(tmp_path, data, format="ftrace")
    assert_accounted(tl)
    r = tl.sources.to_pylist()[0]
    assert r["rejected"] == 2 and r["merged"] == 2  # trailing line is taken as a continuation
    assert r["rows"] == 107


def test_invalid_utf8(tmp_path):
    data = GOOD.replace(b"ftrace_rec.sh-13676", b"ftrace\xff\xfe.sh-13676", 1)
    tl = _load_bytes(tmp_path, data)
    assert_accounted(tl)
    r = tl.sources.to_pylist()[0]
    assert r["rows"] == 107 and "invalid UTF-8" in r["note"]


def test_empty_file(tmp_path):
    p = tmp_path / "input.bin"
    p.write_bytes(b"")
    with pytest.raises(tk.errors.UnknownFormatError, match="empty"):
        tk.load(p)
    tl = tk.load(p, format="ftrace")
    assert tl.events.num_rows == 0 and tl.sources.column("records")[0].as_py() == 0


def test_huge_line(tmp_path):
    big = b"x" * 2_000_000
    data = GOOD + b"              sh-1   [000] .....  1.000001: tracing_mark_write: " + big + b"\n"
    tl = _load_bytes(tmp_path, data)
    assert_accounted(tl)
    r = _rows(tl, line=121)[0]
    assert len(r["message"]) == len(big) and r["ts_src"] == 1_000_001_000


def test_old_kernel_sched_formats(tmp_path):
    """Pre-3.x kernels printed ``comm:pid [prio] S ==> comm:pid [prio]`` (hand-written sample)."""
    p = tmp_path / "input.bin"
    p.write_text(
        "# tracer: nop\n"
        "          <idle>-0     [000]  1234.000001: sched_switch: swapper:0 [140] R ==> bash:1000 [120]\n"
        "            bash-1000  [000]  1234.000002: sched_wakeup: kworker/0:1:12 [120] success=1 [000]\n"
        "            bash-1000  [000]  1234.000003: sched_switch: bash:1000 [120] S ==> swapper:0 [140]\n"
    )
    tl = tk.load(p)
    assert_accounted(tl)
    rows = sorted(tl.events.to_pylist(), key=lambda r: r["line"])
    assert [(r["entity"], r["state"]) for r in rows] == [("thread/?/0@?", "R"), ("thread/?/12@?", "R"),
                                                         ("thread/?/1000@?", "S")]
    assert dict(rows[2]["attrs"])["next_comm"] == "swapper" and dict(rows[1]["attrs"])["comm"] == "kworker/0:1"
