"""Fresh memory in small pages while a big input is read (Linux transparent huge pages off).

With transparent huge pages the kernel zeroes (and, with ``defrag=madvise``, may compact memory
for) 2 MiB at a time whenever the allocator touches fresh memory, however little of it is used.
A load allocates and frees its scratch several times over, so on this kind of machine huge pages
made the kernel time of a 1M-event load large and erratic (strace: 0.28-1.2 s of system time
for the same file; OTLP: ~1/3 of all CPU in ``clear_page_erms``). :func:`small_pages` switches
them off for the process (``prctl(PR_SET_THP_DISABLE)``) while it runs and restores the
previous setting when the last nested or concurrent user ends; elsewhere it does nothing.

Example::

    >>> from tracekit._pages import small_pages
    >>> with small_pages():
    ...     pass
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

BIG = 32 * 2**20  #: inputs (bytes in all) above which tk.load reads in small pages
_THP_LOCK = threading.Lock()
_THP_USERS = 0  # reads inside small_pages() right now
_THP_WAS_OFF = True  # whether huge pages were off for the process before the first of them


@contextmanager
def small_pages() -> Iterator[None]:
    """Fresh memory in 4 KiB pages, not transparent huge pages, while a big input is read
    (Linux ``prctl(PR_SET_THP_DISABLE)``; the process's setting is restored when the last
    such read ends; a no-op elsewhere).

    A read allocates and frees its scratch memory several times over, and huge pages are
    zeroed 2 MiB at a time however little of them is used: on the 1M-span OTLP workload, huge
    pages cost 0.4-0.8 s more kernel time and ~60 MB more peak RSS than small ones, for the
    same user time. :func:`tracekit.load` reads and joins inputs over :data:`BIG` in it."""
    global _THP_USERS, _THP_WAS_OFF
    if _PRCTL is None:
        yield
        return
    with _THP_LOCK:
        if _THP_USERS == 0:
            _THP_WAS_OFF = _PRCTL(_PR_GET_THP_DISABLE, 0, 0, 0, 0) != 0  # -1 (unknown): leave it
            if not _THP_WAS_OFF:
                _PRCTL(_PR_SET_THP_DISABLE, 1, 0, 0, 0)
        _THP_USERS += 1
    try:
        yield
    finally:
        with _THP_LOCK:
            _THP_USERS -= 1
            if _THP_USERS == 0 and not _THP_WAS_OFF:
                _PRCTL(_PR_SET_THP_DISABLE, 0, 0, 0, 0)


_PR_SET_THP_DISABLE, _PR_GET_THP_DISABLE = 41, 42


def _prctl() -> Any:
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        f = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    f.restype = ctypes.c_int
    return f


_PRCTL = _prctl()
