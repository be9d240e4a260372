"""Vectorised time parsing to int64 nanoseconds, and time/duration arguments.

No float ever holds an absolute time: fractions are parsed as digit strings and scaled in
integers, so ``1710406800.123456789`` stays exact.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .errors import TimeError

NS = 1_000_000_000

_ISO_RE = (
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9})\d*)?)?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$"
)


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 for proleptic Gregorian dates (vectorised, int64)."""
    y = y.astype(np.int64) - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    m = m.astype(np.int64)
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d.astype(np.int64) - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _frac_ns(frac: pl.Series) -> np.ndarray:
    """Fraction digit strings ("5", "123456", None) to nanoseconds (int64)."""
    f = frac.fill_null("")
    padded = f.str.pad_end(9, "0").str.slice(0, 9)
    return padded.cast(pl.Int64, strict=False).fill_null(0).to_numpy()


def _to_pl(arr: Any) -> pl.Series:
    if isinstance(arr, pl.Series):
        return arr
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr, pa.Array):
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        return pl.from_arrow(arr)
    return pl.Series(list(arr), dtype=pl.String)


def parse_iso8601(strings: Any) -> dict[str, np.ndarray]:
    """Parse ISO-8601 / RFC 3339 strings.

    Returns a dict of numpy arrays: ``ns`` (int64 epoch ns, 0 where invalid), ``ok`` (bool),
    ``tz`` (bool: an offset or Z was given; if not, the time was read as UTC) and ``prec``
    (int64 ns: the precision the string carries, 1 s for whole seconds).

    Example::

        >>> r = parse_iso8601(["2024-03-14T10:00:00.5+01:00"])
        >>> int(r["ns"][0]), bool(r["tz"][0]), int(r["prec"][0])
        (1710406800500000000, True, 100000000)
    """
    s = _to_pl(strings)
    g = s.str.extract_groups(_ISO_RE)
    n = len(s)
    parts = [g.struct.field(str(i + 1)) for i in range(8)]
    ok = parts[0].is_not_null().to_numpy()
    ok = np.asarray(ok, dtype=bool)

    def num(series: pl.Series, default: int = 0) -> np.ndarray:
        return series.cast(pl.Int64, strict=False).fill_null(default).to_numpy()

    y, mo, d = num(parts[0], 1970), num(parts[1], 1), num(parts[2], 1)
    hh, mi, ss = num(parts[3]), num(parts[4]), num(parts[5])
    ok &= (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= 31) & (hh <= 24) & (mi <= 59) & (ss <= 60)
    frac = parts[6]
    fns = _frac_ns(frac)
    tzs = parts[7]
    has_tz = tzs.is_not_null().to_numpy()
    # offset in minutes: Z/UTC/GMT -> 0, +HH, +HHMM, +HH:MM
    tzd = tzs.str.replace(":", "").fill_null("")
    sign = np.where(tzd.str.starts_with("-").to_numpy(), -1, 1)
    hhmm = tzd.str.slice(1).str.pad_end(4, "0")
    oh = hhmm.str.slice(0, 2).cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    om = hhmm.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    off_min = sign * (oh * 60 + om)
    days = days_from_civil(y, mo, d)
    secs = days * 86400 + hh * 3600 + mi * 60 + ss - off_min * 60
    ns = secs * NS + fns
    # precision: 10^(9-len(frac)) ns, 1 s without a fraction, 60 s without seconds
    flen = frac.str.len_chars().fill_null(0).to_numpy().astype(np.int64)
    prec = np.where(flen > 0, 10 ** (9 - np.minimum(flen, 9)), NS)
    prec = np.where(parts[5].is_null().to_numpy(), 60 * NS, prec)
    ns = np.where(ok, ns, 0)
    if n == 0:
        ns = np.zeros(0, dtype=np.int64)
    return {"ns": ns.astype(np.int64), "ok": ok, "tz": has_tz & ok, "prec": prec.astype(np.int64)}


_EPOCH_RE = r"^\s*(-?\d{1,20})(?:\.(\d{1,9})\d*)?\s*$"


