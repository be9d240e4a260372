"""CSV and Parquet tables with a column mapping."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tracekit as tk
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import source_row as _src

DEPLOYS = (
    "when,pod,level,message,version,dur,pid\n"
    "2024-03-14T09:00:00Z,api-1,info,deploy started,v2,1.5s,100\n"
    '2024-03-14T09:00:01.25+01:00,api-1,warn,"slow, very ""slow""\n'
    'and multi-line",v2,250ms,abc\n'
    "\n"
    "2024-03-14T09:00:02Z,api-2,error,boom,v3\n"
    "not a time,api-3,info,x,v3,1,1\n"
    "1710406803,api-3,,,v3,,\n"
)


def _rows(tl: tk.Timeline) -> list[dict]:
    return sorted(tl.events.to_pylist(), key=lambda r: (r["line"] or 0, r["offset"]))


def _write(tmp_path, text: str | bytes, name: str = "t.csv"):
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_csv_mapping_lines_and_rejects(tmp_path):
    p = _write(tmp_path, DEPLOYS)
    tl = tk.load(p, format="csv", time="when", entity="pod", dur="dur", pid="pid")
    assert_accounted(tl)
    row = _src(tl)
    # header (metadata) + 5 rows; the blank line is not a record
    assert (row["records"], row["emitted"], row["metadata"], row["rejected"]) == (6, 3, 1, 2)
    ev = _rows(tl)
    assert [e["line"] for e in ev] == [2, 3, 8]
    assert [e["line_end"] for e in ev] == [None, 4, None]  # a quoted value spans lines 3-4
    a, b, c = ev
    assert a["entity"] == "api-1" and a["severity"] == "info" and a["message"] == "deploy started"
    assert a["kind"] == "span" and a["dur"].value == 1_500_000_000 and a["pid"] == 100
    assert dict(a["attrs"]) == {"version": "v2"}
    assert b["ts_src"] == 1710403201_250000000 and b["ts_prec"].value == 10_000_000
    assert b["message"] == 'slow, very "slow"\nand multi-line' and b["dur"].value == 250_000_000
    assert b["pid"] is None and dict(b["attrs"])["pid"] == "abc"  # not an integer: kept as text
    assert c["ts_src"] == 1710406803_000000000 and c["kind"] == "instant"
    assert c["offset"] == DEPLOYS.encode().index(b"1710406803")
    rej = tl.rejects.to_pylist()
    assert [r["line"] for r in rej] == [6, 7]
    assert "wrong number of fields" in rej[0]["reason"] and rej[0]["raw"] == "2024-03-14T09:00:02Z,api-2,error,boom,v3"
    assert "cannot read the time" in rej[1]["reason"]


def test_csv_default_columns_and_detection(tmp_path):
    p = _write(tmp_path, "timestamp\tlevel\tmsg\thost\n2024-03-14 09:00:00\tERROR\tdisk full\tdb-1\n"
                         "2024-03-14 09:00:01\tinfo\tok\tdb-1\n", name="input.bin")
    tl = tk.load(p)
    assert_accounted(tl)
    row = _src(tl)
    assert row["format"] == "csv" and row["rows"] == 2
    assert dict(row["assumed"])["tz"].startswith("UTC")
    e = _rows(tl)[0]
    assert (e["severity"], e["message"], e["kind"]) == ("error", "disk full", "log")
    assert dict(e["attrs"]) == {"host": "db-1"}
    tl = tk.load(p, host_column="host", tz="+02:00")
    assert _rows(tl)[0]["host"] == "db-1"
    assert _rows(tl)[0]["ts_src"] == 1710399600_000000000


def test_csv_options_errors(tmp_path):
    p = _write(tmp_path, DEPLOYS)
    with pytest.raises(tk.TracekitError, match="not a column"):
        tk.load(p, format="csv", time="nope")
    with pytest.raises(tk.TracekitError, match="time_unit"):
        tk.load(p, format="csv", time_unit="days")
    q = _write(tmp_path, "a,b\n1,2\n", name="q.csv")
    with pytest.raises(tk.TracekitError, match="no time column"):
        tk.load(q, format="csv")
    tl = tk.load(q, format="csv", time="a", value="b", time_unit="s")
    e = _rows(tl)[0]
    assert e["ts_src"] == 1_000_000_000 and e["value"] == 2.0 and e["kind"] == "counter"


def test_csv_semicolon_delimiter_state(tmp_path):
    p = _write(tmp_path, "time;unit;state\n2024-03-14T09:00:00Z;nginx;active\n")
    tl = tk.load(p, format="csv", delimiter=";", entity="unit", state="state")
    e = _rows(tl)[0]
    assert (e["entity"], e["state"], e["kind"]) == ("nginx", "active", "state")


def test_csv_hostile(tmp_path):
    body = (b"time,msg\n"
            b"2024-03-14T09:00:02Z,later first\n"
            b"2024-03-14T09:00:01Z,bad \xff utf8\n"
            b"\x00\x01garbage\n"
            b"2024-03-14T09:00:03Z," + b"x" * 300_000 + b"\n"
            b'2024-03-14T09:00:04Z,"unterminated quote\n')
    tl = tk.load(_write(tmp_path, body), format="csv")
    assert_accounted(tl)
    row = _src(tl)
    assert row["emitted"] == 4 and row["rejected"] == 1  # the NUL garbage line
    ev = _rows(tl)
    assert ev[3]["message"] == "unterminated quote\n"  # an open quote at EOF runs to the end
    assert "\\xff" in ev[1]["message"]
    assert len(ev[2]["message"]) == 300_000
    ts = tl.events.column("ts").cast(pa.int64()).to_pylist()
    assert ts == sorted(ts)
    for data in (b"", b"\n\n", b"time,msg\n"):
        tl = tk.load(_write(tmp_path, data), format="csv")
        assert_accounted(tl)
        assert tl.events.num_rows == 0


def test_parquet_types_and_rejects(tmp_path):
    t = pa.table({
        "timestamp": pa.array([1710406800_000_000_000, None, 1710406801_000_000_000], pa.timestamp("ns", tz="UTC")),
        "severity": ["INFO", "ERROR", "bogus"],
        "msg": ["a", "b", "c"],
        "n": [1, 2, None],
        "tags": [{"x": 1}, None, {"x": 3}],
        "ok": [True, False, None],
        "d": pa.array([1000, 2000, None], pa.duration("us")),
    })
    p = tmp_path / "input.bin"
    pq.write_table(t, p)
    tl = tk.load(p, dur="d", value="n")
    assert_accounted(tl)
    row = _src(tl)
    assert (row["format"], row["records"], row["emitted"], row["rejected"]) == ("parquet", 3, 2, 1)
    a, c = _rows(tl)
    assert a["kind"] == "span" and a["dur"].value == 1_000_000 and a["value"] == 1.0
    assert dict(a["attrs"]) == {"tags": '{"x":1}', "ok": "true"}
    assert c["severity"] is None and dict(c["attrs"])["severity"] == "bogus"
    assert c["offset"] == 2 and c["line"] is None
    (r,) = tl.rejects.to_pylist()
    assert r["offset"] == 1 and "empty time" in r["reason"] and '"msg":"b"' in r["raw"]


def test_parquet_epoch_and_string_times(tmp_path):
    p = tmp_path / "e.parquet"
    pq.write_table(pa.table({"ts": [1710406800123, 1710406800124], "event": ["x", "y"]}), p)
    tl = tk.load(p, name="event")
    assert tl.events.column("ts_src").to_pylist() == [1710406800_123_000_000, 1710406800_124_000_000]
    assert tl.events.column("name").to_pylist() == ["x", "y"]


def test_parquet_corrupt_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.parquet"
    p.write_bytes(b"PAR1" + b"\x00" * 50 + b"PAR1")
    with pytest.raises(tk.TracekitError, match="Parquet"):
        tk.load(p)


def test_sniff_claims_only_tables(tmp_path):
    csv_sniff = get_reader("csv").sniff
    assert csv_sniff(b"time,msg\n2024-03-14T09:00:00Z,a\n", "x") == 0.55
    assert csv_sniff(b"a,b\n1,2\n", "x") == 0.0  # no time-like column
    assert csv_sniff(b'time=2024 level=info msg="a, b"\ntime=2024 level=info msg="c, d"\n', "x") == 0.0
    assert csv_sniff(b"Mar 14 09:00:00 web-1 cron[1]: (root) CMD (a, b)\n" * 3, "x") == 0.0
    assert get_reader("parquet").sniff(b"PAR1\x15\x04", "x") == 0.95


@pytest.mark.corpus
def test_corpus_text_is_not_claimed(corpus, tmp_path):
    csv_sniff = get_reader("csv").sniff
    for p in sorted(corpus.rglob("*")):
        if p.is_file() and p.suffix != ".gz" and p.name != "PROVENANCE.md":
            assert csv_sniff(p.read_bytes()[:65536], "input.bin") < 0.5, p
    tl = load_neutral(corpus / "logfmt" / "lnav_logrus_logfmt.log", tmp_path)
    assert _src(tl)["format"] == "logfmt"
