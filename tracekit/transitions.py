"""Transitions: which entity changed state when, found by small named rules.

A :class:`Rule` turns a Timeline into *observations* (event ``seq``, ``entity``, ``state``,
optionally an explicit ``from_state`` and a ``detail``); the engine sorts each entity's
observations by time and emits a transition wherever the state changes. Built-in rules
(:data:`RULES`, listed by :func:`rules`):

==================  ==================================================================
``k8s-events``      Kubernetes event reasons per object (Scheduled, Pulled, Started, Killing,
                    BackOff, Unhealthy, …) — each reason is the object's new state
``endpoints``       EndpointSlice address sets from audit-log bodies: an address added or
                    removed (the service-discovery side of a race)
``span-status``     a service's spans turning ok → error (after a run of successes) and back
``process``         exec (binary/argv) and exit (code) or kill (signal) of each process
``exit-status``     a command's exit status changing between runs (0 → 127: a job that
                    started failing)
``log-state``       logs that name their state in a field (``state``, ``phase``, ``status``
                    when not a number, ``from_state``/``to_state``)
``state-column``    events that carry an entity and a state (ftrace ``sched_switch``,
                    ``inet_sock_set_state``, journald units …)
``value-change``    a version/config attribute taking a new value for the same service
                    (``version``, ``service.version``, ``config_version``, ``image`` …): how a
                    deploy that logged nothing is found
``cron``            each cron firing of a command
==================  ==================================================================

User rules: :class:`LogRule` (a regex with named groups ``entity``/``from``/``to``) and
:class:`StateMachine` (events → states, with the legal transitions; illegal ones flagged).

Every transition carries ``ts_lo``/``ts_hi``: where its true time lies given the source's
precision (``ts_prec``) and its clock interval from alignment.
"""

from __future__ import annotations

import fnmatch
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _time
from .timeline import Timeline

__all__ = ["Rule", "LogRule", "StateMachine", "Transitions", "Transition", "RULES", "rules",
           "find_transitions", "TRANSITION_SCHEMA"]

TRANSITION_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("ns", tz="UTC")),
        ("ts_lo", pa.timestamp("ns", tz="UTC")),
        ("ts_hi", pa.timestamp("ns", tz="UTC")),
        ("entity", pa.string()),
        ("from_state", pa.string()),
        ("to_state", pa.string()),
        ("rule", pa.string()),
        ("source", pa.string()),
        ("evidence", pa.list_(pa.uint64())),
        ("detail", pa.string()),
        ("illegal", pa.bool_()),
    ]
)

_OBS_COLS = ("seq", "entity", "state", "from_state", "detail")


@dataclass(frozen=True)
class Rule:
    """A named way to read states out of events.

    ``observe(tl)`` returns a DataFrame with columns ``seq``, ``entity``, ``state`` and
    optionally ``from_state`` (explicit: every row is a transition) and ``detail``.
    ``initial``: the first observation of an entity is itself a transition (from nothing).
    ``min_run``: a state must be seen this many times in a row before a change away from it
    counts (debounces flapping series such as span status).
    """

    name: str
    description: str
    observe: Callable[[Timeline], pd.DataFrame]
    initial: bool = False
    min_run: int = 1

    def __repr__(self) -> str:
        return f"Rule({self.name!r}: {self.description})"


# --------------------------------------------------------------------------- helpers


def _frame(tl: Timeline, where: str, cols: str = "") -> pd.DataFrame:
    """Rows of ``events`` matching an SQL predicate, as pandas (small subsets only)."""
    extra = f", {cols}" if cols else ""
    return tl.sql(
        f"select seq, ts, source::VARCHAR as source, kind::VARCHAR as kind, name, entity, state, "
        f"host, pid, value, message{extra} from events where {where}"
    ).to_pandas()


def _attr(col: str) -> str:
    return f"element_at(attrs, '{col}')[1]"


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in _OBS_COLS})


def _obs(df: pd.DataFrame, entity: Any, state: Any, from_state: Any = None, detail: Any = None) -> pd.DataFrame:
    if df.empty:
        return _empty()
    out = pd.DataFrame({"seq": df["seq"].astype("uint64")})
    for name, v in (("entity", entity), ("state", state), ("from_state", from_state), ("detail", detail)):
        out[name] = v if v is not None else None
    return out[out["entity"].notna() & out["state"].notna()]


