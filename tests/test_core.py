"""The foundation: schema, registry, inputs (folders, archives, compression), options, errors."""

from __future__ import annotations

import gzip
import tarfile
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit import _time
from tracekit.readers._base import split_lines
from tracekit.schema import EVENT_SCHEMA, conform, normalize_severity

from .helpers import assert_accounted

LINES = [
    '{"ts":"2024-03-14T09:00:00.000000001Z","level":"info","msg":"start","pod":"api-1"}',
    '{"ts":"2024-03-14T10:00:01+01:00","level":"WARN","msg":"slow","latency_ms":12.5}',
    '{"ts":1710406802,"level":"error","msg":"boom","http":{"method":"GET"},"http.method":"POST"}',
]


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "incident"
    (d / "app").mkdir(parents=True)
    (d / "app" / "api.jsonl").write_text("\n".join(LINES) + "\n")
    with gzip.open(d / "app" / "old.log.gz", "wt") as f:
        f.write(LINES[0] + "\n")
    (d / "README.txt").write_text("this is not a dump\n")
    (d / "empty.jsonl").write_text("")
    return d


def test_schema_is_declared_once():
    assert EVENT_SCHEMA.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert EVENT_SCHEMA.field("ts_src").type == pa.int64()
    assert EVENT_SCHEMA.field("attrs").type == pa.map_(pa.string(), pa.string())
    t = conform({"ts_src": [5, 6], "kind": "log"})
    assert t.schema.equals(EVENT_SCHEMA)
    assert t.column("ts").cast(pa.int64()).to_pylist() == [5, 6]
    assert t.column("attrs").to_pylist() == [[], []]
    with pytest.raises(ValueError, match="not canonical"):
        conform({"ts_src": [1], "bogus": [1]})


def test_load_folder_sorted_with_seq_and_sources(folder):
    tl = tk.load(folder)
    assert_accounted(tl)
    ts = tl.events.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(ts) >= 0)
    src = {r["source"]: r for r in tl.sources.to_pylist()}
    assert src["app/api.jsonl"]["format"] == "jsonl" and src["app/api.jsonl"]["rows"] == 3
    assert src["app/old.log.gz"]["rows"] == 1  # gzip read by content
    assert src["README.txt"]["status"] == "skipped" and "unknown format" in src["README.txt"]["note"]
    assert src["empty.jsonl"]["status"] == "skipped" and src["empty.jsonl"]["note"] == "empty file"
    # seq is load order: unique, and ties in ts keep it
    seq = tl.events.column("seq").to_numpy()
    assert sorted(seq.tolist()) == list(range(4))


def test_nanoseconds_exact_and_offsets(folder):
    tl = tk.load(folder / "app" / "api.jsonl")
    ts = tl.events.column("ts_src").to_pylist()
    assert ts[0] == 1710406800_000000001
    assert ts[1] == 1710406801_000000000  # +01:00 honoured
    assert ts[2] == 1710406802_000000000  # epoch seconds
    assert tl.events.column("ts_prec").cast(pa.int64()).to_pylist() == [1, 10**9, 10**9]


def test_attrs_key_collision_kept_apart(folder):
    tl = tk.load(folder / "app" / "api.jsonl")
    attrs = dict(tl.events.column("attrs")[2].as_py())
    assert attrs["http.method"] == "POST"
    assert attrs["http"] == '{"method":"GET"}'
    assert dict(tl.events.column("attrs")[1].as_py())["latency_ms"] == "12.5"


def test_archives_as_folders(folder, tmp_path):
    tgz = tmp_path / "bundle.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(folder / "app" / "api.jsonl", arcname="var/log/api.jsonl")
        tf.add(folder / "app" / "old.log.gz", arcname="var/log/old.log.gz")
    tl = tk.load(tgz)
    assert sorted(tl.sources.column("source").to_pylist()) == ["var/log/api.jsonl", "var/log/old.log.gz"]
    assert len(tl) == 4
    z = tmp_path / "bundle.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(folder / "app" / "api.jsonl", "logs/api.jsonl")
    assert len(tk.load(z)) == 3


def test_zstd(tmp_path, folder):
    zstandard = pytest.importorskip("zstandard", reason="zstandard is an optional extra")
    p = tmp_path / "api.jsonl.zst"
    p.write_bytes(zstandard.ZstdCompressor().compress((folder / "app" / "api.jsonl").read_bytes()))
    assert len(tk.load(p)) == 3


def test_format_forcing_and_unknown(folder, tmp_path):
    with pytest.raises(tk.UnknownFormatError, match="known: .*jsonl"):
        tk.load(folder, format="strace2")
    with pytest.raises(tk.UnknownFormatError, match="README.txt"):
        tk.load(folder / "README.txt")
    odd = tmp_path / "x.weird"
    odd.write_text(LINES[0] + "\n")
    assert len(tk.load(odd, format="jsonl")) == 1


def test_options_global_selector_and_stray(tmp_path):
    p = tmp_path / "a.jsonl"
    p.write_text('{"when":"2024-03-14T09:00:00Z","msg":"x"}\n')
    assert tk.load(p).rejects.num_rows == 1
    assert len(tk.load(p, time_field="when")) == 1
    tl = tk.load(p, time_field="nope", options={"*.jsonl": {"time_field": "when"}})
    assert len(tl) == 1  # the selector's value beats the global one
    with pytest.raises(tk.OptionError, match="time_field"):
        tk.load(p, no_such_option=1)
    with pytest.raises(tk.OptionError, match="does not take"):
        tk.load(p, options={"a.jsonl": {"bogus": 1}})


