"""The examples in docstrings run (those that need files are marked +SKIP)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import tracekit as tk

MODULES = ["tracekit._time", "tracekit.schema", "tracekit.readers._base", "tracekit._select", "tracekit.report",
           "tracekit.transitions", "tracekit.timeline", "tracekit.readers", "tracekit.clocks",
           "tracekit.interleave", "tracekit.errors"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, extraglobs={"tk": tk, "pa": __import__("pyarrow"), "np": __import__("numpy")},
                          optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
