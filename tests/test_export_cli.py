"""``cxr-viewer export`` and ``cxr-viewer demo``: headless composition, errors, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from cxr_viewer import DISCLAIMER
from cxr_viewer.cli import main
from cxr_viewer.imaging.render import render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.loader import load_image
from tests.test_export_annotated import PATIENT_ID, make_dicom
from tests.test_export_dicom import run_dciodvfy


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "cxr_viewer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_export_png_matches_render_command(tmp_path):
    src = make_dicom(tmp_path / "src.dcm", rows=260, cols=200)
    out = tmp_path / "export.png"
    proc = cli("export", str(src), str(out), "--no-ai", "--window", "1500", "2000")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    rgb = read_rgb(out)
    image = load_image(src)
    rows, cols = image.shape
    assert rgb.shape[0] >= rows and rgb.shape[1] > cols  # image + side panel
    # the image region is exactly what `cxr-viewer render` writes with the same window
    ref = tmp_path / "render.png"
    proc = cli("render", str(src), str(ref), "--window", "1500", "2000")
    assert proc.returncode == 0, proc.stderr
    with Image.open(ref) as im:
        rendered = np.asarray(im.convert("L"))
    assert rendered.shape == (rows, cols)
    for ch in range(3):
        np.testing.assert_array_equal(rgb[:rows, :cols, ch], rendered)
    np.testing.assert_array_equal(
        rgb[:rows, :cols, 0], render_display(image, VOI.window(1500, 2000))
    )
    with Image.open(out) as im:
        meta = dict(im.text)
    assert meta["Disclaimer"] == DISCLAIMER
    assert PATIENT_ID not in out.read_bytes().decode("latin-1")


def test_export_refuses_bad_requests(tmp_path):
    src = make_dicom(tmp_path / "src.dcm", rows=64, cols=64)
    proc = cli("export", str(src), str(tmp_path / "x.bmp"), "--no-ai")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "unknown export format" in proc.stderr
    assert "Traceback" not in proc.stderr

    png = tmp_path / "plain.png"
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (48, 1))).save(png)
    proc = cli("export", str(png), str(tmp_path / "x.dcm"), "--no-ai")
    assert proc.returncode == 2
    assert "needs a DICOM source" in proc.stderr
    assert not (tmp_path / "x.dcm").exists()

    proc = cli("export", str(tmp_path / "missing.dcm"), str(tmp_path / "y.png"), "--no-ai")
    assert proc.returncode == 2 and "missing.dcm" in proc.stderr

    proc = cli("export", str(src), str(tmp_path / "z.png"), "--no-ai", "--finding", "ILD")
    assert proc.returncode == 2 and "--no-ai" in proc.stderr


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    return write_bundle(tmp_path_factory.mktemp("bundle"), cam_model(48), vindr_card(48))


@pytest.mark.slow
def test_export_with_a_real_keras_bundle(tmp_path, tiny_bundle, capsys):
    src = make_dicom(tmp_path / "src.dcm", rows=200, cols=160)
    png = tmp_path / "ai.png"
    assert main(["export", str(src), str(png), "--model", str(tiny_bundle)]) == 0
    stdout = capsys.readouterr().out
    assert "heat map" in stdout
    with Image.open(png) as im:
        meta = dict(im.text)
    assert "Tiny test model 0.0.1 sha256:" in meta["Model"]
    assert "Heat map: " in meta["Description"]

    dcm = tmp_path / "ai.dcm"
    args = ["export", str(src), str(dcm), "--model", str(tiny_bundle), "--finding", "cardiomegaly"]
    assert main(args) == 0
    ds = pydicom.dcmread(dcm)
    assert "Heat map: Cardiomegaly (Grad-CAM)" in ds.ImageComments
    assert ds.StudyInstanceUID == pydicom.dcmread(src).StudyInstanceUID
    run_dciodvfy(dcm)

    bad = ["export", str(src), str(tmp_path / "b.png"), "--model", str(tiny_bundle)]
    assert main([*bad, "--finding", "Broken bone"]) == 2
    assert "unknown finding" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_writes_predictions_pngs_and_captures(tmp_path, tiny_bundle, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # sample study goes here
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--model", str(tiny_bundle)]) == 0
    summary = capsys.readouterr().out
    assert DISCLAIMER in summary
    data = json.loads((out / "predictions.json").read_text())
    assert data["disclaimer"] == DISCLAIMER
    assert len(data["images"]) == 2
    for entry in data["images"]:
        assert len(entry["findings"]) == 14
        assert entry["model"]["name"] == "Tiny test model"
        assert entry["heatmap_finding"] == entry["findings"][0]["finding"]  # top-ranked
        png = out / entry["annotated_png"]
        assert read_rgb(png).shape[1] > entry["columns"]
        ds = pydicom.dcmread(out / entry["secondary_capture"])
        assert ds.BurnedInAnnotation == "YES"
        assert ds.SeriesDescription == "AI second opinion"