def test_to_pandas_and_sql(folder):
    tl = tk.load(folder)
    df = tl.to_pandas()
    assert isinstance(df.dtypes["ts"], pd.ArrowDtype)
    out = tl.sql("select severity, count(*) n from events group by 1 order by 1")
    assert dict(zip(out.column(0).to_pylist(), out.column(1).to_pylist())) == {"error": 1, "info": 2, "warning": 1}
    assert "<table>" in tl._repr_html_() and "api.jsonl" in repr(tl)


def test_html_repr_escapes_names(tmp_path):
    p = tmp_path / "<script>x.jsonl"
    p.write_text(LINES[0] + "\n")
    html = tk.load(tmp_path)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_split_lines_keeps_every_byte():
    ls = split_lines(b"a\nb\r\n\xff\xfec\n\nlast")
    assert ls.stripped().to_pylist() == ["a", "b", "\\xff\\xfec", "", "last"]
    assert ls.offset.tolist() == [0, 2, 5, 9, 10]
    assert ls.bad_utf8.tolist() == [3]


def test_time_parsing():
    r = _time.parse_iso8601(["2024-03-14T09:00:00,5-05:30", "2024-02-30T00:00:00Z", "nope", "2024-03-14 09:00"])
    assert r["ok"].tolist() == [True, True, False, True]  # day 30 of Feb is range-checked loosely
    assert r["ns"][0] == 1710406800_500000000 + (5 * 3600 + 1800) * 10**9
    e = _time.parse_epoch(pa.array(["1710406800123", "1710406800.000001", "1710406800123456", "1710406800123456789"]))
    assert e["ns"].tolist() == [1710406800123000000, 1710406800000001000, 1710406800123456000, 1710406800123456789]
    assert _time.to_duration_ns("-2.75s") == -2_750_000_000
    with pytest.raises(tk.TimeError, match="naive"):
        _time.to_time_ns("2024-03-14T09:00:00")
    assert normalize_severity(pa.array(["WARN", "Informational", "50", None, "zzz"])).to_pylist() == [
        "warning", "info", "error", None, None]


def test_cli_info_and_convert(folder, tmp_path, capsys):
    from tracekit.cli import main

    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "app/api.jsonl" in out and "skipped" in out
    dst = tmp_path / "ev.parquet"
    assert main(["convert", str(folder / "app"), "-o", str(dst)]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(dst).num_rows == 4
    assert main(["info", str(folder / "README.txt")]) == 2
    assert "unknown format" in capsys.readouterr().err


def test_reader_bug_is_wrapped(monkeypatch, tmp_path):
    from tracekit.readers import get_reader
    from tracekit.readers._base import _REGISTRY, Reader

    def boom(inp, **kw):
        raise KeyError("deep inside")

    r = get_reader("jsonl")
    monkeypatch.setitem(_REGISTRY, "jsonl", Reader(r.name, r.description, r.sniff, boom, r.options, r.extensions))
    p = tmp_path / "a.jsonl"
    p.write_text(LINES[0] + "\n")
    with pytest.raises(tk.ParseError, match=r"a.jsonl: reader 'jsonl' failed: KeyError"):
        tk.load(p)




def test_rotated_sets_read_as_one_source_oldest_first(monkeypatch, tmp_path):
    from tracekit.readers import get_reader
    from tracekit.readers._base import _REGISTRY, Reader

    r = get_reader("jsonl")
    monkeypatch.setitem(_REGISTRY, "jsonl", Reader(r.name, r.description, r.sniff, r.read, r.options,
                                                   r.extensions, rotated=True))
    d = tmp_path / "log"
    d.mkdir()
    (d / "app").write_text(LINES[2] + "\n")
    (d / "app.1").write_text(LINES[1] + "\n")
    with gzip.open(d / "app.2.gz", "wt") as f:
        f.write(LINES[0] + "\n" + "{\"ts\": broken\n")
    tl = tk.load(d)
    assert tl.sources.column("source").to_pylist() == ["app"]
    row = tl.sources.to_pylist()[0]
    assert (row["records"], row["rows"], row["rejected"]) == (4, 3, 1)
    assert row["file"].split(", ")[0].endswith("app.2.gz")  # oldest first
    assert tl.events.column("file").to_pylist()[0].endswith("app.2.gz")
    assert tl.rejects.column("source").to_pylist() == ["app"]
    assert_accounted(tl)
    # load order (seq) follows the files oldest first
    assert tl.events.column("seq").to_pylist() == [0, 1, 2]


def test_corrupt_compressed_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.log"
    bad.write_bytes(b'\x1f\x8b{"ts":"2024-03-14T09:00:00Z"}\n')
    with pytest.raises(tk.ParseError, match=r"x.log: cannot read \(corrupt or truncated compressed"):
        tk.load(bad)
    with pytest.raises(tk.ParseError, match="corrupt"):
        tk.load(bad, format="jsonl")
    good = tmp_path / "ok.jsonl"
    good.write_text(LINES[0] + "\n")
    tl = tk.load(tmp_path)  # in a folder: listed as skipped with the reason, the rest loads
    row = {r["source"]: r for r in tl.sources.to_pylist()}["x.log"]
    assert row["status"] == "skipped" and "corrupt" in row["note"] and len(tl) == 1
    trunc = tmp_path / "t.jsonl.gz"
    trunc.write_bytes(gzip.compress(((LINES[0] + "\n") * 50).encode())[:-30])
    with pytest.raises(tk.ParseError, match="t.jsonl.gz"):
        tk.load(trunc)


def test_utf8_bom_is_not_part_of_the_first_line(tmp_path):
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + (LINES[0] + "\n").encode())
    tl = tk.load(p)
    assert len(tl) == 1 and tl.rejects.num_rows == 0 and tl.events.column("offset").to_pylist() == [3]
