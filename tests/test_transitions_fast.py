"""The vectorised paths of transitions() and interleaving() against plain references on random
timelines with many ties: the Arrow rules equal the same rules written in SQL + pandas (the
engine's pandas path), the output order is (ts, entity, rule, seq), and ambiguity / race
candidates equal an O(n²) pairwise check."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.interleave import _MAX_NEIGHBOURS
from tracekit.schema import ATTRS_TYPE
from tracekit.transitions import Rule, _attr, _formats, _obs

from .test_clocks import source, timeline

NS = 10**9
T0 = 1_751_878_800 * NS


def _random_timeline(seed: int, n: int = 2500) -> tk.Timeline:
    rng = np.random.default_rng(seed)
    parts = []
    for k, (name, fmt) in enumerate([("a.log", "test"), ("b.jsonl", "test"), ("c.strace", "strace")]):
        ts = T0 + rng.integers(0, 300, n) * 1000  # few distinct stamps: many ties within and across sources
        ent = rng.choice(np.array([f"pod/ns/p{i}" for i in range(12)] + [None] * 4, dtype=object), n)
        st = rng.choice(np.array(["Pending", "Running", "ok", "error", None], dtype=object), n)
        kind = rng.choice(np.array(["state", "span", "log"]), n, p=[0.5, 0.35, 0.15])
        attrs = []
        for _ in range(n):
            a = []
            if rng.random() < 0.3:
                a.append(("oldstate", str(rng.choice(["Pending", "Running"]))))
            if rng.random() < 0.3:
                a += [("daddr", f"10.0.0.{rng.integers(1, 4)}"), ("dport", "80")]
            if rng.random() < 0.2:
                a.append(("saddr", "10.1.0.1"))
            attrs.append(a)
        ev, row = source(name, f"h{k}", "realtime", ts, kind=pa.array(kind), entity=pa.array(ent, pa.string()),
                         state=pa.array(st, pa.string()), attrs=pa.array(attrs, ATTRS_TYPE),
                         host=pa.array(rng.choice(np.array(["x", None], dtype=object), n), pa.string()))
        row["format"] = fmt
        parts.append((ev, row))
    return timeline(*parts)


def _sql_state_column(tl: tk.Timeline) -> pd.DataFrame:
    """The state-column rule as it was written in SQL + pandas."""
    skip = _formats(tl, ("k8s_events", "k8s_audit", "otlp", "jaeger", "zipkin", "strace"))
    where = "state is not null and kind = 'state'" + (f" and source::VARCHAR not in ({skip})" if skip else "")
    df = tl.sql(
        "select seq, source::VARCHAR as source, host, entity, state, "
        f"{_attr('oldstate')} as olds, {_attr('saddr')} as saddr, {_attr('sport')} as sport, "
        f"{_attr('daddr')} as daddr, {_attr('dport')} as dport, name from events where {where}"
    ).to_pandas()
    sock = ("sock/" + df["host"].fillna("?") + "/" + df["saddr"].fillna("?") + ":" + df["sport"].fillna("?")
            + "-" + df["daddr"].fillna("?") + ":" + df["dport"].fillna("?"))
    ent = df["entity"].where(df["entity"].notna(), sock.where(df["daddr"].notna()))
    return _obs(df, ent, df["state"], from_state=df["olds"], detail=df["daddr"])


def _sql_span_status(tl: tk.Timeline) -> pd.DataFrame:
    df = tl.sql("select seq, entity, state from events where kind = 'span' and entity is not null "
                "and state in ('ok', 'error')").to_pandas()
    return _obs(df, df["entity"], df["state"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrow_rules_equal_their_sql_pandas_form(seed):
    tl = _random_timeline(seed)
    fast = tl.transitions(rules=["state-column", "span-status"])
    ref = tl.transitions(rules=[], extra=[Rule("state-column", "sql", _sql_state_column),
                                          Rule("span-status", "sql", _sql_span_status, min_run=3)])
    assert len(fast) > 100
    assert set(fast.table.column("rule").to_pylist()) == {"state-column", "span-status"}
    assert any(e.startswith("sock/") for e in fast.table.column("entity").to_pylist())
    assert fast.table.equals(ref.table)
    # the c.strace source is skipped by state-column, every explicit from_state kept
    df = fast.to_pandas()
    assert not (df["rule"].eq("state-column") & df["source"].eq("c.strace")).any()


def test_output_is_in_time_entity_rule_seq_order():
    tl = _random_timeline(4)
    tr = tl.transitions(rules=["span-status", "state-column"], extra=[Rule("state-column", "again", _sql_state_column)])
    df = tr.to_pandas()
    df["t"] = df["ts"].astype("int64")
    df["seq"] = [e[0] for e in tr.table.column("evidence").to_pylist()]
    df["part"] = range(len(df))  # position as returned
    assert df["t"].is_monotonic_increasing
    key = df[["t", "entity", "rule"]].astype(str).agg("|".join, axis=1)
    assert key.duplicated().any()  # ties exist, so the order within them is checked
    # within equal (ts, entity, rule): rule order first (the two state-column rules find the same
    # rows: two equal runs), each rule's rows in seq order
    for (_, _, rule), g in df.groupby(["t", "entity", "rule"], sort=False):
        seqs = g["seq"].tolist()
        if rule == "state-column":
            h = len(seqs) // 2
            assert len(seqs) % 2 == 0 and seqs[:h] == seqs[h:] == sorted(seqs[:h])
        else:
            assert seqs == sorted(seqs)
    ordered = df.sort_values(["t", "entity", "rule"], kind="stable")
    assert ordered["part"].tolist() == df["part"].tolist()


def test_entity_filter_glob_and_callable():
    tl = _random_timeline(5)
    tr = tl.transitions(rules=["state-column"])
    glob = tl.transitions(rules=["state-column"], entity="pod/ns/p1*")
    want = [e for e in tr.table.column("entity").to_pylist() if e.startswith("pod/ns/p1")]
    assert glob.table.column("entity").to_pylist() == want and want
    fn = tl.transitions(rules=["state-column"], entity=lambda e: e.startswith("sock/"))
    assert len(fn) and all(e.startswith("sock/") for e in fn.table.column("entity").to_pylist())


def test_state_machine_events_by_glob():
    a = source("p.strace", "h", "realtime", T0 + np.arange(6) * NS, kind="instant",
               name=pa.array(["execve", "write", "exit_group", "execve", "read", "exit_group"]),
               entity=pa.array(["proc/1", "proc/1", "proc/1", "proc/2", "proc/2", "proc/2"]))
    tl = timeline(a)
    sm = tk.StateMachine("life", entity="entity", on={"exec*": "running", "exit*": "gone"},
                         states=["running", "gone"], transitions={"running": ["gone"]})
    df = tl.transitions(rules=[], extra=[sm]).to_pandas()
    assert df["to_state"].tolist() == ["running", "gone", "running", "gone"]
    assert df["from_state"].tolist()[1::2] == ["running", "running"] and not df["illegal"].any()


def _interleave_timeline(seed: int) -> tk.Timeline:
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(4):
        n = 120
        ts = T0 + np.sort(rng.integers(0, 500, n)) * 1000  # 120 events in 0.5 ms per source
        ips = rng.choice(np.array(["10.0.0.1", "10.0.0.2", "10.0.0.3", ""]), n)
        parts.append(source(f"s{k}.log", f"h{k}", "realtime", ts, prec=int(rng.integers(1, 20_000)), kind="log",
                            message=pa.array([f"event {i} {ip}" for i, ip in enumerate(ips)])))
    tl = timeline(*parts)
    rows = tl.sources.to_pylist()
    for r in rows:
        w = int(rng.integers(0, 30_000))
        r["offset_lo"], r["offset_hi"] = -w, w
    return tk.Timeline(tl.events, pa.Table.from_pylist(rows, schema=tl.sources.schema), tl.rejects)


@pytest.mark.parametrize("seed", [1, 2])
def test_ambiguity_and_races_equal_the_pairwise_check(seed):
    tl = _interleave_timeline(seed)
    il = tl.interleaving(T0 + NS // 4000, window="1s")
    t = il.table
    assert len(il) == len(t) == len(tl)
    width = {r["source"]: int(pd.Timedelta(r["offset_hi"]).value) for r in tl.sources.to_pylist()}
    ts = t["ts"].astype("int64").to_numpy()
    prec = (t["ts_hi"] - t["ts_lo"]).to_numpy() - np.array([2 * width[s] for s in t["source"]])
    lo = ts - np.array([width[s] for s in t["source"]])
    hi = ts + prec + np.array([width[s] for s in t["source"]])
    n = len(t)
    nb: list[list[int]] = [[] for _ in range(n)]
    races = set()
    for i, j in itertools.combinations(range(n), 2):
        if t["source"].iat[i] != t["source"].iat[j] and lo[i] <= hi[j] and lo[j] <= hi[i]:
            nb[i].append(int(t["seq"].iat[j]))
            nb[j].append(int(t["seq"].iat[i]))
            ip_i, ip_j = t["message"].iat[i].split(" ")[2], t["message"].iat[j].split(" ")[2]
            if ip_i and ip_i == ip_j:
                races.add(frozenset((int(t["seq"].iat[i]), int(t["seq"].iat[j]))))
    assert t["ambiguous"].tolist() == [bool(x) for x in nb]
    assert any(len(x) > _MAX_NEIGHBOURS for x in nb)  # the cap is exercised
    for got, want in zip(t["ambiguous_with"], nb):
        assert len(got) == min(len(want), _MAX_NEIGHBOURS) and set(got) <= set(want)
    assert {frozenset((a, b)) for a, b in zip(il.races["seq_a"], il.races["seq_b"])} == races and races
    for rw, s in zip(t["race_with"], t["seq"]):
        assert set(rw) == {next(iter(p - {s})) for p in races if s in p}


def test_one_source_has_no_ambiguity_and_builds_its_table_lazily():
    a = source("one.log", "h", "realtime", T0 + np.arange(50) * 1000, prec=10**6, kind="log",
               message=pa.array(["10.0.0.1"] * 50))
    tl = timeline(a)
    il = tl.interleaving(T0, window="1s")
    assert len(il) == 50 and not isinstance(il._table, pd.DataFrame)
    assert not il.table["ambiguous"].any() and len(il.races) == 0
    assert il.table["order"].tolist() == list(range(50))


def _count_in_child(q):
    q.put(len(_random_timeline(6).transitions(rules=["state-column"])))


def test_transitions_in_a_forked_child_after_the_helper_thread_started():
    import multiprocessing as mp

    want = len(_random_timeline(6).transitions(rules=["state-column"]))  # starts the helper thread here
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_count_in_child, args=(q,))
    p.start()
    p.join(60)
    assert p.exitcode == 0 and q.get(timeout=5) == want > 0


def test_rule_attr_keys_list_every_attr_lookup():
    """The store keeps only RULE_ATTR_KEYS in the rows it hands the built-in rules: every
    ``_attr('…')`` lookup in the rules' SQL must be listed there, or a rule would find nothing."""
    import inspect
    import re

    from tracekit import transitions

    used = set(re.findall(r"_attr\(\s*'([^']+)'\s*\)", inspect.getsource(transitions)))
    assert used and used <= transitions.RULE_ATTR_KEYS


