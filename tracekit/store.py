"""The Parquet store: ingest dumps once, then query them lazily with DuckDB and Dask.

Layout of ``incident.tkstore/``::

    manifest.json                 the commit point: inputs, their hashes, files, source rows
    events/sid=<id>/hour=<YYYYmmddHH>/part-<key>.parquet   canonical schema, sorted by ts_src
    rejects/sid=<id>/rejects-<key>.parquet
    sources.parquet               the sources table (a copy; the manifest is authoritative)
    clocks.json, clocks.parquet   clock corrections from ``align()`` (events never rewritten)
    transitions.parquet           cached result of ``transitions()`` with the built-in rules

Each source's events are partitioned by the hour of ``ts_src`` (its own clock) and sorted by
``ts_src`` with row-group statistics, so a window in aligned time is mapped back into each
source's clock and only the overlapping files and row groups are read. The ``seq`` column in
the files is the row's number within its source; the global ``seq`` (as :func:`tracekit.load`
numbers rows) is that plus the source's base, added when reading. ``ts`` is recomputed from
``ts_src`` and the current clock table when reading.

Writes are atomic: data files get fresh names keyed by the input's hash, and the manifest is
replaced last (temp + rename); files the manifest does not name are removed after the commit.
An interrupted ingest therefore leaves the previous store readable. Re-ingesting skips inputs
whose hash is unchanged and rewrites only the partitions of the ones that changed.

Example::

    >>> from tracekit import store
    >>> res = store.ingest("incident/", "incident.tkstore", jobs=2)       # doctest: +SKIP
    >>> tl = store.open("incident.tkstore")                                # doctest: +SKIP
    >>> tl.window("2024-03-14T09:14:00Z", "2024-03-14T09:15:00Z")          # doctest: +SKIP
    >>> tl.sql("select source, count(*) from events group by 1")          # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import concurrent.futures as cf
import fnmatch
import hashlib
import html
import json
import multiprocessing
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _inputs, _select, _time
from .errors import TracekitError
from .schema import EVENT_SCHEMA, REJECT_SCHEMA, SOURCE_SCHEMA
from .timeline import Timeline, apply_clock

__all__ = ["ingest", "open", "IngestResult", "StoreTimeline", "STORE_VERSION"]

STORE_VERSION = 1
ROW_GROUP_ROWS = 8192  # small enough that a one-minute window reads little more than it needs
_EDGE_BATCH = 1024  # rows per batch when decoding a window's last row group up to its end
_HOUR_NS = 3600 * 10**9
_COMPRESSION = "zstd"
_COMPRESSION_LEVEL = 1
_MARGIN_NS = 1000  # slack when mapping aligned times back into a source's clock (rounding)


# --------------------------------------------------------------------------- small helpers


def _sid(name: str) -> str:
    """A path-safe, stable id for a source name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-40:].strip("._") or "src"
    return f"{safe}-{hashlib.blake2b(name.encode(), digest_size=5).hexdigest()}"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_write_table(table: pa.Table, path: Path, **kw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp, compression=_COMPRESSION, compression_level=_COMPRESSION_LEVEL, **kw)
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp,)):
        return int(v.value)
    if isinstance(v, pd.Timedelta):
        return int(v.value)
    if hasattr(v, "isoformat") and hasattr(v, "timestamp"):  # datetime
        return int(pd.Timestamp(v).value)
    if hasattr(v, "total_seconds"):  # timedelta
        return int(pd.Timedelta(v).value)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _row_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A source row (SOURCE_SCHEMA) as JSON: durations/timestamps as int ns, attrs as pairs."""
    out = {}
    for f in SOURCE_SCHEMA:
        v = row.get(f.name)
        if f.name == "assumed":
            v = [list(p) for p in (v.items() if isinstance(v, dict) else (v or []))]
        out[f.name] = _jsonable(v)
    return out


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    """The sources table from JSON rows."""
    if not rows:
        return SOURCE_SCHEMA.empty_table()
    cols = {}
    for f in SOURCE_SCHEMA:
        vals = [r.get(f.name) for r in rows]
        if f.name == "assumed":
            cols[f.name] = pa.array([[tuple(p) for p in (v or [])] for v in vals], f.type)
        elif pa.types.is_duration(f.type) or pa.types.is_timestamp(f.type):
            cols[f.name] = pa.array(vals, pa.int64()).cast(f.type)
        else:
            cols[f.name] = pa.array(vals, f.type)
    return pa.table(cols, schema=SOURCE_SCHEMA)


def _progress(total: int, enabled: bool | None, desc: str):
    if enabled is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, leave=False, disable=(enabled is None and total < 2))


def _duckdb_memory_limit() -> str | None:
    """Half of an address-space limit set on this process (RLIMIT_AS), for DuckDB."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, ValueError, OSError):
        return None
    if soft in (resource.RLIM_INFINITY, -1) or soft <= 0:
        return None
    return f"{max(soft // 4 // 2**20, 64)}MB"


def _connect(memory_limit: str | None = None, threads: int | None = None):
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    lim = memory_limit or _duckdb_memory_limit()
    if lim:
        con.execute(f"SET memory_limit = '{lim}'")
    if threads or _duckdb_memory_limit():
        con.execute(f"SET threads = {int(threads or 1)}")
    return con


def _to_arrow(rel: Any) -> pa.Table:
    for meth in ("to_arrow_table", "fetch_arrow_table"):
        if hasattr(rel, meth):
            return getattr(rel, meth)()
    res = rel.arrow()
    return res.read_all() if isinstance(res, pa.RecordBatchReader) else res


# --------------------------------------------------------------------------- ingest: one input


@dataclass
class _Task:
    """One source to ingest (picklable: rebuilt into Inputs in the worker)."""

    name: str
    members: list[tuple[str, str]]  # (name, path on disk) of each member, oldest first
    reader: str
    opts: dict[str, Any]
    host: Any
    store: str
    params_key: str
    old_key: str | None = None
    inputs: list[Any] | None = None  # archive members: Input objects, read in-process


