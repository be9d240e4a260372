"""Large text files read in blocks of lines, so memory is bounded by the block, not the file.

``tracekit convert`` uses this for the readers that support it (``syslog``, ``strace``): the
file is read with plain ``read()`` calls (no memory map, whose pages would count as the
process's memory) in blocks of about :data:`BLOCK_BYTES`, each cut just before a line that
cannot continue the previous one (a syslog header; an strace line after a complete one), and
each block goes through the reader and straight to the Parquet writer.

State that crosses blocks is carried so that the result is the same as ``tk.load`` of the
whole file:

- syslog: the year of RFC 3164 records (a cheap first pass over the file finds the Dec → Jan
  roll-overs and the last record's date, as the whole-file inference would), continuation
  lines (a block never starts with one), CRON links (the last CMD per host and pid), kernel
  boot anchors (collected, computed at the end);
- strace: unfinished/resumed pairs that straddle a block boundary (a first pass over the
  ``unfinished``/``resumed`` lines pairs them the way the reader does; the resumed line is
  read with the block of its unfinished line and skipped in its own), the time mode, ``-r``
  sums, the time inherited by strace messages, the pid of each entity's start and the thread
  groups of ``clone(CLONE_THREAD)``.

Where a block would need what it cannot know (a ``-t`` trace without ``date=``, a root pid
inferred from later blocks, rows out of time order across blocks, an octet-counted capture),
:class:`Fallback` is raised and the caller reads the file in one piece, as before.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from .readers._base import Input, Lines, ReadResult, split_lines

#: bytes of input per block (a block's intermediates and the allocators' slack take 20-40× its
#: size; 1 MiB keeps a 1M-line convert under 3× its input, imports included)
BLOCK_BYTES = 1 << 20


class Fallback(Exception):
    """The file cannot be read in blocks with the same result: read it in one piece."""


@dataclass
class Block:
    """One block of whole lines: its bytes, the number of its first line and its byte offset."""

    data: bytes
    start_line: int
    offset: int
    index: int

    def lines(self) -> Lines:
        return split_lines(self.data, self.start_line, self.offset, bom=self.offset == 0)


def iter_blocks(inp: Input, cut: Callable[[bytes, int], bool], block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """The input's bytes in blocks of whole lines, each ending just before a line where
    ``cut(buf, p)`` is true (``p``: the position of the ``\\n`` before that line)."""
    line, off, idx = 1, 0, 0
    carry = b""
    with inp.open() as f:
        while True:
            chunk = f.read(block_bytes)
            if not chunk:
                if carry:
                    yield Block(carry, line, off, idx)
                return
            buf = carry + chunk if carry else chunk
            del chunk
            c = _cut(buf, cut)
            if c <= 0:  # no place to cut yet: read more
                carry = buf
                continue
            data = buf[:c]
            carry = buf[c:]
            del buf
            yield Block(data, line, off, idx)
            line += data.count(b"\n")
            off += len(data)
            idx += 1
            del data


def _cut(buf: bytes, cut: Callable[[bytes, int], bool], tries: int = 200_000) -> int:
    """The position after the last ``\\n`` of ``buf`` where ``cut`` allows a block to end (0: none)."""
    end = len(buf)
    for _ in range(tries):
        p = buf.rfind(b"\n", 0, end)
        if p < 0:
            return 0
        if p + 1 < len(buf) and cut(buf, p):
            return p + 1
        end = p
    return 0


def concat_lines(a: Lines, b: Lines) -> Lines:
    """Two line sets as one (``b``'s lines after ``a``'s, numbers and offsets kept)."""
    return Lines(text=pa.concat_arrays([a.text, b.text]), line=np.concatenate([a.line, b.line]),
                 offset=np.concatenate([a.offset, b.offset]),
                 bad_utf8=np.concatenate([a.bad_utf8, b.bad_utf8]), nbytes=a.nbytes + b.nbytes)


# --------------------------------------------------------------------------- syslog

#: a block may end before a line that starts like a syslog header (it never continues a record)
_SYSLOG_CUT = re.compile(rb"\n(?:<\d{1,3}>|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}\d"
                         rb"|\d{4}-\d{2}-\d{2}T)").match
#: a valid RFC 3164 header without a year (or year 0000), as the reader's LINE_RE and its
#: range checks read it (day 1-31, hh ≤ 23, mm ≤ 59, ss ≤ 60): the lines whose year is inferred
_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_Y3164 = (r"^(?:<[0-9]{1,3}>)?(?:" + _MONTHS + r") {1,2}(?:0?[1-9]|[12][0-9]|3[01])(?: 0000)? "
          r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.\d{1,9})? \S")  # (\d: as LINE_RE's fraction)
_MON_DAY = r"^(?:<[0-9]{1,3}>)?(?P<mon>" + _MONTHS + r") {1,2}(?P<day>[0-9]{1,2})"


def _syslog_year_pass(inp: Input, year: int | None, tz: Any, block_bytes: int) -> tuple[list[int | None], str]:
    """The year of each block's first year-less RFC 3164 record, as the whole-file inference
    (:func:`tracekit.readers._syslogish.infer_years`) gives it: ``year`` (given) plus the Dec →
    Jan roll-overs before it, or counted back from the last record's year."""
    from .readers import _syslogish as sx

    per: list[tuple[int, int, int, int] | None] = []  # (first month, last month, last day, wraps)
    for blk in iter_blocks(inp, _SYSLOG_CUT, block_bytes):
        s = pl.from_arrow(blk.lines().text)
        del blk
        v = s.filter(s.str.contains(_Y3164))
        del s
        if len(v) == 0:
            per.append(None)
            continue
        last_day = int(re.match(_MON_DAY, v[-1])["day"])
        pri = v.str.starts_with("<")
        if pri.any():  # the month after the <PRI>
            v = pl.select(pl.when(pri).then(v.str.extract(_MON_DAY, 1)).otherwise(v)).to_series()
        mon = v.str.slice(0, 3).replace_strict(sx.MONTHS, return_dtype=pl.Int64).to_numpy()
        wraps = int((mon[:-1] - mon[1:] > 6).sum())
        per.append((int(mon[0]), int(mon[-1]), last_day, wraps))
    cum_first: list[int | None] = []
    cum = 0
    prev_last = None
    for p in per:
        if p is None:
            cum_first.append(None)
            continue
        if prev_last is not None and prev_last - p[0] > 6:
            cum += 1
        cum_first.append(cum)
        cum += p[3]
        prev_last = p[1]
    seen = [p for p in per if p is not None]
    if not seen:
        return cum_first, ""
    if year is not None:  # the notes are infer_years's
        note = f"{int(year)} (given; {cum} Dec→Jan roll-over(s))" if cum else f"{int(year)} (given)"
        return [None if c is None else int(year) + c for c in cum_first], note
    last_m, last_d = seen[-1][1], seen[-1][2]
    zone = tz if tz is not None else _dt.timezone.utc
    if inp.mtime is not None:
        mt = _dt.datetime.fromtimestamp(float(inp.mtime), zone)
        src = f"file mtime {mt.date().isoformat()}"
    else:
        mt = _dt.datetime.now(zone)
        src = f"no file mtime; current date {mt.date().isoformat()}"
    last_year = mt.year - (1 if (last_m, last_d) > (mt.month, mt.day + 1) else 0)
    years = [None if c is None else last_year - (cum - c) for c in cum_first]
    first_year = next(y for y in years if y is not None)
    rng = f"{first_year}" if first_year == last_year else f"{first_year}–{last_year}"
    return years, f"{rng} (inferred from {src}; pass year= to set the first record's year)"


