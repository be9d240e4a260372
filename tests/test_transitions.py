"""Transitions, interleavings, diff and periodic on the demo incident and its second variant,
checked against their TRUTH files; plus synthetic ambiguity in both directions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.demo import hosts_by_folder

from .test_clocks import source, timeline
from .test_demo_incident import DEMO, _gen

NS = 10**9


def ns(iso: str) -> int:
    return int(pd.Timestamp(iso).value)


@pytest.fixture(scope="module", params=["demo", "variant-b"])
def case(request, tmp_path_factory):
    if request.param == "demo":
        path = DEMO
    else:
        path = tmp_path_factory.mktemp("variant-b")
        _gen().generate(_gen().VARIANTS["ledger"], path)
    truth = json.loads((path / "TRUTH.json").read_text())
    tl = tk.load(path, host=hosts_by_folder(path))
    tl = tl.align(reference="host:" + truth["names"]["hosts"][0]).timeline
    tr = tl.transitions()
    return truth, tl, tr


def _found(tr, rule):
    df = tr.filter(rule=rule).to_pandas()
    df["t"] = df["ts"].astype("int64")
    df["lo"] = df["ts_lo"].astype("int64")
    df["hi"] = df["ts_hi"].astype("int64")
    return df


def test_every_true_transition_is_found(case):
    truth, tl, tr = case
    k8s, eps, logs = _found(tr, "k8s-events"), _found(tr, "endpoints"), _found(tr, "log-state")
    for t in truth["transitions"]:
        if t["time"] == "before window":
            continue
        when = ns(t["time"])
        if t["kind"] == "k8s event":
            hit = k8s[(k8s["entity"] == t["entity"]) & (k8s["to_state"] == t["to"])]
            assert ((hit["lo"] <= when) & (when <= hit["hi"])).any(), t
        elif t["kind"].startswith("address"):
            hit = eps[(eps["entity"] == t["entity"])
                      & eps["to_state"].map(lambda s, w=t["to"]: set(s.split(",")) == set(w.split(",")))]
            assert (np.abs(hit["t"] - when) <= 1_000_000).any(), t
        else:  # service state from the app's log, on the skewed host: aligned within its interval
            hit = logs[(logs["entity"] == t["entity"]) & (logs["to_state"] == t["to"])]
            assert ((hit["lo"] - 1_000_000 <= when) & (when <= hit["hi"] + 1_000_000)).any(), (t, hit)


def test_no_invented_transitions_for_entities_the_truth_covers(case):
    truth, tl, tr = case
    covered = {t["entity"] for t in truth["transitions"]}
    true = {(t["entity"], t["to"]) for t in truth["transitions"]}
    df = tr.to_pandas()
    df = df[df["entity"].isin(covered) & df["rule"].isin(["k8s-events", "log-state"])]
    assert len(df) > 0
    extra = [(e, s) for e, s in zip(df["entity"], df["to_state"]) if (e, s) not in true]
    assert extra == []
    eps = df = tr.filter(rule="endpoints").to_pandas()
    assert len(eps) == sum(1 for t in truth["transitions"] if t["kind"].startswith("address"))


def test_the_deploy_is_found_from_indirect_evidence(case):
    truth, tl, tr = case
    dep = tr.deploys()
    top = dep.iloc[0]
    start = int(pd.Timestamp(top["start"]).value)
    assert ns(truth["deploy"]["patch_applied"]) - 5 * NS <= start <= ns(truth["deploy"]["time"]) + 30 * NS
    assert {"version/config change", "endpoint change", "exit status change"} <= set(top["kinds"])
    v = tr.filter(rule="value-change").to_pandas()
    assert any(v["entity"].str.endswith("#version") & (v["to_state"] == truth["deploy"]["kind"].split("→ ")[1].split(",")[0]))


def test_cron_series_found_and_its_firings_after_the_deploy(case):
    truth, tl, tr = case
    d = ns(truth["deploy"]["time"])
    per = tl.periodic(after=truth["deploy"]["time"])
    cron = per[(per["entity"] == f"cron/{truth['cron']['host']}/{truth['cron']['command']}")
               & (per["signature"] == "cron.cmd")]
    assert len(cron) == 1
    row = cron.iloc[0]
    assert abs(row["period_s"] - 60) < 0.5 and row["jitter_s"] < 1
    assert row["count"] == len(truth["cron"]["firings"])
    assert row["n_after"] == sum(ns(f["time"]) >= d for f in truth["cron"]["firings"])
    diff = tl.diff(at=truth["deploy"]["time"])
    c = diff[diff["signature"] == "cron.cmd"].iloc[0]
    assert c["status"] == "persisting" and c["n_after"] == row["n_after"]
    assert (tr.filter(rule="exit-status").to_pandas()["to_state"] == "exit 127").any()


def test_racing_events_marked_ambiguous_exactly_where_the_truth_says(case):
    truth, tl, tr = case
    ep = tr.filter(rule="endpoints")
    for race in truth["race"]:
        when = ns(race["a"]["time"])
        k = int(np.argmin(np.abs(ep.table.column("ts").cast(pa.int64()).to_numpy() - when)))
        il = tl.interleaving(ep[k], window="2s", transitions=tr)
        t = il.table
        a = t[(t["source"] == race["a"]["source"]) & (np.abs(t["ts"].astype("int64") - when) < 5_000_000)]
        assert len(a) == 1, race
        ip = truth["names"]["old_ips"][0]
        bt = ns(race["b"]["time"])
        b = t[(t["source"] == race["b"]["source"]) & (t["state"] == "TCP_SYN_SENT")
              & t["message"].str.contains(f"daddr={ip} ", regex=False)
              & (np.abs(t["ts"].astype("int64") - bt) < 5_000_000)]
        assert len(b) == 1, race
        sa, sb = int(a["seq"].iloc[0]), int(b["seq"].iloc[0])
        ambiguous = sb in a["ambiguous_with"].iloc[0]
        assert ambiguous == (not race["decidable"]), race
        if not race["decidable"]:
            assert ((il.races["seq_a"] == min(sa, sb)) | (il.races["seq_b"] == min(sa, sb))).any()


@pytest.mark.parametrize("gap_us,width_us,expect", [(150, 400, True), (150, 100, False), (500_000, 400, False),
                                                    (0, 0, True)])
def test_ambiguity_appears_exactly_when_uncertainty_covers_the_gap(gap_us, width_us, expect):
    T0 = 1_751_878_800 * NS
    a = source("a.log", "ha", "realtime", [T0], prec=1, kind="log", message=["remove 10.0.0.1"])
    b = source("b.log", "hb", "realtime", [T0 + gap_us * 1000], prec=1, kind="log", message=["connect 10.0.0.1"])
    tl = timeline(a, b)
    if width_us:
        # b's clock is known only to ±width: as an alignment would report it
        rows = tl.sources.to_pylist()
        for r in rows:
            if r["source"] == "b.log":
                r["offset_lo"], r["offset_hi"] = -width_us * 1000, width_us * 1000
        tl = tk.Timeline(tl.events, pa.Table.from_pylist(rows, schema=tl.sources.schema), tl.rejects)
    il = tl.interleaving(T0, window="1s")
    assert bool(il.table["ambiguous"].all()) is expect
    assert (len(il.races) == 1) is expect


def test_rules_are_listed_and_user_rules_work(case):
    truth, tl, tr = case
    assert {"k8s-events", "endpoints", "value-change", "cron"} <= set(tk.rules()["name"])
    svc = truth["names"]["service"]
    sm = tk.StateMachine("svc-states", entity="pod", state="state",
                         transitions={"starting": ["warming"], "warming": ["ready"], "ready": ["draining"],
                                      "draining": ["stopped"]})
    out = tl.transitions(rules=[], extra=[sm])
    assert len(out) == len(tr.filter(rule="log-state")) and not out.table.column("illegal").to_pylist().count(True)
    bad = tk.StateMachine("strict", entity="pod", state="state", transitions={"starting": ["ready"]})
    ill = tl.transitions(rules=[], extra=[bad]).to_pandas()
    assert ill.loc[ill["from_state"] == "starting", "illegal"].all()
    lr = tk.LogRule("svc-msg", rf"starting {svc} (?P<to>[\d.]+)")
    got = tl.transitions(rules=[], extra=[lr]).to_pandas()
    assert set(got["to_state"]) == {truth["deploy"]["kind"].split("→ ")[1].split(",")[0]}
    only = tl.transitions(entity=f"pod/{truth['names']['namespace']}/*")
    assert len(only) and all(e.startswith("pod/") for e in only.table.column("entity").to_pylist())
    assert "<table>" in tr._repr_html_() and "Transitions" in repr(tr)
