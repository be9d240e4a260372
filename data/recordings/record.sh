#!/bin/bash
# Record one small real incident on this machine, seen by five tools at once.
#
#   sudo data/recordings/record.sh [NAME]        (default NAME: cron-rename)
#
# The incident ("the cron still fires"): cron runs a report job three times a minute
# (second 0, 15 and 30 of every minute) that execs /tmp/tkrec/app/bin/rotate-report.sh.
# Part-way through, a "deploy" renames that script to rotate-report-v2.sh and logs nothing;
# every later run fails with exit status 127 ("not found").
#
# Captured at the same time:
#   strace -f -ttt -T -e trace=%process,%net,write,rename
#                         of the cron daemon and everything it forks        (wall clock)
#   perf record/script    sched:sched_process_exec/exit of cron's process tree (perf clock = boot)
#   ftrace (tracefs)      the same two events, pid-filtered to cron's tree     (trace clock "local")
#   rsyslog               syslog file (RSYSLOG_FileFormat) with cron's CRON lines and the job's
#                         `logger` lines                                      (wall clock)
#   journald              the job's messages, `journalctl -o json` (realtime + monotonic pairs)
# and writes TRUTH.json (pids, exec'd files, exit codes, the rename time, boot time, clock
# calibration markers) next to them in data/recordings/NAME/.
#
# Nothing under /etc is written: cron and journald run in a private mount namespace
# (`unshare -m`) whose bind mounts replace /etc/crontab, /etc/cron.d, the cron spool and
# /etc/systemd/journald.conf only inside it, with a private tmpfs on /run (journald's sockets
# and journal, cron's pidfile); rsyslogd reads
# its config from the work folder (it creates /dev/log while it runs and removes it on exit).
# The perf/ftrace filters are tool options (perf record -p <cron pid> with inheritance to
# children, tracefs set_event_pid + options/event-fork in a private tracefs instance): no
# output line is post-filtered except journald's, which is selected by journalctl's own
# match SYSLOG_IDENTIFIER=tkjob.
#
# Needs root, strace, perf (linux-perf), cron, rsyslog, systemd (journald), python3.
# Runs ~2 minutes (it first waits for second 45 of a minute). Re-runnable: the work folder
# /tmp/tkrec is recreated and removed at the end (KEEP_WORK=1 keeps it).
#
# Another scenario reuses everything but the job, its schedule and the incident: a script that
# sets SCENARIO_NAME, SCENARIO_WORK, SCENARIO_INSTANCE, JOURNAL_IDENT and NS_HOSTNAME (a UTS
# namespace hostname for cron, journald and rsyslogd), defines write_job, ns_extra (lines added
# to the namespace's set-up) and incident, then sources this file (see record_demo.sh).
set -euo pipefail

