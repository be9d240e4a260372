"""The ``tracekit`` command line: ``info``, ``convert``, ``ingest`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import TracekitError


def _fmt_table(rows: list[dict], cols: list[str]) -> str:
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) if rows else len(c) for c in cols}
    out = ["  ".join(c.ljust(widths[c]) for c in cols)]
    out.append("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        out.append("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols))
    return "\n".join(out)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    s = str(v)
    return s if len(s) <= 60 else s[:57] + "..."


def cmd_info(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import load
    from ._time import fmt_ns

    tl = load(args.paths if len(args.paths) > 1 else args.paths[0], format=args.format)
    srcs = tl.sources.to_pylist()
    for r in srcs:
        for k in ("ts_min", "ts_max"):
            if r[k] is not None:
                r[k] = fmt_ns(int(pd.Timestamp(r[k]).value))
    print(_fmt_table(srcs, ["source", "format", "status", "clock", "records", "emitted", "merged",
                            "metadata", "rejected", "rows", "ts_min", "ts_max", "note"]))
    print()
    n_rej = tl.rejects.num_rows
    print(f"{len(tl):,} events, {n_rej:,} rejects")
    if n_rej:
        by = tl.sql("select source, reason, count(*) n, min(line) first_line from rejects group by 1, 2 order by 1, 3 desc")
        print(_fmt_table(by.to_pylist(), ["source", "reason", "n", "first_line"]))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Write the canonical event table as Parquet; large syslog/strace files are read and
    written block by block (bounded memory, same table; see ``tracekit._stream``)."""
    from ._stream import BLOCK_BYTES, convert

    out = Path(args.output)
    block = int(args.block_mb * (1 << 20)) if args.block_mb else BLOCK_BYTES
    info = convert(args.paths if len(args.paths) > 1 else args.paths[0], out, format=args.format,
                   block_bytes=block)
    how = " (streamed in blocks)" if info["streamed"] else ""
    print(f"wrote {info['events']:,} events to {out}{how} ({info['rejects']:,} rejects not included)")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """``tracekit ingest incident/ -o incident.tkstore [--jobs 8] [--scheduler tcp://host:8786]``."""
    from . import store

    host = None
    if args.host_dirs:
        host = "{dir}"
    elif args.host:
        host = args.host
    res = store.ingest(args.paths if len(args.paths) > 1 else args.paths[0], args.output, jobs=args.jobs,
                       scheduler=args.scheduler, progress=not args.quiet, format=args.format, host=host)
    print(f"{res.store}: {res.events:,} events; {len(res.written)} sources written, {len(res.unchanged)} unchanged, "
          f"{len(res.skipped)} skipped, {len(res.errors)} failed ({res.seconds:.1f} s)")
    for name, msg in res.errors:
        print(f"  failed: {name}: {msg}", file=sys.stderr)
    return 1 if res.errors and not (res.written or res.unchanged) else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from . import demo

    return demo.run(args.folder, args.output)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tracekit`` command."""
    p = argparse.ArgumentParser(prog="tracekit", description="Trace forensics: read, align and explain dumps.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pi = sub.add_parser("info", help="print the sources table and a reject summary")
    pi.add_argument("paths", nargs="+")
    pi.add_argument("--format", default=None, help="force a reader (see tracekit formats)")
    pi.set_defaults(func=cmd_info)
    pc_ = sub.add_parser("convert", help="write the canonical event table as Parquet")
    pc_.add_argument("paths", nargs="+")
    pc_.add_argument("-o", "--output", required=True)
    pc_.add_argument("--format", default=None)
    pc_.add_argument("--block-mb", type=float, default=None,
                     help="MiB of input per block for the readers that stream (syslog, strace; default 1)")
    pc_.set_defaults(func=cmd_convert)
    pg = sub.add_parser("ingest", help="write a Parquet store (tk.open it; SQL with DuckDB, Dask over it)")
    pg.add_argument("paths", nargs="+")
    pg.add_argument("-o", "--output", required=True, help="the store folder, e.g. incident.tkstore")
    pg.add_argument("--jobs", type=int, default=None, help="worker processes (default: CPU count)")
    pg.add_argument("--scheduler", default=None, help="a Dask scheduler address, e.g. tcp://host:8786")
    pg.add_argument("--format", default=None, help="force a reader (see tracekit formats)")
    pg.add_argument("--host", default=None, help="host name for sources whose reader found none")
    pg.add_argument("--host-dirs", action="store_true", help="host = each source's first folder (node-a/...)")
    pg.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    pg.set_defaults(func=cmd_ingest)
    pf = sub.add_parser("formats", help="list the registered readers")
    pf.set_defaults(func=lambda a: print(_fmt_table(__import__("tracekit").formats().to_pylist(), ["name", "description"])) or 0)
    from ._cli_report import add_parser as _add_report

    _add_report(sub)
    pd_ = sub.add_parser("demo", help="run the postmortem on a demo incident folder")
    pd_.add_argument("folder")
    pd_.add_argument("-o", "--output", default="out")
    pd_.set_defaults(func=cmd_demo)
    args = p.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TracekitError as e:
        print(f"tracekit: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
