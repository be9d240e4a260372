"""Shared helpers for the kernel-trace readers (ftrace text, perf script, bpftrace).

Everything here works on whole columns (polars), never one Python object per line.

Example::

    >>> import polars as pl
    >>> secs_ns(pl.Series(["76", "1"]), pl.Series(["211513", "000000001"]))[0].tolist()
    [76211513000, 1000000001]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..schema import ATTRS_TYPE

#: key=value pairs in a tracepoint payload: a key is a word at the start or after white space;
#: a value runs to the next white space (``foo=bar=baz`` keeps ``foo=bar=baz`` whole after the
#: first ``=``), or is an ``ARRAY[...]`` of raw bytes (``[FAILED TO PARSE]`` events).
KV_RE = r"(?:^|\s)[A-Za-z_][\w.]*=(?:ARRAY\[[^\]]*\]|\S*)"


def secs_ns(secs: pl.Series, frac: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Exact ns (and precision ns) from the digits of ``secs.frac`` (no float ever).

    Example::

        >>> import polars as pl
        >>> ns, prec = secs_ns(pl.Series(["7115"]), pl.Series(["449594"]))
        >>> int(ns[0]), int(prec[0])
        (7115449594000, 1000)
    """
    s = secs.cast(pl.Int64, strict=False).fill_null(0).to_numpy().astype(np.int64)
    f = frac.fill_null("")
    digits = f.str.len_chars().to_numpy().astype(np.int64)
    fr = f.str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64, strict=False).fill_null(0).to_numpy()
    prec = (10 ** np.clip(9 - digits, 0, 9)).astype(np.int64)
    return s * 1_000_000_000 + fr.astype(np.int64), prec


def _pairs(payload: pl.Series, pattern: str, sep: str, reserved: tuple[str, ...]) -> pl.DataFrame:
    """Long ``(r, k, v)`` frame of the ``key<sep>value`` matches of ``pattern`` in each row."""
    m = pl.DataFrame({"m": payload.fill_null("").str.extract_all(pattern)}).with_row_index("r")
    df = m.explode("m").drop_nulls("m")
    kv = df["m"].str.strip_chars_start().str.splitn(sep, 2)
    out = pl.DataFrame({"r": df["r"].cast(pl.Int64), "k": kv.struct.field("field_0"),
                        "v": kv.struct.field("field_1").fill_null("")})
    if reserved:
        out = out.with_columns(k=pl.when(pl.col("k").is_in(list(reserved))).then(pl.lit("arg.") + pl.col("k"))
                               .otherwise(pl.col("k")))
    return out


def colon_long(payload: pl.Series, reserved: tuple[str, ...] = ()) -> pl.DataFrame:
    """``(name: value, name: value)`` argument lists (ftrace syscall events) as a long
    ``(r, k, v)`` frame (``r`` = row number)."""
    return _pairs(payload, r"[A-Za-z_]\w*: [^,)]*", ": ", reserved)


def kv_long(payload: pl.Series, reserved: tuple[str, ...] = ()) -> pl.DataFrame:
    """``key=value`` pairs of each payload as a long ``(r, k, v)`` frame (``r`` = row number);
    a key in ``reserved`` (one the reader itself writes to attrs) is stored as ``arg.<key>``.

    Example::

        >>> import polars as pl
        >>> kv_long(pl.Series(["a=1 b=x=y", "c="])).rows()
        [(0, 'a', '1'), (0, 'b', 'x=y'), (1, 'c', '')]
    """
    return _pairs(payload, KV_RE, "=", reserved)


def kv_get(kv: pl.DataFrame, name: str, n: int) -> pl.Series:
    """The (first) value of key ``name`` per row, from a long ``(r, k, v)`` frame (null if absent)."""
    sub = kv.filter(pl.col("k") == name).unique(subset="r", keep="first", maintain_order=True)
    out = pl.Series(name, [None] * n, dtype=pl.String)
    if sub.height:
        out = out.scatter(sub["r"].to_numpy(), sub["v"])
    return out


