"""tracekit: trace forensics in Jupyter.

Read trace and event dumps into one canonical Arrow table, line up their clocks, find the
transitions and show what every source was doing around them.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("data/demo-incident")      # doctest: +SKIP
    >>> tl.sql("select source, count(*) from events group by 1")   # doctest: +SKIP
"""

from . import schema
from ._load import load
from ._version import __version__
from .errors import OptionError, ParseError, TimeError, TracekitError, UnknownFormatError
from .readers import formats
from .report import report  # the function shadows the submodule's name on purpose
from .timeline import Timeline
from .transitions import LogRule, StateMachine, Transitions, rules


def __getattr__(name: str):
    """Heavy parts load on first use: ``tk.plot`` (matplotlib), ``tk.browse``
    (ipywidgets), ``tk.open``/``tk.ingest`` (the Parquet store)."""
    import importlib

    if name == "plot":
        return importlib.import_module(".plot", __name__)
    if name == "browse":
        return importlib.import_module(".plot", __name__).browse
    if name in ("open", "ingest"):
        return getattr(importlib.import_module(".store", __name__), name)
    raise AttributeError(f"module 'tracekit' has no attribute {name!r}")


__all__ = [
    "__version__",
    "load",
    "formats",
    "Timeline",
    "Transitions",
    "StateMachine",
    "LogRule",
    "rules",
    "plot",
    "report",
    "browse",
    "ingest",  # tk.open is public too, but kept out of * so it never shadows the builtin
    "schema",
    "TracekitError",
    "UnknownFormatError",
    "OptionError",
    "ParseError",
    "TimeError",
]