# --------------------------------------------------------------------------- built-in rules


def _k8s_events(tl: Timeline) -> pd.DataFrame:
    fmts = _formats(tl, ("k8s_events",))
    if not fmts:
        return _empty()
    df = _frame(tl, f"source::VARCHAR in ({fmts}) and entity is not null and name is not null")
    if df.empty:
        return _empty()
    # every event is an occurrence Kubernetes recorded: a repeated reason is kept (from = to)
    df = df.sort_values(["entity", "ts", "seq"])
    prev = df.groupby("entity")["name"].shift(1).fillna("(none)")
    return _obs(df, df["entity"], df["name"], from_state=prev, detail=df["message"])


def _endpoints(tl: Timeline) -> pd.DataFrame:
    fmts = _formats(tl, ("k8s_audit",))
    if not fmts:
        return _empty()
    df = _frame(tl, f"source::VARCHAR in ({fmts}) and entity like 'endpoint%' "
                    "and element_at(attrs, 'responseObject')[1] is not null",
                cols=f"{_attr('responseObject')} as body, {_attr('requestObject')} as req")
    if df.empty:
        return _empty()
    states = []
    for body, req in zip(df["body"], df["req"]):
        addrs = _addresses(body) if body else None
        if addrs is None and req:
            addrs = _addresses(req)
        states.append(",".join(sorted(addrs, key=_ip_key)) if addrs is not None else None)
    df["addr"] = states
    df = df.sort_values(["entity", "ts", "seq"])
    prev = df.groupby("entity")["addr"].shift(1)
    details = []
    for a, p in zip(df["addr"], prev):
        if a is None:
            details.append(None)
            continue
        now = set(a.split(",")) if a else set()
        before = set(p.split(",")) if isinstance(p, str) and p else set()
        parts = [f"+{x}" for x in sorted(now - before, key=_ip_key)] + [f"-{x}" for x in sorted(before - now, key=_ip_key)]
        details.append(" ".join(parts) if parts else "no address change")
    df["detail"] = details
    return _obs(df, df["entity"], df["addr"], detail=df["detail"])


def _ip_key(s: str) -> tuple:
    try:
        return tuple(int(p) for p in s.split("."))
    except ValueError:
        return (999, s)


def _addresses(text: str) -> list[str] | None:
    try:
        obj = json.loads(text)
    except (ValueError, TypeError):
        return None
    if not isinstance(obj, dict):
        return None
    if "endpoints" in obj and isinstance(obj["endpoints"], list):  # EndpointSlice
        out = []
        for e in obj["endpoints"]:
            if isinstance(e, dict) and (e.get("conditions") or {}).get("ready", True) is not False:
                out.extend(a for a in e.get("addresses") or [] if isinstance(a, str))
        return out
    if "subsets" in obj:  # core/v1 Endpoints
        out = []
        for s in obj.get("subsets") or []:
            out.extend(a.get("ip") for a in s.get("addresses") or [] if isinstance(a, dict) and a.get("ip"))
        return out
    return None


def _span_status(tl: Timeline) -> pd.DataFrame:
    df = tl.sql("select seq, entity, state from events where kind = 'span' and entity is not null "
                "and state in ('ok', 'error')").to_pandas()
    return _obs(df, df["entity"], df["state"])


_EXEC_RE = r'^"([^"]*)",\s*\[(.*?)\]'


