"""syslog: RFC 3164, RFC 5424, rsyslog's RFC 3339 file format, wire captures, CRON lines.

Forms read (one file may mix them; each line is recognised on its own)::

    Nov  3 09:23:38 host tag[pid]: msg                      RFC 3164 (BSD; /var/log/messages)
    <78>Nov 27 22:45:31 vm cron[2204]: (CRON) INFO (...)     RFC 3164 on the wire (with <PRI>)
    2026-11-27T22:45:53.069523+00:00 vm myapp[4242] msg     rsyslog RSYSLOG_FileFormat (Debian)
    <165>1 2026-11-27T22:45:53.06Z vm app 42 ID47 [sd@1 a="1"] msg   RFC 5424
    153 <166>1 2026-...                                     RFC 6587 octet-counted TCP stream

Columns: ``name`` = the program tag (``sshd``, ``CRON``, ``kernel``; RFC 5424 APP-NAME) —
except cron events, see below; ``category`` = the facility name from ``<PRI>`` (``cron``,
``authpriv``, ``local4``; null without a PRI); ``severity`` from ``PRI & 7``; ``host``,
``pid`` (the ``[pid]`` of the tag, or a numeric RFC 5424 PROCID), ``message``. ``attrs``:
``syslog.msgid``, ``syslog.procid`` (non-numeric), RFC 5424 structured data as
``sd.<SD-ID>.<param>`` (an element without params: ``sd.<SD-ID>`` = ""), ``kernel.uptime``
(seconds, as written) for kernel lines carrying ``[  12.345678]`` (the stamp leaves the
message). A tag without ``:`` is still the first word after the host (rsyslog writes RFC 5424
senders' tags that way), so a line with no tag at all (``host lookup for opt failed``) gets its
first word as name; ``-`` (RFC 5424 NILVALUE) host/app/procid are null.

Times: RFC 3164 has no year and no zone. ``year=`` is the first record's year; by default the
last record's year is the file's modification year (the year before if the record's date is
later than the mtime). A month falling back by more than six (Dec → Jan) starts the next year.
``tz=`` (IANA name, default UTC) is the zone of times written without an offset; the hour
repeated when daylight saving ends is read in file order (first pass daylight time, second
pass, after the clock goes back, standard time). Both choices are in ``meta["assumed"]``.

CRON lines (Debian/Ubuntu cron, cronie) become events named ``cron.<verb>``: ``cron.cmd``
(``(root) CMD ([2349] /bin/sh -c 'x')``), ``cron.end``, ``cron.error``, ``cron.info``,
``cron.mail`` …, and ``cron.session_opened`` / ``cron.session_closed`` (pam_unix). attrs:
``cron.user``, ``cron.command``, ``cron.child_pid``; ``cron.cmd``/``cron.end``/failed
``cron.error`` rows are ``kind="state"`` with entity ``cron/<host>/<command>`` (recurring
firings group), state ``started``/``finished``/``failed``, and a grandchild's exit status in
``value`` (the error line is linked to its CMD by host and child pid, or by the ``CRON[pid]``
process that ran it; that process's later lines — ``(CRON) info (No MTA installed …)``,
session closed — get the entity and command too, as logs). The tag is then in attrs
``syslog.tag``.

Kernel lines with an uptime stamp give ``meta["extra"]["boot_anchors"]``: per host (and boot:
a new one where the uptime goes back, key ``host#2``) ``anchor_ns`` = the UTC time of uptime
zero, min(wall − uptime) + half the stamps' precision (delays only add; rsyslog replays the boot
log at start), so boot-clock sources (dmesg) of that host can be put on UTC.

Lines that do not start with a timestamp or ``<PRI>`` continue the previous record (macOS
TAB-indented lines): merged, message joined with ``\\n``, provenance ``line..line_end``. A line
that starts like a header but is malformed is rejected, and so are its continuations; so is a
continuation with no record before it, and an RFC 5424 record whose TIMESTAMP is nil (``-``)
(it carries no time). Blank lines are not records. Octet-counted streams: ``line`` is the frame
number and ``offset`` the frame's byte offset.

Vectorised: one regex over the header only (the message is sliced off after it), run on every
core in slices of :data:`CHUNK` lines that are reduced at once to compact columns (time of day
and precision included); dates from a table of month starts with numpy; CRON and kernel lines
parsed on their subset only, copied together first, and split by position where a match test
of their pattern accepts them (a test costs a fraction of a pattern's groups; tests check the
groups are the same); the kernel lines on a second thread while the CRON lines are read.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("/var/log/syslog", year=2026, tz="Europe/Berlin")   # doctest: +SKIP
    >>> tl.sql("select ts, attrs['cron.command'] from events where name = 'cron.cmd'")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..errors import OptionError
from ..schema import conform
from . import _syslogish as sx
from ._base import Input, Lines, Reader, ReadResult, _decode, make_rejects, register, split_lines

CHUNK = 1 << 16  # lines per regex pass (bounds the memory of the extraction)

_MON = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_H3164 = _MON + r" {1,2}(?P<day>\d{1,2})(?: (?P<yr>\d{4}))? (?P<hh>\d{2}):(?P<mi>\d{2}):(?P<ss>\d{2})(?:\.(?P<frac>\d{1,9}))?"
_H3339 = r"(?P<iso>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?)"
_TAIL = r" (?P<host>\S+)(?: (?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d{1,10})\])?:? ?)?"
_SD_ELEM = r'\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\]'
_H5424 = (r"(?P<v>1) (?P<ts5>-|\d{4}-\d{2}-\d{2}T\S+) (?P<host5>\S+) (?P<app>\S+) (?P<procid>\S+)"
          r" (?P<msgid>\S+) (?P<sd>-|(?:" + _SD_ELEM + r")+)(?: |\r?\n?$)")
#: the header only (the message is the rest of the line, sliced off: a regex that does not
#: have to run over the message costs half as much)
LINE_RE = (r"^(?P<hdr>(?:<(?P<pri>\d{1,3})>)?(?:" + _H5424 + r"|(?:" + _H3164 + r"|" + _H3339 + r")"
           + _TAIL + r"))")
#: the common RFC 3164 header (no year, no fraction, a tag): where it matches, its groups are
#: those LINE_RE gives (same alternatives, same preferences); LINE_RE reads the other lines
#: (ASCII digits: a line with other digits misses it and goes to LINE_RE, whose \d is Unicode)
FAST_RE = (r"^(?P<hdr>(?:<(?P<pri>[0-9]{1,3})>)?" + _MON + r" {1,2}(?P<day>[0-9]{1,2}) (?P<hh>[0-9]{2})"
           r":(?P<mi>[0-9]{2}):(?P<ss>[0-9]{2}) (?P<host>\S+) (?P<tag>[^\s\[:]+)(?:\[(?P<pid>[0-9]{1,10})\])?:? ?)")
#: a line that starts like a header (rejected when the whole header does not parse)
START_RE = r"^(?:<\d{1,3}>|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}\d|\d{4}-\d{2}-\d{2}T)"
_OCTET = re.compile(rb"^\d{1,7} <\d{1,3}>")


CRON_TAGS = ("CRON", "cron", "crond", "CROND", "anacron")
_CRON_EV = r"^\((?P<user>[^)]*)\) (?P<verb>[^()]*?) \((?P<arg>.*)\)\s*$"
_CRON_ARG = r"^(?:\[(?P<cpid>\d+)\] )?(?P<cmd>.*)$"
_CRON_GRAND = r"grandchild #(?P<gpid>\d+) failed with exit status (?P<status>-?\d+)"
_CRON_PAM = r"^pam_unix\(cron:session\): session (?P<act>opened|closed) for user (?P<puser>[^\s(]+)"
_KUPTIME = r"^(?P<h>\[\s*(?P<us>\d+)\.(?P<uf>\d{1,9})\] ?)"

# ------------------------------------------------------------------------------ sniffing

_S3164 = re.compile(r"^(?:<\d{1,3}>)?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}\d{1,2} (?:\d{4} )?"
                    r"\d{2}:\d{2}:\d{2}(?:\.\d+)? \S+ \S")
_S3339 = re.compile(r"^(?:<\d{1,3}>)?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?"
                    r"(?:Z|[+-]\d{2}:?\d{2})? \S+ [^\s\[:]+(?:\[\d+\])?:? ")
_S5424 = re.compile(r"^<\d{1,3}>1 (?:-|\d{4}-\d{2}-\d{2}T\S+) \S+ \S+ \S+ \S+ (?:-|\[)")


def _sniff(head: bytes, name: str) -> float:
    """Confidence that ``head`` is syslog: the share of lines with a syslog header."""
    if _OCTET.match(head):
        frames = re.findall(rb"(?:^|[^\d])(\d{1,7}) <\d{1,3}>(?:1 |[A-Z][a-z]{2} )", head[:4096])
        return 0.85 if frames else 0.0
    lines = [ln for ln in head.split(b"\n")[:60]]
    if len(lines) > 1 and len(head) >= 65536:
        lines = lines[:-1]  # the head may cut the last line
    hit = cont = other = 0
    for raw in lines:
        if not raw.strip():
            continue
        s = raw.decode("utf-8", "replace")
        if _S3164.match(s) or _S3339.match(s) or _S5424.match(s):
            hit += 1
        elif s[:1] in (" ", "\t"):
            cont += 1
        else:
            other += 1
    if hit == 0:
        return 0.0
    share = hit / (hit + other)
    if share < 0.5:
        return 0.3 * share
    return 0.6 + 0.3 * share  # all lines: 0.9


# ------------------------------------------------------------------------------ framing


def _octet_frames(buf: pa.Buffer) -> tuple[Lines, pa.Table | None]:
    """RFC 6587 octet counting (``LEN SP MSG``, no separators) → frames as a Lines set.

    The framing is sequential (each length gives the next start), so this walks the frames in
    Python; it is meant for captures, not bulk logs. A broken length ends the framing: the
    rest is returned as one unframed tail (rejected by the caller).
    """
    data = memoryview(buf)
    raw = bytes(data)
    n = len(raw)
    starts, ends, offs = [], [], []
    pos = 0
    tail = None
    lenre = re.compile(rb"\s*(\d{1,7}) ")
    while pos < n:
        m = lenre.match(raw, pos)
        if not m:
            if raw[pos:].strip():
                tail = pos
            break
        size = int(m.group(1))
        s = m.end()
        if s + size > n:
            tail = pos
            break
        offs.append(pos + (len(m.group(0)) - len(m.group(0).lstrip())))
        starts.append(s)
        ends.append(s + size)
        pos = s + size
    frames = [raw[s:e].rstrip(b"\r\n") for s, e in zip(starts, ends)]
    if tail is not None:
        frames.append(raw[tail:].rstrip(b"\r\n"))
        offs.append(tail)
    arr = pa.array(frames, pa.large_binary())
    text, bad = _decode(arr, 1)
    lines = Lines(text=text, line=np.arange(1, len(frames) + 1, dtype=np.int64),
                  offset=np.array(offs, dtype=np.int64), bad_utf8=bad, nbytes=n)
    return lines, (None if tail is None else len(frames) - 1)


# ------------------------------------------------------------------------------ reading


def _extract(text: pa.Array) -> pl.DataFrame:
    """Regex pass over the lines (terminators kept), on every core, in slices of :data:`CHUNK`
    lines each reduced at once to compact columns (see :func:`_syslogish.extract_chunks`)."""
    return sx.extract_chunks(text, LINE_RE, _reduce, CHUNK, contains=START_RE, fast=FAST_RE)


def _reduce(g: pl.DataFrame) -> pl.DataFrame:
    """One slice's regex groups → the compact columns the reader keeps."""
    have = set(g.columns)

    def col(c: str) -> pl.Expr:  # a group of LINE_RE (absent: a slice FAST_RE read whole)
        return pl.col(c) if c in have else pl.lit(None, pl.String)

    five = col("v").is_not_null()
    any5 = "v" in have and g["v"].null_count() < g.height
    msg = pl.col("line").str.slice(pl.col("hdr").str.len_chars()).str.strip_chars_end("\r\n")
    anyiso = "iso" in have and g["iso"].null_count() < g.height
    i64 = pl.Int64
    hh, mi, ss = (pl.col(c).cast(i64, strict=False) for c in ("hh", "mi", "ss"))
    flen = col("frac").str.len_chars().fill_null(0).cast(i64)
    exprs = [
        five.alias("is5"), pl.col("mon").is_not_null().alias("is3164"),
        col("iso").is_not_null().alias("isiso"), pl.col("start"),
        pl.col("pri").cast(pl.Int32, strict=False).fill_null(-1),
        pl.col("mon").replace_strict(sx.MONTHS, default=0, return_dtype=pl.Int8).alias("mon"),
        pl.col("day").cast(pl.Int8, strict=False).fill_null(0),
        col("yr").cast(pl.Int16, strict=False).fill_null(0).alias("yr"),
        # the time of day in ns (where the stamp is valid: hms_ok)
        ((hh.fill_null(99) * 3600 + mi.fill_null(99) * 60 + ss.fill_null(99)) * sx.NS
         + col("frac").str.pad_end(9, "0").str.slice(0, 9).cast(i64, strict=False).fill_null(0)).alias("sodns"),
        ((hh <= 23) & (mi <= 59) & (ss <= 60)).alias("hms_ok"),
        # an RFC 3164 stamp's precision: its fraction's digits, else 1 s
        pl.when(flen > 0).then(pl.lit(10, i64).pow(9 - flen.clip(0, 9))).otherwise(sx.NS).alias("prec3"),
    ]
    if any5:
        exprs += [
            pl.when(five).then(pl.col("host5")).otherwise(pl.col("host")).alias("host"),
            pl.when(five).then(pl.col("app")).otherwise(pl.col("tag")).alias("tag"),
            pl.when(five).then(pl.col("procid")).otherwise(pl.col("pid")).alias("pid"),
            pl.when(five).then(msg.str.strip_prefix(" ").str.strip_prefix("\ufeff")).otherwise(msg).alias("msg"),
            pl.col("msgid"), pl.col("sd"),
            (pl.col("ts5") == "-").fill_null(False).alias("nil"),
        ]
    else:
        exprs += [pl.col("host"), pl.col("tag"), pl.col("pid"), msg.alias("msg"),
                  pl.lit(None, pl.String).alias("msgid"), pl.lit(None, pl.String).alias("sd"),
                  pl.lit(False).alias("nil")]
    out = g.select(exprs)
    if any5 or anyiso:
        tstr = g.select(pl.coalesce("iso", pl.when(pl.col("ts5") != "-").then(pl.col("ts5")))).to_series()
        r = _time.parse_iso8601(tstr.fill_null(""))
        has = tstr.is_not_null().to_numpy()
        out = out.with_columns(iso_ns=pl.Series(r["ns"]), iso_ok=pl.Series(r["ok"] & has),
                               iso_bad=pl.Series(has & ~r["ok"]), iso_tz=pl.Series(r["tz"]),
                               iso_prec=pl.Series(r["prec"]))
    else:
        z = np.zeros(g.height, dtype=np.int64)
        f = np.zeros(g.height, dtype=bool)
        out = out.with_columns(iso_ns=pl.Series(z), iso_ok=pl.Series(f), iso_bad=pl.Series(f),
                               iso_tz=pl.Series(f), iso_prec=pl.Series(z))
    return out


