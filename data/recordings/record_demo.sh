#!/bin/bash
# Record node-a of the demo incident (data/demo-incident) on this machine, as root.
#
#   sudo data/recordings/record_demo.sh [NAME]       (default NAME: demo-node-a; ~12 minutes)
#
# node-a is the demo's control-plane node. Its real part of the story: cron fires the catalog
# reindex job `/opt/shop/bin/reindex.sh` every minute; four or five minutes in, a patch renames the
# script to `reindex-catalog.sh` (logging nothing) and from the next minute on every run fails
# with exit status 127, cron discarding the output ("No MTA installed") - the cron that still
# fires. The same tools as record.sh watch it (see that script and README.md):
#   strace -f -ttt -T of cron and its children (wall clock), perf record of
#   sched:sched_process_exec/exit of cron's tree (perf clock), a tracefs instance with the
#   same events (trace clock "local", plus the calibration markers), rsyslog
#   (RSYSLOG_FileFormat) and journald (`journalctl -o json`).
# Differences from record.sh: cron, journald and rsyslogd run in a UTS namespace whose
# hostname is `node-a` (so the files name the demo's host), /opt is a private tmpfs inside the
# mount namespace (the job lives in /opt/shop/bin there), the crontab has no MAILTO (cron
# tries to mail the failures' output, finds no MTA and says so), and the run is longer.
# data/gen_incident.py --variant shop then builds the rest of the incident (Kubernetes,
# spans, node-b, node-c) around these files' times.
set -euo pipefail

NAME=${1:-demo-node-a}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/$NAME
W=${WORK:-/tmp/tkdemo}
TR=/sys/kernel/tracing
INST=$TR/instances/tkdemo
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in strace perf rsyslogd python3 logger journalctl; do command -v $t >/dev/null || { echo "missing $t" >&2; exit 1; }; done
[ -x /usr/sbin/cron ] && [ -x /lib/systemd/systemd-journald ] || { echo "missing cron or journald" >&2; exit 1; }
[ -e /dev/log ] && { echo "/dev/log exists: another syslog daemon runs; stop it first" >&2; exit 1; }

rm -rf "$W"
mkdir -p "$W"/{app/bin,cron/cron.d,cron/crontabs,journal/varlog,rsyslog-work,out}
mkdir -p "$OUT"
rm -f "$OUT"/*.txt "$OUT"/*.json "$OUT"/*.log

# ---------------------------------------------------------------- the job
cat > "$W/app/bin/reindex.sh" <<'EOF'
#!/bin/sh
# reindex the catalog's search index: a syslog line and a journal record at start and end
logger -t reindex -i "starting catalog reindex"
printf 'MESSAGE=catalog reindex started\nSYSLOG_IDENTIFIER=reindex\nPRIORITY=6\nSHOP_JOB=reindex\n' | logger --journald
sleep 1
n=$(( $(date +%s) % 997 + 48000 ))
logger -t reindex -i "catalog reindexed: $n items"
printf 'MESSAGE=catalog reindexed: %s items\nSYSLOG_IDENTIFIER=reindex\nPRIORITY=6\nSHOP_JOB=reindex\nSHOP_ITEMS=%s\n' "$n" "$n" | logger --journald
echo "$$ $(date -u +%H%M) $(date -u +%s.%N)" >> /tmp/tkdemo/out/ledger.txt
exit 0
EOF
chmod 755 "$W/app/bin/reindex.sh"

# ---------------------------------------------------------------- cron (own crontab only)
cat > "$W/cron/crontab" <<'EOF'
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin
EOF
cat > "$W/cron/cron.d/shop-reindex" <<'EOF'
* * * * * root	/opt/shop/bin/reindex.sh
EOF
chmod 755 "$W/cron/cron.d"; chmod 644 "$W/cron/crontab" "$W/cron/cron.d/shop-reindex"
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
unshare -u sh -c "hostname node-a; exec rsyslogd -n -f $W/rsyslog.conf -i $W/rsyslogd.pid" &
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
cat > "$W/ns.sh" <<EOF
#!/bin/bash
set -u
mount --make-rprivate /
hostname node-a                            # a UTS namespace of its own (unshare -u)
mount -t tmpfs -o mode=755 tmpfs /opt      # the job lives in /opt/shop/bin, in this namespace only
mkdir -p /opt/shop/bin
cp $W/app/bin/reindex.sh /opt/shop/bin/reindex.sh
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
trap 'kill -TERM \$(cat /run/crond.pid) 2>/dev/null; wait \$SPID; journalctl --directory=/run/log/journal/\$(cat /etc/machine-id) -o json SYSLOG_IDENTIFIER=reindex > $W/out/journal.json; kill -TERM \$JPID; wait \$JPID; exit 0' TERM
while :; do sleep 0.2; done
EOF
chmod 755 "$W/ns.sh"
unshare -m -u "$W/ns.sh" &
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
# cron fires at second 0 of every minute; the patch renames the script at second 15 after 4
# or 5 good runs (each wait below ends at the first second 00 after its sleep), then 7 more
# minutes of failing runs
sleep 20
for i in 1 2 3; do sleep 55; while [ "$(date -u +%S)" != 00 ]; do sleep 0.2; done; done
while [ "$(date -u +%S)" != 15 ]; do sleep 0.1; done
nsenter -t "$CRON_PID" -m sh -c 'R0=$(date +%s%N); mv /opt/shop/bin/reindex.sh /opt/shop/bin/reindex-catalog.sh; R1=$(date +%s%N);
  echo "{\"from\": \"/opt/shop/bin/reindex.sh\", \"to\": \"/opt/shop/bin/reindex-catalog.sh\", \"rename_before_ns\": $R0, \"rename_after_ns\": $R1}"' > "$W/out/rename.json"
echo "renamed at $(date -u +%FT%T.%NZ): $(cat "$W/out/rename.json")"
for i in 1 2 3 4 5 6 7; do sleep 50; while [ "$(date -u +%S)" != 10 ]; do sleep 0.2; done; done
while [ "$(date -u +%S)" != 30 ]; do sleep 0.1; done

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
