"""Clock alignment: estimate each clock domain's correction from the evidence the dumps share.

Model per clock domain (host × clock kind × boot; DESIGN.md "Clocks")::

    ts = ts_src + offset + drift · (ts_src − t0)

Evidence, all reduced to constraints on the difference of two domains' corrections
``c_B − c_A`` (the domain B's correction minus A's):

* **equality** — the same occurrence seen in two domains (a process exec/exit seen by strace
  and ftrace for the same pid, user-named keys such as a request id, journald's paired
  realtime/monotonic clocks, a perf ``reference time`` header, kernel ``[uptime]`` stamps in
  syslog): ``c_B − c_A = a − b`` up to the two records' precision (a time truncated to 1 s lies
  in ``[t, t + 1 s)``) and latency jitter;
* **containment** — a log line carrying a span's ids was written while the span was open:
  ``start ≤ log + (c_log − c_span) ≤ end``, a two-sided bound, not a point;
* **causal order** — a child span inside its parent (in another domain): a two-sided bound.

Each pair of domains gets a robust fit: Theil–Sen for drift (when the evidence spans enough
time), the median for the offset, an interval from the residuals (or from the precision
bounds when times are coarse), intersected with the hard inequality bounds; the ``bound``
column says which limited it. Mismatched pairs do not move a median; the trimmed inequality
bounds drop the most extreme 10 %. Domains reach the reference through the tightest chain of
fits (intervals add up along it). A domain with no evidence is listed as unaligned — never
silently given offset 0. Every correction is a row in ``Alignment.clocks``.

Example::

    >>> al = tl.align()                          # doctest: +SKIP
    >>> al.clocks.to_pandas()                    # doctest: +SKIP
    >>> tl2 = al.timeline                        # ts rewritten, ts_src untouched  # doctest: +SKIP
"""

from __future__ import annotations

import heapq
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _select, _time
from .errors import TimeError
from .timeline import Timeline

__all__ = ["Alignment", "align", "EXEC_NAMES", "EXIT_NAMES"]

#: event names that mean "this pid exec'd" / "this pid exited", across readers
EXEC_NAMES = ("execve", "execveat", "exec", "sched_process_exec", "process_exec")
EXIT_NAMES = ("exit", "sched_process_exit", "process_exit", "killed")
# strace also has an ``exit``/``exit_group`` *syscall*; the process's end is the row whose state
# is ``exit`` (strace's ``+++ exited with N +++``, ftrace/perf ``sched_process_exit``)

_MIN_DRIFT_PAIRS = 10
#: how far a tracer's kernel clock (perf's local_clock, ftrace's trace clock) may sit from
#: CLOCK_MONOTONIC or the printk clock: 0.33 ms and 26.4 ms were measured on one real machine
#: (data/recordings/cron-rename); an anchor through another clock is widened by this much
KERNEL_CLOCK_SLACK_NS = 50_000_000
_MIN_DRIFT_SPAN_NS = 60 * 10**9
_TRIM = 0.10  # share of inequality bounds treated as possibly mismatched
_Z = 1.96

CLOCK_SCHEMA = pa.schema(
    [
        ("domain", pa.string()),
        ("sources", pa.string()),
        ("status", pa.string()),  # reference | aligned | pinned | anchored | unaligned
        ("offset", pa.duration("ns")),
        ("drift_ppm", pa.float64()),
        ("t0", pa.int64()),  # ts_src (in the domain's own clock) the offset is given at
        ("offset_lo", pa.duration("ns")),
        ("offset_hi", pa.duration("ns")),
        ("bound", pa.string()),  # what limited the interval
        ("method", pa.string()),
        ("via", pa.string()),  # the domain it was fitted against
        ("evidence", pa.int64()),
        ("residual_mad", pa.duration("ns")),
    ]
)

EVIDENCE_SCHEMA = pa.schema(
    [
        ("domain_a", pa.string()),
        ("domain_b", pa.string()),
        ("type", pa.string()),  # equality | lower | upper
        ("matcher", pa.string()),
        ("key", pa.string()),
        ("t", pa.int64()),  # b's ts_src (where the fit is evaluated)
        ("d", pa.int64()),  # estimate of c_B - c_A (equality) or the bound
        ("half", pa.int64()),  # precision half-width of the equality
        ("residual", pa.int64()),
        ("inlier", pa.bool_()),
    ]
)


# --------------------------------------------------------------------------- evidence


@dataclass
class _Ev:
    """Evidence arrays between two domains, oriented so that ``d`` estimates c_B − c_A."""

    a: str
    b: str
    matcher: str
    kind: str  # equality | lower | upper
    t: np.ndarray
    d: np.ndarray
    half: np.ndarray
    keys: list[str] = field(default_factory=list)