#: inputs larger than this are read in blocks (:mod:`tracekit._stream`): the same table, but
#: the regex groups and intermediates exist for one block at a time, not for the whole file
#: (peak memory about 20 % lower at 1M lines; not below this size, where a first pass over the
#: file for the years costs more than the memory is worth)
BLOCKS_ABOVE = 256 << 20
LOAD_BLOCK = 8 << 20


def _read(inp: Input, year: int | None = None, tz: str | None = None) -> ReadResult:
    if year is not None and not (1 <= int(year) <= 9999):
        raise OptionError(f"{inp.path}: year must be 1..9999, not {year!r}")
    if (inp.size or 0) > BLOCKS_ABOVE and not _OCTET.match(inp.head(64)):
        from .._stream import Fallback, read_syslog

        try:
            return _concat(list(_tables(read_syslog(inp, year, tz, LOAD_BLOCK))))
        except Fallback:
            pass
    buf = inp.buffer()
    framing = "lines"
    broken_tail = None
    if _OCTET.match(inp.head(64)):
        lines, broken_tail = _octet_frames(buf)
        framing = "octet-counted (RFC 6587)"
    else:
        lines = split_lines(buf)
    return read_lines(inp, lines, year, tz, framing=framing, broken_tail=broken_tail)


@dataclass
class BlockState:
    """What a block of a file read in pieces (:mod:`tracekit._stream`) hands to the next: the
    last CMD command of every (host, child pid) and (host, CRON pid), the kernel uptime stamps
    (boot anchors are computed once, at the end), the hosts and form counts seen."""

    cron_child: _Carry = field(default_factory=lambda: _Carry(["host", "grand"]))
    cron_proc: _Carry = field(default_factory=lambda: _Carry(["host", "ppid"]))
    kernel: sx.BootStamps = field(default_factory=sx.BootStamps)
    hosts: set = field(default_factory=set)
    forms: dict = field(default_factory=dict)
    bad_utf8: int = 0
    local: bool = False
    nonexistent: int = 0
    year_note: str = ""


