"""perf script / perf trace readers: corpus and recorded fixtures, exact counts, content, hostile input."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pytest

import tracekit as tk
from tracekit import _inputs
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import counts_all as _counts

FIXTURES = Path(__file__).parent / "fixtures" / "perf"

# name: (format, records, rows, merged, metadata, rejected)
CORPUS = {
    "recorded_perf_header.txt": ("perf_script", 49, 19, 0, 30, 0),
    "recorded_perf_lost_header.txt": ("perf_script", 693, 663, 0, 30, 0),
    "recorded_perf_sched_switch_header.txt": ("perf_script", 44, 14, 0, 30, 0),
    "recorded_perf_trace.txt": ("perf_trace", 58, 58, 0, 0, 0),
    "speedscope_one-sample.perf-script.txt": ("perf_script", 6, 1, 5, 0, 0),
    "speedscope_rust-mangled.perf-script.txt": ("perf_script", 484, 96, 388, 0, 0),
    "speedscope_simple-with-header.perf-script.txt": ("perf_script", 745, 136, 590, 19, 0),
    "speedscope_simple-with-pid.perf-script.txt": ("perf_script", 740, 137, 603, 0, 0),
    "speedscope_system-wide.perf-script.txt": ("perf_script", 2875, 556, 2319, 0, 0),
}
RECORDED = {
    "perf_callchain.txt": ("perf_script", 239, 44, 195, 0, 0),
    "perf_clockid_header.txt": ("perf_script", 166, 132, 0, 34, 0),
    "perf_flat_pid_tid.txt": ("perf_script", 16, 16, 0, 0, 0),
    "perf_inet_sock_set_state.txt": ("perf_script", 12, 12, 0, 0, 0),
}


def _rows(tl: tk.Timeline, **eq) -> list[dict]:
    t = tl.events
    for k, v in eq.items():
        t = t.filter(pc.field(k) == v)
    return sorted(t.to_pylist(), key=lambda r: r["line"])


def _meta(path: Path, reader: str = "perf_script") -> dict:
    return get_reader(reader).read(_inputs.expand(path)[0]).meta


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_counts(corpus, tmp_path, name):
    tl = load_neutral(corpus / "perf_script" / name, tmp_path)
    assert _counts(tl) == CORPUS[name]
    assert_accounted(tl)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_fixture_counts(tmp_path, name):
    tl = load_neutral(FIXTURES / name, tmp_path)
    assert _counts(tl) == RECORDED[name]
    assert_accounted(tl)


def test_callchain_attached_to_its_sample(corpus):
    tl = tk.load(corpus / "perf_script" / "speedscope_simple-with-pid.perf-script.txt")
    first = _rows(tl)[0]
    assert (first["kind"], first["name"], first["pid"], first["tid"]) == ("sample", "cpu-clock", 9, 9)
    assert (first["line"], first["line_end"], first["ts_src"]) == (1, 6, 198791_127353_000)
    a = dict(first["attrs"])
    assert a["callchain"] == "_Z4betav;_Z5deltav;main;__libc_start_main;[unknown]"
    assert a["callchain_dso"].split(";")[0] == "/workdir/simple-terminates"
    # one sample, no trailing newline
    tl = tk.load(corpus / "perf_script" / "speedscope_one-sample.perf-script.txt")
    (r,) = tl.events.to_pylist()
    assert (r["tid"], r["line_end"]) == (10, 6) and dict(r["attrs"])["period"] == "1001001"


def test_recorded_callchain_kernel_frames():
    tl = tk.load(FIXTURES / "perf_callchain.txt")
    deep = [r for r in tl.events.to_pylist() if "copy_mc_enhanced_fast_string+0x6" in dict(r["attrs"]).get("callchain", "")]
    assert len(deep) == 1
    chain = dict(deep[0]["attrs"])["callchain"].split(";")
    assert chain[:2] == ["copy_mc_enhanced_fast_string+0x6", "do_wp_page+0x577"] and len(chain) == 10
    assert deep[0]["line_end"] - deep[0]["line"] == 10


def test_leaf_on_the_sample_line_pid_tid():
    tl = tk.load(FIXTURES / "perf_flat_pid_tid.txt")
    r = _rows(tl)[1]
    assert (r["pid"], r["tid"], r["kind"], r["ts_src"]) == (11310, 11310, "sample", 1829_363631_000)
    a = dict(r["attrs"])
    assert (a["ip"], a["sym"], a["dso"], a["period"]) == ("ffffffff821e5a43", "xas_start", "[kernel.kallsyms]", "4000000")
    assert "callchain" not in a


def test_modifiers_and_no_cpu(corpus):
    tl = tk.load(corpus / "perf_script" / "speedscope_rust-mangled.perf-script.txt")
    r = _rows(tl)[0]
    a = dict(r["attrs"])
    assert (r["name"], a["modifier"], a["period"], r["tid"]) == ("task-clock", "ppp", "16949152", 6061)
    assert "cpu" not in a and a["callchain"].endswith("_start+0x30")


def test_header_recorded_host_and_tracepoints(corpus):
    path = corpus / "perf_script" / "recorded_perf_header.txt"
    tl = tk.load(path)
    assert tl.sources.column("host")[0].as_py() == "vm"
    assert tl.sources.column("clock")[0].as_py() == "boot" and not tl.sources.column("aligned")[0].as_py()
    ex = _meta(path)["extra"]
    assert ex["captured_on"] == "Fri Nov 27 22:48:09 2026" and ex["perf_version"] == "6.1.187"
    assert len(ex["events"]) == 3 and ex["cmdline"].startswith("/usr/bin/perf record")
    execs = _rows(tl, name="sched_process_exec")
    e = [r for r in execs if dict(r["attrs"])["filename"] == "/usr/bin/date"][0]
    assert (e["category"], e["kind"], e["state"], e["entity"]) == ("sched", "state", "exec", "proc/vm/3486@?")
    assert dict(e["attrs"])["comm"] == "date" and e["tid"] == 3486
    exits = _rows(tl, name="sched_process_exit")
    assert exits[0]["state"] == "exit" and dict(exits[0]["attrs"])["group_dead"] == "true"


def test_sched_switch_fields(corpus):
    tl = tk.load(corpus / "perf_script" / "recorded_perf_sched_switch_header.txt")
    sw = _rows(tl, name="sched_switch")
    assert [r["state"] for r in sw][:3] == ["D", "R", "R"]
    a = dict(sw[0]["attrs"])
    assert (a["prev_comm"], a["prev_pid"], a["next_comm"], a["next_pid"]) == ("sh", "4974", "perf", "4973")
    assert sw[0]["entity"] == "thread/vm/4974@?"
    forks = _rows(tl, name="sched_process_fork")
    assert forks[0]["entity"] == f"proc/vm/4977@{forks[0]['ts_src']}" and forks[0]["state"] == "fork"
    assert dict(forks[0]["attrs"])["arg.comm"] == "sh"  # the payload's comm= kept beside the task comm
    assert len(_rows(tl, name="sched_wakeup")) == 1


def test_lost_records(corpus):
    tl = tk.load(corpus / "perf_script" / "recorded_perf_lost_header.txt")
    loss = _rows(tl, kind="loss")
    assert len(loss) == 16
    assert (loss[0]["line"], loss[0]["value"], loss[0]["name"]) == (138, 2.0, "PERF_RECORD_LOST")
    assert loss[1]["value"] == 74.0
    enter = _rows(tl, name="sys_enter")
    assert len(enter) == 645 and dict(enter[0]["attrs"])["nr"] == "12"
    assert enter[0]["category"] == "raw_syscalls" and enter[0]["message"].startswith("NR 12 (0, 7fff3712872c")


def test_reference_time_anchor():
    path = FIXTURES / "perf_clockid_header.txt"
    tl = tk.load(path)
    src = tl.sources.to_pylist()[0]
    assert src["clock"] == "monotonic" and src["aligned"] and "reference time" in src["anchor"]
    tod, mono = 1795821444_143079_000, 1131_569902_858
    assert src["offset"].value == tod - mono
    first = _rows(tl)[0]
    assert first["ts_src"] == 1131_616800_000
    assert first["ts"].value == first["ts_src"] + tod - mono  # ts moved, ts_src untouched
    ref = {"date": "2026-11-27 23:17:24.143079", "tod_ns": tod, "clock_ns": mono, "clockid": "monotonic"}
    assert _meta(path)["extra"]["reference_time"] == ref
    assert tl.meta[src["source"]]["extra"]["reference_time"] == ref  # kept on the Timeline


def test_inet_sock_set_state():
    tl = tk.load(FIXTURES / "perf_inet_sock_set_state.txt")
    rows = _rows(tl)
    assert all(r["name"] == "inet_sock_set_state" and r["category"] == "sock" and r["kind"] == "state" for r in rows)
    assert [r["state"] for r in rows][:3] == ["TCP_LISTEN", "TCP_SYN_SENT", "TCP_ESTABLISHED"]
    a = dict(rows[2]["attrs"])
    assert (a["oldstate"], a["newstate"], a["sport"], a["dport"]) == ("TCP_SYN_SENT", "TCP_ESTABLISHED", "34632", "40261")


def test_perf_trace(corpus):
    tl = tk.load(corpus / "perf_script" / "recorded_perf_trace.txt")
    assert tl.sources.column("clock")[0].as_py() == "relative"
    rows = _rows(tl)
    assert rows[0]["name"] == "execve" and dict(rows[0]["attrs"])["tk.continued"] == "true"
    brk = rows[1]
    assert (brk["name"], brk["ts_src"], brk["dur"].value, brk["tid"]) == ("brk", 46_000, 16_000, 4988)
    assert dict(brk["attrs"])["return"] == "0x5622f4e2f000"
    last = rows[-1]
    assert last["name"] == "exit_group" and last["dur"] is None and dict(last["attrs"])["return"] == "?"
    acc = [r for r in rows if r["name"] == "access"][0]
    assert acc["value"] == -1.0


# --------------------------------------------------------------------------- hostile input

GOOD = (FIXTURES / "perf_callchain.txt").read_bytes()


def _load_bytes(tmp_path: Path, data: bytes, **kw) -> tk.Timeline:
    p = tmp_path / "input.bin"
    p.write_bytes(data)
    return tk.load(p, **kw)


def test_truncated_and_garbage(tmp_path):
    cut = GOOD[: GOOD.index(b"bash 13360  1134.14606") + 14]
    tl = _load_bytes(tmp_path, cut, format="perf_script")
    assert_accounted(tl)
    assert _counts(tl) == ("perf_script", 3, 1, 1, 0, 1)
    assert "not a perf script" in tl.rejects.column("reason")[0].as_py()
    data = b"\tdeadbeef orphan (x)\n" + GOOD + b"!!! garbage !!!\n"
    tl = _load_bytes(tmp_path, data, format="perf_script")
    assert_accounted(tl)
    reasons = tl.rejects.column("reason").to_pylist()
    assert reasons == ["callchain line before any sample", "not a perf script sample, callchain or header line"]


def test_invalid_utf8_empty_and_huge(tmp_path):
    tl = _load_bytes(tmp_path, GOOD.replace(b"bash 13360", b"ba\xffh 13360", 1))
    assert_accounted(tl)
    r = tl.sources.to_pylist()[0]
    assert r["rows"] == 44 and "invalid UTF-8" in r["note"]
    tl = _load_bytes(tmp_path, b"", format="perf_script")
    assert tl.events.num_rows == 0
    big = b"s" * 1_000_000
    tl = _load_bytes(tmp_path, b"x 1 [000] 1.5: sched:sched_x: k=" + big + b"\n", format="perf_script")
    assert_accounted(tl)
    assert len(dict(tl.events.to_pylist()[0]["attrs"])["k"]) == len(big)
