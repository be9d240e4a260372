"""The span readers' column helpers (``tracekit.readers._spans``) against their plain definitions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tracekit.readers import _spans
from tracekit.readers._spans import Part, _encode, _ranges, build_map, lower_ids


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("scan", [1 << 20, 7])  # the arange added in one step, or in many
def test_ranges_is_repeat_plus_arange(seed, scan, monkeypatch):
    monkeypatch.setattr(_spans, "_SCAN", scan)
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 200))
    lens = rng.integers(0, 5, k).astype(np.int32)
    lens[rng.random(k) < 0.3] = 0  # empty segments, also at either end
    shift = rng.integers(-1000, 1000, k).astype(np.int32)
    total = int(lens.sum())
    want = np.repeat(shift, lens) + np.arange(total, dtype=np.int32)
    got = _ranges(shift, lens, total)
    assert got.dtype == np.int32
    assert np.array_equal(got, want)


def test_ranges_all_empty():
    assert len(_ranges(np.array([3, 4], np.int32), np.array([0, 0], np.int32), 0)) == 0


@pytest.mark.parametrize("ids", [
    pa.array(["AbC", "", None, "abc"]),
    pa.chunked_array([pa.array(["ab", ""]), pa.array([None, "CD"])]),
    pa.array(["x", "", "Y", "z"]).slice(1),
    pa.array(["", None]),
    pa.array(["0af3", "ffff"]),
    pa.array(["ÄB", "é"]),
    pa.chunked_array([], pa.string()),
])
def test_lower_ids(ids):
    want = [None if v is None or v == "" else "".join(c.lower() if "A" <= c <= "Z" else c for c in v)
            for v in ids.to_pylist()]
    got = lower_ids(ids)
    assert isinstance(got, pa.Array)  # one array, never chunked
    assert got.type == pa.string()
    assert got.to_pylist() == want


def test_encode_chunked_keys():
    keys = pa.chunked_array([pa.array(["a", "b"]), pa.array(["c", "a", "b"])])
    d, idx = _encode(keys)
    assert idx.dtype == np.int32
    assert [d[int(i)].as_py() for i in idx] == ["a", "b", "c", "a", "b"]


def test_build_map_chunked_keys_and_rows():
    attrs = Part(np.array([0, 1, 1, 3]), pa.chunked_array([pa.array(["k"]), pa.array(["a", "b"])]),
                 pa.array(["v", "w", "x"]))
    one = Part(np.array([0, 1, 2, 3]), "z", pa.array(["1", "2", None]), np.array([2, -1, 0]))
    got = build_map(3, [attrs, one]).to_pylist()
    assert got == [[("k", "v"), ("z", "null")], [], [("a", "w"), ("b", "x"), ("z", "1")]]


def test_small_pages_restores_the_process_setting():
    if _spans._PRCTL is None:  # not Linux: a no-op
        with _spans.small_pages():
            pass
        return
    get = lambda: _spans._PRCTL(_spans._PR_GET_THP_DISABLE, 0, 0, 0, 0)  # noqa: E731
    before = get()
    with _spans.small_pages():
        assert get() == 1
        with _spans.small_pages():  # nested (or concurrent) reads
            assert get() == 1
        assert get() == 1  # the outer read still runs
    assert get() == before
    # a process that had huge pages off keeps them off
    _spans._PRCTL(_spans._PR_SET_THP_DISABLE, 1, 0, 0, 0)
    try:
        with _spans.small_pages():
            assert get() == 1
        assert get() == 1
    finally:
        _spans._PRCTL(_spans._PR_SET_THP_DISABLE, before, 0, 0, 0)
