"""Write TRUTH.json for a recording made by record.sh (called by it; re-runnable on a kept work dir).

    python3 make_truth.py <work>/out <recording folder>
    python3 make_truth.py --derive <recording folder>   (only the sections derived from the
                                                         committed files: "kernel_clocks")

What it writes is what is known for certain, from sources independent of tracekit:
* host name, kernel, /proc/stat btime and /proc/uptime at the start and end of the recording;
* the rename (the "deploy"): clock_gettime(REALTIME) just before and just after ``mv``;
* the job's own ledger (pid, run label, ``date +%s.%N`` at its start) for every run that ran;
* from the strace file (ptrace sees every execve and exit of cron's tree): every execve with
  its pid, path, result and wall-clock start/duration, every exit with its status;
* clock calibration: ftrace ``trace_marker`` writes bracketed by clock_gettime(REALTIME), so
  the trace clock ("local", the same sched_clock perf uses) maps to UTC as
  ``utc = trace_ts + boot_epoch_ns`` within ± ``half_ns`` (the bracket plus the trace's 1 µs
  print precision);
* ``kernel_clocks`` (derived from the committed perf.txt, ftrace.txt, journal.json and the
  calibration): perf's clock and ftrace's "local" trace clock are different clocks; the UTC
  epoch of each, and of journald's CLOCK_MONOTONIC.
"""

import json
import re
import statistics
import sys
from pathlib import Path


def ns(s: str) -> int:
    a, b = s.split(".")
    return int(a) * 10**9 + int(b.ljust(9, "0"))


def kernel_events(path: Path, perf: bool) -> dict:
    """(exec|exit, pid) -> [times] from perf script (-F +pid) or ftrace (record-tgid) text."""
    pat = (r"\s(\d+)/\d+\s+\[\d+\]\s+(\d+\.\d+): sched:sched_process_(exec|exit)" if perf
           else r"\(\s*(\d+)\)\s+\[\d+\]\s+\S+\s+(\d+\.\d+): sched_process_(exec|exit)")
    out: dict = {}
    for line in path.read_text().splitlines():
        m = re.search(pat, line)
        if m:
            out.setdefault((m.group(3), int(m.group(1))), []).append(ns(m.group(2)))
    return out


def derive(out: Path) -> None:
    """Add "kernel_clocks" to TRUTH.json from the committed files."""
    truth = json.loads((out / "TRUTH.json").read_text())
    cal = truth["trace_clock_calibration"]
    cal["what"] = ("utc_ns = ftrace_ns + boot_epoch_ns for ftrace's trace clock 'local' (raw sched_clock; "
                   "NOT perf's clock, see kernel_clocks) within +-half_ns; from trace_marker writes "
                   "bracketed by clock_gettime(REALTIME)")
    p, f = kernel_events(out / "perf.txt", True), kernel_events(out / "ftrace.txt", False)
    d = [p[k][0] - f[k][0] for k in p if k in f and len(p[k]) == 1 and len(f[k]) == 1]
    half_f = max(cal["start"]["half_ns"], cal["end"]["half_ns"]) + abs(cal["change_over_recording_ns"])
    mid = (max(d) + min(d)) // 2
    j = [json.loads(x) for x in (out / "journal.json").read_text().splitlines()]
    mono = [int(r["__REALTIME_TIMESTAMP"]) * 1000 - int(r["__MONOTONIC_TIMESTAMP"]) * 1000 for r in j]
    truth["kernel_clocks"] = {
        "what": "UTC = clock reading + epoch_ns (+- half_ns). perf (default clock = local_clock), "
                "ftrace (trace_clock 'local' = sched_clock) and journald's __MONOTONIC_TIMESTAMP "
                "(CLOCK_MONOTONIC) are three different clocks on this machine",
        "perf_minus_ftrace_ns": {"n_events": len(d), "min": min(d), "max": max(d)},
        "ftrace_epoch_ns": cal["boot_epoch_ns_start"], "ftrace_half_ns": half_f,
        "perf_epoch_ns": cal["boot_epoch_ns_start"] - mid,
        "perf_half_ns": half_f + (max(d) - min(d)) // 2 + 1000,
        "journald_monotonic_epoch_ns": {"min": min(mono), "max": max(mono), "n": len(mono)},
        "perf_minus_monotonic_ns": min(mono) - (cal["boot_epoch_ns_start"] - mid),
        "ftrace_minus_monotonic_ns": min(mono) - cal["boot_epoch_ns_start"],
    }
    (out / "TRUTH.json").write_text(json.dumps(truth, indent=1) + "\n")
    print("kernel_clocks:", {k: v for k, v in truth["kernel_clocks"].items() if k != "what"})


if sys.argv[1] == "--derive":
    derive(Path(sys.argv[2]))
    sys.exit(0)

work, out = Path(sys.argv[1]), Path(sys.argv[2])

host = {}
for line in (work / "host.txt").read_text().splitlines():
    if "=" in line:
        k, v = line.split("=", 1)
        host[k] = v
    elif line.startswith(("btime", "end_btime")):
        k, v = line.split()
        host[k] = v

rename = json.loads((work / "rename.json").read_text())
ledger = []
for line in (work / "ledger.txt").read_text().splitlines():
    pid, run, now = line.split()
    ledger.append({"pid": int(pid), "run": run, "date_utc_s": now})

