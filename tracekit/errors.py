"""Exceptions raised by tracekit.

One root, a few subclasses; every message names the file and, where there is one, the line::

    TracekitError
     ├── UnknownFormatError   (also a ValueError)  no reader for a format name / a file's content
     ├── OptionError          (also a TypeError)   a reader option nobody takes, or a bad value
     ├── ParseError           (also a ValueError)  a whole input cannot be read (not one bad line:
     │                                             that is a reject row)
     └── TimeError            (also a ValueError)  a time argument that is naive or unreadable
"""

from __future__ import annotations

__all__ = ["TracekitError", "UnknownFormatError", "OptionError", "ParseError", "TimeError"]


class TracekitError(Exception):
    """Root of every error tracekit raises on purpose."""


class UnknownFormatError(TracekitError, ValueError):
    """No reader is registered for that name, or none recognises a file's content."""


class OptionError(TracekitError, TypeError):
    """A reader option that no chosen reader takes, or a value it cannot use."""


class ParseError(TracekitError, ValueError):
    """An input that cannot be read at all. ``file`` and ``line`` say where."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)


class TimeError(TracekitError, ValueError):
    """A time argument that cannot be read, or that has no timezone."""
