"""Shared fixtures: the real-dump corpus (TRACEKIT_CORPUS), temp folders, figure cleanup."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus folder. Skips when TRACEKIT_CORPUS is unset; fails when it is set
    but missing (so in CI, where .ci/run sets it, no corpus test skips)."""
    value = os.environ.get("TRACEKIT_CORPUS")
    if not value:
        pytest.skip("TRACEKIT_CORPUS is unset: set it to ../shared/corpus to run corpus tests")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"TRACEKIT_CORPUS={value} is set but is not a folder")
    return path


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close("all")