def read_syslog(inp: Input, year: int | None = None, tz: str | None = None,
                block_bytes: int = BLOCK_BYTES) -> Iterator[ReadResult]:
    """The syslog reader over ``inp`` block by block (see the module doc); the last block's
    ``meta`` carries the whole file's hosts, forms and boot anchors."""
    from .errors import OptionError
    from .readers import _syslogish as sx
    from .readers import syslog as sl

    if year is not None and not (1 <= int(year) <= 9999):
        raise OptionError(f"{inp.path}: year must be 1..9999, not {year!r}")
    if sl._OCTET.match(inp.head(64)):
        raise Fallback("octet-counted capture")
    zi = sx.zone(tz, inp.path)
    years, note = _syslog_year_pass(inp, year, zi, block_bytes)
    state = sl.BlockState(year_note=note)
    res = None
    for blk in iter_blocks(inp, _SYSLOG_CUT, block_bytes):
        lines = blk.lines()
        yr = years[blk.index]
        del blk
        if res is not None:
            yield res
        res = sl.read_lines(inp, lines, yr, tz, state=state)
        del lines
    if res is None:
        yield sl.read_lines(inp, split_lines(b""), year, tz)
        return
    sl.finish_meta(res.meta, state, tz)
    yield res


# --------------------------------------------------------------------------- convert