def _procs(tl: Timeline) -> pd.DataFrame:
    """One row per exec/exit/kill with the process's command (first successful exec's argv)."""
    from .clocks import EXEC_NAMES, EXIT_NAMES

    ex = ",".join(f"'{n}'" for n in EXEC_NAMES)
    xs = ",".join(f"'{n}'" for n in EXIT_NAMES)
    df = tl.sql(
        f"select seq, ts, source::VARCHAR as source, name, entity, host, pid, value, message, "
        f"{_attr('filename')} as filename, {_attr('signal')} as sig, {_attr('errno')} as errno "
        f"from events where (name in ({ex}) or name in ({xs})) and entity is not null "
        "and not (name = 'exit' and coalesce(state, '') <> 'exit')"
    ).to_pandas()
    if df.empty:
        return df
    is_exec = df["name"].isin(EXEC_NAMES)
    ok = ~(df["value"].fillna(0) < 0) & df["errno"].isna()
    m = df["message"].fillna("").str.extract(_EXEC_RE)
    argv = m[1].fillna("").str.replace(r'"\s*,\s*"', " ", regex=True).str.strip('"')
    path = m[0].where(m[0].notna(), df["filename"])
    df["exec_path"] = path.where(is_exec & ok)
    df["argv"] = argv.where(is_exec & ok & (argv != ""), path)
    df["is_exec"] = is_exec & ok
    df["is_exit"] = ~is_exec
    df = df.sort_values(["ts", "seq"])
    first_argv = df[df["is_exec"]].groupby("entity")["argv"].first()
    df["command"] = df["entity"].map(first_argv)
    return df


def _process(tl: Timeline) -> pd.DataFrame:
    df = _procs(tl)
    if df.empty:
        return _empty()
    ex = df[df["is_exec"]].copy()
    ex["prev"] = ex.groupby("entity")["exec_path"].shift(1)
    exits = df[df["is_exit"]].copy()
    code = exits["value"].astype("Int64").astype(str)
    killed = exits["name"].eq("killed") | exits["sig"].notna()
    exits["st"] = np.where(killed, "killed " + exits["sig"].fillna("").astype(str), "exited " + code)
    exits["st"] = exits["st"].str.strip()
    frm = pd.Series(np.where(ex["prev"].notna(), "exec " + ex["prev"].fillna(""), "(new)"), index=ex.index)
    a = _obs(ex, ex["entity"], "exec " + ex["exec_path"], from_state=frm, detail=ex["argv"])
    b = _obs(exits, exits["entity"], exits["st"], from_state="running", detail=exits["command"])
    return pd.concat([a, b], ignore_index=True)


def _exit_status(tl: Timeline) -> pd.DataFrame:
    df = _procs(tl)
    if df.empty:
        return _empty()
    exits = df[df["is_exit"] & df["command"].notna()].copy()
    if exits.empty:
        return _empty()
    host = exits["host"].fillna("").where(exits["host"].notna(), "")
    exits["ent"] = "cmd/" + host.where(host != "", exits["source"]) + "/" + exits["command"]
    st = np.where(exits["name"].eq("killed") | exits["sig"].notna(), "killed", "exit " + exits["value"].astype("Int64").astype(str))
    return _obs(exits, exits["ent"], pd.Series(st, index=exits.index), detail=exits["source"])


_STATE_KEYS = ("state", "phase", "status", "to_state")


def _log_state(tl: Timeline) -> pd.DataFrame:
    keys = ", ".join(f"{_attr(k)} as a_{k}" for k in _STATE_KEYS + ("from_state", "pod", "service", "entity", "namespace"))
    df = tl.sql(
        f"select seq, ts, source::VARCHAR as source, entity, message, {keys} from events "
        f"where kind = 'log' and (" + " or ".join(f"{_attr(k)} is not null" for k in _STATE_KEYS) + ")"
    ).to_pandas()
    if df.empty:
        return _empty()
    status = df["a_status"].where(~df["a_status"].fillna("").str.fullmatch(r"\d+"))
    state = df["a_to_state"].fillna(df["a_state"]).fillna(df["a_phase"]).fillna(status)
    known = _entities(tl)
    pod_ent = df["a_pod"].map(lambda p: _resolve_pod(p, known) if isinstance(p, str) else None)
    ent = df["entity"].fillna(df["a_entity"]).fillna(pod_ent)
    svc = df["a_service"].map(lambda s: f"service/{s}" if isinstance(s, str) else None)
    ent = ent.fillna(svc).fillna("source/" + df["source"])
    return _obs(df, ent, state, from_state=df["a_from_state"], detail=df["message"])


def _entities(tl: Timeline) -> dict[str, str]:
    t = tl.sql("select distinct entity from events where entity like 'pod/%'").column(0).to_pylist()
    return {e.rsplit("/", 1)[-1]: e for e in t if e}


