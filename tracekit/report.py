"""The incident report: one self-contained HTML file (and a PDF through headless Chromium).

Sections: summary with the findings the rules support (the deploy, races, what kept firing);
sources with formats, counts, rejects and clock corrections with their intervals; the clock
figure; the overview; the transitions table (ranked, the ranking stated); for each selected
transition its interleaving figure and the events around it with file:line; the before/after
diff; the recurring series; the analyst's notes (Markdown); an appendix with provenance
(input hashes, tracekit version, parameters, what was redacted).

Every string that came from a dump is escaped; secrets matching the redaction patterns are
masked in everything the report shows. Figures are inline PNG (no network, no scripts).

Example::

    >>> tk.report(tl, transitions=tr, title="Checkout outage", notes="findings.md",
    ...           path="report.html")                                   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from . import _time
from ._version import __version__
from .errors import TracekitError
from .timeline import Timeline

__all__ = ["report", "Redactor", "DEFAULT_REDACTIONS", "html_to_pdf", "rank_transitions"]

#: name → regex; the match (or its ``secret`` group) is replaced by ``[REDACTED:name]``
DEFAULT_REDACTIONS: dict[str, str] = {
    "bearer-token": r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    "jwt": r"\b(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    "password": r"(?i)(?:password|passwd|pwd|secret|api[_-]?key|token|access[_-]?key)(?:\"|')?\s*[:=]\s*(?:\"|')?(?P<secret>[^\s\"',;&}]{3,})",
    "aws-access-key": r"\b(?P<secret>AKIA[0-9A-Z]{16})\b",
    "private-key": r"(?s)(?P<secret>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----)",
    "basic-auth-url": r"://[^/\s:@]+:(?P<secret>[^@\s/]{3,})@",
}


class Redactor:
    """Masks secrets in strings and counts what it masked.

    Example::

        >>> r = Redactor()
        >>> r("curl -H 'Authorization: Bearer abcdefgh12345'")
        "curl -H 'Authorization: Bearer [REDACTED:bearer-token]'"
        >>> dict(r.counts)
        {'bearer-token': 1}
    """

    def __init__(self, patterns: Mapping[str, str] | bool | None = True):
        if patterns is True or patterns is None:
            patterns = DEFAULT_REDACTIONS
        elif patterns is False:
            patterns = {}
        self.patterns = {k: re.compile(v) for k, v in dict(patterns).items()}
        self.counts: Counter[str] = Counter()

    def __call__(self, text: Any) -> str:
        if text is None:
            return ""
        s = str(text)
        for name, rx in self.patterns.items():
            def sub(m: re.Match, name: str = name, rx: re.Pattern = rx) -> str:
                self.counts[name] += 1
                if "secret" in rx.groupindex and m.group("secret") is not None:
                    a, b = m.span("secret")
                    return m.group(0)[: a - m.start()] + f"[REDACTED:{name}]" + m.group(0)[b - m.start():]
                return f"[REDACTED:{name}]"

            s = rx.sub(sub, s)
        return s


# --------------------------------------------------------------------------- ranking

_ERROR_STATES = re.compile(r"(?i)^(error|exit [1-9]\d*|killed.*|exited [1-9]\d*|backoff|failed.*|unhealthy|"
                           r"crashloopbackoff|oomkill.*|evicted)$")
_ERROR_REASONS = {"BackOff", "Unhealthy", "Failed", "FailedMount", "FailedScheduling", "Evicted", "OOMKilling"}
_RESTART_STATES = {"starting", "stopped", "draining", "Killing", "Started", "terminating"}


def rank_transitions(tr: Any, focus: Sequence[str] = ()) -> pd.DataFrame:
    """Transitions ranked for the report, with the reason for each rank.

    Order: state changes of entities the user named (``focus`` globs) first, then errors,
    restarts, version/config and endpoint changes, then the rest; ties by time.
    """
    import fnmatch

    df = tr.table.to_pandas()
    if df.empty:
        df["score"] = []
        df["why"] = []
        return df

    def score(r: pd.Series) -> tuple[int, str]:
        s, why = 0, []
        if any(fnmatch.fnmatchcase(r["entity"] or "", f) for f in focus):
            s += 1000
            why.append("named entity")
        if (r["rule"] == "span-status" and r["to_state"] == "error") or (r["rule"] == "exit-status" and r["to_state"] != "exit 0") \
                or (r["rule"] == "k8s-events" and r["to_state"] in _ERROR_REASONS) or _ERROR_STATES.match(r["to_state"] or ""):
            s += 400
            why.append("error")
        if r["rule"] in ("log-state", "k8s-events") and r["to_state"] in _RESTART_STATES:
            s += 300
            why.append("restart")
        if r["rule"] == "value-change":
            s += 350
            why.append("version/config change")
        if r["rule"] == "endpoints":
            s += 350
            why.append("endpoint change")
        if r["rule"] in ("state-column", "cron", "process"):
            s -= 100
        return s, ", ".join(why) or "other"

    sc = df.apply(score, axis=1, result_type="expand")
    df["score"], df["why"] = sc[0], sc[1]
    return df.sort_values(["score", "ts"], ascending=[False, True]).reset_index(drop=True)


def _select(ranked: pd.DataFrame, n: int) -> pd.DataFrame:
    """The top ``n`` ranked transitions, one per (rule, entity, to_state)."""
    if ranked.empty:
        return ranked
    out = ranked.drop_duplicates(["rule", "entity", "to_state"]).head(n)
    return out.sort_values("ts")


# --------------------------------------------------------------------------- rendering helpers


def _fig_png(fig: Any, dpi: int = 100) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(uri: str, alt: str) -> str:
    return f"<figure><img src=\"{uri}\" alt=\"{html.escape(alt)}\"><figcaption>{html.escape(alt)}</figcaption></figure>"


def _table(df: pd.DataFrame, cols: Sequence[str], red: Redactor, max_rows: int = 200, fmt: Mapping[str, Any] | None = None) -> str:
    fmt = dict(fmt or {})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for r in df.head(max_rows).to_dict("records"):
        cells = []
        for c in cols:
            v = r.get(c)
            if c in fmt:
                v = fmt[c](v)
            elif isinstance(v, pd.Timestamp):
                v = _time.fmt_ns(int(v.value))
            elif v is None or (isinstance(v, float) and pd.isna(v)):
                v = ""
            text = red(v)
            if len(text) > 400:
                text = text[:400] + " …"
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class='more'>… {len(df) - max_rows} more rows not shown</p>" if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def markdown_to_html(text: str, red: Redactor) -> str:
    """A small, safe Markdown subset (headings, paragraphs, lists, code, emphasis, links);
    everything is escaped first, so the notes cannot inject markup."""
    out: list[str] = []
    in_list = in_code = False
    para: list[str] = []

    def inline(s: str) -> str:
        s = html.escape(red(s))
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"(?<![*\w])\*([^*]+)\*(?!\w)", r"<em>\1</em>", s)
        s = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r'<a href="\2">\1</a>', s)
        return s

    def flush() -> None:
        if para:
            out.append("<p>" + " ".join(inline(p) for p in para) + "</p>")
            para.clear()

    for line in text.splitlines():
        if line.strip().startswith("```"):
            flush()
            out.append("</code></pre>" if in_code else "<pre><code>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(red(line)))
            continue
        m = re.match(r"^(#{1,4})\s+(.*)", line)
        li = re.match(r"^\s*[-*]\s+(.*)", line)
        if m:
            flush()
            if in_list:
                out.append("</ul>")
                in_list = False
            lvl = min(len(m.group(1)) + 2, 6)
            out.append(f"<h{lvl}>{inline(m.group(2))}</h{lvl}>")
        elif li:
            flush()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(li.group(1))}</li>")
        elif not line.strip():
            flush()
            if in_list:
                out.append("</ul>")
                in_list = False
        else:
            para.append(line.strip())
    flush()
    if in_list:
        out.append("</ul>")
    if in_code:
        out.append("</code></pre>")
    return "\n".join(out)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.4;padding:0 1em}
h1{border-bottom:3px solid #345;padding-bottom:.2em}
h2{border-bottom:1px solid #bbb;margin-top:2em}
section{page-break-before:always;break-before:page}
section.first{page-break-before:auto;break-before:auto}
table{border-collapse:collapse;font-size:12px;margin:.5em 0;width:100%}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word;max-width:38em}
td.num{text-align:right;white-space:nowrap}
th{background:#eef2f6}
tr:nth-child(even) td{background:#fafafa}
td.amb,tr.amb td{background:#fff3cd}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px;color:#555}
.finding{background:#f4f8fc;border-left:4px solid #345;padding:.5em 1em;margin:.5em 0}
.more,.note{color:#666;font-size:12px}
code{background:#f2f2f2;padding:0 3px}
@page{size:A4 landscape;margin:10mm}
@media print{body{max-width:none;margin:0;padding:0}figure img{max-width:100%}table{font-size:8.5px}
th,td{max-width:28em;padding:2px 4px}}
"""


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return "(not readable)"
    return h.hexdigest()


