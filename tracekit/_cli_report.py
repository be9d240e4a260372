"""``tracekit report``: the whole postmortem from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the incident report (HTML, optionally PDF)")
    p.add_argument("paths", nargs="+", help="dump files, folders or archives")
    p.add_argument("-o", "--output", default="report.html")
    p.add_argument("--pdf", default=None, help="also print it to this PDF (needs chromium)")
    p.add_argument("--window", default="5s", help="± around each transition (default 5s)")
    p.add_argument("--notes", default=None, help="a Markdown file with the analyst's findings")
    p.add_argument("--title", default=None)
    p.add_argument("--select", default=None, help="comma-separated transition indices to give a section")
    p.add_argument("--focus", action="append", default=[], help="entity glob to rank first (repeatable)")
    p.add_argument("--reference", default=None, help="source selector whose clock to trust (e.g. host:node-a)")
    p.add_argument("--host", default=None, help="machine name for sources without one; '{dir}' = first folder")
    p.add_argument("--no-redact", action="store_true", help="do not mask tokens, keys and passwords")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import load
    from .report import report

    paths = args.paths if len(args.paths) > 1 else args.paths[0]
    tl = load(paths, host=args.host)
    al = tl.align(reference=args.reference)
    tl2 = al.timeline
    tr = tl2.transitions(exclude=["state-column"])
    select = [int(x) for x in args.select.split(",")] if args.select else None
    title = args.title or f"Postmortem: {Path(str(args.paths[0])).name}"
    out = report(tl2, transitions=tr, alignment=al, title=title, notes=args.notes, path=args.output,
                 window=args.window, select=select, focus=args.focus, redact=not args.no_redact, pdf=args.pdf)
    print(f"wrote {out}" + (f" and {args.pdf}" if args.pdf else ""))
    return 0