def _domains(tl: Timeline) -> dict[str, str]:
    """source → clock-domain key. A source whose reader named no host but whose events all
    carry one host is placed on that host. Wall-clock sources of an unknown host are each
    their own domain (nothing says two unknown machines share a clock)."""
    if "domains" in tl._cache:
        return dict(tl._cache["domains"])
    hosts: dict[str, str] = {}
    need = any(r["status"] == "loaded" and not r["host"] for r in tl.sources.to_pylist())
    if need and tl.events.num_rows:  # only sources without a host need their events' host
        g = tl.sql("select source::VARCHAR s, min(host) h, count(distinct host) n, count(host) c, count(*) t "
                   "from events group by 1")
        hosts = {s: h for s, h, n, c, t in zip(*(g.column(i).to_pylist() for i in range(5))) if n == 1 and c == t}
    out = {}
    for r in tl.sources.to_pylist():
        if r["status"] != "loaded":
            continue
        host = r["host"] or hosts.get(r["source"])
        if not host and r["clock"] in ("realtime", "unknown"):
            out[r["source"]] = f"source={r['source']}"
            continue
        dom = f"host={host or '?'};clock={r['clock']}"
        boot = (r["domain"] or "").partition(";boot=")[2]
        if boot and r["clock"] in ("boot", "monotonic"):  # a wall clock runs on across reboots
            dom += f";boot={boot.split(';')[0]}"
        if r["clock"] == "boot":
            # each tracer's kernel clock is its own: perf's local_clock, ftrace's trace clock and
            # the printk clock differed by 0.3-27 ms on a real machine (data/recordings)
            dom += f";tracer={r['format']}"
        if r["clock"] == "relative":
            dom += f";source={r['source']}"
        out[r["source"]] = dom
    tl._cache["domains"] = dict(out)
    return out


def _event_frame(tl: Timeline, domains: dict[str, str], keys: Sequence[str] = ()) -> pd.DataFrame:
    """The rows that can be evidence (exec/exit with a pid, span ids, user keys), as pandas.

    Filtered with Arrow compute first, so aligning millions of events converts only the few
    that matter.
    """
    ev = tl.events
    if ev.num_rows == 0:
        return pd.DataFrame(columns=["ts_src", "prec", "dur", "source", "kind", "name", "pid", "trace_id",
                                     "span_id", "parent_id", "domain"])
    names = pa.array(list(EXEC_NAMES + EXIT_NAMES + ("exit_group",)))
    mask = pc.and_(pc.is_in(ev.column("name"), value_set=names), pc.is_valid(ev.column("pid")))
    syscall_exit = pc.and_(pc.equal(ev.column("name"), "exit"),
                           pc.fill_null(pc.not_equal(ev.column("state"), "exit"), True))
    mask = pc.and_(mask, pc.invert(pc.fill_null(syscall_exit, False)))
    mask = pc.or_(mask, pc.or_(pc.is_valid(ev.column("span_id")), pc.is_valid(ev.column("parent_id"))))
    key_cols = {}
    for k in keys:
        col = ev.column(k) if k in ev.column_names and k != "attrs" else pc.map_lookup(ev.column("attrs"), k, "first")
        key_cols[k] = col
        mask = pc.or_(mask, pc.is_valid(col))
    mask = pc.fill_null(mask, False)
    t = ev.select(["ts_src", "ts_prec", "dur", "source", "kind", "name", "pid", "trace_id", "span_id",
                   "parent_id", "value"]).filter(mask)
    df = pd.DataFrame({
        "ts_src": t.column("ts_src").to_numpy(),
        "prec": pc.fill_null(t.column("ts_prec").cast(pa.int64()), 0).to_numpy(),
        "dur": t.column("dur").cast(pa.int64()).to_pandas(),
        "source": t.column("source").cast(pa.string()).to_pandas(),
        "kind": t.column("kind").cast(pa.string()).to_pandas(),
        "name": t.column("name").to_pandas(),
        "pid": t.column("pid").to_pandas(),
        "trace_id": t.column("trace_id").to_pandas(),
        "span_id": t.column("span_id").to_pandas(),
        "parent_id": t.column("parent_id").to_pandas(),
        "value": t.column("value").to_pandas(),
    })
    for k, col in key_cols.items():
        if k not in df:
            df[k] = col.filter(mask).cast(pa.string()).to_pandas()
    df["domain"] = df["source"].map(domains)
    return df[df["domain"].notna()]


