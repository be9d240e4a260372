"""strace text output: ``strace [-f|-ff] [-t|-tt|-ttt|-r] [-T] [-y|-yy] [-o FILE]``.

One row per syscall, signal, exit and strace message, in file order.

Line forms read (any mix of these prefixes, then the body)::

    [pid  1234] 12:00:00.123456 read(3</etc/passwd>, "x"..., 8192) = 8192 <0.000012>
    1234 1710406800.123456 openat(AT_FDCWD, "/nope", O_RDONLY) = -1 ENOENT (No such file ...)
         0.000232 brk(NULL) = 0x5628cf431000                        (-r: delta since previous)
    1234 read(3,  <unfinished ...>           ...    1234 <... read resumed>"ab", 8192) = 2
    --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, ...} ---
    +++ exited with 0 +++        +++ killed by SIGKILL (core dumped) +++
    strace: Process 1234 attached

Columns: ``name`` = syscall (``????`` kept), signal name, ``exit``, ``killed``, ``attached``
/ ``detached`` (or ``strace`` for other strace messages); ``category`` = ``syscall``,
``signal``, ``process`` (``+++ ... +++``) or ``strace`` (its own messages); ``kind`` = ``span`` when a duration
is known (``-T``, or an unfinished/resumed pair), else ``instant``; strace messages are
``marker``. ``message`` = the raw argument text (``-y``/``-yy`` fd annotations kept; for a
signal its ``{siginfo}``); ``value`` = the numeric return value (hex parsed; null for ``?``)
or the exit code; ``attrs``: ``retval`` (raw return text), ``errno``, ``errno_text``,
``signal``, ``core_dumped``, ``tk.unmatched`` (``unfinished``: the trace ended inside the
call; ``resumed``: a resumed line without its start; ``detached``: ``<detached ...>``, strace
let go of the process inside the call), ``tk.ts`` = ``inherited`` (strace
messages carry no time: they take the previous line's), ``tk.pid`` = ``file name`` /
``inferred``. ``state`` = ``exec`` (successful execve) or ``exit`` (``exit`` and ``killed``
rows), as the ftrace reader names them. The ``exit`` syscall row shares the name ``exit``
with the ``+++ exited +++`` row; its ``state`` is null.

Processes: ``tid`` is the id strace prints (with ``-f`` it is a thread id); ``pid`` is the
thread-group id where the trace shows it (the child of a ``clone(...CLONE_THREAD...)`` belongs
to its caller's group), else the printed id. With ``-ff`` the id comes from the file name
suffix (``trace.1234``; two digits at least, as ``.1`` is a logrotate suffix), when no line
shows a pid. Lines of a ``-f`` trace printed without ``[pid N]`` (strace omits it
while only one process is traced) are given the root process: the one id seen in prefixes that
was never attached or returned by clone/fork. ``entity`` = ``proc/<host>/<pid>@<start>`` with
``<host>`` ``?`` (strace does not write it; ``tk.load(host=...)`` fills it and the ``host``
column) and ``<start>`` the ``ts_src`` (int
ns) at which that pid is first seen in the file (a pid seen again after its exit starts a new
entity). A thread whose creating clone is not in the trace keeps its own id as ``pid``; the
``attached``/``detached`` markers of ``strace:`` messages carry the pid they name.

Times: ``-ttt`` is epoch (clock ``realtime``); ``-t``/``-tt`` carry no date: ``date=``
(``YYYY-MM-DD``, the date of the first line) or, by default, the date that puts the last line
at or before the file's mtime; midnight roll-overs (a step back of over 12 h) add a day; ``tz=``
(default UTC) gives the zone; both recorded in ``meta["assumed"]``. ``-r`` deltas are summed into
a ``relative`` clock from the first line. Without timestamps ``ts_src`` is the line's ordinal
(0, 1, 2 ... ns) in a ``relative`` clock with ``ts_prec`` null (order only, no durations):
rows are kept rather than rejected, as the order and the calls are the evidence. A line whose
time is missing or in another form than the file's is rejected.

Unfinished/resumed: each ``<unfinished ...>`` is paired with the next ``<... X resumed>`` of the
same pid and syscall (no other unfinished of that pid and syscall between); the row starts at
the unfinished line, its args are both halves joined, its result comes from the resumed line,
``dur`` is the resumed line's ``-T`` or else the time between the two lines.

Accounting: one record per non-blank line. The ``-c``/``-C`` summary table is ``metadata``
(its text in ``meta["extra"]["summary"]``). A matched ``<... X resumed>`` line, and the rest of
a syscall line that strace split (``clone(...SIGCHLDstrace: Process 2370 attached`` then
``, child_tidptr=...) = 2370`` on a later line) are ``merged`` (``line``/``line_end`` give both
lines); a message spliced into a syscall line becomes its own marker row. Anything else that is
not an strace line is a reject.

Vectorised (polars, chunks of lines on two threads; no Python loop per line): the common lines
(a syscall with its result, a resumed call with its result, an unfinished call) are read by
position: a short one-pass pattern for the pid/time/name head, an end-anchored one for the
result and duration, the arguments the slice between (:func:`_fast`); the other lines (signals,
exits, strace messages, odd lines) by the full line patterns, which read the common lines the
same way (tests compare the two). Pairing by a sort on (pid, syscall, line) (a radix sort of
the pids' ranks and syscall codes). The message column is taken on another thread while the
other output columns are made.

Example::

    >>> import tracekit as tk                                    # doctest: +SKIP
    >>> tl = tk.load("trace.2499", date="2026-11-27", host="vm")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import OptionError
from ..schema import conform
from ._base import (
    Input,
    Lines,
    Reader,
    ReadResult,
    empty_rejects,
    make_rejects,
    register,
    split_lines,
)

NS = 1_000_000_000
DAY = 86400 * NS
CHUNK = 1 << 17  # lines per chunk (bounds the memory of the extracted columns)

_LINE_RE = (
    r"^(?:\[pid +)?(?:(?P<pid>\d+)\]? +)?"
    r"(?: *(?P<t>\d\d:\d\d:\d\d(?:\.\d+)?|\d+\.\d+) +)?"
    r"(?:(?P<res><\.\.\. )?(?P<name>[A-Za-z_?][\w?]*)(?: resumed>|\()"
    r"(?:(?P<args>.*)\) += (?P<ret>.*?)|(?P<uargs>.*?)(?P<unf> ?<(?:unfinished|detached) \.\.\.>)?)"
    r"|--- (?P<sig>.*?) ---|\+\+\+ (?P<exit>.*?) \+\+\+|strace: (?P<smsg>.*?))"
    r"(?: <(?P<dur>\d+\.\d+)>)?\r?\n?$"
)
#: a syscall line with its result (the common line): where it matches, its groups are those
#: _LINE_RE gives (a result without ``<``/CR is read alike by the lazy ``ret`` and this greedy
#: one; ASCII digits, so a line with other digits goes to _LINE_RE); several times faster
_FAST_RE = (
    r"^(?:\[pid +)?(?:(?P<pid>[0-9]+)\]? +)?"
    r"(?: *(?P<t>[0-9][0-9]:[0-9][0-9]:[0-9][0-9](?:\.[0-9]+)?|[0-9]+\.[0-9]+) +)?"
    r"(?P<res><\.\.\. )?(?P<name>[A-Za-z_?][\w?]*)(?: resumed>|\()(?P<args>.*)\) += (?P<ret>[^<\r\n]*)"
    r"(?: <(?P<dur>[0-9]+\.[0-9]+)>)?\r?\n?$"
)
#: the start of a common line (see :func:`_fast`): pid, time, then ``name(`` or ``<... name
#: resumed>``, in ASCII. The pid/time alternatives are told apart by the byte after the first
#: digits (a space: a pid; ``.`` or ``:``: a time, ``a`` + ``c``), so every step is decided by
#: one byte (a one-pass pattern: its groups cost little). Two-digit hours are checked after.
_TFRAC = r"(?:\.[0-9]+|:[0-9][0-9]:[0-9][0-9](?:\.[0-9]+)?)"
_TIME1 = r"[0-9](?:\.[0-9]+|[0-9](?::[0-9][0-9]:[0-9][0-9](?:\.[0-9]+)?|[0-9]*\.[0-9]+))"
_HEAD_ALT = r"(?P<a>[0-9]+)(?: +(?:(?P<b>" + _TIME1 + r") +)?|(?P<c>" + _TFRAC + r") +)| +(?P<d>" + _TIME1 + r") +"
_HEAD_NAME = r"(?:<\.\.\. (?P<nr>[A-Za-z_?][A-Za-z0-9_?]*) resumed>|(?P<ns>[A-Za-z_?][A-Za-z0-9_?]*)\()"
_HEAD_RE = r"^(?:" + _HEAD_ALT + r")?" + _HEAD_NAME
#: the same with ``[pid  N] `` (``strace -f`` to stderr), for chunks that have such lines
_HEAD_PID_RE = (r"^(?:\[pid +(?P<e>[0-9]+)\] +(?:(?P<f>" + _TIME1 + r") +)?|" + _HEAD_ALT + r")?" + _HEAD_NAME)
#: the end of a common line with a result (no ``=`` or ``<`` in the result)
_TAIL_RE = r"\) += [^=<\r\n]*(?: <[0-9]+\.[0-9]+>)?\r?\n?$"
#: the same, with the result (and the space before a duration) and the duration's parts
_TAILG_RE = r"\) += (?P<ret>[^=<\r\n]*)(?:<(?P<ds>[0-9]+)\.(?P<df>[0-9]+)>)?\r?\n?$"
#: the end of an unfinished call
_UNF_RE = r" ?<(?:unfinished|detached) \.\.\.>\r?\n?$"
_LINE_GROUPS = re.findall(r"\(\?P<(\w+)>", _LINE_RE)
_RET_RE = r"^(?P<num>0x[0-9a-fA-F]+|-?\d+)?\S*(?: (?P<errno>E[A-Z][A-Z0-9_]*) \((?P<etext>.*)\))?"
_SPLICE_RE = r"^(?P<head>.*?)strace: (?P<msg>Process \d+ (?:attached|detached).*)\r?\n?$"
#: the -c/-C summary table: header, rules, one row per syscall, total
_SUMMARY_RE = (r"^(?:% time +seconds +usecs/call +calls +errors +syscall|-{6} -{11} -{11} .*"
               r"|\s*\d+\.\d+ +\d+\.\d+ +\d+ +\d+ +(?:\d+ +)?[\w?]+)\s*$")
_MSG_RE = r"^Process (?P<p>\d+) (?P<w>attached|detached|suspended|resumed)"
_EXIT_RE = r"^(?:exited with (?P<code>-?\d+)|killed by (?P<ksig>\S+)(?P<core> \(core dumped\))?)"

# row types
NONE, SYSCALL, UNFIN, RESUMED, HEAD, SIGNAL, EXIT, MSG = range(8)

_SNIFF_RE = re.compile(
    r"^(?:\[pid +\d+\] +|\d+ +)?(?: *(?:\d\d:\d\d:\d\d(?:\.\d+)?|\d+\.\d+) +)?"
    r"(?:[a-z_?][\w?]*\(.*(?:\) += .+|<(?:unfinished|detached) \.\.\.>)"
    r"|<\.\.\. [\w?]+ resumed>.*|--- SIG\w+ .*---|\+\+\+ (?:exited with -?\d+|killed by \S+.*) \+\+\+)$"
)
_SNIFF_MSG = re.compile(r"^strace: ")


def _sniff(head: bytes, name: str) -> float:
    """Confidence that ``head`` is strace output: the share of its first lines in strace form.

    Example::

        >>> _sniff(b'1234 1710406800.5 close(3) = 0 <0.000002>\\n', "x")
        0.9
    """
    lines = head.split(b"\n")
    if len(head) >= 65536 and len(lines) > 1:
        lines = lines[:-1]  # cut by the head limit
    text = [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines[:60]]
    text = [t for t in text if t.strip()]
    if not text:
        return 0.0
    hits = sum(1 for t in text if _SNIFF_RE.match(t))
    msgs = sum(1 for t in text if _SNIFF_MSG.match(t))
    if hits == 0:  # a -c summary on its own
        return 0.9 if text[0].startswith("% time") and re.match(_SUMMARY_RE, text[0]) else 0.0
    share = (hits + msgs) / len(text)
    if share >= 0.6:
        return 0.9
    return 0.6 * share


# --------------------------------------------------------------------------- extraction

_STR_COLS = ("name", "args", "ret", "errno", "etext", "other")
_NUM_COLS = ("typ", "pid", "tkind", "tns", "flen", "hasdur", "det", "dur", "value")


def _time_exprs(t: pl.Expr) -> dict[str, pl.Expr]:
    """``tkind`` / ``tns`` / ``flen`` from the time text (``-t``, ``-tt``, ``-ttt`` or ``-r``)."""
    tp = t.str.split_exact(".", 1)
    head = tp.struct.field("field_0")  # "22:46:14" or "1710406800"
    frac = tp.struct.field("field_1")
    colon = (head.str.len_bytes() == 8) & head.str.contains(":", literal=True)
    hms = (head.str.slice(0, 2).cast(pl.Int64, strict=False) * 3600
           + head.str.slice(3, 2).cast(pl.Int64, strict=False) * 60
           + head.str.slice(6, 2).cast(pl.Int64, strict=False))
    secs = pl.when(colon).then(hms).otherwise(head.str.to_integer(strict=False)).fill_null(0)
    return {
        "tkind": pl.when(t.is_null()).then(0).when(colon).then(1)
        .when(head.str.len_bytes() >= 9).then(2).otherwise(3).cast(pl.Int8),
        "tns": secs * NS + _frac_expr(frac),
        "flen": frac.str.len_bytes().fill_null(0).cast(pl.Int8),
    }


def _dur_expr(dur: pl.Expr) -> pl.Expr:
    """``-T`` text ("0.000040") → ns (null → 0)."""
    dp = dur.str.split_exact(".", 1)
    return (dp.struct.field("field_0").str.to_integer(strict=False).fill_null(0) * NS
            + _frac_expr(dp.struct.field("field_1")))


def _value_expr(num: pl.Expr) -> pl.Expr:
    """The result's number (decimal or ``0x`` hex) as a float; null where there is none."""
    return (pl.when(num.str.starts_with("0x"))
            .then(num.str.slice(2).str.to_integer(base=16, strict=False).cast(pl.Float64))
            .otherwise(num.str.to_integer(strict=False).cast(pl.Float64)))


