"""Chrome reader internals of the fast path: number parsing, row order, the unchecked text."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit import _time
from tracekit.readers import chrome

from .helpers import assert_accounted
from .test_chrome import _both_paths, _input, _write

_EDGE = ["0", "-0", "-0.5", "-1.0005", "0.0000001", "123.4567891", "-12", "1.", ".5", "-.5", "+3", "1e3",
         "0012.50", "١٢", "", "-", "1..2", " 1", "1 ", "abc", "12a", "999999999999999.999", "9999999999999999",
         "123456789012345.123456789", "12345678901234.12345", "-000.0001", "1.5e3", "3502297.462",
         "1710406800123456.789", "-999999999999999.999999999", "0.000000001", "7.1234", None]


def _random_numbers(n: int) -> list[str]:
    rnd = random.Random(7)
    out = []
    for _ in range(n):
        s = ("-" if rnd.random() < 0.2 else "") + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 17)))
        f = rnd.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        out.append(s + ("." + "".join(rnd.choice("0123456789") for _ in range(f)) if f else ""))
    return out


@pytest.mark.parametrize("values", [_EDGE, _random_numbers(5000), ["5", None, "2.5", None], [None, None]])
def test_epoch_us_equals_parse_epoch(values):
    """The fast number path gives what the general parser gives, value by value (ns, ok, precision)."""
    arr = pa.array(values, pa.string())
    got, want = chrome._epoch_us(arr), _time.parse_epoch(arr, unit="us")
    for k in ("ns", "ok", "prec"):
        assert got[k].tolist() == want[k].tolist(), k
    if "3502297.462" in values:
        assert got["ns"][values.index("3502297.462")] == 3502297462


def test_rows_come_out_in_time_order(tmp_path):
    """The reader's rows are sorted by (ts, element order) — counter series of one element stay
    together in key order — so tk.load keeps them as they are: seq numbers them in time order."""
    evs = [
        {"ph": "X", "ts": 30, "dur": 1, "name": "late", "pid": 1, "tid": 1},
        {"ph": "C", "ts": 10, "name": "mem", "pid": 1, "args": {"b": 2, "a": 1}},
        {"ph": "B", "ts": 20, "name": "slice", "pid": 1, "tid": 1},
        {"ph": "i", "ts": 10, "name": "tie", "pid": 1, "tid": 1, "s": "t"},
        {"ph": "E", "ts": 25, "pid": 1, "tid": 1},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "main"}},
        {"ph": "i", "ts": 5, "name": "first", "pid": 1, "tid": 1, "s": "t"},
    ]
    p = _write(tmp_path, json.dumps({"traceEvents": evs}).encode())
    res = chrome._read(_input(p))
    ev = res.events
    ts = np.asarray(ev["ts_src"])
    off = np.asarray(ev["offset"])
    assert ts.tolist() == [5000, 10000, 10000, 10000, 20000, 30000]
    assert off.tolist() == [6, 1, 1, 3, 2, 0]  # ties in element order; the C's two series together
    tl = tk.load(p)
    assert_accounted(tl)
    t = tl.events
    assert t.column("seq").to_pylist() == list(range(6))
    assert t.column("name").to_pylist() == ["first", "mem", "mem", "tie", "slice", "late"]
    series = [dict(a).get("tk.series") for a in t.column("attrs").to_pylist()]
    assert series[1:3] == ["b", "a"]  # the args' order
    assert t.column("dur").cast(pa.int64()).to_pylist()[4] == 5000


@pytest.mark.parametrize("where", ["name", "args", "outside"])
def test_invalid_utf8_makes_the_whole_array_pass_refuse(tmp_path, monkeypatch, where):
    """The elements' text is used unchecked only after DuckDB read the array (it refuses invalid
    UTF-8 anywhere, also in keys it does not return): then the elements are parsed one by one,
    with the bytes escaped and the note in the source row."""
    bad = {"name": b'"name":"caf\xe9"', "args": b'"name":"a","args":{"k":"\xff"}',
           "outside": b'"name":"a","zz":"\xfe\xfe"'}[where]
    data = b'{"traceEvents":[{"ph":"i","ts":1,' + bad + b',"pid":1,"tid":1},{"ph":"i","ts":2,"name":"ok"}]}'
    p = _write(tmp_path, data)
    fast, slow, used = _both_paths(monkeypatch, p)
    assert used == 0  # refused
    assert fast.events.equals(slow.events)
    assert fast.sources.drop_columns(["seconds"]).equals(slow.sources.drop_columns(["seconds"]))
    assert "1 elements with invalid UTF-8" in fast.sources.column("note")[0].as_py()
    assert "\\x" in json.dumps(fast.events.to_pylist(), default=str)


def test_valid_text_is_what_the_fast_path_sees(tmp_path, monkeypatch):
    """With valid (multi-byte) UTF-8 the whole-array pass is used and its rows equal the
    per-element parse, whose text is checked."""
    data = json.dumps({"traceEvents": [
        {"ph": "i", "ts": 1, "name": "café ☕ \U0001F600", "pid": 1, "tid": 1, "zz": "ü", "args": {"ß": "€"}},
        {"ph": "X", "ts": 2, "dur": 1, "name": "ok", "pid": 1, "tid": 1}]}, ensure_ascii=False).encode()
    p = _write(tmp_path, data)
    fast, slow, used = _both_paths(monkeypatch, p)
    assert used == 1
    assert fast.events.equals(slow.events)
    assert fast.sources.drop_columns(["seconds"]).equals(slow.sources.drop_columns(["seconds"]))
    assert dict(fast.events.column("attrs")[0].as_py())["zz"] == "ü"


@pytest.mark.parametrize("form", ["object", "array", "truncated"])
def test_key_counts_per_element(tmp_path, monkeypatch, form):
    """The structure scan's count of each element's top-level keys (which tells the elements
    with keys outside the struct) equals the keys json.loads sees, whatever the nesting, the
    strings and the chunk boundaries."""
    monkeypatch.setattr(chrome, "_CHUNK", 64)
    rnd = random.Random(11)
    evs = []
    for i in range(300):
        e = {"ph": "i", "ts": i, "name": "".join(rnd.choice('ab"\\{}[],: ') for _ in range(rnd.randint(0, 12)))}
        for k in rnd.sample(["pid", "tid", "zz", "cat", "args", "deep"], rnd.randint(0, 6)):
            e[k] = {"args": {"a": {"b": [1, {"c": ":"}]}}, "deep": [{"x": 1}, {"y": {"z": 2}}]}.get(k, rnd.randint(0, 9))
        evs.append(e)
    text = json.dumps({"traceEvents": evs, "otherData": {"k": {"n": 1}}} if form == "object" else evs)
    if form == "truncated":
        text = text[: text.rindex("},") + 1]
        evs = json.loads(text + "]")
    seen = {}
    real = chrome._finish_array

    def spy(res, text_, ncolon, count):
        seen["n"] = ncolon.copy()
        return real(res, text_, ncolon, count)

    monkeypatch.setattr(chrome, "_finish_array", spy)
    monkeypatch.setattr(chrome, "_parse_elements", lambda inp, t, count, ncolon: seen.update(n=ncolon.copy())
                        or _PARSE(inp, t, count, ncolon))
    tl = tk.load(_write(tmp_path, text.encode()), format="chrome")
    assert_accounted(tl)
    assert seen["n"].tolist() == [len(e) for e in evs]


_PARSE = chrome._parse_elements


def test_escaped_quote_across_a_chunk_boundary(tmp_path, monkeypatch):
    """A backslash ending one scan chunk escapes the quote that starts the next (the chunk
    without a backslash of its own must still look at the byte before it)."""
    monkeypatch.setattr(chrome, "_CHUNK", 32)
    for pad in range(32):
        evs = [{"ph": "i", "ts": 1, "name": "p" * pad + 'q"r', "pid": 1, "tid": 1},
               {"ph": "i", "ts": 2, "name": "s,{", "pid": 1, "tid": 1}]
        p = _write(tmp_path, json.dumps(evs, separators=(",", ":")).encode(), f"t{pad}.json")
        tl = tk.load(p, format="chrome")
        assert_accounted(tl)
        assert sorted(tl.events.column("name").to_pylist()) == sorted(e["name"] for e in evs), pad
        assert tl.rejects.num_rows == 0, pad
