"""DICOM Structured Report of the AI findings: codes, highdicom round trip, dciodvfy, dsrdump."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from cxr_viewer import DISCLAIMER
from cxr_viewer.cli import main
from cxr_viewer.export import ai_codes as C
from cxr_viewer.export.annotated import ExportError
from cxr_viewer.export.sr import build_sr, write_sr
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import generate_sample_study
from tests.dicom_results_kit import (
    CORPUS_BAD_DATE,
    CORPUS_CHESTS,
    ExtendedPrediction,
    dciodvfy_errors,
    dsrdump_binary,
)
from tests.test_export_annotated import make_dicom, make_prediction

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


def extended(image_id: str) -> ExtendedPrediction:
    base = make_prediction(image_id)
    return ExtendedPrediction(
        **{
            **base.__dict__,
            "abnormal": 0.83,
            "abnormal_threshold": 0.6,
            "mode": "screening",
            "calibrated": True,
        }
    )


def test_public_codes_are_the_ones_ps3_16_defines():
    """Never a code invented under a public scheme: each one is in PS3.16 with that meaning."""
    from pydicom.sr._concepts_dict import concepts

    for concept in C.PUBLIC_CONCEPTS:
        table = concepts[concept.scheme]
        meanings = [
            meaning.lower()
            for codes in table.values()
            for value, (meaning, _cids) in codes.items()
            if value == concept.value
        ]
        assert meanings, f"{concept} is not in PS3.16"
        assert concept.meaning.lower() in meanings, f"{concept}: PS3.16 says {meanings}"
    # every finding has a concept; the private ones use our designator
    assert tuple(C.FINDING_CONCEPTS) == VINDR_FINDINGS
    private = [c for c in C.FINDING_CONCEPTS.values() if c.is_private]
    assert all(c.scheme == "99CXRV" for c in private) and len(private) == 8
    assert len({(c.value, c.scheme) for c in C.FINDING_CONCEPTS.values()}) == 14
    every = [v for v in vars(C).values() if isinstance(v, C.Concept)]
    every += list(C.FINDING_CONCEPTS.values())
    assert all(len(c.value) <= 16 for c in every)  # Code Value is SH (Long Code Value aside)


@pytest.fixture
def sr_pair(tmp_path):
    image = load_image(make_dicom(tmp_path / "source.dcm"))
    pred = extended(image.image_id)
    path = write_sr(image, pred, tmp_path / "sr.dcm")
    return image, pred, path


def test_highdicom_round_trip_reads_every_finding_and_score(sr_pair):
    import highdicom as hd
    from highdicom.sr import ValueTypeValues
    from highdicom.sr.utils import find_content_items
    from pydicom.sr.codedict import codes

    image, pred, path = sr_pair
    sr = hd.sr.srread(path)
    assert sr.SOPClassUID == COMPREHENSIVE_SR
    assert sr.StudyInstanceUID == image.study_uid and sr.SeriesInstanceUID != image.series_uid
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "UNVERIFIED"
    assert (
        sr.CurrentRequestedProcedureEvidenceSequence[0]
        .ReferencedSeriesSequence[0]
        .ReferencedSOPSequence[0]
        .ReferencedSOPInstanceUID
        == image.sop_uid
    )
    groups = sr.content.get_image_measurement_groups()
    assert len(groups) == 14 + 2  # the findings, Abnormal, No finding
    by_code = {(g.finding_type.value, g.finding_type.scheme_designator): g for g in groups}
    for score in pred.scores:
        concept = C.FINDING_CONCEPTS[score.finding]
        group = by_code[(concept.value, concept.scheme)]
        algo = {  # TID 4019 Algorithm Identification
            item.name.meaning: item.value
            for item in find_content_items(group[0], value_type=ValueTypeValues.TEXT)
        }
        assert algo["Algorithm Name"] == "tiny-cnn" and algo["Algorithm Version"] == "0.3.1"
        params = [
            item.value for item in find_content_items(group[0], name=codes.DCM.AlgorithmParameters)
        ]
        assert f"weights-sha256={pred.weights_sha256}" in params
        assert "operating-mode=screening" in params
        assert "calibrated-probabilities=yes" in params
        scored = group.get_qualitative_evaluations(name=C.SCORED.coded())[0].value
        probs = group.get_measurements(name=C.PROBABILITY.coded())
        if score.probability is None:
            assert scored.value == C.NO.value and probs == []
        else:
            assert scored.value == C.YES.value
            assert probs[0].value == pytest.approx(score.probability)
            assert probs[0].unit.value == "1"
            thr = group.get_measurements(name=C.THRESHOLD.coded())[0].value
            assert thr == pytest.approx(score.threshold)
            flagged = group.get_qualitative_evaluations(name=C.FLAGGED.coded())[0].value
            assert flagged.value == (C.YES if score.flagged else C.NO).value
        assert group.source_images[0].referenced_sop_instance_uid == image.sop_uid
    abnormal = by_code[(C.ABNORMAL.value, C.ABNORMAL.scheme)]
    assert abnormal.get_measurements(name=C.PROBABILITY.coded())[0].value == pytest.approx(0.83)
    assert abnormal.get_measurements(name=C.THRESHOLD.coded())[0].value == pytest.approx(0.6)
    flag = abnormal.get_qualitative_evaluations(name=C.FLAGGED.coded())[0].value
    assert flag.value == C.YES.value  # 0.83 >= 0.6
    nofind = by_code[(C.NO_FINDING.value, C.NO_FINDING.scheme)]
    assert nofind.get_measurements(name=C.PROBABILITY.coded())[0].value == pytest.approx(0.12)


def test_sr_names_the_model_as_observer_and_carries_the_disclaimer(sr_pair):
    _, _, path = sr_pair
    ds = pydicom.dcmread(path)
    root = ds.ContentSequence
    texts = {
        item.ConceptNameCodeSequence[0].CodeMeaning: item.get("TextValue")
        for item in root
        if item.ValueType == "TEXT"
    }
    assert texts["Device Observer Name"] == "tiny-cnn"
    comments = [
        sub.TextValue
        for item in root
        if item.ValueType == "CONTAINER"
        and item.ConceptNameCodeSequence[0].CodeMeaning == "Qualitative Evaluations"
        for sub in item.ContentSequence
    ]
    assert any(DISCLAIMER in c for c in comments)


def test_sr_passes_dciodvfy_and_dsrdump(sr_pair):
    _, _, path = sr_pair
    assert dciodvfy_errors(path) == []
    proc = subprocess.run([dsrdump_binary(), str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Imaging Measurement Report" in proc.stdout
    assert '(287272002,SCT,"Cardiomegaly")' in proc.stdout
    assert "E:" not in proc.stderr and "F:" not in proc.stderr


def test_sample_study_srs_pass_dciodvfy(tmp_path):
    for src in generate_sample_study(tmp_path / "study"):
        image = load_image(src)
        out = write_sr(image, make_prediction(image.image_id), tmp_path / f"{src.stem}.sr.dcm")
        assert dciodvfy_errors(out) == [], src.name


@pytest.mark.parametrize("name", CORPUS_CHESTS)
def test_corpus_chest_radiograph_srs_pass_dciodvfy(corpus_dir, tmp_path, name):
    image = load_image(corpus_dir / "corpus" / name)
    out = write_sr(image, extended(image.image_id), tmp_path / "sr.dcm")
    assert dciodvfy_errors(out) == []
    ds = pydicom.dcmread(out)
    assert (ds.PatientID or "") == (image.header.get("PatientID") or "")  # copied, not made up


def test_source_with_an_invalid_date_is_refused_not_repaired(corpus_dir):
    image = load_image(corpus_dir / "corpus" / CORPUS_BAD_DATE)
    with pytest.raises(ExportError, match="cannot be referenced by an SR: .* to 'DA'"):
        build_sr(image, make_prediction(image.image_id))


def test_png_source_gets_no_sr_and_a_clear_reason(tmp_path):
    png = tmp_path / "chest.png"
    cv2.imwrite(str(png), np.full((40, 30), 128, np.uint8))
    image = load_image(png)
    with pytest.raises(ExportError, match="PNG file without Study/Series/SOP Instance UIDs"):
        build_sr(image, make_prediction(image.image_id))


def test_result_of_another_image_is_refused(tmp_path):
    image = load_image(make_dicom(tmp_path / "s.dcm"))
    with pytest.raises(ExportError, match="another image"):
        build_sr(image, make_prediction("some-other-image"))


def test_predict_dicom_out_writes_sr_and_pm_on_the_sample_study(tmp_path, capsys):
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    scored = ("Cardiomegaly", "Nodule/Mass", "Pleural effusion")
    bundle = write_bundle(
        tmp_path / "bundle",
        cam_model(32, outputs=4),
        vindr_card(32, findings=scored, thresholds=(0.0, 0.5, 1.0), no_finding=True),
    )
    study = tmp_path / "study"
    generate_sample_study(study)
    png = tmp_path / "plain.png"
    cv2.imwrite(str(png), np.full((40, 30), 128, np.uint8))
    out, dicom_out = tmp_path / "out", tmp_path / "dicom"
    status = main(
        ["predict", str(study), str(png), "--model", str(bundle), "--out", str(out),
         "--heatmaps", "--dicom-out", str(dicom_out)]
    )  # fmt: skip
    assert status == 0
    import json

    doc = json.loads((out / "predictions.json").read_text())
    by_name = {Path(e["file"]).name: e["dicom"] for e in doc["images"]}
    assert (
        "PNG file without Study/Series/SOP Instance UIDs" in by_name["plain.png"]["dicom_refused"]
    )
    assert "no DICOM results: " in capsys.readouterr().err
    written = sorted(dicom_out.iterdir())
    dicom_inputs = [e for name, e in by_name.items() if name.endswith(".dcm")]
    assert len(dicom_inputs) == 3  # the current CR and DX, and the prior CR
    assert len(written) == 2 * len(dicom_inputs)  # SR + PM for each sample image
    for entry in dicom_inputs:
        assert dciodvfy_errors(Path(entry["sr"])) == []
        assert dciodvfy_errors(Path(entry["pm"])) == []
        pm = pydicom.dcmread(entry["pm"])
        assert int(pm.NumberOfFrames) == len(scored)
    # each analysis and each object written is in the audit trail
    from cxr_viewer.audit import AuditLog, verify

    records = [r for _, r, _ in AuditLog().records() if r]
    analysed = {
        o["ID"]
        for r in records
        if r["event"] == "ai-analysis"
        for o in r["ParticipantObjects"]
        if o["ParticipantObjectIDTypeCode"] == "SOPInstanceUID"
    }
    sources = sorted(study.rglob("*.dcm"))
    assert len(sources) == len(dicom_inputs)
    for src in sources:
        assert pydicom.dcmread(src, stop_before_pixels=True).SOPInstanceUID in analysed
    exported = {o["ID"] for r in records if r["event"] == "export" for o in r["ParticipantObjects"]}
    for entry in dicom_inputs:
        assert pydicom.dcmread(entry["sr"], stop_before_pixels=True).SOPInstanceUID in exported
    assert verify().ok