def _time_fast(t: pl.Expr, dot: pl.Expr, frac: pl.Expr) -> dict[str, pl.Expr]:
    """:func:`_time_exprs` for a time of the forms :data:`_HEAD_RE` admits (``HH:MM:SS[.f]``
    or ``S.f``; ``dot`` the position of its ``.``, ``frac`` the digits after it), by position:
    the same values."""
    head_len = pl.coalesce(dot, t.str.len_bytes().cast(pl.Int64))
    colon = t.str.slice(2, 1) == ":"
    hms = (t.str.slice(0, 2).cast(pl.Int64, strict=False) * 3600
           + t.str.slice(3, 2).cast(pl.Int64, strict=False) * 60
           + t.str.slice(6, 2).cast(pl.Int64, strict=False))
    secs = pl.when(colon).then(hms).otherwise(t.str.slice(0, dot).str.to_integer(strict=False)).fill_null(0)
    return {
        "tkind": pl.when(t.is_null()).then(0).when(colon).then(1)
        .when(head_len >= 9).then(2).otherwise(3).cast(pl.Int8),
        "tns": secs * NS + _frac9(frac),
        "flen": frac.str.len_bytes().fill_null(0).cast(pl.Int8),
    }


def _frac9(digits: pl.Expr) -> pl.Expr:
    """:func:`_frac_expr` for a string of ASCII digits (or null): the first nine as ns."""
    n = digits.str.len_bytes().cast(pl.Int64).clip(0, 9)
    mult = pl.lit(10, pl.Int64).pow(9 - n)  # (integer powers: no float pass)
    return (digits.str.slice(0, 9).str.to_integer(strict=False) * mult).fill_null(0)


