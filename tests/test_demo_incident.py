"""The demo incident and its second, differently named variant: every file loads, and
alignment recovers the injected clock errors within the intervals it reports."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

import tracekit as tk
from tracekit.demo import clock_report, hosts_by_folder

from .helpers import assert_accounted

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo-incident"


def _gen():
    """data/gen_incident.py as a module (it is a script, not part of the package)."""
    if "gen_incident" in sys.modules:
        return sys.modules["gen_incident"]
    spec = importlib.util.spec_from_file_location("gen_incident", ROOT / "data" / "gen_incident.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_incident"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def variant_b(tmp_path_factory):
    out = tmp_path_factory.mktemp("variant-b")
    _gen().generate(_gen().VARIANTS["ledger"], out)
    return out


@pytest.fixture(scope="module", params=["demo", "variant-b"])
def incident(request, variant_b):
    path = DEMO if request.param == "demo" else variant_b
    truth = json.loads((path / "TRUTH.json").read_text())
    tl = tk.load(path, host=hosts_by_folder(path))
    return path, truth, tl


def test_committed_demo_matches_its_generator(tmp_path):
    """data/demo-incident is exactly what the seeded script writes (it can be rebuilt)."""
    truth = _gen().generate(_gen().VARIANTS["shop"], tmp_path)
    committed = json.loads((DEMO / "TRUTH.json").read_text())
    assert truth["files"] == committed["files"]


def test_every_file_loads_without_rejects(incident):
    path, truth, tl = incident
    rows = {r["source"]: r for r in tl.sources.to_pylist()}
    for name in truth["sources"]:
        assert rows[name]["status"] == "loaded", (name, rows[name]["note"])
        assert rows[name]["rejected"] == 0, (name, tl.rejects.to_pylist()[:3])
        assert rows[name]["rows"] > 0
    assert {r["source"] for r in rows.values() if r["status"] == "skipped"} == {"TRUTH.json", "TRUTH.md"}
    assert_accounted(tl)


def test_alignment_recovers_clock_errors_within_intervals(incident):
    path, truth, tl = incident
    al = tl.align(reference="host:" + truth["names"]["hosts"][0])
    report = {r["source"]: r for r in clock_report(al, truth)}
    for name in truth["sources"]:
        r = report[name]
        assert r["status"] in ("reference", "aligned"), (name, r)
        # the correction at the dataset's mid time, against the truth, within the interval
        slack = max(r["interval_width"] or 0, 500_000)
        assert abs(r["error"]) <= slack, (name, r)
    # the skewed host and the boot-clock host are found, not assumed
    b, c = truth["names"]["hosts"][1], truth["names"]["hosts"][2]
    clocks = {x["domain"]: x for x in al.clocks.to_pylist()}
    assert clocks[f"host={b};clock=realtime"]["status"] == "aligned"
    # the kernel-clock source (perf on CLOCK_MONOTONIC, counting from boot) is placed on UTC
    kern = [v for k, v in clocks.items() if k.startswith(f"host={c};clock=") and "realtime" not in k]
    assert len(kern) == 1 and kern[0]["status"] == "aligned"
    drift = clocks[f"host={c};clock=realtime"]["drift_ppm"]
    assert abs(drift - truth["clocks"][c]["drift_ppm"]) < 5


def test_make_demo_entry_point(tmp_path, capsys):
    from tracekit.demo import run

    assert run(str(DEMO), str(tmp_path), full=False) == 0
    out = capsys.readouterr().out
    assert "Alignment against host=node-a;clock=realtime" in out
    rows = json.loads((tmp_path / "clocks.json").read_text())
    assert {r["source"] for r in rows} == set(json.loads((DEMO / "TRUTH.json").read_text())["sources"])


def test_cron_host_is_a_real_recording():
    """The demo's cron host is a real recording shipped byte for byte, and the truth's cron
    firings are exactly the ones its syslog and strace show."""
    g = _gen()
    v = g.VARIANTS["shop"]
    rec = g.load_recording(v)
    host = v.hosts[0]
    for src, rel in g.REAL_FILES:
        assert (DEMO / host / rel).read_bytes() == (rec["dir"] / src).read_bytes(), rel
    truth = json.loads((DEMO / "TRUTH.json").read_text())
    firings = truth["cron"]["firings"]
    lines = (DEMO / host / "syslog").read_text().splitlines()
    cmd = [re.search(r"CMD \(\[(\d+)\] (\S+)\)", ln) for ln in lines if " CMD (" in ln]
    assert [int(m.group(1)) for m in cmd if m.group(2) == v.cron_old] == [f["pid"] for f in firings]
    failed = [ln for ln in lines if "failed with exit status 127" in ln]
    assert len(failed) == truth["cron"]["fails_after_patch"] == sum(f["exit"] == 127 for f in firings) > 0
    # every firing before the patch succeeded, every one after it failed
    assert all((f["exit"] == 127) == f["after_patch"] for f in firings)
    assert any(not f["after_patch"] for f in firings)