NAME=${1:-${SCENARIO_NAME:-cron-rename}}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/$NAME
W=${WORK:-${SCENARIO_WORK:-/tmp/tkrec}}
TR=/sys/kernel/tracing
INST=$TR/instances/${SCENARIO_INSTANCE:-tkrec}
JOURNAL_IDENT=${JOURNAL_IDENT:-tkjob}
NS_HOSTNAME=${NS_HOSTNAME:-}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in strace perf rsyslogd python3 logger journalctl; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -x /usr/sbin/cron ] && [ -x /lib/systemd/systemd-journald ] || { echo "missing cron or journald" >&2; exit 1; }
[ -e /dev/log ] && { echo "/dev/log exists: another syslog daemon runs; stop it first" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$W"/{app/bin,cron/cron.d,cron/crontabs,journal/varlog,rsyslog-work,out}
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.json "$OUT"/*.log

# ---------------------------------------------------------------- the job and its cron.d entry
declare -F write_job >/dev/null || write_job() {
cat > "$W/app/bin/rotate-report.sh" <<'EOF'
#!/bin/sh
# the report job: one line to syslog, one record to journald, one report file
run=$1
now=$(date -u +%s.%N)
logger -t tkjob -i "report run=$run start now=$now"
printf 'MESSAGE=report run=%s wrote /tmp/tkrec/app/report.txt\nSYSLOG_IDENTIFIER=tkjob\nPRIORITY=6\nTK_RUN=%s\nTK_PID=%s\n' "$run" "$run" "$$" | logger --journald
cat /proc/loadavg > /tmp/tkrec/app/report.txt
echo "$$ $run $now" >> /tmp/tkrec/out/ledger.txt
exit 0
EOF
chmod 755 "$W/app/bin/rotate-report.sh"
cat > "$W/cron/cron.d/tkjob" <<'EOF'
MAILTO=""
* * * * * root	/tmp/tkrec/app/bin/rotate-report.sh s00
* * * * * root	sleep 15; /tmp/tkrec/app/bin/rotate-report.sh s15
* * * * * root	sleep 30; /tmp/tkrec/app/bin/rotate-report.sh s30
EOF
}
write_job

# ---------------------------------------------------------------- cron (own crontab only)
cat > "$W/cron/crontab" <<'EOF'
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
EOF
chmod 755 "$W/cron/cron.d"; chmod 644 "$W/cron/crontab" "$W/cron/cron.d"/*
chown root:crontab "$W/cron/crontabs"; chmod 1730 "$W/cron/crontabs"

# ---------------------------------------------------------------- journald config
cat > "$W/journal/journald.conf" <<'EOF'
[Journal]
Storage=volatile
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
EOF

# ---------------------------------------------------------------- rsyslog
cat > "$W/rsyslog.conf" <<EOF
global(workDirectory="$W/rsyslog-work")
module(load="imuxsock")   # system socket /dev/log
*.* action(type="omfile" file="$W/out/syslog.log" template="RSYSLOG_FileFormat")
EOF

# ---------------------------------------------------------------- clock calibration helper
# Writes a marker into the ftrace instance, bracketed by clock_gettime(REALTIME) before and
# after: the marker's trace time (trace clock "local") <-> UTC within [before, after].
cat > "$W/calib.py" <<'EOF'
import json, os, sys, time
inst, label, out = sys.argv[1], sys.argv[2], sys.argv[3]
fd = os.open(inst + "/trace_marker", os.O_WRONLY)
rows = []
for i in range(5):
    r0 = time.clock_gettime_ns(time.CLOCK_REALTIME)
    m0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    b0 = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    os.write(fd, f"tk-calib {label} {i} realtime_ns={r0} monotonic_ns={m0} boottime_ns={b0}".encode())
    r1 = time.clock_gettime_ns(time.CLOCK_REALTIME)
    rows.append({"label": label, "i": i, "realtime_before_ns": r0, "realtime_after_ns": r1,
                 "monotonic_ns": m0, "boottime_ns": b0})
    time.sleep(0.01)
os.close(fd)
with open(out, "a") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
EOF

cleanup() {
    set +e
    [ -n "${PERF_PID:-}" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
    [ -n "${NS_PID:-}" ] && kill -TERM "$NS_PID" 2>/dev/null
    [ -n "${RSYS_PID:-}" ] && kill -TERM "$RSYS_PID" 2>/dev/null && wait "$RSYS_PID" 2>/dev/null
    if [ -d "$INST" ]; then echo 0 > "$INST/tracing_on"; echo > "$INST/set_event"; rmdir "$INST"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- wait for second 45
while [ "$(date -u +%S)" != 45 ]; do sleep 0.2; done
echo "start $(date -u +%FT%T.%NZ)"

# rsyslogd (creates /dev/log)
if [ -n "$NS_HOSTNAME" ]; then
    unshare -u sh -c "hostname $NS_HOSTNAME; exec rsyslogd -n -f $W/rsyslog.conf -i $W/rsyslogd.pid" &
else
    rsyslogd -n -f "$W/rsyslog.conf" -i "$W/rsyslogd.pid" &
fi
RSYS_PID=$!
for i in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done

# ftrace instance: the two events, pid filter that follows forks, tgid column
mkdir "$INST"
echo 0 > "$INST/tracing_on"
echo local > "$INST/trace_clock"
echo 1 > "$INST/options/record-tgid"
echo 1 > "$INST/options/event-fork"
echo 'sched:sched_process_exec sched:sched_process_exit' > "$INST/set_event"

# the namespace: journald, then strace -f of cron
declare -F ns_extra >/dev/null || ns_extra() { :; }
cat > "$W/ns.sh" <<EOF
#!/bin/bash
set -u
mount --make-rprivate /
${NS_HOSTNAME:+hostname $NS_HOSTNAME                            # a UTS namespace of its own (unshare -u)}
$(ns_extra)
mount -t tmpfs -o mode=755 tmpfs /run      # private /run: journald's sockets, cron's pidfile
mkdir -p /run/systemd/journal /run/log/journal
: > /run/crond.pid
mount --bind $W/journal/varlog /var/log/journal
mount --bind $W/journal/journald.conf /etc/systemd/journald.conf
mount --bind $W/cron/crontab   /etc/crontab
mount --bind $W/cron/cron.d    /etc/cron.d
mount --bind $W/cron/crontabs  /var/spool/cron/crontabs
/lib/systemd/systemd-journald &
JPID=\$!
for i in \$(seq 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
strace -f -ttt -T -e trace=%process,%net,write,rename -o $W/out/strace.txt /usr/sbin/cron -f -L 15 &
SPID=\$!
echo \$SPID > $W/strace.pid
trap 'kill -TERM \$(cat /run/crond.pid) 2>/dev/null; wait \$SPID; journalctl --directory=/run/log/journal/\$(cat /etc/machine-id) -o json SYSLOG_IDENTIFIER=$JOURNAL_IDENT > $W/out/journal.json; kill -TERM \$JPID; wait \$JPID; exit 0' TERM
while :; do sleep 0.2; done
EOF
chmod 755 "$W/ns.sh"
unshare -m ${NS_HOSTNAME:+-u} "$W/ns.sh" &
NS_PID=$!
CRON_PID=
for i in $(seq 100); do
    [ -s "$W/strace.pid" ] && CRON_PID=$(pgrep -P "$(cat "$W/strace.pid")" -x cron || true)
    [ -n "$CRON_PID" ] && break; sleep 0.05
done
[ -n "$CRON_PID" ] || { echo "cron did not start" >&2; exit 1; }
echo "cron pid $CRON_PID"

echo "$CRON_PID" > "$INST/set_event_pid"
echo 1 > "$INST/tracing_on"
perf record -q -o "$W/out/perf.data" -e sched:sched_process_exec -e sched:sched_process_exit -p "$CRON_PID" \
    > "$W/out/perf_record.stdout" 2> "$W/out/perf_record.stderr" &
PERF_PID=$!

# truth: boot time and uptime now, clock calibration markers
{ echo "host=$(hostname)"; echo "uname=$(uname -a)"; grep '^btime' /proc/stat; echo "uptime=$(cat /proc/uptime)";
  echo "realtime_ns=$(date +%s%N)"; } > "$W/out/host.txt"
python3 "$W/calib.py" "$INST" start "$W/out/calib.jsonl"

# ---------------------------------------------------------------- the incident
declare -F incident >/dev/null || incident() {
# cron fires at the next minute :00, :15, :30; the deploy renames the script at :40
while [ "$(date -u +%S)" != 40 ]; do sleep 0.1; done
R0=$(date +%s%N)
mv /tmp/tkrec/app/bin/rotate-report.sh /tmp/tkrec/app/bin/rotate-report-v2.sh
R1=$(date +%s%N)
echo "{\"rename_before_ns\": $R0, \"rename_after_ns\": $R1}" > "$W/out/rename.json"
echo "renamed at $(date -u +%FT%T.%NZ)"
sleep 25   # the next minute's :00 and :15 runs fail
while [ "$(date -u +%S)" != 35 ]; do sleep 0.1; done   # and :30
}
incident

# ---------------------------------------------------------------- stop
python3 "$W/calib.py" "$INST" end "$W/out/calib.jsonl"
{ grep '^btime' /proc/stat | sed 's/^/end_/'; echo "end_uptime=$(cat /proc/uptime)"; echo "end_realtime_ns=$(date +%s%N)"; } >> "$W/out/host.txt"
kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
echo 0 > "$INST/tracing_on"
cat "$INST/trace" > "$W/out/ftrace.txt"
echo > "$INST/set_event"; rmdir "$INST"
kill -TERM "$NS_PID"; wait "$NS_PID" || true; NS_PID=
kill -TERM "$RSYS_PID"; wait "$RSYS_PID" || true; RSYS_PID=
perf script -i "$W/out/perf.data" --header -F +pid > "$W/out/perf.txt" 2> "$W/out/perf_script.stderr"
perf script -i "$W/out/perf.data" > "$W/out/perf_default.txt" 2>> "$W/out/perf_script.stderr"   # default fields: tid only
echo "stop $(date -u +%FT%T.%NZ)"

cp "$W/out/strace.txt" "$OUT/strace.txt"
cp "$W/out/perf.txt" "$OUT/perf.txt"
cp "$W/out/perf_default.txt" "$OUT/perf_default.txt"
cp "$W/out/ftrace.txt" "$OUT/ftrace.txt"
cp "$W/out/syslog.log" "$OUT/syslog.log"
cp "$W/out/journal.json" "$OUT/journal.json"
python3 "$HERE/make_truth.py" "$W/out" "$OUT"
{ echo "strace: $(strace -V | head -1)"; echo "perf: $(perf --version)"; echo "rsyslog: $(dpkg-query -W -f '${Version}' rsyslog)";
  echo "cron: $(dpkg-query -W -f '${Version}' cron)"; echo "journalctl: $(journalctl --version | head -1)";
  echo "kernel: $(uname -r)"; echo "perf record stderr: $(cat "$W/out/perf_record.stderr")";
  echo "perf script stderr: $(cat "$W/out/perf_script.stderr")"; } > "$OUT/versions.txt"
[ -e /dev/log ] && echo "WARNING: /dev/log still exists" >&2
[ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$W"
trap - EXIT
ls -l "$OUT"
