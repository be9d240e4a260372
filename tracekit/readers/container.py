"""Container logs: the kubelet's CRI log files and ``kubectl logs --timestamps`` output.

CRI form (``/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log``, written by containerd/CRI-O)::

    2024-03-14T09:00:00.123456789Z stdout F a whole line
    2024-03-14T09:00:00.200000000Z stderr P the first 16 KiB of a long line…
    2024-03-14T09:00:00.200000100Z stderr F …and its end

A ``P`` (partial) line is joined with the following lines *of the same stream* up to the next
``F``: one event, whose ``line``..``line_end`` span its lines, stamped with the first piece's
time; the other pieces count as ``merged``. A ``P`` run with no ``F`` before the end of the
file is kept and flagged ``attrs["tk.partial"] = "true"``.

kubectl form: ``<RFC3339Nano> message`` per line, optionally after kubectl's
``--prefix`` tag ``[pod/<pod>/<container>] ``.

Docker form (``/var/log/containers`` on nodes running the docker json-file driver):
``{"log": "text\\n", "stream": "stdout", "time": "…Z"}`` per line; a ``log`` without its
final newline is a partial piece, joined like CRI ``P`` lines; labels in ``attrs`` are kept.

The pod and container come from the path (``/var/log/pods/<ns>_<pod>_<uid>/<container>/N.log``
or ``/var/log/containers/<pod>_<ns>_<container>-<id>.log``), the ``--prefix`` tag, or the
options ``pod=``, ``container=``, ``namespace=`` (which win). The entity is
``pod/<ns>/<pod>``; ``attrs`` hold ``container`` and ``stream``. A message that is itself JSON
or logfmt is kept verbatim in ``message`` (``parse_message=True`` also copies its top-level
fields into ``attrs`` and its level into ``severity``). Times are RFC 3339 with nanoseconds whose trailing
zeros the runtime drops, so ``ts_prec`` is 1 ns.

Example::

    >>> import tracekit as tk
    >>> tl = tk.load("var/log/pods/shop_api-7d4_0d1e/api/0.log")     # doctest: +SKIP
    >>> tl.events.select(["ts", "entity", "message"])                 # doctest: +SKIP
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from .. import _time
from ..errors import OptionError
from ..schema import conform, normalize_severity
from ._base import HEAD_BYTES, Input, Reader, ReadResult, make_rejects, register, split_lines
from .logfmt import _input_buffer

_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)"
_CRI_SNIFF = re.compile(rb"^\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) [PF](?::\S*)?(?: |$)")
_KUBECTL_SNIFF = re.compile(rb"^(?:\[pod/[^/\]\s]+/[^\]\s]+\] )?" + _TS.encode() + rb"(?: |$)")
_SYSLOGISH = re.compile(rb"^\S+ \S+ [^\s:\[]+(?:\[\d+\])?: ")

_DOCKER_KEYS = {"log", "stream", "time", "attrs"}
_CRI_RE = r"^(\S+) (stdout|stderr) ([PF])(?::[^ ]*)?(?: (.*))?$"
_KUBECTL_RE = r"^(?:\[pod/([^/\]\s]+)/([^\]\s]+)\] )?(" + _TS + r")(?: (.*))?$"
_PODS_PATH = re.compile(r"(?:^|[/!])pods/([^/_]+)_([^/_]+)_([^/]+)/([^/]+)/\d+\.log[^/]*$")
_CONTAINERS_PATH = re.compile(r"(?:^|[/!])containers/([^/_]+)_([^/_]+)_([^/]+)-([0-9a-f]{64})\.log[^/]*$")


def _sniff(head: bytes, name: str) -> float:
    """0.95 for CRI lines (above syslog, whose RFC 3339 header they also fit); 0.55 for
    ``<RFC3339Nano> message`` lines that are not syslog."""
    chunk = head.split(b"\n")
    if len(head) >= HEAD_BYTES and len(chunk) > 1:
        chunk = chunk[:-1]
    lines = [ln.rstrip(b"\r") for ln in chunk[:50] if ln.strip()]
    if not lines:
        return 0.0
    n = len(lines)
    if lines[0].startswith(b"{"):
        return _sniff_docker(lines)
    cri = sum(1 for ln in lines if _CRI_SNIFF.match(ln))
    if cri >= 0.8 * n:
        return 0.95
    kub = [ln for ln in lines if _KUBECTL_SNIFF.match(ln)]
    if len(kub) < 0.8 * n:
        return 0.3 if cri >= 0.5 * n else 0.0
    if sum(1 for ln in kub if _SYSLOGISH.match(ln)) >= 0.5 * len(kub):
        return 0.2  # rsyslog / journalctl short-iso: host and program after the time
    hint = "/pods/" in "/" + name or "/containers/" in "/" + name
    return 0.6 if hint else 0.55


def _sniff_docker(lines: list[bytes]) -> float:
    """0.8 when the JSON lines are docker json-file records (keys log, stream, time)."""
    import orjson

    hits = 0
    for ln in lines[:10]:
        try:
            obj = orjson.loads(ln)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and {"log", "stream", "time"} <= obj.keys() and set(obj) <= _DOCKER_KEYS:
            hits += 1
        else:
            return 0.0
    return 0.8 if hits else 0.0


def _from_path(path: str) -> dict[str, str]:
    p = path.replace("\\", "/")
    m = _PODS_PATH.search(p)
    if m:
        return {"namespace": m.group(1), "pod": m.group(2), "pod_uid": m.group(3), "container": m.group(4)}
    m = _CONTAINERS_PATH.search(p)
    if m:
        return {"pod": m.group(1), "namespace": m.group(2), "container": m.group(3), "container_id": m.group(4)}
    return {}


def _read(
    inp: Input,
    pod: str | None = None,
    container: str | None = None,
    namespace: str | None = None,
    form: str = "auto",
    parse_message: bool = False,
) -> ReadResult:
    if form not in ("auto", "cri", "kubectl", "docker"):
        raise OptionError(f"{inp.path}: form must be 'auto', 'cri', 'kubectl' or 'docker', not {form!r}")
    who = _from_path(inp.path) or _from_path(inp.name)
    opts = {k: v for k, v in (("pod", pod), ("container", container), ("namespace", namespace)) if v is not None}
    who.update(opts)

    lines = split_lines(_input_buffer(inp))
    keep = np.flatnonzero(~lines.blank())
    n = len(keep)
    text = pc.utf8_rtrim(lines.text.take(pa.array(keep)), characters="\r\n") if n else pa.array([], pa.large_string())
    lno, offs = lines.line[keep], lines.offset[keep]
    s = pl.Series("s", text) if n else pl.Series("s", [], pl.String)

    cri = s.str.extract_groups(_CRI_RE)
    cri_ts = _time.parse_iso8601(cri.struct.field("1"))
    cri_ok = cri_ts["ok"] & cri_ts["tz"] & cri.struct.field("2").is_not_null().to_numpy()
    kub = s.str.extract_groups(_KUBECTL_RE)
    kub_ts = _time.parse_iso8601(kub.struct.field("3"))
    kub_ok = kub_ts["ok"] & kub.struct.field("3").is_not_null().to_numpy()
    dock = None
    if form == "docker" or (form == "auto" and n and bool(s.str.starts_with("{").any())):
        dock = _docker(text)
    if form == "auto":
        form = "cri" if cri_ok.sum() and 2 * cri_ok.sum() >= kub_ok.sum() else "kubectl"
        if dock is not None and dock["ok"].sum() > max(cri_ok.sum(), kub_ok.sum()):
            form = "docker"

    meta: dict[str, Any] = {"clock": "realtime", "assumed": {}, "form": form}
    extra = {k: v for k, v in who.items() if k in ("pod_uid", "container_id")}
    if extra:
        meta["extra"] = extra
    if lines.bad_utf8.size:
        meta["note"] = f"{lines.bad_utf8.size} lines with invalid UTF-8 (kept, bytes escaped as \\xNN)"

    if form == "cri":
        ok = cri_ok
        reason = "not a CRI log line (<RFC3339Nano time> <stdout|stderr> <P|F> <message>)"
    elif form == "docker":
        assert dock is not None
        ok = dock["ok"]
        reason = 'not a docker json-file line ({"log": …, "stream": "stdout|stderr", "time": RFC 3339})'
    else:
        ok = kub_ok
        reason = "not a timestamped log line (<RFC3339Nano time> <message>)"
    bad = np.flatnonzero(~ok)
    rejects = None
    if len(bad):
        rejects = make_rejects(inp.name, inp.path, lno[bad], offs[bad], reason, s.gather(bad).to_arrow())
    good = np.flatnonzero(ok)
    if not len(good):
        return ReadResult(events={"ts_src": pa.array([], pa.int64())}, records=n, emitted=0,
                          rejects=rejects, meta=meta)

    labels = None
    if form in ("cri", "docker"):
        if form == "cri":
            df = pl.DataFrame({
                "k": good,
                "ts": cri_ts["ns"][good],
                "stream": cri.struct.field("2").gather(good),
                "tag": cri.struct.field("3").gather(good),
                "msg": cri.struct.field("4").gather(good).fill_null(""),
            })
        else:
            assert dock is not None
            log = dock["log"].gather(good)
            df = pl.DataFrame({
                "k": good,
                "ts": dock["ns"][good],
                "stream": dock["stream"].gather(good),
                # a piece without its newline is partial (docker splits lines at 16 KiB)
                "tag": pl.select(pl.when(log.str.ends_with("\n")).then(pl.lit("F")).otherwise(pl.lit("P"))).to_series(),
                "msg": log.str.strip_suffix("\n").str.strip_suffix("\r"),
            })
            labels = dock["labels"]
        # a record is a run of P pieces of one stream closed by its next F
        df = df.with_columns(
            (pl.col("tag") == "F").cast(pl.Int64).cum_sum().shift(1, fill_value=0).over("stream").alias("g")
        )
        rec = (
            df.group_by(["stream", "g"], maintain_order=True)
            .agg(
                pl.col("k").first().alias("k"),
                pl.col("k").last().alias("k_end"),
                pl.col("ts").first().alias("ts"),
                pl.col("msg").str.join("").alias("msg"),
                pl.col("tag").last().alias("last"),
                pl.len().alias("pieces"),
            )
            .sort("k")
        )
        k = rec["k"].to_numpy()
        k_end = rec["k_end"].to_numpy()
        stream = rec["stream"]
        partial = (rec["last"] == "P").to_numpy()
        emitted = rec.height
        merged = len(good) - emitted
        ts = rec["ts"].to_numpy()
        msg = rec["msg"]
        line_end = pa.array(lno[k_end], mask=(k_end == k))
        pods = conts = None
    else:
        k = good
        ts = kub_ts["ns"][good]
        msg = kub.struct.field("4").gather(good).fill_null("")
        stream = None
        partial = np.zeros(len(good), dtype=bool)
        emitted = len(good)
        merged = 0
        line_end = None
        pods = kub.struct.field("1").gather(good)
        conts = kub.struct.field("2").gather(good)
        if pods.null_count() == len(pods):
            pods = conts = None

    m = len(k)
    pod_col, cont_col = _who_columns(who, pods, conts, m)
    ns = who.get("namespace")
    if pod_col is not None and ns is None:
        ns = "default"
        meta["assumed"]["namespace"] = "default (not in the path; set namespace=)"
    entity = None
    if pod_col is not None:
        entity = pl.select(pl.concat_str([pl.lit(f"pod/{ns}/"), pod_col])).to_series().to_arrow()

    # attrs: container, stream, tk.partial — built as flat key/value columns
    keys: list[pl.Series] = []
    vals: list[pl.Series] = []
    rows: list[np.ndarray] = []
    if cont_col is not None:
        valid = cont_col.is_not_null().to_numpy()
        rows.append(np.flatnonzero(valid))
        keys.append(pl.Series(["container"] * int(valid.sum()), dtype=pl.String))
        vals.append(cont_col.filter(pl.Series(valid)))
    if stream is not None:
        rows.append(np.arange(m))
        keys.append(pl.Series(["stream"] * m, dtype=pl.String))
        vals.append(stream)
    if partial.any():
        p = np.flatnonzero(partial)
        rows.append(p)
        keys.append(pl.Series(["tk.partial"] * len(p), dtype=pl.String))
        vals.append(pl.Series(["true"] * len(p), dtype=pl.String))
    if partial.any():
        meta["note"] = (meta.get("note", "") + "; " if meta.get("note") else "") + (
            f"{int(partial.sum())} partial (P) line(s) without a closing F at the end of the file")
    if labels is not None and labels.height:
        # docker --log-opt labels/env: the record's "attrs" object, per record of its first piece
        pos = np.full(n, -1, dtype=np.int64)
        pos[k] = np.arange(m)
        lab = labels.with_columns(pl.Series("row", pos[labels["k"].to_numpy()], dtype=pl.Int64)).filter(pl.col("row") >= 0)
        if lab.height:
            rows.append(lab["row"].to_numpy())
            keys.append(lab["key"])
            vals.append(lab["value"])
    severity = None
    if parse_message and m:
        frows, fkeys, fvals, severity = _message_fields(msg)
        if len(frows):
            rows.append(frows)
            keys.append(fkeys)
            vals.append(fvals)
    attrs = _map(rows, keys, vals, m)
    msg_arr = msg.to_arrow()
    cols: dict[str, Any] = {
        "ts_src": ts,
        "ts_prec": np.ones(m, dtype=np.int64),
        "kind": "log",
        "name": msg_arr,
        "message": msg_arr,
        "entity": entity,
        "severity": severity,
        "attrs": attrs,
        "line": lno[k],
        "line_end": line_end,
        "offset": offs[k],
    }
    return ReadResult(events=conform(cols), records=n, emitted=emitted, merged=merged,
                      rejects=rejects, meta=meta)


def _docker(text: pa.Array) -> dict[str, Any]:
    """Docker json-file lines → ok mask, time ns, stream, log, and the ``attrs`` labels (k, key, value)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("t", pa.table({"k": np.arange(len(text), dtype=np.int64), "line": text}))
        con.sql("create temp table d as select k, CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT'"
                " THEN line END AS j from t")
        r = con.sql("select json_extract_string(j, '$.log') AS log, json_type(j, '$.log') AS lt,"
                    " json_extract_string(j, '$.stream') AS stream, json_extract_string(j, '$.time') AS time"
                    " from d order by k").to_arrow_table()
        labels = con.sql(
            "select k, e.key AS key, coalesce(json_extract_string(e.value, '$'), 'null') AS value from"
            " (select k, unnest(map_entries(try_cast(json_extract(j, '$.attrs') AS MAP(VARCHAR, JSON)))) AS e"
            "  from d where j IS NOT NULL AND json_type(j, '$.attrs') = 'OBJECT') order by k"
        ).to_arrow_table()
    finally:
        con.close()
    tm = _time.parse_iso8601(r.column("time"))
    stream = pl.Series(r.column("stream").combine_chunks())
    ok = (tm["ok"] & tm["tz"] & stream.is_in(["stdout", "stderr"]).fill_null(False).to_numpy()
          & pc.fill_null(pc.equal(r.column("lt"), "VARCHAR"), False).to_numpy(zero_copy_only=False))
    lab = pl.from_arrow(labels)
    assert isinstance(lab, pl.DataFrame)
    return {"ok": np.asarray(ok, dtype=bool), "ns": tm["ns"], "stream": stream,
            "log": pl.Series(r.column("log").combine_chunks()).fill_null(""),
            "labels": lab.with_columns(pl.col("k").cast(pl.Int64))}


