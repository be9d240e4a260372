"""dmesg: the kernel ring buffer as printed by util-linux ``dmesg``.

Forms (one per file; a line may also carry the ``-x`` or ``-r`` prefix)::

    [ 3523.519513] msg                          plain dmesg: seconds since boot
    [ 3523.519513 <    0.000013>] msg           dmesg -d (attrs dmesg.delta_ns)
    [Fri Nov 27 22:49:13 2026] msg              dmesg -T: local time, 1 s (tz= option)
    2026-11-27T22:49:13,519513+00:00 msg        dmesg --time-format iso
    <5>[ 3523.520493] msg                       dmesg -r
    user  :notice: [ 3523.520493] msg          dmesg -x

Clock: uptime stamps are ``clock="boot"`` with ``ts_src`` = ns since boot (put them on UTC with
a boot anchor, e.g. ``meta["extra"]["boot_anchors"]`` of a syslog file from the same host);
``-T`` and iso stamps are realtime. ``dmesg -T`` computes its times from the boot time and is
wrong after a suspend; its zone is ``tz=`` (default UTC), recorded in ``meta["assumed"]``.

Columns: ``severity`` and ``category`` (facility) from the ``-x`` prefix. The number of
``dmesg -r`` is NOT a syslog PRI: util-linux prints ``facility | level`` (not
``facility << 3 | level``), so user.info and syslog.info both print ``<7>``; it is kept in
attrs ``dmesg.raw_prefix`` and only read as the level with ``raw_prefix="level"`` (right for
kernel-facility records only). ``name`` is the message's ``subsystem:`` prefix when there is
one (``systemd-journald[3047]:`` → name ``systemd-journald``, pid 3047; ``EXT4-fs (vda1):``
→ ``EXT4-fs``), else ``kernel``; the message is kept whole.

A line without a stamp continues the previous record (merged, message joined with ``\\n``,
``line..line_end``); with no record before it, it is rejected. A line stamped in another form
than most of the file's (one source has one clock) is rejected. Blank lines are not records.

Vectorised like the syslog reader: a header-only regex on every core in slices reduced to
compact columns (1M lines in about a second of CPU).

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("dmesg.txt", host="node-3")  # dmesg has no host: name it  # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..errors import OptionError
from . import _syslogish as sx
from ._base import Input, Reader, ReadResult, make_rejects, register, split_lines

_FACS = "|".join(sx.FACILITIES + ("lpr", "res0", "res1", "res2", "res3"))
_LEVELS = "|".join(sx.LEVEL_WORDS)
LINE_RE = (
    r"^(?P<hdr>(?:(?P<fac>" + _FACS + r")\s*:(?P<lvl>" + _LEVELS + r")\s*: )?"
    r"(?:<(?P<raw>-?\d{1,3})>)?"
    r"(?:\[\s*(?P<us>\d+)\.(?P<uf>\d{1,9})(?:\s*<\s*(?P<ds>\d+)\.(?P<df>\d+)>)?\]"
    r"|\[(?P<ctime>[A-Z][a-z]{2} (?P<cmon>[A-Z][a-z]{2}) {1,2}(?P<cday>\d{1,2}) (?P<chh>\d{2}):(?P<cmi>\d{2})"
    r":(?P<css>\d{2}) (?P<cyear>\d{4}))\]"
    r"|(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2},\d{1,9}[+-]\d{2}:?\d{2}))"
    r"(?: |\r?\n?$))"
)  # the header only: the message is the rest of the line, sliced off
_SUBSYS = r"^(?P<sub>[A-Za-z_][\w.\-/]*)(?:\[(?P<spid>\d+)\])?(?: \([^)]*\))?: "

_SNIFF = re.compile(
    r"^(?:[a-z0-9]+\s*:[a-z]+\s*: )?(?:<-?\d{1,3}>)?(?:\[\s*\d+\.\d{1,9}(?:\s*<\s*[\d.]+>)?\]"
    r"|\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d \d{4}\]"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{6}[+-]\d\d:?\d\d )")


def _sniff(head: bytes, name: str) -> float:
    """Confidence that ``head`` is dmesg output: the share of lines with a dmesg stamp."""
    lines = head.split(b"\n")[:60]
    if len(lines) > 1 and len(head) >= 65536:
        lines = lines[:-1]
    hit = other = 0
    for raw in lines:
        if not raw.strip():
            continue
        if _SNIFF.match(raw.decode("utf-8", "replace")):
            hit += 1
        else:
            other += 1
    if hit == 0:
        return 0.0
    share = hit / (hit + other)
    return 0.3 * share if share < 0.5 else 0.65 + 0.3 * share


def _reduce(g: pl.DataFrame) -> pl.DataFrame:
    """One slice's groups → compact columns (integers, categoricals, the message sliced off)."""
    i64 = pl.Int64

    def ns(sec: str, frac: str) -> pl.Expr:
        f = pl.col(frac).str.pad_end(9, "0").str.slice(0, 9).cast(i64, strict=False).fill_null(0)
        return pl.col(sec).cast(i64, strict=False) * sx.NS + f

    out = g.select(
        up_ns=ns("us", "uf"),
        uflen=pl.col("uf").str.len_chars().cast(pl.Int8),
        delta_ns=ns("ds", "df"),
        ct=pl.col("ctime").is_not_null(),
        cmon=pl.col("cmon").replace_strict(sx.MONTHS, default=0, return_dtype=pl.Int8),
        cday=pl.col("cday").cast(pl.Int8, strict=False), chh=pl.col("chh").cast(pl.Int8, strict=False),
        cmi=pl.col("cmi").cast(pl.Int8, strict=False), css=pl.col("css").cast(pl.Int8, strict=False),
        cyear=pl.col("cyear").cast(pl.Int16, strict=False),
        isiso=pl.col("iso").is_not_null(),
        raw=pl.col("raw").cast(pl.Int16, strict=False),
        fac=pl.col("fac").cast(pl.Categorical), lvl=pl.col("lvl").cast(pl.Categorical),
        msg=pl.col("line").str.slice(pl.col("hdr").str.len_chars()).str.strip_chars_end("\r\n"),
    )
    if g["iso"].null_count() < g.height:
        r = _time.parse_iso8601(g["iso"].fill_null(""))
        return out.with_columns(iso_ns=pl.Series(r["ns"]), iso_ok=pl.Series(r["ok"]),
                                iso_prec=pl.Series(r["prec"]))
    z = np.zeros(g.height, dtype=np.int64)
    return out.with_columns(iso_ns=pl.Series(z), iso_ok=pl.Series(z.astype(bool)), iso_prec=pl.Series(z))