def _readers() -> dict[str, Any]:
    return {"syslog": read_syslog, "strace": read_strace}


def convert(paths: Any, output: str | Path, format: str | None = None, block_bytes: int = BLOCK_BYTES,
            **options: Any) -> dict[str, Any]:
    """Write the canonical event table of ``paths`` to ``output`` (Parquet, zstd), as
    ``tk.load(paths).events`` would be written. A single file (or rotated set) of a reader
    that reads in blocks is streamed block by block; anything else is loaded whole.

    Returns ``{"events", "rejects", "streamed", "note"}``.
    """
    import pyarrow.parquet as pq

    from ._load import _join_rotated, load, plan_inputs

    out = Path(output)
    tmp = out.with_name(out.name + ".tmp")
    plans, _single = plan_inputs(paths, format, options)
    groups = _join_rotated(plans)
    note = ""
    if len(groups) == 1 and groups[0][1] is not None and groups[0][1].name in _readers():
        head, reader, members = groups[0]
        try:
            info = _convert_stream(head, reader, members, options, tmp, block_bytes)
            tmp.replace(out)
            return info
        except Fallback as e:
            note = f"read in one piece ({e})"
            tmp.unlink(missing_ok=True)
        finally:
            for m in members:
                m.release()
    tl = load(paths, format=format, progress=False, **options)
    pq.write_table(tl.events, tmp, compression="zstd")
    tmp.replace(out)
    return {"events": len(tl), "rejects": tl.rejects.num_rows, "streamed": False, "note": note}


def _convert_stream(head: Input, reader: Any, members: list[Input], options: dict[str, Any], tmp: Path,
                    block_bytes: int) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from ._load import _finish
    from .errors import ParseError, TracekitError
    from .schema import EVENT_SCHEMA

    opts = {k: v for k, v in options.items() if k in reader.options}
    reader.check_options(opts, head.name)
    read = _readers()[reader.name]
    seq = 0
    nrej = 0
    prev_max: int | None = None
    src = None
    if len(members) > 1:
        src = pa.DictionaryArray.from_arrays(pa.array(np.zeros(0, np.int32)), pa.array([head.name]))
    with pq.ParquetWriter(tmp, EVENT_SCHEMA, compression="zstd") as w:
        for m in members:
            try:
                for res in read(m, block_bytes=block_bytes, **opts):
                    ev, rej, _row = _finish(m, reader, res)
                    del res
                    nrej += rej.num_rows
                    n = ev.num_rows
                    if n == 0:
                        continue
                    ev = ev.set_column(ev.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"),
                                       pa.array(np.arange(seq, seq + n, dtype=np.uint64)))
                    seq += n
                    ts = ev.column("ts").combine_chunks().cast(pa.int64()).to_numpy()
                    if not np.all(ts[1:] >= ts[:-1]):
                        order = np.argsort(ts, kind="stable")
                        ev = ev.take(pa.array(order))
                        ts = ts[order]
                    if prev_max is not None and ts[0] < prev_max:
                        raise Fallback("rows out of time order across blocks")
                    prev_max = int(ts[-1])
                    if src is not None:
                        ev = ev.set_column(ev.schema.get_field_index("source"), EVENT_SCHEMA.field("source"),
                                           pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)),
                                                                          pa.array([head.name])))
                    w.write_table(ev)
                    del ev, ts
            except (Fallback, TracekitError):
                raise
            except Exception as e:  # a reader bug: never a bare traceback from deep inside
                raise ParseError(f"reader {reader.name!r} failed: {type(e).__name__}: {e}", file=m.path) from e
    return {"events": seq, "rejects": nrej, "streamed": True, "note": ""}


# --------------------------------------------------------------------------- strace

_STRACE_NEXT = re.compile(rb"\n(?:\[pid +\d|\d)")
_STRACE_DONE = re.compile(rb"(?:\) += \S.*|<(?:unfinished|detached) \.\.\.>|---|\+\+\+)\r?$")


def _strace_cut(buf: bytes, p: int) -> bool:
    """A block may end after a complete strace line (a result, ``<unfinished ...>``, a signal
    or exit) when the next line starts with a pid: strace never continues a line there."""
    if not _STRACE_NEXT.match(buf, p):
        return False
    q = buf.rfind(b"\n", 0, p) + 1
    return _STRACE_DONE.search(buf, q, p) is not None