def _file_hash(paths: Iterable[str], params_key: str) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(params_key.encode())
    for p in paths:
        with builtins.open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def _ingest_task(task: _Task) -> dict[str, Any]:
    """Read one source and write its partitions; returns what the manifest needs."""
    from ._load import _apply_host, _combine, _failed_row, _read_one
    from .errors import ParseError
    from .readers import get_reader

    t0 = time.perf_counter()
    reader = get_reader(task.reader)
    if task.inputs is not None:
        members = task.inputs
        key = hashlib.blake2b((task.params_key + "|" + "|".join(f"{m.path}:{m.size}:{m.mtime}" for m in members))
                              .encode(), digest_size=12).hexdigest()
        head = members[-1]
    else:
        members = []
        for nm, path in task.members:
            inp = _inputs._file_input(path, nm)
            if isinstance(inp, _inputs.Skipped):
                return {"name": task.name, "status": "failed", "error": inp.reason,
                        "row": _row_json({"source": task.name, "file": path, "format": task.reader,
                                          "status": "failed", "note": inp.reason, "records": 0, "emitted": 0,
                                          "merged": 0, "metadata": 0, "rejected": 0, "rows": 0})}
            members.append(inp)
        key = _file_hash([p for _, p in task.members], task.params_key)
        head = members[-1]
    if len(members) > 1:
        from .readers._base import Input

        head = Input(name=task.name, path=head.path, opener=head.opener,
                     size=sum(m.size or 0 for m in members), mtime=head.mtime, fs_path=head.fs_path)
    if key == task.old_key:
        return {"name": task.name, "status": "unchanged", "key": key}
    try:
        parts = [_read_one(m, reader, task.opts) for m in members]
        ev, rej, row = _combine(head, reader, parts) if len(parts) > 1 else parts[0]
    except Exception as e:  # per-file errors are collected, never fatal
        msg = str(e) if isinstance(e, TracekitError) else str(
            ParseError(f"reader {reader.name!r} failed: {type(e).__name__}: {e}", file=head.path))
        return {"name": task.name, "status": "failed", "error": msg, "key": key,
                "row": _row_json(_failed_row(head, reader, msg))}
    finally:
        for m in members:
            m.release()
    row["seconds"] = time.perf_counter() - t0
    ev = _apply_host(ev, row, task.name, reader.name, task.host)
    meta = row.pop("_meta", {})
    files = _write_events(ev, Path(task.store), task.name, key)
    rej_file = None
    if rej.num_rows:
        rel = f"rejects/sid={_sid(task.name)}/rejects-{key}.parquet"
        _atomic_write_table(rej.cast(REJECT_SCHEMA), Path(task.store) / rel)
        rej_file = rel
    return {"name": task.name, "status": "written", "key": key, "files": files, "rejects": rej_file,
            "row": _row_json(row), "meta": _jsonable(meta), "seconds": time.perf_counter() - t0,
            "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> int | None:
    """This process's peak resident memory so far (MiB), where the platform says."""
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    except (ImportError, OSError):
        return None


def _write_events(ev: pa.Table, store: Path, name: str, key: str) -> list[dict[str, Any]]:
    """Number rows within the source, sort by ts_src, write one file per hour of ts_src."""
    n = ev.num_rows
    if n == 0:
        return []
    ev = ev.set_column(ev.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"),
                       pa.array(np.arange(n, dtype=np.uint64)))
    ts_src = ev.column("ts_src").combine_chunks().to_numpy()
    order = np.argsort(ts_src, kind="stable")
    if not np.all(order[1:] > order[:-1]):
        ev = ev.take(pa.array(order))
        ts_src = ts_src[order]
    ev = ev.combine_chunks()
    hours = ts_src // _HOUR_NS
    cuts = np.flatnonzero(np.diff(hours)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [n]])
    ts = ev.column("ts").combine_chunks().view(pa.int64()).to_numpy()
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        label = pd.Timestamp(int(hours[a]) * _HOUR_NS, unit="ns").strftime("%Y%m%d%H")
        rel = f"events/sid={_sid(name)}/hour={label}/part-{key}.parquet"
        part = ev.slice(a, b - a)
        _atomic_write_table(part, store / rel, row_group_size=ROW_GROUP_ROWS, write_statistics=True)
        seg = ts[a:b]
        out.append({"path": rel, "rows": b - a, "src_min": int(ts_src[a]), "src_max": int(ts_src[b - 1]),
                    "ts_min": int(seg.min()), "ts_max": int(seg.max()),
                    "row_groups": (b - a + ROW_GROUP_ROWS - 1) // ROW_GROUP_ROWS})
    return out


# --------------------------------------------------------------------------- ingest: planning


@dataclass
class IngestResult:
    """What :func:`ingest` did: sources written, unchanged, failed (with messages), time taken.

    Example::

        >>> res = ingest("incident/", "incident.tkstore")      # doctest: +SKIP
        >>> res.errors                                          # doctest: +SKIP
        [('node-b/broken.json', 'reader ... failed: ...')]
    """

    store: str
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0
    #: the largest peak RSS (MiB) of a process that parsed an input (workers' own figure)
    peak_rss_mb: int | None = None

    def open(self) -> StoreTimeline:
        """The store, opened lazily."""
        return open(self.store)

    def __repr__(self) -> str:
        return (f"IngestResult({self.store}: {len(self.written)} written, {len(self.unchanged)} unchanged, "
                f"{len(self.skipped)} skipped, {len(self.errors)} failed; {self.events:,} events, "
                f"{self.seconds:.1f} s)")


def _plan(paths: Any, format: str | None, options: Mapping[str, Mapping[str, Any]] | None,
          reader_options: Mapping[str, Any]) -> list[tuple[Any, Any, list]]:
    """What :func:`tracekit.load` would read: (item, reader or None, members) per source."""
    from ._load import _join_rotated, plan_inputs

    plans, _single = plan_inputs(paths, format, reader_options)
    for item, _, _ in plans:
        item._head = None  # sniffing kept the head; tasks are shipped to workers
    return _join_rotated(plans)


def _read_manifest(store: Path) -> dict[str, Any] | None:
    p = store / "manifest.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())


def _client(scheduler: Any):
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


def ingest(
    paths: Any,
    out: str | os.PathLike,
    jobs: int | None = None,
    scheduler: Any = None,
    progress: bool | None = True,
    format: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    host: str | Mapping[str, str] | None = None,
    **reader_options: Any,
) -> IngestResult:
    """Read dumps (as :func:`tracekit.load` would) into a Parquet store at ``out``.

    Files are parsed in parallel: ``jobs`` worker processes (default: the CPU count), or the
    workers of a Dask cluster when ``scheduler`` is given (an address such as
    ``"tcp://host:8786"`` or a ``distributed.Client``; the inputs and ``out`` must then be on a
    filesystem the workers share). Inputs whose content hash is unchanged since the last
    ingest are not read again; a changed input replaces only its own partitions; inputs gone
    from ``paths`` leave the store. A file that fails is listed in ``errors`` (and in the
    sources table as ``failed``); the rest is written. Archive members are read in this
    process. Other arguments are those of :func:`tracekit.load`.

    Example::

        >>> res = ingest("data/demo-incident", "/tmp/demo.tkstore", host="{dir}")   # doctest: +SKIP
        >>> res.open().sql("select count(*) from events")                            # doctest: +SKIP
    """
    t_start = time.perf_counter()
    store = Path(out)
    store.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(store) or {"sources": []}
    old_by = {e["name"]: e for e in old.get("sources", [])}
    per_sel = dict(options or {})
    plans = _plan(paths, format, per_sel, reader_options)
    params_base = json.dumps({"format": format, "options": per_sel, "reader_options": reader_options,
                              "host": host, "version": STORE_VERSION}, sort_keys=True, default=str)
    result = IngestResult(store=str(store))
    order: list[str] = []
    entries: dict[str, dict[str, Any]] = {}
    tasks: list[_Task] = []
    for item, reader, members in plans:
        order.append(item.name)
        if reader is None:
            from ._load import _skipped_row

            entries[item.name] = {"name": item.name, "status": "skipped", "row": _row_json(_skipped_row(item))}
            result.skipped.append(item.name)
            continue
        opts = {k: v for k, v in reader_options.items() if k in reader.options}
        sel_opts = _select.resolve_options(item.name, reader.name, {}, per_sel)
        reader.check_options(sel_opts, f"options for {item.name}")
        opts.update(sel_opts)
        pkey = f"{params_base}|{item.name}|{reader.name}|{json.dumps(opts, sort_keys=True, default=str)}"
        prev = old_by.get(item.name)
        on_disk = all(m.fs_path is not None or "!" not in m.path for m in members)
        stat = [(m.path, m.size, m.mtime) for m in members]
        if prev and prev.get("stat") == [list(s) for s in stat] and prev.get("pkey") == pkey \
                and prev.get("status") == "written":
            entries[item.name] = prev  # unchanged by size and mtime: not even hashed
            result.unchanged.append(item.name)
            continue
        task = _Task(name=item.name, members=[(m.name, m.path) for m in members], reader=reader.name, opts=opts,
                     host=host, store=str(store), params_key=pkey,
                     old_key=prev.get("key") if prev and prev.get("pkey") == pkey and prev.get("status") == "written"
                     else None,
                     inputs=None if on_disk else members)
        task._stat = stat  # type: ignore[attr-defined]
        tasks.append(task)

    results = _run_tasks(tasks, jobs, scheduler, progress)
    for task, res in zip(tasks, results):
        stat = [list(s) for s in task._stat]  # type: ignore[attr-defined]
        if res["status"] == "unchanged":
            entries[task.name] = dict(old_by[task.name], stat=stat)
            result.unchanged.append(task.name)
            continue
        entry = {"name": task.name, "status": res["status"], "key": res.get("key"), "pkey": task.params_key,
                 "stat": stat, "row": res.get("row"), "meta": res.get("meta", {}),
                 "files": res.get("files", []), "rejects": res.get("rejects")}
        if res["status"] == "failed":
            result.errors.append((task.name, res.get("error", "")))
            entry["stat"] = None  # try again next time
        else:
            result.written.append(task.name)
            if res.get("rss_mb") is not None:
                result.peak_rss_mb = max(result.peak_rss_mb or 0, res["rss_mb"])
        entries[task.name] = entry
    manifest = {"version": STORE_VERSION, "generation": int(old.get("generation", 0)) + 1,
                "created": time.time(), "paths": str(paths), "params": json.loads(params_base),
                "sources": [entries[n] for n in order]}
    _commit(store, manifest)
    changed = set(result.written) | {n for n, _ in result.errors} | (set(old_by) - set(order))
    _after_commit(store, manifest, changed)
    result.events = sum((e.get("row") or {}).get("rows") or 0 for e in manifest["sources"])
    result.seconds = time.perf_counter() - t_start
    return result


def _run_tasks(tasks: list[_Task], jobs: int | None, scheduler: Any, progress: bool | None) -> list[dict]:
    """Run ingest tasks: in-process, in a process pool, or on a Dask cluster; never raises
    for one task's failure."""
    out: list[dict | None] = [None] * len(tasks)
    bar = _progress(len(tasks), progress, "ingest")

    def done(i: int, res: dict | None, err: BaseException | None) -> None:
        if err is not None:
            res = {"name": tasks[i].name, "status": "failed", "error": f"{type(err).__name__}: {err}",
                   "row": _row_json({"source": tasks[i].name, "file": tasks[i].members[-1][1] if tasks[i].members
                                     else None, "format": tasks[i].reader, "status": "failed",
                                     "note": f"{type(err).__name__}: {err}", "records": 0, "emitted": 0,
                                     "merged": 0, "metadata": 0, "rejected": 0, "rows": 0})}
        out[i] = res
        if bar is not None:
            bar.update(1)

    local = [i for i, t in enumerate(tasks) if t.inputs is not None]
    remote = [i for i, t in enumerate(tasks) if t.inputs is None]
    try:
        if scheduler is not None and remote:
            from distributed import as_completed

            client, own = _client(scheduler)
            try:
                futs = {client.submit(_ingest_task, tasks[i], pure=False, key=f"tk-ingest-{uuid.uuid4().hex}"): i
                        for i in remote}
                for fut in as_completed(futs):
                    try:
                        done(futs[fut], fut.result(), None)
                    except Exception as e:
                        done(futs[fut], None, e)
            finally:
                if own:
                    client.close()
        else:
            n = min(jobs or os.cpu_count() or 1, len(remote))
            if n > 1:
                ctx = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
                # biggest first: the pool finishes when the largest file does
                remote.sort(key=lambda i: -sum(os.path.getsize(p) for _, p in tasks[i].members if os.path.exists(p)))
                with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                    futs = {pool.submit(_ingest_task, tasks[i]): i for i in remote}
                    for fut in cf.as_completed(futs):
                        try:
                            done(futs[fut], fut.result(), None)
                        except Exception as e:
                            done(futs[fut], None, e)
            else:
                local = remote + local
        for i in local:
            try:
                done(i, _ingest_task(tasks[i]), None)
            except Exception as e:
                done(i, None, e)
    finally:
        if bar is not None:
            bar.close()
    return out  # type: ignore[return-value]


def _commit(store: Path, manifest: dict[str, Any]) -> None:
    """The commit point: the manifest replaced in one rename."""
    _atomic_write_bytes(store / "manifest.json", json.dumps(manifest, indent=1).encode())


def _after_commit(store: Path, manifest: dict[str, Any], changed: set[str]) -> None:
    """Write the convenience tables, drop stale caches and files the manifest does not name."""
    rows = [e["row"] for e in manifest["sources"] if e.get("row")]
    _atomic_write_table(_rows_table(rows), store / "sources.parquet")
    keep = {f["path"] for e in manifest["sources"] for f in e.get("files") or []}
    keep |= {e["rejects"] for e in manifest["sources"] if e.get("rejects")}
    for sub in ("events", "rejects"):
        root = store / sub
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root, topdown=False):
            for fn in files:
                rel = Path(dirpath, fn).relative_to(store).as_posix()
                if rel not in keep:
                    Path(dirpath, fn).unlink(missing_ok=True)
            if dirpath != str(root) and not os.listdir(dirpath):
                os.rmdir(dirpath)
    for p in store.glob(".*.tmp"):
        p.unlink(missing_ok=True)
    (store / "transitions.parquet").unlink(missing_ok=True)
    clocks = store / "clocks.json"
    if changed and clocks.exists():  # a changed source must be aligned again
        c = json.loads(clocks.read_text())
        c["sources"] = {k: v for k, v in c.get("sources", {}).items() if k not in changed}
        _atomic_write_bytes(clocks, json.dumps(c, indent=1).encode())


# --------------------------------------------------------------------------- reading parts


@dataclass(frozen=True)
class _Clock:
    offset: int = 0
    drift_ppm: float = 0.0
    t0: int = 0

    def to_src(self, ts: int) -> int:
        """The ``ts_src`` at which this clock reads aligned time ``ts`` (±rounding)."""
        y = ts - self.offset
        if not self.drift_ppm:
            return y
        d = self.drift_ppm * 1e-6
        return y - int(round((y - self.t0) * d / (1 + d)))


@dataclass(frozen=True)
class _Part:
    """One Parquet file of the store and how to read it (picklable, for Dask)."""

    path: str
    source: str
    base: int
    clock: _Clock
    rows: int
    src_min: int
    src_max: int


def _prepare(t: pa.Table, part: _Part) -> pa.Table:
    """Global seq and aligned ts for rows read from ``part``."""
    if t.num_rows == 0:
        return t
    if "seq" in t.column_names:
        seq = pc.add(t.column("seq"), pa.scalar(part.base, pa.uint64()))
        t = t.set_column(t.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"), seq)
    if "ts" in t.column_names:
        src = t.column("ts_src").combine_chunks().to_numpy()
        ts = apply_clock(src, part.clock.offset, part.clock.drift_ppm, part.clock.t0)
        t = t.set_column(t.schema.get_field_index("ts"), EVENT_SCHEMA.field("ts"),
                         pa.array(ts).view(pa.timestamp("ns", tz="UTC")))
    return t


def _row_group_index(path: str) -> tuple[Any, np.ndarray, np.ndarray]:
    """A file's footer and its row groups' ``ts_src`` min/max (no statistics: the widest range)."""
    md = pq.ParquetFile(path).metadata
    ci = md.schema.to_arrow_schema().get_field_index("ts_src")
    lo = np.full(md.num_row_groups, np.iinfo(np.int64).min, np.int64)
    hi = np.full(md.num_row_groups, np.iinfo(np.int64).max, np.int64)
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(ci).statistics
        if st is not None and st.has_min_max:
            lo[g], hi[g] = st.min, st.max
    return md, lo, hi


def _read_part(part: _Part, start: int | None = None, end: int | None = None,
               columns: Sequence[str] | None = None, index: tuple | None = None) -> tuple[pa.Table, int, int]:
    """Rows of one file with ``start <= ts < end`` (aligned), reading only the row groups whose
    ``ts_src`` statistics overlap the window mapped into the source's clock. ``index``: the
    file's :func:`_row_group_index`, if already read. Returns the table and (row groups read,
    row groups in the file)."""
    cols = list(columns) if columns is not None else None
    if cols is not None:
        for need in ("ts_src",):
            if need not in cols:
                cols.append(need)
    capped = bool(_duckdb_memory_limit())
    if start is None and end is None:
        pf = pq.ParquetFile(part.path)
        n = pf.num_row_groups
        return _prepare(pf.read(columns=cols, use_threads=not capped), part), n, n
    lo = part.clock.to_src(start) - _MARGIN_NS if start is not None else None
    hi = part.clock.to_src(end) + _MARGIN_NS if end is not None else None
    if (lo is not None and part.src_max < lo) or (hi is not None and part.src_min > hi):
        return _empty_like(cols), 0, 0
    md, g_lo, g_hi = index if index is not None else _row_group_index(part.path)
    hit = np.ones(len(g_lo), bool)
    if lo is not None:
        hit &= g_hi >= lo
    if hi is not None:
        hit &= g_lo <= hi
    groups = np.flatnonzero(hit).tolist()
    if not groups:
        return _empty_like(cols), 0, md.num_row_groups
    pf = pq.ParquetFile(part.path, metadata=md)
    last = groups[-1]
    if hi is not None and g_hi[last] > hi:
        # the window ends inside the last row group: decode it batch by batch and stop at the
        # first batch past the end (a minute's last group holds ~80 % rows after it)
        head = pf.read_row_groups(groups[:-1], columns=cols, use_threads=not capped) if len(groups) > 1 else None
        tail = []
        for rb in pf.iter_batches(batch_size=_EDGE_BATCH, row_groups=[last], columns=cols, use_threads=not capped):
            tail.append(rb)
            if rb.column(rb.schema.get_field_index("ts_src"))[-1].as_py() > hi:
                break
        t = pa.Table.from_batches(tail, schema=head.schema if head is not None else tail[0].schema)
        if head is not None:
            t = pa.concat_tables([head, t])
    else:
        t = pf.read_row_groups(groups, columns=cols, use_threads=not capped)
    src = t.column("ts_src").combine_chunks().to_numpy()
    ts = apply_clock(src, part.clock.offset, part.clock.drift_ppm, part.clock.t0)
    # rows are sorted by ts_src and the clock is monotonic: the window is one slice
    a = int(np.searchsorted(ts, start, side="left")) if start is not None else 0
    b = int(np.searchsorted(ts, end, side="left")) if end is not None else len(ts)
    n = max(b - a, 0)
    t = t.slice(a, n)
    if capped and 2 * n < len(ts):  # keep only what the window needs, so the rest is freed now
        t = t.take(pa.array(np.arange(n, dtype=np.int64)))
    if n and "seq" in t.column_names:
        t = t.set_column(t.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"),
                         pc.add(t.column("seq"), pa.scalar(part.base, pa.uint64())))
    if n and "ts" in t.column_names:
        t = t.set_column(t.schema.get_field_index("ts"), EVENT_SCHEMA.field("ts"),
                         pa.array(ts[a:b]).view(pa.timestamp("ns", tz="UTC")))
    return t, len(groups), md.num_row_groups


def _empty_like(cols: Sequence[str] | None) -> pa.Table:
    t = EVENT_SCHEMA.empty_table()
    return t.select(list(cols)) if cols is not None else t


def _sort_events(tables: list[pa.Table], runs: bool = False) -> pa.Table:
    """The rows of ``tables`` in (ts, seq) order. ``runs``: each table is sorted already and
    they come in ascending seq ranges (files in source order), so a stable sort on ts is enough."""
    tables = [t for t in tables if t.num_rows] or [EVENT_SCHEMA.empty_table()]
    t = pa.concat_tables(tables).unify_dictionaries()  # no copy of the values yet
    if t.num_rows > 1 and "ts" in t.column_names and "seq" in t.column_names:
        ts = t.column("ts").combine_chunks().view(pa.int64()).to_numpy()
        if runs and len(tables) == 1:
            return t.combine_chunks()
        seq = t.column("seq").combine_chunks().to_numpy()
        order = np.argsort(ts, kind="stable") if runs else None  # a merge of sorted runs
        if order is not None:
            ts_o, seq_o = ts[order], seq[order]
            if np.any((ts_o[1:] == ts_o[:-1]) & (seq_o[1:] < seq_o[:-1])):
                order = None  # equal ts from files out of seq order: sort by both
        if order is None:
            order = np.lexsort((seq, ts))
        if not np.all(order[1:] > order[:-1]):
            return _take(t, order)  # one copy: the gather
    return t.combine_chunks()


def _take(t: pa.Table, order: np.ndarray) -> pa.Table:
    """``t.take(order)`` as one chunk, column by column on threads when it is large."""
    idx = pa.array(order)
    if t.num_rows < 65536 or _duckdb_memory_limit() or (os.cpu_count() or 1) < 2:
        return t.take(idx).combine_chunks()

    def one(c: pa.ChunkedArray) -> pa.Array:
        return (c.chunk(0) if c.num_chunks == 1 else c.combine_chunks()).take(idx)

    with cf.ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        cols = list(pool.map(one, t.columns))
    return pa.Table.from_arrays(cols, schema=t.schema)


def _dask_frame(part: _Part, columns: Sequence[str] | None) -> pd.DataFrame:
    t, _, _ = _read_part(part, columns=columns)
    if columns is not None:
        t = t.select(list(columns))
    return _pandas(t)


def _pandas(t: pa.Table) -> pd.DataFrame:
    cols = []
    for f in t.schema:
        c = t.column(f.name)
        cols.append(c.cast(pa.string()) if pa.types.is_dictionary(f.type) else c)
    return pa.table(cols, names=t.column_names).to_pandas(types_mapper=pd.ArrowDtype)


def _candidates_part(part: _Part, query: str) -> pa.Table:
    """Rows of one file selected by a candidate query (DuckDB on the worker), seq/ts prepared."""
    con = _connect()
    table = f"read_parquet('{_q(part.path)}', hive_partitioning = false)"
    try:
        t = _to_arrow(con.sql(query.replace(_TABLE, table)))
    finally:
        con.close()
    return _prepare(_conform_candidates(t), part)


def _conform_candidates(t: pa.Table) -> pa.Table:
    """A (possibly projected) candidate table in EVENT_SCHEMA; columns left out are nulls."""
    from .schema import conform

    if t.num_rows == 0:
        return EVENT_SCHEMA.empty_table()
    return conform(t)


_TABLE = "__TK_TABLE__"  # in candidate predicates: the table they run over (the store or one file)


def _q(s: str) -> str:
    return s.replace("'", "''")


# --------------------------------------------------------------------------- the store timeline


def open(path: str | os.PathLike) -> StoreTimeline:  # noqa: A001  (tk.open, like tk.load)
    """Open a store written by :func:`ingest`, lazily: only the manifest is read.

    Example::

        >>> tl = open("incident.tkstore")                         # doctest: +SKIP
        >>> tl.window("2024-03-14T09:14:00Z", "2024-03-14T09:15:00Z").events.num_rows   # doctest: +SKIP
    """
    return StoreTimeline(path)


class StoreTimeline:
    """A Timeline over a Parquet store: nothing is loaded until asked.

    ``window``/``around``/``at``/``interleaving`` read only the partitions and row groups they
    need and return in-memory results; ``sql`` runs DuckDB over the Parquet files; ``to_dask``
    gives a ``dask.dataframe``; ``align`` stores a clock table (events are never rewritten);
    ``transitions`` runs per-partition work (DuckDB, or Dask with ``client=``) plus a merge;
    ``load`` reads everything into a :class:`~tracekit.Timeline`.

    Example::

        >>> tl = tk.open("incident.tkstore")                                   # doctest: +SKIP
        >>> tl.sql("select name, count(*) n from events group by 1 order by n desc limit 5")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        man = _read_manifest(self.path)
        if man is None:
            raise TracekitError(f"{self.path}: not a tracekit store (no manifest.json)")
        if man.get("version") != STORE_VERSION:
            raise TracekitError(f"{self.path}: store version {man.get('version')} (this tracekit reads {STORE_VERSION})")
        self._manifest = man
        cj = self.path / "clocks.json"
        self._clockdoc = json.loads(cj.read_text()) if cj.exists() else {}
        rows = []
        for e in man["sources"]:
            r = dict(e["row"]) if e.get("row") else None
            if r is None:
                continue
            c = self._clockdoc.get("sources", {}).get(r["source"])
            if c:
                r.update({k: c[k] for k in ("offset", "drift_ppm", "t0", "offset_lo", "offset_hi", "aligned", "note")
                          if k in c})
            rows.append(r)
        self._sources = _rows_table(rows)
        self._meta = {e["name"]: e.get("meta") or {} for e in man["sources"] if e.get("status") == "written"}
        self._rejects: pa.Table | None = None
        base = 0
        parts: list[_Part] = []
        for r in rows:
            entry = next(e for e in man["sources"] if e["name"] == r["source"])
            clock = _Clock(int(r["offset"] or 0), float(r["drift_ppm"] or 0.0), int(r["t0"] or 0))
            for f in entry.get("files") or []:
                parts.append(_Part(str(self.path / f["path"]), r["source"], base, clock, f["rows"],
                                   f["src_min"], f["src_max"]))
            base += int(r["rows"] or 0)
        self._parts = parts
        self._n = base
        self._params = {"store": str(self.path), "paths": man.get("paths"), **(man.get("params") or {})}
        if self._clockdoc.get("align"):
            self._params["corrections"] = [{"align": self._clockdoc["align"]}]
        #: what the last window/load read: files, row groups read, row groups in those files
        self.last_read: dict[str, int] = {}
        self._rg: dict[str, tuple] = {}  # path -> _row_group_index, filled by windows
        if _duckdb_memory_limit():  # under an address-space cap: map DuckDB's library while there is room
            import duckdb  # noqa: F401

    # ------------------------------------------------------------------ tables
    @property
    def sources(self) -> pa.Table:
        """One row per input (as :attr:`Timeline.sources`), with the store's current clocks."""
        return self._sources

    @property
    def rejects(self) -> pa.Table:
        """Every rejected record (read on first use)."""
        if self._rejects is None:
            files = [self.path / e["rejects"] for e in self._manifest["sources"] if e.get("rejects")]
            ts = [pq.read_table(f) for f in files]
            self._rejects = pa.concat_tables(ts).cast(REJECT_SCHEMA) if ts else REJECT_SCHEMA.empty_table()
        return self._rejects

    @property
    def meta(self) -> dict[str, dict]:
        """Per source, what its reader reported beyond the sources table."""
        return self._meta

    @property
    def events(self) -> pa.Table:
        """Every event, in memory (same as ``load().events``; avoid on stores larger than memory)."""
        return self.load().events

    @property
    def files(self) -> list[str]:
        """The Parquet files of the events, per source and hour."""
        return [p.path for p in self._parts]

    def __len__(self) -> int:
        return self._n

    def _timeline(self, events: pa.Table, rejects: pa.Table | None = None) -> Timeline:
        return Timeline(events, self._sources, self.rejects if rejects is None else rejects, self._params,
                        self._meta)

    # ------------------------------------------------------------------ reading
    def _read(self, start: int | None, end: int | None, columns: Sequence[str] | None = None,
              client: Any = None) -> pa.Table:
        parts = self._parts
        if start is not None or end is not None:
            parts = [p for p in parts if _overlaps(p, start, end)]
        if client is not None:
            c, own = _client(client)
            try:
                res = _gather_as_completed(c, c.map(_read_part, parts, start=start, end=end, columns=columns,
                                                    pure=False))
            finally:
                if own:
                    c.close()
        elif len(parts) > 1 and not _duckdb_memory_limit():  # side by side (pyarrow releases the GIL)
            with cf.ThreadPoolExecutor(max_workers=min(len(parts), 2 * (os.cpu_count() or 1))) as pool:
                res = list(pool.map(lambda p: _read_part(p, start, end, columns, self._index(p, start, end)), parts))
        else:
            res = [_read_part(p, start, end, columns, self._index(p, start, end)) for p in parts]
        self.last_read = {"files": len(parts), "files_total": len(self._parts),
                          "row_groups": sum(r[1] for r in res), "row_groups_total": sum(
                              p_rg for p_rg in (r[2] for r in res))}
        out = _sort_events([r[0] for r in res], runs=True)
        del res
        if _duckdb_memory_limit() or (start is None and end is None):
            # give the row groups read back to the OS (memory caps, whole-store reads); a window's
            # few MB stay with the allocator, so the next window reuses them instead of faulting in
            # and zeroing fresh pages (~20 % of a one-minute window's time on the 20M store)
            pa.default_memory_pool().release_unused()
        return out

    def _index(self, p: _Part, start: int | None, end: int | None) -> tuple | None:
        """The file's footer and row-group ranges, read once per opened store (windows only)."""
        if start is None and end is None:
            return None
        if p.path not in self._rg:
            self._rg[p.path] = _row_group_index(p.path)
        return self._rg[p.path]

    def load(self) -> Timeline:
        """Every event in memory, as :func:`tracekit.load` would have returned it.

        Example::

            >>> tl = tk.open("incident.tkstore").load()      # doctest: +SKIP
        """
        return self._timeline(self._read(None, None))

    def window(self, start: Any, end: Any, client: Any = None) -> Timeline:
        """Events with ``start <= ts < end`` as an in-memory Timeline, reading only the files and
        row groups that can hold them (the window is mapped into each source's own clock).
        ``client``: a Dask client or scheduler address to read the parts on its workers. The
        window carries no rejects (they have no aligned time; the store's are :attr:`rejects`).

        Example::

            >>> w = tl.window("2024-03-14T09:14:00Z", "2024-03-14T09:15:00Z")   # doctest: +SKIP
            >>> tl.last_read                                                      # doctest: +SKIP
            {'files': 4, 'files_total': 96, 'row_groups': 5, 'row_groups_total': 60}
        """
        t0, t1 = _time.to_time_ns(start), _time.to_time_ns(end)
        if t1 < t0:
            raise _time.TimeError(f"window end {end!r} is before its start {start!r}")
        return self._timeline(self._read(t0, t1, client=client), rejects=REJECT_SCHEMA.empty_table())

    def time_range(self) -> tuple[int | None, int | None]:
        """(first ts, last ts) as epoch ns from the manifest and clocks, or (None, None)."""
        if not self._parts:
            return None, None
        los = [apply_clock(np.array([p.src_min]), p.clock.offset, p.clock.drift_ppm, p.clock.t0)[0] for p in self._parts]
        his = [apply_clock(np.array([p.src_max]), p.clock.offset, p.clock.drift_ppm, p.clock.t0)[0] for p in self._parts]
        return int(min(los)), int(max(his))

    def at(self, when: Any) -> pa.Table:
        """Each entity's last known state at ``when`` (ts <= when), via DuckDB over the store.

        Example::

            >>> tl.at("2024-03-14T09:14:30Z")          # doctest: +SKIP
        """
        return self._states_before(_time.to_time_ns(when), inclusive=True)

    def _states_before(self, t: int, inclusive: bool) -> pa.Table:
        op = "<=" if inclusive else "<"
        out = self.sql(
            "select entity, state, ts, source::VARCHAR as source, seq from events "
            f"where entity is not null and state is not null and ts {op} make_timestamp_ns({int(t)}::BIGINT)::TIMESTAMPTZ_NS "
            "qualify row_number() over (partition by entity order by ts desc, seq desc) = 1 order by entity")
        return out.cast(pa.schema([EVENT_SCHEMA.field(n) for n in ("entity", "state", "ts", "source", "seq")]))

    def around(self, at: Any, before: Any = "2s", after: Any = "2s"):
        """Events in ``[at - before, at + after]`` with each entity's state when it opens
        (as :meth:`Timeline.around`); reads only that window.

        Example::

            >>> w = tl.around("2024-03-14T09:14:30Z", before="2s", after="2s")   # doctest: +SKIP
        """
        from .timeline import Window

        c = _time.to_time_ns(at)
        b, a = _time.to_duration_ns(before), _time.to_duration_ns(after)
        ev = self._read(c - b, c + a + 1)
        return Window(ev, self._sources, REJECT_SCHEMA.empty_table(), self._params, self._meta, center=c, start=c - b,
                      end=c + a, state_at_start=self._states_before(c - b, inclusive=False))

    def interleaving(self, at: Any, window: Any = "5s", lane: str = "source", transitions: Any = None, **kw: Any):
        """Events of every lane around ``at`` with ambiguous orders and race candidates marked
        (:func:`tracekit.interleave.interleaving` on the window read from the store).

        Example::

            >>> il = tl.interleaving(tr[3], window="5s")     # doctest: +SKIP
        """
        from .interleave import _center, interleaving

        c, _ = _center(at)
        w = _time.to_duration_ns(window)
        b = _time.to_duration_ns(kw.get("before")) if kw.get("before") is not None else w
        a = _time.to_duration_ns(kw.get("after")) if kw.get("after") is not None else w
        sub = self._timeline(self._read(c - b, c + a + 1), rejects=REJECT_SCHEMA.empty_table())
        il = interleaving(sub, at, window=window, lane=lane, transitions=transitions, **kw)
        il.state_at_start = self._states_before(c - b, inclusive=False)
        return il

    # ------------------------------------------------------------------ SQL
    def _connection(self, memory_limit: str | None = None, threads: int | None = None):
        con = _connect(memory_limit, threads)
        by_src: dict[str, list[_Part]] = {}
        for p in self._parts:
            by_src.setdefault(p.source, []).append(p)
        selects = []
        for ps in by_src.values():
            c, base = ps[0].clock, ps[0].base
            files = ", ".join(f"'{_q(p.path)}'" for p in ps)
            drift = (f" + CAST(round((ts_src - ({c.t0})::BIGINT) * {c.drift_ppm!r}e-6) AS BIGINT)"
                     if c.drift_ppm else "")
            ts = f"make_timestamp_ns(ts_src + ({c.offset})::BIGINT{drift})::TIMESTAMPTZ_NS"
            cols = ", ".join(
                ts + " AS ts" if f.name == "ts" else f"seq + ({base})::UBIGINT AS seq" if f.name == "seq" else f'"{f.name}"'
                for f in EVENT_SCHEMA)
            selects.append(f"SELECT {cols} FROM read_parquet([{files}], hive_partitioning = false)")
        if selects:
            con.execute("CREATE VIEW events AS " + " UNION ALL ".join(selects))
        else:
            con.register("_empty_events", EVENT_SCHEMA.empty_table())
            con.execute("CREATE VIEW events AS SELECT * FROM _empty_events")
        con.register("_sources", self._sources)
        con.execute("CREATE VIEW sources AS SELECT * FROM _sources")
        rej = [str(self.path / e["rejects"]) for e in self._manifest["sources"] if e.get("rejects")]
        if rej:
            con.execute("CREATE VIEW rejects AS SELECT * FROM read_parquet([" + ", ".join(f"'{_q(f)}'" for f in rej) + "])")
        else:
            con.register("_rejects", REJECT_SCHEMA.empty_table())
            con.execute("CREATE VIEW rejects AS SELECT * FROM _rejects")
        con.register("_clocks", self.clocks)
        con.execute("CREATE VIEW clocks AS SELECT * FROM _clocks")
        tp = self.path / "transitions.parquet"
        if tp.exists():
            con.execute(f"CREATE VIEW transitions AS SELECT * FROM read_parquet('{_q(str(tp))}')")
        return con

    def sql(self, query: str, output: str = "arrow", memory_limit: str | None = None, **tables: pa.Table):
        """DuckDB SQL over views ``events``, ``sources``, ``rejects``, ``clocks`` and
        ``transitions`` (computed with the built-in rules and cached on first use) of the
        store; Arrow (or ``output="pandas"``) out. ``events.ts`` is aligned with the clock table.

        Example::

            >>> tl.sql("select source, count(*) from events where name = 'execve' group by 1")  # doctest: +SKIP
        """
        if re.search(r"\btransitions\b", query, re.I) and not (self.path / "transitions.parquet").exists():
            self.transitions()
        con = self._connection(memory_limit)
        try:
            for name, t in tables.items():
                con.register(name, t)
            out = _to_arrow(con.sql(query))
        finally:
            con.close()
        if output == "pandas":
            return out.to_pandas(types_mapper=pd.ArrowDtype)
        return out

    def to_pandas(self, table: str = "events") -> pd.DataFrame:
        """``sources``/``rejects``/``clocks`` (or all events: small stores only) as pandas."""
        t = {"sources": lambda: self._sources, "rejects": lambda: self.rejects, "clocks": lambda: self.clocks,
             "events": lambda: self.load().events}[table]()
        return t.to_pandas(types_mapper=pd.ArrowDtype)

    # ------------------------------------------------------------------ Dask
    def to_dask(self, columns: Sequence[str] | None = None):
        """A ``dask.dataframe`` over the store, one partition per Parquet file, with the global
        ``seq`` and aligned ``ts`` (dictionary columns as strings, ArrowDtype columns).

        Example::

            >>> ddf = tl.to_dask(columns=["ts", "source", "name"])            # doctest: +SKIP
            >>> ddf.groupby("source").size().compute()                         # doctest: +SKIP
        """
        import dask.dataframe as dd

        cols = list(columns) if columns is not None else None
        meta = _pandas(_empty_like(cols))
        if not self._parts:
            return dd.from_pandas(meta, npartitions=1)
        return dd.from_map(_dask_frame, self._parts, columns=cols, meta=meta, enforce_metadata=False,
                           label="tracekit-store")

    # ------------------------------------------------------------------ clocks
    @property
    def clocks(self) -> pa.Table:
        """Per source: the clock correction applied when reading (``ts = ts_src + offset +
        drift·(ts_src − t0)``), its interval and whether it is aligned."""
        s = self._sources
        return s.select(["source", "domain", "clock", "offset", "drift_ppm", "t0", "offset_lo", "offset_hi",
                         "aligned", "anchor"])

    def align(self, reference: str | None = None, pin: dict | None = None, keys: Any = (), **kw: Any):
        """Estimate the clocks from evidence selected out of the store with DuckDB (process
        exec/exit, span ids, user ``keys``, clock anchors — a bounded subset), store the result
        as the clock table (``clocks.json``/``clocks.parquet``) and return the
        :class:`~tracekit.clocks.Alignment` whose ``.timeline`` is the store, reopened.

        Example::

            >>> al = tl.align(reference="host:node-a")      # doctest: +SKIP
        """
        from .clocks import EXEC_NAMES, EXIT_NAMES, Alignment, align

        # exit_group: strace's exit syscall bounds the moment of the exit it reports (clocks._moment_bounds)
        names = ", ".join(f"'{n}'" for n in EXEC_NAMES + EXIT_NAMES + ("exit_group",))
        conds = [f"(name in ({names}) and pid is not null)", "span_id is not null", "parent_id is not null",
                 "element_at(attrs, 'tk.monotonic_ns')[1] is not null", "element_at(attrs, 'monotonic_ns')[1] is not null"]
        canon = set(EVENT_SCHEMA.names)
        for k in keys:
            conds.append(f'"{k}" is not null' if k in canon else f"element_at(attrs, '{_q(k)}')[1] is not null")
        where = " or ".join(conds)
        # plus rows keeping each source's host statistics (clocks._domains reads them)
        q = (f"with h as (select source, arg_min(seq, host) a, arg_max(seq, host) b, "
             f"min(seq) filter (where host is null) c from events group by source) "
             f"select * from events where ({where}) or seq in (select a from h union all select b from h "
             f"union all select c from h)")
        sub = self._subset(q)
        clean = Timeline(sub.events, self._ingest_sources(), sub.rejects, {k: v for k, v in self._params.items()
                                                                          if k != "corrections"}, self._meta)
        al = align(clean, reference=reference, pin=pin, keys=keys, **kw)
        rec = next((c["align"] for c in reversed(al.timeline._params.get("corrections", [])) if "align" in c), None)
        srcs = {}
        for r in al.timeline.sources.to_pylist():
            if r["status"] != "loaded":
                continue
            srcs[r["source"]] = {k: _jsonable(r[k]) for k in ("offset", "drift_ppm", "t0", "offset_lo", "offset_hi",
                                                             "aligned", "note")}
        doc = {"generation": self._manifest.get("generation"), "reference": al.reference, "sources": srcs,
               "align": _jsonable(rec) if rec else None}
        _atomic_write_table(al.clocks, self.path / "clocks.parquet")
        _atomic_write_bytes(self.path / "clocks.json", json.dumps(doc, indent=1).encode())
        (self.path / "transitions.parquet").unlink(missing_ok=True)
        return Alignment(al.clocks, al.evidence, StoreTimeline(self.path), al.reference)

    def _ingest_sources(self) -> pa.Table:
        """The sources table as ingested (without the stored alignment)."""
        return _rows_table([dict(e["row"]) for e in self._manifest["sources"] if e.get("row")])

    def _subset(self, query: str) -> Timeline:
        t = self.sql(query)
        t = t.cast(EVENT_SCHEMA) if t.num_rows else EVENT_SCHEMA.empty_table()
        return self._timeline(_sort_events([t]), rejects=REJECT_SCHEMA.empty_table())

    # ------------------------------------------------------------------ transitions
    def transitions(self, entity: Any = None, rules: Any = None, exclude: Any = (), extra: Any = (),
                    client: Any = None, slice_rows: int | None = None):
        """Transitions as :meth:`Timeline.transitions` finds them, without loading the store.

        Rules that read each row on its own (``span-status``, ``state-column``, ``cron``,
        :class:`~tracekit.LogRule`, :class:`~tracekit.StateMachine`) run over time slices of
        their candidate rows (at most ``slice_rows`` each): a slice is reduced to the rows that
        can matter (the first ``min_run`` rows of each run of equal states, rows with an
        explicit ``from_state``) and merged in time order carrying each entity's last run, so
        memory follows the slice, not the store. The other rules need all their rows at once:
        each Parquet file contributes the rows they can look at (a DuckDB query per file) and
        they run on the merged rows. With ``client=`` (a ``distributed.Client`` or scheduler
        address) the slices and files are read and reduced on the cluster's workers. The
        built-in rules' result is cached as ``transitions.parquet`` (the ``transitions`` SQL view).

        User rules select by their ``where`` clause; a plain :class:`~tracekit.transitions.Rule`
        makes every row a candidate (it may then not fit in memory).

        Example::

            >>> tr = tl.transitions(client="tcp://scheduler:8786")   # doctest: +SKIP
        """
        from .transitions import RULES, TRANSITION_SCHEMA, Transitions

        chosen = list(rules) if rules is not None else list(RULES)
        default = rules is None and not exclude and not extra and entity is None
        cache = self.path / "transitions.parquet"
        if default and client is None and slice_rows is None and cache.exists():
            return Transitions(pq.read_table(cache), self)
        picked = [r for r in chosen if getattr(r, "name", r) not in set(exclude)] + list(extra)
        for r in picked:
            if isinstance(r, str) and r not in RULES:
                raise KeyError(f"no rule {r!r}; rules: {', '.join(RULES)}")
        local = [r for r in picked if _row_local(r)]
        others = [r for r in picked if not _row_local(r)]
        # span-status observes every span with a status (often most of a store): its slices
        # carry only the columns it reads
        spans = [r for r in local if _rule_name(r) == "span-status"]
        rest = [r for r in local if _rule_name(r) != "span-status"]
        c, own = _client(client) if client is not None else (None, False)
        parts = []
        try:
            # with a cluster every task is submitted first: the workers read and reduce
            # while this process merges what has arrived
            jobs: list[tuple[Any, ...]] = []
            if others:
                query = f"select {_candidate_columns(others)} from {_TABLE} where {_candidate_where(self, others)}"
                futs = c.map(_candidates_part, self._parts, query=query, pure=False) if c is not None else None
                jobs.append((others, query, futs))
            for group, cols, rows in ((rest, _candidate_columns(rest), _SLICE_ROWS // 4),
                                      (spans, _SPAN_COLUMNS, _SLICE_ROWS)):
                if group:
                    if _duckdb_memory_limit():  # under an address-space cap: smaller slices
                        rows //= 4
                    jobs.append(self._submit_slices(group, cols, slice_rows or rows, c))
            for job in jobs:
                parts.append(self._transitions_of(*job) if len(job) == 3 else self._transitions_sliced(*job))
        finally:
            if own:
                c.close()
        table = pa.concat_tables(parts) if parts else TRANSITION_SCHEMA.empty_table()
        table = table.take(pc.sort_indices(table, [("ts", "ascending"), ("entity", "ascending"),
                                                   ("rule", "ascending")]))
        if entity is not None:
            ents = table.column("entity").to_pylist()
            mask = [bool(entity(e)) if callable(entity) else fnmatch.fnmatchcase(e or "", entity) for e in ents]
            table = table.filter(pa.array(mask, pa.bool_()))
        if default:
            _atomic_write_table(table, cache)
        return Transitions(table, self)

    def _transitions_of(self, group: list, query: str, futs: list | None) -> pa.Table:
        """The rules of ``group`` over the candidate rows ``query`` selects from each file
        (``futs``: the same per-file tasks submitted to a cluster)."""
        if futs is not None:
            cand = _sort_events(_gather_as_completed(None, futs))
        else:  # the same per-file work, here (one small DuckDB query per file: bounded memory)
            cand = _sort_events([_candidates_part(p, query) for p in self._parts])
        return _find(cand, group, self._sources, self._params, self._meta)

    def _slices(self, where: str, rows: int) -> list[tuple[int | None, int | None]]:
        """Time ranges ``[a, b)`` of aligned ts holding about ``rows`` candidate rows each, cut
        at approximate quantiles of the candidates' ts (one DuckDB pass; the first and last
        range are open-ended, so no row is left out whatever the estimate)."""
        if not self._parts:
            return []
        k = 512
        qs = ", ".join(f"{i / k!r}" for i in range(1, k))
        h = self.sql(f"select count(*) n, approx_quantile(epoch_ns(ts), [{qs}]) q from events "
                     f"where {where.replace(_TABLE, 'events')}").to_pylist()[0]
        n = int(h["n"] or 0)
        if n == 0:
            return []
        per = max(rows * k // n, 1)  # quantile steps per slice
        cuts = sorted({int(q) for q in (h["q"] or [])[per - 1::per] if q is not None})
        edges: list[int | None] = [None, *cuts, None]
        return list(zip(edges[:-1], edges[1:]))

    def _submit_slices(self, group: list, cols: str, rows: int, c: Any) -> tuple[Any, ...]:
        """The time slices of row-local rules' candidates, and their tasks on a cluster."""
        where = _candidate_where(self, group)
        specs = [([p for p in self._parts if _overlaps(p, a, b)], a, b) for a, b in self._slices(where, rows)]
        args = dict(cols=cols, where=where, rules=group, sources=self._sources)
        futs = [c.submit(_reduce_slice, ps, a, b, pure=False, **args) for ps, a, b in specs] if c is not None else None
        return group, specs, args, futs

    def _transitions_sliced(self, group: list, specs: list, args: dict, futs: list | None) -> pa.Table:
        """Row-local rules over time slices of their candidates, merged in time order."""
        from .transitions import TRANSITION_SCHEMA

        merge = _SliceMerge(group, self._sources, self._params, self._meta)
        if futs is not None:
            for f in futs:  # in time order; the workers go on with the later slices meanwhile
                merge.add(*f.result())
                f.release()
            futs.clear()
        else:
            con = _connect()
            try:
                con.execute("SET parquet_metadata_cache = true")
                for ps, a, b in specs:
                    merge.add(*_reduce_slice(ps, a, b, con=con, **args))
            finally:
                con.close()
        out = merge.tables
        return pa.concat_tables(out) if out else TRANSITION_SCHEMA.empty_table()

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        s = self._sources.to_pylist()
        st = [r["status"] for r in s]
        return (f"StoreTimeline {self.path}: {self._n:,} events in {len(self._parts)} files from "
                f"{st.count('loaded')} sources ({st.count('skipped')} skipped, {st.count('failed')} failed), "
                f"generation {self._manifest.get('generation')}")

    def _repr_html_(self) -> str:
        return f"<div class='tracekit-store'><code>{html.escape(repr(self))}</code>{self._timeline(EVENT_SCHEMA.empty_table(), REJECT_SCHEMA.empty_table())._repr_html_()}</div>"


# rules whose observation of a row depends on that row alone (its columns and the sources
# table), never on other rows: their candidates can be read and reduced slice by slice
_ROW_LOCAL = ("span-status", "state-column", "cron")
_SLICE_ROWS = 400_000  # candidate rows per time slice (narrow span rows; 1/4 for wide rows)


def _rule_name(r: Any) -> str | None:
    return r if isinstance(r, str) else getattr(r, "name", None)


def _row_local(r: Any) -> bool:
    from .transitions import RULES, LogRule, StateMachine

    if isinstance(r, str):
        return r in _ROW_LOCAL
    if isinstance(r, (LogRule, StateMachine)):
        return True
    return r.name in _ROW_LOCAL and RULES.get(r.name) is r


def _as_rule(r: Any):
    from .transitions import RULES, LogRule, StateMachine

    if isinstance(r, str):
        return RULES[r]
    return r.as_rule() if isinstance(r, (LogRule, StateMachine)) else r


def _find(cand: pa.Table, group: list, sources: pa.Table, params: dict, meta: dict) -> pa.Table:
    """``find_transitions`` over candidate rows (sorted by ts, seq), evidence as global seq."""
    from .transitions import TRANSITION_SCHEMA, find_transitions

    if cand.num_rows == 0:
        return TRANSITION_SCHEMA.empty_table()
    # compact seq (find_transitions indexes an array by seq), then map evidence back
    orig = cand.column("seq").combine_chunks().to_numpy()
    rank = np.argsort(np.argsort(orig, kind="stable"), kind="stable").astype(np.uint64)
    cand = cand.set_column(cand.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"), pa.array(rank))
    sub = Timeline(cand, sources, REJECT_SCHEMA.empty_table(), params, meta)
    table = find_transitions(sub, rules=group).table
    del sub, cand
    if table.num_rows:
        back = np.empty(len(orig), np.uint64)
        back[rank.astype(np.int64)] = orig
        ev = table.column("evidence").combine_chunks()
        flat = back[ev.flatten().to_numpy().astype(np.int64)]
        new = pa.ListArray.from_arrays(ev.offsets, pa.array(flat, pa.uint64()))
        table = table.set_column(table.schema.get_field_index("evidence"), table.schema.field("evidence"), new)
    return table


def _run_rows(events: pa.Table, rule: Any, sources: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """For a row-local rule over ``events`` (sorted by ts, seq): the seqs to keep (the first
    ``min_run`` rows of every run of equal states of an entity, and rows with an explicit
    ``from_state``) and the seqs of each entity's last run (its last ``min_run`` rows).

    The kept rows give the same transitions as all rows: every run keeps its first row, and
    a run keeps at least ``min_run`` rows exactly when it has that many."""
    empty = np.zeros(0, np.uint64)
    if events.num_rows == 0:
        return empty, empty
    rr = _as_rule(rule)
    obs = rr.observe(Timeline(events, sources, REJECT_SCHEMA.empty_table()))
    if obs is None or len(obs) == 0:
        return empty, empty
    seq_all = events.column("seq").combine_chunks().to_numpy()
    ts_all = events.column("ts").combine_chunks().view(pa.int64()).to_numpy()
    if isinstance(obs, pd.DataFrame):  # a rule's documented form: seq, entity, state[, from_state]
        by_seq = np.argsort(seq_all, kind="stable")
        oseq = obs["seq"].to_numpy(np.uint64)
        ts = ts_all[by_seq[np.searchsorted(seq_all, oseq, sorter=by_seq)]]
        ent = pd.factorize(obs["entity"])[0]
        st = pd.factorize(obs["state"])[0]
        explicit = obs["from_state"].notna().to_numpy() if "from_state" in obs else np.zeros(len(obs), bool)
    else:  # the built-in rules' Arrow form: row positions, entity/state arrays
        pos = np.asarray(obs.pos, np.int64)
        oseq, ts = seq_all[pos], ts_all[pos]
        ent, st = _codes(obs.entity), _codes(obs.state)
        fs = getattr(obs, "from_state", None)
        explicit = (pc.is_valid(fs).to_numpy(zero_copy_only=False) if fs is not None
                    else np.zeros(len(pos), bool))
    order = np.lexsort((oseq, ts, ent))
    e, s, oseq, explicit = ent[order], st[order], oseq[order], explicit[order]
    n = len(e)
    idx = np.arange(n)
    new_ent = np.r_[True, e[1:] != e[:-1]]
    new_run = new_ent | np.r_[True, s[1:] != s[:-1]]
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
    m = max(int(rr.min_run), 1)
    keep = ((idx - run_start) < m) | explicit
    run_id = np.cumsum(new_run) - 1
    run_last = np.r_[np.flatnonzero(new_run)[1:] - 1, n - 1]  # last row of each run
    last_ent = np.r_[new_ent[1:], True]  # the last row of each entity
    tail_run = np.zeros(int(run_id[-1]) + 1, bool)
    tail_run[run_id[last_ent]] = True
    tail = tail_run[run_id] & ((run_last[run_id] - idx) < m)
    return np.unique(oseq[keep]), np.unique(oseq[tail])


def _codes(a: Any) -> np.ndarray:
    """Equal values, equal codes (nulls -1)."""
    enc = pc.dictionary_encode(a)
    if isinstance(enc, pa.ChunkedArray):
        return pd.factorize(a.to_numpy(zero_copy_only=False))[0]
    return pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _rows_with(t: pa.Table, seqs: np.ndarray) -> pa.Table:
    if len(seqs) == 0 or t.num_rows == 0:
        return t.slice(0, 0)
    return t.filter(pc.is_in(t.column("seq"), value_set=pa.array(seqs, pa.uint64())))


def _read_slice(parts: Sequence[_Part], start: int | None, end: int | None, cols: str, where: str,
                con: Any = None) -> pa.Table:
    """Rows selected by ``where`` with ``start <= ts < end`` (aligned) from ``parts`` in one
    DuckDB query (row groups pruned on ``ts_src``), seq/ts prepared, sorted by (ts, seq)."""
    if not parts:
        return EVENT_SCHEMA.empty_table()
    branches = []
    for i, p in enumerate(parts):
        cond = [f"({where.replace(_TABLE, 'T')})"]
        if start is not None:
            cond.append(f"ts_src >= ({p.clock.to_src(start) - _MARGIN_NS})::BIGINT")
        if end is not None:
            cond.append(f"ts_src <= ({p.clock.to_src(end) + _MARGIN_NS})::BIGINT")
        branches.append(f"SELECT {i}::INTEGER AS __tk_part, {cols} "
                        f"FROM read_parquet('{_q(p.path)}', hive_partitioning = false) T WHERE {' AND '.join(cond)}")
    own = con is None
    con = con or _connect()
    try:
        t = _to_arrow(con.sql(" UNION ALL ".join(branches)))
    finally:
        if own:
            con.close()
    if t.num_rows == 0:
        return EVENT_SCHEMA.empty_table()
    pi = t.column("__tk_part").combine_chunks().to_numpy()
    t = _conform_candidates(t.drop_columns(["__tk_part"]))
    seq = t.column("seq").combine_chunks().to_numpy() + np.array([p.base for p in parts], np.uint64)[pi]
    src = t.column("ts_src").combine_chunks().to_numpy()
    ts = np.empty(len(src), np.int64)
    for i in np.unique(pi).tolist():
        m = pi == i
        c = parts[i].clock
        ts[m] = apply_clock(src[m], c.offset, c.drift_ppm, c.t0)
    t = t.set_column(t.schema.get_field_index("seq"), EVENT_SCHEMA.field("seq"), pa.array(seq))
    t = t.set_column(t.schema.get_field_index("ts"), EVENT_SCHEMA.field("ts"),
                     pa.array(ts).view(pa.timestamp("ns", tz="UTC")))
    inside = np.ones(len(ts), bool)
    if start is not None:
        inside &= ts >= start
    if end is not None:
        inside &= ts < end
    if not inside.all():
        t = t.filter(pa.array(inside))
    return _sort_events([t])


def _reduce_slice(parts: Sequence[_Part], start: int | None, end: int | None, cols: str, where: str,
                  rules: list, sources: pa.Table, con: Any = None) -> tuple[pa.Table, list[np.ndarray]]:
    """One time slice of row-local rules' candidates, reduced: the rows any rule keeps
    (:func:`_run_rows`) and, per rule, the seqs it keeps (a Dask task, or run locally)."""
    t = _read_slice(parts, start, end, cols, where, con)
    kept = [_run_rows(t, r, sources)[0] for r in rules]
    union = np.unique(np.concatenate(kept)) if kept else np.zeros(0, np.uint64)
    return _rows_with(t, union), kept


class _SliceMerge:
    """Merges reduced slices in time order: each rule runs on its kept rows of a slice after
    the rows it carried from the slices before (each entity's last run); transitions found on
    carried rows were already emitted and are dropped."""

    def __init__(self, rules: list, sources: pa.Table, params: dict, meta: dict):
        self.rules, self.sources, self.params, self.meta = rules, sources, params, meta
        self.carry = [EVENT_SCHEMA.empty_table() for _ in rules]
        self.tables: list[pa.Table] = []

    def add(self, rows: pa.Table, kept: list[np.ndarray]) -> None:
        for j, r in enumerate(self.rules):
            mine = _rows_with(rows, kept[j])
            if mine.num_rows == 0:
                continue  # nothing new: the carried rows stay as they are
            carried = self.carry[j]
            cand = _sort_events([carried, mine]) if carried.num_rows else mine
            table = _find(cand, [r], self.sources, self.params, self.meta)
            if carried.num_rows and table.num_rows:
                ev = table.column("evidence").combine_chunks()
                old = np.isin(ev.flatten().to_numpy(), carried.column("seq").combine_chunks().to_numpy())
                if old.any():
                    drop = np.zeros(table.num_rows, bool)
                    drop[pc.list_parent_indices(ev).to_numpy()[old]] = True
                    table = table.filter(pa.array(~drop))
            if table.num_rows:
                self.tables.append(table)
            self.carry[j] = _rows_with(cand, _run_rows(cand, r, self.sources)[1])


def _gather_as_completed(client: Any, futures: list) -> list:
    """Results in submission order, each fetched (and released on the worker) as it completes,
    so workers do not hold every partition's result until the last one is done."""
    from distributed import as_completed

    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(futures)
    for fut in as_completed(futures):
        out[index[fut.key]] = fut.result()
        fut.release()
    futures.clear()
    return out


def _overlaps(p: _Part, start: int | None, end: int | None) -> bool:
    lo = p.clock.to_src(start) - _MARGIN_NS if start is not None else None
    hi = p.clock.to_src(end) + _MARGIN_NS if end is not None else None
    return not ((lo is not None and p.src_max < lo) or (hi is not None and p.src_min > hi))


def _attr_nn(k: str) -> str:
    return f"element_at(attrs, '{_q(k)}')[1] is not null"


def _first_sight(keys: Sequence[str]) -> str:
    """Rows that are the first (by ts_src, seq) of their (service, attrs key, value), for the
    given keys, in one pass over the table."""
    svc = "coalesce(element_at(attrs, 'service')[1], element_at(attrs, 'resource.service.name')[1], category)"
    klist = ", ".join(f"'{_q(k)}'" for k in keys)
    return ("(seq in (select min(seq) from ("
            "select seq, ts_src, g, k, v, min(ts_src) over (partition by g, k, v) m from ("
            "select seq, ts_src, g, e.key k, e.value v from ("
            f"select seq, ts_src, row({svc}, CASE WHEN {svc} IS NULL THEN source::VARCHAR END) g, "
            f"unnest(list_filter(map_entries(attrs), lambda x: list_contains([{klist}], x.key))) e "
            f"from {_TABLE}) where e.value is not null)) where ts_src = m group by g, k, v))")


def _candidate_where(tl: StoreTimeline, chosen: Sequence[Any]) -> str:
    """An SQL predicate selecting every row the chosen rules can look at (a superset)."""
    from .clocks import EXEC_NAMES, EXIT_NAMES
    from .transitions import RULES, VERSION_KEYS, LogRule, StateMachine, _formats

    procs = ", ".join(f"'{n}'" for n in EXEC_NAMES + EXIT_NAMES)
    built = {
        "k8s-events": lambda: (f"(source in ({f}) and entity is not null and name is not null)"
                               if (f := _formats(tl, ("k8s_events",))) else None),
        "endpoints": lambda: (f"(source in ({f}) and entity like 'endpoint%')"
                              if (f := _formats(tl, ("k8s_audit",))) else None),
        "span-status": lambda: "(kind = 'span' and entity is not null and state in ('ok', 'error'))",
        "process": lambda: f"(name in ({procs}) and entity is not null)",
        "exit-status": lambda: f"(name in ({procs}) and entity is not null)",
        # a numeric status is no state; the pod names it resolves need one row per pod entity
        "log-state": lambda: "((kind = 'log' and (" + " or ".join(_attr_nn(k) for k in ("state", "phase", "to_state"))
        + " or (" + _attr_nn("status") + " and not regexp_full_match(element_at(attrs, 'status')[1], '[0-9]+'))))"
        " or seq in (select min(seq) from __TK_TABLE__ where entity like 'pod/%' group by entity))",
        "state-column": lambda: "(state is not null and kind = 'state')",
        # only the first row of each (service, value) can be a "first sight" (per file: the
        # merge then finds the global first); files are in (ts_src, seq) order
        "value-change": lambda: _first_sight(VERSION_KEYS),
        "cron": lambda: "(name = 'cron.cmd')",
    }
    conds: list[str] = []
    for r in chosen:
        if isinstance(r, str):
            if r not in RULES:
                raise KeyError(f"no rule {r!r}; rules: {', '.join(RULES)}")
            c = built[r]()
        elif isinstance(r, LogRule):
            c = "(message is not null" + (f" and ({r.where})" if r.where else "") + ")"
        elif isinstance(r, StateMachine):
            c = f"({r._col(r.entity)} is not null" + (f" and ({r.where})" if r.where else "") + ")"
        elif getattr(r, "name", None) in built and RULES.get(r.name) is r:
            c = built[r.name]()
        else:
            c = "true"
        if c:
            conds.append(c)
    return " or ".join(dict.fromkeys(conds)) or "false"


_SPAN_COLUMNS = "ts, ts_src, ts_prec, seq, source, kind, entity, state"
_RULE_COLUMNS = ("ts", "ts_src", "ts_prec", "seq", "source", "kind", "name", "category", "value", "host", "pid",
                 "tid", "entity", "state", "message")


def _candidate_columns(chosen: Sequence[Any]) -> str:
    """The columns candidate rows keep: what the rules read (attrs cut to their keys), or all
    columns when a rule is user code or filters with its own SQL."""
    from .transitions import RULE_ATTR_KEYS, RULES, LogRule, StateMachine

    keys = set(RULE_ATTR_KEYS)
    for r in chosen:
        if isinstance(r, str) or (getattr(r, "name", None) in RULES and RULES.get(r.name) is r):
            continue
        if isinstance(r, StateMachine) and r.where is None:
            keys |= {r.entity} | ({r.state} if r.state else set())
            continue
        if isinstance(r, LogRule) and r.where is None:
            continue
        return "*"
    klist = ", ".join(f"'{_q(k)}'" for k in sorted(keys))
    cols = [f'"{c}"' for c in _RULE_COLUMNS]
    cols.append(f"map_from_entries(list_filter(map_entries(attrs), lambda e: list_contains([{klist}], e.key))) "
                "AS attrs")
    return ", ".join(cols)
