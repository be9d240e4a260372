"""Block-by-block reading (``tracekit._stream``, ``tracekit convert``): the streamed Parquet
file must hold exactly the table ``tk.load`` gives for the whole file, whatever the block size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tracekit as tk
from tracekit import _stream
from tracekit.cli import main
from tracekit.readers._base import Input

CORPUS = Path(os.environ.get("TRACEKIT_CORPUS", "/work/shared/corpus"))


def _decoded(t: pa.Table) -> dict[str, list]:
    out = {}
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        out[name] = col.to_pylist()
    return out


def _same_as_load(path: Path, tmp: Path, fmt: str, block: int, **opts) -> dict:
    tl = tk.load(str(path), format=fmt, progress=False, **opts)
    out = tmp / "out.parquet"
    info = _stream.convert(str(path), out, format=fmt, block_bytes=block, **opts)
    got = pq.read_table(out)
    assert got.schema.names == tl.events.schema.names
    want = _decoded(tl.events)
    have = _decoded(got)
    for name in want:
        assert have[name] == want[name], f"{path.name}: column {name} differs"
    assert info["events"] == tl.events.num_rows
    assert info["rejects"] == tl.rejects.num_rows
    return info


def _blocks(path: Path, cut) -> list[_stream.Block]:
    inp = Input(name=path.name, path=str(path), opener=lambda: open(path, "rb"), size=path.stat().st_size)
    return list(_stream.iter_blocks(inp, cut, 200))


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPUS / "syslog").iterdir()))
def test_syslog_corpus_streamed_equals_load(name, tmp_path):
    _same_as_load(CORPUS / "syslog" / name, tmp_path, "syslog", 300)


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPUS / "strace").iterdir()))
def test_strace_corpus_streamed_equals_load(name, tmp_path):
    _same_as_load(CORPUS / "strace" / name, tmp_path, "strace", 700)
    _same_as_load(CORPUS / "strace" / name, tmp_path, "strace", 700, date="2024-12-31")


def test_blocks_cover_the_file_and_never_split_a_record(tmp_path):
    p = tmp_path / "s.log"
    body = []
    for i in range(200):
        body.append(f"Dec 31 23:59:{i % 60:02d} h app[{i}]: line {i}")
        if i % 7 == 0:
            body.append("\tcontinued " + "x" * (i % 50))
    p.write_text("\n".join(body) + "\n")
    blocks = _blocks(p, _stream._SYSLOG_CUT)
    assert len(blocks) > 5
    assert b"".join(b.data for b in blocks) == p.read_bytes()
    line = 1
    for b in blocks:
        assert b.start_line == line
        assert not b.data.startswith(b"\t")  # a continuation stays with its record
        line += b.data.count(b"\n")


def test_syslog_rollover_cron_and_continuations_across_blocks(tmp_path):
    """Dec → Jan roll-over, a CRON CMD and its error/session lines, continuation lines and a
    kernel uptime stamp, all falling on block boundaries at a 300-byte block size."""
    lines = []
    for i in range(60):
        lines.append(f"Dec 31 23:{i:02d}:00 web CRON[{100 + i}]: (root) CMD ([{200 + i}] /bin/job{i % 3})")
        lines.append(f"Dec 31 23:{i:02d}:01 web kernel: [{1000 + i}.123456] usb {i}")
        if i % 5 == 0:
            lines.append("\tdetail " + "y" * 40)
        lines.append(f"Dec 31 23:{i:02d}:02 web CRON[{100 + i}]: (CRON) error (grandchild #{200 + i} failed "
                     f"with exit status {i % 4})")
    for i in range(60):
        lines.append(f"Jan  1 00:{i:02d}:00 web CRON[{100 + i}]: pam_unix(cron:session): session closed for user root")
    p = tmp_path / "syslog"
    p.write_text("\n".join(lines) + "\n")
    os.utime(p, (1_735_740_000, 1_735_740_000))  # 2025-01-01
    info = _same_as_load(p, tmp_path, "syslog", 300)
    assert info["streamed"]
    info = _same_as_load(p, tmp_path, "syslog", 300, year=2020, tz="Europe/Berlin")
    assert info["streamed"]
    tl = tk.load(str(p), format="syslog")
    years = np.unique(tl.events.column("ts").to_numpy().astype("datetime64[Y]").astype(int) + 1970)
    assert years.tolist() == [2024, 2025]


def test_strace_pairs_threads_and_messages_across_blocks(tmp_path):
    """Unfinished calls resumed blocks later (one pending for the whole trace), a thread made by
    clone(CLONE_THREAD), strace messages inheriting the time of the line before them."""
    out = ["100 1700000000.000001 wait4(-1,  <unfinished ...>"]
    t = 1
    for i in range(150):
        t += 1
        pid = 101 + i % 4
        out.append(f"{pid} 1700000000.{t:06d} read(3,  <unfinished ...>")
        t += 1
        out.append(f"{pid + 10} 1700000000.{t:06d} close({i}) = 0 <0.000001>")
        if i == 20:
            t += 1
            out.append(f"101 1700000000.{t:06d} clone(child_stack=0x1, flags=CLONE_VM|CLONE_THREAD) = 500")
            out.append("strace: Process 500 attached")
        if i > 20 and i % 9 == 0:
            t += 1
            out.append(f"500 1700000000.{t:06d} getpid() = 101")
        t += 1
        out.append(f"{pid} 1700000000.{t:06d} <... read resumed>\"ab\", 8192) = 2 <0.000005>")
    t += 1
    out.append(f"100 1700000000.{t:06d} <... wait4 resumed>[{{WIFEXITED(s)}}], 0, NULL) = 101 <0.1>")
    out.append(f"100 1700000000.{t + 1:06d} +++ exited with 0 +++")
    p = tmp_path / "trace.txt"
    p.write_text("\n".join(out) + "\n")
    info = _same_as_load(p, tmp_path, "strace", 400)
    assert info["streamed"]
    tl = tk.load(str(p), format="strace")
    wait = tl.events.filter(pa.compute.equal(tl.events.column("name"), "wait4"))
    assert wait.num_rows == 1 and wait.column("line_end").to_pylist() == [len(out) - 1]


def test_out_of_order_file_falls_back_to_one_piece(tmp_path):
    rows = [f"Mar  1 10:{59 - i:02d}:00 h app: m{i}" for i in range(60)]
    p = tmp_path / "rev.log"
    p.write_text("\n".join(rows) + "\n")
    info = _same_as_load(p, tmp_path, "syslog", 200)
    assert not info["streamed"] and "out of time order" in info["note"]


def test_cli_convert_streams(tmp_path, capsys):
    src = CORPUS / "strace" / "arastoob_f_multithread_cargo.log"
    dst = tmp_path / "c.parquet"
    assert main(["convert", str(src), "-o", str(dst), "--block-mb", "0.02"]) == 0
    assert "streamed in blocks" in capsys.readouterr().out
    assert pq.read_table(dst).num_rows == len(tk.load(str(src)))


def test_syslog_load_in_blocks_equals_one_piece(tmp_path, monkeypatch):
    """tk.load reads large syslog files in blocks: same events, sources and metadata."""
    from tracekit.readers import syslog as sl

    lines = []
    for i in range(300):
        lines.append(f"Dec 31 23:{i % 60:02d}:{i % 50:02d} h{i % 2} CRON[{100 + i}]: (root) CMD ([{200 + i}] job{i % 3})")
        up = 1000 + i if i < 150 else i - 140  # a reboot half way
        lines.append(f"Dec 31 23:{i % 60:02d}:{i % 50:02d} h{i % 2} kernel: [{up}.5] usb")
    lines += [f"Jan  1 00:00:{i:02d} h0 app[1]: after" for i in range(30)] + ["garbage line"]
    p = tmp_path / "syslog"
    p.write_text("\n".join(lines) + "\n")
    one = tk.load(str(p), format="syslog")
    monkeypatch.setattr(sl, "BLOCKS_ABOVE", 1000)
    monkeypatch.setattr(sl, "LOAD_BLOCK", 2000)
    blk = tk.load(str(p), format="syslog")
    assert blk.events.equals(one.events)
    assert blk.rejects.equals(one.rejects)
    assert blk.sources.drop(["seconds"]).equals(one.sources.drop(["seconds"]))
    assert blk.meta == one.meta
    assert set(one.meta["syslog"]["extra"]["boot_anchors"]) == {"h0", "h1", "h0#2", "h1#2"}


@pytest.mark.parametrize("name", ["arastoob_f_multithread_cargo.log", "lnav_strace_f_ttt_T_webserver.log",
                                  "tracecode_ff_ttt_y_make.2453402", "recorded_relative_r.txt"])
def test_strace_load_in_blocks_equals_one_piece(name, monkeypatch):
    """tk.load reads large strace files in blocks (or in one piece where a block cannot know
    enough): same events, rejects and sources."""
    from tracekit.readers import strace as st

    path = str(CORPUS / "strace" / name)
    one = tk.load(path, format="strace")
    monkeypatch.setattr(st, "BLOCKS_ABOVE", 1000)
    monkeypatch.setattr(st, "LOAD_BLOCK", 1500)
    blk = tk.load(path, format="strace")
    assert blk.events.equals(one.events)
    assert blk.rejects.equals(one.rejects)
    assert blk.sources.drop(["seconds"]).equals(one.sources.drop(["seconds"]))


def test_rotated_set_streamed_equals_load(tmp_path):
    """A logrotate set (syslog.1 then syslog) is one source, read oldest first, in blocks."""
    d = tmp_path / "logs"
    d.mkdir()
    (d / "syslog.1").write_text("".join(f"Mar  1 10:{i:02d}:00 h app[{i}]: old {i}\n" for i in range(40)))
    (d / "syslog").write_text("".join(f"Mar  2 10:{i:02d}:00 h app[{i}]: new {i}\n" for i in range(40)))
    for f in d.iterdir():
        os.utime(f, (1_740_000_000, 1_740_000_000))
    info = _same_as_load(d, tmp_path, "syslog", 300)
    assert info["streamed"] and info["events"] == 80