def test_bitmap_positions_equal_arrow_indices_nonzero():
    """Row positions read from validity and boolean bitmaps (any slice offset, nulls in the
    mask, all or no rows set) equal Arrow's own indices_nonzero."""
    import pyarrow.compute as pc

    from tracekit.transitions import _nonzero, _set_bits

    rng = np.random.default_rng(7)
    for _ in range(400):
        n = int(rng.integers(0, 200))
        v = rng.random(n) < rng.choice([0.0, 0.03, 0.5, 1.0])
        off = int(rng.integers(0, n + 1))
        s = pa.array(np.where(v, "x", None).tolist(), pa.string()).slice(off, int(rng.integers(0, n - off + 1)))
        want = pc.indices_nonzero(pc.is_valid(s)).to_numpy()
        got = _set_bits(s.buffers()[0] if s.null_count else None, s.offset, len(s))
        assert got.tolist() == want.tolist()
        b = pa.array([None if x < 0.2 else bool(x > 0.6) for x in rng.random(n)], pa.bool_()).slice(off)
        assert _nonzero(b).tolist() == pc.indices_nonzero(b.fill_null(False)).to_numpy().tolist()
        assert _nonzero(pa.chunked_array([b, b])).tolist() == pc.indices_nonzero(
            pa.chunked_array([b, b]).fill_null(False)).to_numpy().tolist()