def _fast(s: pl.Series) -> pl.DataFrame:
    """The columns of :func:`_extract` for the common lines, found by position, plus ``fast``
    (the line is one of them; elsewhere the other columns are meaningless) and ``rx`` (a
    result that is not a plain number: :data:`_RET_RE` reads it).

    A common line is ASCII and starts with :data:`_HEAD_RE` (pid or ``[pid N]``, time, ``name(`` or
    ``<... name resumed>``; written so that each byte decides the next step, which the regex
    engine captures in one pass), then either ends with :data:`_TAIL_RE` (``) = ret <dur>``
    with no ``=`` or ``<`` in the result, so the ``) =`` found is the last one in the line,
    where the greedy ``args`` of :data:`_FAST_RE` stops) or, for a call that is not resumed
    and has no ``) =`` anywhere, with ``<unfinished ...>`` / ``<detached ...>``. The arguments
    are the slice between the head and that end: the same text the line patterns capture."""
    c = pl.col("s")
    h = pl.col("h")
    r = pl.col("r")
    tp = pl.col("tp").cast(pl.Int64)
    uf = pl.col("uf").cast(pl.Int64)
    bracket = bool(s.str.starts_with("[pid ").any())
    # the searches over whole lines
    g = pl.LazyFrame({"s": s}).with_columns(
        h=c.str.extract_groups(_HEAD_PID_RE if bracket else _HEAD_RE),
        r=c.str.extract_groups(_TAILG_RE),
        pe=c.str.find("(", literal=True),
        rs=c.str.find(" resumed>", literal=True),
        tp=c.str.find(_TAIL_RE),
        uf=c.str.find(_UNF_RE),
        # ASCII (positions in bytes are positions in characters), no line break but a last one
        asc=(c.str.len_bytes() == c.str.len_chars())
        & (c.str.find("\n", literal=True).cast(pl.Int64).fill_null(1 << 40)
           >= c.str.len_bytes().cast(pl.Int64) - 1),
    ).collect()
    # what only some traces have is computed only where the chunk has it
    hs = g["h"].struct
    first_time = hs.field("c").null_count() < len(g)  # "1710406800.5 read(": a time without a pid
    resumed = hs.field("nr").null_count() < len(g)
    unfinished = bool((g["tp"].is_null() & g["uf"].is_not_null()).any())
    res = h.struct.field("nr").is_not_null()
    hd = h.struct.field("c")
    # the time: after the pid, or the whole first token (split in two there), or after spaces
    times = [h.struct.field("b"), h.struct.field("d")]
    if first_time:
        times.insert(1, pl.when(hd.is_not_null()).then(pl.concat_str([h.struct.field("a"), hd])))
    pid = pl.when(hd.is_null()).then(h.struct.field("a"))
    if bracket:
        times.insert(0, h.struct.field("f"))
        pid = pl.coalesce(h.struct.field("e"), pid)
    t = pl.coalesce(*times)
    hl = pl.col("pe").cast(pl.Int64) + 1
    if resumed:
        hl = pl.when(res).then(pl.col("rs").cast(pl.Int64) + 9).otherwise(hl)
    # (lengths clipped: on lines that are not common ones the positions mean nothing)
    args = c.str.slice(hl, ((pl.when(tp.is_not_null()).then(tp).otherwise(uf) if unfinished else tp) - hl).clip(0))
    ret = r.struct.field("ret")
    ds = r.struct.field("ds")
    # with a duration, the result's last character is the space before it
    ret = pl.when(ds.is_not_null()).then(ret.str.strip_suffix(" ")).otherwise(ret)
    ok_end = tp.is_not_null()
    if resumed:  # a resumed call that died inside ("<... read resumed> <unfinished ...>) = ?"): the regexes
        ok_end = pl.when(res).then(ok_end & ~c.str.contains("resumed> <unfinished ...>", literal=True)).otherwise(ok_end)
    det = pl.lit(False)
    if unfinished:  # an unfinished call (not resumed) with no ") =" anywhere in the line
        ok_end = ok_end | (uf.is_not_null() & ~c.str.contains(r"\) += ") & ~res)
        det = (tp.is_null() & c.str.contains(r"<detached \.\.\.>\r?\n?$")).fill_null(False)
    f = (
        g.lazy()
        .with_columns(ret=ret, t=t, args=args)
        .with_columns(dot=pl.col("t").str.find(".", literal=True).cast(pl.Int64))
        .with_columns(frac=pl.col("t").str.slice(pl.col("dot") + 1))
        .select(
            fast=(pl.col("asc") & pl.coalesce(h.struct.field("nr"), h.struct.field("ns")).is_not_null()
                  & (hd.is_null() | hd.str.starts_with(".") | (h.struct.field("a").str.len_bytes() == 2))
                  & ok_end).fill_null(False),
            typ=pl.when(res).then(RESUMED).when(tp.is_not_null()).then(SYSCALL).otherwise(UNFIN).cast(pl.Int8),
            pid=pid.str.to_integer(strict=False).fill_null(-1),
            **_time_fast(pl.col("t"), pl.col("dot"), pl.col("frac")),
            hasdur=ds.is_not_null(),
            det=det,
            dur=(ds.str.to_integer(strict=False).fill_null(0) * NS + _frac9(r.struct.field("df"))),
            value=_value_expr(pl.col("ret")),
            name=pl.coalesce(h.struct.field("nr"), h.struct.field("ns")),
            args=pl.col("args"),
            ret=pl.col("ret"),
            errno=pl.lit(None, pl.String),
            etext=pl.lit(None, pl.String),
            other=pl.lit(None, pl.String),
            rx=~pl.col("ret").str.contains(r"^(?:0x[0-9a-fA-F]+|-?[0-9]+)$"),
        )
    )
    return f.collect()


def _by_regex(s: pl.Series) -> pl.DataFrame:
    """The columns of :func:`_extract` by the line patterns (:data:`_FAST_RE`, then
    :data:`_LINE_RE` where it misses): the lines :func:`_fast` does not read."""
    g = pl.LazyFrame({"s": s}).select(pl.col("s").str.extract_groups(_FAST_RE)).unnest("s").collect()
    miss = g["name"].is_null()
    g = g.with_columns([pl.lit(None, pl.String).alias(c) for c in _LINE_GROUPS if c not in g.columns])
    if miss.any():  # signals, exits, messages, unfinished calls, odd lines: the full pattern
        pos = pl.Series(np.flatnonzero(miss.to_numpy()))
        full = pl.LazyFrame({"s": s.gather(pos)}).select(pl.col("s").str.extract_groups(_LINE_RE)).unnest("s")
        full = full.collect()
        g = g.with_columns([g[c].scatter(pos, full[c]) for c in full.columns])
    typ = (
        pl.when(pl.col("name").is_null())
        .then(
            pl.when(pl.col("sig").is_not_null()).then(SIGNAL)
            .when(pl.col("exit").is_not_null()).then(EXIT)
            .when(pl.col("smsg").is_not_null()).then(MSG)
            .otherwise(NONE)
        )
        .when(pl.col("res").is_not_null()).then(RESUMED)
        .when(pl.col("ret").is_not_null()).then(SYSCALL)
        .when(pl.col("unf").is_not_null()).then(UNFIN)
        .otherwise(HEAD)
        .cast(pl.Int8)
    )
    return (
        g.lazy()
        .with_columns(rg=pl.col("ret").str.extract_groups(_RET_RE))
        .select(
            typ=typ,
            pid=pl.col("pid").str.to_integer(strict=False).fill_null(-1),
            **_time_exprs(pl.col("t")),
            hasdur=pl.col("dur").is_not_null(),
            det=pl.col("unf").str.contains("detached", literal=True).fill_null(False),
            dur=_dur_expr(pl.col("dur")),
            value=_value_expr(pl.col("rg").struct.field("num")),
            name=pl.col("name"),
            # "<... X resumed> <unfinished ...>) = ?": the process died inside the call
            args=pl.when(pl.col("res").is_null()).then(pl.coalesce(pl.col("args"), pl.col("uargs")))
            .otherwise(pl.col("args").str.strip_prefix(" <unfinished ...>")),
            ret=pl.col("ret"),
            errno=pl.col("rg").struct.field("errno"),
            etext=pl.col("rg").struct.field("etext"),
            other=pl.coalesce(pl.col("sig"), pl.col("exit"), pl.col("smsg")),
        )
        .collect()
    )


