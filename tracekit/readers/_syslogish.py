"""Helpers shared by the syslog and dmesg readers: local time → UTC, years, severities,
continuation lines, attrs maps. Everything works on whole columns (numpy / polars / Arrow).

Example::

    >>> from tracekit._time import to_time_ns as t
    >>> loc = np.array([t("2025-10-26T02:30:00Z"), t("2025-10-26T02:10:00Z")])  # Berlin wall clock
    >>> utc, info = localize(loc, np.ones(2, bool), "Europe/Berlin")
    >>> [(u - t("2025-10-26T00:00:00Z")) // 60_000_000_000 for u in utc.tolist()], info["ambiguous"]
    ([30, 70], 2)
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from .._time import fmt_ns
from ..errors import OptionError
from ..schema import ATTRS_TYPE

NS = 1_000_000_000
DAY_NS = 86400 * NS

MONTHS = {m: i + 1 for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))}

#: syslog severity number (PRI & 7) → tracekit severity
SEV_BY_NUM = ("critical", "critical", "critical", "error", "warning", "notice", "info", "debug")
#: syslog facility number (PRI >> 3) → name (RFC 5424 table 1, Linux names)
FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
              "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
              "local2", "local3", "local4", "local5", "local6", "local7")
#: level words of ``dmesg -x`` → tracekit severity
LEVEL_WORDS = {"emerg": "critical", "alert": "critical", "crit": "critical", "err": "error",
               "warn": "warning", "notice": "notice", "info": "info", "debug": "debug"}

_SEV_DICT = pa.array(["trace", "debug", "info", "notice", "warning", "error", "critical"])
_SEV_INDEX = {s: i for i, s in enumerate(_SEV_DICT.to_pylist())}


def extract_chunks(text: pa.Array, pattern: str, reduce: Any, chunk: int = 1 << 16,
                   contains: str | None = None, fast: str | None = None) -> pl.DataFrame:
    """Regex extraction over a column of lines, in slices, each reduced at once.

    Every slice of ``chunk`` lines is cut into one column per polars thread, so the extraction
    runs on every core (one expression per column in one ``select``); its groups (plus ``line``,
    the slice's text, and ``start`` = ``str.contains(contains)`` on the lines the pattern does
    not match, false on the others) go to ``reduce(DataFrame) -> DataFrame``, which keeps only
    compact columns, so the wide intermediate of the regex never exists for the whole file.

    ``fast``: a simpler pattern for the common lines, whose groups are a subset of
    ``pattern``'s and equal to them wherever it matches (a regex with fewer optional parts
    extracts several times faster); ``pattern`` then runs only on the lines it misses. A slice
    that ``fast`` reads whole reaches ``reduce`` without ``pattern``'s other groups (they would
    be all null).
    """
    names = re.findall(r"\(\?P<(\w+)>", pattern)
    k = max(1, min(pl.thread_pool_size(), 8))
    parts = []
    for i in range(0, max(len(text), 1), chunk):
        s = pl.from_arrow(text.slice(i, chunk))
        if not isinstance(s, pl.Series):
            s = s.to_series()
        n = len(s)
        kk = k if n >= 4000 else 1
        step = -(-n // kk)
        cols = {}
        for j in range(kk):
            c = s.slice(j * step, step)
            cols[f"c{j}"] = c if len(c) == step else c.extend_constant(None, step - len(c))
        df = pl.DataFrame(cols)
        del cols
        out = df.select([pl.col(c).str.extract_groups(fast or pattern) for c in df.columns])
        g = pl.concat([out[c].struct.unnest() for c in df.columns], rechunk=False).slice(0, n)
        del out, df
        miss = g[g.columns[0]].is_null()
        start = np.zeros(n, dtype=bool)
        if miss.any():
            pos = np.flatnonzero(miss.to_numpy())
            idx = pl.Series(pos)
            if fast is not None:
                full = s.gather(idx).str.extract_groups(pattern).struct.unnest()
                g = g.with_columns([pl.lit(None, pl.String).alias(c) for c in names if c not in g.columns])
                g = g.with_columns([g[c].scatter(idx, full[c]) for c in names])
                pos = pos[full[names[0]].is_null().to_numpy()]
            if contains is not None and len(pos):
                start[pos] = s.gather(pl.Series(pos)).str.contains(contains).fill_null(False).to_numpy()
        g = g.with_columns(line=s, start=pl.Series(start))
        parts.append(reduce(g))
        del g, s
    return pl.concat(parts, rechunk=False) if len(parts) > 1 else parts[0]


def severity_from_num(num: np.ndarray, valid: np.ndarray) -> pa.DictionaryArray:
    """Syslog severity numbers 0..7 → a dictionary-encoded severity column (null where invalid)."""
    lut = np.array([_SEV_INDEX[s] for s in SEV_BY_NUM], dtype=np.int32)
    idx = lut[np.clip(num, 0, 7)]
    return pa.DictionaryArray.from_arrays(pa.array(idx, mask=~valid), _SEV_DICT)


def severity_from_words(words: pl.Series) -> pa.DictionaryArray:
    """``dmesg -x`` level words (``warn``, ``err`` …) → severity column."""
    mapped = words.replace_strict({k: _SEV_INDEX[v] for k, v in LEVEL_WORDS.items()}, default=None,
                                  return_dtype=pl.Int32)
    return pa.DictionaryArray.from_arrays(mapped.to_arrow().cast(pa.int32()), _SEV_DICT)


def facility_names(fac: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Facility numbers → names (null where there was no PRI)."""
    if not valid.any():
        return pa.nulls(len(fac), pa.string())
    names = pa.array(FACILITIES)
    idx = pa.array(np.clip(fac, 0, len(FACILITIES) - 1).astype(np.int32), mask=~valid)
    return names.take(idx)


