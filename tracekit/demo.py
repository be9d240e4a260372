"""``make demo``: load the demo incident and print what tracekit sees (grows with each issue)."""

from __future__ import annotations

from pathlib import Path


def run(folder: str, out: str) -> int:
    """Load ``folder``, print the sources table and rejects; return a process exit code."""
    from . import load
    from .cli import _fmt_table

    path = Path(folder)
    if not path.exists():
        print(f"tracekit demo: {folder} does not exist")
        return 2
    tl = load(path)
    print(tl)
    Path(out).mkdir(parents=True, exist_ok=True)
    if tl.rejects.num_rows:
        print(_fmt_table(tl.rejects.slice(0, 20).to_pylist(), ["source", "line", "reason"]))
    return 0