def read_lines(inp: Input, lines: Lines, year: int | None = None, tz: str | None = None, *,
               framing: str = "lines", broken_tail: int | None = None,
               state: BlockState | None = None) -> ReadResult:
    """Read a set of lines (the whole file, or one block of it with ``state``)."""
    zi = sx.zone(tz, inp.path)
    text = lines.text
    n = len(text)
    if n == 0:
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=0, emitted=0,
                          meta={"clock": "realtime", "note": "empty input"})
    g = _extract(text)
    is5 = g["is5"].to_numpy()
    is3164 = g["is3164"].to_numpy()
    isiso = g["isiso"].to_numpy()
    parsed = is5 | is3164 | isiso
    blank = np.zeros(n, dtype=bool)
    unparsed = np.flatnonzero(~parsed)
    if len(unparsed):
        blank[unparsed] = _blank(text.take(pa.array(unparsed)))
    starts = g["start"].to_numpy() & ~blank
    if broken_tail is not None:
        parsed[broken_tail] = False
        starts[broken_tail] = True
    pri = g["pri"].to_numpy().astype(np.int64)
    bad_pri = parsed & (pri > 191)

    # ---- times
    ts = np.zeros(n, dtype=np.int64)
    prec = np.full(n, sx.NS, dtype=np.int64)
    assumed: dict[str, str] = {}
    tz_info = {"ambiguous": 0, "nonexistent": 0}
    nil_time = g["nil"].to_numpy() & is5
    iso_ok = g["iso_ok"].to_numpy()
    bad_time = g["iso_bad"].to_numpy() & (is5 | isiso)
    local_mask = iso_ok & ~g["iso_tz"].to_numpy()
    if iso_ok.any():
        np.copyto(ts, g["iso_ns"].to_numpy(), where=iso_ok)
        np.copyto(prec, g["iso_prec"].to_numpy(), where=iso_ok)
    if is3164.any():
        mon = g["mon"].to_numpy()
        day = g["day"].to_numpy()
        ok3 = is3164 & (day >= 1) & (day <= 31) & g["hms_ok"].fill_null(False).to_numpy()
        bad_time |= is3164 & ~ok3
        yr = g["yr"].to_numpy()  # a year written in the stamp (rare) wins
        given = yr > 0
        years, note = sx.infer_years(mon, day, ok3 & ~given, year, inp.mtime, zi)
        if given.any():
            years = np.where(given, yr, years)
        if note:
            assumed["year"] = note
        loc = sx.civil_days(years, mon, day, ok3)
        loc *= sx.DAY_NS
        loc += g["sodns"].to_numpy()
        np.copyto(ts, loc, where=ok3)
        del loc
        np.copyto(prec, g["prec3"].to_numpy(), where=is3164)
        local_mask |= ok3
    if local_mask.any():
        utc, tz_info = sx.localize(ts, local_mask, zi)
        if state is not None:
            if tz_info["ambiguous"]:  # resolved by file order within the repeated hour: the whole file's
                from .._stream import Fallback

                raise Fallback("times in the repeated daylight-saving hour")
            state.local = True
            state.nonexistent += tz_info["nonexistent"]
        if utc is not ts:  # (UTC: the same array)
            ts = np.where(local_mask, utc, ts)
        assumed["tz"] = (str(tz) if zi is not None else "UTC") + " (times written without a UTC offset)"
        if tz_info["ambiguous"]:
            assumed["tz"] += f"; {tz_info['ambiguous']} in the repeated DST hour, resolved by file order"
        if tz_info["nonexistent"]:
            assumed["tz"] += f"; {tz_info['nonexistent']} in the skipped DST hour, moved forward"

    good = parsed & ~bad_pri & ~bad_time & ~nil_time
    head = good | starts | (parsed & ~good)
    cont = ~head & ~blank
    if cont.any():
        owner = sx.group_continuations(head, cont)
        orphan = cont & (owner < 0)
        cont_of_bad = cont & (owner >= 0) & ~good[np.maximum(owner, 0)]
        merged_mask = cont & (owner >= 0) & good[np.maximum(owner, 0)]
    else:  # (every line starts a record)
        owner = None
        orphan = cont_of_bad = merged_mask = cont

    # ---- rejects (a later reason wins)
    why = [(head & ~parsed, "malformed syslog header (a timestamp or <PRI> but not a full header)"),
           (bad_pri, "PRI over 191 (not a syslog priority)"),
           (bad_time & ~bad_pri, "invalid date or time in the header"),
           (nil_time & ~bad_pri, "RFC 5424 TIMESTAMP is nil (-): the record carries no time"),
           (orphan, "continuation line with no syslog record before it"),
           (cont_of_bad, "continuation of a rejected line")]
    rej_idx = np.flatnonzero(np.logical_or.reduce([mask for mask, _ in why]))
    rejects = None
    if len(rej_idx):
        reasons = np.full(len(rej_idx), None, dtype=object)
        for mask, reason in why:
            reasons[mask[rej_idx]] = reason
        rejects = make_rejects(inp.name, inp.path, lines.line[rej_idx], lines.offset[rej_idx],
                               list(reasons), _stripped(text, rej_idx))

    # ---- records
    rows = np.flatnonzero(good)
    m = len(rows)
    keep = ["host", "tag", "pid", "msg"] + (["msgid", "sd"] if is5.any() else [])
    r = g.select(keep) if m == n else g.select(keep)[pl.Series(rows)]
    del g
    kept = (lambda a: a) if m == n else (lambda a: a[rows])  # (every line a record: no gathers)
    r5 = kept(is5)
    pri_r = kept(pri)
    nil = [c for c in ("host", "tag", "pid") if (r[c] == "-").any()]  # RFC 5424 NILVALUE
    rf = r.select("host", "tag", "pid", "msg").with_columns(pl.col(c).replace("-", None) for c in nil)
    msg = rf["msg"].fill_null("")  # (no CR at its end: _reduce strips the line's terminator)
    pid_s = rf["pid"]
    pid_num = pid_s.cast(pl.Int64, strict=False)
    parts: list[tuple[np.ndarray, str, Any]] = []
    idx_all = np.arange(m)
    if r5.any():
        procid_bad = pid_s.is_not_null() & pid_num.is_null()
        if procid_bad.any():
            pb = procid_bad.to_numpy()
            parts.append((idx_all[pb], "syslog.procid", pid_s.filter(procid_bad)))
        msgid = r["msgid"].replace("-", None)
        if msgid.is_not_null().any():
            parts.append((idx_all, "syslog.msgid", msgid))
        sd = r["sd"]
        if (sd.is_not_null() & (sd != "-")).any():
            parts.extend(_sd_attrs(sd))

    name = rf["tag"]
    kind_state = np.zeros(m, dtype=bool)
    entity = st_col = value = None
    tag = rf["tag"]
    # kernel uptime stamps, on another thread while the cron lines are read (disjoint rows;
    # polars releases the GIL): the message column is only read there, the stamps put in after
    is_k = (tag == "kernel").fill_null(False)
    pool = ThreadPoolExecutor(max_workers=1) if is_k.any() else None
    kjob = pool.submit(_kernel, msg, is_k) if pool is not None else None
    is_cron = tag.is_in(CRON_TAGS).fill_null(False)
    try:
        if is_cron.any():
            name, entity, st_col, value, cron_parts, kind_state, renamed = _cron(rf, is_cron, msg, state)
            parts.extend(cron_parts)
            if len(renamed):
                parts.append((renamed, "syslog.tag", tag.gather(renamed)))
        kres = kjob.result() if kjob is not None else None
    finally:
        if pool is not None:
            pool.shutdown()

    extra: dict[str, Any] = {"framing": framing, "forms": {
        "rfc5424": int(r5.sum()), "rfc3164": int(kept(is3164).sum()), "rfc3339": int(kept(isiso).sum())}}
    if kres is not None:
        kp, ku, up_ns = kres
        msg = msg.scatter(pl.Series(kp), ku["rest"])
        parts.append((kp, "kernel.uptime", ku["stamp"]))
        wall = ts[rows[kp]]
        if state is None:
            extra["boot_anchors"] = sx.anchors_summary(rf["host"][pl.Series(kp)], up_ns, wall,
                                                       prec[rows[kp]])
        else:  # computed over the whole file at the end
            state.kernel.add(rf["host"][pl.Series(kp)], up_ns, wall, prec[rows[kp]])
    # continuation lines last: CRON and kernel stamps are read from the header line alone
    line_end = lines.line[rows] if m < n else lines.line.copy()
    if merged_mask.any():
        cont_idx = np.flatnonzero(merged_mask)
        own = owner[cont_idx]
        heads = np.unique(own)
        hpos = np.searchsorted(rows, heads)
        cont_text = pl.from_arrow(_stripped(text, cont_idx))
        o, joined = sx.merge_text(heads, cont_idx, own, msg[pl.Series(hpos)], cont_text)
        msg = msg.scatter(pl.Series(np.searchsorted(rows, o)), joined)
        last = np.zeros(n, dtype=np.int64)
        np.maximum.at(last, own, lines.line[cont_idx])
        line_end = np.maximum(line_end, kept(last))

    kinds = pa.DictionaryArray.from_arrays(pa.array(kind_state.astype(np.int32)), pa.array(["log", "state"]))
    hosts = rf["host"].drop_nulls().unique()
    meta: dict[str, Any] = {"clock": "realtime", "assumed": assumed, "extra": extra}
    if state is not None:
        if len(state.hosts) <= 100:
            state.hosts.update(hosts.to_list())
        for k, v in extra["forms"].items():
            state.forms[k] = state.forms.get(k, 0) + v
        state.bad_utf8 += int(lines.bad_utf8.size)
    if len(hosts) == 1:
        meta["host"] = hosts[0]
    elif len(hosts) > 1:
        extra["hosts"] = sorted(hosts.to_list())[:100]
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"
    fac_ok = (pri_r >= 0) & (pri_r <= 191)
    # to Arrow one column at a time, dropping the polars copies as we go (peak memory)
    arrow = {"message": _arrow_str(msg)}
    del msg
    arrow["name"] = _arrow_str(name)
    arrow["host"] = _arrow_str(rf["host"])
    arrow["pid"] = pid_num.to_arrow()
    del name, rf, r, pid_num, pid_s, tag
    cols: dict[str, Any] = {
        "ts_src": kept(ts),
        "ts_prec": kept(prec),
        "kind": kinds,
        "name": arrow["name"],
        "category": sx.facility_names(pri_r >> 3, fac_ok),
        "severity": sx.severity_from_num(pri_r & 7, fac_ok),
        "host": arrow["host"],
        "pid": arrow["pid"],
        "message": arrow["message"],
        "attrs": sx.attrs_map(m, parts),
        "line": kept(lines.line),
        "line_end": line_end,
        "offset": kept(lines.offset),
    }
    if entity is not None:
        cols.update(entity=entity, state=st_col, value=value)
    nrec = int((~blank).sum())
    return ReadResult(events=cols, records=nrec, emitted=m, merged=int(merged_mask.sum()),
                      rejects=rejects, meta=meta)


