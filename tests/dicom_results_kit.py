"""Shared helpers for the DICOM results tests (SR, PM, GSPS, read back): sources and results."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cxr_viewer.inference.results import CamResult, Prediction
from tests.test_export_dicom import dciodvfy_binary

#: Real chest radiographs of the corpus: CR MONO1 10-bit without File Meta, CR MONO1 15-bit
#: JPEG-LS (NEMA WG04 RG1), the SIIM pneumothorax challenge CR (JPEG baseline)
CORPUS_CHESTS = (
    "fo-dicom__CR-MONO1-10-chest.dcm",
    "dicom-test-files__WG04_RG1_JLSN.dcm",
    "torchxrayvision__SIIM_CXR_850819.dcm",
)
#: A real chest DX whose (anonymised) Study Date is not a DICOM date: results are refused.
CORPUS_BAD_DATE = "pylibjpeg-data__966_fixed.dcm"


@dataclass(frozen=True)
class ExtendedPrediction(Prediction):
    """A Prediction as the next inference API (model2) has it: Abnormal score and threshold,
    operating mode, calibration flag."""

    abnormal: float | None = None
    abnormal_threshold: float | None = None
    mode: str | None = None
    calibrated: bool = False


def dciodvfy_errors(path: Path) -> list[str]:
    """dciodvfy's Error lines (and all its output, for the failure message)."""
    proc = subprocess.run(
        [dciodvfy_binary(), str(path)], capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return [ln for ln in lines if ln.startswith("Error")]


def dsrdump_binary() -> str:
    found = shutil.which("dsrdump")
    if not found:
        pytest.skip("dcmtk's dsrdump is not installed (apt-get install dcmtk)")
    return found


def blob_cams(image, findings=("Cardiomegaly", "Pleural effusion"), method="gradcam") -> CamResult:
    """Smooth heat maps at the image size: a Gaussian blob per finding, in [0, 1]."""
    rows, cols = image.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    maps = {}
    for i, finding in enumerate(findings):
        cy, cx = rows * (0.3 + 0.4 * i / max(1, len(findings))), cols * 0.5
        cam = np.exp(-(((yy - cy) / (rows / 6)) ** 2 + ((xx - cx) / (cols / 6)) ** 2))
        maps[finding] = (cam / cam.max()).astype(np.float32)
    return CamResult(image_id=image.image_id, method=method, maps=maps)
