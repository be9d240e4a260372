"""Interleavings around a moment, and what changed or recurs across it.

:func:`interleaving` orders the events of every lane around a transition and says which
orders the evidence cannot decide: each event's true time lies in an interval (its source's
precision ``ts_prec`` and, across clock domains, its clock's interval from alignment); two
events of different sources whose intervals overlap are **ambiguous** — the dumps cannot tell
which came first. Ambiguous pairs that touch the same entity or resource (an address, a pid)
from two actors (different hosts, or different known processes) are **race candidates**.
Within one clock domain only the precision counts: the offset error is
shared and cannot reorder them.

:func:`diff` compares event signatures (source, name or message template, entity) before and
after a moment; :func:`periodic` finds recurring series (cron jobs, probes, retries).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _time
from .timeline import Timeline

__all__ = ["Interleaving", "interleaving", "diff", "periodic", "LANES"]

LANES = ("source", "host", "pid", "tid", "entity", "kind")
_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_IP_ANY = r"[0-9]\.[0-9]|[^\x00-\x7f]"  # RE2: true wherever _IP can match (its digits may be Unicode)
_MAX_NEIGHBOURS = 20


def _center(at: Any) -> tuple[int, Any]:
    from .transitions import Transition

    if isinstance(at, Transition):
        return at.ts, at
    return _time.to_time_ns(at), None


def _clock_model(tl: Timeline) -> tuple[dict[str, str], dict[str, dict]]:
    """source → domain, and the alignment tree (domain → parent, error interval)."""
    from .clocks import _domains

    rec = next((c["align"] for c in reversed(tl._params.get("corrections", [])) if "align" in c), None)
    dom = dict(rec["domains"]) if rec else _domains(tl)
    tree = dict(rec["tree"]) if rec else {}
    # a source shifted by hand after alignment, or never aligned: its own interval, no parent
    for r in tl.sources.to_pylist():
        if r["status"] != "loaded":
            continue
        d = dom.get(r["source"], f"source={r['source']}")
        if d not in tree:
            off = int(pd.Timedelta(r["offset"]).value) if r.get("offset") is not None else 0
            lo = (int(pd.Timedelta(r["offset_lo"]).value) - off) if r.get("offset_lo") is not None else 0
            hi = (int(pd.Timedelta(r["offset_hi"]).value) - off) if r.get("offset_hi") is not None else 0
            tree[d] = {"parent": None, "lo": lo, "hi": hi}
        dom[r["source"]] = d
    return dom, tree


def _relative_error(x: str, y: str, tree: dict[str, dict]) -> tuple[int, int]:
    """Interval of (error of X) − (error of Y): the shared part of their chains cancels."""
    def chain(d: str) -> list[str]:
        out = []
        while d is not None and d in tree and d not in out:
            out.append(d)
            d = tree[d]["parent"]
        return out

    cx, cy = chain(x), chain(y)
    common = next((d for d in cx if d in set(cy)), None)
    zl, zh = (tree[common]["lo"], tree[common]["hi"]) if common else (0, 0)
    xl, xh = tree.get(x, {"lo": 0})["lo"] - zl, tree.get(x, {"hi": 0})["hi"] - zh
    yl, yh = tree.get(y, {"lo": 0})["lo"] - zl, tree.get(y, {"hi": 0})["hi"] - zh
    return xl - yh, xh - yl


class Interleaving:
    """Events around a moment, in order, with ambiguity and race candidates.

    ``table`` columns: ``order``, ``rel`` (ns relative to the moment), ``ts``, ``ts_lo``,
    ``ts_hi``, ``lane``, ``source``, ``kind``, ``name``, ``entity``, ``state``, ``message``,
    ``seq``, ``ambiguous``, ``ambiguous_with`` (seqs), ``race_with`` (seqs). ``races`` lists
    the race-candidate pairs with the resource they share. ``state_at_start`` is each entity's
    state when the window opened.
    """

    def __init__(self, table: pd.DataFrame | Callable[[], pd.DataFrame],
                 races: pd.DataFrame | Callable[[], pd.DataFrame], center: int, start: int, end: int,
                 lane: str, transition: Any, state_at_start: Any):
        self._table = table
        self._races = races
        self._n: int | None = None
        self._n_ambiguous: int | None = None
        self.center, self.start, self.end = center, start, end
        self.lane = lane
        self.transition = transition
        self._window_or_states = state_at_start

    @property
    def table(self) -> pd.DataFrame:
        """The events in order with their ambiguity (pandas; built on first use)."""
        if not isinstance(self._table, pd.DataFrame):
            self._table = self._table()
        return self._table

    @table.setter
    def table(self, value: pd.DataFrame) -> None:
        self._table = value

    @property
    def races(self) -> pd.DataFrame:
        """The race-candidate pairs: ``seq_a``, ``seq_b``, ``a``, ``b``, ``shared``, ``gap_ns``."""
        if not isinstance(self._races, pd.DataFrame):
            self._races = self._races()
        return self._races

    @races.setter
    def races(self, value: pd.DataFrame) -> None:
        self._races = value

    @property
    def state_at_start(self) -> pa.Table:
        """Each entity's last state before the window opened (computed on first use)."""
        w = self._window_or_states
        return w.state_at_start if hasattr(w, "state_at_start") else w

    @state_at_start.setter
    def state_at_start(self, value: pa.Table) -> None:
        self._window_or_states = value

    def __len__(self) -> int:
        return self._n if self._n is not None and not isinstance(self._table, pd.DataFrame) else len(self.table)

    def to_pandas(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, ax: Any = None, **kw: Any) -> Any:
        """Draw this interleaving (see :func:`tracekit.plot.interleaving`); returns the Axes."""
        from . import plot

        return plot.interleaving(None, self, ax=ax, **kw)

    def lanes(self) -> list[str]:
        """Lane keys in order of first appearance."""
        return list(dict.fromkeys(self.table["lane"].astype(str)))

    def ambiguous_pairs(self) -> pd.DataFrame:
        """One row per unordered pair of ambiguous events (seq_a < seq_b)."""
        rows = []
        for s, others in zip(self.table["seq"], self.table["ambiguous_with"]):
            for o in others:
                if s < o:
                    rows.append((s, o))
        return pd.DataFrame(rows, columns=["seq_a", "seq_b"])

    def _title(self) -> str:
        what = f" — {self.transition.entity}: {self.transition.from_state} → {self.transition.to_state}" \
            if self.transition is not None else ""
        return f"{_time.fmt_ns(self.center)}{what}"

    def __repr__(self) -> str:
        lines = [f"Interleaving around {self._title()}: {len(self)} events, {len(self.lanes())} lanes, "
                 f"{int(self.table['ambiguous'].sum()) if len(self) else 0} ambiguous, {len(self.races)} race candidates"]
        for r in self.table.head(40).itertuples():
            mark = "≈" if r.ambiguous else " "
            msg = r.message if isinstance(r.message, str) else ""
            name = r.name if isinstance(r.name, str) else ""
            lines.append(f" {mark}{r.order:>4} {_time.fmt_duration(r.rel):>12}  {str(r.lane)[:28]:<28} {name} {msg[:60]}")
        if len(self) > 40:
            lines.append(f"  … {len(self) - 40} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        cols = ["order", "rel", "lane", "kind", "name", "entity", "state", "message", "ambiguous"]
        body = []
        for r in self.table.head(60).to_dict("records"):
            style = " style='background:#fff3cd'" if r["ambiguous"] else ""
            cells = []
            for c in cols:
                v = _time.fmt_duration(r[c]) if c == "rel" else r[c]
                v = "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                cells.append(f"<td>{esc(v[:160])}</td>")
            body.append(f"<tr{style}>" + "".join(cells) + "</tr>")
        more = f"<p>… {len(self) - 60} more</p>" if len(self) > 60 else ""
        races = ""
        if len(self.races):
            items = "".join(f"<li>{esc(str(r['a']))} ≈ {esc(str(r['b']))} (shared: {esc(str(r['shared']))})</li>"
                            for r in self.races.head(10).to_dict("records"))
            races = f"<p><b>Race candidates</b></p><ul>{items}</ul>"
        head = "".join(f"<th>{c}</th>" for c in cols)
        return (f"<div><b>Interleaving</b> around {esc(self._title())} — highlighted rows: order not "
                f"decided by the evidence<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
                f"</tbody></table>{more}{races}</div>")


def _resources(row: dict, extra: dict[int, set[str]]) -> set[str]:
    res: set[str] = set()
    if row.get("entity"):
        res.add(str(row["entity"]))
    texts = [row.get("message") or ""]
    texts += [v for _, v in (row.get("attrs") or []) if v]
    for t in texts:
        res.update(_IP.findall(str(t)))
    res |= extra.get(int(row["seq"]), set())
    return res


def _index(tl: Timeline) -> dict:
    """Per timeline (cached in ``tl._cache``): each source's clock domain and error interval and
    its host, by the code of the source column's (unified) dictionary."""
    from .transitions import _col

    if "tk.interleave" not in tl._cache:
        dom, tree = _clock_model(tl)
        src = _col(tl, "source")
        names = src.dictionary.to_pylist()
        dkey = [dom.get(s, s) for s in names]
        dcodes = {d: k for k, d in enumerate(dict.fromkeys(dkey))}
        src_host = {r["source"]: r["host"] for r in tl.sources.to_pylist()}
        tl._cache["tk.interleave"] = {
            "codes": src.indices.to_numpy(zero_copy_only=False),
            "names": names,
            "name_id": np.array([names.index(s) for s in names], np.int64),  # one id per distinct name
            "elo": np.array([tree.get(d, {"lo": 0})["lo"] for d in dkey], np.int64),
            "ehi": np.array([tree.get(d, {"hi": 0})["hi"] for d in dkey], np.int64),
            "dcode": np.array([dcodes[d] for d in dkey], np.int64),
            "domains": list(dcodes), "tree": tree, "rel": {},
            "host": [src_host.get(s) for s in names],
        }
    return tl._cache["tk.interleave"]


def _evidence_resources(transitions: Any, seqs: np.ndarray) -> dict[int, set[str]]:
    """Resources the transitions name (addresses in their detail/states, their entity), keyed
    by the evidence seqs among ``seqs`` — the transitions' evidence is indexed once."""
    t = transitions.table
    ix = getattr(transitions, "_tk_evidence", None)
    if ix is None or ix[0] is not t:
        ev = t.column("evidence").combine_chunks() if t.num_rows else pa.array([], pa.list_(pa.uint64()))
        offs = ev.offsets.to_numpy()
        flat = ev.values.to_numpy()[offs[0]:offs[-1]] if len(ev) else np.zeros(0, np.uint64)
        owner = np.repeat(np.arange(len(ev)), np.diff(offs))
        ix = (t, flat.astype(np.int64), owner)
        try:
            transitions._tk_evidence = ix
        except AttributeError:
            pass
    _, flat, owner = ix
    hit = np.flatnonzero(np.isin(flat, seqs))
    extra: dict[int, set[str]] = {}
    if not len(hit):
        return extra
    rows = np.unique(owner[hit])
    recs = t.take(pa.array(rows)).select(["entity", "from_state", "to_state", "detail"]).to_pylist()
    by_row = {}
    for k, r in zip(rows.tolist(), recs):
        changed = set(_IP.findall(r["detail"] or ""))
        by_row[k] = (changed or set(_IP.findall(f"{r['from_state'] or ''} {r['to_state'] or ''}"))) | {r["entity"]}
    for s_, k in zip(flat[hit].tolist(), owner[hit].tolist()):
        extra.setdefault(int(s_), set()).update(by_row[k])
    return extra


def interleaving(tl: Timeline, at: Any, window: Any = "5s", lane: str = "source",
                 before: Any = None, after: Any = None, transitions: Any = None) -> Interleaving:
    """The events of all lanes around ``at`` (a Transition or a time), in order.

    ``window="5s"`` means ±5 s (``before``/``after`` override either side). ``lane`` is a
    column (``source``, ``host``, ``pid``, ``tid``, ``entity``, ``kind``). The window is a slice of
    the sorted timeline; ambiguity and race candidates are computed on it with numpy (a pair
    test only between sources); the pandas ``table``/``races`` are built on first use.

    Example::

        >>> il = tl.interleaving(tr[3], window="2s")      # doctest: +SKIP
        >>> il.races                                        # doctest: +SKIP
    """
    if lane not in LANES:
        raise ValueError(f"lane must be one of {', '.join(LANES)}, not {lane!r}")
    c, tr = _center(at)
    w = _time.to_duration_ns(window)
    b = _time.to_duration_ns(before) if before is not None else w
    a = _time.to_duration_ns(after) if after is not None else w
    win = tl.around(c, before=b, after=a)
    ev = win.events
    n = ev.num_rows
    ix = _index(tl)
    lo_i = int(np.searchsorted(tl._ts_ns(), c - b, side="left"))  # as around() cut it
    ts = tl._ts_ns()[lo_i:lo_i + n]
    codes = ix["codes"][lo_i:lo_i + n]
    prec = (pc.fill_null(ev.column("ts_prec").cast(pa.int64()), 0).to_numpy() if n
            else np.zeros(0, np.int64))
    lo, hi = ts + ix["elo"][codes], ts + prec + ix["ehi"][codes]
    ii = jj = np.zeros(0, np.int64)
    sid = ix["name_id"][codes]
    if n > 1 and sid.min() != sid.max():  # one source: its own order, nothing to decide
        # candidate pairs from absolute intervals (a superset), generated without a Python loop
        order = np.argsort(lo, kind="stable")
        reach = np.searchsorted(lo[order], hi[order], side="right")
        cnt = np.maximum(reach - np.arange(n) - 1, 0)
        ks = np.repeat(np.arange(n), cnt)
        ms = ks + 1 + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
        ii, jj = order[ks], order[ms]
        keep = sid[ii] != sid[jj]
        ii, jj = ii[keep], jj[keep]
        # exact test with the relative clock error of the two domains
        nd = len(ix["domains"])
        dcode = ix["dcode"][codes]
        pair = dcode[ii] * nd + dcode[jj]
        rl = np.zeros(len(ii), np.int64)
        rh = np.zeros(len(ii), np.int64)
        for pcode in np.unique(pair).tolist():
            x, y = divmod(pcode, nd)
            if x != y:
                if pcode not in ix["rel"]:
                    ix["rel"][pcode] = _relative_error(ix["domains"][x], ix["domains"][y], ix["tree"])
                m = pair == pcode
                rl[m], rh[m] = ix["rel"][pcode]
        d_lo = ts[ii] - ts[jj] + rl - prec[jj]
        d_hi = ts[ii] - ts[jj] + rh + prec[ii]
        amb = (d_lo <= 0) & (d_hi >= 0)
        ii, jj = ii[amb], jj[amb]
    races = _races(tl, ev, ix, codes, ts, ii, jj, transitions)
    state = {"ev": ev, "ts": ts, "lo": lo, "hi": hi, "ii": ii, "jj": jj, "c": c, "lane": lane}
    out = Interleaving(lambda: _table(state, out.races), lambda: _races_frame(races), c, c - b, c + a, lane, tr, win)
    out._n = n
    out._n_ambiguous = len(_members(n, ii, jj))
    return out


def _members(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted distinct rows (< n) in ``a`` or ``b``."""
    m = np.zeros(n, bool)
    m[a] = True
    m[b] = True
    return np.flatnonzero(m)


def _races(tl: Timeline, ev: pa.Table, ix: dict, codes: np.ndarray, ts: np.ndarray, ii: np.ndarray,
           jj: np.ndarray, transitions: Any) -> list[dict]:
    """Ambiguous pairs that touch a shared resource from two actors (different hosts, or
    different known processes): the actor test in numpy, the resource sets only for the pairs
    that pass it."""
    if not len(ii):
        return []
    rows = _members(len(ev), ii, jj)
    sub = ev.select(["host", "pid"]).take(pa.array(rows))
    # the actor: the row's host (else its source's), and its pid when known
    host = sub.column("host").combine_chunks()
    own = pc.or_kleene(pc.is_null(host), pc.equal(host, ""))
    host = pc.if_else(own, pa.array(ix["host"], pa.string()).take(pa.array(codes[rows])), host)
    hcode = np.full(len(ev), -1, np.int64)
    hcode[rows] = pc.dictionary_encode(host, null_encoding="encode").indices.to_numpy(zero_copy_only=False)
    pid_col = sub.column("pid")
    pid = np.zeros(len(ev), np.int64)
    pid_ok = np.zeros(len(ev), bool)
    pid[rows] = pc.fill_null(pid_col, 0).to_numpy()
    pid_ok[rows] = pc.is_valid(pid_col).to_numpy(zero_copy_only=False)
    same_actor = (hcode[ii] == hcode[jj]) & (~pid_ok[ii] | ~pid_ok[jj] | (pid[ii] == pid[jj]))
    ci, cj = ii[~same_actor], jj[~same_actor]
    if not len(ci):
        return []
    seqs = ev.column("seq").to_numpy().astype(np.int64)
    need = _members(len(ev), ci, cj)
    extra = _evidence_resources(transitions, seqs[need]) if transitions is not None else {}
    nsub = ev.select(["seq", "entity", "message", "attrs", "name", "host", "pid"]).take(pa.array(need))
    # a row's resources: its entity, plus addresses in its message/attrs values (the regex only
    # where RE2 says one may be) and what the transitions name for it
    attrs = nsub.column("attrs").combine_chunks()
    owner_v = np.repeat(np.arange(len(attrs)), np.diff(attrs.offsets.to_numpy()))
    vals = attrs.items.slice(attrs.offsets[0].as_py(), len(owner_v))
    text = np.asarray(pc.fill_null(pc.match_substring_regex(nsub.column("message"), _IP_ANY), False))
    text[owner_v[np.asarray(pc.fill_null(pc.match_substring_regex(vals, _IP_ANY), False), bool)]] = True
    if extra:
        text |= np.isin(seqs[need], np.fromiter(extra, np.int64, len(extra)))
    ent = pc.dictionary_encode(nsub.column("entity").combine_chunks())
    vocab: dict[str, int] = {v: k for k, v in enumerate(ent.dictionary.to_pylist())}
    eid = ent.indices.to_numpy(zero_copy_only=False)
    has_ent = np.asarray(pc.fill_null(pc.not_equal(nsub.column("entity"), ""), False), bool) & ~text
    owner_l, rid_l = [need[has_ent]], [eid[has_ent].astype(np.int64)]
    res: dict[int, set[str]] = {}
    recs: dict[int, dict] = {}
    for k in np.flatnonzero(text).tolist():
        r = int(need[k])
        recs[r] = nsub.slice(k, 1).to_pylist()[0]
        res[r] = _resources(recs[r], extra)
        owner_l.append(np.full(len(res[r]), r, np.int64))
        rid_l.append(np.array([vocab.setdefault(x, len(vocab)) for x in res[r]], np.int64))
    if not vocab:
        return []
    # which candidate pairs share a resource: (row, resource id) keys, looked up per pair
    owner, rid = np.concatenate(owner_l), np.concatenate(rid_l)
    o = np.argsort(owner, kind="stable")
    owner, rid = owner[o], rid[o]
    start = np.searchsorted(owner, np.arange(len(ev)))
    cnt = np.searchsorted(owner, np.arange(len(ev)), side="right") - start
    nres = len(vocab)
    keys = np.unique(owner * nres + rid)
    k = cnt[ci]
    rep = np.repeat(np.arange(len(ci)), k)
    within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    probe = cj[rep] * nres + rid[start[ci][rep] + within]
    shared_any = np.bincount(rep[np.isin(probe, keys)], minlength=len(ci)) > 0
    names = ix["names"]
    out = []

    def rec(r: int) -> dict:
        if r not in recs:
            recs[r] = nsub.slice(int(np.searchsorted(need, r)), 1).to_pylist()[0]
        return recs[r]

    def resources(r: int) -> set[str]:
        if r not in res:
            res[r] = _resources(rec(r), extra)
        return res[r]

    for i, j in zip(ci[shared_any].tolist(), cj[shared_any].tolist()):
        recs[i], recs[j] = rec(i), rec(j)
        shared = resources(i) & resources(j)
        si, sj = names[codes[i]], names[codes[j]]
        out.append({"seq_a": int(seqs[i]), "seq_b": int(seqs[j]),
                    "a": f"{si}: {recs[i]['name']} {str(recs[i]['message'] or '')[:80]}",
                    "b": f"{sj}: {recs[j]['name']} {str(recs[j]['message'] or '')[:80]}",
                    "shared": ", ".join(sorted(shared)), "gap_ns": int(abs(ts[i] - ts[j]))})
    return out


_RACE_COLUMNS = ["seq_a", "seq_b", "a", "b", "shared", "gap_ns"]


def _races_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=_RACE_COLUMNS)


def _table(st: dict, races: pd.DataFrame) -> pd.DataFrame:
    """The interleaving's pandas table (built on first use)."""
    ev, ts, lo, hi, ii, jj, c, lane = (st[k] for k in ("ev", "ts", "lo", "hi", "ii", "jj", "c", "lane"))
    cols = ["ts", "ts_prec", "source", "kind", "name", "entity", "state", "message", "seq", "host", "pid",
            "tid", "dur", "flow_id", "span_id", "parent_id", "value", "flow_dir", "severity"]
    df = ev.select(cols).to_pandas()
    n = len(df)
    src = ev.column("source").cast(pa.string()).to_numpy(zero_copy_only=False) if n else np.array([], object)
    seqs = ev.column("seq").to_numpy().astype(np.int64) if n else np.zeros(0, np.int64)
    # each row's ambiguous neighbours in pair order, at most _MAX_NEIGHBOURS
    owner = np.column_stack([ii, jj]).ravel()
    other = np.column_stack([jj, ii]).ravel()
    o = np.argsort(owner, kind="stable")
    owner, other = owner[o], other[o]
    start = np.searchsorted(owner, np.arange(n))
    rank = np.arange(len(owner)) - start[owner] if len(owner) else np.zeros(0, np.int64)
    keep = rank < _MAX_NEIGHBOURS
    owner, other = owner[keep], other[keep]
    bounds = np.searchsorted(owner, np.arange(n + 1))
    nb = seqs[other].tolist()
    amb_with: list[list[int]] = [nb[bounds[k]:bounds[k + 1]] for k in range(n)]
    race_with: list[list[int]] = [[] for _ in range(n)]
    if len(races):
        idx = {int(s): k for k, s in enumerate(df["seq"])}
        for r in races.itertuples():
            race_with[idx[r.seq_a]].append(r.seq_b)
            race_with[idx[r.seq_b]].append(r.seq_a)
    if n and lane in ("pid", "tid"):
        lane_col = df[lane].astype("Int64").astype(str).replace("<NA>", "(none)")
    else:
        lane_col = df[lane].astype(object).where(df[lane].notna(), "(none)").astype(str) if n else pd.Series([], dtype=str)
    if lane == "source" and n:
        lane_col = df["source"].astype(str)
    return pd.DataFrame({
        "order": np.arange(n), "rel": ts - c, "ts": df["ts"] if n else [], "ts_lo": lo, "ts_hi": hi,
        "lane": lane_col, "source": src, "kind": df["kind"].astype(str) if n else [],
        "name": df["name"] if n else [], "entity": df["entity"] if n else [], "state": df["state"] if n else [],
        "message": df["message"] if n else [], "seq": df["seq"] if n else [], "dur": df["dur"] if n else [],
        "flow_id": df["flow_id"] if n else [], "span_id": df["span_id"] if n else [],
        "parent_id": df["parent_id"] if n else [],
        "value": df["value"] if n else [], "flow_dir": df["flow_dir"].astype(object) if n else [],
        "severity": df["severity"].astype(object) if n else [],
        "ambiguous": [bool(x) for x in amb_with], "ambiguous_with": amb_with, "race_with": race_with,
    })



# --------------------------------------------------------------------------- change and recurrence

_TEMPLATE_SQL = (
    "regexp_replace(regexp_replace(regexp_replace(coalesce(message, name, ''),"
    " '[0-9a-fA-F]{8,}', '<hex>', 'g'), '(\\d+\\.){3}\\d+', '<ip>', 'g'), '\\d+', '<n>', 'g')"
)


def _signatures(tl: Timeline, where: str = "true") -> str:
    return (
        "select source::VARCHAR as source, coalesce(case when name = message then null else name end, "
        f"{_TEMPLATE_SQL}) as signature, "
        # a process/thread/socket is one of a series: mask its ids so runs of a job compare
        "case when regexp_matches(coalesce(entity, ''), '^(proc|thread|sock)/') "
        "then regexp_replace(entity, '\\d+', '<n>', 'g') else coalesce(entity, '') end as entity, "
        f"ts from events where {where}"
    )


def diff(tl: Timeline, at: Any, before: Any = None, after: Any = None, min_ratio: float = 2.0) -> pd.DataFrame:
    """Event signatures before vs after ``at``: ``new``, ``vanished``, ``persisting`` or ``rate changed``.

    A signature is (source, event name or message template with numbers/ids masked, entity).
    ``before``/``after`` limit the two windows (default: everything on each side); rates are
    per minute of each window.

    Example::

        >>> tl.diff(at="2025-07-07T09:12:00Z").query("status == 'persisting'")   # doctest: +SKIP
    """
    t = _time.to_time_ns(at)
    lo_t, hi_t = tl.time_range()
    if lo_t is None:
        return pd.DataFrame(columns=["source", "signature", "entity", "n_before", "n_after", "status"])
    b0 = t - _time.to_duration_ns(before) if before is not None else lo_t
    a1 = t + _time.to_duration_ns(after) if after is not None else hi_t + 1
    q = (f"with s as ({_signatures(tl)}) select source, signature, entity, "
         f"count(*) filter (where epoch_ns(ts) >= {b0} and epoch_ns(ts) < {t}) as n_before, "
         f"count(*) filter (where epoch_ns(ts) >= {t} and epoch_ns(ts) < {a1}) as n_after, "
         f"max(ts) filter (where epoch_ns(ts) < {t}) as last_before, "
         f"min(ts) filter (where epoch_ns(ts) >= {t} and epoch_ns(ts) < {a1}) as first_after "
         f"from s group by all having n_before + n_after > 0")
    df = tl.sql(q).to_pandas()
    span_b = max((t - b0) / 60e9, 1e-9)
    span_a = max((a1 - t) / 60e9, 1e-9)
    df["rate_before"] = df["n_before"] / span_b
    df["rate_after"] = df["n_after"] / span_a
    ratio = (df["rate_after"] + 1e-12) / (df["rate_before"] + 1e-12)
    status = np.where(df["n_before"] == 0, "new", np.where(df["n_after"] == 0, "vanished", "persisting"))
    changed = (status == "persisting") & ((ratio >= min_ratio) | (ratio <= 1 / min_ratio)) & \
        ((df["n_before"] >= 3) | (df["n_after"] >= 3))
    df["status"] = np.where(changed, "rate changed", status)
    order = {"new": 0, "vanished": 1, "rate changed": 2, "persisting": 3}
    df["_o"] = df["status"].map(order)
    return df.sort_values(["_o", "source", "signature"]).drop(columns="_o").reset_index(drop=True)


def periodic(tl: Timeline, min_count: int = 4, max_jitter: float = 0.1, after: Any = None) -> pd.DataFrame:
    """Recurring series: signatures whose events come at a steady period.

    Returns per series: ``period_s``, ``jitter_s`` (median absolute deviation of the
    intervals), ``phase_s`` (offset into the period, e.g. 1.0 for a cron job firing a second
    after each minute), ``count``, ``first``, ``last`` and, with ``after``, ``n_after`` — how
    many firings fall after that moment (a job that should have stopped).

    Example::

        >>> tl.periodic(after="2025-07-07T09:12:00Z")       # doctest: +SKIP
    """
    df = tl.sql(f"{_signatures(tl)} order by ts").to_pandas()
    if df.empty:
        return pd.DataFrame(columns=["source", "signature", "entity", "period_s", "jitter_s", "phase_s", "count"])
    df["t"] = df["ts"].astype("int64")
    t_after = _time.to_time_ns(after) if after is not None else None
    rows = []
    for (src, sig, ent), g in df.groupby(["source", "signature", "entity"], sort=False):
        if len(g) < min_count:
            continue
        t = np.sort(g["t"].to_numpy())
        d = np.diff(t)
        d = d[d > 0]
        if len(d) < min_count - 1:
            continue
        period = float(np.median(d))
        if period < 0.5e9:
            continue
        jitter = float(np.median(np.abs(d - period)))
        if jitter > max_jitter * period:
            continue
        phase = float(np.median(np.mod(t, int(period)))) if period >= 1e9 else 0.0
        row = {"source": src, "signature": sig, "entity": ent or None, "period_s": period / 1e9,
               "jitter_s": jitter / 1e9, "phase_s": phase / 1e9, "count": len(t),
               "first": pd.Timestamp(int(t[0]), tz="UTC"), "last": pd.Timestamp(int(t[-1]), tz="UTC")}
        if t_after is not None:
            row["n_after"] = int((t >= t_after).sum())
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values(["count"], ascending=False).reset_index(drop=True)
