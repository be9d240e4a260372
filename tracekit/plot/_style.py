"""Colours, units and text helpers shared by the plots (no state: everything is a function of
its arguments, so a key has the same colour in every figure and every session)."""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

import numpy as np

__all__ = ["color_for", "kind_color", "PALETTE", "pick_unit", "fmt_abs", "abbreviate"]

#: Okabe–Ito + Tableau-like colours, distinguishable on white and for most colour-blind readers.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#8C564B",
    "#1F77B4", "#2CA02C", "#9467BD", "#BCBD22", "#17BECF", "#AD494A", "#637939", "#7B4173",
)

#: Fixed colours and markers for the canonical kinds (other keys are hashed onto PALETTE).
KIND_STYLE = {
    "span": ("#0072B2", "s"),
    "instant": ("#E69F00", "D"),
    "log": ("#7F7F7F", "o"),
    "counter": ("#009E73", "^"),
    "state": ("#CC79A7", "v"),
    "sample": ("#56B4E9", "."),
    "flow": ("#8C564B", ">"),
    "marker": ("#BCBD22", "P"),
    "loss": ("#D55E00", "X"),
}
#: Pastel fills for state bands (no greys: grey means "not recording").
STATE_PALETTE = ("#A6CEE3", "#B2DF8A", "#FDBF6F", "#CAB2D6", "#FFFF99", "#FB9A99", "#8DD3C7", "#BEBADA",
                 "#80B1D3", "#FDB462", "#B3DE69", "#FCCDE5")
NR_FACE, NR_EDGE = "#FBECE6", "#D8A090"  # "not recording": a tinted hatch, unlike any density colour
AMBIGUOUS = "#FF8C00"   # halo and whisker of events whose order is not decided
RACE = "#D62728"        # race-candidate links
TRANSITION = "#C00000"


def color_for(key: Any) -> str:
    """A colour for ``key``: a stable hash (BLAKE2b, not Python's salted ``hash``) onto PALETTE.

    Example::

        >>> color_for("node-a/syslog") == color_for("node-a/syslog")
        True
    """
    h = hashlib.blake2b(str(key).encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return PALETTE[int.from_bytes(h, "big") % len(PALETTE)]


#: Fixed colours for the built-in transition rules (others are hashed onto PALETTE).
RULE_COLORS = {
    "k8s-events": "#56B4E9", "endpoints": "#D55E00", "span-status": "#CC79A7", "process": "#E69F00",
    "exit-status": "#AD494A", "log-state": "#009E73", "state-column": "#7F7F7F", "value-change": "#9467BD",
    "cron": "#0072B2",
}


def rule_color(rule: Any) -> str:
    """The colour of a transition rule (fixed for the built-in rules, hashed otherwise)."""
    return RULE_COLORS.get(str(rule)) or color_for(f"rule:{rule}")


def state_color(state: Any) -> str:
    """The band colour of a state value (stable hash onto STATE_PALETTE)."""
    h = hashlib.blake2b(f"state:{state}".encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return STATE_PALETTE[int.from_bytes(h, "big") % len(STATE_PALETTE)]


def kind_color(kind: Any) -> str:
    """The colour of an event kind (fixed for the canonical kinds, hashed otherwise)."""
    return KIND_STYLE[kind][0] if kind in KIND_STYLE else color_for(f"kind:{kind}")


def kind_marker(kind: Any) -> str:
    return KIND_STYLE[kind][1] if kind in KIND_STYLE else "o"


_UNITS = (("s", 10**9), ("ms", 10**6), ("µs", 10**3), ("ns", 1))


def pick_unit(span_ns: float) -> tuple[str, int]:
    """The largest unit in which ``span_ns`` is at least 2 (``5s`` → s, ``40ms`` → ms)."""
    for name, f in _UNITS:
        if span_ns >= 2 * f:
            return name, f
    return "ns", 1


def _tzinfo(tz: Any) -> _dt.tzinfo:
    if tz is None:
        return _dt.timezone.utc
    if isinstance(tz, _dt.tzinfo):
        return tz
    from zoneinfo import ZoneInfo

    return ZoneInfo(str(tz))


def fmt_abs(ns: int, tz: Any = None, digits: int = 6, date: bool = True) -> str:
    """Absolute time ``ns`` (epoch ns) as text in UTC (or ``tz``), with ``digits`` decimals."""
    ns = int(ns)
    sec, frac = divmod(ns, 10**9)
    d = _dt.datetime.fromtimestamp(sec, _tzinfo(tz))
    s = d.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")
    if digits:
        s += "." + f"{frac:09d}"[:digits]
    off = d.utcoffset()
    if off is None or off == _dt.timedelta(0):
        return s + (" UTC" if tz is None or str(tz).upper() in ("UTC", "Z") else f" {tz}")
    return s + d.strftime(" %z")


def abbreviate(text: Any, width: int) -> str:
    """``text`` cut to ``width`` characters with a middle ellipsis (keeps both ends:
    ``node-c/perf-tcp.txt.gz`` → ``node-c/pe…txt.gz``)."""
    s = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
    s = " ".join(s.split())
    if len(s) <= width:
        return s
    if width <= 1:
        return "…"
    head = (width - 1) * 3 // 5
    tail = width - 1 - head
    return s[:head] + "…" + (s[-tail:] if tail else "")


def natural_key(s: str) -> tuple:
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(s)))