# --------------------------------------------------------------------------- the report


def report(
    tl: Timeline,
    transitions: Any = None,
    title: str = "Incident report",
    notes: str | os.PathLike | None = None,
    path: str | os.PathLike = "report.html",
    window: Any = "5s",
    select: Sequence[int] | None = None,
    focus: Sequence[str] = (),
    alignment: Any = None,
    max_sections: int = 6,
    redact: Mapping[str, str] | bool = True,
    pdf: str | os.PathLike | None = None,
    lane: str = "source",
) -> Path:
    """Write the incident report for ``tl`` to ``path`` (and ``pdf`` if given); return its path.

    ``transitions``: a :class:`~tracekit.transitions.Transitions` (default: all built-in rules
    but ``state-column``); ``select``: indices into it to give a section each (default: the
    top ``max_sections`` by the ranking); ``focus``: entity globs ranked first; ``notes``: a
    Markdown file or text; ``redact``: True (default patterns), False, or name → regex.

    Example::

        >>> tk.report(tl, title="Checkout outage", path="out/report.html")    # doctest: +SKIP
    """
    from . import plot

    red = Redactor(redact)
    tr = transitions if transitions is not None else tl.transitions(exclude=["state-column"])
    ranked = rank_transitions(tr, focus)
    if select is not None:
        chosen = tr.table.take(pa.array(list(select))).to_pandas()
    else:
        chosen = _select(ranked, max_sections)
    lo, hi = tl.time_range()
    srcs = tl.sources.to_pandas()
    loaded = srcs[srcs["status"] == "loaded"]
    parts: list[str] = []

    # ---- summary
    deploys = tr.deploys() if len(tr) else pd.DataFrame()
    findings = []
    deploy_ts = None
    if len(deploys):
        d = deploys.iloc[0]
        deploy_ts = int(pd.Timestamp(d["start"]).value)
        findings.append(f"<div class='finding'><b>Deploy (found from indirect evidence)</b> at "
                        f"{html.escape(_time.fmt_ns(deploy_ts))}: {html.escape(red(', '.join(d['kinds'])))}. "
                        f"{html.escape(red(d['summary']))}</div>")
    per = tl.periodic(after=deploy_ts) if deploy_ts is not None else tl.periodic()
    if deploy_ts is not None and len(per):
        still = per[(per.get("n_after", 0) > 0) & per["signature"].str.startswith("cron")
                    & per["entity"].notna()].drop_duplicates("entity")
        for r in still.head(3).to_dict("records"):
            findings.append(f"<div class='finding'><b>Still firing after the deploy</b>: "
                            f"{html.escape(red(r['entity'] or r['signature']))} every {r['period_s']:.1f} s "
                            f"({r['n_after']} firings after {html.escape(_time.fmt_ns(deploy_ts))}).</div>")
    parts.append(
        f"<section class='first'><h1>{html.escape(title)}</h1>"
        f"<p>{len(tl):,} events from {len(loaded)} sources, {html.escape(_time.fmt_ns(lo))} … "
        f"{html.escape(_time.fmt_ns(hi))}; {tl.rejects.num_rows:,} rejected records; {len(tr):,} transitions "
        f"({html.escape(', '.join(f'{k}: {v}' for k, v in Counter(tr.table.column('rule').to_pylist()).most_common()))}).</p>"
        + "".join(findings) + "</section>"
    )

    # ---- sources and clocks
    def corr(r: Mapping[str, Any]) -> str:
        if r["offset"] is None or pd.isna(r["offset"]):
            return ""
        s = _time.fmt_duration(r["offset"])
        if r.get("offset_lo") is not None and not pd.isna(r["offset_lo"]) and r["offset_lo"] != r["offset_hi"]:
            s += f" [{_time.fmt_duration(r['offset_lo'])}, {_time.fmt_duration(r['offset_hi'])}]"
        if r.get("drift_ppm"):
            s += f", {r['drift_ppm']:+.2f} ppm"
        return s

    srcs = srcs.assign(correction=[corr(r) for r in srcs.to_dict("records")])
    skipped = srcs[srcs["status"] == "skipped"]
    skipped_html = ""
    if len(skipped):
        skipped_html = ("<p class='note'>Not read: " + "; ".join(
            f"<code>{html.escape(red(r['source']))}</code> ({html.escape(red(str(r['note'])[:120]))})"
            for r in skipped.to_dict("records")) + "</p>")
    parts.append("<section><h2>Sources and clocks</h2>"
                 "<p class='note'>Correction: what was added to each source's own times, with the interval "
                 "alignment could prove and the drift; rows without one were read as UTC.</p>"
                 + _table(srcs[srcs["status"] != "skipped"], ["source", "format", "status", "host", "clock", "records",
                                                              "rows", "rejected", "correction", "note"], red, max_rows=500)
                 + skipped_html)
    if tl.rejects.num_rows:
        rj = tl.rejects.to_pandas()
        by = rj.groupby(["source", "reason"]).agg(n=("line", "size"), first_line=("line", "min")).reset_index()
        parts.append("<h3>Rejected records</h3>" + _table(by, ["source", "reason", "n", "first_line"], red))
    if alignment is not None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(11, 0.5 + 0.45 * max(len(alignment.clocks), 2)))
        plot.clocks(alignment, ax=ax)
        parts.append(_img(_fig_png(fig), "Clock corrections per domain with their intervals"))
    parts.append("</section>")

    # ---- overview
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 0.6 + 0.35 * max(len(loaded), 3)))
    plot.overview(tl, transitions=tr, ax=ax)
    parts.append("<section><h2>Overview</h2>" + _img(_fig_png(fig), "Event density per source; ticks mark transitions; "
                                                      "blank stretches: the source was not recording") + "</section>")

    # ---- transitions table
    parts.append("<section><h2>Transitions</h2><p class='note'>Ranked: state changes of entities named by the analyst "
                 "first, then errors, then version/config and endpoint changes, then restarts, then the rest; "
                 "ties in time order. TCP/scheduler state changes (rule <code>state-column</code>) are left out "
                 "unless given.</p>"
                 + _table(ranked, ["ts", "entity", "from_state", "to_state", "rule", "why", "source", "detail"], red,
                          max_rows=150) + "</section>")

    # ---- one section per selected transition
    shown_seqs: list[int] = []
    for k, r in enumerate(chosen.to_dict("records")):
        t_ns = int(pd.Timestamp(r["ts"]).value)
        idx = _index_of(tr, r)
        at = tr[idx] if idx is not None else t_ns
        il = tl.interleaving(at, window=window, lane=lane, transitions=tr)
        fig = plot.interleaving(tl, at, window=window, lane=lane, transitions=tr).figure
        tab = il.table.copy()
        shown_seqs.extend(int(s) for s in tab["seq"])
        ev = _provenance(tl, tab["seq"].tolist())
        tab = tab.merge(ev, on="seq", how="left")
        tab["when"] = tab["rel"].map(_time.fmt_duration)
        tab["ambiguous with"] = tab["ambiguous_with"].map(lambda xs: ", ".join(map(str, xs[:5])) + (" …" if len(xs) > 5 else ""))
        title_k = f"{r['entity']}: {r['from_state']} → {r['to_state']}"
        races = ""
        if len(il.races):
            races = "<h4>Race candidates (order not decided by the evidence)</h4>" + _table(
                il.races, ["a", "b", "shared", "gap_ns"], red, fmt={"gap_ns": _time.fmt_duration})
        parts.append(
            f"<section><h2>{k + 1}. {html.escape(red(title_k))}</h2>"
            f"<p>{html.escape(_time.fmt_ns(t_ns))} — rule <code>{html.escape(r['rule'])}</code>, source "
            f"<code>{html.escape(red(r['source']))}</code>; {html.escape(red(r.get('detail') or ''))}</p>"
            + _img(_fig_png(fig), f"Interleaving ±{window} around {title_k}") + races
            + f"<h4>Events around it ({len(tab)}; highlighted: ambiguous order)</h4>"
            + _table(tab, ["when", "lane", "kind", "name", "entity", "state", "message", "provenance", "seq",
                           "ambiguous with"], red, max_rows=120)
            + "</section>"
        )

    # ---- diff and periodic
    if deploy_ts is not None:
        d = tl.diff(at=deploy_ts)
        d = d[d["status"] != "persisting"].head(60) if len(d) else d
        still = tl.diff(at=deploy_ts)
        still = still[(still["status"] == "persisting") & still["signature"].str.contains("cron", na=False)]
        parts.append(f"<section><h2>Before / after the deploy ({html.escape(_time.fmt_ns(deploy_ts))})</h2>"
                     + _table(pd.concat([d, still]), ["status", "source", "signature", "entity", "n_before", "n_after",
                                                      "rate_before", "rate_after"], red,
                              fmt={"rate_before": lambda v: f"{v:.2f}/min", "rate_after": lambda v: f"{v:.2f}/min"})
                     + "</section>")
    if len(per):
        cols = ["source", "signature", "entity", "period_s", "jitter_s", "phase_s", "count", "first", "last"]
        if "n_after" in per:
            cols.append("n_after")
        parts.append("<section><h2>Recurring series</h2><p class='note'>n_after: firings after the deploy.</p>"
                     + _table(per, cols, red, fmt={"period_s": lambda v: f"{v:.3f}", "jitter_s": lambda v: f"{v:.3f}",
                                                   "phase_s": lambda v: f"{v:.3f}"}) + "</section>")

    # ---- notes
    if notes is not None:
        p = Path(notes)
        text = p.read_text(encoding="utf-8") if p.exists() else str(notes)
        parts.append("<section><h2>Analyst's notes</h2>" + markdown_to_html(text, red) + "</section>")

    # ---- appendix
    files = sorted({f for f in srcs["file"].dropna() for f in str(f).split(", ")})
    hashes = pd.DataFrame([{"file": f, "sha256": _hash_file(f.split("!")[0]) if "!" not in f else "(archive member)"}
                           for f in files])
    params = {k: v for k, v in tl._params.items() if k != "corrections"}
    corrections = tl._params.get("corrections", [])
    red_counts = ", ".join(f"{k}: {v} masked" for k, v in sorted(red.counts.items())) or "nothing matched"
    parts.append(
        "<section><h2>Appendix: provenance</h2>"
        f"<p>tracekit {html.escape(__version__)}, written {html.escape(_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds'))}. "
        f"Load parameters: <code>{html.escape(red(params))}</code>. Clock corrections applied: "
        f"<code>{html.escape(red(_short(corrections)))}</code>.</p>"
        f"<p>Redaction ({'on' if red.patterns else 'off'}: {html.escape(', '.join(red.patterns) or 'no patterns')}): "
        f"{html.escape(red_counts)}.</p>"
        "<h3>Input files</h3>" + _table(hashes, ["file", "sha256"], red, max_rows=1000)
        + f"<p class='note'>Every event shown above has its file and line in the <i>provenance</i> column "
        f"({len(set(shown_seqs)):,} events).</p></section>"
    )
    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<meta name='generator' content='tracekit {html.escape(__version__)}'>"
           f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    if pdf is not None:
        html_to_pdf(out, pdf)
    return out


