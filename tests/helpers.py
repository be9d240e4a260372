"""Assertions shared by the reader tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import tracekit as tk


def assert_accounted(tl: tk.Timeline) -> None:
    """Every loaded source's records = emitted + merged + metadata + rejected, and the rejects
    table holds exactly the rejected count per source."""
    for r in tl.sources.to_pylist():
        if r["status"] != "loaded":
            continue
        assert r["records"] == r["emitted"] + r["merged"] + r["metadata"] + r["rejected"], r
        n_rej = sum(1 for s in tl.rejects.column("source").to_pylist() if s == r["source"])
        assert n_rej == r["rejected"], (r["source"], n_rej, r["rejected"])
        assert r["rows"] == sum(1 for s in tl.events.column("source").to_pylist() if s == r["source"])


def load_neutral(src: Path, tmp_path: Path, **kw) -> tk.Timeline:
    """Load a corpus file copied to a neutral name (no extension hint), as format detection
    must work from content alone."""
    dst = tmp_path / "input.bin"
    shutil.copyfile(src, dst)
    return tk.load(dst, **kw)


def source_row(tl: tk.Timeline) -> dict:
    (row,) = tl.sources.to_pylist()
    return row


def counts_records_emitted_rejected_rows(tl: tk.Timeline) -> tuple[int, int, int, int]:
    s = source_row(tl)
    return s["records"], s["emitted"], s["rejected"], s["rows"]


def rows_matching(tl: tk.Timeline, **match) -> list[dict]:
    return [r for r in tl.events.to_pylist() if all(r[k] == v for k, v in match.items())]


def counts_all(tl: tk.Timeline) -> tuple:
    r = tl.sources.to_pylist()[0]
    assert r["status"] == "loaded", r
    return (r["format"], r["records"], r["rows"], r["merged"], r["metadata"], r["rejected"])


def only_source_row(tl: tk.Timeline) -> dict:
    return tl.sources.to_pylist()[0]


def single_source_row(tl: tk.Timeline) -> dict:
    rows = tl.sources.to_pylist()
    assert len(rows) == 1
    return rows[0]


def the_source_row(tl: tk.Timeline) -> dict:
    (row,) = [r for r in tl.sources.to_pylist() if r["status"] == "loaded"]
    return row


def events_with_attr_dicts(tl: tk.Timeline) -> list[dict]:
    out = tl.events.to_pylist()
    for r in out:
        r["attrs"] = dict(r["attrs"])
    return out
