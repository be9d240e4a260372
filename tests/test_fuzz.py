"""Property-based fuzzing of every registered reader with mutated real dumps.

For each reader in ``tk.formats()`` (readers added later join automatically), hypothesis
mutates real files — bit flips, truncation, inserted garbage / NUL / invalid UTF-8, duplicated
and dropped lines — taken from every corpus format folder (the smallest few of each, capped in
size), the project's container fixtures and a generated CSV/Parquet pair, and loads them with
``format=`` forcing that reader. Properties:

* only :class:`tk.TracekitError` escapes, and it is not the loader's wrapper around a reader
  crash (``reader 'x' failed: KeyError: …``) nor an accounting mismatch: those are bugs;
* when a Timeline comes back, every record is accounted for (``helpers.assert_accounted``).

Bounded and deterministic: ``derandomize=True``, no example database, no shrinking, 20 examples
per reader (``TRACEKIT_FUZZ_EXAMPLES`` raises it). Half the examples start from the reader's own format folder when there is one.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import traceback
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tracekit as tk

from .helpers import assert_accounted

FIXTURES = Path(__file__).parent / "fixtures"
#: examples per reader; raise it locally for a deeper run (TRACEKIT_FUZZ_EXAMPLES=500)
EXAMPLES = int(os.environ.get("TRACEKIT_FUZZ_EXAMPLES", "20"))
PER_DIR = 3  # smallest files taken from each corpus format folder
CAP = 16384  # bytes of a seed kept (cut at a line end)
GARBAGE = [b"\x00", b"\x00\x00\x00\x00", b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\n\n", b"\r\n", b"{",
           b"}", b"[", b'"', b"\\", b"=", b",", b"\t", b" stdout P ", b"PAR1", b"\x1f\x8b"]
READERS = tk.formats().column("name").to_pylist()


def _cap(data: bytes) -> bytes:
    if len(data) <= CAP:
        return data
    cut = data.rfind(b"\n", 0, CAP)
    return data[: cut + 1 if cut > 0 else CAP]


def _generated_seeds() -> dict[str, bytes]:
    csv = (b"time,pod,level,message,n\n2024-03-14T09:00:00Z,api-1,info,start,1\n"
           b'2024-03-14T09:00:01Z,api-1,warn,"a, ""b""\nc",2\n1710406802,api-2,error,boom,\n')
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({
        "timestamp": pa.array([1710406800_000_000_000, 1710406801_000_000_000], pa.timestamp("ns", tz="UTC")),
        "level": ["info", "error"], "msg": ["a", "b"], "n": [1.5, None],
    }), sink)
    return {"csv/generated.csv": csv, "parquet/generated.parquet": sink.getvalue().to_pybytes()}


@pytest.fixture(scope="module")
def seeds(corpus: Path) -> dict[str, bytes]:
    """name → bytes: a few small files of every corpus format, container fixtures, csv/parquet."""
    out: dict[str, bytes] = {}
    for d in sorted(p for p in corpus.iterdir() if p.is_dir()):
        files = sorted((p for p in d.iterdir() if p.is_file()), key=lambda p: (p.stat().st_size, p.name))
        for p in files[:PER_DIR]:
            data = p.read_bytes()
            if p.suffix == ".gz":
                data = gzip.decompress(data)
            out[f"{d.name}/{p.name}"] = _cap(data)
    for p in sorted((FIXTURES / "container").rglob("*.log")):
        out[f"container/{p.name}"] = _cap(p.read_bytes())
    out.update(_generated_seeds())
    return out


def _own(reader: str, names: list[str]) -> list[str]:
    stem = reader.split("_")[0]
    return [n for n in names if n.split("/")[0].split("_")[0] == stem]


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes], reader: str) -> tuple[str, list[str], bytes]:
    names = sorted(seeds)
    own = _own(reader, names)
    pool = own if own and draw(st.booleans()) else names
    name = draw(st.sampled_from(pool))
    data = seeds[name]
    steps: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "dup", "drop"]))
        n = len(data)
        if op == "flip" and n:
            i, bit = draw(st.integers(0, n - 1)), draw(st.integers(0, 7))
            data = data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]
            steps.append(f"flip byte {i} bit {bit}")
        elif op == "truncate":
            i = draw(st.integers(0, n))
            data = data[:i]
            steps.append(f"truncate at {i}")
        elif op == "insert":
            i = draw(st.integers(0, n))
            junk = draw(st.sampled_from(GARBAGE) | st.binary(min_size=1, max_size=12))
            data = data[:i] + junk + data[i:]
            steps.append(f"insert {junk!r} at {i}")
        elif op in ("dup", "drop"):
            lines = data.split(b"\n")
            j = draw(st.integers(0, max(len(lines) - 1, 0)))
            if op == "dup":
                lines.insert(j, lines[j])
            else:
                del lines[j]
            data = b"\n".join(lines)
            steps.append(f"{op} line {j + 1}")
    return name, steps, data


def _check(reader: str | None, name: str, steps: list[str], data: bytes) -> None:
    where = f"reader {reader or '(detected)'!r} on {name} after {steps or 'no change'}"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "input.bin"
        path.write_bytes(data)
        try:
            tl = tk.load(path, format=reader)
        except tk.TracekitError as e:
            msg = str(e)
            crashed = re.search(r"reader '[\w-]+' failed:", msg) is not None
            if crashed or "accounting mismatch" in msg:
                cause = "".join(traceback.format_exception(e.__cause__)) if e.__cause__ else ""
                pytest.fail(f"{where}: {msg}\n{cause}", pytrace=False)
            return
        except Exception:  # anything else escaping tk.load is a bug
            pytest.fail(f"{where}: non-tracekit error escaped\n{traceback.format_exc()}", pytrace=False)
        assert_accounted(tl)


@pytest.mark.corpus
@pytest.mark.parametrize("reader", READERS)
def test_reader_survives_mutated_dumps(reader: str, seeds: dict[str, bytes]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(case=mutated(seeds, reader))
    def run(case: tuple[str, list[str], bytes]) -> None:
        _check(reader, *case)

    run()


@pytest.mark.corpus
def test_detection_survives_mutated_dumps(seeds: dict[str, bytes]) -> None:
    """Without ``format=``: sniffing mutated bytes, then reading with whichever reader wins."""
    @settings(max_examples=2 * EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(case=mutated(seeds, ""))
    def run(case: tuple[str, list[str], bytes]) -> None:
        _check(None, *case)

    run()


@pytest.mark.corpus
def test_every_format_folder_seeds_the_fuzz(corpus: Path, seeds: dict[str, bytes]) -> None:
    folders = {p.name for p in corpus.iterdir() if p.is_dir()}
    assert folders <= {n.split("/")[0] for n in seeds}