def _message_fields(msg: pl.Series) -> tuple[np.ndarray, pl.Series, pl.Series, pa.Array | None]:
    """Top-level fields of JSON-object and logfmt messages, as (row, key, value) entries, and a
    severity from their level key. The message itself is left as it is."""
    import duckdb

    from .logfmt import LEVEL_KEYS, _tokens

    m = len(msg)
    parts: list[pl.DataFrame] = []
    is_json = msg.str.starts_with("{").to_numpy()
    if is_json.any():
        ji = np.flatnonzero(is_json)
        con = duckdb.connect()
        try:
            con.register("t", pa.table({"i": ji, "msg": msg.gather(ji).to_arrow()}))
            js = con.sql(
                "select i, e.key AS key, coalesce(json_extract_string(e.value, '$'), 'null') AS value from"
                " (select i, unnest(map_entries(try_cast(try(msg::JSON) AS MAP(VARCHAR, JSON)))) AS e"
                "  from t where json_valid(msg) and json_type(msg) = 'OBJECT')"
            ).to_arrow_table()
        finally:
            con.close()
        parts.append(pl.DataFrame(pl.from_arrow(js)).with_columns(pl.col("i").cast(pl.Int64)))
    lf = ~is_json & msg.str.contains(r'^\s*[^\s="]+=\S*.*\s[^\s="]+=').to_numpy()
    if lf.any():
        li = np.flatnonzero(lf)
        tok = _tokens(msg.gather(li))
        parts.append(tok.select(pl.Series("i", li, dtype=pl.Int64).gather(tok["i"]), "key", "value"))
    if not parts:
        return np.zeros(0, np.int64), pl.Series([], dtype=pl.String), pl.Series([], dtype=pl.String), None
    f = pl.concat([p.select(pl.col("i").cast(pl.Int64), pl.col("key").cast(pl.String),
                            pl.col("value").cast(pl.String)) for p in parts]).sort("i", maintain_order=True)
    rank = {k: r for r, k in enumerate(LEVEL_KEYS)}
    lv = (f.filter(pl.col("key").is_in(list(LEVEL_KEYS)))
          .with_columns(pl.col("key").replace_strict(rank, default=None, return_dtype=pl.Int64).alias("r"))
          .sort(["i", "r"]).unique(subset="i", keep="first"))
    severity = None
    if lv.height:
        words = np.full(m, None, dtype=object)
        words[lv["i"].to_numpy()] = lv["value"].to_numpy()
        severity = normalize_severity(pa.array(words.tolist(), pa.string()))
    return f["i"].to_numpy(), f["key"], f["value"], severity