def num(series: pl.Series, default: int = 0) -> np.ndarray:
    """A polars column of digit strings → int64 numpy (``default`` where null/invalid)."""
    return series.cast(pl.Int64, strict=False).fill_null(default).to_numpy().astype(np.int64, copy=False)


def zone(tz: str | None, where: str) -> Any:
    """A tz option → ``None`` for UTC, else a ZoneInfo (OptionError if unknown)."""
    if tz is None or str(tz).upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return None
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(str(tz))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise OptionError(f"{where}: unknown time zone {tz!r} (use an IANA name such as 'Europe/Berlin')") from e


def localize(local_ns: np.ndarray, valid: np.ndarray, tz: Any) -> tuple[np.ndarray, dict[str, int]]:
    """Local wall-clock ns (as if UTC) → UTC ns in zone ``tz`` (name, ZoneInfo or None = UTC).

    Ambiguous times (the hour repeated when daylight saving ends) are resolved by file order:
    the first pass is read as daylight time (fold=0); once the local time goes back inside the
    repeated hour, the rest of that day's repeated hour is standard time (fold=1). Times in the
    hour skipped when daylight saving starts are moved forward by the gap. Returns the UTC ns
    and counts ``{"ambiguous": n, "nonexistent": n}``.
    """
    if isinstance(tz, str):
        tz = zone(tz, "tz")
    if tz is None or len(local_ns) == 0:
        return local_ns, {"ambiguous": 0, "nonexistent": 0}
    import pandas as pd

    key = str(tz)
    loc = np.where(valid, local_ns, 0)
    idx = pd.DatetimeIndex(loc.view("datetime64[ns]"))
    first = idx.tz_localize(key, ambiguous="NaT", nonexistent="NaT")
    nat = np.asarray(first.isna())
    info = {"ambiguous": 0, "nonexistent": 0}
    if not nat.any():
        return first.asi8.copy(), info
    fwd = idx.tz_localize(key, ambiguous="NaT", nonexistent="shift_forward")
    amb = np.asarray(fwd.isna()) & valid
    info["nonexistent"] = int((nat & ~amb & valid).sum())
    info["ambiguous"] = int(amb.sum())
    dst = np.ones(len(loc), dtype=bool)
    if amb.any():
        pos = np.flatnonzero(amb)
        la = loc[pos]
        day = la // DAY_NS
        back = np.zeros(len(pos), dtype=bool)
        back[1:] = (la[1:] < la[:-1]) & (day[1:] == day[:-1])
        c = np.cumsum(back)
        start = np.ones(len(pos), dtype=bool)
        start[1:] = day[1:] != day[:-1]
        base = np.maximum.accumulate(np.where(start, c - back, 0))
        fold = (c - base) > 0
        dst[pos] = ~fold
    out = idx.tz_localize(key, ambiguous=dst, nonexistent="shift_forward")
    return out.asi8.copy(), info