def _resolve_pod(pod: str, known: dict[str, str]) -> str:
    return known.get(pod, f"pod/{pod}")


def _state_column(tl: Timeline) -> pd.DataFrame:
    skip = _formats(tl, ("k8s_events", "k8s_audit", "otlp", "jaeger", "zipkin", "strace"))
    where = "state is not null and kind = 'state'" + (f" and source::VARCHAR not in ({skip})" if skip else "")
    df = tl.sql(
        "select seq, source::VARCHAR as source, host, entity, state, "
        f"{_attr('oldstate')} as olds, {_attr('saddr')} as saddr, {_attr('sport')} as sport, "
        f"{_attr('daddr')} as daddr, {_attr('dport')} as dport, name from events where {where}"
    ).to_pandas()
    if df.empty:
        return _empty()
    sock = ("sock/" + df["host"].fillna("?") + "/" + df["saddr"].fillna("?") + ":" + df["sport"].fillna("?")
            + "-" + df["daddr"].fillna("?") + ":" + df["dport"].fillna("?"))
    ent = df["entity"].where(df["entity"].notna(), sock.where(df["daddr"].notna()))
    return _obs(df, ent, df["state"], from_state=df["olds"], detail=df["daddr"])


VERSION_KEYS = ("version", "service.version", "resource.service.version", "app.version", "config_version",
                "config", "config_path", "config.version", "image", "image_tag", "build", "git_sha", "release")


def _value_change(tl: Timeline) -> pd.DataFrame:
    """First sight of each new value of a version/config attribute, per service."""
    present = [k for k in VERSION_KEYS
               if tl.sql(f"select 1 from events where {_attr(k)} is not null limit 1").num_rows]
    if not present:
        return _empty()
    parts = []
    for k in present:
        df = tl.sql(
            f"select seq, ts, source::VARCHAR as source, category, entity, {_attr(k)} as v, "
            f"{_attr('service')} as svc, {_attr('resource.service.name')} as rsvc from events "
            f"where {_attr(k)} is not null"
        ).to_pandas()
        svc = df["svc"].fillna(df["rsvc"]).fillna(df["category"])
        df["ent"] = ("service/" + svc).where(svc.notna(), "source/" + df["source"]) + f"#{k}"
        df = df.sort_values(["ts", "seq"])
        first = df.drop_duplicates(["ent", "v"], keep="first").copy()
        first["prev"] = first.groupby("ent")["v"].shift(1)
        first = first[first["prev"].notna()]
        if first.empty:
            continue
        first["detail"] = f"{k}: " + first["prev"] + " → " + first["v"] + " (first seen)"
        parts.append(_obs(first, first["ent"], first["v"], from_state=first["prev"], detail=first["detail"]))
    return pd.concat(parts, ignore_index=True) if parts else _empty()


def _cron(tl: Timeline) -> pd.DataFrame:
    df = tl.sql(
        f"select seq, entity, {_attr('cron.command')} as cmd, {_attr('cron.user')} as usr from events "
        "where name = 'cron.cmd'"
    ).to_pandas()
    return _obs(df, df["entity"], "fired", from_state="idle", detail=df["usr"].fillna("?") + ": " + df["cmd"].fillna(""))


def _formats(tl: Timeline, names: Iterable[str]) -> str:
    srcs = [r["source"] for r in tl.sources.to_pylist() if r["format"] in set(names) and r["status"] == "loaded"]
    return ", ".join("'" + s.replace("'", "''") + "'" for s in srcs)


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule("k8s-events", "Kubernetes event reasons per involved object", _k8s_events, initial=True),
        Rule("endpoints", "EndpointSlice/Endpoints address sets from audit-log bodies", _endpoints, initial=True),
        Rule("span-status", "a service's spans turning ok → error (after 3 ok) and back", _span_status, min_run=3),
        Rule("process", "process exec (binary) and exit (code) or kill (signal)", _process),
        Rule("exit-status", "a command's exit status changing between runs", _exit_status),
        Rule("log-state", "logs naming their state in a field (state, phase, status, to_state)", _log_state, initial=True),
        Rule("state-column", "events carrying an entity and a state (sched_switch, TCP states, units)", _state_column),
        Rule("value-change", "a version/config attribute taking a new value for a service", _value_change),
        Rule("cron", "each cron firing of a command", _cron),
    )
}