def _names_timeline(seed: int) -> tk.Timeline:
    """Exec/exit/cron rows among rows whose names have the same byte lengths (openat/execve,
    read/exit, cron.end/cron.cmd), some without an entity."""
    rng = np.random.default_rng(seed)
    n = 3000
    names = np.array(["execve", "openat", "exit", "read", "killed", "cron.cmd", "cron.end", "exec",
                      "sched_process_exit", "sched_process_fork", None], dtype=object)
    ts = T0 + np.sort(rng.integers(0, 500, n)) * 1000
    name = rng.choice(names, n)
    ent = rng.choice(np.array([f"proc/h/{i}" for i in range(15)] + [None] * 3, dtype=object), n)
    msg = rng.choice(np.array(['"/bin/sh", ["sh", "-c", "job"]', '"/usr/bin/x", ["x"]', "", None], dtype=object), n)
    attrs = [[("cron.command", "job"), ("cron.user", "root")] if x == "cron.cmd" else [] for x in name]
    ev, row = source("p.strace", "h", "realtime", ts, kind="instant", name=pa.array(name, pa.string()),
                     entity=pa.array(ent, pa.string()), message=pa.array(msg, pa.string()),
                     state=pa.array(rng.choice(np.array(["exit", None], dtype=object), n), pa.string()),
                     value=pa.array(rng.choice([0.0, 1.0, 127.0, -2.0], n)), attrs=pa.array(attrs, ATTRS_TYPE))
    return timeline((ev, row))