def _unique_per_domain(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """Rows whose key occurs once in their domain (a reused pid or repeated id is no evidence)."""
    counts = df.groupby(["domain", key], sort=False)[key].transform("size")
    return df[counts == 1]


def _pairs_from_keys(df: pd.DataFrame, key: str, matcher: str) -> list[_Ev]:
    """Equality evidence: rows of different domains sharing ``key``.

    Each row says where, on its own clock, the shared moment lies: ``[lo, hi]`` (default
    ``[ts, ts + ts_prec]``; a strace ``execve`` call spans the kernel's exec, see
    :func:`_moment_bounds`). Then ``c_B - c_A`` lies in ``[a_lo - b_hi, a_hi - b_lo]``.
    """
    cols = ["domain", key, "ts_src", "prec"] + [c for c in ("lo", "hi") if c in df]
    sub = df[df[key].notna()][cols]
    sub = _unique_per_domain(sub, key)
    if sub.empty:
        return []
    if "lo" not in sub:
        sub = sub.assign(lo=sub["ts_src"], hi=sub["ts_src"] + sub["prec"])
    m = sub.merge(sub, on=key, suffixes=("_a", "_b"))
    m = m[m["domain_a"] < m["domain_b"]]
    out = []
    for (da, db), g in m.groupby(["domain_a", "domain_b"], sort=True):
        alo, ahi = g["lo_a"].to_numpy(np.int64), g["hi_a"].to_numpy(np.int64)
        blo, bhi = g["lo_b"].to_numpy(np.int64), g["hi_b"].to_numpy(np.int64)
        lo, hi = alo - bhi, ahi - blo
        d = lo + (hi - lo) // 2
        half = (hi - lo) // 2
        out.append(_Ev(da, db, matcher, "equality", (blo + bhi) // 2, d, half, g[key].astype(str).tolist()))
    return out


def _moment_bounds(df: pd.DataFrame, fmt_of: dict[str, str]) -> pd.DataFrame:
    """Own-clock interval ``[lo, hi]`` in which each row's moment lies.

    A kernel tracer stamps the event itself (``[ts, ts + ts_prec]``). strace stamps the
    *syscall*: the kernel's exec happens inside the ``execve`` call (``[start, start + dur]``),
    and the process ends between the start of its ``exit_group`` and the ``+++ exited`` line
    strace prints after it (10 ms before that line when there is no ``exit_group``)."""
    lo = df["ts_src"].to_numpy(np.int64).copy()
    hi = lo + df["prec"].to_numpy(np.int64)
    is_strace = df["source"].map(fmt_of).eq("strace").to_numpy()
    if is_strace.any():
        name = df["name"].fillna("").to_numpy()
        dur = df["dur"].fillna(-1).to_numpy(np.int64)
        ex = is_strace & np.isin(name, EXEC_NAMES) & (dur >= 0)
        hi[ex] = lo[ex] + dur[ex]
        ends = is_strace & np.isin(name, EXIT_NAMES)
        if ends.any():
            eg = df[is_strace & (name == "exit_group")]
            start_of = dict(zip(zip(eg["source"], eg["pid"]), eg["ts_src"]))
            for i in np.flatnonzero(ends):
                s0 = start_of.get((df["source"].iat[i], df["pid"].iat[i]))
                hi[i] = lo[i]
                lo[i] = int(s0) if s0 is not None and s0 <= lo[i] else lo[i] - 10_000_000
    return df.assign(lo=lo, hi=hi)


def _process_keys(df: pd.DataFrame) -> pd.Series:
    """``exec:<pid>:<n>`` for the n-th successful exec of a pid in its source (a shell that
    execs a script execs twice), ``exit:<pid>`` for its end; failed execve calls are no exec."""
    name = df["name"].fillna("")
    failed = df["value"].fillna(0).lt(0) if "value" in df else pd.Series(False, index=df.index)
    typ = np.where(name.isin(EXEC_NAMES) & ~failed, "exec", np.where(name.isin(EXIT_NAMES), "exit", ""))
    ok = (typ != "") & df["pid"].notna()
    key = pd.Series(None, index=df.index, dtype=object)
    pid = df.loc[ok, "pid"].astype("int64").astype(str)
    sub = df.loc[ok].assign(_t=typ[ok.to_numpy()])
    nth = sub.sort_values("ts_src").groupby(["source", "pid", "_t"]).cumcount().reindex(sub.index)
    key[ok] = np.where(sub["_t"] == "exec", "exec:" + pid + ":" + nth.astype(str), "exit:" + pid)
    return key


def _span_bounds(df: pd.DataFrame) -> list[_Ev]:
    """Containment (log with span_id inside its span) and causal (child inside parent) bounds."""
    out: list[_Ev] = []
    spans = df[(df["kind"] == "span") & df["span_id"].notna() & df["dur"].notna()]
    if spans.empty:
        return out
    spans = _unique_per_domain(spans[["domain", "span_id", "ts_src", "dur"]], "span_id")
    spans = spans.rename(columns={"domain": "domain_s", "ts_src": "start", "dur": "sdur"})
    logs = df[(df["kind"] != "span") & df["span_id"].notna()][["domain", "span_id", "ts_src"]]
    for label, inner, key in (
        ("containment", logs.assign(idur=0), "span_id"),
        ("causal", df[(df["kind"] == "span") & df["parent_id"].notna() & df["dur"].notna()]
         [["domain", "parent_id", "ts_src", "dur"]].rename(columns={"parent_id": "span_id", "dur": "idur"}), "span_id"),
    ):
        if inner.empty:
            continue
        m = inner.merge(spans, on=key)
        m = m[m["domain"] != m["domain_s"]]
        for (di, ds), g in m.groupby(["domain", "domain_s"], sort=True):
            x = g["ts_src"].to_numpy(np.int64)
            xd = g["idur"].to_numpy(np.int64)
            s = g["start"].to_numpy(np.int64)
            e = s + g["sdur"].to_numpy(np.int64)
            # start_s + c_S <= x + c_I  and  x + xd + c_I <= end_s + c_S
            # => c_I - c_S in [s - x, e - x - xd]
            lo, hi = s - x, e - x - xd
            if di < ds:  # orient as c_B - c_A with A < B: A = inner, B = span -> negate
                a, b, tlo, thi = di, ds, -hi, -lo
            else:
                a, b, tlo, thi = ds, di, lo, hi
            z = np.zeros(len(x), np.int64)
            out.append(_Ev(a, b, label, "lower", x, tlo, z))
            out.append(_Ev(a, b, label, "upper", x, thi, z))
    return out


def _anchor_evidence(tl: Timeline, domains: dict[str, str]) -> list[_Ev]:
    """Equalities between a host's boot clock and its wall clock, from what readers recorded:
    journald's realtime/monotonic pairs (attrs ``monotonic_ns``) and boot anchors in meta."""
    out: list[_Ev] = []
    rows = {r["source"]: r for r in tl.sources.to_pylist() if r["status"] == "loaded"}
    def host_of(src: str) -> str | None:
        d = domains[src]
        return d[5:].split(";")[0] if d.startswith("host=") and not d.startswith("host=?") else None

    boot_domains: dict[str, list[str]] = {}
    kind_of: dict[str, tuple[str, str]] = {}
    for src, r in rows.items():
        if r["clock"] in ("boot", "monotonic") and host_of(src):
            boot_domains.setdefault(host_of(src), []).append(domains[src])
            kind_of[domains[src]] = (r["clock"], r["format"] or "")
    if not boot_domains:
        return out
    ev = tl.events
    for src, r in rows.items():
        host = host_of(src)
        if not host or host not in boot_domains or r["clock"] != "realtime":
            continue
        wall_dom = domains[src]
        pairs_wall: list[np.ndarray] = []
        pairs_boot: list[np.ndarray] = []
        # journald: realtime ts_src with the record's monotonic time in attrs
        halfs: list[np.ndarray] = []
        mask = pc.equal(ev.column("source").cast(pa.string()), src)
        sub = ev.filter(mask)
        for key in ("tk.monotonic_ns", "monotonic_ns"):
            if not sub.num_rows:
                break
            mono = pc.map_lookup(sub.column("attrs"), key, "first")
            ok = pc.is_valid(mono)
            if pc.any(ok).as_py():
                pairs_wall.append(sub.column("ts_src").filter(ok).to_numpy())
                pairs_boot.append(mono.filter(ok).cast(pa.int64(), safe=False).to_numpy())
                halfs.append(np.full(len(pairs_wall[-1]), 500, np.int64))
                break
        anchor_clock = "monotonic" if pairs_wall else "printk"
        if not pairs_wall:
            # summaries readers recorded: boot time on the wall clock (syslog [uptime] stamps,
            # journald per boot id): {key: {"anchor_ns"|"boot_ns": ..., "prec_ns"|"spread_ns": ...}}
            extra = (tl.meta.get(src) or {}).get("extra") or {}
            anchors = extra.get("boot_anchors") or {}
            items = anchors.values() if isinstance(anchors, dict) else anchors
            for anc in items:
                if not isinstance(anc, dict):
                    continue
                base = anc.get("anchor_ns", anc.get("boot_ns"))
                if base is None:
                    continue
                half = int(anc.get("prec_ns") or 0) // 2 + int(anc.get("spread_ns") or 0) // 2 + 1
                pairs_wall.append(np.array([int(base)], np.int64))  # wall = base + boot (boot = 0)
                pairs_boot.append(np.array([0], np.int64))
                halfs.append(np.array([half], np.int64))
        if not pairs_wall:
            continue
        w = np.concatenate(pairs_wall)
        b = np.concatenate(pairs_boot)
        h0 = np.concatenate(halfs)
        for bd in set(boot_domains[host]):
            clock, fmt = kind_of.get(bd, ("boot", ""))
            same = (anchor_clock == "monotonic" and clock == "monotonic") or \
                (anchor_clock == "printk" and fmt == "dmesg")
            # another kernel clock than the anchor's: linked, with the slack such clocks showed
            h = h0 if same else h0 + KERNEL_CLOCK_SLACK_NS
            # c_boot - c_wall = w - b
            if wall_dom < bd:
                out.append(_Ev(wall_dom, bd, "clock-anchor", "equality", b, w - b, h))
            else:
                out.append(_Ev(bd, wall_dom, "clock-anchor", "equality", w, b - w, h))
    return out


# --------------------------------------------------------------------------- fitting


@dataclass
class _Fit:
    a: str
    b: str
    offset: int  # c_B - c_A at t0 (b's clock)
    drift_ppm: float
    t0: int
    lo: int  # interval of the offset at t0
    hi: int
    bound: str
    method: str
    n: int
    mad: int
    rows: list[dict] = field(default_factory=list)


def _theil_sen(t: np.ndarray, y: np.ndarray, rng: np.random.Generator, max_pairs: int = 20000) -> float:
    n = len(t)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, 1)
    else:
        i = rng.integers(0, n, max_pairs)
        j = rng.integers(0, n, max_pairs)
    dt = (t[j] - t[i]).astype(np.float64)
    ok = dt != 0
    if not ok.any():
        return 0.0
    return float(np.median((y[j] - y[i])[ok].astype(np.float64) / dt[ok]))


def _kth(values: np.ndarray, largest: bool) -> int:
    """The bound after trimming the most extreme share (_TRIM) of possibly-mismatched pairs."""
    v = np.sort(values)
    k = int(np.floor(_TRIM * len(v))) if len(v) >= 10 else 0
    return int(v[-1 - k] if largest else v[k])


def _fit_pair(evs: list[_Ev], rng: np.random.Generator) -> _Fit | None:
    eq = [e for e in evs if e.kind == "equality"]
    lows = [e for e in evs if e.kind == "lower"]
    ups = [e for e in evs if e.kind == "upper"]
    a, b = evs[0].a, evs[0].b
    L = _kth(np.concatenate([e.d for e in lows]), largest=True) if lows else None
    U = _kth(np.concatenate([e.d for e in ups]), largest=False) if ups else None
    ineq_label = "+".join(sorted({e.matcher for e in lows + ups}))
    rows: list[dict] = []
    if eq:
        t = np.concatenate([e.t for e in eq])
        d = np.concatenate([e.d for e in eq])
        half = np.concatenate([e.half for e in eq])
        keys = sum((e.keys or [""] * len(e.t) for e in eq), [])
        matcher = "+".join(sorted({e.matcher for e in eq}))
        n = len(d)
        t0 = int(np.median(t))
        span = int(t.max() - t.min()) if n else 0
        slope = 0.0
        method = f"median of {matcher} pairs"
        # drift only from fine stamps: 1 s stamps over 10 min cannot resolve ppm
        if n >= _MIN_DRIFT_PAIRS and span >= _MIN_DRIFT_SPAN_NS and np.median(half) < 1_000_000:
            slope = _theil_sen(t - t0, d, rng)
            method = f"Theil–Sen over {matcher} pairs"
        detr = d - np.rint((t - t0).astype(np.float64) * slope).astype(np.int64)
        off = int(np.median(detr))
        res = detr - off
        mad = int(np.median(np.abs(res)))
        sigma = 1.4826 * mad
        inlier = np.abs(res) <= np.maximum(5 * sigma, half + 1)
        # statistical interval of the median (asymptotic SE = 1.2533 σ / √n), floored at the
        # quantisation a median of n coarse stamps still carries
        ni = max(int(inlier.sum()), 1)
        qfloor = int(np.max(half[inlier]) / np.sqrt(ni)) if ni else 0
        w_stat = int(_Z * 1.2533 * sigma / np.sqrt(ni))
        lo, hi = off - max(w_stat, qfloor, 1), off + max(w_stat, qfloor, 1)
        bound = "residuals" if w_stat >= qfloor else "precision"
        # the pairs' own intervals: when they all meet (no jitter beyond what each pair says),
        # their intersection is a guaranteed bound that narrows as pairs are added; with fine
        # intervals over enough time, the drift is the slope that leaves the widest band
        if ni:
            dd, hh, tt = d[inlier], half[inlier], (t - t0)[inlier].astype(np.float64)

            def band(r: float) -> tuple[int, int]:
                sh = np.rint(r * tt).astype(np.int64)
                return int(np.max(dd - hh - sh)), int(np.min(dd + hh - sh))

            r_b = 0.0
            fine = np.median(hh) < 1_000_000
            if fine and len(dd) >= _MIN_DRIFT_PAIRS and span >= _MIN_DRIFT_SPAN_NS:
                a_, b_ = -1e-3, 1e-3
                for _ in range(80):
                    m1, m2 = a_ + (b_ - a_) / 3, b_ - (b_ - a_) / 3
                    g1, g2 = band(m1), band(m2)
                    if g1[0] - g1[1] <= g2[0] - g2[1]:
                        b_ = m2
                    else:
                        a_ = m1
                r_b = (a_ + b_) / 2
            bl, bh = band(r_b)
            if bl <= bh:
                lo, hi, bound = bl, bh, "intervals"
                off = (bl + bh) // 2
                slope = r_b
                method = f"intersection of {matcher} pair intervals" + (" (drift: widest band)" if r_b else "")
                res = d - np.rint((t - t0).astype(np.float64) * slope).astype(np.int64) - off
        rows.append({"type": np.full(n, "equality", dtype=object), "matcher": np.full(n, matcher, dtype=object),
                     "key": np.array((keys + [""] * n)[:n], dtype=object), "t": t, "d": d, "half": half,
                     "residual": res, "inlier": inlier})
        if L is not None and L > lo:
            lo, bound = L, ineq_label
        if U is not None and U < hi:
            hi, bound = U, ineq_label
        if lo > hi:  # the bounds disagree with the pairs: report the pairs' own interval
            lo, hi = off - max(w_stat, qfloor, 1), off + max(w_stat, qfloor, 1)
            bound = f"conflict with {ineq_label}"
        off = int(np.clip(off, lo, hi))
        return _Fit(a, b, off, slope * 1e6, t0, lo, hi, bound, method, n, mad, rows)
    if L is None or U is None:
        return None  # one-sided bounds cannot place a clock
    t = np.concatenate([e.t for e in lows + ups])
    for e in lows + ups:
        k = len(e.d)
        rows.append({"type": np.full(k, e.kind, dtype=object), "matcher": np.full(k, e.matcher, dtype=object),
                     "key": np.full(k, "", dtype=object), "t": e.t, "d": e.d, "half": np.zeros(k, np.int64),
                     "residual": np.zeros(k, np.int64), "inlier": np.ones(k, bool)})
    t0 = int(np.median(t))
    lt = np.concatenate([e.t for e in lows]) - t0
    lv = np.concatenate([e.d for e in lows])
    ut = np.concatenate([e.t for e in ups]) - t0
    uv = np.concatenate([e.d for e in ups])
    slope, method = 0.0, f"midpoint of {ineq_label} bounds"
    span = int(t.max() - t.min())
    if len(lv) >= 20 and len(uv) >= 20 and span >= _MIN_DRIFT_SPAN_NS:
        # drift from bounds alone: the slope r that leaves the widest feasible band
        # max(lo - r dt) <= min(hi - r dt); g(r) = L(r) - U(r) is convex (up to trimming)
        def gap(r: float) -> float:
            return _kth(lv - r * lt, True) - _kth(uv - r * ut, False)

        a_, b_ = -1e-3, 1e-3  # ±1000 ppm
        for _ in range(80):
            m1, m2 = a_ + (b_ - a_) / 3, b_ - (b_ - a_) / 3
            if gap(m1) <= gap(m2):
                b_ = m2
            else:
                a_ = m1
        r = (a_ + b_) / 2
        if gap(r) < gap(0.0):
            slope = r
            method = f"widest band over {ineq_label} bounds (drift from bounds)"
    Lr = _kth(lv - np.rint(slope * lt).astype(np.int64), True)
    Ur = _kth(uv - np.rint(slope * ut).astype(np.int64), False)
    if Lr > Ur:
        return _Fit(a, b, (Lr + Ur) // 2, slope * 1e6, t0, Ur, Lr, f"conflict in {ineq_label}",
                    method, len(t), 0, rows)
    return _Fit(a, b, (Lr + Ur) // 2, slope * 1e6, t0, Lr, Ur, ineq_label, method, len(t), 0, rows)


# --------------------------------------------------------------------------- alignment


class Alignment:
    """The result of :meth:`Timeline.align`: per-domain corrections with intervals, the evidence
    used, and the corrected :attr:`timeline`."""

    def __init__(self, clocks: pa.Table, evidence: pa.Table, timeline: Timeline | Callable[[], Timeline],
                 reference: str):
        self.clocks = clocks
        self.evidence = evidence
        self._timeline = timeline
        self.reference = reference

    @property
    def timeline(self) -> Timeline:
        """The corrected Timeline (``ts`` rewritten and re-sorted; built on first use)."""
        if callable(self._timeline):
            self._timeline = self._timeline()
        return self._timeline

    def __repr__(self) -> str:
        lines = [f"Alignment against {self.reference}:"]
        for r in self.clocks.to_pylist():
            off = _ns(r["offset"])
            lo, hi = _ns(r["offset_lo"]), _ns(r["offset_hi"])
            iv = f"[{_fmt_or_dash(lo)}, {_fmt_or_dash(hi)}]" if lo is not None else ""
            lines.append(f"  {r['domain']:<44.44} {r['status']:<9} {_fmt_or_dash(off):>12} {iv:<28} "
                         f"{r['drift_ppm'] or 0:+.2f} ppm  {r['bound'] or ''} ({r['evidence'] or 0} ev)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{c}</th>" for c in ("domain", "sources", "status", "offset", "interval",
                                                  "drift ppm", "bound", "method", "evidence"))
        rows = []
        for r in self.clocks.to_pylist():
            lo, hi = _ns(r["offset_lo"]), _ns(r["offset_hi"])
            cells = [r["domain"], r["sources"], r["status"], _fmt_or_dash(_ns(r["offset"])),
                     f"[{_fmt_or_dash(lo)}, {_fmt_or_dash(hi)}]" if lo is not None else "",
                     f"{r['drift_ppm']:+.2f}" if r["drift_ppm"] is not None else "",
                     r["bound"] or "", r["method"] or "", str(r["evidence"] or 0)]
            rows.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
        return (f"<div><b>Alignment</b> against <code>{esc(self.reference)}</code><table><thead><tr>{head}"
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _ns(v: Any) -> int | None:
    if v is None:
        return None
    return int(pd.Timedelta(v).value) if not isinstance(v, int) else v


def _fmt_or_dash(ns: int | None) -> str:
    return "—" if ns is None else _time.fmt_duration(ns)


def _pin_value(spec: Mapping[str, Any], clock: str) -> tuple[int, float]:
    off = 0
    if "boot_time" in spec:
        off = _time.to_time_ns(spec["boot_time"])
    if "offset" in spec:
        off += _time.to_duration_ns(spec["offset"])
    return off, float(spec.get("drift_ppm", 0.0))


def align(
    tl: Timeline,
    reference: str | None = None,
    pin: Mapping[str, Mapping[str, Any]] | None = None,
    keys: Sequence[str] = (),
    matchers: Sequence[str] = ("process", "keys", "span", "clock-anchor"),
    seed: int = 0,
) -> Alignment:
    """Estimate every clock domain against a reference; see the module docstring.

    ``reference``: a source selector (name, glob, ``host:NAME``, ``format:NAME``); default the
    wall-clock domain most sources share (ties: the best connected). ``pin``: selector → ``{"boot_time": ...}``,
    ``{"offset": "-2.7s"}`` and/or ``{"drift_ppm": ...}``, fixed by hand. ``keys``: columns or
    attrs keys whose equal values in two domains mark the same occurrence (e.g. a request id).

    Example::

        >>> al = tl.align(reference="host:node-a", keys=["request_id"])   # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    domains = _domains(tl)
    if not domains:
        raise TimeError("align: no loaded sources")
    srows = {r["source"]: r for r in tl.sources.to_pylist() if r["status"] == "loaded"}
    dom_sources: dict[str, list[str]] = {}
    for s, d in domains.items():
        dom_sources.setdefault(d, []).append(s)

    df = _event_frame(tl, domains, keys if "keys" in matchers else ())
    evs: list[_Ev] = []
    if "process" in matchers:
        df["_pkey"] = _process_keys(df)
        fmt_of = {s_: r["format"] for s_, r in srows.items()}
        evs += _pairs_from_keys(_moment_bounds(df, fmt_of), "_pkey", "process")
    if "keys" in matchers:
        for k in keys:
            col = df[k] if k in df.columns else pd.Series(None, index=df.index, dtype=object)
            df["_ukey"] = col.astype(object).where(col.notna(), None)
            evs += _pairs_from_keys(df, "_ukey", f"key:{k}")
    if "span" in matchers:
        evs += _span_bounds(df)
    if "clock-anchor" in matchers:
        evs += _anchor_evidence(tl, domains)

    by_pair: dict[tuple[str, str], list[_Ev]] = {}
    for e in evs:
        by_pair.setdefault((e.a, e.b), []).append(e)
    fits: dict[tuple[str, str], _Fit] = {}
    for k, group in by_pair.items():
        f = _fit_pair(group, rng)
        if f is not None:
            fits[k] = f

    # fixed nodes: pins and load-time anchors (certain), then the reference
    fixed: dict[str, tuple[int, float, str]] = {}
    for sel, spec in (pin or {}).items():
        hit = [s for s, r in srows.items() if _select.matches(sel, s, r["format"], r["host"])]
        if not hit:
            raise TimeError(f"align: pin {sel!r} selects no loaded source")
        for s in hit:
            off, dr = _pin_value(spec, srows[s]["clock"])
            fixed[domains[s]] = (off, dr, "pinned")
    # a load-time anchor (perf's reference time, a trace's base time) ties the source to its
    # host's *wall clock*, which may itself be off: link it to that host's realtime domain
    # exactly; only when the host has no other wall-clock source is it taken as UTC
    for s, r in srows.items():
        if not r["anchor"] or domains[s] in fixed:
            continue
        d = domains[s]
        host = d[5:].split(";")[0] if d.startswith("host=") else None
        wall_d = f"host={host};clock=realtime" if host and host != "?" else None
        if wall_d and wall_d in dom_sources and wall_d != d:
            off = _ns(r["offset"]) or 0  # c_anchored - c_wall
            rows_s = tl._source_rows().get(s)
            mid = int(np.median(tl.events.column("ts_src").to_numpy()[rows_s])) if rows_s is not None and len(rows_s) else 0
            a_, b_ = (wall_d, d) if wall_d < d else (d, wall_d)
            dd, tb = (off, mid) if a_ == wall_d else (-off, mid + off)  # t on B's own clock
            f = _fit_pair([_Ev(a_, b_, "load-time anchor", "equality", np.array([tb], np.int64),
                               np.array([dd], np.int64), np.array([1000], np.int64))], rng)
            if f is not None:
                old_f = fits.get((a_, b_))
                if old_f is None or (f.hi - f.lo) < (old_f.hi - old_f.lo):
                    fits[(a_, b_)] = f
            continue
        fixed[d] = (_ns(r["offset"]) or 0, 0.0, "anchored")

    wall = [d for d in dom_sources if all(srows[s]["clock"] == "realtime" for s in dom_sources[d])]
    if reference is not None:
        hit = [s for s, r in srows.items() if _select.matches(reference, s, r["format"], r["host"])]
        if not hit:
            raise TimeError(f"align: reference {reference!r} selects no loaded source")
        ref = domains[hit[0]]
    else:
        degree = {d: 0 for d in dom_sources}
        for (a, b), f in fits.items():
            degree[a] += f.n
            degree[b] += f.n
        nev = {d: sum(srows[s]["rows"] or 0 for s in dom_sources[d]) for d in dom_sources}
        cands = wall or list(fixed) or list(dom_sources)
        # the clock most sources share (a control-plane node), then the best connected
        ref = max(cands, key=lambda d: (len(dom_sources[d]), degree.get(d, 0), nev[d], d))
    if ref not in fixed:
        fixed[ref] = (0, 0.0, "reference")

    # Dijkstra from every fixed node over interval widths
    adj: dict[str, list[tuple[str, _Fit, int]]] = {}
    for (a, b), f in fits.items():
        adj.setdefault(a, []).append((b, f, +1))
        adj.setdefault(b, []).append((a, f, -1))
    state: dict[str, dict[str, Any]] = {}
    heap: list[tuple[int, str]] = []
    for d, (off, dr, status) in fixed.items():
        state[d] = {"offset": off, "drift": dr, "t0": 0, "lo": off, "hi": off, "status": status,
                    "bound": "pin" if status == "pinned" else ("anchor" if status == "anchored" else ""),
                    "method": status, "via": "", "n": 0, "mad": 0, "width": 0}
        heapq.heappush(heap, (0, d))
    done: set[str] = set()
    while heap:
        width, d = heapq.heappop(heap)
        if d in done:
            continue
        done.add(d)
        sd = state[d]
        for nb, f, sign in adj.get(d, []):
            if nb in done or nb in fixed:
                continue
            fw = f.hi - f.lo
            w = width + fw
            if nb in state and state[nb]["width"] <= w:
                continue
            # the fit relates c_B - c_A = f.offset + drift (t_B - f.t0); A's clock reads
            # t_A = t_B + (c_B - c_A), so the fit's moment is f.t0 on B and f.t0 + f.offset on A
            if sign > 0:  # d = A (known), nb = B
                c_d_at = sd["offset"] + sd["drift"] * 1e-6 * (f.t0 + f.offset - sd["t0"])
                off = c_d_at + f.offset
                lo, hi = c_d_at + f.lo + (sd["lo"] - sd["offset"]), c_d_at + f.hi + (sd["hi"] - sd["offset"])
                drift = sd["drift"] + f.drift_ppm
                t0_nb = f.t0
            else:  # d = B (known), nb = A: c_A = c_B - f.offset
                c_d_at = sd["offset"] + sd["drift"] * 1e-6 * (f.t0 - sd["t0"])
                off = c_d_at - f.offset
                lo, hi = c_d_at - f.hi + (sd["lo"] - sd["offset"]), c_d_at - f.lo + (sd["hi"] - sd["offset"])
                drift = sd["drift"] - f.drift_ppm
                t0_nb = f.t0 + f.offset
            state[nb] = {"offset": int(off), "drift": drift, "t0": int(t0_nb), "lo": int(lo), "hi": int(hi),
                         "status": "aligned", "bound": f.bound, "method": f.method, "via": d, "n": f.n,
                         "mad": f.mad, "width": w}
            heapq.heappush(heap, (w, nb))

    # unaligned domains: sources keep what they had at load (realtime as read, boot from epoch)
    rows = []
    corr = {}
    src_rows = tl.sources.to_pylist()
    for d in sorted(dom_sources):
        st = state.get(d)
        srcs = sorted(dom_sources[d])
        if st is None:
            rows.append({"domain": d, "sources": ", ".join(srcs), "status": "unaligned", "offset": None,
                         "drift_ppm": None, "t0": None, "offset_lo": None, "offset_hi": None,
                         "bound": "no evidence links it to the reference", "method": None, "via": None,
                         "evidence": 0, "residual_mad": None})
            continue
        rows.append({"domain": d, "sources": ", ".join(srcs), "status": st["status"], "offset": st["offset"],
                     "drift_ppm": st["drift"], "t0": st["t0"], "offset_lo": st["lo"], "offset_hi": st["hi"],
                     "bound": st["bound"], "method": st["method"], "via": st["via"], "evidence": st["n"],
                     "residual_mad": st["mad"]})
        for s in srcs:
            corr[s] = (None, st["offset"], st["drift"], st["t0"])  # rows looked up when built
    for r in src_rows:
        if r["source"] in corr:
            _, off, dr, t0 = corr[r["source"]]
            st = state[domains[r["source"]]]
            r["offset"], r["drift_ppm"], r["t0"], r["aligned"] = off, dr, t0, True
            r["offset_lo"], r["offset_hi"] = st["lo"], st["hi"]
            if st["status"] == "aligned":
                note = (f"aligned: {_fmt_or_dash(off)} [{_fmt_or_dash(st['lo'])}, {_fmt_or_dash(st['hi'])}] {dr:+.2f} ppm "
                        f"({st['method']}, via {st['via']})")
                r["note"] = f"{r['note']}; {note}" if r["note"] else note
        elif r["status"] == "loaded" and r["clock"] != "realtime" and not r["anchor"]:
            r["aligned"] = False
            note = "unaligned: no evidence links this clock to the reference"
            r["note"] = f"{r['note']}; {note}" if r["note"] else note
    # the chain each domain was fitted through: relative uncertainty between two domains only
    # counts the part of their paths they do not share (interleave uses it)
    tree = {d: {"parent": st["via"] or None, "lo": st["lo"] - st["offset"], "hi": st["hi"] - st["offset"]}
            for d, st in state.items()}
    record = {"align": {"reference": ref, "pin": dict(pin or {}), "keys": list(keys), "tree": tree,
                        "domains": domains}}
    clocks = pa.Table.from_pylist(rows, schema=CLOCK_SCHEMA)
    parts = []
    for f in fits.values():
        for r in f.rows:
            k = len(r["t"])
            parts.append(pa.table({"domain_a": pa.array([f.a] * k, pa.string()), "domain_b": pa.array([f.b] * k, pa.string()),
                                   **{c: pa.array(r[c], EVIDENCE_SCHEMA.field(c).type) for c in
                                      ("type", "matcher", "key", "t", "d", "half", "residual", "inlier")}},
                                  schema=EVIDENCE_SCHEMA))
    evidence = pa.concat_tables(parts) if parts else EVIDENCE_SCHEMA.empty_table()
    def build() -> Timeline:
        rows_of = tl._source_rows()
        full = {k: (rows_of.get(k, np.zeros(0, np.int64)), *v[1:]) for k, v in corr.items()}
        return tl._with_clocks(full, src_rows, record)

    return Alignment(clocks, evidence, build, ref)


Matcher = Callable[[pd.DataFrame], pd.Series]
