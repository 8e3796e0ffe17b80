"""The generated sample study: real DICOM, the attributes the issue asks for, chest-like."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cxr_viewer.imaging.presets import HeaderVOILut, default_preset, presets_for
from cxr_viewer.imaging.render import render_display
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import PATIENT_ID, PATIENT_NAME, generate_sample_study, sample_study_dir


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    t0 = time.perf_counter()
    paths = generate_sample_study(out)
    elapsed = time.perf_counter() - t0
    return paths, [load_image(p) for p in paths], elapsed


def test_generation_is_quick(sample):
    # Target < 2 s on a desktop; generous here because the test machine is shared and loaded.
    assert sample[2] < 10


def test_cr_is_monochrome1_12_bit_with_rescale_and_two_windows(sample):
    cr = sample[1][0]
    assert (cr.modality, cr.photometric, cr.bits_stored) == ("CR", "MONOCHROME1", 12)
    assert (cr.rescale_slope, cr.rescale_intercept) == (2.0, -1000.0)
    assert cr.stored is not None and int(cr.stored.max()) <= 4095
    np.testing.assert_array_equal(cr.frames, cr.stored.astype(np.int32) * 2 - 1000)
    assert [w.explanation for w in cr.windows] == ["NORMAL", "LUNG"]
    assert cr.spacing.source == "ImagerPixelSpacing" and cr.spacing.row_mm == 0.16
    assert 1500 <= cr.shape[0] <= 2000 and 1300 <= cr.shape[1] <= 2000


def test_dx_is_monochrome2_with_voi_lut_and_pixel_spacing(sample):
    dx = sample[1][1]
    assert (dx.modality, dx.photometric) == ("DX", "MONOCHROME2")
    assert len(dx.voi_luts) == 1 and dx.voi_luts[0].data.size == 4096
    assert HeaderVOILut(0) in presets_for(dx)
    assert dx.spacing.source == "PixelSpacing" and dx.spacing.col_mm == 0.15


def test_same_fake_patient_and_study(sample):
    cr, dx = sample[1]
    for im in (cr, dx):
        assert im.tags["PatientName"] == PATIENT_NAME and im.tags["PatientID"] == PATIENT_ID
    assert cr.study_uid == dx.study_uid and cr.series_uid != dx.series_uid


def test_looks_like_a_chest(sample):
    for im in sample[1]:
        out = render_display(im, default_preset(im).resolve(im)).astype(float)
        rows, cols = out.shape
        lung = out[int(rows * 0.35) : int(rows * 0.5), int(cols * 0.22) : int(cols * 0.32)].mean()
        spine = out[int(rows * 0.35) : int(rows * 0.5), int(cols * 0.49) : int(cols * 0.51)].mean()
        below = out[int(rows * 0.85) : int(rows * 0.9), int(cols * 0.3) : int(cols * 0.4)].mean()
        air = out[: int(rows * 0.05), : int(cols * 0.05)].mean()
        # bone and abdomen bright, lungs dark, air outside the body darkest (bone-white display)
        assert air < lung < below and lung + 60 < spine, (air, lung, spine, below)


def test_deterministic(sample, tmp_path):
    again = generate_sample_study(tmp_path)
    for a, b in zip(sample[0], again, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_sample_study_dir_generates_once_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    d = sample_study_dir()
    assert d.parent == tmp_path / "cxr-viewer"
    files = sorted(d.glob("*.dcm"))
    assert len(files) == 2
    mtimes = [f.stat().st_mtime_ns for f in files]
    assert sample_study_dir() == d
    assert [f.stat().st_mtime_ns for f in files] == mtimes