def _short(obj: Any) -> str:
    s = repr(obj)
    return s if len(s) < 2000 else s[:2000] + " …"


def _index_of(tr: Any, r: Mapping[str, Any]) -> int | None:
    t = tr.table
    ts = t.column("ts").cast(pa.int64()).to_pylist()
    ents, rules, tos = t.column("entity").to_pylist(), t.column("rule").to_pylist(), t.column("to_state").to_pylist()
    want = int(pd.Timestamp(r["ts"]).value)
    for i, (a, e, ru, to) in enumerate(zip(ts, ents, rules, tos)):
        if a == want and e == r["entity"] and ru == r["rule"] and to == r["to_state"]:
            return i
    return None


def _provenance(tl: Timeline, seqs: list[int]) -> pd.DataFrame:
    if not seqs:
        return pd.DataFrame({"seq": [], "provenance": []})
    q = ("select seq, file::VARCHAR as f, line, line_end, \"offset\" as off from events where seq in ("
         + ",".join(str(int(s)) for s in seqs) + ")")
    df = tl.sql(q).to_pandas()

    def fmt(r: Mapping[str, Any]) -> str:
        f = os.path.basename(str(r["f"])) if r["f"] else "?"
        if r["line"] is not None and not pd.isna(r["line"]):
            le = r["line_end"]
            span = f"{int(r['line'])}" + (f"-{int(le)}" if le is not None and not pd.isna(le) and le != r["line"] else "")
            return f"{f}:{span}"
        if r["off"] is not None and not pd.isna(r["off"]):
            return f"{f}#{int(r['off'])}"
        return f
    df["provenance"] = [fmt(r) for r in df.to_dict("records")]
    return df[["seq", "provenance"]].astype({"seq": "uint64"})


# --------------------------------------------------------------------------- PDF


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


def html_to_pdf(src: str | os.PathLike, dst: str | os.PathLike, timeout: float = 120) -> Path:
    """Print an HTML file to PDF with headless Chromium (Debian's ``chromium`` package).

    Example::

        >>> html_to_pdf("out/report.html", "out/report.pdf")      # doctest: +SKIP
    """
    exe = find_chromium()
    if exe is None:
        raise TracekitError("PDF needs Chromium: install Debian's 'chromium' package (apt-get install chromium)")
    dst = Path(dst).resolve()
    with tempfile.TemporaryDirectory() as prof:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", "--no-pdf-header-footer",
               f"--print-to-pdf={dst}", Path(src).resolve().as_uri()]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not dst.exists() or dst.stat().st_size == 0:
        raise TracekitError(f"Chromium could not print {src} to PDF (exit {r.returncode}): {r.stderr[-800:]}")
    return dst