def _read(inp: Input, tz: str | None = None, raw_prefix: str = "keep") -> ReadResult:
    zi = sx.zone(tz, inp.path)
    if raw_prefix not in ("keep", "level"):
        raise OptionError(f"{inp.path}: raw_prefix must be 'keep' or 'level', not {raw_prefix!r}")
    lines = split_lines(inp)
    text = lines.text
    n = len(text)
    if n == 0:
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=0, emitted=0,
                          meta={"clock": "boot", "note": "empty input"})
    g = sx.extract_chunks(text, LINE_RE, _reduce)
    up = g["up_ns"].is_not_null().to_numpy()
    ct = g["ct"].to_numpy()
    iso = g["isiso"].to_numpy()
    stamped = up | ct | iso
    blank = np.zeros(n, dtype=bool)
    un = np.flatnonzero(~stamped)
    if len(un):
        t = text.take(pa.array(un))
        blank[un] = np.asarray(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(t)), 0)
                               .to_numpy(zero_copy_only=False), dtype=bool)
    counts = {"uptime": int(up.sum()), "ctime": int(ct.sum()), "iso": int(iso.sum())}
    form = max(counts, key=lambda k: counts[k])
    mine = {"uptime": up, "ctime": ct, "iso": iso}[form]

    ts = np.zeros(n, dtype=np.int64)
    prec = np.full(n, sx.NS, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    assumed: dict[str, str] = {}
    meta: dict[str, Any] = {}
    if form == "uptime":
        ts = g["up_ns"].fill_null(0).to_numpy()
        flen = g["uflen"].fill_null(6).to_numpy().astype(np.int64)
        prec = (10 ** (9 - np.minimum(flen, 9))).astype(np.int64)
        meta["clock"] = "boot"
        meta["note"] = "seconds since boot: needs a boot anchor (e.g. a syslog of the same host) for UTC"
    elif form == "ctime":
        def i(c: str) -> np.ndarray:
            return g[c].cast(pl.Int64).fill_null(0).to_numpy()

        mon, y, d, hh, mi, ss = i("cmon"), i("cyear"), i("cday"), i("chh"), i("cmi"), i("css")
        ok = ct & (mon >= 1) & (d >= 1) & (d <= 31) & (hh <= 23) & (mi <= 59) & (ss <= 60)
        bad |= ct & ~ok
        days = _time.days_from_civil(np.where(ok, y, 1970), np.where(ok, mon, 1), np.where(ok, d, 1))
        loc = (days * 86400 + hh * 3600 + mi * 60 + ss) * sx.NS
        ts, info = sx.localize(loc, ok, zi)
        assumed["tz"] = (str(tz) if zi is not None else "UTC") + " (dmesg -T prints local time)"
        if info["ambiguous"]:
            assumed["tz"] += f"; {info['ambiguous']} in the repeated DST hour, resolved by file order"
        meta["clock"] = "realtime"
        meta["note"] = "dmesg -T times are boot time + uptime: wrong after a suspend/resume"
    else:
        ok = g["iso_ok"].to_numpy()
        bad |= iso & ~ok
        ts, prec = g["iso_ns"].to_numpy(), g["iso_prec"].to_numpy()
        meta["clock"] = "realtime"
    other = stamped & ~mine
    good = mine & ~bad
    head = stamped
    cont = ~stamped & ~blank
    owner = sx.group_continuations(head, cont)
    ok_owner = good[np.maximum(owner, 0)] & (owner >= 0)
    merged = cont & ok_owner
    reasons = np.full(n, None, dtype=object)
    reasons[other] = f"a different time format than the rest of the file ({form})"
    reasons[bad & mine] = "invalid date or time in the stamp"
    reasons[cont & (owner < 0)] = "line without a dmesg stamp and no record before it"
    reasons[cont & (owner >= 0) & ~ok_owner] = "continuation of a rejected line"
    rej_idx = np.flatnonzero(reasons != None)  # noqa: E711
    rejects = None
    if len(rej_idx):
        raw = pc.utf8_rtrim(text.take(pa.array(rej_idx)), characters="\r\n")
        rejects = make_rejects(inp.name, inp.path, lines.line[rej_idx], lines.offset[rej_idx],
                               list(reasons[rej_idx]), raw)

    rows = np.flatnonzero(good)
    m = len(rows)
    r = g[pl.Series(rows)] if m != n else g
    msg = r["msg"].fill_null("")
    if msg.str.ends_with("\r").any():
        msg = msg.str.strip_suffix("\r")
    line_end = lines.line[rows].copy()
    if merged.any():
        ci = np.flatnonzero(merged)
        own = owner[ci]
        heads = np.unique(own)
        hpos = np.searchsorted(rows, heads)
        ctext = pl.from_arrow(pc.utf8_rtrim(text.take(pa.array(ci)), characters="\r\n"))
        o, joined = sx.merge_text(heads, ci, own, msg[pl.Series(hpos)], ctext)
        msg = msg.scatter(pl.Series(np.searchsorted(rows, o)), joined)
        last = np.zeros(n, dtype=np.int64)
        np.maximum.at(last, own, lines.line[ci])
        line_end = np.maximum(line_end, last[rows])
    sub = msg.str.extract_groups(_SUBSYS).struct.unnest()
    name = sub["sub"].fill_null("kernel")
    parts: list[tuple[np.ndarray, str, Any]] = []
    idx = np.arange(m)
    rawp = r["raw"]
    if rawp.is_not_null().any():
        parts.append((idx, "dmesg.raw_prefix", rawp.cast(pl.String)))
    if r["delta_ns"].is_not_null().any():
        parts.append((idx, "dmesg.delta_ns", r["delta_ns"].cast(pl.String)))
    sev = sx.severity_from_words(r["lvl"].cast(pl.String))
    if raw_prefix == "level" and rawp.is_not_null().any():
        rn = rawp.cast(pl.Int64).fill_null(-1).to_numpy()
        from_raw = sx.severity_from_num(rn & 7, (rn >= 0) & (rn <= 7))
        sev = pa.DictionaryArray.from_arrays(
            pc.coalesce(sev.indices, from_raw.indices), sev.dictionary)
        assumed["raw_prefix"] = "level (dmesg -r numbers read as the kernel log level)"
    cols: dict[str, Any] = {
        "ts_src": ts[rows],
        "ts_prec": prec[rows],
        "kind": "log",
        "name": name.to_arrow(),
        "category": r["fac"].cast(pl.String).to_arrow(),
        "severity": sev,
        "pid": sub["spid"].cast(pl.Int64, strict=False).to_arrow(),
        "message": msg.to_arrow(),
        "attrs": sx.attrs_map(m, parts),
        "line": lines.line[rows],
        "line_end": line_end,
        "offset": lines.offset[rows],
    }
    meta["assumed"] = assumed
    meta["extra"] = {"form": {"uptime": "dmesg (uptime)", "ctime": "dmesg -T", "iso": "dmesg --time-format iso"}[form],
                     "prefix": ("-x" if r["fac"].is_not_null().any() else "-r" if rawp.is_not_null().any() else None)}
    if lines.bad_utf8.size:
        meta["note"] = (meta.get("note", "") + "; " if meta.get("note") else "") + \
            f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    nrec = int((~blank).sum())
    return ReadResult(events=cols, records=nrec, emitted=m, merged=int(merged.sum()),
                      rejects=rejects, meta=meta)


register(
    Reader(
        name="dmesg",
        description="kernel ring buffer (util-linux dmesg: uptime, -T, iso, -r, -x)",
        sniff=_sniff,
        read=_read,
        options={
            "tz": "IANA zone of dmesg -T times, e.g. 'Europe/Berlin'; default UTC",
            "raw_prefix": "'keep' (default: dmesg -r numbers only in attrs) or 'level' (read them as the level)",
        },
        extensions=(".dmesg", "dmesg", "dmesg.txt", "kern.log"),
    )
)
