"""The reader registry: every module in this package registers one or more formats.

``formats()`` lists them; ``get_reader(name)`` finds one; ``sniff(inp)`` picks one from a
file's content (its name is only a hint).
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings

import pyarrow as pa

from ..errors import UnknownFormatError
from ._base import _REGISTRY, Input, Reader, ReadResult, register, split_lines

__all__ = ["Input", "Reader", "ReadResult", "register", "split_lines", "get_reader",
           "formats", "sniff", "SNIFF_THRESHOLD"]

#: A reader must be at least this sure of a file's content to be chosen for it.
SNIFF_THRESHOLD = 0.5
#: How much a matching file extension adds to a reader's confidence (a hint, not the rule).
EXTENSION_BONUS = 0.05

_loaded = False
#: reader modules that failed to import: module name → the error (one broken reader must
#: not take every format down with it)
BROKEN: dict[str, str] = {}


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{__name__}.{mod.name}")
        except Exception as e:  # report, keep the other readers
            BROKEN[mod.name] = f"{type(e).__name__}: {e}"
            warnings.warn(f"tracekit reader module {mod.name!r} failed to import ({e}); "
                          "its formats are unavailable", RuntimeWarning, stacklevel=2)
    _loaded = True


def known() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_reader(name: str) -> Reader:
    """The reader registered under ``name``; an error listing the known ones otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownFormatError(
            f"{name!r} is not a known format; known: {', '.join(known())}"
        ) from None


def formats() -> pa.Table:
    """The registered readers: name, description, options and extension hints.

    Example::

        >>> import tracekit as tk
        >>> "jsonl" in tk.formats().column("name").to_pylist()
        True
    """
    _load_all()
    rows = [
        {
            "name": r.name,
            "description": r.description,
            "options": "; ".join(f"{k}: {v}" for k, v in sorted(r.options.items())),
            "extensions": " ".join(r.extensions),
        }
        for r in sorted(_REGISTRY.values(), key=lambda r: r.name)
    ]
    schema = pa.schema([(k, pa.string()) for k in ("name", "description", "options", "extensions")])
    return pa.Table.from_pylist(rows, schema=schema)


def sniff(inp: Input) -> tuple[Reader | None, float]:
    """The reader most confident about ``inp``'s content, and its confidence.

    Returns ``(None, best)`` when no reader reaches :data:`SNIFF_THRESHOLD`.
    """
    _load_all()
    head = inp.head()
    if head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark says nothing about the format
        head = head[3:]
    lname = inp.name.lower()
    for suffix in (".gz", ".zst", ".bz2", ".xz"):
        if lname.endswith(suffix):
            lname = lname[: -len(suffix)]
    best: Reader | None = None
    best_score = 0.0
    for r in _REGISTRY.values():
        try:
            score = float(r.sniff(head, inp.name))
        except Exception:  # a sniffer must never break loading; treat as "not mine"
            score = 0.0
        if score > 0 and any(lname.endswith(e) for e in r.extensions):
            score += EXTENSION_BONUS
        if score > best_score:
            best, best_score = r, score
    if best_score < SNIFF_THRESHOLD:
        return None, best_score
    return best, best_score
