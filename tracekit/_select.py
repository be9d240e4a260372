"""Source selectors: a source name, a glob, ``format:NAME`` or ``host:NAME`` (DESIGN.md)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any


def matches(selector: str, source: str, fmt: str | None = None, host: str | None = None) -> bool:
    """Whether ``selector`` picks the source.

    Example::

        >>> matches("*.jsonl", "app/api.jsonl"), matches("format:strace", "x", fmt="strace")
        (True, True)
    """
    if selector.startswith("format:"):
        return fnmatch.fnmatchcase(fmt or "", selector[7:])
    if selector.startswith("host:"):
        return fnmatch.fnmatchcase(host or "", selector[5:])
    if selector == source:
        return True
    base = source.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(source, selector) or fnmatch.fnmatchcase(base, selector)


def resolve_options(
    source: str,
    fmt: str,
    global_opts: Mapping[str, Any],
    per_selector: Mapping[str, Mapping[str, Any]] | None,
    host: str | None = None,
) -> dict[str, Any]:
    """Options for one source: global ones, overridden by every matching selector's."""
    opts = dict(global_opts)
    for sel, o in (per_selector or {}).items():
        if matches(sel, source, fmt, host):
            opts.update(o)
    return opts
