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
import os
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
    optionally ``from_state`` (explicit: every row is a transition) and ``detail`` (some
    built-in rules return the same as Arrow arrays with row positions, an internal ``_Obs``).
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




def _frame(tl: Timeline, where: str, cols: str = "") -> pd.DataFrame:
    """Rows of ``events`` matching an SQL predicate, as pandas (small subsets only)."""
    extra = f", {cols}" if cols else ""
    return tl.sql(
        f"select seq, _pos, ts, source::VARCHAR as source, kind::VARCHAR as kind, name, entity, state, "
        f"host, pid, value, message{extra} from events where {where}"
    ).to_pandas()


def _attr(col: str) -> str:
    return f"element_at(attrs, '{col}')[1]"


_EMPTY = pd.DataFrame({c: pd.Series(dtype=object) for c in _OBS_COLS})


def _empty() -> pd.DataFrame:
    return _EMPTY.copy()  # a copy of a template: building a frame costs ~0.2 ms, a copy ~10 µs


def _obs(df: pd.DataFrame, entity: Any, state: Any, from_state: Any = None, detail: Any = None) -> pd.DataFrame:
    if df.empty:
        return _empty()
    out = pd.DataFrame({"seq": df["seq"].astype("uint64")})
    if "_pos" in df:  # row position in the full timeline (rules run on a candidate subset)
        out["_pos"] = df["_pos"].astype("int64")
    for name, v in (("entity", entity), ("state", state), ("from_state", from_state), ("detail", detail)):
        out[name] = v if v is not None else None
    return out[out["entity"].notna() & out["state"].notna()]


@dataclass
class _Obs:
    """Observations as Arrow/numpy (the built-in rules' fast form): row positions in the
    timeline and, per row, entity, state (strings, or dictionary-encoded strings) and optionally
    an explicit from_state and a detail."""

    pos: np.ndarray
    entity: pa.Array
    state: pa.Array
    from_state: pa.Array | None = None
    detail: pa.Array | None = None

    def __len__(self) -> int:
        return len(self.pos)


def _col(tl: Timeline, name: str) -> pa.Array:
    """One column of ``events`` as a single Arrow array (cached; dictionaries unified)."""
    key = f"tk.col.{name}"
    if key not in tl._cache:
        col = tl.events.column(name)
        if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
            col = pa.table({"c": col}).unify_dictionaries().column("c")
        tl._cache[key] = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return tl._cache[key]