def _extract(text: pa.Array | pl.Series) -> dict[str, Any]:
    """Extract one chunk of lines into compact columns: numpy arrays for numbers, Arrow
    string arrays for text (no polars string views are kept: they cost 16 bytes a cell).
    The common lines by position (:func:`_fast`), the others by the line patterns."""
    s = text if isinstance(text, pl.Series) else pl.from_arrow(text)
    # lazy all the way: collect() releases the GIL, so chunks run on both cores
    out = _fast(s)
    fast = out["fast"].to_numpy()
    rx = out["rx"].fill_null(False).to_numpy() & fast
    out = out.drop("fast", "rx")
    if not fast.all():
        pos = np.flatnonzero(~fast)
        slow = _by_regex(s.gather(pos))
        ps = pl.Series(pos)
        out = out.with_columns([out[c].scatter(ps, slow[c]) for c in out.columns])
    if rx.any():  # "-1 ENOENT (No such file or directory)", "0 (Timeout)", "?": the result pattern
        pos = np.flatnonzero(rx)
        rg = out["ret"].gather(pos).str.extract_groups(_RET_RE).struct.unnest()
        ps = pl.Series(pos)
        val = rg.select(_value_expr(pl.col("num"))).to_series()
        out = out.with_columns(out["value"].scatter(ps, val), out["errno"].scatter(ps, rg["errno"]),
                               out["etext"].scatter(ps, rg["etext"]))
    res: dict[str, Any] = {}
    for c in out.columns:
        col = out[c]
        if c in _STR_COLS:
            res[c] = _arrow_str(col) if isinstance(text, pa.Array) else col
        elif c == "value":
            res[c] = col.fill_null(np.nan).to_numpy().astype(np.float64)
        else:
            res[c] = col.to_numpy()
    return res


def _arrow_str(s: pl.Series) -> pa.Array:
    """A polars string Series → one Arrow ``large_string`` array."""
    a = s.to_arrow()
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    return a.cast(pa.large_string())


def _frac_expr(frac: pl.Expr) -> pl.Expr:
    """Fraction digit strings → ns (``"5"`` → 500000000; null → 0)."""
    return frac.str.pad_end(9, "0").str.slice(0, 9).cast(pl.Int64, strict=False).fill_null(0)


def _parse_all(text: pa.Array) -> dict[str, Any]:
    """:func:`_extract` over chunks of lines on two threads, concatenated."""
    n = len(text)
    step = min(CHUNK, max(4000, -(-n // 2)))  # two parts at least: a block of lines uses both cores
    parts = [text.slice(i, step) for i in range(0, n, step)] or [text]
    if len(parts) == 1:
        frames = [_extract(parts[0])]
    else:
        with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as ex:
            frames = list(ex.map(_extract, parts))
    res: dict[str, Any] = {}
    for c in list(frames[0]):
        if c in _STR_COLS:
            res[c] = pa.concat_arrays([f.pop(c) for f in frames]) if len(frames) > 1 else frames[0][c]
        else:
            res[c] = np.concatenate([f[c] for f in frames])
    return res


class _Str:
    """A string column (one Arrow array) plus a row → position index, so rows can be redirected
    (to a partner row's value, or to values added later) without rewriting the column. The
    index is made on the first redirect (until then row i is position i)."""

    def __init__(self, base: pa.Array, n: int):
        self.base = base
        self.n = n
        self.extras: list[pa.Array] = []
        self.size = len(base)
        self._idx: np.ndarray | None = None

    @property
    def idx(self) -> np.ndarray:
        if self._idx is None:
            self._idx = np.arange(self.n, dtype=np.int64)
        return self._idx

    def set(self, rows: np.ndarray, values: pa.Array) -> None:
        self.idx[rows] = self.size + np.arange(len(values), dtype=np.int64)
        self.extras.append(values.cast(pa.large_string()))
        self.size += len(values)

    def get(self, rows: np.ndarray) -> pa.Array:
        pos = rows if self._idx is None else self._idx[rows]
        if not self.extras:
            return self.base.take(pa.array(pos))
        # one take over the base and the added values as chunks (no copy of the base, no
        # second pass to put the added values in)
        out = pa.chunked_array([self.base, *self.extras]).take(pa.array(pos))
        return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out

    def present(self, rows: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """The ``rows`` whose value is not null, and those values (the non-null cells of
        :meth:`get`, without taking the nulls of a mostly null column)."""
        pos = rows if self._idx is None else self._idx[rows]
        valid = np.concatenate([np.asarray(a.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                                for a in (self.base, *self.extras)])
        ok = valid[pos]
        return rows[ok], self.get(rows[ok])


def _prec(flen: np.ndarray) -> np.ndarray:
    f = np.minimum(flen.astype(np.int64), 9)
    return np.where(f > 0, 10 ** (9 - f), NS).astype(np.int64)


def _parse_date(value: Any, path: str) -> int:
    """A ``date=`` option → days since the epoch."""
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return (value - _dt.date(1970, 1, 1)).days
    m = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2})\s*", str(value))
    if not m:
        raise OptionError(f"{path}: date must be YYYY-MM-DD, not {value!r}")
    try:
        d = _dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as e:
        raise OptionError(f"{path}: date {value!r}: {e}") from None
    return (d - _dt.date(1970, 1, 1)).days


def _zone(tz: str, path: str) -> _dt.tzinfo:
    if tz.upper() in ("UTC", "Z", "GMT"):
        return _dt.timezone.utc
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", tz)
    if m:
        off = (int(m[2]) * 60 + int(m[3])) * (-1 if m[1] == "-" else 1)
        return _dt.timezone(_dt.timedelta(minutes=off))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz)
    except Exception:  # ZoneInfoNotFoundError, ValueError
        raise OptionError(f"{path}: unknown tz {tz!r} (use an IANA name like 'Europe/Berlin', "
                          "'UTC' or '+01:00')") from None


def _local_to_utc(local_ns: np.ndarray, tz: str, zone: _dt.tzinfo) -> np.ndarray:
    if zone is _dt.timezone.utc:
        return local_ns
    if isinstance(zone, _dt.timezone):
        off = zone.utcoffset(None)
        return local_ns - (off.days * 86400 + off.seconds) * NS
    arr = pa.array(local_ns, pa.timestamp("ns"))
    aware = pc.assume_timezone(arr, timezone=tz, ambiguous="earliest", nonexistent="earliest")
    return aware.cast(pa.int64()).to_numpy()


def _date_from_mtime(mtime: float | None, zone: _dt.tzinfo, last_sod_ns: int, rolls: int) -> int:
    """Days since the epoch of the first line: the last line's date is the mtime's local date,
    or the day before when the last line's time of day is after the mtime's."""
    if mtime is None:
        return 0
    local = _dt.datetime.fromtimestamp(mtime, tz=zone)
    d = (local.date() - _dt.date(1970, 1, 1)).days
    sod = (local.hour * 3600 + local.minute * 60 + local.second) * NS + local.microsecond * 1000
    if last_sod_ns > sod + 60 * NS:
        d -= 1
    return d - rolls


# --------------------------------------------------------------------------- attrs


def _attrs(cols: dict[str, tuple[np.ndarray, pa.Array] | None], n: int) -> pa.Array:
    """``map<string,string>`` rows from per-key (sorted row indices, values) pairs.

    Example::

        >>> _attrs({"a": (np.array([1]), pa.array(["x"]))}, 2).to_pylist()
        [[], [('a', 'x')]]
    """
    keys = [(k, v) for k, v in cols.items() if v is not None and len(v[0])]
    if not keys:
        return pa.MapArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)),
                                       pa.array([], pa.string()), pa.array([], pa.string()))
    counts = np.zeros(n, dtype=np.int64)
    for _, (rows, _v) in keys:
        counts[rows] += 1
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    fill = offsets[:-1].astype(np.int64)
    key_at = np.empty(total, dtype=np.int32)
    val_at = np.empty(total, dtype=np.int64)
    base = 0
    for j, (_, (rows, _vals)) in enumerate(keys):
        pos = fill[rows]
        key_at[pos] = j
        val_at[pos] = base + np.arange(len(rows))
        fill[rows] += 1
        base += len(rows)
    allvals = pa.chunked_array([v.cast(pa.large_string()) for _, (_r, v) in keys], pa.large_string())
    values = allvals.take(pa.array(val_at)).combine_chunks().cast(pa.string())
    karr = pa.DictionaryArray.from_arrays(pa.array(key_at), pa.array([k for k, _ in keys])).cast(pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), karr, values)


def _const(rows: np.ndarray, value: str) -> tuple[np.ndarray, pa.Array]:
    return rows, pa.repeat(pa.scalar(value, pa.large_string()), len(rows))


