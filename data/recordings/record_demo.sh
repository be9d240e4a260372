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
# It is record.sh with another job, schedule and incident (defined here, then record.sh is
# sourced). Differences from record.sh: cron, journald and rsyslogd run in a UTS namespace whose
# hostname is `node-a` (so the files name the demo's host), /opt is a private tmpfs inside the
# mount namespace (the job lives in /opt/shop/bin there), the crontab has no MAILTO (cron
# tries to mail the failures' output, finds no MTA and says so), and the run is longer.
# data/gen_incident.py --variant shop then builds the rest of the incident (Kubernetes,
# spans, node-b, node-c) around these files' times.
set -euo pipefail

SCENARIO_NAME=demo-node-a
SCENARIO_WORK=/tmp/tkdemo
SCENARIO_INSTANCE=tkdemo
JOURNAL_IDENT=reindex
NS_HOSTNAME=node-a

write_job() {
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
cat > "$W/cron/cron.d/shop-reindex" <<'EOF'
* * * * * root	/opt/shop/bin/reindex.sh
EOF
}

ns_extra() {  # lines for the namespace's set-up script (record.sh writes it)
    echo 'mount -t tmpfs -o mode=755 tmpfs /opt      # the job lives in /opt/shop/bin, in this namespace only'
    echo 'mkdir -p /opt/shop/bin'
    echo "cp $W/app/bin/reindex.sh /opt/shop/bin/reindex.sh"
}

incident() {
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
}

source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/record.sh"
