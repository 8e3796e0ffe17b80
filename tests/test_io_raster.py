"""PNG / JPEG / TIFF loading: 8 and 16 bit grayscale, equal-channel colour, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxr_viewer.errors import ImageRefused
from cxr_viewer.imaging.presets import AsStored, default_preset
from cxr_viewer.imaging.render import render_display
from cxr_viewer.io.loader import load_image


def test_png_8_bit(tmp_path):
    px = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(px, mode="L").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert (image.source_format, image.photometric, image.bits_stored) == ("PNG", "MONOCHROME2", 8)
    np.testing.assert_array_equal(image.pixels, px)
    assert image.windows == () and isinstance(default_preset(image), AsStored)


def test_png_16_bit_keeps_values(tmp_path):
    px = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000
    Image.fromarray(px).save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    assert image.frames.dtype == np.uint16 and image.bits_stored == 16
    np.testing.assert_array_equal(image.pixels, px)
    # min-max window spans the data: 0 -> 0 and max -> 255 (254 when dcmtk's double arithmetic
    # lands just below 255 before truncation, as it does here)
    out = render_display(image, default_preset(image).resolve(image))
    assert (
        out[0, 0] == 0 and out[-1, -1] >= 254 and out[0, 1] == 4
    )  # floor(((1000 - 31500) / 63000 + 0.5) * 255)


def test_tiff_16_bit(tmp_path):
    px = np.array([[0, 65535], [1234, 40000]], np.uint16)
    Image.fromarray(px).save(tmp_path / "a.tif")
    image = load_image(tmp_path / "a.tif")
    assert image.source_format == "TIFF"
    np.testing.assert_array_equal(image.pixels, px)


def test_jpeg_gray(tmp_path):
    px = np.full((16, 16), 128, np.uint8)
    Image.fromarray(px, mode="L").save(tmp_path / "a.jpg", quality=95)
    image = load_image(tmp_path / "a.jpg")
    assert image.source_format == "JPEG" and abs(int(image.pixels.mean()) - 128) <= 1


def test_rgb_with_equal_channels_is_gray(tmp_path):
    px = np.arange(16, dtype=np.uint8).reshape(4, 4)
    Image.fromarray(np.dstack([px] * 3), mode="RGB").save(tmp_path / "a.png")
    image = load_image(tmp_path / "a.png")
    np.testing.assert_array_equal(image.pixels, px)
    assert any("equal channels" in n for n in image.notes)


def test_true_colour_is_refused(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb, mode="RGB").save(tmp_path / "c.png")
    with pytest.raises(ImageRefused, match="true colour PNG"):
        load_image(tmp_path / "c.png")


def test_truncated_png_is_refused(tmp_path):
    px = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(px, mode="L").save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRefused):
        load_image(tmp_path / "t.png")