def infer_years(month: np.ndarray, day: np.ndarray, valid: np.ndarray, year: int | None,
                mtime: float | None, tz: Any) -> tuple[np.ndarray, str]:
    """Years for year-less (RFC 3164) dates, in file order.

    A month that falls back by more than six (Dec → Jan) starts a new year. With ``year``
    given it is the first record's year; otherwise the last record's year is the file's
    modification year (the year before when its date is later than the mtime's), falling back
    to the current year. Returns the per-row years (0 on the rows not ``valid``) and a note for
    ``meta["assumed"]``.
    """
    n = len(month)
    years = np.zeros(n, dtype=np.int64)
    whole = bool(valid.all())  # (then no gathers by the valid rows)
    vi = None if whole else np.flatnonzero(valid)
    if n == 0 or (vi is not None and not len(vi)):
        return years, ""
    vm = (month if whole else month[vi]).astype(np.int16, copy=False)
    cum = np.zeros(len(vm), dtype=np.int64)  # roll-overs up to each valid row
    np.cumsum(vm[:-1] > vm[1:] + 6, out=cum[1:])
    total = int(cum[-1])
    first, last = (0, n - 1) if whole else (int(vi[0]), int(vi[-1]))

    def at_valid(base: int) -> np.ndarray:  # the valid rows' years: base + roll-overs before
        cum[...] += base
        if whole:
            return cum
        years[vi] = cum
        return years

    if year is not None:
        years = at_valid(int(year))
        return years, f"{int(year)} (given; {total} Dec→Jan roll-over(s))" if total else f"{int(year)} (given)"
    if mtime is not None:
        mt = _dt.datetime.fromtimestamp(float(mtime), tz if tz is not None else _dt.timezone.utc)
        src = f"file mtime {mt.date().isoformat()}"
    else:
        mt = _dt.datetime.now(tz if tz is not None else _dt.timezone.utc)
        src = f"no file mtime; current date {mt.date().isoformat()}"
    last_year = mt.year
    if (int(month[last]), int(day[last])) > (mt.month, mt.day + 1):
        last_year -= 1
    years = at_valid(last_year - total)
    first_year = int(years[first])
    rng = f"{first_year}" if first_year == last_year else f"{first_year}–{last_year}"
    return years, f"{rng} (inferred from {src}; pass year= to set the first record's year)"


