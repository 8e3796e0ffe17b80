"""Audit trail: hash chain, verify names edited/deleted/reordered/truncated lines, CLI."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from cxr_viewer import audit
from cxr_viewer.audit import AuditLog, verify
from cxr_viewer.cli import main


def fill(log: AuditLog, n: int = 5) -> list[bytes]:
    audit.study_opened("1.2.3", ["1.2.3.1", "1.2.3.2"], log_=log)
    audit.ai_analysis(
        model_name="m", model_version="1.1.0", weights_sha256="ab" * 32, input_sop_uid="1.2.3.1",
        study_uid="1.2.3", abnormal=0.8, flagged=["Cardiomegaly"], operating_mode="balanced",
        log_=log,
    )  # fmt: skip
    audit.exported(
        "DICOM SR", "/tmp/x.dcm", study_uid="1.2.3", source_sop_uids=["1.2.3.1"], log_=log
    )
    audit.sent("DICOM SR", "PACS@host:104", sop_uids=["1.2.3.9"], log_=log)
    audit.setting_changed("ai.operating_mode", "balanced", "screening", log_=log)
    for i in range(n - 5):
        audit.study_opened(f"1.2.{i}", [], log_=log)
    return log.path.read_bytes().splitlines(keepends=True)


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit" / "audit.jsonl")


def test_records_chain_and_use_the_dicom_audit_vocabulary(log):
    lines = fill(log)
    assert len(lines) == 5 and all(ln.endswith(b"\n") for ln in lines)
    records = [json.loads(ln) for ln in lines]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == audit.GENESIS
    for prev, rec in zip(lines, records[1:], strict=False):
        assert rec["prev"] == audit.line_hash(prev)
    opened, analysis, export, send, setting = records
    assert opened["EventID"]["code"] == "110103" and opened["EventActionCode"] == "R"
    assert [o["ID"] for o in opened["ParticipantObjects"]] == ["1.2.3", "1.2.3.1", "1.2.3.2"]
    assert analysis["details"]["weights_sha256"] == "ab" * 32
    assert analysis["details"]["flagged"] == ["Cardiomegaly"]
    assert analysis["details"]["abnormal"] == 0.8
    assert analysis["details"]["operating_mode"] == "balanced"
    assert export["EventID"]["code"] == "110106" and send["EventID"]["code"] == "110104"
    assert setting["EventTypeCode"]["code"] == "110131"
    # no names anywhere: only UIDs and the operator's user id
    assert "DOE" not in log.path.read_text()
    assert verify(log.path).ok and verify(log.path).lines == 5


def problems(log) -> list[tuple[int, str]]:
    result = verify(log.path)
    assert not result.ok
    return result.problems


def test_an_edited_line_is_named(log):
    lines = fill(log)
    lines[1] = lines[1].replace(b'"abnormal":0.8', b'"abnormal":0.1')
    log.path.write_bytes(b"".join(lines))
    found = problems(log)
    assert [line for line, _ in found] == [2]
    assert "line 2 was changed" in found[0][1]


def test_an_edited_last_line_is_named(log):
    lines = fill(log)
    lines[-1] = lines[-1].replace(b"screening", b"research")
    log.path.write_bytes(b"".join(lines))
    assert problems(log) == [(5, "line 5 (the last) was changed after it was written")]


def test_a_deleted_line_is_named(log):
    lines = fill(log, 7)
    del lines[2]
    log.path.write_bytes(b"".join(lines))
    found = problems(log)
    assert found == [
        (3, "line 3 has sequence number 4 after 2: entry 3 is missing (deleted, or moved)")
    ]


def test_deleted_last_lines_are_named(log):
    lines = fill(log, 7)
    log.path.write_bytes(b"".join(lines[:5]))
    assert problems(log) == [(5, "entries 6..7 were removed from the end")]


def test_reordered_lines_are_named(log):
    lines = fill(log, 7)
    lines[3], lines[4] = lines[4], lines[3]
    log.path.write_bytes(b"".join(lines))
    found = problems(log)
    assert [line for line, _ in found] == [4, 5]
    assert "entry 4 is missing" in found[0][1] and "out of order" in found[1][1]


def test_a_truncated_last_line_is_reported_and_never_repaired(log):
    lines = fill(log)
    cut = b"".join(lines)[:-40]  # a crash in the middle of writing the last line
    log.path.write_bytes(cut)
    found = problems(log)
    assert found == [(5, "line 5 is incomplete (no newline at the end: an interrupted write)")]
    assert log.path.read_bytes() == cut  # verify changed nothing
    # the next event starts on a new line after it; only the broken line stays reported
    audit.study_opened("9.9", [], log_=log)
    data = log.path.read_bytes()
    assert data.startswith(cut + b"\n") and data.endswith(b"\n")
    found = problems(log)
    assert [line for line, _ in found] == [5]
    assert "not a valid JSON record" in found[0][1]


def _append_many(path: str, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        audit.study_opened(f"1.{i}", [], log_=log)


def test_concurrent_writers_keep_the_chain(log):
    log.path.parent.mkdir(parents=True)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(log.path), 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    result = verify(log.path)
    assert result.ok, result.problems
    assert result.lines == 45


def test_cli_verify_and_show(log, capsys):
    fill(log)
    assert main(["audit", "--log", str(log.path), "verify"]) == 0
    assert "5 line(s), hash chain intact" in capsys.readouterr().out
    assert main(["audit", "--log", str(log.path), "show"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5 and "ai-analysis" in out[1] and "weights_sha256=" in out[1]
    assert main(["audit", "--log", str(log.path), "show", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "--log", str(log.path), "show", "--since", "yesterday"]) == 2
    lines = log.path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b"1.2.3.2", b"1.2.3.7")
    log.path.write_bytes(b"".join(lines))
    assert main(["audit", "--log", str(log.path), "verify"]) == 1
    assert ":1: line 1 was changed" in capsys.readouterr().out


def test_predict_style_events_go_to_the_default_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CXR_VIEWER_DATA_DIR", str(tmp_path / "data"))
    audit.study_opened("1.2", ["1.2.1"])
    assert audit.default_log_path() == tmp_path / "data" / "audit" / "audit.jsonl"
    assert verify().ok and verify().lines == 1


def test_appends_read_only_the_tail_of_a_long_log(log, monkeypatch):
    monkeypatch.setattr(audit, "TAIL_BYTES", 2048)  # a few lines: the long-log path, quickly
    fill(log, 40)
    assert log.path.stat().st_size > 8 * audit.TAIL_BYTES
    audit.study_opened("7.7", [], log_=log)
    result = verify(log.path)
    assert result.ok and result.lines == 41
    # a cut-short line longer than the tail window: the whole file is counted once
    with open(log.path, "ab") as fh:
        fh.write(b'{"seq": 42, "details": "' + b"x" * 5000)
    audit.study_opened("8.8", [], log_=log)
    records = [r for _, r, _ in log.records()]
    assert records[-1]["seq"] == 43 and records[-2] is None
    assert [line for line, _ in verify(log.path).problems] == [42]