def _tables(results):
    """Each block's result with its events as a canonical table (its columns dropped)."""
    for res in results:
        if not isinstance(res.events, pa.Table):
            res.events = conform(res.events)
        yield res


def _concat(parts: list[ReadResult]) -> ReadResult:
    """The blocks' results as one (rows in file order)."""
    rej = [p.rejects for p in parts if p.rejects is not None and p.rejects.num_rows]
    return ReadResult(
        events=pa.concat_tables([p.events for p in parts]),
        records=sum(p.records for p in parts), emitted=sum(p.emitted for p in parts),
        merged=sum(p.merged for p in parts), metadata=sum(p.metadata for p in parts),
        rejects=pa.concat_tables(rej) if rej else None, meta=parts[-1].meta)


def finish_meta(meta: dict[str, Any], state: BlockState, tz: str | None = None) -> None:
    """The last block's ``meta`` made the whole file's: hosts, form counts, boot anchors, the
    assumed year and zone."""
    assumed = meta.setdefault("assumed", {})
    assumed.pop("year", None)
    assumed.pop("tz", None)
    if state.year_note:
        assumed["year"] = state.year_note
    if state.local:
        assumed["tz"] = (str(tz) if sx.zone(tz, "tz") is not None else "UTC") + " (times written without a UTC offset)"
        if state.nonexistent:
            assumed["tz"] += f"; {state.nonexistent} in the skipped DST hour, moved forward"
    extra = meta.setdefault("extra", {})
    extra["forms"] = dict(state.forms)
    extra.pop("hosts", None)
    meta.pop("host", None)
    if len(state.hosts) == 1:
        meta["host"] = next(iter(state.hosts))
    elif state.hosts:
        extra["hosts"] = sorted(state.hosts)[:100]
    if state.kernel:
        extra["boot_anchors"] = state.kernel.summary()
    if state.bad_utf8:
        meta["note"] = f"{state.bad_utf8} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"