def parse_epoch(values: Any, unit: str | None = None) -> dict[str, np.ndarray]:
    """Parse epoch numbers or numeric strings to ns, exactly.

    ``unit`` is ``"s"``, ``"ms"``, ``"us"`` or ``"ns"``; when None it is guessed per value from
    its magnitude (< 1e11 s, < 1e14 ms, < 1e17 µs, else ns), which holds for 1973–5138.

    Example::

        >>> int(parse_epoch(["1710406800.25"])["ns"][0])
        1710406800250000000
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and (
        pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
    ):
        if pa.types.is_integer(values.type):
            ip = np.asarray(values.fill_null(0).cast(pa.int64()).to_numpy(zero_copy_only=False))
            fr = np.zeros(len(ip), dtype=np.int64)
            flen = np.zeros(len(ip), dtype=np.int64)
            ok = np.asarray(values.is_valid().to_numpy(zero_copy_only=False))
        else:
            # floats: go through their shortest decimal repr so 1.1 stays 1.1, not 1.0999999
            strs = pc.cast(values, pa.string())
            return parse_epoch(strs, unit)
    else:
        s = _to_pl(values)
        g = s.str.extract_groups(_EPOCH_RE)
        ipart = g.struct.field("1")
        fpart = g.struct.field("2")
        ok = ipart.is_not_null().to_numpy()
        ip = ipart.cast(pl.Int64, strict=False).fill_null(0).to_numpy()
        fr = _frac_ns(fpart)
        flen = fpart.str.len_chars().fill_null(0).to_numpy().astype(np.int64)
    mag = np.abs(ip)
    if unit is None:
        scale = np.where(mag < 10**11, NS, np.where(mag < 10**14, 10**6, np.where(mag < 10**17, 10**3, 1)))
    else:
        scale = np.full(len(ip), {"s": NS, "ms": 10**6, "us": 10**3, "ns": 1}[unit], dtype=np.int64)
    # fraction digits are of the unit: fr is in 1e-9 of the unit
    frac_ns = (fr * scale) // NS
    ns = ip * scale + np.where(ip < 0, -frac_ns, frac_ns)
    prec = np.where(flen > 0, np.maximum(scale // (10 ** np.minimum(flen, 9)), 1), scale)
    return {"ns": np.where(ok, ns, 0).astype(np.int64), "ok": np.asarray(ok, dtype=bool),
            "prec": prec.astype(np.int64)}


# --------------------------------------------------------------------------- user arguments

_DUR_RE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|min|h|d)?\s*$")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": NS, "m": 60 * NS,
            "min": 60 * NS, "h": 3600 * NS, "d": 86400 * NS}


@functools.lru_cache(maxsize=256)
def _duration_str(value: str) -> int | None:
    m = _DUR_RE.match(value)
    if not m:
        return None
    num, unit = m.group(1), m.group(2) or "s"
    scale = _UNIT_NS[unit]
    neg = num.startswith("-")
    num = num.lstrip("+-")
    ip, _, fp = num.partition(".")
    total = int(ip) * scale + (int(fp.ljust(18, "0")[:18]) * scale) // 10**18 if fp else int(ip) * scale
    return -total if neg else total


def to_duration_ns(value: Any) -> int:
    """A duration argument to int ns: ``"5s"``, ``"-2.75s"``, ``"250ms"``, a timedelta, or int ns.

    Example::

        >>> to_duration_ns("-2.75s")
        -2750000000
    """
    if isinstance(value, bool):
        raise TimeError(f"not a duration: {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, _dt.timedelta):
        return (value.days * 86400 + value.seconds) * NS + value.microseconds * 1000
    if hasattr(value, "value") and hasattr(value, "to_timedelta64"):  # pandas Timedelta
        return int(value.value)
    if isinstance(value, str):
        ns = _duration_str(value)
        if ns is not None:
            return ns
    raise TimeError(f"not a duration: {value!r} (use e.g. '5s', '250ms', '-2.75s' or int ns)")


def to_time_ns(value: Any) -> int:
    """A time argument to int epoch ns. Naive times are refused.

    Accepts a timezone-aware ISO-8601 string, datetime, pandas Timestamp, numpy datetime64
    (taken as UTC, it has no zone) or int ns.

    Example::

        >>> to_time_ns("2024-03-14T09:00:00Z")
        1710406800000000000
    """
    if isinstance(value, bool):
        raise TimeError(f"not a time: {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if hasattr(value, "value") and hasattr(value, "tzinfo") and hasattr(value, "to_pydatetime"):
        if value.tzinfo is None:
            raise TimeError(f"naive time {value!r}: give a timezone (e.g. tz='UTC')")
        return int(value.value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TimeError(f"naive time {value!r}: give a timezone, e.g. datetime(..., tzinfo=timezone.utc)")
        delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        return to_duration_ns(delta)
    if isinstance(value, str):
        r = parse_iso8601([value])
        if not r["ok"][0]:
            raise TimeError(f"cannot read time {value!r}: use ISO-8601 with a zone, e.g. 2024-03-14T09:00:00Z")
        if not r["tz"][0]:
            raise TimeError(f"naive time {value!r}: add a zone, e.g. {value}Z")
        return int(r["ns"][0])
    if isinstance(value, pa.TimestampScalar):
        if value.type.tz is None:
            raise TimeError(f"naive time {value!r}: give a timezone")
        return int(value.cast(pa.int64()).as_py())
    raise TimeError(f"not a time: {value!r}")


def fmt_ns(ns: int | None) -> str:
    """Epoch ns as ISO-8601 UTC with the digits it needs (for messages and reprs)."""
    if ns is None:
        return "—"
    secs, frac = divmod(int(ns), NS)
    base = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(seconds=secs)
    s = base.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        s += "." + f"{frac:09d}".rstrip("0")
    return s + "Z"


def fmt_duration(ns: Any, signed: bool = True) -> str:
    """A duration in ns for people: ``+2.750000 s``, ``-3.146 ms``, ``+285.4 µs``, ``+120 ns``.

    Accepts int ns, a pandas/NumPy/datetime timedelta, or None/NaN (→ ``""``).

    Example::

        >>> fmt_duration(-2_750_000_000), fmt_duration(285_400)
        ('-2.750000 s', '+285.4 µs')
    """
    if ns is None:
        return ""
    if not isinstance(ns, (int, np.integer)):
        try:
            import pandas as pd

            if pd.isna(ns):
                return ""
            ns = int(pd.Timedelta(ns).value)
        except (TypeError, ValueError):
            return str(ns)
    ns = int(ns)
    a = abs(ns)
    sign = ("-" if ns < 0 else "+") if signed else ("-" if ns < 0 else "")
    if a >= NS:
        return f"{sign}{a / NS:.6f} s"
    if a >= 10**6:
        return f"{sign}{a / 1e6:.3f} ms"
    if a >= 10**3:
        return f"{sign}{a / 1e3:.1f} µs"
    return f"{sign}{a} ns"