def _who_columns(who: dict[str, str], pods: pl.Series | None, conts: pl.Series | None,
                 m: int) -> tuple[pl.Series | None, pl.Series | None]:
    """Per-row pod and container: options/path win over kubectl's ``--prefix`` tag."""
    pod = pl.Series([who["pod"]] * m, dtype=pl.String) if "pod" in who else pods
    cont = pl.Series([who["container"]] * m, dtype=pl.String) if "container" in who else conts
    return pod, cont


def _map(rows: list[np.ndarray], keys: list[pl.Series], vals: list[pl.Series], m: int) -> pa.Array:
    if not rows:
        return pa.MapArray.from_arrays(pa.array(np.zeros(m + 1, np.int32)), pa.array([], pa.string()),
                                       pa.array([], pa.string()))
    r = np.concatenate(rows)
    order = np.argsort(r, kind="stable")
    k = pl.concat(keys).to_arrow().cast(pa.string()).take(pa.array(order))
    v = pl.concat(vals).to_arrow().cast(pa.string()).take(pa.array(order))
    offsets = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=m), out=offsets[1:])
    return pa.MapArray.from_arrays(pa.array(offsets), k, v)


register(
    Reader(
        name="container",
        description="Kubernetes container logs: CRI files under /var/log/pods (P/F lines joined), "
                    "docker json-file logs and kubectl logs --timestamps",
        sniff=_sniff,
        read=_read,
        options={
            "pod": "pod name; default: from the path (/var/log/pods/<ns>_<pod>_<uid>/… or /var/log/containers/…)",
            "container": "container name; default: from the path or kubectl's --prefix tag",
            "namespace": "namespace; default: from the path, else 'default' (recorded as assumed)",
            "form": "'auto' (default), 'cri' (<time> <stream> <P|F> <msg>), 'kubectl' (<time> <msg>) "
                    "or 'docker' (json-file {\"log\", \"stream\", \"time\"})",
            "parse_message": "False (default); True adds the fields of JSON/logfmt messages to attrs and "
                             "their level to severity (the message is kept as written)",
        },
        extensions=(),
    )
)