def _stripped(text: pa.Array, idx: np.ndarray) -> pa.Array:
    """The lines at ``idx`` without their terminators."""
    return pc.utf8_rtrim(text.take(pa.array(idx)), characters="\r\n")


def _blank(text: pa.Array) -> np.ndarray:
    """Mask of lines holding only white space."""
    trimmed = pc.utf8_length(pc.utf8_trim_whitespace(text))
    return np.asarray(pc.equal(trimmed, 0).to_numpy(zero_copy_only=False), dtype=bool)


def _unescape_sd(s: pl.Series) -> pl.Series:
    return s.str.replace_all(r'\\(["\\\]])', "$1")


def _sd_attrs(sd: pl.Series) -> list[tuple[np.ndarray, Any, Any]]:
    """RFC 5424 STRUCTURED-DATA → long-format attrs ``sd.<SD-ID>.<param>``."""
    df = pl.DataFrame({"i": np.arange(len(sd)), "sd": sd}).filter(
        pl.col("sd").is_not_null() & (pl.col("sd") != "-"))
    el = df.with_columns(e=pl.col("sd").str.extract_all(_SD_ELEM)).explode("e").drop("sd")
    el = el.with_columns(sid=pl.col("e").str.extract(r"^\[([^\s\]]+)", 1),
                         kv=pl.col("e").str.extract_all(r'[^\s=\]"]+="(?:[^"\\]|\\.)*"'))
    out: list[tuple[np.ndarray, Any, Any]] = []
    bare = el.filter(pl.col("kv").list.len() == 0)
    if bare.height:
        out.append((bare["i"].to_numpy(), ("sd." + bare["sid"]), pl.repeat("", bare.height, eager=True)))
    kv = el.filter(pl.col("kv").list.len() > 0).explode("kv").with_columns(
        k=pl.col("kv").str.extract(r'^([^=]+)=', 1),
        v=pl.col("kv").str.extract(r'^[^=]+="(.*)"$', 1))
    if kv.height:
        out.append((kv["i"].to_numpy(), "sd." + kv["sid"] + "." + kv["k"], _unescape_sd(kv["v"])))
    return out