@pytest.mark.parametrize("seed,split", [(1, 1 << 20), (2, 1 << 20), (1, 1001)])
def test_name_rules_equal_a_plain_name_scan(seed, split, monkeypatch):
    """process, exit-status and cron look only at rows with an entity whose name has a matching
    byte length (on a long timeline, found in two halves side by side); the same rules over
    every row whose name matches find the same."""
    import pyarrow.compute as pc

    from tracekit import transitions

    tl = _names_timeline(seed)
    monkeypatch.setattr(transitions, "_SPLIT_ROWS", split)
    fast = tl.transitions(rules=["process", "exit-status", "cron"])

    def every_row(t: tk.Timeline, names) -> np.ndarray:
        return transitions._nonzero(pc.is_in(transitions._col(t, "name"), pa.array(list(names))))

    monkeypatch.setattr(transitions, "_named_rows", every_row)
    plain = tk.Timeline(tl.events, tl.sources, tl.rejects).transitions(rules=["process", "exit-status", "cron"])
    assert set(fast.table.column("rule").to_pylist()) == {"process", "exit-status", "cron"}
    assert fast.table.equals(plain.table)


def test_arrow_rules_on_a_timeline_out_of_time_order():
    """A Timeline whose rows are not in ts order (built by hand) still gives the same
    transitions as the SQL + pandas form."""
    tl = _random_timeline(8)
    perm = np.random.default_rng(8).permutation(len(tl))
    shuffled = tk.Timeline(tl.events.take(pa.array(perm)), tl.sources, tl.rejects)
    fast = shuffled.transitions(rules=["state-column", "span-status"])
    ref = shuffled.transitions(rules=[], extra=[Rule("state-column", "sql", _sql_state_column),
                                                Rule("span-status", "sql", _sql_span_status, min_run=3)])
    assert len(fast) > 100 and fast.table.equals(ref.table)
    assert fast.table.equals(tl.transitions(rules=["state-column", "span-status"]).table)


