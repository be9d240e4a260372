#!/usr/bin/env python3
"""Peak memory of ``tracekit convert`` on workloads of different sizes (issue 4: a 4M-event
convert must peak at ≤ 1.3× the memory of the 1M-event one, and ≤ 3× its input).

Each conversion runs in a fresh process that reports its own peak RSS (``ru_maxrss``,
interpreter and imports included) and time. Workloads come from ``gen_workloads.py``
(``/tmp/tk-bench/1m``, ``/tmp/tk-bench/4m``: ``--n 4000000 --formats syslog,strace``).

Example::

    .venv/bin/python benchmarks/convert_mem.py --sizes 1m,4m --formats syslog,strace
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys, time
from tracekit.cli import main
t = time.perf_counter()
rc = main(["convert", *sys.argv[1:]])
print("RESULT " + json.dumps({"rc": rc, "seconds": time.perf_counter() - t,
      "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""
FILES = {"syslog": "syslog.log", "strace": "strace.txt"}


def run(path: Path, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.parquet"
        cp = subprocess.run([sys.executable, "-c", CHILD, str(path), "-o", str(out), *extra],
                            capture_output=True, text=True, cwd=REPO)
        line = next((ln for ln in cp.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"convert failed on {path}: {cp.stderr.strip()[-500:]}")
        res = json.loads(line[7:])
        res["streamed"] = "streamed in blocks" in cp.stdout
        return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1m,4m", help="workload folders under --root (default 1m,4m)")
    ap.add_argument("--formats", default="syslog,strace")
    ap.add_argument("--root", type=Path, default=Path("/tmp/tk-bench"))
    ap.add_argument("--block-mb", default=None, help="passed to tracekit convert")
    a = ap.parse_args()
    extra = ["--block-mb", a.block_mb] if a.block_mb else []
    sizes = a.sizes.split(",")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| format | workload | input | peak RSS | RSS / input | time | vs " + sizes[0] + " |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for fmt in a.formats.split(","):
        first = None
        for size in sizes:
            path = a.root / size / FILES[fmt]
            r = run(path, extra)
            nbytes = path.stat().st_size
            first = first or r["rss"]
            how = "" if r["streamed"] else " (one piece)"
            print(f"| {fmt} | {size}{how} | {nbytes / 1e6:.0f} MB | {r['rss'] / 1e6:.0f} MB | "
                  f"{r['rss'] / nbytes:.2f}× | {r['seconds']:.1f} s | {r['rss'] / first:.2f}× |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