class _Carry:
    """The last CMD command per (host, pid) of the blocks read so far, for the backward as-of
    joins of later blocks (as rows with ``i`` = -1: before any row of the block). Kept as
    small ints (host and command codes, the pid as a number): a CRON pid per job adds up to
    hundreds of thousands of keys in a long log, and Arrow/polars rows made block after block
    pin far more memory than they hold."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self.hosts: dict[Any, int] = {}
        self.host_of: list[Any] = []
        self.cmds: dict[Any, int] = {}
        self.cmd_of: list[Any] = []
        self.last: dict[Any, int] = {}

    def _key(self, host: Any, pid: Any) -> Any:
        h = self.hosts.get(host)
        if h is None:
            h = self.hosts[host] = len(self.host_of)
            self.host_of.append(host)
        if pid is not None and pid.isdigit() and pid.isascii() and (pid == "0" or pid[0] != "0") and len(pid) < 15:
            return (h << 50) | int(pid)
        return (h, pid)  # a pid that is not a plain number keeps its text

    def add(self, rows: pl.DataFrame) -> None:
        for host, pid, cmd in zip(rows[self.keys[0]].to_list(), rows[self.keys[1]].to_list(),
                                  rows["cmd_of"].to_list()):
            c = self.cmds.get(cmd)
            if c is None:
                c = self.cmds[cmd] = len(self.cmd_of)
                self.cmd_of.append(cmd)
            self.last[self._key(host, pid)] = c

    def lookup(self, cdf: pl.DataFrame) -> pl.DataFrame | None:
        """The carried rows whose keys occur in ``cdf``, or None."""
        if not self.last:
            return None
        want = cdf.select(self.keys).unique(maintain_order=True)
        hit = []
        for host, pid in zip(want[self.keys[0]].to_list(), want[self.keys[1]].to_list()):
            k = self._key(host, pid)
            if k in self.last:
                hit.append((host, pid, self.cmd_of[self.last[k]]))
        if not hit:
            return None
        return pl.DataFrame({"i": pl.Series([-1] * len(hit), dtype=pl.Int64),
                             self.keys[0]: pl.Series([h[0] for h in hit], dtype=pl.String),
                             self.keys[1]: pl.Series([h[1] for h in hit], dtype=pl.String),
                             "cmd_of": pl.Series([h[2] for h in hit], dtype=pl.String)})


def _kernel(msg: pl.Series, is_k: pl.Series) -> tuple[np.ndarray, pl.DataFrame, np.ndarray] | None:
    """The kernel lines' uptime stamps: their rows, :func:`_kernel_stamps`'s columns and the
    uptimes in ns (None: no stamps)."""
    kpos = np.flatnonzero(is_k.to_numpy())
    km = _compact_str(msg.filter(is_k))
    kok, ku = _kernel_stamps(km)
    if not kok.any():
        return None
    return kpos[kok], ku, sx.num(ku["us"]) * sx.NS + _time._frac_ns(ku["uf"])


def _kernel_stamps(km: pl.Series) -> tuple[np.ndarray, pl.DataFrame]:
    """Kernel messages → which carry an uptime stamp (:data:`_KUPTIME`) and, for those, its
    seconds ``us`` and fraction ``uf`` (the pattern's groups), the ``stamp`` as written
    (``us.uf``) and the message ``rest`` after it (and one space). Split by position where the
    pattern matches (a match test is much cheaper than its groups): the stamp ends at the first
    ``]``, its digits follow the white space after ``[``."""
    ok = km.str.contains(_KUPTIME).fill_null(False).to_numpy()
    t = km.filter(pl.Series(ok)).str.splitn("]", 2).struct.unnest()
    stamp = t["field_0"].str.strip_prefix("[").str.strip_chars_start()
    p = stamp.str.splitn(".", 2).struct.unnest()
    return ok, pl.DataFrame({"us": p["field_0"], "uf": p["field_1"], "stamp": stamp,
                             "rest": t["field_1"].str.strip_prefix(" ")})


def _arrow_str(s: pl.Series) -> pa.Array:
    """A polars string column as an Arrow ``string`` array: handed over as string views (no
    copy) and cast by Arrow, about 4x faster than polars' own conversion to ``large_string``."""
    a = s.to_arrow(compat_level=pl.CompatLevel.newest())
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    return a.cast(pa.string())


def _compact_str(s: pl.Series) -> pl.Series:
    """A string column (a subset of a larger one) with its bytes copied together: polars string
    views keep pointing into the whole column's buffers, and the scattered reads of every
    operation on the subset cost more than one copy (about 3x for a pattern test on the cron
    lines of a 1M-line log)."""
    return pl.from_arrow(s.to_arrow())


def _compact(df: pl.DataFrame) -> pl.DataFrame:
    """A copy whose strings own their bytes (polars string views would keep the whole block's
    buffers alive for as long as the carried rows live)."""
    return pl.from_arrow(df.to_arrow())


_PAM_START = "pam_unix(cron:session): session "


def _where(mask: np.ndarray, s: pl.Series, pattern: str) -> pl.DataFrame:
    """``s.str.extract_groups(pattern)`` unnested, run only where ``mask`` (null elsewhere: the
    caller knows the pattern cannot match there)."""
    if mask.all():
        return s.str.extract_groups(pattern).struct.unnest()
    return _spread(mask, s.filter(pl.Series(mask)).str.extract_groups(pattern).struct.unnest())


def _spread(mask: np.ndarray, sub: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``sub`` (one per true cell of ``mask``) at those cells; nulls elsewhere."""
    at = pl.from_arrow(pa.array(np.cumsum(mask, dtype=np.int64) - 1, mask=~mask))
    return sub.select(pl.all().gather(at))


def _spread_arrow(sub: pl.Series, pos: np.ndarray, m: int) -> pa.Array:
    """The values of ``sub`` at rows ``pos`` (ascending) of an Arrow column of ``m`` rows, null
    elsewhere (a float or string column, large_string past 2 GiB; the strings' bytes are
    shared, only offsets and validity are made)."""
    a = sub.to_arrow()
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    valid = np.zeros(m, dtype=bool)
    valid[pos] = np.asarray(a.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_floating(a.type):
        vals = np.zeros(m, dtype=np.float64)
        vals[pos] = a.fill_null(0).to_numpy()
        return pa.array(vals, mask=~valid)
    a = a.cast(pa.large_string())
    offs = np.frombuffer(a.buffers()[1], dtype=np.int64)[a.offset:a.offset + len(a) + 1]
    small = len(offs) == 0 or int(offs[-1]) < 1 << 31  # (then the canonical string type: int32 offsets)
    size = np.zeros(m, dtype=np.int32 if small else np.int64)
    size[pos] = np.diff(offs)
    out = np.empty(m + 1, dtype=size.dtype)
    out[0] = offs[0] if len(offs) else 0
    np.cumsum(size, out=out[1:])
    out[1:] += out[0]
    data = a.buffers()[2] or pa.py_buffer(b"")
    cls = pa.StringArray if small else pa.LargeStringArray
    return cls.from_buffers(m, pa.py_buffer(out), data, pa.py_buffer(np.packbits(valid, bitorder="little")))


def _cron_ev(cm: pl.Series) -> pl.DataFrame:
    """The groups of :data:`_CRON_EV` (``user``, ``verb``, ``arg``), found by splitting the lines
    the pattern matches (a match test is much cheaper than its groups): ``(user)`` ends at the
    first ``)``; the verb holds no parenthesis, so it ends at the first ``(`` after it (less the
    space before); the argument is the rest less the last ``)`` and the white space after it."""
    ok = cm.str.contains(_CRON_EV).fill_null(False).to_numpy()
    if not ok.any():
        return pl.DataFrame({c: pl.Series([None] * len(cm), dtype=pl.String) for c in ("user", "verb", "arg")})
    u = cm.filter(pl.Series(ok)).str.strip_prefix("(").str.splitn(")", 2).struct.unnest()
    v = u["field_1"].str.slice(1).str.splitn("(", 2).struct.unnest()
    sub = pl.DataFrame({"user": u["field_0"], "verb": v["field_0"].str.strip_suffix(" "),
                        "arg": v["field_1"].str.strip_chars_end().str.strip_suffix(")")})
    return sub if ok.all() else _spread(ok, sub)


def _cron_pam(cm: pl.Series) -> pl.DataFrame:
    """The groups of :data:`_CRON_PAM` (``act``, ``puser``) on the lines it matches, by
    position after its fixed start (``opened``/``closed``, `` for user ``) and up to the first
    white space or ``(``."""
    ok = cm.str.contains(_CRON_PAM).fill_null(False).to_numpy()
    if not ok.any():
        return pl.DataFrame({c: pl.Series([None] * len(cm), dtype=pl.String) for c in ("act", "puser")})
    t = cm.filter(pl.Series(ok))
    k = len(_PAM_START)
    sub = pl.DataFrame({"act": t.str.slice(k, 6),
                        "puser": t.str.slice(k + 16).str.replace(r"(?s)[\s(].*", "")})
    return sub if ok.all() else _spread(ok, sub)


def _cron(rf: pl.DataFrame, is_cron: pl.Series, msg: pl.Series, state: BlockState | None = None):
    """Cron daemon lines → names, entity/state/value columns and attrs parts (``state``: the
    CMD lines of earlier blocks, for the links; updated with this block's)."""
    m = rf.height
    pos = np.flatnonzero(is_cron.to_numpy())
    cm = _compact_str(msg.filter(is_cron))
    # each pattern runs only on the lines that can match it (its literal start): the others
    # give nulls, as the pattern would
    ev = _cron_ev(cm)
    pam = _cron_pam(cm)
    a = ev["arg"]
    arg = _where(a.str.starts_with("[").fill_null(False).to_numpy(), a, _CRON_ARG)
    arg = arg.with_columns(pl.col("cmd").fill_null(a))  # no "[pid] ": the pattern's cmd is the whole arg
    gr = _where(a.str.contains("grandchild #", literal=True).fill_null(False).to_numpy(), a, _CRON_GRAND)
    cdf = pl.DataFrame({
        "i": pos, "host": _compact_str(rf["host"].filter(is_cron)), "ppid": _compact_str(rf["pid"].filter(is_cron)),
        "verb": ev["verb"].str.to_lowercase().str.replace_all(" ", "_"),
        "user": ev["user"], "act": pam["act"], "puser": pam["puser"],
        "cpid": arg["cpid"], "acmd": arg["cmd"], "grand": gr["gpid"], "status": gr["status"],
    }).with_columns(
        cname=pl.when(pl.col("verb").is_not_null()).then("cron." + pl.col("verb"))
        .when(pl.col("act").is_not_null()).then("cron.session_" + pl.col("act")),
        user=pl.when(pl.col("user") != "CRON").then(pl.col("user")).otherwise(pl.col("puser")),
        cmd=pl.when(pl.col("verb").is_in(["cmd", "end"])).then(pl.col("acmd")),
    ).drop("act", "puser", "acmd")
    # link "grandchild #N failed" to the CMD that started child N on that host
    cmds = cdf.filter((pl.col("verb") == "cmd") & pl.col("cpid").is_not_null()).select(
        pl.col("i").cast(pl.Int64), "host", pl.col("cpid").alias("grand"), pl.col("cmd").alias("cmd_of"))
    if state is not None:
        prev = state.cron_child.lookup(cdf)
        state.cron_child.add(cmds)
        if prev is not None:
            cmds = pl.concat([prev, cmds.cast(prev.schema)], how="vertical")
    if cmds.height and cdf["grand"].is_not_null().any():
        cdf = cdf.join_asof(cmds.sort("i"), on="i", by=["host", "grand"], strategy="backward",
                             check_sortedness=False)
        cdf = cdf.with_columns(pl.col("cmd").fill_null(pl.col("cmd_of"))).drop("cmd_of")
    # a CRON[pid] process runs one job: its later lines (error, "No MTA installed", session
    # closed) belong to the command of its CMD line
    cmds = cdf.filter((pl.col("verb") == "cmd") & pl.col("ppid").is_not_null()).select(
        pl.col("i").cast(pl.Int64), "host", "ppid", pl.col("cmd").alias("cmd_of"))
    if state is not None:
        prev = state.cron_proc.lookup(cdf)
        state.cron_proc.add(cmds)
        if prev is not None:
            cmds = pl.concat([prev, cmds.cast(prev.schema)], how="vertical")
    if cmds.height:
        cdf = cdf.join_asof(cmds.sort("i"), on="i", by=["host", "ppid"], strategy="backward",
                             check_sortedness=False)
        cdf = cdf.with_columns(pl.col("cmd").fill_null(pl.col("cmd_of"))).drop("cmd_of")
    hostp = pl.col("host").fill_null("-")
    cdf = cdf.with_columns(
        entity=pl.when(pl.col("cmd").is_not_null()).then(pl.lit("cron/") + hostp + "/" + pl.col("cmd")),
        state=pl.when(pl.col("verb") == "cmd").then(pl.lit("started"))
        .when(pl.col("verb") == "end").then(pl.lit("finished"))
        .when(pl.col("status").is_not_null()).then(pl.lit("failed")),
        value=pl.col("status").cast(pl.Float64, strict=False),
    )
    named = cdf["cname"].is_not_null().to_numpy()  # the rows renamed cron.<verb> (tags differ)
    renamed = pos[named]
    name = rf["tag"].scatter(pl.Series(renamed), cdf["cname"].filter(pl.Series(named))) if named.any() else rf["tag"]
    full = {c: _spread_arrow(cdf[c], pos, m) for c in ("entity", "state", "value")}
    kind_state = np.zeros(m, dtype=bool)
    kind_state[pos] = (cdf["state"].is_not_null() & cdf["entity"].is_not_null()).to_numpy()
    parts = [
        (pos, "cron.user", cdf["user"]),
        (pos, "cron.command", cdf["cmd"]),
        (pos, "cron.child_pid", cdf.select(pl.coalesce("cpid", "grand")).to_series()),
    ]
    return name, full["entity"], full["state"], full["value"], parts, kind_state, renamed


register(
    Reader(
        name="syslog",
        description="syslog: RFC 3164/5424, rsyslog RFC 3339 files, UDP/TCP captures, CRON lines",
        sniff=_sniff,
        read=_read,
        options={
            "year": "year of the first RFC 3164 record (no year in the format); default: from the file's mtime",
            "tz": "IANA zone of times without a UTC offset (RFC 3164), e.g. 'Europe/Berlin'; default UTC",
        },
        extensions=(".log", "syslog", "messages"),
        rotated=True,
    )
)