def civil_days(years: np.ndarray, month: np.ndarray, day: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the ``valid`` rows' dates (int64, 0 elsewhere): a table of the
    months' first days over the years present, looked up (:func:`tracekit._time.days_from_civil`
    for a span of years too wide for a table)."""
    from .._time import days_from_civil

    out = np.zeros(len(years), dtype=np.int64)
    if not valid.any():
        return out
    whole = bool(valid.all())
    lo, hi = (int(years.min()), int(years.max())) if whole else (int(years[valid].min()), int(years[valid].max()))
    if hi - lo > 1000:
        d = days_from_civil(np.where(valid, years, 1970), np.where(valid, month, 1), np.where(valid, day, 1))
        return np.where(valid, d, out)
    ys = np.repeat(np.arange(lo, hi + 1, dtype=np.int64), 13)
    ms = np.tile(np.arange(13, dtype=np.int64), hi - lo + 1)
    table = days_from_civil(ys, np.maximum(ms, 1), np.ones_like(ys)) - 1
    if whole:
        np.subtract(years, lo, out=out)
    else:
        np.copyto(out, years, where=valid)
        np.copyto(out, lo, where=~valid)
        out -= lo
    out *= 13
    out += month if whole else np.where(valid, month, 0)
    out = table[out]
    out += day if whole else np.where(valid, day, 0)
    if not whole:
        out[~valid] = 0
    return out


def attrs_map(n: int, parts: list[tuple[np.ndarray, str, Any]]) -> pa.Array:
    """Build an attrs ``map<string,string>`` column of ``n`` rows from long-format parts.

    Each part is ``(rows, key, values)``: the row indices, one key (or an Arrow/numpy array of
    keys) and the values (Arrow/polars column of the same length; nulls are dropped).
    """
    rows_l, keys_l, vals_l = [], [], []
    for rows, key, vals in parts:
        if isinstance(vals, pl.Series):
            vals = vals.to_arrow()
        vals = pa.array(vals) if not isinstance(vals, (pa.Array, pa.ChunkedArray)) else vals
        if isinstance(vals, pa.ChunkedArray):
            vals = vals.combine_chunks()
        vals = vals.cast(pa.string())
        ok = np.asarray(vals.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        if not ok.any():
            continue
        rows = np.asarray(rows)[ok]
        vals = vals.filter(pa.array(ok))
        if isinstance(key, str):
            k = pa.DictionaryArray.from_arrays(pa.array(np.zeros(len(rows), np.int32)), pa.array([key]))
            k = k.dictionary_decode()
        else:
            k = (key.to_arrow() if isinstance(key, pl.Series) else pa.array(key)).cast(pa.string())
            k = k.filter(pa.array(ok))
        rows_l.append(rows.astype(np.int64))
        keys_l.append(k)
        vals_l.append(vals)
    if not rows_l:
        offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
        return pa.MapArray.from_arrays(offsets, pa.array([], pa.string()), pa.array([], pa.string()))
    counts = np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    if all(len(r) < 2 or (np.diff(r) > 0).all() for r in rows_l):
        # each part has at most one entry a row: every entry's place from the running fill
        # (parts in order within a row, as the stable sort below gives them)
        for rows in rows_l:
            counts[rows] += 1
        np.cumsum(counts, out=offsets[1:])
        fill = offsets[:-1].astype(np.int64)
        order = np.empty(int(offsets[-1]), dtype=np.int64)
        base = 0
        for rows in rows_l:
            order[fill[rows]] = base + np.arange(len(rows), dtype=np.int64)
            fill[rows] += 1
            base += len(rows)
    else:
        rows_all = np.concatenate(rows_l)
        order = np.argsort(rows_all, kind="stable")
        np.cumsum(np.bincount(rows_all, minlength=n), out=offsets[1:])
    keys = pa.concat_arrays(keys_l).take(pa.array(order))
    vals = pa.concat_arrays(vals_l).take(pa.array(order))
    return pa.MapArray.from_arrays(pa.array(offsets), keys, vals).cast(ATTRS_TYPE)


def group_continuations(is_head: np.ndarray, is_cont: np.ndarray) -> np.ndarray:
    """For each line, the index of the header line it belongs to (-1: none before it).

    ``is_head`` marks lines that start a record (parsed or rejected); ``is_cont`` lines that
    continue the previous one. Other lines (blank) get -1.
    """
    n = len(is_head)
    pos = np.where(is_head, np.arange(n), -1)
    np.maximum.accumulate(pos, out=pos)
    return np.where(is_head | is_cont, pos, -1)


def merge_text(head_idx: np.ndarray, cont_idx: np.ndarray, owner: np.ndarray,
               head_text: pl.Series, cont_text: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Join continuation lines onto their header's text with ``\\n``.

    ``head_idx``: line indices of the headers that have continuations; ``head_text`` their
    text; ``cont_idx``/``cont_text``: the continuation lines; ``owner``: header line index of
    each continuation. Returns (header line indices, merged texts) in header order.
    """
    df = pl.DataFrame({
        "o": np.concatenate([head_idx, owner]).astype(np.int64),
        "i": np.concatenate([head_idx, cont_idx]).astype(np.int64),
        "t": pl.concat([head_text.cast(pl.String), cont_text.cast(pl.String)]),
    }).sort(["o", "i"])
    g = df.group_by("o", maintain_order=True).agg(pl.col("t").str.join("\n"))
    return g["o"].to_numpy(), g["t"]