def _read(
    inp: Input,
    date: Any = None,
    tz: str = "UTC",
    pid: int | None = None,
) -> ReadResult:
    if (inp.size or 0) > BLOCKS_ABOVE:
        from .._stream import Fallback, read_strace

        try:
            parts = list(read_strace(inp, date, tz, pid, LOAD_BLOCK))
        except Fallback:
            parts = []
        if parts:
            rej = [p.rejects for p in parts if p.rejects is not None and p.rejects.num_rows]
            return ReadResult(
                events=pa.concat_tables([p.events if isinstance(p.events, pa.Table) else conform(p.events)
                                         for p in parts]),
                records=sum(p.records for p in parts), emitted=sum(p.emitted for p in parts),
                merged=sum(p.merged for p in parts), metadata=sum(p.metadata for p in parts),
                rejects=pa.concat_tables(rej) if rej else empty_rejects(), meta=parts[-1].meta)
    return read_lines(inp, split_lines(inp), date, tz, pid)


#: inputs larger than this are read in blocks (:mod:`tracekit._stream`): the same table, with
#: the regex groups and intermediates of one block at a time (not below: the first pass over
#: the unfinished/resumed lines costs about a third of the read)
BLOCKS_ABOVE = 256 << 20
LOAD_BLOCK = 8 << 20


@dataclass
class BlockState:
    """What a block of a file read in pieces (:mod:`tracekit._stream`) hands to the next (and
    what the driver gives it: ``consumed`` resumed lines already read with an earlier block,
    ``n_real`` lines of the block's own before the partner lines appended to it)."""

    consumed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_real: int | None = None
    mode: int | None = None
    modes_used: set = field(default_factory=set)
    counts: np.ndarray = field(default_factory=lambda: np.zeros(4, np.int64))
    last_ts: int | None = None
    rel: int = 0
    rolls: int = 0
    last_sod: int | None = None
    any_pid: bool = False
    unk_seen: bool = False
    file_pid: bool = False
    tgid: dict = field(default_factory=dict)
    seen_tids: set = field(default_factory=set)
    ent_start: dict = field(default_factory=dict)
    markers: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    assumed: dict = field(default_factory=dict)