def rules() -> pd.DataFrame:
    """The built-in rules: name and what each finds.

    Example::

        >>> import tracekit as tk
        >>> "endpoints" in tk.rules()["name"].tolist()
        True
    """
    return pd.DataFrame([{"name": r.name, "description": r.description, "initial": r.initial,
                          "min_run": r.min_run} for r in RULES.values()])


# --------------------------------------------------------------------------- user rules


@dataclass(frozen=True)
class LogRule:
    """Transitions from log messages matched by a regex with named groups.

    ``(?P<to>...)`` is required; ``(?P<entity>...)`` (else the source) and ``(?P<from>...)``
    are optional. Example::

        >>> r = LogRule("db", r"connection pool (?P<entity>\\w+) went (?P<from>\\w+) -> (?P<to>\\w+)")
    """

    name: str
    pattern: str
    where: str | None = None  # extra SQL predicate over events

    def as_rule(self) -> Rule:
        rx = re.compile(self.pattern)
        if "to" not in rx.groupindex:
            raise ValueError(f"LogRule {self.name!r}: the pattern needs a (?P<to>...) group")

        def observe(tl: Timeline) -> pd.DataFrame:
            where = "message is not null" + (f" and ({self.where})" if self.where else "")
            df = tl.sql(f"select seq, source::VARCHAR as source, message from events where {where}").to_pandas()
            m = df["message"].str.extract(self.pattern)
            if "to" not in m:
                return _empty()
            ent = m["entity"] if "entity" in m else "source/" + df["source"]
            return _obs(df, ent, m["to"], from_state=m["from"] if "from" in m else None, detail=df["message"])

        return Rule(self.name, f"regex {self.pattern!r}", observe, initial=True)


@dataclass(frozen=True)
class StateMachine:
    """A user-defined state machine over any events.

    ``entity``: a column or attrs key naming the entity; ``state``: a column or attrs key
    carrying the state directly, and/or ``on``: event name/message glob → state;
    ``transitions``: the legal moves ``{from: [to, ...]}`` — any other move is kept and
    flagged ``illegal``; ``where``: an SQL predicate selecting the events.

    Example::

        >>> sm = StateMachine("svc", entity="pod", state="state",
        ...                   transitions={"starting": ["warming"], "warming": ["ready"],
        ...                                "ready": ["draining"], "draining": ["stopped"]})
    """

    name: str
    entity: str
    state: str | None = None
    on: Mapping[str, str] = field(default_factory=dict)
    transitions: Mapping[str, Sequence[str]] | None = None
    where: str | None = None
    states: Sequence[str] | None = None

    def _col(self, key: str) -> str:
        canon = {"entity", "state", "name", "message", "host", "pid", "tid", "category", "source", "kind"}
        # a canonical column where the reader filled it, else the attrs key of that name
        return f"coalesce({key}::VARCHAR, {_attr(key)})" if key in canon else _attr(key)

    def as_rule(self) -> Rule:
        def observe(tl: Timeline) -> pd.DataFrame:
            st = self._col(self.state) if self.state else "NULL"
            where = f"{self._col(self.entity)} is not null" + (f" and ({self.where})" if self.where else "")
            df = tl.sql(f"select seq, {self._col(self.entity)} as ent, {st} as st, name, message "
                        f"from events where {where}").to_pandas()
            state = df["st"].astype(object)
            for pat, target in self.on.items():
                hit = df["name"].fillna("").map(lambda s, p=pat: fnmatch.fnmatchcase(s, p)) | \
                    df["message"].fillna("").map(lambda s, p=pat: fnmatch.fnmatchcase(s, p))
                state = state.where(~hit, target)
            if self.states is not None:
                state = state.where(state.isin(list(self.states)))
            return _obs(df, df["ent"], state, detail=df["message"])

        return Rule(self.name, f"state machine on {self.entity}", observe, initial=True)

    def illegal(self, frm: Any, to: Any) -> bool:
        if self.transitions is None or frm is None or (isinstance(frm, float) and np.isnan(frm)):
            return False
        return to not in set(self.transitions.get(frm, ()))


