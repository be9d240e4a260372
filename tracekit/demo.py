"""``make demo``: the postmortem on a demo incident (grows with each capability).

Loads every dump, aligns the clocks, prints the sources table and the clock estimates next to
the truth the dataset ships (TRUTH.json), and writes them to ``out/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def _fmt_ns(ns: int | None) -> str:
    if ns is None:
        return "—"
    a = abs(ns)
    sign = "-" if ns < 0 else "+"
    if a >= 10**9:
        return f"{sign}{a / 1e9:,.6f} s"
    return f"{sign}{a / 1e6:,.3f} ms"


def clock_report(al, truth: dict) -> list[dict]:
    """Per source: the estimated correction at the dataset's mid time next to the true one."""
    rows = []
    srcs = {r["source"]: r for r in al.timeline.sources.to_pylist()}
    for name, t in truth.get("sources", {}).items():
        r = srcs.get(name)
        if r is None or "stamp_at_mid_ns" not in t:
            rows.append({"source": name, "status": "not loaded"})
            continue
        stamp = int(t["stamp_at_mid_ns"])
        clk = [c for c in al.clocks.to_pylist() if name in (c["sources"] or "").split(", ")]
        c = clk[0] if clk else {}
        if r["aligned"] and r["offset"] is not None:
            off = int(pd.Timedelta(r["offset"]).value)
            est = off + round((r["drift_ppm"] or 0.0) * 1e-6 * (stamp - (r["t0"] or 0)))
        else:
            est = None
        lo = c.get("offset_lo")
        hi = c.get("offset_hi")
        width = (pd.Timedelta(hi).value - pd.Timedelta(lo).value) if lo is not None and hi is not None else None
        true = int(t["correction_at_mid_ns"])
        rows.append({"source": name, "status": c.get("status", "unaligned" if est is None else "as read"),
                     "estimate": est, "truth": true, "error": None if est is None else est - true,
                     "interval_width": width, "bound": c.get("bound")})
    return rows


def hosts_by_folder(path: Path) -> dict[str, str]:
    """``{"node-a/*": "node-a", ...}`` for a dump folder kept one sub-folder per machine (as
    the demo incident and must-gather/sosreport bundles are)."""
    return {f"{d.name}/*": d.name for d in sorted(path.iterdir()) if d.is_dir()}


def run(folder: str, out: str) -> int:
    """Load ``folder``, align it, print what was found next to the truth; return an exit code."""
    from . import load
    from .cli import _fmt_table

    path = Path(folder)
    if not path.exists():
        print(f"tracekit demo: {folder} does not exist")
        return 2
    tl = load(path, host=hosts_by_folder(path))
    print(tl)
    print()
    truth_file = path / "TRUTH.json"
    reference = None
    if truth_file.exists():  # the demo's control-plane node keeps NTP time: align against it
        reference = "host:" + json.loads(truth_file.read_text())["names"]["hosts"][0]
    al = tl.align(reference=reference)
    print(al)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    if truth_file.exists():
        truth = json.loads(truth_file.read_text())
        rows = clock_report(al, truth)
        print("\nClock corrections at", next(iter(truth["sources"].values())).get("mid", "?"), "vs the truth:")
        shown = [{**r, "estimate": _fmt_ns(r.get("estimate")), "truth": _fmt_ns(r.get("truth")),
                  "error": _fmt_ns(r.get("error")), "interval_width": _fmt_ns(r.get("interval_width"))}
                 for r in rows]
        print(_fmt_table(shown, ["source", "status", "estimate", "truth", "error", "interval_width", "bound"]))
        (outdir / "clocks.json").write_text(json.dumps(rows, indent=1, default=str))
    if tl.rejects.num_rows:
        print(f"\n{tl.rejects.num_rows} rejects:")
        print(_fmt_table(tl.rejects.slice(0, 20).to_pylist(), ["source", "line", "reason"]))
    tl.sources.to_pandas().to_csv(outdir / "sources.csv", index=False)
    print(f"\nwrote {outdir}/sources.csv and {outdir}/clocks.json")
    return 0
