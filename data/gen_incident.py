#!/usr/bin/env python3
"""Write a multi-source postmortem dataset with a known true story (stdlib only, seeded).

The story: a Kubernetes service's endpoints change during a rolling deploy while a client on
another node keeps connecting to an old address (its endpoint cache refreshes every 30 s: a
service-discovery race); the deploy itself wrote no log line; a cron job on the control-plane
node keeps firing the old script path after the patch renamed it, and fails quietly.

Three hosts: A (reference clock, control plane + cron), B (app node, clock ahead by a fixed
offset), C (client node, wall clock off and drifting; perf on its boot clock). Every file is
written in the exact layout its tool writes (checked against the real dumps in
../shared/corpus): `kubectl get events -o json`, kube-apiserver audit JSON lines, rsyslog's
RFC 3339 file format with Debian cron lines, `strace -f -ttt -T`, the OpenTelemetry
collector's file exporter (OTLP JSON lines, gzipped), JSON-lines app logs, `journalctl -o
json`, `perf script --header` with `sock:inet_sock_set_state`, and a Chrome trace of one
request. TRUTH.json (and TRUTH.md) state what really happened: every clock error, the deploy,
each transition, the cron firings and the racing events' true order.

    python3 data/gen_incident.py --variant shop --out data/demo-incident      # the demo
    python3 data/gen_incident.py --variant ledger --out /tmp/variant-b        # tests only
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

NS = 1_000_000_000
US = 1_000


@dataclass
class Variant:
    name: str
    seed: int
    ns: str
    svc: str
    client: str
    upstream: str
    hosts: tuple[str, str, str]
    cron_old: str
    cron_new: str
    ver_old: str
    ver_new: str
    cfg_old: str
    cfg_new: str
    start: str  # ISO, UTC
    deploy_after_s: float
    old_rs: str
    new_rs: str
    old_pods: tuple[str, str]
    new_pods: tuple[str, str]
    old_ips: tuple[str, str]
    new_ips: tuple[str, str]
    client_ip: str
    port: int
    route: str
    b_ahead_s: float  # host B's wall clock is ahead by this much
    c_ahead_s: float  # host C's wall clock is ahead by this much at the start ...
    c_drift_ppm: float  # ... and gains this many ppm
    c_uptime_s: float  # host C had been up this long at the start
    crond_pid: int
    client_pid: int
    # a real recording of host A's cron story (data/recordings/<name>, made by record_demo.sh):
    # its files are shipped byte for byte and the rest of the story is placed around its times
    recording: str = ""
    extra: dict = field(default_factory=dict)


VARIANTS = {
    "shop": Variant(
        name="shop", seed=7, ns="shop", svc="checkout", client="frontend", upstream="inventory",
        hosts=("node-a", "node-b", "node-c"), cron_old="/opt/shop/bin/reindex.sh",
        cron_new="/opt/shop/bin/reindex-catalog.sh", ver_old="1.8.2", ver_new="1.9.0",
        cfg_old="v41", cfg_new="v42", start="2025-07-07T09:00:00", deploy_after_s=720.0,
        old_rs="checkout-7d9f8b6c5", new_rs="checkout-5c6b4d9f7",
        old_pods=("checkout-7d9f8b6c5-q2xkz", "checkout-7d9f8b6c5-m8wln"),
        new_pods=("checkout-5c6b4d9f7-h4tvr", "checkout-5c6b4d9f7-zp9cd"),
        old_ips=("10.4.1.17", "10.4.2.23"), new_ips=("10.4.1.31", "10.4.2.40"), client_ip="10.4.3.9",
        port=8080, route="/api/checkout", b_ahead_s=2.75, c_ahead_s=-0.42, c_drift_ppm=40.0,
        c_uptime_s=5 * 86400 + 3127.25, crond_pid=611, client_pid=4242, recording="recordings/demo-node-a",
    ),
    "ledger": Variant(
        name="ledger", seed=1234, ns="billing", svc="ledger", client="portal", upstream="rates",
        hosts=("ip-10-0-1-5", "ip-10-0-2-7", "ip-10-0-3-9"), cron_old="/srv/billing/bin/rollup.py",
        cron_new="/srv/billing/bin/rollup_v2.py", ver_old="3.4.0", ver_new="3.5.0",
        cfg_old="cfg-2024a", cfg_new="cfg-2024b", start="2025-03-02T14:00:00", deploy_after_s=570.0,
        old_rs="ledger-66b7c9d8f", new_rs="ledger-7f5d8c9b4",
        old_pods=("ledger-66b7c9d8f-7ktqp", "ledger-66b7c9d8f-xw2vj"),
        new_pods=("ledger-7f5d8c9b4-r9snm", "ledger-7f5d8c9b4-c6hfd"),
        old_ips=("10.8.1.44", "10.8.2.12"), new_ips=("10.8.1.60", "10.8.2.71"), client_ip="10.8.3.30",
        port=9090, route="/v1/ledger/entries", b_ahead_s=-1.6, c_ahead_s=0.85, c_drift_ppm=-55.0,
        c_uptime_s=2 * 86400 + 611.5, crond_pid=733, client_pid=5120,
    ),
}


def iso(ns: int, digits: int = 6, z: str = "Z") -> str:
    secs, frac = divmod(ns, NS)
    base = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=secs)
    s = base.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        s += "." + f"{frac:09d}"[:digits]
    return s + z


def to_ns(s: str) -> int:
    d = dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)
    return int(d.timestamp()) * NS


class Clocks:
    """True time → each host's stamps. correction = true − stamp (what alignment must find)."""

    def __init__(self, v: Variant, t_start: int):
        self.v, self.t0 = v, t_start

    def wall(self, host: int, true: int) -> int:
        if host == 0:
            return true
        if host == 1:
            return true + int(self.v.b_ahead_s * NS)
        err = self.v.c_ahead_s * NS + self.v.c_drift_ppm * 1e-6 * (true - self.t0)
        return true + int(round(err))

    def boot_c(self, true: int) -> int:
        """Host C's monotonic/boot clock: same oscillator as its wall clock (no NTP)."""
        return self.wall(2, true) - self.boot_base_c()

    def boot_base_c(self) -> int:
        return self.wall(2, self.t0) - int(self.v.c_uptime_s * NS)


def hexid(rng: random.Random, nbytes: int) -> str:
    return f"{rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def load_recording(v: Variant) -> dict | None:
    """The variant's real recording: its TRUTH.json plus the folder, or None."""
    if not v.recording:
        return None
    d = Path(__file__).resolve().parent / v.recording
    rec = json.loads((d / "TRUTH.json").read_text())
    rec["dir"] = d
    return rec