# --------------------------------------------------------------------------- engine


def _changes(obs: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """Rows of ``obs`` (with ts) where the state changes within an entity."""
    if obs.empty:
        return obs
    obs = obs.sort_values(["entity", "ts", "seq"], kind="stable")
    explicit = obs["from_state"].notna()
    grp = obs.groupby("entity", sort=False)["state"]
    prev = grp.shift(1)
    changed = obs["state"].ne(prev) & prev.notna()
    if rule.min_run > 1:
        run_id = (obs["state"].ne(prev) | obs["entity"].ne(obs["entity"].shift(1))).cumsum()
        run_len = obs.groupby(run_id)["state"].transform("size")
        prev_run_len = pd.Series(run_len.to_numpy(), index=obs.index).groupby(obs["entity"]).shift(1)
        changed &= prev_run_len.fillna(0) >= rule.min_run
    first = prev.isna() & (obs["entity"].ne(obs["entity"].shift(1)))
    keep = explicit | changed | (first & rule.initial)
    out = obs[keep].copy()
    out["from_state"] = out["from_state"].where(explicit[keep], prev[keep])
    return out


def find_transitions(
    tl: Timeline,
    rules: Sequence[str | Rule | LogRule | StateMachine] | None = None,
    exclude: Sequence[str] = (),
    entity: str | Callable[[str], bool] | None = None,
    extra: Sequence[Rule | LogRule | StateMachine] = (),
) -> Transitions:
    """Run the rules over ``tl`` and return the :class:`Transitions` (sorted by time).

    Example::

        >>> tr = find_transitions(tl, exclude=["state-column"])      # doctest: +SKIP
    """
    chosen: list[Any] = []
    for r in rules if rules is not None else list(RULES):
        if isinstance(r, str):
            if r not in RULES:
                raise KeyError(f"no rule {r!r}; rules: {', '.join(RULES)}")
            chosen.append(RULES[r])
        else:
            chosen.append(r)
    chosen = [r for r in chosen if getattr(r, "name", None) not in set(exclude)] + list(extra)
    ev = tl.events
    n = ev.num_rows
    seq = ev.column("seq").to_numpy() if n else np.zeros(0, np.uint64)
    pos = np.empty(int(seq.max()) + 1 if n else 0, dtype=np.int64)
    pos[seq] = np.arange(n)
    ts = ev.column("ts").cast(pa.int64()).to_numpy() if n else np.zeros(0, np.int64)
    prec = pc.fill_null(ev.column("ts_prec").cast(pa.int64()), 0).to_numpy() if n else np.zeros(0, np.int64)
    src = ev.column("source").cast(pa.string()).to_numpy(zero_copy_only=False) if n else np.array([], object)
    lo_off, hi_off = _source_uncertainty(tl)
    parts = []
    machines = {}
    for r in chosen:
        rule = r.as_rule() if isinstance(r, (LogRule, StateMachine)) else r
        if isinstance(r, StateMachine):
            machines[rule.name] = r
        obs = rule.observe(tl)
        if obs is None or obs.empty:
            continue
        for c in _OBS_COLS:
            if c not in obs:
                obs[c] = None
        p = pos[obs["seq"].to_numpy(np.int64)]
        obs = obs.assign(ts=ts[p], _pos=p)
        ch = _changes(obs, rule)
        if ch.empty:
            continue
        ch = ch.assign(rule=rule.name)
        parts.append(ch)
    if not parts:
        return Transitions(TRANSITION_SCHEMA.empty_table(), tl)
    allt = pd.concat(parts, ignore_index=True)
    p = allt["_pos"].to_numpy(np.int64)
    sources = src[p]
    lo_src = np.zeros(len(p), np.int64)
    hi_src = np.zeros(len(p), np.int64)
    for s_name in np.unique(sources):
        m = sources == s_name
        lo_src[m], hi_src[m] = lo_off.get(s_name, 0), hi_off.get(s_name, 0)
    lo = ts[p] + lo_src
    hi = ts[p] + prec[p] + hi_src
    if machines:
        illegal = [machines[r].illegal(f, t) if r in machines else False
                   for r, f, t in zip(allt["rule"], allt["from_state"], allt["state"])]
    else:
        illegal = np.zeros(len(p), bool)
    n_t = len(p)

    def strings(col: pd.Series) -> pa.Array:
        return pa.array(col.astype(object).where(col.notna(), None), pa.string(), from_pandas=True)

    seqs = pa.array(allt["seq"].to_numpy(np.uint64))
    table = pa.table({
        "ts": pa.array(ts[p]).view(pa.timestamp("ns", tz="UTC")),
        "ts_lo": pa.array(lo).view(pa.timestamp("ns", tz="UTC")),
        "ts_hi": pa.array(hi).view(pa.timestamp("ns", tz="UTC")),
        "entity": strings(allt["entity"]),
        "from_state": strings(allt["from_state"]),
        "to_state": pa.array(allt["state"].astype(str), pa.string()),
        "rule": pa.array(allt["rule"], pa.string()),
        "source": pa.array(sources, pa.string()),
        "evidence": pa.ListArray.from_arrays(pa.array(np.arange(n_t + 1, dtype=np.int32)), seqs),
        "detail": strings(allt["detail"]),
        "illegal": pa.array(illegal, pa.bool_()),
    }, schema=TRANSITION_SCHEMA)
    order = pc.sort_indices(table, [("ts", "ascending"), ("entity", "ascending"), ("rule", "ascending")])
    table = table.take(order)
    if entity is not None:
        ents = table.column("entity").to_pylist()
        if callable(entity):
            mask = [bool(entity(e)) for e in ents]
        else:
            mask = [fnmatch.fnmatchcase(e or "", entity) for e in ents]
        table = table.filter(pa.array(mask))
    return Transitions(table, tl)


def _or_none(x: Any) -> str:
    return "(none)" if _isna(x) else str(x)


def _isna(x: Any) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA


def _source_uncertainty(tl: Timeline) -> tuple[dict[str, int], dict[str, int]]:
    """Per source, how far below/above ``ts`` the true time may lie from its clock interval."""
    lo, hi = {}, {}
    for r in tl.sources.to_pylist():
        off = int(pd.Timedelta(r["offset"]).value) if r.get("offset") is not None else 0
        lo[r["source"]] = (int(pd.Timedelta(r["offset_lo"]).value) - off) if r.get("offset_lo") is not None else 0
        hi[r["source"]] = (int(pd.Timedelta(r["offset_hi"]).value) - off) if r.get("offset_hi") is not None else 0
    return lo, hi


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Transition:
    """One transition (a row of :attr:`Transitions.table`)."""

    ts: int
    ts_lo: int
    ts_hi: int
    entity: str
    from_state: str | None
    to_state: str
    rule: str
    source: str
    evidence: list[int]
    detail: str | None
    illegal: bool

    def __repr__(self) -> str:
        return (f"Transition({_time.fmt_ns(self.ts)} {self.entity}: {self.from_state} → {self.to_state} "
                f"[{self.rule}] {self.detail or ''})")


class Transitions:
    """The transitions of a Timeline: ``.table`` (Arrow), ``len``, ``tr[i]``, ``.to_pandas()``.

    Example::

        >>> tr = tl.transitions()          # doctest: +SKIP
        >>> tr[0], len(tr)                 # doctest: +SKIP
    """

    def __init__(self, table: pa.Table, tl: Timeline | None = None):
        self.table = table
        self._tl = tl

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: int) -> Transition:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"transition {i} of {len(self)}")
        r = self.table.slice(i, 1).to_pylist()[0]
        return Transition(ts=int(pd.Timestamp(r["ts"]).value), ts_lo=int(pd.Timestamp(r["ts_lo"]).value),
                          ts_hi=int(pd.Timestamp(r["ts_hi"]).value), entity=r["entity"],
                          from_state=r["from_state"], to_state=r["to_state"], rule=r["rule"],
                          source=r["source"], evidence=list(r["evidence"]), detail=r["detail"],
                          illegal=r["illegal"])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas(types_mapper=pd.ArrowDtype)

    def filter(self, entity: str | None = None, rule: str | Sequence[str] | None = None,
               after: Any = None, before: Any = None) -> Transitions:
        """A subset by entity glob, rule name(s) and time."""
        t = self.table
        mask = np.ones(t.num_rows, bool)
        if entity is not None:
            mask &= np.array([fnmatch.fnmatchcase(e or "", entity) for e in t.column("entity").to_pylist()], bool)
        if rule is not None:
            names = {rule} if isinstance(rule, str) else set(rule)
            mask &= np.array([r in names for r in t.column("rule").to_pylist()], bool)
        ts = t.column("ts").cast(pa.int64()).to_numpy()
        if after is not None:
            mask &= ts >= _time.to_time_ns(after)
        if before is not None:
            mask &= ts < _time.to_time_ns(before)
        return Transitions(t.filter(pa.array(mask)), self._tl)

    def counts(self) -> pd.DataFrame:
        """How many transitions each rule found."""
        return self.to_pandas().groupby("rule", observed=True).size().rename("n").reset_index()

    def deploys(self, window: str = "90s") -> pd.DataFrame:
        """Moments where the indirect traces of a deploy cluster: version/config changes, pods
        replaced, endpoint changes and commands that changed exit status, within ``window``.

        Returns one row per cluster, most kinds of evidence first: ``start``, ``end``,
        ``kinds`` (which evidence), ``n`` and a ``summary``.
        """
        w = _time.to_duration_ns(window)
        df = self.table.to_pandas()
        if df.empty:
            return pd.DataFrame(columns=["start", "end", "kinds", "n", "summary"])
        kind = pd.Series(None, index=df.index, dtype=object)
        kind[df["rule"].eq("value-change")] = "version/config change"
        kind[df["rule"].eq("endpoints")] = "endpoint change"
        kind[df["rule"].eq("exit-status")] = "exit status change"
        kind[df["rule"].eq("k8s-events") & df["to_state"].isin(["Killing", "Scheduled", "SuccessfulCreate",
                                                                 "SuccessfulDelete", "ScalingReplicaSet"])] = "pods replaced"
        kind[df["rule"].eq("log-state") & df["to_state"].isin(["starting", "draining", "stopped"])] = "service restart"
        ev = df[kind.notna()].assign(k=kind[kind.notna()]).sort_values("ts")
        if ev.empty:
            return pd.DataFrame(columns=["start", "end", "kinds", "n", "summary"])
        t = ev["ts"].astype("int64").to_numpy()
        cluster = np.concatenate([[0], np.cumsum(np.diff(t) > w)])
        rows = []
        for _, g in ev.groupby(cluster):
            kinds = sorted(set(g["k"]))
            first = g.sort_values("ts").drop_duplicates("k").set_index("k")
            rows.append({
                "start": g["ts"].min(), "end": g["ts"].max(), "kinds": kinds, "n": len(g),
                "summary": "; ".join(f"{k}: {first.loc[k, 'entity']} {_or_none(first.loc[k, 'from_state'])} → "
                                     f"{first.loc[k, 'to_state']}" for k in kinds),
            })
        out = pd.DataFrame(rows)
        out["score"] = out["kinds"].map(len)
        return out.sort_values(["score", "n"], ascending=False).drop(columns="score").reset_index(drop=True)

    def __repr__(self) -> str:
        lines = [f"Transitions: {len(self)}"]
        for r in self.table.slice(0, 30).to_pylist():
            lines.append(f"  {_time.fmt_ns(int(pd.Timestamp(r['ts']).value))}  {r['entity']}: "
                         f"{r['from_state']} → {r['to_state']}  [{r['rule']}]")
        if len(self) > 30:
            lines.append(f"  … {len(self) - 30} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        cols = ["ts", "entity", "from_state", "to_state", "rule", "source", "detail"]
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = []
        for r in self.table.slice(0, 50).to_pylist():
            cells = []
            for c in cols:
                v = r[c]
                if c == "ts":
                    v = _time.fmt_ns(int(pd.Timestamp(v).value))
                cells.append(f"<td>{esc('' if v is None else str(v))}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        more = f"<p>… {len(self) - 50} more</p>" if len(self) > 50 else ""
        return (f"<div><b>Transitions</b>: {len(self)}<table><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>{more}</div>")