def attrs_from(parts: list[tuple[str, pl.Series]], long: pl.DataFrame | None = None,
               n: int | None = None) -> pa.Array:
    """Build a ``map<string,string>`` column from named scalar columns (nulls skipped) and
    an optional long ``(r, k, v)`` frame (appended after them). Built long (row, key, value),
    sorted stably by row, then cut into maps by per-row counts: no per-row list work.

    Example::

        >>> import polars as pl
        >>> attrs_from([("cpu", pl.Series(["1", None]))]).to_pylist()
        [[('cpu', '1')], []]
    """
    if n is None:
        n = len(parts[0][1])
    row = pl.Series("r", np.arange(n, dtype=np.int64))
    longs = []
    for k, s in parts:
        df = pl.DataFrame({"r": row, "v": s.cast(pl.String)}).filter(pl.col("v").is_not_null())
        longs.append(df.select("r", pl.lit(k, dtype=pl.String).alias("k"), "v"))
    if long is not None and long.height:
        longs.append(long.select(pl.col("r").cast(pl.Int64), pl.col("k").cast(pl.String), pl.col("v").cast(pl.String)))
    if not longs:
        longs.append(pl.DataFrame({"r": [], "k": [], "v": []}, schema={"r": pl.Int64, "k": pl.String, "v": pl.String}))
    long = pl.concat(longs).sort("r", maintain_order=True)
    counts = np.bincount(long["r"].to_numpy(), minlength=n).astype(np.int32)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    keys = to_arrow(long["k"]).cast(pa.string())
    vals = to_arrow(long["v"]).cast(pa.string())
    return pa.MapArray.from_arrays(pa.array(offsets), keys, vals).cast(ATTRS_TYPE)


def lists_to_map(keys: pl.Series, vals: pl.Series) -> pa.Array:
    """Two list<string> columns of equal shapes → an Arrow ``map<string,string>`` column."""
    ka = keys.to_arrow()
    va = vals.to_arrow()
    if isinstance(ka, pa.ChunkedArray):
        ka = ka.combine_chunks()
    if isinstance(va, pa.ChunkedArray):
        va = va.combine_chunks()
    ka = ka.cast(pa.list_(pa.string()))
    va = va.cast(pa.list_(pa.string()))
    offsets = ka.offsets
    flat_k = ka.flatten()
    flat_v = va.flatten()
    if len(flat_k) != len(flat_v):
        raise ValueError("attrs keys and values differ in length")
    if flat_v.null_count:
        import pyarrow.compute as pc

        flat_v = pc.fill_null(flat_v, "")
    m = pa.MapArray.from_arrays(offsets, flat_k, flat_v)
    return m.cast(ATTRS_TYPE)


def entity(kind: str, host: str | None, ids: pl.Series, start: pl.Series | None = None) -> pl.Series:
    """``thread/<host>/<tid>@<start>`` (``proc/...``) names; ``?`` where host/start is unknown."""
    h = host or "?"
    st = start.cast(pl.String).fill_null("?") if start is not None else pl.Series(["?"] * len(ids))
    df = pl.DataFrame({"i": ids.cast(pl.String), "s": st})
    out = df.select(
        pl.when(pl.col("i").is_not_null())
        .then(pl.concat_str([pl.lit(f"{kind}/{h}/"), pl.col("i"), pl.lit("@"), pl.col("s")]))
        .otherwise(None)
    )
    return out.to_series()


#: numeric ``prev_state`` values of older kernels (trace-cmd report prints the raw number)
_STATE_NUM = {"0": "R", "1": "S", "2": "D", "4": "T", "8": "t", "16": "X", "32": "Z", "64": "X",
              "128": "P", "130": "D", "256": "I", "1024": "I", "4096": "R+"}


def norm_state(s: Any) -> Any:
    """``prev_state`` → a state letter (R, S, D, …); numeric values of old kernels are mapped
    by their usual bit (unknown numbers kept as written)."""
    return s.replace(_STATE_NUM)


def to_arrow(s: Any) -> Any:
    """A polars Series → Arrow array (chunks combined); other values unchanged."""
    if isinstance(s, pl.Series):
        a = s.to_arrow()
        return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
    return s


def num(s: pl.Series, signed: bool = False) -> pl.Series:
    """Decimal or ``0x`` hex strings → float64 (anything else null); ``signed`` reads hex as
    a signed 64-bit number."""
    s = s.cast(pl.String).str.strip_chars()
    hexv = s.str.strip_prefix("0x").str.to_integer(base=16, dtype=pl.UInt64, strict=False)
    if signed:  # 64-bit two's complement: 0xfffffffffffffffe is -2 (a syscall's -ENOENT)
        hexv = hexv.reinterpret(signed=True)
    isdec = s.str.contains(r"^-?\d+(\.\d+)?$")
    return pl.DataFrame({"s": s, "h": hexv, "d": isdec}).select(
        pl.when(pl.col("d")).then(pl.col("s").cast(pl.Float64, strict=False))
        .when(pl.col("s").str.starts_with("0x")).then(pl.col("h").cast(pl.Float64))
        .otherwise(None)
    ).to_series()