# strace: "PID SECS.USEC execve("path", ...) = 0 <0.000123>"; exits "PID SECS.USEC +++ exited with N +++"
EXEC = re.compile(r'^(\d+)\s+(\d+\.\d+) execve\("([^"]*)", \[(.*?)\].*\) = (-?\d+)(?: (\w+))?.*?<(\d+\.\d+)>$')
EXEC_UNF = re.compile(r'^(\d+)\s+(\d+\.\d+) execve\("([^"]*)", \[(.*?)\].*<unfinished \.\.\.>$')
RESUMED = re.compile(r'^(\d+)\s+(\d+\.\d+) <\.\.\. execve resumed>.*\) = (-?\d+)(?: (\w+))?.*?<(\d+\.\d+)>$')
EXIT = re.compile(r"^(\d+)\s+(\d+\.\d+) \+\+\+ (exited with (-?\d+)|killed by (\S+).*) \+\+\+$")


execs, exits, pending = [], [], {}
for line in (out / "strace.txt").read_text().splitlines():
    m = EXEC.match(line)
    if m:
        pid, t, path, argv, rv, err, dur = m.groups()
        execs.append({"pid": int(pid), "path": path, "argv": argv, "ok": rv == "0", "errno": err,
                      "start_ns": ns(t), "dur_ns": ns(dur)})
        continue
    m = EXEC_UNF.match(line)
    if m:
        pending[int(m.group(1))] = m.groups()
        continue
    m = RESUMED.match(line)
    if m and int(m.group(1)) in pending:
        pid, t, path, argv = pending.pop(int(m.group(1)))
        rv, err, dur = m.group(3), m.group(4), m.group(5)
        execs.append({"pid": int(pid), "path": path, "argv": argv, "ok": rv == "0", "errno": err,
                      "start_ns": ns(t), "dur_ns": ns(dur)})
        continue
    m = EXIT.match(line)
    if m:
        exits.append({"pid": int(m.group(1)), "t_ns": ns(m.group(2)),
                      "status": int(m.group(4)) if m.group(4) is not None else None, "signal": m.group(5)})

# calibration: ftrace marker lines "... 1234.567890: tracing_mark_write: tk-calib start 0 realtime_ns=..."
calib = [json.loads(x) for x in (work / "calib.jsonl").read_text().splitlines()]
MARK = re.compile(r"\s(\d+\.\d+): tracing_mark_write: tk-calib (\w+) (\d+) realtime_ns=(\d+)")
marks = {}
for line in (out / "ftrace.txt").read_text().splitlines():
    m = MARK.search(line)
    if m:
        marks[(m.group(2), int(m.group(3)))] = ns(m.group(1))
pairs = []
for c in calib:
    tr = marks.get((c["label"], c["i"]))
    if tr is None:
        continue
    mid = (c["realtime_before_ns"] + c["realtime_after_ns"]) // 2
    half = (c["realtime_after_ns"] - c["realtime_before_ns"]) // 2 + 1000
    pairs.append({**c, "trace_ns": tr, "boot_epoch_ns": mid - tr, "half_ns": half,
                  "monotonic_minus_trace_ns": c["monotonic_ns"] - tr,
                  "boottime_minus_trace_ns": c["boottime_ns"] - tr})

start = [p for p in pairs if p["label"] == "start"]
end = [p for p in pairs if p["label"] == "end"]
best = lambda ps: min(ps, key=lambda p: p["half_ns"]) if ps else None  # noqa: E731
b0, b1 = best(start), best(end)
truth = {
    "host": host.get("host"),
    "uname": host.get("uname"),
    "proc_stat_btime_s": int(host["btime"]),
    "proc_uptime_at_start": host.get("uptime"),
    "realtime_ns_at_start": int(host["realtime_ns"]),
    "proc_stat_btime_s_at_end": int(host["end_btime"]),
    "proc_uptime_at_end": host.get("end_uptime"),
    "realtime_ns_at_end": int(host["end_realtime_ns"]),
    # record.sh's rename.json holds the times only; record_demo.sh's also names the paths
    "rename": {"from": "/tmp/tkrec/app/bin/rotate-report.sh", "to": "/tmp/tkrec/app/bin/rotate-report-v2.sh",
               **rename},
    "ledger": ledger,
    "trace_clock_calibration": {
        "what": "(set by derive())",
        "start": b0, "end": b1,
        "boot_epoch_ns_start": b0 and b0["boot_epoch_ns"],
        "boot_epoch_ns_end": b1 and b1["boot_epoch_ns"],
        "change_over_recording_ns": (b1["boot_epoch_ns"] - b0["boot_epoch_ns"]) if b0 and b1 else None,
        "median_monotonic_minus_trace_ns": statistics.median(p["monotonic_minus_trace_ns"] for p in pairs)
        if pairs else None,
        "median_boottime_minus_trace_ns": statistics.median(p["boottime_minus_trace_ns"] for p in pairs)
        if pairs else None,
        "all": pairs,
    },
    "execs": execs,
    "exits": exits,
    "exit_127": [e["pid"] for e in exits if e["status"] == 127],
}
(out / "TRUTH.json").write_text(json.dumps(truth, indent=1) + "\n")
print("TRUTH.json:", len(execs), "execve,", len(exits), "exits,", len(truth["exit_127"]), "exit 127,",
      len(ledger), "ledger runs,", len(pairs), "calibration pairs")
derive(out)