def cron_firings(rec: dict, command: str) -> list[dict]:
    """Every firing of ``command`` in a recording: the `/bin/sh -c` cron execs (strace), their exit."""
    status = {e["pid"]: e["status"] for e in rec["exits"]}
    patch = rec["rename"]["rename_before_ns"]
    return [{"time": iso(e["start_ns"]), "pid": e["pid"], "exit": status.get(e["pid"]),
             "after_patch": e["start_ns"] > patch}
            for e in rec["execs"] if e["path"] == "/bin/sh" and e["argv"].endswith(f'"-c", "{command}"')]


def generate(v: Variant, out: Path) -> dict:
    rng = random.Random(v.seed)
    rec = load_recording(v)
    if rec is None:
        T = to_ns(v.start)
        D = T + int(v.deploy_after_s * NS)
        END = T + 1200 * NS
        patch_t = D - 45 * NS
    else:  # the story is placed around the real recording: the deploy follows the real rename
        T = rec["realtime_ns_at_start"] // (60 * NS) * 60 * NS
        patch_t = rec["rename"]["rename_before_ns"]
        D = (patch_t // (60 * NS) + 1) * 60 * NS
        END = -(-rec["realtime_ns_at_end"] // NS) * NS
    ck = Clocks(v, T)
    A, B, C = v.hosts
    s = lambda x: int(x * NS)  # noqa: E731  (seconds → ns)
    truth: dict = {"variant": v.name, "seed": v.seed, "window": [iso(T), iso(END)], "transitions": [],
                   "race": [], "cron": {}, "clocks": {}, "deploy": {}, "sources": {}}

    # ------------------------------------------------------------------ the rollout (true times)
    o1, o2 = v.old_pods
    n1, n2 = v.new_pods
    ready = {n1: D + s(7.9), n2: D + s(19.5)}
    stop_listen = {o1: D + s(9.15), o2: D + s(20.65)}
    ep_events = [  # (time, action, ip, pod)
        (D + s(8.2), "add", v.new_ips[0], n1),
        (D + s(9.1), "remove", v.old_ips[0], o1),
        (D + s(19.8), "add", v.new_ips[1], n2),
        (D + s(20.6), "remove", v.old_ips[1], o2),
    ]
    listening = {v.old_ips[0]: (T - s(86400), stop_listen[o1]), v.old_ips[1]: (T - s(86400), stop_listen[o2]),
                 v.new_ips[0]: (ready[n1], END + s(10)), v.new_ips[1]: (ready[n2], END + s(10))}
    ip_pod = {v.old_ips[0]: o1, v.old_ips[1]: o2, v.new_ips[0]: n1, v.new_ips[1]: n2}

    def endpoints_at(t: int) -> list[str]:
        eps = [v.old_ips[0], v.old_ips[1]]
        for when, act, ip, _ in ep_events:
            if when <= t:
                if act == "add":
                    eps.append(ip)
                else:
                    eps.remove(ip)
        return eps

    refreshes = [D + s(14.5) + s(30) * j for j in range(-30, 30) if T <= D + s(14.5) + s(30) * j < END]

    def cache_at(t: int) -> list[str]:
        prev = [r for r in refreshes if r <= t]
        return endpoints_at(prev[-1] if prev else T)

    truth["deploy"] = {
        "time": iso(D), "kind": f"rolling update of deployment {v.ns}/{v.svc}: {v.ver_old} → {v.ver_new}, "
        f"config {v.cfg_old} → {v.cfg_new}", "logged": False,
        "patch_applied": iso(patch_t),
        "patch": f"the script {v.cron_old} was renamed to {v.cron_new}; the crontab was not updated",
        "indirect_evidence": ["pods replaced (events, audit)", "EndpointSlice addresses changed (audit)",
                              f"version {v.ver_old}→{v.ver_new} and config_version {v.cfg_old}→{v.cfg_new} in "
                              f"{v.svc} logs", f"cron job fails from the first firing after {iso(patch_t)}"],
    }

    # ------------------------------------------------------------------ requests and spans
    spans = {0: [], 1: [], 2: []}  # host → OTLP spans (with stamps of that host)
    app_b, app_c, perf_c = [], [], []
    forced = {D + s(9.1) + 150 * US: v.old_ips[0], D + s(9.6): v.old_ips[0]}  # the race, and the first failure
    req_times = sorted([T + s(k) + int(rng.random() * 0.8 * NS) for k in range(5, (END - T) // NS - 5)] + list(forced))
    rr = 0
    sport = 40000
    failures = []
    client_span_of = {}
    for t in req_times:
        cache = cache_at(t)
        ip = forced.get(t) or cache[rr % len(cache)]
        rr += 1
        sport = 40000 + (sport - 40000 + 1) % 20000
        trace = hexid(rng, 16)
        cspan = hexid(rng, 8)
        ok = listening[ip][0] <= t < listening[ip][1]
        lat1, lat2 = rng.randint(200, 600) * US, rng.randint(200, 600) * US
        if ok:
            pod = ip_pod[ip]
            sstart = t + lat1
            inv_lat = rng.randint(150, 500) * US
            inv_dur = rng.randint(800, 3000) * US
            ccall = sstart + rng.randint(300, 900) * US
            cdur_call = inv_dur + 2 * inv_lat
            sdur = (ccall - sstart) + cdur_call + rng.randint(500, 4000) * US
            cdur = sdur + lat1 + lat2
            sspan, callspan, invspan = hexid(rng, 8), hexid(rng, 8), hexid(rng, 8)
            ver = v.ver_new if pod in v.new_pods else v.ver_old
            spans[2].append(_span(trace, cspan, "", f"GET {v.route}", 3, ck.wall(2, t), ck.wall(2, t) + cdur,
                                  {"http.request.method": "GET", "server.address": ip, "server.port": v.port,
                                   "url.path": v.route, "http.response.status_code": 200}, None))
            spans[1].append(_span(trace, sspan, cspan, f"GET {v.route}", 2, ck.wall(1, sstart), ck.wall(1, sstart + sdur),
                                  {"http.request.method": "GET", "http.route": v.route, "k8s.pod.name": pod,
                                   "http.response.status_code": 200, "service.version": ver}, None))
            spans[1].append(_span(trace, callspan, sspan, f"GET /{v.upstream}/stock", 3, ck.wall(1, ccall),
                                  ck.wall(1, ccall + cdur_call), {"http.request.method": "GET",
                                                                  "server.address": f"{v.upstream}.{v.ns}.svc"}, None))
            spans[0].append(_span(trace, invspan, callspan, f"GET /{v.upstream}/stock", 2, ck.wall(0, ccall + inv_lat),
                                  ck.wall(0, ccall + inv_lat + inv_dur), {"http.request.method": "GET"}, None))
            app_b.append((ck.wall(1, sstart + sdur - 50 * US), {
                "level": "info", "service": v.svc, "pod": pod, "host": B, "version": ver,
                "config_version": v.cfg_new if pod in v.new_pods else v.cfg_old, "msg": "handled request",
                "route": v.route, "status": 200, "duration_ms": round(sdur / 1e6, 3), "trace_id": trace,
                "span_id": sspan}))
            perf_c += _tcp(ck, t, cdur, sport, v.client_ip, ip, v.port, ok=True)
        else:
            cdur = rng.randint(150, 400) * US
            spans[2].append(_span(trace, cspan, "", f"GET {v.route}", 3, ck.wall(2, t), ck.wall(2, t) + cdur,
                                  {"http.request.method": "GET", "server.address": ip, "server.port": v.port,
                                   "url.path": v.route, "error.type": "ECONNREFUSED"},
                                  f"connect ECONNREFUSED {ip}:{v.port}"))
            app_c.append((ck.wall(2, t + cdur + 80 * US), {
                "level": "error", "service": v.client, "host": C, "msg": "upstream connect error",
                "upstream": f"{ip}:{v.port}", "error": "ECONNREFUSED", "trace_id": trace, "span_id": cspan}))
            perf_c += _tcp(ck, t, cdur, sport, v.client_ip, ip, v.port, ok=False)
            failures.append({"time": iso(t), "ip": ip, "trace_id": trace})
        client_span_of[t] = (trace, cspan, ip, ok)

    race_t = D + s(9.1) + 150 * US
    rt, rs, rip, rok = client_span_of[race_t]
    ft = D + s(9.6)
    truth["race"] = [
        {"a": {"source": f"{A}/k8s/audit.log", "what": f"EndpointSlice update removes {v.old_ips[0]}",
               "time": iso(D + s(9.1))},
         "b": {"source": f"{C}/perf-tcp.txt.gz", "what": f"{v.client} connects to {v.old_ips[0]}:{v.port} (TCP_SYN_SENT)",
               "time": iso(race_t), "trace_id": rt},
         "true_order": "a before b", "gap_ns": 150 * US, "decidable": False,
         "why": "150 µs apart across three clocks; node-c's correction is known only to a fraction of a millisecond"},
        {"a": {"source": f"{A}/k8s/audit.log", "what": f"EndpointSlice update removes {v.old_ips[0]}",
               "time": iso(D + s(9.1))},
         "b": {"source": f"{C}/perf-tcp.txt.gz", "what": f"first refused connect to {v.old_ips[0]}:{v.port}",
               "time": iso(ft), "trace_id": client_span_of[ft][0]},
         "true_order": "a before b", "gap_ns": s(0.5), "decidable": True,
         "why": "500 ms apart: far more than any clock uncertainty"},
    ]
    truth["failed_requests"] = failures

    # ------------------------------------------------------------------ service state machine (node-b app logs)
    def state_line(t: int, pod: str, state: str, msg: str, new: bool, level: str = "info", **kw) -> None:
        app_b.append((ck.wall(1, t), {"level": level, "service": v.svc, "pod": pod, "host": B,
                                      "version": v.ver_new if new else v.ver_old,
                                      "config_version": v.cfg_new if new else v.cfg_old, "msg": msg, "state": state, **kw}))
        truth["transitions"].append({"entity": f"pod/{v.ns}/{pod}", "kind": "service state", "to": state,
                                     "time": iso(t), "source": f"{B}/{v.svc}.jsonl"})

    for pod, start_t in ((n1, D + s(4.3)), (n2, D + s(15.9))):
        state_line(start_t, pod, "starting", f"starting {v.svc} {v.ver_new}", True,
                   config_path=f"/etc/{v.svc}/config-{v.cfg_new}.yaml")
        state_line(start_t + s(0.6), pod, "warming", f"loaded config /etc/{v.svc}/config-{v.cfg_new}.yaml", True)
        state_line(ready[pod], pod, "ready", "ready to serve", True)
    for pod in (o1, o2):
        stop = stop_listen[pod]
        state_line(stop - s(0.15), pod, "draining", "received SIGTERM, draining connections", False)
        state_line(stop, pod, "stopped", "listener closed, exiting", False, level="warning")
    for pod in (o1, o2):  # the old pods' state at the window start, logged at their start long ago
        truth["transitions"].append({"entity": f"pod/{v.ns}/{pod}", "kind": "service state", "to": "ready",
                                     "time": "before window", "source": "-"})

    # ------------------------------------------------------------------ k8s events (node-a clock, 1 s)
    events = []

    def kev(t, reason, obj_kind, obj_name, msg, comp, typ="Normal", count=1, last=None, field_path=None, host=None):
        uid = hexid(rng, 16)
        inv = {"apiVersion": "v1" if obj_kind == "Pod" else "apps/v1", "kind": obj_kind, "name": obj_name,
               "namespace": v.ns, "uid": f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
               "resourceVersion": str(rng.randint(10**6, 10**7))}
        if field_path:
            inv["fieldPath"] = field_path
        first = iso(ck.wall(0, t) // NS * NS, 0)
        lastt = iso(ck.wall(0, last or t) // NS * NS, 0)
        src = {"component": comp}
        if host:
            src["host"] = host
        events.append({"apiVersion": "v1", "count": count, "eventTime": None, "firstTimestamp": first,
                       "involvedObject": inv, "kind": "Event", "lastTimestamp": lastt, "message": msg,
                       "metadata": {"creationTimestamp": first, "name": f"{obj_name}.{hexid(rng, 8)}",
                                    "namespace": v.ns, "resourceVersion": str(rng.randint(10**6, 10**7)),
                                    "uid": hexid(rng, 16)},
                       "reason": reason, "reportingComponent": comp if comp != "kubelet" else "kubelet",
                       "reportingInstance": host or "", "source": src, "type": typ})
        truth["transitions"].append({"entity": f"{obj_kind.lower()}/{v.ns}/{obj_name}", "kind": "k8s event",
                                     "to": reason, "time": iso(t), "source": f"{A}/k8s/events.json"})

    img = f"registry.example.com/{v.ns}/{v.svc}:{v.ver_new}"
    kev(D, "ScalingReplicaSet", "Deployment", v.svc, f"Scaled up replica set {v.new_rs} to 1", "deployment-controller")
    for pod, base, node in ((n1, D, B), (n2, D + s(11.6), B)):
        kev(base + s(0.05), "SuccessfulCreate", "ReplicaSet", v.new_rs, f"Created pod: {pod}", "replicaset-controller")
        kev(base + s(0.1), "Scheduled", "Pod", pod, f"Successfully assigned {v.ns}/{pod} to {node}", "default-scheduler")
        kev(base + s(1.2), "Pulling", "Pod", pod, f'Pulling image "{img}"', "kubelet", field_path=f"spec.containers{{{v.svc}}}", host=node)
        kev(base + s(3.8), "Pulled", "Pod", pod, f'Successfully pulled image "{img}" in 2.6s (2.6s including waiting)',
            "kubelet", field_path=f"spec.containers{{{v.svc}}}", host=node)
        kev(base + s(3.9), "Created", "Pod", pod, f"Created container {v.svc}", "kubelet", field_path=f"spec.containers{{{v.svc}}}", host=node)
        kev(base + s(4.1), "Started", "Pod", pod, f"Started container {v.svc}", "kubelet", field_path=f"spec.containers{{{v.svc}}}", host=node)
    for pod, t_kill, replicas in ((o1, D + s(8.9), 1), (o2, D + s(20.4), 0)):
        kev(t_kill - s(0.05), "ScalingReplicaSet", "Deployment", v.svc,
            f"Scaled down replica set {v.old_rs} to {replicas} from {replicas + 1}", "deployment-controller")
        kev(t_kill, "SuccessfulDelete", "ReplicaSet", v.old_rs, f"Deleted pod: {pod}", "replicaset-controller")
        kev(t_kill + s(0.1), "Killing", "Pod", pod, f"Stopping container {v.svc}", "kubelet",
            field_path=f"spec.containers{{{v.svc}}}", host=B)
        kev(t_kill + s(1.3), "Unhealthy", "Pod", pod, "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "kubelet", typ="Warning", count=3, last=t_kill + s(3.3), field_path=f"spec.containers{{{v.svc}}}", host=B)
    kev(D + s(20.6), "ScalingReplicaSet", "Deployment", v.svc, f"Scaled up replica set {v.new_rs} to 2", "deployment-controller")

    # ------------------------------------------------------------------ audit log (node-a clock, µs)
    audit = []
    slice_name = f"{v.svc}-{hexid(rng, 3)[:5]}"
    rv = [rng.randint(10**6, 10**7)]

    def aud(t, verb, resource, name, user, level="Metadata", code=200, req=None, resp=None, ns=v.ns, group=""):
        aid = f"{hexid(rng, 4)}-{hexid(rng, 2)}-{hexid(rng, 2)}-{hexid(rng, 2)}-{hexid(rng, 6)}"
        rv[0] += rng.randint(1, 40)
        obj = {"resource": resource, "namespace": ns, "name": name, "apiVersion": "v1" if not group else f"{group}/v1"}
        if group:
            obj["apiGroup"] = group
        if resource == "endpointslices":
            obj["resourceVersion"] = str(rv[0])
        path = f"/apis/{group}/v1" if group else "/api/v1"
        rec = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": aid,
               "stage": "ResponseComplete",
               "requestURI": f"{path}/namespaces/{ns}/{resource}/{name}" + ("" if verb != "create" else ""),
               "verb": verb, "user": {"username": user, "groups": ["system:serviceaccounts", "system:authenticated"]},
               "sourceIPs": ["10.4.0.2"], "userAgent": "kube-controller-manager/v1.30.2 (linux/amd64) kubernetes/3a9d0e1",
               "objectRef": obj, "responseStatus": {"metadata": {}, "code": code},
               "requestReceivedTimestamp": iso(ck.wall(0, t)), "stageTimestamp": iso(ck.wall(0, t + rng.randint(900, 4000) * US)),
               "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason":
                               f'RBAC: allowed by ClusterRoleBinding "system:controller:{user.split(":")[-1]}"'}}
        if req is not None:
            rec["requestObject"] = req
        if resp is not None:
            rec["responseObject"] = resp
        audit.append((ck.wall(0, t), rec))

    lease_t = T + s(1.3)
    while lease_t < END:
        aud(lease_t, "update", "leases", "kube-controller-manager", "system:kube-controller-manager",
            ns="kube-system", group="coordination.k8s.io")
        lease_t += s(2.0) + rng.randint(-30, 30) * 10**6
    for pod, base in ((n1, D), (n2, D + s(11.6))):
        aud(base + s(0.04), "create", "pods", "", "system:serviceaccount:kube-system:replicaset-controller", code=201)
        audit[-1][1]["objectRef"]["name"] = pod
        audit[-1][1]["requestURI"] = f"/api/v1/namespaces/{v.ns}/pods"
    for pod, t_kill in ((o1, D + s(8.9)), (o2, D + s(20.4))):
        aud(t_kill - s(0.01), "delete", "pods", pod, "system:serviceaccount:kube-system:replicaset-controller")
    for when, act, ip, _pod in ep_events:
        eps = endpoints_at(when)
        body = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                "metadata": {"name": slice_name, "namespace": v.ns, "labels": {"kubernetes.io/service-name": v.svc}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [e], "conditions": {"ready": True},
                               "targetRef": {"kind": "Pod", "namespace": v.ns, "name": ip_pod[e]}} for e in eps],
                "ports": [{"name": "http", "protocol": "TCP", "port": v.port}]}
        aud(when, "update", "endpointslices", slice_name, "system:serviceaccount:kube-system:endpointslice-controller",
            level="RequestResponse", req=body, resp=body, group="discovery.k8s.io")
        truth["transitions"].append({"entity": f"endpointslice/{v.ns}/{slice_name}", "kind": {"add": "address added", "remove": "address removed"}[act],
                                     "to": ",".join(eps), "address": ip, "time": iso(when), "source": f"{A}/k8s/audit.log"})

    # ------------------------------------------------------------------ cron on node-a: syslog + strace
    syslog, strace = [], []
    klog_day = iso(T)[5:7] + iso(T)[8:10]  # klog's "I0707" prefix
    if rec is not None:  # real: the recording's files (copied below) and the truth they hold
        firings = cron_firings(rec, v.cron_old)
    else:
        pid = [2000 + rng.randint(0, 500)]
        firings = []
        nap_open = None
        minute = (T // (60 * NS) + 1) * 60 * NS
        while minute + s(1) < END:
            t = minute + s(1) + rng.randint(1000, 20000) * US
            p1, p2 = pid[0] + 1, pid[0] + 2
            pid[0] += 3 + rng.randint(0, 40)
            after = t > patch_t
            dur = s(0.012) if after else s(1.2) + rng.randint(0, 300) * 10**6
            exitc = 127 if after else 0
            firings.append({"time": iso(t), "pid": p2, "exit": exitc, "after_patch": after})
            w = lambda x: ck.wall(0, x)  # noqa: E731
            syslog.append((w(t), f"CRON[{p1}]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"))
            syslog.append((w(t + 300 * US), f"CRON[{p1}]: (root) CMD ([{p2}] {v.cron_old})"))
            if after:
                syslog.append((w(t + dur - 400 * US), f"CRON[{p1}]: (CRON) info (No MTA installed, discarding output)"))
            syslog.append((w(t + dur), f"CRON[{p1}]: pam_unix(cron:session): session closed for user root"))
            c = v.crond_pid
            if nap_open is not None:
                strace.append((w(t - 40 * US), f"{c} {_ttt(w(t - 40 * US))} <... clock_nanosleep resumed>NULL) = 0 <{(t - 40 * US - nap_open) / NS:.6f}>"))
            strace.append((w(t), f"{c} {_ttt(w(t))} clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f5a1c2e9a10) = {p1} <0.000187>"))
            nap = t + 500 * US
            strace.append((w(nap), f"{c} {_ttt(w(nap))} clock_nanosleep(CLOCK_REALTIME, 0, {{tv_sec=59, tv_nsec=0}},  <unfinished ...>"))
            nap_open = nap
            t1 = t + 200 * US
            strace.append((w(t1), f"{p1} {_ttt(w(t1))} clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f5a1c2e9a10) = {p2} <0.000143>"))
            t2 = t1 + 150 * US
            strace.append((w(t2), f"{p1} {_ttt(w(t2))} wait4({p2},  <unfinished ...>"))
            t3 = t2 + 60 * US
            strace.append((w(t3), f'{p2} {_ttt(w(t3))} execve("/bin/sh", ["/bin/sh", "-c", "{v.cron_old}"], 0x7ffd2c1b2e40 /* 9 vars */) = 0 <0.000611>'))
            t4 = t3 + 900 * US
            if not after:
                strace.append((w(t4), f'{p2} {_ttt(w(t4))} execve("{v.cron_old}", ["{v.cron_old}"], 0x55d0c9a4e2a8 /* 9 vars */) = 0 <0.000488>'))
                t5 = t + dur - 300 * US
                strace.append((w(t5), f"{p2} {_ttt(w(t5))} exit_group(0)                    = ?"))
            else:
                strace.append((w(t4), f'{p2} {_ttt(w(t4))} execve("{v.cron_old}", ["{v.cron_old}"], 0x55d0c9a4e2a8 /* 9 vars */) = -1 ENOENT (No such file or directory) <0.000027>'))
                msg = f"/bin/sh: 1: {v.cron_old}: not found\\n"
                nbytes = len(msg) - 1
                t5 = t4 + 80 * US
                strace.append((w(t5), f'{p2} {_ttt(w(t5))} write(2, "{msg}", {nbytes}) = {nbytes} <0.000011>'))
                t5 = t5 + 40 * US
                strace.append((w(t5), f"{p2} {_ttt(w(t5))} exit_group(127)                  = ?"))
            t6 = t5 + 90 * US
            strace.append((w(t6), f"{p2} {_ttt(w(t6))} +++ exited with {exitc} +++"))
            strace.append((w(t6 + 20 * US), f"{p1} {_ttt(w(t6 + 20 * US))} <... wait4 resumed>[{{WIFEXITED(s) && WEXITSTATUS(s) == {exitc}}}], 0, NULL) = {p2} <{(t6 - t2) / NS:.6f}>"))
            strace.append((w(t6 + 40 * US), f"{p1} {_ttt(w(t6 + 40 * US))} --- SIGCHLD {{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid={p2}, si_uid=0, si_status={exitc}, si_utime=0, si_stime=0}} ---"))
            t7 = t + dur + 100 * US
            strace.append((w(t7), f"{p1} {_ttt(w(t7))} exit_group(0)                    = ?"))
            strace.append((w(t7 + 60 * US), f"{p1} {_ttt(w(t7 + 60 * US))} +++ exited with 0 +++"))
            minute += 60 * NS
        # background noise on node-a
        t = T + s(3.2)
        while t < END:
            syslog.append((ck.wall(0, t), f"systemd[1]: Started session-{rng.randint(100, 999)}.scope - Session of User deploy."
                           if rng.random() < 0.1 else f"kubelet[1187]: I{klog_day} node status is up to date (heartbeat) node=\"{A}\""))
            t += s(10) + rng.randint(0, 4000) * 10**6
        syslog.append((ck.wall(0, T + s(2)), f"kernel: [{(T + s(2) - (T - s(86400 * 3))) / NS:12.6f}] IPv4: martian source 10.4.3.255 from 10.4.3.9, on dev eth0"))
    truth["cron"] = {"host": A, "schedule": "* * * * *", "user": "root", "command": v.cron_old,
                     "renamed_to": v.cron_new, "patch_applied": iso(patch_t), "firings": firings,
                     "fails_after_patch": sum(f["after_patch"] for f in firings),
                     **({"recorded": v.recording} if rec is not None else {}),
                     "note": ("recorded: " if rec is not None else "") + "cron keeps firing the old path; /bin/sh exits "
                             "127 'not found'; the output is discarded (no MTA)"}

    # ------------------------------------------------------------------ node-c journald + chrome trace
    journal = []
    boot_id = hashlib.md5(f"{v.name}-boot-c".encode()).hexdigest()
    machine = hashlib.md5(f"{v.name}-machine-c".encode()).hexdigest()
    seqnum = [1000]

    def jrec(t, ident, unit, pid_, msg, prio=6):
        seqnum[0] += 1
        rt_us = ck.wall(2, t) // US
        mono_us = ck.boot_c(t) // US
        journal.append((rt_us * US, {
            "__CURSOR": f"s={machine[:32]};i={seqnum[0]:x};b={boot_id};m={mono_us:x};t={rt_us:x};x={hexid(rng, 8)}",
            "__REALTIME_TIMESTAMP": str(rt_us), "__MONOTONIC_TIMESTAMP": str(mono_us), "_BOOT_ID": boot_id,
            "_MACHINE_ID": machine, "_HOSTNAME": C, "PRIORITY": str(prio), "SYSLOG_FACILITY": "3",
            "SYSLOG_IDENTIFIER": ident, "_PID": str(pid_), "_UID": "0", "_GID": "0", "_COMM": ident[:15],
            "_SYSTEMD_UNIT": unit, "_TRANSPORT": "stdout", "MESSAGE": msg}))

    for r in refreshes:
        jrec(r, v.client, f"{v.client}.service", v.client_pid,
             f"refreshed endpoints for {v.svc}.{v.ns}.svc: " + ",".join(f"{e}:{v.port}" for e in endpoints_at(r)))
    t = T + s(0.7)
    while t < END:
        jrec(t, "kubelet", "kubelet.service", 1021, f"I{klog_day} kubelet_node_status.go:496 \"Node status update\" node=\"{C}\"")
        t += s(10) + rng.randint(0, 500) * 10**6
    # one request traced by the client's own tracer (Chrome trace-event JSON, epoch µs, host C wall)
    tr, cs, ip, _ = client_span_of[ft]
    t0c = ck.wall(2, ft) // US
    chrome = {"displayTimeUnit": "ms", "otherData": {"trace_id": tr, "host": C, "service": v.client},
              "traceEvents": [
                  {"ph": "M", "name": "process_name", "pid": v.client_pid, "tid": v.client_pid, "args": {"name": v.client}},
                  {"ph": "M", "name": "thread_name", "pid": v.client_pid, "tid": v.client_pid, "args": {"name": "event-loop"}},
                  {"ph": "X", "name": f"GET {v.route}", "cat": "http", "pid": v.client_pid, "tid": v.client_pid,
                   "ts": t0c - 120, "dur": 760, "args": {"trace_id": tr, "span_id": cs}},
                  {"ph": "X", "name": "endpoint cache lookup", "cat": "discovery", "pid": v.client_pid, "tid": v.client_pid,
                   "ts": t0c - 100, "dur": 60, "args": {"cache_age_s": 25.1, "endpoints": 2}},
                  {"ph": "X", "name": f"connect {ip}:{v.port}", "cat": "net", "pid": v.client_pid, "tid": v.client_pid,
                   "ts": t0c, "dur": 310, "args": {"error": "ECONNREFUSED"}},
                  {"ph": "i", "name": "ECONNREFUSED", "cat": "net", "s": "t", "pid": v.client_pid, "tid": v.client_pid, "ts": t0c + 310},
                  {"ph": "X", "name": "respond 502", "cat": "http", "pid": v.client_pid, "tid": v.client_pid,
                   "ts": t0c + 420, "dur": 200},
              ]}

    # ------------------------------------------------------------------ write
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def write(rel: str, text: str, gz: bool = False) -> None:
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if gz:
            with open(p, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                f.write(text.encode())
        else:
            p.write_text(text, encoding="utf-8")
        files[rel] = p

    events.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    write(f"{A}/k8s/events.json", json.dumps({"apiVersion": "v1", "items": events, "kind": "List",
                                              "metadata": {"resourceVersion": ""}}, indent=4) + "\n")
    audit.sort(key=lambda x: x[0])
    write(f"{A}/k8s/audit.log", "".join(json.dumps(r, separators=(",", ":")) + "\n" for _, r in audit))
    if rec is None:
        syslog.sort(key=lambda x: x[0])
        write(f"{A}/syslog", "".join(f"{iso(t, 6, '+00:00')} {A} {m}\n" for t, m in syslog))
        strace.sort(key=lambda x: x[0])
        write(f"{A}/cron.strace", "".join(line + "\n" for _, line in strace))
    else:  # the real files, byte for byte
        for src, rel in REAL_FILES:
            p = out / A / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes((rec["dir"] / src).read_bytes())
            files[f"{A}/{rel}"] = p
    for h, rel in ((0, f"{A}/otel/traces.jsonl.gz"), (1, f"{B}/otel/traces.jsonl.gz"), (2, f"{C}/otel/traces.jsonl.gz")):
        svc = (v.upstream, v.svc, v.client)[h]
        sp = sorted(spans[h], key=lambda x: int(x["startTimeUnixNano"]))
        lines = []
        for i in range(0, len(sp), 40):
            lines.append(json.dumps({"resourceSpans": [{"resource": {"attributes": [
                _kv("service.name", svc), _kv("host.name", v.hosts[h]), _kv("k8s.namespace.name", v.ns),
                _kv("telemetry.sdk.language", "go")]}, "scopeSpans": [{"scope": {"name": "otelhttp", "version": "0.52.0"},
                                                                      "spans": sp[i:i + 40]}]}]}, separators=(",", ":")))
        write(rel, "\n".join(lines) + "\n", gz=True)
    app_b.sort(key=lambda x: x[0])
    write(f"{B}/{v.svc}.jsonl", "".join(json.dumps({"ts": iso(t), **r}, separators=(",", ":")) + "\n" for t, r in app_b))
    tc = T + s(2.5)
    while tc < END:  # the client's own periodic log
        app_c.append((ck.wall(2, tc), {"level": "info", "service": v.client, "host": C, "msg": "stats",
                                       "inflight": rng.randint(0, 4)}))
        tc += s(30)
    app_c.sort(key=lambda x: x[0])
    write(f"{C}/{v.client}.jsonl", "".join(json.dumps({"ts": iso(t), **r}, separators=(",", ":")) + "\n" for t, r in app_c))
    journal.sort(key=lambda x: x[0])
    write(f"{C}/journal.json", "".join(json.dumps(r, separators=(",", ":")) + "\n" for _, r in journal))
    perf_c.sort(key=lambda x: x[0])
    first_s, last_s = perf_c[0][0] / NS, perf_c[-1][0] / NS
    rec_start = T + s(0.1)  # perf record started: the reference time pairs C's wall clock and its monotonic
    header = _perf_header(C, first_s, last_s, ck.wall(2, rec_start), ck.boot_c(rec_start), ck.wall(2, END))
    body = "".join(f"{v.client:>16} {v.client_pid:>5} [{cpu:03d}] {t // NS}.{(t % NS) // US:06d}: sock:inet_sock_set_state: {f}\n"
                   for t, cpu, f in perf_c)
    write(f"{C}/perf-tcp.txt.gz", header + body, gz=True)
    write(f"{C}/request-{tr[:8]}.trace.json", json.dumps(chrome, indent=1) + "\n")

    # ------------------------------------------------------------------ truth
    t_mid = T + (END - T) // 2
    truth["clocks"] = {
        A: {"wall_correction_ns": 0, "drift_ppm": 0.0,
            "note": "reference" if rec is None else "reference: the recording machine's own wall clock "
                    f"(its files in {A}/ are real recordings; see data/{v.recording})"},
        B: {"wall_correction_ns": -int(v.b_ahead_s * NS), "drift_ppm": 0.0,
            "note": f"wall clock {v.b_ahead_s:+g} s ahead (fixed)"},
        C: {"wall_correction_ns_at": {"t": iso(t_mid), "ns": -(ck.wall(2, t_mid) - t_mid)},
            "wall_correction_ns_at_start": -(ck.wall(2, T) - T), "drift_ppm": -v.c_drift_ppm,
            "note": f"wall clock {v.c_ahead_s:+g} s off at {iso(T)} and gaining {v.c_drift_ppm:+g} ppm; "
                    "boot clock shares the oscillator",
            "boot_time_ns": T - int(v.c_uptime_s * NS), "boot_time": iso(T - int(v.c_uptime_s * NS)),
            "boot_correction_ns_at_start": T - ck.boot_c(T), "boot_id": boot_id},
    }
    truth["sources"] = {
        f"{A}/k8s/events.json": {"host": A, "clock": "realtime", "precision": "1 s"},
        f"{A}/k8s/audit.log": {"host": A, "clock": "realtime"},
        f"{A}/syslog": {"host": A, "clock": "realtime"},
        f"{A}/cron.strace": {"host": A, "clock": "realtime"},
        **({} if rec is None else {
            f"{A}/journal.json": {"host": A, "clock": "realtime", "also": "CLOCK_MONOTONIC in every record"},
            f"{A}/perf-sched.txt": {"host": A, "clock": "perf", "note": "perf's default clock (local_clock, from "
                                    "boot); its UTC epoch is known from the recording's calibration"}}),
        f"{A}/otel/traces.jsonl.gz": {"host": A, "clock": "realtime"},
        f"{B}/otel/traces.jsonl.gz": {"host": B, "clock": "realtime"},
        f"{B}/{v.svc}.jsonl": {"host": B, "clock": "realtime"},
        f"{C}/otel/traces.jsonl.gz": {"host": C, "clock": "realtime"},
        f"{C}/{v.client}.jsonl": {"host": C, "clock": "realtime"},
        f"{C}/journal.json": {"host": C, "clock": "realtime", "also": "monotonic (boot) in every record"},
        f"{C}/perf-tcp.txt.gz": {"host": C, "clock": "monotonic", "note": "perf record -k CLOCK_MONOTONIC: time since boot"},
        f"{C}/request-{tr[:8]}.trace.json": {"host": C, "clock": "realtime", "note": "epoch µs from the client's tracer"},
    }
    stamp = {A: lambda t: ck.wall(0, t), B: lambda t: ck.wall(1, t), C: lambda t: ck.wall(2, t)}
    for m in truth["sources"].values():
        if m["clock"] == "perf":  # real: UTC = perf clock + epoch (TRUTH.json kernel_clocks of the recording)
            st = t_mid - rec["kernel_clocks"]["perf_epoch_ns"]
            m["truth_half_ns"] = rec["kernel_clocks"]["perf_half_ns"]
        else:
            st = ck.boot_c(t_mid) if m["clock"] in ("boot", "monotonic") else stamp[m["host"]](t_mid)
        if rec is not None and m["host"] == A:
            m["recorded"] = True
        m["mid"] = iso(t_mid)
        m["stamp_at_mid_ns"] = st
        m["correction_at_mid_ns"] = t_mid - st  # what ts = ts_src + correction must add there
    truth["names"] = {"namespace": v.ns, "service": v.svc, "client": v.client, "upstream": v.upstream,
                      "hosts": list(v.hosts), "endpointslice": slice_name, "old_pods": list(v.old_pods),
                      "new_pods": list(v.new_pods), "old_ips": list(v.old_ips), "new_ips": list(v.new_ips)}
    truth["files"] = {rel: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "bytes": p.stat().st_size}
                      for rel, p in sorted(files.items())}
    (out / "TRUTH.json").write_text(json.dumps(truth, indent=1) + "\n")
    (out / "TRUTH.md").write_text(_truth_md(v, truth))
    return truth


# (file in the recording, name in the incident) for a recorded host A
REAL_FILES = (("syslog.log", "syslog"), ("strace.txt", "cron.strace"), ("journal.json", "journal.json"),
              ("perf.txt", "perf-sched.txt"))


def _ttt(ns: int) -> str:
    return f"{ns // NS}.{(ns % NS) // US:06d}"


def _kv(k: str, val) -> dict:
    if isinstance(val, bool):
        return {"key": k, "value": {"boolValue": val}}
    if isinstance(val, int):
        return {"key": k, "value": {"intValue": str(val)}}
    return {"key": k, "value": {"stringValue": str(val)}}


def _span(trace, span, parent, name, kind, start, end, attrs, error):
    sp = {"traceId": trace, "spanId": span, "parentSpanId": parent, "name": name, "kind": kind,
          "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
          "attributes": [_kv(k, a) for k, a in attrs.items()], "status": {}}
    if error:
        sp["status"] = {"code": 2, "message": error}
    return sp


def _tcp(ck: Clocks, t: int, dur: int, sport: int, saddr: str, daddr: str, dport: int, ok: bool):
    f = (f"family=AF_INET protocol=IPPROTO_TCP sport={sport} dport={dport} saddr={saddr} daddr={daddr} "
         f"saddrv6=::ffff:{saddr} daddrv6=::ffff:{daddr}")
    cpu = sport % 2
    if not ok:
        return [(ck.boot_c(t), cpu, f + " oldstate=TCP_CLOSE newstate=TCP_SYN_SENT"),
                (ck.boot_c(t + dur), cpu, f + " oldstate=TCP_SYN_SENT newstate=TCP_CLOSE")]
    est = t + 250 * US
    return [(ck.boot_c(t), cpu, f + " oldstate=TCP_CLOSE newstate=TCP_SYN_SENT"),
            (ck.boot_c(est), cpu, f + " oldstate=TCP_SYN_SENT newstate=TCP_ESTABLISHED"),
            (ck.boot_c(t + dur), cpu, f + " oldstate=TCP_ESTABLISHED newstate=TCP_FIN_WAIT1"),
            (ck.boot_c(t + dur + 90 * US), cpu, f + " oldstate=TCP_FIN_WAIT1 newstate=TCP_FIN_WAIT2"),
            (ck.boot_c(t + dur + 150 * US), cpu, f + " oldstate=TCP_FIN_WAIT2 newstate=TCP_CLOSE")]


def _perf_header(host: str, first_s: float, last_s: float, ref_tod_ns: int, ref_mono_ns: int,
                 captured_ns: int) -> str:
    """`perf script --header` of a `perf record -k CLOCK_MONOTONIC` capture (perf 6.1): the
    clockid lines and the reference time pairing the host's wall clock with CLOCK_MONOTONIC
    (layout as in tests/fixtures/perf/perf_clockid_header.txt, recorded with the real tool)."""
    ref_date = (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ref_tod_ns // 1000)).strftime("%Y-%m-%d %H:%M:%S.%f")
    cap = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=captured_ns // NS)
    captured = f"{cap:%a %b} {cap.day:2d} {cap:%H:%M:%S %Y}"
    return (
        "# ========\n"
        f"# captured on    : {captured}\n"
        "# header version : 1\n"
        "# data offset    : 584\n"
        "# data size      : 1048576\n"
        "# feat offset    : 1049160\n"
        f"# hostname : {host}\n"
        "# os release : 6.1.0-37-cloud-amd64\n"
        "# perf version : 6.1.187\n"
        "# arch : x86_64\n"
        "# nrcpus online : 2\n"
        "# nrcpus avail : 2\n"
        "# cpudesc : Intel(R) Xeon(R) Processor\n"
        "# cpuid : GenuineIntel,6,167,1\n"
        "# total memory : 8148244 kB\n"
        f"# cmdline : /usr/bin/perf record -k CLOCK_MONOTONIC -o /var/tmp/perf-tcp.data -e sock:inet_sock_set_state -a -- sleep {round(last_s - first_s) + 10} \n"
        "# event : name = sock:inet_sock_set_state, , id = { 1612, 1613 }, type = 2, size = 128, config = 0x5a2, "
        "{ sample_period, sample_freq } = 1, sample_type = IP|TID|TIME|CPU|PERIOD|RAW|IDENTIFIER, read_format = ID|LOST, "
        "disabled = 1, inherit = 1, sample_id_all = 1, exclude_guest = 1, use_clockid = 1, clockid = 1\n"
        "# CPU_TOPOLOGY info available, use -I to display\n"
        "# pmu mappings: software = 1, uprobe = 8, breakpoint = 5, tracepoint = 2, msr = 9\n"
        f"# time of first sample : {first_s:.6f}\n"
        f"# time of last sample : {last_s:.6f}\n"
        f"# sample duration : {1000 * (last_s - first_s):10.3f} ms\n"
        "# clockid frequency: 1000 MHz\n"
        "# clockid: monotonic (1)\n"
        f"# reference time: {ref_date} = {ref_tod_ns // NS}.{(ref_tod_ns % NS) // US:06d} (TOD) = "
        f"{ref_mono_ns // NS}.{ref_mono_ns % NS:09d} (monotonic)\n"
        "# missing features: BRANCH_STACK GROUP_DESC AUXTRACE STAT DIR_FORMAT COMPRESSED CPU_PMU_CAPS "
        "HYBRID_TOPOLOGY \n"
        "# ========\n"
        "#\n"
    )


def _truth_md(v: Variant, truth: dict) -> str:
    A, B, C = v.hosts
    lines = [f"# The true story of incident `{v.name}`", "",
             f"Generated by `data/gen_incident.py --variant {v.name}` (seed {v.seed}). The machine-readable twin is "
             "`TRUTH.json`; tests read it.", "",
             *([f"**{A}'s syslog, cron strace, journal and perf files are real recordings** made on one machine by "
                f"`data/{v.recording.rsplit('/', 1)[0]}/record_demo.sh` (cron, strace, rsyslog, journald and perf "
                f"running for real; see `data/{v.recording}/` and its TRUTH.json). Everything else — Kubernetes, "
                f"spans, {B} and {C} — is generated by the seeded script around their times.", ""]
               if v.recording else []),
             "## What happened", "",
             f"- **{truth['deploy']['patch_applied']}** — a patch on `{A}` renamed `{v.cron_old}` to `{v.cron_new}`. "
             "Nothing logged it.",
             f"- **{truth['deploy']['time']}** — rolling update of `{v.ns}/{v.svc}` "
             f"({v.ver_old} → {v.ver_new}, config {v.cfg_old} → {v.cfg_new}). No log line announces it: it shows only "
             "as new pods, EndpointSlice changes, a version change in the service's logs and the cron failures.",
             f"- The client `{v.client}` on `{C}` refreshes its endpoint cache every 30 s, so after the EndpointSlice "
             f"dropped `{v.old_ips[0]}` and `{v.old_ips[1]}` it kept connecting to them: "
             f"{len(truth['failed_requests'])} requests failed with ECONNREFUSED.",
             f"- The cron job `* * * * * root {v.cron_old}` on `{A}` kept firing every minute; from the first firing "
             f"after the patch it exits 127 (`not found`) and cron discards the output (no MTA): "
             f"{truth['cron']['fails_after_patch']} silent failures in the window.", "",
             "## Cron firings", "", "| time | pid | exit status |", "|---|---|---|",
             *[f"| {f['time']} | {f['pid']} | {f['exit']} |" for f in truth["cron"]["firings"]], "",
             "## Clocks", "", "| host | truth |", "|---|---|"]
    for h, c in truth["clocks"].items():
        lines.append(f"| `{h}` | {c['note']} |")
    lines += ["", "## Racing events", ""]
    for r in truth["race"]:
        lines.append(f"- {r['a']['what']} ({r['a']['time']}) then {r['b']['what']} ({r['b']['time']}): "
                     f"{'decidable' if r['decidable'] else 'NOT decidable from the dumps'} — {r['why']}.")
    lines += ["", "## Transitions", "", "| time | entity | to | kind |", "|---|---|---|---|"]
    for tr in truth["transitions"]:
        lines.append(f"| {tr['time']} | `{tr['entity']}` | {tr['to']} | {tr['kind']} |")
    lines += ["", "## Files", "", "| file | host | clock |", "|---|---|---|"]
    for f, m in truth["sources"].items():
        lines.append(f"| `{f}` | {m['host']} | {m['clock']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="shop")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=None, help="override the variant's seed")
    a = ap.parse_args()
    v = VARIANTS[a.variant]
    if a.seed is not None:
        v.seed = a.seed
    truth = generate(v, Path(a.out))
    print(f"wrote {len(truth['files'])} files to {a.out}: deploy at {truth['deploy']['time']}, "
          f"{len(truth['failed_requests'])} failed requests, {truth['cron']['fails_after_patch']} silent cron failures")


if __name__ == "__main__":
    main()
