"""Plots: assertions on the drawn artists (positions, labels, colours), never on pixels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import tracekit as tk  # noqa: E402
from tracekit import plot  # noqa: E402
from tracekit.demo import hosts_by_folder  # noqa: E402
from tracekit.plot._demo import T0, dense_timeline  # noqa: E402
from tracekit.plot._style import abbreviate  # noqa: E402

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo-incident"
TRUTH = json.loads((DEMO / "TRUTH.json").read_text())


@pytest.fixture(scope="module")
def demo():
    tl = tk.load(DEMO, host=hosts_by_folder(DEMO))
    al = tl.align(reference="host:node-a")
    tl = al.timeline
    tr = tl.transitions(exclude=["state-column"])
    ep = tr.filter(rule="endpoints")
    return tl, al, tr, ep


def by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    found += [a for a in ax.collections + ax.lines + ax.patches + ax.texts
              if a.get_gid() == gid and a not in found]
    return found


def offsets(ax, gid):
    arts = by_gid(ax, gid)
    return np.concatenate([np.asarray(a.get_offsets()) for a in arts]) if arts else np.zeros((0, 2))


def lane_labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


# --------------------------------------------------------------------------- interleaving


def test_interleaving_lanes_markers_bars_and_the_moment(demo):
    tl, _, tr, ep = demo
    il = tl.interleaving(ep[1], window="2s", transitions=tr)
    ax = plot.interleaving(tl, ep[1], window="2s", transitions=tr)
    t = il.table
    lanes = sorted(set(t["lane"]), key=lambda s: tuple(int(p) if p.isdigit() else p
                                                        for p in __import__("re").split(r"(\d+)", s)))
    assert lane_labels(ax) == [abbreviate(k, 30) for k in lanes]
    ypos = {k: i for i, k in enumerate(lanes)}
    # the transition: a vertical line at x = 0
    (line,) = by_gid(ax, "tk-transition")
    assert list(line.get_xdata()) == [0, 0]
    assert "endpointslice/shop/checkout" in ax.get_title(loc="left")
    removed = next(t for t in TRUTH["transitions"] if t["kind"] == "address removed")
    assert removed["time"].replace("T", " ").replace("Z", " UTC") in ax.get_title(loc="left")
    # markers: one per non-span event, at its time relative to the transition, on its lane
    for kind in set(t["kind"]) - {"span"}:
        got = offsets(ax, f"tk-events:{kind}")
        want = t[t["kind"] == kind]
        assert sorted(got[:, 0]) == pytest.approx(sorted(want["rel"] / 1e9), abs=1e-12)
        assert sorted(got[:, 1]) == sorted(float(ypos[k]) for k in want["lane"])
    # bars: from span start to span end, relative to the moment
    (bars,) = by_gid(ax, "tk-spans")
    ext = sorted((p.vertices[:, 0].min(), p.vertices[:, 0].max()) for p in bars.get_paths())
    sp = t[t["kind"] == "span"]
    want = sorted(zip(sp["rel"] / 1e9, (sp["rel"] + pd.to_timedelta(sp["dur"]).to_numpy("timedelta64[ns]").astype(np.int64)) / 1e9))
    assert np.allclose(ext, want, atol=1e-12)
    # whiskers span each event's clock interval (those at least ~1.5 px wide at this scale)
    (wh,) = by_gid(ax, "tk-whiskers")
    horiz = {(round(s[0][0], 9), round(s[1][0], 9)) for s in wh.get_segments() if s[0][1] == s[1][1]}
    want_iv = {(round((a - il.center) / 1e9, 9), round((b - il.center) / 1e9, 9)) for a, b in zip(t["ts_lo"], t["ts_hi"])}
    assert horiz and horiz <= want_iv
    wide = t[(t["ts_hi"] - t["ts_lo"]) > 10**8]  # the k8s events' 1 s precision: surely drawn
    assert {(round((a - il.center) / 1e9, 9), round((b - il.center) / 1e9, 9))
            for a, b in zip(wide["ts_lo"], wide["ts_hi"])} <= horiz


def test_interleaving_highlights_ambiguous_and_races(demo):
    tl, _, tr, ep = demo
    il = tl.interleaving(ep[1], window="2s", transitions=tr)
    ax = plot.interleaving(tl, il, transitions=tr)
    amb = il.table[il.table["ambiguous"]]
    got = offsets(ax, "tk-ambiguous")
    assert sorted(got[:, 0]) == pytest.approx(sorted(amb["rel"] / 1e9), abs=1e-12)
    # the race: TCP_SYN_SENT to 10.4.1.17 on node-c, 150–300 µs after the EndpointSlice update
    race = offsets(ax, "tk-race-events")
    syn = il.table[(il.table["state"] == "TCP_SYN_SENT") & (il.table["race_with"].map(len) > 0)]
    assert len(syn) == 1 and 150e-6 <= float(syn["rel"].iloc[0]) / 1e9 <= 300e-6
    assert np.isclose(race[:, 0], float(syn["rel"].iloc[0]) / 1e9, rtol=0, atol=1e-12).any()
    assert by_gid(ax, "tk-races")
    # the zoom panel (second Axes) shows the race lanes in µs around 0
    fig = ax.figure
    assert len(fig.axes) == 2
    zoom = fig.axes[1]
    lo, hi = zoom.get_xlim()
    assert hi - lo < 0.01
    assert "node-c/perf-tcp.txt.gz" in lane_labels(zoom)
    labels = [a.get_text() for a in ax.texts if a.get_gid() == "tk-label"]
    assert "TCP_SYN_SENT" in labels


def test_interleaving_ax_tz_and_colours_deterministic(demo):
    tl, _, tr, ep = demo
    fig, ax = plt.subplots()
    out = plot.interleaving(tl, ep[1], window="1s", ax=ax, tz="Europe/Berlin")
    assert out is ax and len(fig.axes) == 1
    removed = next(t for t in TRUTH["transitions"] if t["kind"] == "address removed")
    berlin = pd.Timestamp(removed["time"]).tz_convert("Europe/Berlin")
    assert berlin.strftime("%H:%M:%S.%f %z") in ax.get_title(loc="left")
    a1 = plot.interleaving(tl, ep[1], window="1s")
    a2 = plot.interleaving(tl, ep[1], window="1s")
    for gid in ("tk-spans", "tk-events:log", "tk-states"):
        c1 = np.concatenate([c.get_facecolors() for c in by_gid(a1, gid)])
        c2 = np.concatenate([c.get_facecolors() for c in by_gid(a2, gid)])
        assert np.array_equal(c1, c2)
    # the same key has the same colour in every session (a stable hash, not Python's hash())
    assert plot.color_for("node-a/syslog") == "#1F77B4"
    assert plot.color_for("host-0/svc-00.jsonl") == "#CC79A7"
    assert plot.kind_color("span") == "#0072B2"


def test_interleaving_states_and_not_recording(demo):
    tl, _, tr, ep = demo
    ax = plot.interleaving(tl, ep[1], window="2s", transitions=tr)
    assert by_gid(ax, "tk-states")
    states = {t.get_text().strip() for t in ax.texts if t.get_gid() == "tk-state-label"}
    assert "error" in states or "ok" in states
    # the chrome request trace only covers ~0.5 ms: the rest of its lane is "not recording"
    (nr,) = by_gid(ax, "tk-not-recording")
    labels = lane_labels(ax)
    chrome = next(f for f in TRUTH["sources"] if f.endswith(".trace.json"))
    lane_y = labels.index(abbreviate(chrome, 30))
    ys = {round(float(p.vertices[:, 1].mean())) for p in nr.get_paths()}
    assert lane_y in ys


def test_interleaving_tiny_and_dense():
    tiny = dense_timeline(lanes=2, events=5, seed=3)
    ax = plot.interleaving(tiny, T0 + 5 * 10**9, window="5s")
    assert len(lane_labels(ax)) == 2
    n_drawn = sum(len(offsets(ax, f"tk-events:{k}")) for k in ("log", "state", "instant", "counter", "flow"))
    assert n_drawn + len(by_gid(ax, "tk-spans")[0].get_paths() if by_gid(ax, "tk-spans") else []) == 5
    big = dense_timeline(lanes=40, events=50_000)
    ax = plot.interleaving(big, T0 + 5 * 10**9, window="5s", dense=400)
    assert len(lane_labels(ax)) == 40
    # dense lanes are binned (no 50,000 markers), labels stay few
    (dens,) = by_gid(ax, "tk-density")
    assert len(dens.get_paths()) >= 30  # one density outline per dense lane
    assert sum(len(offsets(ax, gid)) for gid in ("tk-events:log", "tk-events:state")) < 5000
    assert len([t for t in ax.texts if t.get_gid() == "tk-label"]) <= 50
    ax.figure.canvas.draw()


def test_interleaving_links_and_counters():
    tl = dense_timeline(lanes=6, events=400, seed=2)
    ax = plot.interleaving(tl, T0 + 5 * 10**9, window="5s")
    assert by_gid(ax, "tk-links")  # flows across lanes
    assert by_gid(ax, "tk-counter")


# --------------------------------------------------------------------------- small multiples


def test_transitions_grid_shares_lanes_and_refuses_ax(demo):
    tl, _, tr, ep = demo
    fig = plot.transitions(tl, ep, window="1s", cols=2, progress=False)
    assert isinstance(fig, matplotlib.figure.Figure)
    panels = [a for a in fig.axes if a.get_visible()]
    assert len(panels) == len(ep)
    first = lane_labels(panels[0])
    labelled = [a for a in panels if lane_labels(a)]
    assert len(labelled) == -(-len(panels) // 2)  # the first column carries the lane labels
    assert all(lane_labels(a) == first for a in labelled)  # shared lane order
    assert all(a.get_ylim() == panels[0].get_ylim() for a in panels)
    assert all(by_gid(a, "tk-transition") for a in panels)
    with pytest.raises(TypeError, match="interleaving"):
        plot.transitions(tl, ep, ax=panels[0])


def test_transitions_progress_bar(demo, capsys):
    tl, _, tr, ep = demo
    plot.transitions(tl, ep.filter(rule="endpoints"), window="500ms", progress=True)
    plot.transitions(tl, ep, window="500ms", progress=False)


# --------------------------------------------------------------------------- overview and clocks


def test_overview_density_gaps_ticks_and_zoom(demo):
    tl, _, tr, _ = demo
    ax = plot.overview(tl, transitions=tr)
    labels = lane_labels(ax)
    assert abbreviate("node-a/k8s/events.json", 30) in labels
    (ticks,) = by_gid(ax, "tk-transitions")
    assert len(ticks.get_offsets()) == len(tr)
    (nr,) = by_gid(ax, "tk-not-recording")
    # events.json only covers the ~21 s of the rollout: hatched before and after
    y = labels.index(abbreviate("node-a/k8s/events.json", 30))
    assert sum(1 for p in nr.get_paths() if round(float(p.vertices[:, 1].mean())) == y) == 2
    d = pd.Timestamp(TRUTH["deploy"]["time"])
    z = plot.overview(tl, tr, start=d - pd.Timedelta("10s"), end=d + pd.Timedelta("30s"))
    lo, hi = z.get_xlim()
    assert (hi - lo) * 86400 == pytest.approx(40, rel=1e-6)


def test_clocks_intervals_and_evidence(demo):
    _, al, _, _ = demo
    ax = plot.clocks(al)
    ck = al.clocks.to_pandas()
    assert lane_labels(ax) == [abbreviate(d, 36) for d in ck["domain"]]
    (iv,) = by_gid(ax, "tk-clock-interval")
    widths = sorted(float(np.ptp(p.vertices[:, 0])) for p in iv.get_paths())
    want = sorted((pd.Timedelta(h).value - pd.Timedelta(lo).value) / 1e3
                  for lo, h in zip(ck["offset_lo"], ck["offset_hi"]) if pd.Timedelta(h) > pd.Timedelta(lo))
    assert widths == pytest.approx(want)
    assert by_gid(ax, "tk-evidence:lower") and by_gid(ax, "tk-evidence:upper")


# --------------------------------------------------------------------------- browse, backends


def test_browse_steps_and_redraws(demo):
    pytest.importorskip("ipywidgets")
    tl, _, tr, ep = demo
    box = plot.browse(tl, ep, window="500ms")
    assert box.slider.max == len(ep) - 1
    box.slider.value = 2
    assert box.dropdown.index == 2
    box.dropdown.value = 1
    assert box.slider.value == 1


def test_browse_without_ipywidgets(demo, monkeypatch):
    tl, _, tr, ep = demo
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install"):
        plot.browse(tl, ep)


def test_ipympl_backend_draws():
    # only look for ipympl: importing it here would switch this process's figures to its
    # widget toolbar (and its traitlets deprecation warnings) for every later test
    import importlib.util

    if importlib.util.find_spec("ipympl") is None:
        pytest.skip("ipympl is an optional extra (tracekit[notebook])")
    code = (
        "import matplotlib; matplotlib.use('module://ipympl.backend_nbagg')\n"
        "from tracekit import plot\nfrom tracekit.plot._demo import dense_timeline, T0\n"
        "tl = dense_timeline(lanes=3, events=50)\n"
        "ax = plot.interleaving(tl, T0 + 5 * 10**9, window='5s')\n"
        "ax.figure.canvas.draw(); print(type(ax.figure.canvas).__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Canvas" in r.stdout
