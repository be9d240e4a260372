"""The incident report: sections, escaping of untrusted strings, redaction, and what a real
browser renders (headless Chromium from Debian, installed by .ci/run)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import tracekit as tk
from tracekit.demo import hosts_by_folder
from tracekit.report import CHROMIUM_FLAGS, Redactor, find_chromium, html_to_pdf

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo-incident"


def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed here (apt-get install chromium); CI installs it")
    return exe


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    tl = tk.load(DEMO, host=hosts_by_folder(DEMO))
    al = tl.align(reference="host:node-a")
    tr = al.timeline.transitions(exclude=["state-column"])
    notes = out / "findings.md"
    notes.write_text("# Findings\n\n- The deploy at **09:12** logged nothing.\n- `cron` still fires.\n")
    path = tk.report(al.timeline, transitions=tr, alignment=al, title="Demo postmortem", notes=notes,
                     path=out / "report.html", window="2s")
    return path, json.loads((DEMO / "TRUTH.json").read_text())


def test_report_has_every_section_and_is_self_contained(demo_report):
    path, truth = demo_report
    html = path.read_text()
    for h in ("Sources and clocks", "Overview", "Transitions", "Before / after the deploy", "Recurring series",
              "Analyst's notes", "Appendix: provenance"):
        assert h in html, h
    assert "<script" not in html.lower()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) >= 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in html.replace('href="http', "") and "https://" not in html
    # the story is in it: the deploy, the endpoint race and the cron that still fires
    assert "Deploy (found from indirect evidence)" in html
    assert "Race candidates" in html and truth["names"]["old_ips"][0] in html
    assert f"cron/{truth['cron']['host']}/{truth['cron']['command']}" in html and "Still firing after the deploy" in html
    # provenance: file:line for events shown, input hashes
    assert re.search(r"audit\.log:\d+", html) and re.search(r"[0-9a-f]{64}", html)


def test_untrusted_strings_are_escaped_and_secrets_redacted(tmp_path):
    d = tmp_path / 'dumps<b>"x'
    d.mkdir()
    evil = "<script>document.title='pwned'</script>"
    img = "\"><img src=x onerror=\"document.title='pwned2'\">"
    lines = [
        {"ts": "2025-01-01T00:00:00Z", "msg": evil, "pod": img, "state": "starting"},
        {"ts": "2025-01-01T00:00:01Z", "msg": "login password=hunter22 ok", "pod": img, "state": "ready"},
        {"ts": "2025-01-01T00:00:02Z", "msg": "Authorization: Bearer abcdef0123456789xyz", "pod": img,
         "state": "draining"},
    ]
    (d / "<img src=y>.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    tl = tk.load(d)
    out = tk.report(tl, title="t<script>", path=tmp_path / "r.html", window="2s")
    html = out.read_text()
    assert "<script" not in html.lower() and "<img src=x" not in html and "<img src=y" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=y&gt;" in html
    assert "hunter22" not in html and "abcdef0123456789xyz" not in html
    assert "[REDACTED:password]" in html and "[REDACTED:bearer-token]" in html
    assert re.search(r"Redaction \(on.*password: \d+ masked", html)
    exe = chromium()
    dom = _dump_dom(exe, out)
    assert "<title>t&lt;script&gt;</title>" in dom and "pwned" not in re.sub(r"&lt;.*?&gt;", "", dom.split("<body")[0])


def test_redactor_patterns():
    r = Redactor()
    assert r("key AKIAABCDEFGHIJKLMNOP end") == "key [REDACTED:aws-access-key] end"
    assert "s3cret" not in r("https://user:s3cret@example.com/x")
    assert r("nothing here") == "nothing here"
    assert Redactor(False)("password=x123") == "password=x123"


def _dump_dom(exe: str, path: Path, extra_js: str = "") -> str:
    src = path
    if extra_js:
        src = path.with_name("check-" + path.name)
        src.write_text(path.read_text().replace("</body>", f"<script>{extra_js}</script></body>"))
    with tempfile.TemporaryDirectory() as prof:
        r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", "--virtual-time-budget=10000",
                            "--enable-logging=stderr", "--v=0", "--dump-dom", src.resolve().as_uri()],
                           capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    consoles = [ln for ln in r.stderr.splitlines() if "CONSOLE" in ln and "check-" not in ln]
    assert not consoles, consoles
    return r.stdout


def test_chromium_renders_sections_and_every_figure(demo_report):
    exe = chromium()
    path, _ = demo_report
    js = ("document.body.setAttribute('data-check', JSON.stringify({"
          "imgs: document.images.length, loaded: [...document.images].filter(i => i.complete && i.naturalWidth > 50).length,"
          "sections: document.querySelectorAll('section').length, h2: [...document.querySelectorAll('h2')].map(h => h.textContent)}))")
    dom = _dump_dom(exe, path, js)
    m = re.search(r"data-check=\"([^\"]+)\"", dom)
    assert m, dom[:500]
    check = json.loads(m.group(1).replace("&quot;", '"'))
    assert check["imgs"] >= 5 and check["loaded"] == check["imgs"]
    assert check["sections"] >= 8 and "Overview" in check["h2"]


def test_pdf_through_chromium(demo_report, tmp_path):
    chromium()
    path, _ = demo_report
    pdf = html_to_pdf(path, tmp_path / "r.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 5


def test_cli_report(tmp_path):
    from tracekit.cli import main

    out = tmp_path / "r.html"
    assert main(["report", str(DEMO / "node-a"), "-o", str(out), "--window", "1s", "--host", "node-a"]) == 0
    assert "Transitions" in out.read_text()
