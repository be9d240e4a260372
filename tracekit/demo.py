"""``make demo``: the postmortem on the demo incident, end to end.

Loads every dump, aligns the clocks (printing the estimates next to the truth the dataset
ships in TRUTH.json), finds the transitions and the deploy, writes ``out/report.html`` and
executes ``notebooks/postmortem.ipynb`` into ``out/postmortem.ipynb``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ._time import fmt_duration


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


def run(folder: str, out: str, full: bool = True) -> int:
    """Load ``folder``, align it, print what was found next to the truth, and (``full``) write
    the report and the executed notebook; return an exit code."""
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
        shown = [{**r, "estimate": fmt_duration(r.get("estimate")), "truth": fmt_duration(r.get("truth")),
                  "error": fmt_duration(r.get("error")), "interval_width": fmt_duration(r.get("interval_width"))}
                 for r in rows]
        print(_fmt_table(shown, ["source", "status", "estimate", "truth", "error", "interval_width", "bound"]))
        (outdir / "clocks.json").write_text(json.dumps(rows, indent=1, default=str))
    if tl.rejects.num_rows:
        print(f"\n{tl.rejects.num_rows} rejects:")
        print(_fmt_table(tl.rejects.slice(0, 20).to_pylist(), ["source", "line", "reason"]))
    tl.sources.to_pandas().to_csv(outdir / "sources.csv", index=False)
    if not full:
        print(f"\nwrote {outdir}/sources.csv and {outdir}/clocks.json")
        return 0

    from .report import report

    tl2 = al.timeline
    tr = tl2.transitions(exclude=["state-column"])
    print(f"\n{len(tr)} transitions: " + ", ".join(f"{r['rule']} {r['n']}" for r in tr.counts().to_dict("records")))
    dep = tr.deploys()
    if len(dep):
        d = dep.iloc[0]
        print(f"deploy found at {d['start']} from: {', '.join(d['kinds'])}")
    per = tl2.periodic(after=dep.iloc[0]["start"] if len(dep) else None)
    if len(per) and "n_after" in per:
        cron = per[(per["signature"] == "cron.cmd") & per["entity"].notna()]
        for r in cron.head(3).to_dict("records"):
            print(f"still firing after the deploy: {r['entity']} every {r['period_s']:.0f} s, {r['n_after']} times")
    rep = report(tl2, transitions=tr, alignment=al, title=f"Postmortem: {path.name}", path=outdir / "report.html",
                 window="2s", notes=path / "FINDINGS.md" if (path / "FINDINGS.md").exists() else None)
    print(f"\nreport:   {rep.resolve()}")
    nb_out = _run_notebook(path, outdir)
    if nb_out:
        print(f"notebook: {nb_out.resolve()} (executed)")
    print("open it:  .venv/bin/jupyter lab notebooks/postmortem.ipynb")
    return 0


def _run_notebook(path: Path, outdir: Path) -> Path | None:
    """Execute notebooks/postmortem.ipynb on ``path`` into ``outdir`` (nbclient, a real kernel)."""
    nb_path = Path(__file__).resolve().parents[1] / "notebooks" / "postmortem.ipynb"
    if not nb_path.exists():
        return None
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError:
        print("(notebook not executed: install the 'report' extra for nbclient)")
        return None
    nb = nbformat.read(nb_path, as_version=4)
    params = nb.cells[1].source
    params = params.replace('dumps = "../data/demo-incident"', f"dumps = {str(path.resolve())!r}")
    params = params.replace('out = "../out"', f"out = {str(outdir.resolve())!r}")
    nb.cells[1].source = params
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    dst = outdir / "postmortem.ipynb"
    nbformat.write(nb, dst)
    return dst