def _dict_in(tl: Timeline, name: str, values: Iterable[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Whether a dictionary column (``source``, ``kind``) is one of ``values``, per row (or per
    ``rows``): one lookup per dictionary entry, then an index gather — no string compare per row."""
    col = _col(tl, name)
    hit = np.asarray(pc.is_in(col.dictionary, pa.array(list(values), pa.string())).to_numpy(zero_copy_only=False))
    idx = col.indices.to_numpy(zero_copy_only=False)
    return hit[idx if rows is None else idx[rows]]


def _dict_rows(tl: Timeline, name: str, values: Iterable[str]) -> np.ndarray:
    """Positions of the rows whose dictionary column ``name`` is one of ``values`` (none: no
    per-row work at all)."""
    col = _col(tl, name)
    hit = np.asarray(pc.is_in(col.dictionary, pa.array(list(values), pa.string())).to_numpy(zero_copy_only=False))
    if not hit.any():
        return np.zeros(0, np.int64)
    return np.flatnonzero(hit[col.indices.to_numpy(zero_copy_only=False)])


def _set_bits(buf: pa.Buffer | None, offset: int, n: int) -> np.ndarray:
    """Positions of the set bits ``offset … offset+n`` of an Arrow bitmap (validity or boolean
    values), as int64: only the nonzero bytes are expanded to bits."""
    if n == 0:
        return np.zeros(0, np.int64)
    if buf is None:  # no bitmap: every row valid
        return np.arange(n, dtype=np.int64)
    first = offset // 8
    b = np.frombuffer(buf, np.uint8, (offset + n + 7) // 8 - first, first)
    nz = np.flatnonzero(b != 0)
    k = np.flatnonzero(np.unpackbits(b[nz], bitorder="little").view(bool))  # bit k of the nonzero bytes
    bit = k.astype(np.uint8)
    bit &= 7
    k >>= 3
    p = nz[k]  # in place from here: fewer fresh pages (a first call's page faults are its cost)
    del k, nz
    p <<= 3
    p += bit
    if offset % 8:
        p -= offset % 8
    return p[(p >= 0) & (p < n)] if offset % 8 or (len(p) and p[-1] >= n) else p


def _nonzero(mask: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    """Positions where a boolean mask is true (null counts as false)."""
    if isinstance(mask, np.ndarray):
        return np.flatnonzero(mask)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks() if mask.num_chunks != 1 else mask.chunk(0)
    if mask.null_count == len(mask):
        return np.zeros(0, np.int64)
    if mask.null_count:
        mask = pc.fill_null(mask, False)
    return _set_bits(mask.buffers()[1], mask.offset, len(mask))


def _per_call(tl: Timeline, key: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, computed once per :func:`find_transitions` call for the rules that share it
    (nothing is kept after the call)."""
    memo = tl._cache.get("tk.call")
    if memo is None:
        return fn()
    if key not in memo:
        memo[key] = fn()
    return memo[key]


_SPLIT_ROWS = 1 << 20  # scans of timelines this long are split over the two threads


def _halves(n: int, part: Callable[[int, int], Any]) -> list[Any]:
    """``part(lo, hi)`` over rows ``0 … n``: whole, or on a long timeline in two halves side by
    side (split at a multiple of 8, a byte boundary of an unsliced bitmap)."""
    if n < _SPLIT_ROWS:
        return [part(0, n)]
    mid = n // 16 * 8
    return _side_by_side(lambda: part(0, mid), lambda: part(mid, n))


def _valid_in(col: pa.Array, lo: int, hi: int) -> np.ndarray:
    """Positions of the non-null rows of ``col`` among ``lo … hi``."""
    rows = _set_bits(col.buffers()[0] if col.null_count else None, col.offset + lo, hi - lo)
    if lo:
        rows += lo
    return rows


def _byte_lengths(col: pa.Array, rows: np.ndarray) -> np.ndarray | None:
    """Byte length of a string column's value at each of ``rows``, from its offsets (None for
    another type); null rows give whatever their offsets say."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)) or col.buffers()[1] is None:
        return None
    offsets = pa.Array.from_buffers(pa.int64() if pa.types.is_large_string(col.type) else pa.int32(),
                                    len(col) + 1, [None, col.buffers()[1]], offset=col.offset)
    r = pa.array(rows)  # Arrow's gathers: faster here than numpy's, and no fresh pages
    return pc.subtract(offsets.take(pc.add(r, 1)), offsets.take(r)).to_numpy()


def _entity_rows(tl: Timeline) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions of the rows with an entity and the byte length of their ``name`` (computed
    once per call for the rules that need them)."""
    def compute() -> tuple[np.ndarray, np.ndarray | None]:
        ent, name = _col(tl, "entity"), _col(tl, "name")
        if ent.null_count == len(ent):
            return np.zeros(0, np.int64), None

        def part(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray | None]:
            rows = _valid_in(ent, lo, hi)
            return rows, _byte_lengths(name, rows)

        got = _halves(len(ent), part)
        if len(got) == 1:
            return got[0]
        rows = np.concatenate([g[0] for g in got])
        return rows, None if got[0][1] is None else np.concatenate([g[1] for g in got])

    return _per_call(tl, "entity_rows", compute)


def _named_rows(tl: Timeline, names: Sequence[str]) -> np.ndarray:
    """Positions of the rows with an entity whose ``name`` is one of ``names``: only names of
    the byte length of one of them (read from the offsets, once per call) are gathered and
    compared."""
    rows, lengths = _entity_rows(tl)
    if lengths is not None:
        rows = rows[np.isin(lengths, sorted({len(x.encode()) for x in names}))]
    if not len(rows):
        return rows
    col = _col(tl, "name")
    hit = pc.is_in(col.take(pa.array(rows)), pa.array(list(names), pa.string()))
    return rows[hit.fill_null(False).to_numpy(zero_copy_only=False)]


def _valid_rows_of_kind(tl: Timeline, name: str, kind: str) -> np.ndarray:
    """Positions of the rows where column ``name`` is not null and ``kind`` is ``kind`` (long
    timelines in two halves side by side: a bitmap scan and a gather of kind codes each)."""
    col, kcol = _col(tl, name), _col(tl, "kind")
    if col.null_count == len(col):
        return np.zeros(0, np.int64)
    hit = np.asarray(pc.is_in(kcol.dictionary, pa.array([kind], pa.string())).to_numpy(zero_copy_only=False))
    if not hit.any():
        return np.zeros(0, np.int64)
    codes = kcol.indices

    def part(lo: int, hi: int) -> np.ndarray:
        rows = _valid_in(col, lo, hi)
        return rows[hit[codes.take(pa.array(rows)).to_numpy(zero_copy_only=False)]]

    got = _halves(len(col), part)
    return got[0] if len(got) == 1 else np.concatenate(got)


def _attr_rows(tl: Timeline, keys: Iterable[str], rows: np.ndarray | None = None) -> np.ndarray:
    """Positions (among ``rows``, default all) whose ``attrs`` hold any of ``keys`` — a superset
    of the rows where one of them has a value; scans the map keys once, not a lookup per row."""
    attrs = _col(tl, "attrs")
    if rows is not None:
        attrs = attrs.take(pa.array(rows))
    if len(attrs.keys) == 0:
        return np.zeros(0, np.int64)
    hit = pc.is_in(attrs.keys, pa.array(list(keys), pa.string()))
    k = _nonzero(hit)
    if not len(k):
        return np.zeros(0, np.int64)
    offs = attrs.offsets.to_numpy()  # a slice's offsets index the whole child array
    k = k[(k >= offs[0]) & (k < offs[-1])]
    owner = np.unique(np.searchsorted(offs, k, side="right") - 1)
    return owner if rows is None else np.asarray(rows)[owner]


def _indices(rows: np.ndarray) -> pa.Array:
    """Ascending row positions as an Arrow index array (int32 when they fit: Arrow's gathers
    are a little faster with them)."""
    if len(rows) and int(rows[-1]) < 1 << 31 and int(rows[0]) >= 0:
        return pa.array(rows.astype(np.int32))
    return pa.array(rows)


def _gathered(col: pa.Array, idx: pa.Array) -> pa.Array:
    """``col.take(idx)`` for ascending row positions; for a string column whose selected values
    adjoin in its data (every row between two selected ones holds no bytes: null or empty, as
    the other rows' state typically is), a view of the column: only the offsets are gathered,
    no string is copied."""
    if not pa.types.is_string(col.type) or len(idx) == 0 or col.buffers()[1] is None:
        return col.take(idx)
    offsets = pa.Array.from_buffers(pa.int32(), len(col) + 1, [None, col.buffers()[1]], offset=col.offset)
    lo, hi = offsets.take(idx), offsets.take(pc.add(idx, 1))
    a, b = lo.to_numpy(), hi.to_numpy()
    if not np.array_equal(a[1:], b[:-1]):
        return col.take(idx)
    validity, nulls = None, 0
    if col.null_count:
        valid = pc.is_valid(col).take(idx)
        nulls = len(valid) - pc.sum(valid).as_py()
        validity = valid.buffers()[1] if nulls else None
    own = pa.concat_arrays([lo, hi.slice(len(hi) - 1)])
    return pa.Array.from_buffers(pa.string(), len(idx), [validity, own.buffers()[1], col.buffers()[2]], null_count=nulls)


def _subset(tl: Timeline, rows: np.ndarray) -> Timeline | None:
    """The candidate rows as a small Timeline (with their positions in ``tl`` as ``_pos``),
    for the rules whose exact predicate and per-row work stay in SQL/pandas."""
    if not len(rows):
        return None
    idx = pa.array(np.asarray(rows, np.int64))
    ev = tl.events.take(idx).append_column("_pos", idx)
    return Timeline(ev, tl.sources, tl.rejects, tl._params, tl._meta)


_POOL: list[Any] = []  # one helper thread, made on first use (and anew in a forked child)
os.register_at_fork(after_in_child=_POOL.clear)


def _side_by_side(*fns: Callable[[], Any]) -> list[Any]:
    """Call the functions, the first on a helper thread while this one runs the rest: Arrow
    releases the GIL in its kernels, so two cores share the string work (gathers, encodes)."""
    from concurrent.futures import ThreadPoolExecutor

    if len(fns) < 2:
        return [f() for f in fns]
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(1, thread_name_prefix="tracekit-arrow"))
    first = _POOL[0].submit(fns[0])
    rest = [f() for f in fns[1:]]
    return [first.result(), *rest]


def _encoded(*cols: Callable[[], pa.Array]) -> list[pa.DictionaryArray]:
    """Dictionary-encode the arrays the callables return (a gather, typically), side by side;
    an array that is already dictionary-encoded is kept."""
    def enc(f: Callable[[], pa.Array]) -> Callable[[], pa.DictionaryArray]:
        def run() -> pa.DictionaryArray:
            a = f()
            return a if pa.types.is_dictionary(a.type) else pc.dictionary_encode(a)
        return run

    return _side_by_side(*(enc(f) for f in cols))


def _source_names(tl: Timeline) -> list[str]:
    return _col(tl, "source").dictionary.to_pylist()

# --------------------------------------------------------------------------- built-in rules


def _k8s_events(tl: Timeline) -> pd.DataFrame:
    fmts = _formats(tl, ("k8s_events",))
    if not fmts:
        return _empty()
    sub = _subset(tl, _dict_rows(tl, "source", _format_sources(tl, ("k8s_events",))))
    if sub is None:
        return _empty()
    df = _frame(sub, f"source::VARCHAR in ({fmts}) and entity is not null and name is not null")
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
    rows = _dict_rows(tl, "source", _format_sources(tl, ("k8s_audit",)))
    sub = _subset(tl, rows[pc.starts_with(_col(tl, "entity").take(pa.array(rows)), "endpoint")
                           .fill_null(False).to_numpy(zero_copy_only=False)] if len(rows) else rows)
    if sub is None:
        return _empty()
    df = _frame(sub, f"source::VARCHAR in ({fmts}) and entity like 'endpoint%' "
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


def _span_status(tl: Timeline) -> _Obs | pd.DataFrame:
    # kind = 'span' and entity is not null and state in ('ok', 'error')
    rows = _dict_rows(tl, "kind", ("span",))
    if not len(rows):
        return _empty()
    idx = pa.array(rows)
    ent, st = _col(tl, "entity").take(idx), _col(tl, "state").take(idx)
    keep = pa.array(_nonzero(pc.and_(pc.is_valid(ent), pc.is_in(st, pa.array(["ok", "error"])))))
    return _Obs(rows[keep.to_numpy()], ent.take(keep), st.take(keep))


_EXEC_RE = r'^"([^"]*)",\s*\[(.*?)\]'


def _procs(tl: Timeline) -> pd.DataFrame:
    """One row per exec/exit/kill with the process's command (first successful exec's argv);
    computed once per :func:`find_transitions` call for the two rules that read it."""
    memo = tl._cache.get("tk.procs")
    if memo is not None:
        return memo.copy()
    df = _procs_of(tl)
    if "tk.procs" in tl._cache:  # inside find_transitions: keep it for the next rule
        tl._cache["tk.procs"] = df
        return df.copy()
    return df


def _procs_of(tl: Timeline) -> pd.DataFrame:
    from .clocks import EXEC_NAMES, EXIT_NAMES

    ex = ",".join(f"'{n}'" for n in EXEC_NAMES)
    xs = ",".join(f"'{n}'" for n in EXIT_NAMES)
    sub = _subset(tl, _named_rows(tl, EXEC_NAMES + EXIT_NAMES))
    if sub is None:
        return pd.DataFrame()
    df = sub.sql(
        f"select seq, _pos, ts, source::VARCHAR as source, name, entity, host, pid, value, message, "
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
_LOG_STATE_KEYS = ("from_state", "pod", "service", "entity", "namespace")  # what else a state log line names
_SOCKET_KEYS = ("oldstate", "saddr", "sport", "daddr", "dport")  # the attrs a socket state names


def _log_state(tl: Timeline) -> pd.DataFrame:
    keys = ", ".join(f"{_attr(k)} as a_{k}" for k in _STATE_KEYS + _LOG_STATE_KEYS)
    rows = _attr_rows(tl, _STATE_KEYS)
    sub = _subset(tl, rows[_dict_in(tl, "kind", ("log",), rows)])
    if sub is None:
        return _empty()
    df = sub.sql(
        f"select seq, _pos, ts, source::VARCHAR as source, entity, message, {keys} from events "
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
    ent = _col(tl, "entity")
    t = pc.unique(ent.filter(pc.starts_with(ent, "pod/").fill_null(False))).to_pylist()
    return {e.rsplit("/", 1)[-1]: e for e in t if e}


def _resolve_pod(pod: str, known: dict[str, str]) -> str:
    return known.get(pod, f"pod/{pod}")


def _state_column(tl: Timeline) -> pd.DataFrame:
    # state is not null and kind = 'state' and the source is none of these formats
    skip = _format_sources(tl, ("k8s_events", "k8s_audit", "otlp", "jaeger", "zipkin", "strace"))
    rows = _valid_rows_of_kind(tl, "state", "state")
    if skip:
        rows = rows[~_dict_in(tl, "source", skip, rows)]
    if not len(rows):
        return _empty()
    idx = _indices(rows)
    attrs = _col(tl, "attrs")
    attrs = attrs.take(idx) if len(attrs.keys) else attrs.slice(0, 0)
    if not (len(attrs) and len(attrs.keys) and pc.any(pc.is_in(attrs.keys, pa.array(_SOCKET_KEYS))).as_py()):
        # no socket attrs: entity and state gathered and encoded side by side
        ent, st = _encoded(lambda: _gathered(_col(tl, "entity"), idx), lambda: _gathered(_col(tl, "state"), idx))
        if ent.null_count == 0:
            return _Obs(rows, ent, st)
        keep = pa.array(_nonzero(pc.is_valid(ent)))
        return _Obs(rows[keep.to_numpy()], ent.take(keep), st.take(keep))
    ent, st = _col(tl, "entity").take(idx), _col(tl, "state").take(idx)
    olds, saddr, sport, daddr, dport = (pc.map_lookup(attrs, k, "first") for k in _SOCKET_KEYS)
    host = _col(tl, "host").take(idx)
    q = [pc.fill_null(x, "?") for x in (host, saddr, sport, daddr, dport)]
    sock = pc.binary_join_element_wise("sock/", q[0], "/", q[1], ":", q[2], "-", q[3], ":", q[4], "")
    ent = pc.if_else(pc.is_valid(ent), ent, pc.if_else(pc.is_valid(daddr), sock, pa.scalar(None, pa.string())))
    if ent.null_count == 0:
        return _Obs(rows, ent, st, olds, daddr)
    keep = pa.array(_nonzero(pc.is_valid(ent)))
    return _Obs(rows[keep.to_numpy()], ent.take(keep), st.take(keep),
                olds.take(keep) if olds is not None else None, daddr.take(keep) if daddr is not None else None)


VERSION_KEYS = ("version", "service.version", "resource.service.version", "app.version", "config_version",
                "config", "config_path", "config.version", "image", "image_tag", "build", "git_sha", "release")

#: every attrs key the built-in rules read: the ``_attr(key)`` lookups in their SQL and the key
#: lists above. The store keeps only these in the candidate rows it hands to the rules (a test
#: checks that each ``_attr`` lookup of a literal key in this module is listed).
RULE_ATTR_KEYS = frozenset({
    "requestObject", "responseObject", "filename", "signal", "errno", "service", "resource.service.name",
    "cron.command", "cron.user", *_SOCKET_KEYS, *_LOG_STATE_KEYS, *VERSION_KEYS, *_STATE_KEYS,
})


def _value_change(tl: Timeline) -> pd.DataFrame:
    """First sight of each new value of a version/config attribute, per service."""
    tl = _subset(tl, _attr_rows(tl, VERSION_KEYS))  # the rows that hold any of the keys
    if tl is None:
        return _empty()
    present = [k for k in VERSION_KEYS
               if tl.sql(f"select 1 from events where {_attr(k)} is not null limit 1").num_rows]
    if not present:
        return _empty()
    parts = []
    for k in present:
        df = tl.sql(
            f"select seq, _pos, ts, source::VARCHAR as source, category, entity, {_attr(k)} as v, "
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
    # rows without an entity would be dropped (_obs), so only rows with one are looked at
    sub = _subset(tl, _named_rows(tl, ("cron.cmd",)))
    if sub is None:
        return _empty()
    df = sub.sql(
        f"select seq, _pos, entity, {_attr('cron.command')} as cmd, {_attr('cron.user')} as usr from events "
        "where name = 'cron.cmd'"
    ).to_pandas()
    return _obs(df, df["entity"], "fired", from_state="idle", detail=df["usr"].fillna("?") + ": " + df["cmd"].fillna(""))


def _format_sources(tl: Timeline, names: Iterable[str]) -> list[str]:
    """The loaded sources of the given formats."""
    src, want = tl.sources, set(names)
    return [s for s, f, st in zip(src.column("source").to_pylist(), src.column("format").to_pylist(),
                                  src.column("status").to_pylist()) if f in want and st == "loaded"]


def _formats(tl: Timeline, names: Iterable[str]) -> str:
    """The loaded sources of the given formats as an SQL list of string literals."""
    return ", ".join("'" + s.replace("'", "''") + "'" for s in _format_sources(tl, names))


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
            names, msgs = df["name"].fillna("").tolist(), df["message"].fillna("").tolist()
            for pat, target in self.on.items():
                hit = np.fromiter((fnmatch.fnmatchcase(a, pat) or fnmatch.fnmatchcase(m, pat)
                                   for a, m in zip(names, msgs)), bool, len(names))
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
    """Rows of ``obs`` (with ts) where the state changes within an entity (observations a
    user rule returned as pandas)."""
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


def _codes(a: pa.Array) -> np.ndarray:
    """Dictionary codes of a string array (equal strings, equal codes; nulls none of them)."""
    return pc.dictionary_encode(a).indices.to_numpy(zero_copy_only=False)


def _stable_order(codes: np.ndarray, bound: int | None = None) -> np.ndarray:
    """Stable argsort of non-negative codes (below ``bound`` if given; a radix sort when they
    fit 16 bits)."""
    if len(codes) and (bound if bound is not None else int(codes.max()) + 1) <= 1 << 16:
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.argsort(codes, kind="stable")


def _changes_arrow(obs: _Obs, rule: Rule, ts: np.ndarray, seq: np.ndarray) -> dict | None:
    """:func:`_changes` for Arrow observations: entities and states as dictionary codes, one
    stable sort by (entity, ts, seq), neighbours compared in numpy; the kept rows come back in
    time order, with their ts and seq. Gathers and the sort are Arrow kernels where they can be
    (faster than numpy's here, and their memory stays with Arrow's allocator between calls
    instead of being paged in afresh)."""
    pos = obs.pos
    m = len(pos)
    if pa.types.is_dictionary(obs.entity.type) and pa.types.is_dictionary(obs.state.type):
        ent, st = obs.entity, obs.state
    else:
        ent, st = _encoded(lambda: obs.entity, lambda: obs.state)
    eidx, sidx = ent.indices, st.indices
    nent = len(ent.dictionary)

    def from_codes(tord: np.ndarray | None) -> np.ndarray:
        """Per observation (row order), the state code it changed from: -1 no transition, -2
        one from nothing. Computed in (entity, time) order and placed back with one scatter."""
        if tord is None and eidx.null_count == 0:
            oa = pc.sort_indices(eidx)  # stable: equal entities stay in time order
            o, e, c = oa.to_numpy(), eidx.take(oa).to_numpy(), sidx.take(oa).to_numpy(zero_copy_only=False)
        else:
            ecode = eidx.to_numpy(zero_copy_only=False)
            o = _stable_order(ecode, nent) if tord is None else tord[_stable_order(ecode[tord], nent)]
            e, c = ecode[o], sidx.to_numpy(zero_copy_only=False)[o]
        same = np.zeros(m, bool)
        same[1:] = e[1:] == e[:-1]  # the row has a predecessor in its entity
        differs = np.ones(m, bool)
        differs[1:] = c[1:] != c[:-1]
        changed = same & differs
        if rule.min_run > 1:
            run = np.cumsum(~same | differs) - 1
            run_len = np.bincount(run)[run]
            prev_len = np.zeros(m, np.int64)
            prev_len[1:] = np.where(same[1:], run_len[:-1], 0)
            changed &= prev_len >= rule.min_run
        f = np.empty(m, np.int32)
        f[0] = -1
        f[1:] = c[:-1]
        f[~changed] = -1
        if rule.initial:
            f[~same] = -2
        out = np.empty_like(f)
        out[o] = f
        return out

    # rows of a timeline are in (ts, seq) order, so position order is time order: the entity
    # order is computed while the rows' ts are gathered, then checked against them
    pos_a, ts_a = pa.array(pos), pa.array(ts)
    tord = None
    if np.all(pos[1:] >= pos[:-1]):
        tp, frm_code = _side_by_side(lambda: ts_a.take(pos_a), lambda: from_codes(None))
        t = tp.to_numpy()
        if not np.all(t[1:] >= t[:-1]):  # not a sorted timeline after all
            tord = np.lexsort((seq[pos], t))
    else:
        tp = ts_a.take(pos_a)
        tord = np.argsort(pos, kind="stable")
        t = tp.to_numpy()[tord]
        if not np.all(t[1:] >= t[:-1]):
            tord = np.lexsort((seq[pos], tp.to_numpy()))
    if tord is not None:
        frm_code = from_codes(tord)
    keep = frm_code != -1
    explicit = (None if obs.from_state is None or obs.from_state.null_count == len(obs.from_state)
                else pc.is_valid(obs.from_state).to_numpy(zero_copy_only=False))
    if explicit is not None:
        keep |= explicit
    rows = pc.indices_nonzero(pa.array(keep)) if tord is None else pa.array(tord[keep[tord]])
    if not len(rows):
        return None

    # the output strings, two gathers from a dictionary on the helper thread, one here
    def entity_to() -> tuple[pa.Array, pa.Array]:
        return ent.dictionary.take(eidx.take(rows)), st.dictionary.take(sidx.take(rows))

    def from_rest() -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        fr = pa.array(frm_code).take(rows)
        if pc.min(fr).as_py() < 0:  # transitions from nothing
            fr = pc.if_else(pc.less(fr, 0), pa.scalar(None, pa.int32()), fr)
        frm = st.dictionary.take(fr)
        if explicit is not None:
            frm = pc.if_else(pa.array(explicit).take(rows), obs.from_state.take(rows), frm)
        p = pos_a.take(rows)
        return frm, p, tp.take(rows), pa.array(seq).take(p)

    (entity, to_state), (frm, p, t, sq) = _side_by_side(entity_to, from_rest)
    return {"pos": p.to_numpy(), "t": t.to_numpy(), "seq": sq.to_numpy(), "entity": entity, "from_state": frm,
            "to_state": to_state, "detail": obs.detail.take(rows) if obs.detail is not None else None,
            "rule": rule.name}


def _strings(col: pd.Series) -> pa.Array:
    return pa.array(col.astype(object).where(col.notna(), None), pa.string(), from_pandas=True)


def _seq_pos(tl: Timeline) -> np.ndarray:
    """seq → row position (cached per timeline)."""
    if "tk.seq_pos" not in tl._cache:
        seq = _col(tl, "seq").to_numpy() if len(tl) else np.zeros(0, np.uint64)
        pos = np.empty(int(seq.max()) + 1 if len(seq) else 0, dtype=np.int64)
        pos[seq] = np.arange(len(seq))
        tl._cache["tk.seq_pos"] = pos
    return tl._cache["tk.seq_pos"]


def _changes_frame(obs: pd.DataFrame, rule: Rule, tl: Timeline, ts: np.ndarray, seq: np.ndarray) -> dict | None:
    for c in _OBS_COLS:
        if c not in obs:
            obs[c] = None
    p = obs["_pos"].to_numpy(np.int64) if "_pos" in obs else _seq_pos(tl)[obs["seq"].to_numpy(np.int64)]
    ch = _changes(obs.assign(ts=ts[p], _pos=p), rule)
    if ch.empty:
        return None
    pos = ch["_pos"].to_numpy(np.int64)
    return {"pos": pos, "t": ts[pos], "seq": seq[pos], "entity": _strings(ch["entity"]),
            "from_state": _strings(ch["from_state"]), "to_state": pa.array(ch["state"].astype(str), pa.string()),
            "detail": _strings(ch["detail"]), "rule": rule.name}


def _time_order(parts: list[dict], t: np.ndarray, seq: np.ndarray, entity: pa.Array,
                rule: pa.Array) -> tuple[np.ndarray | None, np.ndarray]:
    """The order by (ts, entity, rule), ties kept in rule order, then seq, then as found (a
    stable sort of the rules' rows; None: as they are), and the ts in that order (``t``, ``seq``:
    the parts' rows' ts and seq, concatenated): parts arrive in time order, so this merges them
    and re-sorts only the rows that share a ts."""
    order = None if np.all(t[1:] >= t[:-1]) else np.argsort(t, kind="stable")
    if order is not None:
        t = t[order]
    tie = t[1:] == t[:-1]
    if not tie.any():
        return order, t
    if order is None:
        order = np.arange(len(t))
    slots = np.zeros(len(t), bool)
    slots[1:] = tie
    slots[:-1] |= tie
    slots = np.flatnonzero(slots)
    sub = order[slots]
    idx = pa.array(sub)
    er = pc.rank(entity.take(idx), "ascending", tiebreaker="dense").to_numpy()  # nulls last
    rr = pc.rank(rule.take(idx), "ascending", tiebreaker="dense").to_numpy()
    part = np.repeat(np.arange(len(parts)), [len(x["pos"]) for x in parts])[sub]
    order[slots] = sub[np.lexsort((sub, seq[sub], part, rr, er, t[slots]))]
    return order, t


def _repeated(value: str, n: int) -> pa.Array:
    """A string array of ``n`` times ``value`` (no per-row gather; Arrow's memory)."""
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _decoded(codes: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """The strings of dictionary ``codes`` (no nulls) as a plain string array."""
    if len(dictionary) == 1 and dictionary.null_count == 0:
        return _repeated(dictionary[0].as_py(), len(codes))
    return pa.DictionaryArray.from_arrays(pa.array(codes), dictionary).cast(pa.string())


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
    n = len(tl)
    ts = tl._ts_ns()
    seq = _col(tl, "seq").to_numpy() if n else np.zeros(0, np.uint64)
    parts = []
    machines = {}
    tl._cache["tk.procs"] = None  # _procs memo for this call (process and exit-status)
    tl._cache["tk.call"] = {}  # what several rules share within this call (_per_call)
    try:
        for r in chosen:
            rule = r.as_rule() if isinstance(r, (LogRule, StateMachine)) else r
            if isinstance(r, StateMachine):
                machines[rule.name] = r
            obs = rule.observe(tl)
            if obs is None or len(obs) == 0:
                continue
            part = (_changes_arrow(obs, rule, ts, seq) if isinstance(obs, _Obs)
                    else _changes_frame(obs, rule, tl, ts, seq))
            if part is not None:
                parts.append(part)
    finally:
        tl._cache.pop("tk.procs", None)
        tl._cache.pop("tk.call", None)
    if not parts:
        return Transitions(TRANSITION_SCHEMA.empty_table(), tl)

    def cat(name: str) -> Any:
        arrs = [x[name] if x[name] is not None else pa.nulls(len(x["pos"]), pa.string()) for x in parts]
        if isinstance(arrs[0], np.ndarray):
            return arrs[0] if len(arrs) == 1 else np.concatenate(arrs)
        return arrs[0] if len(arrs) == 1 else pa.concat_arrays(arrs)

    p, t, sq = cat("pos"), cat("t"), cat("seq")
    n_t = len(p)
    names = list(dict.fromkeys(x["rule"] for x in parts))
    rule_col = _decoded(np.repeat(np.array([names.index(x["rule"]) for x in parts], np.int32),
                                  [len(x["pos"]) for x in parts]), pa.array(names, pa.string()))
    entity_col = cat("entity")
    order, t = _time_order(parts, t, sq, entity_col, rule_col)
    identity = order is None or bool(np.all(order[1:] > order[:-1]))
    if not identity:
        p, sq = p[order], sq[order]
        take = pa.array(order)

    def ordered(a: pa.Array) -> pa.Array:
        return a if identity else a.take(take)
    src = _col(tl, "source")
    one_src = len(src.dictionary) == 1
    codes = None if one_src else src.indices.to_numpy(zero_copy_only=False)[p]
    lo_off, hi_off = _source_uncertainty(tl)
    src_names = src.dictionary.to_pylist()
    lo_by = np.array([lo_off.get(s, 0) for s in src_names], np.int64)
    hi_by = np.array([hi_off.get(s, 0) for s in src_names], np.int64)
    lo = t if not lo_by.any() else t + (lo_by[0] if one_src else lo_by[codes])
    hi = t if not hi_by.any() else t + (hi_by[0] if one_src else hi_by[codes])
    pcol = _col(tl, "ts_prec")
    if pcol.null_count != len(pcol):
        hi = hi + pc.fill_null(pcol.take(pa.array(p)).cast(pa.int64()), 0).to_numpy()
    from_col, to_col = ordered(cat("from_state")), ordered(cat("to_state"))
    rule_col, entity_col = ordered(rule_col), ordered(entity_col)
    illegal = np.zeros(n_t, bool)
    if machines:
        for k, (r, f, s) in enumerate(zip(rule_col.to_pylist(), from_col.to_pylist(), to_col.to_pylist())):
            if r in machines:
                illegal[k] = machines[r].illegal(f, s)
    stamp = pa.timestamp("ns", tz="UTC")
    table = pa.table({
        "ts": pa.array(t).view(stamp),
        "ts_lo": pa.array(lo).view(stamp),
        "ts_hi": pa.array(hi).view(stamp),
        "entity": entity_col,
        "from_state": from_col,
        "to_state": to_col,
        "rule": rule_col,
        "source": _repeated(src.dictionary[0].as_py(), n_t) if one_src else _decoded(codes, src.dictionary),
        "evidence": pa.ListArray.from_arrays(pa.array(np.arange(n_t + 1, dtype=np.int32)), pa.array(sq)),
        "detail": ordered(cat("detail")),
        "illegal": pa.array(illegal, pa.bool_()),
    }, schema=TRANSITION_SCHEMA)
    if entity is not None:
        table = table.filter(pa.array(_entity_mask(table.column("entity").combine_chunks(), entity)))
    return Transitions(table, tl)


def _entity_mask(col: pa.Array, entity: str | Callable[[str], bool]) -> np.ndarray:
    """Which rows' entity matches a glob or a predicate: evaluated once per distinct entity."""
    enc = pc.dictionary_encode(col, null_encoding="encode")
    vals = enc.dictionary.to_pylist()
    if callable(entity):
        hit = np.array([bool(entity(e)) for e in vals], bool)
    else:
        hit = np.array([fnmatch.fnmatchcase(e or "", entity) for e in vals], bool)
    return hit[enc.indices.to_numpy(zero_copy_only=False)] if len(vals) else np.zeros(len(col), bool)


def _or_none(x: Any) -> str:
    return "(none)" if _isna(x) else str(x)


def _isna(x: Any) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA


def _source_uncertainty(tl: Timeline) -> tuple[dict[str, int], dict[str, int]]:
    """Per source, how far below/above ``ts`` the true time may lie from its clock interval."""
    src = tl.sources

    def ns(name: str) -> list[int | None]:  # the column in ns per source (a missing one: None)
        if name not in src.column_names:
            return [None] * src.num_rows
        c = src.column(name)
        if pa.types.is_integer(c.type) or (pa.types.is_duration(c.type) and c.type.unit == "ns"):
            return c.cast(pa.int64()).to_pylist()
        return [None if v is None else int(pd.Timedelta(v).value) for v in c.to_pylist()]

    lo, hi = {}, {}
    for s, off, a, b in zip(src.column("source").to_pylist(), ns("offset"), ns("offset_lo"), ns("offset_hi")):
        off = off or 0
        lo[s] = a - off if a is not None else 0
        hi[s] = b - off if b is not None else 0
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
