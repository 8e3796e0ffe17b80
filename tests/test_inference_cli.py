"""``cxr-viewer predict``: JSON schema, CSV, heat-map files, refusals and exit status."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from cxr_viewer.cli import main
from cxr_viewer.inference.findings import VINDR_FINDINGS, finding_slug
from tests.inference_testkit import blob_image, cam_model, vindr_card, write_bundle

SCORED = ("Cardiomegaly", "Nodule/Mass", "Pleural effusion")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "bundle"
    card = vindr_card(32, findings=SCORED, thresholds=(0.0, 0.5, 1.0), no_finding=True)
    return write_bundle(folder, cam_model(32, outputs=4), card)


@pytest.fixture()
def inputs(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), (blob_image((90, 60), (30, 20), 9) // 16).astype(np.uint8))
    cv2.imwrite(str(folder / "sub" / "b.png"), blob_image((50, 70), (25, 50), 6))  # 16-bit
    (folder / "notes.txt").write_text("not an image")
    return folder


def _run(*argv):
    return main(["predict", *map(str, argv)])


def test_predict_folder_writes_json_csv_and_heatmaps(bundle_dir, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    status = _run(inputs, tmp_path / "missing.dcm", "--model", bundle_dir, "--out", out, "--heatmaps")
    assert status == 3  # analysed some, refused others (notes.txt, missing.dcm): documented 3
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["schema"] == "cxr-viewer-predictions/1"
    assert doc["model"]["name"] == "Tiny test model" and len(doc["model"]["weights_sha256"]) == 64
    assert "not for primary diagnosis" in doc["intended_use"]
    files = sorted(e["file"] for e in doc["images"])
    assert [f.rsplit("/", 1)[-1] for f in files] == ["a.png", "b.png"]
    refused = {r["file"].rsplit("/", 1)[-1]: r["reason"] for r in doc["refused"]}
    assert set(refused) == {"notes.txt", "missing.dcm"}
    assert refused["missing.dcm"] == "no such file or folder"

    entry = next(e for e in doc["images"] if e["file"].endswith("a.png"))
    assert entry["model_name"] == "Tiny test model" and entry["model_version"] == "0.0.1"
    assert entry["image_size"] == [90, 60]
    assert [f["finding"] for f in entry["findings"]] == list(VINDR_FINDINGS)
    for f in entry["findings"]:
        if f["finding"] in SCORED:
            assert 0.0 <= f["probability"] <= 1.0 and f["scored"]
            assert f["flagged"] == (f["probability"] >= f["threshold"])
        else:
            assert f["probability"] is None and f["flagged"] is None and f["threshold"] is None
    by_name = {f["finding"]: f for f in entry["findings"]}
    assert by_name["Cardiomegaly"]["flagged"] is True  # threshold 0
    assert by_name["Pleural effusion"]["flagged"] is False  # threshold 1 (sigmoid < 1)
    assert 0.0 <= entry["no_finding"] <= 1.0

    assert set(entry["heatmaps"]) == set(SCORED)
    for finding, rel in entry["heatmaps"].items():
        assert rel == f"heatmaps/a__{finding_slug(finding)}.png"
        png = cv2.imread(str(out / rel), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and png.shape == (90, 60)
        assert png.max() in (0, 255)
    assert (out / "heatmaps" / "b__nodule-mass.png").is_file()

    with open(out / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 15  # 14 findings + No finding, per image
    row = next(r for r in rows if r["file"].endswith("a.png") and r["finding"] == "Cardiomegaly")
    assert row["flagged"] == "yes" and row["heatmap"] == "heatmaps/a__cardiomegaly.png"
    assert float(row["probability"]) == pytest.approx(by_name["Cardiomegaly"]["probability"], abs=1e-6)
    unscored = next(r for r in rows if r["finding"] == "Pneumothorax")
    assert unscored["probability"] == "" and unscored["flagged"] == ""
    err = capsys.readouterr().err
    assert "analysed 2 image(s), refused 2" in err and "[2/2]" in err


def test_predict_exits_2_when_nothing_could_be_analysed(bundle_dir, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    assert _run(bad, "--model", bundle_dir, "--out", out) == 2
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["images"] == [] and doc["refused"][0]["file"] == str(bad)
    assert "refused: " in capsys.readouterr().err


def test_predict_refuses_a_bad_model(tmp_path, capsys):
    assert _run(tmp_path, "--model", tmp_path / "no_model") == 2
    assert "model bundle not found" in capsys.readouterr().err


@pytest.mark.corpus
def test_predict_real_radiographs_and_refuses_a_broken_one(bundle_dir, corpus_dir, tmp_path):
    """Real chest CR files (MONOCHROME1, MONOCHROME2): heat maps at their own size; a CR
    without pixel data is refused with the loader's reason, and a radiograph of another body
    part (the WG04 RG3 extremity) is refused, not read as a chest."""
    corpus = corpus_dir / "corpus"
    good = [
        corpus / "fo-dicom__CR-MONO1-10-chest.dcm",  # 440 x 440 MONOCHROME1 chest PA
        corpus / "torchxrayvision__SIIM_CXR_850819.dcm",  # 1024 x 1024 MONOCHROME2
    ]
    broken = corpus / "orthanc-tests__CR000000.dcm"  # no Pixel Data
    extremity = corpus / "dicom-test-files__WG04_RG3_JLSN.dcm"  # Body Part Examined EXTREMITY
    out = tmp_path / "out"
    # some analysed, some refused: the documented status 3 (cxr_viewer.commands.predict)
    assert _run(*good, broken, extremity, "--model", bundle_dir, "--out", out, "--heatmaps") == 3
    doc = json.loads((out / "predictions.json").read_text())
    assert [e["image_size"] for e in doc["images"]] == [[440, 440], [1024, 1024]]
    assert [r["file"] for r in doc["refused"]] == [str(broken), str(extremity)]
    assert doc["refused"][0]["reason"]
    assert "body part EXTREMITY" in doc["refused"][1]["reason"]
    png = cv2.imread(str(out / "heatmaps" / "fo-dicom__CR-MONO1-10-chest__cardiomegaly.png"),
                     cv2.IMREAD_UNCHANGED)
    assert png.shape == (440, 440) and png.dtype == np.uint8