def _strace_pairs(inp: Input, block_bytes: int) -> tuple[dict[int, list], dict[int, list]]:
    """First pass: unfinished/resumed pairs that straddle blocks, paired as the reader pairs them
    (per pid and syscall, an unfinished line and the next line of that pid and syscall if it is
    a resumed one). Returns ({block: [(line, offset, text) of partner lines to append]},
    {block: [line numbers of resumed lines read with an earlier block]})."""
    import pyarrow.compute as pc

    from .readers import strace as st

    extras: dict[int, list] = {}
    consumed: dict[int, list] = {}
    open_ = pl.DataFrame(schema={"pid": pl.Int64, "name": pl.String, "line": pl.Int64, "u": pl.Boolean,
                                 "blk": pl.Int64, "i": pl.Int64})
    for blk in iter_blocks(inp, _strace_cut, block_bytes):
        lines = blk.lines()
        text = lines.text
        hit = pc.or_(pc.match_substring(text, "<unfinished ..."), pc.match_substring(text, " resumed>"))
        idx = np.flatnonzero(np.asarray(hit.to_numpy(zero_copy_only=False), bool))
        if len(idx) == 0:
            continue
        sub = text.take(pa.array(idx))
        x = st._extract(sub)
        u = (x["typ"] == st.UNFIN) & ~x["det"]
        r = x["typ"] == st.RESUMED
        keep = u | r
        df = pl.DataFrame({"pid": x["pid"].astype(np.int64)[keep], "name": pl.from_arrow(x["name"]).filter(pl.Series(keep)),
                           "line": lines.line[idx[keep]], "u": u[keep],
                           "blk": np.full(int(keep.sum()), blk.index, np.int64), "i": idx[keep].astype(np.int64)})
        df = pl.concat([open_, df], how="vertical").sort(["pid", "name", "line"], maintain_order=True)
        nxt = df.select(pl.all().shift(-1).name.suffix("_n"))
        df = pl.concat([df, nxt], how="horizontal")
        pair = df.filter(pl.col("u") & ~pl.col("u_n").fill_null(True) & (pl.col("pid") == pl.col("pid_n"))
                         & (pl.col("name") == pl.col("name_n")) & (pl.col("blk") < pl.col("blk_n")))
        if pair.height:
            ri = pair["i_n"].to_numpy()
            txt = text.take(pa.array(ri)).to_pylist()
            for ub, ln, off, t in zip(pair["blk"].to_list(), lines.line[ri].tolist(), lines.offset[ri].tolist(), txt):
                extras.setdefault(ub, []).append((ln, off, t))
            consumed[blk.index] = pair["line_n"].to_list()
        last = (pl.col("pid") != pl.col("pid_n")) | (pl.col("name") != pl.col("name_n")) | pl.col("pid_n").is_null()
        open_ = df.filter(last & pl.col("u")).select("pid", "name", "line", "u", "blk", "i")
    return extras, consumed


def read_strace(inp: Input, date: Any = None, tz: str = "UTC", pid: int | None = None,
                block_bytes: int = BLOCK_BYTES) -> Iterator[ReadResult]:
    """The strace reader over ``inp`` block by block (see the module doc); markers of messages
    spliced into syscall lines come last, as in the whole-file read."""
    from .readers import strace as st

    st._zone(str(tz), inp.path)  # option errors before any work
    extras, consumed = _strace_pairs(inp, block_bytes)
    state = st.BlockState()
    res = None
    for blk in iter_blocks(inp, _strace_cut, block_bytes):
        lines = blk.lines()
        state.consumed = np.array(consumed.get(blk.index, []), dtype=np.int64)
        state.n_real = len(lines)
        ext = extras.get(blk.index)
        if ext:
            add = Lines(text=pa.array([e[2] for e in ext], pa.large_string()),
                        line=np.array([e[0] for e in ext], np.int64), offset=np.array([e[1] for e in ext], np.int64),
                        bad_utf8=np.zeros(0, np.int64), nbytes=0)
            lines = concat_lines(lines, add)
        del blk
        if res is not None:
            yield res
        res = st.read_lines(inp, lines, date, tz, pid, state=state)
        del lines
    if res is None:
        yield st.read_lines(inp, split_lines(b""), date, tz, pid)
        return
    gm = int(np.argmax(state.counts)) if state.counts.sum() else 0
    if state.modes_used - {gm}:
        raise Fallback("the time format changes along the file")
    if state.summary:
        res.meta.setdefault("extra", {})["summary"] = "\n".join(state.summary)
    yield res
    if state.markers:
        yield ReadResult(events=pa.concat_tables(state.markers), records=0, emitted=0, meta=res.meta)
