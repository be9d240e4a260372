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
