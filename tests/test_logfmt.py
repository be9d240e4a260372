"""logfmt reader: the corpus files with exact counts, detection, content, options, hostile input."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tracekit as tk
from tracekit.readers import get_reader

from .helpers import assert_accounted, load_neutral
from .helpers import source_row as _src

# file → (records, emitted, rejected)
CORPUS = {
    "humanlog_logfmt_variants.log": (22, 7, 15),
    "humanlog_mixed_logfmt_and_json.log": (4, 4, 0),
    "lnav_logrus_logfmt.log": (5, 5, 0),
}


def _by_line(tl: tk.Timeline) -> dict[int, dict]:
    return {r["line"]: r for r in tl.events.to_pylist()}


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_counts_and_detection(corpus, tmp_path, name):
    tl = load_neutral(corpus / "logfmt" / name, tmp_path)
    assert_accounted(tl)
    row = _src(tl)
    assert row["format"] == "logfmt"
    assert (row["records"], row["emitted"], row["rejected"]) == CORPUS[name]
    assert row["rows"] == CORPUS[name][1]


@pytest.mark.corpus
def test_variants_aliases_go_times_and_rejects(corpus):
    tl = tk.load(corpus / "logfmt" / "humanlog_logfmt_variants.log")
    ev = _by_line(tl)
    # time/ts/timestamp/@timestamp all read, with their -05:00 offset
    for line in (6, 7, 8, 9, 10):
        assert ev[line]["ts_src"] == 1628705710_290034000
        assert ev[line]["message"] == "hello"
    # Go's non-RFC3339 "2022/09/11 16:31:21.198136", read as UTC and recorded as assumed
    assert ev[4]["ts_src"] == 1662913881_000000000
    assert ev[5]["ts_src"] == 1662913881_198136000
    assert ev[5]["ts_prec"].value == 1000
    assert dict(ev[5]["attrs"]) == {"do_all_electric_sheeps": "dream"}
    assert "tz" in dict(_src(tl)["assumed"])
    rej = tl.rejects.to_pylist()
    assert [r["line"] for r in rej] == [1, 2, 3] + list(range(11, 23))
    assert all("no time key" in r["reason"] for r in rej)
    assert rej[-1]["raw"] == 'level="some unknown level"'  # the last line has no newline


@pytest.mark.corpus
def test_variants_untimed_previous_keeps_level_only_lines(corpus):
    tl = tk.load(corpus / "logfmt" / "humanlog_logfmt_variants.log", untimed="previous")
    assert_accounted(tl)
    row = _src(tl)
    assert (row["emitted"], row["rejected"]) == (19, 3)  # lines 1-3 have no timed line above
    ev = _by_line(tl)
    assert ev[11]["ts_src"] == ev[10]["ts_src"]
    assert dict(ev[11]["attrs"])["tk.time"] == "previous"
    sev = {ln: ev[ln]["severity"] for ln in range(11, 23)}
    assert sev[11] == sev[12] == sev[13] == sev[14] == "critical"  # level, lvl, loglevel, severity
    assert [sev[ln] for ln in range(16, 22)] == ["debug", "info", "warning", "warning", "error", "critical"]
    assert sev[22] is None and dict(ev[22]["attrs"])["level"] == "some unknown level"


@pytest.mark.corpus
def test_mixed_json_lines_read_not_rejected(corpus):
    tl = tk.load(corpus / "logfmt" / "humanlog_mixed_logfmt_and_json.log")
    ev = _by_line(tl)
    assert ev[4]["message"] == "temporal-sys-tq-scanner-workflow workflow successfully started"
    assert ev[4]["severity"] == "info"
    assert ev[4]["ts_src"] == 1660100598_312000000
    assert dict(ev[4]["attrs"])["logging-call-at"] == "scanner.go:202"
    # escaped quotes inside a quoted value are decoded
    err = dict(ev[2]["attrs"])["error"]
    assert 'Post "http://localhost:18081/twirp/aqueduct.api.v1.JobQueueService/Receive": context' in err
    assert ev[2]["severity"] == "error" and ev[3]["severity"] == "debug"
    assert ev[1]["ts_src"] == 1660100604_259999353 and ev[1]["ts_prec"].value == 1
    assert dict(ev[1]["attrs"]) == {"Namespace": "runtime", "TaskQueue": "runtimed"}


@pytest.mark.corpus
def test_logrus_entity_and_empty_values(corpus):
    tl = tk.load(corpus / "logfmt" / "lnav_logrus_logfmt.log")
    ev = _by_line(tl)
    assert ev[1]["entity"] == "pod/inc-1-enh-domain-c14-ns-2/hello-inc-1-enh-domain-c14-ns-2-3-d8f465685-k75gp"
    assert ev[1]["message"].startswith("error retrieving pod status: pod inc-1")
    a = dict(ev[1]["attrs"])
    assert a["reason"] == "" and a["status"] == "Pending"
    assert ev[2]["severity"] == "warning"
    assert [ev[i]["severity"] for i in (3, 4, 5)] == ["info", "info", "error"]


@pytest.mark.corpus
def test_sniff_does_not_grab_other_text_formats(corpus):
    sniff = get_reader("logfmt").sniff
    for d in ("syslog", "strace", "ftrace", "dmesg", "journald", "perf_script", "bpftrace", "jsonl"):
        for p in sorted((corpus / d).iterdir()):
            if p.suffix == ".gz":
                continue
            assert sniff(p.read_bytes()[:65536], "input.bin") < 0.5, p


def _load(tmp_path, text: str | bytes, **kw) -> tk.Timeline:
    p = tmp_path / "app.log"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    tl = tk.load(p, format="logfmt", **kw)
    assert_accounted(tl)
    return tl


def test_tokens_quotes_escapes_and_rest(tmp_path):
    tl = _load(tmp_path, 'ts=2024-03-14T09:00:00Z level=info msg="a \\"q\\" b\\\\c\\nd" k= x="" '
                         'pid=42 caller=main.go:12 free words host=web-1\n')
    (e,) = tl.events.to_pylist()
    assert e["message"] == 'a "q" b\\c\nd'
    assert e["pid"] == 42 and e["host"] == "web-1" and e["category"] == "main.go:12"
    a = dict(e["attrs"])
    assert a["k"] == "" and a["x"] == "" and a["tk.rest"] == "free words"
    assert "pid" not in a and "msg" not in a and "ts" not in a


def test_epoch_time_unit_and_tz(tmp_path):
    tl = _load(tmp_path, "t=1710406800.5 msg=a\nt=1710406801500 msg=b\n")
    assert tl.events.column("ts_src").to_pylist() == [1710406800_500000000, 1710406801_500000000]
    tl = _load(tmp_path, "time=1710406800 msg=a\n", time_unit="ms")
    assert tl.events.column("ts_src").to_pylist() == [1710406800_000000]
    tl = _load(tmp_path, 'time="2024-03-14 10:00:00" msg=a\ntime="2024-03-31 02:30:00" msg=gap\n',
               tz="Europe/Berlin")
    assert tl.events.column("ts_src").to_pylist() == [1710406800_000000000]
    assert tl.rejects.column("reason").to_pylist() == [
        "cannot read the time value (not ISO-8601, Go time or an epoch number)"]
    with pytest.raises(tk.TracekitError, match="tz="):
        _load(tmp_path, "time=1 msg=a\n", tz="Mars/Olympus")


def test_go_time_string_form(tmp_path):
    tl = _load(tmp_path, 'time="2024-03-14 09:00:00.25 +0100 CET m=+0.001" msg=a\n')
    assert tl.events.column("ts_src").to_pylist() == [1710403200_250000000]


def test_option_fields_and_named_keys(tmp_path):
    tl = _load(tmp_path, "when=2024-03-14T09:00:00Z sev=warn text=hi obj=o1 st=up\n",
               time_field="when", level_field="sev", message_field="text",
               fields={"entity": "obj", "state": "st"})
    (e,) = tl.events.to_pylist()
    assert (e["severity"], e["message"], e["entity"], e["state"]) == ("warning", "hi", "o1", "up")
    with pytest.raises(tk.TracekitError):
        _load(tmp_path, "a=1\n", fields={"bogus": "x"})
    with pytest.raises(tk.TracekitError):
        _load(tmp_path, "a=1\n", untimed="maybe")


def test_hostile_input(tmp_path):
    good = 'time=2024-03-14T09:00:02Z level=info msg="ok"\n'
    text = (
        b"time=2024-03-14T09:00:05Z level=info msg=\"later first\"\n"  # out of order
        + good.encode()
        + b"\x00\x01garbage \xff\xfe no pairs here\n"
        + b"time=2024-03-14T09:00:03Z msg=\"bad \xff utf8\"\n"
        + b"time=2024-13-99T99:00:00Z msg=badtime\n"
        + b"\n   \n"
        + b"time=2024-03-14T09:00:04Z msg=" + b"x" * 300_000 + b"\n"
        + b"{\"ts\": \"2024-03-14T09:00:06Z\", \"msg\": \"json\"}\n"
        + b"{\"ts\": truncated\n"
        + b'time=2024-03-14T09:00:07Z msg="unterminated'
    )
    tl = _load(tmp_path, text)
    row = _src(tl)
    assert row["records"] == 9  # blank lines are not records
    assert row["emitted"] == 6 and row["rejected"] == 3
    reasons = {r["line"]: r["reason"] for r in tl.rejects.to_pylist()}
    assert reasons[3].startswith("not logfmt")
    assert reasons[5].startswith("cannot read the time")
    assert "JSON" in reasons[10]
    ev = _by_line(tl)
    assert "\\xff" in ev[4]["message"]
    assert len(ev[8]["message"]) == 300_000
    assert ev[9]["message"] == "json"
    assert ev[11]["message"] == '"unterminated'
    ts = tl.events.column("ts").cast(pa.int64()).to_pylist()
    assert ts == sorted(ts)


def test_empty_and_blank(tmp_path):
    for text in ("", "\n\n  \n"):
        tl = _load(tmp_path, text)
        assert tl.events.num_rows == 0 and _src(tl)["records"] == 0


def test_detection_from_content(tmp_path):
    p = tmp_path / "x.bin"
    p.write_text('time="2021-09-15T21:17:10Z" level=error msg="m" a=1\n' * 3)
    assert _src(tk.load(p))["format"] == "logfmt"
    # syslog-looking text with key=value inside is not logfmt
    p.write_text("Mar 14 09:00:00 web-1 app[12]: user=bob action=login ok=1\n" * 3)
    assert get_reader("logfmt").sniff(p.read_bytes(), "x.bin") < 0.5
