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
from .timeline import Timeline
from .transitions import LogRule, StateMachine, Transitions, rules

__all__ = [
    "__version__",
    "load",
    "formats",
    "Timeline",
    "Transitions",
    "StateMachine",
    "LogRule",
    "rules",
    "schema",
    "TracekitError",
    "UnknownFormatError",
    "OptionError",
    "ParseError",
    "TimeError",
]