def anchors_summary(host: pl.Series, uptime_ns: np.ndarray, wall_ns: np.ndarray,
                    prec_ns: np.ndarray) -> dict[str, dict]:
    """Boot-time anchors from lines carrying both a wall time and a kernel uptime.

    A line is logged at ``wall = boot + uptime + delay`` (delay ≥ 0: the logger reads the ring
    buffer late, and replays the whole boot log when it starts) and the wall stamp is truncated
    to its precision, so every line gives an upper bound ``wall − uptime + prec`` on the boot
    time, and the smallest is the tightest: ``anchor_ns`` = min(wall − uptime) + prec/2, good to
    ±prec/2 (``spread_ns`` = 0) plus the smallest delay. (A median would be pulled minutes off
    by a replayed boot log.) Per host and boot (a new boot starts where the host's uptime goes
    back; keys ``host``, ``host#2``): ``anchor_ns`` (= ``boot_ns``), ``anchor`` (ISO), ``min_ns``,
    ``median_ns``, ``max_ns``, ``prec_ns``, ``n``, ``host``, ``boot``.
    """
    out: dict[str, dict] = {}
    if len(uptime_ns) == 0:
        return out
    hs = host.fill_null("?").cast(pl.String)
    names = hs.unique(maintain_order=True).to_list()  # hosts in order of appearance (few)
    code = hs.replace_strict(names, list(range(len(names))), return_dtype=pl.Int32).to_numpy()
    diff = wall_ns - uptime_ns
    for k, h in enumerate(names):
        sel = np.flatnonzero(code == k)
        up = uptime_ns[sel]
        boot = np.concatenate([[0], np.cumsum(up[1:] < up[:-1])])
        for b in range(int(boot[-1]) + 1):
            d = np.sort(diff[sel[boot == b]])  # int64 throughout: a float loses ns at epoch scale
            out[h if b == 0 else f"{h}#{b + 1}"] = _anchor(h, b, d, int(prec_ns[sel[boot == b]].max()))
    return out


def _anchor(h: str, b: int, d: np.ndarray, prec: int) -> dict:
    """One boot's anchor from its sorted wall − uptime differences (see :func:`anchors_summary`)."""
    anchor = int(d[0]) + prec // 2
    return {"anchor_ns": anchor, "boot_ns": anchor, "anchor": fmt_ns(anchor), "spread_ns": 0,
            "min_ns": int(d[0]), "median_ns": int(d[(d.size - 1) // 2]), "max_ns": int(d[-1]),
            "prec_ns": prec, "n": int(d.size), "host": h, "boot": b + 1}


class BootStamps:
    """The kernel uptime stamps of a file read in blocks, kept as :func:`anchors_summary` needs
    them and no more: per host and boot (a new boot where the host's uptime goes back, also
    across blocks), the wall − uptime differences (all: the median needs them) and the
    largest precision."""

    def __init__(self) -> None:
        self.hosts: dict[str, int] = {}
        self.last_up: list[int] = []
        self.boot: list[int] = []
        self.diffs: dict[tuple[int, int], list[np.ndarray]] = {}
        self.prec: dict[tuple[int, int], int] = {}

    def __bool__(self) -> bool:
        return bool(self.diffs)

    def add(self, host: pl.Series, uptime_ns: np.ndarray, wall_ns: np.ndarray, prec_ns: np.ndarray) -> None:
        if len(uptime_ns) == 0:
            return
        hs = host.fill_null("?").cast(pl.String)
        names = hs.unique(maintain_order=True).to_list()
        code = hs.replace_strict(names, list(range(len(names))), return_dtype=pl.Int32).to_numpy()
        diff = wall_ns - uptime_ns
        for k, name in enumerate(names):
            h = self.hosts.get(name)
            if h is None:
                h = self.hosts[name] = len(self.last_up)
                self.last_up.append(int(uptime_ns[code == k][0]))
                self.boot.append(0)
            sel = np.flatnonzero(code == k)
            up = uptime_ns[sel]
            back = np.empty(len(up), dtype=bool)
            back[0] = up[0] < self.last_up[h]
            back[1:] = up[1:] < up[:-1]
            boot = np.cumsum(back) + self.boot[h]
            for b in np.unique(boot).tolist():
                m = boot == b
                self.diffs.setdefault((h, b), []).append(diff[sel[m]].copy())
                self.prec[(h, b)] = max(self.prec.get((h, b), 0), int(prec_ns[sel[m]].max()))
            self.last_up[h] = int(up[-1])
            self.boot[h] = int(boot[-1])

    def summary(self) -> dict[str, dict]:
        names = list(self.hosts)
        out: dict[str, dict] = {}
        for h, b in sorted(self.diffs):
            d = np.sort(np.concatenate(self.diffs[(h, b)]))
            out[names[h] if b == 0 else f"{names[h]}#{b + 1}"] = _anchor(names[h], b, d, self.prec[(h, b)])
        return out
