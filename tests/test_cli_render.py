"""``cxr-viewer render`` / ``info`` as subprocesses: outputs, exit statuses, stderr."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cxr_viewer.imaging.presets import default_preset
from cxr_viewer.imaging.render import render_display
from cxr_viewer.imaging.window import VOI
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import generate_sample_study


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cxr_viewer", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return generate_sample_study(tmp_path_factory.mktemp("sample"))


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "L"
        return np.asarray(im)


def test_default_render_of_sample(sample, tmp_path):
    out = tmp_path / "cr.png"
    r = cli("render", sample[0], out)
    assert r.returncode == 0, r.stderr
    image = load_image(sample[0])
    expected = render_display(image, default_preset(image).resolve(image))
    np.testing.assert_array_equal(_png(out), expected)


def test_window_and_voi_lut_options(sample, tmp_path):
    dx = load_image(sample[1])
    r = cli("render", sample[1], tmp_path / "w.png", "--window", "1500", "800")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(
        _png(tmp_path / "w.png"), render_display(dx, VOI.window(1500, 800))
    )
    r = cli("render", sample[1], tmp_path / "l.png", "--voi-lut", "1")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(_png(tmp_path / "l.png"), render_display(dx, VOI.lut(0)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--voi-lut", "2"], "--voi-lut 2 requested"),
        (["--frame", "3"], "frame 3 requested"),
        (["--window", "10", "0"], "width must be > 0"),
    ],
)
def test_bad_options_exit_2(sample, tmp_path, args, message):
    r = cli("render", sample[1], tmp_path / "x.png", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_refused_file_exit_2_one_line(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"definitely not DICOM\n" * 10)
    r = cli("render", bad, tmp_path / "x.png")
    assert r.returncode == 2 and not (tmp_path / "x.png").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: not a")


def test_info(sample):
    r = cli("info", sample[0])
    assert r.returncode == 0, r.stderr
    assert "MONOCHROME1" in r.stdout and "Shown with:         NORMAL = C 3600 W 4400" in r.stdout
    assert "ImagerPixelSpacing" in r.stdout


@pytest.mark.corpus
def test_render_matches_dcmtk_reference(corpus_dir, tmp_path):
    """Subprocess render of a MONOCHROME1 CR and a VOI LUT file vs dcmtk's PNGs."""
    cases = [
        ("fo-dicom__CR-MONO1-10-chest", [], "ww"),
        ("pydicom-data__vlut_04", ["--voi-lut", "1"], "wl1"),
        (
            "dcmfx__jpeg_lossless_with_inverse_presentation_lut_shape",
            ["--window", "216.5", "2481"],
            "mm",
        ),
    ]
    for stem, args, variant in cases:
        out = tmp_path / f"{stem}.png"
        r = cli("render", corpus_dir / "corpus" / f"{stem}.dcm", out, *args)
        assert r.returncode == 0, r.stderr
        ref = _png(corpus_dir / "reference" / f"{stem}__{variant}.png").astype(int)
        d = np.abs(_png(out).astype(int) - ref)
        assert d.max() <= 1 and d.mean() <= 0.75, (stem, d.max(), d.mean())


GH177 = "fo-dicom__GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm"


@pytest.mark.corpus
def test_render_refused_malformed_file(corpus_dir, tmp_path):
    """GH177 without the Sequence Delimitation Item of its UN sequence: no parse applies."""
    data = (corpus_dir / "corpus" / GH177).read_bytes()
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(data.replace(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00", b"", 1))
    r = cli("render", damaged, tmp_path / "x.png")
    assert r.returncode == 2
    assert "1.2.840.10008.1.2.2" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.corpus
def test_render_cp246_file_equals_dcmtk(corpus_dir, tmp_path):
    """GH177 itself (undefined-length UN sequence, PS3.5 6.2.2): dcmtk's render, exactly."""
    out = tmp_path / "x.png"
    r = cli("render", corpus_dir / "corpus" / GH177, out, "--window", "-884.5", "4279")
    assert r.returncode == 0, r.stderr
    ref = _png(corpus_dir / "reference" / f"{GH177[:-4]}__ww.png").astype(int)
    assert np.array_equal(_png(out).astype(int), ref)


@pytest.mark.corpus
def test_render_retired_jpeg_through_the_fallback_decoder(corpus_dir, tmp_path):
    """Retired JPEG full progression (.55): pylibjpeg has no decoder; libjpeg-turbo matches dcmtk."""
    stem = "cornerstoneWADOImageLoader__CTImage_JPEG_retired_4.55"
    out = tmp_path / "x.png"
    r = cli("render", corpus_dir / "corpus" / f"{stem}.dcm", out, "--window", "40", "400")
    assert r.returncode == 0, r.stderr
    ref = _png(corpus_dir / "reference" / f"{stem}__ww.png").astype(int)
    assert np.array_equal(_png(out).astype(int), ref)


@pytest.mark.corpus
def test_render_frame_of_multiframe(corpus_dir, tmp_path):
    path = corpus_dir / "corpus" / "pydicom-data__emri_small.dcm"
    r = cli("render", path, tmp_path / "f3.png", "--frame", "3")
    assert r.returncode == 0, r.stderr
    image = load_image(path)
    expected = render_display(
        image, default_preset(image).resolve(load_image(path, frame=2)), frame=2
    )
    np.testing.assert_array_equal(_png(tmp_path / "f3.png"), expected)
    r = cli("render", path, tmp_path / "f11.png", "--frame", "11")
    assert r.returncode == 2 and "frame 11 requested; the image has 10 frame(s)" in r.stderr


def test_info_refused_exit_2(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"")
    r = cli("info", bad)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {bad}: empty file"


@pytest.mark.corpus
def test_render_overlays_on_by_default_and_off_on_request(corpus_dir, tmp_path):
    """dcmtk's defaults: overlays burned in (``ovl``); ``--no-overlays`` gives its ``ww``."""
    stem = "pydicom__examples_overlay"
    src = corpus_dir / "corpus" / f"{stem}.dcm"
    for args, variant in (((), "ovl"), (("--overlays",), "ovl"), (("--no-overlays",), "ww")):
        out = tmp_path / f"{variant}{len(args)}.png"
        r = cli("render", src, out, *args)
        assert r.returncode == 0, r.stderr
        ref = _png(corpus_dir / "reference" / f"{stem}__{variant}.png").astype(int)
        assert np.array_equal(_png(out).astype(int), ref), (args, variant)


@pytest.mark.corpus
def test_info_lists_overlay_planes(corpus_dir):
    r = cli("info", corpus_dir / "corpus" / "fo-dicom__OutOfBoundsOverlay.dcm")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("Overlay ")]
    assert len(lines) == 2
    assert "101 x 101 at row 704, column 409, type G" in lines[0]
    assert "row -25, column -25" in lines[1]  # the plane's origin as the file gives it