def sched_fields(event: pl.Series, kv: pl.DataFrame, tid: pl.Series, pid: pl.Series,
                 ts: np.ndarray, host: str | None) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Entity, state and "is a state event" for scheduler/process/socket tracepoints.

    ``sched_switch`` → ``thread/<host>/<prev_pid>@<start>`` in ``prev_state``;
    ``sched_wakeup*`` → the woken thread, ``R``; ``sched_process_exec/exit/fork`` →
    ``proc/<host>/<pid>@<start>`` in ``exec``/``exit``/``fork``; ``inet_sock_set_state`` →
    state ``newstate`` (no entity). ``<start>`` is the ``ts_src`` of the id's
    ``sched_process_fork`` earlier in the same trace, else ``?``.
    """
    n = len(event)
    prev_pid = kv_get(kv, "prev_pid", n).cast(pl.Int64, strict=False)
    fpid = kv_get(kv, "pid", n).cast(pl.Int64, strict=False)
    child = kv_get(kv, "child_pid", n).cast(pl.Int64, strict=False)
    is_switch = event == "sched_switch"
    is_wake = event.is_in(["sched_wakeup", "sched_wakeup_new", "sched_waking"])
    is_proc = event.is_in(["sched_process_exec", "sched_process_exit", "sched_process_fork"])
    is_sock = event == "inet_sock_set_state"
    df = pl.DataFrame({
        "ev": event, "sw": is_switch, "wk": is_wake, "pr": is_proc, "pp": prev_pid, "fp": fpid,
        "ch": child, "tid": tid.cast(pl.Int64), "pid": pid.cast(pl.Int64), "ts": ts,
        "ps": kv_get(kv, "prev_state", n), "ns": kv_get(kv, "newstate", n), "so": is_sock,
    })
    df = df.with_columns(
        eid=pl.when(pl.col("sw")).then(pl.coalesce("pp", "tid"))
        .when(pl.col("wk")).then(pl.col("fp"))
        .when(pl.col("ev") == "sched_process_fork").then(pl.col("ch"))
        .when(pl.col("pr")).then(pl.coalesce("fp", "pid", "tid"))
        .otherwise(None),
        i=pl.int_range(pl.len()),
    )
    forks = (df.filter(pl.col("ev") == "sched_process_fork").select(eid=pl.col("ch"), start=pl.col("ts"))
             .drop_nulls().sort("start"))
    withid = df.filter(pl.col("eid").is_not_null()).sort("ts")
    start = pl.Series([None] * len(df), dtype=pl.Int64)
    if forks.height and withid.height:
        joined = withid.join_asof(forks, left_on="ts", right_on="start", by="eid", strategy="backward",
                                check_sortedness=False)
        start = start.scatter(joined["i"].to_numpy(), joined["start"])
    ent_thread = entity("thread", host, df["eid"], start)
    ent_proc = entity("proc", host, df["eid"], start)
    ent = pl.DataFrame({"pr": is_proc, "a": ent_thread, "b": ent_proc, "eid": df["eid"]}).select(
        pl.when(pl.col("eid").is_null()).then(None).when(pl.col("pr")).then(pl.col("b")).otherwise(pl.col("a"))
    ).to_series()
    state = df.select(
        pl.when(pl.col("sw")).then(pl.col("ps"))
        .when(pl.col("wk")).then(pl.lit("R"))
        .when(pl.col("ev") == "sched_process_exec").then(pl.lit("exec"))
        .when(pl.col("ev") == "sched_process_exit").then(pl.lit("exit"))
        .when(pl.col("ev") == "sched_process_fork").then(pl.lit("fork"))
        .when(pl.col("so")).then(pl.col("ns"))
        .otherwise(None)
    ).to_series()
    state = pl.DataFrame({"s": state, "sw": is_switch}).select(
        pl.when(pl.col("sw")).then(norm_state(pl.col("s"))).otherwise(pl.col("s"))).to_series()
    return ent, state, (is_switch | is_wake | is_proc | is_sock)