def test_arrow_engine_initial_and_explicit_from_state_equal_the_pandas_engine():
    """A rule with ``initial`` and some explicit from_states: the Arrow form of its observations
    and the DataFrame form give the same transitions."""
    from tracekit.transitions import _Obs

    tl = _random_timeline(9)
    df = tl.sql("select seq, entity, state, attrs['oldstate'][1] as olds, name from events "
                "where entity is not null and state is not null").to_pandas()
    seq = tl.events.column("seq").to_numpy()
    by_seq = np.argsort(seq)
    pos = by_seq[np.searchsorted(seq, df["seq"].to_numpy(), sorter=by_seq)]  # each row's position
    assert (seq[pos] == df["seq"].to_numpy()).all()

    def as_frame(_tl):
        return _obs(df, df["entity"], df["state"], from_state=df["olds"], detail=df["name"])

    def as_arrow(_tl):
        return _Obs(pos, pa.array(df["entity"]), pa.array(df["state"]), pa.array(df["olds"], pa.string()),
                    pa.array(df["name"], pa.string()))

    a = tl.transitions(rules=[], extra=[Rule("r", "arrow", as_arrow, initial=True)])
    b = tl.transitions(rules=[], extra=[Rule("r", "frame", as_frame, initial=True)])
    assert len(a) > 100 and a.table.column("from_state").null_count > 0  # firsts: from nothing
    assert a.table.equals(b.table)


@pytest.mark.parametrize("split", [1, 999, 4096])
def test_state_rows_split_over_two_threads_equal_one_scan(split, monkeypatch):
    """The state-column candidate rows of a long timeline are scanned in two halves side by
    side; any split point gives the rows of one scan, also on a sliced column."""
    import pyarrow.compute as pc

    from tracekit import transitions

    tl = _random_timeline(10)
    sliced = tk.Timeline(tl.events.slice(3, len(tl) - 10), tl.sources, tl.rejects)
    for t in (tl, sliced):
        want = pc.indices_nonzero(pc.and_(pc.is_valid(t.events.column("state")),
                                          pc.equal(t.events.column("kind").cast(pa.string()), "state")))
        monkeypatch.setattr(transitions, "_SPLIT_ROWS", split)
        got = transitions._valid_rows_of_kind(t, "state", "state")
        assert got.tolist() == want.to_numpy().tolist() and len(got) > 1000


def test_gathered_strings_equal_take_whether_viewed_or_copied():
    """State/entity strings of the candidate rows: a view of the column when the selected
    values adjoin in its data (the rows between hold nulls or empty strings), a copy otherwise;
    either way the same array as ``take``."""
    import pyarrow.compute as pc

    from tracekit.transitions import _gathered

    rng = np.random.default_rng(11)
    seen = {"view": 0, "copy": 0}
    for _ in range(500):
        n = int(rng.integers(1, 60))
        vals = rng.choice(np.array(["a", "bb", "", "ccc", None], dtype=object), n, p=[.2, .2, .1, .1, .4])
        col = pa.array(vals.tolist(), pa.string()).slice(int(rng.integers(0, n)))
        if not len(col):
            continue
        rows = np.sort(rng.choice(len(col), int(rng.integers(1, len(col) + 1)), replace=False))
        got, want = _gathered(col, pa.array(rows.astype(np.int32))), col.take(pa.array(rows))
        got.validate(full=True)
        assert got.to_pylist() == want.to_pylist() and got.null_count == want.null_count
        assert pc.dictionary_encode(got).equals(pc.dictionary_encode(want))
        data = col.buffers()[2]
        seen["view" if data is not None and got.buffers()[2].address == data.address else "copy"] += 1
    assert seen["view"] > 50 and seen["copy"] > 50