def read_lines(inp: Input, lines: Lines, date: Any = None, tz: str = "UTC", pid: int | None = None,
               state: BlockState | None = None) -> ReadResult:
    """Read a set of lines (the whole file, or one block of it with ``state``)."""
    from .._stream import Fallback

    zone = _zone(str(tz), inp.path)
    text, lno, offs = lines.text, lines.line, lines.offset
    n = len(text)
    meta: dict[str, Any] = {"assumed": {}}
    if n == 0:
        meta["clock"] = "unknown"
        return ReadResult(events={"ts_src": np.zeros(0, np.int64)}, records=0, emitted=0,
                          rejects=empty_rejects(), meta=meta)
    c = _parse_all(text)
    typ = c.pop("typ").copy()
    strs = {k: _Str(c.pop(k), n) for k in _STR_COLS}
    pid_i, tkind, tns, flen = c["pid"].astype(np.int64), c["tkind"], c["tns"], c["flen"]
    has_dur, dur_ns, value, detached = c["hasdur"], c["dur"], c["value"], c["det"]

    # blank lines are not records
    blank = np.zeros(n, dtype=bool)
    n_meta = 0
    none_idx = np.flatnonzero(typ == NONE)
    if len(none_idx):
        sub = text.take(pa.array(none_idx))
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(sub)), 0)
        blank[none_idx[np.asarray(empty.to_numpy(zero_copy_only=False), dtype=bool)]] = True
        typ[blank] = -1
        summ = np.asarray(pc.match_substring_regex(sub, _SUMMARY_RE).to_numpy(zero_copy_only=False), bool)
        if summ.any():  # the -c/-C table: consumed as metadata, kept in meta["extra"]["summary"]
            si = none_idx[summ]
            typ[si] = -3
            n_meta = len(si)
            table_txt = pc.utf8_rtrim(sub.filter(pa.array(summ)), characters="\r\n").to_pylist()
            meta["extra"] = {"summary": "\n".join(table_txt)}
            if state is not None:
                state.summary.extend(table_txt)
    merged = np.zeros(n, dtype=bool)
    # resumed lines read with the block of their unfinished line (block reading): their time
    # still counts here (strace messages after them inherit it); nothing else does
    pre = np.zeros(n, dtype=bool)
    if state is not None and len(state.consumed):
        pre = np.isin(lno, state.consumed)
        merged |= pre
    n_real = n if state is None or state.n_real is None else state.n_real
    line_end = lno.copy()
    spliced: tuple[np.ndarray, pa.Array] | None = None

    # syscall lines split by strace (a message spliced in, or the program's own stderr)
    heads = np.flatnonzero(typ == HEAD)
    if len(heads):
        spliced = _join_split(c, strs, typ, text, heads, merged, line_end, lno)
        pid_i = c["pid"].astype(np.int64)
    reasons: list[tuple[str, np.ndarray]] = []
    if (typ == HEAD).any():
        reasons.append(("incomplete syscall line (no '= result' and no continuation)", typ == HEAD))
    if (typ == NONE).any():
        reasons.append(("not an strace line", (typ == NONE) & ~merged))

    is_msg = typ == MSG
    row_ok = typ > NONE
    row_ok &= typ != HEAD
    # ---- pids
    msg_idx = np.flatnonzero(is_msg)
    msg_pid = np.full(len(msg_idx), -1, dtype=np.int64)
    msg_word: pa.Array | None = None
    if len(msg_idx):
        mg = pl.from_arrow(strs["other"].get(msg_idx)).str.extract_groups(_MSG_RE).struct.unnest()
        msg_pid = mg["p"].str.to_integer(strict=False).fill_null(-1).to_numpy()
        msg_word = mg["w"].fill_null("strace").to_arrow()
    pid_src = np.zeros(n, dtype=np.int8)  # 0 printed, 1 file name, 2 inferred, 3 option
    unknown = pid_i < 0
    if state is not None and pid is None:  # what the whole file decides, one block cannot
        printed = bool((~unknown & row_ok & ~is_msg).any())
        unseen = bool((unknown & row_ok & ~is_msg).any())
        if (printed and (state.file_pid or state.unk_seen)) or (unseen and (printed or state.any_pid)):
            raise Fallback("lines without a pid in a trace that shows pids")
        state.any_pid |= printed
        state.unk_seen |= unseen
    if pid is not None:
        pid_src[unknown] = 3
        pid_i = np.where(unknown, int(pid), pid_i)
    elif not (~unknown & row_ok & ~is_msg).any():
        m = re.search(r"\.(\d{2,})$", inp.name)  # not ".1": that is a logrotate suffix
        if m:
            pid_src[unknown] = 1
            pid_i = np.where(unknown, int(m[1]), pid_i)
            meta["assumed"]["pid"] = f"{m[1]} (from the -ff file name)"
            if state is not None:
                state.file_pid = True
    unk = (pid_i < 0) & row_ok & ~is_msg
    if unk.any() and (pid_i >= 0).any():
        seen = set(np.unique(pid_i[(pid_i >= 0) & row_ok & ~is_msg]).tolist())
        attached = set(msg_pid[msg_pid >= 0].tolist())
        fk = np.flatnonzero(row_ok & (value > 0))
        forkish = np.asarray(pc.is_in(strs["name"].get(fk), value_set=pa.array(
            ["clone", "clone3", "fork", "vfork"], pa.large_string())).to_numpy(zero_copy_only=False), bool)
        children = set(value[fk[forkish]].astype(np.int64).tolist())
        roots = seen - attached - children
        if len(roots) == 1:
            root = roots.pop()
            pid_i = np.where(unk, root, pid_i)
            pid_src[unk] = 2
            meta["assumed"]["root_pid"] = f"{root} (lines without [pid N])"
    if len(msg_idx):  # strace messages speak of the process they name
        pid_i[msg_idx] = np.where(msg_pid >= 0, msg_pid, pid_i[msg_idx])
        pid_src[msg_idx] = np.where(msg_pid >= 0, 0, pid_src[msg_idx])

    # ---- times
    timed = row_ok & ~is_msg & (tkind > 0)
    counts = np.bincount(tkind[timed], minlength=4)
    mode = int(np.argmax(counts)) if counts.sum() else 0
    if state is not None:  # the first block with times decides; checked against the file's at the end
        state.counts += np.bincount(tkind[:n_real][timed[:n_real]], minlength=4)
        if state.mode is not None:
            mode = state.mode
        elif counts.sum():
            state.mode = mode
        state.modes_used.add(mode)
    if mode:
        wrong = row_ok & ~is_msg & (tkind != mode)
        if wrong.any():
            reasons.append(("timestamp missing or in another format than the rest of the file", wrong))
            row_ok &= ~wrong
    use = row_ok & ~is_msg & (tkind == mode) if mode else np.zeros(n, bool)
    ts = tns
    if mode == 1:
        idx = np.flatnonzero(use)
        sod = tns[idx]
        roll = np.zeros(len(idx), dtype=np.int64)
        if state is not None:
            if date is None:
                raise Fallback("a -t/-tt trace without date= (its date comes from its last line)")
            if len(idx):
                prev = sod[0] if state.last_sod is None else state.last_sod
                roll = np.cumsum(np.diff(sod, prepend=prev) < -DAY // 2) + state.rolls
                real = np.flatnonzero(idx < n_real)
                if len(real):
                    state.rolls, state.last_sod = int(roll[real[-1]]), int(sod[real[-1]])
        elif len(idx) > 1:
            roll[1:] = np.cumsum(np.diff(sod) < -DAY // 2)
        days = np.zeros(n, dtype=np.int64)
        days[idx] = roll
        total_roll = int(roll[-1]) if len(roll) else 0
        if date is not None:
            day0 = _parse_date(date, inp.path)
            how = "date="
        else:
            day0 = _date_from_mtime(inp.mtime, zone, int(sod[-1]) if len(sod) else 0, total_roll)
            how = "from the file's mtime" if inp.mtime is not None else "no date= and no file time"
        meta["assumed"]["date"] = f"{_dt.date(1970, 1, 1) + _dt.timedelta(days=day0)} ({how})"
        meta["assumed"]["tz"] = str(tz)
        ts = _local_to_utc((day0 + days) * DAY + tns, str(tz), zone)
        meta["clock"] = "realtime"
    elif mode == 2:
        meta["clock"] = "realtime"
    elif mode == 3:
        if state is not None and (n_real < n or pre.any()):
            raise Fallback("a -r trace with unfinished calls resumed in another block")
        ts = np.cumsum(np.where(use, tns, 0))
        if state is not None:
            ts += state.rel
            state.rel = int(ts[-1])
        meta["clock"] = "relative"
        meta["note"] = "strace -r: ts_src is the sum of the per-line deltas since the first line"
    else:
        ts = lno - 1  # line ordinal
        meta["clock"] = "relative"
        meta["note"] = "no timestamps: ts_src is the line's ordinal (order only)"
    carried = None if state is None else state.last_ts
    if state is not None and mode:
        ur = np.flatnonzero(use[:n_real])
        if len(ur):
            state.last_ts = int(ts[ur[-1]])
    if mode and is_msg.any():  # strace messages have no time of their own: the previous line's
        first = np.flatnonzero(use)
        if len(first) or carried is not None:
            idx = np.where(use, np.arange(n), -1)
            np.maximum.accumulate(idx, out=idx)
            if carried is not None:
                ts = np.where(idx < 0, carried, ts[np.maximum(idx, 0)])
            else:
                ts = ts[np.where(idx < 0, first[0], idx)]

    # ---- unfinished / resumed pairing (per pid and syscall, in line order)
    is_u = (typ == UNFIN) & row_ok & ~detached  # "<detached ...>": strace let go, no resume
    is_r = (typ == RESUMED) & row_ok & ~pre
    partner = np.full(n, -1, dtype=np.int64)
    if is_u.any() and is_r.any():
        cand = np.flatnonzero(is_u | is_r)
        codes = pc.dictionary_encode(strs["name"].get(cand)).indices.to_numpy(zero_copy_only=False)
        order = _stable_order(pid_i[cand], codes)  # = np.lexsort((cand, codes, pid)): cand ascends
        cs, nm = cand[order], codes[order]
        pp = pid_i[cs]
        ok = is_u[cs[:-1]] & is_r[cs[1:]] & (pp[:-1] == pp[1:]) & (nm[:-1] == nm[1:])
        partner[cs[:-1][ok]] = cs[1:][ok]
    has_p = partner >= 0
    ui = np.flatnonzero(has_p)
    ri = partner[ui]
    merged[ri] = True
    unmatched_u = is_u & ~has_p
    detached_u = (typ == UNFIN) & row_ok & detached
    orphan_r = is_r & ~merged

    # ---- rejects
    rej_mask = np.zeros(n, dtype=bool)
    why = np.empty(n, dtype=object) if reasons else None
    for reason, mask in reasons:
        new = mask & ~rej_mask & ~merged
        why[new] = reason
        rej_mask |= new
    rejects = empty_rejects()
    if rej_mask.any():
        rj = np.flatnonzero(rej_mask)
        raw = pc.utf8_rtrim(text.take(pa.array(rj)), characters="\r\n")
        rejects = make_rejects(inp.name, inp.path, lno[rj], offs[rj], list(why[rj]), raw)
    keep = row_ok & ~rej_mask & ~merged
    records = int(n - blank.sum() - pre.sum())  # the -c table's lines are records too: metadata
    emitted = int(keep.sum())

    # ---- merged rows take the result from their resumed line
    if len(ui):
        for k in ("ret", "errno", "etext"):  # (no redirects elsewhere: a plain take serves)
            strs[k].idx[ui] = ri
        head, tail = strs["args"].get(ui), strs["args"].get(ri)
        # strace writes "read(3,  <unfinished ...>" (the args' own ", " then " <unfinished");
        # a head cut right after its comma gets the space back
        sep = pc.if_else(pc.and_kleene(pc.ends_with(head, ","), pc.invert(pc.starts_with(tail, " "))),
                         pa.scalar(" ", pa.large_string()), pa.scalar("", pa.large_string()))
        joined = pc.binary_join_element_wise(head, sep, tail, pa.scalar("", pa.large_string()),
                                             null_handling="replace")
        strs["args"].set(ui, joined)
        value[ui] = value[ri]
        line_end[ui] = line_end[ri]
        dur_ns[ui] = np.where(has_dur[ri], dur_ns[ri], ts[ri] - ts[ui])
    dur_known = (has_dur & (typ == SYSCALL)) | (has_p & (has_dur[partner] | (mode > 0)))

    # ---- signals, exits, messages: name / message / value / state
    sig_idx = np.flatnonzero(typ == SIGNAL)
    ex_idx = np.flatnonzero(typ == EXIT)
    state_code = np.zeros(n, dtype=np.int8)  # 0 none, 1 exec, 2 exited, 3 killed
    attr_extra: dict[str, tuple[np.ndarray, pa.Array]] = {}
    if len(sig_idx):
        sg = pl.from_arrow(strs["other"].get(sig_idx))
        sname = sg.str.extract(r"^(\S+)", 1).to_arrow()
        strs["name"].set(sig_idx, sname)
        strs["args"].set(sig_idx, sg.str.extract(r"^\S+ (.*)$", 1).to_arrow())
        attr_extra["signal"] = (sig_idx, sname)
    killed_rows = np.zeros(0, np.int64)
    if len(ex_idx):
        other = strs["other"].get(ex_idx)
        eg = pl.from_arrow(other).str.extract_groups(_EXIT_RE).struct.unnest()
        code = eg["code"].cast(pl.Float64, strict=False).to_numpy()
        exited = ~np.isnan(code)
        killed = eg["ksig"].is_not_null().to_numpy()
        value[ex_idx[exited]] = code[exited]
        state_code[ex_idx[exited]] = 2
        state_code[ex_idx[killed]] = 3
        word = pl.from_arrow(other).str.extract(r"^(\S+)", 1)
        names = pl.select(pl.when(pl.Series(exited)).then(pl.lit("exit"))
                          .when(pl.Series(killed)).then(pl.lit("killed")).otherwise(word)).to_series()
        strs["name"].set(ex_idx, names.to_arrow())
        strs["args"].set(ex_idx, other)
        killed_rows = ex_idx[killed]
        if killed.any():
            ks = eg["ksig"].filter(pl.Series(killed)).to_arrow()
            prev = attr_extra.get("signal")
            if prev is None:
                attr_extra["signal"] = (killed_rows, ks)
            else:  # merge two sorted row lists
                rows = np.concatenate([prev[0], killed_rows])
                o = np.argsort(rows, kind="stable")
                attr_extra["signal"] = (rows[o], pa.concat_arrays(
                    [prev[1].cast(pa.large_string()), ks.cast(pa.large_string())]).take(pa.array(o)))
            core = eg["core"].filter(pl.Series(killed)).is_not_null().to_numpy()
            if core.any():
                attr_extra["core_dumped"] = _const(killed_rows[core], "true")
    if len(msg_idx):
        strs["name"].set(msg_idx, msg_word)
        strs["args"].set(msg_idx, strs["other"].get(msg_idx))
    ex_cand = np.flatnonzero(keep & (value == 0) & ((typ == SYSCALL) | has_p))
    if len(ex_cand):
        isexec = pc.is_in(strs["name"].get(ex_cand), value_set=pa.array(["execve", "execveat"],
                                                                        pa.large_string()))
        state_code[ex_cand[np.asarray(isexec.to_numpy(zero_copy_only=False), bool)]] = 1

    # ---- tgid: the child of clone(...CLONE_THREAD...) = N is in its caller's thread group
    tid_i = pid_i.copy()
    cl = np.flatnonzero(keep & (value > 0) & ((typ == SYSCALL) | has_p))
    if len(cl):
        nm = strs["name"].get(cl)
        isclone = np.asarray(pc.is_in(nm, value_set=pa.array(["clone", "clone3"], pa.large_string()))
                             .to_numpy(zero_copy_only=False), bool)
        cl = cl[isclone]
    if len(cl):
        thr = np.asarray(pc.match_substring(strs["args"].get(cl), "CLONE_THREAD")
                         .to_numpy(zero_copy_only=False), bool)
        cl = cl[thr]
    if state is not None:  # thread groups of earlier blocks; a new one must not rename rows already read
        new = dict(zip(value[cl].astype(np.int64).tolist(), pid_i[cl].tolist())) if len(cl) else {}
        if any(ch in state.seen_tids or state.tgid.get(ch, p_) != p_ for ch, p_ in new.items()):
            raise Fallback("a thread created after its first lines, in another block")
        state.seen_tids.update(np.unique(pid_i[pid_i >= 0]).tolist())
        mapping = {**state.tgid, **new}
    elif len(cl):
        mapping = dict(zip(value[cl].astype(np.int64).tolist(), pid_i[cl].tolist()))
    else:
        mapping = {}
    if mapping:
        for _ in range(8):  # a thread's thread
            step = {ch: mapping.get(p_, p_) for ch, p_ in mapping.items()}
            if step == mapping:
                break
            mapping = step
        ks_ = np.array(list(mapping), dtype=np.int64)
        vs_ = np.array(list(mapping.values()), dtype=np.int64)
        o = np.argsort(ks_)
        ks_, vs_ = ks_[o], vs_[o]
        pos = np.clip(np.searchsorted(ks_, pid_i), 0, len(ks_) - 1)
        hit = ks_[pos] == pid_i
        pid_i = np.where(hit, vs_[pos], pid_i)
        if state is not None:
            state.tgid = mapping

    # ---- the kept rows
    rows = np.flatnonzero(keep)
    m = len(rows)
    tsk = ts[rows]
    pidk = pid_i[rows]
    # entity: proc/<host>/<pid>@<first ts of that pid>; a pid seen again after its exit restarts
    ex_own = (state_code[rows] >= 2) & (pidk == tid_i[rows])
    # the host: tk.load(host=...) fills the "?". The message column is taken on another thread
    # meanwhile (Arrow releases the GIL; nothing below changes what it reads; the entities' and
    # attrs' temporaries stay on this one: both on threads cost ~60 MB more peak RSS at 1M)
    pool = ThreadPoolExecutor(max_workers=1)
    msg_job = pool.submit(strs["args"].get, rows)
    try:
        entity = _entities(pidk, tsk, ex_own, None, None if state is None else state.ent_start)
        kind_code = np.where(is_msg[rows], 2, np.where(dur_known[rows], 0, 1)).astype(np.int32)
        st = state_code[rows]
        durk = dur_known[rows]
        prec_ok = use[rows] if mode else np.zeros(m, bool)

        # attrs (row indices below are positions in the kept rows)
        pos_of = np.full(n, -1, dtype=np.int64)
        pos_of[rows] = np.arange(m)
        sysrows = rows[(typ[rows] == SYSCALL) | has_p[rows] | orphan_r[rows]]
        attr_cols: dict[str, tuple[np.ndarray, pa.Array] | None] = {}
        for key, col in (("retval", "ret"), ("errno", "errno"), ("errno_text", "etext")):
            at, vals = strs[col].present(sysrows)
            attr_cols[key] = (pos_of[at], vals)
        for k, (r_, v_) in attr_extra.items():
            attr_cols[k] = (pos_of[r_], v_)
        orow = np.flatnonzero(orphan_r & has_dur)
        if len(orow):
            attr_cols["duration"] = (pos_of[orow], pa.array([f"{d / NS:.6f}" for d in dur_ns[orow]]))
        un = np.flatnonzero(unmatched_u | orphan_r | detached_u)
        if len(un):
            attr_cols["tk.unmatched"] = (pos_of[un], pa.array(
                np.where(unmatched_u[un], "unfinished", np.where(orphan_r[un], "resumed", "detached")).tolist(),
                pa.large_string()))
        pn = np.flatnonzero(keep & ((pid_src == 1) | (pid_src == 2)))
        if len(pn):
            attr_cols["tk.pid"] = (pos_of[pn], pa.array(
                np.where(pid_src[pn] == 1, "file name", "inferred").tolist(), pa.large_string()))
        if len(msg_idx) and mode:
            mk = msg_idx[keep[msg_idx]]
            attr_cols["tk.ts"] = _const(pos_of[mk], "inherited")

        out = {
            "ts_src": pa.array(tsk),
            "ts_prec": pa.array(_prec(flen[rows]), mask=~prec_ok).view(pa.duration("ns")),
            "dur": pa.array(np.where(durk, dur_ns[rows], 0), mask=~durk).view(pa.duration("ns")),
            "kind": pa.DictionaryArray.from_arrays(pa.array(kind_code), pa.array(["span", "instant", "marker"])),
            "category": pa.DictionaryArray.from_arrays(
                pa.array(np.select([is_msg[rows], typ[rows] == SIGNAL, typ[rows] == EXIT], [3, 1, 2], 0)
                         .astype(np.int32)), pa.array(["syscall", "signal", "process", "strace"])),
            "name": strs["name"].get(rows),
            "value": pa.array(value[rows], mask=np.isnan(value[rows])),
            "pid": pa.array(pidk, mask=pidk < 0),
            "tid": pa.array(tid_i[rows], mask=tid_i[rows] < 0),
            "entity": entity,
            "state": pa.DictionaryArray.from_arrays(pa.array(st.astype(np.int32), mask=st == 0),
                                                    pa.array(["", "exec", "exit", "exit"])),
            "message": msg_job.result(),
            "attrs": _attrs(attr_cols, m),
            "line": pa.array(lno[rows]),
            "line_end": pa.array(line_end[rows]),
            "offset": pa.array(offs[rows]),
        }
    finally:
        pool.shutdown()
    entity = out["entity"]
    markers = None
    if spliced is not None and len(spliced[0]):
        markers = _markers(spliced, ts, lno, mode, entity_of=(pidk, tsk, entity))
        if state is not None:  # the file's markers come after all its rows
            state.markers.append(markers)
            markers = None
    n_merged = int(merged.sum() - pre.sum())
    # drop the parse columns before the canonical table is made (peak memory)
    del c, strs, ts, tns, value, dur_ns, pid_i, tid_i, partner, pos_of
    table = conform({k: v for k, v in out.items() if v is not None}, m)
    del out
    if markers is not None:
        table = pa.concat_tables([table, markers])
    return ReadResult(events=table, records=records, emitted=emitted, merged=n_merged,
                      metadata=n_meta, rejects=rejects, meta=meta)


def _stable_order(v: np.ndarray, minor: np.ndarray | None = None) -> np.ndarray:
    """``np.argsort(v, kind="stable")`` for an int column with few distinct values (pids), or
    with ``minor`` (small non-negative ints, e.g. syscall codes) the stable order by ``(v,
    minor)``: the ranks of ``v`` (a hash factorisation with sorted uniques), combined with
    ``minor``, as int16 sort by radix, 3x faster than a stable argsort at 1M (and than
    ``np.lexsort``)."""
    if len(v) < 50000:
        return np.argsort(v, kind="stable") if minor is None else np.lexsort((minor, v))
    import pandas as pd

    codes, uniq = pd.factorize(v, sort=True)
    key = codes.astype(np.int64)
    if minor is not None:
        key = key * (int(minor.max()) + 1) + minor
    if int(key.max()) >= 1 << 15:
        return np.argsort(v, kind="stable") if minor is None else np.lexsort((minor, v))
    return np.argsort(key.astype(np.int16), kind="stable")


def _entities(pid: np.ndarray, ts: np.ndarray, exit_row: np.ndarray, host: str | None,
              carry: dict | None = None) -> pa.Array:
    """``proc/<host>/<pid>@<start>`` per row (null where the pid is unknown), dictionary-encoded:
    ``<start>`` is the smallest ``ts`` of the pid's rows up to and including its exit row; rows
    after an exit of the same pid (pid reuse) start a new entity. ``carry`` (block reading):
    pid → start of its entity still open at the end of the earlier blocks; updated.

    Example::

        >>> _entities(np.array([5, 5, 5]), np.array([30, 10, 40]), np.array([0, 1, 0], bool), None).to_pylist()
        ['proc/?/5@10', 'proc/?/5@10', 'proc/?/5@40']
    """
    m = len(pid)
    if m == 0:
        return pa.array([], pa.string())
    order = _stable_order(pid)
    ps = pid[order]
    ex = exit_row[order].astype(np.int64)
    new_grp = np.empty(m, dtype=bool)
    new_grp[0] = True
    new_grp[1:] = ps[1:] != ps[:-1]
    before = np.cumsum(ex) - ex  # exits before each row, over all groups
    grp = np.cumsum(new_grp) - 1
    seg = before - before[new_grp][grp]  # exits of the same pid before the row
    key_sorted = grp * (int(seg.max()) + 1) + seg  # non-decreasing: sorted by pid, then seg
    first = np.empty(m, dtype=bool)
    first[0] = True
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    bounds = np.flatnonzero(first)
    start = np.minimum.reduceat(ts[order], bounds)
    upid = ps[bounds]
    if carry is not None:
        _carry_entities(carry, upid, seg[bounds], start, ps, ex)
    inv = np.empty(m, dtype=np.int64)
    inv[order] = np.cumsum(first) - 1
    labels = pl.select(pl.concat_str([pl.lit(f"proc/{host or '?'}/"), pl.Series(upid).cast(pl.String),
                                      pl.lit("@"), pl.Series(start).cast(pl.String)])).to_series()
    return pa.DictionaryArray.from_arrays(pa.array(inv.astype(np.int32), mask=pid < 0),
                                          labels.to_arrow().cast(pa.string()))


def _carry_entities(carry: dict, upid: np.ndarray, useg: np.ndarray, start: np.ndarray, ps: np.ndarray,
                    ex: np.ndarray) -> None:
    """Entities that continue from earlier blocks keep their start; those still open at the end
    of this block are carried (``start`` is updated in place)."""
    from .._stream import Fallback

    for j in np.flatnonzero(useg == 0).tolist():
        p_ = int(upid[j])
        if p_ in carry:
            if start[j] < carry[p_]:
                raise Fallback("a process's rows out of time order across blocks")
            start[j] = carry[p_]
    last_of_pid = np.ones(len(ps), dtype=bool)
    last_of_pid[:-1] = ps[1:] != ps[:-1]
    lastb = np.ones(len(upid), dtype=bool)
    lastb[:-1] = upid[1:] != upid[:-1]
    closed = ex[last_of_pid].astype(bool)  # the pid's last row is its exit
    for p_, st_, cl_ in zip(upid[lastb].tolist(), start[lastb].tolist(), closed.tolist()):
        if p_ < 0:
            continue
        if cl_:
            carry.pop(p_, None)
        else:
            carry[p_] = st_


def _join_split(c: dict[str, Any], strs: dict[str, _Str], typ: np.ndarray, text: pa.Array,
                heads: np.ndarray, merged: np.ndarray, line_end: np.ndarray,
                lno: np.ndarray) -> tuple[np.ndarray, pa.Array] | None:
    """Join syscall lines that strace split: a ``HEAD`` (no result) and the next line that is
    not an strace message, when that line is no strace line itself (``, child_tidptr=...) =
    2370``, `` <unfinished ...>``). A ``strace: Process N attached`` spliced into the head is cut
    out; its (head rows, message texts) are returned for marker rows. Updates in place."""
    cand = np.flatnonzero((typ != MSG) & (typ >= 0))
    pos = np.searchsorted(cand, heads, side="right")
    okp = pos < len(cand)
    nxt = np.full(len(heads), -1, dtype=np.int64)
    nxt[okp] = cand[pos[okp]]
    cont_ok = okp & (typ[np.where(okp, nxt, 0)] == NONE)
    head_txt = pl.from_arrow(pc.utf8_rtrim(text.take(pa.array(heads)), characters="\r\n"))
    sp = head_txt.str.extract_groups(_SPLICE_RE).struct.unnest()
    is_sp = sp["head"].is_not_null().to_numpy()
    spliced = None
    if is_sp.any():
        spliced = (heads[is_sp], sp["msg"].filter(pl.Series(is_sp)).to_arrow())
    if not cont_ok.any():
        return spliced
    base = pl.select(pl.when(pl.Series(is_sp)).then(sp["head"]).otherwise(head_txt)).to_series()
    hi, ci = heads[cont_ok], nxt[cont_ok]
    cont_txt = pl.from_arrow(text.take(pa.array(ci)))
    joined = pl.select(pl.concat_str([base.filter(pl.Series(cont_ok)), cont_txt])).to_series()
    jc = _extract(joined)
    good = np.isin(jc["typ"], (SYSCALL, UNFIN, RESUMED))
    if not good.any():
        return spliced
    hi, ci = hi[good], ci[good]
    for k, v in jc.items():
        if k in _STR_COLS:
            strs[k].set(hi, _arrow_str(v.filter(pl.Series(good))))
        elif k == "typ":
            typ[hi] = v[good]
        else:
            c[k][hi] = v[good]
    merged[ci] = True
    typ[ci] = -2  # consumed
    line_end[hi] = lno[ci]
    return spliced


def _markers(spliced: tuple[np.ndarray, pa.Array], ts: np.ndarray, lno: np.ndarray, mode: int,
             entity_of: tuple[np.ndarray, np.ndarray, pa.Array]) -> pa.Table:
    """Marker rows for ``strace: Process N attached`` messages cut out of syscall lines."""
    hi, msg = spliced
    g = pl.from_arrow(msg).str.extract_groups(_MSG_RE).struct.unnest()
    mpid = g["p"].str.to_integer(strict=False).fill_null(-1).to_numpy()
    m = len(hi)
    pidk, tsk, entity = entity_of
    # the entity a pid has at the marker's time: that of its first row at or after it, if any
    ent = pa.nulls(m, pa.string())
    if len(pidk):
        df = pl.DataFrame({"pid": pidk, "ts": tsk, "e": entity.cast(pa.string())})
        first = df.filter(pl.col("e").is_not_null()).group_by("pid").agg(pl.col("e").first())
        ent = pl.DataFrame({"pid": mpid}).join(first, on="pid", how="left", maintain_order="left")["e"].to_arrow()
    attrs = {"tk.spliced": _const(np.arange(m), "true")}
    if mode:
        attrs["tk.ts"] = _const(np.arange(m), "inherited")
    cols = {
        "ts_src": pa.array(ts[hi]),
        "kind": pa.DictionaryArray.from_arrays(pa.array(np.full(m, 2, np.int32)),
                                               pa.array(["span", "instant", "marker"])),
        "category": pa.repeat(pa.scalar("strace", pa.string()), m),
        "name": g["w"].to_arrow(),
        "pid": pa.array(mpid, mask=mpid < 0),
        "tid": pa.array(mpid, mask=mpid < 0),
        "entity": ent,
        "message": msg,
        "attrs": _attrs(attrs, m),
        "line": pa.array(lno[hi]),
        "line_end": pa.array(lno[hi]),
    }
    return conform({k: v for k, v in cols.items() if v is not None}, m)


register(
    Reader(
        "strace",
        "strace text output (-f/-ff, -t/-tt/-ttt/-r, -T, -y; unfinished/resumed merged)",
        _sniff,
        _read,
        options={
            "date": "YYYY-MM-DD of the first line of a -t/-tt trace (default: from the file's mtime)",
            "tz": "time zone of -t/-tt times (default 'UTC')",
            "pid": "pid for lines that show none (default: a -ff file name's .PID suffix)",
        },
        extensions=(".strace",),
    )
)
