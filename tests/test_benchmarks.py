"""The benchmark runner: its tracekit path equals ``tk.load``; its measurement counts events."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import tracekit as tk

from .helpers import assert_accounted

REPO = Path(__file__).resolve().parent.parent
GEN = REPO.parent / "shared" / "bench" / "gen_workloads.py"


def _runner():
    spec = importlib.util.spec_from_file_location("tk_bench_run", REPO / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tk_bench_run"] = mod
    spec.loader.exec_module(mod)
    return mod


def _generate(out: Path, n: int, formats: str) -> dict:
    if not GEN.exists():
        pytest.skip(f"workload generator not found at {GEN}")
    subprocess.run([sys.executable, str(GEN), "--n", str(n), "--out", str(out), "--formats", formats],
                   check=True, capture_output=True)
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict:
    return _generate(tmp_path_factory.mktemp("bench10k"), 10_000, "jsonl")


def test_benchmark_tracekit_path_equals_tk_load(sample):
    run = _runner()
    paths = sample["files"]["jsonl"]["paths"]
    got = run.tracekit_table(paths, "jsonl")
    want = tk.load(paths[0])
    assert got.events.equals(want.events)
    assert got.rejects.equals(want.rejects)
    assert len(got) == sample["files"]["jsonl"]["events"] == 10_000
    assert_accounted(got)
    # the registry is restored after the timed load
    from tracekit.readers import _base

    assert _base._REGISTRY["jsonl"].read.__module__ == "tracekit.readers.jsonl"


def test_measure_counts_manifest_events(tmp_path):
    run = _runner()
    man = _generate(tmp_path, 300, "jsonl")
    info = man["files"]["jsonl"]
    m = run.measure("jsonl", "tracekit", info["paths"], repeat=1, timeout=300)
    assert m.error is None, m.error
    assert m.events == info["events"] == 300
    assert m.seconds > 0 and m.rss > 0 and m.parse is not None and m.normalise is not None
    peer = run.measure("jsonl", "pyarrow.json.read_json", info["paths"], repeat=1, timeout=300)
    assert peer.error is None and peer.events == 300
    table = run.format_table("jsonl", info, [m, peer])
    assert "| tracekit" in table and "pyarrow.json.read_json" in table


def test_results_file_sections_are_updated(tmp_path):
    run = _runner()
    out = tmp_path / "RESULTS.md"
    run.update_results(out, "python benchmarks/run.py --n 1", {"jsonl": "table A"}, "header")
    run.update_results(out, "python benchmarks/run.py --n 2", {"jsonl": "table B", "chrome": "table C"}, "header")
    text = out.read_text()
    assert "table A" not in text and "table B" in text and "table C" in text
    assert "--n 2" in text and "--n 1" not in text


def test_every_format_has_peers():
    run = _runner()
    for fmt, fb in run.BENCHES.items():
        assert fb.peers, fmt
        assert len({p.name for p in fb.peers}) == len(fb.peers)


def test_missing_reader_is_reported_as_skipped():
    run = _runner()
    info = {"events": 10, "bytes": 1000}
    skipped = run.Measurement("tracekit", error="skipped: no 'chrome' reader in tk.formats() yet")
    peer = run.Measurement("polars", seconds=0.5, events=10, rss=10**8, rss0=5 * 10**7)
    table = run.format_table("chrome", info, [skipped, peer])
    assert "skipped: no 'chrome' reader" in table and "| polars |" in table
